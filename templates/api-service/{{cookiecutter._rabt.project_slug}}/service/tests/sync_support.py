"""Fixtures of the sync tests: the CRM stand-ins under uvicorn, a worker and a flusher.

The tests map with the project's own ``integration/mapping.yaml`` and seed the stand-in
from its ``crm/desired-state.yaml``, so they check this project's spec. Most sync tests
drive the HubSpot stand-in and run in HubSpot projects only. The loss and duplication
proofs use ``make_crm_harness``, which serves the stand-in of the project's CRM (HubSpot
or Zoho) and reads its records through ``CrmStandin``. Payload builders write orders in
the shape of each store platform; every name, email and phone in them is made up.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from decimal import Decimal
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
from storesync.standins import zoho as zoho_standin
from storesync.standins.hubspot import HubSpotStandinConfig, create_seeded_app
from storesync.standins.zoho import ZohoStandinConfig
from storesync.sync_store import properties_of, unique_properties_of
from storesync.worker import JobOutcome, WorkerContext, build_context, handle_delivery
from storesync.zoho import ZohoClient
from storesync.zoho_flusher import zoho_client_for

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


def project_crm() -> str:
    """Return the ``crm`` of the project's field map: hubspot, zoho or custom."""
    return str(project_mapping().get("crm"))


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


# Zoho modules of the record kinds the proofs compare. Zoho has no line item module: an
# order's lines are the Product_Details rows of its one sales order.
ZOHO_MODULES = {"contacts": "Contacts", "deals": "Deals", "products": "Products",
                "sales_orders": "Sales_Orders"}
# Fields the Zoho stand-in sets when it writes a record, so two runs differ there.
ZOHO_VOLATILE = frozenset({"id", "Owner", "Created_Time", "Modified_Time", "Created_By",
                           "Modified_By"})
# The same for HubSpot.
HUBSPOT_VOLATILE = frozenset({"hs_object_id", "createdate", "lastmodifieddate",
                              "hs_lastmodifieddate", "hs_createdate"})


