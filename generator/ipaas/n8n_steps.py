"""Flow triggers and steps as n8n nodes.

Each step handler takes the heads the step starts from (``(node name, output)``
pairs) and returns the heads the next step starts from. Within a sync flow a new
entity (the second and later mapping steps, and stores keyed by a payload field)
starts again from the payload node, so a contact without email or phone does not
stop its order from syncing. n8n's v1 execution order runs those branches one after
the other, top to bottom, so the order branch reads the contact branch's results.
Store writes hang above the chain for the same reason: they run before the rest.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from generator.ipaas import n8n_code, n8n_stores, n8n_ticket, n8n_zoho_items
from generator.ipaas.flows import FieldRow, Route, Step, Trigger, walk_steps
from generator.ipaas.n8n_discount import shared_code_nodes, shares_code
from generator.ipaas.n8n_graph import ROW_HEIGHT, STORE_SYSTEMS, Graph
from generator.ipaas.n8n_http import (
    consent_nodes,
    crm_request,
    discount_nodes,
    env,
    restore_node,
    search_nodes,
    send_nodes,
    sql_nodes,
)
from generator.ipaas.n8n_tables import (
    delete_parameters,
    table_ref,
    upsert_parameters,
)
from generator.model import Bilingual

Heads = list[tuple[str, int]]
SHOPIFY_TRIGGER = "n8n-nodes-base.shopifyTrigger"
WOOCOMMERCE_TRIGGER = "n8n-nodes-base.wooCommerceTrigger"
# Field map fields that hold a store id, unique only within one shop. With several
# shops their values are keyed "<shop>:<store id>", as the API service keys them.
SHOP_SCOPED_FIELDS = frozenset({"store_customer_id", "external_order_id", "store_line_item_id",
                                "store_product_id", "store_ticket_id", "order_id"})
# The table that keeps each event until its CRM writes succeed. The reconciliation
# replays the orders left in it.
FAILED_ITEMS = "failed_items"


def _topic_supported(graph: Graph, node_type: str, parameter: str, topic: str) -> bool:
    entry = graph.project.catalogue["nodes"][node_type]
    version = str(entry["default_version"]).removesuffix(".0")
    values = entry["versions"][version]["parameters"][parameter]["values"]
    return topic in values


def _slug_path(*parts: str) -> str:
    return "/".join(re.sub(r"[^a-z0-9-]+", "-", part.lower()).strip("-") for part in parts)


def _store_trigger(graph: Graph, source: str, topic: str,
                   store: int | None = None) -> tuple[str, bool]:
    """Add the trigger node of one store topic; return its name and whether it is generic.

    ``store`` names the shop whose credential a Shopify or WooCommerce trigger takes
    when the workflow serves several shops.
    """
    project = graph.project
    suffix = f" (store {store})" if store is not None else ""
    if source == "shopify" and _topic_supported(graph, SHOPIFY_TRIGGER, "topic", topic):
        name = graph.add(f"Shopify {topic}{suffix}", "shopifyTrigger",
                         {"authentication": "accessToken", "topic": topic},
                         credentials=project.credential("shopify", store))
        return name, False
    if source == "woocommerce" and _topic_supported(graph, WOOCOMMERCE_TRIGGER, "event", topic):
        name = graph.add(f"WooCommerce {topic}{suffix}", "wooCommerceTrigger", {"event": topic},
                         credentials=project.credential("woocommerce", store))
        return name, False
    system = "storefront" if source not in ("support_inbox",) else "support_inbox"
    # A signed delivery is checked in the Code node after this one, over the raw body.
    signed = _signing(graph, source) is not None
    name = graph.add(f"Webhook {topic}", "webhook", {
        "httpMethod": "POST", "path": _slug_path(project.slug, graph.flow.key, topic),
        "authentication": "none" if signed else "headerAuth",
        "responseMode": "onReceived", "options": {"rawBody": signed}},
        credentials=None if signed else project.credential(system))
    return name, True


def _signing(graph: Graph, source: str) -> str | None:
    """Return the signature scheme of a Webhook node's deliveries, or None for Header Auth.

    Shopify signs its webhooks, and a headless storefront's server signs its events
    with Standard Webhooks, as the API path's intake expects.
    """
    if source == "shopify":
        return "shopify"
    if source == "storefront" and graph.project.platform == "headless":
        return "standard_webhooks"
    return None


def _is_generic(graph: Graph, source: str, topic: str) -> bool:
    if source == "shopify":
        return not _topic_supported(graph, SHOPIFY_TRIGGER, "topic", topic)
    if source == "woocommerce":
        return not _topic_supported(graph, WOOCOMMERCE_TRIGGER, "event", topic)
    return True


def _multi_store_heads(graph: Graph, trigger: Trigger) -> Heads:
    """Add the trigger nodes of a flow that serves several shops; return their heads.

    Topics with a trigger node get one per shop. A topic without one gets a single
    Webhook node that every shop posts to. Its Code node finds the shop by the
    X-Shopify-Shop-Domain header and checks the signature with that shop's secret.
    """
    topics = trigger.topics or ("event",)
    native = tuple(topic for topic in topics if not _is_generic(graph, trigger.source, topic))
    heads = n8n_stores.store_triggers(
        graph, lambda topic, store: _store_trigger(graph, trigger.source, topic, store)[0],
        native) if native else []
    for topic in topics:
        if topic in native:
            continue
        if heads:
            graph.new_row(0)
        name, _ = _store_trigger(graph, trigger.source, topic)
        title = f"Read the {topic} delivery"
        unwrap = graph.add(title, "code", {
            "mode": "runOnceForAllItems", "language": "javaScript",
            "jsCode": n8n_stores.multi_store_unwrap_code(title, trigger.source,
                                                       graph.project.store_count)})
        graph.link(name, unwrap)
        heads.append((unwrap, 0))
    return heads


def trigger_nodes(graph: Graph, trigger: Trigger) -> Heads:
    """Add the trigger nodes of a flow and return the heads its first step starts from."""
    if trigger.kind == "error":
        return [(graph.add("Failed run", "errorTrigger", {}), 0)]
    if trigger.kind == "schedule":
        if graph.project.multi_store and n8n_stores.polls_store(graph.flow):
            run = n8n_stores.schedule_triggers(
                graph, lambda suffix: _schedule_node(graph, trigger, suffix))
            graph.payload_node = run
            return [(run, 0)]
        return [(_schedule_node(graph, trigger), 0)]
    multi_store = graph.project.multi_store and trigger.source in STORE_SYSTEMS
    heads: Heads = _multi_store_heads(graph, trigger) if multi_store else []
    for topic in () if multi_store else trigger.topics or ("event",):
        if heads:
            graph.new_row(0)
        name, generic = _store_trigger(graph, trigger.source, topic)
        if generic:
            code = n8n_code.unwrap_code(f"Read the {topic} delivery",
                                        _signing(graph, trigger.source))
            unwrap = graph.add(f"Read the {topic} delivery", "code", {
                "mode": "runOnceForAllItems", "language": "javaScript", "jsCode": code})
            graph.link(name, unwrap)
            name = unwrap
        heads.append((name, 0))
    if graph.flow.key in graph.project.replay_targets:
        graph.new_row(0)
        replay = graph.add("Replayed by reconciliation", "executeWorkflowTrigger",
                           {"inputSource": "passthrough"})
        heads.append((replay, 0))
    graph.row = 0
    join = graph.add("Receive the payload", "noOp", {})
    graph.link_all(heads, join)
    graph.payload_node = join
    if multi_store:
        graph.store_node = join
    return [(join, 0)]


def _schedule_node(graph: Graph, trigger: Trigger, suffix: str = "") -> str:
    if trigger.every_minutes:
        rule = {"field": "minutes", "minutesInterval": trigger.every_minutes}
        title = f"Every {trigger.every_minutes} minutes"
    else:
        hour, minute = (int(part) for part in (trigger.daily_at or "03:00").split(":"))
        rule = {"field": "days", "daysInterval": 1, "triggerAtHour": hour,
                "triggerAtMinute": minute}
        title = f"Every day at {trigger.daily_at}"
    name = graph.add(title + suffix, "scheduleTrigger", {"rule": {"interval": [rule]}})
    graph.payload_node = name
    return name


# ---------------------------------------------------------------------------
# Steps


def emit_steps(graph: Graph, steps: tuple[Step, ...], heads: Heads) -> Heads:
    """Add the nodes of ``steps`` in order from ``heads``; return the final heads."""
    synced = False
    index = 0
    while index < len(steps):
        step = steps[index]
        if synced and _starts_entity(step):
            graph.new_row(graph.column)
            heads = [(graph.payload_node, 0)]
            synced = False
        if step.kind == "consent_gate" and step.params.get("until_step"):
            end = _gated_end(steps, index)
            heads = _gated_unit(graph, steps[index:end + 1], steps[end + 1:], heads)
            index = end + 1
            continue
        heads = HANDLERS.get(step.kind, _fallback)(graph, step, heads)
        synced = synced or step.kind in ("upsert", "associate")
        index += 1
    return heads


def _gated_end(steps: tuple[Step, ...], start: int) -> int:
    """Return the index of the send step that ends the consent gate at ``start``."""
    until = steps[start].params["until_step"]
    for index in range(start + 1, len(steps)):
        if steps[index].key == until:
            return index
    return len(steps) - 1


def _gated_unit(graph: Graph, unit: tuple[Step, ...], later: tuple[Step, ...],
                heads: Heads) -> Heads:
    """Emit a consent gate with its steps up to the send; return the heads the chain goes on from.

    A discount code that a later send repeats (the abandoned-cart reminder in the
    same run, win-back steps in later runs) is created before the gate, not inside
    it. Each contact with consent on any channel that carries the code gets it.
    Otherwise the code would exist only on the gated branch, and the later send
    would go out without it, or without a code at all when this gate drops the contact.
    """
    if shares_code(graph.flow) or any(_repeats_code(step) for step in walk_steps(later)):
        for step in unit:
            if step.kind == "discount":
                heads = shared_code_nodes(graph, step, heads)
        unit = tuple(step for step in unit if step.kind != "discount")
    _gated_branch(graph, unit, heads)
    return heads


def _repeats_code(step: Step) -> bool:
    return step.kind == "send" and bool(step.params.get("discount"))


def _gated_branch(graph: Graph, steps: tuple[Step, ...], heads: Heads) -> None:
    """Emit a consent gate and its send on a side branch above the chain.

    The chain goes on from ``heads``, so a contact the gate drops still reaches the
    later steps. The branch sits higher than the chain, so n8n's v1 execution order
    (the branch with the smaller y position first) sends before a later Wait node
    pauses the run.
    """
    column = graph.column
    graph.row -= 1
    saved = (graph.payload_node, graph.context_node)
    gated = _consent_gate(graph, steps[0], heads)
    emit_steps(graph, steps[1:], gated)
    graph.payload_node, graph.context_node = saved
    graph.row += 1
    graph.column = column


def _starts_entity(step: Step) -> bool:
    return step.kind == "map" or (step.kind == "store" and not step.params.get("delete"))


def _code(graph: Graph, title: str, code: str, heads: Heads, **extra: Any) -> Heads:
    name = graph.add(title, "code", {"mode": "runOnceForAllItems", "language": "javaScript",
                                     "jsCode": code}, **extra)
    return graph.chain(heads, name)


def _dedupe(graph: Graph, step: Step, heads: Heads) -> Heads:
    """Pass on only events whose key is not in the processed-events table, and claim them.

    The claim is a row with the key and this execution's id. It is written on a side
    branch above the chain, so n8n's v1 order writes it before any Wait node pauses
    the run, and a second copy of the delivery that arrives during the wait is skipped.
    A run that fails has its claims deleted by the error workflow (``release_nodes``),
    so a later delivery or the reconciliation's replay of the event still runs.
    A second side branch keeps the event in the failed-items table until the CRM
    writes succeed, so a run that fails leaves that row for the reconciliation.
    The reconciliation workflow deletes keys older than the dedupe window, because
    n8n 2.8's Remove Duplicates node bounds its history by count, not by age.

    NOTE: the check and the claim are two queries, so two copies that arrive within
    the same few milliseconds can both pass. A run that n8n never finishes (the
    process is killed) keeps its claim until the dedupe window ends.
    """
    key = str(step.params.get("key", ""))
    expression = _dedupe_expression(graph, key)
    store = str(step.params.get("store", "processed_events"))
    table = table_ref(store)
    name = graph.add(step.title.en, "dataTable", {
        "resource": "row", "operation": "rowNotExists", "dataTableId": table,
        "matchType": "allConditions",
        "filters": {"conditions": [{"keyName": "key", "condition": "eq",
                                    "keyValue": expression}]}},
        notes=f"Key: {key}. Built-in store triggers pass the body without headers, so their "
              "events are keyed on the resource id and its update time.")
    heads = graph.chain(heads, name)
    column = graph.column
    graph.row -= 2
    claim = graph.add(f"{step.title.en}: claim row", "code", {
        "mode": "runOnceForAllItems", "language": "javaScript",
        "jsCode": n8n_code.dedupe_row_code(step.title.en, _expression_body(expression))})
    graph.link(name, claim)
    graph.link(claim, graph.add(f"{step.title.en}: claim", "dataTable",
                                upsert_parameters(store)))
    graph.new_row(column)
    title = f"Keep the event until its CRM writes succeed ({FAILED_ITEMS})"
    row = graph.add(f"{title}: row", "code", {
        "mode": "runOnceForAllItems", "language": "javaScript",
        "jsCode": n8n_code.pending_row_code(title, graph.flow.key,
                                            _expression_body(expression),
                                            graph.store_node is not None)})
    graph.link(name, row)
    graph.link(row, graph.add(title, "dataTable", upsert_parameters(FAILED_ITEMS)))
    graph.row += 1
    graph.column = column
    graph.payload_node = name
    graph.dedupe = (name, step.title.en, expression, str(table["value"]))
    return heads


def clear_failed_nodes(graph: Graph) -> None:
    """Clear the event from the failed-items table on a branch below every other.

    n8n 2.8.4 with execution order v1 runs the branches leaving one node one after
    the other, the smallest position y first (``workflow-execute.js`` sorts them), and
    a failed request stops the run. This branch therefore runs only when every CRM
    write of the event succeeded.
    """
    if graph.dedupe is None:
        return
    check, _, expression, _ = graph.dedupe
    graph.row = max(node["position"][1] for node in graph.nodes) // ROW_HEIGHT + 1
    graph.column = 2
    failed_key = (f"={{{{ {n8n_code.js(graph.flow.key + ':')} + "
                  f"({_record_id_expression(expression)}) }}}}")
    clear = graph.add(f"Clear the event from {FAILED_ITEMS}", "dataTable",
                      delete_parameters(FAILED_ITEMS, failed_key))
    graph.link(check, clear)


def release_nodes(graph: Graph, table: str) -> None:
    """Add the branch of the error workflow that deletes the failed run's dedupe claims.

    Each claim row's value is the id of the execution that claimed the event, and
    n8n's Error Trigger passes the failed execution's id as ``execution.id``. The
    branch sits above the others, so n8n's v1 order runs it first and a failed alert
    email does not keep the claims.
    """
    trigger = next(node["name"] for node in graph.nodes
                   if node["type"].endswith(".errorTrigger"))
    graph.row = min(node["position"][1] for node in graph.nodes) // ROW_HEIGHT - 1
    graph.column = 1
    release = graph.add("Release the failed run's event claims", "dataTable",
                        delete_parameters(table, "={{ $json.execution?.id ?? '' }}", "value"))
    graph.link(trigger, release)


def _record_id_expression(expression: str) -> str:
    """Return the JavaScript of the failed-item id: the store record id, else the event key."""
    return f"$json.id ?? $json.customer_id ?? ({_expression_body(expression)})"


def _expression_body(expression: str) -> str:
    """Return the JavaScript inside an n8n expression such as ``={{ $json.id }}``."""
    return expression.removeprefix("=").strip().removeprefix("{{").removesuffix("}}").strip()


def purge_nodes(graph: Graph, table: str, days: int) -> None:
    """Add a daily branch that deletes the table's rows older than ``days``."""
    graph.new_row(0)
    trigger = graph.add("Every day at 03:30: purge old event keys", "scheduleTrigger", {
        "rule": {"interval": [{"field": "days", "daysInterval": 1, "triggerAtHour": 3,
                               "triggerAtMinute": 30}]}})
    # NOTE: createdAt is the system column n8n data tables add to every row; the lt
    # condition on it is read from n8n's data-table filters, not from the catalogue,
    # which lists the conditions as loaded at run time.
    purge = graph.add(f"Delete event keys older than {days} days", "dataTable", {
        "resource": "row", "operation": "deleteRows", "dataTableId": table_ref(table),
        "matchType": "allConditions",
        "filters": {"conditions": [{"keyName": "createdAt", "condition": "lt",
                                    "keyValue": "={{ $now.minus({ days: "
                                                f"{days} }}).toISO() }}}}"}]}})
    graph.link(trigger, purge)


