"""The intake: a Starlette app that verifies webhooks, stores them durably and responds fast.

``POST /webhooks/{shopify,woocommerce,storefront}`` for the platforms the project's
``integration/mapping.yaml`` accepts, ``POST /pixel/shopify`` for the project's Shopify
custom pixel (see ``storesync.pixel``), plus ``GET /healthz``, ``GET /readyz``,
``GET /readyz/sync`` (the HubSpot or Zoho CRM flusher, for monitoring) and ``GET /metrics``.
The intake never waits on the CRM: a delivery is acknowledged once it is in the queue
(or the quarantine), and the worker does the rest.

Status codes a sender sees:

* 200: queued, a duplicate of a delivery already queued, quarantined (verified but
  not processable: not UTF-8, not shaped like a JSON object, or a topic the project
  does not map), a Shopify privacy request queued for the worker, or a WooCommerce
  ping. A quarantined delivery gets 200 because a retry would carry the same body
  and fail the same way; the operator fixes and requeues it.
* 401: missing or wrong signature; nothing is stored.
* 404: a platform this project does not accept.
* 413: a body over ``MAX_BODY_BYTES``, refused before the rest is read.
* 503: the queue or state store could not be written. The platform then retries,
  so the delivery is not lost while the disk or Redis is down.

The webhook endpoint is a plain ASGI callable rather than a Starlette request
handler: it reads the headers and body straight from the ASGI messages, which
saves the request and response wrappers on the busiest path.
"""

from __future__ import annotations

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
from starlette.types import Receive, Scope, Send

from . import metrics
from .db import Database
from .dedupe import DedupeStore, dedupe_key
from .delivery import SOURCES
from .heartbeat import FlusherCheck, open_heartbeat
from .inspection import Inspection, delivery_id, header_topic, inspect_delivery, iso_time
from .privacy import PRIVACY_TOPICS, privacy_delivery, read_privacy_request
from .quarantine import Quarantine
from .queue import QUEUE_ERRORS, DeliveryQueue, build_queue
from .runtime.engine import accepted_topics
from .settings import Settings
from .signatures import (
    Verification,
    header_value,
    verify_shopify,
    verify_standard_webhooks,
    verify_woocommerce,
)
from .store_settings import jobs_status
from .sync_pause import pause_status
from .tasks import DeliveryHandler

log = logging.getLogger(__name__)

Clock = Callable[[], float]

# WooCommerce sends this form-encoded body, unsigned, when a webhook is created or
# activated, and keeps the webhook only if the response status is exactly 200.
WOOCOMMERCE_PING = re.compile(rb"^webhook_id=\d+$")
JSON_HEADERS = [(b"content-type", b"application/json")]
# CRM targets whose records the flusher writes, so readiness reports its heartbeat and pause.
FLUSHED_CRM_TARGETS = ("hubspot", "zoho")


