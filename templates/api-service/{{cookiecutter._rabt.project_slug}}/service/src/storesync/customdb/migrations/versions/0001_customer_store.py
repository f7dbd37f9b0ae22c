"""Create the customer store: synced tables, audit tables, segment and KPI views.

Revision ID: 0001_customer_store
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001_customer_store"
down_revision = None
branch_labels = None
depends_on = None

MONEY = sa.Numeric(14, 2)
TIME = sa.DateTime(timezone=True)
# Cohort months and days are counted in the store's business time zone.
BUSINESS_TIME_ZONE = "Asia/Riyadh"


def _sync_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("source_updated_at", TIME, nullable=False),
        sa.Column("source_event_id", sa.Text),
        sa.Column("record", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column("created_at", TIME, nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", TIME, nullable=False, server_default=sa.func.now()),
    ]


def _create_contacts() -> None:
    op.create_table(
        "contacts",
        sa.Column("contact_key", sa.Text, primary_key=True),
        *(sa.Column(name, sa.Text) for name in (
            "store_customer_id", "email", "phone_e164", "first_name", "last_name", "city",
            "city_raw")),
        sa.Column("first_order_at", TIME),
        sa.Column("last_order_at", TIME),
        sa.Column("orders_count", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("ltv_sar", MONEY, nullable=False, server_default=sa.text("0")),
        sa.Column("first_source", sa.Text),
        sa.Column("last_source", sa.Text),
        sa.Column("last_checkout_at", TIME),
        sa.Column("last_cart_value_sar", MONEY),
        sa.Column("last_cart_url", sa.Text),
        sa.Column("marketing_opt_in_at", TIME),
        sa.Column("playbook_step", sa.Text),
        sa.Column("discount_code", sa.Text),
        sa.Column("discount_expires_at", TIME),
        sa.Column("lifecycle_stage", sa.Text),
        sa.Column("vip", sa.Boolean, nullable=False, server_default=sa.text("false")),
        *_sync_columns(),
        sa.CheckConstraint(r"phone_e164 ~ '^\+[1-9][0-9]{6,14}$'",
                           name="contacts_phone_e164_format"),
    )
    for column in ("store_customer_id", "email", "phone_e164"):
        op.create_index(f"contacts_{column}_key", "contacts", [column], unique=True,
                        postgresql_where=sa.text(f"{column} IS NOT NULL"))
    for column in ("last_order_at", "ltv_sar", "marketing_opt_in_at", "first_source"):
        op.create_index(f"contacts_{column}_idx", "contacts", [column])


def _create_orders() -> None:
    op.create_table(
        "orders",
        sa.Column("order_key", sa.Text, primary_key=True),
        sa.Column("shop", sa.Text, nullable=False),
        sa.Column("store_order_id", sa.Text, nullable=False),
        sa.Column("contact_key", sa.Text),
        sa.Column("name", sa.Text),
        sa.Column("total_sar", MONEY),
        sa.Column("refunded_sar", MONEY, nullable=False, server_default=sa.text("0")),
        sa.Column("currency", sa.Text),
        sa.Column("stage", sa.Text),
        sa.Column("paid", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("ordered_at", TIME),
        sa.Column("discount_codes", sa.Text),
        sa.Column("source_channel", sa.Text),
        sa.Column("pipeline", sa.Text),
        *_sync_columns(),
    )
    op.create_index("orders_contact_paid_idx", "orders", ["contact_key", "ordered_at"],
                    postgresql_where=sa.text("paid"))
    op.create_index("orders_ordered_at_idx", "orders", ["ordered_at"])
    op.create_table(
        "order_lines",
        sa.Column("line_key", sa.Text, primary_key=True),
        *(sa.Column(name, sa.Text) for name in (
            "order_key", "product_key", "store_line_item_id", "sku", "title")),
        sa.Column("quantity", sa.Integer),
        sa.Column("unit_price_sar", MONEY),
        sa.Column("line_total_sar", MONEY,
                  sa.Computed("quantity * unit_price_sar", persisted=True)),
        *_sync_columns(),
    )
    op.create_index("order_lines_order_key_idx", "order_lines", ["order_key"])
    op.create_index("order_lines_sku_idx", "order_lines", ["sku"])


def _create_catalogue_and_support() -> None:
    op.create_table(
        "products",
        sa.Column("product_key", sa.Text, primary_key=True),
        *(sa.Column(name, sa.Text) for name in ("external_id", "sku", "title")),
        sa.Column("price_sar", MONEY),
        sa.Column("category", sa.Text),
        sa.Column("description", sa.Text),
        *_sync_columns(),
    )
    op.create_index("products_sku_idx", "products", ["sku"])
    op.create_table(
        "tickets",
        sa.Column("ticket_key", sa.Text, primary_key=True),
        *(sa.Column(name, sa.Text) for name in (
            "external_id", "contact_key", "subject", "body", "channel", "status", "priority")),
        sa.Column("opened_at", TIME),
        sa.Column("first_reply_at", TIME),
        sa.Column("order_external_id", sa.Text),
        *_sync_columns(),
    )
    op.create_index("tickets_contact_key_idx", "tickets", ["contact_key"])
    op.create_index("tickets_opened_at_idx", "tickets", ["opened_at"])
    op.create_table(
        "events",
        sa.Column("event_id", sa.Text, primary_key=True),
        sa.Column("event_key", sa.Text, nullable=False),
        sa.Column("occurred_at", TIME, nullable=False),
        *(sa.Column(name, sa.Text) for name in ("contact_key", "contact_email", "cart_token")),
        sa.Column("value_sar", MONEY),
        sa.Column("sku", sa.Text),
        *_sync_columns(),
    )
    op.create_index("events_contact_occurred_idx", "events", ["contact_key", "occurred_at"])
    op.create_index("events_key_occurred_idx", "events", ["event_key", "occurred_at"])
    op.create_table(
        "consents",
        sa.Column("contact_key", sa.Text, primary_key=True),
        sa.Column("channel", sa.Text, primary_key=True),
        sa.Column("captured_at", TIME, primary_key=True),
        sa.Column("state", sa.Text, nullable=False),
        sa.Column("source", sa.Text),
        sa.Column("wording_version", sa.Text),
        sa.Column("source_event_id", sa.Text),
        sa.CheckConstraint("channel IN ('email', 'sms', 'whatsapp')",
                           name="consents_channel_known"),
        sa.CheckConstraint("state IN ('granted', 'not_granted', 'withdrawn')",
                           name="consents_state_known"),
    )


def _create_audit_tables() -> None:
    op.create_table(
        "source_payloads",
        sa.Column("event_id", sa.Text, primary_key=True),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("topic", sa.Text),
        sa.Column("shop", sa.Text),
        sa.Column("received_at", TIME, nullable=False),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("body", JSONB, nullable=False),
        sa.Column("stored_at", TIME, nullable=False, server_default=sa.func.now()),
    )
    op.create_index("source_payloads_received_at_idx", "source_payloads", ["received_at"])
    op.create_table(
        "record_failures",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.Text),
        sa.Column("object", sa.Text, nullable=False),
        sa.Column("record_key", sa.Text, nullable=False),
        sa.Column("error", sa.Text, nullable=False),
        sa.Column("failed_at", TIME, nullable=False, server_default=sa.func.now()),
    )
    op.create_index("record_failures_event_id_idx", "record_failures", ["event_id"])
    op.create_table(
        "segment_parameters",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("value", sa.Numeric, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
    )


# VIP has an entry and a lower exit threshold, so membership depends on the previous
# state: a contact stays VIP until the lifetime value drops below the exit threshold.
VIP_TRIGGER = """
CREATE FUNCTION contacts_set_vip() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    entry_sar numeric := (SELECT value FROM segment_parameters WHERE name = 'vip_entry_sar');
    exit_sar numeric := (SELECT value FROM segment_parameters WHERE name = 'vip_exit_sar');
