"""The n8n ticket workflow: links found by search, the order reference, the SLA alert.

The Code nodes run with ``node`` (see ``tests/test_ipaas_n8n_run.py``). The Zoho and
HubSpot searches are stubbed with responses in the shape each search API returns.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from generator.ipaas import n8n
from generator.spec import build_desired_state
from tests.ipaas_cases import load_case
from tests.test_ipaas_n8n_run import linked, node_code, run_chain, workflow

PRESET = "support-heavy"
MAP = "Map the ticket"
CONTACT_REQUEST = "Find the ticket's contact: request"
CONTACT_SEARCH = "Find the ticket's contact"
ORDER_REQUEST = "Find the ticket's order: request"
ORDER_SEARCH = "Find the ticket's order"
MERGE = "Create or update the ticket: link the found records"
BATCH = "Create or update the ticket: batch"
ROUTE = "Check the first-response target: route"
SCHEDULED_RESULTS = "Find the open Cases without a first reply: results"
SCHEDULED_ROUTE = "Check the first-response target: route (2)"
# Sunday 4 January 2026, 10:00 in Riyadh: inside the default business hours.
NOW = "2026-01-04T07:00:00Z"
FAKE_CLOCK = f"""const Date = (() => {{
  const Real = globalThis.Date;
  const now = Real.parse({json.dumps(NOW)});
  return class extends Real {{
    constructor(...args) {{ if (args.length) super(...args); else super(now); }}
    static now() {{ return now; }}
  }};
}})();
"""


@pytest.fixture(scope="module")
def data() -> dict[str, Any]:
    return workflow(PRESET, "ticket-sync")


def ticket(channel: str = "whatsapp", opened: str = "2026-01-04T09:30:00+03:00",
           first_reply: str | None = None, order_id: str = "5001") -> dict[str, Any]:
    return {"ticket": {"id": "T-88", "subject": "Where is my order?", "body": "Hello",
                       "channel": channel, "status": "open", "priority": "High",
                       "created_at": opened, "first_reply_at": first_reply,
                       "order_id": order_id},
            "customer": {"email": "Sara@Example.sa", "phone": "0501234567"}}


def found(records: list[dict[str, Any]]) -> str:
    return "() => (" + json.dumps({"data": records, "info": {"count": len(records)}}) + ")"


def search_chain(data: dict[str, Any], contacts: list[dict[str, Any]],
                 orders: list[dict[str, Any]], until: str) -> list[tuple[str, Any, Any]]:
    steps = [
        (MAP, node_code(data, MAP), None),
        (CONTACT_REQUEST, node_code(data, CONTACT_REQUEST), None),
        (CONTACT_SEARCH, None, found(contacts)),
        (ORDER_REQUEST, node_code(data, ORDER_REQUEST), None),
        (ORDER_SEARCH, None, found(orders)),
        (MERGE, node_code(data, MERGE), None),
        (BATCH, node_code(data, BATCH), None),
    ]
    names = [name for name, _, _ in steps]
    return steps[:names.index(until) + 1]


def test_order_reference_reads_ticket_order_id(data: dict[str, Any]) -> None:
    mapped = run_chain([(MAP, node_code(data, MAP), None)], [ticket()])
    assert mapped[0]["refs"]["order"] == "5001"
    assert mapped[0]["ref_keys"]["order"] == [["Shopify_Order_ID", "5001"]]


def test_contact_search_by_email_and_phone(data: dict[str, Any]) -> None:
    requests = run_chain(search_chain(data, [], [], CONTACT_REQUEST), [ticket()])
    assert [item["query"]["criteria"] for item in requests] == [
        "((Email:equals:sara@example.sa)or(Mobile:equals:+966501234567))"]


def test_order_search_by_order_id(data: dict[str, Any]) -> None:
    requests = run_chain(search_chain(data, [], [], ORDER_REQUEST), [ticket()])
    assert [item["query"]["criteria"] for item in requests] == [
        "(Shopify_Order_ID:equals:5001)"]


def test_search_skipped_without_keys(data: dict[str, Any]) -> None:
    payload = ticket(order_id="")
    requests = run_chain(search_chain(data, [], [], ORDER_REQUEST), [payload])
    assert requests == [{"query": {}, "body": {"filterGroups": []}, "_skip": True}]


def test_links_set_from_search_results(data: dict[str, Any]) -> None:
    contacts = [{"id": "c-2", "Email": "other@example.sa"},
                {"id": "c-1", "Email": "sara@example.sa", "Ecom_LTV_SAR": 9100.5}]
    orders = [{"id": "d-7", "Shopify_Order_ID": "5001"}]
    sent = run_chain(search_chain(data, contacts, orders, BATCH), [ticket()])
    record = sent[0]["body"]["data"][0]
    assert record["Related_To"] == {"id": "c-1"}
    assert record["Deal_Name"] == {"id": "d-7"}
    assert record["Ecom_Order_ID"] == "5001"


def test_links_left_empty_when_nothing_found(data: dict[str, Any]) -> None:
    sent = run_chain(search_chain(data, [], [], BATCH), [ticket()])
    record = sent[0]["body"]["data"][0]
    assert "Related_To" not in record
    assert "Deal_Name" not in record


def test_vip_from_found_contact(data: dict[str, Any]) -> None:
    rich = [{"id": "c-1", "Email": "sara@example.sa", "Ecom_LTV_SAR": 9100}]
    poor = [{"id": "c-1", "Email": "sara@example.sa", "Ecom_LTV_SAR": 120}]
    assert run_chain(search_chain(data, rich, [], MERGE), [ticket()])[0]["vip"] is True
    assert run_chain(search_chain(data, poor, [], MERGE), [ticket()])[0]["vip"] is False


def routed(data: dict[str, Any], payload: dict[str, Any], vip: bool = False) -> dict[str, Any]:
    steps = [
        (MAP, node_code(data, MAP), None),
        ("link the found records", None,
         f"(json) => ({{ ...json, link_ids: {{}}, vip: {json.dumps(vip)} }})"),
        (ROUTE, FAKE_CLOCK + node_code(data, ROUTE), None),
    ]
    result: dict[str, Any] = run_chain(steps, [payload])[0]
    return result


def test_alert_for_overdue_whatsapp_ticket(data: dict[str, Any]) -> None:
    result = routed(data, ticket())
    assert result["_route"] == "late"
    assert result["_sla"]["target_minutes"] == 15
    assert result["_sla"]["open_minutes"] == 30


def test_no_alert_for_answered_ticket(data: dict[str, Any]) -> None:
    answered = ticket(first_reply="2026-01-04T09:35:00+03:00")
    assert routed(data, answered)["_route"] is None


def test_no_alert_before_email_target(data: dict[str, Any]) -> None:
    result = routed(data, ticket(channel="email", opened="2026-01-04T09:00:00+03:00"))
    assert result["_route"] is None
    assert result["_sla"]["target_minutes"] == 240


def test_vip_target_halved(data: dict[str, Any]) -> None:
    phone = ticket(channel="phone", opened="2026-01-04T09:15:00+03:00")
    assert routed(data, phone)["_route"] is None
    result = routed(data, phone, vip=True)
    assert result["_route"] == "late"
    assert result["_sla"]["target_minutes"] == 30


def test_scheduled_check_alerts_unanswered_only(data: dict[str, Any]) -> None:
    cases = {"data": [
        {"id": "z-1", "Ecom_Ticket_ID": "T-1", "Case_Origin": "WhatsApp",
         "Ecom_Opened_At": "2026-01-04T09:30:00+03:00", "Ecom_First_Reply_At": None},
        {"id": "z-2", "Ecom_Ticket_ID": "T-2", "Case_Origin": "WhatsApp",
         "Ecom_Opened_At": "2026-01-04T09:30:00+03:00",
         "Ecom_First_Reply_At": "2026-01-04T09:40:00+03:00"},
        {"id": "z-3", "Ecom_Ticket_ID": "T-3", "Case_Origin": "Email",
         "Ecom_Opened_At": "2026-01-04T09:30:00+03:00", "Ecom_First_Reply_At": None},
    ]}
    steps = [
        (SCHEDULED_RESULTS, node_code(data, SCHEDULED_RESULTS), None),
        (SCHEDULED_ROUTE, FAKE_CLOCK + node_code(data, SCHEDULED_ROUTE), None),
    ]
    result = run_chain(steps, [cases])
    assert {item["record"]["Ecom_Ticket_ID"]: item["_route"] for item in result} == {
        "T-1": "late", "T-3": None}


RESTORE = "Check the first-response target: continue"


def test_route_reads_mapped_ticket(data: dict[str, Any]) -> None:
    restore = next(node for node in data["nodes"] if node["name"] == RESTORE)
    assert json.dumps(MERGE) in restore["parameters"]["jsCode"]
    assert linked(data, "Create or update the ticket: request", RESTORE)
    assert linked(data, RESTORE, ROUTE)
    assert not linked(data, "Create or update the ticket: request", ROUTE)


def test_scheduled_check_every_15_minutes(data: dict[str, Any]) -> None:
    schedule = next(node for node in data["nodes"]
                    if node["type"] == "n8n-nodes-base.scheduleTrigger")
    assert schedule["parameters"]["rule"]["interval"] == [
        {"field": "minutes", "minutesInterval": 15}]
    assert linked(data, schedule["name"], "Find the open Cases without a first reply: request")
    assert linked(data, SCHEDULED_RESULTS, SCHEDULED_ROUTE)


@pytest.fixture(scope="module")
def hubspot() -> dict[str, Any]:
    answers, plan, spec = load_case(PRESET, {"path": "ipaas", "crm": "hubspot"})
    files = n8n.files(answers, plan, spec, build_desired_state(spec, plan))
    data: dict[str, Any] = json.loads(files["workflows/n8n/ticket-sync.json"])
    return data


def hubspot_found(records: list[dict[str, Any]]) -> str:
    results = [{"id": record.pop("id"), "properties": record} for record in records]
    return "() => (" + json.dumps({"results": results}) + ")"


@pytest.mark.parametrize(("link", "expected"), [
    ("Link the ticket to its contact: batch", "c-1"),
    ("Link the ticket to its order: batch", "d-7"),
])
def test_hubspot_links_from_search(hubspot: dict[str, Any], link: str, expected: str) -> None:
    steps = [
        (MAP, node_code(hubspot, MAP), None),
        (CONTACT_REQUEST, node_code(hubspot, CONTACT_REQUEST), None),
        (CONTACT_SEARCH, None, hubspot_found([{"id": "c-1", "email": "sara@example.sa"}])),
        (ORDER_REQUEST, node_code(hubspot, ORDER_REQUEST), None),
        (ORDER_SEARCH, None, hubspot_found([{"id": "d-7", "shopify_order_id": "5001"}])),
        (MERGE, node_code(hubspot, MERGE), None),
        (BATCH, None, "(json) => json"),
        ("Create or update the ticket: request", None,
         hubspot_found([{"id": "t-1", "ecom_ticket_id": "T-88"}])),
        (link, node_code(hubspot, link), None),
    ]
    sent = run_chain(steps, [ticket()])
    inputs = [entry for batch in sent for entry in batch["body"]["inputs"]]
    assert [(entry["from"]["id"], entry["to"]["id"]) for entry in inputs] == [("t-1", expected)]


def test_hubspot_contact_search_body(hubspot: dict[str, Any]) -> None:
    steps = [(MAP, node_code(hubspot, MAP), None),
             (CONTACT_REQUEST, node_code(hubspot, CONTACT_REQUEST), None)]
    body = run_chain(steps, [ticket()])[0]["body"]
    assert [group["filters"][0]["value"] for group in body["filterGroups"]] == [
        "sara@example.sa", "+966501234567"]
    assert body["properties"][-1] == "ecom_ltv_sar"


HUBSPOT_OPEN = "Find the open tickets without a first reply"


def test_hubspot_scheduled_check_every_15_minutes(hubspot: dict[str, Any]) -> None:
    schedule = next(node for node in hubspot["nodes"]
                    if node["type"] == "n8n-nodes-base.scheduleTrigger")
    assert schedule["parameters"]["rule"]["interval"] == [
        {"field": "minutes", "minutesInterval": 15}]
    assert linked(hubspot, schedule["name"], f"{HUBSPOT_OPEN}: request")
    assert linked(hubspot, f"{HUBSPOT_OPEN}: results", SCHEDULED_ROUTE)
    search = next(node for node in hubspot["nodes"] if node["name"] == HUBSPOT_OPEN)
    assert search["parameters"]["url"].endswith("/crm/v3/objects/tickets/search")


def test_hubspot_scheduled_search_body(hubspot: dict[str, Any]) -> None:
    (request,) = run_chain([(f"{HUBSPOT_OPEN}: request",
                             node_code(hubspot, f"{HUBSPOT_OPEN}: request"), None)], [{}])
    (group,) = request["body"]["filterGroups"]
    assert {"propertyName": "hs_pipeline_stage", "operator": "EQ", "value": "1"} \
        in group["filters"]
    assert {"propertyName": "ecom_first_reply_at", "operator": "NOT_HAS_PROPERTY"} \
        in group["filters"]
    assert "createdate" in request["body"]["properties"]


def test_hubspot_scheduled_check_alerts_unanswered(hubspot: dict[str, Any]) -> None:
    tickets = {"results": [
        {"id": "h-1", "properties": {"ecom_ticket_id": "T-1", "source_type": "CHAT",
                                     "createdate": "2026-01-04T06:30:00Z"}},
        {"id": "h-2", "properties": {"ecom_ticket_id": "T-2", "source_type": "CHAT",
                                     "createdate": "2026-01-04T06:30:00Z",
                                     "ecom_first_reply_at": "2026-01-04T06:40:00Z"}},
    ]}
    steps = [
        (f"{HUBSPOT_OPEN}: results", node_code(hubspot, f"{HUBSPOT_OPEN}: results"), None),
        (SCHEDULED_ROUTE, FAKE_CLOCK + node_code(hubspot, SCHEDULED_ROUTE), None),
    ]
    result = run_chain(steps, [tickets])
    # The answered ticket is dropped; the other is 30 business minutes old.
    assert [item["record"]["ecom_ticket_id"] for item in result] == ["T-1"]
    assert result[0]["_sla"]["open_minutes"] == 30


@pytest.mark.parametrize("name", ["Remember the alerted ticket", "Skip a ticket already alerted on",
                                  "Remember the alerted ticket (2)",
                                  "Forget the alert of a closed ticket"])
def test_alert_marker_outside_purged_table(data: dict[str, Any], name: str) -> None:
    node = next(item for item in data["nodes"] if item["name"] == name)
    assert node["parameters"]["dataTableId"]["value"] == "rabt_sla_alerts"


def test_purge_leaves_alert_markers() -> None:
    purged = {node["parameters"]["dataTableId"]["value"]
              for node in workflow(PRESET, "reconciliation")["nodes"]
              if node["type"] == "n8n-nodes-base.dataTable"
              and node["parameters"].get("operation") == "deleteRows"}
    assert purged == {"rabt_processed_events"}


CLOSE_KEY = "Forget the alert of a closed ticket: key"


@pytest.mark.parametrize(("status", "expected"), [
    ("closed", ["sla:T-88"]), ("solved", ["sla:T-88"]), ("open", []), ("pending", [])])
def test_closed_ticket_forgets_marker(data: dict[str, Any], status: str,
                                      expected: list[str]) -> None:
    payload = ticket()
    payload["ticket"]["status"] = status
    steps = [(MAP, node_code(data, MAP), None), (CLOSE_KEY, node_code(data, CLOSE_KEY), None)]
    assert [item["key"] for item in run_chain(steps, [payload])] == expected
    assert linked(data, CLOSE_KEY, "Forget the alert of a closed ticket")
    assert linked(data, RESTORE, CLOSE_KEY)
