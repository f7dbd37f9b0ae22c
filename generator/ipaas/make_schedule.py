"""The abandoned-cart runner's search window and quiet hours in a Make blueprint.

The runner runs every 15 minutes around the clock and keeps the end of the last
window it searched in the data store ``sync_cursors`` (record
``abandoned-checkout-runner``, field ``since``). Each run searches from that mark to
now, so a run that is skipped, late or held back loses no checkout. During a quiet
window of the spec (the night, and the Friday prayer on Fridays), a run stops before
it moves the mark. The first run after the window then finds every checkout that
fell due during it, so those messages wait until the window ends, as the spec's rule
for marketing steps requires.

The mark is saved before the searches, and the searches end at their own later
``now``. So two runs can both find a checkout that fell due in the few seconds
between the two, and a key per contact and checkout in ``processed_events`` sends
each step once.

One search reads one page (200 contacts). Each due search keeps a page record in
``sync_cursors`` (record ``abandoned-checkout-runner:<step>``): after a full page it
contains the next page's cursor and the window's start, so the next run reads the next
page of that window, up to its own ``now``, before it starts a new window.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from generator.ipaas import make_iml
from generator.ipaas.crm_calls import CrmCall
from generator.ipaas.flows import ABANDONED_CHECK_EVERY_MINUTES, Step
from generator.ipaas.make_builder import PROCESSED_STORE, UNIT_MINUTES, Builder
from generator.model import Bilingual

MARK_STORE = "sync_cursors"
MARK_FIELD = "since"
# The field of a due search's page record that keeps the next page: HubSpot's after
# offset or Zoho's page number, empty once the last page was read.
PAGE_FIELD = "after"
PAGE_VALUE = "page after"
DATE_FORMAT = "YYYY-MM-DDTHH:mm:ssZ"
# Make formatDate tokens of the quiet-hours filter: the local time as hours and
# minutes, and the weekday as a number (DAY_NUMBERS).
# NOTE: both tokens and the day numbering (0 is Sunday) come from exported blueprints
# and secondhand copies of Make's token table, not Make's own reference. The
# workflows guide tells the user to check them in the Make editor on import.
CLOCK_TOKEN = "HHmm"
WEEKDAY_TOKEN = "d"
DAY_NUMBERS = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
QUIET_FILTER_NAME = "Outside quiet hours"
DAY_NAMES = {"sun": ("Sundays", "الأحد"), "mon": ("Mondays", "الاثنين"),
             "tue": ("Tuesdays", "الثلاثاء"), "wed": ("Wednesdays", "الأربعاء"),
             "thu": ("Thursdays", "الخميس"), "fri": ("Fridays", "الجمعة"),
             "sat": ("Saturdays", "السبت")}


def local_clock(timezone: str) -> str:
    """Return the formula of the local time as a number: 21:30 is 2130."""
    return (f'parseNumber(formatDate(now; "{CLOCK_TOKEN}"; {make_iml.literal(timezone)}); '
            '".")')


def on_days(days: Sequence[str], timezone: str, shift: int = 0) -> str | None:
    """Return the formula that holds on ``days`` (``shift`` days later), or None for every day."""
    numbers = sorted({(DAY_NUMBERS[day] + shift) % 7 for day in days})
    if len(numbers) == len(DAY_NUMBERS):
        return None
    today = f'formatDate(now; "{WEEKDAY_TOKEN}"; {make_iml.literal(timezone)})'
    return "(" + " or ".join(f'{today} = "{number}"' for number in numbers) + ")"


def _both(*parts: str | None) -> str:
    return " and ".join(part for part in parts if part)


def quiet_formula(quiet_hours: Mapping[str, Any]) -> str:
    """Return the formula that is true while now is inside one of the spec's quiet windows.

    A window whose end is not after its start crosses midnight: its days name the
    evening it starts, and the early hours belong to the next day.

    NOTE: the ``>=`` and ``<`` operators were read in exported blueprints, like the
    tokens above. Check one run inside the Friday window in the first week.
    """
    timezone = str(quiet_hours["timezone"])
    clock = local_clock(timezone)
    cases = []
    for window in quiet_hours["windows"]:
        start = int(str(window["start"]).replace(":", ""))
        end = int(str(window["end"]).replace(":", ""))
        days = list(window["days"])
        if start < end:
            cases.append(_both(on_days(days, timezone), f"{clock} >= {start}",
                               f"{clock} < {end}"))
            continue
        cases.append(_both(on_days(days, timezone), f"{clock} >= {start}"))
        cases.append(_both(on_days(days, timezone, 1), f"{clock} < {end}"))
    return " or ".join(f"({case})" for case in cases) or "false"


def _listed(names: list[str], separator: str, last: str) -> str:
    """Join ``names`` with ``separator``, and the final one with ``last``."""
    if len(names) == 1:
        return names[0]
    return separator.join(names[:-1]) + last + names[-1]


def quiet_windows_text(quiet_hours: Mapping[str, Any]) -> Bilingual:
    """Return the spec's quiet windows as a phrase, such as "22:00 to 09:00 every day"."""
    english, arabic = [], []
    for window in quiet_hours["windows"]:
        days = list(window["days"])
        span_en = f"{window['start']} to {window['end']}"
        span_ar = f"من {window['start']} إلى {window['end']}"
        if len(set(days)) == len(DAY_NUMBERS):
            english.append(f"{span_en} every day")
            arabic.append(f"{span_ar} كل يوم")
            continue
        names_en = [DAY_NAMES[day][0] for day in days]
        names_ar = [DAY_NAMES[day][1] for day in days]
        english.append(f"{span_en} on " + _listed(names_en, ", ", " and "))
        label = "يوم" if len(names_ar) == 1 else "أيام"
        arabic.append(f"{span_ar} {label} " + _listed(names_ar, "، ", " و"))
    return Bilingual(", and ".join(english), "، و".join(arabic))


