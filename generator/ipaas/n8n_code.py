"""JavaScript for the n8n Code nodes, generated from the spec's data.

Every Code node starts with ``const RABT = {...}``: the project's data as JSON (stage
tables, city aliases, attribution channels, event keys, support origins and the Saudi
number patterns). Mapping nodes then add the transforms of ``n8n-transforms.js``
and a short main part written here. Values are embedded with ``json.dumps``, so
quotes, Arabic text and ``</script>``-like strings cannot break the code.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import phonenumbers

from generator.ipaas.flows import FieldRow
from generator.ipaas.webhook_signature import N8N_STANDARD_WEBHOOKS_CHECK
from generator.runtime.channels import EVENT_KEYS, SUPPORT_ORIGINS
from generator.runtime.cities import load_cities
from generator.runtime.stages import DEFAULT_TICKET_STAGES

TRANSFORMS_FILE = Path(__file__).resolve().parent.parent / "data" / "ipaas" / "n8n-transforms.js"
# Names the transforms file defines; a field with any other transform is an error
# at generation time rather than a silently unmapped field.
KNOWN_TRANSFORMS = frozenset({
    "identity", "id_text", "email_lower", "phone_e164_sa", "split_name", "city_canonical",
    "money_sar", "refund_total_sar", "status_to_stage", "ticket_status_to_stage",
    "iso_datetime", "riyadh_date", "sku_or_variant_id", "deal_name", "utm_channel",
    "list_join", "category_map", "html_to_text", "event_key", "channel_to_origin",
    "consent_opt_in", "consent_opt_out",
})
# Reads the output of another node of the same run; a node that did not run
# (its branch had no items) gives no items instead of an error.
OUTPUT_OF = """function outputOf(name) {
  try {
    return $(name).all();
  } catch (error) {
    return [];
  }
}
"""


class UnknownTransformError(ValueError):
    """A field names a transform that the n8n Code nodes do not implement."""


TRANSFORMS_MARKER = "// @transforms"


@cache
def transforms_library() -> str:
    """Return the JavaScript of the helpers and field transforms."""
    return TRANSFORMS_FILE.read_text(encoding="utf-8")


@cache
def helpers_library() -> str:
    """Return the helpers part of the JavaScript only (isEmpty, readPath): it needs no RABT."""
    text = transforms_library()
    return text[:text.index(TRANSFORMS_MARKER)]


def js(value: Any) -> str:
    """Return ``value`` as a JavaScript literal (JSON, non-ASCII kept)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _phone_patterns(region: str = "SA") -> dict[str, str]:
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if metadata is None:
        raise ValueError(f"phonenumbers has no metadata for region {region}")

    def pattern(description: Any) -> str:
        # A pattern that never matches replaces a number type the region lacks.
        return str(description.national_number_pattern) if description else "(?!)"

    return {"mobile": pattern(metadata.mobile), "landline": pattern(metadata.fixed_line),
            "toll_free": pattern(metadata.toll_free), "shared_cost": pattern(metadata.shared_cost)}


@cache
def _city_index() -> dict[str, str]:
    return {key: city.en for key, city in load_cities().items()}


def project_constants(crm: str, platform: str,
                      mapping: Mapping[str, Any]) -> dict[str, Any]:
    """Return the ``RABT`` object of every Code node of one project."""
    ticket_stages = mapping.get("ticket_stages")
    if isinstance(ticket_stages, Mapping):
        tickets: dict[str, Any] = {
            "rules": ticket_stages.get("rules", []),
            "crm_values": {stage["key"]: stage.get("crm_value") or stage["key"]
                           for stage in ticket_stages.get("stages", [])}}
    else:
        tickets = {"rules": DEFAULT_TICKET_STAGES["rules"],
                   "crm_values": DEFAULT_TICKET_STAGES["crm_values"].get(crm, {})}
    store = platform if platform in ("shopify", "woocommerce") else "storefront"
    return {
        "crm": crm,
        "platform": store,
        "attribution": {"values": list(mapping["attribution"]["values"]),
                        "other_value": mapping["attribution"]["other_value"]},
        "order_stages": {"rules": mapping["order_stages"]["rules"],
                         "stages": mapping["order_stages"]["stages"],
                         "pipeline": {
                             "field": mapping["order_stages"]["pipeline"].get("field"),
                             "crm_value": mapping["order_stages"]["pipeline"].get("crm_value")}},
        "ticket_stages": tickets,
        "cities": _city_index(),
        "event_keys": EVENT_KEYS,
        "support_origins": SUPPORT_ORIGINS.get(crm, SUPPORT_ORIGINS["custom"]),
        "category_map": dict(mapping.get("category_map") or {}),
        "phone": _phone_patterns(),
    }


def header(title: str, constants: Mapping[str, Any] | None = None) -> str:
    """Return the opening lines of a Code node: what it does and the project's data."""
    lines = [f"// {title}", "// Generated by Rabt from the integration spec; edit the spec and",
             "// regenerate instead of editing this node."]
    if constants is not None:
        lines.append(f"const RABT = {js(constants)};")
    return "\n".join(lines) + "\n"


def _field_data(row: FieldRow) -> dict[str, Any]:
    if row.transform not in KNOWN_TRANSFORMS:
        raise UnknownTransformError(
            f"field {row.entity}.{row.name} uses transform {row.transform!r}, which the n8n "
            f"Code nodes do not implement; add it to {TRANSFORMS_FILE.name}")
    data: dict[str, Any] = {"name": row.name, "source": row.source, "target": row.target,
                            "transform": row.transform,
                            "fallback_sources": list(row.fallback_sources)}
    if row.granted_values:
        data["granted"] = list(row.granted_values)
    if row.won_only:
        data["won_only"] = True
    return data


def name_fields(rows: Sequence[FieldRow], crm: str) -> dict[str, Any] | None:
    """Return the first and last name targets to split, or None without both."""
    targets = {row.name: row.target for row in rows if row.transform == "split_name"}
    if "first_name" not in targets or "last_name" not in targets:
        return None
    return {"first": targets["first_name"], "last": targets["last_name"],
            "last_required": crm == "zoho"}


def map_code(title: str, constants: Mapping[str, Any], rows: Sequence[FieldRow],
             key_target: str | None, refs: Mapping[str, Sequence[FieldRow]],
             scope: tuple[Sequence[str], str] | None = None) -> str:
    """Return a mapping node's code: one output item per record, with its key and refs.

    Each output item is ``{record, flags, key, refs, ref_keys, payload}``: ``record``
    holds the CRM fields, ``key`` the value of the entity's unique field, ``refs`` the
    first known identity value of each linked record (the order's contact) read from
    the same payload, ``ref_keys`` every known ``[target, value]`` pair of it in
    identity order, and ``payload`` the body itself for the steps after the CRM request.

    ``scope`` is set when the workflows serve several shops: ``(targets, shop)`` where
    ``targets`` are the CRM fields that hold a store id, unique only within one shop,
    and ``shop`` the JavaScript expression of the item's shop. Those values, in the
    record and in the refs, become ``<shop>:<store id>``.
    """
    fields = [_field_data(row) for row in rows]
    scoped = "" if scope is None else f"""
// Store ids repeat across shops, so these fields hold "<shop>:<store id>". Without a
// known shop such a field is left out, so the record links by email or phone instead.
const SCOPED = new Set({js(sorted(scope[0]))});
const shopOf = (item) => {scope[1]};
const scoped = (item, target, value) => {{
  if (!SCOPED.has(target) || isEmpty(value)) return value;
  const shop = shopOf(item);
  return shop ? `${{shop}}:${{value}}` : null;
}};"""
    ref_push = ("if (!isEmpty(value)) refKeys[name].push([target, String(value)]);"
                if scope is None else
                "const keyed = scoped(item, target, value);\n"
                "        if (!isEmpty(keyed)) refKeys[name].push([target, String(keyed)]);")
    scope_record = """
    for (const target of SCOPED) {
      const keyed = scoped(item, target, mapped.record[target]);
      if (isEmpty(keyed)) delete mapped.record[target];
      else mapped.record[target] = keyed;
    }""" if scope else ""
    ref_fields = {name: [_field_data(row) for row in group] for name, group in refs.items()}
    main = f"""
const FIELDS = {js(fields)};
const NAMES = {js(name_fields(rows, str(constants["crm"])))};
const KEY = {js(key_target)};
const REFS = {js(ref_fields)};{scoped}

const output = [];
$input.all().forEach((item, index) => {{
  // A reference read from the record list (a line's product id) has one value per
  // record, in the order mapRecords gives them; any other has one value for all.
  const values = {{}};
  for (const [name, fields] of Object.entries(REFS)) {{
    values[name] = fields.map((field) => [field.target,
      mapRecords(item.json, [{{ ...field, target: 'value' }}], null)
        .map((mapped) => mapped.record.value ?? null)]);
  }}
  mapRecords(item.json, FIELDS, NAMES).forEach((mapped, position) => {{{scope_record}
    const refs = {{}};
    const refKeys = {{}};
    for (const [name, pairs] of Object.entries(values)) {{
      refKeys[name] = [];
      for (const [target, found] of pairs) {{
        const value = found.length === 1 ? found[0] : found[position];
        {ref_push}
      }}
      refs[name] = refKeys[name].length ? refKeys[name][0][1] : null;
    }}
    const key = KEY ? mapped.record[KEY] ?? null : null;
    output.push({{ json: {{ record: mapped.record, flags: mapped.flags, key, refs,
      ref_keys: refKeys, payload: item.json }}, pairedItem: {{ item: index }} }});
  }});
}});
return output;
"""
    return header(title, constants) + transforms_library() + main


