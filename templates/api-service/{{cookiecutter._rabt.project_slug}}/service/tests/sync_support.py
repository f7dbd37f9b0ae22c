"""Fixtures of the sync tests: the HubSpot stand-in under uvicorn, a worker and a flusher.

The tests map with the project's own ``integration/mapping.yaml`` and seed the stand-in
from its ``crm/desired-state.yaml``, so they check this project's spec. Payload
builders write orders in the shape of each store platform; every name, email and
phone in them is made up.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from intake_support import encode_body, serve
from storesync.db import Database
from storesync.delivery import Delivery
from storesync.flusher import Flusher, FlushReport, client_for, flusher_for
from storesync.hubspot import HubSpotClient
from storesync.settings import Settings, load_settings
from storesync.standins.hubspot import HubSpotStandinConfig, create_seeded_app
from storesync.worker import JobOutcome, WorkerContext, build_context, handle_delivery

PROJECT_DIR = Path(__file__).resolve().parents[2]
SPEC_DIR = PROJECT_DIR / "integration"
DESIRED_STATE_PATH = PROJECT_DIR / "crm" / "desired-state.yaml"

# Made-up customers. The phone numbers are in the 050 000 00xx range the samples use.
SARA: dict[str, Any] = {
    "id": 7200000000001, "email": "sara.sync@example.com", "phone": "+966500000011",
    "first_name": "سارة", "last_name": "القحطاني"}
NOURA_PHONE_ONLY: dict[str, Any] = {
    "id": 7200000000002, "email": None, "phone": "+966500000012",
    "first_name": "نورة", "last_name": None}
GUEST: dict[str, Any] = {
    "id": None, "email": "guest.sync@example.com", "phone": "+966500000013",
    "first_name": "ضيف", "last_name": "تجريبي"}
PERSONAL_VALUES = ("sara.sync@example.com", "+966500000011", "966500000011", "القحطاني",
                   "guest.sync@example.com", "+966500000012", "+966500000013")


def project_mapping() -> dict[str, Any]:
    """Return the project's field map."""
    data = yaml.safe_load((SPEC_DIR / "mapping.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def family() -> str:
    """Return the payload family of this project: shopify, woocommerce or storefront."""
    platform = str(project_mapping().get("platform"))
    return {"headless": "storefront", "custom": "storefront"}.get(platform, platform)


def require_hubspot() -> None:
    """Skip when the project's CRM is not HubSpot, because the test drives the HubSpot stand-in."""
    crm = project_mapping().get("crm")
    if crm != "hubspot":
        pytest.skip(f"this test needs the HubSpot target, and this project's CRM is {crm}")


# --- payloads ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One line item of a test order."""

    id: int
    sku: str | None
    quantity: int
    price: str
    title: str = "عطر تجريبي"


@dataclass(frozen=True)
class Order:
    """A test order in platform-neutral terms; ``body()`` writes it for one platform."""

    id: int
    customer: dict[str, Any]
    total: str = "149.50"
    status: str = "paid"
    updated_at: str = "2026-03-03T18:10:00+00:00"
    lines: tuple[Line, ...] = (Line(91001, "OUD-ROYAL-50", 1, "149.50"),)
    refunded: str | None = None

    def topic(self, source: str) -> str:
        """Return the update topic of this platform."""
        return {"shopify": "orders/updated", "woocommerce": "order.updated",
                "storefront": "order_updated"}[source]

    def body(self, source: str) -> dict[str, Any]:
        """Return the order in the webhook shape of ``source``."""
        return {"shopify": self._shopify, "woocommerce": self._woocommerce,
                "storefront": self._storefront}[source]()

    def _shopify(self) -> dict[str, Any]:
        status = {"paid": "paid", "pending": "pending", "refunded": "refunded"}[self.status]
        customer = None if self.customer["id"] is None else {
            key: self.customer[key] for key in ("id", "email", "phone", "first_name", "last_name")}
        return {
            "id": self.id, "name": f"#{self.id % 100000}", "email": self.customer["email"],
            "currency": "SAR", "total_price": self.total, "financial_status": status,
            "fulfillment_status": None, "created_at": "2026-03-01T11:05:00+00:00",
            "processed_at": "2026-03-01T11:05:00+00:00", "updated_at": self.updated_at,
            "customer": customer,
            "billing_address": {"first_name": self.customer["first_name"],
                                "last_name": self.customer["last_name"],
                                "phone": self.customer["phone"], "city": "Jeddah"},
            "line_items": [{"id": line.id, "sku": line.sku, "variant_id": line.id + 5,
                            "quantity": line.quantity, "price": line.price, "name": line.title,
                            "title": line.title} for line in self.lines],
            "refunds": ([{"id": self.id + 1, "transactions": [{"amount": self.refunded}]}]
                        if self.refunded else []),
        }

    def _woocommerce(self) -> dict[str, Any]:
        status = {"paid": "processing", "pending": "on-hold", "refunded": "refunded"}[self.status]
        return {
            "id": self.id, "number": str(self.id), "status": status, "currency": "SAR",
            "total": self.total, "date_created_gmt": "2026-03-01T11:05:00",
            "date_modified_gmt": self.updated_at[:19],
            "customer_id": self.customer["id"] or 0,
            "billing": {"first_name": self.customer["first_name"] or "",
                        "last_name": self.customer["last_name"] or "",
                        "email": self.customer["email"] or "", "phone": self.customer["phone"],
                        "city": "Jeddah"},
            "line_items": [{"id": line.id, "name": line.title, "product_id": line.id + 5,
                            "variation_id": 0, "sku": line.sku or "", "quantity": line.quantity,
                            "price": float(line.price), "total": line.price}
                           for line in self.lines],
            "refunds": ([{"id": self.id + 1, "total": f"-{self.refunded}"}]
                        if self.refunded else []),
        }

    def _storefront(self) -> dict[str, Any]:
        customer = {key: value for key, value in self.customer.items() if value is not None}
        if "id" in customer:
            customer["id"] = f"cus_{customer['id']}"
        return {
            "event": "order_updated", "event_id": f"evt_{self.id}_{self.updated_at}",
            "occurred_at": self.updated_at, "customer": customer,
            "order": {"id": f"ord_{self.id}", "number": str(self.id), "status": self.status,
                      "total": self.total, "currency": "SAR",
                      "created_at": "2026-03-01T11:05:00+00:00",
                      "line_items": [{"id": f"li_{line.id}", "sku": line.sku,
                                      "variant_id": f"var_{line.id}", "title": line.title,
                                      "quantity": line.quantity, "unit_price": line.price}
                                     for line in self.lines],
                      "refunds": [{"amount": self.refunded}] if self.refunded else []},
        }


# --- the stand-in ----------------------------------------------------------------------------


class FakeClock:
    """A clock shared by the stand-in's rate limiter and the client's token bucket."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds


@dataclass
class Standin:
    """A seeded HubSpot stand-in served on 127.0.0.1."""

    url: str
    http: httpx.Client

    def records(self, obj: str) -> list[dict[str, Any]]:
        """Return every record of ``obj`` with its properties and associations."""
        response = self.http.get(f"/_standin/records/{obj}")
        response.raise_for_status()
        results = response.json()["results"]
        assert isinstance(results, list)
        return results

    def calls(self) -> list[dict[str, Any]]:
        """Return the call counts per method, path template and status."""
        calls = self.http.get("/_standin/calls").json()["calls"]
        assert isinstance(calls, list)
        return calls

    def call_count(self, path_end: str, status: int | None = None) -> int:
        """Count the calls whose path template ends with ``path_end``."""
        return sum(int(call["count"]) for call in self.calls()
                   if str(call["path"]).endswith(path_end)
                   and (status is None or call["status"] == status))

    def fault(self, status: int, count: int, path_prefix: str | None = None) -> None:
        """Fail the next ``count`` API calls with ``status``."""
        body: dict[str, Any] = {"status": status, "count": count}
        if path_prefix:
            body["path_prefix"] = path_prefix
        self.http.post("/_standin/faults", json=body).raise_for_status()


def _desired_state() -> dict[str, Any]:
    data = yaml.safe_load(DESIRED_STATE_PATH.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture
def start_standin() -> Iterator[Callable[..., Standin]]:
    """Return a function that serves a seeded stand-in with a config until the test ends."""
    with ExitStack() as stack:

        def start(config: HubSpotStandinConfig | None = None) -> Standin:
            require_hubspot()
            app = create_seeded_app(_desired_state(), config)
            url = stack.enter_context(serve(app))
            http = stack.enter_context(httpx.Client(base_url=url, timeout=10))
            return Standin(url, http)

        yield start


# --- worker and flusher -----------------------------------------------------------------------


@dataclass
class SyncHarness:
    """A worker context and a flusher against one stand-in, with a state file in tmp_path."""

    settings: Settings
    context: WorkerContext
    client: HubSpotClient
    flusher: Flusher
    standin: Standin
    source: str = field(default_factory=family)
    deliveries: int = 0

    def deliver(self, body: dict[str, Any] | bytes, topic: str, *,
                delivery_id: str | None = None, source: str | None = None,
                shop: str = "test-store") -> JobOutcome:
        """Hand one delivery to the worker, as the queue task does."""
        self.deliveries += 1
        raw = body if isinstance(body, bytes) else encode_body(body)
        delivery = Delivery(delivery_id=delivery_id or f"test-delivery-{self.deliveries}",
                            source=source or self.source, topic=topic, shop=shop,
                            received_at="2026-03-03T18:10:00Z", triggered_at=None,
                            body=raw.decode("utf-8"))
        return handle_delivery(delivery, self.context)

    def deliver_order(self, order: Order, **options: Any) -> JobOutcome:
        """Deliver ``order`` as this project's platform sends it."""
        return self.deliver(order.body(self.source), order.topic(self.source), **options)

    def flush(self, now: float | None = None, cycles: int = 10) -> FlushReport:
        """Flush with partial batches sent at once, until a cycle sends nothing."""
        total = FlushReport()
        for _ in range(cycles):
            report = self.flusher.flush_once(now=now, force=True)
            total.calls += report.calls
            total.synced.update(report.synced)
            total.dead_lettered.update(report.dead_lettered)
            total.retried.update(report.retried)
            total.paused = total.paused or report.paused
            if report.calls == 0:
                break
        return total


@pytest.fixture
def make_harness(tmp_path: Path, start_standin: Callable[..., Standin]
                 ) -> Iterator[Callable[..., SyncHarness]]:
    """Return a factory of sync harnesses; keyword arguments become settings."""
    clients: list[HubSpotClient] = []

    def build(config: HubSpotStandinConfig | None = None, *, client_clock: Any = None,
              **environ: str) -> SyncHarness:
        standin = start_standin(config)
        values = {"DATA_DIR": str(tmp_path / "var"), "SPEC_DIR": str(SPEC_DIR),
                  "DESIRED_STATE_PATH": str(DESIRED_STATE_PATH),
                  "HUBSPOT_BASE_URL": standin.url, "SYNC_BATCH_WINDOW_MS": "0",
                  "SYNC_MAX_ATTEMPTS": "3", "SYNC_BACKOFF_BASE_SECONDS": "1",
                  "SYNC_BACKOFF_MAX_SECONDS": "4", "STORE_ID": "test-store"}
        values.update(environ)
        settings = load_settings(values)
        context = build_context(settings, Database(settings.state_path))
        client = client_for(settings)
        if client_clock is not None:
            client = HubSpotClient(settings.hubspot_base_url, "test-token-not-real",
                                   rate_limit_per_10s=settings.hubspot_rate_limit_per_10s,
                                   clock=client_clock, sleep=client_clock.sleep)
        clients.append(client)
        flusher = flusher_for(settings, context.store, context.mapping, client)
        flusher.resolve_stages()
        return SyncHarness(settings, context, client, flusher, standin)

    yield build
    for client in clients:
        client.close()