def quiet_filter(quiet_hours: Mapping[str, Any]) -> dict[str, Any]:
    """Return the filter that passes only outside every quiet window."""
    test = "{{if(" + quiet_formula(quiet_hours) + '; "quiet"; "open")}}'
    return {"name": QUIET_FILTER_NAME, "conditions": [[{"a": test, "o": "text:equal",
                                                         "b": "open"}]]}


def mark_modules(builder: Builder, quiet_hours: Mapping[str, Any],
                 y: int) -> list[dict[str, Any]]:
    """Return the modules that read the last mark and, outside quiet hours, move it to now.

    The mark read sets ``builder.window_mark_id``, which ``window_values`` reads.
    """
    key = builder.flow_key
    read = builder.module("datastore:GetRecord", {"key": key, "returnWrapped": False},
                          f"Read the end of the last search (data store {MARK_STORE})", y)
    builder.window_mark_id = int(read["id"])
    builder.require(quiet_filter(quiet_hours))
    save = builder.module("datastore:AddRecord",
                          {"key": key, "overwrite": True,
                           "data": {MARK_FIELD: "{{" + f'formatDate(now; "{DATE_FORMAT}")' + "}}"}},
                          f"Save this search's start as the mark (data store {MARK_STORE})", y)
    return [read, save]


def _minutes_ago(text: str) -> int | None:
    """Return the minutes before now of a ``now - 2 hours - 15 minutes`` placeholder."""
    parts = re.findall(r"- (\d+) (minutes|hours|days)", text)
    if not text.startswith("now ") or not parts:
        return None
    return sum(int(amount) * UNIT_MINUTES[unit] for amount, unit in parts)


def window_values(builder: Builder, call_text: str, page_id: int | None = None) -> str | None:
    """Start the due search at the last mark, moved back by the step's own delay.

    The search's placeholders give the window as ``<now - due - interval>`` to
    ``<now - due>``. The later one stays. The earlier one becomes the last mark minus
    the due time, or one check interval before that when no mark is saved yet. While
    the route's page record (``page_id``) contains a cursor, the window keeps the start
    saved with it, so the next page of the same search is read. Returns the start's
    formula, or None when the search has no such window.
    """
    if builder.window_mark_id is None:
        return None
    found = {name: minutes for name in re.findall(r"<([^<>]+)>", call_text)
             if (minutes := _minutes_ago(name)) is not None}
    if len(found) < 2:
        return None
    start = max(found, key=lambda name: found[name])
    due = min(found.values())
    first = f"addMinutes(now; -{ABANDONED_CHECK_EVERY_MINUTES})"
    mark = f"ifempty({builder.window_mark_id}.{MARK_FIELD}; {first})"
    formula = f'formatDate(addMinutes({mark}; -{due}); "{DATE_FORMAT}")'
    if page_id is not None:
        formula = f"if({page_id}.{PAGE_FIELD} = emptystring; {formula}; {page_id}.{MARK_FIELD})"
    builder.values[start] = formula
    builder.safe_values.add(start)
    return formula


