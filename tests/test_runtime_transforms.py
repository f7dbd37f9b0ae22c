"""Tests for the named transforms in generator/runtime, which generated services copy verbatim."""

# Arabic letters, Arabic-Indic digits and Arabic separators are the test data here.
# ruff: noqa: RUF001

from __future__ import annotations

import ast
import datetime as dt
import itertools
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from generator.cli import main
from generator.runtime.cities import CITIES_FILE, city_key, find_city, load_cities
from generator.runtime.digits import ascii_digits, strip_format_marks
from generator.runtime.emails import normalise_email
from generator.runtime.money import parse_amount, split_vat
from generator.runtime.names import split_full_name
from generator.runtime.phone import normalise_phone
from generator.runtime.result import UNUSABLE_FLAGS, TransformContext, Transformed
from generator.runtime.stages import DEFAULT_TICKET_STAGES
from generator.runtime.transforms import TRANSFORMS, apply

REPO = Path(__file__).resolve().parents[1]
RUNTIME_DIR = REPO / "generator" / "runtime"
CATALOGUE = REPO / "generator" / "data" / "spec" / "transforms.yaml"
STAGE_TABLE = REPO / "generator" / "data" / "spec" / "stages.yaml"

# Preset per (platform family, CRM) whose generated mapping.yaml the stage tests read.
PRESETS = {
    "shopify": "riyadh-perfume-hubspot",
    "woocommerce": "woo-startup",
    "storefront": "headless-nextjs",
    "woocommerce-custom": "custom-erp",
    "shopify-zoho": "jeddah-fashion-zoho",
}
ALLOWED_THIRD_PARTY = {"phonenumbers", "email_validator", "yaml"}


def context(payload: dict[str, Any] | None = None, platform: str = "shopify",
            mapping: dict[str, Any] | None = None, **changes: Any) -> TransformContext:
    return TransformContext(payload=payload or {}, platform=platform,
                            mapping=mapping or {}, **changes)


