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
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from generator.ipaas import make_iml
from generator.ipaas.crm_calls import ZOHO_DEFAULT_API_DOMAIN, CrmCall
from generator.ipaas.flows import FieldRow, Flow, FlowSet, Step, build_flows
from generator.model import Answers, Plan
from generator.resources import load_data, schemas_dir

MAKE_DIR = "workflows/make"
SCHEMA_NAME = "make-blueprint"
# Retries of a failed call before the run is stored as an incomplete execution:
# three attempts 15 minutes apart ride out HubSpot's ten-second limit and short outages.
BREAK_RETRY_COUNT = 3
BREAK_RETRY_INTERVAL_MINUTES = 15
X_STEP = 300
Y_STEP = 300
# Values a user sets in the scenario editor after import; never a real secret.
PLACEHOLDERS = {
    "{api_domain}": ZOHO_DEFAULT_API_DOMAIN,
    "{shop_domain}": "your-store.myshopify.com",
    "{api_version}": "API-VERSION",
    "{store_domain}": "your-store.example",
    "{storefront_api_url}": "https://storefront.example/api",
    "{graph_api_version}": "GRAPH-API-VERSION",
    "{phone_number_id}": "PHONE-NUMBER-ID",
    "{sms_provider_url}": "https://sms-provider.example/send",
    "{alert_webhook_url}": "https://alerts.example/webhook",
    "{subscriber_id}": "{{email}}",
    "{order_sync_webhook_url}": "https://hook.make.example/ORDER-SYNC-WEBHOOK",
}
AUTH_HEADERS = {
    "hubspot": ("Authorization", "Bearer HUBSPOT-PRIVATE-APP-TOKEN"),
    "zoho": ("Authorization", "Zoho-oauthtoken ZOHO-ACCESS-TOKEN"),
    "shopify": ("X-Shopify-Access-Token", "SHOPIFY-ADMIN-API-TOKEN"),
    "woocommerce": ("Authorization", "Basic WOOCOMMERCE-KEY-AND-SECRET"),
    "whatsapp": ("Authorization", "Bearer WHATSAPP-ACCESS-TOKEN"),
}
# Zoho access tokens last an hour. The blueprints cache the token, its expiry and the
# account's api_domain in the data store zoho_oauth, record "access-token". They
# refresh it when less than this margin is left, from the record "client" that the
# user enters once: client id, client secret, refresh token and accounts server.
ZOHO_TOKEN_STORE = "zoho_oauth"
ZOHO_TOKEN_KEY = "access-token"
ZOHO_CLIENT_KEY = "client"
ZOHO_REFRESH_MARGIN_MINUTES = 5
ERROR_HOOK_URL = "https://hook.make.example/ERROR-ALERT-WEBHOOK"


# Body fields that identify one version of a store record, by platform: the dedupe
# key when the webhook did not pass the event id header ("Get request headers" off).
# A redelivery carries the same body, so it still gets the same key.
BODY_EVENT_KEY = {"shopify": ("id", "updated_at"), "woocommerce": ("id", "date_modified_gmt")}


def confirmed_modules() -> dict[str, Any]:
    """Return the confirmed module ids with their versions and sources."""
    modules: dict[str, Any] = load_data("ipaas/make-modules")["modules"]
    return modules


# Transforms that no Make formula of these blueprints computes yet: the mapped
# field receives the store's raw value. The workflows README lists them.
RAW_TRANSFORMS = ("split_name", "utm_channel")
# Transforms whose result is a number, a date or a value from the spec's tables, so
# it needs no JSON escaping (a table value with a double quote is rejected).
JSON_SAFE_TRANSFORMS = frozenset({
    "money_sar", "refund_total_sar", "iso_datetime", "riyadh_date", "status_to_stage",
    "ticket_status_to_stage", "event_key", "channel_to_origin"})


