"""Make modules that link a support ticket to the contact and deal it names.

A ticket comes from the support inbox, not from the store, so no earlier module of
its scenario wrote the contact or the deal it belongs to. After the ticket's upsert
these modules find the contact by the requester's email or phone and the deal by
the order id the ticket names, as the n8n ticket workflow does (n8n_ticket). Each
found record is linked on a router route of its own, whose filter needs the found
id, so a ticket without a match is still written and its later steps still run.
HubSpot links through the flow's association requests. Zoho links through the
Case's lookup field, written by an update of the Case.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from generator.ipaas import crm_calls, make_iml, make_schedule
from generator.ipaas.crm_calls import (
    HUBSPOT_BASE_URL,
    HUBSPOT_SEARCH_PAGE_SIZE,
    ZOHO_BASE_URL,
    CrmCall,
)
from generator.ipaas.flows import Step
from generator.ipaas.make_builder import Y_STEP, Builder
from generator.ipaas.make_http import http_module, token_router
from generator.ipaas.make_outcomes import finish
from generator.ipaas.n8n_ticket import search_keys

ROUTER_NAME = "Link the ticket to the records found"
# Stands for a missing key in a search, so an empty email or order id matches no record.
NO_MATCH = "-"


def is_link_step(builder: Builder, step: Step) -> bool:
    """Return whether ``step`` links a ticket to a record that these modules search for."""
    return (builder.crm in ("hubspot", "zoho") and step.kind == "associate"
            and step.params.get("from") == "ticket")


def link_modules(builder: Builder, links: list[Step], y: int,
                 rest: Callable[[int], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Return the searches for each linked record, then a router: one route per link, then ``rest``.

    ``rest`` builds the modules of the steps after the links, on the last route.
    """
    searches: list[dict[str, Any]] = []
    routes: list[tuple[Step, str]] = []
    for step in links:
        target = str(step.params.get("to", ""))
        module = _search_module(builder, target, y)
        if module is None:
            continue
        searches.append(module)
        results = "results" if builder.crm == "hubspot" else "data"
        found = f'first(map({module["id"]}.data.{results}; "id"))'
        builder.values[f"{target} id"] = found
        builder.safe_values.add(f"{target} id")
        routes.append((step, found))
    if not routes:
        return rest(y)
    router = builder.module("builtin:BasicRouter", None, ROUTER_NAME, y)
    start_x = builder.x
    flows = []
    for index, (step, found) in enumerate(routes):
        builder.x = start_x
        builder.pending_filter = {"name": f"{step.params.get('to')} found", "conditions": [
            [{"a": "{{" + found + "}}", "o": "text:notequal", "b": ""}]]}
        flows.append({"flow": _link_request(builder, step, y + index * Y_STEP)})
        builder.pending_filter = None
    builder.x = start_x
    later = rest(y + len(routes) * Y_STEP)
    if later or builder.dedupe_checks:
        # The last route always runs: the later steps, or only the event's dedupe key,
        # so a ticket with no record found is remembered as processed too.
        flows.append({"flow": later})
    router["routes"] = flows
    return [*searches, router]


def _search_module(builder: Builder, target: str, y: int) -> dict[str, Any] | None:
    """Return the search for the ticket's ``target`` by the keys the ticket carries."""
    mapping = builder.mapping
    names = {str(item["target"]): str(item["name"])
             for item in mapping["entities"]["ticket"]["fields"]}
    keys = [(crm_field, names[field]) for crm_field, field in search_keys(mapping, "ticket", target)
            if names.get(field) in builder.values]
    if not keys:
        return None
    for _, name in keys:
        # Zoho rejects criteria with an empty value. HubSpot's answer to an empty filter
        # value is not confirmed, so both get a value that matches no record.
        builder.values[f"{name} or no match"] = \
            f'ifempty({builder.values[name]}; "{NO_MATCH}")'
    module_name = str(mapping["entities"][target]["object"])
    title = f"Find the ticket's {target}"
    if builder.crm == "hubspot":
        groups = [{"filters": [{"propertyName": crm_field, "operator": "EQ",
                                "value": f"<{name} or no match>"}]} for crm_field, name in keys]
        call = CrmCall(system="hubspot", action=f"search {module_name}", method="POST",
                       base_url=HUBSPOT_BASE_URL,
                       endpoint=f"/crm/v3/objects/{module_name}/search",
                       body={"filterGroups": groups,
                             "properties": [crm_field for crm_field, _ in keys],
                             "limit": min(10, HUBSPOT_SEARCH_PAGE_SIZE)})
        return http_module(builder, call, title, y)
    # NOTE: Zoho's criteria syntax needs a backslash before "(", ")" and "," in a
    # value. Emails, E.164 phones and store order ids carry none, so none is escaped.
    parts = [f"({crm_field}:equals:<{name} or no match>)" for crm_field, name in keys]
    criteria = parts[0] if len(parts) == 1 else "(" + "or".join(parts) + ")"
    call = CrmCall(system="zoho", action=f"search {module_name}", method="GET",
                   base_url=ZOHO_BASE_URL, endpoint=f"/{module_name}/search",
                   query={"criteria": criteria},
                   note="Zoho answers 204 with no body when nothing matches.")
    return http_module(builder, call, title, y)


