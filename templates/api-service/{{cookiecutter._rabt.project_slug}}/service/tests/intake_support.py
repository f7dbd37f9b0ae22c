"""Helpers for the intake tests: a real uvicorn server on loopback, signed requests, stubs."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import uvicorn
import yaml

from storesync.delivery import Delivery
from storesync.signatures import encode_standard_secret, hmac_sha256_base64, standard_signature

# Obvious placeholders; none of them is a real secret.
SHOPIFY_SECRET = "test-shopify-secret-not-real"
SHOPIFY_ROTATED_SECRET = "test-shopify-rotated-secret-not-real"
WOOCOMMERCE_SECRET = "test-woocommerce-secret-not-real"
STOREFRONT_KEY = b"test-storefront-key-not-real-0000"
STOREFRONT_SECRET = encode_standard_secret(STOREFRONT_KEY)

# Personal data of the sample order, searched for in log output.
SAMPLE_EMAIL = "sara.test@example.com"
SAMPLE_PHONE = "+966500000006"
SAMPLE_FIRST_NAME = "سارة"
SAMPLE_LAST_NAME = "العتيبي"


def sample_order(order_id: int = 820982911946154508) -> dict[str, Any]:
    """Return a small Shopify order body with an Arabic name, an email and a phone."""
    return {
        "id": order_id,
        "name": "#1001",
        "email": SAMPLE_EMAIL,
        "phone": SAMPLE_PHONE,
        "currency": "SAR",
        "total_price": "149.50",
        "updated_at": "2026-03-03T21:10:00+03:00",
        "customer": {"id": 115310627314723954, "email": SAMPLE_EMAIL, "phone": SAMPLE_PHONE,
                     "first_name": SAMPLE_FIRST_NAME, "last_name": SAMPLE_LAST_NAME},
        "line_items": [{"id": 1, "sku": "OUD-ROYAL-50", "quantity": 1, "price": "149.50",
                        "title": "عطر عود ملكي"}],
    }


def encode_body(data: Any) -> bytes:
    """Encode ``data`` as a platform would: compact JSON with raw UTF-8 Arabic."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def shopify_headers(body: bytes, *, secret: str = SHOPIFY_SECRET, topic: str = "orders/create",
                    event_id: str = "evt-1", shop: str = "test-store.myshopify.com"
                    ) -> dict[str, str]:
    """Return the headers of a Shopify delivery of ``body`` signed with ``secret``."""
    return {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Hmac-Sha256": hmac_sha256_base64(secret.encode(), body),
        "X-Shopify-Shop-Domain": shop,
        "X-Shopify-Event-Id": event_id,
        "X-Shopify-Webhook-Id": f"webhook-{event_id}",
        "X-Shopify-Triggered-At": "2026-03-03T18:10:00.000Z",
        "X-Shopify-API-Version": "2025-10",
    }


def woocommerce_headers(body: bytes, *, secret: str = WOOCOMMERCE_SECRET,
                        topic: str = "order.created", delivery_id: str = "wc-delivery-1"
                        ) -> dict[str, str]:
    """Return the headers of a WooCommerce delivery of ``body`` signed with ``secret``."""
    resource, _, event = topic.partition(".")
    return {
        "Content-Type": "application/json",
        "X-WC-Webhook-Source": "https://test-store.example.com/",
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": resource,
        "X-WC-Webhook-Event": event,
        "X-WC-Webhook-Signature": hmac_sha256_base64(secret.encode(), body),
        "X-WC-Webhook-ID": "12",
        "X-WC-Webhook-Delivery-ID": delivery_id,
    }


def storefront_headers(body: bytes, *, key: bytes = STOREFRONT_KEY, message_id: str = "msg_1",
                       timestamp: int | None = None, extra_signatures: tuple[str, ...] = ()
                       ) -> dict[str, str]:
    """Return Standard Webhooks headers for ``body``; ``extra_signatures`` come first."""
    when = int(time.time()) if timestamp is None else timestamp
    signature = standard_signature(key, message_id, when, body)
    return {
        "Content-Type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(when),
        "webhook-signature": " ".join((*extra_signatures, signature)),
    }


def hex_signature(secret: str, body: bytes) -> str:
    """Return the HMAC-SHA256 as hex, the form the platforms do not send."""
    digest = base64.b64decode(hmac_sha256_base64(secret.encode(), body))
    return digest.hex()


def write_spec(folder: Path, platform: str) -> Path:
    """Write a minimal ``mapping.yaml`` for ``platform`` into ``folder`` and return the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    mapping = {"version": 1, "crm": "hubspot", "platform": platform, "entities": {}}
    (folder / "mapping.yaml").write_text(yaml.safe_dump(mapping), encoding="utf-8")
    return folder


class RecordingHandler:
    """A job handler that records each delivery and returns a fixed outcome, or raises."""

    def __init__(self, outcome: str = "synced_later", error: Exception | None = None) -> None:
        self.outcome = outcome
        self.error = error
        self.deliveries: list[Delivery] = []
        self._lock = threading.Lock()

    def __call__(self, delivery: Delivery) -> str:
        with self._lock:
            self.deliveries.append(delivery)
        if self.error is not None:
            raise self.error
        return self.outcome


@contextmanager
def serve(app: Any) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free port of 127.0.0.1 in a thread; yield its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start within 10 seconds")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def sample_value(registry: Any, name: str, labels: Mapping[str, str]) -> float:
    """Return a metric sample's value, 0 when the series does not exist yet."""
    value = registry.get_sample_value(name, dict(labels))
    return float(value) if value is not None else 0.0
