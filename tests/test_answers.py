"""Answers: merging sources, validation messages, slug derivation."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from generator.answers import (
    AnswerSources,
    check_one,
    derive_slug,
    load_answers_file,
    load_preset,
    missing_questions,
    next_working_day,
    parse_set_options,
    resolve_answers,
)
from generator.errors import EXIT_INVALID_INPUT, InputError

TODAY = dt.date(2026, 12, 4)  # a Friday


def resolve(values: dict[str, object], lang: str = "en") -> object:
    sources = AnswerSources()
    sources.add("test", values)
    return resolve_answers(sources, today=TODAY, lang=lang)  # type: ignore[arg-type]


def problems_of(values: dict[str, object], lang: str = "en") -> list[str]:
    with pytest.raises(InputError) as caught:
        resolve(values, lang)
    assert caught.value.exit_code == EXIT_INVALID_INPUT
    return [problem.render() for problem in caught.value.problems]


def test_defaults_fill_missing_answers() -> None:
    answers = resolve({"client_name": "Nour Perfumes"})
    assert answers.project_slug == "nour-perfumes"
    assert answers.platform == "shopify"
    assert answers.monthly_orders == 500
    assert answers.erp_bi == ()
    assert answers.team_focus is None  # crm is not undecided


def test_start_date_defaults_to_next_working_day() -> None:
    answers = resolve({"client_name": "x-store"})
    assert answers.start_date == dt.date(2026, 12, 6)  # Friday moves to Sunday


def test_next_working_day_keeps_weekdays() -> None:
    assert next_working_day(dt.date(2026, 12, 3)) == dt.date(2026, 12, 3)  # Thursday
    assert next_working_day(dt.date(2026, 12, 5)) == dt.date(2026, 12, 6)  # Saturday


def test_later_sources_win() -> None:
    sources = AnswerSources()
    sources.add("preset", {"client_name": "Acme", "monthly_orders": 100, "crm": "zoho"})
    sources.add("--set", {"monthly_orders": 900})
    answers = resolve_answers(sources, today=TODAY)
    assert answers.monthly_orders == 900
    assert answers.crm == "zoho"
    assert sources.origin["monthly_orders"] == "--set"


def test_unknown_key_names_closest() -> None:
    problems = problems_of({"client_name": "Acme", "platfrom": "shopify"})
    assert len(problems) == 1
    assert "unknown answer key 'platfrom'" in problems[0]
    assert "did you mean 'platform'?" in problems[0]


def test_wrong_value_names_key_value_and_allowed() -> None:
    problems = problems_of({"client_name": "Acme", "crm": "salesforce"})
    assert problems[0].startswith("crm (test): 'salesforce' is not an allowed value")
    assert "hubspot, zoho, custom, undecided" in problems[0]


def test_wrong_type_names_expected_type() -> None:
    problems = problems_of({"client_name": "Acme", "monthly_orders": "many"})
    assert "'many' is text, expected a whole number" in problems[0]


def test_range_checks_report_limit() -> None:
    problems = problems_of({"client_name": "Acme", "store_count": 0})
    assert "0 is below the minimum of 1" in problems[0]


def test_all_problems_reported_at_once() -> None:
    problems = problems_of({
        "client_name": "Acme", "platform": "magento", "monthly_orders": -1,
        "erp_bi": ["odoo", "oracle"], "start_date": "2027-02-30", "colour": "red",
    })
    assert len(problems) == 5
    joined = "\n".join(problems)
    for key in ("platform", "monthly_orders", "erp_bi", "start_date", "colour"):
        assert key in joined


def test_missing_client_name_is_reported() -> None:
    problems = problems_of({})
    assert problems[0].startswith("client_name: a value is required")


def test_messages_in_arabic() -> None:
    problems = problems_of({"client_name": "Acme", "crm": "salesforce"}, lang="ar")
    assert "غير مسموح بها" in problems[0]


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("Nour Perfumes", "nour-perfumes"),
        ("متجر الرياض للعطور", "matjar-al-riyad-lil-atur"),
        ("عطور الرياض", "atur-al-riyad"),
        ("Nour عطور 🎉", "nour-atur"),
        ('Ali\'s "Store": {{ x }}', "ali-s-store-x"),
        ("123 Shop", "shop"),
    ],
)
def test_derive_slug(name: str, slug: str) -> None:
    assert derive_slug(name) == slug


def test_arabic_name_gets_latin_slug() -> None:
    answers = resolve({"client_name": "عطور الورد"})
    assert answers.project_slug.isascii()
    assert len(answers.project_slug) >= 2


def test_new_client_name_derives_new_slug() -> None:
    sources = AnswerSources()
    sources.add("preset", {"client_name": "Preset Client", "project_slug": "preset-client"})
    sources.add("--set", {"client_name": "Bayt Al Oud"})
    assert resolve_answers(sources, today=TODAY).project_slug == "bayt-al-oud"


def test_slug_set_with_new_name_is_kept() -> None:
    sources = AnswerSources()
    sources.add("preset", {"client_name": "Preset Client", "project_slug": "preset-client"})
    sources.add("--set", {"client_name": "Bayt Al Oud", "project_slug": "oud"})
    assert resolve_answers(sources, today=TODAY).project_slug == "oud"


def test_slug_from_earlier_source_survives_later_other_keys() -> None:
    sources = AnswerSources()
    sources.add("preset", {"client_name": "Preset Client", "project_slug": "preset-client"})
    sources.add("--set", {"crm": "zoho"})
    assert resolve_answers(sources, today=TODAY).project_slug == "preset-client"


def test_slug_staleness_counts_every_source() -> None:
    sources = AnswerSources()
    sources.add("preset", {"client_name": "Preset Client", "project_slug": "preset-client"})
    sources.add("answers file", {"client_name": "File Client", "project_slug": "file-client"})
    sources.add("--set", {"client_name": "Set Client"})
    assert resolve_answers(sources, today=TODAY).project_slug == "set-client"


def test_decimal_number_reported_as_number() -> None:
    parsed = parse_set_options(["eid_al_fitr_days=2.5"])
    problems = problems_of({"client_name": "Acme", **parsed})
    assert "2.5 is a number, expected a whole number" in problems[0]


def test_emoji_name_asks_for_slug() -> None:
    problems = problems_of({"client_name": "🌹🌹"})
    assert len(problems) == 1
    assert "project_slug" in problems[0]
    assert "--set project_slug=" in problems[0]


@pytest.mark.parametrize("slug", ["../evil", "a/b", "-lead", "Upper", "x", "a" * 64, ".."])
def test_unsafe_slug_rejected(slug: str) -> None:
    problems = problems_of({"client_name": "Acme", "project_slug": slug})
    assert "not a valid project slug" in problems[0]


def test_dependent_answers_cleared_when_not_applicable() -> None:
    answers = resolve({"client_name": "Acme", "crm": "hubspot", "team_focus": "sales_support",
                       "erp_bi": [], "deep_erp_link": True})
    assert answers.team_focus is None
    assert answers.deep_erp_link is False


def test_set_options_are_typed() -> None:
    parsed = parse_set_options([
        "monthly_orders=\u0661\u0665\u0660", "erp_bi=odoo, power_bi", "deep_erp_link=yes",
        "path=", "client_name=A=B",
    ])
    assert parsed == {"monthly_orders": 150, "erp_bi": ["odoo", "power_bi"],
                      "deep_erp_link": True, "path": None, "client_name": "A=B"}


def test_set_option_without_equals_rejected() -> None:
    with pytest.raises(InputError) as caught:
        parse_set_options(["monthly_orders"])
    assert "is not in KEY=VALUE form" in caught.value.problems[0].message


def test_unknown_preset_rejected() -> None:
    with pytest.raises(InputError) as caught:
        load_preset("no-such-preset")
    assert "rabt presets" in caught.value.problems[0].fix


def test_answers_file_with_bad_yaml(tmp_path: Path) -> None:
    path = tmp_path / "answers.yaml"
    path.write_text('client_name: عطور "الورد": الرياض\n', encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_answers_file(path)
    assert caught.value.problems[0].message.startswith("not valid YAML: line 1, column 26")


def test_answers_file_missing(tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        load_answers_file(tmp_path / "nope.yaml")
    assert "not found" in caught.value.problems[0].message


def test_yaml_dates_accepted(tmp_path: Path) -> None:
    path = tmp_path / "answers.yaml"
    path.write_text("client_name: Acme\nstart_date: 2027-01-10\n", encoding="utf-8")
    answers = resolve(load_answers_file(path))
    assert answers.start_date == dt.date(2027, 1, 10)


def test_missing_questions_follow_dependencies() -> None:
    missing = missing_questions({"client_name": "Acme", "crm": "undecided", "erp_bi": []})
    assert "team_focus" in missing
    assert "deep_erp_link" not in missing
    assert "client_name" not in missing
    assert "eid_al_fitr_days" not in missing  # advanced keys are never asked


def test_check_one_reports_single_answer() -> None:
    assert check_one("monthly_orders", 12) is None
    problem = check_one("monthly_orders", -3)
    assert problem is not None
    assert "below the minimum of 0" in problem
