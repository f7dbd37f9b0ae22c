"""Make formulas (IML) for the spec's field transforms and for JSON-safe request bodies.

The blueprints build each request body as JSON text with mapped values, so every
mapped value passes through ``json_text``, which escapes it for a JSON string. The
transforms are written from the spec's own tables: ``switch()`` for one-field
tables (ticket stage, event key, support origin, category, city) and nested
``if()`` for the order stage rules, which read several fields.

NOTE: the formulas assume Make's reading of a quoted argument as raw text (no
backslash escapes), with ``/pattern/flags`` as a JavaScript regular expression and
``$1`` in the replacement, as the phone formula of these blueprints already does.
Make's help documents switch(), if(), ifempty(), replace(), map() and sum(); the
quoting and the ``=``, ``and`` and ``or`` operators were read in exported blueprints
only. Check one order of each status in the first test run.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from generator.runtime.attribution import CLICK_IDS, OFFLINE_SOURCES, PLATFORM_WORDS
from generator.runtime.channels import EVENT_KEYS, SUPPORT_ORIGINS
from generator.runtime.cities import load_cities
from generator.runtime.stages import DEFAULT_TICKET_STAGES

# Control characters other than tab, newline and carriage return have no short JSON
# escape; the body drops them.
_CONTROL = "/[\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f]/g"


# First code points of the Arabic-Indic digits (used in Arabic) and the Eastern
# Arabic-Indic digits (used in Persian and Urdu, and typed on some Arabic keyboards).
ARABIC_INDIC_ZERO = 0x0660
EASTERN_ARABIC_INDIC_ZERO = 0x06F0


class FormulaError(ValueError):
    """A spec value cannot be written inside a Make formula."""


def literal(text: str) -> str:
    """Return ``text`` as a quoted formula argument.

    Raises:
        FormulaError: the text contains a double quote, which a raw argument cannot hold.
    """
    if '"' in text:
        raise FormulaError(f"the value {text!r} contains a double quote, which a Make formula "
                           "argument cannot hold: remove it from the spec value")
    return f'"{text}"'


def json_text(expression: str) -> str:
    """Return the formula that escapes ``expression``'s value for a JSON string.

    Backslashes and double quotes get a backslash, newline, carriage return and tab
    become ``\\n``, ``\\r`` and ``\\t``, and other control characters are dropped.
    Arabic letters and emoji pass unchanged, because JSON strings may hold them.
    """
    value = f'replace(toString({expression}); "/([\\x22\\x5c])/g"; "\\$1")'
    for character, escape in (("n", "\\n"), ("r", "\\r"), ("t", "\\t")):
        value = f'replace({value}; "/\\{character}/g"; "{escape}")'
    return f"replace({value}; {literal(_CONTROL)}; emptystring)"


def switch_table(expression: str, table: Mapping[str, str], default: str) -> str:
    """Return a ``switch()`` that maps each key of ``table`` to its value, else ``default``."""
    pairs = "".join(f"; {literal(key)}; {literal(value)}" for key, value in table.items())
    return f"switch({expression}{pairs}; {default})"


def _clean(expression: str) -> str:
    return f'lower(trim(ifempty({expression}; "")))'


# ---------------------------------------------------------------------------
# Stage tables


def _status_value(reference: str, field: str, platform: str) -> str:
    """Return the formula of one status fact as the stage rules compare it."""
    value = _clean(reference)
    if platform == "woocommerce" and field == "status":
        value = f'replace({value}; "/^wc-/"; "")'
    if platform == "shopify" and field == "fulfillment_status":
        value = f'replace({value}; "/^unfulfilled$/"; "")'
    return value


def _condition(when: Mapping[str, Any], reference: Callable[[str], str], platform: str) -> str:
    parts = []
    for field, expected in when.items():
        value = _status_value(reference(field), field, platform)
        if expected == "set":
            parts.append(f'{value} != ""')
        elif isinstance(expected, list):
            options = [f'{value} = {literal("" if item is None else str(item).lower())}'
                       for item in expected]
            parts.append(options[0] if len(options) == 1 else f"({' or '.join(options)})")
        else:
            parts.append(f"{value} = {literal(str(expected).lower())}")
    return " and ".join(parts)


def stage_rules(rules: Sequence[Mapping[str, Any]], values: Mapping[str, str],
                reference: Callable[[str], str], platform: str) -> str:
    """Return nested ``if()`` calls that give the CRM value of the first rule that holds.

    Args:
        rules: the stage table's rules in order, each ``{"when": {field: value}, "stage"}``;
            a value is a list of allowed values (None for an empty field) or ``set``.
        values: the CRM value of each stage key.
        reference: turns a payload field name into its formula reference.
        platform: ``shopify``, ``woocommerce`` or ``storefront``.
    """
    result = '""'
    for rule in reversed(rules):
        stage = str(rule["stage"])
        result = (f"if({_condition(rule['when'], reference, platform)}; "
                  f"{literal(values.get(stage, stage))}; {result})")
    return result


def order_stage_values(table: Mapping[str, Any]) -> dict[str, str]:
    """Return the CRM value of each order stage: its ``crm_value``, else the stage key."""
    return {str(stage["key"]): str(stage["crm_value"] if stage.get("crm_value") is not None
                                   else stage["key"]) for stage in table["stages"]}


def ticket_stage_table(mapping: Mapping[str, Any], crm: str) -> dict[str, str]:
    """Return the CRM ticket stage of each support status the ticket rules list."""
    tickets = mapping.get("ticket_stages")
    if isinstance(tickets, Mapping):
        rules = tickets.get("rules", [])
        values = {str(stage["key"]): str(stage.get("crm_value") or stage["key"])
                  for stage in tickets.get("stages", [])}
    else:
        rules = DEFAULT_TICKET_STAGES["rules"]
        values = dict(DEFAULT_TICKET_STAGES["crm_values"].get(crm, {}))
    table: dict[str, str] = {}
    for rule in rules:
        for status in rule["when"].get("status", []):
            table.setdefault(str(status).lower(), values.get(rule["stage"], rule["stage"]))
    return table


# ---------------------------------------------------------------------------
# Field transforms


def _cities() -> dict[str, str]:
    return {key: city.en for key, city in load_cities().items() if '"' not in key}


# Arabic diacritics (tashkeel, U+064B to U+065F, with the hamza and madda marks) and
# the superscript alef; the runtime removes them as combining marks after NFKD.
_ARABIC_MARKS = "/[\\u064B-\\u065F\\u0670]/g"
# Letters the runtime unifies: hamza forms (NFKD gives the bare letter plus a mark),
# taa marbuta, alef maqsura and the Persian yaa and kaf.
_CITY_LETTERS = (("[أإآ]", "ا"), ("ؤ", "و"), ("ئ", "ي"), ("ة", "ه"),  # noqa: RUF001
                 ("[ىی]", "ي"), ("ک", "ك"))
_CITY_APOSTROPHES = "/['`\\u2018\\u2019\\u02BC\\u02BB\\u00B4]/g"


def city_key(value: str) -> str:
    """Return the formula of a city's lookup key, as ``runtime.cities.city_key`` builds it.

    The text after the first comma (a region or the country) is cut first, because no
    alias holds a comma. Then diacritics, tatweel and apostrophes go, the letters the
    runtime unifies are unified, separators become one space, the words that only
    mean "city" go, and the articles "al", "el" and "ال" are dropped. Unlike the
    runtime, Latin accents are kept (the runtime's NFKD removes them).
    """
    key = f'replace({_clean(value)}; "/[,\u060c].*$/"; emptystring)'
    key = f'replace({key}; {literal(_ARABIC_MARKS)}; emptystring)'
    key = f'replace({key}; "/\\u0640/g"; emptystring)'
    for letters, letter in _CITY_LETTERS:
        key = f'replace({key}; "/{letters}/g"; "{letter}")'
    key = f'replace({key}; {literal(_CITY_APOSTROPHES)}; emptystring)'
    key = f'replace({key}; "/[\\s\\-_.\\/\\\\()]+/g"; " ")'
    # Each replace() below needs the words separated by exactly one space.
    key = f'replace(" " + {key} + " "; "/ (?:city|مدينه)(?= )/g"; emptystring)'
    key = f'replace({key}; "/ (?:al|el|ال)(?= )/g"; emptystring)'
    # "ال" before at least two more letters is the article; "الف" keeps its letters.
    key = f'replace({key}; "/ ال(?=[^ ]{{2}})/g"; " ")'
    return f'trim(replace({key}; "/ +/g"; " "))'


# ---------------------------------------------------------------------------
# Marketing channel (utm_channel)


def _first_set(formulas: Sequence[str]) -> str:
    """Return the formula of the first non-empty value of ``formulas``."""
    value = formulas[0]
    for formula in formulas[1:]:
        value = f"ifempty({value}; {formula})"
    return value


def _platform(text: str, *, offline: bool) -> str:
    """Return the formula of ``classify_source``: the channel a text names, else "".

    The regular expression keeps the first whole word (letters and digits between
    other characters) that names a platform, as the runtime reads the words in
    order. With ``offline``, a text that is exactly an offline source gives "offline".
    """
    words = "|".join(sorted(PLATFORM_WORDS, key=lambda word: (-len(word), word)))
    word = f'replace({text}; "/^.*?(?:^|[^a-z0-9])({words})(?:[^a-z0-9]|$).*$/"; "$1")'
    table = dict(PLATFORM_WORDS)
    if offline:
        table.update(dict.fromkeys(OFFLINE_SOURCES, "offline"))
    return switch_table(word, table, '""')


def _query_value(text: str, names: str) -> str:
    """Return the formula of the first ``names=value`` query parameter's value, else ""."""
    return f'replace({text}; "/^(?:.*?[?&](?:{names})=([^&#]*))?.*$/"; "$1")'


def _click_channel(text: str) -> str:
    """Return the formula of the channel of the first ad click id in a URL, else ""."""
    names = "|".join(CLICK_IDS)
    click = f'replace({text}; "/^(?:.*?[?&]({names})=[^&#\\s][^&#]*)?.*$/"; "$1")'
    return switch_table(click, CLICK_IDS, '""')


def _host(text: str) -> str:
    """Return the formula of a URL's host; "" for a path, a query or empty text."""
    return f'replace({text}; "/^(?:[a-z][a-z0-9+.-]*:)?(?:\\/\\/)?([^\\/?#]*).*$/"; "$1")'


def _offline_order(resolved: str, fields: Sequence[str], store: str) -> str:
    """Return the condition that the order was placed offline (point of sale, staff, phone)."""
    values = {"shopify": ("pos", "shopify_draft_order"), "woocommerce": ("admin",)}.get(store, ())
    checks = [f"{_clean(field)} = {literal(value)}" for field in fields for value in values]
    checks.append(f'{_platform(resolved, offline=True)} = "offline"')
    return " or ".join(checks)


def utm_channel(value: str, sources: Mapping[str, Sequence[str]], store: str,
                mapping: Mapping[str, Any]) -> str:
    """Return the formula of the ``utm_channel`` transform, in the runtime's order of signals.

    An offline order comes first. Then the first UTM source (in the mapped value's
    or the landing page's query, then the payload's UTM field) decides, and one that
    names no platform gives "organic". Without one, an ad click id in those URLs
    decides, then the referrer's host; else the order is organic. A channel that
    the mapping's ``attribution.values`` does not list becomes its ``other_value``.
    Unlike the runtime, the formula sets no flags and does not read a bare word in
    Shopify's landing or referrer field as a UTM source.

    Args:
        value: the formula of the mapped value (the source with its fallbacks).
        sources: formulas of the payload's ``landing``, ``referrer``, ``utm`` and
            ``offline`` fields (make_builder.CHANNEL_FIELDS).
        store: ``shopify``, ``woocommerce`` or ``storefront``.
        mapping: the field map, for ``attribution``.
    """
    resolved = _clean(value)
    urls = [resolved, *(_clean(item) for item in sources["landing"])]
    utm = _first_set([*(_query_value(url, "utm_source") for url in urls),
                      *(_clean(item) for item in sources["utm"])])
    referrers = [resolved, *(_clean(item) for item in sources["referrer"])]
    unsourced = _first_set([*(_click_channel(url) for url in urls),
                            *(_platform(_host(url), offline=False) for url in referrers),
                            '"organic"'])
    channel = (f'if({_offline_order(resolved, sources["offline"], store)}; "offline"; '
               f'if({utm} != ""; ifempty({_platform(utm, offline=True)}; "organic"); '
               f"{unsourced}))")
    attribution = mapping.get("attribution")
    if not isinstance(attribution, Mapping) or not isinstance(attribution.get("values"), list):
        return channel
    other = str(attribution.get("other_value") or "other")
    listed = {str(item): str(item) for item in attribution["values"]}
    return switch_table(channel, listed, literal(other))


def _array_path(reference: str) -> str:
    """Return the formula that lists the values of a ``a[].b[].c`` reference."""
    parts = reference.split("[].")
    value = parts[0]
    for index, part in enumerate(parts[1:], start=1):
        value = f"map({value}; {literal(part)})"
        if index < len(parts) - 1:
            value = f"flatten({value})"
    return value


def path_reference(base: str, path: str) -> str:
    """Return the formula that reads ``path`` in module ``base``'s bundle.

    A spec path may pick one item of a list: ``name[0]`` by position (0 first, as in
    the runtime), or ``meta_data[key]``, the value of the WooCommerce meta entry with
    that key. Make references hold neither, so the first becomes ``get()`` with a
    1-based path and the second ``first(map(list; "value"; "key"; key))``.

    NOTE: map()'s filter form (array; key; filter key; comma-separated values), get()
    with a 1-based path and first() were read in Make community forum posts that cite
    Make's help, not in the help itself; check one WooCommerce order in the first run.

    Raises:
        FormulaError: the path picks by key and reads on inside the value, picks twice,
            or its key holds a comma, which map() reads as a list of values.
    """
    match = re.search(r"\[([^\]]+)\]", path)
    if match is None:
        return f"{base}.{path}"
    head, selector, rest = path[:match.start()], match.group(1), path[match.end():]
    if "[" in rest or (rest and not rest.startswith(".")):
        raise FormulaError(f"the path {path!r} picks more than one list item: Make blueprints "
                           "read one [n] or [key] per path")
    if selector.isdigit():
        return f"get({base}.{head}; {literal(str(int(selector) + 1) + rest)})"
    if rest or "," in selector:
        raise FormulaError(f"the path {path!r} cannot be read in Make: a [key] must end the "
                           "path and the key cannot hold a comma")
    return f"first(map({base}.{head}; {literal('value')}; {literal('key')}; {literal(selector)}))"


def header_value(bundle: int, header: str) -> str:
    """Return the formula that reads one request header a custom webhook received.

    With "Get request headers" on, Make's custom webhook passes the headers as the
    list ``__IMTHEADERS__`` of ``{name, value}`` items, and map() filters that list by
    exact, case-sensitive name. So the formula accepts the name as sent and in lower
    case (HTTP/2 sends lower-case names).

    NOTE: the list's name and shape were read in third-party exported blueprints and
    Make community answers, not in Make's help; the body fallback covers a miss.
    """
    names = ",".join(dict.fromkeys((header, header.lower())))
    return f"first(map({bundle}.__IMTHEADERS__; {literal('value')}; {literal('name')}; " \
           f"{literal(names)}))"


def _ascii_digits(value: str) -> str:
    """Return the formula that turns Arabic-Indic and Eastern Arabic-Indic digits into 0-9."""
    for digit in range(10):
        arabic, persian = chr(ARABIC_INDIC_ZERO + digit), chr(EASTERN_ARABIC_INDIC_ZERO + digit)
        value = f'replace({value}; "/[{arabic}{persian}]/g"; "{digit}")'
    return value


def phone_e164_sa(value: str) -> str:
    """Return the formula that writes a Saudi phone number in E.164.

    The steps follow the API path's rules as far as Make's replace() allows. Arabic
    digits become 0-9, everything but digits and ``+`` is dropped, and a leading ``00``
    becomes ``+``. Then ``+966``, ``966``, ``+966 0`` or a local ``0`` before a 9-digit
    national number becomes ``+966``. Any other number keeps its digits. Unlike the
    API path, the formula does not check the number plan and sets no flag (landline,
    toll-free, invalid), and the workflows README lists this.
    """
    digits = f'replace({_ascii_digits(value)}; "/[^0-9+]/g"; emptystring)'
    international = f'replace({digits}; "/^00/"; "+")'
    country = f'replace({international}; "/^\\+?9660?([1-9][0-9]{{8}})$/"; "+966$1")'
    return f'replace({country}; "/^0?([1-9][0-9]{{8}})$/"; "+966$1")'


def transform(name: str, value: str, mapping: Mapping[str, Any], crm: str) -> str | None:
    """Return the formula of transform ``name`` applied to ``value``, or None for none.

    ``value`` is the formula of the field's source (a module reference, with its
    fallbacks). Order stages are built by ``stage_rules``, because they read
    several payload fields.
    """
    simple = {
        "identity": value,
        "id_text": value,
        "sku_or_variant_id": f"trim({value})",
        "email_lower": f"lower(trim({value}))",
        "money_sar": f'formatNumber(parseNumber({value}; "."); 2; "."; "")',
        "iso_datetime": f'formatDate({value}; "YYYY-MM-DDTHH:mm:ssZ")',
        "riyadh_date": f'formatDate({value}; "YYYY-MM-DD"; "Asia/Riyadh")',
        "deal_name": f'"Order #" + replace(trim({value}); "/^#/"; "")',
        "html_to_text": f"stripHTML({value})",
        "list_join": f'join({value}; ", ")',
        "phone_e164_sa": phone_e164_sa(value),
        "event_key": switch_table(_clean(value), EVENT_KEYS, '""'),
        "channel_to_origin": switch_table(
            _clean(value), _origins(crm), '""'),
        "category_map": switch_table(
            f"trim({value})", {str(key): str(item) for key, item
                               in (mapping.get("category_map") or {}).items()}, f"trim({value})"),
        # An unknown city gives an empty text, and the request body then leaves the
        # field out (make_builder.OMITTED_WHEN_EMPTY), as the runtime does.
        "city_canonical": switch_table(city_key(value), _cities(), '""'),
        "ticket_status_to_stage": switch_table(_clean(value), ticket_stage_table(mapping, crm),
                                               '""'),
    }
    if name == "refund_total_sar":
        return f'formatNumber(sum({_array_path(value)}); 2; "."; "")'
    return simple.get(name)


def _origins(crm: str) -> dict[str, str]:
    origins = dict(SUPPORT_ORIGINS.get(crm, SUPPORT_ORIGINS["custom"]))
    aliases = {"wa": "whatsapp", "call": "phone", "voice": "phone", "mail": "email"}
    origins.update({alias: origins[channel] for alias, channel in aliases.items()
                    if channel in origins})
    return origins


# The blueprints' method for each transform, for the workflows README.
APPROACHES: dict[str, dict[str, str]] = {
    "status_to_stage": {
        "en": "nested if() over the stage table's rules in order, each rule's fields compared "
              "after lower-casing",
        "ar": "دوال if() متداخلة على قواعد جدول المراحل بترتيبها، وتُقارن حقول كل قاعدة بعد "
              "تحويلها إلى أحرف صغيرة"},
    "ticket_status_to_stage": {
        "en": "switch() over the ticket stage table",
        "ar": "الدالة switch() على جدول مراحل التذاكر"},
    "event_key": {"en": "switch() over the event names", "ar": "الدالة switch() على أسماء الأحداث"},
    "channel_to_origin": {"en": "switch() over the support channels",
                          "ar": "الدالة switch() على قنوات الدعم"},
    "category_map": {"en": "switch() over the category map; an unmapped category passes as sent",
                     "ar": "الدالة switch() على جدول التصنيفات، ويمرّ التصنيف غير المدرج كما ورد"},
    "city_canonical": {
        "en": "switch() over the city aliases after the runtime's folding, written as replace() "
              "steps: the text after a comma, diacritics, tatweel and apostrophes are removed, "
              "the hamza forms of alef become alef and taa marbuta becomes haa, and the words that "
              "mean \"city\" and the articles al, el and ال are dropped. So جدة, الرياض and "
              "مكة المكرمة are found. Latin accents are not removed. A city missing from the "
              "table leaves the CRM's city field out of the request, so the city the contact "
              "has stays, and the raw city field keeps the spelling",
        "ar": "الدالة switch() على أسماء المدن البديلة بعد توحيد الكتابة كما في مسار API بسلسلة "
              "replace(): يُحذف ما بعد الفاصلة والتشكيل والتطويل والفواصل العليا، وتصبح صور "
              "الهمزة على الألف ألفًا والتاء المربوطة هاءً، وتُحذف كلمة \"مدينة\" وأداة التعريف "
              "(al وel وال). فتُعرف بذلك جدة والرياض ومكة المكرمة. ولا تُحذف علامات الحروف "
              "اللاتينية. وإن لم تكن المدينة في الجدول فلا يُرسل حقل المدينة في الطلب، فتبقى "
              "مدينة جهة الاتصال كما هي، ويحفظ حقل المدينة الأصلي الكتابة كما وردت"},
    "phone_e164_sa": {
        "en": "replace() steps: Arabic digits to 0-9, a leading 00 to +, then +966, 966, "
              "+966 0 or a local 0 before a 9-digit number to +966. The number plan is not "
              "checked and no flag is set: a landline is not marked as unable to receive "
              "WhatsApp, and a toll-free or invalid number keeps its digits where the API path "
              "leaves the field empty",
        "ar": "سلسلة replace(): تُحوَّل الأرقام العربية إلى 0-9، و00 في البداية إلى +، ثم "
              "تُستبدل +966 أو 966 أو ‎+966 0 أو الصفر المحلي قبل رقم من 9 خانات بالبادئة ‎+966؛ ولا "
              "يُتحقق من خطة الترقيم ولا تُوضع علامة، فلا يُعلَّم الهاتف الثابت بأنه لا يستقبل "
              "رسائل WhatsApp، ويبقى الرقم المجاني أو غير الصالح بأرقامه بينما يتركه مسار API "
              "فارغًا"},
    "refund_total_sar": {"en": "sum() over the refund transactions' amounts",
                         "ar": "الدالة sum() على مبالغ معاملات الاسترداد"},
    "split_name": {
        "en": "not computed: the first and last name fields pass as the store sends them; a "
              "customer with the whole name in one field keeps it there",
        "ar": "لا تُحسب: يمرّ حقلا الاسم الأول والأخير كما يرسلهما المتجر، ويبقى الاسم الكامل "
              "في حقله إن أُرسل في حقل واحد"},
    "utm_channel": {
        "en": "nested if() in the API path's order: an offline order (point of sale, draft or "
              "admin order), then the first UTM source, then an ad click id (gclid, fbclid, "
              "ttclid, ScCid), then the referrer's host, else organic. Each text is read with "
              "replace() for its first word that names a platform, as the runtime does. A "
              "channel the field map does not list becomes its other value, so the CRM "
              "pick-list only receives a listed value. Unlike the API path, no review flags "
              "are written",
        "ar": "دوال if() متداخلة بترتيب مسار API: الطلب غير الإلكتروني (نقطة البيع أو المسودة "
              "أو طلب الإدارة) أولًا، ثم أول مصدر UTM، ثم معرّف النقرة الإعلانية (gclid وfbclid "
              "وttclid وScCid)، ثم نطاق الموقع المُحيل، وإلا فالقناة organic. وتقرأ replace() "
              "في كل نص أول كلمة تدل على منصة كما يفعل مسار API. وتصبح القناة غير المدرجة في "
              "جدول الحقول القيمةَ البديلة other، فلا تستقبل قائمة الاختيار في CRM إلا قيمة "
              "مدرجة. ولا تُكتب علامات المراجعة كما في مسار API"},
}
