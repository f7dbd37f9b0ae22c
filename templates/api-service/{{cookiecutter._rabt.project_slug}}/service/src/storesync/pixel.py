"""``POST /pixel/shopify``: behaviour events sent by the project's Shopify custom pixel.

The pixel in ``service/pixel/shopify-custom-pixel.js`` posts one Web Pixels event per
request as ``{id, name, timestamp, data}``. A browser cannot hold a webhook secret, so
the endpoint is public and checks what it can instead: its own body limit
(``PIXEL_MAX_BODY_BYTES``), the JSON shape, the event name and, when
``PIXEL_ALLOWED_ORIGINS`` is set, the ``Origin`` header. Only the four events the
engine maps (``PIXEL_EVENT_NAMES``) are queued, as Shopify deliveries whose topic is
the event name, so the worker maps them through the engine's Web Pixels route. That
route feeds the event entity only, so a pixel event never creates a contact. On HubSpot a
``checkout_started`` event sets the checkout roll-ups of a contact the service already
knows by email (``storesync.checkouts``).

Status codes:

* 202: queued, a duplicate of an event already queued (same ``id``), or ignored (an
  event name the service does not map; nothing is stored).
* 204: the CORS preflight (``OPTIONS``).
* 400: not a JSON object, or ``id`` or ``name`` is missing. A browser does not retry,
  so a 4xx loses nothing that a retry would bring.
* 403: an ``Origin`` not in ``PIXEL_ALLOWED_ORIGINS``.
* 404: the project does not take pixel events (Shopify is not an accepted platform, or
  the event entity is disabled in ``integration/mapping.yaml``).
* 413: a body over ``PIXEL_MAX_BODY_BYTES``.
* 503: the queue or the dedupe store could not be written.

The body is never logged, because ``data.checkout`` carries the buyer's email.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping
from typing import Any

from starlette.types import Receive, Scope, Send

from . import metrics
from .dedupe import dedupe_key
from .delivery import Delivery
from .inspection import iso_time
from .intake import BodyTooLarge, ClientGone, IntakeServices, read_body
from .queue import QUEUE_ERRORS

log = logging.getLogger(__name__)

# The Web Pixels standard events whose route the engine maps (the Shopify family's
# ``_WEB_PIXEL_EVENT`` topics); every other event name is ignored.
PIXEL_EVENT_NAMES = frozenset({"page_viewed", "product_added_to_cart", "checkout_started",
                               "checkout_completed"})
# The metric source label, kept apart from signed Shopify webhooks.
PIXEL_SOURCE = "shopify_pixel"
# Pixel event ids get their own dedupe namespace, so they cannot collide with the
# X-Shopify-Event-Id values of webhooks.
PIXEL_DEDUPE_SOURCE = "shopify_pixel"
# How long a browser may cache the preflight response, in seconds.
PREFLIGHT_MAX_AGE_SECONDS = 600


class PixelEndpoint:
    """``POST`` and ``OPTIONS /pixel/shopify`` as a plain ASGI app.

    NOTE: Shopify runs custom pixels in a sandboxed iframe, and the ``Origin`` header
    of its requests was not checked against a live store. It may be the shop's domain,
    a Shopify sandbox domain or ``null``. A program outside a browser can send any
    ``Origin``, so ``PIXEL_ALLOWED_ORIGINS`` only filters browsers and is optional.
    """

    def __init__(self, services: IntakeServices) -> None:
        self.services = services
        self.settings = services.settings
        self.allowed_origins = frozenset(self.settings.pixel_allowed_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one request as an ASGI app."""
        headers = {name.decode("latin-1"): value.decode("latin-1")
                   for name, value in scope["headers"]}
        origin = headers.get("origin")
        cors = self.cors_headers(origin)
        try:
            status, payload = await self.handle(scope, receive, origin)
        except ClientGone:
            return
        if scope["method"] == "OPTIONS" and status == 204:
            cors += [(b"access-control-allow-methods", b"POST"),
                     (b"access-control-allow-headers", b"Content-Type"),
                     (b"access-control-max-age", str(PREFLIGHT_MAX_AGE_SECONDS).encode())]
        await _send_json(send, status, payload, cors)

    def origin_allowed(self, origin: str | None) -> bool:
        """Return whether ``origin`` may post; any origin may while no list is set."""
        if not self.allowed_origins:
            return True
        return origin is not None and origin.strip().rstrip("/").lower() in self.allowed_origins

    def cors_headers(self, origin: str | None) -> list[tuple[bytes, bytes]]:
        """Return the CORS headers of a response to a request from ``origin``."""
        if not self.allowed_origins:
            return [(b"access-control-allow-origin", b"*")]
        if origin is None or not self.origin_allowed(origin):
            return [(b"vary", b"Origin")]
        return [(b"access-control-allow-origin", origin.encode("latin-1")), (b"vary", b"Origin")]

    async def handle(self, scope: Scope, receive: Receive,
                     origin: str | None) -> tuple[int, dict[str, Any] | None]:
        """Return the status and JSON body of the response to one request."""
        if not self.settings.pixel_enabled:
            return 404, _not_enabled(self.settings.accepted_platforms)
        if not self.origin_allowed(origin):
            metrics.count_delivery(PIXEL_SOURCE, metrics.OTHER_TOPIC, "received")
            metrics.count_delivery(PIXEL_SOURCE, metrics.OTHER_TOPIC, "rejected")
            log.info("pixel event rejected: origin not allowed", extra={"origin": origin})
            return 403, {"error": "origin_not_allowed",
                         "message": "This origin is not listed in PIXEL_ALLOWED_ORIGINS."}
        if scope["method"] == "OPTIONS":
            return 204, None
        limit = self.settings.pixel_max_body_bytes
        try:
            body = await read_body(scope, receive, limit)
        except BodyTooLarge:
            metrics.count_delivery(PIXEL_SOURCE, metrics.OTHER_TOPIC, "received")
            metrics.count_delivery(PIXEL_SOURCE, metrics.OTHER_TOPIC, "too_large")
            log.info("pixel event body too large", extra={"max_body_bytes": limit})
            return 413, {"error": "body_too_large", "max_body_bytes": limit}
        return await self.accept(body)

    async def accept(self, body: bytes) -> tuple[int, dict[str, Any]]:
        """Check one event body, then queue it once or ignore it."""
        event, problem = read_event(body)
        if event is None:
            metrics.count_delivery(PIXEL_SOURCE, metrics.OTHER_TOPIC, "received")
            metrics.count_delivery(PIXEL_SOURCE, metrics.OTHER_TOPIC, "invalid")
            log.info("pixel event invalid", extra={"reason": problem})
            return 400, {"error": "invalid_event", "reason": problem}
        event_id, name = event["id"], event["name"]
        if name not in PIXEL_EVENT_NAMES:
            metrics.count_delivery(PIXEL_SOURCE, metrics.OTHER_TOPIC, "received")
            metrics.count_delivery(PIXEL_SOURCE, metrics.OTHER_TOPIC, "ignored")
            return 202, {"status": "ignored", "event_id": event_id}
        metrics.count_delivery(PIXEL_SOURCE, name, "received")
        metrics.count_delivery(PIXEL_SOURCE, name, "accepted")

        now = self.services.clock()
        timestamp = event.get("timestamp")
        delivery = Delivery(
            delivery_id=event_id,
            source="shopify",
            topic=name,
            # The pixel names no shop the service could trust, so its events are keyed
            # like storefront events, under STORE_ID.
            shop=self.settings.store_id,
            received_at=iso_time(now),
            triggered_at=timestamp if isinstance(timestamp, str) and timestamp else None,
            body=body.decode("utf-8"),
        )
        key = dedupe_key(PIXEL_DEDUPE_SOURCE, event_id)
        try:
            queued = await self.services.queue.enqueue_once_async(delivery, key, now)
        except QUEUE_ERRORS as error:
            metrics.ENQUEUE_FAILURES.labels(source=PIXEL_SOURCE).inc()
            log.error("queue write failed, responded with 503",
                      extra={"delivery_id": event_id, "source": PIXEL_SOURCE, "topic": name,
                             "error": repr(error)})
            return 503, {"error": "queue_unavailable",
                         "message": "The event could not be stored; it is lost unless the "
                                    "pixel sends it again."}
        status = "queued" if queued else "duplicate"
        if not queued:
            metrics.count_delivery(PIXEL_SOURCE, name, "duplicate")
        log.debug("pixel event %s", status,
                  extra={"delivery_id": event_id, "source": PIXEL_SOURCE, "topic": name})
        return 202, {"status": status, "event_id": event_id}


