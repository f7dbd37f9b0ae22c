"""Tests for the dated two-week checklist: calendar, tailoring, CSV, ICS and templates."""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import icalendar
import pytest

from generator.checklist import (
    CSV_COLUMNS,
    Checklist,
    ChecklistItem,
    build_checklist,
    checklist_csv,
    checklist_ics,
    saudi_holidays,
    supported_date_range,
    working_days,
)
from generator.errors import EXIT_INVALID_INPUT, InputError
from generator.model import Answers, Bilingual, Estimate, Plan
from generator.resources import load_data, templates_dir

HOSTILE_NAME = 'Ali\'s "Store": {{ x }}\nسطر\u200f 🎉'
SLUG = "ali-store"
SUNDAY_TO_THURSDAY = {6, 0, 1, 2, 3}
ARABIC_LETTERS = {chr(code) for code in range(0x0621, 0x064B)}


def make_answers(start: dt.date, **changes: Any) -> Answers:
    answers = Answers(
        client_name=HOSTILE_NAME,
        project_slug=SLUG,
        platform="shopify",
        monthly_orders=800,
        store_count=1,
        growth="fast",
        sku_count=420,
        crm="hubspot",
        team_focus=None,
        erp_bi=(),
        deep_erp_link=False,
        support_channels=("whatsapp",),
        support_agents=3,
        marketing_channels=("meta", "google"),
        consent_channels=("email", "whatsapp"),
        goal="repeat_purchase",
        start_date=start,
        path=None,
        eid_al_fitr_days=4,
        eid_al_adha_days=4,
    )
    return replace(answers, **changes)


def make_plan(**changes: Any) -> Plan:
    plan = Plan(
        path="connector",
        recommended_path="connector",
        crm="hubspot",
        platform="shopify",
        modules=("contacts", "orders", "products", "playbooks", "consent"),
        rules=(),
        alternatives=(),
        estimate=Estimate(
            path="connector",
            days_min=3,
            days_max=5,
            setup_sar_min=3000,
            setup_sar_max=7000,
            subscription=Bilingual(en="connector subscription", ar="اشتراك تطبيق الربط"),
        ),
        contact_sync="daily",
        product_sync_limit=None,
    )
    return replace(plan, **changes)


def dates_of(checklist: Checklist) -> list[dt.date]:
    return [item.date for item in checklist.items]


def has_arabic(text: str) -> bool:
    return any(char in ARABIC_LETTERS for char in text)


# --- working days and the start date ---------------------------------------------------


@pytest.mark.parametrize(
    "requested", [dt.date(2027, 6, 4), dt.date(2027, 6, 5)], ids=["fri", "sat"]
)
def test_weekend_start_moves_to_sunday(requested: dt.date) -> None:
    checklist = build_checklist(make_answers(requested), make_plan())

    assert checklist.start == dt.date(2027, 6, 6)
    assert checklist.start.weekday() == 6
    assert checklist.requested_start == requested
    assert checklist.items[0].date == dt.date(2027, 6, 6)
    assert checklist.to_context()["moved"] is True


def test_working_day_start_is_kept() -> None:
    checklist = build_checklist(make_answers(dt.date(2027, 6, 8)), make_plan())

    assert checklist.start == dt.date(2027, 6, 8)
    assert checklist.to_context()["moved"] is False


@pytest.mark.parametrize(
    "requested",
    [
        dt.date(2027, 1, 3),
        dt.date(2027, 2, 19),
        dt.date(2027, 3, 4),
        dt.date(2027, 5, 13),
        dt.date(2027, 9, 16),
        dt.date(2027, 12, 30),
        dt.date(2030, 2, 1),
    ],
)
def test_ten_dates_are_sunday_to_thursday(requested: dt.date) -> None:
    checklist = build_checklist(make_answers(requested), make_plan())
    dates = dates_of(checklist)

    assert len(dates) == 10
    assert [item.day for item in checklist.items] == list(range(1, 11))
    for date in dates:
        assert date.weekday() in SUNDAY_TO_THURSDAY, date
    for earlier, later in itertools.pairwise(dates):
        assert earlier < later
    assert dates[0] >= requested


