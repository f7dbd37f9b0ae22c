"""The table definitions that iPaaS projects on the client's own PostgreSQL database ship."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest
from click.testing import CliRunner

from generator.cli import main
from generator.ipaas import ipaas_files, n8n_code, schema_sql
from generator.ipaas.flows import build_flows, walk_steps
from generator.spec import build_desired_state
from tests.ipaas_cases import load_case

POSTGRES_HOST = "127.0.0.1"
POSTGRES_PORT = 5432
POSTGRES_USER = "postgres"
CUSTOM = ("shopify-growth", {"crm": "custom", "path": "ipaas"})


def unavailable(reason: str) -> NoReturn:
    """Skip the test, or fail it when CI is set, because ``reason`` keeps it from running."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}, and CI is set")
    pytest.skip(reason)


def psql(database: str, sql: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["psql", "-h", POSTGRES_HOST, "-p", str(POSTGRES_PORT), "-U", POSTGRES_USER,
         "-d", database, "-v", "ON_ERROR_STOP=1", "-X", "-q", "-c", sql],
        capture_output=True, text=True, check=False, timeout=60,
        env={**os.environ, "PGCONNECT_TIMEOUT": "5"})


@pytest.fixture
def database() -> Iterator[str]:
    """Return a throw-away PostgreSQL database on 127.0.0.1, dropped after the test."""
    if shutil.which("psql") is None:
        unavailable("psql not found: no throw-away database can be created")
    name = f"rabt_schema_{uuid.uuid4().hex[:12]}"
    created = psql("postgres", f'create database "{name}"')
    if created.returncode != 0:
        unavailable(f"PostgreSQL on {POSTGRES_HOST}:{POSTGRES_PORT} is not usable: "
                    f"{created.stderr.strip()}")
    try:
        yield name
    finally:
        dropped = psql("postgres", f'drop database if exists "{name}" with (force)')
        assert dropped.returncode == 0, dropped.stderr


def project_files(preset: str, values: dict[str, object]) -> dict[str, bytes]:
    answers, plan, spec = load_case(preset, values)
    return ipaas_files(answers, plan, spec, build_desired_state(spec, plan))


def workflow_statements() -> list[str]:
    """Return each distinct SQL statement of the flows, parameterised as n8n sends it."""
    answers, plan, spec = load_case(*CUSTOM)
    statements: list[str] = []
    for flow in build_flows(answers, plan, spec).flows:
        for step in walk_steps(flow.steps):
            for call in step.calls:
                query = n8n_code.sql_statement(call.url)[0] if call.method == "SQL" else None
                if query is not None and query not in statements:
                    statements.append(query)
    return statements


def test_schema_shipped_for_custom_only() -> None:
    assert schema_sql.SCHEMA_FILE in project_files(*CUSTOM)
    assert schema_sql.SCHEMA_FILE not in project_files("shopify-growth", {})
    assert schema_sql.SCHEMA_FILE not in project_files("jeddah-fashion-zoho", {})


def test_schema_missing_reported(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["new", "--no-input", "--preset", "shopify-growth",
                                       "--set", "crm=custom", "--set", "path=ipaas",
                                       "--output-dir", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    project = next(path for path in tmp_path.iterdir() if path.is_dir())
    (project / schema_sql.SCHEMA_FILE).unlink()
    checked = CliRunner().invoke(main, ["validate", str(project)], catch_exceptions=False)
    assert checked.exit_code == 3
    assert schema_sql.SCHEMA_FILE in checked.output + checked.stderr


def test_schema_upsert_keys_unique() -> None:
    text = project_files(*CUSTOM)[schema_sql.SCHEMA_FILE].decode("utf-8")
    tables = dict(re.findall(r"CREATE TABLE IF NOT EXISTS (\w+) \((.*?)\n\);", text, re.DOTALL))
    assert "UNIQUE (store_customer_id)" in tables["contacts"]
    assert "UNIQUE (external_id)" in tables["orders"]
    assert "contact_id bigint REFERENCES contacts (id)" in tables["orders"]
    assert "contact_id bigint NOT NULL REFERENCES contacts (id)" in tables["consents"]
    assert "ltv_sar numeric(14, 2)" in tables["contacts"]
    # The ticket entity is off in this preset, so no tickets table.
    assert "tickets" not in tables


def test_schema_runs_every_statement(database: str) -> None:
    text = project_files(*CUSTOM)[schema_sql.SCHEMA_FILE].decode("utf-8")
    created = psql(database, text)
    assert created.returncode == 0, created.stderr
    statements = workflow_statements()
    assert len(statements) > 10
    for number, statement in enumerate(statements):
        # PREPARE resolves every table, column and ON CONFLICT target without writing.
        prepared = psql(database, f"PREPARE statement_{number} AS {statement}")
        assert prepared.returncode == 0, (statement, prepared.stderr)
