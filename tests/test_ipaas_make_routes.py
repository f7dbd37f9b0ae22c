"""Make blueprints: consent routes, the contact upsert key, linked ids and paging."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from typing import Any

import pytest

from generator.ipaas import make
from generator.ipaas.flows import build_flows
from tests.ipaas_cases import load_case

WOO = ("woo-startup", {"monthly_orders": 400})


@cache
def blueprints(preset: str, values_json: str = "{}") -> dict[str, dict[str, Any]]:
    answers, plan, spec = load_case(preset, json.loads(values_json))
    return make.blueprints(build_flows(answers, plan, spec))


def modules(flow: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for module in flow:
        yield module
        for route in module.get("routes", []):
            yield from modules(route["flow"])


def named(blueprint: dict[str, Any], name: str) -> dict[str, Any]:
    return next(module for module in modules(blueprint["flow"])
                if module["metadata"]["designer"]["name"] == name)


def body(module: dict[str, Any]) -> str:
    text: str = module["mapper"]["jsonStringBodyContent"]
    return text


def test_consent_gate_on_own_route() -> None:
    runner = blueprints("shopify-growth")["abandoned-checkout-runner"]
    first, second = named(runner, "One route per due day")["routes"]
    gated = named({"flow": first["flow"]}, "Send step 1 by email")
    assert gated["filter"]["name"] == "Email consent granted"
    read, send = second["flow"][5:7]
    assert read["metadata"]["designer"]["name"] == \
        "Read the current whatsapp subscription status"
    assert read["filter"]["name"].endswith("WhatsApp address known")
    assert send["metadata"]["designer"]["name"] == "Send step 2 by whatsapp"
    assert send["filter"]["name"] == "WhatsApp consent granted"
    assert "Email consent" not in json.dumps(second["flow"])


def test_consent_gate_no_inline_stop() -> None:
    runner = blueprints("shopify-growth")["abandoned-checkout-runner"]
    for route in named(runner, "One route per due day")["routes"]:
        top = [module["module"] for module in route["flow"][:4]]
        assert top == ["datastore:GetRecord", "http:MakeRequest", "datastore:AddRecord",
                       "builtin:BasicFeeder"]
        for module in route["flow"][:4]:
            assert "filter" not in module


def test_zoho_consent_reads_record_field() -> None:
    runner = blueprints("jeddah-fashion-zoho")["abandoned-checkout-runner"]
    gate = next(module["filter"] for module in modules(runner["flow"])
                if module.get("filter", {}).get("name", "").endswith("Email consent granted"))
    condition = gate["conditions"][0][-1]
    assert condition["a"].endswith(".Email_Opt_Out}}")
    assert ".properties." not in condition["a"]


def test_phone_only_upserts_by_phone() -> None:
    upsert = named(blueprints("shopify-growth")["order-sync"], "Create or update the contact")
    text = body(upsert)
    id_property = re.search(r'"idProperty": "\{\{(.*?)\}\}"', text)
    assert id_property is not None
    formula = id_property.group(1)
    assert formula.startswith("if(1.customer.id = emptystring; if(")
    assert formula.endswith('= emptystring; "ecom_phone_e164"; "email"); "ecom_customer_id")')
    assert '"idProperty": "ecom_customer_id"' not in text


def test_contact_id_follows_key_choice() -> None:
    text = body(named(blueprints("shopify-growth")["order-sync"], "Create or update the contact"))
    key = re.search(r'"id": "\{\{(.*?)\}\}", "idProperty"', text)
    assert key is not None
    assert "if(1.customer.id = emptystring;" in key.group(1)
    assert "+966$1" in key.group(1)


def test_hubspot_associations_map_ids() -> None:
    order_sync = blueprints("shopify-growth")["order-sync"]
    contact = named(order_sync, "Create or update the contact")
    deal = named(order_sync, "Create or update the deal")
    link = json.loads(re.sub(r"\{\{(.*?)\}\}", lambda m: m.group(1).replace('"', "'"),
                             body(named(order_sync, "Link the order to its contact"))))
    assert link["inputs"][0]["from"]["id"] == f"first(map({deal['id']}.data.results; 'id'))"
    assert link["inputs"][0]["to"]["id"] == f"first(map({contact['id']}.data.results; 'id'))"
    for stem, blueprint in blueprints("shopify-growth").items():
        for module in modules(blueprint["flow"]):
            text = json.dumps(module.get("mapper") or {})
            assert "<order id>" not in text, stem
            assert "<contact id>" not in text, stem
            assert "<line_item id>" not in text, stem


def test_zoho_deal_names_contact_lookup() -> None:
    order_sync = blueprints("jeddah-fashion-zoho")["order-sync"]
    contact = named(order_sync, "Create or update the contact")
    text = body(named(order_sync, "Create or update the deal"))
    assert f'"Contact_Name": {{"id": "{{{{get(first({contact["id"]}.data.data); ' \
           '"details.id")}}"}' in text


def test_shopify_reconciliation_pages_with_cursor() -> None:
    flow = blueprints("shopify-growth")["reconciliation"]["flow"]
    assert flow[0]["module"] == "datastore:GetRecord"
    router = flow[1]
    first, following = router["routes"]
    assert first["flow"][0]["filter"]["conditions"][0][0]["o"] == "text:equal"
    assert '"variables": {"after": null}' in body(first["flow"][0])
    assert '"after": "{{' in body(following["flow"][0])
    save = following["flow"][1]
    page = following["flow"][0]["id"]
    assert save["mapper"]["data"]["after"] == (
        f"{{{{if({page}.data.data.orders.pageInfo.hasNextPage; "
        f"{page}.data.data.orders.pageInfo.endCursor; emptystring)}}}}")
    assert save["mapper"]["data"]["since"] == (
        f"{{{{if({page}.data.data.orders.pageInfo.hasNextPage; 1.since; 1.walk_started)}}}}")


def test_shopify_reconciliation_replays_bodies() -> None:
    route = blueprints("shopify-growth")["reconciliation"]["flow"][1]["routes"][0]["flow"]
    feeder, fetch, post = route[2], route[3], route[4]
    assert feeder["mapper"]["array"] == f"{{{{{route[0]['id']}.data.data.orders.edges}}}}"
    assert fetch["mapper"]["url"].endswith(f"/orders/{{{{{feeder['id']}.node.legacyResourceId}}}}"
                                           ".json")
    assert fetch["mapper"]["parseResponse"] is False
    assert body(post).startswith(f"{{{{replace({fetch['id']}.data; ")
    assert "<order>" not in json.dumps(route)
    assert "<cursor>" not in json.dumps(route)


def test_woocommerce_reconciliation_pages() -> None:
    flow = blueprints(WOO[0], json.dumps(WOO[1]))["reconciliation"]["flow"]
    page = flow[1]
    query = {item["name"]: item["value"] for item in page["mapper"]["queryParameters"]}
    assert query["page"] == "{{ifempty(1.page; 1)}}"
    assert query["orderby"] == "modified"
    assert query["order"] == "asc"
    assert "<cursor>" not in json.dumps(query)
    save = flow[2]["mapper"]["data"]
    more = f'ifempty(1.page; 1) < parseNumber(ifempty(get({page["id"]}.headers; ' \
           '"x-wp-totalpages"); 1); ".")'
    assert save["page"] == f"{{{{if({more}; ifempty(1.page; 1) + 1; 1)}}}}"
    fetch, post = flow[4], flow[5]
    assert fetch["mapper"]["url"].endswith(f"/orders/{{{{{flow[3]['id']}.id}}}}")
    assert body(post) == f"{{{{{fetch['id']}.data}}}}"


TICKET_ZOHO = ("support-heavy", "{}")
TICKET_HUBSPOT = ("support-heavy", json.dumps({"crm": "hubspot", "path": "ipaas"}))


def ticket_blueprint(case: tuple[str, str]) -> dict[str, Any]:
    return blueprints(*case)["ticket-sync"]


def test_make_ticket_hubspot_searches() -> None:
    blueprint = ticket_blueprint(TICKET_HUBSPOT)
    contact = named(blueprint, "Find the ticket's contact")
    assert contact["mapper"]["url"].endswith("/crm/v3/objects/contacts/search")
    groups = json.loads(re.sub(r"\{\{.*?\}\}(?!\})", "X", body(contact)))["filterGroups"]
    assert [group["filters"][0]["propertyName"] for group in groups] == ["email", "phone"]
    assert "1.customer.email" in body(contact)
    order = named(blueprint, "Find the ticket's order")
    assert order["mapper"]["url"].endswith("/crm/v3/objects/deals/search")
    assert "ifempty(1.ticket.order_id; \\\"-\\\")" in json.dumps(body(order))


def test_make_ticket_zoho_searches() -> None:
    blueprint = ticket_blueprint(TICKET_ZOHO)
    contact = named(blueprint, "Find the ticket's contact")
    assert contact["mapper"]["url"].endswith("/Contacts/search")
    (criteria,) = contact["mapper"]["queryParameters"]
    assert criteria["value"].startswith("((Email:equals:{{ifempty(lower(trim(1.customer.email)); ")
    assert "or(Mobile:equals:" in criteria["value"]
    order = named(blueprint, "Find the ticket's order")
    (criteria,) = order["mapper"]["queryParameters"]
    assert criteria["value"] == '(Shopify_Order_ID:equals:{{ifempty(1.ticket.order_id; "-")}})'


@pytest.mark.parametrize("case", [TICKET_HUBSPOT, TICKET_ZOHO], ids=["hubspot", "zoho"])
@pytest.mark.parametrize("target", ["contact", "order"])
def test_make_ticket_links_found_record(case: tuple[str, str], target: str) -> None:
    blueprint = ticket_blueprint(case)
    search = named(blueprint, f"Find the ticket's {target}")
    link = named(blueprint, f"Link the ticket to its {target}")
    found = f"first(map({search['id']}.data."
    # The link runs only on a route whose filter needs the found id.
    assert link["filter"]["name"] == f"{target} found"
    (condition,) = link["filter"]["conditions"][0]
    assert condition["a"].startswith("{{" + found)
    assert condition["o"] == "text:notequal"
    assert found in body(link)


def test_make_ticket_zoho_link_updates_case() -> None:
    blueprint = ticket_blueprint(TICKET_ZOHO)
    upsert = named(blueprint, "Create or update the ticket")
    link = named(blueprint, "Link the ticket to its contact")
    assert link["mapper"]["method"] == "put"
    assert f"/Cases/{{{{get(first({upsert['id']}.data.data); \"details.id\")}}}}" \
        in link["mapper"]["url"]
    assert json.loads(re.sub(r"\{\{.*?\}\}", "X", body(link))) == {
        "data": [{"Related_To": {"id": "X"}}]}
    # The upsert itself sends no lookup, so a ticket without a match is still written.
    assert "Related_To" not in body(upsert)


def test_make_ticket_remembers_event_each_route() -> None:
    # Each route stores the event key, so a ticket with no record found is also
    # remembered as processed.
    router = named(ticket_blueprint(TICKET_ZOHO), "Link the ticket to the records found")
    assert len(router["routes"]) == 3
    assert "filter" not in router["routes"][-1]["flow"][0]
    for route in router["routes"]:
        last = route["flow"][-1]
        assert last["module"] == "datastore:AddRecord"
        assert last["mapper"]["key"] == "{{1.ticket.id}}-{{1.ticket.updated_at}}"