# ---------------------------------------------------------------------------
# Deliveries, filters and stores

SHOPIFY_SIGNATURE_CHECK = """// Shopify signs the raw body:
// base64(HMAC-SHA256(app secret, raw body)). This node needs
// NODE_FUNCTION_ALLOW_BUILTIN=crypto and RABT_SHOPIFY_WEBHOOK_SECRET.
const crypto = require('crypto');
const secret = $env.RABT_SHOPIFY_WEBHOOK_SECRET;
if (!secret) {
  throw new Error('RABT_SHOPIFY_WEBHOOK_SECRET is not set: set it to the app secret in n8n');
}
const accepted = [];
for (const [index, item] of $input.all().entries()) {
  const raw = await this.helpers.getBinaryDataBuffer(index, 'data');
  const expected = crypto.createHmac('sha256', secret).update(raw).digest();
  const header = String((item.json.headers || {})['x-shopify-hmac-sha256'] || '');
  const sent = Buffer.from(header, 'base64');
  if (sent.length === expected.length && crypto.timingSafeEqual(sent, expected)) {
    accepted.push(index);
  }
}
"""
HEADER_AUTH_CHECK = """// The Webhook node checked the shared header (Header Auth credential).
const accepted = $input.all().map((item, index) => index);
"""
UNWRAP_MAIN = """const items = $input.all();
return accepted.map((index) => {
  const json = items[index].json;
  const headers = json.headers || {};
  const body = json.body && typeof json.body === 'object' ? json.body : {};
  const eventId = headers['x-shopify-event-id'] || headers['x-wc-webhook-delivery-id'] ||
    body.event_id || null;
  return { json: { ...body, _event_id: eventId }, pairedItem: { item: index } };
});
"""


def unwrap_code(title: str, signing: str | None) -> str:
    """Return the code that checks a generic webhook delivery and keeps its body and event id.

    ``signing`` is ``shopify`` (Shopify's HMAC of the body), ``standard_webhooks`` (a
    headless storefront's Standard Webhooks signature) or None, when the Webhook
    node's Header Auth credential checked the delivery.
    """
    checks = {"shopify": SHOPIFY_SIGNATURE_CHECK,
              "standard_webhooks": N8N_STANDARD_WEBHOOKS_CHECK}
    return header(title) + checks.get(str(signing), HEADER_AUTH_CHECK) + UNWRAP_MAIN


def any_set_code(title: str, fields: Sequence[Mapping[str, str | None]]) -> str:
    """Return the code that keeps items where at least one of ``fields`` has a value.

    Each field is ``{"record": target or None, "payload": path or None}``.
    """
    main = f"""
const FIELDS = {js(list(fields))};
return $input.all().filter((item) => FIELDS.some((field) => {{
  const value = field.record && item.json.record ? item.json.record[field.record]
    : readPath(item.json.payload || item.json, field.payload || '');
  return !isEmpty(value);
}}));
"""
    return header(title) + helpers_library() + main


def status_filter_code(title: str, rules: Sequence[Mapping[str, Sequence[Any]]]) -> str:
    """Return the code that keeps items for which any rule holds.

    A rule holds when each of its fields, read from the payload and compared without
    regard to case, has one of the rule's values (the stage table's conditions).
    """
    main = f"""
const RULES = {js([{name: [str(value).lower() for value in values if value is not None]
                    for name, values in rule.items()} for rule in rules])};
return $input.all().filter((item) => RULES.some((rule) => Object.entries(rule)
  .every(([path, values]) => {{
    const value = readPath(item.json.payload || item.json, path);
    return !isEmpty(value) && values.includes(String(value).trim().toLowerCase());
  }})));
"""
    return header(title) + helpers_library() + main


def store_row_code(title: str, key: str, value: Any, shop: str | None = None) -> str:
    """Return the code that turns each item into a ``{key, value}`` data table row.

    ``shop``, a JavaScript expression of the run's shop, makes a cursor row (value
    ``max updated_at``) that shop's own: its key becomes ``<key>:<shop>``.
    """
    if isinstance(value, Mapping) and len(value) == 1:
        value_rule: dict[str, Any] = {"path": str(next(iter(value.values())))}
    elif value == "order id":
        value_rule = {"path": "id"}
    elif value == "max updated_at":
        value_rule = {"max": "updated_at"}
    elif value == "payload":
        value_rule = {"summary": True}
    else:
        value_rule = {"path": str(value)} if value else {"now": True}
    row_key = "KEY" if shop is None else f"`${{KEY}}:${{{shop}}}`"
    newest_row = f"[{{ json: {{ key: {row_key}, value: String(times[times.length - 1]) }} }}]"
    main = f"""
const KEY = {js(key)};
const VALUE = {js(value_rule)};
const items = $input.all();
const payloadOf = (item) => item.json.payload || item.json;
if (VALUE.max) {{
  const times = items.map((item) => readPath(payloadOf(item), VALUE.max) ||
    readPath(payloadOf(item), 'updatedAt') || readPath(payloadOf(item), 'date_modified_gmt'))
    .filter((time) => !isEmpty(time)).sort();
  return times.length ? {newest_row} : [];
}}
return items.map((item, index) => {{
  const payload = payloadOf(item);
  const key = readPath(payload, KEY) ?? (item.json.execution || {{}}).id;
  let value = new Date().toISOString();
  if (VALUE.path) value = readPath(payload, VALUE.path);
  if (VALUE.summary) value = JSON.stringify(item.json.summary || {{}});
  const text = value === undefined || value === null ? null : String(value);
  return {{ json: {{ key: isEmpty(key) ? null : String(key), value: text }},
    pairedItem: {{ item: index }} }};
}}).filter((item) => item.json.key !== null);
"""
    return header(title) + helpers_library() + main


def dedupe_row_code(title: str, key_expression: str) -> str:
    """Return the code that turns each new event into a ``{key, value}`` claim row.

    The value is the claiming execution's id, which the error workflow matches to
    delete the claims of a failed run.
    """
    return header(title) + f"""
const claimedBy = String($execution.id);
return $input.all().map((item, index) => {{
  const $json = item.json;
  const key = {key_expression};
  return {{ json: {{ key: String(key), value: claimedBy }}, pairedItem: {{ item: index }} }};
}});
"""


def pending_row_code(title: str, flow_key: str, key_expression: str,
                     with_shop: bool = False) -> str:
    """Return the code that keeps each new event as a failed-items row until its writes succeed.

    The row's key is ``<flow>:<store record id>`` (the event key when the body has no
    id) and its value the JSON the reconciliation needs to replay it. ``with_shop``
    adds the delivery's shop, so that only that shop's reconciliation run replays it.
    """
    shop_entry = ", shop: $json.rabt_shop ?? null" if with_shop else ""
    return header(title) + f"""
const FLOW = {js(flow_key)};
const stored = new Date().toISOString();
return $input.all().map((item, index) => {{
  const $json = item.json;
  const eventKey = String({key_expression});
  const recordId = $json.id ?? $json.customer_id ?? null;
  const value = {{ flow: FLOW, record_id: recordId === null ? null : String(recordId),
    event_key: eventKey, stored_at: stored{shop_entry} }};
  return {{ json: {{ key: `${{FLOW}}:${{recordId ?? eventKey}}`, value: JSON.stringify(value) }},
    pairedItem: {{ item: index }} }};
}});
"""


