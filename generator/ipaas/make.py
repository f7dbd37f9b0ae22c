"""Make scenario blueprints, one per flow, built as data from the flow model.

Only the module ids in ``generator/data/ipaas/make-modules.yaml`` are used: the
generic webhook, HTTP, data store, router, iterator and error-handler modules.
Every CRM and store call goes through ``http:MakeRequest``, because the ids and
versions of the Shopify, WooCommerce, HubSpot and Zoho app modules are not
confirmed. Connections, webhooks and data stores are chosen in the scenario
editor after import; a blueprint carries none of them and no secret.

A Make run lasts minutes, not hours, so a flow that waits hours or days is split in
two. The part before the wait runs on the webhook. A scheduled runner then finds the
due records with a CRM search on the timestamp that the first part wrote.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from generator.ipaas import make_post_purchase, make_ticket
from generator.ipaas.flows import Flow, FlowSet, Step, build_flows
from generator.ipaas.make_builder import RAW_TRANSFORMS, Y_STEP, Builder, confirmed_modules
from generator.ipaas.make_http import ZOHO_TOKEN_STORE, calls_zoho, http_module, token_router
from generator.ipaas.make_outcomes import finish
from generator.ipaas.make_post_purchase import due_order_modules, is_started_step
from generator.ipaas.make_reconcile import reconcile_modules
from generator.ipaas.make_schedule import (
    mark_modules,
    page_read_module,
    page_save_module,
    paged_call,
    send_once_modules,
    window_values,
)
from generator.ipaas.make_steps import contact_item_values, search_results, step_list_modules
from generator.ipaas.n8n_discount import carrier_gates
from generator.model import Answers, Plan
from generator.resources import schemas_dir

__all__ = ["MAKE_DIR", "RAW_TRANSFORMS", "ZOHO_TOKEN_STORE", "blueprint_text", "blueprints",
           "confirmed_modules", "files"]

MAKE_DIR = "workflows/make"
SCHEMA_NAME = "make-blueprint"
# The flow whose scenario pages through the store's changes across runs (make_reconcile).
RECONCILE_FLOW = "reconciliation"
# The flow whose runner checks for an order placed since the checkout (_no_order_filter).
ABANDONED_FLOW = "abandoned-checkout"
# The flow whose runner finds due orders in the data store (make_post_purchase).
POST_PURCHASE_FLOW = make_post_purchase.FLOW_KEY
# The file stem of the scenario that checks the open tickets' first-response target.
SLA_CHECK_STEM = "ticket-sync-sla-check"


def _metadata(instant: bool) -> dict[str, Any]:
    return {
        "version": 1, "instant": instant,
        "scenario": {"roundtrips": 1, "maxErrors": 3, "autoCommit": True,
                     "autoCommitTriggerLast": True, "sequential": False, "confidential": True,
                     "dataloss": False, "dlq": True, "freshVariables": False},
        "designer": {"orphans": []},
    }


def _new_builder(flow_set: FlowSet, flow_key: str) -> Builder:
    store = flow_set.platform if flow_set.platform in ("shopify", "woocommerce") else "storefront"
    flow = next(item for item in flow_set.flows if flow_key in (item.key, f"{item.key}-runner"))
    carriers = [step for step in flow.walk() if step.kind == "send" and step.params.get("discount")]
    instant = flow_key == flow.key and flow.trigger.kind in ("webhook", "error")
    return Builder(flow_key=flow_key, mapping=flow_set.mapping, crm=flow_set.crm, store=store,
                   code_repeated=len(carriers) > 1, code_gates=tuple(carrier_gates(flow)),
                   instant=instant, dedupe_key=_report_event_key(flow) if instant else None,
                   event_field=_event_field(flow, store))


def _sla_builder(flow_set: FlowSet) -> Builder:
    """Return the builder of the scheduled first-response check, a scenario of its own."""
    store = flow_set.platform if flow_set.platform in ("shopify", "woocommerce") else "storefront"
    return Builder(flow_key=SLA_CHECK_STEM, mapping=flow_set.mapping, crm=flow_set.crm,
                   store=store, instant=False)


def _report_event_key(flow: Flow) -> str | None:
    """Return the key that a webhook scenario's failure reports send as the event id.

    The error-alert scenario receives the failed delivery's key as ``event_id`` in
    each report, so its own reports pass that key on.
    """
    if flow.trigger.kind == "error":
        return "body event_id"
    return flow.dedupe_key


def _event_field(flow: Flow, store: str) -> str:
    """Return the trigger body's field that names the record of a webhook scenario.

    The error-alert scenario receives a ``record_id`` in each report, and a headless
    storefront an ``event_id``. A flow whose dedupe key is a body field (a storefront
    event, a ticket) names the record by that field. A Shopify or WooCommerce record
    names it by its ``id``.
    """
    if flow.trigger.kind == "error":
        return "record_id"
    if store == "storefront":
        return "event_id"
    key = flow.dedupe_key or ""
    if key.startswith("body "):
        return key.removeprefix("body ").split(" + ")[0]
    return "id"


def _blueprint(builder: Builder, name: str, flow: Flow, steps: tuple[Step, ...],
               instant: bool) -> dict[str, Any]:
    modules: list[dict[str, Any]] = []
    if instant:
        modules.append(builder.module("gateway:CustomWebHook", {},
                                      f"Webhook: {', '.join(flow.trigger.topics) or flow.key}"))
    reconcile = reconcile_modules(builder, flow, builder.store) \
        if flow.key == RECONCILE_FLOW else None
    if reconcile is not None:
        modules.extend(reconcile)
    elif builder.crm == "zoho" and calls_zoho(steps):
        modules.extend(token_router(builder, 0, lambda: step_list_modules(builder, steps, 0)))
    else:
        modules.extend(step_list_modules(builder, steps, 0))
    return {"name": name[:120], "flow": finish(builder, modules), "metadata": _metadata(instant)}


def _split_at_wait(flow: Flow) -> tuple[tuple[Step, ...], Step | None, tuple[Step, ...]]:
    """Split a flow at its first wait longer than one Make run.

    Returns the steps before the wait, the wait step (None when there is none) and
    the steps after it: those of the route that runs when the wait ends without an
    order, or the flow's later steps when no such route follows.
    """
    for index, step in enumerate(flow.steps):
        if step.kind == "wait" and step.params.get("mode") == "delay":
            after: tuple[Step, ...] = flow.steps[index + 1:]
            for later in flow.steps[index + 1:]:
                for route in later.routes:
                    if route.condition.get("found") is False:
                        after = route.steps
            return flow.steps[:index], step, after
    return flow.steps, None, ()


def blueprints(flow_set: FlowSet) -> dict[str, dict[str, Any]]:
    """Return every blueprint by file stem: one per flow, two for a flow that waits.

    The webhook part of a waiting flow also writes the contact (its checkout time
    included), so the scheduled runner can find the contacts that fell due.
    """
    result: dict[str, dict[str, Any]] = {}
    for flow in flow_set.flows:
        instant = flow.trigger.kind in ("webhook", "error")
        before, wait, after = _split_at_wait(flow)
        contact = tuple(step for step in after if step.kind in ("map", "filter", "upsert"))
        if flow.key == POST_PURCHASE_FLOW:
            before, contact = _record_after_contact(before, contact)
        name = f"{flow.title.en} ({flow.key})"
        sla = next((step for step in before if step.key == "sla_check"), None)
        if sla is not None and flow_set.crm in ("hubspot", "zoho"):
            # The scheduled scenario alerts on overdue tickets, also on those that get
            # no further events, so the webhook scenario only writes and links.
            before = tuple(step for step in before if step is not sla)
        result[flow.key] = _blueprint(_new_builder(flow_set, flow.key), name, flow,
                                      before + contact, instant)
        if sla is not None and flow_set.crm in ("hubspot", "zoho"):
            result[SLA_CHECK_STEM] = make_ticket.sla_check_blueprint(
                _sla_builder(flow_set), sla, f"{flow.title.en} ({SLA_CHECK_STEM}, every "
                f"{sla.params.get('every_minutes')} minutes)")
        if wait is not None:
            runner_steps = tuple(step for step in after
                                 if step.kind in ("consent_gate", "discount", "send")
                                 or (step.kind == "wait" and step.calls))
            result[f"{flow.key}-runner"] = _runner(
                _new_builder(flow_set, f"{flow.key}-runner"), flow, wait, runner_steps,
                flow_set.quiet_hours)
    return result


def blueprint_stems(flow_set: FlowSet) -> list[str]:
    """Return the file stems ``blueprints`` writes, without building the blueprints."""
    stems = []
    for flow in flow_set.flows:
        stems.append(flow.key)
        if _split_at_wait(flow)[1] is not None:
            stems.append(f"{flow.key}-runner")
    return stems


def _record_after_contact(before: tuple[Step, ...], contact: tuple[Step, ...]
                          ) -> tuple[tuple[Step, ...], tuple[Step, ...]]:
    """Move the step that records the started order after the contact upsert.

    The record keeps the contact's CRM id, which the runner reads the contact by.
    """
    record = tuple(step for step in before if is_started_step(step)
                   and not step.params.get("absent"))
    return tuple(step for step in before if step not in record), contact + record


def _due_groups(wait: Step, steps: tuple[Step, ...]) -> list[tuple[Step, tuple[Step, ...]]]:
    """Split a runner's steps at each later wait that carries its own due search."""
    groups: list[tuple[Step, list[Step]]] = [(wait, [])]
    for step in steps:
        if step.kind == "wait":
            groups.append((step, []))
        else:
            groups[-1][1].append(step)
    return [(start, tuple(group)) for start, group in groups]


