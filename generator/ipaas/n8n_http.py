"""HTTP Request nodes for CRM, store, WhatsApp and SMS calls, with the Code nodes around them.

A call of the flow model (``CrmCall``) becomes a Code node that builds the request
bodies (batches of up to the call's limit) and an HTTP Request node that sends one
request per body. Account-specific values (the shop domain, the Zoho API domain,
the WhatsApp phone number id) come from n8n environment variables named ``RABT_*``,
listed in the workflows README; a placeholder in a call's URL with no variable is an
error at generation time.
"""

from __future__ import annotations

import re
from typing import Any

from generator.ipaas import n8n_code
from generator.ipaas.crm_calls import SHOPIFY_BASE_URL, WOOCOMMERCE_BASE_URL, CrmCall
from generator.ipaas.flows import Step
from generator.ipaas.n8n_graph import STORE_SYSTEMS, Graph
from generator.ipaas.n8n_stores import (
    SHOP_VARIABLES,
    shop_of_run,
    store_of_run,
    store_of_run_code,
    store_variable,
)

Heads = list[tuple[str, int]]
# Environment variables for the placeholders of call URLs, with defaults.
# NOTE: the default Shopify Admin API and Graph API versions are assumptions;
# set the versions the client's apps were tested with.
URL_VARIABLES: dict[str, tuple[str, str | None]] = {
    "api_domain": ("RABT_ZOHO_API_DOMAIN", "https://www.zohoapis.sa"),
    "shop_domain": ("RABT_SHOPIFY_SHOP", None),
    "api_version": ("RABT_SHOPIFY_API_VERSION", "2025-10"),
    "store_domain": ("RABT_WOOCOMMERCE_DOMAIN", None),
    "graph_api_version": ("RABT_WHATSAPP_GRAPH_VERSION", "v21.0"),
    "phone_number_id": ("RABT_WHATSAPP_PHONE_NUMBER_ID", None),
    "sms_provider_url": ("RABT_SMS_URL", None),
    "storefront_api_url": ("RABT_STOREFRONT_API_URL", None),
    "alert_webhook_url": ("RABT_ALERT_WEBHOOK_URL", None),
}
# Placeholders filled per record by the Code node before the request.
PER_RECORD = frozenset({"subscriber_id", "record_id"})
# Milliseconds between two requests of one HTTP Request node, so a burst of
# batches stays under HubSpot's 100 requests per 10 s (Free and Starter) and
# Zoho's concurrency limit of 5 (Free).
REQUEST_INTERVAL_MS = 150
REQUEST_TIMEOUT_MS = 30000
RETRY_TRIES = 3
RETRY_WAIT_MS = 5000
CREDENTIAL_SYSTEMS = {"hubspot": "hubspot", "zoho": "zoho", "shopify": "shopify",
                      "woocommerce": "woocommerce", "whatsapp": "whatsapp", "sms": "sms",
                      "storefront": "storefront_api", "alert": "alert"}


# Pages one search or poll reads at most in one run. HubSpot's search returns at most
# 10,000 results (50 pages of 200). The store polls read the oldest changes first, so
# the cursor stays behind what is left and the next run goes on from there.
# NOTE: 50 store pages (5,000 orders an hour) is an estimate of what one run should
# carry; raise it for a store with more changes per run.
MAX_PAGES = 50
# NOTE: Zoho's search API is taken to stop at 2,000 records (10 pages of 200).
ZOHO_SEARCH_MAX_PAGES = 10


class UnsupportedCallError(ValueError):
    """A call of the flow model has no n8n form (for example a SQL statement)."""


def env(name: str, default: str | None = None) -> str:
    """Return an n8n expression reading environment variable ``name``."""
    if default is None:
        return f"={{{{ $env.{name} }}}}"
    return f"={{{{ $env.{name} || {n8n_code.js(default)} }}}}"


def url_expression(call: CrmCall, store: int | None = None) -> str:
    """Return the call's URL as an n8n expression.

    Account placeholders become environment variables, those of shop ``store`` when
    given (``RABT_SHOPIFY_SHOP_2`` for store 2). The URL ends at the first
    per-record placeholder (such as ``{subscriber_id}``); the Code node before the
    request writes the rest of the path into ``$json.path``.
    """
    url = call.base_url + call.endpoint
    per_record = [match for match in re.finditer(r"\{(\w+)\}", url)
                  if match.group(1) in PER_RECORD]
    if per_record:
        url = url[:per_record[0].start()]
    text = re.sub(r"\{(\w+)\}", lambda match: _variable(match.group(1), store), url)
    suffix = "{{ $json.path || '' }}" if per_record else ""
    return "=" + text + suffix