@dataclass
class _Builder:
    """Numbers modules and lays them out left to right as a blueprint is built."""

    next_id: int = 1
    x: int = 0
    values: dict[str, str] = field(default_factory=dict)
    # Names of mapped values that need no JSON escaping (see JSON_SAFE_TRANSFORMS).
    safe_values: set[str] = field(default_factory=set)
    trigger_id: int = 1
    item_id: int | None = None
    pending_filter: dict[str, Any] | None = None
    flow_key: str = ""
    mapping: Mapping[str, Any] = field(default_factory=dict)
    crm: str = ""
    store: str = ""
    # The module that read the cached Zoho access token, once the blueprint has one.
    token_id: int | None = None

    def module(self, module: str, mapper: Any, name: str, y: int = 0,
               parameters: dict[str, Any] | None = None) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "id": self.next_id, "module": module,
            "version": int(confirmed_modules()[module]["version"]),
            "parameters": parameters or {}, "mapper": mapper,
            "metadata": {"designer": {"x": self.x, "y": y, "name": name[:120]}},
        }
        if self.pending_filter is not None:
            entry["filter"] = self.pending_filter
            self.pending_filter = None
        self.next_id += 1
        self.x += X_STEP
        return entry


def _ref(builder: _Builder, path: str) -> str:
    """Return the IML reference of a source path in the trigger or the current item."""
    if "[]." in path and builder.item_id is not None:
        return f"{builder.item_id}.{path.split('[].', 1)[1]}"
    clean = re.sub(r"\[\]$", "", path.replace("[].", "."))
    return f"{builder.trigger_id}.{clean}"


def _iml(builder: _Builder, row: FieldRow) -> str:
    """Return the formula (without braces) of one field row's mapped value."""
    value = _ref(builder, row.source)
    for fallback in row.fallback_sources:
        value = f"ifempty({value}; {_ref(builder, fallback)})"
    if row.transform == "status_to_stage":
        table = builder.mapping["order_stages"]
        return make_iml.stage_rules(table["rules"], make_iml.order_stage_values(table),
                                    lambda name: _ref(builder, name), builder.store)
    if row.transform == "refund_total_sar":
        value = f"{builder.trigger_id}.{row.source}"
    formula = make_iml.transform(row.transform, value, builder.mapping, builder.crm)
    return value if formula is None else formula


def _record_values(builder: _Builder, step: Step) -> None:
    for row in step.fields:
        builder.values[row.name] = _iml(builder, row)
        if row.transform in JSON_SAFE_TRANSFORMS:
            builder.safe_values.add(row.name)


def _fill(body: Any, values: Mapping[str, str], formulas: list[str] | None = None,
          safe: frozenset[str] | set[str] = frozenset()) -> Any:
    """Replace ``<name>`` placeholders in a call body with the mapped values.

    With ``formulas`` (a JSON body), each mapped value becomes a marker that
    ``_json_body`` swaps for its formula after serialising, and the formula escapes
    the value for a JSON string, so a quote, backslash or newline in a customer's
    name cannot break the body. Without it (query parameters), the formula is inline.
    """
    if isinstance(body, dict):
        return {key: _fill(value, values, formulas, safe) for key, value in body.items()}
    if isinstance(body, list):
        return [_fill(item, values, formulas, safe) for item in body]
    if not isinstance(body, str):
        return body
    match = re.fullmatch(r"<([^<>]+)>", body)
    formula = None
    if match and match.group(1) in values:
        formula = values[match.group(1)]
        if formulas is not None and match.group(1) not in safe:
            formula = make_iml.json_text(formula)
    elif match:
        formula = _relative_time(match.group(1))
    if formula is None:
        return body
    if formulas is None:
        return "{{" + formula + "}}"
    formulas.append(formula)
    return f"{FORMULA_MARK}{len(formulas) - 1}{FORMULA_MARK}"


# Marker of a formula's place in a serialised JSON body. Make reads the text between
# {{ and }} unchanged, so a formula must not pass through the JSON serialiser, which
# would escape its quotes.
FORMULA_MARK = "@@rabt-formula@@"


def _json_body(body: Any, values: Mapping[str, str],
               safe: frozenset[str] | set[str] = frozenset()) -> str:
    """Return the request body as JSON text with the formulas of its mapped values in place."""
    formulas: list[str] = []
    text = json.dumps(_fill(body, values, formulas, safe), ensure_ascii=False)
    for index, formula in enumerate(formulas):
        text = text.replace(f"{FORMULA_MARK}{index}{FORMULA_MARK}", "{{" + formula + "}}")
    return text


UNIT_MINUTES = {"minutes": 1, "hours": 60, "days": 1440}