@dataclass
class CrmStandin(Standin):
    """A HubSpot or Zoho stand-in, read in the terms the loss and duplication proofs compare.

    Both stand-ins share the ``/_standin/`` calls, faults and records endpoints; only the
    shape of a record differs. HubSpot keeps fields under ``properties`` and links as
    ``associations``; Zoho keeps fields at the top and links as lookup fields.
    """

    crm: str = "hubspot"

    def records(self, obj: str) -> list[dict[str, Any]]:
        """Return every record of ``obj`` (a HubSpot object or a Zoho module)."""
        if self.crm == "hubspot":
            return super().records(obj)
        response = self.http.get(f"/_standin/records/{obj}")
        response.raise_for_status()
        records = response.json()["records"]
        assert isinstance(records, list)
        return records

    def service_env(self) -> dict[str, str]:
        """Return the settings that point the service's CRM client at this stand-in."""
        if self.crm == "zoho":
            # The Zoho stand-in is its own accounts server and names itself as api_domain.
            return {"ZOHO_ACCOUNTS_URL": self.url}
        return {"HUBSPOT_BASE_URL": self.url}

    def kind(self, kind: str) -> list[dict[str, Any]]:
        """Return the records of ``kind``: contacts, deals, products or (Zoho) sales_orders."""
        return self.records(ZOHO_MODULES[kind] if self.crm == "zoho" else kind)

    def fields(self, record: dict[str, Any]) -> dict[str, Any]:
        """Return the field values of one record."""
        if self.crm == "zoho":
            return record
        properties = record["properties"]
        assert isinstance(properties, dict)
        return properties

    def order_amounts(self) -> dict[str, list[Decimal]]:
        """Return the amounts of the deals per order id (the id part of the deal's key)."""
        order = properties_of(project_mapping(), "order")
        amounts: dict[str, list[Decimal]] = {}
        for deal in self.kind("deals"):
            values = self.fields(deal)
            key = str(values[order["external_order_id"]]).rsplit(":", 1)[-1]
            amounts.setdefault(key.removeprefix("ord_"), []).append(
                Decimal(str(values[order["amount"]])))
        return amounts

    def line_count(self) -> int:
        """Return how many order lines the CRM holds."""
        if self.crm == "zoho":
            return sum(len(order.get("Product_Details") or [])
                       for order in self.kind("sales_orders"))
        return len(self.records("line_items"))

    def unlinked_deals(self) -> list[str]:
        """Return the ids of deals that are not linked to a contact."""
        if self.crm == "zoho":
            return [str(deal["id"]) for deal in self.kind("deals")
                    if not deal.get("Contact_Name")]
        return [str(deal["id"]) for deal in self.kind("deals")
                if not deal["associations"].get("contacts")]

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Return the records per kind, keyed by their unique keys, without write-time fields.

        A link names the other record by its unique key, because the CRM ids of two runs
        differ.
        """
        if self.crm == "zoho":
            return self._zoho_snapshot()
        return self._hubspot_snapshot()

    def _hubspot_snapshot(self) -> dict[str, dict[str, Any]]:
        unique = unique_properties_of(project_mapping())
        records = {obj: self.records(obj)
                   for obj in ("contacts", "deals", "line_items", "products")}
        keys: dict[str, str] = {}
        for obj, found in records.items():
            names = sorted(unique.get(obj, frozenset())) or ["email"]
            for record in found:
                properties = record["properties"]
                key = next((str(properties[name]) for name in names if properties.get(name)),
                           None)
                assert key is not None, f"a {obj} record has no unique key: {properties}"
                keys[str(record["id"])] = f"{obj}:{key}"
        result: dict[str, dict[str, Any]] = {}
        for obj, found in records.items():
            result[obj] = {}
            for record in found:
                properties = {name: value for name, value in record["properties"].items()
                              if name not in HUBSPOT_VOLATILE}
                if "hs_product_id" in properties:
                    properties["hs_product_id"] = keys[str(properties["hs_product_id"])]
                links = {other: sorted((keys[str(item["id"])], sorted(item["types"]))
                                       for item in items)
                         for other, items in (record.get("associations") or {}).items()}
                result[obj][keys[str(record["id"])]] = {"properties": properties,
                                                        "links": links}
        return result

    def _zoho_snapshot(self) -> dict[str, dict[str, Any]]:
        unique = unique_properties_of(project_mapping())
        records = {kind: self.kind(kind) for kind in ZOHO_MODULES}
        keys: dict[str, str] = {}
        for kind in ("contacts", "deals", "products"):
            names = sorted(unique.get(ZOHO_MODULES[kind], frozenset())) or ["Email"]
            for record in records[kind]:
                key = next((str(record[name]) for name in names if record.get(name)), None)
                assert key is not None, f"a {kind} record has no unique key: {record}"
                keys[str(record["id"])] = f"{kind}:{key}"
        # A sales order has no key of its own: it is the one sales order of its deal.
        for record in records["sales_orders"]:
            keys[str(record["id"])] = f"sales_orders:{keys[str(record['Deal_Name']['id'])]}"
        return {kind: {keys[str(record["id"])]: _zoho_fields(record, keys)
                       for record in found}
                for kind, found in records.items()}


def _zoho_fields(record: dict[str, Any], keys: dict[str, str]) -> dict[str, Any]:
    """Return a Zoho record without write-time fields, its lookups named by record key."""
    fields: dict[str, Any] = {}
    for name, value in record.items():
        if name in ZOHO_VOLATILE:
            continue
        if isinstance(value, dict) and "id" in value:
            value = keys.get(str(value["id"]), value)
        elif name == "Product_Details":
            # Each row has an id of its own; the product lookup names the product.
            value = sorted(({"product": keys[str(row["product"]["id"])],
                             **{key: item for key, item in row.items()
                                if key not in ("id", "product")}} for row in value),
                           key=lambda row: str(row["product"]))
        fields[name] = value
    return fields


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


@pytest.fixture
def start_crm_standin() -> Iterator[Callable[..., CrmStandin]]:
    """Return a function that serves the seeded stand-in of the project's CRM.

    It skips the test in a project whose CRM has no stand-in (the customer database).
    """
    with ExitStack() as stack:

        def start(*, hubspot: HubSpotStandinConfig | None = None,
                  zoho: ZohoStandinConfig | None = None) -> CrmStandin:
            crm = project_crm()
            if crm == "hubspot":
                app = create_seeded_app(_desired_state(), hubspot)
            elif crm == "zoho":
                app = zoho_standin.create_seeded_app(_desired_state(), zoho)
            else:
                pytest.skip(f"this test needs a CRM stand-in (HubSpot or Zoho), and this "
                            f"project's CRM is {crm}")
            url = stack.enter_context(serve(app))
            http = stack.enter_context(httpx.Client(base_url=url, timeout=10))
            return CrmStandin(url, http, crm=crm)

        yield start


# --- worker and flusher -----------------------------------------------------------------------


@dataclass
class SyncHarness:
    """A worker context and a flusher against one stand-in, with a state file in tmp_path.

    From ``make_crm_harness`` the stand-in is a ``CrmStandin`` and the flusher may be
    Zoho's.
    """

    settings: Settings
    context: WorkerContext
    client: HubSpotClient | ZohoClient
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


@pytest.fixture
def make_crm_harness(tmp_path: Path, start_crm_standin: Callable[..., CrmStandin]
                     ) -> Iterator[Callable[..., SyncHarness]]:
    """Return a factory of sync harnesses against the stand-in of the project's CRM.

    ``hubspot`` and ``zoho`` configure the stand-in of that CRM; ``clock`` drives the
    client's rate limit or credit budget and its sleeps; other keyword arguments become
    settings.
    """
    clients: list[HubSpotClient | ZohoClient] = []

    def build(*, hubspot: HubSpotStandinConfig | None = None,
              zoho: ZohoStandinConfig | None = None, clock: FakeClock | None = None,
              **environ: str) -> SyncHarness:
        standin = start_crm_standin(hubspot=hubspot, zoho=zoho)
        values = {"DATA_DIR": str(tmp_path / "var"), "SPEC_DIR": str(SPEC_DIR),
                  "DESIRED_STATE_PATH": str(DESIRED_STATE_PATH), "SYNC_BATCH_WINDOW_MS": "0",
                  "SYNC_MAX_ATTEMPTS": "3", "SYNC_BACKOFF_BASE_SECONDS": "1",
                  "SYNC_BACKOFF_MAX_SECONDS": "4", "STORE_ID": "test-store",
                  **standin.service_env(), **environ}
        settings = load_settings(values)
        context = build_context(settings, Database(settings.state_path))
        client: HubSpotClient | ZohoClient
        if clock is None:
            client = client_for(settings)
        elif standin.crm == "zoho":
            client = zoho_client_for(settings, clock=clock, sleep=clock.sleep)
        else:
            client = HubSpotClient(settings.hubspot_base_url, "test-token-not-real",
                                   rate_limit_per_10s=settings.hubspot_rate_limit_per_10s,
                                   clock=clock, sleep=clock.sleep)
        clients.append(client)
        flusher = flusher_for(settings, context.store, context.mapping, client)
        flusher.resolve_stages()
        return SyncHarness(settings, context, client, flusher, standin)

    yield build
    for client in clients:
        client.close()
