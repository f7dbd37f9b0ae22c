"""Link columns of the client's own PostgreSQL database, written by the iPaaS flows.

Each statement runs with PREPARE and EXECUTE on a throw-away database made from the
project's ``database/schema.sql``, the way the n8n Postgres nodes and the build sheets
send it: ``$1``, ``$2`` … filled in the order of its placeholders.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from generator.cli import main
from generator.ipaas import n8n, n8n_code, schema_sql
from generator.ipaas.crm_calls import CrmCall
from generator.ipaas.flows import build_flows, walk_steps
from generator.spec import build_desired_state
from tests.ipaas_cases import load_case
from tests.test_ipaas_custom_schema import (
    POSTGRES_HOST,
    POSTGRES_PORT,
    POSTGRES_USER,
    database,
    psql,
)
from tests.test_ipaas_n8n_run import node_code, run_chain

__all__ = ["database"]

WOO = ("woo-startup", {"crm": "custom", "path": "ipaas"})
SUPPORT = ("support-heavy", {"crm": "custom", "path": "ipaas"})
SHEETS = ("zapier-build-sheet.md", "zapier-build-sheet.ar.md", "tray-build-sheet.md",
          "tray-build-sheet.ar.md")
LINK_TITLES = {"en": "Link the line item to its product", "ar": "ربط بند الطلب بالمنتج"}
SARA = {"store_customer_id": "501", "email": "sara@example.com", "phone": "+966501234567"}


@cache
def calls(preset: str, values: tuple[tuple[str, str], ...]) -> dict[tuple[str, str], CrmCall]:
    """Return the SQL call of each ``(flow key, step key)`` of the preset's flows."""
    answers, plan, spec = load_case(preset, dict(values))
    found = {}
    for flow in build_flows(answers, plan, spec).flows:
        for step in walk_steps(flow.steps):
            for call in step.calls:
                if call.method == "SQL":
                    found[(flow.key, step.key)] = call
    return found


def sql_call(case: tuple[str, dict[str, str]], flow: str, step: str) -> CrmCall:
    return calls(case[0], tuple(sorted(case[1].items())))[(flow, step)]


def literal(value: str | None) -> str:
    return "NULL" if value is None else "'" + value.replace("'", "''") + "'"


def run(database: str, call: CrmCall, values: dict[str, str | None]) -> None:
    """Run ``call`` once with each placeholder filled from ``values`` (NULL when absent)."""
    query, names = n8n_code.sql_statement(call.url)
    arguments = ", ".join(literal(values.get(name)) for name in names)
    done = psql(database, f"PREPARE step AS {query}; EXECUTE step({arguments});")
    assert done.returncode == 0, (query, done.stderr)


def scalar(database: str, sql: str) -> str:
    """Return the rows ``sql`` selects, one line each with columns joined by ``|``."""
    done = subprocess.run(
        ["psql", "-h", POSTGRES_HOST, "-p", str(POSTGRES_PORT), "-U", POSTGRES_USER,
         "-d", database, "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-c", sql],
        capture_output=True, text=True, check=False, timeout=60,
        env={**os.environ, "PGCONNECT_TIMEOUT": "5"})
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def create_schema(database: str, case: tuple[str, dict[str, str]]) -> None:
    answers, plan, spec = load_case(*case)
    text = schema_sql.schema_sql(build_flows(answers, plan, spec))
    created = psql(database, text)
    assert created.returncode == 0, created.stderr


def write_contact(database: str, case: tuple[str, dict[str, str]],
                  contact: dict[str, str | None]) -> None:
    run(database, sql_call(case, "order-sync", "upsert_contact"), contact)


def write_order(database: str, case: tuple[str, dict[str, str]], order_id: str,
                contact: dict[str, str | None]) -> None:
    """Write the contact, the order and the order's link, as the order flow does."""
    write_contact(database, case, contact)
    run(database, sql_call(case, "order-sync", "upsert_deal"),
        {"external_order_id": order_id, "deal_name": f"Order #{order_id}"})
    run(database, sql_call(case, "order-sync", "link_order_contact"),
        {**contact, "external_order_id": order_id})


def test_order_linked_to_contact(database: str) -> None:
    create_schema(database, WOO)
    write_contact(database, WOO, {"store_customer_id": "777", "email": "other@example.com"})
    write_order(database, WOO, "9001", dict(SARA))
    sara = scalar(database, "SELECT id FROM contacts WHERE store_customer_id = '501'")
    other = scalar(database, "SELECT id FROM contacts WHERE store_customer_id = '777'")
    assert sara != other
    assert scalar(database, "SELECT contact_id FROM orders WHERE external_id = '9001'") == sara


