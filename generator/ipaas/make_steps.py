"""The modules of each flow step in a Make blueprint: dedupe, filters, routers and calls."""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

from generator.ipaas import make_iml, make_ticket
from generator.ipaas.crm_calls import HUBSPOT_BASE_URL, CrmCall
from generator.ipaas.flows import Step
from generator.ipaas.make_builder import (
    PROCESSED_STORE,
    Y_STEP,
    Builder,
    both_conditions,
    iterated_list,
    record_values,
    relative_time,
    source_ref,
)
from generator.ipaas.make_consent import consent_modules, settings_module
from generator.ipaas.make_contact import contact_router, is_set
from generator.ipaas.make_http import (
    DEFAULT_WHATSAPP_LANGUAGE,
    PLACEHOLDERS,
    dedupe_pieces,
    http_module,
    key_text,
)
from generator.ipaas.make_post_purchase import is_started_step, started_modules
from generator.ipaas.make_records import associate_modules, upsert_modules
from generator.ipaas.make_zoho_items import sales_order_modules


def _any_set_filter(builder: Builder, paths: list[str], name: str) -> dict[str, Any]:
    return {"name": name, "conditions": [
        [{"a": "{{" + source_ref(builder, path) + "}}", "o": "text:notequal", "b": ""}]
        for path in paths]}


def _status_filter(builder: Builder, rules: list[dict[str, list[Any]]],
                   name: str) -> dict[str, Any]:
    """Return a filter that passes when any rule holds: each field has one of its values."""
    groups: list[list[dict[str, str]]] = [[]]
    for rule in rules:
        rule_groups: list[list[dict[str, str]]] = [[]]
        for field_name, values in rule.items():
            ref = "{{lower(trim(toString(" + source_ref(builder, field_name) + ")))}}"
            rule_groups = [[*group, {"a": ref, "o": "text:equal", "b": str(value).lower()}]
                           for group in rule_groups for value in values if value is not None]
        groups.extend(rule_groups)
    return {"name": name, "conditions": [group for group in groups if group]}


def _dedupe_key(builder: Builder, step: Step) -> str:
    """Return the dedupe key: the event id header, or body fields when it is missing."""
    return key_text(dedupe_pieces(builder, str(step.params["key"])))


def _dedupe(builder: Builder, step: Step, y: int, key: str | None = None) -> list[dict[str, Any]]:
    """Return the check that the event is new; ``make_outcomes`` records it after the writes."""
    key = key or _dedupe_key(builder, step)
    exists = builder.module("datastore:ExistRecord", {"key": key},
                            f"Seen this event? (data store {PROCESSED_STORE})", y)
    builder.require({"name": "Not processed before", "conditions": [
        [{"a": "{{" + f"{exists['id']}.exist" + "}}", "o": "boolean:equal", "b": "false"}]]})
    builder.dedupe_checks.append(
        (int(exists["id"]), key, f"Remember the event (data store {PROCESSED_STORE})"))
    return [exists]


def step_list_modules(builder: Builder, steps: tuple[Step, ...], y: int) -> list[dict[str, Any]]:
    """Return the modules for ``steps``; filters attach to the module after them."""
    modules: list[dict[str, Any]] = []
    for index, step in enumerate(steps):
        if step.kind == "consent_gate" and step.gate is not None and \
                step.params.get("until_step"):
            modules.extend(_gated_router(builder, steps, index, y))
            return modules
        if make_ticket.is_link_step(builder, step):
            modules.extend(_ticket_link_modules(builder, steps, index, y))
            return modules
        routed = _contact_routes(builder, steps, index, y)
        if routed is not None:
            modules.extend(routed)
            return modules
        if _is_zoho_line_step(builder, step):
            if step.kind == "map":
                modules.extend(sales_order_modules(builder, step, y))
            continue
        modules.extend(_step_modules(builder, step, y))
    return modules


def _ticket_link_modules(builder: Builder, steps: tuple[Step, ...], start: int,
                         y: int) -> list[dict[str, Any]]:
    """Return the ticket's link steps from ``start`` as routes, then the steps after them."""
    end = next((index for index in range(start, len(steps))
                if not make_ticket.is_link_step(builder, steps[index])), len(steps))
    rest = steps[end:]

    def later(route_y: int) -> list[dict[str, Any]]:
        return step_list_modules(builder, rest, route_y)

    return make_ticket.link_modules(builder, list(steps[start:end]), y, later)


