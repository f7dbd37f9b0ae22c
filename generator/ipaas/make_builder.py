"""Module numbering and the Make formulas of mapped values, shared by every blueprint.

``Builder`` numbers the modules of one blueprint and keeps the formula of each
mapped field, so the HTTP bodies of later steps can refer to it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from generator.ipaas import make_iml
from generator.ipaas.flows import FieldRow, Step
from generator.resources import load_data

X_STEP = 300
Y_STEP = 300
# The data store of processed event keys, which the dedupe check reads.
PROCESSED_STORE = "processed_events"


def confirmed_modules() -> dict[str, Any]:
    """Return the confirmed module ids with their versions and sources."""
    modules: dict[str, Any] = load_data("ipaas/make-modules")["modules"]
    return modules


# Transforms that no Make formula of these blueprints computes yet: the mapped
# field receives the store's raw value. The workflows README lists them.
RAW_TRANSFORMS = ("split_name",)
# Transforms whose result is a number, a date or a value from the spec's tables, so
# it needs no JSON escaping (a table value with a double quote is rejected).
JSON_SAFE_TRANSFORMS = frozenset({
    "money_sar", "refund_total_sar", "iso_datetime", "riyadh_date", "status_to_stage",
    "ticket_status_to_stage", "event_key", "channel_to_origin", "city_canonical",
    "utm_channel"})
# Transforms whose result is a JSON boolean, written into a body without quotes.
BOOLEAN_TRANSFORMS = frozenset({"consent_opt_in", "consent_opt_out"})
# Transforms whose result is an amount. Zoho rejects a quoted amount in a currency
# or decimal field (INVALID_DATA), so on Zoho these go into a body without quotes.
# HubSpot takes every property value as a string, so its amounts keep their quotes.
NUMBER_TRANSFORMS = frozenset({"money_sar", "refund_total_sar"})
# Transforms whose empty result means "no value": the request body then leaves the
# field out, so the CRM keeps what it has, as the runtime does. An empty city would
# otherwise clear the contact's city.
OMITTED_WHEN_EMPTY = frozenset({"city_canonical"})


@dataclass
class Builder:
    """Numbers modules and lays them out left to right as a blueprint is built."""

    next_id: int = 1
    x: int = 0
    values: dict[str, str] = field(default_factory=dict)
    # Names of mapped values that need no JSON escaping (see JSON_SAFE_TRANSFORMS).
    safe_values: set[str] = field(default_factory=set)
    # Names of mapped values written into a JSON body without quotes: booleans and
    # Zoho amounts (see BOOLEAN_TRANSFORMS and NUMBER_TRANSFORMS).
    unquoted_values: set[str] = field(default_factory=set)
    # Names of mapped values whose field a JSON body leaves out when the value is empty
    # (see OMITTED_WHEN_EMPTY).
    omitted_values: set[str] = field(default_factory=set)
    trigger_id: int = 1
    item_id: int | None = None
    # Whether a webhook starts the scenario; a scheduled one starts with no trigger module.
    instant: bool = True
    # The trigger body's field that names the record in a failure report (make_http.record_id).
    event_field: str = "id"
    # A webhook scenario's dedupe key, such as "header X-Shopify-Event-Id", which its
    # failure reports send as the event id (make_http.event_id).
    dedupe_key: str | None = None
    # In a scheduled scenario, the formula of the key of the record being processed.
    record_ref: str | None = None
    pending_filter: dict[str, Any] | None = None
    flow_key: str = ""
    mapping: Mapping[str, Any] = field(default_factory=dict)
    crm: str = ""
    store: str = ""
    # The module that read the cached Zoho access token, once the blueprint has one.
    token_id: int | None = None
    # Each dedupe check as (ExistRecord module id, key formula, name of the module that
    # stores the key). make_outcomes stores the key at the end of every path below it.
    dedupe_checks: list[tuple[int, str, str]] = field(default_factory=list)
    # The step name and the record key formula (record_ref) of each HubSpot batch
    # request module by its id; make_outcomes routes a response with failed records
    # to the error report, after the whole blueprint is built.
    batch_requests: dict[int, tuple[str, str | None]] = field(default_factory=dict)
    # The module that read a runner's last search mark (make_schedule), if any.
    window_mark_id: int | None = None
    # Whether a later send of the flow repeats the discount code of its first discount
    # step, so that step creates the code before its consent gate (make_steps).
    code_repeated: bool = False
    # The consent gate of each channel whose send carries the code. The code is created
    # only for a contact with consent on one of them (make_steps).
    code_gates: tuple[Step, ...] = ()
    # The cart runner's formula of the found contact's latest checkout time. The contact
    # carries no checkout token, so this time names the checkout that fell due.
    checkout_ref: str | None = None
    # Names of mapped values written only from an order in a won stage (FieldRow.won_only),
    # and the formula that gives WON_STAGE for such an order. make_contact routes on it.
    won_only_values: set[str] = field(default_factory=set)
    won_formula: str | None = None

    def require(self, condition_filter: dict[str, Any]) -> None:
        """Add a filter to the next module, joined with any filter still pending."""
        pending = self.pending_filter
        if pending is None:
            self.pending_filter = condition_filter
            return
        self.pending_filter = {
            "name": f"{pending['name']}; {condition_filter['name']}",
            "conditions": both_conditions(pending, condition_filter["conditions"])}

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


def both_conditions(pending: dict[str, Any] | None,
                    conditions: list[list[dict[str, str]]]) -> list[list[dict[str, str]]]:
    """Return conditions that hold when both the pending filter and ``conditions`` hold.

    A Make filter's conditions are OR groups of AND conditions, so the result pairs
    each group of the one with each group of the other.
    """
    if pending is None:
        return conditions
    return [[*first, *second] for first in pending["conditions"] for second in conditions]


def iterated_list(step: Step) -> str:
    """Return the trigger path of the list that a line-item map step iterates.

    The step's ``iterate`` is the list's payload path from the field map, such as
    ``line_items[]`` for Shopify or ``order.line_items[]`` for a headless storefront.
    """
    return str(step.params["iterate"]).removesuffix("[]")


def source_ref(builder: Builder, path: str) -> str:
    """Return the IML reference of a source path in the trigger or the current item."""
    if "[]." in path and builder.item_id is not None:
        return make_iml.path_reference(str(builder.item_id), path.split("[].", 1)[1])
    clean = re.sub(r"\[\]$", "", path.replace("[].", "."))
    return make_iml.path_reference(str(builder.trigger_id), clean)


def _iml(builder: Builder, row: FieldRow) -> str:
    """Return the formula (without braces) of one field row's mapped value."""
    value = source_ref(builder, row.source)
    for fallback in row.fallback_sources:
        value = f"ifempty({value}; {source_ref(builder, fallback)})"
    if row.transform == "status_to_stage":
        table = builder.mapping["order_stages"]
        return make_iml.stage_rules(table["rules"], make_iml.order_stage_values(table),
                                    lambda name: source_ref(builder, name), builder.store)
    if row.transform == "utm_channel":
        return make_iml.utm_channel(value, _channel_sources(builder), builder.store,
                                    builder.mapping)
    if row.transform == "refund_total_sar":
        value = f"{builder.trigger_id}.{row.source}"
    if row.transform in BOOLEAN_TRANSFORMS:
        return _consent_checkbox(value, row)
    formula = make_iml.transform(row.transform, value, builder.mapping, builder.crm)
    return value if formula is None else formula


