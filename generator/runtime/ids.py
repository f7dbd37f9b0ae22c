"""Ids, SKUs and deal names as text."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .digits import ascii_digits, is_digit_string, strip_format_marks
from .result import TransformContext, Transformed

__all__ = ["DEAL_NAME_PREFIX", "deal_name", "id_as_text", "id_text", "sku_or_variant_id"]

DEAL_NAME_PREFIX = "Order"

# Where a line item or product keeps the id that replaces a missing SKU, in order
# of preference. Shopify line items carry variant_id (null for custom
# items); WooCommerce line items carry variation_id (0 for simple products) and
# product_id (0 for a deleted product). The last key, "id", is the variant or
# product itself when the engine maps variants[] or a product body.
_SKU_FALLBACK_KEYS: dict[str, Sequence[str]] = {
    "shopify": ("variant_id", "id"),
    "woocommerce": ("variation_id", "product_id", "id"),
    "storefront": ("variant_id", "id"),
}


def id_as_text(value: Any) -> str | None:
    """Write an id as text so that long ids keep every digit.

    Args:
        value: An int, a whole float, or text (Arabic-Indic digits become ASCII).

    Returns:
        The id text, or None for empty input, booleans, fractions and other types.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else None
    if not isinstance(value, str):
        return None
    text = strip_format_marks(value).strip()
    return ascii_digits(text) if is_digit_string(text) else (text or None)


def id_text(value: Any, context: TransformContext) -> Transformed:
    """Transform ``id_text``: write the platform's id as text.

    An id of 0 names no record: WooCommerce sends ``customer_id`` 0 for guest
    orders. It becomes None with the flag "guest".

    Args:
        value: The id as sent.
        context: The transform context (unused; every transform takes one).

    Returns:
        The id text; None with "missing" for empty input, with "guest" for 0, or
        with "invalid_id" and "kept_raw" for input that is not an id.
    """
    if value is None or (isinstance(value, str) and not strip_format_marks(value).strip()):
        return Transformed(value=None, raw=value, flags=("missing",))
    text = id_as_text(value)
    if text is None:
        return Transformed(value=None, raw=value, flags=("invalid_id", "kept_raw"))
    if text == "0":
        return Transformed(value=None, raw=value, flags=("guest",))
    return Transformed(value=text, raw=value)


def sku_or_variant_id(value: Any, context: TransformContext) -> Transformed:
    """Transform ``sku_or_variant_id``: write the SKU, or an id when the SKU is null or "".

    Platforms send ``sku`` null or "" for items without one. The id comes from
    ``context.item`` (the line item or variant being mapped) when it is set, else
    from the payload or its ``product`` object: Shopify ``variant_id``, WooCommerce
    ``variation_id`` then ``product_id``, the storefront's ``variant_id``, then the
    object's own ``id``. Ids of 0 are skipped, because WooCommerce sends
    ``variation_id`` 0 for simple products and ``product_id`` 0 for deleted ones.

    Args:
        value: The SKU as sent.
        context: The transform context.

    Returns:
        The SKU; or the id text with "sku_missing"; or None with "sku_missing"
        and "missing" when there is neither.
    """
    if isinstance(value, str) and value.strip():
        return Transformed(value=value.strip(), raw=value)
    if isinstance(value, int) and not isinstance(value, bool) and value != 0:
        # A numeric SKU, or the id the engine already took from fallback_sources.
        return Transformed(value=str(value), raw=value)

    for holder in _id_holders(context):
        for key in _SKU_FALLBACK_KEYS.get(context.platform, ("variant_id", "id")):
            text = id_as_text(holder.get(key))
            if text not in (None, "0"):
                return Transformed(value=text, raw=value, flags=("sku_missing",))
    return Transformed(value=None, raw=value, flags=("sku_missing", "missing"))


def deal_name(value: Any, context: TransformContext) -> Transformed:
    """Transform ``deal_name``: name the deal after the order number, such as "Order #1001".

    Args:
        value: The order number as sent: "#1001" (Shopify ``name``), "1001" or 1001.
        context: The transform context (unused; every transform takes one).

    Returns:
        The deal name; None with "missing" for empty input, or with
        "invalid_value" and "kept_raw" for input that is not text or a number.
    """
    if isinstance(value, bool) or not isinstance(value, str | int):
        flags = ("missing",) if value is None else ("invalid_value", "kept_raw")
        return Transformed(value=None, raw=value, flags=flags)
    number = ascii_digits(strip_format_marks(str(value))).strip().lstrip("#").strip()
    if not number:
        return Transformed(value=None, raw=value, flags=("missing",))
    return Transformed(value=f"{DEAL_NAME_PREFIX} #{number}", raw=value)


def _id_holders(context: TransformContext) -> list[Mapping[str, Any]]:
    if context.item is not None:
        return [context.item]
    product = context.payload.get("product")
    if isinstance(product, Mapping):
        return [product]
    # Only a product or variant body has its own sku; the top-level id of an order
    # or event body is not a product id.
    return [context.payload] if "sku" in context.payload else []
