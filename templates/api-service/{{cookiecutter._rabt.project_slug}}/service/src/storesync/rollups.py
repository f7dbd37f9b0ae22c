"""Contact roll-ups computed from the service's own copy of each order.

Store payloads carry one order at a time, so the orders count, lifetime value and
first and last order of a contact come from the ``sync_orders`` table. Each order is
stored once under its key and replaced by newer states, so a replayed or duplicated
delivery changes nothing and the totals are never counted twice.

Rules, as the field map's roll-up rules state them: an order counts when its stage is
a won stage (paid, fulfilled). Cancelled, fully refunded and unpaid orders do not. Lifetime value
is the sum of counted order totals minus their refunds, in SAR, with ``Decimal``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from .sync_store import OrderState

CENTS = Decimal("0.01")
SAR = "SAR"


@dataclass(frozen=True)
class OrderFields:
    """The CRM properties of a deal record that the roll-ups read."""

    amount: str | None
    refunded: str | None
    stage: str | None
    ordered_at: str | None
    source: str | None
    currency: str | None

    @classmethod
    def from_targets(cls, targets: Mapping[str, str]) -> OrderFields:
        """Build from the order entity's ``field name → CRM property`` map."""
        return cls(amount=targets.get("amount"), refunded=targets.get("refunded_amount"),
                   stage=targets.get("stage"), ordered_at=targets.get("close_date"),
                   source=targets.get("order_source"), currency=targets.get("currency"))


def _text(properties: Mapping[str, Any], name: str | None) -> str | None:
    if name is None:
        return None
    value = properties.get(name)
    return None if value is None else str(value)


def order_state(key: str, contact_key: str | None, properties: Mapping[str, Any],
                fields: OrderFields, won_stages: Mapping[str, bool]) -> OrderState:
    """Build the stored state of one order from its deal record's properties.

    An order in another currency than SAR keeps no total, because the lifetime value
    is in SAR and the service has no exchange rate. It still counts as an order.
    """
    stage = _text(properties, fields.stage)
    currency = _text(properties, fields.currency)
    in_sar = currency is None or currency.upper() == SAR
    return OrderState(
        order_key=key,
        contact_key=contact_key,
        stage=stage,
        won=bool(won_stages.get(stage or "", False)),
        total=_text(properties, fields.amount) if in_sar else None,
        refunded=_text(properties, fields.refunded) if in_sar else None,
        ordered_at=_text(properties, fields.ordered_at),
        source=_text(properties, fields.source),
    )


def _decimal(value: str | None) -> Decimal:
    if value is None:
        return Decimal(0)
    try:
        return Decimal(value)
    except InvalidOperation:
        return Decimal(0)


def _when(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def compute_rollups(orders: Sequence[OrderState], targets: Mapping[str, str]) -> dict[str, Any]:
    """Compute the contact roll-ups from every stored order of the contact.

    Args:
        orders: The contact's orders, each stored once.
        targets: Roll-up name → CRM property (``orders_count`` → ``ecom_orders_count``).

    Returns:
        CRM property → value for the roll-ups the field map names. The first and
        last order times are None while no paid order gives them, so a contact whose
        only paid order was cancelled or refunded loses its old times. The custom
        database writer stores None as NULL, and the HubSpot flusher sends it as an
        empty string, which clears the property. Sources are left out while no order
        gives them.
    """
    counted = [order for order in orders if order.won]
    values: dict[str, Any] = {
        "orders_count": len(counted),
        "ltv_sar": str(sum((_decimal(order.total) - _decimal(order.refunded).copy_abs()
                            for order in counted), Decimal(0)).quantize(CENTS, ROUND_HALF_UP)),
    }
    timed = sorted(((when, order) for order in counted
                    if (when := _when(order.ordered_at)) is not None),
                   key=lambda pair: (pair[0], pair[1].order_key))
    values["first_order_at"] = timed[0][1].ordered_at if timed else None
    values["last_order_at"] = timed[-1][1].ordered_at if timed else None
    # The first and last channel come from every order with a source, paid or not.
    sourced = sorted(((when, order) for order in orders
                      if order.source and (when := _when(order.ordered_at)) is not None),
                     key=lambda pair: (pair[0], pair[1].order_key))
    if sourced:
        values["first_source"] = sourced[0][1].source
        values["last_source"] = sourced[-1][1].source
    return {targets[name]: value for name, value in values.items() if name in targets}