def _dedupe_expression(graph: Graph, key: str) -> str:
    """Return the n8n expression of an event's dedupe key."""
    if graph.flow.trigger.source in ("shopify", "woocommerce"):
        # _event_id is set only by the generic webhook path (Read the delivery). Shopify's
        # consent-only topics carry customer_id and the consent's own update time.
        return ("={{ $json._event_id || [$json.id ?? $json.customer_id, $json.updated_at || "
                "$json.date_modified_gmt || $json.email_marketing_consent?.consent_updated_at || "
                "$json.sms_marketing_consent?.consent_updated_at || ''].join(':') }}")
    fields = [part.strip() for part in key.removeprefix("body ").split("+")]
    parts = ", ".join(f"$json.{field}" for field in fields if re.fullmatch(r"[\w.]+", field))
    return f"={{{{ $json._event_id || [{parts}].join(':') }}}}"


def _map(graph: Graph, step: Step, heads: Heads) -> Heads:
    project = graph.project
    if not step.fields:
        code = n8n_code.failure_summary_code(step.title.en, step.params.get("keep", []),
                                             step.params.get("drop", []))
        return _code(graph, step.title.en, code, heads)
    entity = step.fields[0].entity if step.fields else ""
    constants = n8n_code.project_constants(project.crm, project.platform,
                                           project.spec["mapping"])
    refs = _reference_rows(graph, entity)
    key_target = _unique_target(graph, entity, step.fields)
    code = n8n_code.map_code(step.title.en, constants, step.fields, key_target, refs,
                             _key_scope(graph, step.fields, refs))
    heads = _code(graph, step.title.en, code, heads)
    graph.context_node = heads[0][0]
    graph.entity_nodes.setdefault(entity, {})["map"] = heads[0][0]
    return heads


