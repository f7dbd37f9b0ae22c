"""Decision rules: every rule fires for its case, paths resolve, reasons are complete."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import jsonschema
import pytest

from generator.answers import AnswerSources, resolve_answers
from generator.decide import decide, load_rules, matches
from generator.model import Answers, Plan
from generator.resources import load_data, load_schema
from tests.rule_cases import BASE, RULE_CASES, RuleCase

TODAY = dt.date(2027, 1, 10)


def answers_for(values: dict[str, Any]) -> Answers:
    sources = AnswerSources()
    sources.add("test", values)
    return resolve_answers(sources, today=TODAY)


def plan_for(values: dict[str, Any]) -> Plan:
    return decide(answers_for(values))


@pytest.mark.parametrize("rule_case", RULE_CASES, ids=lambda item: item.rule)
def test_rule_fires_for_its_case(rule_case: RuleCase) -> None:
    plan = plan_for(rule_case.answers)
    fired = [hit.id for hit in plan.rules]
    assert rule_case.rule in fired
    assert plan.path == rule_case.path
    assert plan.crm == rule_case.crm


def test_every_rule_has_a_case() -> None:
    rules, _ = load_rules()
    assert {rule.id for rule in rules} == {item.rule for item in RULE_CASES}


def test_rules_file_matches_schema() -> None:
    jsonschema.validate(load_data("rules"), load_schema("rules"))


@pytest.mark.parametrize(
    ("platform", "orders", "stores", "growth"),
    list(itertools.product(["shopify", "woocommerce", "headless", "custom"],
                           [0, 299, 300, 19999, 20000], [1, 2], ["steady", "fast"])),
)
def test_every_situation_gets_a_path(platform: str, orders: int, stores: int,
                                     growth: str) -> None:
    plan = plan_for({**BASE, "platform": platform, "monthly_orders": orders,
                     "store_count": stores, "growth": growth})
    assert plan.path in {"connector", "ipaas", "api"}
    assert len(plan.alternatives) == 2
    assert {alt.path for alt in plan.alternatives} == {"connector", "ipaas", "api"} - {plan.path}


def test_required_path_beats_preference() -> None:
    plan = plan_for({**BASE, "store_count": 3, "erp_bi": ["odoo"], "deep_erp_link": True})
    assert plan.path == "api"
    ipaas = next(alt for alt in plan.alternatives if alt.path == "ipaas")
    assert ipaas.decided_by == "deep-erp-api"
    assert ipaas.reason.en.startswith("A rule pointed to this path, but a stronger rule")
    assert [hit.id for hit in plan.outranked_rules] == ["shopify-scale-ipaas"]


def test_override_keeps_recommendation() -> None:
    plan = plan_for({**BASE, "path": "api"})
    assert plan.path == "api"
    assert plan.recommended_path == "connector"
    assert plan.overridden
    recommended = next(alt for alt in plan.alternatives if alt.path == "connector")
    assert "path=api" in recommended.reason.en
    assert plan.estimate.days_min == 10


def test_woo_small_syncs_contacts_daily() -> None:
    plan = plan_for({**BASE, "platform": "woocommerce", "monthly_orders": 150})
    assert plan.contact_sync == "daily"
    assert "events" not in plan.modules


def test_shopify_connector_syncs_in_real_time() -> None:
    assert plan_for(BASE).contact_sync == "realtime"


def test_large_catalogue_limits_first_sync() -> None:
    assert plan_for({**BASE, "sku_count": 101}).product_sync_limit == 100
    assert plan_for({**BASE, "sku_count": 100}).product_sync_limit is None


def test_large_team_without_whatsapp_gets_support() -> None:
    plan = plan_for({**BASE, "support_channels": ["email"], "support_agents": 10})
    assert "support" in plan.modules
    assert "support" not in plan_for({**BASE, "support_agents": 9}).modules


def test_estimate_follows_path() -> None:
    estimate = plan_for({**BASE, "store_count": 2}).estimate
    assert (estimate.days_min, estimate.days_max) == (4, 7)
    assert (estimate.setup_sar_min, estimate.setup_sar_max) == (2500, 6000)


def test_plan_json_matches_schema() -> None:
    for rule_case in RULE_CASES:
        jsonschema.validate(plan_for(rule_case.answers).to_data(), load_schema("plan"))


def test_reasons_exist_in_both_languages() -> None:
    plan = plan_for({**BASE, "crm": "zoho", "consent_channels": ["whatsapp"]})
    for hit in plan.rules:
        assert hit.reason.en
        assert any("\u0600" <= char <= "\u06ff" for char in hit.reason.ar)


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ({"monthly_orders": {"lt": 300}}, True),
        ({"monthly_orders": {"gte": "$limit"}}, False),
        ({"any": [{"platform": "woocommerce"}, {"growth": "steady"}]}, True),
        ({"not": {"platform": "shopify"}}, False),
        ({"erp_bi": {"empty": True}}, True),
        ({"tags": {"contains_any": ["b"]}}, True),
        ({}, True),
    ],
)
def test_condition_operators(condition: dict[str, Any], expected: bool) -> None:
    facts = {"monthly_orders": 150, "platform": "shopify", "growth": "steady", "erp_bi": [],
             "tags": ["a", "b"]}
    assert matches(condition, facts, {"limit": 200}) is expected


def test_unknown_operator_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown operator 'between'"):
        matches({"monthly_orders": {"between": [1, 2]}}, {"monthly_orders": 1}, {})


def test_outranked_rule_is_marked() -> None:
    plan = plan_for({**BASE, "erp_bi": ["odoo"], "deep_erp_link": True})
    assert plan.path == "api"
    by_id = {hit.id: hit for hit in plan.rules}
    assert by_id["shopify-single-steady-connector"].outranked_by == "deep-erp-api"
    assert by_id["deep-erp-api"].outranked_by is None
    assert "shopify-single-steady-connector" not in [hit.id for hit in plan.applied_rules]
    assert [hit.id for hit in plan.outranked_rules] == ["shopify-single-steady-connector"]
    rules = {rule["id"]: rule for rule in plan.to_data()["rules"]}
    assert rules["shopify-single-steady-connector"]["outranked_by"] == "deep-erp-api"


def test_agreeing_path_rule_stays_applied() -> None:
    plan = plan_for({**BASE, "crm": "custom", "erp_bi": ["odoo"], "deep_erp_link": True})
    applied = [hit.id for hit in plan.applied_rules]
    assert "deep-erp-api" in applied
    assert "custom-crm-api" in applied
    assert "shopify-single-steady-connector" in [hit.id for hit in plan.outranked_rules]
