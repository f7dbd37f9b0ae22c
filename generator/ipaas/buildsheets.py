"""Template data for the Zapier and Tray build sheets and the workflows README.

Zapier documents no file format that users can import, and Tray publishes none, so
the project gets a step-by-step build sheet per flow. The prose lives in the
templates under ``templates/ipaas``; this module turns the flow model into plain
rows those templates loop over.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from generator.arabic_counts import arabic_count
from generator.ipaas import (
    make,
    make_iml,
    make_placeholders,
    make_schedule,
    make_ticket,
    n8n,
    n8n_code,
    sheet_links,
    tray_steps,
    zapier_steps,
)
from generator.ipaas.crm_calls import CrmCall
from generator.ipaas.flows import (
    ABANDONED_CHECK_EVERY_MINUTES,
    RECONCILE_EVERY_MINUTES,
    FieldRow,
    Flow,
    FlowSet,
    Step,
)
from generator.ipaas.n8n_discount import carrier_gates
from generator.ipaas.n8n_steps import SHOP_SCOPED_FIELDS
from generator.ipaas.sheet_steps import (
    code_text,
    consent_read,
    discount_before_gates,
    step_after_guard,
    zoho_line_step,
)
from generator.ipaas.webhook_signature import signature_check
from generator.model import Answers, Bilingual, Plan

# Orders the Make reconciliation reads in one run: one page, 100 orders, in both the
# Shopify and the WooCommerce queries of crm_calls.
RECONCILE_PAGE_SIZE = 100
# The folder of the workflows README, which names each file relative to itself.
WORKFLOWS_DIR = "workflows"


@dataclass(frozen=True)
class _SheetFacts:
    """The project facts the sheet rows need besides the steps."""

    crm: str
    platform: str
    # The consent gates of the sends that carry a flow's shared discount code.
    code_gates: tuple[Step, ...]
    # The contact's discount-code field and its expiry field.
    code_fields: tuple[str | None, str | None]
    # The integration spec's field map, for the Zoho link requests.
    mapping: Mapping[str, Any]


def _step_rows(steps: tuple[Step, ...], depth: int, path: Bilingual, facts: _SheetFacts,
               code_in_run: bool = False) -> list[dict[str, Any]]:
    crm = facts.crm
    steps = discount_before_gates(steps)
    rows: list[dict[str, Any]] = []
    for index, step in enumerate(steps):
        code_in_run = code_in_run or step.kind == "discount"
        if sheet_links.linked_in_body(steps, index, crm):
            continue
        zapier = zapier_steps.zapier_actions(step, crm, step_after_guard(steps, index, crm))
        if _creates_shared_code(steps, index) and facts.code_gates:
            zapier = [zapier_steps.shared_code_gate(list(facts.code_gates), steps[index + 1]),
                      *zapier]
        code = code_text(step, code_in_run, facts.code_fields, crm)
        calls = [_call_row(call) for call in step.calls]
        later = step_after_guard(steps, index, crm)
        # The sheets' steps for Zoho line items name their own requests (one sales order
        # per order), so the flow model's line-item upsert call is not listed for them.
        sheet_calls = [] if zoho_line_step(step, crm) else calls
        # A wait's calls are the Make runner's due-record search, not part of the delay.
        # Zapier waits with Delay by Zapier alone; Tray needs the search only when the
        # wait is longer than its Delay allows, so its sheet names it as that search.
        due_calls = sheet_calls if step.kind == "wait" else []
        if step.kind == "wait":
            sheet_calls = []
        code = _with_links(code, steps, index, facts)
        if sheet_links.is_field_link(step, crm):
            requests, *link_text = sheet_links.link_requests(step, facts.mapping)
            sheet_calls = [_call_row(call) for call in requests]
            code = _joined(code, (link_text[0], link_text[1]))
        elif sheet_links.needs_search(steps, index, crm):
            found, *search_text = sheet_links.hubspot_search(step, facts.mapping)
            sheet_calls = [_call_row(call) for call in found] + sheet_calls
            code = _joined(code, (search_text[0], search_text[1]))
        if any(_is_status_write(call) for call in step.calls):
            code = _joined(code, HUBSPOT_STATUS_CHECK)
        rows.append({
            "key": step.key, "kind": step.kind, "depth": depth, "path": path.en,
            "path_ar": path.ar,
            "title_en": step.title.en, "title_ar": step.title.ar,
            "zapier": zapier,
            "tray": tray_steps.tray_actions(step, crm, later),
            "params": _params_text(step),
            "calls": calls,
            "zapier_calls": sheet_calls,
            "tray_calls": sheet_calls,
            "due_calls": due_calls,
            "code_en": code[0] if code else None,
            "code_ar": code[1] if code else None,
            "gate": None if step.gate is None else _gate_row(step, crm),
        })
        for route in step.routes:
            rows.extend(_step_rows(route.steps, depth + 1, route.label, facts, code_in_run))
    return rows


def _gate_row(step: Step, crm: str) -> dict[str, Any]:
    """Return a consent gate's facts for the sheets: the CRM read and its granted values.

    The gate tests the contact's current consent in the CRM, never the store
    webhook's field, so an opt-out made during a wait or in the CRM stops the send.
    """
    assert step.gate is not None
    read = consent_read(step, crm)
    return {"channel": step.gate.channel, "field": read["field"], "granted": read["granted"],
            "request": read["request"], "crm_status": step.gate.crm_status}


# The check before each HubSpot subscription status write: an opt-out recorded on
# either side wins, so a store opt-in never re-subscribes a HubSpot opt-out.
HUBSPOT_STATUS_CHECK = (
    "Before each subscription status request, read the contact's current status with "
    "`GET https://api.hubapi.com/communication-preferences/v4/statuses/{subscriber_id}"
    "?channel=` and the channel (`EMAIL`, `SMS` or `WHATSAPP`), then add a filter that skips "
    "the status request when the store sent an opt-in and HubSpot returns `NOT_SUBSCRIBED` "
    "for that channel: an opt-out recorded on either side wins. A store opt-out is always "
    "sent. Unconfirmed: the response is read as `results[]` with `channel` and `status`.",
    "قبل كل طلب لحالة الاشتراك، اقرأ حالة جهة الاتصال الحالية بالطلب "
    "`GET https://api.hubapi.com/communication-preferences/v4/statuses/{subscriber_id}"
    "?channel=` مع القناة (`EMAIL` أو `SMS` أو `WHATSAPP`)، ثم أضف عامل تصفية يتخطى طلب "
    "الحالة إذا أرسل المتجر موافقة وأعاد HubSpot القيمة `NOT_SUBSCRIBED` لتلك القناة، لأن "
    "إلغاء الاشتراك يُعتمد أينما سُجّل. أما إلغاء الاشتراك القادم من المتجر فيُرسل دائمًا. "
    "غير مؤكد: تُقرأ الاستجابة على أنها `results[]` تحوي `channel` و`status`.")


def _is_status_write(call: CrmCall) -> bool:
    return (call.system == "hubspot" and call.method == "POST"
            and "communication-preferences" in call.endpoint)


def _call_row(call: CrmCall) -> dict[str, Any]:
    return {"method": call.method, "url": call.url, "batch_limit": call.batch_limit,
            "note": call.note}


def _joined(first: tuple[str, str] | None,
            second: tuple[str, str] | None) -> tuple[str, str] | None:
    """Return two texts in both languages as one, either of them possibly missing."""
    if first is None or second is None:
        return first or second
    return f"{first[0]} {second[0]}", f"{first[1]} {second[1]}"


def _with_links(code: tuple[str, str] | None, steps: tuple[Step, ...], index: int,
                facts: _SheetFacts) -> tuple[str, str] | None:
    """Return the row's closing text with the lookup fields its Zoho upsert body sets."""
    return _joined(code, sheet_links.body_links(steps, index, facts.crm))