def _is_zoho_line_step(builder: Builder, step: Step) -> bool:
    """Return whether ``step`` maps, writes or links Zoho line items (see make_zoho_items)."""
    if builder.crm != "zoho":
        return False
    if step.kind == "map":
        return step.key == "map_line_items"
    return step.params.get("entity") == "line_item" or step.params.get("from") == "line_item"


def _contact_routes(builder: Builder, steps: tuple[Step, ...], index: int,
                    y: int) -> list[dict[str, Any]] | None:
    """Return the contact router in place of the email-or-phone filter and the contact upsert.

    Returns None unless ``steps[index]`` is that filter and the contact upsert follows it.
    """
    step = steps[index]
    upsert = steps[index + 1] if index + 1 < len(steps) else None
    if step.kind != "filter" or "any_set" not in step.params or upsert is None or \
            upsert.kind != "upsert" or upsert.params.get("entity") != "contact":
        return None
    return contact_router(builder, upsert, steps[index + 2:], y,
                          lambda rest, route_y: step_list_modules(builder, rest, route_y))


def _gated_router(builder: Builder, steps: tuple[Step, ...], start: int,
                  y: int) -> list[dict[str, Any]]:
    """Return a router whose first route runs the consent-gated steps, the second the rest.

    A Make filter stops every module after it, so the gate sits on a route of its own.
    A contact without consent skips only the steps up to the gate's send, and the
    steps after them run on the second route. Make runs a router's routes in order.
    """
    until = steps[start].params["until_step"]
    end = next((index for index in range(start + 1, len(steps)) if steps[index].key == until),
               len(steps) - 1)
    unit, rest = steps[start + 1:end + 1], steps[end + 1:]
    # A filter still pending applies to every route, and to the code's creation.
    pending, builder.pending_filter = builder.pending_filter, None
    # A later step repeats this step's code, so the store gets the code before the gate,
    # for each contact with consent on any channel that carries the code, as in the n8n
    # workflows. The pending filter (the runner's order check) applies to it too.
    shared = [step for step in unit if step.kind == "discount"] if builder.code_repeated else []
    unit = tuple(step for step in unit if step not in shared)
    if not rest:
        hoisted = _shared_code_modules(builder, shared, pending, y)
        # The code's first module already stops the path on the pending filter.
        builder.pending_filter = None if hoisted else pending
        read = _gate_modules(builder, steps[start], y)
        return [*hoisted, *read, *step_list_modules(builder, unit, y)]
    # With later steps, the code's creation is a route of its own, before the gated one,
    # so a contact without that consent still reaches the later steps.
    router = builder.module("builtin:BasicRouter", None,
                            f"{steps[start].title.en}, then the later steps", y)
    start_x = builder.x
    hoisted = _shared_code_modules(builder, shared, pending, y + 2 * Y_STEP)
    builder.x = start_x
    builder.pending_filter = pending
    gated = [*_gate_modules(builder, steps[start], y), *step_list_modules(builder, unit, y)]
    builder.pending_filter = pending
    builder.x = start_x
    later = step_list_modules(builder, rest, y + Y_STEP)
    builder.pending_filter = None
    router["routes"] = [{"flow": flow} for flow in (hoisted, gated, later) if flow]
    return [router]


def _shared_code_modules(builder: Builder, discounts: list[Step],
                         pending: dict[str, Any] | None, y: int) -> list[dict[str, Any]]:
    """Return the modules that create a shared code, behind the consent on its channels."""
    if not discounts:
        return []
    builder.pending_filter = _code_consent_filter(builder, pending)
    modules = [module for step in discounts for module in _step_modules(builder, step, y)]
    builder.pending_filter = None
    return modules


def _code_consent_filter(builder: Builder, pending: dict[str, Any] | None) -> dict[str, Any]:
    """Return the filter that passes a contact with consent on a channel that carries the code."""
    conditions = [group for gate in builder.code_gates
                  for group in _code_gate_conditions(builder, gate)]
    channels = ", ".join(str(gate.params["channel"]) for gate in builder.code_gates)
    what = "An address" if _reads_hubspot_status(builder) else "Consent"
    name = f"{what} on a channel that carries the code ({channels})"
    if pending is None:
        return {"name": name, "conditions": conditions}
    return {"name": f"{pending['name']}; {name}",
            "conditions": both_conditions(pending, conditions)}


