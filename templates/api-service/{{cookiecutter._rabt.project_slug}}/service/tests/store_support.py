"""Fixtures of the store API tests: the Shopify and WooCommerce stand-ins under uvicorn,
store orders in each API's shape, and a queue that records what it accepted.

Every name, email and phone in the orders is made up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from intake_support import RecordingHandler, serve, write_spec
from storesync.db import Database
from storesync.delivery import Delivery
from storesync.queue import DeliveryQueue, build_queue
from storesync.record_keys import record_key, shop_part
from storesync.settings import Settings, load_settings
from storesync.standins.shopify import ShopifyStandinConfig, ShopifyState
from storesync.standins.shopify import create_app as create_shopify
from storesync.standins.woocommerce import WooStandinConfig, WooState
from storesync.standins.woocommerce import create_app as create_woocommerce
from storesync.tombstones import bury, create_table, customer_digests
from sync_support import SPEC_DIR

SHOP_DOMAIN = "demo-store.myshopify.com"
SHOPIFY_TOKEN = ShopifyStandinConfig.access_token
WOO_KEY = WooStandinConfig.consumer_key
WOO_SECRET = WooStandinConfig.consumer_secret


RECON_EMAIL = "reem.recon@example.com"
RECON_PHONE = "+966500000021"


def shopify_order(number: int, updated_at: str, *, email: str = RECON_EMAIL,
                  phone: str = RECON_PHONE, total: str = "199.0", created_at: str | None = None,
                  customer_id: int | None = None) -> dict[str, Any]:
    """Return an order node in Admin GraphQL form, for the stand-in's seed.

    The order is created at ``updated_at`` unless ``created_at`` is given; its customer
    is ``number + 500`` unless ``customer_id`` is given.
    """
    customer = number + 500 if customer_id is None else customer_id
    return {
        "legacyResourceId": str(number), "name": f"#{number}", "email": email,
        "createdAt": created_at or updated_at, "updatedAt": updated_at,
        "processedAt": created_at or updated_at,
        "displayFinancialStatus": "PAID", "currencyCode": "SAR",
        "totalPriceSet": {"shopMoney": {"amount": total, "currencyCode": "SAR"}},
        "customer": {"id": f"gid://shopify/Customer/{customer}",
                     "legacyResourceId": str(customer), "email": email, "phone": phone,
                     "firstName": "ريم", "lastName": "المطابقة"},
        "lineItems": {"nodes": [{
            "id": f"gid://shopify/LineItem/{number * 10}", "title": "Oud Royal 50 ml",
            "sku": "OUD-ROYAL-50", "quantity": 1,
            "originalUnitPriceSet": {"shopMoney": {"amount": total, "currencyCode": "SAR"}},
            "variant": {"legacyResourceId": str(number * 10 + 1)},
            "product": {"legacyResourceId": str(number * 10 + 2)}}]},
    }


def woocommerce_order(number: int, modified_gmt: str, *, email: str = RECON_EMAIL,
                      phone: str = RECON_PHONE, total: str = "199.00",
                      created_gmt: str | None = None,
                      customer_id: int | None = None) -> dict[str, Any]:
    """Return an order in REST v3 form, for the stand-in's seed (dates as for Shopify's)."""
    return {
        "id": number, "status": "processing", "total": total,
        "date_created_gmt": created_gmt or modified_gmt, "date_modified_gmt": modified_gmt,
        "customer_id": number + 500 if customer_id is None else customer_id,
        "billing": {"first_name": "ريم", "last_name": "المطابقة", "email": email,
                    "phone": phone, "city": "Jeddah"},
        "line_items": [{"id": number * 10, "name": "Oud Royal 50 ml", "product_id": 77,
                        "variation_id": 0, "sku": "OUD-ROYAL-50", "quantity": 1,
                        "price": float(total), "total": total}],
    }


def redact_recon_customer(settings: Settings, source: str, shop: str, customer_id: int,
                          order_id: int, redacted_at: float, request_id: int) -> None:
    """Leave the tombstones that a ``customers/redact`` of the seeded orders' customer
    (``RECON_EMAIL``, ``RECON_PHONE``, one customer id and one named order) leaves."""
    key = partial(record_key, shop_part(source, shop))
    digests = customer_digests([RECON_EMAIL], [RECON_PHONE], [key(str(customer_id))],
                               [key(str(order_id))])
    db = Database(settings.state_path)
    try:
        create_table(db)
        with db.transaction() as conn:
            bury(conn, digests, request_id, redacted_at)
    finally:
        db.close()


@dataclass
class Stores:
    """Both store stand-ins, served on 127.0.0.1, with clients for their inspection paths."""

    shopify_url: str
    shopify: ShopifyState
    woocommerce_url: str
    woocommerce: WooState
    http: httpx.Client

    def settings(self, tmp_path: Path, platform: str, project_spec: bool = False,
                 **environ: str) -> Settings:
        """Return settings for a project on ``platform`` with that store's API credentials.

        ``project_spec`` uses the project's own field map instead of a minimal one.
        """
        spec = SPEC_DIR if project_spec else write_spec(tmp_path / f"spec-{platform}", platform)
        values = {"DATA_DIR": str(tmp_path / "var"), "SPEC_DIR": str(spec),
                  "STORE_ID": "test-store", "RECONCILE_OVERLAP_SECONDS": "0"}
        if platform == "shopify":
            values.update({"SHOPIFY_SHOP_DOMAIN": SHOP_DOMAIN,
                           "SHOPIFY_ADMIN_ACCESS_TOKEN": SHOPIFY_TOKEN,
                           "SHOPIFY_ADMIN_URL": self.shopify_url})
        else:
            values.update({"WOOCOMMERCE_SITE_URL": self.woocommerce_url,
                           "WOOCOMMERCE_CONSUMER_KEY": WOO_KEY,
                           "WOOCOMMERCE_CONSUMER_SECRET": WOO_SECRET})
        values.update(environ)
        return load_settings(values)

    def shopify_calls(self, name: str) -> int:
        """Return how many requests of one operation the Shopify stand-in served."""
        return int(self.http.get(f"{self.shopify_url}/_standin/calls").json()["calls"]
                   .get(name, 0))


@pytest.fixture
def stores() -> Iterator[Stores]:
    """Serve empty Shopify and WooCommerce stand-ins until the test ends."""
    with ExitStack() as stack:
        shopify = ShopifyState()
        woocommerce = WooState()
        shopify_url = stack.enter_context(serve(create_shopify(state=shopify)))
        woocommerce_url = stack.enter_context(serve(create_woocommerce(state=woocommerce)))
        http = stack.enter_context(httpx.Client(timeout=10))
        yield Stores(shopify_url, shopify, woocommerce_url, woocommerce, http)


@dataclass
class RecordingQueue:
    """The service's real queue and dedupe store, keeping each delivery it accepted."""

    queue: DeliveryQueue
    accepted: list[Delivery] = field(default_factory=list)

    def enqueue_once(self, delivery: Delivery, key: str, now: float) -> bool:
        """Queue through ``DeliveryQueue.enqueue_once``; remember the delivery when queued."""
        queued = self.queue.enqueue_once(delivery, key, now)
        if queued:
            self.accepted.append(delivery)
        return queued

    def take(self) -> list[Delivery]:
        """Return and forget the deliveries accepted so far."""
        taken, self.accepted = self.accepted, []
        return taken


@pytest.fixture
def recording_queue() -> Iterator[Callable[[Settings], RecordingQueue]]:
    """Return a factory of recording queues on a settings' DATA_DIR; closes them at the end."""
    opened: list[DeliveryQueue] = []

    def build(settings: Settings) -> RecordingQueue:
        queue = build_queue(settings, RecordingHandler())
        opened.append(queue)
        return RecordingQueue(queue)

    yield build
    for queue in opened:
        queue.close()


class FakeSleep:
    """Records waits instead of sleeping."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
