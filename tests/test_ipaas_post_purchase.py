"""The post-purchase series starts from the order's fulfilment, per store, on every platform."""

from __future__ import annotations

import json
from typing import Any

import pytest

from generator.ipaas import make
from generator.ipaas.buildsheets import sheet_context
from generator.ipaas.flows import build_flows
from tests.ipaas_cases import load_case
from tests.test_ipaas_n8n_run import node_code, run_chain, workflow

FILTER = "Continue only with a fulfilled order"
WOO = ("woo-startup", {"monthly_orders": 400})


def post_purchase(preset: str, values: dict[str, Any] | None = None) -> Any:
    answers, plan, spec = load_case(preset, values or {})
    return build_flows(answers, plan, spec).get("post-purchase")


@pytest.mark.parametrize(("preset", "values", "topics"), [
    ("shopify-growth", {}, ("orders/fulfilled", "orders/partially_fulfilled")),
    (*WOO, ("order.updated",)),
])
def test_post_purchase_trigger_is_fulfilment(preset: str, values: dict[str, Any],
                                             topics: tuple[str, ...]) -> None:
    flow = post_purchase(preset, values)
    assert flow.trigger.kind == "webhook"
    assert flow.trigger.topics == topics


def test_post_purchase_filter_from_stage_table() -> None:
    shopify = next(step for step in post_purchase("shopify-growth").walk()
                   if step.key == "filter_fulfilled")
    assert shopify.params["fulfilled_when"] == [
        {"fulfillment_status": ["partial", "fulfilled"]}]
    woo = next(step for step in post_purchase(*WOO).walk() if step.key == "filter_fulfilled")
    assert woo.params["fulfilled_when"] == [{"status": ["completed"]}]


def test_post_purchase_waits_delay_then_offset() -> None:
    waits = [step for step in post_purchase("shopify-growth").walk()
             if step.kind == "wait" and step.params.get("mode") == "delay"]
    assert [(step.params["amount"], step.params["unit"]) for step in waits] == [
        (7, "days"), (2, "days")]
    assert waits[0].params["counts_from"] == "fulfilment"
    assert "last_order_at" not in json.dumps([dict(step.params) for step in waits])


def test_post_purchase_once_per_order() -> None:
    steps = {step.key: step for step in post_purchase(*WOO).walk()}
    assert steps["filter_first_series"].params == {"store": "playbook_orders", "key": "id",
                                                   "absent": True}
    assert steps["store_started"].params["store"] == "playbook_orders"


@pytest.mark.parametrize(("preset", "values", "body", "passes"), [
    ("shopify-growth", {}, {"id": 1, "fulfillment_status": "fulfilled"}, True),
    ("shopify-growth", {}, {"id": 2, "fulfillment_status": "partial"}, True),
    ("shopify-growth", {}, {"id": 3, "fulfillment_status": None}, False),
    (*WOO, {"id": 4, "status": "completed"}, True),
    (*WOO, {"id": 5, "status": "processing"}, False),
])
def test_n8n_fulfilled_filter_runs(preset: str, values: dict[str, Any], body: dict[str, Any],
                                   passes: bool) -> None:
    del values
    data = workflow(preset, "post-purchase")
    out = run_chain([(FILTER, node_code(data, FILTER), None)], [body])
    assert (len(out) == 1) is passes


def test_n8n_post_purchase_waits_days() -> None:
    data = workflow("shopify-growth", "post-purchase")
    waits = [node["parameters"] for node in data["nodes"]
             if node["type"] == "n8n-nodes-base.wait" and
             node["parameters"].get("resume") == "timeInterval"]
    assert [(wait["amount"], wait["unit"]) for wait in waits] == [(7, "days")]
    names = [node["name"] for node in data["nodes"]]
    assert not any(name.startswith("Find the customers") for name in names)
    assert data["nodes"][0]["parameters"]["topic"] == "orders/fulfilled"