# The value of won_stage_formula for an order whose stage is a won stage.
WON_STAGE = "won"


def won_stage_formula(builder: Builder) -> str:
    """Return the formula that gives WON_STAGE when the order's stage is a won stage.

    It runs the stage table's rules, as the deal stage does, with each stage's value
    replaced by whether the stage is won, so the runtime's purchase rule applies.
    """
    table = builder.mapping["order_stages"]
    values = {str(stage["key"]): WON_STAGE if stage.get("won") else "open"
              for stage in table["stages"]}
    return make_iml.stage_rules(table["rules"], values, lambda name: source_ref(builder, name),
                                builder.store)


# The payload fields the runtime's utm_channel reads beside the mapped value
# (generator.runtime.attribution), by store: the landing page, the referrer, a UTM
# source field and the fields that mark an offline order.
CHANNEL_FIELDS: dict[str, dict[str, tuple[str, ...]]] = {
    "shopify": {"landing": ("landing_site",), "referrer": ("referring_site",), "utm": (),
                "offline": ("source_name",)},
    "woocommerce": {"landing": ("meta_data[_wc_order_attribution_session_entry]",),
                    "referrer": ("meta_data[_wc_order_attribution_referrer]",),
                    "utm": ("meta_data[_wc_order_attribution_utm_source]",),
                    "offline": ("created_via", "meta_data[_wc_order_attribution_source_type]")},
    "storefront": {"landing": ("attribution.landing_page",),
                   "referrer": ("attribution.referrer",), "utm": ("attribution.utm_source",),
                   "offline": ()},
}