def _step_modules(builder: Builder, step: Step, y: int) -> list[dict[str, Any]]:
    title = step.title.en
    if is_started_step(step):
        return started_modules(builder, step, y)
    if step.kind == "dedupe":
        return _dedupe(builder, step, y)
    if step.kind == "filter" and "any_set" in step.params:
        builder.require(_any_set_filter(builder, list(step.params["any_set"]), title))
        return []
    if step.kind == "filter" and "fulfilled_when" in step.params:
        builder.require(_status_filter(builder, step.params["fulfilled_when"], title))
        return []
    if step.kind == "filter" and step.params.get("absent"):
        # Once per record: the record's key, prefixed with the flow, in the dedupe store.
        record = "{{" + f"{builder.trigger_id}.{step.params['key']}" + "}}"
        return _dedupe(builder, step, y, key=f"{builder.flow_key}:{record}")
    if step.kind == "map":
        if "iterate" in step.params:
            source = iterated_list(step)
            feeder = builder.module("builtin:BasicFeeder",
                                    {"array": "{{" + f"{builder.trigger_id}.{source}" + "}}"},
                                    f"Each of {source}", y)
            builder.item_id = int(feeder["id"])
            record_values(builder, step)
            return [feeder]
        record_values(builder, step)
        return []
    if step.kind == "lookup" and step.params.get("iterate") is True:
        modules = [http_module(builder, call, title, y) for call in step.calls]
        feeder = builder.module("builtin:BasicFeeder",
                                {"array": search_results(builder, modules[-1])}, "Each record", y)
        builder.item_id = int(feeder["id"])
        builder.record_ref = f"{feeder['id']}.id"
        contact_item_values(builder)
        return [*modules, feeder]
    if step.kind == "branch" and step.routes:
        return [_router(builder, step, y)]
    if step.kind == "store" and step.params.get("store") == "failed_items":
        # The key is the failed delivery's dedupe key, so a replay can be matched to it.
        key = "{{" + f"{builder.trigger_id}.event_id" + "}}"
        return [builder.module("datastore:AddRecord",
                               {"key": key, "data": {"flow": "{{1.flow}}", "step": "{{1.step}}",
                                                     "error": "{{1.error}}",
                                                     "record_id": "{{1.record_id}}"},
                                "overwrite": True},
                               "Keep the failed item (data store failed_items)", y)]
    if step.kind == "consent_gate" and step.gate is not None:
        return _gate_modules(builder, step, y)
    if step.kind == "upsert" and any(call.endpoint == "/events/v3/send" for call in step.calls):
        return _event_modules(builder, step, y)
    # The client's own database keeps consent in its own table (SQL calls), so only a
    # CRM gets the per-channel routes.
    if step.kind == "upsert" and "channels" in step.params and builder.crm in ("hubspot", "zoho"):
        return consent_modules(builder, step, y)
    if step.kind == "upsert":
        return upsert_modules(builder, step, y)
    if step.kind == "associate":
        return associate_modules(builder, step, y)
    if step.kind == "discount":
        _discount_values(builder, step)
        if builder.checkout_ref is not None:
            return [_claim_code(builder, y),
                    *(http_module(builder, call, title, y) for call in step.calls
                      if call.method != "FIELD")]
    if step.kind == "alert":
        _alert_values(builder, step)
    if step.kind == "send" and step.params.get("via") == "whatsapp" and \
            step.params.get("discount"):
        return [http_module(builder, _with_copy_code(builder, call), title, y)
                for call in step.calls if call.method != "FIELD"]
    if step.kind == "send" and step.params.get("via") == "sms":
        # The SMS provider's body is the client's choice, so the message is the template key.
        builder.values["message"] = make_iml.literal(str(step.params.get("template")))
        if step.params.get("discount"):
            return [http_module(builder, _with_sms_code(builder, call), title, y)
                    for call in step.calls if call.method != "FIELD"]
    if step.kind == "send" and step.params.get("via") == "crm":
        builder.values["playbook_step"] = make_iml.literal(
            f"{step.params.get('playbook')}:{step.params.get('template')}")
        builder.safe_values.add("playbook_step")
        if builder.crm == "hubspot":
            return [http_module(builder, _update_by_record_id(builder, call), title, y)
                    for call in step.calls if call.method != "FIELD"]
    return [http_module(builder, call, title, y) for call in step.calls if call.method != "FIELD"]


