"""The dated two-week delivery checklist: ten Saudi working days, as Markdown context, CSV and ICS.

The working week is Sunday to Thursday. Public holidays come from ``data/holidays.yaml``:
fixed Gregorian dates plus the Eid breaks, placed with the Umm al-Qura calendar of the
``hijridate`` package. The item texts come from ``data/checklist.yaml`` and are tailored
to the plan's path, CRM, modules and product sync limit.

The CSV's ``done`` column starts as ``no`` on every row, so a spreadsheet filter on
``no`` lists the open tasks.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import icalendar
from hijridate import Gregorian, Hijri
from hijridate.ummalqura import GREGORIAN_RANGE

from generator.errors import InputError, Problem
from generator.model import Answers, Bilingual, Plan
from generator.resources import load_data, load_schema

PLAN_DAYS = 10
DAYS_PER_WEEK = 5
# date.weekday() numbers: Monday is 0, so Friday is 4 and Saturday is 5.
WEEKEND_WEEKDAYS = frozenset({4, 5})
CSV_COLUMNS = ("day", "date", "title_en", "title_ar", "owner", "done")
CSV_NOT_DONE = "no"
ICS_PRODID = "-//Rabt//Checklist//EN"
# Calendar days searched for the ten working days at first. The window doubles until
# the plan fits, because long Eid breaks can push day 10 further out.
INITIAL_WINDOW_DAYS = 31

_ONE_DAY = dt.timedelta(days=1)
_BREAK_ANSWERS = ("eid_al_fitr_days", "eid_al_adha_days")


@dataclass(frozen=True)
class ChecklistItem:
    """One day of the plan: its number (1 to 10), date, texts and owner role."""

    day: int
    date: dt.date
    title: Bilingual
    detail: Bilingual
    owner: str


@dataclass(frozen=True)
class Holiday:
    """One public holiday date and its name."""

    date: dt.date
    name: Bilingual


@dataclass(frozen=True)
class Checklist:
    """The dated plan and the holidays it skipped.

    ``skipped`` lists every holiday from the requested start date to the last
    working day, weekend days included, so it also explains a moved start.
    """

    start: dt.date
    requested_start: dt.date
    items: tuple[ChecklistItem, ...]
    skipped: tuple[Holiday, ...]

    def to_context(self) -> dict[str, Any]:
        """Convert the checklist to plain data for the Jinja templates (dates as ISO text).

        Returns:
            The ``start``, ``requested_start``, ``moved``, ``items`` and ``skipped`` keys
            that ``docs/checklist.md`` and ``docs/checklist.ar.md`` read.
        """
        data = load_data("checklist")
        return {
            "start": self.start.isoformat(),
            "requested_start": self.requested_start.isoformat(),
            "moved": self.start != self.requested_start,
            "items": [_item_context(item, data) for item in self.items],
            "skipped": [
                {"date": h.date.isoformat(), "name_en": h.name.en, "name_ar": h.name.ar}
                for h in self.skipped
            ],
        }


def saudi_holidays(
    first: dt.date, last: dt.date, eid_al_fitr_days: int, eid_al_adha_days: int
) -> list[Holiday]:
    """List the Saudi public holiday dates from ``first`` to ``last``, both included.

    Each day of an Eid break is its own ``Holiday``. A break that starts before
    ``first`` but runs into the range contributes its remaining days.

    Args:
        first: The first date to cover.
        last: The last date to cover.
        eid_al_fitr_days: Length of the Eid al-Fitr break from 1 Shawwal; 0 turns it off.
        eid_al_adha_days: Length of the Eid al-Adha break from 10 Dhu al-Hijjah; 0 turns it off.

    Returns:
        The holidays sorted by date, one per date. Two holidays on the same date share
        one entry whose name joins both.

    Raises:
        ValueError: ``first`` or ``last`` is outside the Umm al-Qura range of hijridate.
    """
    range_first, range_last = supported_date_range()
    if first < range_first or last > range_last:
        raise ValueError(
            f"dates {first.isoformat()} to {last.isoformat()} are outside the Umm al-Qura "
            f"range {range_first.isoformat()} to {range_last.isoformat()}"
        )

    data = load_data("holidays")
    lengths = {"eid_al_fitr_days": eid_al_fitr_days, "eid_al_adha_days": eid_al_adha_days}
    found = _fixed_holidays(data["fixed"], first.year, last.year)
    lookback_start = max(first - dt.timedelta(days=max(lengths.values(), default=0)), range_first)
    for entry in data["hijri"]:
        found.extend(_hijri_breaks(entry, lengths[entry["length_answer"]], lookback_start, last))

    by_date: dict[dt.date, Holiday] = {}
    for holiday in sorted(found, key=lambda h: h.date):
        if not first <= holiday.date <= last:
            continue
        earlier = by_date.get(holiday.date)
        by_date[holiday.date] = holiday if earlier is None else _merge(earlier, holiday)
    return list(by_date.values())


def working_days(start: dt.date, count: int, holidays: Iterable[dt.date]) -> list[dt.date]:
    """List the first ``count`` Saudi working days from ``start`` on, ``start`` included.

    A working day is Sunday to Thursday and not in ``holidays``, so a start on a
    weekend or a holiday moves to the next working day.

    Args:
        start: The earliest date that may be a working day.
        count: How many working days to return.
        holidays: Dates that are not working days even when they fall Sunday to Thursday.

    Returns:
        ``count`` dates in increasing order.

    Raises:
        ValueError: ``count`` is negative.
    """
    if count < 0:
        raise ValueError(f"count must be 0 or more, got {count}")
    days_off = set(holidays)
    found: list[dt.date] = []
    day = start
    while len(found) < count:
        if day.weekday() not in WEEKEND_WEEKDAYS and day not in days_off:
            found.append(day)
        day += _ONE_DAY
    return found


def supported_date_range() -> tuple[dt.date, dt.date]:
    """Return the first and last Gregorian dates that hijridate can convert."""
    first, last = GREGORIAN_RANGE
    return dt.date(*first), dt.date(*last)


def build_checklist(answers: Answers, plan: Plan) -> Checklist:
    """Date the ten plan days from ``answers.start_date`` and tailor them to ``plan``.

    Args:
        answers: The validated answers, of which ``start_date`` and the Eid break lengths
            are read.
        plan: The decision whose path, CRM, modules and product sync limit tailor the texts.

    Returns:
        The checklist with ten items, one per working day.

    Raises:
        InputError: The start date is outside the calendar range that hijridate covers,
            or an Eid break length is outside what the answers schema allows.
    """
    _check_break_lengths(answers)
    dates, holidays = _schedule(answers)
    data = load_data("checklist")
    items = tuple(
        _build_item(entry, date, plan, data["owners"])
        for entry, date in zip(data["days"], dates, strict=True)
    )
    last_day = dates[-1]
    skipped = tuple(h for h in holidays if answers.start_date <= h.date <= last_day)
    return Checklist(
        start=dates[0], requested_start=answers.start_date, items=items, skipped=skipped
    )


def checklist_csv(checklist: Checklist) -> bytes:
    """Write the checklist as a CSV spreadsheet.

    The columns are ``day, date, title_en, title_ar, owner, done``. ``owner`` contains the
    English role name and ``done`` starts as ``no`` on every row.

    Args:
        checklist: The checklist to write.

    Returns:
        UTF-8 with a byte order mark, so spreadsheet programs detect the Arabic text,
        and CRLF line endings as RFC 4180 specifies.
    """
    owners = load_data("checklist")["owners"]
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for item in checklist.items:
        writer.writerow(
            [
                item.day,
                item.date.isoformat(),
                item.title.en,
                item.title.ar,
                owners[item.owner]["en"],
                CSV_NOT_DONE,
            ]
        )
    return buffer.getvalue().encode("utf-8-sig")


def checklist_ics(checklist: Checklist, client_name: str, project_slug: str) -> bytes:
    """Write the checklist as an iCalendar file with one all-day event per item.

    The output depends only on the arguments: UIDs come from the slug and the day
    number, and DTSTAMP is midnight UTC of the first working day.

    Args:
        checklist: The checklist to write.
        client_name: The calendar name (X-WR-CALNAME); any Unicode text.
        project_slug: The project slug, used in every event UID.

    Returns:
        The calendar as RFC 5545 bytes.
    """
    owners = load_data("checklist")["owners"]
    calendar = icalendar.Calendar()
    calendar.add("prodid", ICS_PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    # icalendar (7.3) treats X-WR-CALNAME as an unknown property that it neither escapes
    # nor unescapes, so a newline would break the file. VALUE=TEXT makes it escape on
    # write and unescape on read.
    calendar.add("x-wr-calname", _ics_text(client_name), parameters={"VALUE": "TEXT"})

    stamp = dt.datetime.combine(checklist.start, dt.time(0, 0), tzinfo=dt.UTC)
    for item in checklist.items:
        owner = owners[item.owner]
        event = icalendar.Event()
        event.add("uid", f"day-{item.day:02d}@{project_slug}.rabt")
        event.add("dtstamp", stamp)
        event.add("dtstart", item.date)
        event.add("dtend", item.date + _ONE_DAY)
        event.add("summary", f"Day {item.day}: {item.title.en}")
        event.add("description", _event_description(item, owner))
        event.add("transp", "TRANSPARENT")
        calendar.add_component(event)
    ics: bytes = calendar.to_ical()
    return ics


def _check_break_lengths(answers: Answers) -> None:
    properties = load_schema("answers")["properties"]
    problems = []
    for name in _BREAK_ANSWERS:
        value = getattr(answers, name)
        maximum = properties[name]["maximum"]
        if not 0 <= value <= maximum:
            problems.append(
                Problem(
                    location=name,
                    message=f"{value} is not a valid break length in days",
                    fix=f"use a whole number from 0 (no break) to {maximum}",
                )
            )
    if problems:
        raise InputError("The Eid break lengths are invalid.", problems)


def _schedule(answers: Answers) -> tuple[list[dt.date], list[Holiday]]:
    """Find the ten working days and the holidays around them, growing the window as needed."""
    start = answers.start_date
    range_first, range_last = supported_date_range()
    if not range_first <= start <= range_last:
        raise _out_of_range(start)

    window_days = INITIAL_WINDOW_DAYS
    while True:
        last = min(start + dt.timedelta(days=window_days), range_last)
        holidays = saudi_holidays(start, last, answers.eid_al_fitr_days, answers.eid_al_adha_days)
        dates = working_days(start, PLAN_DAYS, (h.date for h in holidays))
        if dates[-1] <= last:
            return dates, holidays
        if last == range_last:
            raise _out_of_range(start)
        window_days *= 2


def _out_of_range(start: dt.date) -> InputError:
    range_first, range_last = supported_date_range()
    problem = Problem(
        location="start_date",
        message=(
            f"{start.isoformat()} is outside the Umm al-Qura calendar range that the hijridate "
            f"package covers ({range_first.isoformat()} to {range_last.isoformat()}), "
            "so the Eid holidays cannot be placed"
        ),
        fix=(
            f"choose a start date from {range_first.isoformat()} up to about a month "
            f"before {range_last.isoformat()}"
        ),
    )
    return InputError("The start date is outside the supported calendar range.", [problem])


def _fixed_holidays(
    entries: list[dict[str, Any]], first_year: int, last_year: int
) -> list[Holiday]:
    found = []
    for entry in entries:
        for year in range(max(first_year, entry["since"]), last_year + 1):
            date = dt.date(year, entry["month"], entry["day"])
            found.append(Holiday(date=date, name=Bilingual.from_data(entry["name"])))
    return found


def _hijri_breaks(
    entry: dict[str, Any], length: int, first: dt.date, last: dt.date
) -> list[Holiday]:
    """Expand one Eid break into a holiday per day for every Hijri year that overlaps."""
    first_year = Gregorian.fromdate(first).to_hijri().year
    last_year = Gregorian.fromdate(last).to_hijri().year
    found = []
    for year in range(first_year, last_year + 1):
        try:
            converted = Hijri(year, entry["month"], entry["day"]).to_gregorian()
        except ValueError:
            # The first and last Hijri years of hijridate's table are partial; a
            # start date there has already been checked against supported_date_range.
            continue
        break_start = dt.date(converted.year, converted.month, converted.day)
        break_start += dt.timedelta(days=entry.get("offset_days", 0))
        for index in range(length):
            name = {
                lang: text.format(day=index + 1, days=length)
                for lang, text in entry["name"].items()
            }
            found.append(
                Holiday(date=break_start + dt.timedelta(days=index), name=Bilingual.from_data(name))
            )
    return found


def _merge(first: Holiday, second: Holiday) -> Holiday:
    name = Bilingual(
        en=f"{first.name.en} / {second.name.en}", ar=f"{first.name.ar} / {second.name.ar}"
    )
    return Holiday(date=first.date, name=name)


_Condition = Callable[[Plan, Any], bool]

_CONDITIONS: dict[str, _Condition] = {
    "path": lambda plan, expected: plan.path in expected,
    "crm": lambda plan, expected: plan.crm in expected,
    "modules": lambda plan, expected: any(module in plan.modules for module in expected),
    "product_sync_limited": lambda plan, expected: (
        (plan.product_sync_limit is not None) == expected
    ),
}


def _matches(when: dict[str, Any], plan: Plan) -> bool:
    for key, expected in when.items():
        condition = _CONDITIONS.get(key)
        if condition is None:
            raise ValueError(
                f"checklist.yaml has an unknown condition {key!r}. "
                f"Use one of {sorted(_CONDITIONS)}."
            )
        if not condition(plan, expected):
            return False
    return True


def _build_item(
    entry: dict[str, Any], date: dt.date, plan: Plan, owners: dict[str, Any]
) -> ChecklistItem:
    """Pick the day's matching variant, append its matching extras and fill placeholders."""
    base = next((v for v in entry.get("variants", []) if _matches(v["when"], plan)), entry)
    titles = {lang: [base["title"][lang]] for lang in ("en", "ar")}
    details = {lang: [base["detail"][lang]] for lang in ("en", "ar")}
    for extra in entry.get("extras", []):
        if not _matches(extra["when"], plan):
            continue
        for lang in ("en", "ar"):
            details[lang].append(extra["detail"][lang])
            if "title" in extra:
                titles[lang].append(extra["title"][lang])

    owner = base.get("owner", entry["owner"])
    if owner not in owners:
        raise ValueError(f"checklist.yaml: day {entry['day']} has unknown owner {owner!r}")
    values = {"product_sync_limit": plan.product_sync_limit}
    title = Bilingual(
        en=", ".join(titles["en"]).format(**values), ar="، ".join(titles["ar"]).format(**values)
    )
    detail = Bilingual(
        en=" ".join(details["en"]).format(**values), ar=" ".join(details["ar"]).format(**values)
    )
    return ChecklistItem(day=entry["day"], date=date, title=title, detail=detail, owner=owner)


