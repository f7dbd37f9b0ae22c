"""The n8n nodes that link a support ticket and check its first-response target.

A ticket comes from the support inbox, not from the store, so no earlier node of its
workflow wrote the contact or the deal it belongs to. Before the upsert these nodes
find the contact by the requester's email or phone and the deal by the order id the
ticket names. On Zoho the batch node puts the found ids into the Case's lookup fields
(``{"id": ...}``); on HubSpot the association batches link the ticket to them.

The first-response check runs on two paths: on each ticket event, and on a schedule
that reads the open tickets (Zoho Cases, HubSpot tickets), because an unanswered
ticket may get no further events. A ticket is alerted on once: its marker stays in
its own data table, which no purge empties, until an event sets the ticket to its closed stage.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from generator.ipaas import n8n_code
from generator.ipaas.crm_calls import (
    HUBSPOT_BASE_URL,
    HUBSPOT_SEARCH_PAGE_SIZE,
    ZOHO_BASE_URL,
    ZOHO_PAGE_SIZE,
    CrmCall,
)
from generator.ipaas.flows import Step
from generator.ipaas.n8n_graph import Graph
from generator.ipaas.n8n_http import http_node
from generator.ipaas.n8n_tables import delete_parameters, table_ref, upsert_parameters

Heads = list[tuple[str, int]]
# The transforms of the ticket fields that find its contact, strongest key first.
CONTACT_KEY_TRANSFORMS = ("email_lower", "phone_e164_sa")
# The data table that remembers which tickets were alerted on, so the scheduled
# check does not alert again every run. The daily purge of event keys leaves it
# alone, so a ticket still open after the dedupe window is not alerted on again.
ALERTED_TABLE = "sla_alerts"
# The stage key, in the ticket stage table, of a closed ticket.
CLOSED_STAGE = "resolved"


def search_keys(mapping: Mapping[str, Any], entity: str, target: str) -> list[list[str]]:
    """Return ``[Zoho field, record field]`` pairs that find the ``target`` of an ``entity``.

    A contact is found by the requester's email or phone, an order by its unique field
    (the store's order id) against the record's ``<target>_id`` field.
    """
    entities = mapping["entities"]
    own = entities[entity].get("fields", [])
    if target == "contact":
        pairs = []
        for transform in CONTACT_KEY_TRANSFORMS:
            crm = next((item for item in entities["contact"].get("fields", [])
                        if item.get("transform") == transform), None)
            field = next((item for item in own if item.get("transform") == transform
                          and item["name"].startswith("customer_")), None)
            if crm is not None and field is not None:
                pairs.append([str(crm["target"]), str(field["target"])])
        return pairs
    unique = next((item for item in entities.get(target, {}).get("fields", [])
                   if item.get("unique")), None)
    field = next((item for item in own if item["name"] == f"{target}_id"), None)
    if unique is None or field is None:
        return []
    return [[str(unique["target"]), str(field["target"])]]


def searched_links(graph: Graph, entity: str) -> list[dict[str, Any]]:
    """Return the links of a ticket whose record no earlier node of the flow wrote.

    Zoho links through lookup fields and HubSpot through associations; both need the
    linked record's CRM id.
    """
    if graph.project.crm not in ("zoho", "hubspot") or entity != "ticket":
        return []
    mapping = graph.project.spec["mapping"]
    links = []
    for link in mapping["entities"].get(entity, {}).get("associations", []):
        target = str(link["to"])
        if link["kind"] not in ("lookup", "association") \
                or graph.entity_nodes.get(target, {}).get("http"):
            continue
        keys = search_keys(mapping, entity, target)
        if keys:
            links.append({"to": target, "field": str(link["ref"]), "keys": keys,
                          "module": str(mapping["entities"][target]["object"])})
    return links


def link_search_nodes(graph: Graph, step: Step, entity: str, heads: Heads) -> Heads:
    """Add the searches for the records ``entity`` links to, then merge the found ids.

    Each search is a request Code node and an HTTP Request node. The merge node goes
    on with the mapped items, each with ``link_ids`` (the found Zoho id per linked
    entity) and ``vip`` (whether the found contact is VIP), which the batch node and
    the first-response check read.
    """
    links = searched_links(graph, entity)
    source = graph.entity_nodes.get(entity, {}).get("map")
    if not links or source is None:
        return heads
    searches = []
    for link in links:
        title = f"Find the {entity.replace('_', ' ')}'s {link['to'].replace('_', ' ')}"
        request = graph.add(f"{title}: request", "code", {
            "mode": "runOnceForAllItems", "language": "javaScript",
            "jsCode": search_request_code(f"{title}: request", source, link,
                                          graph.project.crm, _properties(graph, link))})
        heads = graph.chain(heads, request)
        call = _search_call(graph.project.crm, str(link["module"]))
        response = http_node(graph, title, call, body=call.method != "GET",
                             query=call.method == "GET", never_error=True)
        heads = graph.chain(heads, response)
        searches.append({"to": link["to"], "request": request, "response": response,
                         "keys": link["keys"]})
    vip = sla_params(graph).get("vip")
    merge = graph.add(f"{step.title.en}: link the found records", "code", {
        "mode": "runOnceForAllItems", "language": "javaScript",
        "jsCode": merge_code(f"{step.title.en}: link the found records", source, searches, vip)})
    # The later nodes (the HubSpot association batches, the first-response check)
    # read the ticket with its found ids from here.
    graph.entity_nodes.setdefault(entity, {})["map"] = merge
    return graph.chain(heads, merge)


def _search_call(crm: str, module: str) -> CrmCall:
    """Return the search request of one linked object; the Code node before it fills it."""
    if crm == "hubspot":
        return CrmCall(system="hubspot", action=f"search {module}", method="POST",
                       base_url=HUBSPOT_BASE_URL, endpoint=f"/crm/v3/objects/{module}/search")
    return CrmCall(system="zoho", action=f"search {module}", method="GET",
                   base_url=ZOHO_BASE_URL, endpoint=f"/{module}/search",
                   note="Zoho answers 204 with no body when nothing matches.")


def sla_params(graph: Graph) -> dict[str, Any]:
    """Return the parameters of the flow's first-response check, or {} without one."""
    step = next((item for item in graph.flow.walk() if item.key == "sla_check"), None)
    return dict(step.params) if step is not None else {}


def _properties(graph: Graph, link: Mapping[str, Any]) -> list[str]:
    """Return the HubSpot properties the merge node reads from a found record."""
    names = [crm_field for crm_field, _ in link["keys"]]
    vip = sla_params(graph).get("vip")
    if link["to"] == "contact" and vip:
        names.append(str(vip["field"]))
    return names


def search_request_code(title: str, source: str, link: Mapping[str, Any], crm: str = "zoho",
                        properties: list[str] | None = None) -> str:
    """Return the code that writes one search request per mapped record with a key.

    Zoho takes criteria in the query; HubSpot takes filter groups in the body, one
    group per key, because groups are joined by OR.
    """
    return n8n_code.header(title) + n8n_code.helpers_library() + n8n_code.OUTPUT_OF + f"""
const SOURCE = {n8n_code.js(source)};
const KEYS = {n8n_code.js(link["keys"])};
const CRM = {n8n_code.js(crm)};
const PROPERTIES = {n8n_code.js(properties or [])};
// Zoho's criteria syntax escapes brackets, commas and backslashes in a value.
const escape = (value) => String(value).replace(/[(),\\\\]/g, (mark) => `\\\\${{mark}}`);
const output = [];
outputOf(SOURCE).forEach((item, index) => {{
  const record = item.json.record || {{}};
  const parts = KEYS.filter(([, field]) => !isEmpty(record[field]))
    .map(([crmField, field]) => `(${{crmField}}:equals:${{escape(record[field])}})`);
  if (!parts.length) return;
  const criteria = parts.length === 1 ? parts[0] : `(${{parts.join('or')}})`;
  const groups = KEYS.filter(([, field]) => !isEmpty(record[field]))
    .map(([crmField, field]) => ({{ filters: [{{ propertyName: crmField, operator: 'EQ',
      value: String(record[field]) }}] }}));
  const request = CRM === 'hubspot'
    ? {{ body: {{ filterGroups: groups, properties: PROPERTIES, limit: 10 }} }}
    : {{ query: {{ criteria }} }};
  output.push({{ json: {{ ...request, _item: index,
    _keys: KEYS.map(([crmField, field]) => [crmField, record[field] ?? null]) }},
    pairedItem: {{ item: index }} }});
}});
// NOTE: with no record to search for, one request without criteria still runs,
// because a node without items would stop the workflow here. Zoho rejects it, the
// request node passes the error on, and the merge node skips it.
return output.length ? output
  : [{{ json: {{ query: {{}}, body: {{ filterGroups: [] }}, _skip: true }} }}];
"""


def merge_code(title: str, source: str, searches: list[dict[str, Any]],
               vip: Mapping[str, Any] | None) -> str:
    """Return the code that adds the found ids (``link_ids``) and ``vip`` to each mapped item."""
    return n8n_code.header(title) + n8n_code.helpers_library() + n8n_code.OUTPUT_OF + f"""
const SOURCE = {n8n_code.js(source)};
const SEARCHES = {n8n_code.js(searches)};
const VIP = {n8n_code.js(dict(vip) if vip else None)};
const same = (left, right) => !isEmpty(left) && !isEmpty(right) &&
  String(left).trim().toLowerCase() === String(right).trim().toLowerCase();

// The record that matches the strongest key (the email before the phone), else the first.
function best(records, keys) {{
  for (const [crmField, value] of keys) {{
    const hit = records.find((record) => same(record[crmField], value));
    if (hit) return hit;
  }}
  return records[0] || null;
}}

const mapped = outputOf(SOURCE);
const found = mapped.map(() => ({{}}));
for (const search of SEARCHES) {{
  const requests = outputOf(search.request);
  outputOf(search.response).forEach((response, index) => {{
    const paired = response.pairedItem && Number.isInteger(response.pairedItem.item)
      ? response.pairedItem.item : index;
    const request = (requests[paired] || {{ json: {{}} }}).json;
    if (request._skip || !Number.isInteger(request._item)) return;
    // Zoho lists the records in data; HubSpot in results, with their properties apart.
    const records = Array.isArray(response.json.data) ? response.json.data
      : (Array.isArray(response.json.results) ? response.json.results : [])
        .map((result) => ({{ ...(result.properties || {{}}), id: result.id }}));
    const record = best(records, request._keys || []);
    if (record && record.id) found[request._item][search.to] = record;
  }});
}}
return mapped.map((item, index) => {{
  const contact = found[index].contact;
  const value = contact && VIP ? Number(contact[VIP.field]) : NaN;
  const linkIds = Object.fromEntries(Object.entries(found[index])
    .map(([entity, record]) => [entity, String(record.id)]));
  return {{ json: {{ ...item.json, link_ids: linkIds,
    vip: Number.isFinite(value) && value >= VIP.threshold_sar }},
    pairedItem: {{ item: index }} }};
}});
"""


def open_tickets_nodes(graph: Graph, step: Step) -> Heads:
    """Add the scheduled check: read the open tickets without a first reply, then route them.

    Zoho reads the Cases in the open status and HubSpot the tickets in the open
    pipeline stage. Returns the heads whose items are ``{record}`` tickets, as the
    route node reads them.
    """
    params = sla_params(graph)
    fields = params.get("fields", {})
    crm = graph.project.crm
    mapping = graph.project.spec["mapping"]
    module = str(mapping["entities"]["ticket"]["object"])
    stages = n8n_code.project_constants(crm, graph.project.platform, mapping)["ticket_stages"]
    graph.new_row(0)
    graph.row += 1
    every = int(params.get("every_minutes") or 15)
    schedule = graph.add(f"Every {every} minutes: check the open tickets", "scheduleTrigger", {
        "rule": {"interval": [{"field": "minutes", "minutesInterval": every}]}})
    title = f"Find the open {module} without a first reply"
    request = graph.add(f"{title}: request", "code", {
        "mode": "runOnceForAllItems", "language": "javaScript",
        "jsCode": open_tickets_request_code(f"{title}: request", fields, stages, crm)})
    call = _search_call(crm, module)
    response = http_node(graph, title, call, body=call.method != "GET",
                         query=call.method == "GET", never_error=True)
    results = graph.add(f"{title}: results", "code", {
        "mode": "runOnceForAllItems", "language": "javaScript",
        "jsCode": open_tickets_results_code(f"{title}: results", fields)})
    return graph.chain([(schedule, 0)], request, response, results)


def open_tickets_request_code(title: str, fields: Mapping[str, Any],
                              stages: Mapping[str, Any], crm: str = "zoho") -> str:
    """Return the code that writes the search for the tickets in the open stage.

    HubSpot's search also drops the tickets whose first reply is recorded. Zoho's
    criteria cannot ask for an empty field of every type, so the results node drops
    them after the search.
    """
    status = str((stages.get("crm_values") or {}).get("open") or "New")
    stage = str(fields.get("status", {}).get("target", "hs_pipeline_stage"))
    reply = str(fields.get("first_reply_at", {}).get("target", ""))
    properties = sorted({str(field.get("target", "")) for field in fields.values()} - {""})
    filters: list[dict[str, Any]] = [{"propertyName": stage, "operator": "EQ", "value": status}]
    if reply:
        filters.append({"propertyName": reply, "operator": "NOT_HAS_PROPERTY"})
    hubspot = {"body": {"filterGroups": [{"filters": filters}], "properties": properties,
                        "limit": HUBSPOT_SEARCH_PAGE_SIZE}}
    zoho = {"query": {"criteria": f"(Status:equals:{status})", "per_page": str(ZOHO_PAGE_SIZE)}}
    # NOTE: each run reads one page of open tickets (200 on either CRM), so with more
    # unanswered open tickets than that, the rest are never checked.
    return n8n_code.header(title) + f"""
const REQUEST = {n8n_code.js(hubspot if crm == "hubspot" else zoho)};
return [{{ json: REQUEST }}];
"""


def open_tickets_results_code(title: str, fields: Mapping[str, Any]) -> str:
    """Return the code that passes on each found ticket without a first reply as ``{record}``."""
    reply = str(fields.get("first_reply_at", {}).get("target", ""))
    return n8n_code.header(title) + n8n_code.helpers_library() + f"""
const REPLY_FIELD = {n8n_code.js(reply)};
const output = [];
for (const item of $input.all()) {{
  // Zoho lists the records in data; HubSpot in results, with their properties apart.
  const records = Array.isArray(item.json.data) ? item.json.data
    : (Array.isArray(item.json.results) ? item.json.results : [])
      .map((result) => ({{ ...(result.properties || {{}}), id: result.id }}));
  for (const record of records) {{
    if (REPLY_FIELD && !isEmpty(record[REPLY_FIELD])) continue;
    output.push({{ json: {{ record, payload: {{}}, key: record.id }} }});
  }}
}}
return output;
"""


def closed_ticket_nodes(graph: Graph, heads: Heads) -> None:
    """Add a side branch that deletes the alert marker of each ticket the event closes.

    The marker keeps a ticket from being alerted on twice while it is open. Once the
    ticket is closed the marker is deleted, so the table holds only open tickets.
    """
    params = sla_params(graph)
    fields = params.get("fields", {})
    key = str(fields.get("store_ticket_id", {}).get("target", "id"))
    mapping = graph.project.spec["mapping"]
    stages = n8n_code.project_constants(graph.project.crm, graph.project.platform,
                                        mapping)["ticket_stages"]
    closed = (stages.get("crm_values") or {}).get(CLOSED_STAGE)
    status = fields.get("status", {}).get("target")
    if closed is None or status is None:
        return
    row, column = graph.row, graph.column
    graph.new_row(column)
    title = "Forget the alert of a closed ticket"
    code = graph.add(f"{title}: key", "code", {
        "mode": "runOnceForAllItems", "language": "javaScript",
        "jsCode": closed_key_code(f"{title}: key", key, str(status), str(closed))})
    delete = graph.add(title, "dataTable",
                       delete_parameters(ALERTED_TABLE, "={{ $json.key }}"))
    graph.chain(heads, code, delete)
    graph.row, graph.column = row, column


def closed_key_code(title: str, key: str, status: str, closed: str) -> str:
    """Return the code that writes the marker key of each closed ticket, and nothing else."""
    return n8n_code.header(title) + f"""
const KEY = {n8n_code.js(key)};
const STATUS = {n8n_code.js(status)};
const CLOSED = {n8n_code.js(closed)};
const output = [];
$input.all().forEach((item, index) => {{
  const record = item.json.record || {{}};
  if (String(record[STATUS] ?? '') !== CLOSED) return;
  output.push({{ json: {{ key: `sla:${{record[KEY] || record.id}}` }},
    pairedItem: {{ item: index }} }});
}});
return output;
"""


def alerted_check_nodes(graph: Graph, heads: Heads, *, absent: bool,
                        message: str | None = None) -> Heads:
    """Pass on the tickets not alerted on yet (``absent``), or record that they were.

    The record step reads the tickets from ``message``, the node that wrote the alert,
    because the email node's output replaces them.
    """
    fields = sla_params(graph).get("fields", {})
    key = str(fields.get("store_ticket_id", {}).get("target", "id"))
    expression = f"={{{{ 'sla:' + ($json.record.{key} || $json.record.id) }}}}"
    if absent:
        name = graph.add("Skip a ticket already alerted on", "dataTable", {
            "resource": "row", "operation": "rowNotExists",
            "dataTableId": table_ref(ALERTED_TABLE), "matchType": "allConditions",
            "filters": {"conditions": [{"keyName": "key", "condition": "eq",
                                        "keyValue": expression}]}})
        return graph.chain(heads, name)
    row = graph.add("Remember the alerted ticket: row", "code", {
        "mode": "runOnceForAllItems", "language": "javaScript",
        "jsCode": alerted_row_code("Remember the alerted ticket: row", key, str(message))})
    name = graph.add("Remember the alerted ticket", "dataTable", upsert_parameters(ALERTED_TABLE))
    return graph.chain(heads, row, name)


def alerted_row_code(title: str, key: str, message: str) -> str:
    """Return the code that writes the alerted ticket's row of the dedupe table."""
    return n8n_code.header(title) + n8n_code.OUTPUT_OF + f"""
const KEY = {n8n_code.js(key)};
const SOURCE = {n8n_code.js(message)};
const tickets = outputOf(SOURCE);
return $input.all().map((item, index) => {{
  const record = ((tickets[index] || {{ json: {{}} }}).json.record) || {{}};
  return {{ json: {{ key: `sla:${{record[KEY] || record.id}}`, value: 'alerted' }},
    pairedItem: {{ item: index }} }};
}});
"""


def sla_alert_code(title: str, client_name: str, fields: Mapping[str, Any]) -> str:
    """Return the code that writes the team lead's alert about a ticket without a reply."""
    names = {name: str(field.get("target", "")) for name, field in fields.items()}
    return n8n_code.header(title) + f"""
const CLIENT = {n8n_code.js(client_name)};
const FIELDS = {n8n_code.js(names)};
return $input.all().map((item, index) => {{
  const record = item.json.record || {{}};
  const check = item.json._sla || {{}};
  const ticket = record[FIELDS.store_ticket_id] || record.id || 'unknown';
  const lines = [
    `Ticket: ${{ticket}}`,
    `Subject: ${{record[FIELDS.subject] || ''}}`,
    `Channel: ${{check.channel || 'unknown'}}${{check.vip ? ' (VIP)' : ''}}`,
    `Opened: ${{check.opened_at || 'unknown'}}`,
    `Business minutes without a first reply: ${{check.open_minutes}} of a ` +
      `${{check.target_minutes}}-minute target`,
    '',
    'Reply to the customer, or assign the ticket to an agent who can.',
  ];
  return {{ json: {{ ...item.json,
    subject: `[${{CLIENT}}] Ticket ${{ticket}} has no first reply yet`,
    text: lines.join('\\n') }}, pairedItem: {{ item: index }} }};
}});
"""
