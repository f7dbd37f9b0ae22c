"""Proof that duplicated and reordered deliveries leave the CRM as a clean run does.

Each order is delivered in three versions (pending, paid, then paid or refunded,
each with a later ``updated_at``). The clean run hands every version to the worker
once, oldest first. The noisy run hands the same versions over with 10% of the
deliveries sent a second time under a new delivery id, as a store does when it
re-sends an event, and 10% of the orders with their last two versions swapped, so
an older version arrives after a newer one. Both runs are flushed to their own
stand-in of the project's CRM (HubSpot or Zoho), and the records of the two stand-ins
must be equal: the same records by their unique keys, with the same fields and the
same links (HubSpot associations, Zoho lookups and sales order rows).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from storesync.standins.hubspot import HubSpotStandinConfig
from sync_support import CrmStandin, Line, Order, SyncHarness

MakeHarness = Callable[..., SyncHarness]

pytestmark = pytest.mark.slow

ORDERS = 300
CUSTOMERS = 180
FIRST_ORDER_ID = 9_500_000_000
SHARE = 0.10
SEED = 20261205


def customer(number: int) -> dict[str, object]:
    """Return a made-up customer; phones are in the 050 range the samples use."""
    return {"id": 7_500_000_000_000 + number, "email": f"reorder.{number}@example.com",
            "phone": f"+96650{number:07d}", "first_name": "لمى", "last_name": "الاختبار"}


def versions(index: int) -> list[Order]:
    """Return the three versions of order ``index``, oldest first."""
    total = f"{80 + index % 150}.{index % 100:02d}"
    line = Line(FIRST_ORDER_ID + index, f"REORDER-SKU-{index % 15}", 1 + index % 3, total)
    first = Order(FIRST_ORDER_ID + index, customer(index % CUSTOMERS), total=total,
                  status="pending", updated_at=f"2026-03-{1 + index % 20:02d}T10:00:00+00:00",
                  lines=(line,))
    paid = replace(first, status="paid", updated_at=first.updated_at.replace("T10", "T11"))
    if index % 3 == 0:
        last = replace(paid, status="refunded", refunded=total,
                       updated_at=first.updated_at.replace("T10", "T12"))
    else:
        last = replace(paid, refunded="10.00", updated_at=first.updated_at.replace("T10", "T12"))
    return [first, paid, last]


def clean_run() -> list[Order]:
    """Return every version once, each order's versions oldest first."""
    return [order for index in range(ORDERS) for order in versions(index)]


def noisy_run(rng: random.Random) -> tuple[list[Order], int, int]:
    """Return the clean run with orders reordered and deliveries duplicated.

    Returns:
        The deliveries, how many orders had their last two versions swapped and how
        many deliveries were sent twice.
    """
    swapped = set(rng.sample(range(ORDERS), int(ORDERS * SHARE)))
    sent: list[Order] = []
    for index in range(ORDERS):
        first, paid, last = versions(index)
        sent.extend([first, last, paid] if index in swapped else [first, paid, last])
    copies = rng.sample(range(len(sent)), int(len(sent) * SHARE))
    for position in sorted(copies, reverse=True):
        # The copy arrives a little later, after other deliveries.
        later = min(len(sent), position + rng.randint(1, 40))
        sent.insert(later, sent[position])
    return sent, len(swapped), len(copies)


def roomy_limits() -> HubSpotStandinConfig:
    """Return a HubSpot stand-in whose rate limit the client stays far below.

    A 429 would delay records past the end of ``deliver_all``'s flushing, and rate
    limits are not what this test checks. The Zoho stand-in's default credits and
    concurrency limit are far above what the test uses.
    """
    return HubSpotStandinConfig(rate_limit_per_10s=1000)


def deliver_all(sync: SyncHarness, orders: list[Order]) -> None:
    for order in orders:
        sync.deliver_order(order)
    sync.flush(cycles=50)
    assert sync.context.store.pending_count() == 0
    assert sync.context.store.dead_letter_count() == 0


def snapshot(sync: SyncHarness) -> dict[str, dict[str, Any]]:
    """Return the stand-in's records per kind, keyed by their unique keys."""
    assert isinstance(sync.standin, CrmStandin)
    return sync.standin.snapshot()


def test_duplicates_and_reorder_match_clean_run(make_crm_harness: MakeHarness,
                                                tmp_path: Path) -> None:
    clean = make_crm_harness(hubspot=roomy_limits(), DATA_DIR=str(tmp_path / "clean"),
                             HUBSPOT_RATE_LIMIT_PER_10S="500")
    deliver_all(clean, clean_run())
    expected = snapshot(clean)

    noisy = make_crm_harness(hubspot=roomy_limits(), DATA_DIR=str(tmp_path / "noisy"),
                             HUBSPOT_RATE_LIMIT_PER_10S="500")
    sent, swapped, copies = noisy_run(random.Random(SEED))
    deliver_all(noisy, sent)
    found = snapshot(noisy)

    assert swapped == ORDERS // 10
    assert copies == 3 * ORDERS // 10
    assert len(expected["deals"]) == ORDERS
    assert len(expected["contacts"]) == CUSTOMERS
    assert sorted(found) == sorted(expected)
    for obj in expected:
        assert sorted(found[obj]) == sorted(expected[obj]), obj
        differing = {key: (found[obj][key], value) for key, value in expected[obj].items()
                     if found[obj][key] != value}
        assert differing == {}, obj
