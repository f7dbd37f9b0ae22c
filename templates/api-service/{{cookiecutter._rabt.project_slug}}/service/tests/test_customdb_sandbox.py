"""CRM_TARGET's default from the field map, and sandbox mode for the customer database.

The settings tests write their own field map, so they run in every project. The tests
that create databases need PostgreSQL and run only in projects whose CRM is custom.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from intake_support import SHOPIFY_SECRET, STOREFRONT_SECRET, write_spec
from storesync.settings import SettingsError, load_settings
from test_customdb_fixtures import _unreachable, require_custom_project, server_url


def spec_for(folder: Path, crm: str) -> Path:
    """Write a Shopify field map for ``crm`` into ``folder`` and return the folder."""
    write_spec(folder, "shopify")
    mapping = yaml.safe_load((folder / "mapping.yaml").read_text(encoding="utf-8"))
    mapping["crm"] = crm
    (folder / "mapping.yaml").write_text(yaml.safe_dump(mapping), encoding="utf-8")
    return folder


def settings_for(tmp_path: Path, crm: str, **environ: str) -> Any:
    return load_settings({"DATA_DIR": str(tmp_path / "var"),
                          "SPEC_DIR": str(spec_for(tmp_path / "spec", crm)), **environ})


@pytest.mark.parametrize("crm", ["custom", "hubspot", "zoho"])
def test_target_follows_field_map(tmp_path: Path, crm: str) -> None:
    assert settings_for(tmp_path, crm).crm_target == crm


def test_explicit_target_that_disagrees_is_refused(tmp_path: Path) -> None:
    from storesync.worker import UnsupportedCrmTarget, build_context

    settings = settings_for(tmp_path, "custom", CRM_TARGET="hubspot")
    assert settings.crm_target == "hubspot"
    with pytest.raises(UnsupportedCrmTarget) as refused:
        build_context(settings)
    assert "is for the CRM 'custom', and CRM_TARGET is hubspot" in str(refused.value)


def test_unknown_target_names_field_map(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as failed:
        settings_for(tmp_path, "custom", CRM_TARGET="salesforce")
    assert "remove it to follow the field map (crm: custom)" in str(failed.value)


def test_custom_without_database_url_is_sandbox(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, "custom", HUBSPOT_ACCESS_TOKEN="pat-test-token-1")
    assert settings.sandbox
    assert settings.sandbox_switch == "DATABASE_URL"
    assert "shopify" in settings.sandbox_secret_platforms
    with pytest.raises(SettingsError) as failed:
        settings_for(tmp_path, "custom", HOST="0.0.0.0")
    assert "sandbox mode (DATABASE_URL is not set)" in str(failed.value)


def test_custom_with_database_url_is_live(tmp_path: Path) -> None:
    url = "postgresql://storesync@127.0.0.1:5432/shop"
    with pytest.raises(SettingsError) as failed:
        settings_for(tmp_path, "custom", DATABASE_URL=url)
    assert "SHOPIFY_WEBHOOK_SECRETS: is not set" in str(failed.value)
    settings = settings_for(tmp_path, "custom", DATABASE_URL=url, HOST="0.0.0.0",
                            SHOPIFY_WEBHOOK_SECRETS=SHOPIFY_SECRET,
                            STOREFRONT_WEBHOOK_SECRETS=STOREFRONT_SECRET)
    assert not settings.sandbox
    assert settings.sandbox_secret_platforms == ()


def test_hubspot_sandbox_unchanged(tmp_path: Path) -> None:
    url = "postgresql://storesync@127.0.0.1:5432/shop"
    assert settings_for(tmp_path, "hubspot", DATABASE_URL=url).sandbox
    assert not settings_for(tmp_path, "hubspot", HUBSPOT_ACCESS_TOKEN="pat-test-token-1",
                            SHOPIFY_WEBHOOK_SECRETS=SHOPIFY_SECRET,
                            STOREFRONT_WEBHOOK_SECRETS=STOREFRONT_SECRET).sandbox


# --- the sandbox database (projects whose CRM is custom) -----------------------------------


def test_sandbox_database_name(tmp_path: Path) -> None:
    require_custom_project()
    from storesync.customdb.connection import sandbox_database_name, sandbox_database_url
    from storesync.customdb.writer import require_database_url

    (tmp_path / "pyproject.toml").write_text('[project]\nname = "Dar-Al-Oud-storesync"\n',
                                             encoding="utf-8")
    assert sandbox_database_name(tmp_path) == "dar_al_oud_sandbox"
    assert sandbox_database_name(tmp_path / "missing") == "storesync_sandbox"
    settings = settings_for(tmp_path, "custom")
    assert require_database_url(settings) == sandbox_database_url()
    assert sandbox_database_url().startswith("postgresql://postgres@127.0.0.1:5432/")


@pytest.fixture(name="sandbox_url")
def sandbox_url_fixture(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Point the sandbox at a database that does not exist yet; drop it afterwards."""
    require_custom_project()
    from sqlalchemy import text

    from storesync.customdb import connection

    name = f"storesync_sandbox_test_{uuid.uuid4().hex[:10]}"
    url = f"{server_url().rpartition('/')[0]}/{name}"
    admin = connection.create_database_engine(server_url()).execution_options(
        isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as error:  # any driver error: the server is not usable
        admin.dispose()
        _unreachable(error)
    monkeypatch.setattr(connection, "sandbox_database_url", lambda *args: url)
    yield url
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def test_run_prepares_sandbox_database(sandbox_url: str, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    from storesync.customdb.commands import _prepare_sandbox
    from storesync.customdb.connection import check_revision, head_revision, opened_engine
    from sync_support import SPEC_DIR

    settings = load_settings({"DATA_DIR": str(tmp_path / "var"), "SPEC_DIR": str(SPEC_DIR)})
    _prepare_sandbox(settings)
    output = capsys.readouterr().out
    assert f"SANDBOX MODE: DATABASE_URL is not set, so records go to a local sandbox " \
           f"database: {sandbox_url}" in output
    assert "Created and migrated it to the newest revision" in output
    with opened_engine(sandbox_url) as engine:
        assert check_revision(engine) == head_revision()
    _prepare_sandbox(settings)
    assert "  Migrated it to the newest revision" in capsys.readouterr().out


def test_run_sandbox_without_server_stops_with_fix(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    require_custom_project()
    from storesync.customdb import connection
    from storesync.customdb.commands import _prepare_sandbox
    from sync_support import SPEC_DIR

    # Nothing listens on port 1 of the loopback address.
    monkeypatch.setattr(connection, "sandbox_database_url",
                        lambda *args: "postgresql://postgres@127.0.0.1:1/nowhere_sandbox")
    settings = load_settings({"DATA_DIR": str(tmp_path / "var"), "SPEC_DIR": str(SPEC_DIR)})
    with pytest.raises(SystemExit) as stopped:
        _prepare_sandbox(settings)
    assert stopped.value.code == 2
    error = capsys.readouterr().err
    assert "cannot prepare the sandbox database postgresql://postgres@127.0.0.1:1/" in error
    assert "Start PostgreSQL on 127.0.0.1:5432" in error
    assert "or set DATABASE_URL to your own database" in error


def test_db_upgrade_creates_sandbox_database(sandbox_url: str, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from storesync.cli import main
    from sync_support import SPEC_DIR

    result = CliRunner().invoke(main, ["db", "upgrade"], env={
        "DATA_DIR": str(tmp_path / "var"), "SPEC_DIR": str(SPEC_DIR), "DATABASE_URL": "",
        "CRM_TARGET": ""})
    assert result.exit_code == 0, result.output
    assert f"Created the sandbox database {sandbox_url}" in result.output
    assert "is at revision 0001_customer_store" in result.output