def test_make_post_purchase_filters_fulfilled() -> None:
    answers, plan, spec = load_case("shopify-growth", {})
    blueprint = make.blueprints(build_flows(answers, plan, spec))["post-purchase"]
    filters = [module["filter"] for module in blueprint["flow"] if "filter" in module]
    # The filter may share its module with the dedupe check: each OR group then contains
    # the dedupe condition and one fulfilled status.
    fulfilled = next(item for item in filters if FILTER in item["name"])
    status = "{{lower(trim(toString(1.fulfillment_status)))}}"
    values = sorted(condition["b"] for group in fulfilled["conditions"] for condition in group
                    if condition["a"] == status)
    assert values == ["fulfilled", "partial"]
    assert blueprint["flow"][0]["module"] == "gateway:CustomWebHook"


def test_make_post_purchase_runner_per_due_day() -> None:
    answers, plan, spec = load_case("shopify-growth", {})
    runner = make.blueprints(build_flows(answers, plan, spec))["post-purchase-runner"]
    router = runner["flow"][0]
    assert router["module"] == "builtin:BasicRouter"
    assert len(router["routes"]) == 2


def all_modules(flow: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for module in flow:
        found.append(module)
        for route in module.get("routes", []):
            found.extend(all_modules(route["flow"]))
    return found


@pytest.mark.parametrize(("preset", "values", "fulfilled"), [
    ("shopify-growth", {}, "1.updated_at"),
    (*WOO, "ifempty(1.date_completed_gmt; 1.date_modified_gmt)"),
])
def test_make_series_records_fulfilment(preset: str, values: dict[str, Any],
                                        fulfilled: str) -> None:
    answers, plan, spec = load_case(preset, values)
    blueprint = make.blueprints(build_flows(answers, plan, spec))["post-purchase"]
    found = all_modules(blueprint["flow"])
    records = [module for module in found if module["module"] == "datastore:AddRecord"
               and "playbook_orders" in module["metadata"]["designer"]["name"]]
    assert records
    for record in records:
        data = record["mapper"]["data"]
        assert data["fulfilledOn"] == (
            "{{formatDate(" + fulfilled + '; "YYYY-MM-DD"; "Asia/Riyadh")}}')
        assert data["contactId"].startswith("{{")
        assert data["contactId"] != "{{emptystring}}"
        assert record["mapper"]["key"] == "{{1.id}}"


def test_make_runner_counts_from_fulfilment() -> None:
    answers, plan, spec = load_case("shopify-growth", {})
    runner = make.blueprints(build_flows(answers, plan, spec))["post-purchase-runner"]
    first, second = runner["flow"][0]["routes"]
    for route, days in ((first, 7), (second, 9)):
        search = route["flow"][0]
        assert search["module"] == "datastore:SearchRecord"
        condition = search["mapper"]["filter"][0][0]
        assert condition["a"] == "fulfilledOn"
        assert condition["b"] == ("{{formatDate(addMinutes(now; -" + str(days * 1440) +
                                  '); "YYYY-MM-DD"; "Asia/Riyadh")}}')
        read = route["flow"][1]
        text = read["mapper"]["jsonStringBodyContent"]
        assert '"propertyName": "hs_object_id"' in text
        assert "{{" + f"{search['id']}.data.contactId" + "}}" in text
    assert '"propertyName": "ecom_last_order_at"' not in json.dumps(
        [module["mapper"] for module in all_modules(runner["flow"])
         if module["module"] == "http:MakeRequest"]).replace('\\"', '"')


def test_sheet_post_purchase_delay() -> None:
    answers, plan, spec = load_case("shopify-growth", {})
    flows = {row["key"]: row for row in sheet_context(build_flows(answers, plan, spec))}
    steps = flows["post-purchase"]["steps"]
    delay = next(step for step in steps if step["key"] == "wait_delay")
    assert delay["zapier"][0]["settings_en"] == "Action Delay For: 7 days."
    assert delay["zapier"][0]["settings_ar"] == "الإجراء Delay For: 7 أيام."
    assert flows["post-purchase"]["trigger"]["topics"] == ["orders/fulfilled",
                                                           "orders/partially_fulfilled"]