def _channel_sources(builder: Builder) -> dict[str, tuple[str, ...]]:
    """Return the formulas of the payload fields ``utm_channel`` reads, by role."""
    fields = CHANNEL_FIELDS[builder.store]
    return {role: tuple(source_ref(builder, path) for path in paths)
            for role, paths in fields.items()}


def _consent_checkbox(value: str, row: FieldRow) -> str:
    """Return the formula of a consent checkbox: granted or not, from the store's state.

    A state that is sent but not granted ticks an opt-out box and clears an opt-in
    box. A body without the channel's state never reaches this formula, because the
    consent scenario writes a channel's fields only on a route whose filter requires
    that state (``make_consent``).
    """
    state = f"lower(trim(toString({value})))"
    granted = " or ".join(f"{state} = {make_iml.literal(str(item).lower())}"
                          for item in row.granted_values) or "false"
    opted_in, other = ("true", "false") if row.transform == "consent_opt_in" else \
        ("false", "true")
    return f"if({granted}; {opted_in}; {other})"


def record_values(builder: Builder, step: Step) -> None:
    """Keep the formula of each mapped field of ``step`` for the request bodies that follow."""
    for row in step.fields:
        builder.values[row.name] = _with_placeholder(builder, row, _iml(builder, row))
        if row.won_only:
            builder.won_only_values.add(row.name)
            builder.won_formula = won_stage_formula(builder)
        if row.transform in JSON_SAFE_TRANSFORMS:
            builder.safe_values.add(row.name)
        if row.transform in BOOLEAN_TRANSFORMS:
            builder.safe_values.add(row.name)
            builder.unquoted_values.add(row.name)
        if row.transform in OMITTED_WHEN_EMPTY:
            builder.omitted_values.add(row.name)
        if row.transform in NUMBER_TRANSFORMS and builder.crm == "zoho":
            # An empty amount becomes JSON null, so the body stays valid JSON.
            builder.values[row.name] = f'ifempty({builder.values[row.name]}; "null")'
            builder.safe_values.add(row.name)
            builder.unquoted_values.add(row.name)


def _with_placeholder(builder: Builder, row: FieldRow, formula: str) -> str:
    """Return the formula of a field the CRM requires, with the spec's fallback when empty.

    Zoho rejects a contact without Last_Name (MANDATORY_NOT_FOUND). As in the API
    path, a customer with one name keeps it as the last name, and a customer with no
    name gets the spec's placeholder.
    """
    fields = builder.mapping.get("entities", {}).get(row.entity, {}).get("fields", [])
    spec: Mapping[str, Any] = next((item for item in fields if item.get("name") == row.name),
                                   {})
    if not spec.get("required") or "placeholder" not in spec:
        return formula
    fallback = make_iml.literal(str(spec["placeholder"]))
    first_name = builder.values.get("first_name")
    if row.name == "last_name" and first_name is not None:
        fallback = f"ifempty({first_name}; {fallback})"
    return f"ifempty({formula}; {fallback})"


def fill(body: Any, values: Mapping[str, str], formulas: list[str] | None = None,
         safe: frozenset[str] | set[str] = frozenset(),
         unquoted: frozenset[str] | set[str] = frozenset(),
         omitted: frozenset[str] | set[str] = frozenset()) -> Any:
    """Replace ``<name>`` placeholders in a call body with the mapped values.

    With ``formulas`` (a JSON body), each mapped value becomes a marker that
    ``json_body`` swaps for its formula after serialising, and the formula escapes
    the value for a JSON string, so a quote, backslash or newline in a customer's
    name cannot break the body. Without it (query parameters), the formula is inline.
    A value named in ``unquoted`` gets a marker that ``json_body`` swaps with its quotes,
    and one named in ``omitted`` a marker that ``json_body`` swaps with its whole field.
    """
    if isinstance(body, dict):
        return {key: fill(value, values, formulas, safe, unquoted, omitted)
                for key, value in body.items()}
    if isinstance(body, list):
        return [fill(item, values, formulas, safe, unquoted, omitted) for item in body]
    if not isinstance(body, str):
        return body
    match = re.fullmatch(r"<([^<>]+)>", body)
    if match is None and re.search(r"<[^<>]+>", body):
        return _fill_inline(body, values, formulas, safe)
    formula = None
    if match and match.group(1) in values:
        formula = values[match.group(1)]
        if formulas is not None and match.group(1) not in safe:
            formula = make_iml.json_text(formula)
    elif match:
        formula = relative_time(match.group(1))
    if formula is None:
        return body
    if formulas is None:
        return "{{" + formula + "}}"
    formulas.append(formula)
    mark = FORMULA_MARK
    if match and match.group(1) in unquoted:
        mark = UNQUOTED_MARK
    elif match and match.group(1) in omitted:
        mark = OMITTED_MARK
    return f"{mark}{len(formulas) - 1}{mark}"