def _update_by_record_id(builder: Builder, call: CrmCall) -> CrmCall:
    """Return a HubSpot contact upsert as an update by the record id the search returned.

    A guest has no store customer id, so an upsert keyed by it fails. Every runner
    that sends a CRM email step iterates contacts found by a HubSpot search, whose
    ``id`` is the contact's record id. So the mark and the discount code are written
    by that id, whether or not the contact has a store customer id.
    """
    if not call.endpoint.endswith("/contacts/batch/upsert") or builder.item_id is None:
        return call
    builder.values["contact record id"] = f"{builder.item_id}.id"
    unique = call.body["inputs"][0]["idProperty"]
    inputs = [{"id": "<contact record id>",
               "properties": {name: value for name, value in item["properties"].items()
                              if name != unique}}
              for item in call.body["inputs"]]
    return replace(call, action=call.action.replace("upsert", "update"),
                   endpoint=call.endpoint.removesuffix("upsert") + "update",
                   body={"inputs": inputs})


def contact_item_values(builder: Builder) -> None:
    """Map the contact fields the send steps need from a contact found by a CRM search.

    HubSpot search results carry the fields under ``properties``; Zoho records carry
    them at the top level.
    """
    prefix = f"{builder.item_id}.properties." if builder.crm == "hubspot" else \
        f"{builder.item_id}."
    fields = {str(item["name"]): str(item["target"])
              for item in builder.mapping["entities"]["contact"]["fields"]}
    unique = next((str(item["target"]) for item in builder.mapping["entities"]["contact"][
        "fields"] if item.get("unique")), fields.get("email", "email"))
    phone = fields.get("phone_e164", fields.get("phone", "phone"))
    builder.values.update({
        "id": prefix + unique,
        "first_name": prefix + fields.get("first_name", "firstname"),
        "phone": prefix + phone,
        "phone without +": f'replace({prefix}{phone}; "+"; "")',
        "ar or en": whatsapp_language(),
    })


def whatsapp_language() -> str:
    """Return the formula of the WhatsApp template language: the placeholder, else the default.

    While the placeholder is left as is (a text with no lower-case letter), the
    formula gives the default, so a scenario imported without editing still sends
    "ar". A language code such as "en" or "en_US" written in its place passes unchanged.
    """
    placeholder = make_iml.literal(PLACEHOLDERS["{whatsapp_language}"])
    default = make_iml.literal(DEFAULT_WHATSAPP_LANGUAGE)
    return f'replace({placeholder}; "/^[^a-z]*$/"; {default})'



def _alert_values(builder: Builder, step: Step) -> None:
    """Set the ids an alert names: from the failure report, or this flow's own record."""
    trigger = builder.trigger_id
    if builder.flow_key == "error-alert":
        builder.values.update({"flow": f"{trigger}.flow", "step": f"{trigger}.step",
                               "error code": f"{trigger}.error",
                               "record ids": f'"record " + {trigger}.record_id + '
                                             f'", event " + {trigger}.event_id'})
        return
    builder.values.update({
        "flow": make_iml.literal(builder.flow_key), "step": make_iml.literal(step.title.en),
        "error code": make_iml.literal(str(step.params.get("reason", "alert"))),
        "record ids": f"{trigger}.ticket.id"})


def _event_modules(builder: Builder, step: Step, y: int) -> list[dict[str, Any]]:
    """Return the HubSpot event send, its name prefixed with the account's from the settings."""
    settings = settings_module(builder, y)
    key = builder.values.get("event_key", "emptystring")
    builder.values["fully qualified event name"] = f"{settings['id']}.event_prefix + {key}"
    return [settings, *(http_module(builder, call, step.title.en, y) for call in step.calls
                        if call.method != "FIELD")]


