"""Proof that a CRM outage loses nothing: retries with backoff, then dead letters and replay.

The stand-in of the project's CRM (HubSpot or Zoho) answers 503 to every call for a
period measured on a fake clock, while a few hundred orders wait in the outbox. The
flusher runs every ``STEP_SECONDS`` of that clock, as the flusher process would.

- An outage shorter than the retry budget: the failed batches are retried with
  exponential backoff, far fewer times than the flusher ran, and once the stand-in
  recovers every order is in the CRM exactly once, with no dead letters.
- An outage longer than the retry budget: every record ends in the dead letters with
  the 503, and a replay after recovery writes them all, once each.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import pytest

from storesync.standins.hubspot import HubSpotStandinConfig
from storesync.standins.zoho import ZohoStandinConfig
from sync_support import CrmStandin, FakeClock, Line, Order, SyncHarness

MakeHarness = Callable[..., SyncHarness]

pytestmark = pytest.mark.slow

ORDERS = 240
CUSTOMERS = 160
FIRST_ORDER_ID = 9_400_000_000
STEP_SECONDS = 5.0
# The outage of the first case ends well inside the retry budget: with a 10 s base, a
# 120 s ceiling and 12 attempts, a record keeps being retried for far longer than 90 s.
SHORT_OUTAGE_SECONDS = 90
LONG_OUTAGE_SECONDS = 3600
SKUS = tuple(f"OUTAGE-SKU-{number}" for number in range(12))
# Per CRM, the records sent on their own, by object: each of them fails during the
# outage. HubSpot links deals and line items with associations. Zoho writes a deal's
# contact as a lookup and an order's lines as one sales order, which waits without a
# call until its deal and products have Zoho ids.
SENT_RECORDS = {
    "hubspot": {"contacts": CUSTOMERS, "deals": ORDERS, "line_items": ORDERS,
                "products": len(SKUS)},
    "zoho": {"contacts": CUSTOMERS, "deals": ORDERS, "products": len(SKUS)},
}
# Per CRM, what waits for the CRM ids of dead letters after the long outage.
LONG_OUTAGE_WAITING = {
    "hubspot": {"assoc:deals:contacts": ORDERS, "assoc:line_items:deals": ORDERS},
    "zoho": {"assoc:deals:contacts": ORDERS, "sales_orders": ORDERS},
}


def customer(number: int) -> dict[str, object]:
    """Return a made-up customer; phones are in the 050 range the samples use."""
    return {"id": 7_400_000_000_000 + number, "email": f"outage.{number}@example.com",
            "phone": f"+96650{number:07d}", "first_name": "هند", "last_name": "الاختبار"}


def outage_orders() -> list[Order]:
    """Return orders with their own ids and amounts, several per customer."""
    orders = []
    for index in range(ORDERS):
        total = f"{50 + index % 200}.{index % 100:02d}"
        line = Line(FIRST_ORDER_ID + index, SKUS[index % len(SKUS)], 1, total)
        orders.append(Order(FIRST_ORDER_ID + index, customer(index % CUSTOMERS), total=total,
                            lines=(line,)))
    return orders


def start_outage(sync: SyncHarness, seconds: float) -> None:
    """Make the stand-in answer 503 to every API call for ``seconds`` of its clock."""
    sync.standin.http.post("/_standin/faults", json={"status": 503, "seconds": seconds}
                           ).raise_for_status()


@dataclass
class FlusherRuns:
    """What the flusher did while it ran every ``STEP_SECONDS``."""

    runs: int = 0
    # Records whose write failed and was scheduled again, summed over the runs. Records
    # that wait for another record's CRM id without a call are not counted.
    retried_records: int = 0


def crm(sync: SyncHarness) -> CrmStandin:
    """Return the stand-in of ``sync``, which ``make_crm_harness`` serves."""
    assert isinstance(sync.standin, CrmStandin)
    return sync.standin


def run_flusher(sync: SyncHarness, clock: FakeClock, until: float) -> FlusherRuns:
    """Run the flusher every ``STEP_SECONDS`` until the outbox is empty or ``until``."""
    done = FlusherRuns()
    sent = SENT_RECORDS[crm(sync).crm]
    while sync.context.store.pending_count() > 0 and clock.now < until:
        report = sync.flusher.flush_once(now=clock.now, force=True)
        done.runs += 1
        done.retried_records += sum(count for obj, count in report.retried.items()
                                    if obj in sent)
        clock.now += STEP_SECONDS
    return done


def assert_every_order_once(sync: SyncHarness, orders: list[Order]) -> None:
    amounts = crm(sync).order_amounts()
    expected = {str(order.id): Decimal(order.total) for order in orders}
    assert sorted(amounts) == sorted(expected)
    duplicated = {key: found for key, found in amounts.items() if len(found) != 1}
    assert duplicated == {}
    wrong = {key: found[0] for key, found in amounts.items() if found[0] != expected[key]}
    assert wrong == {}
    assert len(crm(sync).kind("contacts")) == CUSTOMERS
    assert crm(sync).line_count() == ORDERS
    assert crm(sync).unlinked_deals() == []


def harness(make_crm_harness: MakeHarness, clock: FakeClock, **settings: str) -> SyncHarness:
    sync = make_crm_harness(hubspot=HubSpotStandinConfig(clock=clock),
                            zoho=ZohoStandinConfig(clock=clock), clock=clock,
                            HUBSPOT_RATE_LIMIT_PER_10S="1000", **settings)
    # A fixed seed keeps the jitter, and so the number of retries, the same on every run.
    sync.flusher.rng = random.Random(20261205)
    return sync


def test_outage_within_budget_synced_once(make_crm_harness: MakeHarness) -> None:
    clock = FakeClock()
    sync = harness(make_crm_harness, clock, SYNC_MAX_ATTEMPTS="12", SYNC_BACKOFF_BASE_SECONDS="10",
                   SYNC_BACKOFF_MAX_SECONDS="120")
    orders = outage_orders()
    for order in orders:
        sync.deliver_order(order)
    start = clock.now
    start_outage(sync, SHORT_OUTAGE_SECONDS)

    done = run_flusher(sync, clock, until=start + 3600)

    assert sync.context.store.pending_count() == 0
    assert sync.context.store.dead_letter_count() == 0
    assert_every_order_once(sync, orders)
    assert sync.standin.call_count("", 503) > 0
    # A flusher that did not back off would try every waiting record again on each run
    # of the outage. With backoff, each record waits longer after each failure, and the
    # seeded jitter gives about a quarter of those attempts. The bound leaves room
    # because threads change the order in which records draw from the jitter.
    records = sum(SENT_RECORDS[crm(sync).crm].values())
    runs_during_outage = math.ceil(SHORT_OUTAGE_SECONDS / STEP_SECONDS)
    assert done.runs > runs_during_outage
    assert done.retried_records > records
    assert done.retried_records < records * runs_during_outage * 2 // 5


def test_long_outage_dead_letters_then_replay(make_crm_harness: MakeHarness) -> None:
    clock = FakeClock()
    sync = harness(make_crm_harness, clock, SYNC_MAX_ATTEMPTS="3", SYNC_BACKOFF_BASE_SECONDS="5",
                   SYNC_BACKOFF_MAX_SECONDS="20")
    orders = outage_orders()
    for order in orders:
        sync.deliver_order(order)
    start = clock.now
    start_outage(sync, LONG_OUTAGE_SECONDS)

    # Three attempts with waits of at most 20 s are spent well within 10 minutes.
    run_flusher(sync, clock, until=start + 600)

    store = sync.context.store
    # Only what links records waits: each needs the CRM ids of both ends, and those
    # ends are dead letters now. It is written once a replay gives the ends their ids.
    waiting = {obj: store.pending_count(obj) for obj in store.pending_objects()}
    assert waiting == LONG_OUTAGE_WAITING[crm(sync).crm]
    letters = store.dead_letters(limit=10_000)
    assert letters
    assert {letter.status for letter in letters} == {503}
    # Every record the CRM stores on its own failed on each attempt.
    dead = Counter(letter.item.object for letter in letters)
    assert dead == SENT_RECORDS[crm(sync).crm]
    assert crm(sync).kind("deals") == []

    clock.now = start + LONG_OUTAGE_SECONDS + 1
    replayed = store.replay_all()
    assert replayed == len(letters)
    run_flusher(sync, clock, until=clock.now + 3600)

    assert store.pending_count() == 0
    assert store.dead_letter_count() == 0
    assert_every_order_once(sync, orders)