def _due_modules(builder: Builder, wait: Step, steps: tuple[Step, ...],
                 y: int) -> list[dict[str, Any]]:
    """Return the modules that find the contacts due at ``wait``, then run ``steps``."""
    # A failure report names this route's record, never the record of an earlier route.
    builder.record_ref = None
    if builder.flow_key == f"{POST_PURCHASE_FLOW}-runner":
        search = due_order_modules(builder, wait, y)
    else:
        search = []
        page = page_read_module(builder, wait, y) if builder.window_mark_id is not None \
            else None
        for call in wait.calls:
            page_id = None if page is None else int(page["id"])
            start = window_values(builder, json.dumps([call.body, call.query],
                                                      ensure_ascii=False), page_id)
            if page_id is not None and start is not None:
                call = paged_call(builder, call, page_id)
            search.append(http_module(builder, call, _due_search_name(builder, wait), y))
        if page is not None and start is not None:
            save = page_save_module(builder, wait, int(page["id"]), search[-1], start, y)
            search = [page, *search, save]
    found = next(module for module in reversed(search) if module["module"] == "http:MakeRequest")
    feeder = builder.module("builtin:BasicFeeder",
                            {"array": search_results(builder, found)},
                            "Each contact that fell due", y)
    builder.item_id = int(feeder["id"])
    # The post-purchase search already named the order (due_order_modules).
    builder.record_ref = builder.record_ref or f"{feeder['id']}.id"
    contact_item_values(builder)
    once: list[dict[str, Any]] = []
    if builder.flow_key == f"{ABANDONED_FLOW}-runner":
        checkout = _rollup_target(builder, "last_checkout_at")
        if checkout is not None:
            prefix = "properties." if builder.crm == "hubspot" else ""
            builder.checkout_ref = f"{builder.item_id}.{prefix}{checkout}"
            once = send_once_modules(builder, wait, checkout, y)
        no_order = _no_order_filter(builder)
        if no_order is not None:
            builder.require(no_order)
    return [*search, feeder, *once, *step_list_modules(builder, steps, y)]


