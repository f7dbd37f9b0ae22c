"""DATABASE_URL checks and the ``db`` commands' messages, settings and revision advice."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from sync_support import SPEC_DIR
from test_customdb_fixtures import (  # noqa: F401 (fixtures)
    database_url_fixture,
    engine_fixture,
    migrated_fixture,
    require_custom_project,
)


def run_sql(engine: Any, sql: str) -> None:
    from sqlalchemy import text

    with engine.begin() as connection:
        connection.execute(text(sql))


def env_without_secrets(tmp_path: Path, **values: str) -> dict[str, str]:
    """Return a live custom-database environment with no webhook secret set."""
    return {"DATA_DIR": str(tmp_path / "var"), "SPEC_DIR": str(SPEC_DIR),
            "CRM_TARGET": "custom", "SHOPIFY_WEBHOOK_SECRETS": "",
            "WOOCOMMERCE_WEBHOOK_SECRETS": "", "STOREFRONT_WEBHOOK_SECRETS": "", **values}


# --- DATABASE_URL at settings load ------------------------------------------------------


@pytest.mark.parametrize(("url", "problem"), [
    ("postgresql://postgres@127.0.0.1:abc/x", "has a port that is not a number"),
    ("postgresql://postgres@127.0.0.1:70000/x", "has a port that is not a number"),
    ("postgresql://postgres@127.0.0.1:/x", "has an empty port after the colon"),
    ("postgresql://postgres@127.0.0.1:5432", "has no database name"),
    ("postgresql://postgres@127.0.0.1:5432/", "has no database name"),
    ("mysql://postgres@127.0.0.1/x", "does not start with postgresql://"),
    ("postgresql://postgres:p@ss@127.0.0.1:5432/db", "has more than one @ before the host"),
], ids=["port-letters", "port-range", "port-empty", "no-database", "empty-database", "scheme",
       "raw-at"])
def test_invalid_database_url_rejected(tmp_path: Path, url: str, problem: str) -> None:
    from storesync.settings import SettingsError, load_settings

    with pytest.raises(SettingsError) as failed:
        load_settings(env_without_secrets(tmp_path, DATABASE_URL=url),
                      webhook_secrets_required=False)
    message = str(failed.value)
    assert "DATABASE_URL: " in message
    assert problem in message
    assert "Fix: " in message


def test_password_with_at_sign_masked(tmp_path: Path) -> None:
    from storesync.settings import SettingsError, load_settings

    url = "postgresql://postgres:p@ss@127.0.0.1:5432/db"
    with pytest.raises(SettingsError) as failed:
        load_settings(env_without_secrets(tmp_path, DATABASE_URL=url),
                      webhook_secrets_required=False)
    message = str(failed.value)
    assert "postgresql://***@127.0.0.1:5432/db" in message
    assert "ss@" not in message
    assert "p@ss" not in message
    assert "@ as %40" in message


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://postgres:p@ss@db.example:5432/x", "postgresql://***@db.example:5432/x"),
    ("postgresql://user:secret@host/x", "postgresql://***@host/x"),
    ("postgresql://host:5432/x", "postgresql://host:5432/x"),
    ("not a url", "***"),
], ids=["raw-at", "plain", "no-credentials", "no-scheme"])
def test_masked_url(url: str, shown: str) -> None:
    from storesync.customdb.urls import masked_url

    assert masked_url(url) == shown


def test_valid_database_url_accepted(tmp_path: Path) -> None:
    from storesync.settings import load_settings

    url = "postgresql://postgres:p%40ss@127.0.0.1:5432/shop"
    settings = load_settings(env_without_secrets(tmp_path, DATABASE_URL=url),
                             webhook_secrets_required=False)
    assert settings.database_url == url


@pytest.mark.parametrize("command", [
    ["db", "current"], ["export", "--from", "2026-01-01", "--to", "2026-01-02"], ["intake"],
    ["check-config"]], ids=["db-current", "export", "intake", "check-config"])
def test_bad_port_exits_without_traceback(tmp_path: Path, command: list[str]) -> None:
    require_custom_project()
    from storesync.cli import main

    env = env_without_secrets(tmp_path, DATABASE_URL="postgresql://postgres@127.0.0.1:abc/x")
    result = CliRunner().invoke(main, command, env=env)
    assert result.exit_code == 2
    assert "DATABASE_URL: postgresql://***@127.0.0.1:abc/x has a port" in result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


# --- settings the db commands need ---------------------------------------------------------


def test_db_current_needs_no_webhook_secrets(migrated: Any, database_url: str,
                                             tmp_path: Path) -> None:
    from storesync.cli import main

    result = CliRunner().invoke(main, ["db", "current"],
                                env=env_without_secrets(tmp_path, DATABASE_URL=database_url))
    assert result.exit_code == 0, result.output
    assert "current: 0001_customer_store" in result.output
    assert "WEBHOOK_SECRETS" not in result.output


def test_intake_still_needs_webhook_secrets(tmp_path: Path) -> None:
    from storesync.settings import SettingsError, load_settings

    env = env_without_secrets(tmp_path, DATABASE_URL="postgresql://u@127.0.0.1:5432/shop")
    with pytest.raises(SettingsError) as failed:
        load_settings(env)
    assert "WEBHOOK_SECRETS: is not set" in str(failed.value)


# --- revision advice ---------------------------------------------------------------------


def test_db_current_newer_revision(migrated: Any, database_url: str, tmp_path: Path) -> None:
    from storesync.cli import main

    run_sql(migrated, "UPDATE alembic_version SET version_num = '0099_newer'")
    result = CliRunner().invoke(main, ["db", "current"],
                                env=env_without_secrets(tmp_path, DATABASE_URL=database_url))
    assert result.exit_code == 1
    assert "current: 0099_newer" in result.output
    assert "a newer release of this service migrated it" in result.output
    assert "Do not run db upgrade with this release." in result.output
    assert "Run: python -m storesync db upgrade" not in result.output


def test_db_current_without_schema(database_url: str, tmp_path: Path) -> None:
    from storesync.cli import main

    result = CliRunner().invoke(main, ["db", "current"],
                                env=env_without_secrets(tmp_path, DATABASE_URL=database_url))
    assert result.exit_code == 1
    assert "has no schema yet" in result.output
    assert "Run: python -m storesync db upgrade" in result.output


# --- read-only role and tables that another role migrates ---------------------------------


def drop_role(database_url: str, role: str) -> None:
    """Drop what ``role`` owns or was granted in the test database, then the role."""
    from sqlalchemy import text

    from storesync.customdb.connection import create_database_engine
    from test_customdb_fixtures import server_url

    for url, statement in ((database_url, f'DROP OWNED BY "{role}"'),
                           (server_url(), f'DROP ROLE IF EXISTS "{role}"')):
        admin = create_database_engine(url).execution_options(isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as connection:
                connection.execute(text(statement))
        finally:
            admin.dispose()


@pytest.fixture(name="two_roles")
def two_roles_fixture(database_url: str) -> Any:
    """Yield a service role that may migrate the test database and a BI role name; drop both."""
    import uuid

    from storesync.customdb.connection import create_database_engine

    suffix = uuid.uuid4().hex[:10]
    service_role, bi_role = f"storesync_svc_{suffix}", f"storesync_bi_{suffix}"
    admin = create_database_engine(database_url)
    run_sql(admin, f'CREATE ROLE "{service_role}" LOGIN')
    run_sql(admin, f'GRANT ALL ON SCHEMA public TO "{service_role}"')
    yield admin, service_role, bi_role
    admin.dispose()
    drop_role(database_url, bi_role)
    drop_role(database_url, service_role)


def test_readonly_role_reads_later_tables(two_roles: Any, database_url: str,
                                          request: pytest.FixtureRequest) -> None:
    from sqlalchemy import text

    from storesync.customdb.connection import create_database_engine
    from storesync.customdb.roles import grant_readonly
    from storesync.customdb.schema import upgrade

    admin, service_role, bi_role = two_roles
    as_service = create_database_engine(
        database_url.replace("postgresql://postgres", f"postgresql://{service_role}", 1))
    request.addfinalizer(as_service.dispose)
    upgrade(as_service)

    # A superuser grants while the service role owns the tables and migrates later.
    grant_readonly(admin, bi_role, "test-secret-2")
    run_sql(as_service, "CREATE TABLE later_table (id integer)")
    run_sql(as_service, "INSERT INTO later_table VALUES (7)")

    as_bi = create_database_engine(database_url.replace(
        "postgresql://postgres", f"postgresql://{bi_role}:test-secret-2", 1))
    request.addfinalizer(as_bi.dispose)
    with as_bi.connect() as connection:
        assert connection.execute(text("SELECT id FROM later_table")).scalar_one() == 7
        assert connection.execute(text("SELECT count(*) FROM contacts")).scalar_one() == 0


# --- db downgrade base ---------------------------------------------------------------------


@pytest.mark.parametrize("target", ["base", "-1", "0001_customer_store-1"])
def test_downgrade_needs_yes(migrated: Any, database_url: str, tmp_path: Path,
                             target: str) -> None:
    from storesync.cli import main
    from storesync.customdb.schema import revision_of

    # Every spelling of a downgrade drops data, not only the literal "base".
    result = CliRunner().invoke(main, ["db", "downgrade", "--", target],
                                env=env_without_secrets(tmp_path, DATABASE_URL=database_url))
    assert result.exit_code == 2
    assert "drops every table" in result.output
    assert "add --yes" in result.output
    assert revision_of(migrated) == "0001_customer_store"


@pytest.mark.parametrize(("answer", "code", "revision"), [
    ("n\n", 1, "0001_customer_store"), ("y\n", 0, None)], ids=["declined", "confirmed"])
def test_downgrade_base_asks_on_terminal(migrated: Any, database_url: str, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch, answer: str,
                                         code: int, revision: str | None) -> None:
    from storesync.cli import main
    from storesync.customdb import commands
    from storesync.customdb.schema import revision_of

    monkeypatch.setattr(commands, "_stdin_is_terminal", lambda: True)
    result = CliRunner().invoke(main, ["db", "downgrade", "base"], input=answer,
                                env=env_without_secrets(tmp_path, DATABASE_URL=database_url))
    assert result.exit_code == code, result.output
    assert "Drop every table and all data of postgresql://***@" in result.output
    assert revision_of(migrated) == revision


# --- CSV export and spreadsheets ---------------------------------------------------------------


@pytest.mark.parametrize(("value", "written"), [
    ("=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"),
    ("+SUM(A1)", "'+SUM(A1)"),
    ("-2+3", "'-2+3"),
    ("@cmd", "'@cmd"),
    ("\tTAB", "'\tTAB"),
    ("\rCR", "'\rCR"),
    ("-10.05", "-10.05"),
    ("+966501234567", "+966501234567"),
    ("عود ملكي", "عود ملكي"),
    (None, None),
], ids=["equals", "plus", "minus", "at", "tab", "cr", "negative-number", "phone", "arabic",
        "empty"])
def test_spreadsheet_safe(value: str | None, written: str | None) -> None:
    require_custom_project()
    from storesync.customdb.export import spreadsheet_safe

    assert spreadsheet_safe(value) == written


def test_csv_prefixes_formula_cells() -> None:
    require_custom_project()
    import csv
    import io

    from storesync.customdb.export import CUSTOMER_FIELDS, ORDER_FIELDS, to_csv

    order: dict[str, Any] = {name: None for name in ORDER_FIELDS}
    order.update(order_key="s:1", paid=True, refunded_sar="-5.00")
    order["customer"] = {name: None for name in CUSTOMER_FIELDS}
    order["customer"]["first_name"] = "=1+1"
    order["lines"] = [{"sku": "@SKU", "title": "عود", "quantity": "1"}]
    [row] = list(csv.DictReader(io.StringIO(to_csv([order]))))
    assert row["customer_first_name"] == "'=1+1"
    assert row["line_sku"] == "'@SKU"
    assert row["line_title"] == "عود"
    assert row["refunded_sar"] == "-5.00"
    assert row["paid"] == "true"


# --- check-config ---------------------------------------------------------------------------


def test_check_config_unreachable_database(tmp_path: Path) -> None:
    require_custom_project()
    import socket

    from storesync.cli import main

    # A port that was free a moment ago: nothing listens there.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"postgresql://postgres:secret-7@127.0.0.1:{port}/shop"
    result = CliRunner().invoke(main, ["check-config"], env=cli_env_with_secrets(tmp_path, url))
    assert result.exit_code == 1
    assert f"Customer database: postgresql://***@127.0.0.1:{port}/shop" in result.output
    assert "cannot connect to the customer database" in result.output
    assert "Settings are valid" not in result.output
    assert "secret-7" not in result.output


def test_check_config_reports_revision(migrated: Any, database_url: str, tmp_path: Path) -> None:
    from storesync.cli import main

    result = CliRunner().invoke(main, ["check-config"],
                                env=cli_env_with_secrets(tmp_path, database_url))
    assert result.exit_code == 0, result.output
    assert "at revision 0001_customer_store" in result.output


def test_check_config_database_without_schema(database_url: str, tmp_path: Path) -> None:
    from storesync.cli import main

    result = CliRunner().invoke(main, ["check-config"],
                                env=cli_env_with_secrets(tmp_path, database_url))
    assert result.exit_code == 1
    assert "has no schema yet" in result.output


def cli_env_with_secrets(tmp_path: Path, url: str) -> dict[str, str]:
    from intake_support import SHOPIFY_SECRET, STOREFRONT_SECRET, WOOCOMMERCE_SECRET

    return env_without_secrets(tmp_path, DATABASE_URL=url, SHOPIFY_WEBHOOK_SECRETS=SHOPIFY_SECRET,
                               WOOCOMMERCE_WEBHOOK_SECRETS=WOOCOMMERCE_SECRET,
                               STOREFRONT_WEBHOOK_SECRETS=STOREFRONT_SECRET)
