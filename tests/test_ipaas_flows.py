"""The flow model: which flows a project gets, their steps, field maps, gates and calls."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest

from generator.ipaas import make
from generator.ipaas.buildsheets import sheet_context
from generator.ipaas.flows import FlowSet, build_flows
from tests.ipaas_cases import IPAAS_CASES, load_case

BASE_FLOWS = ["contact-sync", "order-sync", "product-sync", "event-sync", "abandoned-checkout",
              "post-purchase", "win-back", "consent-sync", "reconciliation", "error-alert"]


def _modules(flow: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for module in flow:
        yield module
        for route in module.get("routes", []):
            yield from _modules(route["flow"])


def flows_for(preset: str, **values: object) -> FlowSet:
    answers, plan, spec = load_case(preset, dict(values))
    return build_flows(answers, plan, spec)


@pytest.mark.parametrize(("case", "preset", "values"), IPAAS_CASES, ids=[c[0] for c in IPAAS_CASES])
def test_flows_every_case_is_ipaas(case: str, preset: str, values: dict[str, object]) -> None:
    answers, plan, spec = load_case(preset, values)
    flow_set = build_flows(answers, plan, spec)
    assert plan.path == "ipaas"
    assert flow_set.keys[:2] == ("contact-sync", "order-sync")
    assert flow_set.keys[-1] == "error-alert"


def test_flows_shopify_hubspot_keys() -> None:
    assert list(flows_for("shopify-growth").keys) == BASE_FLOWS


def test_flows_support_adds_tickets() -> None:
    with_support = flows_for("jeddah-fashion-zoho")
    without = flows_for("jeddah-fashion-zoho", support_channels=[], support_agents=0)
    assert "ticket-sync" in with_support.keys
    assert "ticket-sync" not in without.keys


def test_flows_ticket_sla_from_spec() -> None:
    ticket = flows_for("jeddah-fashion-zoho").get("ticket-sync")
    sla = next(step for step in ticket.walk() if step.key == "sla_check")
    assert sla.params["alert_at_percent"] == 80
    assert [route.key for route in sla.routes] == ["late"]
    assert sla.routes[0].steps[0].kind == "alert"


def test_flows_dedupe_key_per_platform() -> None:
    assert flows_for("shopify-growth").get("order-sync").dedupe_key == "header X-Shopify-Event-Id"
    woo = flows_for("woo-startup", monthly_orders=400)
    assert woo.get("order-sync").dedupe_key == "header X-WC-Webhook-Delivery-ID"


def test_flows_order_topics_per_platform() -> None:
    shopify = flows_for("shopify-growth").get("order-sync").trigger
    woo = flows_for("woo-startup", monthly_orders=400).get("order-sync").trigger
    assert shopify.topics == ("orders/create", "orders/updated")
    assert woo.topics == ("order.created", "order.updated")


def test_flows_abandoned_wait_from_playbook() -> None:
    flow = flows_for("shopify-growth").get("abandoned-checkout")
    wait = next(step for step in flow.steps if step.key == "wait_delay")
    assert wait.params["amount"] == 2
    assert wait.params["unit"] == "hours"
    assert (wait.params["min"], wait.params["max"]) == (1, 4)


def test_flows_abandoned_checks_order() -> None:
    flow = flows_for("shopify-growth").get("abandoned-checkout")
    check = next(step for step in flow.steps if step.key == "check_order")
    assert [route.key for route in check.routes] == ["ordered", "abandoned"]
    assert check.params["keys"] == ["token", "cart_token"]
    recover = [step.key for step in check.routes[1].steps]
    assert recover.index("upsert_contact") < recover.index("send_1")


def test_flows_consent_gate_before_each_send() -> None:
    flow = flows_for("shopify-growth").get("abandoned-checkout")
    steps = list(flow.walk())
    for index, step in enumerate(steps):
        if step.kind == "send":
            gates = [s for s in steps[:index] if s.kind == "consent_gate"]
            assert gates[-1].params["channel"] == step.params["channel"]


def test_flows_gate_granted_values() -> None:
    gates = flows_for("shopify-growth").consent_gates
    assert sorted(gates) == ["email", "sms", "whatsapp"]
    assert gates["email"].granted_values == ("subscribed",)
    assert gates["whatsapp"].granted_values == ("true",)


def test_flows_gate_zoho_crm_condition() -> None:
    gates = flows_for("jeddah-fashion-zoho").consent_gates
    assert gates["email"].crm_field == "Email_Opt_Out"
    assert gates["email"].crm_condition() == ("equal", "false")
    assert gates["whatsapp"].crm_condition() == ("equal", "true")


def test_flows_win_back_discount_once() -> None:
    flow = flows_for("shopify-growth").get("win-back")
    discounts = [step.key for step in flow.walk() if step.kind == "discount"]
    assert discounts == ["discount_1"]


def test_flows_win_back_due_days() -> None:
    flow = flows_for("shopify-growth").get("win-back")
    lookups = [step.key for step in flow.walk() if step.kind == "lookup"]
    assert lookups == ["find_due_45", "find_due_52", "find_due_60"]


def test_flows_field_rows_bilingual() -> None:
    rows = flows_for("shopify-growth").get("order-sync").field_rows()
    amount = next(row for row in rows if row.name == "amount")
    assert amount.source == "total_price"
    assert amount.target == "amount"
    assert amount.transform == "money_sar"
    assert "Decimal" in amount.description.en
    assert amount.description.ar


def test_flows_order_writes_last_order_at() -> None:
    rows = flows_for("shopify-growth").get("order-sync").field_rows()
    last = next(row for row in rows if row.name == "last_order_at")
    assert last.target == "ecom_last_order_at"
    assert last.fallback_sources == ("created_at",)


def test_flows_hubspot_upsert_call() -> None:
    calls = flows_for("shopify-growth").get("contact-sync").calls()
    assert calls[0].method == "POST"
    assert calls[0].url == "https://api.hubapi.com/crm/v3/objects/contacts/batch/upsert"
    assert calls[0].batch_limit == 100
    assert calls[0].body["inputs"][0]["idProperty"] == "ecom_customer_id"


def test_flows_zoho_upsert_identity_order() -> None:
    call = flows_for("jeddah-fashion-zoho").get("contact-sync").calls()[0]
    assert call.endpoint == "/Contacts/upsert"
    assert call.body["duplicate_check_fields"] == ["Ecom_Customer_ID", "Email"]
    assert call.batch_limit == 100


def test_flows_hubspot_association_type() -> None:
    order = flows_for("shopify-growth").get("order-sync")
    link = next(step for step in order.walk() if step.key == "link_order_contact")
    body = link.calls[0].body
    assert link.calls[0].endpoint == "/crm/v4/associations/deals/contacts/batch/create"
    assert body["inputs"][0]["types"][0]["associationTypeId"] == 3


def test_flows_postgres_upsert_sql() -> None:
    call = flows_for("shopify-growth", crm="custom", path="ipaas").get("contact-sync").calls()[0]
    assert call.method == "SQL"
    # A guest has no store customer id, so no ON CONFLICT key fits: the statement
    # updates the contact found by id, phone or email, or inserts one.
    assert call.endpoint.startswith("WITH found AS (SELECT COALESCE((SELECT id FROM contacts "
                                    "WHERE store_customer_id = <store_customer_id>")
    assert "ON CONFLICT" not in call.endpoint
    assert "phone_e164 = <phone>" in call.endpoint
    assert "email = <email>" in call.endpoint
    assert "first_name = COALESCE(<first_name>, contacts.first_name)" in call.endpoint
    assert call.endpoint.endswith("FROM found WHERE found.id IS NULL")


def test_flows_postgres_upsert_keeps_values() -> None:
    call = flows_for("shopify-growth", crm="custom", path="ipaas").get("product-sync").calls()[0]
    assert "ON CONFLICT (external_id) DO UPDATE SET" in call.endpoint
    assert "title = COALESCE(EXCLUDED.title, products.title)" in call.endpoint


def test_flows_get_unknown_key() -> None:
    with pytest.raises(KeyError):
        flows_for("shopify-growth").get("no-such-flow")


def test_flows_to_data_plain() -> None:
    data = flows_for("shopify-growth").get("order-sync").to_data()
    assert data["key"] == "order-sync"
    assert data["trigger"]["kind"] == "webhook"
    assert data["title"] == {"en": "Order to deal", "ar": "من الطلب إلى الصفقة"}


def consent_calls(**values: object) -> list[str]:
    flow = flows_for("shopify-growth", crm="custom", path="ipaas", **values).get("consent-sync")
    return [call.endpoint for call in flow.calls()]


def sql_columns(statement: str) -> list[str]:
    inside = statement[statement.index("(") + 1:statement.index(")")]
    return [column.strip() for column in inside.split(",")]


def test_flows_consent_sql_columns_once() -> None:
    contact, *channels = consent_calls()
    assert contact.startswith("WITH found AS ")
    insert = contact[contact.index("INSERT INTO contacts "):]
    assert sql_columns(insert) == ["store_customer_id", "email", "phone_e164"]
    assert [statement.split("'")[1] for statement in channels] == ["email", "sms", "whatsapp"]
    for statement in channels:
        columns = sql_columns(statement)
        assert statement.startswith("INSERT INTO consents (")
        assert len(columns) == len(set(columns)), statement
        assert columns[:3] == ["contact_id", "channel", "state"]
        assert (
            "FROM contacts WHERE id = COALESCE((SELECT id FROM contacts WHERE store_customer_id "
            "= <store_customer_id> ORDER BY id LIMIT 1), (SELECT id FROM contacts WHERE "
            "phone_e164 = <phone> ORDER BY id LIMIT 1), (SELECT id FROM contacts WHERE "
            "email = <email> ORDER BY id LIMIT 1)) AND NOT (CASE ") in statement
        channel = statement.split("'")[1]
        assert statement.endswith(
            f"opt_out.channel = '{channel}' AND opt_out.state = 'withdrawn' AND "
            f"opt_out.captured_at >= COALESCE(CAST(<{channel}_consent_at> AS timestamptz), "
            "now())))")


def test_flows_consent_sql_state_table() -> None:
    whatsapp = consent_calls()[-1]
    assert "CASE lower(<whatsapp_consent_state>) WHEN 'true' THEN 'granted'" in whatsapp
    assert "WHEN 'withdrawn' THEN 'withdrawn' ELSE 'not_granted' END" in whatsapp
    assert "CAST(<whatsapp_consent_at> AS timestamptz)" in whatsapp
    assert "<whatsapp_consent_wording>" in whatsapp


def test_flows_consent_rows_by_role() -> None:
    flow = flows_for("jeddah-fashion-zoho").get("consent-sync")
    rows = {row.target: row.source for row in flow.field_rows()}
    # The consent topics send the customer itself, so no path starts at customer.
    assert rows["Ecom_Email_Consent_At"] == "email_marketing_consent.consent_updated_at"
    assert rows["Email_Opt_Out"] == "email_marketing_consent.state"
    assert rows["Ecom_WhatsApp_Consent_Wording"] == "metafields.rabt.consent_wording"


def test_flows_marker_writes_discount() -> None:
    flow = flows_for("shopify-growth").get("abandoned-checkout")
    send = next(step for step in flow.walk() if step.key == "send_1")
    properties = send.calls[0].body["inputs"][0]["properties"]
    assert set(properties) >= {"ecom_playbook_step", "ecom_discount_code",
                               "ecom_discount_expires_at"}
    assert "does not list" not in str(send.calls[0].note)


def test_desired_state_has_playbook_fields() -> None:
    from generator.spec import build_desired_state

    _, plan, spec = load_case("shopify-growth", {})
    names = {item["name"] for item in build_desired_state(spec, plan)["properties"]}
    assert {"ecom_playbook_step", "ecom_discount_code", "ecom_discount_expires_at"} <= names
    _, plan, spec = load_case("jeddah-fashion-zoho", {})
    text = str(build_desired_state(spec, plan))
    for field_name in ("Ecom_Playbook_Step", "Ecom_Discount_Code", "Ecom_Discount_Expires_At"):
        assert f"'api_name': '{field_name}'" in text, field_name


@pytest.mark.parametrize(("default", "unit", "expected"), [
    (2, "hours", "ساعتان (المسموح من 1 إلى 4)"),
    (3, "hours", "3 ساعات (المسموح من 1 إلى 4)"),
    (1, "hours", "ساعة واحدة (المسموح من 1 إلى 4)"),
    (2, "days", "يومان (المسموح من 1 إلى 4)"),
])
def test_delay_text_arabic_count(default: int, unit: str, expected: str) -> None:
    from generator.ipaas.flows import _delay_text

    text = _delay_text({"default": default, "unit": unit, "min": 1, "max": 4})
    assert text.ar == expected


@pytest.mark.parametrize(("days", "expected"), [(7, "7 أيام"), (45, "45 يومًا"),
                                                (100, "100 يوم")])
def test_due_lookup_arabic_count(days: int, expected: str) -> None:
    from generator.ipaas.flows import _Context, _due_lookup

    answers, plan, spec = load_case("shopify-growth", {})
    title = _due_lookup(_Context(answers, plan, spec), "win_back", days).title.ar
    assert title.endswith(f"لهم {expected}")


def test_ipaas_arabic_counts_use_filter() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    nouns = "دقيقة|دقائق|ساعة|ساعات|يوم|يومًا|أيام|طلب|طلبًا|مهمة|مهام|سجل|سجلات|شهر|أشهر"
    bare = re.compile(r"\}\}\s*(" + nouns + r")(?![\w\u0600-\u06ff])")
    found = []
    for path in sorted((root / "templates" / "ipaas").rglob("*.ar.md")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if bare.search(line):
                found.append(f"{path.name}:{number}")
    assert found == []
    # TIMES is the multiplication sign, not a count.
    source = re.compile(r"\{(?!TIMES\})[^{}]*\}\s*(" + nouns + r")[\"' ]")
    for path in sorted((root / "generator" / "ipaas").glob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if 'f"' in line and source.search(line):
                found.append(f"{path.name}:{number}")
    assert found == []


@pytest.mark.parametrize(("preset", "unique"), [("shopify-growth", "ecom_product_id"),
                                                ("jeddah-fashion-zoho", "Ecom_Product_ID")])
def test_product_purpose_names_store_id(preset: str, unique: str) -> None:
    purpose = flows_for(preset).get("product-sync").purpose
    assert "keyed by SKU" not in purpose.en
    assert f"keyed by the store's product or variant id ({unique})" in purpose.en
    assert "the SKU is written as a property" in purpose.en
    assert "بمفتاح SKU" not in purpose.ar
    assert f"مفتاحه معرّف المنتج أو المتغيّر في المتجر ({unique})" in purpose.ar


def test_error_flow_module_alerts() -> None:
    flows = flows_for("shopify-growth")
    assert flows.get("error-alert").module == "alerts"
    assert flows.get("reconciliation").module == "orders"


@pytest.mark.parametrize(("preset", "values", "expected"), [
    ("shopify-growth", {}, "line_items[]"),
    ("woo-startup", {"monthly_orders": 400}, "line_items[]"),
    ("headless-nextjs", {"path": "ipaas"}, "order.line_items[]"),
])
def test_line_items_path_from_mapping(preset: str, values: dict[str, object],
                                      expected: str) -> None:
    order = flows_for(preset, **values).get("order-sync")
    for key in ("map_line_items", "upsert_line_items"):
        step = next(step for step in order.walk() if step.key == key)
        assert step.params["iterate"] == expected


def test_headless_make_feeder_reads_order() -> None:
    answers, plan, spec = load_case("headless-nextjs", {"path": "ipaas"})
    blueprint = make.blueprints(build_flows(answers, plan, spec))["order-sync"]
    feeders = [module for module in _modules(blueprint["flow"])
               if module["module"] == "builtin:BasicFeeder"]
    assert feeders
    # One feeder per contact route; each iterates the order's nested line items.
    assert {module["mapper"]["array"] for module in feeders} == {"{{1.order.line_items}}"}


def test_headless_sheet_loops_order_lines() -> None:
    rows = sheet_context(flows_for("headless-nextjs", path="ipaas"))
    text = json.dumps(rows, ensure_ascii=False)
    assert "`order.line_items[]`" in text
    assert "`line_items[]`" not in text


@pytest.mark.parametrize(("case", "preset", "values"), IPAAS_CASES, ids=[c[0] for c in IPAAS_CASES])
def test_last_order_row_won_only(case: str, preset: str, values: dict[str, object]) -> None:
    answers, plan, spec = load_case(preset, values)
    flow = build_flows(answers, plan, spec).get("order-sync")
    row = next(row for row in flow.field_rows() if row.name == "last_order_at")
    assert row.won_only is True
    assert "won stage (Paid / processing, Fulfilled / shipped)" in row.description.en
    assert "مرحلة رابحة (مدفوع / قيد التجهيز، مكتمل / تم الشحن)" in row.description.ar
    later = "later than the contact's stored value"
    if plan.crm == "custom":
        assert later not in row.description.en
        assert "keeps the later of the stored and the new time" in row.description.en
    else:
        assert later in row.description.en
        assert "أحدث من القيمة المخزّنة" in row.description.ar


def test_sheets_state_last_order_rule() -> None:
    answers, plan, spec = load_case("shopify-growth", {})
    rows = [row for flow in sheet_context(build_flows(answers, plan, spec))
            for row in flow["fields"] if row["target"] == "ecom_last_order_at"]
    assert rows
    assert all("Written only when the order's stage is a won stage" in row["description_en"]
               for row in rows)