def replay_ids_code(title: str, results_node: str, flow_key: str,
                    shop: str | None = None) -> str:
    """Return the code that adds the record ids left in the failed-items table to a poll's ids.

    ``shop``, a JavaScript expression of the run's shop, skips the rows another shop's
    deliveries left, because this run reads orders from its own shop only.
    """
    other_shop = "" if shop is None else f"""
  if (value.shop && value.shop !== {shop}) continue;"""
    parse_value = ("try { value = JSON.parse(item.json.value || '{}'); } "
                   "catch (error) { value = {}; }")
    return header(title) + f"""
const RESULTS = {js(results_node)};
const FLOW = {js(flow_key)};
const seen = new Set();
const output = [];
const add = (id, updatedAt) => {{
  if (id === null || id === undefined || id === '' || seen.has(String(id))) return;
  seen.add(String(id));
  output.push({{ json: {{ id: String(id), updated_at: updatedAt }} }});
}};
for (const item of $(RESULTS).all()) add(item.json.id, item.json.updated_at);
// Rows of the failed-items table: an event of FLOW whose CRM writes did not finish.
for (const item of $input.all()) {{
  const key = String(item.json.key || '');
  if (!key.startsWith(`${{FLOW}}:`)) continue;
  let value = {{}};
  {parse_value}{other_shop}
  add(value.record_id, null);
}}
return output;
"""


def quiet_hours_code(title: str, params: Mapping[str, Any]) -> str:
    """Return the code that sets ``_resume_at``: now, or the end of the quiet window now is in."""
    windows = [{"days": list(window["days"]), "start": window["start"], "end": window["end"]}
               for window in params.get("windows", [])]
    main = f"""
// Asia/Riyadh is UTC+3 all year; the windows are in Riyadh time and may cross midnight.
const OFFSET_MINUTES = 180;
const WINDOWS = {js(windows)};
const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
const minutes = (text) => Number(text.slice(0, 2)) * 60 + Number(text.slice(3, 5));

function quietEnd(time) {{
  const local = new Date(time.getTime() + OFFSET_MINUTES * 60000);
  const day = DAYS[local.getUTCDay()];
  const yesterday = DAYS[(local.getUTCDay() + 6) % 7];
  const now = local.getUTCHours() * 60 + local.getUTCMinutes();
  for (const window of WINDOWS) {{
    const start = minutes(window.start);
    const end = minutes(window.end);
    const crosses = end <= start;
    let left = null;
    if (!crosses && window.days.includes(day) && now >= start && now < end) left = end - now;
    if (crosses && window.days.includes(day) && now >= start) left = 1440 - now + end;
    if (crosses && window.days.includes(yesterday) && now < end) left = end - now;
    if (left !== null) return new Date(time.getTime() + left * 60000);
  }}
  return null;
}}

return $input.all().map((item, index) => {{
  let resume = new Date();
  for (let step = 0; step < 14; step += 1) {{
    const end = quietEnd(resume);
    if (end === null) break;
    resume = end;
  }}
  return {{ json: {{ ...item.json, _resume_at: resume.toISOString() }},
    pairedItem: {{ item: index }} }};
}});
"""
    return header(title) + main


def due_time_code(title: str, due_after: Mapping[str, Any]) -> str:
    """Return the code that sets ``_resume_at`` to the time a playbook step falls due.

    The step falls due ``amount`` ``unit`` after the event time, read from the first
    non-empty source path of the received payload. A due time already past, or an
    event without a readable time, resumes at once.
    """
    unit_ms = {"minutes": 60000, "hours": 3600000, "days": 86400000}[str(due_after["unit"])]
    main = f"""
const SOURCES = {js(list(due_after["sources"]))};
const AFTER_MS = {int(due_after["amount"]) * unit_ms};
const read = (body, path) => path.split('.').reduce((value, key) =>
  (value === null || value === undefined ? undefined : value[key]), body);

// A webhook run carries one event, so the received payload holds its time.
const payload = $("Receive the payload").first().json;
let eventMs = NaN;
for (const path of SOURCES) {{
  const value = read(payload, path);
  if (value !== null && value !== undefined && value !== '') {{
    // WooCommerce's *_gmt times are UTC but carry no zone, which Date would read as
    // the server's local time.
    const text = String(value);
    const zoned = !path.endsWith('_gmt') || /(Z|[+-]\\d\\d:?\\d\\d)$/.test(text);
    eventMs = new Date(zoned ? text : `${{text}}Z`).getTime();
    break;
  }}
}}
const now = Date.now();
const due = Number.isNaN(eventMs) ? now : Math.max(now, eventMs + AFTER_MS);
return $input.all().map((item, index) => ({{
  json: {{ ...item.json, _resume_at: new Date(due).toISOString() }},
  pairedItem: {{ item: index }} }}));
"""
    return header(title) + main


def filter_value(conditions: Sequence[tuple[str, str, str, Any]],
                 version: int = 2) -> dict[str, Any]:
    """Return a filter parameter value (If, Filter, Switch rules), its conditions joined by and.

    Each condition is ``(left expression, operator type, operation, right value)``.
    """
    items = []
    for left, kind, operation, right in conditions:
        identity = hashlib.sha256(js([left, kind, operation, right]).encode()).hexdigest()
        items.append({"id": str(uuid.UUID(identity[:32])), "leftValue": left, "rightValue": right,
                      "operator": {"type": kind, "operation": operation}})
    return {"options": {"caseSensitive": True, "leftValue": "", "typeValidation": "strict",
                        "version": version},
            "conditions": items, "combinator": "and"}


def route_code(title: str, params: Mapping[str, Any],
               routes: Sequence[tuple[str, Mapping[str, Any]]]) -> str:
    """Return the code that writes ``_route``: the first route whose conditions all hold.

    Known conditions: ``always``; ``<field>: "empty"``; and
    ``business_minutes_open_gte_percent`` (minutes open in Sun-Thu business hours,
    Riyadh time, against the first-response target of the ticket's channel, shortened
    for a VIP). ``params["fields"]`` names the record field and payload path of each
    fact, so the node reads a mapped ticket and a Case read back from the CRM alike.
    """
    main = f"""
const PARAMS = {js(dict(params))};
const ROUTES = {js([{"key": key, "condition": dict(condition)} for key, condition in routes])};
const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];
const minutes = (text) => Number(String(text).slice(0, 2)) * 60 + Number(String(text).slice(3, 5));

// Minutes between two times that fall inside the business hours (Riyadh, UTC+3).
function businessMinutes(from, to) {{
  const hours = PARAMS.business_hours || {{}};
  const days = hours.days || ['sun', 'mon', 'tue', 'wed', 'thu'];
  const start = minutes(hours.start || '09:00');
  const end = minutes(hours.end || '17:00');
  let total = 0;
  for (let time = from.getTime(); time < to.getTime(); time += 60000) {{
    const local = new Date(time + 180 * 60000);
    const now = local.getUTCHours() * 60 + local.getUTCMinutes();
    if (days.includes(DAYS[local.getUTCDay()]) && now >= start && now < end) total += 1;
  }}
  return total;
}}

function targetMinutes(facts) {{
  const channel = String(facts.channel || '').trim().toLowerCase();
  const targets = PARAMS.targets || [];
  // NOTE: a channel without a target of its own gets the first (shortest) target.
  const hit = targets.find((target) => String(target.channel).toLowerCase() === channel) ||
    targets[0];
  const base = hit ? Number(hit.first_response_minutes || hit.minutes || 0) : 0;
  return facts.vip && PARAMS.vip_percent_of_target
    ? base * Number(PARAMS.vip_percent_of_target) / 100 : base;
}}

// The ticket's facts by field name: the mapped record's field (a Case read back from
// the CRM has only those), else the payload's path.
function ticketFacts(json) {{
  const record = json.record || {{}};
  const payload = json.payload || {{}};
  const facts = {{ ...payload, ...record }};
  for (const [name, field] of Object.entries(PARAMS.fields || {{}})) {{
    // The raw channel names the target; the record holds the CRM's origin label.
    const first = name === 'channel' ? readPath(payload, field.source) : record[field.target];
    const second = name === 'channel' ? record[field.target] : readPath(payload, field.source);
    facts[name] = isEmpty(first) ? second : first;
  }}
  facts.vip = json.vip === true;
  return facts;
}}

function holds(condition, facts) {{
  return Object.entries(condition).every(([name, expected]) => {{
    if (name === 'always') return true;
    if (expected === 'empty') return isEmpty(facts[name]);
    if (name === 'business_minutes_open_gte_percent') {{
      // A ticket without an opening time cannot be timed, so it never alerts.
      const opened = new Date(facts.opened_at || facts.created_at || '');
      if (Number.isNaN(opened.getTime())) return false;
      const target = targetMinutes(facts);
      const open = businessMinutes(opened, new Date());
      facts._sla = {{ channel: facts.channel || null, vip: facts.vip,
        opened_at: opened.toISOString(), open_minutes: open, target_minutes: target }};
      return target > 0 && open * 100 >= target * Number(expected || 100);
    }}
    // NOTE: a condition this node does not know never holds; extend holds() for it.
    return false;
  }});
}}

return $input.all().map((item, index) => {{
  const facts = ticketFacts(item.json);
  const route = ROUTES.find((candidate) => holds(candidate.condition, facts));
  return {{ json: {{ ...item.json, _route: route ? route.key : null,
    ...(facts._sla ? {{ _sla: facts._sla }} : {{}}) }}, pairedItem: {{ item: index }} }};
}});
"""
    return header(title) + helpers_library() + main