def test_working_days_skips_given_holidays() -> None:
    monday = dt.date(2027, 6, 7)
    days = working_days(dt.date(2027, 6, 6), 3, [monday])

    assert days == [dt.date(2027, 6, 6), dt.date(2027, 6, 8), dt.date(2027, 6, 9)]


def test_working_days_start_on_holiday_moves() -> None:
    days = working_days(dt.date(2027, 6, 6), 1, [dt.date(2027, 6, 6)])

    assert days == [dt.date(2027, 6, 7)]


def test_working_days_zero_count_is_empty() -> None:
    assert working_days(dt.date(2027, 6, 6), 0, []) == []


def test_working_days_negative_count_rejected() -> None:
    with pytest.raises(ValueError, match="count"):
        working_days(dt.date(2027, 6, 6), -1, [])


# --- holidays ---------------------------------------------------------------------------


def test_founding_day_skipped_inside_span() -> None:
    # 2027-02-22 is a Monday, so without the holiday it would be day 2.
    checklist = build_checklist(make_answers(dt.date(2027, 2, 21)), make_plan())

    assert dt.date(2027, 2, 22) not in dates_of(checklist)
    assert checklist.items[1].date == dt.date(2027, 2, 23)
    assert [(h.date, h.name.en) for h in checklist.skipped] == [
        (dt.date(2027, 2, 22), "Founding Day")
    ]
    assert checklist.skipped[0].name.ar == "يوم التأسيس"


def test_national_day_skipped_inside_span() -> None:
    # 2027-09-23 is a Thursday in the first week of a plan starting Sunday 2027-09-19.
    checklist = build_checklist(make_answers(dt.date(2027, 9, 19)), make_plan())

    assert dt.date(2027, 9, 23) not in dates_of(checklist)
    assert [h.date for h in checklist.skipped] == [dt.date(2027, 9, 23)]
    assert checklist.skipped[0].name.en == "Saudi National Day"


def test_fixed_holiday_outside_span_not_listed() -> None:
    checklist = build_checklist(make_answers(dt.date(2027, 6, 6)), make_plan())

    assert checklist.skipped == ()


def test_founding_day_not_counted_before_2022() -> None:
    # 2021-02-22 was a Monday, before Founding Day existed as a holiday.
    holidays = saudi_holidays(dt.date(2021, 2, 1), dt.date(2021, 2, 28), 4, 4)

    assert dt.date(2021, 2, 22) not in [h.date for h in holidays]


def test_eid_dates_match_umm_al_qura() -> None:
    holidays = saudi_holidays(dt.date(2027, 3, 1), dt.date(2027, 5, 31), 4, 4)

    fitr = [h.date for h in holidays if h.name.en.startswith("Eid al-Fitr")]
    adha = [h.date for h in holidays if h.name.en.startswith("Eid al-Adha")]
    # The day after 29 Ramadan 1448 (2027-03-08) and the Day of Arafah, 9 Dhu al-Hijjah
    # 1448, in the Umm al-Qura calendar.
    assert fitr == [dt.date(2027, 3, 9) + dt.timedelta(days=n) for n in range(4)]
    assert adha == [dt.date(2027, 5, 15) + dt.timedelta(days=n) for n in range(4)]
    assert holidays[0].name.en == "Eid al-Fitr break, day 1 of 4"
    assert holidays[0].name.ar == "إجازة عيد الفطر، اليوم 1 من 4"


def test_eid_break_length_follows_answers() -> None:
    holidays = saudi_holidays(dt.date(2027, 3, 1), dt.date(2027, 5, 31), 2, 6)

    fitr = [h.date for h in holidays if h.name.en.startswith("Eid al-Fitr")]
    adha = [h.date for h in holidays if h.name.en.startswith("Eid al-Adha")]
    assert fitr == [dt.date(2027, 3, 9), dt.date(2027, 3, 10)]
    assert adha[0] == dt.date(2027, 5, 15)
    assert adha[-1] == dt.date(2027, 5, 20)
    assert len(adha) == 6