def _unique_target(graph: Graph, entity: str, rows: tuple[FieldRow, ...]) -> str | None:
    for row in rows:
        if row.unique:
            return row.target
    entities = graph.project.spec["mapping"]["entities"]
    for item in entities.get(entity, {}).get("fields", []):
        if item.get("unique"):
            return str(item["target"])
    return None


def _key_scope(graph: Graph, rows: tuple[FieldRow, ...],
               refs: Mapping[str, list[FieldRow]]) -> tuple[list[str], str] | None:
    """Return the store-id fields to key by shop, and the shop expression, or None for one shop."""
    if not graph.project.multi_store:
        return None
    targets = {row.target for group in (rows, *refs.values()) for row in group
               if row.name in SHOP_SCOPED_FIELDS}
    if not targets:
        return None
    # A delivery and a replayed order carry their own shop, and the run's shop covers
    # the rest. A flow not tied to one shop (storefront events) has no shop to use.
    fallback = n8n_stores.shop_of_run(graph) if graph.store_node else "null"
    return sorted(targets), f"item.json.rabt_shop || {fallback}"


def _reference_rows(graph: Graph, entity: str) -> dict[str, list[FieldRow]]:
    """Return the identity fields of each record ``entity`` links to, readable from its payload.

    The fields come in identity order: store customer id, phone, email for a contact.
    The mapping node's ``refs`` takes the first known one, as the linked record's node
    takes its ``key``; ``ref_keys`` keeps them all, so a lookup finds the record by any.
    """
    mapping = graph.project.spec["mapping"]
    entities = mapping["entities"]
    refs: dict[str, list[FieldRow]] = {}
    for link in entities.get(entity, {}).get("associations", []):
        rows = [FieldRow(
            entity=link["to"], name=item["name"], source=item["source"],
            target=item["target"], transform=item.get("transform", "identity"),
            description=Bilingual("", ""), fallback_sources=tuple(
                item.get("fallback_sources", ())))
            for item in n8n_code.reference_fields(mapping, link["to"])
            if "[]" not in str(item.get("source", ""))]
        # A line's product is read from the line, never from its own payload's paths,
        # and a ticket's order from the order id the ticket names.
        rows = (_line_reference_rows(mapping, entity, str(link["to"]))
                or _own_reference_rows(mapping, entity, str(link["to"])) or rows)
        if rows:
            refs[link["to"]] = rows
    return refs


