"""The intake: a Starlette app that verifies webhooks, stores them durably and responds fast.

``POST /webhooks/{shopify,woocommerce,storefront}`` for the platforms the project's
``integration/mapping.yaml`` accepts, plus ``GET /healthz``, ``GET /readyz`` and
``GET /metrics``. The intake never waits on the CRM: a delivery is answered once it
is in the queue (or the quarantine), and the worker does the rest.

Status codes a sender sees:

* 200: queued, a duplicate of a delivery already queued, quarantined (verified but
  not processable: not JSON, not an object, or a topic the project does not map),
  or a WooCommerce ping. A quarantined delivery gets 200 because a retry would
  carry the same body and fail the same way; the operator fixes and requeues it.
* 401: missing or wrong signature; nothing is stored.
* 404: a platform this project does not accept.
* 413: a body over ``MAX_BODY_BYTES``, refused before the rest is read.
* 503: the queue or state store could not be written. The platform then retries,
  so the delivery is not lost while the disk or Redis is down.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import metrics
from .db import Database
from .dedupe import DedupeStore, dedupe_key
from .delivery import SOURCES, Delivery, body_digest_id
from .quarantine import Quarantine
from .queue import QUEUE_ERRORS, DeliveryQueue, build_queue
from .runtime.engine import json_type, topics
from .settings import Settings
from .signatures import (
    Verification,
    header_value,
    verify_shopify,
    verify_standard_webhooks,
    verify_woocommerce,
)
from .tasks import DeliveryHandler

log = logging.getLogger(__name__)

Clock = Callable[[], float]

# WooCommerce sends this form-encoded body, unsigned, when a webhook is created or
# activated, and keeps the webhook only if the response status is exactly 200.
WOOCOMMERCE_PING = re.compile(rb"^webhook_id=\d+$")

# Delivery id headers of each platform, in order of preference. Shopify's event id is
# the same on every delivery of one event, and its webhook id is the fallback.
DELIVERY_ID_HEADERS = {
    "shopify": ("X-Shopify-Event-Id", "X-Shopify-Webhook-Id"),
    "woocommerce": ("X-WC-Webhook-Delivery-ID",),
    "storefront": ("webhook-id",),
}
TOPIC_HEADERS = {"shopify": "X-Shopify-Topic", "woocommerce": "X-WC-Webhook-Topic"}
SHOP_HEADERS = {"shopify": "X-Shopify-Shop-Domain", "woocommerce": "X-WC-Webhook-Source"}


@dataclass
class IntakeServices:
    """The queue and stores the intake app uses; tests pass their own."""

    settings: Settings
    queue: DeliveryQueue
    dedupe: DedupeStore
    quarantine: Quarantine
    clock: Clock = time.time
    # Resources the app opened itself and closes on shutdown.
    owned: list[Any] = field(default_factory=list)

    def close(self) -> None:
        """Close the resources the app opened."""
        for resource in reversed(self.owned):
            resource.close()


def build_services(settings: Settings, *, clock: Clock = time.time,
                   queue: DeliveryQueue | None = None, dedupe: DedupeStore | None = None,
                   quarantine: Quarantine | None = None,
                   handler: DeliveryHandler | None = None) -> IntakeServices:
    """Open the queue and the stores named by ``settings``, except those passed in.

    Raises:
        sqlite3.Error, OSError or redis.RedisError: a store cannot be opened.
    """
    owned: list[Any] = []
    if quarantine is None:
        state = Database(settings.state_path)
        owned.append(state)
        quarantine = Quarantine(state)
    if queue is None:
        queue = build_queue(settings, handler, dedupe)
        owned.append(queue)
    return IntakeServices(settings=settings, queue=queue, dedupe=dedupe or queue.dedupe,
                          quarantine=quarantine, clock=clock, owned=owned)


def create_app(settings: Settings, *, clock: Clock = time.time,
               queue: DeliveryQueue | None = None, dedupe: DedupeStore | None = None,
               quarantine: Quarantine | None = None,
               handler: DeliveryHandler | None = None) -> Starlette:
    """Build the intake app.

    Args:
        settings: The service settings.
        clock: Returns the current Unix time in seconds; drives dedupe expiry,
            ``received_at`` and the Standard Webhooks timestamp check.
        queue, dedupe, quarantine: Stores to use instead of those ``settings`` name.
        handler: The job handler registered with a queue built here (tests pass a stub).
    """
    services = build_services(settings, clock=clock, queue=queue, dedupe=dedupe,
                              quarantine=quarantine, handler=handler)
    metrics.watch_queue_depth(services.queue.depth)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        log.info("intake started", extra={"accepted_platforms": list(settings.accepted_platforms),
                                          "queue": "redis" if settings.redis_url else "sqlite"})
        yield
        services.close()
        log.info("intake stopped")

    app = Starlette(
        routes=[
            Route("/webhooks/{source}", _webhook_endpoint(services), methods=["POST"]),
            Route("/healthz", _healthz, methods=["GET"]),
            Route("/readyz", _readyz_endpoint(services), methods=["GET"]),
            Route("/metrics", _metrics, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.services = services
    return app


# --- Webhooks ------------------------------------------------------------------------


def _topic_label(source: str, topic: str | None) -> str:
    return topic if topic and topic in topics(source) else metrics.OTHER_TOPIC


def _webhook_endpoint(services: IntakeServices) -> Callable[[Request], Any]:
    settings = services.settings

    async def receive(request: Request) -> Response:
        source = request.path_params["source"]
        if source not in settings.accepted_platforms:
            return _not_accepted(source, settings)
        # A plain dict of the lower-case names ASGI gives; read several times below.
        headers = dict(request.headers.items())
        header_topic = header_value(headers, TOPIC_HEADERS.get(source, "")) or None
        label = _topic_label(source, header_topic)
        metrics.count_delivery(source, label, "received")

        body = await _read_limited(request, settings.max_body_bytes)
        if body is None:
            metrics.count_delivery(source, label, "too_large")
            log.warning("webhook body too large",
                        extra={"source": source, "topic": label,
                               "max_body_bytes": settings.max_body_bytes})
            return JSONResponse({"error": "body_too_large",
                                 "max_body_bytes": settings.max_body_bytes}, status_code=413)
        if source == "woocommerce" and header_topic is None and WOOCOMMERCE_PING.match(body):
            metrics.count_delivery(source, label, "ping")
            log.info("woocommerce ping answered", extra={"source": source})
            return JSONResponse({"status": "ping"})

        now = services.clock()
        verification = _verify(source, body, headers, settings, now)
        if not verification.ok:
            metrics.count_delivery(source, label, "rejected")
            log.warning("webhook rejected", extra={"source": source, "topic": label,
                                                   "reason": verification.reason})
            return JSONResponse({"error": "invalid_signature", "reason": verification.reason},
                                status_code=401)
        return await _accept(services, source, headers, body, now)

    return receive


def _not_accepted(source: str, settings: Settings) -> Response:
    known = "" if source in SOURCES else " and is not a platform this service knows"
    message = (f"This project does not accept {source} webhooks{known}. It accepts: "
               f"{', '.join(settings.accepted_platforms)}, as set by integration/mapping.yaml.")
    return JSONResponse({"error": "platform_not_accepted", "message": message,
                         "accepted": list(settings.accepted_platforms)}, status_code=404)


async def _read_limited(request: Request, limit: int) -> bytes | None:
    """Return the body, or None as soon as it is known to exceed ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        return None
    # Count the streamed bytes too: a chunked body has no Content-Length, and a
    # declared length may be wrong.
    received = bytearray()
    async for chunk in request.stream():
        received += chunk
        if len(received) > limit:
            return None
    return bytes(received)


