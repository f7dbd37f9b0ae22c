"""The value every transform returns and the context every transform receives."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["UNUSABLE_FLAGS", "Transform", "TransformContext", "Transformed"]

# Flags that mean the value must not be written to the CRM. Other flags, such as
# "landline", "not_messageable", "currency_not_sar" or "guest", describe a value
# that is still correct to send.
UNUSABLE_FLAGS: frozenset[str] = frozenset({
    "invalid_amount",
    "invalid_datetime",
    "invalid_email",
    "invalid_id",
    "invalid_phone",
    "invalid_value",
    "missing",
    "unknown_channel",
    "unknown_city",
    "unknown_event",
    "unknown_status",
    "unknown_transform",
})


@dataclass(frozen=True)
class Transformed:
    """Result of one transform.

    Attributes:
        value: The cleaned value, or None when nothing usable is left. A None value
            is left out of the CRM record, never sent as an empty value.
        raw: The input exactly as received.
        flags: Machine-readable notes, such as "invalid_phone" or "currency:USD".
    """

    value: Any
    raw: Any
    flags: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether no flag in ``UNUSABLE_FLAGS`` is set."""
        return not any(flag in UNUSABLE_FLAGS for flag in self.flags)


@dataclass(frozen=True)
class TransformContext:
    """Everything a transform may read besides its own input value.

    Attributes:
        payload: The whole source payload (order, customer, event, ...).
        platform: The source family: "shopify", "woocommerce" or "storefront".
        mapping: The whole integration/mapping.yaml document.
        region: Default region for phone numbers without a country code.
        shop_currency: Currency assumed when the payload names none.
        item: The current list element when an entity maps one record per element,
            such as one line item of ``line_items[]``.
    """

    payload: Mapping[str, Any]
    platform: str
    mapping: Mapping[str, Any]
    region: str = "SA"
    shop_currency: str = "SAR"
    item: Mapping[str, Any] | None = None


Transform = Callable[[Any, TransformContext], Transformed]
