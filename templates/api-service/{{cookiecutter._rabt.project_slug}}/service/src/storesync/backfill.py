"""Backfill: import the orders created in a date range, with an estimate first.

``storesync backfill --from DATE --to DATE`` counts the orders in the range in the
store and estimates the CRM calls and the time they take at the CRM's rate limit (for
Zoho, the API credits and the days the rolling 24-hour budget needs for them). It
then queues the orders as reconciliation does, with the same deterministic delivery
ids, so a backfill run twice, or over orders already synced, changes nothing. Days are
calendar days in the store's time zone, Asia/Riyadh (UTC+3, no daylight saving), and
both ends are included.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from .settings import Settings
from .zoho_credits import DEFAULT_SECONDS_PER_CALL, BackfillPlan, daily_credits, plan_backfill

RIYADH = timezone(timedelta(hours=3), "Asia/Riyadh")
# NOTE: an estimate, not a measurement. Per 100 orders the flusher sends about one batch
# each of contacts, deals, contact roll-ups and the deal-contact associations, plus the
# line items (about two per order, so two batches) and their associations (two more).
HUBSPOT_CALLS_PER_100_ORDERS = 8
# Shopify keeps only the last 60 days of orders readable without the read_all_orders scope.
SHOPIFY_DEFAULT_READABLE_DAYS = 60
# NOTE: an estimate of one WooCommerce page of 100 orders, which depends on the site's host.
WOOCOMMERCE_SECONDS_PER_PAGE = 2.0


class BackfillInputError(ValueError):
    """A ``--from`` or ``--to`` value is invalid; the message names it and the fix."""


@dataclass(frozen=True)
class Estimate:
    """Estimated cost of a backfill.

    Attributes:
        orders: Orders in the range, as the store counts them.
        store_calls: Store API calls to read them.
        crm_calls: CRM API calls to write them, or None when no estimate exists.
        seconds: Time at the CRM's rate limit (or the store's, when slower).
        basis: How the CRM part was estimated, in one sentence.
        credits: Zoho API credits the CRM calls cost, or None for other CRMs.
        days: Rolling 24-hour credit windows the backfill needs (Zoho only).
    """

    orders: int
    store_calls: int
    crm_calls: int | None
    seconds: float
    basis: str
    credits: int | None = None
    days: int | None = None


def parse_day(name: str, text: str) -> date:
    """Read a ``YYYY-MM-DD`` option value.

    Raises:
        BackfillInputError: the value is not a date in that form.
    """
    try:
        return date.fromisoformat(text.strip())
    except ValueError as error:
        raise BackfillInputError(f"{name} {text!r} is not a date in the form YYYY-MM-DD, e.g. "
                                 f"{name} 2026-03-01.") from error


def date_range(first: str, last: str, today: date) -> tuple[datetime, datetime]:
    """Return the range's start and end (exclusive) as aware times in Asia/Riyadh.

    Raises:
        BackfillInputError: a date is invalid, ``--to`` is before ``--from``, or
            ``--from`` is in the future.
    """
    start, end = parse_day("--from", first), parse_day("--to", last)
    if end < start:
        raise BackfillInputError(f"--to {end} is before --from {start}; give the earlier "
                                 "date to --from.")
    if start > today:
        raise BackfillInputError(f"--from {start} is in the future (today is {today}); "
                                 "nothing can be imported yet.")
    begin = datetime.combine(start, datetime.min.time(), RIYADH)
    return begin, datetime.combine(end + timedelta(days=1), datetime.min.time(), RIYADH)


def zoho_plan(orders: int, settings: Settings) -> BackfillPlan:
    """Return the Zoho credit plan of writing ``orders`` orders.

    Each order is counted with a contact of its own, the most a backfill can write;
    returning customers make the real cost lower. The whole daily budget of the
    edition (or ``ZOHO_CREDITS_PER_DAY``) is taken as free, because other apps of the
    org may spend from it at any time.
    """
    limit = daily_credits(settings.zoho_edition, settings.zoho_user_licences,
                          settings.zoho_credits_per_day)
    return plan_backfill(orders, orders, daily_limit=limit)


def crm_estimate(orders: int, settings: Settings) -> tuple[int | None, float, str]:
    """Return (CRM calls, seconds, basis) for writing ``orders`` orders to the CRM."""
    if settings.crm_target == "zoho":
        plan = zoho_plan(orders, settings)
        return plan.calls, plan.seconds, (
            f"at most {plan.credits} Zoho credits, {plan.credits_available} a rolling 24 hours "
            f"({settings.zoho_edition} edition), so {plan.days} day(s); about "
            f"{DEFAULT_SECONDS_PER_CALL:g} s per call of 100 records")
    if settings.crm_target == "custom":
        return None, 0.0, "the customer database has no rate limit"
    calls = math.ceil(orders / 100) * HUBSPOT_CALLS_PER_100_ORDERS
    per_second = settings.hubspot_rate_limit_per_10s / 10
    return calls, calls / per_second, (
        f"about {HUBSPOT_CALLS_PER_100_ORDERS} HubSpot calls per 100 orders at "
        f"HUBSPOT_RATE_LIMIT_PER_10S={settings.hubspot_rate_limit_per_10s}")


def estimate(platform: str, orders: int, settings: Settings,
             restore_rate: float | None = None) -> Estimate:
    """Estimate a backfill of ``orders`` orders from ``platform``.

    Args:
        platform: ``shopify`` or ``woocommerce``.
        orders: Orders in the range.
        settings: The CRM target and its rate limit.
        restore_rate: Shopify's cost points restored per second, when known.
    """
    pages = max(1, math.ceil(orders / 100))
    if platform == "shopify":
        from .store_api import DEFAULT_RESTORE_RATE, ESTIMATED_PAGE_COST

        store_seconds = pages * ESTIMATED_PAGE_COST / (restore_rate or DEFAULT_RESTORE_RATE)
    else:
        store_seconds = pages * WOOCOMMERCE_SECONDS_PER_PAGE
    calls, crm_seconds, basis = crm_estimate(orders, settings)
    credits = days = None
    if settings.crm_target == "zoho":
        plan = zoho_plan(orders, settings)
        credits, days = plan.credits, plan.days
    return Estimate(orders=orders, store_calls=pages, crm_calls=calls,
                    seconds=max(store_seconds, crm_seconds), basis=basis, credits=credits,
                    days=days)


def describe(platform: str, result: Estimate) -> str:
    """Return the estimate as one line for the terminal."""
    crm = "unknown" if result.crm_calls is None else str(result.crm_calls)
    minutes = result.seconds / 60
    credits = ("" if result.credits is None else
               f", {result.credits} Zoho credits over {result.days} day(s)")
    return (f"{platform}: {result.orders} orders; about {result.store_calls} store API calls "
            f"and {crm} CRM calls{credits}, about {minutes:.1f} minutes ({result.basis}).")


def shopify_history_warning(start: datetime, today: date) -> str | None:
    """Return a warning when the range reaches past what Shopify shows without read_all_orders."""
    if (today - start.date()).days > SHOPIFY_DEFAULT_READABLE_DAYS:
        return (f"Shopify returns orders older than {SHOPIFY_DEFAULT_READABLE_DAYS} days only "
                "when the app has the read_all_orders scope; without it, older orders are "
                "silently left out.")
    return None