def _creates_shared_code(steps: tuple[Step, ...], index: int) -> bool:
    """Return whether ``steps[index]`` is a discount that ``discount_before_gates`` moved.

    Such a discount sits right before the consent gate of its own send, because a
    later send repeats its code.
    """
    following = steps[index + 1] if index + 1 < len(steps) else None
    return steps[index].kind == "discount" and following is not None and \
        following.kind == "consent_gate" and bool(following.params.get("until_step"))


def _params_text(step: Step) -> str:
    """Return the step's main parameters as one short line for a table cell."""
    keep = ("key", "store", "ttl_days", "amount", "unit", "min", "max", "channel", "via",
            "template", "template_category", "percent", "expires_after_hours", "any_set",
            "iterate", "alert_at_percent", "to")
    parts = [f"{name}={step.params[name]}" for name in keep
             if name in step.params and step.params[name] not in (None, "", [])]
    return ", ".join(parts)


def _number_statements(rows: list[dict[str, Any]], flow: Flow) -> list[dict[str, Any]]:
    """Label each SQL call of the rows ``SQL 1``, ``SQL 2`` … and return the statements.

    A statement does not fit a table cell, so the sheets name it in the row and print
    it under the table. Its values are ``$1``, ``$2`` … as in the n8n Postgres nodes,
    each listed with its source field.
    """
    sources = {row.name: row.source for row in flow.field_rows()}
    statements: list[dict[str, Any]] = []
    for row in rows:
        for call in row["calls"]:
            if call["method"] != "SQL":
                continue
            query, names = n8n_code.sql_statement(call["url"])
            call["label"] = f"SQL {len(statements) + 1}"
            statements.append({
                "label": call["label"], "step_en": row["title_en"], "step_ar": row["title_ar"],
                "statement": query,
                "params": [{"number": number, "name": name, "source": sources.get(name)}
                           for number, name in enumerate(names, start=1)]})
    return statements