def test_eid_break_started_before_range_is_included() -> None:
    holidays = saudi_holidays(dt.date(2027, 3, 11), dt.date(2027, 3, 20), 4, 4)

    assert [h.date for h in holidays] == [dt.date(2027, 3, 11), dt.date(2027, 3, 12)]


def test_eid_al_fitr_skipped_from_checklist() -> None:
    checklist = build_checklist(make_answers(dt.date(2027, 3, 7)), make_plan())

    eid = [dt.date(2027, 3, 9) + dt.timedelta(days=n) for n in range(4)]
    assert [h.date for h in checklist.skipped] == eid
    for date in eid:
        assert date not in dates_of(checklist)
    assert dates_of(checklist)[:3] == [
        dt.date(2027, 3, 7),
        dt.date(2027, 3, 8),
        dt.date(2027, 3, 14),
    ]


def test_eid_break_of_zero_skips_nothing() -> None:
    answers = make_answers(dt.date(2027, 3, 7), eid_al_fitr_days=0)
    checklist = build_checklist(answers, make_plan())

    assert checklist.skipped == ()
    assert dates_of(checklist)[:5] == [
        dt.date(2027, 3, 7),
        dt.date(2027, 3, 8),
        dt.date(2027, 3, 9),
        dt.date(2027, 3, 10),
        dt.date(2027, 3, 11),
    ]


def test_eid_al_adha_skipped_from_checklist() -> None:
    checklist = build_checklist(make_answers(dt.date(2027, 5, 13)), make_plan())

    assert [h.date for h in checklist.skipped] == [
        dt.date(2027, 5, 15) + dt.timedelta(days=n) for n in range(4)
    ]
    assert dates_of(checklist)[:2] == [dt.date(2027, 5, 13), dt.date(2027, 5, 19)]


def test_eid_al_fitr_starts_after_29_ramadan() -> None:
    # Ramadan 1447 has 30 days in Umm al-Qura: 29 Ramadan is 2026-03-18 and
    # 1 Shawwal is 2026-03-20, so the break starts on 30 Ramadan, 2026-03-19.
    holidays = saudi_holidays(dt.date(2026, 3, 15), dt.date(2026, 3, 31), 4, 4)

    assert [h.date for h in holidays] == [dt.date(2026, 3, 19) + dt.timedelta(days=n)
                                          for n in range(4)]


def test_same_date_holidays_share_one_entry() -> None:
    # In 1436 AH, 10 Dhu al-Hijjah fell on 2015-09-23, Saudi National Day.
    holidays = saudi_holidays(dt.date(2015, 9, 23), dt.date(2015, 9, 23), 4, 4)

    assert len(holidays) == 1
    assert "Eid al-Adha" in holidays[0].name.en
    assert "National Day" in holidays[0].name.en
    assert "عيد الأضحى" in holidays[0].name.ar


def test_holidays_outside_calendar_range_rejected() -> None:
    first, last = supported_date_range()

    with pytest.raises(ValueError, match="Umm al-Qura"):
        saudi_holidays(first - dt.timedelta(days=1), first + dt.timedelta(days=30), 4, 4)
    with pytest.raises(ValueError, match="Umm al-Qura"):
        saudi_holidays(last - dt.timedelta(days=30), last + dt.timedelta(days=1), 4, 4)


# --- bad input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "requested",
    [dt.date(1900, 1, 1), dt.date(1924, 7, 31), dt.date(2077, 11, 10), dt.date(2090, 1, 1)],
    ids=["1900", "day-before-range", "runs-past-range", "2090"],
)
def test_start_outside_hijri_range_is_input_error(requested: dt.date) -> None:
    with pytest.raises(InputError) as caught:
        build_checklist(make_answers(requested), make_plan())

    error = caught.value
    assert error.exit_code == EXIT_INVALID_INPUT
    assert len(error.problems) == 1
    assert error.problems[0].location == "start_date"
    assert requested.isoformat() in error.problems[0].message
    assert "Umm al-Qura" in error.problems[0].message
    assert "1924-08-01" in error.problems[0].fix


