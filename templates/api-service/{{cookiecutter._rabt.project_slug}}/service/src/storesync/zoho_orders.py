"""An order's lines in Zoho: one sales order per store order, with its lines in a subform.

Zoho has no line-item module. As the project's n8n and Make workflows do, the service
writes each store order once as a ``Sales_Orders`` record whose ``Product_Details``
subform contains a row per line (``product`` lookup, ``quantity``, ``list_price`` and the
line's title as ``product_description``), linked
to the order's deal through the ``Deal_Name`` lookup. The worker puts one
``sales_orders`` row in the outbox per order; the flusher writes it after the deal and
the products it points at have their Zoho ids.

NOTE: a later change to an order's lines is not written to the sales order, as in the
workflows: updating subform rows needs their Zoho row ids, which are not kept.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from .record_keys import shop_of_key, sku_key
from .runtime.engine import Record
from .sync_store import OutboxItem

OBJECT = "sales_orders"
SUBFORM = "Product_Details"
# The line fields the subform rows take, by field map field name.
LINE_FIELDS = {"sku": "sku", "quantity": "quantity", "unit_price": "list_price",
               "title": "product_description"}


def split_lines(records: Sequence[Record]) -> tuple[list[Record], list[Record]]:
    """Return the records other than order lines, and the order lines."""
    lines = [record for record in records if record.entity == "line_item"]
    return [record for record in records if record.entity != "line_item"], lines


def sales_order_item(order_key: str, subject: str, lines: Sequence[Record],
                     line_fields: Mapping[str, str], event_id: str) -> OutboxItem | None:
    """Return the outbox row of an order's sales order, or None when no line has a SKU.

    Args:
        order_key: The order's key, which the sales order shares.
        subject: The sales order's subject: the deal name.
        lines: The order's line records.
        line_fields: Field name → CRM target of the line item entity.
        event_id: The delivery the lines came from.
    """
    rows = []
    for line in lines:
        row = {name: line.properties.get(line_fields.get(field, ""))
               for field, name in LINE_FIELDS.items()}
        if row["sku"] not in (None, ""):
            rows.append(row)
    if not rows:
        return None
    return OutboxItem(object=OBJECT, key=order_key, properties={"subject": subject,
                                                                "lines": rows},
                      event_id=event_id, resource=f"{OBJECT}:{order_key}")


def product_skus(order_key: str, properties: Mapping[str, Any]) -> list[str]:
    """Return the shop-scoped SKU keys of a sales order row's lines."""
    shop = shop_of_key(order_key)
    return [sku_key(shop, str(line["sku"])) for line in properties.get("lines") or []]


def zoho_record(properties: Mapping[str, Any], deal_id: str, product_ids: Mapping[str, str],
                shop: str) -> dict[str, Any]:
    """Return the ``Sales_Orders`` record of an outbox row.

    Args:
        properties: The row's ``subject`` and ``lines``.
        deal_id: The Zoho id of the order's deal.
        product_ids: Zoho product id by shop-scoped SKU key; every line's SKU is in it.
        shop: The shop part of the order's key.
    """
    rows = []
    for line in properties.get("lines") or []:
        row = {"product": {"id": product_ids[sku_key(shop, str(line["sku"]))]},
               "quantity": _number(line.get("quantity"), 1),
               "list_price": _number(line.get("list_price"), 0)}
        if line.get("product_description"):
            row["product_description"] = str(line["product_description"])
        rows.append(row)
    return {"Subject": str(properties.get("subject") or "")[:255],
            "Deal_Name": {"id": deal_id}, SUBFORM: rows}


def _number(value: Any, default: float) -> float:
    """Return a line's quantity or price as a number; the field map writes money as text."""
    if isinstance(value, bool):
        return default
    try:
        return float(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        return default
