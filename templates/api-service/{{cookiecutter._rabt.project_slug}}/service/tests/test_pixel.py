"""``POST /pixel/shopify`` under a real uvicorn server: queue, dedupe, limits, origins, CORS."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

from conftest import RunningIntake
from intake_support import encode_body, sample_value, write_spec
from storesync import logs
from storesync.runtime.engine import map_payload
from storesync.settings import Settings, SettingsError

Start = Callable[..., RunningIntake]
MakeSettings = Callable[..., Settings]

SHOP_ORIGIN = "https://pixel-test-store.myshopify.com"
BUYER_EMAIL = "Pixel.Buyer@Example.com"

# The event entity of a Shopify field map, with the fields the engine reads from a
# Web Pixels event.
EVENT_ENTITY = {
    "enabled": True,
    "object": "custom_behavioral_events",
    "fields": [
        {"name": "event_key", "source": "name", "target": "eventName",
         "transform": "event_key"},
        {"name": "event_id", "source": "id", "target": "properties.event_id",
         "transform": "id_text", "unique": True},
        {"name": "occurred_at", "source": "timestamp", "target": "occurredAt",
         "transform": "iso_datetime"},
        {"name": "customer_email", "source": "data.checkout.email", "target": "email",
         "transform": "email_lower"},
    ],
}


def write_pixel_spec(folder: Path, *, enabled: bool = True) -> Path:
    """Write a Shopify ``mapping.yaml`` with the event entity into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    mapping = {"version": 1, "crm": "hubspot", "platform": "shopify",
               "entities": {"event": {**EVENT_ENTITY, "enabled": enabled}}}
    (folder / "mapping.yaml").write_text(yaml.safe_dump(mapping), encoding="utf-8")
    return folder


def checkout_event(event_id: str = "sh-pixel-0001", name: str = "checkout_started") -> bytes:
    """Return a Web Pixels event body as the shipped pixel sends it."""
    return encode_body({
        "id": event_id,
        "name": name,
        "timestamp": "2026-03-03T18:10:00.000Z",
        "data": {"checkout": {"email": BUYER_EMAIL, "token": "cart-token-1",
                              "totalPrice": {"amount": 149.5, "currencyCode": "SAR"}}},
    })


@pytest.fixture
def pixel_settings(make_settings: MakeSettings, tmp_path: Path) -> Callable[..., Settings]:
    """Return a factory of settings for a Shopify project whose event entity is on."""

    def build(**environ: str) -> Settings:
        spec = write_pixel_spec(tmp_path / "spec-pixel")
        return make_settings("shopify", SPEC_DIR=str(spec), **environ)

    return build


@pytest.fixture
def pixel(pixel_settings: Callable[..., Settings], start_intake: Start,
          backend_env: dict[str, str]) -> RunningIntake:
    return start_intake(pixel_settings(**backend_env))


def post_event(intake: RunningIntake, body: bytes, **headers: str) -> Any:
    return intake.client.post("/pixel/shopify", content=body,
                              headers={"Content-Type": "application/json", **headers})


def pixel_count(topic: str, outcome: str) -> float:
    return sample_value(REGISTRY, "storesync_deliveries_total",
                        {"source": "shopify_pixel", "topic": topic, "outcome": outcome})


# --- Queueing and mapping ----------------------------------------------------------------


def test_pixel_event_queued(pixel: RunningIntake) -> None:
    response = post_event(pixel, checkout_event(), Origin=SHOP_ORIGIN)
    assert response.status_code == 202
    assert response.json() == {"status": "queued", "event_id": "sh-pixel-0001"}
    assert response.headers["access-control-allow-origin"] == "*"
    assert pixel.depth() == 1


def test_pixel_event_mapped_to_event(pixel: RunningIntake) -> None:
    body = checkout_event()
    post_event(pixel, body)
    queue = pixel.services.queue.huey
    assert queue.execute(queue.dequeue()) == "synced_later"
    delivery = pixel.handler.deliveries[0]
    assert delivery.source == "shopify"
    assert delivery.topic == "checkout_started"
    assert delivery.delivery_id == "sh-pixel-0001"
    assert delivery.shop == "test-store"
    assert delivery.triggered_at == "2026-03-03T18:10:00.000Z"
    assert delivery.body.encode() == body

    mapping = yaml.safe_load(pixel.services.settings.mapping_path.read_text(encoding="utf-8"))
    mapped = map_payload(mapping, delivery.source, delivery.topic, json.loads(delivery.body))
    assert mapped.problems == []
    assert [record.entity for record in mapped.records] == ["event"]
    record = mapped.records[0]
    assert record.object == "custom_behavioral_events"
    assert record.properties["properties.event_id"] == "sh-pixel-0001"
    assert record.properties["email"] == "pixel.buyer@example.com"
    assert record.identity == [("properties.event_id", "sh-pixel-0001")]
    assert record.properties["eventName"] == "ecom_checkout_started"
    assert record.properties["occurredAt"] == "2026-03-03T18:10:00+00:00"