def failure_summary_code(title: str, keep: Sequence[str], drop: Sequence[str]) -> str:
    """Return the error workflow's code that keeps ids only and builds the alert text."""
    main = f"""
// Keeps: {", ".join(keep)}. Leaves out: {", ".join(drop)}.
// Error messages can quote a record, so emails and phone numbers in them are masked.
const mask = (text) => String(text || '')
  .replace(/[^\\s@]+@[^\\s@]+/g, '[email]').replace(/\\+?\\d[\\d\\s-]{{7,}}\\d/g, '[number]');
return $input.all().map((item, index) => {{
  const execution = item.json.execution || {{}};
  const trigger = item.json.trigger || {{}};
  const workflow = item.json.workflow || {{}};
  const error = execution.error || trigger.error || {{}};
  const summary = {{
    workflow: workflow.name || workflow.id || 'unknown workflow',
    workflow_id: workflow.id || null,
    node: execution.lastNodeExecuted || (error.node || {{}}).name || null,
    error: mask(error.message || error.description || 'unknown error').slice(0, 500),
    execution_id: execution.id || null,
    execution_url: execution.url || null,
  }};
  return {{ json: {{ ...item.json, summary }}, pairedItem: {{ item: index }} }};
}});
"""
    return header(title) + main


def alert_code(title: str, client_name: str) -> str:
    """Return the code that writes the alert email's subject and text from the summary."""
    main = f"""
const CLIENT = {js(client_name)};
return $input.all().map((item, index) => {{
  const summary = item.json.summary || {{}};
  const lines = [
    `Workflow: ${{summary.workflow}}`,
    `Failed node: ${{summary.node || 'unknown'}}`,
    `Error: ${{summary.error}}`,
    `Execution: ${{summary.execution_url ||
      `id ${{summary.execution_id}} (set N8N_EDITOR_BASE_URL for a link)`}}`,
    '',
    'Open the execution, fix the cause, then retry it from the Executions list.',
  ];
  return {{ json: {{ subject: `[${{CLIENT}}] n8n run failed: ${{summary.workflow}}`,
    text: lines.join('\\n') }}, pairedItem: {{ item: index }} }};
}});
"""
    return header(title) + main


def step_rule_code(title: str, kind: str, params: Mapping[str, Any]) -> str:
    """Return a pass-through node that states a step n8n has no dedicated node for."""
    return header(title) + (
        f"// NOTE: a {kind} step without its own node; its rule from the spec is:\n"
        f"const RULE = {js(dict(params))};\n"
        "// The items pass on unchanged; apply RULE here if the flow needs more.\n"
        "return $input.all();\n")


# ---------------------------------------------------------------------------
# Requests

def _identity_targets(mapping: Mapping[str, Any]) -> dict[str, str]:
    return {str(item["key"]): str(item["target"]) for item in mapping["identity"]["match_order"]}


def _entity_unique(mapping: Mapping[str, Any], entity: str) -> str | None:
    for item in mapping["entities"].get(entity, {}).get("fields", []):
        if item.get("unique"):
            return str(item["target"])
    return None


def reference_fields(mapping: Mapping[str, Any], entity: str) -> list[Mapping[str, Any]]:
    """Return the mapping fields that identify a record of ``entity``, first key first.

    These are the entity's unique fields in mapping order (for a contact: the store
    customer id, then the E.164 phone), then for a contact its email field, which
    HubSpot and Zoho treat as unique themselves.
    """
    fields = mapping["entities"].get(entity, {}).get("fields", [])
    chosen = [item for item in fields if item.get("unique")]
    if entity == "contact":
        email = _identity_targets(mapping).get("email")
        chosen += [item for item in fields
                   if item.get("target") == email and item not in chosen][:1]
    return chosen


def _fallback_id_properties(mapping: Mapping[str, Any], entity: str) -> list[str]:
    """Return the HubSpot properties that identify a contact without its store id, in order.

    HubSpot upserts a contact by email, and a contact with a phone and no email by the
    unique ``ecom_phone_e164`` property, so a phone-only customer is still written.
    """
    if entity != "contact":
        return []
    first = _entity_unique(mapping, entity)
    unique = [str(item["target"]) for item in mapping["entities"]["contact"]["fields"]
              if item.get("unique") and item.get("target") and str(item["target"]) != first]
    return list(dict.fromkeys([_identity_targets(mapping)["email"], *unique]))


# Transforms whose text output Zoho must get as a JSON number: Zoho's API rejects a
# string in a currency or decimal field (Amount, Ecom_Refunded_SAR, Unit_Price).
NUMBER_TRANSFORMS = frozenset({"money_sar", "refund_total_sar"})