BEGIN
    NEW.vip := coalesce(NEW.ltv_sar >= entry_sar, false)
        OR (TG_OP = 'UPDATE' AND OLD.vip AND coalesce(NEW.ltv_sar >= exit_sar, false));
    RETURN NEW;
END $$;
CREATE TRIGGER contacts_vip BEFORE INSERT OR UPDATE OF ltv_sar ON contacts
    FOR EACH ROW EXECUTE FUNCTION contacts_set_vip();
"""

SEGMENT_COLUMNS = ("contact_key, email, phone_e164, first_name, last_name, city, orders_count, "
                   "ltv_sar, first_order_at, last_order_at, marketing_opt_in_at, first_source, "
                   "last_source")


def _days(name: str) -> str:
    return f"(SELECT value FROM segment_parameters WHERE name = '{name}') * interval '1 day'"


SEGMENT_VIEWS = {
    "segment_vip": "vip",
    # orders_count guards against a contact whose paid orders were all refunded or
    # cancelled before the roll-ups cleared last_order_at.
    "segment_recent_buyers": (f"orders_count >= 1 AND last_order_at >= now() - "
                              f"{_days('recent_buyers_days')}"),
    "segment_dormant_90": (f"orders_count >= 1 AND last_order_at < now() - "
                           f"{_days('dormant_days')}"),
    "segment_new_subscribers": (f"orders_count = 0 AND marketing_opt_in_at >= now() - "
                                f"{_days('new_subscriber_days')}"),
}

REPEAT_PURCHASE_VIEW = f"""
CREATE VIEW kpi_repeat_purchase_90d AS
WITH paid AS (
    SELECT contact_key, ordered_at,
           row_number() OVER (PARTITION BY contact_key ORDER BY ordered_at, order_key) AS n
    FROM orders
    WHERE paid AND contact_key IS NOT NULL AND ordered_at IS NOT NULL
), cohort AS (
    SELECT first.contact_key,
           date_trunc('month', first.ordered_at AT TIME ZONE '{BUSINESS_TIME_ZONE}')::date
               AS cohort_month,
           second.ordered_at <= first.ordered_at + interval '90 days' AS repeated
    FROM paid AS first
    LEFT JOIN paid AS second ON second.contact_key = first.contact_key AND second.n = 2
    WHERE first.n = 1
)
SELECT cohort_month,
       count(*) AS customers,
       count(*) FILTER (WHERE repeated) AS repeat_customers,
       round(100.0 * count(*) FILTER (WHERE repeated) / count(*), 2) AS repeat_rate_percent,
       (cohort_month + interval '1 month' + interval '90 days')
           <= (now() AT TIME ZONE '{BUSINESS_TIME_ZONE}') AS complete
