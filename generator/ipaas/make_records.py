"""CRM writes in a Make blueprint: the contact's upsert key and the ids that link records.

A HubSpot contact upsert names one unique property as ``idProperty``. The blueprint
picks the first one with a value, in the spec's order: the store customer id, then
the email, then the phone in E.164 (the unique ``ecom_phone_e164`` property). So a
guest with only a phone is never upserted by an empty email.

Each upsert's response gives the CRM id of the record it wrote. Later association
calls (HubSpot) and lookup fields (Zoho) read those ids from the upsert module.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from generator.ipaas import make_iml
from generator.ipaas.crm_calls import CrmCall
from generator.ipaas.flows import Step
from generator.ipaas.make_builder import Builder
from generator.ipaas.make_http import http_module

# Names of the mapped values that hold the chosen HubSpot contact key and its property.
CONTACT_KEY = "contact key"
CONTACT_KEY_PROPERTY = "contact key property"


def without_values(call: CrmCall, names: Iterable[str]) -> CrmCall:
    """Return ``call`` with every body key whose value is ``<name>`` left out.

    A Zoho upsert also drops the left-out fields from ``duplicate_check_fields``, so
    Zoho never matches records on a field the body does not send.
    """
    marks = {f"<{name}>" for name in names}
    if not marks or not isinstance(call.body, dict):
        return call
    body = copy.deepcopy(call.body)
    dropped: set[str] = set()

    def prune(node: Any) -> None:
        if isinstance(node, dict):
            found = [key for key, value in node.items()
                     if isinstance(value, str) and value in marks]
            for key in found:
                dropped.add(str(key))
                del node[key]
            for value in node.values():
                prune(value)
        elif isinstance(node, list):
            for item in node:
                prune(item)

    prune(body)
    if isinstance(body.get("duplicate_check_fields"), list):
        body["duplicate_check_fields"] = [name for name in body["duplicate_check_fields"]
                                          if name not in dropped]
    return replace(call, body=body)


def _contact_keys(builder: Builder, step: Step,
                  leave_out: frozenset[str] = frozenset()) -> list[tuple[str, str]]:
    """Return ``(property, value name)`` of each unique contact key, in the upsert order.

    A value named in ``leave_out`` is not in the body, so it is never the key.
    """
    contact = builder.mapping["entities"]["contact"]
    by_target = {row.target: row.name for row in step.fields} or {
        str(item["target"]): str(item["name"]) for item in contact["fields"]}
    first = next((str(item["target"]) for item in contact["fields"] if item.get("unique")), None)
    email = next((str(item["target"]) for item in builder.mapping["identity"]["match_order"]
                  if item["key"] == "email"), "email")
    unique = [str(item["target"]) for item in contact["fields"] if item.get("unique")]
    order = list(dict.fromkeys([name for name in (first, email, *unique) if name]))
    return [(target, by_target[target]) for target in order
            if target in by_target and by_target[target] in builder.values
            and by_target[target] not in leave_out]


def _first_set(keys: list[tuple[str, str]], values: dict[str, str], pick: int) -> str:
    """Return a formula that gives item ``pick`` of the first key whose value is not empty."""
    *earlier, last = keys
    formula = make_iml.literal(last[0]) if pick == 0 else values[last[1]]
    for target, name in reversed(earlier):
        chosen = make_iml.literal(target) if pick == 0 else values[name]
        formula = f"if({values[name]} = emptystring; {formula}; {chosen})"
    return formula


def _contact_body(builder: Builder, step: Step, call: CrmCall,
                  leave_out: frozenset[str] = frozenset()) -> CrmCall:
    """Return the HubSpot contact upsert with its id and idProperty chosen per record."""
    keys = _contact_keys(builder, step, leave_out)
    if len(keys) < 2 or not call.endpoint.endswith("/contacts/batch/upsert"):
        return call
    builder.values[CONTACT_KEY_PROPERTY] = _first_set(keys, builder.values, 0)
    builder.values[CONTACT_KEY] = _first_set(keys, builder.values, 1)
    builder.safe_values.add(CONTACT_KEY_PROPERTY)
    body = copy.deepcopy(call.body)
    body["inputs"][0]["id"] = f"<{CONTACT_KEY}>"
    body["inputs"][0]["idProperty"] = f"<{CONTACT_KEY_PROPERTY}>"
    return replace(call, body=body)


def _record_id(builder: Builder, module: dict[str, Any], call: CrmCall) -> str | None:
    """Return the formula of the CRM id that an upsert module's response carries."""
    if call.system == "hubspot" and call.endpoint.endswith("/batch/upsert"):
        return f'first(map({module["id"]}.data.results; "id"))'
    if call.system == "zoho" and call.endpoint.endswith("/upsert"):
        # NOTE: get() with a nested path is read in third-party exported blueprints only.
        return f'get(first({module["id"]}.data.data); "details.id")'
    return None


