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
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from generator.ipaas.crm_calls import ZOHO_DEFAULT_API_DOMAIN, CrmCall
from generator.ipaas.flows import Flow, FlowSet, Step, build_flows
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
ERROR_HOOK_URL = "https://hook.make.example/ERROR-ALERT-WEBHOOK"


def confirmed_modules() -> dict[str, Any]:
    """Return the confirmed module ids with their versions and sources."""
    modules: dict[str, Any] = load_data("ipaas/make-modules")["modules"]
    return modules


# Transforms written as Make functions. The rest of the spec's transforms have no
# Make equivalent and send the raw value; the workflows README lists them.
TRANSFORM_IML = {
    "identity": "{v}",
    "id_text": "{v}",
    "email_lower": "lower(trim({v}))",
    "money_sar": "formatNumber(parseNumber({v}; \".\"); 2; \".\"; \"\")",
    "iso_datetime": "formatDate({v}; \"YYYY-MM-DDTHH:mm:ssZ\")",
    "riyadh_date": "formatDate({v}; \"YYYY-MM-DD\"; \"Asia/Riyadh\")",
    "deal_name": "\"Order \" + {v}",
    "html_to_text": "stripHTML({v})",
    "list_join": "join({v}; \", \")",
    # NOTE: the regular expressions in phone_e164_sa follow Make's replace() with
    # /pattern/ and $1; check one Saudi number in the first test run.
    "phone_e164_sa": "replace(replace({v}; \"/[^0-9+]/g\"; emptystring); "
                     "\"/^(?:\\+?966|00966|0)?(5[0-9]{{8}})$/\"; \"+966$1\")",
}
RAW_TRANSFORMS = ("split_name", "city_canonical", "utm_channel", "category_map",
                  "refund_total_sar", "event_key", "channel_to_origin")


@dataclass
class _Builder:
    """Numbers modules and lays them out left to right as a blueprint is built."""

    next_id: int = 1
    x: int = 0
    values: dict[str, str] = field(default_factory=dict)
    trigger_id: int = 1
    item_id: int | None = None
    pending_filter: dict[str, Any] | None = None
    flow_key: str = ""

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


def _iml(builder: _Builder, source: str, transform: str, fallbacks: tuple[str, ...]) -> str:
    value = _ref(builder, source)
    for fallback in fallbacks:
        value = f"ifempty({value}; {_ref(builder, fallback)})"
    template = TRANSFORM_IML.get(transform, "{v}")
    return "{{" + template.format(v=value) + "}}"


def _record_values(builder: _Builder, step: Step) -> None:
    for row in step.fields:
        builder.values[row.name] = _iml(builder, row.source, row.transform,
                                        row.fallback_sources)


def _fill(body: Any, values: Mapping[str, str]) -> Any:
    """Replace ``<name>`` placeholders in a call body with the mapped IML values."""
    if isinstance(body, dict):
        return {key: _fill(value, values) for key, value in body.items()}
    if isinstance(body, list):
        return [_fill(item, values) for item in body]
    if isinstance(body, str):
        match = re.fullmatch(r"<([^<>]+)>", body)
        if match and match.group(1) in values:
            return values[match.group(1)]
        if match:
            return _relative_time(match.group(1)) or body
    return body


UNIT_MINUTES = {"minutes": 1, "hours": 60, "days": 1440}


def _relative_time(text: str) -> str | None:
    """Turn ``now - 2 hours - 15 minutes`` or ``today - 7 days`` into a Make date expression."""
    parts = re.findall(r"- (\d+) (minutes|hours|days)", text)
    if not re.match(r"(now|today) ", text) or not parts:
        return None
    minutes = sum(int(amount) * UNIT_MINUTES[unit] for amount, unit in parts)
    # NOTE: HubSpot search compares datetime properties; the ISO text here is
    # assumed to be accepted in place of epoch milliseconds. Check it in the first run.
    return "{{formatDate(addMinutes(now; -" + str(minutes) + '); "YYYY-MM-DDTHH:mm:ssZ")}}'


def _url(call: CrmCall) -> str:
    url = call.url
    for placeholder, value in PLACEHOLDERS.items():
        url = url.replace(placeholder, value)
    return url


def _http(builder: _Builder, call: CrmCall, name: str, y: int = 0) -> dict[str, Any]:
    headers = []
    if call.system in AUTH_HEADERS:
        header, value = AUTH_HEADERS[call.system]
        headers.append({"name": header, "value": value})
    mapper: dict[str, Any] = {
        "url": _url(call), "method": call.method.lower(), "headers": headers,
        "parseResponse": True,
        "queryParameters": [{"name": key, "value": str(_fill(value, builder.values))}
                            for key, value in call.query.items()],
    }
    if call.body is not None and call.method != "GET":
        mapper.update({"contentType": "json", "inputMethod": "jsonString",
                       "jsonStringBodyContent": json.dumps(_fill(call.body, builder.values),
                                                           ensure_ascii=False)})
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
                   "jsonStringBodyContent": json.dumps(
                       {"flow": builder.flow_key, "step": step_name, "error": "{{error.message}}",
                        "event_id": "{{" + f"{builder.trigger_id}.id" + "}}"},
                       ensure_ascii=False)},
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


def _dedupe(builder: _Builder, step: Step, y: int) -> list[dict[str, Any]]:
    key_field = str(step.params["key"]).split(" ", 1)[1]
    key = "{{" + f"{builder.trigger_id}.{key_field.replace(' + ', '}}-{{')}" + "}}"
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
        feeder = builder.module("builtin:BasicFeeder", {"array": "{{" + f"{modules[-1]['id']}"
                                                        ".data.results}}"}, "Each record", y)
        builder.item_id = int(feeder["id"])
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
    return [_http(builder, call, title, y) for call in step.calls if call.method != "FIELD"]


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


def _blueprint(name: str, flow: Flow, steps: tuple[Step, ...],
               instant: bool) -> dict[str, Any]:
    builder = _Builder(flow_key=flow.key)
    modules: list[dict[str, Any]] = []
    if instant:
        modules.append(builder.module("gateway:CustomWebHook", {},
                                      f"Webhook: {', '.join(flow.trigger.topics) or flow.key}"))
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
        result[flow.key] = _blueprint(name, flow, before + contact, instant)
        if wait is not None:
            runner_steps = tuple(step for step in after
                                 if step.kind in ("consent_gate", "discount", "send"))
            result[f"{flow.key}-runner"] = _runner(flow, wait, runner_steps)
    return result


def _runner(flow: Flow, wait: Step, steps: tuple[Step, ...]) -> dict[str, Any]:
    """Return the scheduled part of a waiting flow: find due contacts, then send."""
    builder = _Builder(flow_key=f"{flow.key}-runner")
    search = [_http(builder, call, wait.title.en, 0) for call in wait.calls]
    feeder = builder.module("builtin:BasicFeeder",
                            {"array": "{{" + f"{search[-1]['id']}.data.results" + "}}"},
                            "Each contact that fell due", 0)
    builder.item_id = int(feeder["id"])
    modules = [*search, feeder, *_modules(builder, steps, 0)]
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