def _relative_time(text: str) -> str | None:
    """Turn ``now - 2 hours - 15 minutes``, ``today - 7 days`` or ``now + 48 h`` into a formula."""
    ahead = re.fullmatch(r"now \+ (\d+) h", text)
    if ahead:
        return f'formatDate(addMinutes(now; {int(ahead.group(1)) * 60}); "YYYY-MM-DDTHH:mm:ssZ")'
    parts = re.findall(r"- (\d+) (minutes|hours|days)", text)
    if not re.match(r"(now|today) ", text) or not parts:
        return None
    minutes = sum(int(amount) * UNIT_MINUTES[unit] for amount, unit in parts)
    # NOTE: HubSpot search compares datetime properties; the ISO text here is
    # assumed to be accepted in place of epoch milliseconds. Check it in the first run.
    return "formatDate(addMinutes(now; -" + str(minutes) + '); "YYYY-MM-DDTHH:mm:ssZ")'


def _url(builder: _Builder, call: CrmCall) -> str:
    url = call.url
    if call.system == "zoho" and builder.token_id is not None:
        domain = f'ifempty({builder.token_id}.api_domain; "{ZOHO_DEFAULT_API_DOMAIN}")'
        url = url.replace("{api_domain}", "{{" + domain + "}}")
    for placeholder, value in PLACEHOLDERS.items():
        url = url.replace(placeholder, value)
    return url


def _auth_headers(builder: _Builder, call: CrmCall) -> list[dict[str, str]]:
    if call.system == "zoho" and builder.token_id is not None:
        return [{"name": "Authorization",
                 "value": "Zoho-oauthtoken {{" + f"{builder.token_id}.access_token" + "}}"}]
    if call.system in AUTH_HEADERS:
        header, value = AUTH_HEADERS[call.system]
        return [{"name": header, "value": value}]
    return []


def _http(builder: _Builder, call: CrmCall, name: str, y: int = 0) -> dict[str, Any]:
    mapper: dict[str, Any] = {
        "url": _url(builder, call), "method": call.method.lower(),
        "headers": _auth_headers(builder, call),
        "parseResponse": True,
        "queryParameters": [{"name": key,
                             "value": str(_fill(value, builder.values))}
                            for key, value in call.query.items()],
    }
    if call.body is not None and call.method != "GET":
        mapper.update({"contentType": "json", "inputMethod": "jsonString",
                       "jsonStringBodyContent": _json_body(call.body, builder.values,
                                                           builder.safe_values)})
    module = builder.module("http:MakeRequest", mapper, name, y,
                            parameters={"authenticationType": "noAuth"})
    module["onerror"] = _error_route(builder, name, y)
    return module


def _error_route(builder: _Builder, step_name: str, y: int) -> list[dict[str, Any]]:
    """Report the failure to the error-alert scenario, then retry through Break."""
    x = builder.x
    report = {
        "id": builder.next_id, "module": "http:MakeRequest", "version": 4,
        "parameters": {"authenticationType": "noAuth"},
        "mapper": {"url": ERROR_HOOK_URL, "method": "post", "headers": [],
                   "contentType": "json", "parseResponse": False, "queryParameters": [],
                   "inputMethod": "jsonString",
                   "jsonStringBodyContent": _json_body(
                       {"flow": builder.flow_key, "step": step_name, "error": "<error>",
                        "event_id": "<event_id>"},
                       {"error": "error.message", "event_id": f"{builder.trigger_id}.id"})},
        "metadata": {"designer": {"x": x, "y": y + Y_STEP, "name": "Report the failure"}},
    }
    retry = {
        "id": builder.next_id + 1, "module": "builtin:Break", "version": 1, "parameters": {},
        "mapper": {"retry": True, "count": BREAK_RETRY_COUNT,
                   "interval": BREAK_RETRY_INTERVAL_MINUTES},
        "metadata": {"designer": {"x": x + X_STEP, "y": y + Y_STEP,
                                  "name": "Retry later"}},
    }
    builder.next_id += 2
    return [report, retry]


def _any_set_filter(builder: _Builder, paths: list[str], name: str) -> dict[str, Any]:
    return {"name": name, "conditions": [
        [{"a": "{{" + _ref(builder, path) + "}}", "o": "text:notequal", "b": ""}]
        for path in paths]}


