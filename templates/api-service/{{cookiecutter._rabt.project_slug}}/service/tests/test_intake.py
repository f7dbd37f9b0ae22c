"""The intake under a real uvicorn server: signatures, limits, dedupe, quarantine, health.

Tests that touch the queue run on both backends: the SQLite file and Redis.
"""

from __future__ import annotations

import io
import json
import logging
import shutil
import sqlite3
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from conftest import RunningIntake
from intake_support import (
    SAMPLE_EMAIL,
    SAMPLE_FIRST_NAME,
    SAMPLE_LAST_NAME,
    SAMPLE_PHONE,
    SHOPIFY_ROTATED_SECRET,
    SHOPIFY_SECRET,
    STOREFRONT_KEY,
    WOOCOMMERCE_SECRET,
    RecordingHandler,
    encode_body,
    hex_signature,
    sample_order,
    sample_value,
    shopify_headers,
    storefront_headers,
    woocommerce_headers,
)
from storesync import logs
from storesync.db import Database
from storesync.privacy import PrivacyRequests, StoredPrivacyRequest
from storesync.settings import Settings
from storesync.signatures import hmac_sha256_base64

Start = Callable[..., RunningIntake]
MakeSettings = Callable[..., Settings]


@pytest.fixture
def shopify(make_settings: MakeSettings, start_intake: Start,
            backend_env: dict[str, str]) -> RunningIntake:
    return start_intake(make_settings("shopify", **backend_env))


@pytest.fixture
def shopify_sqlite(make_settings: MakeSettings, start_intake: Start) -> RunningIntake:
    return start_intake(make_settings("shopify"))