def _line_reference_rows(mapping: Mapping[str, Any], entity: str, to: str) -> list[FieldRow]:
    """Return the row that reads a line's product id from the line itself.

    The product's own id path (``id`` in a WooCommerce product body) would read the
    order's id from an order body. A line names its product by the variant id, the
    SKU's fallback, which is also the key of the product written per variant.
    """
    entities = mapping["entities"]
    sku = next((item for item in entities.get(entity, {}).get("fields", [])
                if item["name"] == "sku"), None)
    unique = next((item for item in entities.get(to, {}).get("fields", [])
                   if item.get("unique")), None)
    if to != "product" or sku is None or unique is None or not sku.get("fallback_sources"):
        return []
    first, *rest = sku["fallback_sources"]
    return [FieldRow(entity=to, name=str(unique["name"]), source=str(first),
                     target=str(unique["target"]),
                     transform=str(unique.get("transform", "identity")),
                     description=Bilingual("", ""), fallback_sources=tuple(rest))]


def _own_reference_rows(mapping: Mapping[str, Any], entity: str, to: str) -> list[FieldRow]:
    """Return the row that reads the linked record's key from the record's own ``<to>_id`` field.

    A ticket comes from the support inbox, so the order paths of the field map (``id``
    of an order body) would read the ticket's own id; its ``order_id`` names the order.
    """
    entities = mapping["entities"]
    own = next((item for item in entities.get(entity, {}).get("fields", [])
                if item["name"] == f"{to}_id"), None)
    unique = next((item for item in entities.get(to, {}).get("fields", [])
                   if item.get("unique")), None)
    if own is None or unique is None:
        return []
    return [FieldRow(entity=to, name=str(unique["name"]), source=str(own["source"]),
                     target=str(unique["target"]),
                     transform=str(own.get("transform", "identity")),
                     description=Bilingual("", ""),
                     fallback_sources=tuple(own.get("fallback_sources", ())))]