def _dedupe_key(builder: _Builder, step: Step) -> str:
    """Return the dedupe key: the event id header, or body fields when it is missing."""
    source, key_field = str(step.params["key"]).split(" ", 1)
    if source != "header":
        return "{{" + f"{builder.trigger_id}.{key_field.replace(' + ', '}}-{{')}" + "}}"
    header = make_iml.header_value(builder.trigger_id, key_field)
    fields = BODY_EVENT_KEY.get(builder.store, BODY_EVENT_KEY["shopify"])
    body = ' + "-" + '.join(f"{builder.trigger_id}.{name}" for name in fields)
    return "{{" + f"ifempty({header}; {body})" + "}}"


def _dedupe(builder: _Builder, step: Step, y: int) -> list[dict[str, Any]]:
    key = _dedupe_key(builder, step)
    exists = builder.module("datastore:ExistRecord", {"key": key},
                            "Seen this event? (data store processed_events)", y)
    builder.pending_filter = {"name": "Not processed before", "conditions": [
        [{"a": "{{" + f"{exists['id']}.exist" + "}}", "o": "boolean:equal", "b": "false"}]]}
    add = builder.module("datastore:AddRecord",
                         {"key": key, "data": {"processedAt": "{{now}}"}, "overwrite": False},
                         "Remember the event (data store processed_events)", y)
    return [exists, add]


def _modules(builder: _Builder, steps: tuple[Step, ...], y: int) -> list[dict[str, Any]]:
    """Return the modules for ``steps``; filters attach to the module after them."""
    modules: list[dict[str, Any]] = []
    for step in steps:
        modules.extend(_step_modules(builder, step, y))
    return modules


def _step_modules(builder: _Builder, step: Step, y: int) -> list[dict[str, Any]]:
    title = step.title.en
    if step.kind == "dedupe":
        return _dedupe(builder, step, y)
    if step.kind == "filter" and "any_set" in step.params:
        builder.pending_filter = _any_set_filter(builder, list(step.params["any_set"]), title)
        return []
    if step.kind == "map":
        if "iterate" in step.params:
            source = str(step.params["iterate"]).removesuffix("[]")
            feeder = builder.module("builtin:BasicFeeder",
                                    {"array": "{{" + f"{builder.trigger_id}.{source}" + "}}"},
                                    f"Each of {source}", y)
            builder.item_id = int(feeder["id"])
            _record_values(builder, step)
            return [feeder]
        _record_values(builder, step)
        return []
    if step.kind == "lookup" and step.params.get("iterate") is True:
        modules = [_http(builder, call, title, y) for call in step.calls]
        feeder = builder.module("builtin:BasicFeeder",
                                {"array": _results(builder, modules[-1])}, "Each record", y)
        builder.item_id = int(feeder["id"])
        _contact_item_values(builder)
        return [*modules, feeder]
    if step.kind == "branch" and step.routes:
        return [_router(builder, step, y)]
    if step.kind == "store" and step.params.get("store") == "failed_items":
        key = "{{" + f"{builder.trigger_id}.event_id" + "}}"
        return [builder.module("datastore:AddRecord",
                               {"key": key, "data": {"flow": "{{1.flow}}", "step": "{{1.step}}",
                                                     "error": "{{1.error}}"},
                                "overwrite": True},
                               "Keep the failed item (data store failed_items)", y)]
    if step.kind == "consent_gate" and step.gate is not None:
        builder.pending_filter = _consent_filter(builder, step)
        return []
    if step.kind == "discount":
        _discount_values(builder, step)
    if step.kind == "send" and step.params.get("via") == "crm":
        builder.values["playbook_step"] = make_iml.literal(
            f"{step.params.get('playbook')}:{step.params.get('template')}")
        builder.safe_values.add("playbook_step")
    return [_http(builder, call, title, y) for call in step.calls if call.method != "FIELD"]


def _contact_item_values(builder: _Builder) -> None:
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
        "phone without +": f'replace({prefix}{phone}; "+"; "")',
        "ar or en": '"ar"',
    })