def _variable(placeholder: str, store: int | None = None) -> str:
    if placeholder not in URL_VARIABLES:
        raise UnsupportedCallError(f"URL placeholder {{{placeholder}}} has no environment "
                                   "variable: add it to URL_VARIABLES")
    name, default = URL_VARIABLES[placeholder]
    if store is not None and name in SHOP_VARIABLES.values():
        name = store_variable(name, store)
    fallback = f" || {n8n_code.js(default)}" if default else ""
    return f"{{{{ $env.{name}{fallback} }}}}"


def _paging(call: CrmCall) -> tuple[str, str, str, str, int] | None:
    """Return how a search or poll reads its next page, or None for a one-page call.

    The tuple holds the request part (``body`` or ``qs``), the parameter name, its
    value expression, the expression that is true on the last page, and the page cap.
    On the first request ``$response`` is empty, so each value reads it with ``?.``.
    """
    resource = call.action.rsplit(" ", 1)[-1]
    if call.system == "hubspot" and call.action.startswith("search "):
        return ("body", "after", "={{ $response.body?.paging?.next?.after }}",
                "={{ !$response.body?.paging?.next?.after }}", MAX_PAGES)
    if call.system == "zoho" and call.action.startswith("search "):
        return ("qs", "page", "={{ $pageCount + 1 }}",
                "={{ !$response.body?.info?.more_records }}", ZOHO_SEARCH_MAX_PAGES)
    if not call.action.startswith("read changed "):
        return None
    if call.system == "shopify":
        info = f"$response.body?.data?.{resource}?.pageInfo"
        return ("body", "variables",
                f"={{{{ Object.fromEntries([['after', {info}?.endCursor ?? null]]) }}}}",
                f"={{{{ !{info}?.hasNextPage }}}}", MAX_PAGES)
    if call.system == "woocommerce":
        return ("qs", "page", "={{ $pageCount + 1 }}",
                "={{ $pageCount >= Number($response.headers?.['x-wp-totalpages'] || 1) }}",
                MAX_PAGES)
    return None


def pagination_option(call: CrmCall) -> dict[str, Any] | None:
    """Return the HTTP Request node's pagination option for ``call``, or None.

    n8n 2.8.4 sends the next request while the complete expression is false and
    outputs one item per page, so the node after it sees every page at once.
    """
    paging = _paging(call)
    if paging is None:
        return None
    part, name, value, complete, pages = paging
    return {"pagination": {
        "paginationMode": "updateAParameterInEachRequest",
        "parameters": {"parameters": [{"type": part, "name": name, "value": value}]},
        "paginationCompleteWhen": "other", "completeExpression": complete,
        "limitPagesFetched": True, "maxRequests": pages,
        "requestInterval": REQUEST_INTERVAL_MS}}


def http_node(graph: Graph, title: str, call: CrmCall, *, body: bool, query: bool = False,
              never_error: bool = False, paged: bool = False) -> str:
    """Add an HTTP Request node for ``call`` with its credential, retries and pacing.

    A store call in a workflow that serves several shops becomes a node group (see
    ``_store_request_nodes``). The name returned is then the group's last node, and
    a link into it goes to the group's first node.
    """
    system = CREDENTIAL_SYSTEMS.get(call.system)
    if system is None or call.method in ("SQL", "FIELD"):
        raise UnsupportedCallError(f"{call.system} {call.method} call {call.action!r} has no "
                                   "HTTP Request form: add its system to CREDENTIAL_SYSTEMS")
    options = {"body": body, "query": query, "never_error": never_error, "paged": paged}
    if graph.project.multi_store and system in STORE_SYSTEMS:
        return _store_request_nodes(graph, title, call, system, options)
    return _request_node(graph, title, call, system, None, options)


