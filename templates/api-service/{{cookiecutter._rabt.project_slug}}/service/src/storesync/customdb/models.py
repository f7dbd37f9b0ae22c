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
E164_PATTERN = r"^\+[1-9][0-9]{6,14}$"


def _sync_columns() -> list[Column[object]]:
    """Return the audit columns every synced table has."""
    return [
        Column("source_updated_at", DateTime(timezone=True), nullable=False),
        Column("source_event_id", Text),
        Column("record", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    ]


contacts = Table(
    "contacts", metadata,
    Column("contact_key", Text, primary_key=True),
    Column("store_customer_id", Text),
    Column("email", Text),
    Column("phone_e164", Text),
    Column("first_name", Text),
    Column("last_name", Text),
    Column("city", Text),
    Column("city_raw", Text),
    Column("first_order_at", DateTime(timezone=True)),
    Column("last_order_at", DateTime(timezone=True)),
    Column("orders_count", Integer, nullable=False, server_default=text("0")),
    Column("ltv_sar", Money, nullable=False, server_default=text("0")),
    Column("first_source", Text),
    Column("last_source", Text),
    Column("last_checkout_at", DateTime(timezone=True)),
    Column("last_cart_value_sar", Money),
    Column("last_cart_url", Text),
    Column("marketing_opt_in_at", DateTime(timezone=True)),
    Column("playbook_step", Text),
    Column("discount_code", Text),
    Column("discount_expires_at", DateTime(timezone=True)),
    Column("lifecycle_stage", Text),
    Column("vip", Boolean, nullable=False, server_default=text("false")),
    *_sync_columns(),
    CheckConstraint(f"phone_e164 ~ '{E164_PATTERN}'", name="contacts_phone_e164_format"),
    Index("contacts_store_customer_id_key", "store_customer_id", unique=True,
          postgresql_where=text("store_customer_id IS NOT NULL")),
    Index("contacts_email_key", "email", unique=True, postgresql_where=text("email IS NOT NULL")),
    Index("contacts_phone_e164_key", "phone_e164", unique=True,
          postgresql_where=text("phone_e164 IS NOT NULL")),
    Index("contacts_last_order_at_idx", "last_order_at"),
    Index("contacts_ltv_sar_idx", "ltv_sar"),
    Index("contacts_marketing_opt_in_at_idx", "marketing_opt_in_at"),
    Index("contacts_first_source_idx", "first_source"),
)

orders = Table(
    "orders", metadata,
    Column("order_key", Text, primary_key=True),
    Column("shop", Text, nullable=False),
    Column("store_order_id", Text, nullable=False),
    Column("contact_key", Text),
    Column("name", Text),
    Column("total_sar", Money),
    Column("refunded_sar", Money, nullable=False, server_default=text("0")),
    Column("currency", Text),
    Column("stage", Text),
    Column("paid", Boolean, nullable=False, server_default=text("false")),
    Column("ordered_at", DateTime(timezone=True)),
    Column("discount_codes", Text),
    Column("source_channel", Text),
    Column("pipeline", Text),
    *_sync_columns(),
    Index("orders_contact_paid_idx", "contact_key", "ordered_at",
          postgresql_where=text("paid")),
    Index("orders_ordered_at_idx", "ordered_at"),
)

order_lines = Table(
    "order_lines", metadata,
    Column("line_key", Text, primary_key=True),
    Column("order_key", Text),
    Column("product_key", Text),
    Column("store_line_item_id", Text),
    Column("sku", Text),
    Column("title", Text),
    Column("quantity", Integer),
    Column("unit_price_sar", Money),
    Column("line_total_sar", Money, Computed("quantity * unit_price_sar", persisted=True)),
    *_sync_columns(),
    Index("order_lines_order_key_idx", "order_key"),
    Index("order_lines_sku_idx", "sku"),
)

products = Table(
    "products", metadata,
    Column("product_key", Text, primary_key=True),
    Column("external_id", Text),
    Column("sku", Text),
    Column("title", Text),
    Column("price_sar", Money),
    Column("category", Text),
    Column("description", Text),
    *_sync_columns(),
    Index("products_sku_idx", "sku"),
)

tickets = Table(
    "tickets", metadata,
    Column("ticket_key", Text, primary_key=True),
    Column("external_id", Text),
    Column("contact_key", Text),
    Column("subject", Text),
    Column("body", Text),
    Column("channel", Text),
    Column("status", Text),
    Column("priority", Text),
    Column("opened_at", DateTime(timezone=True)),
    Column("first_reply_at", DateTime(timezone=True)),
    Column("order_external_id", Text),
    *_sync_columns(),
    Index("tickets_contact_key_idx", "contact_key"),
    Index("tickets_opened_at_idx", "opened_at"),
)

# Behaviour events, and one consent row per contact, channel and capture time; the
# newest row per contact and channel is the current consent (see customdb.writer).
events = Table(
    "events", metadata,
    Column("event_id", Text, primary_key=True),
    Column("event_key", Text, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
    Column("contact_key", Text),
    Column("contact_email", Text),
    Column("cart_token", Text),
    Column("value_sar", Money),
    Column("sku", Text),
    *_sync_columns(),
    Index("events_contact_occurred_idx", "contact_key", "occurred_at"),
    Index("events_key_occurred_idx", "event_key", "occurred_at"),
)

consents = Table(
    "consents", metadata,
    Column("contact_key", Text, primary_key=True),
    Column("channel", Text, primary_key=True),
    Column("captured_at", DateTime(timezone=True), primary_key=True),
    Column("state", Text, nullable=False),
    Column("source", Text),
    Column("wording_version", Text),
    Column("source_event_id", Text),
    CheckConstraint("channel IN ('email', 'sms', 'whatsapp')", name="consents_channel_known"),
    CheckConstraint("state IN ('granted', 'not_granted', 'withdrawn')",
                    name="consents_state_known"),
)

source_payloads = Table(
    "source_payloads", metadata,
    Column("event_id", Text, primary_key=True),
    Column("source", Text, nullable=False),
    Column("topic", Text),
    Column("shop", Text),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("outcome", Text, nullable=False),
    Column("body", JSONB, nullable=False),
    Column("stored_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("source_payloads_received_at_idx", "received_at"),
)

record_failures = Table(
    "record_failures", metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("event_id", Text),
    Column("object", Text, nullable=False),
    Column("record_key", Text, nullable=False),
    Column("error", Text, nullable=False),
    Column("failed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("record_failures_event_id_idx", "event_id"),
)

segment_parameters = Table(
    "segment_parameters", metadata,
    Column("name", Text, primary_key=True),
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