def _flow_row(flow: Flow, facts: _SheetFacts) -> dict[str, Any]:
    trigger = flow.trigger
    steps = _step_rows(flow.steps, 0, Bilingual("", ""),
                       replace(facts, code_gates=tuple(carrier_gates(flow))))
    return {
        "key": flow.key, "title_en": flow.title.en, "title_ar": flow.title.ar,
        "purpose_en": flow.purpose.en, "purpose_ar": flow.purpose.ar,
        "module": flow.module, "playbook": flow.playbook, "dedupe_key": flow.dedupe_key,
        "trigger": {"kind": trigger.kind, "source": trigger.source,
                    "topics": list(trigger.topics), "every_minutes": trigger.every_minutes,
                    "daily_at": trigger.daily_at, "text_en": trigger.description.en,
                    "text_ar": trigger.description.ar},
        # The Code step that checks the signature of a Catch Raw Hook trigger's request, and
        # its code, which the Zapier sheet prints once for every webhook flow.
        "zapier_signature": zapier_steps.signature_action(trigger.source, facts.platform)
        if trigger.kind == "webhook" else None,
        "signature_check": signature_context(trigger.source, facts.platform)
        if trigger.kind == "webhook" else None,
        # The Tray steps that check the same signature and reply 401 to a bad one.
        "tray_signature": tray_steps.signature_actions(trigger.source, facts.platform)
        if trigger.kind == "webhook" else [],
        "steps": steps,
        "statements": _number_statements(steps, flow),
        "fields": [{"entity": row.entity, "name": row.name, "source": row.source,
                    "fallbacks": list(row.fallback_sources), "target": row.target,
                    "transform": row.transform, "unique": row.unique,
                    # With several shops this field contains "<shop domain>:<store id>".
                    "store_keyed": row.name in SHOP_SCOPED_FIELDS,
                    "description_en": _field_rule(row, facts.mapping).en,
                    "description_ar": _field_rule(row, facts.mapping).ar,
                    "note": row.note, "note_ar": row.note_ar}
                   for row in flow.field_rows()],
    }


def _field_rule(row: FieldRow, mapping: Mapping[str, Any]) -> Bilingual:
    """Return a field's transform description with what the CRM field may receive.

    The channel fields are CRM pick-lists that hold only the field map's listed
    channels, and an unknown city must not clear the contact's city, so the sheets
    say both where the step is built.
    """
    text = row.description
    attribution = mapping.get("attribution") or {}
    if row.transform == "utm_channel" and attribution.get("values"):
        values = [str(value) for value in attribution["values"]]
        other = str(attribution.get("other_value") or "other")
        return Bilingual(
            f"{text.en} Write only one of these values: {', '.join(values)}. Any other "
            f"channel becomes {other}, because the CRM field is a pick-list of these values.",
            f"{text.ar} ولا تكتب إلا إحدى هذه القيم: {'، '.join(values)}. "
            f"وتصبح أي قناة أخرى {other}، "
            "لأن حقل CRM قائمة اختيار بهذه القيم.")
    if row.transform == "city_canonical":
        return Bilingual(
            f"{text.en} When the city is not in the table or is empty, leave this field out "
            "of the request, so the contact's current city is never cleared.",
            f"{text.ar} وإن لم تكن المدينة في الجدول أو كانت فارغة فلا ترسل هذا الحقل في "
            "الطلب، حتى لا تُمحى مدينة جهة الاتصال الحالية.")
    return text


def signature_context(source: str, platform: str) -> dict[str, Any] | None:
    """Return the signature check that each build sheet prints once, or None for no check."""
    check = signature_check(source, platform)
    if check is None:
        return None
    return {"headers": [header for header, _ in check.headers], "code": check.code,
            "tray_code": check.tray_code, "secret_en": check.secret.en,
            "secret_ar": check.secret.ar}


def sheet_context(flow_set: FlowSet) -> list[dict[str, Any]]:
    """Return one row per flow: trigger, steps with their tools, field map and calls."""
    rollups = {str(item["name"]): str(item["target"]) for item in
               flow_set.mapping.get("entities", {}).get("contact", {}).get("rollups", [])}
    facts = _SheetFacts(crm=flow_set.crm, platform=flow_set.platform, code_gates=(),
                        code_fields=(rollups.get("discount_code"),
                                     rollups.get("discount_expires_at")),
                        mapping=flow_set.mapping)
    return [_flow_row(flow, facts) for flow in flow_set.flows]