def _discount_values(builder: _Builder, step: Step) -> None:
    """Set the discount code and its expiry that the discount and send steps write.

    The code is the same for one contact and playbook on every run (an MD5 of both),
    so a retried run does not create a second code.
    """
    record = f"{builder.item_id}.id" if builder.item_id is not None else \
        f"{builder.trigger_id}.id"
    seed = f'{record} + {make_iml.literal(builder.flow_key)}'
    code = f'"RABT-" + upper(substring(md5({seed}); 0; 8))'
    expires = _relative_time(f"now + {int(step.params.get('expires_after_hours', 48))} h")
    assert expires is not None
    builder.values.update(code=code, discount_code=code, discount_expires_at=expires)
    builder.safe_values.update({"code", "discount_code", "discount_expires_at"})


def _consent_filter(builder: _Builder, step: Step) -> dict[str, Any]:
    """Return the filter that lets a send through only with consent on its channel.

    On a store webhook the payload's consent state is checked; on a CRM record found
    by a search, the consent field the consent flow keeps on the contact.
    """
    gate = step.gate
    assert gate is not None
    name = f"{gate.label.en} consent granted"
    if builder.item_id is not None and gate.crm_field:
        operator, value = gate.crm_condition()
        field_ref = "{{" + f"{builder.item_id}.properties.{gate.crm_field}" + "}}"
        return {"name": name, "conditions": [[{"a": field_ref, "o": f"text:{operator}",
                                               "b": value}]]}
    source = _ref(builder, gate.source_field)
    return {"name": name,
            "conditions": [[{"a": "{{lower(" + source + ")}}", "o": "text:equal",
                             "b": value.lower()}] for value in gate.granted_values]}


def _router(builder: _Builder, step: Step, y: int) -> dict[str, Any]:
    router = builder.module("builtin:BasicRouter", None, step.title.en, y)
    start_x = builder.x
    routes = []
    for index, route in enumerate(step.routes):
        builder.x = start_x
        flow = _modules(builder, route.steps, y + index * Y_STEP)
        if flow:
            routes.append({"flow": flow})
    router["routes"] = routes
    return router


def _metadata(instant: bool) -> dict[str, Any]:
    return {
        "version": 1, "instant": instant,
        "scenario": {"roundtrips": 1, "maxErrors": 3, "autoCommit": True,
                     "autoCommitTriggerLast": True, "sequential": False, "confidential": True,
                     "dataloss": False, "dlq": True, "freshVariables": False},
        "designer": {"orphans": []},
    }


def _new_builder(flow_set: FlowSet, flow_key: str) -> _Builder:
    store = flow_set.platform if flow_set.platform in ("shopify", "woocommerce") else "storefront"
    return _Builder(flow_key=flow_key, mapping=flow_set.mapping, crm=flow_set.crm, store=store)


def _results(builder: _Builder, search: dict[str, Any]) -> str:
    """Return the list of records in a search response: HubSpot's results, Zoho's data."""
    field_name = "data" if builder.crm == "zoho" else "results"
    return "{{" + f"{search['id']}.data.{field_name}" + "}}"


def _calls_zoho(steps: tuple[Step, ...]) -> bool:
    return any(call.system == "zoho" for step in steps for call in _walk_calls(step))


def _walk_calls(step: Step) -> list[CrmCall]:
    calls = list(step.calls)
    for route in step.routes:
        for inner in route.steps:
            calls.extend(_walk_calls(inner))
    return calls