def test_start_near_range_edges_still_works() -> None:
    first, _ = supported_date_range()
    checklist = build_checklist(make_answers(first), make_plan())

    assert len(checklist.items) == 10
    assert build_checklist(make_answers(dt.date(2077, 10, 1)), make_plan()).items[-1].date < (
        dt.date(2077, 11, 16)
    )


@pytest.mark.parametrize("field", ["eid_al_fitr_days", "eid_al_adha_days"])
@pytest.mark.parametrize("value", [-1, 15])
def test_invalid_break_length_is_input_error(field: str, value: int) -> None:
    answers = make_answers(dt.date(2027, 3, 7), **{field: value})

    with pytest.raises(InputError) as caught:
        build_checklist(answers, make_plan())

    assert [problem.location for problem in caught.value.problems] == [field]
    assert str(value) in caught.value.problems[0].message
    assert "14" in caught.value.problems[0].fix


def test_unknown_condition_in_data_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    data = json.loads(json.dumps(load_data("checklist")))
    data["days"][0]["extras"] = [
        {"when": {"platfrom": ["shopify"]}, "detail": {"en": "x", "ar": "س"}}
    ]
    original = load_data

    def fake_load_data(name: str) -> Any:
        return data if name == "checklist" else original(name)

    monkeypatch.setattr("generator.checklist.load_data", fake_load_data)

    with pytest.raises(ValueError, match="platfrom"):
        build_checklist(make_answers(dt.date(2027, 6, 6)), make_plan())


# --- tailoring --------------------------------------------------------------------------


def day(checklist: Checklist, number: int) -> ChecklistItem:
    return checklist.items[number - 1]


def test_path_changes_day_two() -> None:
    start = make_answers(dt.date(2027, 6, 6))
    by_path = {
        path: day(build_checklist(start, make_plan(path=path)), 2)
        for path in ("connector", "ipaas", "api")
    }

    assert "connector app" in by_path["connector"].title.en
    assert "install the connector app" in by_path["connector"].detail.en
    assert "iPaaS workflows" in by_path["ipaas"].title.en
    assert "build the workflows in the iPaaS" in by_path["ipaas"].detail.en
    assert "credentials" in by_path["ipaas"].detail.en
    assert "intake service" in by_path["api"].title.en
    assert "deploy the intake service" in by_path["api"].detail.en
    assert "register the store's webhooks" in by_path["api"].detail.en
    assert len({item.title.en for item in by_path.values()}) == 3
    assert len({item.title.ar for item in by_path.values()}) == 3


def test_path_changes_go_live_and_alerts() -> None:
    start = make_answers(dt.date(2027, 6, 6))
    api = build_checklist(start, make_plan(path="api"))
    ipaas = build_checklist(start, make_plan(path="ipaas"))

    assert "dead-letter queue" in day(api, 7).detail.en
    assert "dead-letter queue" not in day(ipaas, 7).detail.en
    assert "error handler" in day(ipaas, 7).detail.en
    assert "Deploy the service to production" in day(api, 9).detail.en


def test_support_module_adds_tickets_and_sla() -> None:
    start = make_answers(dt.date(2027, 6, 6))
    with_support = build_checklist(start, make_plan(modules=("contacts", "support")))
    without = build_checklist(start, make_plan(modules=("contacts",)))

    assert "ticket-to-order linking" in day(with_support, 6).title.en
    assert "ticket" in day(with_support, 6).detail.en
    assert "SLA" in day(with_support, 7).title.en
    assert "SLA" in day(with_support, 7).detail.en
    assert "SLA" in day(with_support, 8).detail.en
    assert "ربط التذاكر بالطلبات" in day(with_support, 6).title.ar
    for number in (6, 7, 8):
        assert "ticket" not in day(without, number).detail.en.lower()
        assert "SLA" not in day(without, number).detail.en


