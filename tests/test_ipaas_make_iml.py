"""Make formulas: JSON-safe bodies and the spec's transforms, evaluated as Make would.

``evaluate`` reads the subset of Make's formula language (IML) that the blueprints
write: function calls with ``;`` between arguments, module references such as
``1.customer.first_name``, quoted arguments read as raw text, ``/pattern/flags``
regular expressions with ``$1`` in the replacement, the keywords ``emptystring``,
``true`` and ``false``
(a reference with a list selector such as ``[0]`` fails, because Make has none)
and the operators ``=``, ``!=``, ``<``, ``<=``, ``>``, ``>=``, ``and``, ``or`` and ``+``.
``now`` reads the bundle named ``now``, which a test sets to a datetime. It follows the same
reading of Make that the generator's formulas assume (see generator/ipaas/make_iml.py).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import unquote
from zoneinfo import ZoneInfo

import pytest

from generator.ipaas import make, make_iml
from generator.ipaas.flows import build_flows
from generator.runtime.result import TransformContext
from generator.runtime.transforms import TRANSFORMS
from tests.ipaas_cases import load_case

TOKEN = re.compile(r'\s*(?:(?P<string>"[^"]*")|(?P<op>!=|<=|>=|[=();+<>])'
                   r'|(?P<number>-?\d+(?:\.\d+)?(?![\w.]))|(?P<word>[\w.$\[\]-]+))')


def tokenize(text: str) -> list[tuple[str, str]]:
    tokens = []
    position = 0
    while position < len(text.rstrip()):
        match = TOKEN.match(text, position)
        assert match is not None, f"cannot read the formula at: {text[position:position + 40]}"
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


def read_path(data: Any, path: str) -> Any:
    value = data
    for part in path.split("."):
        if isinstance(value, list):
            value = [item.get(part) if isinstance(item, dict) else None for item in value]
        elif isinstance(value, dict):
            value = value.get(part)
        else:
            return None
    return value


def make_get(value: Any, path: Any) -> Any:
    """Read ``path`` as Make's get() does: a number picks a list item, counting from 1."""
    for part in str(path).split("."):
        if isinstance(value, list) and part.isdigit():
            index = int(part) - 1
            value = value[index] if 0 <= index < len(value) else None
        elif isinstance(value, dict):
            value = value.get(part)
        else:
            return None
    return value


def js_replace(text: str, pattern: str, replacement: str) -> str:
    regex = re.fullmatch(r"/(.*)/([gim]*)", pattern, re.S)
    if regex is None:
        return text.replace(pattern, replacement)
    flags = re.I if "i" in regex.group(2) else 0
    compiled = re.compile(regex.group(1), flags)

    def expand(match: re.Match[str]) -> str:
        return re.sub(r"\$(\d)", lambda ref: match.group(int(ref.group(1))) or "", replacement)

    return compiled.sub(expand, text, count=0 if "g" in regex.group(2) else 1)