def _with_lookups(builder: Builder, entity: str, call: CrmCall) -> CrmCall:
    """Return a Zoho upsert whose record also names the records it links to by lookup field."""
    if call.system != "zoho" or not isinstance(call.body, dict):
        return call
    entity_data = builder.mapping["entities"].get(entity, {})
    body = copy.deepcopy(call.body)
    for link in entity_data.get("associations", []):
        name = f"{link['to']} id"
        if link["kind"] == "association" or name not in builder.values:
            continue
        body["data"][0][str(link["ref"])] = {"id": f"<{name}>"}
    return replace(call, body=body)


PIPELINE_MISSING = ("HubSpot pipeline id missing: run rabt crm apply, regenerate the "
                    "project and import this blueprint again")


def _with_pipeline(builder: Builder, entity: str, call: CrmCall) -> CrmCall:
    """Return the HubSpot deal upsert with the order pipeline's id beside the stage.

    HubSpot refuses a deal stage without its pipeline: the response is 207 with an
    error per record. The id comes from ``.rabt/crm-state.json`` once ``rabt crm apply`` has run.
    Without it the request gets a filter that never passes, named for the fix, so the
    run stops before the deal and the event is not remembered as processed.
    """
    pipeline = builder.mapping["order_stages"]["pipeline"]
    field = pipeline.get("field")
    stages = {str(item["target"]) for item
              in builder.mapping["entities"].get(entity, {}).get("fields", [])
              if item.get("transform") == "status_to_stage"}
    inputs = call.body.get("inputs", []) if isinstance(call.body, dict) else []
    if not field or not inputs or not stages & set(inputs[0].get("properties", {})):
        return call
    if pipeline.get("crm_value") is None:
        never = [[{"a": "pipeline id", "o": "text:equal", "b": "not recorded"}]]
        pending = builder.pending_filter
        groups = [[*first, *never[0]] for first in pending["conditions"]] if pending else never
        builder.pending_filter = {"name": PIPELINE_MISSING, "conditions": groups}
        return call
    body = copy.deepcopy(call.body)
    for record in body["inputs"]:
        record["properties"][str(field)] = str(pipeline["crm_value"])
    return replace(call, body=body)


def upsert_modules(builder: Builder, step: Step, y: int,
                   leave_out: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    """Return the upsert requests of a step and remember the ids their responses give.

    The mapped values named in ``leave_out`` are left out of every body, key and all.
    """
    entity = str(step.params.get("entity", ""))
    modules = []
    for call in step.calls:
        if call.method == "FIELD":
            continue
        call = without_values(call, leave_out)
        if entity == "contact" and call.system == "hubspot":
            call = _contact_body(builder, step, call, leave_out)
        call = _with_lookups(builder, entity, call)
        if call.system == "hubspot":
            call = _with_pipeline(builder, entity, call)
        module = http_module(builder, call, step.title.en, y)
        record_id = _record_id(builder, module, call)
        if record_id is not None and entity:
            builder.values[f"{entity} id"] = record_id
            builder.safe_values.add(f"{entity} id")
        modules.append(module)
    return modules


def associate_modules(builder: Builder, step: Step, y: int) -> list[dict[str, Any]]:
    """Return the association requests whose two record ids an earlier upsert gave.

    Zoho and PostgreSQL links are lookup fields in the upsert body, so they send no
    request here. A link without both ids (its upsert is not in this blueprint) is left
    out, never sent with a placeholder.
    """
    names = (f"{step.params.get('from')} id", f"{step.params.get('to')} id")
    if not all(name in builder.values for name in names):
        return []
    return [http_module(builder, call, step.title.en, y) for call in step.calls
            if call.method != "FIELD"]
