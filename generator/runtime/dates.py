"""Timestamps as ISO 8601 with an offset, and calendar dates in Asia/Riyadh."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .digits import ascii_digits, is_digit_string, strip_format_marks
from .result import TransformContext, Transformed

__all__ = ["RIYADH", "iso_datetime", "parse_timestamp", "riyadh_date"]


def _riyadh_zone() -> dt.tzinfo:
    try:
        return ZoneInfo("Asia/Riyadh")
    except ZoneInfoNotFoundError:
        # Slim container images may lack the tz database. Riyadh has kept UTC+3
        # without daylight saving time, so a fixed offset gives the same dates.
        return dt.timezone(dt.timedelta(hours=3), "Asia/Riyadh")


RIYADH = _riyadh_zone()

# Epoch values above this many seconds (year 5138) can only be milliseconds.
_MAX_EPOCH_SECONDS = 10**11
_MAX_EPOCH_DIGITS = 16


def parse_timestamp(value: Any) -> tuple[dt.datetime | None, bool]:
    """Read a timestamp and tell whether its offset was assumed.

    Accepts ISO 8601 text (with "Z" or an offset, or naive), ``datetime`` and
    ``date`` objects, and Unix epoch seconds or milliseconds as numbers or digit text.
    Naive times are read as UTC: WooCommerce's ``*_gmt`` fields are naive UTC.

    Args:
        value: The timestamp as sent.

    Returns:
        ``(moment, assumed_utc)``: the aware datetime, or None when the value is not
        a timestamp, and whether UTC was assumed for a naive value.
    """
    if isinstance(value, bool):
        return None, False
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        moment = dt.datetime(value.year, value.month, value.day)
    elif isinstance(value, int | float):
        return _from_epoch(value), False
    elif isinstance(value, str):
        text = ascii_digits(strip_format_marks(value)).strip()
        if is_digit_string(text):
            # Longer digit runs are no epoch value, and int() refuses over 4300 digits.
            return (_from_epoch(int(text)) if len(text) <= _MAX_EPOCH_DIGITS else None), False
        try:
            moment = dt.datetime.fromisoformat(text)
        except ValueError:
            return None, False
    else:
        return None, False

    if moment.tzinfo is None or moment.utcoffset() is None:
        return moment.replace(tzinfo=dt.UTC), True
    return moment, False


def iso_datetime(value: Any, context: TransformContext) -> Transformed:
    """Transform ``iso_datetime``: write the timestamp as ISO 8601 with its UTC offset.

    The offset the platform sent is kept ("2026-03-01T14:05:00+03:00" stays as is).

    Args:
        value: The timestamp as sent.
        context: The transform context; its platform decides whether a naive time
            is expected.

    Returns:
        The ISO 8601 text. A naive time is read as UTC and, except from WooCommerce
        (whose ``*_gmt`` fields are naive UTC), gets "assumed_utc". Empty input
        gets None with "missing"; text that is not a timestamp gets None with
        "invalid_datetime" and "kept_raw".
    """
    result = _parsed(value, context)
    if not isinstance(result, tuple):
        return result
    moment, flags = result
    return Transformed(value=moment.isoformat(), raw=value, flags=flags)


def riyadh_date(value: Any, context: TransformContext) -> Transformed:
    """Transform ``riyadh_date``: write the calendar date in Asia/Riyadh as YYYY-MM-DD.

    Args:
        value: The timestamp as sent, such as "2026-03-01T22:30:00Z".
        context: The transform context.

    Returns:
        The date text, such as "2026-03-02"; flags as for ``iso_datetime``.
    """
    result = _parsed(value, context)
    if not isinstance(result, tuple):
        return result
    moment, flags = result
    return Transformed(value=moment.astimezone(RIYADH).date().isoformat(), raw=value, flags=flags)


def _parsed(
    value: Any, context: TransformContext
) -> tuple[dt.datetime, tuple[str, ...]] | Transformed:
    if value is None or (isinstance(value, str) and not strip_format_marks(value).strip()):
        return Transformed(value=None, raw=value, flags=("missing",))
    moment, assumed_utc = parse_timestamp(value)
    if moment is None:
        return Transformed(value=None, raw=value, flags=("invalid_datetime", "kept_raw"))
    flags = ("assumed_utc",) if assumed_utc and context.platform != "woocommerce" else ()
    return moment, flags


def _from_epoch(seconds: float) -> dt.datetime | None:
    if math.isnan(seconds) or seconds < 0:
        return None
    if seconds > _MAX_EPOCH_SECONDS:
        seconds = seconds / 1000
    try:
        return dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
    except (OverflowError, OSError, ValueError):
        return None