def page_read_module(builder: Builder, wait: Step, y: int) -> dict[str, Any]:
    """Return the module that reads the due search's page record of ``wait``."""
    return builder.module("datastore:GetRecord",
                          {"key": f"{builder.flow_key}:{wait.key}", "returnWrapped": False},
                          f"Read the next page of this search (data store {MARK_STORE})", y)


def paged_call(builder: Builder, call: CrmCall, page_id: int) -> CrmCall:
    """Return the due search sorted by checkout time, reading the page the record names.

    HubSpot pages a search with the ``after`` offset of the previous response, and
    Zoho with a page number.

    NOTE: HubSpot's reading of ``after`` "0" as the first page, and the order of Zoho's
    search results (the request names no sort), are not confirmed. A page read in
    another order than the last run's can skip a contact.
    """
    page = f"{page_id}.{PAGE_FIELD}"
    if call.system == "zoho":
        builder.values[PAGE_VALUE] = f"ifempty({page}; 1)"
        return replace(call, query={**call.query, "page": f"<{PAGE_VALUE}>"})
    builder.values[PAGE_VALUE] = f'ifempty({page}; "0")'
    builder.safe_values.add(PAGE_VALUE)
    field = call.body["filterGroups"][0]["filters"][0]["propertyName"]
    return replace(call, body={**call.body, "after": f"<{PAGE_VALUE}>",
                               "sorts": [{"propertyName": field, "direction": "ASCENDING"}]})


def page_save_module(builder: Builder, wait: Step, page_id: int, search: dict[str, Any],
                     start: str, y: int) -> dict[str, Any]:
    """Return the module that keeps the next page's cursor and the window's start, or clears them.

    A search that filled its page leaves the rest of its contacts to the next run,
    which reads the next page of the same window and sends to them. The window's end
    is always now minus the due time, so contacts that fell due meanwhile come on a
    later page: the search is sorted by checkout time.
    """
    if builder.crm == "zoho":
        page = f'parseNumber(ifempty({page_id}.{PAGE_FIELD}; 1); ".")'
        more = f"if({search['id']}.data.info.more_records; {page} + 1; emptystring)"
    else:
        more = f"{search['id']}.data.paging.next.after"
    return builder.module("datastore:AddRecord", {
        "key": f"{builder.flow_key}:{wait.key}", "overwrite": True,
        "data": {PAGE_FIELD: "{{" + more + "}}",
                 MARK_FIELD: "{{" + f"if({more} = emptystring; emptystring; {start})" + "}}"}},
        f"Keep the next page of this search (data store {MARK_STORE})", y)


def send_once_modules(builder: Builder, wait: Step, checkout_field: str,
                      y: int) -> list[dict[str, Any]]:
    """Return the check that this step has not been sent for the contact's latest checkout.

    ``make_outcomes`` stores the key after the step's writes and sends.
    """
    item = builder.item_id
    prefix = f"{item}.properties." if builder.crm == "hubspot" else f"{item}."
    key = (f"{builder.flow_key}:{wait.key}:" + "{{" + f"{item}.id" + "}}:{{" +
           f"{prefix}{checkout_field}" + "}}")
    exists = builder.module("datastore:ExistRecord", {"key": key},
                            f"Sent this step for this checkout? (data store {PROCESSED_STORE})",
                            y)
    builder.require({"name": "Not sent for this checkout", "conditions": [
        [{"a": "{{" + f"{exists['id']}.exist" + "}}", "o": "boolean:equal", "b": "false"}]]})
    builder.dedupe_checks.append(
        (int(exists["id"]), key, f"Remember the step as sent (data store {PROCESSED_STORE})"))
    return [exists]