@dataclass
class IntakeServices:
    """The queue and stores the intake app uses; tests pass their own."""

    settings: Settings
    queue: DeliveryQueue
    dedupe: DedupeStore
    quarantine: Quarantine
    clock: Clock = time.time
    # The flusher's heartbeat; None when the CRM target has no flusher.
    flusher: FlusherCheck | None = None
    # The worker processes' metric snapshots, which carry the flusher's CRM pause.
    snapshots: metrics.SnapshotStore | None = None
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
    state = Database(settings.state_path)
    owned.append(state)
    if quarantine is None:
        quarantine = Quarantine(state)
    if queue is None:
        queue = build_queue(settings, handler, dedupe)
        owned.append(queue)
    flusher = None
    if settings.crm_target in FLUSHED_CRM_TARGETS:
        beats = open_heartbeat(settings)
        owned.append(beats)
        flusher = FlusherCheck(settings, beats, state, clock)
    return IntakeServices(settings=settings, queue=queue, dedupe=dedupe or queue.dedupe,
                          quarantine=quarantine, clock=clock, flusher=flusher,
                          owned=owned)


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
    # Imported here because storesync.pixel reuses this module's body reader.
    from .pixel import PixelEndpoint

    services = build_services(settings, clock=clock, queue=queue, dedupe=dedupe,
                              quarantine=quarantine, handler=handler)
    metrics.watch_queue_depth(services.queue.depth)
    # Without a flusher (CRM_TARGET=custom) the age reads -1, the value for "no heartbeat".
    metrics.watch_flusher_heartbeat(services.flusher.age if services.flusher else lambda: None)
    # The worker side's metrics, which worker processes write to the shared backend.
    sync_metrics = metrics.open_snapshot_store(settings)
    services.owned.append(sync_metrics)
    services.snapshots = sync_metrics
    metrics.watch_sync_metrics(sync_metrics)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        log.info("intake started", extra={"accepted_platforms": list(settings.accepted_platforms),
                                          "pixel": settings.pixel_enabled,
                                          "queue": "redis" if settings.redis_url else "sqlite"})
        yield
        services.close()
        log.info("intake stopped")

    app = Starlette(
        routes=[
            Route("/webhooks/{source}", WebhookEndpoint(services), methods=["POST"]),
            Route("/pixel/shopify", PixelEndpoint(services), methods=["POST", "OPTIONS"]),
            Route("/healthz", _healthz, methods=["GET"]),
            Route("/readyz", _readyz_endpoint(services), methods=["GET"]),
            Route("/readyz/sync", _sync_readyz_endpoint(services), methods=["GET"]),
            Route("/metrics", _metrics, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
    app.state.services = services
    return app


# --- Webhooks ------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """A JSON response of the webhook endpoint."""

    status: int
    payload: dict[str, Any]

    async def send(self, send: Send) -> None:
        """Send the response through ASGI."""
        body = json.dumps(self.payload, separators=(",", ":")).encode("ascii")
        await send({"type": "http.response.start", "status": self.status,
                    "headers": [*JSON_HEADERS, (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


class BodyTooLarge(Exception):
    """The request body exceeds ``MAX_BODY_BYTES``."""


class ClientGone(Exception):
    """The client disconnected before its body was read."""


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """Read the whole request body from ASGI messages.

    Raises:
        BodyTooLarge: as soon as the declared or the received length exceeds ``limit``.
        ClientGone: the client disconnected first.
    """
    for name, value in scope["headers"]:
        if name == b"content-length" and value.strip().isdigit() and int(value) > limit:
            raise BodyTooLarge
    # Count the streamed bytes too: a chunked body has no Content-Length, and a
    # declared length may be wrong.
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class WebhookEndpoint:
    """``POST /webhooks/{source}``: verify, dedupe, then queue or quarantine the request.

    The signature is checked over the raw bytes before anything reads them, and the
    response is sent only after the delivery is durably stored.
    """

    def __init__(self, services: IntakeServices) -> None:
        self.services = services
        self.settings = services.settings
        # topics() builds a new tuple on each call, so the sets are built once here.
        self.mapped_topics = {source: frozenset(accepted_topics(source)) for source in SOURCES}
        # Metric labels: the mapped topics, and Shopify's three privacy topics.
        self.label_topics = {**self.mapped_topics,
                             "shopify": self.mapped_topics["shopify"] | PRIVACY_TOPICS}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one request as an ASGI app."""
        try:
            reply = await self.handle(scope, receive)
        except ClientGone:
            return
        await reply.send(send)

    def topic_label(self, source: str, topic: str | None) -> str:
        """Return ``topic`` as a bounded metric label: ``other`` unless the service maps it."""
        if topic is not None and topic in self.label_topics[source]:
            return topic
        return metrics.OTHER_TOPIC

    async def handle(self, scope: Scope, receive: Receive) -> Reply:
        """Return the reply to one webhook request."""
        settings = self.settings
        source = scope["path_params"]["source"]
        if source not in settings.accepted_platforms:
            return _not_accepted(source, settings)
        # ASGI gives lower-case names as bytes; a plain dict is read several times below.
        headers = {name.decode("latin-1"): value.decode("latin-1")
                   for name, value in scope["headers"]}
        topic = header_topic(source, headers)
        label = self.topic_label(source, topic)
        metrics.count_delivery(source, label, "received")
        try:
            body = await read_body(scope, receive, settings.max_body_bytes)
        except BodyTooLarge:
            return _too_large(source, label, settings.max_body_bytes)
        if source == "woocommerce" and topic is None and WOOCOMMERCE_PING.match(body):
            metrics.count_delivery(source, label, "ping")
            log.info("woocommerce ping answered", extra={"source": source})
            return Reply(200, {"status": "ping"})

        now = self.services.clock()
        verification = _verify(source, body, headers, settings, now)
        if not verification.ok:
            metrics.count_delivery(source, label, "rejected")
            log.warning("webhook rejected", extra={"source": source, "topic": label,
                                                   "reason": verification.reason})
            return Reply(401, {"error": "invalid_signature", "reason": verification.reason})
        if source == "shopify" and topic in PRIVACY_TOPICS:
            return await self.queue_privacy_request(topic, headers, body, now)
        return await self.accept(source, headers, body, now)

    async def accept(self, source: str, headers: Mapping[str, str], body: bytes,
                     now: float) -> Reply:
        """Queue a verified delivery once, or quarantine it; 503 when it cannot be stored."""
        inspection = inspect_delivery(source, headers, body, now, self.settings.store_id,
                                      self.mapped_topics[source])
        delivery = inspection.delivery
        label = self.topic_label(source, delivery.topic)
        metrics.count_delivery(source, label, "verified")
        key = dedupe_key(delivery.source, delivery.delivery_id)
        entry: int | None = None
        try:
            if inspection.problem is None:
                queued = await self.services.queue.enqueue_once_async(delivery, key, now)
                status = "queued" if queued else "duplicate"
            else:
                entry = await run_in_threadpool(_quarantine_once, self.services, inspection,
                                                key, now)
                status = "duplicate" if entry is None else "quarantined"
        except QUEUE_ERRORS as error:
            return _store_failed(source, label, delivery.delivery_id, error)
        if status != "queued":
            metrics.count_delivery(source, label, status)
        # A queued delivery gets its INFO line from the worker's job, so one line per
        # delivery reaches INFO; the intake's own line for it is DEBUG.
        level = logging.DEBUG if status == "queued" else logging.INFO
        if log.isEnabledFor(level):
            fields: dict[str, Any] = {
                "delivery_id": delivery.delivery_id, "source": source, "topic": label,
                "status": status, "reason": inspection.problem}
            if entry is not None:
                fields["quarantine_id"] = entry
            log.log(level, "webhook %s", status, extra=fields)
        return Reply(200, {"status": status, "delivery_id": delivery.delivery_id})

    async def queue_privacy_request(self, topic: str, headers: Mapping[str, str], body: bytes,
                                    now: float) -> Reply:
        """Queue the ids of a Shopify privacy webhook for the worker; never its body.

        The job goes on the queue every worker reads, once per dedupe key, so the
        request reaches the worker's state file wherever the intake runs.
        """
        identifier = delivery_id("shopify", headers, body)
        shop = (header_value(headers, "X-Shopify-Shop-Domain") or "").strip() or None
        request = read_privacy_request(topic, shop, body)
        metrics.count_delivery("shopify", topic, "verified")
        job = privacy_delivery(request, identifier, iso_time(now))
        key = dedupe_key("shopify", identifier)
        try:
            queued = await self.services.queue.enqueue_once_async(job, key, now)
        except QUEUE_ERRORS as error:
            return _store_failed("shopify", topic, identifier, error)
        if not queued:
            metrics.count_delivery("shopify", topic, "duplicate")
            return Reply(200, {"status": "duplicate", "delivery_id": identifier})
        metrics.count_delivery("shopify", topic, "privacy_pending")
        log.info("privacy request queued; the worker handles it",
                 extra={"delivery_id": identifier, "source": "shopify", "topic": topic})
        return Reply(200, {"status": "privacy_pending", "delivery_id": identifier})


def _not_accepted(source: str, settings: Settings) -> Reply:
    known = "" if source in SOURCES else " and is not a platform this service knows"
    message = (f"This project does not accept {source} webhooks{known}. It accepts: "
               f"{', '.join(settings.accepted_platforms)}, as set by integration/mapping.yaml.")
    return Reply(404, {"error": "platform_not_accepted", "message": message,
                       "accepted": list(settings.accepted_platforms)})


def _too_large(source: str, label: str, limit: int) -> Reply:
    metrics.count_delivery(source, label, "too_large")
    log.warning("webhook body too large",
                extra={"source": source, "topic": label, "max_body_bytes": limit})
    return Reply(413, {"error": "body_too_large", "max_body_bytes": limit})


def _store_failed(source: str, label: str, identifier: str, error: BaseException) -> Reply:
    # Respond with 503, never 2xx, when the delivery could not be stored. The
    # platform then retries it, while a 2xx would drop it for good.
    metrics.ENQUEUE_FAILURES.labels(source=source).inc()
    log.error("queue write failed, responded with 503",
              extra={"delivery_id": identifier, "source": source, "topic": label,
                     "error": repr(error)})
    return Reply(503, {"error": "queue_unavailable",
                       "message": "The delivery could not be stored; retry later."})


def _verify(source: str, body: bytes, headers: Mapping[str, str], settings: Settings,
            now: float) -> Verification:
    secrets = settings.webhook_secrets(source)
    if source == "shopify":
        return verify_shopify(body, headers, secrets)
    if source == "woocommerce":
        return verify_woocommerce(body, headers, secrets)
    tolerance = settings.storefront_timestamp_tolerance_seconds
    return verify_standard_webhooks(body, headers, secrets, now=now, tolerance_seconds=tolerance)


# --- Storing a delivery that is not queued ------------------------------------------------


def _quarantine_once(services: IntakeServices, inspection: Inspection, key: str,
                     now: float) -> int | None:
    """Claim the dedupe key, then quarantine; return the entry's id, or None for a duplicate.

    Raises:
        One of ``QUEUE_ERRORS``: nothing was stored and the claim was released.
    """
    delivery = inspection.delivery
    if not services.dedupe.claim(key, now):
        return None
    try:
        entry = services.quarantine.add(delivery, inspection.problem or "",
                                        raw_body=inspection.raw_body)
    except BaseException:
        _release_quietly(services.dedupe, key, delivery.delivery_id)
        raise
    _confirm_quietly(services.dedupe, key, now, delivery.delivery_id)
    return entry


def _confirm_quietly(dedupe: DedupeStore, key: str, now: float, identifier: str) -> None:
    try:
        dedupe.confirm(key, now)
    except QUEUE_ERRORS:
        # The delivery is stored, so the answer stays 2xx. The pending claim still
        # blocks copies for a while, and a later copy is stored again at worst.
        log.warning("dedupe confirm failed", exc_info=True, extra={"delivery_id": identifier})


def _release_quietly(dedupe: DedupeStore, key: str, identifier: str) -> None:
    try:
        dedupe.release(key)
    except QUEUE_ERRORS:
        log.warning("dedupe release failed; the platform's retry is accepted once the claim "
                    "expires", exc_info=True, extra={"delivery_id": identifier})


# --- Health, readiness and metrics ----------------------------------------------------


async def _healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def _readyz_endpoint(services: IntakeServices) -> Callable[[Request], Any]:
    # Readiness covers only what the intake needs to accept a webhook. A stopped
    # flusher does not stop the intake from queueing durably, and failing readiness
    # for it would make the load balancer reject webhooks, which the stores count as
    # failed deliveries. The flusher's state and its CRM pause are reported here and by
    # /readyz/sync.
    async def readyz(request: Request) -> Response:
        checks = await run_in_threadpool(_run_checks, services)
        sync = await run_in_threadpool(_run_sync_checks, services)
        ready = all(result == "ok" for result in checks.values())
        if not ready:
            log.warning("not ready", extra={"checks": checks})
        body: dict[str, Any] = {"status": "ready" if ready else "not_ready", "checks": checks}
        if sync:
            body["sync"] = sync
        pause = await run_in_threadpool(_crm_pause, services)
        if pause is not None:
            body["crm_pause"] = pause
        # Whether reconciliation and the subscription check run; never fails readiness.
        store_jobs = jobs_status(services.settings)
        if store_jobs:
            body["store_jobs"] = store_jobs
        return JSONResponse(body, status_code=200 if ready else 503)

    return readyz


def _sync_readyz_endpoint(services: IntakeServices) -> Callable[[Request], Any]:
    # For monitoring: 503 while records wait for a flusher that is not running. A CRM
    # pause is reported but keeps 200, because the flusher runs and resumes by itself.
    async def sync_readyz(request: Request) -> Response:
        sync = await run_in_threadpool(_run_sync_checks, services)
        ready = all(result == "ok" for result in sync.values())
        if not ready:
            log.warning("sync not ready", extra={"checks": sync})
        body: dict[str, Any] = {"status": "ready" if ready else "not_ready", "checks": sync}
        pause = await run_in_threadpool(_crm_pause, services)
        if pause is not None:
            body["crm_pause"] = pause
        return JSONResponse(body, status_code=200 if ready else 503)

    return sync_readyz


def _run_checks(services: IntakeServices) -> dict[str, str]:
    return _run({
        "queue": services.queue.check,
        "dedupe": services.dedupe.check,
        "quarantine": services.quarantine.check,
    })


def _run_sync_checks(services: IntakeServices) -> dict[str, str]:
    if services.flusher is None:
        return {}
    return _run({"flusher": services.flusher.check})


def _crm_pause(services: IntakeServices) -> dict[str, Any] | None:
    """Return the flusher's CRM pause for a readiness body, or None without a flusher."""
    if services.flusher is None or services.snapshots is None:
        return None
    try:
        snapshots = services.snapshots.read()
    except Exception as error:  # a broken backend is reported, never a readiness failure
        log.warning("CRM pause could not be read", extra={"error": repr(error)})
        return {"paused": None, "error": f"{type(error).__name__}: {error}"}
    return pause_status(snapshots, services.settings.crm_target, services.clock())


def _run(checks: dict[str, Callable[[], None]]) -> dict[str, str]:
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