def _request_node(graph: Graph, title: str, call: CrmCall, system: str, store: int | None,
                  flags: dict[str, bool]) -> str:
    kind = next(iter(graph.project.credential(system)))
    parameters: dict[str, Any] = {"method": call.method, "url": url_expression(call, store)}
    if kind in ("oAuth2Api", "httpHeaderAuth"):
        parameters.update(authentication="genericCredentialType", genericAuthType=kind)
    else:
        parameters.update(authentication="predefinedCredentialType", nodeCredentialType=kind)
    if flags["query"]:
        parameters.update(sendQuery=True, specifyQuery="json",
                          jsonQuery="={{ JSON.stringify($json.query || {}) }}")
    if flags["body"]:
        parameters.update(sendBody=True, contentType="json", specifyBody="json",
                          jsonBody="={{ JSON.stringify($json.body) }}")
    options: dict[str, Any] = {
        "timeout": REQUEST_TIMEOUT_MS,
        "batching": {"batch": {"batchSize": 1, "batchInterval": REQUEST_INTERVAL_MS}}}
    if flags["never_error"]:
        options["response"] = {"response": {"neverError": True, "responseFormat": "json"}}
    pagination = pagination_option(call) if flags["paged"] else None
    if pagination:
        options["pagination"] = pagination
    parameters["options"] = options
    return graph.add(title, "httpRequest", parameters,
                     credentials=graph.project.credential(system, store), retryOnFail=True,
                     maxTries=RETRY_TRIES, waitBetweenTries=RETRY_WAIT_MS,
                     notes=call.note)


def _store_request_nodes(graph: Graph, title: str, call: CrmCall, system: str,
                         flags: dict[str, bool]) -> str:
    """Add one HTTP Request node per shop for a store call; return the group's last node.

    In a run of one shop a Switch node sends the items to that shop's request. In a
    run not tied to a shop (a discount code for a CRM contact, whose store the CRM does
    not record) the items go to every shop's request in turn, so the same code is
    created in each store. Either way the chain goes on once, from a No Operation node
    named after the call.
    """
    store_count = graph.project.store_count
    column, row = graph.column, graph.row
    requests: list[str] = []
    if graph.store_node:
        first = graph.add(f"{title}: pick the store", "switch", {
            "mode": "expression", "numberOutputs": store_count,
            "output": f"={{{{ {store_of_run(graph)} - 1 }}}}", "options": {}})
        for store in range(1, store_count + 1):
            if store > 1:
                graph.new_row(column + 1)
            request = _request_node(graph, f"{title} (store {store})", call, system, store, flags)
            graph.link(first, request, store - 1)
            requests.append(request)
    else:
        first = graph.add(f"{title}: every store", "noOp", {})
        previous = first
        for store in range(1, store_count + 1):
            request = _request_node(graph, f"{title} (store {store})", call, system, store, flags)
            graph.link(previous, request)
            previous = request
            if store < store_count:
                previous = _code_node(graph, f"{title}: next store", n8n_code.restore_code(
                    f"{title}: the same requests for the next store", first))
                graph.link(request, previous)
        requests = [previous]
    graph.row = row
    join = graph.add(title, "noOp", {})
    for request in requests:
        graph.link(request, join)
    graph.entries[join] = first
    return join


def _code_node(graph: Graph, title: str, code: str) -> str:
    return graph.add(title, "code", {"mode": "runOnceForAllItems", "language": "javaScript",
                                     "jsCode": code})


def crm_request(graph: Graph, step: Step, call: CrmCall, heads: Heads,
                entity: str) -> tuple[Heads, str, str]:
    """Add the batch Code node and HTTP Request node of one write call.

    Returns:
        The heads after the request, the batch node's name and the request node's name.
    """
    if call.method == "SQL":
        return sql_nodes(graph, step.title.en, call.endpoint, entity, heads)
    target = step.params.get("to")
    channels = step.params.get("channels")
    spec = n8n_code.call_spec(graph, call, entity, str(target) if target else None,
                              channels if isinstance(channels, dict) else None)
    if spec["kind"] == "hubspot_consent":
        heads = _consent_status_nodes(graph, step, heads, spec, entity)
    batch = _code_node(graph, f"{step.title.en}: batch",
                       n8n_code.batch_code(f"{step.title.en}: build the requests", spec))
    graph.chain(heads, batch)
    request = http_node(graph, f"{step.title.en}: request", call, body=call.method != "GET")
    graph.link(batch, request)
    heads = [(request, 0)]
    if call.system == "hubspot" and "/batch/" in call.endpoint:
        check = _code_node(graph, f"{step.title.en}: check the results", n8n_code.batch_errors_code(
            f"{step.title.en}: stop when a record failed", step.title.en))
        heads = graph.chain(heads, check)
    return heads, batch, request


