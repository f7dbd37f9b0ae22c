"""Contacts of the client's own PostgreSQL database, found by id, phone or email.

The statements run on a throw-away database made from the project's
``database/schema.sql``, with PREPARE and EXECUTE as the n8n Postgres nodes and the
build sheets send them. A guest checkout has no store customer id, so its contact is
found by the E.164 phone or the email, and a field missing from a payload arrives as
NULL and must keep the stored value.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from generator.ipaas import n8n, n8n_code
from generator.ipaas.crm_calls import CrmCall
from generator.ipaas.flows import build_flows, walk_steps
from generator.spec import build_desired_state
from tests.ipaas_cases import load_case
from tests.test_ipaas_custom_links import (
    WOO,
    create_schema,
    literal,
    run,
    scalar,
    sql_call,
    write_contact,
    write_order,
)
from tests.test_ipaas_custom_schema import database, psql
from tests.test_ipaas_n8n_run import node_code, run_chain

__all__ = ["database"]

GUEST = {"store_customer_id": None, "email": "huda@example.com", "phone": None}


@cache
def step_calls(flow: str, step: str) -> tuple[CrmCall, ...]:
    """Return every SQL call of one step of the WooCommerce project with crm=custom."""
    answers, plan, spec = load_case(*WOO)
    for item in build_flows(answers, plan, spec).flows:
        if item.key == flow:
            for found in walk_steps(item.steps):
                if found.key == step:
                    return tuple(call for call in found.calls if call.method == "SQL")
    raise AssertionError(f"step {flow}/{step} not found")


def contact_count(database: str) -> int:
    return int(scalar(database, "SELECT count(*) FROM contacts"))


def test_missing_phone_keeps_phone(database: str) -> None:
    create_schema(database, WOO)
    upsert = sql_call(WOO, "order-sync", "upsert_contact")
    run(database, upsert, {"store_customer_id": "501", "email": "sara@example.com",
                           "phone": "+966501234567", "first_name": "Sara",
                           "last_order_at": "2026-03-01T10:00:00Z"})
    run(database, upsert, {"store_customer_id": "501", "email": "sara@example.com",
                           "first_name": "Sarah"})
    row = scalar(database, "SELECT phone_e164 || '|' || first_name || '|' || "
                           "to_char(last_order_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') "
                           "FROM contacts")
    assert row == "+966501234567|Sarah|2026-03-01"
    assert contact_count(database) == 1


def test_missing_order_field_kept(database: str) -> None:
    create_schema(database, WOO)
    upsert = sql_call(WOO, "order-sync", "upsert_deal")
    run(database, upsert, {"external_order_id": "9001", "deal_name": "Order #9001",
                           "amount": "150.00", "currency": "SAR"})
    run(database, upsert, {"external_order_id": "9001", "deal_name": "Order #9001"})
    assert scalar(database, "SELECT total_sar || '|' || currency FROM orders") == "150.00|SAR"


def test_guest_orders_one_contact(database: str) -> None:
    create_schema(database, WOO)
    write_order(database, WOO, "9101", dict(GUEST))
    write_order(database, WOO, "9102", {**GUEST, "phone": "+966551112222"})
    assert contact_count(database) == 1
    contact = scalar(database, "SELECT id FROM contacts")
    # The second order's phone fills the guest contact found by email.
    assert scalar(database, "SELECT phone_e164 FROM contacts") == "+966551112222"
    linked = scalar(database, "SELECT string_agg(contact_id::text, ',' ORDER BY external_id) "
                              "FROM orders")
    assert linked == f"{contact},{contact}"


def test_guest_found_by_phone(database: str) -> None:
    create_schema(database, WOO)
    write_order(database, WOO, "9101", {"store_customer_id": None, "phone": "+966551112222"})
    write_order(database, WOO, "9102", {**GUEST, "phone": "+966551112222"})
    assert contact_count(database) == 1
    assert scalar(database, "SELECT email FROM contacts") == GUEST["email"]


def test_guest_account_keeps_row(database: str) -> None:
    create_schema(database, WOO)
    write_order(database, WOO, "9101", dict(GUEST))
    write_order(database, WOO, "9102", {**GUEST, "store_customer_id": "601"})
    assert contact_count(database) == 1
    assert scalar(database, "SELECT store_customer_id FROM contacts") == "601"


def test_second_account_keeps_first_id(database: str) -> None:
    create_schema(database, WOO)
    write_order(database, WOO, "9101", {**GUEST, "store_customer_id": "601"})
    write_order(database, WOO, "9102", {**GUEST, "store_customer_id": "602"})
    assert contact_count(database) == 1
    assert scalar(database, "SELECT store_customer_id FROM contacts") == "601"


def test_two_keys_not_merged(database: str) -> None:
    create_schema(database, WOO)
    upsert = sql_call(WOO, "order-sync", "upsert_contact")
    run(database, upsert, {"phone": "+966551112222", "first_name": "Huda"})
    run(database, upsert, {"email": GUEST["email"], "first_name": "Other"})
    # The phone finds the first contact; the email, held by the second, is not copied.
    run(database, upsert, {"phone": "+966551112222", "email": GUEST["email"],
                           "last_name": "Saleh"})
    rows = scalar(database, "SELECT coalesce(phone_e164, '-') || '|' || coalesce(email, '-') "
                            "|| '|' || first_name || '|' || coalesce(last_name, '-') "
                            "FROM contacts ORDER BY id")
    assert rows.splitlines() == ["+966551112222|-|Huda|Saleh", f"-|{GUEST['email']}|Other|-"]


def test_guest_playbook_mark_updates(database: str) -> None:
    create_schema(database, WOO)
    write_order(database, WOO, "9101", dict(GUEST))
    (mark,) = step_calls("abandoned-checkout", "send_1")
    assert mark.url.startswith("UPDATE contacts SET ")
    run(database, mark, {**GUEST, "playbook_step": "abandoned_cart:cart_1",
                         "discount_code": "RABT-10"})
    assert contact_count(database) == 1
    row = scalar(database, "SELECT playbook_step || '|' || discount_code FROM contacts")
    assert row == "abandoned_cart:cart_1|RABT-10"
    # A later mark without a code keeps the code that the next steps read.
    run(database, mark, {**GUEST, "playbook_step": "abandoned_cart:cart_2"})
    row = scalar(database, "SELECT playbook_step || '|' || discount_code FROM contacts")
    assert row == "abandoned_cart:cart_2|RABT-10"


def test_unknown_playbook_mark_inserts_nothing(database: str) -> None:
    create_schema(database, WOO)
    (mark,) = step_calls("post-purchase", "send_1")
    run(database, mark, {"email": "nobody@example.com", "playbook_step": "post_purchase:1"})
    run(database, mark, {"playbook_step": "post_purchase:1"})
    assert contact_count(database) == 0


def test_guest_consent_row_written(database: str) -> None:
    create_schema(database, WOO)
    calls = step_calls("consent-sync", "upsert_consent")
    assert len(calls) >= 2
    row = {**GUEST, "email_consent_state": "yes", "email_consent_at": "2026-03-01T10:00:00Z",
           "email_consent_wording": "v1"}
    for call in calls:
        run(database, call, row)
    assert contact_count(database) == 1
    written = scalar(database, "SELECT consents.channel || '|' || consents.state FROM consents "
                               "JOIN contacts ON contacts.id = consents.contact_id "
                               f"WHERE contacts.email = '{GUEST['email']}'")
    assert "email|granted" in written.splitlines()


def consent_states(database: str) -> list[str]:
    rows = scalar(database, "SELECT string_agg(state || '@' || to_char(captured_at AT TIME ZONE "
                            "'UTC', 'HH24:MI'), ',' ORDER BY captured_at, id) FROM consents "
                            "WHERE channel = 'email'")
    return rows.split(",") if rows else []


def test_stored_opt_out_beats_opt_in(database: str) -> None:
    create_schema(database, WOO)
    upsert, email, *_ = step_calls("consent-sync", "upsert_consent")
    customer = {"store_customer_id": "701", "email": "reem@example.com", "phone": None}
    run(database, upsert, customer)

    def write(state: str, at: str) -> None:
        run(database, email, {**customer, "email_consent_state": state,
                              "email_consent_at": f"2026-03-01T{at}:00Z"})

    write("withdrawn", "10:00")
    write("yes", "09:00")  # older than the opt-out
    write("yes", "10:00")  # same time as the opt-out
    assert consent_states(database) == ["withdrawn@10:00"]
    write("yes", "11:00")  # newer: the customer opted in again
    write("no", "09:30")  # not an opt-in, so it is kept as history
    assert consent_states(database) == ["not_granted@09:30", "withdrawn@10:00",
                                       "granted@11:00"]


def test_opt_in_without_time_after_opt_out(database: str) -> None:
    create_schema(database, WOO)
    upsert, email, *_ = step_calls("consent-sync", "upsert_consent")
    customer = {"store_customer_id": "702", "email": "nora@example.com", "phone": None}
    run(database, upsert, customer)
    run(database, email, {**customer, "email_consent_state": "withdrawn",
                          "email_consent_at": "2999-01-01T00:00:00Z"})
    # An opt-in without a capture time counts as now, which is before that opt-out.
    run(database, email, {**customer, "email_consent_state": "yes"})
    assert scalar(database, "SELECT count(*) FROM consents") == "1"


def test_identity_indexes_reject_duplicates(database: str) -> None:
    create_schema(database, WOO)
    scalar(database, "INSERT INTO contacts (email) VALUES ('a@example.com'), (NULL), (NULL)")
    done = psql(database, "INSERT INTO contacts (email) VALUES ('a@example.com')")
    assert done.returncode != 0
    assert "contacts_email_key" in done.stderr


def test_sql_statement_numbers_once() -> None:
    query, names = n8n_code.sql_statement("SELECT <a>, <b>, <a>")
    assert query == "SELECT $1, $2, $1"
    assert names == ["a", "b"]


def test_n8n_guest_mark_params() -> None:
    answers, plan, spec = load_case(*WOO)
    files = n8n.files(answers, plan, spec, build_desired_state(spec, plan))
    data: dict[str, Any] = json.loads(files["workflows/n8n/abandoned-checkout.json"])
    enrol = "Send step 1 by email: enrol"
    params = "Send step 1 by email: parameters"
    guest = {"record": {"contacts.email": GUEST["email"], "contacts.phone_e164": None,
                        "contacts.first_name": "Huda"}, "discount_code": "RABT-10"}
    output = run_chain([(enrol, node_code(data, enrol), None),
                        (params, node_code(data, params), None)], [guest])
    query = next(node["parameters"]["query"] for node in data["nodes"]
                 if node["name"] == "Send step 1 by email: query")
    _, names = n8n_code.sql_statement(next(
        call.url for call in step_calls("abandoned-checkout", "send_1")))
    assert query.startswith("UPDATE contacts SET playbook_step = COALESCE($1, ")
    sent = dict(zip(names, output[0]["params"], strict=True))
    assert sent["email"] == GUEST["email"]
    assert sent["store_customer_id"] is None
    assert sent["playbook_step"] is not None
    assert sent["discount_code"] == "RABT-10"


def consent_read(flow: str, node_name: str) -> tuple[str, str]:
    """Return the n8n request code and the consent query of one consent gate (WooCommerce)."""
    answers, plan, spec = load_case(*WOO)
    files = n8n.files(answers, plan, spec, build_desired_state(spec, plan))
    data: dict[str, Any] = json.loads(files[f"workflows/n8n/{flow}.json"])
    query = next(node["parameters"]["query"] for node in data["nodes"]
                 if node["name"] == f"{node_name}: read")
    return node_code(data, f"{node_name}: request"), query


def read_consent(database: str, query: str, params: list[str | None]) -> str:
    arguments = ", ".join(literal(value) for value in params)
    return scalar(database, f"PREPARE consent AS {query}; EXECUTE consent({arguments});")


def add_consent(database: str, where: str, channel: str, state: str) -> None:
    scalar(database, "INSERT INTO consents (contact_id, channel, state, captured_at) "
                     f"SELECT id, '{channel}', '{state}', now() FROM contacts WHERE {where}")


def test_consent_read_finds_phone_guest(database: str) -> None:
    create_schema(database, WOO)
    phone = "+966551112222"
    write_contact(database, WOO, {"store_customer_id": None, "phone": phone})
    add_consent(database, f"phone_e164 = '{phone}'", "email", "granted")
    request, query = consent_read("post-purchase", "Check email consent")
    guest = {"record": {"contacts.phone_e164": phone, "contacts.email": None}, "key": None}
    (item,) = run_chain([("request", request, None)], [guest])
    assert item["params"] == [None, phone, None]
    assert read_consent(database, query, item["params"]) == "granted"


def test_consent_read_identity_order(database: str) -> None:
    create_schema(database, WOO)
    phone = "+966551112222"
    # Two contacts: one holds the store id, the other the phone and the email.
    write_contact(database, WOO, {"store_customer_id": "701"})
    write_contact(database, WOO, {"phone": phone, "email": GUEST["email"]})
    add_consent(database, "store_customer_id = '701'", "email", "withdrawn")
    add_consent(database, f"phone_e164 = '{phone}'", "email", "granted")
    _, query = consent_read("post-purchase", "Check email consent")
    # The store id decides first, then the phone, then the email, as the upsert matches.
    assert read_consent(database, query, ["701", phone, GUEST["email"]]) == "withdrawn"
    assert read_consent(database, query, [None, phone, "nobody@example.com"]) == "granted"
    assert read_consent(database, query, [None, None, GUEST["email"]]) == "granted"
    assert read_consent(database, query, [None, None, "nobody@example.com"]) == ""


def test_consent_request_drops_unknown_contact() -> None:
    request, _ = consent_read("post-purchase", "Check email consent")
    empty = {"record": {"contacts.phone_e164": None, "contacts.email": ""}, "key": None}
    assert run_chain([("request", request, None)], [empty]) == []
