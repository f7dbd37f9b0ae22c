"""The consent flow reads Shopify's consent-only topics and writes Zoho's checkboxes as booleans.

Shopify's customers_marketing_consent/update and customers_email_marketing_consent/update
bodies carry ``customer_id`` and ``email_address`` in place of ``id`` and ``email``.
Zoho's Email_Opt_Out is a checkbox that is true when the contact opted out, and the
SMS and WhatsApp opt-in checkboxes are true when consent is granted.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from generator.ipaas import make
from generator.ipaas.flows import build_flows
from tests.ipaas_cases import load_case
from tests.test_ipaas_n8n_run import node_code, run_chain, workflow

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
    assert opt_out.group(1) == ('{{if(lower(trim(toString(1.email_marketing_consent.state))) = '
                                '"subscribed"; false; true)}}')
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