def _consent_status_nodes(graph: Graph, step: Step, heads: Heads, spec: dict[str, Any],
                          entity: str) -> Heads:
    """Read each contact's current subscription status before its consent is written.

    The read takes the mapped records from the entity's mapping node, because the
    node before it outputs the previous request's response. The batch node after it
    pairs each status response with its record by position (``spec["status_request"]``)
    and drops an opt-in for a contact who opted out in HubSpot.
    """
    channel = str(spec["channel"])
    source = graph.entity_nodes.get(entity, {}).get("map", "")
    prepare = _code_node(graph, f"{step.title.en}: read the {channel} status: request",
                         n8n_code.consent_status_request_code(
                             f"{step.title.en}: read the current {channel} status", spec,
                             source))
    heads = graph.chain(heads, prepare)
    call = CrmCall(system="hubspot", action=f"read {channel} subscription status",
                   method="GET", base_url="https://api.hubapi.com", endpoint="{subscriber_id}",
                   note="The v4 path version and the status response shape are not "
                        "confirmed against the live docs.")
    read = http_node(graph, f"{step.title.en}: read the {channel} status", call, body=False,
                     never_error=True)
    spec["status_request"] = prepare
    return graph.chain(heads, read)


def _field_targets(graph: Graph, entity: str) -> dict[str, str]:
    """Return the record target of each field name of ``entity`` (and of the contact)."""
    entities = graph.project.spec["mapping"]["entities"]
    targets: dict[str, str] = {}
    for name in ("contact", entity):
        for item in entities.get(name, {}).get("fields", []):
            targets[str(item["name"])] = str(item["target"])
    # Rows the flow adds to the spec's field map, such as each channel's consent fields.
    for row in graph.flow.field_rows():
        targets.setdefault(row.name, row.target)
    # The contact's roll-ups that a playbook mark writes (playbook_step, discount_code).
    for rollup in entities.get("contact", {}).get("rollups", []):
        targets.setdefault(str(rollup["name"]), str(rollup["target"]))
    return targets


def sql_nodes(graph: Graph, title: str, statement: str, entity: str,
              heads: Heads, source: str | None = None,
              linked: str | None = None) -> tuple[Heads, str, str]:
    """Add a Code node for the query parameters and a Postgres node that runs ``statement``.

    The parameters come from the input items, or from the output of node ``source``,
    and fields they lack from the records of mapping node ``linked``.
    """
    query, names = n8n_code.sql_statement(statement)
    params = _code_node(graph, f"{title}: parameters",
                        n8n_code.sql_params_code(title, names, _field_targets(graph, entity),
                                                 source, linked))
    graph.chain(heads, params)
    database = graph.add(f"{title}: query", "postgres", {
        "operation": "executeQuery", "query": query,
        "options": {"queryReplacement": "={{ $json.params }}"}},
        credentials=graph.project.credential("postgres"), retryOnFail=True,
        maxTries=RETRY_TRIES, waitBetweenTries=RETRY_WAIT_MS)
    graph.link(params, database)
    return [(database, 0)], params, database


def restore_node(graph: Graph, title: str, heads: Heads, source: str) -> Heads:
    """Add a Code node that goes on with the items of ``source`` after a request replaced them."""
    code = n8n_code.restore_code(f"{title}: continue with the items before the request", source)
    name = _code_node(graph, f"{title}: continue", code)
    return graph.chain(heads, name)


def search_nodes(graph: Graph, step: Step, heads: Heads) -> Heads:
    """Add the nodes of a lookup: read the cursor, build the request, send it, split the results."""
    for call in step.calls:
        cursor = step.params.get("cursor_store")
        if cursor:
            read = graph.add(f"{step.title.en}: cursor", "dataTable", {
                "resource": "row", "operation": "get",
                "dataTableId": {"__rl": True, "mode": "name", "value": f"rabt_{cursor}"},
                "matchType": "allConditions",
                "filters": {"conditions": [{"keyName": "key", "condition": "eq",
                                            "keyValue": cursor_key(graph, step)}]},
                "returnAll": False, "limit": 1}, alwaysOutputData=True)
            heads = graph.chain(heads, read)
        if call.method == "SQL":
            heads, _, _ = sql_nodes(graph, step.title.en, call.endpoint, "contact", heads)
        else:
            build = _code_node(graph, f"{step.title.en}: request",
                               n8n_code.search_request_code(step.title.en, call,
                                                            graph.project.crm))
            heads = graph.chain(heads, build)
            request = http_node(graph, step.title.en, call, body=call.method != "GET",
                                query=bool(call.query), paged=True)
            heads = graph.chain(heads, request)
        key_target = next((str(item["target"]) for item in graph.project.spec["mapping"][
            "entities"]["contact"]["fields"] if item.get("unique")), None)
        split = _code_node(graph, f"{step.title.en}: results",
                           n8n_code.split_results_code(step.title.en, call, graph.project.crm,
                                                       key_target))
        heads = graph.chain(heads, split)
        if call.system == "shopify" or (call.system == "woocommerce"
                                        and step.params.get("replay_flow")):
            heads = _read_store_records(graph, step, call, heads)
        graph.context_node = split if call.system in ("hubspot", "zoho", "postgres") else None
    return heads


