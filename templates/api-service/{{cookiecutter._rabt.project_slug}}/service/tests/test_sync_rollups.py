"""Contact roll-ups from stored orders: counting rules, refunds, currencies and sources."""

from __future__ import annotations

from storesync.rollups import OrderFields, compute_rollups, order_state
from storesync.sync_store import OrderState

TARGETS = {"orders_count": "ecom_orders_count", "ltv_sar": "ecom_ltv_sar",
           "first_order_at": "ecom_first_order_at", "last_order_at": "ecom_last_order_at",
           "first_source": "ecom_first_source", "last_source": "ecom_last_source"}
FIELDS = OrderFields(amount="amount", refunded="ecom_refunded_sar", stage="dealstage",
                     ordered_at="closedate", source="ecom_order_source",
                     currency="deal_currency_code")
WON = {"paid_processing": True, "fulfilled": True, "refunded": False, "cancelled": False,
       "awaiting_payment": False}


def state(key: str, stage: str, total: str, at: str, source: str | None = None,
          refunded: str | None = None) -> OrderState:
    return OrderState(key, "c1", stage, WON[stage], total, refunded, at, source)


def test_counts_only_won_orders() -> None:
    orders = [state("1", "paid_processing", "100.00", "2026-03-01T10:00:00+03:00"),
              state("2", "cancelled", "50.00", "2026-03-02T10:00:00+03:00"),
              state("3", "refunded", "70.00", "2026-03-03T10:00:00+03:00", refunded="70.00"),
              state("4", "fulfilled", "30.10", "2026-03-04T10:00:00+03:00", refunded="-10.05")]
    values = compute_rollups(orders, TARGETS)
    assert values["ecom_orders_count"] == 2
    assert values["ecom_ltv_sar"] == "120.05"
    assert values["ecom_first_order_at"] == "2026-03-01T10:00:00+03:00"
    assert values["ecom_last_order_at"] == "2026-03-04T10:00:00+03:00"


def test_sources_follow_order_time() -> None:
    orders = [state("9", "paid_processing", "1.00", "2026-03-05T10:00:00+03:00", "google"),
              state("1", "awaiting_payment", "1.00", "2026-03-01T10:00:00+03:00", "tiktok"),
              state("5", "paid_processing", "1.00", "2026-03-03T10:00:00+03:00")]
    values = compute_rollups(orders, TARGETS)
    assert values["ecom_first_source"] == "tiktok"
    assert values["ecom_last_source"] == "google"


def test_no_orders_gives_zeroes() -> None:
    values = compute_rollups([], TARGETS)
    assert values == {"ecom_orders_count": 0, "ecom_ltv_sar": "0.00",
                      "ecom_first_order_at": None, "ecom_last_order_at": None}


def test_cancelled_only_order_clears_times() -> None:
    orders = [state("1", "cancelled", "50.00", "2026-03-02T10:00:00+03:00"),
              state("2", "refunded", "70.00", "2026-03-03T10:00:00+03:00", refunded="70.00")]
    values = compute_rollups(orders, TARGETS)
    assert values["ecom_orders_count"] == 0
    assert values["ecom_first_order_at"] is None
    assert values["ecom_last_order_at"] is None


def test_targets_limit_output() -> None:
    values = compute_rollups([], {"orders_count": "ecom_orders_count"})
    assert values == {"ecom_orders_count": 0}


def test_other_currency_keeps_no_total() -> None:
    properties = {"amount": "99.00", "deal_currency_code": "USD", "dealstage": "paid_processing",
                  "closedate": "2026-03-01T10:00:00+03:00"}
    stored = order_state("7", "c1", properties, FIELDS, WON)
    assert stored.won
    assert stored.total is None
    assert compute_rollups([stored], TARGETS)["ecom_ltv_sar"] == "0.00"


def test_unknown_stage_not_won() -> None:
    stored = order_state("8", "c1", {"dealstage": "1234567"}, FIELDS, WON)
    assert not stored.won


def test_bad_amount_counts_zero() -> None:
    orders = [state("1", "paid_processing", "abc", "2026-03-01T10:00:00+03:00")]
    assert compute_rollups(orders, TARGETS)["ecom_ltv_sar"] == "0.00"
