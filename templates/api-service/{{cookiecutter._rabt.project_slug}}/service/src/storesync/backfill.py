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


def crm_estimate(orders: int, settings: Settings,
                 language: str = "en") -> tuple[int | None, float, str]:
    """Return (CRM calls, seconds, basis) for writing ``orders`` orders to the CRM.

    The basis is written in ``language``: ``en`` or ``ar``.
    """
    arabic = language == "ar"
    if settings.crm_target == "zoho":
        plan = zoho_plan(orders, settings)
        if arabic:
            return plan.calls, plan.seconds, (
                f"نقاط Zoho {plan.credits} على الأكثر، والمتاح منها {plan.credits_available} في "
                f"كل 24 ساعة متجددة (إصدار {settings.zoho_edition})، أي على مدى "
                f"{_arabic_count(plan.days, 'day')}؛ ونحو {DEFAULT_SECONDS_PER_CALL:g} ثانية لكل "
                "استدعاء من 100 سجل")
        return plan.calls, plan.seconds, (
            f"at most {plan.credits} Zoho credits, {plan.credits_available} a rolling 24 hours "
            f"({settings.zoho_edition} edition), so {plan.days} day(s); about "
            f"{DEFAULT_SECONDS_PER_CALL:g} s per call of 100 records")
    if settings.crm_target == "custom":
        return None, 0.0, ("قاعدة بيانات العملاء بلا حد للمعدل" if arabic
                           else "the customer database has no rate limit")
    calls = math.ceil(orders / 100) * HUBSPOT_CALLS_PER_100_ORDERS
    per_second = settings.hubspot_rate_limit_per_10s / 10
    if arabic:
        return calls, calls / per_second, (
            f"استدعاءات HubSpot نحو {HUBSPOT_CALLS_PER_100_ORDERS} لكل 100 طلب وفق "
            f"HUBSPOT_RATE_LIMIT_PER_10S={settings.hubspot_rate_limit_per_10s}")
    return calls, calls / per_second, (
        f"about {HUBSPOT_CALLS_PER_100_ORDERS} HubSpot calls per 100 orders at "
        f"HUBSPOT_RATE_LIMIT_PER_10S={settings.hubspot_rate_limit_per_10s}")


def estimate(platform: str, orders: int, settings: Settings,
             restore_rate: float | None = None, language: str = "en") -> Estimate:
    """Estimate a backfill of ``orders`` orders from ``platform``.

    Args:
        platform: ``shopify`` or ``woocommerce``.
        orders: Orders in the range.
        settings: The CRM target and its rate limit.
        restore_rate: Shopify's cost points restored per second, when known.
        language: The language of the basis, ``en`` or ``ar``.
    """
    pages = max(1, math.ceil(orders / 100))
    if platform == "shopify":
        from .store_api import DEFAULT_RESTORE_RATE, ESTIMATED_PAGE_COST

        store_seconds = pages * ESTIMATED_PAGE_COST / (restore_rate or DEFAULT_RESTORE_RATE)
    else:
        store_seconds = pages * WOOCOMMERCE_SECONDS_PER_PAGE
    calls, crm_seconds, basis = crm_estimate(orders, settings, language)
    credits = days = None
    if settings.crm_target == "zoho":
        plan = zoho_plan(orders, settings)
        credits, days = plan.credits, plan.days
    return Estimate(orders=orders, store_calls=pages, crm_calls=calls,
                    seconds=max(store_seconds, crm_seconds), basis=basis, credits=credits,
                    days=days)


def describe(platform: str, result: Estimate, language: str = "en") -> str:
    """Return the estimate as one line for the terminal, in ``language`` (``en`` or ``ar``)."""
    duration = duration_text(result.seconds, language)
    if language == "ar":
        crm = "غير معروفة" if result.crm_calls is None else f"نحو {result.crm_calls}"
        credits = ("" if result.credits is None else
                   f"، ونقاط Zoho {result.credits} على مدى "
                   f"{_arabic_count(result.days or 0, 'day')}")
        return (f"{platform}: عدد الطلبات {result.orders}، واستدعاءات API المتجر نحو "
                f"{result.store_calls}، واستدعاءات CRM {crm}{credits}، والمدة {duration} "
                f"({result.basis}).")
    crm = "unknown" if result.crm_calls is None else str(result.crm_calls)
    credits = ("" if result.credits is None else
               f", {result.credits} Zoho credits over {result.days} day(s)")
    return (f"{platform}: {result.orders} orders; about {result.store_calls} store API calls "
            f"and {crm} CRM calls{credits}, {duration} ({result.basis}).")


# Arabic unit names by count: one, two, 3 to 10, and 11 or more. The text always follows
# a word that puts it in the genitive (نحو, على مدى), hence the genitive duals.
_ARABIC_UNITS = {
    "day": ("يوم واحد", "يومين", "أيام", "يومًا"),
    "hour": ("ساعة واحدة", "ساعتين", "ساعات", "ساعة"),
    "minute": ("دقيقة واحدة", "دقيقتين", "دقائق", "دقيقة"),
}


def _arabic_count(count: int, unit: str) -> str:
    one, two, few, many = _ARABIC_UNITS[unit]
    if count == 1:
        return one
    if count == 2:
        return two
    return f"{count} {few if 3 <= count % 100 <= 10 else many}"


def duration_text(seconds: float, language: str = "en") -> str:
    """Return an estimated duration rounded to the minute, such as ``about 3 h 20 min``.

    Under an hour it gives minutes, under a day hours and minutes, and from a day on
    days and hours. ``language`` ``ar`` gives the Arabic form, such as ``نحو 3 ساعات و20 دقيقة``.
    """
    minutes = max(0, round(seconds / 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        parts = [("day", days), ("hour", hours)]
    elif hours:
        parts = [("hour", hours), ("minute", minutes)]
    else:
        parts = [("minute", minutes)]
    shown = [(unit, count) for unit, count in parts if count] or [("minute", 0)]
    if language == "ar":
        if minutes == 0 and not days and not hours:
            return "أقل من دقيقة"
        return "نحو " + " و".join(_arabic_count(count, unit) for unit, count in shown)
    if shown == [("minute", 0)]:
        return "under a minute"
    short = {"day": "d", "hour": "h", "minute": "min"}
    return "about " + " ".join(f"{count} {short[unit]}" for unit, count in shown)


def shopify_history_warning(start: datetime, today: date) -> str | None:
    """Return a warning when the range reaches past what Shopify shows without read_all_orders."""
    if (today - start.date()).days > SHOPIFY_DEFAULT_READABLE_DAYS:
        return (f"Shopify returns orders older than {SHOPIFY_DEFAULT_READABLE_DAYS} days only "
                "when the app has the read_all_orders scope; without it, older orders are "
                "silently left out.")
    return None