def test_erp_bi_and_events_modules() -> None:
    start = make_answers(dt.date(2027, 6, 6))
    plan = make_plan(modules=("contacts", "erp_bi", "events"))
    tailored = build_checklist(start, plan)
    plain = build_checklist(start, make_plan(modules=("contacts",)))

    assert "ERP/BI link" in day(tailored, 6).title.en
    assert "ERP" in day(tailored, 6).detail.en
    assert "ERP" not in day(plain, 6).detail.en
    assert "custom events" in day(tailored, 3).title.en
    assert "custom event" in day(tailored, 5).detail.en
    assert "custom event" not in day(plain, 5).detail.en


def test_product_sync_limit_on_day_three() -> None:
    start = make_answers(dt.date(2027, 6, 6))
    limited = build_checklist(start, make_plan(product_sync_limit=100))
    full = build_checklist(start, make_plan(product_sync_limit=None))

    assert "top 100 SKUs only" in day(limited, 3).detail.en
    assert "أعلى 100 SKU مبيعًا" in day(limited, 3).detail.ar
    assert "top 100 SKUs" in day(limited, 10).detail.en
    assert "whole catalogue" in day(full, 3).detail.en
    assert "100" not in day(full, 3).detail.en
    assert "100" not in day(full, 10).detail.en


def test_crm_changes_keys_step() -> None:
    start = make_answers(dt.date(2027, 6, 6))
    hubspot = day(build_checklist(start, make_plan(crm="hubspot")), 2).detail.en
    zoho = day(build_checklist(start, make_plan(crm="zoho")), 2).detail.en
    custom = day(build_checklist(start, make_plan(crm="custom")), 2).detail.en

    assert "private app" in hubspot
    assert "Zoho" not in hubspot
    assert "OAuth client" in zoho
    assert "zoho.sa" in zoho
    assert "read-only user" in custom
    assert "HubSpot" not in custom


def test_owners_follow_data() -> None:
    checklist = build_checklist(make_answers(dt.date(2027, 6, 6)), make_plan())
    context = checklist.to_context()

    assert day(checklist, 3).owner == "agency"
    assert day(checklist, 1).owner == "both"
    assert context["items"][2]["owner"] == "Agency"
    assert context["items"][2]["owner_ar"] == "الوكالة"


@pytest.mark.parametrize("path", ["connector", "ipaas", "api"])
@pytest.mark.parametrize("crm", ["hubspot", "zoho", "custom"])
@pytest.mark.parametrize("limit", [100, None])
def test_every_combination_gives_clean_texts(path: str, crm: str, limit: int | None) -> None:
    modules = ("contacts", "orders", "support", "events", "erp_bi")
    plan = make_plan(path=path, crm=crm, modules=modules, product_sync_limit=limit)
    checklist = build_checklist(make_answers(dt.date(2027, 6, 6)), plan)

    assert [item.day for item in checklist.items] == list(range(1, 11))
    for item in checklist.items:
        for text in (item.title.en, item.title.ar, item.detail.en, item.detail.ar):
            assert text.strip() == text
            assert text
            for forbidden in ("{", "}", "|", "\n"):
                assert forbidden not in text, (item.day, text)
        assert has_arabic(item.title.ar)
        assert has_arabic(item.detail.ar)
        assert not has_arabic(item.title.en)
        assert item.owner in {"agency", "client", "both"}


# --- context for the templates --------------------------------------------------------