class SteppedClock:
    """A clock the test moves by hand."""

    def __init__(self, start: float = 1_772_560_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


# --- Signatures through HTTP -----------------------------------------------------------


def test_shopify_right_secret_queued(shopify: RunningIntake) -> None:
    body = encode_body(sample_order())
    response = shopify.post("shopify", body, shopify_headers(body))
    assert response.status_code == 200
    assert response.json() == {"status": "queued", "delivery_id": "evt-1"}
    assert shopify.depth() == 1


def test_shopify_rotated_secret_queued(shopify: RunningIntake) -> None:
    body = encode_body(sample_order())
    response = shopify.post("shopify", body, shopify_headers(body, secret=SHOPIFY_ROTATED_SECRET))
    assert response.status_code == 200
    assert shopify.depth() == 1


def test_shopify_hex_signature_rejected(shopify_sqlite: RunningIntake) -> None:
    body = encode_body(sample_order())
    headers = shopify_headers(body)
    headers["X-Shopify-Hmac-Sha256"] = hex_signature(SHOPIFY_SECRET, body)
    response = shopify_sqlite.post("shopify", body, headers)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_signature"
    assert shopify_sqlite.depth() == 0


def test_reserialised_body_rejected(shopify_sqlite: RunningIntake) -> None:
    # The sender signed its bytes; a proxy that parses and re-dumps the JSON changes them.
    sent = encode_body(sample_order())
    redumped = json.dumps(json.loads(sent)).encode()
    assert redumped != sent
    response = shopify_sqlite.post("shopify", redumped, shopify_headers(sent))
    assert response.status_code == 401
    assert shopify_sqlite.depth() == 0


def test_unicode_normalised_body_rejected(shopify_sqlite: RunningIntake) -> None:
    order = sample_order()
    order["customer"]["first_name"] = "أحمد"
    sent = encode_body(order)
    normalised = unicodedata.normalize("NFD", sent.decode()).encode()
    assert normalised != sent
    response = shopify_sqlite.post("shopify", normalised, shopify_headers(sent))
    assert response.status_code == 401
    assert shopify_sqlite.depth() == 0


def test_unknown_secret_rejected(shopify_sqlite: RunningIntake) -> None:
    body = encode_body(sample_order())
    response = shopify_sqlite.post("shopify", body,
                                   shopify_headers(body, secret="another-secret-not-real"))
    assert response.status_code == 401
    assert shopify_sqlite.depth() == 0


def test_missing_signature_rejected(shopify_sqlite: RunningIntake) -> None:
    body = encode_body(sample_order())
    headers = shopify_headers(body)
    del headers["X-Shopify-Hmac-Sha256"]
    response = shopify_sqlite.post("shopify", body, headers)
    assert response.status_code == 401
    assert "missing X-Shopify-Hmac-Sha256" in response.json()["reason"]


@pytest.mark.parametrize("case", [str.lower, str.upper])
def test_header_names_any_case(shopify_sqlite: RunningIntake,
                               case: Callable[[str], str]) -> None:
    body = encode_body(sample_order())
    headers = {case(name): value for name, value in shopify_headers(body).items()}
    response = shopify_sqlite.post("shopify", body, headers)
    assert response.status_code == 200
    assert response.json()["status"] == "queued"


# --- WooCommerce -------------------------------------------------------------------------


def test_woocommerce_signed_queued(make_settings: MakeSettings, start_intake: Start,
                                   backend_env: dict[str, str]) -> None:
    intake = start_intake(make_settings("woocommerce", **backend_env))
    # WordPress escapes "/" and writes Arabic as \uXXXX; the signature covers those bytes.
    body = (b'{"id":5101,"status":"processing",'
            b'"billing":{"first_name":"\\u0633\\u0627\\u0631\\u0629"},'
            b'"payment_url":"https:\\/\\/test-store.example.com\\/pay"}')
    response = intake.post("woocommerce", body, woocommerce_headers(body))
    assert response.status_code == 200
    assert response.json() == {"status": "queued", "delivery_id": "wc-delivery-1"}
    assert intake.depth() == 1


def test_woocommerce_ping_not_queued(make_settings: MakeSettings, start_intake: Start) -> None:
    intake = start_intake(make_settings("woocommerce"))
    response = intake.post("woocommerce", b"webhook_id=12",
                           {"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 200
    assert response.json() == {"status": "ping"}
    assert intake.depth() == 0


def test_woocommerce_wrong_secret_rejected(make_settings: MakeSettings,
                                           start_intake: Start) -> None:
    intake = start_intake(make_settings("woocommerce"))
    body = encode_body({"id": 5101})
    response = intake.post("woocommerce", body,
                           woocommerce_headers(body, secret="another-secret-not-real"))
    assert response.status_code == 401
    assert intake.depth() == 0


# --- Storefront (Standard Webhooks) -----------------------------------------------------


@pytest.fixture
def storefront(make_settings: MakeSettings, start_intake: Start) -> Iterator[RunningIntake]:
    yield start_intake(make_settings("headless"), clock=SteppedClock())


def _cart_event() -> bytes:
    return encode_body({"event": "add_to_cart", "event_id": "evt_test_0001",
                        "customer": {"email": SAMPLE_EMAIL}})


def test_storefront_signed_queued(storefront: RunningIntake) -> None:
    body = _cart_event()
    headers = storefront_headers(body, timestamp=int(SteppedClock().now))
    response = storefront.post("storefront", body, headers)
    assert response.status_code == 200
    assert response.json() == {"status": "queued", "delivery_id": "msg_1"}


def test_storefront_multiple_signatures(storefront: RunningIntake) -> None:
    body = _cart_event()
    old_key = b"test-old-storefront-key-not-real"
    now = int(SteppedClock().now)
    stale = storefront_headers(body, key=old_key, timestamp=now)["webhook-signature"]
    headers = storefront_headers(body, timestamp=now,
                                 extra_signatures=(stale, "v1a,bm90LWNoZWNrZWQ="))
    assert len(headers["webhook-signature"].split(" ")) == 3
    response = storefront.post("storefront", body, headers)
    assert response.status_code == 200


@pytest.mark.parametrize(("offset", "words"), [(-301, "older than"), (301, "in the future")])
def test_storefront_timestamp_outside_tolerance(storefront: RunningIntake, offset: int,
                                                words: str) -> None:
    body = _cart_event()
    headers = storefront_headers(body, timestamp=int(SteppedClock().now) + offset)
    response = storefront.post("storefront", body, headers)
    assert response.status_code == 401
    assert words in response.json()["reason"]
    assert storefront.depth() == 0


@pytest.mark.parametrize("offset", [-299, 299])
def test_storefront_timestamp_inside_tolerance(storefront: RunningIntake, offset: int) -> None:
    body = _cart_event()
    headers = storefront_headers(body, timestamp=int(SteppedClock().now) + offset)
    assert storefront.post("storefront", body, headers).status_code == 200


def test_storefront_delivery_fields(storefront: RunningIntake) -> None:
    body = _cart_event()
    now = int(SteppedClock().now)
    storefront.post("storefront", body, storefront_headers(body, timestamp=now))
    queue = storefront.services.queue.huey
    queue.execute(queue.dequeue())
    delivery = storefront.handler.deliveries[0]
    assert delivery.topic == "add_to_cart"
    assert delivery.shop == "test-store"
    assert delivery.triggered_at == "2026-03-03T17:46:40.000Z"
    assert delivery.received_at == delivery.triggered_at
    assert delivery.body == body.decode()


# --- Limits and platforms ------------------------------------------------------------------


def test_body_too_large_declared(make_settings: MakeSettings, start_intake: Start) -> None:
    intake = start_intake(make_settings("shopify", MAX_BODY_BYTES="2048"))
    body = b"x" * 5000
    response = intake.post("shopify", body, shopify_headers(body))
    assert response.status_code == 413
    assert response.json() == {"error": "body_too_large", "max_body_bytes": 2048}
    assert intake.depth() == 0


def test_body_too_large_streamed(make_settings: MakeSettings, start_intake: Start) -> None:
    intake = start_intake(make_settings("shopify", MAX_BODY_BYTES="2048"))
    sent: list[int] = []

    def chunks() -> Iterator[bytes]:
        for _ in range(50):
            sent.append(1)
            yield b"x" * 1000

    # A generator body goes out chunked, with no Content-Length to check up front.
    response = intake.client.post("/webhooks/shopify", content=chunks(),
                                  headers=shopify_headers(b""))
    assert response.status_code == 413
    assert intake.depth() == 0


def test_body_at_limit_accepted(make_settings: MakeSettings, start_intake: Start) -> None:
    intake = start_intake(make_settings("shopify", MAX_BODY_BYTES="2048"))
    order = sample_order()
    order["note"] = ""
    padding = 2048 - len(encode_body(order))
    order["note"] = "n" * padding
    body = encode_body(order)
    assert len(body) == 2048
    assert intake.post("shopify", body, shopify_headers(body)).status_code == 200


def test_platform_not_accepted_404(make_settings: MakeSettings, start_intake: Start) -> None:
    intake = start_intake(make_settings("headless"))
    body = encode_body(sample_order())
    response = intake.post("shopify", body, shopify_headers(body))
    assert response.status_code == 404
    data = response.json()
    assert data["error"] == "platform_not_accepted"
    assert data["accepted"] == ["storefront"]
    assert "integration/mapping.yaml" in data["message"]


def test_unknown_platform_404(shopify_sqlite: RunningIntake) -> None:
    response = shopify_sqlite.post("magento", b"{}", {})
    assert response.status_code == 404
    assert "not a platform this service knows" in response.json()["message"]


# --- Dedupe ---------------------------------------------------------------------------------


def test_duplicate_gets_200(shopify: RunningIntake) -> None:
    body = encode_body(sample_order())
    first = shopify.post("shopify", body, shopify_headers(body))
    second = shopify.post("shopify", body, shopify_headers(body))
    assert first.json()["status"] == "queued"
    assert second.status_code == 200
    assert second.json()["status"] == "duplicate"
    assert shopify.depth() == 1


def test_concurrent_duplicates_one_enqueue(shopify: RunningIntake) -> None:
    body = encode_body(sample_order())
    headers = shopify_headers(body, event_id="evt-concurrent")
    barrier = threading.Barrier(20)
    statuses: list[str] = []
    lock = threading.Lock()

    def post() -> None:
        with httpx.Client(base_url=shopify.base_url, timeout=30) as client:
            barrier.wait()
            response = client.post("/webhooks/shopify", content=body, headers=headers)
        with lock:
            statuses.append(f"{response.status_code} {response.json()['status']}")

    threads = [threading.Thread(target=post) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses.count("200 queued") == 1
    assert statuses.count("200 duplicate") == 19
    assert shopify.depth() == 1


def test_dedupe_window_expiry(make_settings: MakeSettings, start_intake: Start) -> None:
    clock = SteppedClock()
    intake = start_intake(make_settings("shopify", DEDUP_WINDOW_HOURS="72"), clock=clock)
    body = encode_body(sample_order())
    assert intake.post("shopify", body, shopify_headers(body)).json()["status"] == "queued"
    clock.now += 71 * 3600
    assert intake.post("shopify", body, shopify_headers(body)).json()["status"] == "duplicate"
    clock.now += 2 * 3600
    assert intake.post("shopify", body, shopify_headers(body)).json()["status"] == "queued"
    assert intake.depth() == 2


def test_missing_delivery_id_uses_body_digest(shopify_sqlite: RunningIntake) -> None:
    body = encode_body(sample_order())
    headers = shopify_headers(body)
    del headers["X-Shopify-Event-Id"]
    del headers["X-Shopify-Webhook-Id"]
    response = shopify_sqlite.post("shopify", body, headers)
    assert response.json()["delivery_id"].startswith("sha256:")
    assert shopify_sqlite.post("shopify", body, headers).json()["status"] == "duplicate"


def test_webhook_id_used_without_event_id(shopify_sqlite: RunningIntake) -> None:
    body = encode_body(sample_order())
    headers = shopify_headers(body, event_id="evt-9")
    del headers["X-Shopify-Event-Id"]
    assert shopify_sqlite.post("shopify", body, headers).json()["delivery_id"] == "webhook-evt-9"


# --- Quarantine -----------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "topic", "reason"), [
    (b'{"id": 1,', "orders/create", "the body is not a JSON object"),
    (b"[1, 2]", "orders/create", "the body is a JSON array, not an object"),
    (b" \r\n", "orders/create", "the body is empty, not a JSON object"),
    (b"\xff\xfe{}", "orders/create", "the body is not valid UTF-8"),
    (b'{"id": 1}', "orders/delete", "topic 'orders/delete' is not one this service maps"),
])
def test_unprocessable_quarantined(make_settings: MakeSettings, start_intake: Start,
                                   backend_env: dict[str, str], body: bytes, topic: str,
                                   reason: str) -> None:
    intake = start_intake(make_settings("shopify", **backend_env))
    response = intake.post("shopify", body, shopify_headers(body, topic=topic))
    assert response.status_code == 200
    assert response.json()["status"] == "quarantined"
    assert intake.depth() == 0
    entries = intake.services.quarantine.entries()
    assert len(entries) == 1
    assert entries[0].reason.startswith(reason)
    assert entries[0].topic == topic
    stored = intake.services.quarantine.get(entries[0].id)
    assert stored is not None
    assert stored.body == body


def test_object_shaped_body_not_parsed(shopify_sqlite: RunningIntake) -> None:
    # The intake checks only the shape; the worker parses and quarantines invalid JSON.
    body = b'{"id": 1, oops}'
    response = shopify_sqlite.post("shopify", body, shopify_headers(body))
    assert response.json()["status"] == "queued"
    assert shopify_sqlite.services.quarantine.entries() == []


def test_storefront_invalid_json_quarantined(storefront: RunningIntake) -> None:
    body = b'{"event": "purchase_completed",'
    response = storefront.post("storefront", body,
                               storefront_headers(body, timestamp=int(SteppedClock().now)))
    assert response.json()["status"] == "quarantined"
    assert storefront.services.quarantine.entries()[0].reason == "the body is not valid JSON"


def test_missing_topic_quarantined(shopify_sqlite: RunningIntake) -> None:
    body = encode_body(sample_order())
    headers = shopify_headers(body)
    del headers["X-Shopify-Topic"]
    assert shopify_sqlite.post("shopify", body, headers).json()["status"] == "quarantined"
    entry = shopify_sqlite.services.quarantine.entries()[0]
    assert entry.reason == "no topic: the X-Shopify-Topic header is missing"


def test_storefront_without_event_quarantined(storefront: RunningIntake) -> None:
    body = encode_body({"event_id": "evt_1"})
    response = storefront.post("storefront", body,
                               storefront_headers(body, timestamp=int(SteppedClock().now)))
    assert response.json()["status"] == "quarantined"
    entry = storefront.services.quarantine.entries()[0]
    assert entry.reason == "no topic: the body's event field is missing"


# --- Queue failures and the worker step --------------------------------------------------


class FailingQueue:
    """A queue whose writes fail like a full or missing disk, until ``healed`` is set."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.healed = False

    async def enqueue_once_async(self, delivery: Any, key: str, now: float) -> bool:
        if not self.healed:
            raise sqlite3.OperationalError("disk I/O error")
        return bool(await self.real.enqueue_once_async(delivery, key, now))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


def test_queue_failure_returns_503(make_settings: MakeSettings, start_intake: Start) -> None:
    from storesync.queue import build_queue

    settings = make_settings("shopify")
    queue = FailingQueue(build_queue(settings, handler=RecordingHandler()))
    intake = start_intake(settings, queue=queue)
    body = encode_body(sample_order())
    response = intake.post("shopify", body, shopify_headers(body))
    assert response.status_code == 503
    assert response.json()["error"] == "queue_unavailable"
    # Nothing was remembered, so the platform's retry is queued, not taken for a duplicate.
    queue.healed = True
    retry = intake.post("shopify", body, shopify_headers(body))
    assert retry.json()["status"] == "queued"
    queue.real.close()


def test_worker_step_gets_same_bytes(shopify: RunningIntake) -> None:
    body = encode_body(sample_order())
    shopify.post("shopify", body, shopify_headers(body))
    queue = shopify.services.queue.huey
    task = queue.dequeue()
    assert task is not None
    assert queue.execute(task) == "synced_later"
    delivery = shopify.handler.deliveries[0]
    assert delivery.body.encode() == body
    assert delivery.delivery_id == "evt-1"
    assert delivery.topic == "orders/create"
    assert delivery.shop == "test-store.myshopify.com"
    assert delivery.triggered_at == "2026-03-03T18:10:00.000Z"
    assert shopify.depth() == 0


def test_failed_job_retried_then_quarantined(make_settings: MakeSettings,
                                             start_intake: Start) -> None:
    handler = RecordingHandler(error=RuntimeError("state file locked"))
    intake = start_intake(make_settings("shopify"), handler=handler)
    body = encode_body(sample_order())
    intake.post("shopify", body, shopify_headers(body))
    queue = intake.services.queue.huey
    queue.execute(queue.dequeue())
    assert queue.scheduled_count() == 1
    # The last attempt runs with no retries left; its failure goes to the quarantine.
    task = queue.scheduled()[0]
    assert task.retries == 2
    task.retries = 0
    # Run it at its retry time, which the queue sets TASK_RETRY_DELAY_SECONDS ahead.
    assert queue.execute(task, timestamp=task.eta) == "failed"
    entry = intake.services.quarantine.entries()[0]
    assert entry.reason == ("worker failed after 4 attempts: RuntimeError: state file locked")
    assert entry.delivery_id == "evt-1"


# --- Health, readiness, metrics ------------------------------------------------------------


def test_healthz_ok(shopify_sqlite: RunningIntake) -> None:
    response = shopify_sqlite.client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_ok(shopify: RunningIntake) -> None:
    response = shopify.client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"queue": "ok", "dedupe": "ok", "quarantine": "ok"}
    if shopify.services.settings.crm_target in ("hubspot", "zoho"):
        # An empty outbox needs no flusher, so the heartbeat check passes.
        assert response.json()["sync"] == {"flusher": "ok"}
        assert shopify.client.get("/readyz/sync").status_code == 200
        assert response.json()["crm_pause"] == {"paused": False}
    else:
        assert "crm_pause" not in response.json()


def test_readyz_queue_unwritable(shopify_sqlite: RunningIntake) -> None:
    data_dir = shopify_sqlite.services.settings.data_dir
    shutil.rmtree(data_dir)
    data_dir.write_text("not a folder")  # the queue and state paths now lead nowhere
    response = shopify_sqlite.client.get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["queue"] != "ok"
    assert checks["quarantine"] != "ok"


def test_readyz_redis_down(make_settings: MakeSettings, start_intake: Start) -> None:
    from storesync.queue import build_queue

    # Nothing listens on port 1 of 127.0.0.1, so every Redis call is refused.
    settings = make_settings("shopify", REDIS_URL="redis://127.0.0.1:1/0")
    intake = start_intake(settings, queue=build_queue(settings, handler=RecordingHandler()))
    response = intake.client.get("/readyz")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert "ConnectionError" in checks["queue"]
    assert "ConnectionError" in checks["dedupe"]


def test_redis_down_answers_503(make_settings: MakeSettings, start_intake: Start) -> None:
    settings = make_settings("shopify", REDIS_URL="redis://127.0.0.1:1/0")
    intake = start_intake(settings)
    body = encode_body(sample_order())
    assert intake.post("shopify", body, shopify_headers(body)).status_code == 503


def _deliveries(outcome: str, topic: str = "orders/create") -> float:
    return sample_value(REGISTRY, "storesync_deliveries_total",
                        {"source": "shopify", "topic": topic, "outcome": outcome})


def test_metrics_after_requests(shopify_sqlite: RunningIntake) -> None:
    outcomes = ("received", "verified", "rejected", "duplicate", "quarantined")
    before = {outcome: _deliveries(outcome) for outcome in outcomes}
    other_before = _deliveries("quarantined", "other")
    body = encode_body(sample_order())
    shopify_sqlite.post("shopify", body, shopify_headers(body))
    shopify_sqlite.post("shopify", body, shopify_headers(body))
    shopify_sqlite.post("shopify", body, shopify_headers(body, secret="wrong-secret-not-real"))
    shopify_sqlite.post("shopify", b"[]", shopify_headers(b"[]", event_id="evt-2"))
    shopify_sqlite.post("shopify", body, shopify_headers(body, topic="orders/delete",
                                                         event_id="evt-3"))
    after = {outcome: _deliveries(outcome) - before[outcome] for outcome in outcomes}
    assert after == {"received": 4, "verified": 3, "rejected": 1, "duplicate": 1,
                     "quarantined": 1}
    assert _deliveries("quarantined", "other") - other_before == 1
    text = shopify_sqlite.client.get("/metrics").text
    assert "storesync_queue_depth 1.0" in text
    assert "storesync_jobs_total" in text or "storesync_jobs_created" in text


# --- Logs ---------------------------------------------------------------------------------


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    import logging

    stream = io.StringIO()
    handler = logs.configure_logging("DEBUG", stream)
    yield stream
    logging.getLogger().removeHandler(handler)


def test_logs_free_of_pii_and_secrets(shopify_sqlite: RunningIntake,
                                      captured_logs: io.StringIO) -> None:
    body = encode_body(sample_order())
    shopify_sqlite.post("shopify", body, shopify_headers(body))
    shopify_sqlite.post("shopify", body, shopify_headers(body, secret="wrong-secret-not-real"))
    shopify_sqlite.post("shopify", body, shopify_headers(body, topic="orders/delete",
                                                         event_id="evt-2"))
    broken = body[:-1]
    shopify_sqlite.post("shopify", broken, shopify_headers(broken, event_id="evt-3"))
    queue = shopify_sqlite.services.queue.huey
    queue.execute(queue.dequeue())
    text = captured_logs.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    assert len(lines) >= 4
    for forbidden in (SAMPLE_EMAIL, SAMPLE_PHONE, SAMPLE_FIRST_NAME, SAMPLE_LAST_NAME,
                      SHOPIFY_SECRET, SHOPIFY_ROTATED_SECRET, WOOCOMMERCE_SECRET,
                      hmac_sha256_base64(SHOPIFY_SECRET.encode(), body)):
        assert forbidden not in text, forbidden
    assert STOREFRONT_KEY.decode() not in text
    messages = {line["message"] for line in lines}
    assert "webhook queued" in messages
    assert "webhook rejected" in messages
    assert "webhook quarantined" in messages


def test_log_line_carries_ids(shopify_sqlite: RunningIntake,
                              captured_logs: io.StringIO) -> None:
    body = encode_body(sample_order())
    shopify_sqlite.post("shopify", body, shopify_headers(body))
    lines = [json.loads(line) for line in captured_logs.getvalue().splitlines()]
    queued = next(line for line in lines if line["message"] == "webhook queued")
    assert queued["delivery_id"] == "evt-1"
    assert queued["source"] == "shopify"
    assert queued["topic"] == "orders/create"
    assert queued["level"] == "DEBUG"
    assert time.strptime(queued["time"][:19], "%Y-%m-%dT%H:%M:%S")


def test_quarantine_logged_once(shopify_sqlite: RunningIntake,
                                caplog: pytest.LogCaptureFixture) -> None:
    body = encode_body(sample_order())
    headers = shopify_headers(body, topic="orders/delete", event_id="evt-once")
    with caplog.at_level(logging.INFO):
        response = shopify_sqlite.post("shopify", body, headers)
    assert response.json()["status"] == "quarantined"
    entry = shopify_sqlite.services.quarantine.entries()[0]
    about_delivery = [record for record in caplog.records
                      if getattr(record, "delivery_id", None) == "evt-once"
                      and record.levelno >= logging.INFO]
    assert [record.getMessage() for record in about_delivery] == ["webhook quarantined"]
    assert getattr(about_delivery[0], "quarantine_id", None) == entry.id


# --- Shopify privacy topics -----------------------------------------------------------------


PRIVACY_BODIES: dict[str, dict[str, Any]] = {
    "customers/redact": {
        "shop_id": 954889, "shop_domain": "test-store.myshopify.com",
        "customer": {"id": 191167, "email": SAMPLE_EMAIL, "phone": SAMPLE_PHONE},
        "orders_to_redact": [299938, 280263]},
    "customers/data_request": {
        "shop_id": 954889, "shop_domain": "test-store.myshopify.com",
        "orders_requested": [299938],
        "customer": {"id": 191167, "email": SAMPLE_EMAIL, "phone": SAMPLE_PHONE},
        "data_request": {"id": 9999}},
    "shop/redact": {"shop_id": 954889, "shop_domain": "test-store.myshopify.com"},
}
PRIVACY_IDS = {
    "customers/redact": ("954889", "191167", ("299938", "280263"), None),
    "customers/data_request": ("954889", "191167", ("299938",), "9999"),
    "shop/redact": ("954889", None, (), None),
}


def _stored_bytes(settings: Settings) -> bytes:
    files = sorted(settings.data_dir.glob("*.sqlite3*"))
    assert files
    return b"".join(path.read_bytes() for path in files)


def _run_privacy_job(intake: RunningIntake) -> list[StoredPrivacyRequest]:
    """Run the one queued job as a worker would; return the pending privacy requests."""
    queue = intake.services.queue.huey
    task = queue.dequeue()
    assert task is not None
    assert queue.execute(task) == "privacy_stored"
    assert intake.handler.deliveries == []
    requests = PrivacyRequests(Database(intake.services.settings.state_path))
    try:
        return requests.pending()
    finally:
        requests.database.close()


@pytest.mark.parametrize("topic", sorted(PRIVACY_BODIES))
def test_privacy_topic_queued_without_pii(make_settings: MakeSettings, start_intake: Start,
                                          captured_logs: io.StringIO, topic: str) -> None:
    settings = make_settings("shopify")
    intake = start_intake(settings)
    body = encode_body(PRIVACY_BODIES[topic])
    response = intake.post("shopify", body, shopify_headers(body, topic=topic, event_id="evt-p1"))
    assert response.status_code == 200
    assert response.json() == {"status": "privacy_pending", "delivery_id": "evt-p1"}
    assert intake.depth() == 1
    assert intake.services.quarantine.entries() == []
    [stored] = _run_privacy_job(intake)
    request = stored.request
    assert (request.topic, request.shop) == (topic, "test-store.myshopify.com")
    assert (request.shop_id, request.customer_id, request.order_ids,
            request.data_request_id) == PRIVACY_IDS[topic]
    assert stored.delivery_id == "evt-p1"
    raw = _stored_bytes(settings)
    for value in (SAMPLE_EMAIL, SAMPLE_PHONE):
        assert value.encode() not in raw, value
        assert value not in captured_logs.getvalue(), value
    queued = [json.loads(line) for line in captured_logs.getvalue().splitlines()
              if "privacy request queued; the worker handles it" in line]
    assert len(queued) == 1
    assert queued[0]["level"] == "INFO"
    assert queued[0]["topic"] == topic
    kept = [json.loads(line) for line in captured_logs.getvalue().splitlines()
            if "privacy request stored for the privacy thread" in line]
    assert [line["privacy_request_id"] for line in kept] == [stored.id]


def test_privacy_topic_duplicate(shopify_sqlite: RunningIntake) -> None:
    body = encode_body(PRIVACY_BODIES["shop/redact"])
    headers = shopify_headers(body, topic="shop/redact", event_id="evt-p2")
    assert shopify_sqlite.post("shopify", body, headers).json()["status"] == "privacy_pending"
    assert shopify_sqlite.post("shopify", body, headers).json()["status"] == "duplicate"
    assert shopify_sqlite.depth() == 1


def test_privacy_job_run_twice_stores_once(shopify_sqlite: RunningIntake) -> None:
    body = encode_body(PRIVACY_BODIES["customers/redact"])
    headers = shopify_headers(body, topic="customers/redact", event_id="evt-p4")
    shopify_sqlite.post("shopify", body, headers)
    queue = shopify_sqlite.services.queue.huey
    task = queue.dequeue()
    assert task is not None
    # A worker that stopped before finishing the job leaves it to run again.
    assert queue.execute(task) == "privacy_stored"
    assert queue.execute(task) == "privacy_stored"
    requests = PrivacyRequests(Database(shopify_sqlite.services.settings.state_path))
    assert len(requests.listing()) == 1
    requests.database.close()


def test_privacy_topic_bad_signature_401(shopify_sqlite: RunningIntake) -> None:
    body = encode_body(PRIVACY_BODIES["customers/redact"])
    headers = shopify_headers(body, topic="customers/redact", secret="wrong-secret-not-real")
    response = shopify_sqlite.post("shopify", body, headers)
    assert response.status_code == 401
    assert shopify_sqlite.depth() == 0


def test_privacy_body_not_json_keeps_topic(shopify_sqlite: RunningIntake) -> None:
    body = b"customer=" + SAMPLE_EMAIL.encode()
    headers = shopify_headers(body, topic="customers/redact", event_id="evt-p3")
    assert shopify_sqlite.post("shopify", body, headers).json()["status"] == "privacy_pending"
    [stored] = _run_privacy_job(shopify_sqlite)
    assert stored.request.customer_id is None
    assert stored.request.order_ids == ()
    assert shopify_sqlite.services.quarantine.entries() == []