def _link_request(builder: Builder, step: Step, y: int) -> list[dict[str, Any]]:
    """Return the request that links the ticket to one found record."""
    if builder.crm == "hubspot":
        return [http_module(builder, call, step.title.en, y) for call in step.calls
                if call.method != "FIELD"]
    target = str(step.params.get("to", ""))
    ticket = builder.mapping["entities"]["ticket"]
    link = next(item for item in ticket["associations"] if item["to"] == target)
    module_name = str(ticket["object"])
    call = CrmCall(system="zoho", action=f"update {module_name}", method="PUT",
                   base_url=ZOHO_BASE_URL,
                   endpoint=f"/{module_name}/" + "{{" + builder.values["ticket id"] + "}}",
                   body={"data": [{str(link["ref"]): {"id": f"<{target} id>"}}]})
    return [http_module(builder, call, step.title.en, y)]


# The data store that keeps, per open ticket, the business minutes counted without
# a first reply and whether the team lead was alerted. No scenario deletes its
# records, so a ticket is alerted on once however long it stays open.
SLA_STORE = "sla_checks"
SLA_CHECK_TIMEZONE = "Asia/Riyadh"
WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _in_business_hours(hours: Mapping[str, Any]) -> str:
    """Return the formula that is true while ``now`` falls in the spec's business hours."""
    zone = str(hours.get("timezone") or SLA_CHECK_TIMEZONE)
    clock = make_schedule.local_clock(zone)
    start = int(str(hours.get("start", "09:00")).replace(":", ""))
    end = int(str(hours.get("end", "17:00")).replace(":", ""))
    days = make_schedule.on_days(list(hours.get("days", WEEKDAYS[:5])), zone)
    return " and ".join(part for part in (days, f"{clock} >= {start}", f"{clock} < {end}")
                        if part)


