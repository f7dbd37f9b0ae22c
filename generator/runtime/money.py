"""Money amounts as exact decimals with two places, and the order's refund total.

Shopify and WooCommerce send order amounts as decimal strings ("149.50"), and
WooCommerce sends a line item's ``price`` as a JSON number. Every amount goes through
``Decimal`` (numbers through ``str()`` first), so no float arithmetic touches money.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from .digits import ascii_digits, strip_format_marks
from .result import TransformContext, Transformed

__all__ = [
    "HOME_CURRENCY",
    "VAT_RATE",
    "money_sar",
    "parse_amount",
    "payload_currency",
    "quantize_sar",
    "refund_total_sar",
    "split_vat",
]

HOME_CURRENCY = "SAR"

# Saudi VAT has been 15 % since 1 July 2020 (5 % from 1 January 2018 until then).
VAT_RATE = Decimal("0.15")

# SAR has two decimal places (1 riyal = 100 halalas).
_CENT = Decimal("0.01")

# No real amount reaches a quadrillion, and rounding to cents needs every digit to
# fit the 28-digit default precision of decimal, so larger values are rejected.
_MAX_AMOUNT = Decimal(10) ** 15

# After the Arabic separators are mapped: an optional sign, then digits either
# grouped by commas in threes or not grouped at all, then an optional fraction.
# "1.234,50" (a European-style amount) does not match and is rejected rather
# than read as 1.2345.
_AMOUNT_TEXT = re.compile(r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|[+-]?\.\d+", re.ASCII)

_CURRENCY_PATHS: tuple[tuple[str, ...], ...] = (
    ("currency",),
    ("order", "currency"),
    ("cart", "currency"),
    ("data", "checkout", "totalPrice", "currencyCode"),
)

_ARABIC_DECIMAL_SEPARATOR = "\u066b"
_ARABIC_THOUSANDS_SEPARATOR = "\u066c"


def parse_amount(value: Any) -> Decimal | None:
    """Read an amount from a decimal string or a number, exactly.

    Strings may use Arabic-Indic digits, the Arabic decimal separator (U+066B), the
    Arabic thousands separator (U+066C), comma thousands separators and spaces
    between digit groups.

    Args:
        value: A str, int, float or Decimal.

    Returns:
        The amount, or None when the value is not a finite amount below 10**15
        (booleans, NaN, infinity, text that is not a number, other types).
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float | Decimal):
        # str() gives the shortest text that reads back as the same float, such
        # as "149.5", so the Decimal is exactly the amount the platform wrote.
        return _finite(str(value))
    if not isinstance(value, str):
        return None

    text = ascii_digits(strip_format_marks(value))
    text = text.replace(_ARABIC_DECIMAL_SEPARATOR, ".").replace(_ARABIC_THOUSANDS_SEPARATOR, ",")
    text = "".join(text.split())
    if not _AMOUNT_TEXT.fullmatch(text):
        return None
    return _finite(text.replace(",", ""))


def quantize_sar(amount: Decimal) -> str:
    """Round ``amount`` to 0.01 half-up and write it with two decimals, such as "149.50".

    NOTE: half-up is the usual rounding for SAR amounts; check which rounding the
    store platform applies if totals must match to the halala.
    """
    return str(amount.quantize(_CENT, rounding=ROUND_HALF_UP))


def split_vat(gross: Decimal, rate: Decimal = VAT_RATE) -> tuple[Decimal, Decimal]:
    """Split a VAT-inclusive amount into its net amount and its VAT.

    Args:
        gross: The amount including VAT, such as a Shopify ``total_price``.
        rate: The VAT rate as a fraction; 15 % in Saudi Arabia since 2020-07-01.

    Returns:
        ``(net, vat)``, each rounded to 0.01 half-up, with ``net + vat == gross``
        whenever ``gross`` has at most two decimals.
    """
    net = (gross / (1 + rate)).quantize(_CENT, rounding=ROUND_HALF_UP)
    vat = gross.quantize(_CENT, rounding=ROUND_HALF_UP) - net
    return net, vat


def payload_currency(context: TransformContext) -> str:
    """Return the currency of the payload, or the shop currency when the payload names none.

    Orders from Shopify and WooCommerce carry ``currency`` at the top level, the
    storefront contract carries it on ``order`` and ``cart``, and a Shopify Web
    Pixels checkout event carries it in ``data.checkout.totalPrice.currencyCode``.
    """
    for path in _CURRENCY_PATHS:
        candidate = _dig(context.payload, path)
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip().upper()
    return context.shop_currency.upper()