def test_context_shape_and_values() -> None:
    checklist = build_checklist(make_answers(dt.date(2027, 3, 5)), make_plan())
    context = checklist.to_context()

    assert context["start"] == "2027-03-07"
    assert context["requested_start"] == "2027-03-05"
    assert context["moved"] is True
    assert len(context["items"]) == 10
    first = context["items"][0]
    assert set(first) == {
        "day", "date", "weekday_en", "weekday_ar", "week", "title_en", "title_ar",
        "detail_en", "detail_ar", "owner", "owner_ar",
    }  # fmt: skip
    assert first["date"] == "2027-03-07"
    assert first["weekday_en"] == "Sunday"
    assert first["weekday_ar"] == "الأحد"
    assert [item["week"] for item in context["items"]] == [1] * 5 + [2] * 5
    assert context["skipped"][0] == {
        "date": "2027-03-09",
        "name_en": "Eid al-Fitr break, day 1 of 4",
        "name_ar": "إجازة عيد الفطر، اليوم 1 من 4",
    }
    assert json.loads(json.dumps(context)) == context


# --- CSV ----------------------------------------------------------------------------------


def test_csv_columns_rows_and_arabic() -> None:
    checklist = build_checklist(make_answers(dt.date(2027, 3, 7)), make_plan())
    data = checklist_csv(checklist)

    assert data.startswith(b"\xef\xbb\xbf")
    text = data.decode("utf-8-sig")
    assert text.count("\r\n") == 11
    assert "\n" not in text.replace("\r\n", "")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    rows = list(reader)
    assert reader.fieldnames == list(CSV_COLUMNS)
    assert list(CSV_COLUMNS) == ["day", "date", "title_en", "title_ar", "owner", "done"]
    assert len(rows) == 10
    assert rows[0]["day"] == "1"
    assert rows[2]["date"] == "2027-03-14"
    assert rows[0]["title_ar"] == "الأهداف والشرائح وقرار مسار التكامل"
    assert rows[0]["title_en"] == checklist.items[0].title.en
    assert rows[2]["owner"] == "Agency"
    assert {row["done"] for row in rows} == {"no"}


def test_csv_is_deterministic() -> None:
    answers = make_answers(dt.date(2027, 3, 7))

    assert checklist_csv(build_checklist(answers, make_plan())) == checklist_csv(
        build_checklist(answers, make_plan())
    )


# --- ICS ----------------------------------------------------------------------------------


def parse_ics(data: bytes) -> icalendar.Calendar:
    return icalendar.Calendar.from_ical(data)


def test_ics_events_match_items() -> None:
    checklist = build_checklist(make_answers(dt.date(2027, 3, 7)), make_plan(path="api"))
    data = checklist_ics(checklist, HOSTILE_NAME, SLUG)
    calendar = parse_ics(data)

    assert b"DTSTART;VALUE=DATE:20270307\r\n" in data
    assert b"DTEND;VALUE=DATE:20270308\r\n" in data
    assert b"DTSTAMP:20270307T000000Z\r\n" in data
    events = calendar.events
    assert len(events) == 10
    assert str(calendar["PRODID"]) == "-//Rabt//Checklist//EN"
    assert str(calendar["VERSION"]) == "2.0"
    for event, item in zip(events, checklist.items, strict=True):
        start = event.start
        assert type(start) is dt.date
        assert start == item.date
        assert event.end == item.date + dt.timedelta(days=1)
        assert str(event["UID"]) == f"day-{item.day:02d}@{SLUG}.rabt"
        assert str(event["SUMMARY"]) == f"Day {item.day}: {item.title.en}"
        assert item.title.ar in str(event["DESCRIPTION"])
        assert item.detail.en in str(event["DESCRIPTION"])
        stamp = event.DTSTAMP
        assert stamp == dt.datetime(2027, 3, 7, tzinfo=dt.UTC)


def test_ics_identical_on_two_runs() -> None:
    answers = make_answers(dt.date(2027, 3, 7))
    first = checklist_ics(build_checklist(answers, make_plan()), HOSTILE_NAME, SLUG)
    second = checklist_ics(build_checklist(answers, make_plan()), HOSTILE_NAME, SLUG)

    assert first == second


def test_ics_keeps_hostile_client_name() -> None:
    checklist = build_checklist(make_answers(dt.date(2027, 3, 7)), make_plan())
    data = checklist_ics(checklist, HOSTILE_NAME, SLUG)
    calendar = parse_ics(data)

    assert str(calendar["X-WR-CALNAME"]) == HOSTILE_NAME
    assert b"\r\n" in data
    assert b"\n" not in data.replace(b"\r\n", b"")