def cursor_key(graph: Graph, step: Step) -> str:
    """Return the cursor row's key: the step's key, and the run's shop when there are several.

    Each shop keeps its own cursor, because the shops' change times are independent.
    """
    key = str(step.params.get("cursor_key") or step.params.get("key"))
    if not graph.store_node or not graph.project.multi_store:
        return key
    return f"={key}:{{{{ {shop_of_run(graph)} }}}}"


def _read_store_records(graph: Graph, step: Step, call: CrmCall, heads: Heads) -> Heads:
    """Read each polled or failed id again through the REST resource the flows map.

    Shopify's GraphQL poll returns ids only. A WooCommerce poll returns whole orders,
    but the orders left in the failed-items table are read by id, so every order of
    the run is read the same way and the replay path is the same for both stores.
    """
    resource = call.action.rsplit(" ", 1)[-1]
    # NOTE: the REST Admin API is legacy since 2024-10 but still serves custom apps;
    # the flows map REST-shaped bodies because the webhooks deliver that shape.
    base_url = SHOPIFY_BASE_URL if call.system == "shopify" else WOOCOMMERCE_BASE_URL
    read = CrmCall(system=call.system, action=f"read {resource}", method="GET",
                   base_url=base_url, endpoint=f"/{resource}/{{record_id}}")
    replay_flow = step.params.get("replay_flow")
    if replay_flow:
        heads = _replay_ids(graph, step, heads, str(replay_flow))
    suffix = ".json" if call.system == "shopify" else ""
    path_code = ("return $input.all().map((item) => "
                 f"({{ json: {{ path: `${{item.json.id}}{suffix}` }} }}));\n")
    path = _code_node(graph, f"{step.title.en}: paths",
                      n8n_code.header(step.title.en) + path_code)
    request = http_node(graph, f"{step.title.en}: read each", read, body=False)
    body = "item.json.order || item.json.customer || item.json"
    if graph.store_node and graph.project.multi_store:
        # The order flow keys the replayed order by the shop it was read from.
        body = f"{{ ...({body}), ...{store_of_run_code(graph)} }}"
    unwrap = _code_node(graph, f"{step.title.en}: bodies", n8n_code.header(step.title.en) +
                        f"return $input.all().map((item) => ({{ json: {body} }}));\n")
    return graph.chain(heads, path, request, unwrap)


def _replay_ids(graph: Graph, step: Step, heads: Heads, flow_key: str) -> Heads:
    """Add the ids the failed-items table keeps for ``flow_key`` to the polled ids.

    The results node then outputs an empty item when the poll finds nothing, so the
    failed items are still read; the table is read once per run.
    """
    results = heads[0][0]
    node = next(item for item in graph.nodes if item["name"] == results)
    node["alwaysOutputData"] = True
    store = str(step.params.get("replay_store", "failed_items"))
    read = graph.add(f"{step.title.en}: failed items", "dataTable", {
        "resource": "row", "operation": "get",
        "dataTableId": {"__rl": True, "mode": "name", "value": f"rabt_{store}"},
        "matchType": "allConditions", "filters": {"conditions": []}, "returnAll": True},
        alwaysOutputData=True, executeOnce=True)
    merge = _code_node(graph, f"{step.title.en}: with failed items",
                       n8n_code.replay_ids_code(step.title.en, results, flow_key,
                                                shop_of_run(graph) if graph.store_node
                                                else None))
    return graph.chain(heads, read, merge)