def make_context(plan: Plan, flow_set: FlowSet) -> dict[str, Any]:
    """Return the facts about this project's Make blueprints that the workflows README lists."""
    windows = make_schedule.quiet_windows_text(flow_set.quiet_hours)
    quiet_hours = {"windows_en": windows.en, "windows_ar": windows.ar,
                   "timezone": str(flow_set.quiet_hours["timezone"]),
                   "tokens": [make_schedule.CLOCK_TOKEN, make_schedule.WEEKDAY_TOKEN],
                   "filter": make_schedule.QUIET_FILTER_NAME}
    if plan.crm == "custom":
        return {"blueprints": [], "modules": [], "raw_transforms": [], "transforms": [],
                "data_stores": [], "fulfilment_store": False, "sla_check": False,
                "quiet_hours": quiet_hours,
                "placeholders": [], "flow_files": _flow_files(flow_set, {}),
                **_runner_interval()}
    blueprints = make.blueprints(flow_set)
    modules = make.confirmed_modules()
    used = sorted({module["module"] for blueprint in blueprints.values()
                   for module in _all_modules(blueprint["flow"])})
    transforms = sorted({row.transform for flow in flow_set.flows for row in flow.field_rows()})
    return {
        "blueprints": [{"file": f"{make.MAKE_DIR}/{stem}.blueprint.json",
                        "name": blueprint["name"], "instant": blueprint["metadata"]["instant"],
                        "modules": len(list(_all_modules(blueprint["flow"])))}
                       for stem, blueprint in blueprints.items()],
        "modules": [{"id": name, **modules[name]} for name in used],
        "raw_transforms": [name for name in transforms if name in make.RAW_TRANSFORMS],
        "transforms": [{"name": name, **make_iml.APPROACHES[name]} for name in transforms
                       if name in make_iml.APPROACHES],
        "data_stores": ["processed_events", "failed_items", "sync_cursors"] + (
            [make.ZOHO_TOKEN_STORE] if plan.crm == "zoho" else []) + (
            [make_ticket.SLA_STORE] if make.SLA_CHECK_STEM in blueprints else []),
        # The scheduled scenario that alerts on tickets past their first-response target.
        "sla_check": make.SLA_CHECK_STEM in blueprints,
        # The post-purchase scenarios keep each started order in playbook_orders.
        "fulfilment_store": f"{make.POST_PURCHASE_FLOW}-runner" in blueprints,
        "quiet_hours": quiet_hours,
        "flow_files": _flow_files(flow_set, blueprints),
        **_runner_interval(),
        "placeholders": make_placeholders.placeholder_rows(
            {stem: make.blueprint_text(blueprint) for stem, blueprint in blueprints.items()}),
    }


def _flow_files(flow_set: FlowSet, blueprints: dict[str, Any]) -> dict[str, list[str]]:
    """Return each flow's workflow files, relative to the workflows folder.

    Every flow has one n8n workflow. It has a Make blueprint only when ``blueprints``
    has one under its key, and a second one for the runner of a flow that waits or
    for the scheduled first-response check of the ticket flow.
    """
    files: dict[str, list[str]] = {}
    for flow in flow_set.flows:
        paths = [f"{n8n.OUTPUT_DIR}/{flow.key}.json"]
        paths += [f"{make.MAKE_DIR}/{stem}.blueprint.json"
                  for stem in (flow.key, f"{flow.key}-runner", f"{flow.key}-sla-check")
                  if stem in blueprints]
        files[flow.key] = [path.removeprefix(f"{WORKFLOWS_DIR}/") for path in paths]
    return files


def _runner_interval() -> dict[str, Any]:
    """Return the runner and reconciliation intervals, from which the budget counts their runs.

    The reconciliation reads one page of ``RECONCILE_PAGE_SIZE`` orders a run, which
    bounds the orders it can read a day.
    """
    return {"runner_every_minutes": ABANDONED_CHECK_EVERY_MINUTES,
            "runner_every_ar": arabic_count(ABANDONED_CHECK_EVERY_MINUTES, "minute"),
            "reconcile_every_minutes": RECONCILE_EVERY_MINUTES,
            "reconcile_every_ar": arabic_count(RECONCILE_EVERY_MINUTES, "minute"),
            "reconcile_orders_per_day":
                RECONCILE_PAGE_SIZE * 24 * 60 // RECONCILE_EVERY_MINUTES}


def _all_modules(flow: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for module in flow:
        found.append(module)
        for route in module.get("routes", []):
            found.extend(_all_modules(route["flow"]))
        found.extend(_all_modules(module.get("onerror", [])))
    return found


def files(answers: Answers, plan: Plan, spec: dict[str, dict[str, Any]],
          desired_state: dict[str, Any]) -> dict[str, bytes]:
    """Return no data files: the build sheets are templates fed by ``sheet_context``."""
    return {}