def _due_search_name(builder: Builder, wait: Step) -> str:
    """Return the name of the CRM search that finds the contacts due at ``wait``."""
    found = "whose checkout fell due" if builder.flow_key == f"{ABANDONED_FLOW}-runner" \
        else "that fell due"
    return f"Find the contacts {found} ({wait.title.en.removeprefix('Wait ')})"


def _rollup_target(builder: Builder, name: str) -> str | None:
    """Return the CRM field of the contact rollup ``name``, or None when the spec has none."""
    return next((str(item["target"]) for item in builder.mapping["entities"]["contact"]["rollups"]
                 if item["name"] == name), None)


def _no_order_filter(builder: Builder) -> dict[str, Any] | None:
    """Return the filter that passes a contact with no order since the latest checkout.

    The order flow writes the latest order time on the contact, so an order placed
    after the checkout stops every later step of the abandoned-cart playbook.
    """
    rollups = {item["name"]: str(item["target"])
               for item in builder.mapping["entities"]["contact"]["rollups"]}
    if "last_order_at" not in rollups or "last_checkout_at" not in rollups:
        return None
    prefix = f"{builder.item_id}.properties." if builder.crm == "hubspot" else \
        f"{builder.item_id}."
    ordered = "{{" + prefix + rollups["last_order_at"] + "}}"
    checkout = "{{" + prefix + rollups["last_checkout_at"] + "}}"
    return {"name": "No order since the checkout", "conditions": [
        [{"a": ordered, "o": "text:equal", "b": ""}],
        [{"a": ordered, "o": "date:less", "b": checkout}]]}


