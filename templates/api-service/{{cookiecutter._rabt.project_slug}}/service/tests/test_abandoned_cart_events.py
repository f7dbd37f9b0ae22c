"""Abandoned cart from behaviour events: a signed storefront or Shopify pixel checkout_started.

Each event goes through the real intake under uvicorn and the real worker, with the
playbook runner in the worker's context, so the test covers the path from the request
to the ``playbook_timers`` row. The order that completes the same cart then cancels it.
The tests run against the stand-in of the project's CRM, HubSpot or Zoho CRM, because
the timer and the contact's marks must be the same on both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from intake_support import (
    SHOPIFY_SECRET,
    STOREFRONT_SECRET,
    encode_body,
    serve,
    shopify_headers,
    storefront_headers,
)
from playbook_support import (
    HOUR,
    Clock,
    FakeConsent,
    FakeDiscounts,
    riyadh,
    write_playbook_spec,
)
from storesync.intake import create_app
from storesync.playbook_config import load_playbook_config
from storesync.playbooks import PlaybookRunner
from storesync.sync_store import properties_of
from storesync.timers import TimerStore
from storesync.worker import JobOutcome, handle_delivery
from sync_support import SARA, Order, SyncHarness, family, project_mapping

MakeHarness = Callable[..., SyncHarness]
CART_TOKEN = "cart-e2e-1"
STARTED_AT = "2026-03-01T07:00:00+00:00"


class Service:
    """The intake served on loopback in front of a harness's worker, with playbooks on."""

    def __init__(self, sync: SyncHarness, clock: Clock, spec_dir: Path,
                 stack: ExitStack) -> None:
        self.sync = sync
        self.clock = clock
        store = sync.context.store
        self.timers = TimerStore(store.db, clock=clock)
        config = load_playbook_config(write_playbook_spec(spec_dir), project_mapping())
        self.runner = PlaybookRunner(config=config, store=store, timers=self.timers,
                                     consent=FakeConsent(), discounts=FakeDiscounts(),
                                     senders={}, clock=clock)
        sync.context.playbooks = self.runner
        app = create_app(sync.settings,
                         handler=lambda delivery: handle_delivery(delivery, sync.context))
        self.queue = app.state.services.queue.huey
        url = stack.enter_context(serve(app))
        self.http = stack.enter_context(httpx.Client(base_url=url, timeout=10))

    def post(self, path: str, body: dict[str, Any],
             headers: Callable[[bytes], dict[str, str]]) -> JobOutcome:
        """POST a signed body, then run the one job it queued and return its outcome."""
        raw = encode_body(body)
        response = self.http.post(path, content=raw, headers=headers(raw))
        assert response.status_code in (200, 202), response.text
        task = self.queue.dequeue()
        assert task is not None
        return JobOutcome(self.queue.execute(task))


@pytest.fixture
def service(make_crm_harness: MakeHarness, tmp_path: Path) -> Iterator[Service]:
    sync = make_crm_harness(SHOPIFY_WEBHOOK_SECRETS=SHOPIFY_SECRET,
                            STOREFRONT_WEBHOOK_SECRETS=STOREFRONT_SECRET)
    with ExitStack() as stack:
        yield Service(sync, Clock(riyadh("2026-03-01 10:00")), tmp_path / "spec", stack)


def post_checkout(service: Service, source: str) -> JobOutcome:
    """Send Sara's checkout_started as the storefront helper or the Shopify pixel does."""
    if source == "shopify":
        pixel = {"id": "sh-pixel-e2e-1", "name": "checkout_started", "type": "standard",
                 "timestamp": STARTED_AT,
                 "data": {"checkout": {"email": SARA["email"], "token": CART_TOKEN,
                                       "totalPrice": {"amount": "245.50",
                                                      "currencyCode": "SAR"}}}}
        return service.post("/pixel/shopify", pixel,
                            lambda raw: {"Content-Type": "application/json"})
    event = {"event": "checkout_started", "event_id": "evt_checkout_e2e_1",
             "occurred_at": STARTED_AT, "customer": {"email": SARA["email"]},
             "cart": {"token": CART_TOKEN, "value": "245.50",
                      "url": f"https://shop.example/cart/{CART_TOKEN}"}}
    return service.post("/webhooks/storefront", event,
                        lambda raw: storefront_headers(raw, message_id="msg_checkout_e2e_1"))


