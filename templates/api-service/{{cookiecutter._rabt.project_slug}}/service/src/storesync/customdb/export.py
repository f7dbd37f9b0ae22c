"""The ERP export: orders with their lines, as CSV or JSON, for a date range.

Both shapes are documented in ``docs/customer-database.md`` of the project. Money is
a decimal string with two places (SAR), times are ISO 8601 in UTC, and the range is
calendar days in the store's business time zone (Asia/Riyadh): ``--from`` inclusive,
``--to`` exclusive.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.engine import Engine

from .models import contacts, order_lines, orders

BUSINESS_TIME_ZONE = ZoneInfo("Asia/Riyadh")
EXPORT_FORMAT = "storesync.erp-orders"
EXPORT_VERSION = 1

ORDER_FIELDS = ("order_key", "shop", "store_order_id", "order_name", "ordered_at", "stage",
                "paid", "currency", "total_sar", "refunded_sar", "net_sar")
CUSTOMER_FIELDS = ("contact_key", "email", "phone_e164", "first_name", "last_name", "city")
LINE_FIELDS = ("line_key", "sku", "product_key", "title", "quantity", "unit_price_sar",
               "line_total_sar")
# Written before the CSV so that Excel reads it as UTF-8 and shows Arabic text.
UTF8_BOM = "\ufeff"
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
PLAIN_NUMBER = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")
# CSV: one row per order line; an order without lines gets one row with empty line columns.
CSV_COLUMNS = (*ORDER_FIELDS, *(f"customer_{name}" for name in CUSTOMER_FIELDS),
               *(f"line_{name}" if not name.startswith("line_") else name
                 for name in LINE_FIELDS))


@dataclass(frozen=True)
class DateRange:
    """Calendar days in the business time zone: ``start`` inclusive, ``end`` exclusive."""

    start: date
    end: date

    def bounds(self) -> tuple[datetime, datetime]:
        """Return the range as two aware times."""
        return (datetime.combine(self.start, time(), BUSINESS_TIME_ZONE),
                datetime.combine(self.end, time(), BUSINESS_TIME_ZONE))


def _text(value: Any) -> Any:
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return value


def fetch_orders(engine: Engine, period: DateRange) -> list[dict[str, Any]]:
    """Return the orders placed in ``period`` with their customer and lines, oldest first."""
    start, end = period.bounds()
    query = (select(orders, *(contacts.c[name].label(f"customer_{name}")
                              for name in CUSTOMER_FIELDS if name != "contact_key"))
             .outerjoin(contacts, contacts.c.contact_key == orders.c.contact_key)
             .where(orders.c.ordered_at >= start, orders.c.ordered_at < end)
             .order_by(orders.c.ordered_at, orders.c.order_key))
    with engine.connect() as connection:
        order_rows = [dict(row._mapping) for row in connection.execute(query)]
        keys = [row["order_key"] for row in order_rows]
        line_rows = [dict(row._mapping) for row in connection.execute(
            select(order_lines).where(order_lines.c.order_key.in_(keys))
            .order_by(order_lines.c.order_key, order_lines.c.line_key))] if keys else []
    lines: dict[str, list[dict[str, Any]]] = {}
    for line in line_rows:
        lines.setdefault(line["order_key"], []).append(
            {name: _text(line[name]) for name in LINE_FIELDS})
    return [_order(row, lines.get(row["order_key"], [])) for row in order_rows]


def _order(row: dict[str, Any], lines: list[dict[str, Any]]) -> dict[str, Any]:
    total = row["total_sar"]
    net = None if total is None else total - (row["refunded_sar"] or Decimal(0))
    order = {"order_key": row["order_key"], "shop": row["shop"],
             "store_order_id": row["store_order_id"], "order_name": row["name"],
             "ordered_at": _text(row["ordered_at"]), "stage": row["stage"], "paid": row["paid"],
             "currency": row["currency"], "total_sar": _text(total),
             "refunded_sar": _text(row["refunded_sar"]), "net_sar": _text(net)}
    customer = {"contact_key": row["contact_key"]}
    customer.update({name: row[f"customer_{name}"] for name in CUSTOMER_FIELDS
                     if name != "contact_key"})
    return {**order, "customer": customer, "lines": lines}


def to_json(period: DateRange, exported: list[dict[str, Any]]) -> str:
    """Write the JSON shape: a header and the list of orders, each with its lines."""
    document = {"format": EXPORT_FORMAT, "version": EXPORT_VERSION,
                "from": period.start.isoformat(), "to": period.end.isoformat(),
                "time_zone": str(BUSINESS_TIME_ZONE), "orders": exported}
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


def spreadsheet_safe(value: Any) -> Any:
    """Return ``value`` with ``'`` in front when a spreadsheet would read it as a formula.

    Excel, LibreOffice and Google Sheets run a cell that starts with ``=``, ``+``,
    ``-``, ``@``, a tab or a carriage return as a formula. A plain number such as
    ``-10.05`` or ``+966501234567`` cannot run anything and is kept as it is.
    """
    if not isinstance(value, str) or not value.startswith(FORMULA_PREFIXES):
        return value
    if PLAIN_NUMBER.fullmatch(value):
        return value
    return "'" + value


def to_csv(exported: list[dict[str, Any]]) -> str:
    """Write the CSV shape: a header row, then one row per order line; ``paid`` is true or false.

    Text cells that a spreadsheet would run as a formula get a leading ``'``. The
    text has no byte order mark; :data:`UTF8_BOM` goes in front when it is written out.
    """
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for order in exported:
        base = {name: order[name] for name in ORDER_FIELDS}
        base["paid"] = "true" if order["paid"] else "false"
        base.update({f"customer_{name}": order["customer"][name] for name in CUSTOMER_FIELDS})
        for line in order["lines"] or [{}]:
            row = dict(base)
            for name in LINE_FIELDS:
                row[name if name.startswith("line_") else f"line_{name}"] = line.get(name)
            writer.writerow({name: spreadsheet_safe(value) for name, value in row.items()})
    return buffer.getvalue()
