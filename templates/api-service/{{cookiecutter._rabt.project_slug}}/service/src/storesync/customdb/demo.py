"""The demo's output for ``CRM_TARGET=custom``: the rows the samples left in PostgreSQL.

``python -m storesync demo`` posts the samples as for HubSpot, waits for the outbox
to empty, then calls :func:`print_rows` instead of reading the HubSpot stand-in.
Emails and phones are masked, as in the HubSpot demo.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from ..demo import DemoError
from ..logs import mask_email, mask_phone
from .connection import opened_engine
from .writer import require_database_url

# Table → (key column, shown columns), in the order the demo prints them.
SHOWN_TABLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "contacts": ("contact_key", ("first_name", "last_name", "email", "phone_e164", "city",
                                 "orders_count", "ltv_sar", "first_source", "last_source")),
    "orders": ("order_key", ("contact_key", "name", "total_sar", "refunded_sar", "stage",
                             "paid", "ordered_at")),
    "order_lines": ("line_key", ("order_key", "sku", "title", "quantity", "unit_price_sar",
                                 "line_total_sar")),
}


def _display_value(column: str, value: Any) -> str:
    if value is None or value == "":
        return "-"
    if column == "email":
        return mask_email(str(value))
    if column == "phone_e164":
        return mask_phone(str(value))
    return str(value)


def print_rows(settings: Any, echo: Callable[[str], None]) -> dict[str, int]:
    """Print the contacts, orders and order lines of the customer database; return the counts.

    Raises:
        DemoError: no database URL is known, or the database cannot be read.
    """
    try:
        return _print_tables(require_database_url(settings), echo)
    except (ValueError, SQLAlchemyError) as error:
        raise DemoError(f"cannot read the customer database: {type(error).__name__}: "
                        f"{(str(error).strip().splitlines() or [''])[0]}") from error


def _print_tables(url: str, echo: Callable[[str], None]) -> dict[str, int]:
    counts: dict[str, int] = {}
    with opened_engine(url) as engine, engine.connect() as connection:
        for table, (key, columns) in SHOWN_TABLES.items():
            rows = connection.execute(text(
                f"SELECT {key}, {', '.join(columns)} FROM {table} ORDER BY {key}")).all()
            counts[table] = len(rows)
            echo(f"\n{table} ({len(rows)}):")
            for row in rows:
                values = row._mapping
                shown = ", ".join(f"{column}={_display_value(column, values[column])}"
                                  for column in columns)
                echo(f"  {values[key]}  {shown}")
    return counts
