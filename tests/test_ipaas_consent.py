"""The consent flow reads Shopify's consent-only topics and writes Zoho's checkboxes as booleans.

Shopify's customers_marketing_consent/update and customers_email_marketing_consent/update
bodies carry ``customer_id`` and ``email_address`` in place of ``id`` and ``email``.
Zoho's Email_Opt_Out is a checkbox that is true when the contact opted out, and the
SMS and WhatsApp opt-in checkboxes are true when consent is granted.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from generator.cli import main
from generator.ipaas import make, n8n
from generator.ipaas.flows import build_flows
from generator.spec import build_desired_state
from tests.ipaas_cases import load_case
from tests.test_ipaas_n8n_run import linked, node_code, run_chain, workflow

MAP = "Map each channel's consent state"
BATCH = "Write the consent record to the CRM: batch"
# A consent-only body: customer_id and email_address in place of id and email.
EMAIL_CONSENT_BODY = {
    "customer_id": 7001, "email_address": "Sara@Example.com",
    "email_marketing_consent": {"state": "unsubscribed", "opt_in_level": "single_opt_in",
                                "consent_updated_at": "2026-11-30T09:00:00+03:00"},
}
CUSTOMER_BODY = {
    "id": 7002, "email": "nora@example.com", "phone": "+966500000003",
    "email_marketing_consent": {"state": "subscribed", "opt_in_level": "single_opt_in",
                                "consent_updated_at": "2026-11-30T10:00:00+03:00"},
    "sms_marketing_consent": {"state": "not_subscribed", "opt_in_level": "single_opt_in",
                              "consent_updated_at": None},
}


def mapped_records(preset: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    data = workflow(preset, "consent-sync")
    out: list[dict[str, Any]] = run_chain([(MAP, node_code(data, MAP), None)], [body])
    return [item["record"] for item in out]


def walk_modules(flow: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for module in flow:
        found.append(module)
        for route in module.get("routes", []):
            found.extend(walk_modules(route["flow"]))
    return found


def consent_body(preset: str, values: dict[str, Any] | None = None,
                 field: str = "Email_Opt_Out") -> str:
    answers, plan, spec = load_case(preset, values or {})
    blueprint = make.blueprints(build_flows(answers, plan, spec))["consent-sync"]
    bodies = [module["mapper"].get("jsonStringBodyContent", "")
              for module in walk_modules(blueprint["flow"])
              if module["module"] == "http:MakeRequest"]
    return next(body for body in bodies if f'"{field}"' in body)


def test_consent_topic_identity_paths() -> None:
    answers, plan, spec = load_case("jeddah-fashion-zoho", {})
    rows = {row.name: row for row in build_flows(answers, plan, spec).get("consent-sync")
            .field_rows()}
    assert rows["store_customer_id"].source == "customer_id"
    assert rows["store_customer_id"].fallback_sources == ("id",)
    assert rows["email"].source == "email_address"
    assert rows["email"].fallback_sources == ("email",)


def test_consent_topic_body_maps_identity() -> None:
    record = mapped_records("jeddah-fashion-zoho", EMAIL_CONSENT_BODY)[0]
    assert record["Ecom_Customer_ID"] == "7001"
    assert record["Email"] == "sara@example.com"


def test_zoho_opt_out_is_boolean() -> None:
    withdrawn = mapped_records("jeddah-fashion-zoho", EMAIL_CONSENT_BODY)[0]
    assert withdrawn["Email_Opt_Out"] is True
    granted = mapped_records("jeddah-fashion-zoho", CUSTOMER_BODY)[0]
    assert granted["Email_Opt_Out"] is False
    assert granted["Ecom_SMS_Opt_In"] is False
    assert granted["Ecom_Customer_ID"] == "7002"


def test_zoho_opt_out_missing_state_left_out() -> None:
    body = {"customer_id": 7003, "email_address": "a@example.com"}
    record = mapped_records("jeddah-fashion-zoho", body)[0]
    assert "Email_Opt_Out" not in record


def test_zoho_opt_in_batch_sends_booleans() -> None:
    data = workflow("jeddah-fashion-zoho", "consent-sync")
    steps = [(name, node_code(data, name), None) for name in (MAP, BATCH)]
    out = run_chain(steps, [CUSTOMER_BODY])
    sent = out[0]["body"]["data"][0]
    assert sent["Email_Opt_Out"] is False
    assert sent["Ecom_SMS_Opt_In"] is False


def test_make_opt_out_formula_boolean() -> None:
    body = consent_body("jeddah-fashion-zoho")
    opt_out = re.search(r'"Email_Opt_Out": (\{\{.*?\}\})[,}]', body)
    assert opt_out is not None
    # The update route keeps a box Zoho already shows ticked, then reads the store's state.
    store_state = ('if(lower(trim(toString(1.email_marketing_consent.state))) = '
                   '"subscribed"; false; true)')
    assert re.fullmatch(r'\{\{if\(first\(map\(\d+\.data\.data; "Email_Opt_Out"\)\); true; '
                        + re.escape(store_state) + r'\)\}\}', opt_out.group(1))
    opt_in = re.search(r'"Ecom_SMS_Opt_In": (\{\{.*?\}\})[,}]',
                       consent_body("jeddah-fashion-zoho", field="Ecom_SMS_Opt_In"))
    assert opt_in is not None
    assert opt_in.group(1).endswith('= "subscribed"; true; false)}}')


@pytest.mark.parametrize(("preset", "values"), [
    ("jeddah-fashion-zoho", {}), ("woo-startup", {"monthly_orders": 400})])
def test_make_consent_body_is_json_once_filled(preset: str, values: dict[str, Any]) -> None:
    body = consent_body(preset, values)
    filled = re.sub(r'"\{\{.*?\}\}"', '"x"', body)
    filled = re.sub(r"\{\{.*?\}\}", "true", filled)
    assert json.loads(filled)["data"][0]["Email_Opt_Out"] is True


EMAIL_STATUS = "Write the consent record to the CRM: read the EMAIL status"
EMAIL_WRITE = "Write the consent record to the CRM: batch (2)"


@cache
def hubspot_workflow() -> dict[str, Any]:
    """Return the consent flow of a one-store Shopify and HubSpot project on the iPaaS path."""
    answers, plan, spec = load_case("riyadh-perfume-hubspot", {"path": "ipaas"})
    files = n8n.files(answers, plan, spec, build_desired_state(spec, plan))
    data: dict[str, Any] = json.loads(files["workflows/n8n/consent-sync.json"])
    return data


def hubspot_email_writes(crm_status: str) -> list[dict[str, Any]]:
    """Run a store opt-in through the HubSpot EMAIL status read and write with ``crm_status``."""
    data = hubspot_workflow()
    stub = ("() => ({ results: [{ channel: 'EMAIL', subscriptionId: 11, "
            f"status: {json.dumps(crm_status)}, timestamp: '2026-11-29T08:00:00Z' }}] }})")
    steps = [(MAP, node_code(data, MAP), None),
             (f"{EMAIL_STATUS}: request", node_code(data, f"{EMAIL_STATUS}: request"), None),
             (EMAIL_STATUS, None, stub),
             (EMAIL_WRITE, node_code(data, EMAIL_WRITE), None)]
    writes: list[dict[str, Any]] = run_chain(steps, [CUSTOMER_BODY])
    return writes


def test_hubspot_opt_in_skips_crm_opt_out() -> None:
    assert hubspot_email_writes("NOT_SUBSCRIBED") == []


@pytest.mark.parametrize("crm_status", ["NOT_SPECIFIED", "SUBSCRIBED"])
def test_hubspot_opt_in_written_without_opt_out(crm_status: str) -> None:
    writes = hubspot_email_writes(crm_status)
    assert len(writes) == 1
    assert writes[0]["path"] == "nora%40example.com"
    assert writes[0]["body"]["statusState"] == "SUBSCRIBED"
    assert writes[0]["body"]["channel"] == "EMAIL"


def test_hubspot_store_opt_out_always_written() -> None:
    data = hubspot_workflow()
    body = {**CUSTOMER_BODY, "email_marketing_consent": {
        **CUSTOMER_BODY["email_marketing_consent"], "state": "unsubscribed"}}
    stub = "() => ({ results: [{ channel: 'EMAIL', status: 'SUBSCRIBED' }] })"
    steps = [(MAP, node_code(data, MAP), None),
             (f"{EMAIL_STATUS}: request", node_code(data, f"{EMAIL_STATUS}: request"), None),
             (EMAIL_STATUS, None, stub),
             (EMAIL_WRITE, node_code(data, EMAIL_WRITE), None)]
    writes = run_chain(steps, [body])
    assert [write["body"]["statusState"] for write in writes] == ["NOT_SUBSCRIBED"]


def test_hubspot_status_read_per_channel() -> None:
    data = hubspot_workflow()
    code = node_code(data, f"{EMAIL_STATUS}: request")
    out = run_chain([(MAP, node_code(data, MAP), None),
                     (f"{EMAIL_STATUS}: request", code, None)], [CUSTOMER_BODY])
    assert [item["path"] for item in out] == [
        "/communication-preferences/v4/statuses/nora%40example.com?channel=EMAIL"]
    assert linked(data, f"{EMAIL_STATUS}: request", EMAIL_STATUS)
    assert linked(data, EMAIL_STATUS, EMAIL_WRITE)


def test_make_status_write_filtered_by_crm_opt_out() -> None:
    answers, plan, spec = load_case("riyadh-perfume-hubspot", {"path": "ipaas"})
    blueprint = make.blueprints(build_flows(answers, plan, spec))["consent-sync"]
    modules = walk_modules(blueprint["flow"])
    names = [module["metadata"]["designer"]["name"] for module in modules]
    write_at = names.index("Set the email subscription status")
    read = modules[write_at - 1]
    assert names[write_at - 1] == "Read the current email subscription status"
    assert read["mapper"]["method"] == "get"
    assert read["mapper"]["queryParameters"] == [{"name": "channel", "value": "EMAIL"}]
    condition = modules[write_at]["filter"]["conditions"][0][0]
    assert condition["b"] == "write"
    assert (f'contains(map({read["id"]}.data.results; "status"; "channel"; "EMAIL"); '
            '"NOT_SUBSCRIBED")') in condition["a"]
    assert '= "subscribed"' in condition["a"]


@pytest.mark.parametrize("sheet", ["zapier-build-sheet", "tray-build-sheet"])
def test_sheets_check_status_before_write(tmp_path: Path, sheet: str) -> None:
    result = CliRunner().invoke(main, ["new", "--no-input", "--preset", "riyadh-perfume-hubspot",
                                       "--set", "path=ipaas", "--output-dir", str(tmp_path)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    project = next(path for path in tmp_path.iterdir() if path.is_dir())
    english = (project / f"workflows/{sheet}.md").read_text(encoding="utf-8")
    arabic = (project / f"workflows/{sheet}.ar.md").read_text(encoding="utf-8")
    section = english.split("(`consent-sync`)", 1)[1].split("\n## ", 1)[0]
    assert "read the contact's current status with `GET https://api.hubapi.com/" in section
    assert "HubSpot returns `NOT_SUBSCRIBED`" in section
    assert "وأعاد HubSpot القيمة `NOT_SUBSCRIBED`" in arabic