def _filter(graph: Graph, step: Step, heads: Heads) -> Heads:
    if "store" in step.params:
        return _store_check(graph, step, heads, exists=not step.params.get("absent"))
    if "fulfilled_when" in step.params:
        code = n8n_code.status_filter_code(step.title.en, step.params["fulfilled_when"])
        return _code(graph, step.title.en, code, heads)
    targets = {}
    if graph.context_node:
        for item in graph.project.spec["mapping"]["entities"]["contact"]["fields"]:
            targets[str(item["name"])] = str(item["target"])
    fields = [{"record": targets.get(str(name)), "payload": None if str(name) in targets
               else str(name)} for name in step.params.get("any_set", [])]
    return _code(graph, step.title.en, n8n_code.any_set_code(step.title.en, fields), heads)


def _key_expression(graph: Graph, path: str) -> str:
    prefix = "$json.payload" if graph.context_node else "$json"
    return "={{ " + prefix + "." + path + " }}"


def _store_check(graph: Graph, step: Step, heads: Heads, *, exists: bool) -> Heads:
    """Pass on the items whose row exists (or does not) in the step's data table."""
    keys = step.params.get("keys") or [step.params.get("key")]
    conditions = [{"keyName": "key", "condition": "eq",
                   "keyValue": _key_expression(graph, str(key))} for key in keys if key]
    if "equals" in step.params:
        conditions.append({"keyName": "value", "condition": "eq",
                           "keyValue": _key_expression(graph, str(step.params["equals"]))})
    name = graph.add(step.title.en if exists else f"{step.title.en}: none", "dataTable", {
        "resource": "row", "operation": "rowExists" if exists else "rowNotExists",
        "dataTableId": table_ref(str(step.params["store"])),
        "matchType": "anyCondition" if "keys" in step.params else "allConditions",
        "filters": {"conditions": conditions}})
    return graph.chain(heads, name)