@pytest.fixture(scope="module")
def mappings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Generated integration/mapping.yaml documents, baked once per preset."""
    documents: dict[str, dict[str, Any]] = {}
    for label, preset in PRESETS.items():
        output = tmp_path_factory.mktemp(label)
        result = CliRunner().invoke(
            main, ["new", "--no-input", "--preset", preset, "--output-dir", str(output)])
        assert result.exit_code == 0, result.output
        (path,) = output.glob("*/integration/mapping.yaml")
        documents[label] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return documents


# --- registry and packaging -------------------------------------------------


def test_registry_matches_catalogue() -> None:
    catalogue = yaml.safe_load(CATALOGUE.read_text(encoding="utf-8"))
    names = [entry["name"] for entry in catalogue["transforms"]]
    assert list(TRANSFORMS) == names


def test_catalogue_examples_hold() -> None:
    catalogue = yaml.safe_load(CATALOGUE.read_text(encoding="utf-8"))
    for entry in catalogue["transforms"]:
        example = entry.get("example")
        if example is None:
            continue
        result = apply(entry["name"], example["input"], context())
        value = result.value
        if isinstance(value, dict):
            value = value.get("en")
        assert value == example["output"], entry["name"]


def test_unknown_transform_is_flagged() -> None:
    result = apply("no_such_transform", "x", context())
    assert result == Transformed(value=None, raw="x", flags=("unknown_transform",))
    assert not result.ok


def test_ok_follows_unusable_flags() -> None:
    assert Transformed(value="+966112345678", raw="011", flags=("landline",)).ok
    assert Transformed(value=None, raw="x", flags=("invalid_phone", "kept_raw")).ok is False
    assert "missing" in UNUSABLE_FLAGS
    assert "currency_not_sar" not in UNUSABLE_FLAGS


def _imports(path: Path) -> list[tuple[str, int]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name, 0) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.append((node.module or "", node.level))
    return found


@pytest.mark.parametrize("path", sorted(RUNTIME_DIR.glob("*.py")), ids=lambda path: path.name)
def test_runtime_imports_stay_inside(path: Path) -> None:
    for module, level in _imports(path):
        if level > 0:
            continue
        top = module.split(".")[0]
        assert top != "generator", f"{path.name} imports {module}"
        assert top in sys.stdlib_module_names or top in ALLOWED_THIRD_PARTY, (
            f"{path.name} imports {module}")


def test_runtime_copy_imports_alone(tmp_path: Path) -> None:
    copy = tmp_path / "service_runtime"
    shutil.copytree(RUNTIME_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    script = (
        "import sys\n"
        "from service_runtime.result import TransformContext\n"
        "from service_runtime.transforms import apply\n"
        "ctx = TransformContext(payload={}, platform='shopify', mapping={})\n"
        "print(apply('city_canonical', 'جده', ctx).value['en'])\n"
        "print(apply('phone_e164_sa', '0501234567', ctx).value)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'generator'))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["Jeddah", "+966501234567", "[]"]


def test_cities_file_sits_next_to_module() -> None:
    assert CITIES_FILE.parent == RUNTIME_DIR
    assert CITIES_FILE.is_file()


# --- junk input ---------------------------------------------------------------

JUNK: list[Any] = [None, 0, [], {}, "\x00", "x" * 10_000, "٠" * 10_000, "9" * 10_000,
                   -1.5, float("nan"), float("inf"), True, object(), [{"a": None}],
                   {"first_name": 5, "last_name": []}]
JUNK_IDS = ["none", "zero", "list", "dict", "nul", "10kb", "10kb_arabic_digits",
            "10kb_digits", "negative_float", "nan", "inf", "bool", "object", "nested", "bad_name"]
JUNK_PAYLOADS: list[dict[str, Any]] = [
    {},
    {"refunds": "x", "order": [], "meta_data": {"a": 1}, "customer": None, "currency": 5,
     "source_name": [], "landing_site": 7, "attribution": "x", "status": {}},
    {"order": {"refunds": [None, 5, {"amount": "x"}], "status": None},
     "meta_data": [None, {"key": 5}], "refunds": [{"transactions": "x"}]},
]
JUNK_MAPPINGS: list[dict[str, Any]] = [
    {},
    {"order_stages": {"rules": "x", "stages": 5}, "ticket_stages": [], "crm": None,
     "category_map": "x", "attribution": "x"},
    {"order_stages": {"rules": [None, {"when": []}, {"when": {"status": "set"}}]},
     "ticket_stages": {"rules": {"shopify": 5}}, "category_map": {None: None},
     "attribution": {"values": [None, 5], "other_value": []}},
]


@pytest.mark.parametrize("name", list(TRANSFORMS))
@pytest.mark.parametrize("junk", JUNK, ids=JUNK_IDS)
def test_transform_survives_junk(name: str, junk: Any) -> None:
    for payload, mapping in itertools.product(JUNK_PAYLOADS, JUNK_MAPPINGS):
        for platform in ("shopify", "woocommerce", "storefront", "unknown"):
            result = apply(name, junk, context(payload, platform, mapping))
            assert isinstance(result, Transformed)
            assert result.raw is junk


def test_ten_kilobyte_inputs_are_rejected() -> None:
    long_digits = "9" * 10_000
    assert apply("phone_e164_sa", long_digits, context()).flags == ("invalid_phone", "kept_raw")
    assert apply("email_lower", "x" * 10_000, context()).flags == ("invalid_email", "kept_raw")
    assert apply("iso_datetime", long_digits, context()).flags == ("invalid_datetime", "kept_raw")
    assert apply("money_sar", long_digits, context()).flags == ("invalid_amount", "kept_raw")


# --- digits -------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("٠١٢٣٤٥٦٧٨٩", "0123456789"),
    ("۰۱۲۳۴۵۶۷۸۹", "0123456789"),
    ("رقم ٣ من ١٠", "رقم 3 من 10"),
    ("abc 123", "abc 123"),
    ("", ""),
], ids=["arabic_indic", "persian", "mixed_text", "ascii", "empty"])
def test_ascii_digits(text: str, expected: str) -> None:
    assert ascii_digits(text) == expected


def test_strip_format_marks_removes_bidi_and_zero_width() -> None:
    marks = "\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u061c\u200b\ufeff"
    assert strip_format_marks(f"{marks}+966{marks}50") == "+96650"
    assert strip_format_marks("الرياض") == "الرياض"


def test_strip_format_marks_keeps_ascii_controls() -> None:
    # ASCII text skips the per-character check. Its control characters are Cc, not Cf.
    assert strip_format_marks("a\tb\n\x00c") == "a\tb\n\x00c"
    assert strip_format_marks("a\tb\u200f") == "a\tb"


# --- phone --------------------------------------------------------------------

MOBILE = "+966501234567"


@pytest.mark.parametrize("text", [
    pytest.param("0501234567", id="local_05"),
    pytest.param("501234567", id="local_5"),
    pytest.param("+966501234567", id="plus_966"),
    pytest.param("00966501234567", id="00966"),
    pytest.param("966501234567", id="966_without_plus"),
    pytest.param("+966 50 123 4567", id="spaced"),
    pytest.param("+966 0501234567", id="stray_trunk_0"),
    pytest.param("00966 0501234567", id="00966_stray_trunk_0"),
    pytest.param("+966 (0) 50 123 4567", id="bracketed_trunk_0"),
    pytest.param("050-123-4567", id="dashes"),
    pytest.param("050.123.4567", id="dots"),
    pytest.param("(050) 123 4567", id="brackets"),
    pytest.param("٠٥٠١٢٣٤٥٦٧", id="arabic_indic"),
    pytest.param("۰۵۰۱۲۳۴۵۶۷", id="persian_digits"),
    pytest.param("+٩٦٦٥٠١٢٣٤٥٦٧", id="arabic_indic_international"),
    pytest.param("\u202a+966501234567\u202c", id="bidi_embedding"),
    pytest.param("\u200f0501234567\u200e", id="rlm_lrm"),
    pytest.param("\u2066+966 50 123 4567\u2069", id="bidi_isolate"),
    pytest.param("\u061c0501234567", id="arabic_letter_mark"),
    pytest.param("05\u200b01234567", id="zero_width_space"),
    pytest.param("  0501234567 ", id="surrounding_spaces"),
])
def test_mobile_forms_normalise(text: str) -> None:
    result = apply("phone_e164_sa", text, context())
    assert result.value == MOBILE
    assert result.raw == text
    assert result.flags == ()
    assert result.ok


def test_mobile_sent_as_number() -> None:
    assert apply("phone_e164_sa", 501234567, context()).value == MOBILE


@pytest.mark.parametrize(("text", "e164", "flags"), [
    ("0112345678", "+966112345678", ("not_messageable", "landline")),
    ("0126123456", "+966126123456", ("not_messageable", "landline")),
    ("0138123456", "+966138123456", ("not_messageable", "landline")),
    ("8001234567", "+9668001234567", ("not_messageable", "toll_free")),
    ("920012345", "+966920012345", ("not_messageable",)),
], ids=["landline_riyadh", "landline_jeddah", "landline_east", "toll_free", "unified_9200"])
def test_non_mobile_numbers_are_not_messageable(
        text: str, e164: str, flags: tuple[str, ...]) -> None:
    result = apply("phone_e164_sa", text, context())
    assert result.value == e164
    assert result.flags == flags
    assert result.ok


@pytest.mark.parametrize("text", [
    pytest.param("0521234567", id="052_range"),
    pytest.param("05012345", id="too_short"),
    pytest.param("05O1234567", id="letter_o"),
    pytest.param("abc", id="letters"),
    pytest.param("+966 50 123 4567 ext 9", id="extension"),
    pytest.param("050123456789012", id="too_long"),
    pytest.param("+", id="plus_only"),
])
def test_invalid_numbers_keep_raw(text: str) -> None:
    result = apply("phone_e164_sa", text, context())
    assert result.value is None
    assert result.raw == text
    assert result.flags == ("invalid_phone", "kept_raw")
    assert not result.ok


@pytest.mark.parametrize("value", [None, "", "   ", "\u200f"], ids=["none", "empty", "spaces",
                                                                 "mark_only"])
def test_empty_phone_is_missing(value: Any) -> None:
    assert apply("phone_e164_sa", value, context()).flags == ("missing",)


def test_phone_of_wrong_type_is_invalid() -> None:
    assert apply("phone_e164_sa", ["0501234567"], context()).flags == ("invalid_phone", "kept_raw")


def test_phone_region_comes_from_context() -> None:
    assert apply("phone_e164_sa", "0501234567", context(region="AE")).value == "+971501234567"
    assert apply("phone_e164_sa", "+971501234567", context()).value == "+971501234567"


def test_normalise_phone_reports_kind() -> None:
    mobile = normalise_phone("0501234567")
    assert (mobile.e164, mobile.kind, mobile.messageable) == (MOBILE, "mobile", True)
    landline = normalise_phone("0112345678")
    assert (landline.kind, landline.messageable) == ("landline", False)
    assert normalise_phone("8001234567").kind == "toll_free"
    assert normalise_phone("920012345").kind == "other"
    invalid = normalise_phone("0521234567")
    assert (invalid.e164, invalid.kind, invalid.messageable) == (None, None, False)


def test_normalise_phone_cached_per_text_and_region() -> None:
    first = normalise_phone("0501234567")
    assert normalise_phone("0501234567") is first
    assert normalise_phone("0501234567", "SA").e164 == MOBILE
    # The same digits in another region are another number.
    assert normalise_phone("0501234567", "AE").e164 != MOBILE


# --- email --------------------------------------------------------------------


def test_normalise_email_cached_per_text() -> None:
    assert normalise_email(" Sara@Example.COM ") == "sara@example.com"
    assert normalise_email(" Sara@Example.COM ") == "sara@example.com"
    assert normalise_email.cache_info().hits >= 1
    assert normalise_email("not an address") is None
    assert normalise_email("not an address") is None


@pytest.mark.parametrize(("text", "expected"), [
    (" Sara@Example.COM ", "sara@example.com"),
    ("sara@example.com", "sara@example.com"),
    ("SARA.OTAIBI+shop@Example.Com", "sara.otaibi+shop@example.com"),
    ("\u200fsara@example.com\u200e", "sara@example.com"),
    ("سارة@example.com", "سارة@example.com"),
], ids=["mixed_case_and_spaces", "already_clean", "plus_tag", "bidi_marks", "arabic_local_part"])
def test_email_is_trimmed_and_lowercased(text: str, expected: str) -> None:
    result = apply("email_lower", text, context())
    assert result.value == expected
    assert result.flags == ()


@pytest.mark.parametrize("text", [
    "a@b", "sara@", "@example.com", "sara example.com", "Sara <sara@example.com>",
    "sara..x@example.com", "sara@example.com.", "sara@localhost",
], ids=["no_dot_domain", "no_domain", "no_local_part", "no_at", "display_name",
        "double_dot", "trailing_dot", "localhost"])
def test_invalid_email_keeps_raw(text: str) -> None:
    result = apply("email_lower", text, context())
    assert result.value is None
    assert result.raw == text
    assert result.flags == ("invalid_email", "kept_raw")


@pytest.mark.parametrize("value", [None, "", "  "], ids=["none", "empty", "spaces"])
def test_empty_email_is_missing_not_empty_text(value: Any) -> None:
    result = apply("email_lower", value, context())
    assert result.value is None
    assert result.flags == ("missing",)


def test_email_of_wrong_type_is_invalid() -> None:
    assert apply("email_lower", 5, context()).flags == ("invalid_email", "kept_raw")


# --- city ---------------------------------------------------------------------


@pytest.mark.parametrize(("text", "english", "arabic"), [
    ("جدة", "Jeddah", "جدة"),
    ("جده", "Jeddah", "جدة"),
    ("جدّة", "Jeddah", "جدة"),
    ("Jiddah", "Jeddah", "جدة"),
    ("JEDDAH", "Jeddah", "جدة"),
    ("الرياض", "Riyadh", "الرياض"),
    ("رياض", "Riyadh", "الرياض"),
    ("الريـــاض", "Riyadh", "الرياض"),
    ("الرِّيَاض", "Riyadh", "الرياض"),
    ("Ar Riyad", "Riyadh", "الرياض"),
    ("Al-Riyadh", "Riyadh", "الرياض"),
    ("Riyadh City", "Riyadh", "الرياض"),
    ("مدينة الرياض", "Riyadh", "الرياض"),
    ("Riyadh, Saudi Arabia", "Riyadh", "الرياض"),
    ("جدة، السعودية", "Jeddah", "جدة"),
    ("مكه", "Makkah", "مكة المكرمة"),
    ("Mecca", "Makkah", "مكة المكرمة"),
    ("Makkah Al-Mukarramah", "Makkah", "مكة المكرمة"),
    ("المدينه المنوره", "Madinah", "المدينة المنورة"),
    ("Medina", "Madinah", "المدينة المنورة"),
    ("Al Khobar", "Khobar", "الخبر"),
    ("al-khobar", "Khobar", "الخبر"),
    ("Alkhobar", "Khobar", "الخبر"),
    ("Ad Dammam", "Dammam", "الدمام"),
    ("الطايف", "Taif", "الطائف"),
    ("ابها", "Abha", "أبها"),
    ("إبها", "Abha", "أبها"),
    ("Buraydah", "Buraidah", "بريدة"),
    ("الهفوف", "Al-Ahsa", "الأحساء"),
    ("الاحساء", "Al-Ahsa", "الأحساء"),
    ("Hofuf", "Al-Ahsa", "الأحساء"),
    ("Ha'il", "Hail", "حائل"),
    ("Ḥāʼil", "Hail", "حائل"),
    ("حايل", "Hail", "حائل"),
    ("Khamis Mushayt", "Khamis Mushait", "خميس مشيط"),
    ("Jizan", "Jazan", "جازان"),
    ("Jubail", "Al Jubail", "الجبيل"),
    ("القطيف", "Qatif", "القطيف"),
    ("Kharj", "Al Kharj", "الخرج"),
    ("Al Baha", "Al Bahah", "الباحة"),
    ("عنيزه", "Unaizah", "عنيزة"),
    ("\ufe8d\ufedf\ufeae\ufef3\ufe8e\ufebd", "Riyadh", "الرياض"),
], ids=lambda value: str(value))
def test_city_aliases_resolve(text: str, english: str, arabic: str) -> None:
    result = apply("city_canonical", text, context())
    assert result.value == {"en": english, "ar": arabic, "raw": text}
    assert result.flags == ()


def test_every_listed_city_is_in_table() -> None:
    expected_cities = [
        "Riyadh", "Jeddah", "Makkah", "Madinah", "Dammam", "Khobar", "Dhahran", "Taif",
        "Tabuk", "Abha", "Buraidah", "Al-Ahsa", "Khamis Mushait", "Hail", "Najran", "Jazan",
        "Yanbu", "Al Jubail", "Qatif", "Al Kharj", "Arar", "Sakaka", "Al Bahah", "Unaizah",
    ]
    found = {city.en for city in load_cities().values()}
    assert found == set(expected_cities)
    for name in expected_cities:
        city = find_city(name)
        assert city is not None and city.en == name


@pytest.mark.parametrize("text", ["Cairo", "دبي", "Springfield", "مدينة", "12345"])
def test_unknown_city_keeps_raw(text: str) -> None:
    result = apply("city_canonical", text, context())
    assert result.value == {"en": None, "ar": None, "raw": text}
    assert result.flags == ("unknown_city",)
    assert not result.ok


@pytest.mark.parametrize("value", [None, "", "  "], ids=["none", "empty", "spaces"])
def test_empty_city_is_missing(value: Any) -> None:
    result = apply("city_canonical", value, context())
    assert result.value == {"en": None, "ar": None, "raw": value}
    assert result.flags == ("missing",)


def test_city_of_wrong_type_is_invalid() -> None:
    assert apply("city_canonical", 5, context()).flags == ("invalid_value", "kept_raw")


@pytest.mark.parametrize(("text", "key"), [
    ("Al-Khobar", "khobar"),
    ("الخبر", "خبر"),
    ("مكة المكرمة", "مكه مكرمه"),
    ("أبها", "ابها"),
    ("مستشفى", "مستشفي"),
    ("ALULA", "alula"),
])
def test_city_key_normalises(text: str, key: str) -> None:
    assert city_key(text) == key


def test_alias_table_rejects_shared_alias(tmp_path: Path) -> None:
    table = tmp_path / "cities.yaml"
    table.write_text(yaml.safe_dump({"cities": [
        {"en": "Khobar", "ar": "الخبر", "aliases": []},
        {"en": "Other", "ar": "أخرى", "aliases": ["Al-Khobar"]},
    ]}, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ValueError, match="already names Khobar"):
        load_cities(table)


# --- money --------------------------------------------------------------------


@pytest.mark.parametrize(("value", "expected"), [
    ("149.5", "149.50"),
    (149.5, "149.50"),
    (149, "149.00"),
    (Decimal("149.505"), "149.51"),
    ("١٢٣٫٤٥", "123.45"),
    ("١٬٢٣٤٫٥", "1234.50"),
    ("1,234.50", "1234.50"),
    ("1 234.50", "1234.50"),
    ("0", "0.00"),
    ("0.005", "0.01"),
    ("2.675", "2.68"),
    (2.675, "2.68"),
    (".5", "0.50"),
    ("+10", "10.00"),
    ("\u200f149.50\u200f", "149.50"),
    ("999999999999999.99", "999999999999999.99"),
], ids=["string", "float", "int", "decimal_half_up", "arabic_digits_and_separator",
        "arabic_thousands", "comma_thousands", "space_thousands", "zero", "half_up_cent",
        "half_up_string", "half_up_float_via_str", "leading_point", "plus_sign", "bidi_marks",
        "largest"])
def test_money_is_exact_with_two_decimals(value: Any, expected: str) -> None:
    result = apply("money_sar", value, context({"currency": "SAR"}))
    assert result.value == expected
    assert result.flags == ()


def test_negative_money_keeps_sign() -> None:
    result = apply("money_sar", "-20.00", context())
    assert result.value == "-20.00"
    assert result.flags == ("negative_amount",)
    assert result.ok


@pytest.mark.parametrize("value", [
    "abc", "1.234,50", "12,34", "1,2345", "NaN", "Infinity", "1e3", "SAR 10", "--5",
    "1000000000000000", True, {}, float("nan"), float("inf"),
], ids=["letters", "european", "bad_grouping", "bad_grouping_long", "nan_text", "inf_text",
        "exponent_text", "currency_text", "double_sign", "quadrillion", "bool", "dict", "nan",
        "inf"])
def test_invalid_money_keeps_raw(value: Any) -> None:
    result = apply("money_sar", value, context())
    assert result.value is None
    assert result.flags == ("invalid_amount", "kept_raw")


@pytest.mark.parametrize("value", [None, "", "  "], ids=["none", "empty", "spaces"])
def test_empty_money_is_missing(value: Any) -> None:
    assert apply("money_sar", value, context()).flags == ("missing",)


def test_usd_order_keeps_amount_and_flags_currency() -> None:
    result = apply("money_sar", "39.9", context({"currency": "usd"}))
    assert result.value == "39.90"
    assert result.flags == ("currency_not_sar", "currency:USD")
    assert result.ok


def test_currency_comes_from_shop_when_payload_has_none() -> None:
    assert apply("money_sar", "10", context(shop_currency="AED")).flags == (
        "currency_not_sar", "currency:AED")
    assert apply("money_sar", "10", context()).flags == ()


def test_storefront_currency_is_read_from_order() -> None:
    payload = {"order": {"total": "10", "currency": "KWD"}}
    assert apply("money_sar", "10", context(payload, "storefront")).flags == (
        "currency_not_sar", "currency:KWD")


def test_parse_amount_never_uses_float_arithmetic() -> None:
    assert parse_amount(0.1) == Decimal("0.1")
    assert parse_amount("0.1") + parse_amount("0.2") == Decimal("0.3")  # type: ignore[operator]


@pytest.mark.parametrize(("gross", "net", "vat"), [
    ("115", "100.00", "15.00"),
    ("149.50", "130.00", "19.50"),
    ("100", "86.96", "13.04"),
    ("0", "0.00", "0.00"),
])
def test_split_vat_at_fifteen_percent(gross: str, net: str, vat: str) -> None:
    result = split_vat(Decimal(gross))
    assert result == (Decimal(net), Decimal(vat))
    assert result[0] + result[1] == Decimal(gross)


def test_split_vat_takes_other_rate() -> None:
    assert split_vat(Decimal("105"), Decimal("0.05")) == (Decimal("100.00"), Decimal("5.00"))


def test_shopify_refunds_are_summed_from_transactions() -> None:
    payload = {"currency": "SAR", "refunds": [
        {"transactions": [{"amount": "20.00", "kind": "refund", "status": "success"},
                          {"amount": "99.00", "kind": "refund", "status": "failure"}]},
        {"transactions": [{"amount": "5.5", "kind": "refund", "status": "success"}]},
    ]}
    assert apply("refund_total_sar", None, context(payload)).value == "25.50"


def test_shopify_refund_body_is_summed() -> None:
    payload = {"order_id": 1, "transactions": [{"amount": "12.00", "kind": "refund"}]}
    assert apply("refund_total_sar", None, context(payload)).value == "12.00"


def test_woocommerce_negative_refunds_become_positive() -> None:
    payload = {"currency": "SAR", "refunds": [{"id": 1, "total": "-20.00"},
                                              {"id": 2, "total": "-4.50"}]}
    assert apply("refund_total_sar", None, context(payload, "woocommerce")).value == "24.50"


def test_storefront_refunds_are_summed() -> None:
    payload = {"order": {"currency": "SAR", "refunds": [{"amount": "7"}, {"amount": "3.25"}]}}
    assert apply("refund_total_sar", None, context(payload, "storefront")).value == "10.25"


def test_resolved_refund_amounts_are_summed() -> None:
    result = apply("refund_total_sar", [["-20.00"], ["-5"], None], context())
    assert result.value == "25.00"
    assert apply("refund_total_sar", "-20.00", context()).value == "20.00"


def test_payload_refunds_win_over_resolved_amounts() -> None:
    payload = {"refunds": [{"transactions": [
        {"amount": "20.00", "kind": "refund", "status": "success"},
        {"amount": "99.00", "kind": "refund", "status": "failure"}]}]}
    result = apply("refund_total_sar", ["20.00", "99.00"], context(payload))
    assert result.value == "20.00"


def test_order_without_refunds_totals_zero() -> None:
    assert apply("refund_total_sar", None, context({"refunds": []})).value == "0.00"
    assert apply("refund_total_sar", None, context({"id": 1})).value == "0.00"


def test_unreadable_refund_is_invalid() -> None:
    payload = {"refunds": [{"total": "twenty"}]}
    result = apply("refund_total_sar", None, context(payload, "woocommerce"))
    assert result.value is None
    assert result.flags == ("invalid_amount", "kept_raw")


# --- names --------------------------------------------------------------------


@pytest.mark.parametrize(("text", "first", "last"), [
    ("سارة العتيبي", "سارة", "العتيبي"),
    ("محمد عبد الله", "محمد", "عبد الله"),
    ("عبد الله العتيبي", "عبد الله", "العتيبي"),
    ("عبد الرحمن بن سعيد", "عبد الرحمن", "بن سعيد"),
    ("عبد العزيز محمد آل سعود", "عبد العزيز محمد", "آل سعود"),
    ("أبو بكر الصديق", "أبو بكر", "الصديق"),
    ("نورة  بنت   خالد", "نورة", "بنت خالد"),
    ("Sara Smith", "Sara", "Smith"),
    ("Abdul Rahman Al Saud", "Abdul Rahman", "Al Saud"),
    ("Abd Allah Hassan", "Abd Allah", "Hassan"),
    ("Abd Al Rahman Khalid", "Abd Al Rahman", "Khalid"),
    ("Mohammed Abdul Rahman", "Mohammed", "Abdul Rahman"),
    ("Mary Ann van Dyke", "Mary Ann van", "Dyke"),
    ("Al Pacino", "Al", "Pacino"),
    ("Test Customer", "Test", "Customer"),
    ("\u200fسارة العتيبي\u200f", "سارة", "العتيبي"),
], ids=lambda value: str(value))
def test_full_name_splits(text: str, first: str, last: str) -> None:
    assert split_full_name(text) == (first, last)
    result = apply("split_name", text, context())
    assert result.value == {"first": first, "last": last}
    assert result.flags == ("name_split",)


@pytest.mark.parametrize("text", ["نورة", "Cher", "عبد الله", "Abdul Rahman", "  سارة  "])
def test_one_part_name_becomes_last_name(text: str) -> None:
    result = apply("split_name", text, context())
    assert result.value == {"first": None, "last": " ".join(text.split())}
    assert result.flags == ()


@pytest.mark.parametrize(("value", "first", "last", "flags"), [
    ({"first": "سارة", "last": "العتيبي"}, "سارة", "العتيبي", ()),
    ({"first_name": "Sara", "last_name": "Smith"}, "Sara", "Smith", ()),
    ({"first": "محمد عبد الله", "last": "القحطاني"}, "محمد عبد الله", "القحطاني", ()),
    ({"first": "سارة العتيبي", "last": None}, "سارة", "العتيبي", ("name_split",)),
    ({"first": "", "last": "عبد الله الشهري"}, "عبد الله", "الشهري", ("name_split",)),
    ({"first": None, "last": "العتيبي"}, None, "العتيبي", ()),
    ({"name": "سارة العتيبي"}, "سارة", "العتيبي", ("name_split",)),
], ids=["both_fields", "platform_keys", "compound_first", "whole_in_first", "whole_in_last",
        "last_only", "name_key"])
def test_split_fields_are_used_as_sent(
        value: dict[str, Any], first: str | None, last: str, flags: tuple[str, ...]) -> None:
    result = apply("split_name", value, context())
    assert result.value == {"first": first, "last": last}
    assert result.flags == flags


def test_name_field_text_finds_its_sibling() -> None:
    payload = {"customer": {"first_name": "سارة", "last_name": "العتيبي"}}
    expected = {"first": "سارة", "last": "العتيبي"}
    assert apply("split_name", "سارة", context(payload)).value == expected
    assert apply("split_name", "العتيبي", context(payload)).value == expected


@pytest.mark.parametrize("value", [None, "", {"first": None, "last": "  "}, {}],
                         ids=["none", "empty", "blank_fields", "no_fields"])
def test_empty_name_is_missing(value: Any) -> None:
    result = apply("split_name", value, context())
    assert result.value == {"first": None, "last": None}
    assert result.flags == ("missing",)


def test_name_of_wrong_type_is_invalid() -> None:
    assert apply("split_name", 42, context()).flags == ("invalid_value", "kept_raw")


# --- order status to stage ----------------------------------------------------

AWAITING, PAID, FULFILLED = "awaiting_payment", "paid_processing", "fulfilled"
CANCELLED, REFUNDED = "cancelled", "refunded"
FINANCIAL = ("pending", "authorized", "partially_paid", "paid", "partially_refunded",
             "refunded", "voided", "expired")
_SHIPPED_ROW = dict(zip(FINANCIAL, (FULFILLED,) * 6 + (CANCELLED,) * 2, strict=True))
_SHIPPED_ROW["refunded"] = REFUNDED
# Expected stage by fulfilment status, then financial status, from the stage rules:
# cancellation first, then refunds and restocks, voided and expired, shipping, and
# payment last, because cash-on-delivery orders ship before they are paid.
SHOPIFY_STAGES: dict[str | None, dict[str, str]] = {
    None: {"pending": AWAITING, "authorized": AWAITING, "partially_paid": AWAITING,
           "paid": PAID, "partially_refunded": PAID, "refunded": REFUNDED,
           "voided": CANCELLED, "expired": CANCELLED},
    "partial": _SHIPPED_ROW,
    "fulfilled": _SHIPPED_ROW,
    # Restocked goods were returned: refunded when money was taken, cancelled when it
    # never was (pending or authorized, as with a refused cash-on-delivery order, or
    # voided and expired payments).
    "restocked": {**dict.fromkeys(FINANCIAL, REFUNDED),
                  **dict.fromkeys(("pending", "authorized", "voided", "expired"), CANCELLED)},
}
SHOPIFY_COMBOS = [(financial, fulfilment) for fulfilment in SHOPIFY_STAGES
                  for financial in FINANCIAL]


@pytest.mark.parametrize(("financial", "fulfilment"), SHOPIFY_COMBOS,
                         ids=[f"{fin}-{ful or 'null'}" for fin, ful in SHOPIFY_COMBOS])
def test_shopify_status_pair_maps_to_stage(
        mappings: dict[str, dict[str, Any]], financial: str, fulfilment: str | None) -> None:
    payload = {"financial_status": financial, "fulfillment_status": fulfilment,
               "cancelled_at": None}
    result = apply("status_to_stage", financial, context(payload, "shopify", mappings["shopify"]))
    assert result.value == {"key": SHOPIFY_STAGES[fulfilment][financial], "crm_value": None}
    assert result.flags == ()


@pytest.mark.parametrize(("financial", "fulfilment"), SHOPIFY_COMBOS,
                         ids=[f"{fin}-{ful or 'null'}" for fin, ful in SHOPIFY_COMBOS])
def test_shopify_cancelled_at_wins(
        mappings: dict[str, dict[str, Any]], financial: str, fulfilment: str | None) -> None:
    payload = {"financial_status": financial, "fulfillment_status": fulfilment,
               "cancelled_at": "2026-01-05T10:00:00+03:00"}
    result = apply("status_to_stage", financial, context(payload, "shopify", mappings["shopify"]))
    assert result.value == {"key": CANCELLED, "crm_value": None}


def test_shopify_status_spellings(mappings: dict[str, dict[str, Any]]) -> None:
    mapping = mappings["shopify"]
    graphql = {"financial_status": "PAID", "fulfillment_status": "UNFULFILLED"}
    assert apply("status_to_stage", "PAID", context(graphql, "shopify", mapping)).value == {
        "key": PAID, "crm_value": None}
    no_fulfilment_key = {"financial_status": "paid"}
    assert apply("status_to_stage", "paid",
                 context(no_fulfilment_key, "shopify", mapping)).value["key"] == PAID
    blank_cancel = {"financial_status": "paid", "fulfillment_status": None, "cancelled_at": ""}
    assert apply("status_to_stage", "paid",
                 context(blank_cancel, "shopify", mapping)).value["key"] == PAID


def test_abandoned_checkout_maps_to_cart_stage(mappings: dict[str, dict[str, Any]]) -> None:
    for label, platform in (("shopify", "shopify"), ("woocommerce", "woocommerce"),
                            ("storefront", "storefront")):
        payload = {"checkout": "abandoned", "token": "abc"}
        result = apply("status_to_stage", None, context(payload, platform, mappings[label]))
        assert result.value is not None and result.value["key"] == "cart_abandoned", label


@pytest.mark.parametrize(("status", "stage", "zoho_value"), [
    ("pending", AWAITING, "Awaiting Payment"),
    ("on-hold", AWAITING, "Awaiting Payment"),
    ("checkout-draft", AWAITING, "Awaiting Payment"),
    ("processing", PAID, "Paid - Processing"),
    ("wc-processing", PAID, "Paid - Processing"),
    ("completed", FULFILLED, "Fulfilled"),
    ("cancelled", CANCELLED, "Cancelled"),
    ("failed", CANCELLED, "Cancelled"),
    ("trash", CANCELLED, "Cancelled"),
    ("refunded", REFUNDED, "Refunded"),
])
def test_woocommerce_status_maps_to_stage(
        mappings: dict[str, dict[str, Any]], status: str, stage: str, zoho_value: str) -> None:
    zoho = apply("status_to_stage", status,
                 context({"status": status}, "woocommerce", mappings["woocommerce"]))
    assert zoho.value == {"key": stage, "crm_value": zoho_value}
    custom = apply("status_to_stage", status,
                   context({"status": status}, "woocommerce", mappings["woocommerce-custom"]))
    assert custom.value == {"key": stage, "crm_value": stage}


@pytest.mark.parametrize(("status", "stage"), [
    ("pending_payment", AWAITING),
    ("paid", PAID),
    ("partially_fulfilled", FULFILLED),
    ("fulfilled", FULFILLED),
    ("cancelled", CANCELLED),
    ("payment_failed", CANCELLED),
    ("refunded", REFUNDED),
])
def test_storefront_status_maps_to_stage(
        mappings: dict[str, dict[str, Any]], status: str, stage: str) -> None:
    payload = {"event": "order_updated", "order": {"id": "o-1", "status": status}}
    result = apply("status_to_stage", status,
                   context(payload, "storefront", mappings["storefront"]))
    assert result.value == {"key": stage, "crm_value": None}


def test_zoho_shopify_stage_has_crm_value(mappings: dict[str, dict[str, Any]]) -> None:
    payload = {"financial_status": "paid", "fulfillment_status": "fulfilled"}
    result = apply("status_to_stage", "paid",
                   context(payload, "shopify", mappings["shopify-zoho"]))
    assert result.value == {"key": FULFILLED, "crm_value": "Fulfilled"}


def test_status_value_fills_missing_field(mappings: dict[str, dict[str, Any]]) -> None:
    result = apply("status_to_stage", "processing",
                   context({}, "woocommerce", mappings["woocommerce"]))
    assert result.value == {"key": PAID, "crm_value": "Paid - Processing"}


@pytest.mark.parametrize("status", ["wc-custom-packing", "", "shipped-by-plugin"])
def test_unknown_woocommerce_status_is_flagged(
        mappings: dict[str, dict[str, Any]], status: str) -> None:
    result = apply("status_to_stage", status,
                   context({"status": status}, "woocommerce", mappings["woocommerce"]))
    assert result.value is None
    assert result.flags == ("unknown_status",)


def test_missing_stage_table_is_unknown_status() -> None:
    result = apply("status_to_stage", "paid", context({"financial_status": "paid"}))
    assert result == Transformed(value=None, raw="paid", flags=("unknown_status",))


def test_rules_keyed_by_platform_are_read() -> None:
    table = yaml.safe_load(STAGE_TABLE.read_text(encoding="utf-8"))
    mapping = {"order_stages": table}
    result = apply("status_to_stage", "completed",
                   context({"status": "completed"}, "woocommerce", mapping))
    assert result.value == {"key": FULFILLED, "crm_value": None}


# --- ticket status to stage ---------------------------------------------------


@pytest.mark.parametrize(("crm", "status", "expected"), [
    ("hubspot", "open", {"key": "open", "crm_value": "1"}),
    ("hubspot", "Waiting", {"key": "waiting", "crm_value": "2"}),
    ("hubspot", "resolved", {"key": "resolved", "crm_value": "4"}),
    ("zoho", "new", {"key": "open", "crm_value": "New"}),
    ("zoho", "pending", {"key": "waiting", "crm_value": "On Hold"}),
    ("zoho", "closed", {"key": "resolved", "crm_value": "Closed"}),
    ("custom", "resolved", {"key": "resolved", "crm_value": "resolved"}),
])
def test_ticket_status_defaults(crm: str, status: str, expected: dict[str, str]) -> None:
    result = apply("ticket_status_to_stage", status, context(mapping={"crm": crm}))
    assert result.value == expected


def test_ticket_stage_table_in_mapping_wins() -> None:
    mapping = {"crm": "hubspot", "ticket_stages": {
        "stages": [{"key": "open", "crm_value": "91"}],
        "rules": [{"when": {"status": ["open"]}, "stage": "open"}],
    }}
    result = apply("ticket_status_to_stage", "open", context(mapping=mapping))
    assert result.value == {"key": "open", "crm_value": "91"}
    assert apply("ticket_status_to_stage", "waiting",
                 context(mapping=mapping)).flags == ("unknown_status",)


@pytest.mark.parametrize("status", ["archived", "", None, 3])
def test_unknown_ticket_status_is_flagged(status: Any) -> None:
    result = apply("ticket_status_to_stage", status, context(mapping={"crm": "zoho"}))
    assert result.value is None
    assert result.flags == ("unknown_status",)


def test_default_ticket_stages_cover_each_crm() -> None:
    keys = {rule["stage"] for rule in DEFAULT_TICKET_STAGES["rules"]}
    for crm in ("hubspot", "zoho"):
        assert set(DEFAULT_TICKET_STAGES["crm_values"][crm]) == keys


# --- attribution --------------------------------------------------------------


@pytest.mark.parametrize(("platform", "payload", "value", "channel", "flags"), [
    pytest.param("shopify", {"landing_site": "/?utm_source=snapchat&utm_campaign=ramadan"},
                 "/?utm_source=snapchat&utm_campaign=ramadan", "snapchat", (), id="utm_snapchat"),
    pytest.param("shopify", {"landing_site": "/?utm_source=Instagram&utm_medium=paid"},
                 None, "meta", (), id="utm_instagram_from_payload"),
    pytest.param("shopify", {}, "https://shop.example.com/?UTM_SOURCE=fb_ads", "meta", (),
                 id="utm_upper_case_key"),
    pytest.param("shopify", {"landing_site": "/products/oud?gclid=abc"}, None, "google", (),
                 id="gclid"),
    pytest.param("shopify", {"landing_site": "/?fbclid=abc"}, None, "meta", (), id="fbclid"),
    pytest.param("shopify", {"landing_site": "/?ttclid=abc"}, None, "tiktok", (), id="ttclid"),
    pytest.param("shopify", {"landing_site": "/?ScCid=abc"}, None, "snapchat", (), id="sccid"),
    pytest.param("shopify", {"landing_site": "/", "referring_site": "https://www.google.com.sa/"},
                 "/", "google", (), id="google_referrer"),
    pytest.param("shopify", {"referring_site": "https://l.instagram.com/?u=x"}, None, "meta",
                 (), id="instagram_referrer"),
    pytest.param("shopify", {"referring_site": "https://www.tiktok.com/@shop"}, None, "tiktok",
                 (), id="tiktok_referrer"),
    pytest.param("shopify", {"landing_site": "/?utm_source=tiktok",
                             "referring_site": "https://www.google.com/"},
                 None, "tiktok", (), id="utm_beats_referrer"),
    pytest.param("shopify", {"source_name": "pos", "landing_site": "/?utm_source=google"},
                 None, "offline", (), id="pos"),
    pytest.param("shopify", {"source_name": "shopify_draft_order"}, "shopify_draft_order",
                 "offline", (), id="draft_order"),
    pytest.param("shopify", {"source_name": "web"}, "web", "organic", (), id="web_direct"),
    pytest.param("shopify", {}, None, "organic", (), id="nothing"),
    pytest.param("shopify", {"landing_site": "/?utm_source=newsletter"}, None, "organic",
                 ("unknown_source",), id="unknown_utm_source"),
    pytest.param("shopify", {"referring_site": "https://www.bing.com/"}, None, "organic", (),
                 id="other_referrer"),
    pytest.param("woocommerce", {"meta_data": [
        {"key": "_wc_order_attribution_source_type", "value": "utm"},
        {"key": "_wc_order_attribution_utm_source", "value": "google"}]},
        "google", "google", (), id="woo_utm_google"),
    pytest.param("woocommerce", {"meta_data": [
        {"key": "_wc_order_attribution_source_type", "value": "admin"}]},
        None, "offline", (), id="woo_admin_source_type"),
    pytest.param("woocommerce", {"created_via": "admin"}, None, "offline", (),
                 id="woo_created_by_admin"),
    pytest.param("woocommerce", {"meta_data": [
        {"key": "_wc_order_attribution_source_type", "value": "referral"},
        {"key": "_wc_order_attribution_referrer", "value": "https://www.snapchat.com/"}]},
        "https://www.snapchat.com/", "snapchat", (), id="woo_referrer"),
    pytest.param("woocommerce", {"meta_data": [
        {"key": "_wc_order_attribution_source_type", "value": "typein"}]},
        None, "organic", (), id="woo_typein"),
    pytest.param("woocommerce", {}, "google", "google", (), id="woo_value_only"),
    pytest.param("storefront", {"attribution": {"utm_source": "TikTok", "utm_medium": "cpc"}},
                 "TikTok", "tiktok", (), id="storefront_utm"),
    pytest.param("storefront", {"attribution": {"referrer": "https://www.youtube.com/watch"}},
                 "https://www.youtube.com/watch", "google", (), id="storefront_youtube"),
    pytest.param("storefront", {"attribution": {"utm_source": "pos"}}, "pos", "offline", (),
                 id="storefront_pos"),
    pytest.param("storefront", {"attribution": {}}, None, "organic", (), id="storefront_empty"),
])
def test_source_is_classified(platform: str, payload: dict[str, Any], value: Any,
                              channel: str, flags: tuple[str, ...]) -> None:
    result = apply("utm_channel", value, context(payload, platform))
    assert result.value == channel
    assert result.flags == flags


@pytest.mark.parametrize(("payload", "value", "flags"), [
    pytest.param({"landing_site": "/?utm_source=facebook"}, "meta", (), id="listed"),
    pytest.param({"referring_site": "https://www.tiktok.com/"}, "other",
                 ("unlisted_channel", "channel:tiktok"), id="unlisted_platform"),
    pytest.param({}, "other", ("unlisted_channel", "channel:organic"), id="organic_not_listed"),
    pytest.param({"landing_site": "/?utm_source=newsletter"}, "other",
                 ("unknown_source", "unlisted_channel", "channel:organic"), id="unknown_source"),
])
def test_channel_outside_mapping_list_is_other(
        mappings: dict[str, dict[str, Any]], payload: dict[str, Any], value: str,
        flags: tuple[str, ...]) -> None:
    mapping = mappings["shopify"]
    assert mapping["attribution"]["values"] == ["meta", "google", "other"]
    result = apply("utm_channel", None, context(payload, "shopify", mapping))
    assert result.value == value
    assert result.flags == flags


def test_channel_list_uses_its_other_value() -> None:
    mapping = {"attribution": {"values": ["google", "organic", "sonstige"],
                               "other_value": "sonstige"}}
    payload = {"landing_site": "/?utm_source=snapchat"}
    assert apply("utm_channel", None, context(payload, "shopify", mapping)).value == "sonstige"
    assert apply("utm_channel", None, context({}, "shopify", mapping)).value == "organic"


# --- SKU fallback -------------------------------------------------------------


@pytest.mark.parametrize(("platform", "item", "payload", "value", "expected", "flags"), [
    pytest.param("shopify", {"sku": "OUD-50", "variant_id": 1}, {}, " OUD-50 ", "OUD-50", (),
                 id="sku_trimmed"),
    pytest.param("shopify", {"sku": None, "variant_id": 40011122233344}, {}, None,
                 "40011122233344", ("sku_missing",), id="shopify_null_sku"),
    pytest.param("shopify", {"sku": "", "variant_id": 40011122233344}, {}, "",
                 "40011122233344", ("sku_missing",), id="shopify_empty_sku"),
    pytest.param("shopify", {"sku": "", "variant_id": None, "product_id": 5}, {"id": 99}, "",
                 None, ("sku_missing", "missing"), id="shopify_custom_item"),
    pytest.param("woocommerce", {"sku": "", "variation_id": 0, "product_id": 93}, {}, "",
                 "93", ("sku_missing",), id="woo_simple_product"),
    pytest.param("woocommerce", {"sku": "", "variation_id": 101, "product_id": 93}, {}, "",
                 "101", ("sku_missing",), id="woo_variation"),
    pytest.param("woocommerce", {"sku": "", "variation_id": 0, "product_id": 0}, {}, "",
                 None, ("sku_missing", "missing"), id="woo_deleted_product"),
    pytest.param("woocommerce", None, {"id": 93, "sku": ""}, "", "93", ("sku_missing",),
                 id="woo_product_body"),
    pytest.param("shopify", None, {"id": 450789469, "line_items": []}, None, None,
                 ("sku_missing", "missing"), id="order_id_is_no_sku"),
    pytest.param("storefront", None, {"product": {"id": "p-7", "sku": ""}}, "", "p-7",
                 ("sku_missing",), id="storefront_product"),
    pytest.param("shopify", {"sku": None, "variant_id": 4455}, {}, 4455, "4455", (),
                 id="id_from_engine_fallback"),
    pytest.param("woocommerce", {"variation_id": 0, "product_id": 93}, {}, 0, "93",
                 ("sku_missing",), id="zero_value"),
])
def test_sku_falls_back_to_ids(platform: str, item: dict[str, Any] | None,
                               payload: dict[str, Any], value: Any, expected: str | None,
                               flags: tuple[str, ...]) -> None:
    result = apply("sku_or_variant_id", value, context(payload, platform, item=item))
    assert result.value == expected
    assert result.flags == flags


# --- ids, deal names, lists ---------------------------------------------------


@pytest.mark.parametrize(("value", "expected", "flags"), [
    ("820982911946154508", "820982911946154508", ()),
    (820982911946154508, "820982911946154508", ()),
    (" 1001 ", "1001", ()),
    ("١٠٠١", "1001", ()),
    (12.0, "12", ()),
    ("gid://shopify/Order/1", "gid://shopify/Order/1", ()),
    (0, None, ("guest",)),
    ("0", None, ("guest",)),
    ("", None, ("missing",)),
    (None, None, ("missing",)),
    (1.5, None, ("invalid_id", "kept_raw")),
    (True, None, ("invalid_id", "kept_raw")),
    ({"id": 1}, None, ("invalid_id", "kept_raw")),
], ids=["long_text", "long_int", "spaces", "arabic_digits", "whole_float", "gid", "guest_int",
        "guest_text", "empty", "none", "fraction", "bool", "dict"])
def test_id_text(value: Any, expected: str | None, flags: tuple[str, ...]) -> None:
    result = apply("id_text", value, context(platform="woocommerce"))
    assert result.value == expected
    assert result.flags == flags


@pytest.mark.parametrize(("value", "expected", "flags"), [
    ("#1001", "Order #1001", ()),
    ("1001", "Order #1001", ()),
    (1001, "Order #1001", ()),
    ("#١٠٠١", "Order #1001", ()),
    ("", None, ("missing",)),
    ("#", None, ("missing",)),
    (None, None, ("missing",)),
    ([1001], None, ("invalid_value", "kept_raw")),
], ids=["shopify_name", "woo_number", "int", "arabic_digits", "empty", "hash_only", "none",
        "list"])
def test_deal_name(value: Any, expected: str | None, flags: tuple[str, ...]) -> None:
    result = apply("deal_name", value, context())
    assert result.value == expected
    assert result.flags == flags


@pytest.mark.parametrize(("value", "expected", "flags"), [
    (["RAMADAN10", "VIP"], "RAMADAN10, VIP", ()),
    ([{"code": "RAMADAN10"}, {"code": "عيد"}], "RAMADAN10, عيد", ()),
    (["RAMADAN10", "", None, "  "], "RAMADAN10", ()),
    ("SINGLE", "SINGLE", ()),
    ([], None, ("missing",)),
    (None, None, ("missing",)),
    (5, None, ("invalid_value", "kept_raw")),
], ids=["codes", "code_objects", "skips_empty", "one_text", "empty_list", "none", "number"])
def test_list_join(value: Any, expected: str | None, flags: tuple[str, ...]) -> None:
    result = apply("list_join", value, context())
    assert result.value == expected
    assert result.flags == flags


# --- dates --------------------------------------------------------------------


@pytest.mark.parametrize(("platform", "value", "expected", "flags"), [
    ("shopify", "2026-03-01T14:05:00+03:00", "2026-03-01T14:05:00+03:00", ()),
    ("shopify", "2026-03-01T11:05:00Z", "2026-03-01T11:05:00+00:00", ()),
    ("woocommerce", "2026-03-01T11:05:00", "2026-03-01T11:05:00+00:00", ()),
    ("storefront", "2026-03-01T11:05:00", "2026-03-01T11:05:00+00:00", ("assumed_utc",)),
    ("storefront", 1772363100, "2026-03-01T11:05:00+00:00", ()),
    ("storefront", "1772363100000", "2026-03-01T11:05:00+00:00", ()),
    ("shopify", dt.datetime(2026, 3, 1, 14, 5, tzinfo=dt.timezone(dt.timedelta(hours=3))),
     "2026-03-01T14:05:00+03:00", ()),
    ("shopify", "yesterday", None, ("invalid_datetime", "kept_raw")),
    ("shopify", "2026-02-30T10:00:00Z", None, ("invalid_datetime", "kept_raw")),
    ("shopify", -5, None, ("invalid_datetime", "kept_raw")),
    ("shopify", "", None, ("missing",)),
    ("shopify", None, None, ("missing",)),
], ids=["offset_kept", "zulu", "woo_gmt_naive", "naive_elsewhere", "epoch_seconds",
        "epoch_millis", "datetime_object", "words", "bad_day", "negative_epoch", "empty", "none"])
def test_iso_datetime(platform: str, value: Any, expected: str | None,
                      flags: tuple[str, ...]) -> None:
    result = apply("iso_datetime", value, context(platform=platform))
    assert result.value == expected
    assert result.flags == flags


@pytest.mark.parametrize(("value", "expected"), [
    ("2026-03-01T22:30:00Z", "2026-03-02"),
    ("2026-03-01T20:59:59Z", "2026-03-01"),
    ("2026-03-01T21:00:00+00:00", "2026-03-02"),
    ("2026-03-01T23:59:00+03:00", "2026-03-01"),
    ("2026-03-01T23:30:00-05:00", "2026-03-02"),
])
def test_riyadh_date(value: str, expected: str) -> None:
    assert apply("riyadh_date", value, context()).value == expected


def test_riyadh_date_rejects_bad_input() -> None:
    assert apply("riyadh_date", "soon", context()).flags == ("invalid_datetime", "kept_raw")


# --- text transforms ----------------------------------------------------------


@pytest.mark.parametrize(("value", "expected", "flags"), [
    ("عطر العود", "عطر العود", ()),
    ("٣", "3", ("ascii_digits",)),
    (" ١٢٣٤٥ ", "12345", ("ascii_digits",)),
    ("رقم ٣", "رقم ٣", ()),
    (3, 3, ()),
    ({"a": 1}, {"a": 1}, ()),
    ("", None, ("missing",)),
    (None, None, ("missing",)),
], ids=["text", "arabic_quantity", "arabic_postcode", "text_with_digit", "int", "dict",
        "empty", "none"])
def test_identity(value: Any, expected: Any, flags: tuple[str, ...]) -> None:
    result = apply("identity", value, context())
    assert result.value == expected
    assert result.flags == flags


def test_category_passes_through_until_configured() -> None:
    result = apply("category_map", "  Perfume  oils ", context())
    assert result.value == "Perfume oils"
    assert result.flags == ("unmapped_category",)


def test_category_is_mapped_by_table() -> None:
    mapping = {"category_map": {"Perfume": "Fragrance", "عطور": "Fragrance"}}
    assert apply("category_map", "perfume", context(mapping=mapping)).value == "Fragrance"
    assert apply("category_map", "عطور", context(mapping=mapping)).flags == ()
    other = apply("category_map", "Bags", context(mapping=mapping))
    assert (other.value, other.flags) == ("Bags", ("unmapped_category",))


@pytest.mark.parametrize(("value", "flags"), [
    (None, ("missing",)), ("  ", ("missing",)), ([], ("invalid_value", "kept_raw"))])
def test_category_rejects_empty_and_lists(value: Any, flags: tuple[str, ...]) -> None:
    assert apply("category_map", value, context()).flags == flags


@pytest.mark.parametrize(("html", "expected"), [
    ("<p>عطر <b>العود</b> الفاخر</p>", "عطر العود الفاخر"),
    ("<p>هل تريد الهدية؟</p><p>نعم، شكرًا.</p>", "هل تريد الهدية؟\nنعم، شكرًا."),
    ("Line one<br>Line two", "Line one\nLine two"),
    ("<ul><li>100 ml</li><li>Oud &amp; rose</li></ul>", "100 ml\nOud & rose"),
    ("a&nbsp;&nbsp; b\t\tc", "a b c"),
    ("<style>p{color:red}</style><script>alert(1)</script>Text", "Text"),
    ("plain text", "plain text"),
], ids=["arabic_inline", "arabic_punctuation", "br", "list_and_entity", "spaces",
        "script_and_style", "plain"])
def test_html_to_text(html: str, expected: str) -> None:
    assert apply("html_to_text", html, context()).value == expected


@pytest.mark.parametrize(("value", "flags"), [
    ("<p> </p>", ("missing",)), (None, ("missing",)), (5, ("invalid_value", "kept_raw"))])
def test_html_to_text_rejects_empty(value: Any, flags: tuple[str, ...]) -> None:
    assert apply("html_to_text", value, context()).flags == flags


@pytest.mark.parametrize(("name", "expected"), [
    ("page_viewed", "page_view"),
    ("product_added_to_cart", "add_to_cart"),
    ("checkout_started", "checkout_started"),
    ("checkout_completed", "purchase_completed"),
    ("add_to_cart", "add_to_cart"),
    ("Purchase_Completed", "purchase_completed"),
    ("begin_checkout", "checkout_started"),
    ("return_requested", "return_requested"),
])
def test_event_key(name: str, expected: str) -> None:
    assert apply("event_key", name, context()).value == expected


@pytest.mark.parametrize(("value", "flags"), [
    ("scrolled", ("unknown_event",)), (5, ("unknown_event",)), ("", ("missing",))])
def test_event_key_rejects_unknown(value: Any, flags: tuple[str, ...]) -> None:
    result = apply("event_key", value, context())
    assert result.value is None
    assert result.flags == flags


@pytest.mark.parametrize(("crm", "channel", "expected"), [
    ("hubspot", "whatsapp", "CHAT"),
    ("hubspot", "Phone", "PHONE"),
    ("hubspot", "email", "EMAIL"),
    ("zoho", "whatsapp", "WhatsApp"),
    ("zoho", "call", "Phone"),
    ("zoho", "mail", "Email"),
    ("custom", "wa", "whatsapp"),
])
def test_channel_to_origin(crm: str, channel: str, expected: str) -> None:
    assert apply("channel_to_origin", channel, context(mapping={"crm": crm})).value == expected


@pytest.mark.parametrize(("value", "flags"), [
    ("telegram", ("unknown_channel",)), (7, ("unknown_channel",)), (None, ("missing",))])
def test_channel_to_origin_rejects_unknown(value: Any, flags: tuple[str, ...]) -> None:
    result = apply("channel_to_origin", value, context(mapping={"crm": "hubspot"}))
    assert result.value is None
    assert result.flags == flags