def consent_nodes(graph: Graph, step: Step, heads: Heads) -> Heads:
    """Add the consent read and the Code node that keeps only contacts who consented."""
    gate = step.gate
    if gate is None:
        return heads
    crm = graph.project.crm
    prepare = _code_node(graph, f"{step.title.en}: request",
                         n8n_code.consent_request_code(step.title.en, graph, gate.channel))
    heads = graph.chain(heads, prepare)
    if crm == "custom":
        read = graph.add(f"{step.title.en}: read", "postgres", {
            "operation": "executeQuery",
            "query": n8n_code.sql_consent_query(gate.channel, _contact_key_column(graph),
                                                *_contact_phone_email_columns(graph)),
            "options": {"queryReplacement": "={{ $json.params }}"}},
            credentials=graph.project.credential("postgres"))
        heads = graph.chain(heads, read)
        keep = _code_node(graph, step.title.en,
                          n8n_code.consent_keep_code(step.title.en, graph, gate, prepare))
        return graph.chain(heads, keep)
    call = CrmCall(system=crm, action=f"read {gate.channel} consent", method="GET",
                   base_url="https://api.hubapi.com" if crm == "hubspot" else "{api_domain}/crm/v8",
                   endpoint="{subscriber_id}")
    read = http_node(graph, f"{step.title.en}: read", call, body=False, never_error=True)
    heads = graph.chain(heads, read)
    keep = _code_node(graph, step.title.en,
                      n8n_code.consent_keep_code(step.title.en, graph, gate, prepare))
    return graph.chain(heads, keep)


def _contact_key_column(graph: Graph) -> str:
    for item in graph.project.spec["mapping"]["entities"]["contact"]["fields"]:
        if item.get("unique"):
            return str(item["target"]).rsplit(".", 1)[-1]
    return "email"


def _contact_phone_email_columns(graph: Graph) -> tuple[str, str]:
    """Return the contacts columns of the phone and email identity keys."""
    targets = {str(item["key"]): str(item["target"]).rsplit(".", 1)[-1]
               for item in graph.project.spec["mapping"]["identity"]["match_order"]}
    return targets.get("phone", "phone_e164"), targets.get("email", "email")


def discount_nodes(graph: Graph, step: Step, heads: Heads) -> Heads:
    """Add the nodes that create a single-use discount code and keep it on the item."""
    for call in step.calls:
        build = _code_node(graph, f"{step.title.en}: request",
                           n8n_code.discount_request_code(step.title.en, call, dict(step.params)))
        heads = graph.chain(heads, build)
        request = http_node(graph, step.title.en, call, body=True)
        heads = graph.chain(heads, request)
        keep = _code_node(graph, f"{step.title.en}: keep the code",
                          n8n_code.keep_discount_code(step.title.en, build))
        heads = graph.chain(heads, keep)
        graph.context_node = keep
    return heads


def send_nodes(graph: Graph, step: Step, heads: Heads) -> Heads:
    """Add the nodes of a send step: a WhatsApp template, an SMS, a CRM email marker or a replay."""
    via = step.params.get("via")
    if via == "webhook" and step.params.get("flow"):
        target = graph.project.workflow_ids[str(step.params["flow"])]
        name = graph.add(step.title.en, "executeWorkflow", {
            "source": "database", "workflowId": {"__rl": True, "mode": "id", "value": target},
            "mode": "each", "options": {"waitForSubWorkflow": True},
            "workflowInputs": {"mappingMode": "defineBelow", "value": {}, "matchingColumns": [],
                               "schema": [], "attemptToConvertTypes": False,
                               "convertFieldsToString": True}})
        return graph.chain(heads, name)
    context = graph.context_node
    before = heads[0][0]
    for call in step.calls:
        if via == "crm":
            mark = _code_node(graph, f"{step.title.en}: enrol",
                              n8n_code.marker_code(step.title.en, graph, call, dict(step.params)))
            heads = graph.chain(heads, mark)
            heads, _, _ = crm_request(graph, step, call, heads, "contact")
        else:
            build = _code_node(graph, f"{step.title.en}: message",
                               n8n_code.message_code(step.title.en, graph, call,
                                                     dict(step.params)))
            heads = graph.chain(heads, build)
            request = http_node(graph, step.title.en, call, body=True)
            heads = graph.chain(heads, request)
    graph.context_node = context
    return restore_node(graph, step.title.en, heads, before)