def test_pixel_duplicate_not_queued(pixel: RunningIntake) -> None:
    before = pixel_count("checkout_started", "duplicate")
    first = post_event(pixel, checkout_event())
    second = post_event(pixel, checkout_event())
    assert first.json()["status"] == "queued"
    assert second.status_code == 202
    assert second.json() == {"status": "duplicate", "event_id": "sh-pixel-0001"}
    assert pixel.depth() == 1
    assert pixel_count("checkout_started", "duplicate") - before == 1


def test_pixel_other_name_ignored(pixel: RunningIntake) -> None:
    before = pixel_count("other", "ignored")
    response = post_event(pixel, checkout_event(name="product_viewed"))
    assert response.status_code == 202
    assert response.json() == {"status": "ignored", "event_id": "sh-pixel-0001"}
    assert pixel.depth() == 0
    assert pixel.services.quarantine.entries() == []
    assert pixel_count("other", "ignored") - before == 1


def test_pixel_ignored_id_not_claimed(pixel: RunningIntake) -> None:
    # An ignored event leaves no dedupe claim, so the same id can still be queued.
    post_event(pixel, checkout_event(name="product_viewed"))
    response = post_event(pixel, checkout_event())
    assert response.json()["status"] == "queued"


# --- Invalid requests ------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "reason"), [
    (b"{not json", "the body is not valid JSON"),
    (b"\xff\xfe", "the body is not valid UTF-8"),
    (b"[]", "the body is not a JSON object"),
    (b'{"name": "page_viewed"}', "the event has no 'id' string"),
    (b'{"id": "sh-1", "name": ""}', "the event has no 'name' string"),
    (b'{"id": 7, "name": "page_viewed"}', "the event has no 'id' string"),
    # Without a readable time the events table refuses the row, so it would become a
    # dead letter after a 202.
    (b'{"id": "sh-1", "name": "page_viewed"}', "the event has no 'timestamp' string"),
    (b'{"id": "sh-1", "name": "page_viewed", "timestamp": "yesterday"}',
     "the event's 'timestamp' is not an ISO 8601 time"),
], ids=["not-json", "not-utf8", "array", "no-id", "empty-name", "numeric-id", "no-timestamp",
        "bad-timestamp"])
def test_pixel_invalid_body_400(pixel: RunningIntake, body: bytes, reason: str) -> None:
    response = post_event(pixel, body)
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_event", "reason": reason}
    assert pixel.depth() == 0


def test_pixel_body_too_large_413(pixel_settings: Callable[..., Settings],
                                  start_intake: Start) -> None:
    intake = start_intake(pixel_settings(PIXEL_MAX_BODY_BYTES="1024"))
    body = checkout_event()
    padded = body[:-1] + b',"padding":"' + b"x" * 1024 + b'"}'
    before = pixel_count("other", "too_large")
    response = post_event(intake, padded)
    assert response.status_code == 413
    assert response.json() == {"error": "body_too_large", "max_body_bytes": 1024}
    assert intake.depth() == 0
    assert pixel_count("other", "too_large") - before == 1


def test_pixel_default_limit_16_kib(pixel: RunningIntake) -> None:
    assert pixel.services.settings.pixel_max_body_bytes == 16384
    response = post_event(pixel, b"{" + b" " * 16384 + b"}")
    assert response.status_code == 413


# --- Origins and CORS ----------------------------------------------------------------------


@pytest.fixture
def pixel_with_origins(pixel_settings: Callable[..., Settings],
                       start_intake: Start) -> RunningIntake:
    return start_intake(pixel_settings(PIXEL_ALLOWED_ORIGINS=f"{SHOP_ORIGIN}/, "
                                                            "https://shop.example.sa"))


def test_pixel_allowed_origin_queued(pixel_with_origins: RunningIntake) -> None:
    response = post_event(pixel_with_origins, checkout_event(), Origin=SHOP_ORIGIN)
    assert response.status_code == 202
    assert response.headers["access-control-allow-origin"] == SHOP_ORIGIN
    assert response.headers["vary"] == "Origin"


@pytest.mark.parametrize("headers", [{"Origin": "https://other.example.com"}, {}],
                         ids=["other-origin", "no-origin"])
def test_pixel_other_origin_403(pixel_with_origins: RunningIntake,
                                headers: dict[str, str]) -> None:
    response = post_event(pixel_with_origins, checkout_event(), **headers)
    assert response.status_code == 403
    assert response.json()["error"] == "origin_not_allowed"
    assert "access-control-allow-origin" not in response.headers
    assert pixel_with_origins.depth() == 0


