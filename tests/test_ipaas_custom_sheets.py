"""Zapier and Tray build sheets for a project whose CRM is the client's PostgreSQL database."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from generator.cli import main
from generator.ipaas import budget, buildsheets, n8n_code
from generator.ipaas.flows import build_flows, walk_steps
from tests.ipaas_cases import load_case

SHEETS = ("zapier-build-sheet.md", "zapier-build-sheet.ar.md", "tray-build-sheet.md",
          "tray-build-sheet.ar.md")


@pytest.fixture(scope="module")
def custom_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("custom")
    result = CliRunner().invoke(main, ["new", "--no-input", "--preset", "shopify-growth",
                                       "--set", "crm=custom", "--set", "path=ipaas",
                                       "--output-dir", str(output)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return next(path for path in output.iterdir() if path.is_dir())


def database_statements() -> list[str]:
    """Return the parameterised SQL of every step that writes or reads the database."""
    answers, plan, spec = load_case("shopify-growth", {"crm": "custom", "path": "ipaas"})
    statements = []
    for flow in build_flows(answers, plan, spec).flows:
        for step in walk_steps(flow.steps):
            for call in step.calls:
                if call.method == "SQL":
                    statements.append(n8n_code.sql_statement(call.url)[0])
    return statements


@pytest.mark.parametrize("name", SHEETS)
def test_custom_sheet_no_sql_urls(custom_project: Path, name: str) -> None:
    text = (custom_project / "workflows" / name).read_text("utf-8")
    assert "`SQL " not in text
    assert "| Create or update the contact | Webhooks by Zapier |" not in text
    assert "| Create or update the contact | HTTP Client |" not in text


@pytest.mark.parametrize("name", SHEETS)
def test_custom_sheet_full_statements(custom_project: Path, name: str) -> None:
    text = (custom_project / "workflows" / name).read_text("utf-8")
    blocks = re.findall(r"```sql\n(.*?)\n```", text, flags=re.DOTALL)
    statements = database_statements()
    assert len(blocks) == len(statements)
    assert sorted(blocks) == sorted(statements)
    assert all("<" not in block for block in blocks)


def test_custom_sheet_postgres_steps(custom_project: Path) -> None:
    zapier = (custom_project / "workflows/zapier-build-sheet.md").read_text("utf-8")
    tray = (custom_project / "workflows/tray-build-sheet.md").read_text("utf-8")
    # Every step with SQL but the waits (Make's due searches) is one PostgreSQL row.
    answers, plan, spec = load_case("shopify-growth", {"crm": "custom", "path": "ipaas"})
    database_steps = sum(1 for flow in build_flows(answers, plan, spec).flows
                         for step in walk_steps(flow.steps)
                         if step.kind != "wait" and any(call.method == "SQL"
                                                        for call in step.calls))
    # 15 writes and reads, and the links of the order, its two line columns and the event.
    assert database_steps == 19
    # The sheets add a read of the contact's consent before each of the 7 sends.
    assert zapier.count("| PostgreSQL | ") == database_steps + 7
    assert tray.count("| PostgreSQL | ") == database_steps + 7
    assert "| PostgreSQL | Action Find Row via Custom Query on the client's database" in zapier
    assert "The name Find Row via Custom Query may differ in your Zapier account" in zapier
    assert "| PostgreSQL | Operation Execute SQL query, authentication from Tray's store" in tray
    assert "Unconfirmed name: use the PostgreSQL operation" in tray


def test_custom_sheet_parameters_named(custom_project: Path) -> None:
    zapier = " ".join((custom_project / "workflows/zapier-build-sheet.md")
                      .read_text("utf-8").split())
    # The contact upsert looks the contact up by id, then phone, then email, and a
    # name that repeats in the statement keeps its first number.
    assert ("`$1` = `store_customer_id` (from `id`), `$2` = `phone` (from `phone`), "
            "`$3` = `email` (from `email`)" in zapier)


@pytest.mark.parametrize("name", ["zapier-build-sheet.md", "tray-build-sheet.md"])
def test_custom_sheet_asks_postgres_connection(custom_project: Path, name: str) -> None:
    # The introduction, before the first flow; transform notes may name the CRMs.
    text = " ".join((custom_project / "workflows" / name).read_text("utf-8")
                    .split("\n## ")[0].split())
    assert "HubSpot" not in text
    assert "Zoho" not in text
    assert "host, port, database name and a user that may write the tables" in text


@pytest.mark.parametrize("name", ["zapier-build-sheet.ar.md", "tray-build-sheet.ar.md"])
def test_custom_sheet_arabic_connection(custom_project: Path, name: str) -> None:
    text = " ".join((custom_project / "workflows" / name).read_text("utf-8")
                    .split("\n## ")[0].split())
    assert "HubSpot" not in text
    assert "PostgreSQL" in text
    assert "يحق له الكتابة في جداول `database/schema.sql`" in text


def test_hubspot_sheet_keeps_requests() -> None:
    answers, plan, spec = load_case("shopify-growth", {})
    flows = buildsheets.sheet_context(build_flows(answers, plan, spec))
    tools = {action["tool"] for flow in flows for step in flow["steps"]
             for action in step["zapier"]}
    assert "PostgreSQL" not in tools
    assert "Webhooks by Zapier" in tools
    assert all(flow["statements"] == [] for flow in flows)


def test_custom_readme_lists_shipped_files(custom_project: Path) -> None:
    english = (custom_project / "README.md").read_text("utf-8")
    arabic = (custom_project / "README.ar.md").read_text("utf-8")
    assert not (custom_project / "workflows/make").exists()
    for text in (english, arabic):
        assert "workflows/make/*.blueprint.json" not in text
        assert "`database/schema.sql`" in text
        assert "psql -d DATABASE -f database/schema.sql" in text
    assert "(0 files)" not in english


def test_custom_budget_without_make(custom_project: Path) -> None:
    english = " ".join((custom_project / "docs/operations-budget.md").read_text("utf-8").split())
    arabic = " ".join((custom_project / "docs/operations-budget.ar.md").read_text("utf-8")
                      .split())
    assert "Make operations" not in english
    assert "| Make |" not in english
    assert "- Make:" not in english
    assert "Make is not priced: the CRM is the client's own PostgreSQL database" in english
    assert "- n8n Cloud:" in english
    assert "عمليات Make" not in arabic
    assert "ولا تُسعَّر Make هنا" in arabic


def test_custom_budget_context_drops_make() -> None:
    answers, plan, spec = load_case("shopify-growth", {"crm": "custom", "path": "ipaas"})
    context = budget.ipaas_context(answers, plan, spec)["budget"]
    assert context["make_offered"] is False
    assert [choice["platform"] for choice in context["plans"]] == [
        "n8n_cloud", "n8n_self_hosted", "zapier"]
    assert list(context["break_even"]) == ["n8n_cloud", "zapier", "n8n_self_hosted"]


@pytest.mark.parametrize("lang", ["", ".ar"])
def test_custom_guides_skip_make(custom_project: Path, lang: str) -> None:
    # No Make blueprints ship for the client's own database, so neither the README
    # nor the workflows guide's section on several stores tells the reader to import one.
    readme = (custom_project / f"README{lang}.md").read_text("utf-8")
    guide = (custom_project / f"workflows/README{lang}.md").read_text("utf-8")
    assert "how to import each Make blueprint" not in readme
    assert "وكيفية استيراد كل مخطط في Make" not in readme
    assert "(workflows/README" in readme
    assert "- **Make**:" not in guide
    assert "- **Zapier" in guide
