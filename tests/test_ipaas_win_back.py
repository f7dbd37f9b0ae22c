"""Win-back search of the iPaaS flows: one window on last_order_at, on every CRM.

The iPaaS flows never compute orders_count, so a win-back search that also asked for
``orders_count >= 1`` found nobody on n8n and Make. The search now reads the window on
last_order_at alone, the way the Zapier and Tray build sheets always did.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from generator.cli import main
from generator.ipaas import n8n_code
from generator.ipaas.crm_calls import CrmCall
from generator.ipaas.flows import build_flows, walk_steps
from tests.ipaas_cases import load_case
from tests.test_ipaas_custom_links import create_schema, run, scalar, sql_call
from tests.test_ipaas_custom_schema import database

__all__ = ["database"]

CUSTOM = ("woo-startup", {"crm": "custom", "path": "ipaas"})
CONTACT = {"store_customer_id": "501", "email": "sara@example.com", "phone": "+966501234567"}


def win_back_lookups(crm: str) -> dict[str, CrmCall]:
    """Return the search call of each win-back step, by step key (``find_due_45`` ...)."""
    answers, plan, spec = load_case("woo-startup", {"crm": crm, "path": "ipaas"})
    flow = next(flow for flow in build_flows(answers, plan, spec).flows
                if flow.key == "win-back")
    return {step.key: step.calls[0] for step in walk_steps(flow.steps)
            if step.key.startswith("find_due_")}


def due_days(key: str) -> int:
    return int(key.rsplit("_", 1)[1])


def test_hubspot_search_reads_only_last_order_at() -> None:
    lookups = win_back_lookups("hubspot")
    assert lookups
    for key, call in lookups.items():
        days = due_days(key)
        body: dict[str, Any] = call.body or {}
        assert body["filterGroups"] == [{"filters": [{
            "propertyName": "ecom_last_order_at", "operator": "BETWEEN",
            "value": f"<today - {days + 1} days>", "highValue": f"<today - {days} days>"}]}]


def test_zoho_search_reads_only_last_order_at() -> None:
    lookups = win_back_lookups("zoho")
    assert lookups
    for key, call in lookups.items():
        days = due_days(key)
        text = repr(call.query)
        assert "Ecom_Orders_Count" not in text
        assert (f"(Ecom_Last_Order_At:between:<today - {days + 1} days>,"
                f"<today - {days} days>)") in text


def test_custom_search_reads_only_last_order_at() -> None:
    lookups = win_back_lookups("custom")
    assert lookups
    for call in lookups.values():
        assert call.url.endswith("FROM contacts WHERE last_order_at BETWEEN "
                                 "<today - {} days> AND <today - {} days>".format(
                                     *_window(call.url)))
        assert "orders_count" not in call.url


def _window(statement: str) -> tuple[str, str]:
    start = statement.split("<today - ", 1)[1].split(" days>", 1)[0]
    end = statement.split("<today - ", 2)[2].split(" days>", 1)[0]
    return start, end


def write_last_order(database: str, when: str | None) -> None:
    run(database, sql_call(CUSTOM, "order-sync", "upsert_contact"),
        {**CONTACT, "last_order_at": when})


def stored_last_order(database: str) -> str:
    return scalar(database, "SELECT to_char(last_order_at AT TIME ZONE 'UTC', "
                            "'YYYY-MM-DD HH24:MI') FROM contacts")


def test_custom_search_finds_due_contact(database: str) -> None:
    """A contact written by the order flow alone (no orders_count) is found on its day."""
    create_schema(database, CUSTOM)
    key, call = next(iter(win_back_lookups("custom").items()))
    days = due_days(key)
    when = scalar(database, f"SELECT to_char(now() - interval '{days} days' - interval "
                            "'12 hours', 'YYYY-MM-DD\"T\"HH24:MI:SSOF')")
    write_last_order(database, when)
    start = scalar(database, f"SELECT (now() - interval '{days + 1} days')::text")
    end = scalar(database, f"SELECT (now() - interval '{days - 1} days')::text")
    query, placeholders = n8n_code.sql_statement(call.url)
    assert placeholders == [f"today - {days + 1} days", f"today - {days} days"]
    found = scalar(database, query.replace("SELECT *", "SELECT email")
                   .replace("$1", f"'{start}'").replace("$2", f"'{end}'"))
    assert found == "sara@example.com"


@pytest.mark.parametrize("later", [None, "2026-01-10T09:00:00+03:00"])
def test_custom_last_order_at_never_moves_back(database: str, later: str | None) -> None:
    """An update of an older order, or an event without the time, keeps the latest time."""
    create_schema(database, CUSTOM)
    write_last_order(database, "2026-03-01T12:00:00+03:00")
    write_last_order(database, later)
    assert stored_last_order(database) == "2026-03-01 09:00"


def test_custom_last_order_at_moves_forward(database: str) -> None:
    create_schema(database, CUSTOM)
    write_last_order(database, "2026-03-01T12:00:00+03:00")
    write_last_order(database, "2026-04-02T08:30:00+03:00")
    assert stored_last_order(database) == "2026-04-02 05:30"


def workflows_guide(tmp_path: Path, crm: str, lang: str) -> str:
    """Return the win-back section of a generated project's workflows guide."""
    result = CliRunner().invoke(main, [
        "new", "--no-input", "--preset", "woo-startup", "--set", "path=ipaas", "--set",
        f"crm={crm}", "--output-dir", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    project = next(path for path in tmp_path.iterdir() if path.is_dir())
    name = "README.md" if lang == "en" else "README.ar.md"
    text = (project / "workflows" / name).read_text(encoding="utf-8")
    heading = "## Win-back and the last order time" if lang == "en" else (
        "## استعادة العملاء ووقت آخر طلب")
    assert text.count(heading) == 1
    return text.split(heading, 1)[1].split("\n## ", 1)[0]


@pytest.mark.parametrize(("crm", "field", "lang", "rule"), [
    ("custom", "contacts.last_order_at", "en", "`GREATEST`"),
    ("custom", "contacts.last_order_at", "ar", "`GREATEST`"),
    ("hubspot", "ecom_last_order_at", "en", "order moves the stored time back"),
    ("zoho", "Ecom_Last_Order_At", "ar", "فتحديث طلب مدفوع أقدم"),
])
def test_guide_states_win_back_search(tmp_path: Path, crm: str, field: str, lang: str,
                                      rule: str) -> None:
    section = workflows_guide(tmp_path, crm, lang)
    assert f"`{field}`" in section
    assert "`orders_count`" in section
    assert rule in section