def text_of(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(text_of(item) for item in value)
    return str(value)


# Make's formatDate tokens that the blueprints use, as strftime patterns.
DATE_TOKENS = {"YYYY-MM-DDTHH:mm:ssZ": "%Y-%m-%dT%H:%M:%S%z", "YYYY-MM-DD": "%Y-%m-%d",
               "HHmm": "%H%M"}


def as_datetime(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(text_of(value))


def format_date(value: Any, pattern: str, zone: str | None = None) -> str:
    """Format a datetime as Make's formatDate does for the patterns the blueprints use."""
    if not isinstance(value, datetime):
        return text_of(value)
    local = value.astimezone(ZoneInfo(zone)) if zone else value
    if pattern == "d":
        return str(local.isoweekday() % 7)  # 0 is Sunday
    return local.strftime(DATE_TOKENS[pattern])


def empty(value: Any) -> bool:
    return value is None or value == "" or value == []


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "toString": text_of,
    "lower": lambda value: text_of(value).lower(),
    "trim": lambda value: text_of(value).strip(),
    "ifempty": lambda value, fallback: fallback if empty(value) else value,
    "replace": lambda text, pattern, replacement: js_replace(text_of(text), pattern, replacement),
    "map": lambda items, key, *where: [
        read_path(item, key) for item in items or []
        if not where or text_of(read_path(item, where[0])) in where[1].split(",")],
    "first": lambda items: items[0] if items else None,
    "contains": lambda items, value: value in items if isinstance(items, list) else
    text_of(value) in text_of(items),
    "get": make_get,
    "flatten": lambda items: [inner for item in items or [] for inner in
                              (item if isinstance(item, list) else [item])],
    "sum": lambda items: sum(float(item) for item in items or [] if not empty(item)),
    "formatNumber": lambda value, digits, *rest: f"{float(value):.{int(digits)}f}",
    "join": lambda items, separator: separator.join(text_of(item) for item in items or []),
    "parseNumber": lambda value, separator: float(text_of(value) or 0),
    # A text date passes through unchanged; a datetime (such as "now") is formatted.
    "formatDate": lambda value, pattern, *zone: format_date(value, pattern, *zone),
    "addMinutes": lambda value, minutes: as_datetime(value) + timedelta(minutes=float(minutes)),
    "stripHTML": lambda value: re.sub(r"<[^>]*>", "", text_of(value)),
    "md5": lambda value: hashlib.md5(text_of(value).encode()).hexdigest(),
    "upper": lambda value: text_of(value).upper(),
    "substring": lambda value, start, end: text_of(value)[int(start):int(end)],
    "decodeURL": lambda value: unquote(text_of(value)),
}


class Formula:
    """A recursive-descent reader and evaluator of one formula."""

    def __init__(self, text: str, bundles: Mapping[str, Any]):
        self.tokens = tokenize(text)
        self.index = 0
        self.bundles = bundles

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.tokens[self.index]
        assert value is None or token[1] == value, f"expected {value}, found {token}"
        self.index += 1
        return token

    def run(self) -> Any:
        value = self.expression()
        assert self.peek() is None, f"unread tokens: {self.tokens[self.index:]}"
        return value

    def expression(self) -> Any:
        value = self.conjunction()
        while self.peek() == ("word", "or"):
            self.take()
            other = self.conjunction()
            value = bool(value) or bool(other)
        return value

    def conjunction(self) -> Any:
        value = self.comparison()
        while self.peek() == ("word", "and"):
            self.take()
            other = self.comparison()
            value = bool(value) and bool(other)
        return value

    def comparison(self) -> Any:
        value = self.addition()
        token = self.peek()
        if token in (("op", "="), ("op", "!=")):
            self.take()
            other = self.addition()
            equal = text_of(value) == text_of(other)
            return equal if token == ("op", "=") else not equal
        if token in (("op", "<"), ("op", "<="), ("op", ">"), ("op", ">=")):
            self.take()
            left, right = float(value), float(self.addition())
            return {"<": left < right, "<=": left <= right, ">": left > right,
                    ">=": left >= right}[token[1]]
        return value

    def addition(self) -> Any:
        value = self.primary()
        while self.peek() == ("op", "+"):
            self.take()
            other = self.primary()
            # A number from parseNumber plus a number literal is a sum. Any other "+" joins text.
            if isinstance(value, float) and re.fullmatch(r"\d+(\.\d+)?", text_of(other)):
                value = value + float(text_of(other))
            else:
                value = text_of(value) + text_of(other)
        return value

    def primary(self) -> Any:
        kind, text = self.take()
        if kind == "string":
            return text[1:-1]
        if kind == "number":
            return text
        if text == "(":
            value = self.expression()
            self.take(")")
            return value
        if text == "emptystring":
            return ""
        if text in ("true", "false"):
            return text == "true"
        if self.peek() == ("op", "("):
            return self.call(text)
        # A Make reference holds no list selector such as [0] or [key].
        assert "[" not in text, f"not a Make reference: {text}"
        module, _, path = text.partition(".")
        return read_path(self.bundles[module], path) if path else self.bundles[module]

    def call(self, name: str) -> Any:
        self.take("(")
        if name in ("if", "switch"):
            return self.lazy(name)
        arguments = []
        while self.peek() != ("op", ")"):
            arguments.append(self.expression())
            if self.peek() == ("op", ";"):
                self.take()
        self.take(")")
        return FUNCTIONS[name](*arguments)

    def lazy(self, name: str) -> Any:
        arguments = [self.expression()]
        while self.peek() == ("op", ";"):
            self.take()
            arguments.append(self.expression())
        self.take(")")
        if name == "if":
            return arguments[1] if arguments[0] else arguments[2]
        subject, rest = text_of(arguments[0]), arguments[1:]
        for index in range(0, len(rest) - 1, 2):
            if subject == text_of(rest[index]):
                return rest[index + 1]
        return rest[-1] if len(rest) % 2 else None


def evaluate(formula: str, bundles: Mapping[str, Any]) -> Any:
    """Evaluate the ``{{ }}`` parts of ``formula`` against module bundles, as Make fills text."""
    def fill(match: re.Match[str]) -> str:
        return text_of(Formula(match.group(1), bundles).run())

    parts = re.fullmatch(r"\{\{(.*)\}\}", formula, re.S)
    if parts and "}}" not in parts.group(1):
        return Formula(parts.group(1), bundles).run()
    return re.sub(r"\{\{(.*?)\}\}(?!\})", fill, formula, flags=re.S)


HOSTILE = ['Sara "the boss" Ali', "back\\slash", "line one\nline two\r\n\tend",
           "نورة عبد الله", "Fatima 🌙✨", 'mix \\" both', "bell\x07", "}} {{"]


def walk(flow: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for module in flow:
        found.append(module)
        for route in module.get("routes", []):
            found.extend(walk(route["flow"]))
    return found


def contact_upsert(preset: str) -> dict[str, Any]:
    answers, plan, spec = load_case(preset, {})
    flow = make.blueprints(build_flows(answers, plan, spec))["contact-sync"]["flow"]
    return next(module for module in walk(flow)
                if module["metadata"]["designer"]["name"] == "Create or update the contact")


@pytest.mark.parametrize("preset", ["shopify-growth", "jeddah-fashion-zoho"])
@pytest.mark.parametrize("name", HOSTILE)
def test_body_json_with_hostile_name(preset: str, name: str) -> None:
    body = contact_upsert(preset)["mapper"]["jsonStringBodyContent"]
    # A customers/* body is the customer itself.
    payload = {"id": 7, "first_name": name, "last_name": name, "email": "a@b.sa",
               "phone": "0501234567"}
    rendered = evaluate(body, {"1": payload})
    parsed = json.loads(rendered)
    record = parsed["inputs"][0]["properties"] if "inputs" in parsed else parsed["data"][0]
    first = record.get("firstname", record.get("First_Name"))
    expected = name.replace("\x07", "")
    assert first == expected


def test_json_text_escapes_each_character() -> None:
    formula = "{{" + make_iml.json_text("1.value") + "}}"
    for value in HOSTILE:
        text = evaluate(formula, {"1": {"value": value}})
        assert json.loads(f'"{text}"') == value.replace("\x07", "")


def test_literal_rejects_double_quote() -> None:
    with pytest.raises(make_iml.FormulaError, match='"'):
        make_iml.literal('say "hi"')


STAGE_CASES = [("shopify-growth", {}), ("jeddah-fashion-zoho", {}),
               ("woo-startup", {"monthly_orders": 400}), ("headless-nextjs", {"path": "ipaas"})]


def rule_payload(when: Mapping[str, Any]) -> dict[str, Any]:
    payload: dict[str, Any] = {}
    for field, expected in when.items():
        if expected == "set":
            payload[field] = "2026-01-04T10:00:00+03:00"
        elif isinstance(expected, list):
            payload[field] = expected[0]
        else:
            payload[field] = expected
    return payload


@pytest.mark.parametrize(("preset", "values"), STAGE_CASES, ids=[c[0] for c in STAGE_CASES])
def test_stage_rows_match_runtime(preset: str, values: dict[str, Any]) -> None:
    _, plan, spec = load_case(preset, values)
    table = spec["mapping"]["order_stages"]
    store = plan.platform if plan.platform in ("shopify", "woocommerce") else "storefront"
    formula = make_iml.stage_rules(table["rules"], make_iml.order_stage_values(table),
                                   lambda name: f"1.{name}", store)
    crm_values = make_iml.order_stage_values(table)
    checked = 0
    for rule in table["rules"]:
        payload = rule_payload(rule["when"])
        context = TransformContext(mapping=spec["mapping"], platform=store, payload=payload)
        expected = TRANSFORMS["status_to_stage"](payload.get("status"), context).value
        result = evaluate("{{" + formula + "}}", {"1": payload})
        assert result == crm_values[expected["key"]], rule
        if expected["key"] == rule["stage"]:
            assert result == crm_values[rule["stage"]]
            checked += 1
    assert checked >= len(table["rules"]) - 2


def test_stage_unknown_status_empty() -> None:
    _, _, spec = load_case("shopify-growth", {})
    table = spec["mapping"]["order_stages"]
    formula = make_iml.stage_rules(table["rules"], make_iml.order_stage_values(table),
                                   lambda name: f"1.{name}", "shopify")
    assert evaluate("{{" + formula + "}}", {"1": {"financial_status": "mystery"}}) == ""


def test_stage_crm_value_used() -> None:
    rules = [{"when": {"status": ["processing"]}, "stage": "paid_processing"}]
    formula = make_iml.stage_rules(rules, {"paid_processing": "123456"},
                                   lambda name: f"1.{name}", "woocommerce")
    assert evaluate("{{" + formula + "}}", {"1": {"status": "wc-processing"}}) == "123456"


@pytest.mark.parametrize("preset", ["jeddah-fashion-zoho", "shopify-growth"])
def test_ticket_rows_match_spec(preset: str) -> None:
    _, plan, spec = load_case(preset, {"support_channels": ["whatsapp", "phone"],
                                             "support_agents": 12})
    mapping = spec["mapping"]
    formula = make_iml.transform("ticket_status_to_stage", "1.status", mapping, plan.crm)
    assert formula is not None
    context = TransformContext(mapping={**mapping, "crm": plan.crm}, platform="shopify",
                               payload={})
    table = make_iml.ticket_stage_table(mapping, plan.crm)
    assert table
    for status, crm_value in table.items():
        result = evaluate("{{" + formula + "}}", {"1": {"status": status.upper()}})
        assert result == crm_value, status
        runtime = TRANSFORMS["ticket_status_to_stage"](status, context).value
        assert result == (runtime if isinstance(runtime, str) else crm_value), status


@pytest.mark.parametrize("name", ["page_viewed", "product_added_to_cart", "purchase", "nope"])
def test_event_key_matches_runtime(name: str) -> None:
    _, plan, spec = load_case("headless-nextjs", {"path": "ipaas"})
    formula = make_iml.transform("event_key", "1.name", spec["mapping"], plan.crm)
    assert formula is not None
    context = TransformContext(mapping=spec["mapping"], platform="storefront", payload={})
    expected = TRANSFORMS["event_key"](name, context).value
    assert evaluate("{{" + formula + "}}", {"1": {"name": name}}) == (expected or "")


# Usual spellings: taa marbuta, the article, hamza, diacritics, tatweel, a region
# after a comma, and names missing from the table.
CITY_SPELLINGS = ["Riyadh", "جده", "jeddah", "Springfield", "جدة", "الرياض", "مكة المكرمة",
                  "أبها", "المدينة المنورة", "المدينة", "جِدَّة", "جــدة", "Al-Khobar",
                  "  RIYADH  ", "Riyadh, Saudi Arabia", "جدة، السعودية", "الطائف", "Ta'if",
                  "مدينة الرياض", "Riyadh City", "الدمام", "Al Madinah", "بريده", ""]


@pytest.mark.parametrize("city", CITY_SPELLINGS)
def test_city_switch_known_names(city: str) -> None:
    _, plan, spec = load_case("shopify-growth", {})
    formula = make_iml.transform("city_canonical", "1.city", spec["mapping"], plan.crm)
    assert formula is not None
    context = TransformContext(mapping=spec["mapping"], platform="shopify", payload={})
    expected = TRANSFORMS["city_canonical"](city, context).value
    written = expected["en"] if isinstance(expected, dict) else expected
    assert evaluate("{{" + formula + "}}", {"1": {"city": city}}) == (written or "")


def test_refund_total_sums_transactions() -> None:
    _, plan, spec = load_case("shopify-growth", {})
    formula = make_iml.transform("refund_total_sar", "1.refunds[].transactions[].amount",
                                 spec["mapping"], plan.crm)
    assert formula is not None
    payload = {"refunds": [{"transactions": [{"amount": "10.50"}, {"amount": "4.25"}]},
                           {"transactions": [{"amount": "5"}]}]}
    assert evaluate("{{" + formula + "}}", {"1": payload}) == "19.75"


def test_deal_body_stage_is_formula() -> None:
    answers, plan, spec = load_case("shopify-growth", {})
    flow = make.blueprints(build_flows(answers, plan, spec))["order-sync"]["flow"]
    upsert = next(module for module in walk(flow)
                  if module["metadata"]["designer"]["name"] == "Create or update the deal")
    body = upsert["mapper"]["jsonStringBodyContent"]
    rendered = json.loads(evaluate(body, {"1": {
        "id": 9, "name": "#1001", "financial_status": "paid", "fulfillment_status": None,
        "total_price": "150.00", "currency": "SAR", "refunds": [], "discount_codes": []}}))
    properties = rendered["inputs"][0]["properties"]
    assert properties["dealstage"] == "paid_processing"
    assert properties["dealname"] == "Order #1001"
    assert properties["amount"] == "150.00"


@pytest.mark.parametrize(("raw", "expected"), [
    ("0501234567", "+966501234567"),
    ("+966 050 123 4567", "+966501234567"),
    ("00966501234567", "+966501234567"),
    ("966501234567", "+966501234567"),
    ("+966-50-123-4567", "+966501234567"),
    ("٠٥٠١٢٣٤٥٦٧", "+966501234567"),
    ("۰۵۰۱۲۳۴۵۶۷", "+966501234567"),
    ("0112345678", "+966112345678"),
    ("00447911123456", "+447911123456"),
])
def test_phone_formula_matches_runtime(raw: str, expected: str) -> None:
    _, plan, spec = load_case("shopify-growth", {})
    formula = make_iml.transform("phone_e164_sa", "1.phone", spec["mapping"], plan.crm)
    assert formula is not None
    context = TransformContext(mapping=spec["mapping"], platform="shopify", payload={})
    assert evaluate("{{" + formula + "}}", {"1": {"phone": raw}}) == expected
    assert TRANSFORMS["phone_e164_sa"](raw, context).value == expected


def test_phone_formula_keeps_unknown_digits() -> None:
    formula = make_iml.phone_e164_sa("1.phone")
    assert evaluate("{{" + formula + "}}", {"1": {"phone": "12 34"}}) == "1234"


@pytest.mark.parametrize(("preset", "values", "body"), [
    ("shopify-growth", {}, {"id": 7, "updated_at": "2026-01-02T03:04:05+03:00"}),
    ("jeddah-fashion-zoho", {"platform": "woocommerce"},
     {"id": 7, "date_modified_gmt": "2026-01-02T00:04:05"}),
])
def test_dedupe_key_header_then_body(preset: str, values: dict[str, Any],
                                     body: dict[str, Any]) -> None:
    answers, plan, spec = load_case(preset, values)
    flow = make.blueprints(build_flows(answers, plan, spec))["order-sync"]["flow"]
    key = next(module for module in walk(flow)
               if module["module"] == "datastore:ExistRecord")["mapper"]["key"]
    header = "X-Shopify-Event-Id" if plan.platform == "shopify" else "X-WC-Webhook-Delivery-ID"
    for name in (header, header.lower()):
        bundle = {**body, "__IMTHEADERS__": [{"name": "Accept", "value": "*/*"},
                                             {"name": name, "value": "event-1"}]}
        assert evaluate(key, {"1": bundle}) == "event-1"
    fallback = f"7-{next(value for name, value in body.items() if name != 'id')}"
    assert evaluate(key, {"1": body}) == fallback


WOO_HUBSPOT = json.dumps({"path": "ipaas", "crm": "hubspot"})


@pytest.mark.parametrize("values", [WOO_HUBSPOT, json.dumps({"path": "ipaas"})])
def test_woocommerce_meta_read_by_key(values: str) -> None:
    answers, plan, spec = load_case("woo-startup", json.loads(values))
    blueprints = make.blueprints(build_flows(answers, plan, spec))
    text = json.dumps(blueprints)
    assert "meta_data[" not in text
    assert '1.meta_data; \\"value\\"; \\"key\\"; \\"_rabt_email_opt_in\\"' in text


def test_meta_reference_picks_value_by_key() -> None:
    formula = make_iml.path_reference("1", "meta_data[_rabt_email_opt_in]")
    assert formula == 'first(map(1.meta_data; "value"; "key"; "_rabt_email_opt_in"))'
    bundle = {"1": {"meta_data": [{"key": "_other", "value": "no"},
                                  {"key": "_rabt_email_opt_in", "value": "yes"}]}}
    assert evaluate("{{" + formula + "}}", bundle) == "yes"
    assert evaluate("{{" + formula + "}}", {"1": {"meta_data": []}}) is None


def test_list_position_reference_counts_from_one() -> None:
    formula = make_iml.path_reference("1", "categories[0].name")
    assert formula == 'get(1.categories; "1.name")'
    assert evaluate("{{" + formula + "}}", {"1": {"categories": [{"name": "Oud"},
                                                              {"name": "Musk"}]}}) == "Oud"


@pytest.mark.parametrize("path", ["meta_data[a,b]", "meta_data[key].inner", "a[0].b[1]"])
def test_unreadable_list_paths_rejected(path: str) -> None:
    with pytest.raises(make_iml.FormulaError):
        make_iml.path_reference("1", path)


SUPPORT = {"support_channels": ["whatsapp", "phone"], "support_agents": 12}
TICKET_EVENT = {"ticket": {"id": "T-9", "updated_at": "2026-01-02T03:04:05Z"}}


@pytest.mark.parametrize(("preset", "values"), [
    ("shopify-growth", SUPPORT), ("jeddah-fashion-zoho", {})], ids=["hubspot", "zoho"])
def test_ticket_dedupe_key_reads_trigger(preset: str, values: dict[str, Any]) -> None:
    answers, plan, spec = load_case(preset, values)
    flow = make.blueprints(build_flows(answers, plan, spec))["ticket-sync"]["flow"]
    stores = [module for module in walk(flow)
              if module["module"] in ("datastore:ExistRecord", "datastore:AddRecord")
              and "processed_events" in module["metadata"]["designer"]["name"]]
    assert len(stores) >= 2
    for module in stores:
        key = module["mapper"]["key"]
        # Both fields come from the webhook (module 1), joined by writing them side by side.
        assert key == "{{1.ticket.id}}-{{1.ticket.updated_at}}"
        assert " + " not in key
        assert evaluate(key, {"1": TICKET_EVENT}) == "T-9-2026-01-02T03:04:05Z"


def test_ticket_report_event_id_is_dedupe_key() -> None:
    answers, plan, spec = load_case("shopify-growth", SUPPORT)
    flow = make.blueprints(build_flows(answers, plan, spec))["ticket-sync"]["flow"]
    reports = [module for module in walk(flow) + [item for module in walk(flow)
                                                 for item in module.get("onerror", [])]
               if module["module"] == "http:MakeRequest"
               and module["mapper"]["url"].startswith("https://hook.make.example/")]
    assert reports
    for report in reports:
        text = report["mapper"]["jsonStringBodyContent"]
        event = text.split('"event_id": "', 1)[1].split('", "record_id"', 1)[0]
        assert " + " not in event
        # Modules that the report does not name read as empty bundles.
        bundles = defaultdict(dict, {"1": TICKET_EVENT, "error": {"message": "x"}})
        body = json.loads(evaluate(text, bundles))
        assert body["event_id"] == "T-9-2026-01-02T03:04:05Z"


def test_header_dedupe_key_joins_without_plus() -> None:
    answers, plan, spec = load_case("shopify-growth", {})
    flow = make.blueprints(build_flows(answers, plan, spec))["order-sync"]["flow"]
    key = next(module for module in walk(flow)
               if module["module"] == "datastore:ExistRecord")["mapper"]["key"]
    assert " + " not in key
    body = {"id": 7, "updated_at": "2026-01-02T03:04:05+03:00"}
    assert evaluate(key, {"1": body}) == "7-2026-01-02T03:04:05+03:00"
    headers = [{"name": "X-Shopify-Event-Id", "value": "event-1"}]
    assert evaluate(key, {"1": {**body, "__IMTHEADERS__": headers}}) == "event-1"


SLA_STEM = make.SLA_CHECK_STEM
RIYADH = ZoneInfo("Asia/Riyadh")
# Sunday 4 January 2026, 10:00 in Riyadh: inside the default business hours.
SUNDAY_MORNING = datetime(2026, 1, 4, 10, 0, tzinfo=RIYADH)
FRIDAY_MORNING = datetime(2026, 1, 9, 10, 0, tzinfo=RIYADH)


def sla_blueprint(values: dict[str, Any]) -> dict[str, Any]:
    answers, plan, spec = load_case("support-heavy", values)
    blueprint: dict[str, Any] = make.blueprints(build_flows(answers, plan, spec))[SLA_STEM]
    return blueprint


def sla_module(blueprint: dict[str, Any], name: str, index: int = 0) -> dict[str, Any]:
    found = [module for module in walk(blueprint["flow"])
             if module["metadata"]["designer"]["name"] == name]
    return found[index]


SLA_CASES = [({}, "", "Ecom_Ticket_ID"),
             ({"crm": "hubspot", "path": "ipaas"}, "properties.", "ecom_ticket_id")]


@pytest.mark.parametrize(("values", "prefix", "key"), SLA_CASES, ids=["zoho", "hubspot"])
def test_sla_count_grows_in_business_hours(values: dict[str, Any], prefix: str,
                                           key: str) -> None:
    blueprint = sla_blueprint(values)
    read_id = int(sla_module(blueprint, "Read the ticket's counted minutes (data store "
                                        "sla_checks)")["id"])
    count = sla_module(blueprint, "Count the ticket's business minutes (data store sla_checks)")
    formula = count["mapper"]["data"]["minutes"]
    item = read_id - 1
    assert count["mapper"]["key"] == "sla:{{ifempty(" + f"{item}.{prefix}{key}; {item}.id)" + "}}"
    # The first run that sees a ticket starts its count; later runs add 15 in business hours.
    assert float(evaluate(formula, {str(read_id): {}, "now": SUNDAY_MORNING})) == 0
    seen = {str(read_id): {"minutes": "30"}}
    assert float(evaluate(formula, {**seen, "now": SUNDAY_MORNING})) == 45
    assert float(evaluate(formula, {**seen, "now": FRIDAY_MORNING})) == 30
    evening = SUNDAY_MORNING.replace(hour=17, minute=0)
    assert float(evaluate(formula, {**seen, "now": evening})) == 30


def due_formula(module: dict[str, Any]) -> tuple[str, str]:
    """Return the not-alerted field and the "minutes < alert point" formula of a route filter."""
    alerted, due = module["filter"]["conditions"][0][:2]
    assert alerted["o"] == "text:equal"
    assert due["o"] == "boolean:equal"
    return alerted["a"], due["a"]


@pytest.mark.parametrize(("channel", "minutes", "alerts"), [
    ("WhatsApp", "0", False), ("WhatsApp", "15", True), ("Email", "180", False),
    ("Email", "195", True), ("Phone", "45", False), ("Phone", "60", True)])
def test_sla_alert_point_by_channel(channel: str, minutes: str, alerts: bool) -> None:
    # 80 % of 15, 240 and 60 business minutes; the count grows by 15 in this run.
    blueprint = sla_blueprint({})
    read = sla_module(blueprint, "Read the ticket's counted minutes (data store sla_checks)")
    alert = sla_module(blueprint, "Alert the team lead", -1)
    assert alert["filter"]["name"] == "Alert point passed, not alerted yet"
    alerted, due = due_formula(alert)
    item = int(read["id"]) - 1
    bundles = {str(read["id"]): {"minutes": str(float(minutes) - 15)},
               str(item): {"Case_Origin": channel}, "now": SUNDAY_MORNING}
    assert evaluate(due, bundles) is (not alerts)
    assert alerted == "{{" + f"{read['id']}.alerted" + "}}"


def test_sla_alerted_once() -> None:
    blueprint = sla_blueprint({})
    marks = [module for module in walk(blueprint["flow"])
             if module["metadata"]["designer"]["name"] == "Remember the alert (data store "
                                                         "sla_checks)"]
    assert len(marks) == 2
    for mark in marks:
        assert mark["mapper"]["data"]["alerted"] == "yes"
        assert mark["mapper"]["overwrite"] is True


@pytest.mark.parametrize("values", [{}, {"crm": "hubspot", "path": "ipaas"}],
                         ids=["zoho", "hubspot"])
def test_sla_vip_route_reads_contact(values: dict[str, Any]) -> None:
    blueprint = sla_blueprint(values)
    contact = sla_module(blueprint, "Read the ticket's contact")
    vip_alert = sla_module(blueprint, "Alert the team lead", 0)
    assert vip_alert["filter"]["name"] == "VIP customer"
    (condition,) = vip_alert["filter"]["conditions"][0]
    lifetime = "ecom_ltv_sar" if values else "Ecom_LTV_SAR"
    assert lifetime in condition["a"]
    assert str(contact["id"]) in condition["a"]
    # A VIP gets half the phone target: 80 % of 30 minutes.
    read = sla_module(blueprint, "Read the ticket's counted minutes (data store sla_checks)")
    first = next(module for module in walk(blueprint["flow"])
                 if "VIP alert point passed" in str(module.get("filter", {}).get("name")))
    conditions = first["filter"]["conditions"][0]
    item = int(read["id"]) - 1
    channel = "source_type" if values else "Case_Origin"
    record = {"properties": {channel: "Phone"}} if values else {channel: "Phone"}
    for before, passes in (("0", False), ("15", True), ("45", False)):
        bundles = {str(read["id"]): {"minutes": before}, str(item): record,
                   "now": SUNDAY_MORNING}
        results = [evaluate(condition["a"], bundles) for condition in conditions[1:3]]
        assert (results == [False, True]) is passes, (before, results)


@pytest.mark.parametrize("values", [{}, {"crm": "hubspot", "path": "ipaas"}],
                         ids=["zoho", "hubspot"])
def test_ticket_webhook_leaves_alert_to_schedule(values: dict[str, Any]) -> None:
    answers, plan, spec = load_case("support-heavy", values)
    blueprints = make.blueprints(build_flows(answers, plan, spec))
    names = [module["metadata"]["designer"]["name"]
             for module in walk(blueprints["ticket-sync"]["flow"])]
    assert "Alert the team lead" not in names
    assert blueprints[SLA_STEM]["metadata"]["instant"] is False
    first = blueprints[SLA_STEM]["flow"][0]
    assert first["module"] != "gateway:CustomWebHook"


@pytest.mark.parametrize("preset", ["shopify-growth", "jeddah-fashion-zoho"])
@pytest.mark.parametrize("city", ["جدة", "أبها", "Springfield", "", None])
def test_contact_body_city_never_empty(preset: str, city: str | None) -> None:
    body = contact_upsert(preset)["mapper"]["jsonStringBodyContent"]
    payload = {"id": 7, "first_name": "Sara", "last_name": "Ali", "email": "a@b.sa",
               "phone": "0501234567", "default_address": {"city": city}}
    parsed = json.loads(evaluate(body, {"1": payload}))
    record = parsed["inputs"][0]["properties"] if "inputs" in parsed else parsed["data"][0]
    target = "city" if "inputs" in parsed else "Mailing_City"
    context = TransformContext(mapping={}, platform="shopify", payload={})
    expected = TRANSFORMS["city_canonical"](city, context).value["en"]
    if expected is None:
        assert target not in record
    else:
        assert record[target] == expected
    # The fields around the city are still written.
    assert record.get("email", record.get("Email")) == "a@b.sa"


@pytest.mark.parametrize(("text", "expected"), [
    ('{"a": "@@rabt-omitted@@0@@rabt-omitted@@", "b": "x"}', ['{"a": "Jeddah", "b": "x"}',
                                                             '{"b": "x"}']),
    ('{"b": "x", "a": "@@rabt-omitted@@0@@rabt-omitted@@"}', ['{"b": "x", "a": "Jeddah"}',
                                                             '{"b": "x"}']),
    ('{"a": "@@rabt-omitted@@0@@rabt-omitted@@"}', ['{"a": "Jeddah"}', "{}"]),
])
def test_omitted_field_keeps_json_valid(text: str, expected: list[str]) -> None:
    from generator.ipaas.make_builder import _omittable_field

    body = _omittable_field(text, 0, "1.city")
    assert json.loads(evaluate(body, {"1": {"city": "Jeddah"}})) == json.loads(expected[0])
    assert json.loads(evaluate(body, {"1": {"city": ""}})) == json.loads(expected[1])


def order_source_formula(preset: str, values: dict[str, Any]) -> tuple[str, str]:
    """Return the order body's order-source formula and the CRM field it fills."""
    answers, plan, spec = load_case(preset, values)
    flow = make.blueprints(build_flows(answers, plan, spec))["order-sync"]["flow"]
    target = "ecom_order_source" if plan.crm == "hubspot" else "Ecom_Order_Source"
    bodies = [module["mapper"]["jsonStringBodyContent"] for module in walk(flow)
              if target in str((module.get("mapper") or {}).get("jsonStringBodyContent"))]
    assert bodies, f"no order body writes {target}"
    found = re.search('"' + target + r'": "?(\{\{.*?\}\})', bodies[0])
    assert found is not None
    return found.group(1), target


def resolved_source(platform: str, payload: Mapping[str, Any]) -> Any:
    """Return the value the field map's order_source row reads (source, then fallbacks)."""
    if platform == "shopify":
        return (payload.get("landing_site") or payload.get("referring_site")
                or payload.get("source_name"))
    meta = {entry["key"]: entry["value"] for entry in payload.get("meta_data", [])}
    return (meta.get("_wc_order_attribution_utm_source")
            or meta.get("_wc_order_attribution_referrer"))


# (preset, answer values, payloads) per platform. The Shopify case lists organic and
# offline but not tiktok, so a TikTok order must become "other".
ORDER_SOURCE_CASES: dict[str, tuple[str, dict[str, Any], list[dict[str, Any]]]] = {
    "shopify": ("shopify-growth", {"marketing_channels": ["meta", "google", "snapchat",
                                                          "organic", "offline"]}, [
        {"landing_site": "/?utm_source=snapchat&utm_medium=paid"},
        {"landing_site": "/products/oud?utm_source=ig_story", "source_name": "web"},
        {"landing_site": "/?utm_source=tiktok"},
        {"landing_site": "/?utm_source=google&gclid=abc"},
        {"landing_site": "/?gclid=abc"},
        {"landing_site": "/?fbclid=xyz"},
        {"landing_site": "/?utm_source=newsletter"},
        {"landing_site": "/?UTM_SOURCE=Snap"},
        {"landing_site": "/", "referring_site": "https://l.facebook.com/"},
        {"referring_site": "https://www.google.com.sa/search?q=oud"},
        {"landing_site": "/collections/all", "referring_site": "https://www.youtube.com/watch"},
        {"landing_site": "/", "source_name": "web"},
        {"source_name": "pos"},
        {"source_name": "shopify_draft_order", "landing_site": "/?utm_source=google"},
        {"landing_site": "/?utm_source=phone"},
        {"landing_site": "https://shop.example.sa/?ttclid=1"},
        {},
    ]),
    "woocommerce": ("woo-startup", {"monthly_orders": 400}, [
        {"meta_data": [{"key": "_wc_order_attribution_utm_source", "value": "tiktok"}]},
        {"meta_data": [{"key": "_wc_order_attribution_utm_source", "value": "facebook"}]},
        {"meta_data": [{"key": "_wc_order_attribution_referrer",
                        "value": "https://www.instagram.com/"}]},
        {"created_via": "admin"},
        {"meta_data": [{"key": "_wc_order_attribution_source_type", "value": "admin"}]},
        {"meta_data": [{"key": "_wc_order_attribution_session_entry",
                        "value": "https://shop.example.sa/?gclid=1"}]},
        {"created_via": "checkout"},
    ]),
}


@pytest.mark.parametrize("platform", sorted(ORDER_SOURCE_CASES))
def test_order_source_matches_runtime(platform: str) -> None:
    preset, values, payloads = ORDER_SOURCE_CASES[platform]
    formula, _ = order_source_formula(preset, values)
    _, _, spec = load_case(preset, values)
    listed = spec["mapping"]["attribution"]["values"]
    for payload in payloads:
        context = TransformContext(mapping=spec["mapping"], platform=platform, payload=payload)
        expected = TRANSFORMS["utm_channel"](resolved_source(platform, payload), context).value
        written = evaluate(formula, {"1": payload})
        assert written == expected, payload
        assert written in listed, payload


@pytest.mark.parametrize("preset", ["shopify-growth", "jeddah-fashion-zoho"])
def test_order_source_is_a_listed_option(preset: str) -> None:
    formula, target = order_source_formula(preset, {})
    _, _, spec = load_case(preset, {})
    options = spec["mapping"]["attribution"]["values"]
    # A landing URL, the sales channel and an unknown source never reach the pick-list.
    for payload in ({"landing_site": "/products/oud?variant=1", "source_name": "web"},
                    {"landing_site": "/?utm_source=newsletter"}, {}):
        assert evaluate(formula, {"1": payload}) in options, (target, payload)