def _verify(source: str, body: bytes, headers: Mapping[str, str], settings: Settings,
            now: float) -> Verification:
    secrets = settings.webhook_secrets(source)
    if source == "shopify":
        return verify_shopify(body, headers, secrets)
    if source == "woocommerce":
        return verify_woocommerce(body, headers, secrets)
    tolerance = settings.storefront_timestamp_tolerance_seconds
    return verify_standard_webhooks(body, headers, secrets, now=now, tolerance_seconds=tolerance)


async def _accept(services: IntakeServices, source: str, headers: Mapping[str, str],
                  body: bytes, now: float) -> Response:
    inspection = inspect_delivery(source, headers, body, now, services.settings)
    delivery = inspection.delivery
    label = _topic_label(source, delivery.topic)
    metrics.count_delivery(source, label, "verified")
    ids = {"delivery_id": delivery.delivery_id, "source": source, "topic": label}
    key = dedupe_key(delivery.source, delivery.delivery_id)
    try:
        if inspection.problem is None:
            queued = await services.queue.enqueue_once_async(delivery, key, now)
            status = "queued" if queued else "duplicate"
        else:
            status = await run_in_threadpool(_quarantine_once, services, inspection, key, now)
    except QUEUE_ERRORS as error:
        # Respond with 503, never 2xx, when the delivery could not be stored. The
        # platform then retries it, while a 2xx would drop it for good.
        metrics.ENQUEUE_FAILURES.labels(source=source).inc()
        log.error("queue write failed, responded with 503", extra={**ids, "error": repr(error)})
        return JSONResponse({"error": "queue_unavailable",
                             "message": "The delivery could not be stored; retry later."},
                            status_code=503)
    if status != "queued":
        metrics.count_delivery(source, label, status)
    # A queued delivery gets its INFO line from the worker's job, so one line per
    # delivery reaches INFO; the intake's own line for it is DEBUG.
    level = logging.DEBUG if status == "queued" else logging.INFO
    log.log(level, "webhook %s", status, extra={**ids, "status": status,
                                                "reason": inspection.problem or None})
    return JSONResponse({"status": status, "delivery_id": delivery.delivery_id})


# --- Inspecting and storing a verified delivery ----------------------------------------


@dataclass(frozen=True)
class Inspection:
    """A verified delivery, with the reason to quarantine it when it cannot be processed."""

    delivery: Delivery
    problem: str | None
    raw_body: bytes