def _store(graph: Graph, step: Step, heads: Heads) -> Heads:
    """Write or delete a row of a data table, on a side branch that runs first."""
    table = str(step.params.get("store", "items"))
    key = str(step.params.get("key", "id"))
    column = graph.column
    graph.row -= 1
    if step.params.get("delete"):
        name = graph.add(step.title.en, "dataTable",
                         delete_parameters(table, _key_expression(graph, key)))
        graph.chain(heads, name)
    else:
        shop = (n8n_stores.shop_of_run(graph) if graph.store_node and graph.project.multi_store
                and step.params.get("value") == "max updated_at" else None)
        prepare = n8n_code.store_row_code(step.title.en, key, step.params.get("value"), shop)
        row_heads = _code(graph, f"{step.title.en}: row", prepare, heads)
        name = graph.add(step.title.en, "dataTable", upsert_parameters(table))
        graph.chain(row_heads, name)
    graph.row += 1
    graph.column = column
    return heads


def _wait(graph: Graph, step: Step, heads: Heads) -> Heads:
    if step.params.get("mode") == "quiet_hours":
        code = n8n_code.quiet_hours_code(step.title.en, dict(step.params))
        heads = _code(graph, f"{step.title.en}: resume time", code, heads)
        name = graph.add(step.title.en, "wait", {"resume": "specificTime",
                                                 "dateTime": "={{ $json._resume_at }}"})
        return graph.chain(heads, name)
    due_after = step.params.get("due_after")
    if due_after is not None:
        # Wait for the step's own due time, counted from the event like the Make
        # runner counts it, not for a gap after the step before.
        code = n8n_code.due_time_code(step.title.en, dict(due_after))
        heads = _code(graph, f"{step.title.en}: due time", code, heads)
        name = graph.add(step.title.en, "wait", {"resume": "specificTime",
                                                 "dateTime": "={{ $json._resume_at }}"})
        return graph.chain(heads, name)
    unit = str(step.params.get("unit", "hours"))
    name = graph.add(step.title.en, "wait", {"resume": "timeInterval",
                                             "amount": step.params.get("amount", 1),
                                             "unit": unit})
    return graph.chain(heads, name)