FROM cohort
GROUP BY cohort_month
"""

LIFETIME_VALUE_VIEW = """
CREATE VIEW kpi_lifetime_value AS
SELECT coalesce(first_source, 'unknown') AS first_source,
       count(*) AS customers,
       sum(ltv_sar) AS total_ltv_sar,
       round(avg(ltv_sar), 2) AS average_ltv_sar
FROM contacts
WHERE orders_count >= 1
GROUP BY coalesce(first_source, 'unknown')
"""

# Each delivery counts once, by the day it was received: failed when it was
# quarantined or the database rejected one of its records, stale when the worker
# skipped it because the state already stored was as new, and without records when
# the project writes nothing from it. The rate counts as the service's
# storesync_sync_success_ratio metric does: stale and record-less deliveries are
# neither successes nor failures, so they are left out of it.
SYNC_SUCCESS_VIEW = f"""
CREATE VIEW kpi_sync_success_rate AS
WITH deliveries AS (
    SELECT (received_at AT TIME ZONE '{BUSINESS_TIME_ZONE}')::date AS day,
           CASE
               WHEN outcome = 'quarantined' OR EXISTS (
                   SELECT 1 FROM record_failures AS failure
                   WHERE failure.event_id = payload.event_id) THEN 'failed'
               WHEN outcome = 'skipped_stale' THEN 'stale'
               WHEN outcome = 'nothing_to_do' THEN 'no_records'
               ELSE 'written'
           END AS result
    FROM source_payloads AS payload
)
SELECT day,
       count(*) AS received,
       count(*) FILTER (WHERE result = 'written') AS written,
       count(*) FILTER (WHERE result = 'stale') AS stale,
       count(*) FILTER (WHERE result = 'failed') AS failed,
       count(*) FILTER (WHERE result = 'no_records') AS no_records,
       round(100.0 * count(*) FILTER (WHERE result = 'written')
             / nullif(count(*) FILTER (WHERE result IN ('written', 'failed')), 0), 2)
           AS success_rate_percent
FROM deliveries
GROUP BY day
"""

VIEWS = (*SEGMENT_VIEWS, "kpi_repeat_purchase_90d", "kpi_lifetime_value",
         "kpi_sync_success_rate")


def upgrade() -> None:
    _create_contacts()
    _create_orders()
    _create_catalogue_and_support()
    _create_audit_tables()
    op.execute(sa.text(
        "INSERT INTO segment_parameters (name, value, source) VALUES "
        "('recent_buyers_days', 30, 'default'), ('dormant_days', 90, 'default'), "
        "('new_subscriber_days', 30, 'default')"))
    op.execute(VIP_TRIGGER)
    for name, condition in SEGMENT_VIEWS.items():
        op.execute(f"CREATE VIEW {name} AS SELECT {SEGMENT_COLUMNS} FROM contacts "
                   f"WHERE {condition}")
    op.execute(REPEAT_PURCHASE_VIEW)
    op.execute(LIFETIME_VALUE_VIEW)
    op.execute(SYNC_SUCCESS_VIEW)


def downgrade() -> None:
    for name in reversed(VIEWS):
        op.execute(f"DROP VIEW {name}")
    op.execute("DROP TRIGGER contacts_vip ON contacts")
    op.execute("DROP FUNCTION contacts_set_vip()")
    for table in ("segment_parameters", "record_failures", "source_payloads", "consents",
                  "events", "tickets", "products", "order_lines", "orders", "contacts"):
        op.drop_table(table)