def _runner(builder: Builder, flow: Flow, wait: Step, steps: tuple[Step, ...],
            quiet_hours: Mapping[str, Any]) -> dict[str, Any]:
    """Return the scheduled part of a waiting flow: find due contacts, then send.

    A flow whose later steps wait again (the post-purchase series) gets one router
    route per due day, each with its own search. The abandoned-cart runner first
    moves its search mark, and only outside quiet hours (make_schedule).
    """
    groups = _due_groups(wait, steps)

    def body() -> list[dict[str, Any]]:
        marks = mark_modules(builder, quiet_hours, 0) if flow.key == ABANDONED_FLOW else []
        if len(groups) == 1:
            return [*marks, *_due_modules(builder, wait, steps, 0)]
        # Make takes no filter on a router, so the quiet-hours filter sits on the mark save.
        router = builder.module("builtin:BasicRouter", None, "One route per due day", 0)
        start_x = builder.x
        routes = []
        for index, (start, group) in enumerate(groups):
            builder.x = start_x
            routes.append({"flow": _due_modules(builder, start, group, index * Y_STEP)})
        router["routes"] = routes
        return [*marks, router]

    modules = token_router(builder, 0, body) if builder.crm == "zoho" else body()
    return {"name": f"{flow.title.en} ({flow.key}, runner)"[:120],
            "flow": finish(builder, modules),
            "metadata": _metadata(False)}


def files(answers: Answers, plan: Plan, spec: dict[str, dict[str, Any]],
          desired_state: dict[str, Any]) -> dict[str, bytes]:
    """Return the Make blueprints and their schema by project-relative path.

    A project whose CRM is the client's own PostgreSQL database gets no blueprints,
    because Make's PostgreSQL module id is not confirmed; its workflows README says so.
    """
    output = {f"schemas/{SCHEMA_NAME}.schema.json":
              (schemas_dir() / f"{SCHEMA_NAME}.schema.json").read_bytes()}
    if plan.crm == "custom":
        return output
    for stem, blueprint in blueprints(build_flows(answers, plan, spec)).items():
        output[f"{MAKE_DIR}/{stem}.blueprint.json"] = blueprint_text(blueprint).encode("utf-8")
    return output


def blueprint_text(blueprint: dict[str, Any]) -> str:
    """Return a blueprint as the JSON text of its file."""
    return json.dumps(blueprint, ensure_ascii=False, indent=2) + "\n"