def call_spec(graph: Any, call: Any, entity: str, target: str | None = None,
              step_channels: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Return the data the batch node of ``call`` needs, with the kind of request it builds.

    ``step_channels`` are the consent step's channels, whose state paths read the body of
    a consent topic (a customer body), where the send gates read an order's customer.
    """
    mapping = graph.project.spec["mapping"]
    endpoint = str(call.endpoint)
    spec: dict[str, Any] = {"limit": call.batch_limit or 1, "entity": entity}
    if call.system == "hubspot" and endpoint.endswith("/batch/upsert"):
        spec.update(kind="hubspot_upsert", id_property=call.body["inputs"][0]["idProperty"],
                    fallback_id_properties=_fallback_id_properties(mapping, entity))
    elif call.system == "hubspot" and "/associations/" in endpoint:
        target = str(target)
        spec.update(kind="hubspot_association", types=call.body["inputs"][0]["types"],
                    source=graph.entity_nodes.get(entity, {}),
                    target=graph.entity_nodes.get(target, {}), target_entity=target,
                    source_id_property=_entity_unique(mapping, entity),
                    target_id_properties=[str(item["target"])
                                          for item in reference_fields(mapping, target)])
    elif call.system == "hubspot" and "/events/" in endpoint:
        spec.update(kind="hubspot_event", limit=1)
    elif call.system == "hubspot" and "communication-preferences" in endpoint:
        gate = graph.project.flows.consent_gates.get(str(call.body["channel"]).lower())
        channels = graph.project.spec["consent"]["channels"]
        extra: list[Any] = next((item["source"].get("extra_fields", []) for item in channels
                      if str(item["channel"]).upper() == str(call.body["channel"]).upper()), [])
        wording = [str(field) for field in extra if "wording" in str(field)]
        source = gate.source_field if gate else None
        wording_field = wording[0] if wording else ""
        step_channel = (step_channels or {}).get(str(call.body["channel"]).lower())
        if source and step_channel and source != step_channel["source"]:
            # The gate reads an order's customer; this body is the customer itself.
            prefix = source.removesuffix(str(step_channel["source"]))
            source, wording_field = (str(step_channel["source"]),
                                     wording_field.removeprefix(prefix))
        spec.update(kind="hubspot_consent", limit=1, channel=call.body["channel"],
                    source_field=source, wording_field=wording_field,
                    granted=list(gate.granted_values) if gate else [],
                    identity=_identity_targets(mapping))
    elif call.system == "zoho":
        links = [{"field": link["ref"], "to": link["to"],
                  "nodes": graph.entity_nodes.get(link["to"], {})}
                 for link in mapping["entities"].get(entity, {}).get("associations", [])
                 if link["kind"] != "association"]
        numbers = sorted({row.target for row in graph.flow.field_rows()
                          if row.entity == entity and row.transform in NUMBER_TRANSFORMS})
        spec.update(kind="zoho_upsert", body=dict(call.body or {}), links=links,
                    numbers=numbers)
    else:
        spec.update(kind="single", body=call.body)
    return spec


BATCH_PRELUDE = """const items = $input.all().filter((item) => item.json && item.json.record);
const chunk = (list, size) => Array.from({ length: Math.ceil(list.length / size) },
  (unused, index) => list.slice(index * size, index * size + size));
const output = [];

// Ids the CRM gave the records of another entity in this run, by their unique key.
function idsByKey(nodes, idProperty) {
  const ids = {};
  const batches = outputOf(nodes.batch || '');
  outputOf(nodes.http || '').forEach((response, index) => {
    const keys = (batches[index] || { json: {} }).json.keys || [];
    for (const result of response.json.results || []) {
      const key = (result.properties || {})[idProperty];
      if (key !== undefined && key !== null) ids[String(key)] = result.id;
    }
    (response.json.data || []).forEach((result, position) => {
      const id = result && result.details ? result.details.id : null;
      const key = keys[position];
      if (id && key !== undefined && key !== null) ids[String(key)] = id;
    });
  });
  return ids;
}

"""
# The main part of a batch node, by the kind of request it builds.
BATCH_BRANCHES: dict[str, str] = {
    "hubspot_upsert": """// HubSpot rejects the whole batch for a stage key that is not a stage id.
// So records whose stage or pipeline id is still missing are not sent: the run
// fails here with their flags, the error workflow alerts the team, and the failed
// items are replayed once the workflows are regenerated with the ids.
const pending = items.filter((item) => (item.json.flags || [])
  .some((flag) => /:(stage_id_pending|pipeline_id_pending)$/.test(flag)));
if (pending.length) {
  const flags = [...new Set(pending.flatMap((item) => item.json.flags)
    .filter((flag) => /_id_pending$/.test(flag)))];
  throw new Error(`${pending.length} ${SPEC.entity} record(s) not sent, because the ` +
    `HubSpot pipeline or stage ids are missing (${flags.join(', ')}): run ` +
    '"rabt crm apply", then regenerate the project with "rabt new --answers ' +
    '.rabt/answers.yaml --no-input --overwrite --output-dir .." and import the ' +
    'workflows again.');
}
// One batch per idProperty, so every input of a request is matched alike.
const groups = {};
let missing = 0;
for (const item of items) {
  const idProperty = [SPEC.id_property, ...SPEC.fallback_id_properties]
    .find((name) => !isEmpty(item.json.record[name]));
  // A record with no unique value cannot be upserted. The contact filters pass only
  // records with an email or a phone, so this is a playbook mark with no identity.
  if (!idProperty) {
    missing += 1;
    continue;
  }
  const group = groups[idProperty] || (groups[idProperty] = { inputs: [], keys: [] });
  group.inputs.push({ id: String(item.json.record[idProperty]), idProperty,
    properties: item.json.record });
  group.keys.push(item.json.key);
}
if (missing) {
  const names = [SPEC.id_property, ...SPEC.fallback_id_properties].join(', ');
  throw new Error(`${missing} ${SPEC.entity} record(s) not sent, because none has a ` +
    `value in ${names}: HubSpot can match a record only by one of these. Check that ` +
    'the contact search and the mapping return these properties.');
}
for (const group of Object.values(groups)) {
  chunk(group.inputs, SPEC.limit).forEach((part, index) => output.push({ json: {
    body: { inputs: part },
    keys: group.keys.slice(index * SPEC.limit, index * SPEC.limit + part.length) } }));
}
""",
    "hubspot_association": """const sources = idsByKey(SPEC.source, SPEC.source_id_property);
// The linked records' ids by each identity property and value, so the link finds the
// contact by whichever key the order carries (customer id, phone or email).
const targets = {};
for (const property of SPEC.target_id_properties) {
  for (const [value, id] of Object.entries(idsByKey(SPEC.target, property))) {
    targets[`${property}=${value}`] = id;
  }
}
const inputs = [];
for (const item of outputOf(SPEC.source.map || '')) {
  const from = sources[String(item.json.key)];
  // A record found by a search (a ticket's contact and deal) comes in link_ids.
  const to = (item.json.link_ids || {})[SPEC.target_entity] ||
    ((item.json.ref_keys || {})[SPEC.target_entity] || [])
      .map(([property, value]) => targets[`${property}=${value}`]).find(Boolean);
  if (from && to) inputs.push({ from: { id: from }, to: { id: to }, types: SPEC.types });
}
chunk(inputs, SPEC.limit).forEach((part) => {
  output.push({ json: { body: { inputs: part } } });
});
""",
    "zoho_upsert": """const linked = SPEC.links.map((link) => ({
  ...link, ids: idsByKey(link.nodes, null) }));
const records = items.map((item) => {
  const record = { ...item.json.record };
  // The money transforms write text with two decimals; Zoho takes numbers there.
  for (const name of SPEC.numbers) {
    const number = isEmpty(record[name]) ? NaN : Number(record[name]);
    if (Number.isFinite(number)) record[name] = number;
  }
  for (const link of linked) {
    // A linked record found by a search (a ticket's contact and deal) comes in
    // link_ids; one written earlier in the run is found by its key.
    const id = (item.json.link_ids || {})[link.to] ||
      link.ids[String((item.json.refs || {})[link.to])];
    if (id) record[link.field] = { id };
  }
  return { record, key: item.json.key };
});
chunk(records, SPEC.limit).forEach((part) => output.push({ json: {
  body: { ...SPEC.body, data: part.map((entry) => entry.record) },
  keys: part.map((entry) => entry.key) } }));
""",
    "hubspot_event": """const prefix = $env.RABT_HUBSPOT_EVENT_PREFIX || '';
for (const item of items) {
  const record = item.json.record;
  const properties = {};
  for (const [name, value] of Object.entries(record)) {
    if (name.startsWith('properties.')) properties[name.slice(11)] = value;
  }
  const eventName = prefix + (record.eventName || record.event_key || '');
  const occurredAt = record.occurredAt || record.occurred_at;
  const body = { eventName, email: record.email, occurredAt, properties };
  output.push({ json: { body } });
}
""",
    "hubspot_consent": """// The status read before this node sent one request per record that
// carries this channel's state; its responses arrive here in the same order.
const requested = outputOf(SPEC.status_request);
const responses = $input.all();
// NOTE: the v4 status read is taken to return results[] of {channel, subscriptionId,
// status, timestamp}, where NOT_SUBSCRIBED is an opt-out and NOT_SPECIFIED no choice
// yet. The shape is not confirmed against the live docs. A failed read has no
// results, so it counts as no opt-out and the store's opt-in is written.
function optedOutInCrm(response) {
  return ((response && response.results) || []).some((result) =>
    (result.status || result.statusState) === 'NOT_SUBSCRIBED' &&
    (!result.channel || result.channel === SPEC.channel) &&
    (!SUBSCRIPTION || result.subscriptionId === undefined || result.subscriptionId === null ||
      String(result.subscriptionId) === String(SUBSCRIPTION)));
}
requested.forEach((item, index) => {
  const payload = item.json.payload || {};
  const state = String(readPath(payload, SPEC.source_field)).toLowerCase();
  const granted = SPEC.granted.map((value) => String(value).toLowerCase()).includes(state);
  // An opt-out recorded on either side wins, so the store's opt-in never re-subscribes
  // a contact who unsubscribed in HubSpot.
  if (granted && optedOutInCrm((responses[index] || { json: {} }).json)) return;
  output.push({ json: { path: item.json.subscriber, body: {
    channel: SPEC.channel, statusState: granted ? 'SUBSCRIBED' : 'NOT_SUBSCRIBED',
    subscriptionId: SUBSCRIPTION || null,
    legalBasis: 'CONSENT_WITH_NOTICE',
    legalBasisExplanation: String(readPath(payload, SPEC.wording_field) || '') } } });
});
""",
    "single": """for (const item of items) {
  output.push({ json: { body: { ...(SPEC.body || {}), record: item.json.record } } });
}
""",
}

def consent_status_request_code(title: str, spec: Mapping[str, Any], source: str) -> str:
    """Return the code that writes one status read per record carrying the channel's state.

    The records come from mapping node ``source``. A record without a subscriber (the
    email, or the phone for SMS and WhatsApp) or without this channel's state in the
    body leaves the channel's status alone, so it gets no read and no write.
    """
    return header(title) + helpers_library() + OUTPUT_OF + f"""
const SPEC = {js(dict(spec))};
const SOURCE = {js(source)};
const output = [];
for (const item of outputOf(SOURCE)) {{
  const record = item.json.record;
  if (!record || !SPEC.source_field) continue;
  const subscriber = SPEC.channel === 'EMAIL' ? record[SPEC.identity.email]
    : record[SPEC.identity.phone];
  const payload = item.json.payload || {{}};
  if (isEmpty(subscriber) || isEmpty(readPath(payload, SPEC.source_field))) continue;
  const encoded = encodeURIComponent(subscriber);
  output.push({{ json: {{ record, payload, subscriber: encoded,
    path: `/communication-preferences/v4/statuses/${{encoded}}?channel=${{SPEC.channel}}` }} }});
}}
return output;
"""


def batch_code(title: str, spec: Mapping[str, Any]) -> str:
    """Return the code that turns mapped items into request bodies of at most ``limit`` records."""
    prelude = f"""
const SPEC = {js(dict(spec))};
""" + BATCH_PRELUDE
    if spec["kind"] == "hubspot_consent":
        # The subscription type id of the channel, set in n8n's environment.
        prelude += f"const SUBSCRIPTION = $env.RABT_HUBSPOT_SUBSCRIPTION_{spec['channel']};\n"
    return header(title) + helpers_library() + OUTPUT_OF + prelude + BATCH_BRANCHES[
        str(spec["kind"])] + "return output;\n"


BATCH_ERRORS_CHECK = """// A HubSpot batch with some failed records returns 207 Multi-Status, which
// the HTTP Request node passes as a success. Any failed record stops the run here, so
// the event stays in failed_items and the error workflow releases its dedupe claim and
// alerts the team; the reconciliation then replays the whole event.
const failed = [];
for (const item of $input.all()) {
  const response = item.json || {};
  const errors = Array.isArray(response.errors) ? response.errors : [];
  const count = Number(response.numErrors) || errors.length;
  if (count > 0) failed.push({ count, categories: errors.map((error) => error.category) });
}
if (failed.length) {
  const total = failed.reduce((sum, entry) => sum + entry.count, 0);
  const categories = [...new Set(failed.flatMap((entry) => entry.categories))]
    .filter(Boolean);
  throw new Error(`${total} HubSpot record(s) failed in ${SPEC.step} ` +
    `(${categories.join(', ') || 'no category'}); the event is kept for replay.`);
}
return $input.all();
"""


def batch_errors_code(title: str, step: str) -> str:
    """Return the code that stops the run when a HubSpot batch response lists failed records.

    The error text gives the count and HubSpot's error categories only, never the
    records' values, which may hold emails or phones.
    """
    return header(title) + f"const SPEC = {js({'step': step})};\n" + BATCH_ERRORS_CHECK


def restore_code(title: str, source: str, merge: str | None = None) -> str:
    """Return the code that re-emits the items of ``source`` after a request replaced them."""
    return header(title) + OUTPUT_OF + f"""
const SOURCE = {js(source)};
return outputOf(SOURCE).map((item, index) => ({{ json: item.json,
  pairedItem: {{ item: index }} }}));
"""


def search_request_code(title: str, call: Any, crm: str) -> str:
    """Return the code that fills the search's dates or cursor and writes ``{body, query}``."""
    return header(title) + f"""
const CALL = {js({"body": call.body, "query": dict(call.query)})};
const CRM = {js(crm)};
// Riyadh midnight N days ago; HubSpot compares datetimes in epoch milliseconds,
// Zoho criteria take ISO 8601 with the offset.
function daysAgo(days) {{
  const local = new Date(Date.now() + 180 * 60000);
  const midnight = Date.UTC(local.getUTCFullYear(), local.getUTCMonth(), local.getUTCDate()) -
    180 * 60000;
  const time = new Date(midnight - days * 86400000);
  return CRM === 'hubspot' ? String(time.getTime()) : time.toISOString().replace('.000Z', '+00:00');
}}
const row = $input.first() ? $input.first().json : {{}};
// Without a stored cursor the first run reads the last two hours.
const cursor = row && row.value ? String(row.value)
  : new Date(Date.now() - 2 * 3600000).toISOString();
const fill = (value) => {{
  if (typeof value === 'string') {{
    return value.replace(/<today - (\\d+) days>/g, (match, days) => daysAgo(Number(days)))
      .replace(/<cursor>/g, cursor).replace(/<page>/g, '1');
  }}
  if (Array.isArray(value)) return value.map(fill);
  if (value && typeof value === 'object') {{
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, fill(item)]));
  }}
  return value;
}};
return [{{ json: {{ body: fill(CALL.body), query: fill(CALL.query) }} }}];
"""


def split_results_code(title: str, call: Any, crm: str, key_target: str | None = None) -> str:
    """Return the code that turns a search or poll response into one item per record.

    A CRM record becomes ``{record, key, crm_id, payload}``. The client's own database
    returns one row per item, and its record keeps each column under both its own
    name and ``table.column``, the form of the mapping's targets. ``key_target`` is
    the target of the unique key, such as ``contacts.customer_id``.
    """
    resource = str(call.action).rsplit(" ", 1)[-1]
    table, _, key_column = (key_target or "").rpartition(".")
    return header(title) + f"""
const SYSTEM = {js(call.system)};
const RESOURCE = {js(resource)};
const TABLE = {js(table or resource)};
const KEY_COLUMN = {js(key_column or None)};
const output = [];
for (const response of $input.all()) {{
  const json = response.json || {{}};
  if (SYSTEM === 'hubspot') {{
    for (const result of json.results || []) {{
      output.push({{ record: result.properties || {{}}, key: result.id, crm_id: result.id,
        payload: result }});
    }}
  }} else if (SYSTEM === 'zoho') {{
    for (const result of json.data || []) {{
      output.push({{ record: result, key: result.id, crm_id: result.id, payload: result }});
    }}
  }} else if (SYSTEM === 'postgres') {{
    const record = {{}};
    for (const [column, value] of Object.entries(json)) {{
      record[column] = value;
      record[`${{TABLE}}.${{column}}`] = value;
    }}
    const key = KEY_COLUMN ? json[KEY_COLUMN] : undefined;
    output.push({{ record, key, crm_id: key, payload: json }});
  }} else if (SYSTEM === 'shopify') {{
    // The GraphQL poll returns ids; the order flow reads REST-shaped bodies, so each
    // id is read again through the REST resource by the next node.
    const edges = ((json.data || {{}})[RESOURCE] || {{}}).edges || [];
    for (const edge of edges) {{
      const node = edge.node || {{}};
      output.push({{ id: String(node.id || '').split('/').pop(), updated_at: node.updatedAt }});
    }}
  }} else {{
    // WooCommerce and storefront lists arrive as one item per record.
    output.push(json);
  }}
}}
return output.map((json) => ({{ json }}));
"""


# ---------------------------------------------------------------------------
# Consent, discounts and messages


def consent_request_code(title: str, graph: Any, channel: str) -> str:
    """Return the code that writes the consent read's path for each contact, or drops it."""
    mapping = graph.project.spec["mapping"]
    identity = _identity_targets(mapping)
    return header(title) + helpers_library() + f"""
const CRM = {js(graph.project.crm)};
const CHANNEL = {js(channel)};
const IDENTITY = {js(identity)};
const KEY_FIELD = {js(_entity_unique(mapping, "contact"))};
const output = [];
$input.all().forEach((item, index) => {{
  const record = item.json.record || {{}};
  const email = record[IDENTITY.email];
  const phone = record[IDENTITY.phone];
  let path = null;
  if (CRM === 'custom') {{
    // Store id, phone and email, in the order the consent query tries them.
    const params = [item.json.key, phone, email].map((value) => (isEmpty(value) ? null
      : String(value)));
    if (params.some((value) => value !== null)) {{
      output.push({{ json: {{ ...item.json, path: '', params }}, pairedItem: {{ item: index }} }});
    }}
    return;
  }}
  if (CRM === 'hubspot') {{
    const subscriber = CHANNEL === 'email' ? email : phone;
    if (!isEmpty(subscriber)) {{
      path = `/communication-preferences/v4/statuses/${{encodeURIComponent(subscriber)}}` +
        `?channel=${{CHANNEL.toUpperCase()}}`;
    }}
  }} else {{
    const [field, value] = !isEmpty(item.json.key) && KEY_FIELD ? [KEY_FIELD, item.json.key]
      : [IDENTITY.email, email];
    const criteria = `(${{field}}:equals:${{value}})`;
    if (!isEmpty(value)) path = `/Contacts/search?criteria=${{encodeURIComponent(criteria)}}`;
  }}
  // A contact the CRM cannot be asked about has no consent on record: no message.
  if (path) output.push({{ json: {{ ...item.json, path }}, pairedItem: {{ item: index }} }});
}});
return output;
"""


def _granted_rule(crm: str, gate: Any) -> dict[str, Any]:
    if crm == "hubspot":
        return {"kind": "hubspot", "channel": gate.channel.upper()}
    if crm == "custom":
        return {"kind": "sql", "granted": [value.lower() for value in gate.granted_values]}
    fields = [str(field) for field in gate.crm_status.split() if "_" in field]
    field = fields[0] if fields else ""
    return {"kind": "zoho", "field": field, "opt_out": field.endswith("Opt_Out"),
            "granted": [value.lower() for value in gate.granted_values]}


def consent_keep_code(title: str, graph: Any, gate: Any, prepare: str) -> str:
    """Return the code that keeps the contacts whose current consent for the channel is granted.

    SMS and WhatsApp also need a mobile number: landlines and 800 numbers never get them.
    """
    identity = _identity_targets(graph.project.spec["mapping"])
    return header(title) + OUTPUT_OF + f"""
const RULE = {js(_granted_rule(graph.project.crm, gate))};
const PHONE = {js(identity.get("phone"))};
const NEEDS_MOBILE = {js(gate.channel in ("sms", "whatsapp"))};
const requested = outputOf({js(prepare)});
const output = [];
$input.all().forEach((response, index) => {{
  const item = requested[index];
  if (!item) return;
  const json = response.json || {{}};
  let granted = false;
  if (RULE.kind === 'sql') {{
    granted = RULE.granted.includes(String(json.state ?? '').toLowerCase());
  }} else if (RULE.kind === 'hubspot') {{
    // NOTE: the v4 status response is read as results[] of {{channel, status or
    // statusState}}; the shape is not confirmed against the live docs.
    granted = (json.results || []).some((result) =>
      (result.statusState || result.status) === 'SUBSCRIBED' &&
      (!result.channel || result.channel === RULE.channel));
  }} else {{
    const record = (json.data || [])[0] || {{}};
    const value = record[RULE.field];
    granted = RULE.opt_out ? value === false : (value === true ||
      RULE.granted.includes(String(value).toLowerCase()));
  }}
  const flags = item.json.flags || [];
  const mobile = !NEEDS_MOBILE || (item.json.record && item.json.record[PHONE] &&
    !flags.some((flag) => flag.startsWith('phone:')));
  if (granted && mobile) {{
    const {{ path, params, ...rest }} = item.json;
    output.push({{ json: rest, pairedItem: {{ item: index }} }});
  }}
}});
return output;
"""


def _code_seed() -> str:
    return """// The code is the same for one contact and playbook on every run (an FNV-1a hash),
// so a retried run does not create a second code.
function discountCode(seed) {
  let hash = 0x811c9dc5;
  for (const char of String(seed)) {
    hash ^= char.codePointAt(0);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return `RABT-${hash.toString(36).toUpperCase().padStart(7, '0')}`;
}
"""


def discount_request_code(title: str, call: Any, params: Mapping[str, Any]) -> str:
    """Return the code that builds the request creating each contact's single-use code."""
    return header(title) + _code_seed() + f"""
const BODY = {js(call.body)};
const HOURS = {js(params.get("expires_after_hours", 48))};
return $input.all().map((item, index) => {{
  const seed = `${{item.json.key || (item.json.payload || {{}}).token || index}}:${{$workflow.id}}`;
  const code = discountCode(seed);
  const endsAt = new Date(Date.now() + HOURS * 3600000).toISOString();
  const fill = (value) => {{
    if (typeof value === 'string') {{
      if (value === '<code>') return code;
      if (/^<now \\+ \\d+ h>$/.test(value)) return endsAt;
      return value;
    }}
    if (Array.isArray(value)) return value.map(fill);
    if (value && typeof value === 'object') {{
      return Object.fromEntries(Object.entries(value).map(([key, entry]) => [key, fill(entry)]));
    }}
    return value;
  }};
  return {{ json: {{ body: fill(BODY), _code: code, _ends_at: endsAt, _context: item.json }},
    pairedItem: {{ item: index }} }};
}});
"""


def keep_discount_code(title: str, build: str) -> str:
    """Return the code that checks the store's response and keeps the code on the item."""
    return header(title) + OUTPUT_OF + f"""
const built = outputOf({js(build)});
return $input.all().map((response, index) => {{
  const json = response.json || {{}};
  const errors = (((json.data || {{}}).discountCodeBasicCreate || {{}}).userErrors || []);
  if (errors.length) {{
    const messages = errors.map((error) => error.message).join('; ');
    throw new Error(`the store rejected the discount code: ${{messages}}`);
  }}
  const source = built[index].json;
  return {{ json: {{ ...source._context, discount_code: source._code,
    discount_ends_at: source._ends_at }}, pairedItem: {{ item: index }} }};
}});
"""


def marker_code(title: str, graph: Any, call: Any, params: Mapping[str, Any],
                marker: bool = True) -> str:
    """Return the code that writes the playbook-step marker that enrols contacts in a CRM email.

    With a discount, the issued code and its expiry go on the contact too, so the
    CRM's email can show them. Without ``marker`` only the code and its expiry are
    written, so no CRM email starts.
    """
    rollups = {str(item["name"]): str(item["target"]) for item in
               graph.project.spec["mapping"]["entities"]["contact"]["rollups"]}
    unique = _entity_unique(graph.project.spec["mapping"], "contact")
    # A guest has no store customer id, so the mark carries every identity value in
    # match order. The client's database finds the contact by phone or email. HubSpot's
    # batch upsert falls back to email, then to the unique E.164 phone property.
    mapping = graph.project.spec["mapping"]
    identity = list(_identity_targets(mapping).values())
    if call.system == "hubspot":
        identity = [target for target in dict.fromkeys(
            [*identity, *_fallback_id_properties(mapping, "contact")]) if target != unique]
    elif call.system != "postgres":
        identity = []
    value = f"{params.get('playbook')}:{params.get('template')}"
    discount = {rollups["discount_code"]: "discount_code",
                rollups["discount_expires_at"]: "discount_ends_at"} if params.get(
        "discount") else {}
    return header(title) + f"""
const UNIQUE = {js(unique)};
const MARKER = {js(rollups["playbook_step"] if marker else None)};
const VALUE = {js(value)};
const DISCOUNT = {js(discount)};
const IDENTITY = {js(identity)};
return $input.all().map((item, index) => {{
  const record = item.json.record || {{}};
  const key = item.json.key ?? record[UNIQUE];
  const marked = MARKER ? {{ [MARKER]: VALUE }} : {{}};
  for (const target of IDENTITY) {{
    if (record[target] !== undefined && record[target] !== null) marked[target] = record[target];
  }}
  if (UNIQUE && key !== undefined && key !== null) marked[UNIQUE] = key;
  for (const [target, name] of Object.entries(DISCOUNT)) {{
    if (item.json[name]) marked[target] = item.json[name];
  }}
  return {{ json: {{ record: marked, key, flags: [] }}, pairedItem: {{ item: index }} }};
}});
"""


def message_code(title: str, graph: Any, call: Any, params: Mapping[str, Any]) -> str:
    """Return the code that builds each WhatsApp template or SMS request body.

    A send with a discount carries the code created earlier in the same run. Without
    one (a later step of a daily playbook run, such as win-back steps 2 and 3), it reads
    the code that the first discount step wrote to the contact, unless the code's
    expiry on the contact has passed. The first discount step stores the code for
    each contact with consent on a channel that carries it (``n8n_discount``).
    """
    identity = _identity_targets(graph.project.spec["mapping"])
    contact = graph.project.spec["mapping"]["entities"]["contact"]
    first_name = next((str(row["target"]) for row in contact["fields"]
                       if row["name"] == "first_name"), "")
    rollups = {str(item["name"]): str(item["target"]) for item in contact["rollups"]}
    return header(title) + f"""
const SYSTEM = {js(call.system)};
const TEMPLATE = {js(params.get("template"))};
const WITH_CODE = {js(bool(params.get("discount")))};
const PHONE = {js(identity.get("phone"))};
const FIRST_NAME = {js(first_name)};
const CODE_FIELD = {js(rollups.get("discount_code"))};
const EXPIRY_FIELD = {js(rollups.get("discount_expires_at"))};
const language = $env.RABT_WHATSAPP_LANGUAGE || 'ar';
// The client's own database names a column as table.column; its rows use the column.
function field(record, target) {{
  if (!target) return undefined;
  return record[target] ?? record[target.split('.').pop()];
}}
// HubSpot returns a datetime as ISO 8601 text or as epoch milliseconds.
function expired(value) {{
  if (value === undefined || value === null || value === '') return false;
  const time = /^\\d+$/.test(String(value)) ? Number(value) : Date.parse(String(value));
  return Number.isFinite(time) && time <= Date.now();
}}
function storedCode(record) {{
  const code = field(record, CODE_FIELD);
  if (!code || expired(field(record, EXPIRY_FIELD))) return null;
  return String(code);
}}
return $input.all().map((item, index) => {{
  const record = item.json.record || {{}};
  const phone = String(record[PHONE] || '');
  const code = WITH_CODE ? (item.json.discount_code || storedCode(record)) : null;
  let body;
  if (SYSTEM === 'whatsapp') {{
    const name = String(record[FIRST_NAME] || '');
    const components = [{{ type: 'body', parameters: [{{ type: 'text', text: name }}] }}];
    if (code) {{
      components.push({{ type: 'button', sub_type: 'copy_code', index: '0',
        parameters: [{{ type: 'coupon_code', coupon_code: code }}] }});
    }}
    // The Cloud API takes the number in international form without '+'.
    body = {{ messaging_product: 'whatsapp', to: phone.replace(/^\\+/, ''), type: 'template',
      template: {{ name: TEMPLATE, language: {{ code: language }}, components }} }};
  }} else {{
    body = {{ to: phone, template: TEMPLATE, code: code || null }};
  }}
  return {{ json: {{ body }}, pairedItem: {{ item: index }} }};
}});
"""


# ---------------------------------------------------------------------------
# SQL for the client's own PostgreSQL database

SQL_PLACEHOLDER = re.compile(r"<([^<>]+)>")


def sql_statement(statement: str) -> tuple[str, list[str]]:
    """Return the statement with ``$1``, ``$2`` … for its ``<name>`` placeholders, and the names.

    A name that repeats gets the number of its first place, so each value is sent once.
    """
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    return SQL_PLACEHOLDER.sub(number, statement), names


def sql_params_code(title: str, names: Sequence[str], targets: Mapping[str, str],
                    source: str | None = None, linked: str | None = None) -> str:
    """Return the code that writes each item's query parameters into ``params``.

    A placeholder named after a field reads the mapped record, or else the linked
    record's identity values that the mapping node keeps in ``ref_keys``, or else the
    record of the same payload that mapping node ``linked`` output (an order's
    contact, with its phone); ``today - N days`` and ``now - N hours - M minutes``
    become times; any other is null. With ``source``, the records are the output of
    that mapping node instead of the input, because a link statement runs after the
    upsert, whose output is the query result.
    """
    items = ("outputOf(SOURCE).filter((item) => item.json.record)" if source
             else "$input.all().filter((item) => item.json.record)")
    return header(title) + (OUTPUT_OF if source or linked else "") + f"""
const NAMES = {js(list(names))};
const TARGETS = {js(dict(targets))};
const SOURCE = {js(source)};
const LINKED = {js(linked)};
// Riyadh midnight N days ago, or now minus hours and minutes, as ISO 8601.
function timeValue(name) {{
  const days = /^today - (\\d+) days$/.exec(name);
  if (days) {{
    const local = new Date(Date.now() + 180 * 60000);
    const midnight = Date.UTC(local.getUTCFullYear(), local.getUTCMonth(), local.getUTCDate()) -
      180 * 60000;
    return new Date(midnight - Number(days[1]) * 86400000).toISOString();
  }}
  const now = /^now(?: - (\\d+) hours?)?(?: - (\\d+) minutes?)?$/.exec(name);
  if (now) {{
    const back = (Number(now[1] || 0) * 60 + Number(now[2] || 0)) * 60000;
    return new Date(Date.now() - back).toISOString();
  }}
  return null;
}}
function fieldValue(item, other, target) {{
  const value = (item.json.record || {{}})[target];
  if (value !== undefined && value !== null) return value;
  for (const pairs of Object.values(item.json.ref_keys || {{}})) {{
    const found = pairs.find((pair) => pair[0] === target);
    if (found) return found[1];
  }}
  return other ? other.json.record[target] ?? null : null;
}}
// A write runs once per mapped record; a read runs once.
const writes = NAMES.some((name) => TARGETS[name]);
const items = writes ? {items}
  : [$input.first() || {{ json: {{}} }}];
// The linked mapping node read the same payloads, so its records pair by position;
// a single record (one order's contact) pairs with every item.
const linkedItems = LINKED ? outputOf(LINKED).filter((item) => item.json.record) : [];
return items.map((item, index) => {{
  const other = linkedItems.length === items.length ? linkedItems[index]
    : (linkedItems.length === 1 ? linkedItems[0] : null);
  const params = NAMES.map((name) => (TARGETS[name] ? fieldValue(item, other, TARGETS[name])
    : timeValue(name)));
  return {{ json: {{ ...item.json, params }}, pairedItem: {{ item: SOURCE ? 0 : index }} }};
}});
"""


def sql_consent_query(channel: str, key_column: str, phone_column: str = "phone_e164",
                      email_column: str = "email") -> str:
    """Return the query that reads a contact's latest consent state for one channel.

    ``$1`` is the store customer id, ``$2`` the E.164 phone and ``$3`` the email, any
    of them NULL. The contact is found in the identity order of the contact upsert:
    by store id, then phone, then email, so a guest known only by phone gets its
    consent too. The outer SELECT returns one row even without consent, so the rows
    stay aligned with the contacts asked about.
    """
    found = ", ".join(f"(SELECT id FROM contacts WHERE {column} = ${number} ORDER BY id LIMIT 1)"
                      for number, column in enumerate((key_column, phone_column, email_column),
                                                      start=1))
    return ("SELECT (SELECT consents.state FROM consents "
            f"WHERE consents.contact_id = COALESCE({found}) "
            f"AND consents.channel = '{channel}' ORDER BY consents.captured_at DESC NULLS LAST, "
            "consents.id DESC LIMIT 1) AS state")