def test_guest_order_linked_by_phone(database: str) -> None:
    create_schema(database, WOO)
    guest = {"store_customer_id": None, "phone": "+966551112222", "email": None}
    write_contact(database, WOO, {"store_customer_id": "777", "email": "other@example.com"})
    write_order(database, WOO, "9002", guest)
    expected = scalar(database, "SELECT id FROM contacts WHERE phone_e164 = '+966551112222'")
    assert expected
    assert scalar(database, "SELECT contact_id FROM orders WHERE external_id = '9002'") == expected


def test_order_link_kept_without_match(database: str) -> None:
    create_schema(database, WOO)
    write_order(database, WOO, "9003", dict(SARA))
    sara = scalar(database, "SELECT id FROM contacts WHERE store_customer_id = '501'")
    # An update whose customer cannot be found keeps the link it has.
    run(database, sql_call(WOO, "order-sync", "link_order_contact"),
        {"store_customer_id": "404", "external_order_id": "9003"})
    assert scalar(database, "SELECT contact_id FROM orders WHERE external_id = '9003'") == sara


def test_order_lines_linked(database: str) -> None:
    create_schema(database, WOO)
    product = sql_call(WOO, "product-sync", "upsert_product")
    run(database, product, {"store_product_id": "p1", "sku": "OUD-50", "title": "Oud"})
    # A product without a SKU is written with its variant id, as its lines are.
    run(database, product, {"store_product_id": "p2", "sku": "4455", "title": "Musk"})
    write_order(database, WOO, "9001", dict(SARA))
    write_order(database, WOO, "9010", {"store_customer_id": "777"})
    for line, sku in (("L1", "4455"), ("L2", "OUD-50"), ("L3", "MISSING")):
        row = {"store_line_item_id": line, "sku": sku, "external_order_id": "9001"}
        run(database, sql_call(WOO, "order-sync", "upsert_line_items"), row)
        run(database, sql_call(WOO, "order-sync", "link_line_item_order"), row)
        run(database, sql_call(WOO, "order-sync", "link_line_item_product"), row)
    order = scalar(database, "SELECT id FROM orders WHERE external_id = '9001'")
    rows = scalar(database, "SELECT store_line_item_id || ':' || coalesce(order_id::text, '-') "
                            "|| ':' || coalesce(product_id::text, '-') FROM order_lines "
                            "ORDER BY store_line_item_id")
    p1 = scalar(database, "SELECT id FROM products WHERE external_id = 'p1'")
    p2 = scalar(database, "SELECT id FROM products WHERE external_id = 'p2'")
    assert rows.splitlines() == [f"L1:{order}:{p2}", f"L2:{order}:{p1}", f"L3:{order}:-"]


def test_event_linked_to_contact(database: str) -> None:
    create_schema(database, WOO)
    write_contact(database, WOO, {"store_customer_id": "777", "email": "other@example.com"})
    write_contact(database, WOO, dict(SARA))
    event = {"event_id": "e-1", "event_key": "add_to_cart", "customer_email": SARA["email"]}
    run(database, sql_call(WOO, "event-sync", "upsert_event"), event)
    run(database, sql_call(WOO, "event-sync", "link_event_contact"), event)
    sara = scalar(database, "SELECT id FROM contacts WHERE store_customer_id = '501'")
    assert scalar(database, "SELECT contact_id FROM events WHERE event_id = 'e-1'") == sara


def test_ticket_linked_to_order(database: str) -> None:
    create_schema(database, SUPPORT)
    write_contact(database, SUPPORT, {"store_customer_id": "777", "email": "other@example.com"})
    write_order(database, SUPPORT, "9001", dict(SARA))
    for ticket, order in (("t-1", "9001"), ("t-2", None)):
        row = {"store_ticket_id": ticket, "subject": "Late parcel", "order_id": order}
        run(database, sql_call(SUPPORT, "ticket-sync", "upsert_ticket"), row)
        run(database, sql_call(SUPPORT, "ticket-sync", "link_ticket_contact"), row)
        run(database, sql_call(SUPPORT, "ticket-sync", "link_ticket_order"), row)
    sara = scalar(database, "SELECT id FROM contacts WHERE store_customer_id = '501'")
    order = scalar(database, "SELECT id FROM orders WHERE external_id = '9001'")
    linked = scalar(database, "SELECT contact_id || ':' || order_id FROM tickets "
                              "WHERE external_id = 't-1'")
    assert linked == f"{sara}:{order}"
    # A ticket that names no order and carries no customer keys stays unlinked.
    unlinked = scalar(database, "SELECT count(*) FROM tickets WHERE external_id = 't-2' "
                                "AND contact_id IS NULL AND order_id IS NULL")
    assert unlinked == "1"