def _token_router(builder: _Builder, y: int,
                  build_rest: Callable[[], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Return the modules that refresh the cached Zoho token when it expires, then run the rest.

    The first route runs only when the token is missing or expires within the margin.
    It reads the client record, requests a new token from the accounts server and
    caches it. The second route, which Make runs after the first, reads the current token
    and continues with the flow's own modules.
    """
    store = f"(data store {ZOHO_TOKEN_STORE})"
    cached = builder.module("datastore:GetRecord",
                            {"key": ZOHO_TOKEN_KEY, "returnWrapped": False},
                            f"Read the cached Zoho token {store}", y)
    router = builder.module("builtin:BasicRouter", None, "Refresh the Zoho token if it expires",
                            y)
    start_x = builder.x
    margin = f"{{{{addMinutes(now; {ZOHO_REFRESH_MARGIN_MINUTES})}}}}"
    builder.pending_filter = {"name": "Token missing or about to expire", "conditions": [
        [{"a": "{{" + f"{cached['id']}.access_token" + "}}", "o": "text:equal", "b": ""}],
        [{"a": "{{" + f"{cached['id']}.expires_at" + "}}", "o": "date:less", "b": margin}]]}
    client = builder.module("datastore:GetRecord",
                            {"key": ZOHO_CLIENT_KEY, "returnWrapped": False},
                            f"Read the Zoho client and refresh token {store}", y + Y_STEP)
    refresh = CrmCall(system="zoho_accounts", action="refresh the access token", method="POST",
                      base_url="{{" + f"{client['id']}.accounts_server" + "}}",
                      endpoint="/oauth/v2/token", query={
                          "grant_type": "refresh_token",
                          "client_id": "{{" + f"{client['id']}.client_id" + "}}",
                          "client_secret": "{{" + f"{client['id']}.client_secret" + "}}",
                          "refresh_token": "{{" + f"{client['id']}.refresh_token" + "}}"})
    request = _http(builder, refresh, "Ask Zoho for a new access token", y + Y_STEP)
    token = f"{request['id']}.data"
    save = builder.module("datastore:AddRecord", {
        "key": ZOHO_TOKEN_KEY, "overwrite": True,
        "data": {"access_token": "{{" + f"{token}.access_token" + "}}",
                 "expires_at": "{{" + f"addSeconds(now; {token}.expires_in)" + "}}",
                 "api_domain": "{{" + f"{token}.api_domain" + "}}"}},
        f"Cache the new token {store}", y + Y_STEP)
    builder.x = start_x
    current = builder.module("datastore:GetRecord",
                             {"key": ZOHO_TOKEN_KEY, "returnWrapped": False},
                             f"Read the current Zoho token {store}", y)
    builder.token_id = int(current["id"])
    router["routes"] = [{"flow": [client, request, save]}, {"flow": [current, *build_rest()]}]
    return [cached, router]


def _blueprint(builder: _Builder, name: str, flow: Flow, steps: tuple[Step, ...],
               instant: bool) -> dict[str, Any]:
    modules: list[dict[str, Any]] = []
    if instant:
        modules.append(builder.module("gateway:CustomWebHook", {},
                                      f"Webhook: {', '.join(flow.trigger.topics) or flow.key}"))
    if builder.crm == "zoho" and _calls_zoho(steps):
        modules.extend(_token_router(builder, 0, lambda: _modules(builder, steps, 0)))
    else:
        modules.extend(_modules(builder, steps, 0))
    return {"name": name[:120], "flow": modules, "metadata": _metadata(instant)}


def _split_at_wait(flow: Flow) -> tuple[tuple[Step, ...], Step | None, tuple[Step, ...]]:
    """Split a flow at its first wait longer than one Make run.

    Returns the steps before the wait, the wait step (None when there is none) and
    the steps of the route that runs when the wait ends without an order.
    """
    for index, step in enumerate(flow.steps):
        if step.kind == "wait" and step.params.get("mode") == "delay":
            after: tuple[Step, ...] = ()
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
        name = f"{flow.title.en} ({flow.key})"
        result[flow.key] = _blueprint(_new_builder(flow_set, flow.key), name, flow,
                                      before + contact, instant)
        if wait is not None:
            runner_steps = tuple(step for step in after
                                 if step.kind in ("consent_gate", "discount", "send"))
            result[f"{flow.key}-runner"] = _runner(
                _new_builder(flow_set, f"{flow.key}-runner"), flow, wait, runner_steps)
    return result


def _runner(builder: _Builder, flow: Flow, wait: Step,
            steps: tuple[Step, ...]) -> dict[str, Any]:
    """Return the scheduled part of a waiting flow: find due contacts, then send."""
    def body() -> list[dict[str, Any]]:
        search = [_http(builder, call, wait.title.en, 0) for call in wait.calls]
        feeder = builder.module("builtin:BasicFeeder", {"array": _results(builder, search[-1])},
                                "Each contact that fell due", 0)
        builder.item_id = int(feeder["id"])
        _contact_item_values(builder)
        return [*search, feeder, *_modules(builder, steps, 0)]

    modules = _token_router(builder, 0, body) if builder.crm == "zoho" else body()
    return {"name": f"{flow.title.en} ({flow.key}, runner)"[:120], "flow": modules,
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
        text = json.dumps(blueprint, ensure_ascii=False, indent=2) + "\n"
        output[f"{MAKE_DIR}/{stem}.blueprint.json"] = text.encode("utf-8")
    return output