def _upsert(graph: Graph, step: Step, heads: Heads) -> Heads:
    entity = str(step.params.get("entity", ""))
    nodes = graph.entity_nodes.setdefault(entity, {})
    before = heads[0][0]
    if entity == "line_item" and graph.project.crm == "zoho":
        lines = next(item for item in graph.flow.steps if item.key == "map_line_items")
        heads, nodes["batch"], nodes["http"] = n8n_zoho_items.sales_order_nodes(
            graph, lines, heads)
        return heads
    heads = n8n_ticket.link_search_nodes(graph, step, entity, heads)
    consent_start: Heads | None = None
    consent_ends: Heads = []
    for call in step.calls:
        if call.system == "hubspot" and "communication-preferences" in call.endpoint:
            # Each channel's status read and write hangs off the node before the first
            # one, because a channel the body does not carry outputs no items, and
            # n8n would not run the channels chained after it.
            consent_start = heads if consent_start is None else consent_start
            ends, _, _ = crm_request(graph, step, call, consent_start, entity)
            consent_ends.extend(ends)
            continue
        heads, batch, http = crm_request(graph, step, call, heads, entity)
        nodes.setdefault("batch", batch)
        nodes.setdefault("http", http)
    if consent_ends:
        heads = consent_ends
    if graph.flow.playbook and graph.context_node:
        heads = restore_node(graph, step.title.en, heads, before)
    return heads


def _associate(graph: Graph, step: Step, heads: Heads) -> Heads:
    entity = str(step.params.get("from", ""))
    for call in step.calls:
        if call.method == "FIELD":
            # Zoho links through a lookup field that the record's batch node fills
            # from the linked record's upsert results, so no request is sent here.
            continue
        if call.method == "SQL":
            # The upsert before this step outputs its query result, so the link
            # statement reads the records from the entity's mapping node, and the
            # linked record's keys from that record's mapping node when the flow has one.
            source = graph.entity_nodes.get(entity, {}).get("map")
            linked = graph.entity_nodes.get(str(step.params.get("to", "")), {}).get("map")
            heads, _, _ = sql_nodes(graph, step.title.en, call.endpoint, entity, heads,
                                    source, linked)
            continue
        heads, _, _ = crm_request(graph, step, call, heads, entity)
    return heads


def _lookup(graph: Graph, step: Step, heads: Heads) -> Heads:
    heads = search_nodes(graph, step, heads)
    graph.payload_node = heads[0][0]
    return heads


def _branch(graph: Graph, step: Step, heads: Heads) -> Heads:
    """Emit each route: store checks for found/not found, otherwise a Code + Switch router."""
    routes = step.routes
    ends: Heads = []
    start_column = graph.column
    if all("found" in route.condition for route in routes):
        for index, route in enumerate(routes):
            if index:
                graph.new_row(start_column)
            check = _store_check(graph, step, heads, exists=bool(route.condition["found"]))
            route_ends = emit_route(graph, route, check)
            # A route where the record was found stops the flow (the cart was bought);
            # the flow goes on from the route where it was not found.
            if not route.condition["found"]:
                ends.extend(route_ends)
        return ends
    if all(route.condition.get("always") for route in routes):
        for index, route in enumerate(routes):
            if index:
                graph.new_row(start_column)
            ends.extend(emit_route(graph, route, heads))
        return ends
    return _switch_branch(graph, step, heads)