def test_pixel_preflight_any_origin(pixel: RunningIntake) -> None:
    response = pixel.client.options("/pixel/shopify", headers={
        "Origin": SHOP_ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type"})
    assert response.status_code == 204
    assert response.content == b""
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["access-control-allow-methods"] == "POST"
    assert response.headers["access-control-allow-headers"] == "Content-Type"
    assert response.headers["access-control-max-age"] == "600"


def test_pixel_preflight_listed_origin(pixel_with_origins: RunningIntake) -> None:
    allowed = pixel_with_origins.client.options("/pixel/shopify", headers={"Origin": SHOP_ORIGIN})
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-origin"] == SHOP_ORIGIN
    rejected = pixel_with_origins.client.options(
        "/pixel/shopify", headers={"Origin": "https://other.example.com"})
    assert rejected.status_code == 403
    assert "access-control-allow-origin" not in rejected.headers


def test_pixel_get_not_allowed(pixel: RunningIntake) -> None:
    assert pixel.client.get("/pixel/shopify").status_code == 405


# --- Projects without the pixel ----------------------------------------------------------------


def test_pixel_woocommerce_project_404(make_settings: MakeSettings, start_intake: Start) -> None:
    intake = start_intake(make_settings("woocommerce"))
    assert intake.services.settings.pixel_enabled is False
    response = post_event(intake, checkout_event())
    assert response.status_code == 404
    assert response.json() == {
        "error": "pixel_not_enabled",
        "message": "This service does not take Shopify pixel events: Shopify is not a "
                   "platform of this project."}
    assert intake.depth() == 0


def test_pixel_event_entity_off_404(make_settings: MakeSettings, start_intake: Start,
                                    tmp_path: Path) -> None:
    spec = write_pixel_spec(tmp_path / "spec-off", enabled=False)
    intake = start_intake(make_settings("shopify", SPEC_DIR=str(spec)))
    response = post_event(intake, checkout_event())
    assert response.status_code == 404
    assert "the event entity is disabled" in response.json()["message"]


def test_pixel_without_event_entity_off(make_settings: MakeSettings, tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "spec-bare", "shopify")
    assert make_settings("shopify", SPEC_DIR=str(spec)).pixel_enabled is False


# --- Settings ------------------------------------------------------------------------------


def test_pixel_settings_invalid(pixel_settings: Callable[..., Settings]) -> None:
    with pytest.raises(SettingsError) as caught:
        pixel_settings(PIXEL_ALLOWED_ORIGINS="https://shop.example.sa/cart, *",
                       PIXEL_MAX_BODY_BYTES="10")
    assert [str(problem) for problem in caught.value.problems] == [
        "PIXEL_ALLOWED_ORIGINS: 'https://shop.example.sa/cart' is not an origin. Fix: list "
        "origins as scheme and host with no path, separated by commas, e.g. "
        "PIXEL_ALLOWED_ORIGINS=https://example-store.myshopify.com, or remove the setting to "
        "accept any origin.",
        "PIXEL_ALLOWED_ORIGINS: '*' is not an origin. Fix: list "
        "origins as scheme and host with no path, separated by commas, e.g. "
        "PIXEL_ALLOWED_ORIGINS=https://example-store.myshopify.com, or remove the setting to "
        "accept any origin.",
        "PIXEL_MAX_BODY_BYTES: 10 is outside the allowed range 1024 to 1048576. Fix: set "
        "PIXEL_MAX_BODY_BYTES to a whole number from 1024 to 1048576, e.g. "
        "PIXEL_MAX_BODY_BYTES=16384.",
    ]


def test_pixel_origins_normalised(pixel_settings: Callable[..., Settings]) -> None:
    settings = pixel_settings(PIXEL_ALLOWED_ORIGINS=" https://Shop.Example.SA/ ,,http://127.0.0.1:8080")
    assert settings.pixel_enabled is True
    assert settings.pixel_allowed_origins == ("https://shop.example.sa", "http://127.0.0.1:8080")


# --- Logs ----------------------------------------------------------------------------------


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logs.configure_logging("DEBUG", stream)
    yield stream
    logging.getLogger().removeHandler(handler)


def test_pixel_logs_free_of_email(pixel: RunningIntake, captured_logs: io.StringIO) -> None:
    post_event(pixel, checkout_event())
    post_event(pixel, checkout_event()[:-1])
    queue = pixel.services.queue.huey
    queue.execute(queue.dequeue())
    text = captured_logs.getvalue()
    assert "pixel event queued" in text
    assert "pixel event invalid" in text
    assert BUYER_EMAIL not in text
    assert BUYER_EMAIL.lower() not in text