def money_sar(value: Any, context: TransformContext) -> Transformed:
    """Transform ``money_sar``: write the amount as text with two decimals, such as "149.50".

    A payload in another currency keeps its amount unconverted. The value stays a
    plain string like every other amount, and the flags "currency_not_sar" and
    "currency:<code>" (for example "currency:USD") name its currency.
    A negative amount keeps its sign and gets "negative_amount".

    Args:
        value: The amount as sent: a decimal string or a number.
        context: The transform context; its payload (or shop currency) gives the currency.

    Returns:
        The amount text as the value; None with "missing" for empty input, or None
        with "invalid_amount" and "kept_raw" when the input is not an amount.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return Transformed(value=None, raw=value, flags=("missing",))
    amount = parse_amount(value)
    if amount is None:
        return Transformed(value=None, raw=value, flags=("invalid_amount", "kept_raw"))

    flags = _currency_flags(context)
    if amount < 0:
        flags = (*flags, "negative_amount")
    return Transformed(value=quantize_sar(amount), raw=value, flags=flags)


def refund_total_sar(value: Any, context: TransformContext) -> Transformed:
    """Transform ``refund_total_sar``: add up the order's refunds as one positive amount.

    The amounts are read from the payload when it has refund data, because only
    the payload marks failed Shopify transactions. Shopify sends positive
    ``refunds[].transactions[].amount`` strings, and a refunds/create body has its
    own ``transactions[]``. WooCommerce sends negative ``refunds[].total`` strings,
    and the storefront sends ``order.refunds[].amount``. Without refund data in the
    payload, the amounts come from ``value``: one amount or a list that may be
    nested. Each amount counts by its absolute value.

    Args:
        value: The resolved refund amounts, or None.
        context: The transform context.

    Returns:
        The total as text such as "20.00", "0.00" when the order has no refunds, or
        None with "invalid_amount" and "kept_raw" when an amount cannot be read.
    """
    amounts = _payload_refunds(context)
    if amounts is None:
        amounts = list(_flatten(value))

    total = Decimal(0)
    for raw_amount in amounts:
        amount = parse_amount(raw_amount)
        if amount is None:
            return Transformed(value=None, raw=value, flags=("invalid_amount", "kept_raw"))
        total += abs(amount)
    return Transformed(value=quantize_sar(total), raw=value, flags=_currency_flags(context))


def _finite(text: str) -> Decimal | None:
    try:
        amount = Decimal(text)
    except InvalidOperation:
        return None
    if not amount.is_finite() or abs(amount) >= _MAX_AMOUNT:
        return None
    return amount


def _currency_flags(context: TransformContext) -> tuple[str, ...]:
    currency = payload_currency(context)
    if currency == HOME_CURRENCY:
        return ()
    return ("currency_not_sar", f"currency:{currency}")


def _flatten(value: Any) -> Iterable[Any]:
    if isinstance(value, list | tuple):
        for element in value:
            yield from _flatten(element)
    elif value is not None:
        yield value


def _payload_refunds(context: TransformContext) -> list[Any] | None:
    """Return the refund amounts in the payload, or None when it has no refund data."""
    payload = context.payload
    order = payload.get("order")
    if context.platform == "storefront":
        if not isinstance(order, Mapping) or "refunds" not in order:
            return None
        return [refund.get("amount") for refund in _mappings(order.get("refunds"))]
    if "refunds" in payload:
        refunds = _mappings(payload.get("refunds"))
    elif context.platform == "shopify" and "transactions" in payload:
        refunds = [payload]  # a refunds/create body is one refund
    else:
        return None

    if context.platform == "woocommerce":
        return [refund.get("total") for refund in refunds]
    return [
        transaction.get("amount")
        for refund in refunds
        for transaction in _mappings(refund.get("transactions"))
        if transaction.get("status") in (None, "success")
        and transaction.get("kind") in (None, "refund")
    ]


def _dig(data: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    current: Any = data
    for key in path:
        if not isinstance(current, Mapping):
            return None
        current = current.get(key)
    return current


def _mappings(value: Any) -> list[Mapping[str, Any]]:
    if not isinstance(value, list):
        return []
    return [element for element in value if isinstance(element, Mapping)]