def test_ics_name_control_characters_normalised() -> None:
    checklist = build_checklist(make_answers(dt.date(2027, 3, 7)), make_plan())
    calendar = parse_ics(checklist_ics(checklist, "a\r\nb\rc\x00d;e,f\\g", SLUG))

    assert str(calendar["X-WR-CALNAME"]) == "a\nb\ncd;e,f\\g"


# --- templates --------------------------------------------------------------------------

DOCS = Path("{{cookiecutter._rabt.project_slug}}") / "docs"


@pytest.fixture
def checklist_template(tmp_path: Path) -> Path:
    """Copy the two checklist templates into a minimal cookiecutter template."""
    template = tmp_path / "template"
    (template / DOCS).mkdir(parents=True)
    source = templates_dir() / "common" / DOCS
    for name in ("checklist.md", "checklist.ar.md"):
        shutil.copy(source / name, template / DOCS / name)
    defaults = {
        "_rabt": {"project_slug": SLUG},
        "_extensions": ["generator.jinja_ext.RabtExtension"],
    }
    (template / "cookiecutter.json").write_text(json.dumps(defaults), encoding="utf-8")
    return template


def bake_docs(cookies: Any, template: Path, checklist: Checklist) -> tuple[str, str]:
    context = {
        "project_slug": SLUG,
        "client_name": HOSTILE_NAME,
        "path_label_en": "Ready connector",
        "path_label_ar": "تطبيق ربط جاهز",
        "checklist": checklist.to_context(),
    }
    result = cookies.bake(template=str(template), extra_context={"_rabt": context})
    assert result.exception is None
    assert result.exit_code == 0
    docs = Path(result.project_path) / "docs"
    english = (docs / "checklist.md").read_text(encoding="utf-8")
    arabic = (docs / "checklist.ar.md").read_text(encoding="utf-8")
    return english, arabic


def test_templates_render_moved_start_and_holidays(cookies: Any, checklist_template: Path) -> None:
    checklist = build_checklist(make_answers(dt.date(2027, 3, 5)), make_plan())
    english, arabic = bake_docs(cookies, checklist_template, checklist)

    for text in (english, arabic):
        assert "{{ x }}" not in text
        assert "{%" not in text
        assert "\\{\\{ x \\}\\}" in text
        assert "<br>سطر" in text
        assert "checklist.csv" in text
        assert "checklist.ics" in text
        assert "2027-03-09" in text
        assert text.count("- [ ] ") == 10
    assert "is not a working day" in english
    assert "Eid al-Fitr break, day 1 of 4" in english
    assert "## Week 1" in english
    assert "## Week 2" in english
    assert english.index("Day 5,") < english.index("## Week 2") < english.index("Day 6,")
    assert "Owner: Agency and client" in english
    assert "Ready connector" in english
    assert arabic.startswith('<div dir="rtl">\n\n')
    assert arabic.endswith("\n\n</div>\n")
    assert "ليس يوم عمل" in arabic
    assert "إجازة عيد الفطر، اليوم 1 من 4" in arabic
    assert "الأسبوع الأول" in arabic
    assert "الأسبوع الثاني" in arabic
    assert "الأهداف والشرائح وقرار مسار التكامل" in arabic
    assert "تطبيق ربط جاهز" in arabic


def test_templates_render_without_holidays(cookies: Any, checklist_template: Path) -> None:
    checklist = build_checklist(make_answers(dt.date(2027, 6, 6)), make_plan())
    english, arabic = bake_docs(cookies, checklist_template, checklist)

    assert "No public holiday falls inside the plan." in english
    assert "is not a working day" not in english
    assert "لا تقع أي إجازة رسمية ضمن مدة الخطة." in arabic
    assert "ليس يوم عمل" not in arabic
    assert "2027-06-06" in english
    assert "2027-06-17" in english
