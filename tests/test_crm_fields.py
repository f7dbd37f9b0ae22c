"""Tests for the CRM field-name register (generator/data/spec/crm-fields.yaml).

Every name the field map writes to HubSpot or Zoho is either a standard field listed
in the register, with its documentation source, or a custom field that the CRM
desired state creates.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
from collections.abc import Iterator
from typing import Any

import pytest

from generator.answers import AnswerSources, builtin_preset_names, load_preset, resolve_answers
from generator.decide import decide
from generator.model import Answers, Plan
from generator.resources import load_data
from generator.spec import build_desired_state, build_spec
from generator.spec._desired_fields import is_standard
from tests.test_spec import BASE_MODULES, make_answers, make_plan

TODAY = dt.date(2026, 1, 4)
REGISTER_CRMS = ("hubspot", "zoho")
PLATFORMS = ("shopify", "woocommerce", "headless", "custom")
MARKS = ("V", "S", "U")
URL = re.compile(r"^https://(developers\.hubspot\.com|www\.zoho\.com)/\S+$")
ALL_MODULES = (*BASE_MODULES, "events", "support", "erp_bi")


def preset_projects() -> Iterator[tuple[str, Answers, Plan]]:
    """Yield every built-in preset whose plan uses HubSpot or Zoho."""
    for name in builtin_preset_names():
        sources = AnswerSources()
        sources.add(name, load_preset(name).answers)
        answers = resolve_answers(sources, today=TODAY)
        plan = decide(answers)
        if plan.crm in REGISTER_CRMS:
            yield name, answers, plan


def combination_projects() -> Iterator[tuple[str, Answers, Plan]]:
    """Yield each CRM and platform with every module on and every consent channel."""
    for crm, platform, path in itertools.product(REGISTER_CRMS, PLATFORMS, ("connector", "api")):
        plan = make_plan(crm=crm, platform=platform, modules=ALL_MODULES, path=path,
                         recommended_path=path)
        answers = make_answers(crm=crm, platform=platform,
                               consent_channels=("email", "sms", "whatsapp"),
                               support_channels=("whatsapp", "phone", "email"))
        yield f"{crm}-{platform}-{path}", answers, plan


ALL_PROJECTS = [*preset_projects(), *combination_projects()]


def written_names(spec: dict[str, dict[str, Any]]) -> Iterator[tuple[str, str]]:
    """Yield ``(object, name)`` for every CRM name the spec writes or looks up."""
    for entity in spec["mapping"]["entities"].values():
        if not entity["enabled"]:
            continue
        obj = entity["object"]
        for field in entity["fields"]:
            yield obj, field["target"]
        for rollup in entity.get("rollups", ()):
            yield obj, rollup["target"]
        for link in entity["associations"]:
            if link["kind"] in ("lookup", "property"):
                yield obj, str(link["ref"])
    order = spec["mapping"]["entities"]["order"]["object"]
    yield order, spec["mapping"]["order_stages"]["pipeline"]["field"]
    contact = spec["mapping"]["entities"]["contact"]["object"]
    for channel in spec["consent"]["channels"]:
        for name in channel["target"]["fields"]:
            yield contact, name


def created_names(state: dict[str, Any]) -> set[tuple[str, str]]:
    """Return ``(object, name)`` for every custom field the desired state creates."""
    names: set[tuple[str, str]] = set()
    if state["crm"] == "hubspot":
        names |= {(prop["object"], prop["name"]) for prop in state["properties"]}
        for definition in state.get("event_definitions", ()):
            names |= {("custom_behavioral_events", f"properties.{prop['name']}")
                      for prop in definition["propertyDefinitions"]}
    else:
        names |= {(module["module"], field["api_name"])
                  for module in state["modules"] for field in module["fields"]}
    return names


@pytest.mark.parametrize(("name", "answers", "plan"), ALL_PROJECTS,
                         ids=[project[0] for project in ALL_PROJECTS])
def test_every_target_is_known(name: str, answers: Answers, plan: Plan) -> None:
    spec = build_spec(answers, plan)
    created = created_names(build_desired_state(spec, plan))
    unknown = [
        (obj, target) for obj, target in written_names(spec)
        if not is_standard(plan.crm, obj, target) and (obj, target) not in created
    ]
    assert unknown == [], name


@pytest.mark.parametrize(("name", "answers", "plan"), ALL_PROJECTS,
                         ids=[project[0] for project in ALL_PROJECTS])
def test_no_standard_field_is_created(name: str, answers: Answers, plan: Plan) -> None:
    spec = build_spec(answers, plan)
    for obj, field in created_names(build_desired_state(spec, plan)):
        assert not is_standard(plan.crm, obj, field), (name, obj, field)


# Custom names that do not carry the ecom prefix: the unique order keys, the fields of
# the Ecom_Events module and the deal lookup added to Cases.
UNPREFIXED_CUSTOM = {
    "hubspot": {"shopify_order_id", "external_order_id"},
    "zoho": {"Shopify_Order_ID", "External_Order_ID", "Event_Type", "Occurred_At", "Contact",
             "Cart_Token", "Value_SAR", "SKU", "Deal_Name"},
}


@pytest.mark.parametrize(("name", "answers", "plan"), ALL_PROJECTS,
                         ids=[project[0] for project in ALL_PROJECTS])
def test_custom_names_are_not_typos(name: str, answers: Answers, plan: Plan) -> None:
    # A misspelt standard name would otherwise be created as a custom field.
    prefix = {"hubspot": "ecom_", "zoho": "Ecom_"}[plan.crm]
    spec = build_spec(answers, plan)
    for obj, field in created_names(build_desired_state(spec, plan)):
        if obj == "custom_behavioral_events":
            continue
        known = field.startswith(prefix) or field in UNPREFIXED_CUSTOM[plan.crm]
        assert known, (name, obj, field)


def test_presets_cover_both_register_crms() -> None:
    crms = {plan.crm for _, _, plan in preset_projects()}
    assert crms == set(REGISTER_CRMS)


def test_every_entry_has_a_source_and_mark() -> None:
    register = load_data("spec/crm-fields")
    sources = register["sources"]
    for crm in REGISTER_CRMS:
        for obj, entries in register[crm].items():
            assert entries, (crm, obj)
            for entry in entries:
                where = (crm, obj, entry.get("name"))
                assert entry["source"] in sources, where
                assert entry["mark"] in MARKS, where
                if entry["mark"] != "V":
                    assert entry.get("note"), where
    for key, source in sources.items():
        assert URL.match(source["url"]), key
        assert source["title"], key


def test_entries_are_unique_per_object() -> None:
    register = load_data("spec/crm-fields")
    for crm in REGISTER_CRMS:
        for obj, entries in register[crm].items():
            names = [entry["name"] for entry in entries]
            assert len(names) == len(set(names)), (crm, obj)


def test_brief_field_names_are_listed() -> None:
    hubspot = {
        "contacts": {"email", "firstname", "lastname", "phone", "mobilephone", "city",
                     "lifecyclestage"},
        "deals": {"dealname", "amount", "deal_currency_code", "pipeline", "dealstage",
                  "closedate"},
        "line_items": {"name", "quantity", "price", "hs_sku", "hs_product_id"},
        "products": {"name", "price", "hs_sku", "description"},
        "tickets": {"subject", "content", "hs_pipeline", "hs_pipeline_stage",
                    "hs_ticket_priority", "source_type"},
    }
    zoho = {
        "Contacts": {"Last_Name", "First_Name", "Email", "Phone", "Mobile", "Mailing_City",
                     "Lead_Source"},
        "Deals": {"Deal_Name", "Stage", "Amount", "Closing_Date", "Pipeline", "Contact_Name"},
        "Products": {"Product_Name", "Product_Code", "Unit_Price", "Product_Category"},
        "Cases": {"Subject", "Status", "Case_Origin", "Priority"},
    }
    for crm, expected in (("hubspot", hubspot), ("zoho", zoho)):
        for obj, names in expected.items():
            for name in sorted(names):
                assert is_standard(crm, obj, name), (crm, obj, name)


def test_is_standard_rejects_unknown_names() -> None:
    assert not is_standard("hubspot", "contacts", "ecom_ltv_sar")
    assert not is_standard("hubspot", "deals", "email")
    assert not is_standard("zoho", "Contacts", "Ecom_LTV_SAR")
    assert not is_standard("custom", "contacts", "email")
    assert not is_standard("hubspot", "no_such_object", "email")


def test_subform_fields_count_their_module() -> None:
    assert is_standard("zoho", "Sales_Orders.Product_Details", "Product_Details[].quantity")
    assert is_standard("zoho", "Sales_Orders.Product_Details", "Deal_Name")