def _item_context(item: ChecklistItem, data: dict[str, Any]) -> dict[str, Any]:
    weekday = data["weekdays"][item.date.weekday()]
    owner = data["owners"][item.owner]
    return {
        "day": item.day,
        "date": item.date.isoformat(),
        "weekday_en": weekday["en"],
        "weekday_ar": weekday["ar"],
        "week": 1 if item.day <= DAYS_PER_WEEK else 2,
        "title_en": item.title.en,
        "title_ar": item.title.ar,
        "detail_en": item.detail.en,
        "detail_ar": item.detail.ar,
        "owner": owner["en"],
        "owner_ar": owner["ar"],
    }


def _event_description(item: ChecklistItem, owner: dict[str, str]) -> str:
    return "\n".join(
        [
            item.detail.en,
            f"Owner: {owner['en']}",
            "",
            item.title.ar,
            item.detail.ar,
            f"المسؤول: {owner['ar']}",
        ]
    )


def _ics_text(value: str) -> str:
    """Normalise line breaks and drop control characters that RFC 5545 TEXT cannot carry.

    TEXT escapes only the line feed, so a carriage return comes back as a line feed
    and other control characters (except tab) are removed.
    """
    text = value.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(char for char in text if char in "\n\t" or unicodedata.category(char) != "Cc")