def alert_minutes(params: Mapping[str, Any], vip: bool) -> dict[str, int]:
    """Return the business minutes after which each channel's ticket alerts, VIP or not."""
    percent = int(params.get("alert_at_percent") or 100)
    vip_percent = int(params.get("vip_percent_of_target") or 100) if vip else 100
    return {str(target["channel"]): int(target["first_response_minutes"]) * vip_percent
            * percent // 10000 for target in params.get("targets", [])}


def _alert_point(params: Mapping[str, Any], channel: str, vip: str | None) -> str:
    """Return the formula of the ticket's alert point in business minutes.

    A channel without a target of its own gets the first (shortest) target, as in
    the n8n workflows. ``vip`` is the formula that is true for a VIP ticket.
    """
    normal = alert_minutes(params, vip=False)
    first = str(next(iter(normal.values()), 0))
    clean = f"lower(trim(ifempty({channel}; emptystring)))"
    table = make_iml.switch_table(clean, {key: str(value) for key, value in normal.items()},
                                  make_iml.literal(first))
    if vip is None:
        return f'parseNumber({table}; ".")'
    reduced = alert_minutes(params, vip=True)
    short = make_iml.switch_table(clean, {key: str(value) for key, value in reduced.items()},
                                  make_iml.literal(str(next(iter(reduced.values()), 0))))
    return f'parseNumber(if({vip}; {short}; {table}); ".")'


def sla_check_blueprint(builder: Builder, step: Step, name: str) -> dict[str, Any]:
    """Return the scheduled scenario that alerts on open tickets past their alert point.

    Every run reads the open tickets without a first reply and counts, per ticket in
    the data store ``sla_checks``, the business minutes it has waited. A ticket whose
    count reaches the alert point of its channel (shorter for a VIP) is alerted on
    once, and its record keeps that, so later runs skip it.

    NOTE: none of the Make functions listed in make-modules.yaml computes a date
    difference, so the count grows by the schedule's interval on each run inside
    business hours, from the first run that finds the ticket. An alert so comes up to
    two intervals after the alert point.
    """
    def body() -> list[dict[str, Any]]:
        return _sla_modules(builder, step)

    modules = token_router(builder, 0, body) if builder.crm == "zoho" else body()
    return {"name": name[:120], "flow": finish(builder, modules),
            "metadata": {"version": 1, "instant": False,
                         "scenario": {"roundtrips": 1, "maxErrors": 3, "autoCommit": True,
                                      "autoCommitTriggerLast": True, "sequential": False,
                                      "confidential": True, "dataloss": False, "dlq": True,
                                      "freshVariables": False},
                         "designer": {"orphans": []}}}


def _open_tickets_call(builder: Builder, fields: Mapping[str, Any]) -> CrmCall:
    """Return the search for the tickets in the open stage that have no first reply."""
    ticket = builder.mapping["entities"]["ticket"]
    module_name = str(ticket["object"])
    stages = make_iml.ticket_stage_table(builder.mapping, builder.crm)
    status = str(stages.get("open") or next(iter(stages.values()), ""))
    stage = str(fields.get("status", {}).get("target", "hs_pipeline_stage"))
    reply = str(fields.get("first_reply_at", {}).get("target", ""))
    if builder.crm == "hubspot":
        filters: list[dict[str, Any]] = [
            {"propertyName": stage, "operator": "EQ", "value": status}]
        if reply:
            filters.append({"propertyName": reply, "operator": "NOT_HAS_PROPERTY"})
        properties = sorted({str(item.get("target", "")) for item in fields.values()} - {""})
        return CrmCall(system="hubspot", action=f"search {module_name}", method="POST",
                       base_url=HUBSPOT_BASE_URL,
                       endpoint=f"/crm/v3/objects/{module_name}/search",
                       body={"filterGroups": [{"filters": filters}], "properties": properties,
                             "limit": HUBSPOT_SEARCH_PAGE_SIZE})
    return CrmCall(system="zoho", action=f"search {module_name}", method="GET",
                   base_url=ZOHO_BASE_URL, endpoint=f"/{module_name}/search",
                   query={"criteria": f"({stage}:equals:{status})",
                          "per_page": str(crm_calls.ZOHO_PAGE_SIZE)},
                   note="Zoho answers 204 with no body when nothing matches.")


def _sla_modules(builder: Builder, step: Step) -> list[dict[str, Any]]:
    """Return the search, the per-ticket count and the routes that alert once."""
    params = step.params
    fields = params.get("fields", {})
    search = http_module(builder, _open_tickets_call(builder, fields),
                         "Find the open tickets without a first reply", 0)
    results = "results" if builder.crm == "hubspot" else "data"
    feeder = builder.module("builtin:BasicFeeder",
                            {"array": "{{" + f"{search['id']}.data.{results}" + "}}"},
                            "Each open ticket", 0)
    item = int(feeder["id"])
    builder.item_id = item
    builder.record_ref = f"{item}.id"
    prefix = f"{item}.properties." if builder.crm == "hubspot" else f"{item}."

    def field(name: str) -> str:
        return prefix + str(fields.get(name, {}).get("target", name))

    ticket_key = f"sla:{{{{ifempty({field('store_ticket_id')}; {item}.id)}}}}"
    builder.pending_filter = {"name": "No first reply yet", "conditions": [
        [{"a": "{{" + field("first_reply_at") + "}}", "o": "text:equal", "b": ""}]]}
    read = builder.module("datastore:GetRecord", {"key": ticket_key, "returnWrapped": False},
                          f"Read the ticket's counted minutes (data store {SLA_STORE})", 0)
    counted = f'parseNumber(ifempty(toString({read["id"]}.minutes); "0"); ".")'
    every = int(params.get("every_minutes") or 15)
    hours = params.get("business_hours") or {}
    # The first run that sees a ticket starts its count at 0.
    minutes = (f'if(ifempty(toString({read["id"]}.minutes); emptystring) = emptystring; 0; '
               f"if({_in_business_hours(hours)}; {counted} + {every}; {counted}))")
    save = builder.module("datastore:AddRecord", {
        "key": ticket_key, "overwrite": True,
        "data": {"minutes": "{{" + minutes + "}}",
                 "alerted": "{{" + f"{read['id']}.alerted" + "}}"}},
        f"Count the ticket's business minutes (data store {SLA_STORE})", 0)
    due = _due_conditions(read, minutes, _alert_point(params, field("channel"), None))
    router = builder.module("builtin:BasicRouter", None, "Alert once past the alert point", 0)
    start_x = builder.x
    routes = []
    vip = params.get("vip")
    if vip:
        routes.append({"flow": _vip_route(builder, step, read, minutes, ticket_key, field)})
        builder.x = start_x
    builder.pending_filter = {"name": "Alert point passed, not alerted yet", "conditions": due}
    routes.append({"flow": _alert_modules(builder, step, ticket_key, minutes, Y_STEP)})
    router["routes"] = routes
    return [search, feeder, read, save, router]


def _due_conditions(read: Mapping[str, Any], minutes: str,
                    point: str) -> list[list[dict[str, str]]]:
    """Return the filter conditions: not alerted yet, and the count reached ``point``."""
    return [[{"a": "{{" + f"{read['id']}.alerted" + "}}", "o": "text:equal", "b": ""},
             {"a": "{{" + f"{minutes} < {point}" + "}}", "o": "boolean:equal", "b": "false"}]]


def _alert_modules(builder: Builder, step: Step, key: str, minutes: str,
                   y: int) -> list[dict[str, Any]]:
    """Return the team lead's alert, then the record that keeps the ticket from alerting again."""
    alert = next((inner for route in step.routes for inner in route.steps
                  if inner.kind == "alert"), None)
    title = alert.title.en if alert is not None else "Alert the team lead"
    builder.values.update({
        "flow": make_iml.literal("ticket-sync"), "step": make_iml.literal(step.title.en),
        "error code": make_iml.literal("first-response target"),
        "record ids": str(builder.record_ref)})
    sent = http_module(builder, crm_calls.alert_call(), title, y)
    mark = builder.module("datastore:AddRecord", {
        "key": key, "overwrite": True,
        "data": {"minutes": "{{" + minutes + "}}", "alerted": "yes"}},
        f"Remember the alert (data store {SLA_STORE})", y)
    return [sent, mark]


def _vip_route(builder: Builder, step: Step, read: Mapping[str, Any], minutes: str, key: str,
               field: Callable[[str], str]) -> list[dict[str, Any]]:
    """Return the route of a ticket past the VIP alert point but not the normal one.

    Only then does the VIP status matter, so only then is the ticket's linked contact
    read; it is VIP when its lifetime value reaches the spec's threshold.
    """
    params = step.params
    vip = params["vip"]
    item = builder.item_id
    normal = _alert_point(params, field("channel"), None)
    short = _alert_point(params, field("channel"), "1 = 1")
    waiting = [*_due_conditions(read, minutes, short)[0],
               {"a": "{{" + f"{minutes} < {normal}" + "}}", "o": "boolean:equal", "b": "true"}]
    modules: list[dict[str, Any]] = []
    if builder.crm == "hubspot":
        builder.pending_filter = {"name": "VIP alert point passed, the normal one not yet",
                                  "conditions": [waiting]}
        associations = CrmCall(system="hubspot", action="read ticket contacts", method="GET",
                               base_url=HUBSPOT_BASE_URL,
                               endpoint="/crm/v4/objects/tickets/{{" + f"{item}.id" + "}}"
                                        "/associations/contacts")
        modules.append(http_module(builder, associations, "Find the ticket's contact", Y_STEP))
        contact = f'first(map({modules[0]["id"]}.data.results; "toObjectId"))'
        builder.pending_filter = {"name": "Contact linked", "conditions": [
            [{"a": "{{" + contact + "}}", "o": "text:notequal", "b": ""}]]}
        read_contact = CrmCall(system="hubspot", action="read contact", method="GET",
                               base_url=HUBSPOT_BASE_URL,
                               endpoint="/crm/v3/objects/contacts/{{" + contact + "}}",
                               query={"properties": str(vip["field"])})
    else:
        link = next((str(item_link["ref"]) for item_link
                     in builder.mapping["entities"]["ticket"].get("associations", [])
                     if item_link["to"] == "contact"), "Contact_Name")
        contact = f"{item}.{link}.id"
        builder.pending_filter = {"name": "VIP alert point passed, the normal one not yet; "
                                          "contact linked", "conditions": [
            [*waiting, {"a": "{{" + contact + "}}", "o": "text:notequal", "b": ""}]]}
        contacts = str(builder.mapping["entities"]["contact"]["object"])
        read_contact = CrmCall(system="zoho", action="read contact", method="GET",
                               base_url=ZOHO_BASE_URL,
                               endpoint=f"/{contacts}/" + "{{" + contact + "}}")
    found = http_module(builder, read_contact, "Read the ticket's contact", Y_STEP)
    modules.append(found)
    value = f"{found['id']}.data.properties.{vip['field']}" if builder.crm == "hubspot" else \
        f'get(first({found["id"]}.data.data); {make_iml.literal(str(vip["field"]))})'
    lifetime = f'parseNumber(ifempty(toString({value}); "0"); ".")'
    builder.pending_filter = {"name": "VIP customer", "conditions": [
        [{"a": "{{" + f"{lifetime} < {float(vip['threshold_sar']):g}" + "}}",
          "o": "boolean:equal", "b": "false"}]]}
    return [*modules, *_alert_modules(builder, step, key, minutes, Y_STEP)]