def _iso(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat(timespec="milliseconds") \
        .replace("+00:00", "Z")


def inspect_delivery(source: str, headers: Mapping[str, str], body: bytes, now: float,
                     settings: Settings) -> Inspection:
    """Build the Delivery of a verified request and find any reason to quarantine it."""
    problem: str | None = None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = body.decode("utf-8", "replace")
        problem = "the body is not valid UTF-8"
    parsed: Any = None
    if problem is None:
        try:
            parsed = json.loads(text)
        except ValueError:
            problem = "the body is not valid JSON"
    if problem is None and not isinstance(parsed, dict):
        problem = f"the body is a JSON {json_type(parsed)}, not an object"
    topic = _topic(source, headers, parsed)
    if problem is None:
        problem = _topic_problem(source, topic)
    delivery = Delivery(
        delivery_id=_delivery_id(source, headers, body),
        source=source,
        topic=topic or "",
        shop=_shop(source, headers, settings),
        received_at=_iso(now),
        triggered_at=_triggered_at(source, headers),
        body=text,
    )
    return Inspection(delivery=delivery, problem=problem, raw_body=body)


def _topic(source: str, headers: Mapping[str, str], parsed: Any) -> str | None:
    if source in TOPIC_HEADERS:
        return (header_value(headers, TOPIC_HEADERS[source]) or "").strip() or None
    event = parsed.get("event") if isinstance(parsed, dict) else None
    if not isinstance(event, str):
        return None
    return event.strip() or None


def _topic_problem(source: str, topic: str | None) -> str | None:
    if topic is None:
        where = (f"the {TOPIC_HEADERS[source]} header" if source in TOPIC_HEADERS
                 else "the body's event field")
        return f"no topic: {where} is missing"
    if topic not in topics(source):
        return f"topic {topic!r} is not one this service maps for {source}"
    return None


def _delivery_id(source: str, headers: Mapping[str, str], body: bytes) -> str:
    for name in DELIVERY_ID_HEADERS[source]:
        value = (header_value(headers, name) or "").strip()
        if value:
            return value
    return body_digest_id(body)


def _shop(source: str, headers: Mapping[str, str], settings: Settings) -> str | None:
    if source in SHOP_HEADERS:
        return (header_value(headers, SHOP_HEADERS[source]) or "").strip() or None
    return settings.store_id


def _triggered_at(source: str, headers: Mapping[str, str]) -> str | None:
    if source == "shopify":
        return (header_value(headers, "X-Shopify-Triggered-At") or "").strip() or None
    if source == "storefront":
        raw = (header_value(headers, "webhook-timestamp") or "").strip()
        return _iso(int(raw)) if raw.isdigit() else None
    return None


def _quarantine_once(services: IntakeServices, inspection: Inspection, key: str,
                     now: float) -> str:
    """Claim the dedupe key, then quarantine; return quarantined or duplicate.

    Raises:
        One of ``QUEUE_ERRORS``: nothing was stored and the claim was released.
    """
    delivery = inspection.delivery
    if not services.dedupe.claim(key, now):
        return "duplicate"
    try:
        entry = services.quarantine.add(delivery, inspection.problem or "",
                                        raw_body=inspection.raw_body)
    except BaseException:
        _release_quietly(services.dedupe, key, delivery.delivery_id)
        raise
    log.info("delivery quarantined", extra={"delivery_id": delivery.delivery_id,
                                            "source": delivery.source, "quarantine_id": entry})
    try:
        services.dedupe.confirm(key, now)
    except QUEUE_ERRORS:
        # The delivery is stored, so the answer stays 2xx. The pending claim still
        # blocks copies for a while, and a later copy is quarantined again at worst.
        log.warning("dedupe confirm failed", exc_info=True,
                    extra={"delivery_id": delivery.delivery_id, "source": delivery.source})
    return "quarantined"


def _release_quietly(dedupe: DedupeStore, key: str, delivery_id: str) -> None:
    try:
        dedupe.release(key)
    except QUEUE_ERRORS:
        log.warning("dedupe release failed; the platform's retry is accepted once the claim "
                    "expires", exc_info=True, extra={"delivery_id": delivery_id})


# --- Health, readiness and metrics ----------------------------------------------------


async def _healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def _readyz_endpoint(services: IntakeServices) -> Callable[[Request], Any]:
    async def readyz(request: Request) -> Response:
        checks = await run_in_threadpool(_run_checks, services)
        ready = all(result == "ok" for result in checks.values())
        if not ready:
            log.warning("not ready", extra={"checks": checks})
        return JSONResponse({"status": "ready" if ready else "not_ready", "checks": checks},
                            status_code=200 if ready else 503)

    return readyz


def _run_checks(services: IntakeServices) -> dict[str, str]:
    checks: dict[str, Callable[[], None]] = {
        "queue": services.queue.check,
        "dedupe": services.dedupe.check,
        "quarantine": services.quarantine.check,
    }
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            check()
            results[name] = "ok"
        except Exception as error:  # any failure means "not ready"; the reason is reported
            results[name] = f"{type(error).__name__}: {error}"
    return results


async def _metrics(request: Request) -> Response:
    body = await run_in_threadpool(generate_latest, REGISTRY)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