def post_order(service: Service, source: str) -> JobOutcome:
    """Send the order that completes the cart, naming the cart token as the platform does."""
    order = Order(850002, SARA, total="245.50", updated_at="2026-03-01T08:00:00+00:00")
    if source == "shopify":
        body = {**order.body(source), "checkout_token": CART_TOKEN}
        return service.post("/webhooks/shopify", body, lambda raw: shopify_headers(
            raw, topic="orders/create", event_id="evt-order-e2e-1"))
    body = {**order.body(source), "event": "purchase_completed",
            "event_id": "evt_purchase_e2e_1", "cart": {"token": CART_TOKEN}}
    return service.post("/webhooks/storefront", body,
                        lambda raw: storefront_headers(raw, message_id="msg_purchase_e2e_1"))


def test_checkout_event_starts_cart_timer(service: Service) -> None:
    source = family()
    if source not in ("shopify", "storefront"):
        pytest.skip(f"{source} projects get checkout events only from a headless storefront")
    assert service.sync.deliver_order(Order(850001, SARA)) is JobOutcome.SYNCED_LATER
    assert service.timers.all("abandoned_cart") == []

    assert post_checkout(service, source) is JobOutcome.SYNCED_LATER

    [timer] = service.timers.all("abandoned_cart")
    assert timer.subject_key == CART_TOKEN
    assert timer.status == "scheduled"
    assert timer.due_at == pytest.approx(riyadh("2026-03-01 10:00") + 2 * HOUR)
    assert timer.payload["contact"]["id_value"] == SARA["email"]
    assert timer.payload["contact"]["phone"] == SARA["phone"]
    assert timer.payload["value"] == "245.50"

    assert post_order(service, source) is JobOutcome.SYNCED_LATER

    [cancelled] = service.timers.all("abandoned_cart")
    assert cancelled.status == "cancelled"
    service.clock.advance(5 * HOUR)
    assert service.runner.run_until_idle() == 0


def sara_in_crm(service: Service) -> dict[str, Any]:
    """Return Sara's contact fields as the CRM stand-in stores them."""
    email = properties_of(project_mapping(), "contact")["email"]
    crm = service.sync.standin
    found = [crm.fields(record) for record in crm.kind("contacts")
             if crm.fields(record).get(email) == SARA["email"]]
    assert len(found) == 1, found
    return found[0]


def test_open_checkout_marks_contact(service: Service) -> None:
    source = family()
    if source not in ("shopify", "storefront"):
        pytest.skip(f"{source} projects get checkout events only from a headless storefront")
    assert service.sync.deliver_order(Order(850001, SARA)) is JobOutcome.SYNCED_LATER
    assert post_checkout(service, source) is JobOutcome.SYNCED_LATER
    service.sync.flush()

    service.clock.advance(1 * HOUR)
    assert service.runner.run_until_idle() == 0
    service.clock.advance(2 * HOUR)
    assert service.runner.run_until_idle() >= 1
    report = service.sync.flush()
    assert sum(report.dead_lettered.values()) == 0

    rollups = {rollup["name"]: rollup["target"]
               for rollup in project_mapping()["entities"]["contact"]["rollups"]}
    contact = sara_in_crm(service)
    assert contact[rollups["playbook_step"]] == "abandoned_cart:cart_reminder_1"
    assert contact[rollups["discount_code"]] == "BACK-1"
    assert str(contact[rollups["last_checkout_at"]]).startswith("2026-03-01T07:00:00")
    assert Decimal(str(contact[rollups["last_cart_value_sar"]])) == Decimal("245.50")
    [timer] = service.timers.all("abandoned_cart")
    assert timer.status == "fired"
