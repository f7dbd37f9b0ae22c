"""The customer database's schema: migrations, the start check, views, KPIs and the BI role."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from intake_support import SHOPIFY_SECRET, STOREFRONT_SECRET, WOOCOMMERCE_SECRET
from sync_support import SPEC_DIR
from test_customdb_fixtures import (  # noqa: F401 (fixtures)
    database_url_fixture,
    engine_fixture,
    migrated_fixture,
    require_custom_project,
    server_url,
)

TABLES = {"contacts", "orders", "order_lines", "products", "tickets", "events", "consents",
          "source_payloads", "record_failures", "segment_parameters"}
VIEWS = {"segment_vip", "segment_recent_buyers", "segment_dormant_90",
         "segment_new_subscribers", "kpi_repeat_purchase_90d", "kpi_lifetime_value",
         "kpi_sync_success_rate"}


def names(engine: Any, kind: str) -> set[str]:
    from sqlalchemy import text

    query = ("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' "
             "AND table_type = :kind")
    with engine.connect() as connection:
        return {row[0] for row in connection.execute(text(query), {"kind": kind})}


def run_sql(engine: Any, sql: str, **params: Any) -> list[dict[str, Any]]:
    from sqlalchemy import text

    with engine.begin() as connection:
        result = connection.execute(text(sql), params)
        return [dict(row._mapping) for row in result] if result.returns_rows else []


# --- migrations --------------------------------------------------------------------------


def test_migrations_up_and_down(engine: Any) -> None:
    from storesync.customdb.connection import head_revision
    from storesync.customdb.schema import downgrade, revision_of, upgrade

    upgrade(engine)
    assert revision_of(engine) == head_revision()
    assert names(engine, "BASE TABLE") - {"alembic_version"} == TABLES
    assert names(engine, "VIEW") == VIEWS

    downgrade(engine, "base")
    assert revision_of(engine) is None
    assert names(engine, "BASE TABLE") - {"alembic_version"} == set()
    assert names(engine, "VIEW") == set()

    upgrade(engine)
    assert revision_of(engine) == head_revision()


def test_models_match_migrations(migrated: Any) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from storesync.customdb.models import metadata

    with migrated.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), metadata)
    assert differences == []


def column_facts(column: Any) -> tuple[str, str, bool, bool, bool]:
    """Return a model column's name, type, nullability, default and whether it is computed."""
    from sqlalchemy.dialects import postgresql

    computed = column.computed is not None
    return (column.name, column.type.compile(dialect=postgresql.dialect()),
            bool(column.nullable), column.server_default is not None and not computed, computed)


def reflected_facts(entry: dict[str, Any]) -> tuple[str, str, bool, bool, bool]:
    """Return the same facts for a column the database reports."""
    from sqlalchemy.dialects import postgresql

    default = entry.get("default")
    # A bigserial's sequence default belongs to the column type, not to the model.
    has_default = default is not None and not str(default).startswith("nextval(")
    return (entry["name"], entry["type"].compile(dialect=postgresql.dialect()),
            bool(entry["nullable"]), has_default, entry.get("computed") is not None)


def test_models_match_migrations_columns(migrated: Any) -> None:
    from sqlalchemy import inspect

    from storesync.customdb.models import metadata

    inspector = inspect(migrated)
    for table in metadata.sorted_tables:
        reflected = [reflected_facts(entry) for entry in inspector.get_columns(table.name)]
        assert [column_facts(column) for column in table.columns] == reflected, table.name
        indexes = {(entry["name"], tuple(entry["column_names"]), bool(entry["unique"]))
                   for entry in inspector.get_indexes(table.name)}
        assert {(index.name, tuple(column.name for column in index.columns), index.unique)
                for index in table.indexes} == indexes, table.name


def test_segment_thresholds_from_spec(migrated: Any) -> None:
    from storesync.customdb.schema import load_segment_parameters

    values = load_segment_parameters(migrated, SPEC_DIR / "segments.yaml")
    stored = {row["name"]: row["value"] for row in run_sql(
        migrated, "SELECT name, value FROM segment_parameters")}
    assert stored == values
    assert stored["recent_buyers_days"] == Decimal(30)
    assert stored["dormant_days"] == Decimal(90)
    assert stored["new_subscriber_days"] == Decimal(30)
    assert stored["vip_entry_sar"] > stored["vip_exit_sar"]


