"""Tables of the customer database, as SQLAlchemy Core metadata.

The writer and the export build their statements from these tables, and a test checks
that the migrations create exactly this schema. The migrations do not import this
module: each revision keeps its own copy of the tables as they were at that revision.

Conventions: money is ``numeric(14, 2)`` in SAR, times are ``timestamptz``, phones are
E.164 text. Every synced row keeps ``source_updated_at`` (the newest-state guard), the
delivery that last changed it (``source_event_id``) and the mapped record as written
(``record``, jsonb). ``source_payloads`` keeps each delivery's raw body for audit.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Computed,
    DateTime,
    Index,
    Integer,
    MetaData,
    Numeric,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData()

# SAR has two decimal places (ISO 4217); 14 digits hold amounts up to 10^12 SAR.
Money = Numeric(14, 2)
Time = DateTime(timezone=True)
E164_PATTERN = r"^\+[1-9][0-9]{6,14}$"


def _key(name: str) -> Column[str]:
    return Column(name, Text, primary_key=True)


def _texts(*names: str) -> list[Column[str]]:
    return [Column(name, Text) for name in names]


def _times(*names: str) -> list[Column[object]]:
    return [Column(name, Time) for name in names]


def _amounts(*names: str) -> list[Column[object]]:
    return [Column(name, Money) for name in names]


def _indexes(table: str, *columns: str) -> list[Index]:
    """Return a ``<table>_<column>_idx`` index on each column."""
    return [Index(f"{table}_{column}_idx", column) for column in columns]


def _unique_when_set(table: str, *columns: str) -> list[Index]:
    """Return a ``<table>_<column>_key`` unique index on each column, over non-null values."""
    return [Index(f"{table}_{column}_key", column, unique=True,
                  postgresql_where=text(f"{column} IS NOT NULL")) for column in columns]


def _sync_columns() -> list[Column[object]]:
    """Return the audit columns every synced table has."""
    return [
        Column("source_updated_at", Time, nullable=False),
        Column("source_event_id", Text),
        Column("record", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
        Column("created_at", Time, nullable=False, server_default=func.now()),
        Column("updated_at", Time, nullable=False, server_default=func.now()),
    ]


contacts = Table(
    "contacts", metadata,
    _key("contact_key"),
    *_texts("store_customer_id", "email", "phone_e164", "first_name", "last_name", "city",
            "city_raw"),
    *_times("first_order_at", "last_order_at"),
    Column("orders_count", Integer, nullable=False, server_default=text("0")),
    Column("ltv_sar", Money, nullable=False, server_default=text("0")),
    *_texts("first_source", "last_source"),
    *_times("last_checkout_at"),
    *_amounts("last_cart_value_sar"),
    *_texts("last_cart_url"),
    *_times("marketing_opt_in_at"),
    *_texts("playbook_step", "discount_code"),
    *_times("discount_expires_at"),
    *_texts("lifecycle_stage"),
    Column("vip", Boolean, nullable=False, server_default=text("false")),
    *_sync_columns(),
    CheckConstraint(f"phone_e164 ~ '{E164_PATTERN}'", name="contacts_phone_e164_format"),
    *_unique_when_set("contacts", "store_customer_id", "email", "phone_e164"),
    *_indexes("contacts", "last_order_at", "ltv_sar", "marketing_opt_in_at", "first_source"),
)

orders = Table(
    "orders", metadata,
    _key("order_key"),
    Column("shop", Text, nullable=False),
    Column("store_order_id", Text, nullable=False),
    *_texts("contact_key", "name"),
    *_amounts("total_sar"),
    Column("refunded_sar", Money, nullable=False, server_default=text("0")),
    *_texts("currency", "stage"),
    Column("paid", Boolean, nullable=False, server_default=text("false")),
    *_times("ordered_at"),
    *_texts("discount_codes", "source_channel", "pipeline"),
    *_sync_columns(),
    Index("orders_contact_paid_idx", "contact_key", "ordered_at",
          postgresql_where=text("paid")),
    *_indexes("orders", "ordered_at"),
)

order_lines = Table(
    "order_lines", metadata,
    _key("line_key"),
    *_texts("order_key", "product_key", "store_line_item_id", "sku", "title"),
    Column("quantity", Integer),
    *_amounts("unit_price_sar"),
    Column("line_total_sar", Money, Computed("quantity * unit_price_sar", persisted=True)),
    *_sync_columns(),
    *_indexes("order_lines", "order_key", "sku"),
)

products = Table(
    "products", metadata,
    _key("product_key"),
    *_texts("external_id", "sku", "title"),
    *_amounts("price_sar"),
    *_texts("category", "description"),
    *_sync_columns(),
    *_indexes("products", "sku"),
)

tickets = Table(
    "tickets", metadata,
    _key("ticket_key"),
    *_texts("external_id", "contact_key", "subject", "body", "channel", "status", "priority"),
    *_times("opened_at", "first_reply_at"),
    *_texts("order_external_id"),
    *_sync_columns(),
    *_indexes("tickets", "contact_key", "opened_at"),
)

# Behaviour events, and one consent row per contact, channel and capture time; the
# newest row per contact and channel is the current consent (see customdb.writer).
events = Table(
    "events", metadata,
    _key("event_id"),
    Column("event_key", Text, nullable=False),
    Column("occurred_at", Time, nullable=False),
    *_texts("contact_key", "contact_email", "cart_token"),
    *_amounts("value_sar"),
    *_texts("sku"),
    *_sync_columns(),
    Index("events_contact_occurred_idx", "contact_key", "occurred_at"),
    Index("events_key_occurred_idx", "event_key", "occurred_at"),
)

consents = Table(
    "consents", metadata,
    _key("contact_key"),
    _key("channel"),
    Column("captured_at", Time, primary_key=True),
    Column("state", Text, nullable=False),
    *_texts("source", "wording_version", "source_event_id"),
    CheckConstraint("channel IN ('email', 'sms', 'whatsapp')", name="consents_channel_known"),
    CheckConstraint("state IN ('granted', 'not_granted', 'withdrawn')",
                    name="consents_state_known"),
)

source_payloads = Table(
    "source_payloads", metadata,
    _key("event_id"),
    Column("source", Text, nullable=False),
    *_texts("topic", "shop"),
    Column("received_at", Time, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("body", JSONB, nullable=False),
    Column("stored_at", Time, nullable=False, server_default=func.now()),
    *_indexes("source_payloads", "received_at"),
)

record_failures = Table(
    "record_failures", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("event_id", Text),
    Column("object", Text, nullable=False),
    Column("record_key", Text, nullable=False),
    Column("error", Text, nullable=False),
    Column("failed_at", Time, nullable=False, server_default=func.now()),
    *_indexes("record_failures", "event_id"),
)

segment_parameters = Table(
    "segment_parameters", metadata,
    _key("name"),
    Column("value", Numeric, nullable=False),
    Column("source", Text, nullable=False),
)

# Outbox object → table and its key column. The outbox names orders "deals" and line
# items "line_items", as the HubSpot flusher does.
OUTBOX_TABLES: dict[str, tuple[Table, str]] = {
    "contacts": (contacts, "contact_key"),
    "products": (products, "product_key"),
    "tickets": (tickets, "ticket_key"),
    "deals": (orders, "order_key"),
    "line_items": (order_lines, "line_key"),
    "events": (events, "event_id"),
}