def _discount_code(builder: Builder) -> str:
    """Return the formula of the contact's discount code for this playbook.

    The code is an MD5 of the contact, the flow and, in the cart runner, the checkout
    (its time on the contact). So a retried run creates no second code, and a later
    step of the playbook repeats the code of its first discount step. The contact's
    next checkout gets a new code.
    """
    record = f"{builder.item_id}.id" if builder.item_id is not None else \
        f"{builder.trigger_id}.id"
    parts = [record, make_iml.literal(builder.flow_key)]
    if builder.checkout_ref is not None:
        parts.insert(1, builder.checkout_ref)
    return f'"RABT-" + upper(substring(md5({" + ".join(parts)}); 0; 8))'


def _claim_code(builder: Builder, y: int) -> dict[str, Any]:
    """Return the module that claims the checkout's code before the store request creates it.

    Two runner runs whose windows overlap can both find one checkout. The first run
    adds the record, and the second run's add fails on the existing key, so its error
    handler ends that bundle before the store request.

    NOTE: that an add with overwrite off fails on an existing key, and that the Ignore
    handler ends only that bundle, is not confirmed in a public export. Check both
    with two manual runs of the imported runner in the first week.
    """
    key = (f"{builder.flow_key}:code:" + "{{" + f"{builder.item_id}.id" + "}}:{{" +
           f"{builder.checkout_ref}" + "}}")
    claim = builder.module("datastore:AddRecord",
                           {"key": key, "overwrite": False,
                            "data": {"code": "{{" + _discount_code(builder) + "}}"}},
                           f"Claim the code for this checkout (data store {PROCESSED_STORE})",
                           y)
    claim["onerror"] = [{"id": builder.next_id, "module": "builtin:Ignore", "version": 1,
                         "parameters": {}, "mapper": None,
                         "metadata": {"designer": {"x": builder.x, "y": y + Y_STEP,
                                                   "name": "Claimed by another run: skip"}}}]
    builder.next_id += 1
    return claim


def _with_copy_code(builder: Builder, call: CrmCall) -> CrmCall:
    """Return the WhatsApp template send with the discount code on its copy-code button.

    The playbook's WhatsApp reminder carries the code that its first discount step
    issued. The Cloud API fills a copy-code button from a ``coupon_code`` parameter.
    """
    _repeat_code(builder)
    body = copy.deepcopy(call.body)
    body["template"]["components"].append(
        {"type": "button", "sub_type": "copy_code", "index": "0",
         "parameters": [{"type": "coupon_code", "coupon_code": "<discount_code>"}]})
    return replace(call, body=body)


def _with_sms_code(builder: Builder, call: CrmCall) -> CrmCall:
    """Return the SMS provider request with the playbook's discount code as ``code``."""
    _repeat_code(builder)
    return replace(call, body={**call.body, "code": "<discount_code>"})


def _repeat_code(builder: Builder) -> None:
    """Map the code that the playbook's first discount step created, for a later send.

    The formula reads the current item: a code mapped on another route reads a module
    that does not run on this one.
    """
    builder.values["discount_code"] = _discount_code(builder)
    builder.safe_values.add("discount_code")


def _discount_values(builder: Builder, step: Step) -> None:
    """Set the discount code and its expiry that the discount and send steps write."""
    code = _discount_code(builder)
    expires = relative_time(f"now + {int(step.params.get('expires_after_hours', 48))} h")
    assert expires is not None
    builder.values.update(code=code, discount_code=code, discount_expires_at=expires)
    builder.safe_values.update({"code", "discount_code", "discount_expires_at"})


def _reads_hubspot_status(builder: Builder) -> bool:
    """Return whether the gates read HubSpot's v4 status: on a contact found by a search."""
    return builder.crm == "hubspot" and builder.item_id is not None


def _subscriber(builder: Builder, channel: str) -> str:
    """Return the formula of a found contact's subscriber: the email, or the phone in E.164."""
    if channel != "email":
        return builder.values["phone"]
    fields = {str(item["name"]): str(item["target"])
              for item in builder.mapping["entities"]["contact"]["fields"]}
    return f"{builder.item_id}.properties.{fields.get('email', 'email')}"