# --- the start check ------------------------------------------------------------------------


def cli_env(tmp_path: Path, **values: str) -> dict[str, str]:
    # With DATABASE_URL set the service is live, so every platform needs its secret.
    return {"DATA_DIR": str(tmp_path / "var"), "SPEC_DIR": str(SPEC_DIR),
            "CRM_TARGET": "custom", "DATABASE_URL": "",
            "SHOPIFY_WEBHOOK_SECRETS": SHOPIFY_SECRET,
            "WOOCOMMERCE_WEBHOOK_SECRETS": WOOCOMMERCE_SECRET,
            "STOREFRONT_WEBHOOK_SECRETS": STOREFRONT_SECRET, **values}


def test_intake_refuses_database_without_schema(database_url: str, tmp_path: Path) -> None:
    from storesync.cli import main

    result = CliRunner().invoke(main, ["intake"], env=cli_env(tmp_path,
                                                              DATABASE_URL=database_url))
    assert result.exit_code == 2
    assert "the customer database has no schema yet" in result.output
    assert "needs revision 0001_customer_store" in result.output
    assert "Run: python -m storesync db upgrade" in result.output


def test_worker_refuses_newer_revision(migrated: Any, database_url: str, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    from storesync.settings import load_settings
    from storesync.worker import start_background

    run_sql(migrated, "UPDATE alembic_version SET version_num = '0099_newer'")
    settings = load_settings(cli_env(tmp_path, DATABASE_URL=database_url))
    with pytest.raises(SystemExit) as stopped:
        start_background(settings)
    assert stopped.value.code == 2
    error = capsys.readouterr().err
    assert "is at revision 0099_newer, which this release does not have" in error
    assert "a newer release of this service migrated it" in error
    assert "db downgrade 0001_customer_store" in error
    assert "Run: python -m storesync db upgrade" not in error


def test_run_without_custom_target(tmp_path: Path) -> None:
    require_custom_project()
    from storesync.cli import main

    result = CliRunner().invoke(main, ["run"], env=cli_env(tmp_path, CRM_TARGET="hubspot"))
    assert result.exit_code == 2
    assert "is for the customer database, and CRM_TARGET is hubspot" in result.output
    assert "Remove CRM_TARGET (it then follows the field map)" in result.output


def test_db_commands_upgrade_and_current(database_url: str, tmp_path: Path) -> None:
    from storesync.cli import main

    env = cli_env(tmp_path, DATABASE_URL=database_url)
    before = CliRunner().invoke(main, ["db", "current"], env=env)
    assert before.exit_code == 1
    assert "current: none (no schema yet)" in before.output
    upgraded = CliRunner().invoke(main, ["db", "upgrade"], env=env)
    assert upgraded.exit_code == 0, upgraded.output
    assert "is at revision 0001_customer_store" in upgraded.output
    after = CliRunner().invoke(main, ["db", "current"], env=env)
    assert after.exit_code == 0, after.output
    assert "current: 0001_customer_store" in after.output
    down = CliRunner().invoke(main, ["db", "downgrade", "base", "--yes"], env=env)
    assert down.exit_code == 0, down.output
    assert "is at revision base" in down.output


# --- segments and KPIs on a fixture computed by hand ---------------------------------------

CONTACT_INSERT = (
    "INSERT INTO contacts (contact_key, orders_count, ltv_sar, first_source, last_order_at, "
    "marketing_opt_in_at, source_updated_at) VALUES (:key, :orders, :ltv, :source, "
    "now() - make_interval(days => :last_days), now() - make_interval(days => :opt_in_days), "
    "now())")


def add_contact(engine: Any, key: str, orders: int, ltv: str, source: str | None,
                last_days: int | None, opt_in_days: int | None) -> None:
    run_sql(engine, CONTACT_INSERT, key=key, orders=orders, ltv=Decimal(ltv), source=source,
            last_days=last_days, opt_in_days=opt_in_days)


@pytest.fixture
def segment_fixture(migrated: Any) -> Any:
    """Contacts whose segments are known; the VIP thresholds are 8,000 in and 7,200 out."""
    run_sql(migrated, "INSERT INTO segment_parameters (name, value, source) VALUES "
                      "('vip_entry_sar', 8000, 'test'), ('vip_exit_sar', 7200, 'test')")
    # key, paid orders, ltv, first source, days since last order, days since opt-in
    add_contact(migrated, "c1", 2, "9000.00", "google", 10, None)
    add_contact(migrated, "c2", 2, "1000.50", "google", 120, None)
    add_contact(migrated, "c3", 2, "300.00", "offline", 60, None)
    add_contact(migrated, "c4", 1, "150.00", None, 95, None)
    add_contact(migrated, "c5", 0, "0", "google", None, 5)
    add_contact(migrated, "c6", 0, "0", None, None, 40)
    return migrated


def members(engine: Any, view: str) -> list[str]:
    return [row["contact_key"] for row in run_sql(
        engine, f"SELECT contact_key FROM {view} ORDER BY contact_key")]


def test_segment_views(segment_fixture: Any) -> None:
    # VIP: ltv >= 8,000 → c1 only.
    assert members(segment_fixture, "segment_vip") == ["c1"]
    # Bought in 30 days: last order 10 days ago → c1.
    assert members(segment_fixture, "segment_recent_buyers") == ["c1"]
    # Dormant 90: at least one paid order and the last one over 90 days ago → c2 (120), c4 (95).
    assert members(segment_fixture, "segment_dormant_90") == ["c2", "c4"]
    # New subscribers: opted in within 30 days and no paid order → c5 (5 days), not c6 (40).
    assert members(segment_fixture, "segment_new_subscribers") == ["c5"]


def test_recent_buyers_need_a_paid_order(segment_fixture: Any) -> None:
    # A database written before roll-ups cleared the order times can keep last_order_at
    # for a contact whose only order was refunded. Without a paid order it is no recent buyer.
    add_contact(segment_fixture, "c7", 0, "0", "google", 3, None)
    assert members(segment_fixture, "segment_recent_buyers") == ["c1"]


def test_vip_exit_threshold(segment_fixture: Any) -> None:
    # 7,500 is under the entry bar but over the exit bar: c1 stays VIP, c2 does not join.
    run_sql(segment_fixture, "UPDATE contacts SET ltv_sar = 7500 WHERE contact_key IN "
                             "('c1', 'c2')")
    assert members(segment_fixture, "segment_vip") == ["c1"]
    # 7,000 is under the exit bar of 7,200: c1 leaves.
    run_sql(segment_fixture, "UPDATE contacts SET ltv_sar = 7000 WHERE contact_key = 'c1'")
    assert members(segment_fixture, "segment_vip") == []


def test_lifetime_value_kpi(segment_fixture: Any) -> None:
    rows = {row["first_source"]: row for row in run_sql(
        segment_fixture, "SELECT * FROM kpi_lifetime_value")}
    # Customers are contacts with a paid order, so c5 and c6 are left out.
    assert set(rows) == {"google", "offline", "unknown"}
    # google: c1 9,000.00 + c2 1,000.50 = 10,000.50 over 2 customers = 5,000.25.
    assert rows["google"]["customers"] == 2
    assert rows["google"]["total_ltv_sar"] == Decimal("10000.50")
    assert rows["google"]["average_ltv_sar"] == Decimal("5000.25")
    # offline: c3 alone; unknown: c4, whose first source is empty.
    assert rows["offline"]["average_ltv_sar"] == Decimal("300.00")
    assert rows["unknown"]["customers"] == 1
    assert rows["unknown"]["average_ltv_sar"] == Decimal("150.00")


ORDER_INSERT = ("INSERT INTO orders (order_key, shop, store_order_id, contact_key, paid, "
                "ordered_at, source_updated_at) VALUES (:key, 'shop', :key, :contact, :paid, "
                "CAST(:at AS timestamptz), now())")


def test_repeat_purchase_kpi(migrated: Any) -> None:
    orders = [
        # c1: first 5 Jan, second 20 Feb, 46 days later → repeats within 90 days.
        ("o1", "c1", True, "2026-01-05T09:00:00+03:00"),
        ("o2", "c1", True, "2026-02-20T09:00:00+03:00"),
        # c2: first 10 Jan, second 1 May, 111 days later → no repeat within 90 days.
        ("o3", "c2", True, "2026-01-10T09:00:00+03:00"),
        ("o4", "c2", True, "2026-05-01T09:00:00+03:00"),
        # c3: 31 Jan 22:30 UTC is 1 Feb 01:30 in Riyadh → February cohort; again 1 Mar.
        ("o5", "c3", True, "2026-01-31T22:30:00+00:00"),
        ("o6", "c3", True, "2026-03-01T09:00:00+03:00"),
        # c4: one paid order; the second was cancelled, so it does not count.
        ("o7", "c4", True, "2026-01-20T09:00:00+03:00"),
        ("o8", "c4", False, "2026-01-25T09:00:00+03:00"),
        # c5: never paid, so not in any cohort.
        ("o9", "c5", False, "2026-01-12T09:00:00+03:00"),
    ]
    for key, contact, paid, at in orders:
        run_sql(migrated, ORDER_INSERT, key=key, contact=contact, paid=paid, at=at)
    rows = {str(row["cohort_month"]): row for row in run_sql(
        migrated, "SELECT * FROM kpi_repeat_purchase_90d ORDER BY cohort_month")}
    assert set(rows) == {"2026-01-01", "2026-02-01"}
    # January: c1, c2, c4 → 3 customers, 1 repeat (c1) → 1 / 3 = 33.33 %.
    assert rows["2026-01-01"]["customers"] == 3
    assert rows["2026-01-01"]["repeat_customers"] == 1
    assert rows["2026-01-01"]["repeat_rate_percent"] == Decimal("33.33")
    # February: c3 alone, who repeated → 1 / 1 = 100 %.
    assert rows["2026-02-01"]["customers"] == 1
    assert rows["2026-02-01"]["repeat_rate_percent"] == Decimal("100.00")


def test_sync_success_rate_kpi(migrated: Any) -> None:
    payloads = [
        ("e1", "synced_later", "2026-03-03T10:00:00+00:00"),
        ("e2", "skipped_stale", "2026-03-03T11:00:00+00:00"),
        ("e3", "quarantined", "2026-03-03T12:00:00+00:00"),
        ("e4", "synced_later", "2026-03-03T13:00:00+00:00"),
        ("e5", "nothing_to_do", "2026-03-03T14:00:00+00:00"),
        # 22:00 UTC on 3 March is 01:00 on 4 March in Riyadh.
        ("e6", "synced_later", "2026-03-03T22:00:00+00:00"),
        ("e7", "skipped_stale", "2026-03-05T09:00:00+00:00"),
    ]
    for event_id, outcome, at in payloads:
        run_sql(migrated, "INSERT INTO source_payloads (event_id, source, received_at, outcome, "
                          "body) VALUES (:id, 'shopify', CAST(:at AS timestamptz), :outcome, "
                          "'{}'::jsonb)", id=event_id, at=at, outcome=outcome)
    run_sql(migrated, "INSERT INTO record_failures (event_id, object, record_key, error) "
                      "VALUES ('e4', 'deals', 'shop:1', 'test')")
    rows = {str(row["day"]): row for row in run_sql(
        migrated, "SELECT * FROM kpi_sync_success_rate")}
    # 3 March: e1 written; e2 stale; e3 quarantined and e4 with a rejected record, so two
    # failed; e5 without records. Stale and record-less deliveries are left out of the
    # rate, as the storesync_sync_success_ratio metric leaves them out: 1 / (1 + 2).
    assert rows["2026-03-03"] == {
        "day": date(2026, 3, 3), "received": 5, "written": 1, "stale": 1, "failed": 2,
        "no_records": 1, "success_rate_percent": Decimal("33.33")}
    # 4 March: e6 alone → 1 / 1.
    assert rows["2026-03-04"]["success_rate_percent"] == Decimal("100.00")
    # 5 March: a stale delivery alone gives no rate, as the metric gives none.
    assert rows["2026-03-05"]["stale"] == 1
    assert rows["2026-03-05"]["success_rate_percent"] is None


# --- the read-only role ------------------------------------------------------------------------


@pytest.fixture
def readonly_role(database_url: str) -> Iterator[str]:
    """Yield a role name unique to this test, then revoke its privileges and drop it."""
    from sqlalchemy import text

    from storesync.customdb.connection import create_database_engine

    role = f"storesync_bi_{uuid.uuid4().hex[:10]}"
    yield role
    for url, statement in ((database_url, f'DROP OWNED BY "{role}"'),
                           (server_url(), f'DROP ROLE "{role}"')):
        admin = create_database_engine(url).execution_options(isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as connection:
                connection.execute(text(statement))
        finally:
            admin.dispose()


def test_readonly_role_cannot_write(segment_fixture: Any, database_url: str,
                                    readonly_role: str, request: pytest.FixtureRequest) -> None:
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    from storesync.customdb.connection import create_database_engine
    from storesync.customdb.roles import grant_readonly

    grant_readonly(segment_fixture, readonly_role, "test-secret-1")
    url = database_url.replace("postgresql://postgres", f"postgresql://{readonly_role}", 1)
    reader = create_database_engine(url.replace("@", ":test-secret-1@", 1))
    request.addfinalizer(reader.dispose)
    with reader.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM segment_vip")).scalar_one() == 1
        assert connection.execute(text("SELECT count(*) FROM kpi_lifetime_value")
                                  ).scalar_one() == 3
    # Sessions are read-only by default...
    with reader.connect() as connection, pytest.raises(DBAPIError) as read_only:
        connection.execute(text("DELETE FROM contacts"))
    assert "read-only transaction" in str(read_only.value)
    # ...and a read-write transaction still lacks the privilege.
    with reader.connect() as connection, pytest.raises(DBAPIError) as denied:
        connection.execute(text("SET TRANSACTION READ WRITE"))
        connection.execute(text("UPDATE contacts SET ltv_sar = 0"))
    assert "permission denied" in str(denied.value)
    assert run_sql(segment_fixture, "SELECT ltv_sar FROM contacts WHERE contact_key = 'c1'"
                   )[0]["ltv_sar"] == Decimal("9000.00")


def test_grant_readonly_needs_password(database_url: str, tmp_path: Path) -> None:
    from storesync.cli import main

    result = CliRunner().invoke(main, ["db", "grant-readonly"],
                                env=cli_env(tmp_path, DATABASE_URL=database_url))
    assert result.exit_code == 2
    assert "CUSTOMDB_READONLY_PASSWORD is not set" in result.output


# --- command errors: a message and exit code 2, never a traceback --------------------------


def other_database(database_url: str, name: str) -> str:
    return database_url.rpartition("/")[0] + "/" + name


def invoke(args: list[str], env: dict[str, str]) -> Any:
    from storesync.cli import main

    result = CliRunner().invoke(main, args, env=env)
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        repr(result.exception)
    assert "Traceback" not in result.output
    return result


def test_db_current_unreachable(tmp_path: Path) -> None:
    require_custom_project()
    # Port 1 on loopback: nothing listens there, so the connection is refused.
    url = "postgresql://postgres:test-secret-2@127.0.0.1:1/storesync"
    for args in (["db", "current"], ["db", "upgrade"], ["export", "--from", "2026-03-01",
                                                         "--to", "2026-03-02"]):
        result = invoke(args, cli_env(tmp_path, DATABASE_URL=url))
        assert result.exit_code == 2, (args, result.output)
        assert "cannot connect to the customer database" in result.output, args
        assert "test-secret-2" not in result.output, args


def test_db_upgrade_missing_database(database_url: str, tmp_path: Path) -> None:
    url = other_database(database_url, f"storesync_missing_{uuid.uuid4().hex[:8]}")
    result = invoke(["db", "upgrade"], cli_env(tmp_path, DATABASE_URL=url))
    assert result.exit_code == 2
    assert "cannot connect to the customer database" in result.output
    assert "does not exist" in result.output
    assert "Check DATABASE_URL" in result.output


def test_db_upgrade_unknown_revision(migrated: Any, database_url: str,
                                     tmp_path: Path) -> None:
    run_sql(migrated, "UPDATE alembic_version SET version_num = '0099_from_newer_release'")
    result = invoke(["db", "upgrade"], cli_env(tmp_path, DATABASE_URL=database_url))
    assert result.exit_code == 2
    assert "the migration failed: Can't locate revision" in result.output
    assert "0099_from_newer_release" in result.output
    assert "python -m storesync db current" in result.output


def test_db_current_names_both_revisions(migrated: Any, database_url: str,
                                         tmp_path: Path) -> None:
    run_sql(migrated, "UPDATE alembic_version SET version_num = '0000_older'")
    result = invoke(["db", "current"], cli_env(tmp_path, DATABASE_URL=database_url))
    assert result.exit_code == 1
    assert "is at revision 0000_older, which this release does not have" in result.output
    assert "(this release needs 0001_customer_store)" in result.output


def test_export_without_schema(database_url: str, tmp_path: Path) -> None:
    result = invoke(["export", "--from", "2026-03-01", "--to", "2026-03-02"],
                    cli_env(tmp_path, DATABASE_URL=database_url))
    assert result.exit_code == 2
    assert "the customer database has no schema yet" in result.output
    assert "Run: python -m storesync db upgrade" in result.output


def test_export_output_folder_missing(migrated: Any, database_url: str,
                                      tmp_path: Path) -> None:
    output = tmp_path / "missing" / "orders.csv"
    result = invoke(["export", "--from", "2026-03-01", "--to", "2026-03-02",
                     "--output", str(output)], cli_env(tmp_path, DATABASE_URL=database_url))
    assert result.exit_code == 2
    assert f"the folder {output.parent} does not exist" in result.output
    assert not output.parent.exists()


def create_login_role(database_url: str, role: str, options: str) -> None:
    from sqlalchemy import text

    from storesync.customdb.connection import create_database_engine

    admin = create_database_engine(database_url).execution_options(isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE ROLE "{role}" LOGIN {options}'))
            connection.execute(text(f'GRANT ALL ON SCHEMA public TO "{role}"'))
    finally:
        admin.dispose()


def test_grant_readonly_without_createrole(migrated: Any, database_url: str,
                                           readonly_role: str, tmp_path: Path,
                                           caplog: pytest.LogCaptureFixture) -> None:
    create_login_role(database_url, readonly_role, "NOCREATEROLE")
    url = database_url.replace("postgresql://postgres", f"postgresql://{readonly_role}", 1)
    env = cli_env(tmp_path, DATABASE_URL=url, CUSTOMDB_READONLY_ROLE=f"{readonly_role}_bi",
                  CUSTOMDB_READONLY_PASSWORD="test-secret-9")
    result = invoke(["db", "grant-readonly"], env)
    assert result.exit_code == 2
    assert "CREATEROLE" in result.output
    assert "test-secret-9" not in result.output
    assert "test-secret-9" not in caplog.text
    assert "CREATE ROLE" not in result.output


def test_grant_readonly_rejects_own_role(migrated: Any, database_url: str,
                                         readonly_role: str, tmp_path: Path) -> None:
    create_login_role(database_url, readonly_role, "CREATEROLE")
    url = database_url.replace("postgresql://postgres", f"postgresql://{readonly_role}", 1)
    env = cli_env(tmp_path, DATABASE_URL=url, CUSTOMDB_READONLY_ROLE=readonly_role,
                  CUSTOMDB_READONLY_PASSWORD="test-secret-9")
    result = invoke(["db", "grant-readonly"], env)
    assert result.exit_code == 2
    assert f"CUSTOMDB_READONLY_ROLE is {readonly_role}, the role DATABASE_URL connects as" \
        in result.output
    settings = run_sql(migrated, "SELECT rolconfig FROM pg_roles WHERE rolname = :role",
                       role=readonly_role)
    assert settings == [{"rolconfig": None}]


def test_db_downgrade_unknown_revision(migrated: Any, database_url: str,
                                       tmp_path: Path) -> None:
    result = invoke(["db", "downgrade", "0042_unknown", "--yes"],
                    cli_env(tmp_path, DATABASE_URL=database_url))
    assert result.exit_code == 2
    assert "the migration failed: Can't locate revision" in result.output
    assert "0042_unknown" in result.output