def emit_route(graph: Graph, route: Route, heads: Heads) -> Heads:
    """Emit one route's steps and return its final heads."""
    if not route.steps:
        return heads
    saved = (graph.payload_node, graph.context_node)
    ends = emit_steps(graph, route.steps, heads)
    graph.payload_node, graph.context_node = saved
    return ends


def _switch_branch(graph: Graph, step: Step, heads: Heads, *, restore: bool = True) -> Heads:
    ticket = graph.entity_nodes.get("ticket", {}).get("map")
    if restore and step.key == "sla_check" and ticket and heads[0][0] != ticket:
        # The first-response check reads the mapped ticket, not the CRM's last response.
        heads = restore_node(graph, step.title.en, heads, ticket)
    if restore and step.key == "sla_check":
        n8n_ticket.closed_ticket_nodes(graph, heads)
    code = n8n_code.route_code(step.title.en, dict(step.params),
                               [(route.key, dict(route.condition)) for route in step.routes])
    heads = _code(graph, f"{step.title.en}: route", code, heads)
    rules = []
    for route in step.routes:
        rules.append({"conditions": n8n_code.filter_value(
            [("={{ $json._route }}", "string", "equals", route.key)]),
            "renameOutput": True, "outputKey": route.key})
    switch = graph.add(step.title.en, "switch", {"mode": "rules", "rules": {"values": rules},
                                                 "options": {}})
    graph.chain(heads, switch)
    ends: Heads = []
    column = graph.column
    for index, route in enumerate(step.routes):
        if index:
            graph.new_row(column)
        ends.extend(emit_route(graph, route, [(switch, index)]))
    return ends


def _consent_gate(graph: Graph, step: Step, heads: Heads) -> Heads:
    return consent_nodes(graph, step, heads)


def _discount(graph: Graph, step: Step, heads: Heads) -> Heads:
    return discount_nodes(graph, step, heads)


def _send(graph: Graph, step: Step, heads: Heads) -> Heads:
    return send_nodes(graph, step, heads)


def _alert(graph: Graph, step: Step, heads: Heads) -> Heads:
    project = graph.project
    sla = step.params.get("reason") == "sla"
    if sla:
        # A ticket is alerted on once, by its event or by the scheduled check.
        heads = n8n_ticket.alerted_check_nodes(graph, heads, absent=True)
        fields = n8n_ticket.sla_params(graph).get("fields", {})
        code = n8n_ticket.sla_alert_code(step.title.en, project.client_name, fields)
    else:
        code = n8n_code.alert_code(step.title.en, project.client_name)
    heads = _code(graph, f"{step.title.en}: message", code, heads)
    message = heads[0][0]
    name = graph.add(step.title.en, "emailSend", {
        "fromEmail": env("RABT_ALERT_FROM"), "toEmail": env("RABT_ALERT_TO"),
        "subject": "={{ $json.subject }}", "emailFormat": "text", "text": "={{ $json.text }}",
        "options": {"appendAttribution": False}},
        credentials=project.credential("smtp"))
    heads = graph.chain(heads, name)
    if sla:
        heads = n8n_ticket.alerted_check_nodes(graph, heads, absent=False, message=message)
    return heads


def scheduled_sla_nodes(graph: Graph) -> None:
    """Add the scheduled first-response check of a HubSpot or Zoho ticket workflow."""
    step = next((item for item in graph.flow.walk() if item.key == "sla_check"), None)
    if step is None or graph.project.crm not in ("hubspot", "zoho"):
        return
    heads = n8n_ticket.open_tickets_nodes(graph, step)
    _switch_branch(graph, step, heads, restore=False)


def _fallback(graph: Graph, step: Step, heads: Heads) -> Heads:
    """Carry a step kind without a dedicated node as a Code node that states its rule."""
    code = n8n_code.step_rule_code(step.title.en, step.kind, dict(step.params))
    return _code(graph, step.title.en, code, heads)


HANDLERS: Mapping[str, Callable[[Graph, Step, Heads], Heads]] = {
    "dedupe": _dedupe,
    "map": _map,
    "filter": _filter,
    "store": _store,
    "wait": _wait,
    "upsert": _upsert,
    "associate": _associate,
    "lookup": _lookup,
    "branch": _branch,
    "consent_gate": _consent_gate,
    "discount": _discount,
    "send": _send,
    "alert": _alert,
}