def _gate_modules(builder: Builder, step: Step, y: int) -> list[dict[str, Any]]:
    """Require the step's consent gate on the next module; return the read it needs first.

    A HubSpot contact found by a search carries no consent state: the consent-sync
    records the time of the last change whatever the state, and an opt-out made in
    HubSpot changes no contact field. So the gate reads the channel's current v4
    subscription status just before the send, as the n8n workflows do. The read
    needs the subscriber, and a send on the channel needs it too.
    """
    gate = step.gate
    assert gate is not None
    if not _reads_hubspot_status(builder):
        builder.require(_consent_filter(builder, step))
        return []
    subscriber = _subscriber(builder, gate.channel)
    builder.require({"name": f"{gate.label.en} address known",
                     "conditions": [[is_set(subscriber)]]})
    endpoint = "/communication-preferences/v4/statuses/{{" + subscriber + "}}"
    read = http_module(builder, CrmCall(
        system="hubspot", action=f"read {gate.channel} subscription status", method="GET",
        base_url=HUBSPOT_BASE_URL, endpoint=endpoint, query={"channel": gate.channel.upper()}),
        f"Read the current {gate.channel} subscription status", y)
    builder.require(_consent_filter(builder, step, int(read["id"])))
    return [read]


def _code_gate_conditions(builder: Builder, step: Step) -> list[list[dict[str, Any]]]:
    """Return the conditions under which a shared code is made for one of its channels.

    On a HubSpot contact found by a search the code is made for a contact with an
    address on the channel: the status is read on each send's own route, and a code
    alone sends nothing.
    """
    gate = step.gate
    assert gate is not None
    if not _reads_hubspot_status(builder):
        return list(_consent_filter(builder, step)["conditions"])
    return [[is_set(_subscriber(builder, gate.channel))]]


def _consent_filter(builder: Builder, step: Step, read_id: int | None = None) -> dict[str, Any]:
    """Return the filter that lets a send through only with consent on its channel.

    On a store webhook the payload's consent state is checked. On a Zoho record found
    by a search, the opt-out or opt-in field the consent flow keeps on the contact is
    checked. On a HubSpot one, the status that the read ``read_id`` returned for the
    channel must be SUBSCRIBED. A withdrawn or unknown state never passes.
    """
    gate = step.gate
    assert gate is not None
    name = f"{gate.label.en} consent granted"
    if read_id is not None:
        # NOTE: the v4 status read is taken to return results[] of {channel, status}, as
        # the consent-sync reads it; the shape is not confirmed against the live docs.
        statuses = f'map({read_id}.data.results; "status"; "channel"; "{gate.channel.upper()}")'
        subscribed = "{{" + f'contains({statuses}; "SUBSCRIBED")' + "}}"
        return {"name": name,
                "conditions": [[{"a": subscribed, "o": "boolean:equal", "b": "true"}]]}
    if builder.item_id is not None and gate.crm_field:
        operator, value = gate.crm_condition()
        # HubSpot search results keep the fields under properties; Zoho records at the top.
        where = "" if builder.crm == "zoho" else "properties."
        field_ref = "{{" + f"{builder.item_id}.{where}{gate.crm_field}" + "}}"
        return {"name": name, "conditions": [[{"a": field_ref, "o": f"text:{operator}",
                                               "b": value}]]}
    source = source_ref(builder, gate.source_field)
    return {"name": name,
            "conditions": [[{"a": "{{lower(" + source + ")}}", "o": "text:equal",
                             "b": value.lower()}] for value in gate.granted_values]}


def _router(builder: Builder, step: Step, y: int) -> dict[str, Any]:
    router = builder.module("builtin:BasicRouter", None, step.title.en, y)
    start_x = builder.x
    # A route's failure reports name the records of its own path, never a sibling's.
    record_ref = builder.record_ref
    routes = []
    for index, route in enumerate(step.routes):
        builder.x = start_x
        builder.record_ref = record_ref
        flow = step_list_modules(builder, route.steps, y + index * Y_STEP)
        if flow:
            routes.append({"flow": flow})
    router["routes"] = routes
    return router


def search_results(builder: Builder, search: dict[str, Any]) -> str:
    """Return the list of records in a search response: HubSpot's results, Zoho's data."""
    field_name = "data" if builder.crm == "zoho" else "results"
    return "{{" + f"{search['id']}.data.{field_name}" + "}}"