def test_n8n_link_params_from_mapping() -> None:
    answers, plan, spec = load_case(*WOO)
    files = n8n.files(answers, plan, spec, build_desired_state(spec, plan))
    data: dict[str, Any] = json.loads(files["workflows/n8n/order-sync.json"])
    queries = {node["name"]: node["parameters"]["query"] for node in data["nodes"]
               if node["type"] == "n8n-nodes-base.postgres"}
    assert queries["Link the order to its contact: query"].startswith(
        "UPDATE orders SET contact_id = ")
    assert queries["Link the line item to its order: query"].startswith(
        "UPDATE order_lines SET order_id = ")
    assert queries["Link the line item to its product: query"].startswith(
        "UPDATE order_lines SET product_id = ")
    order = {"id": 9001, "number": "9001", "customer_id": 501, "status": "processing",
             "currency": "SAR", "total": "150.00",
             "billing": {"email": "Sara@Example.com", "phone": "0501234567"},
             "line_items": [{"id": 1, "sku": "OUD-50", "quantity": 1, "price": "150.00"}]}
    contact = "Map the customer to the contact"
    mapper = "Map the order to the deal, with its stage"
    link = "Link the order to its contact: parameters"
    # Both mapping nodes read the payload. The upsert before the link outputs its
    # query result, not the mapped records.
    output = run_chain([(contact, node_code(data, contact), None),
                        ("payload", None, "(json) => json.payload"),
                        (mapper, node_code(data, mapper), None),
                        ("Create or update the deal: query", None, "() => ({ success: true })"),
                        (link, node_code(data, link), None)], [order])
    assert [item["params"] for item in output] == [
        ["501", "+966501234567", "sara@example.com", "9001"]]


@pytest.fixture(scope="module")
def woo_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("links")
    result = CliRunner().invoke(main, ["new", "--no-input", "--preset", WOO[0],
                                       "--set", "crm=custom", "--set", "path=ipaas",
                                       "--output-dir", str(output)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return next(path for path in output.iterdir() if path.is_dir())


@pytest.mark.parametrize("name", SHEETS)
def test_sheet_link_step_runs_sql(woo_project: Path, name: str) -> None:
    text = (woo_project / "workflows" / name).read_text("utf-8")
    title = LINK_TITLES["ar" if name.endswith(".ar.md") else "en"]
    rows = [line for line in text.splitlines() if line.startswith("|") and title in line]
    assert rows, title
    for row in rows:
        assert "| PostgreSQL |" in row
        assert "Custom Request" not in row
        assert "upsert body" not in row
    labels = re.findall(r"SQL (\d+)", rows[-1])
    assert labels
    block = re.search(rf"^SQL {labels[-1]} \(.*?\):\n[^`]*```sql\n(.*?)\n```", text,
                      flags=re.DOTALL | re.MULTILINE)
    assert block is not None
    assert block.group(1).startswith("UPDATE order_lines SET product_id = COALESCE(")


def test_ticket_without_order_linked_by_requester(database: str) -> None:
    create_schema(database, SUPPORT)
    write_contact(database, SUPPORT, {"store_customer_id": "777", "email": "other@example.com",
                                      "phone": "+966509999999"})
    write_contact(database, SUPPORT, dict(SARA))
    tickets = {
        "t-mail": {"customer_email": SARA["email"]},
        "t-phone": {"customer_phone": SARA["phone"]},
        "t-unknown": {"customer_email": "nobody@example.com"},
    }
    for ticket, requester in tickets.items():
        row = {"store_ticket_id": ticket, "subject": "Where is my parcel", **requester}
        run(database, sql_call(SUPPORT, "ticket-sync", "upsert_ticket"), row)
        run(database, sql_call(SUPPORT, "ticket-sync", "link_ticket_contact"), row)
    sara = scalar(database, "SELECT id FROM contacts WHERE store_customer_id = '501'")
    assert scalar(database, "SELECT contact_id FROM tickets WHERE external_id = 't-mail'") == sara
    assert scalar(database, "SELECT contact_id FROM tickets WHERE external_id = 't-phone'") == sara
    assert scalar(database, "SELECT contact_email FROM tickets "
                            "WHERE external_id = 't-mail'") == SARA["email"]
    unknown = scalar(database, "SELECT count(*) FROM tickets WHERE external_id = 't-unknown' "
                               "AND contact_id IS NULL")
    assert unknown == "1"