def read_event(body: bytes) -> tuple[dict[str, Any] | None, str]:
    """Parse one Web Pixels event; return it, or None and the reason it is invalid.

    The reason never quotes the body, because the body may carry an email.
    """
    try:
        event = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        return None, "the body is not valid UTF-8"
    except ValueError:
        return None, "the body is not valid JSON"
    if not isinstance(event, dict):
        return None, "the body is not a JSON object"
    for name in ("id", "name"):
        value = event.get(name)
        if not isinstance(value, str) or not value.strip():
            return None, f"the event has no {name!r} string"
    # The events table needs the time, so an event without a readable one is refused
    # here instead of becoming a dead letter after it was queued.
    timestamp = event.get("timestamp")
    if not isinstance(timestamp, str) or not timestamp.strip():
        return None, "the event has no 'timestamp' string"
    try:
        dt.datetime.fromisoformat(timestamp.strip())
    except ValueError:
        return None, "the event's 'timestamp' is not an ISO 8601 time"
    return event, ""


def _not_enabled(accepted: tuple[str, ...]) -> dict[str, Any]:
    reason = ("the event entity is disabled in integration/mapping.yaml"
              if "shopify" in accepted else "Shopify is not a platform of this project")
    return {"error": "pixel_not_enabled",
            "message": f"This service does not take Shopify pixel events: {reason}."}


async def _send_json(send: Send, status: int, payload: Mapping[str, Any] | None,
                     extra_headers: list[tuple[bytes, bytes]]) -> None:
    headers = list(extra_headers)
    body = b""
    if payload is not None:
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        headers.append((b"content-type", b"application/json"))
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