def _fill_inline(text: str, values: Mapping[str, str], formulas: list[str] | None,
                 safe: frozenset[str] | set[str]) -> str:
    """Replace each ``<name>`` inside a longer text, such as a Zoho search criteria."""
    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        formula = values.get(name) or relative_time(name)
        if formula is None:
            return match.group(0)
        if formulas is None:
            return "{{" + formula + "}}"
        if name in values and name not in safe:
            formula = make_iml.json_text(formula)
        formulas.append(formula)
        return f"{FORMULA_MARK}{len(formulas) - 1}{FORMULA_MARK}"

    return re.sub(r"<([^<>]+)>", one, text)


# Marker of a formula's place in a serialised JSON body. Make reads the text between
# {{ and }} unchanged, so a formula must not pass through the JSON serialiser, which
# would escape its quotes.
FORMULA_MARK = "@@rabt-formula@@"
# Marker of a boolean or number formula, whose result replaces the quoted string as a whole.
UNQUOTED_MARK = "@@rabt-unquoted@@"
# Marker of a formula whose field, key included, is left out when the formula gives "".
OMITTED_MARK = "@@rabt-omitted@@"
# Stand-in for a double quote inside an omitted field's formula. A quoted formula
# argument cannot hold a double quote, so the formula writes this mark and then
# replaces it with decodeURL("%22").
QUOTE_MARK = "@@q@@"


def json_body(body: Any, values: Mapping[str, str],
              safe: frozenset[str] | set[str] = frozenset(),
              unquoted: frozenset[str] | set[str] = frozenset(),
              omitted: frozenset[str] | set[str] = frozenset()) -> str:
    """Return the request body as JSON text with the formulas of its mapped values in place."""
    formulas: list[str] = []
    text = json.dumps(fill(body, values, formulas, safe, unquoted, omitted), ensure_ascii=False)
    for index, formula in enumerate(formulas):
        text = _omittable_field(text, index, formula)
        text = text.replace(f'"{UNQUOTED_MARK}{index}{UNQUOTED_MARK}"', "{{" + formula + "}}")
        text = text.replace(f"{FORMULA_MARK}{index}{FORMULA_MARK}", "{{" + formula + "}}")
    return text


def _omittable_field(text: str, index: int, formula: str) -> str:
    """Swap an omitted-field marker, with its key and one comma, for a formula that writes them.

    The formula writes ``"key": "value"`` with the comma when the value is not empty,
    and nothing otherwise, so the CRM keeps the field's current value. The value must
    need no JSON escaping and hold no ``$``, because it enters a replace() replacement.

    NOTE: decodeURL() is in Make's list of text functions; that it returns a double
    quote for "%22" inside a JSON string body was not run in Make. Check a contact
    with a known city in the first test run.
    """
    mark = f"{OMITTED_MARK}{index}{OMITTED_MARK}"
    found = re.search(r'(, )?"([^"]+)": "' + re.escape(mark) + r'"(, )?', text)
    if found is None:
        return text
    before, key, after = found.groups()
    # One comma goes with the field: the one after it, else the one before it.
    lead, tail = ("", ", ") if after else (before or "", "")
    field_text = f"{lead}{QUOTE_MARK}{key}{QUOTE_MARK}: {QUOTE_MARK}$1{QUOTE_MARK}{tail}"
    written = (f'replace(replace({formula}; "/^(.+)$/"; {make_iml.literal(field_text)}); '
               f'"/{QUOTE_MARK}/g"; decodeURL("%22"))')
    kept = before if after else ""
    # The spaces keep the formula's braces apart from the body's own, because Make
    # would read "{{{" as a formula starting with "{".
    return (text[:found.start()] + (kept or "") + " {{" + written + "}} "
            + text[found.end():])


UNIT_MINUTES = {"minutes": 1, "hours": 60, "days": 1440}


def relative_time(text: str) -> str | None:
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
