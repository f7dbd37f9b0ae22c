"""Field-by-field comparison shared by the CRM adapters, and bilingual manual-step text."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from generator.crm.model import Change, Text
from generator.i18n import join_list, message
from generator.model import Lang

# Maximum length of a value shown in a printed change or manual step.
MAX_VALUE_TEXT = 160


def bilingual(entry: str, /, **fields: Any) -> Text:
    """Return catalogue message ``entry`` in both languages with ``fields`` filled in."""
    return Text(en=message(entry, "en", **fields), ar=message(entry, "ar", **fields))


def bilingual_list(entry: str, /, lists: dict[str, list[str]], **fields: Any) -> Text:
    """Like ``bilingual``, with each of ``lists`` joined by the language's comma."""
    def render(lang: Lang) -> str:
        joined = {name: join_list(values, lang) for name, values in lists.items()}
        return message(entry, lang, **joined, **fields)

    return Text(en=render("en"), ar=render("ar"))


def show(value: Any) -> str:
    """Render a value for a change line or a manual step: JSON, cut to a readable length."""
    if isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    else:
        text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    if len(text) > MAX_VALUE_TEXT:
        text = text[:MAX_VALUE_TEXT - 1] + "…"
    return text


def same_number(left: Any, right: Any) -> bool:
    """Compare two numbers given as numbers or text ("0.1" and 0.1 are equal)."""
    try:
        return Decimal(str(left)) == Decimal(str(right))
    except (InvalidOperation, ValueError):
        return str(left) == str(right)


def contains(desired: Any, live: Any) -> bool:
    """Return whether ``live`` contains every key and value of ``desired``.

    Keys the CRM adds (defaults, ids, ``filterBranchOperator``) are ignored, and
    lists must match item by item in order.
    """
    if isinstance(desired, Mapping):
        if not isinstance(live, Mapping):
            return False
        return all(key in live and contains(value, live[key]) for key, value in desired.items())
    if isinstance(desired, Sequence) and not isinstance(desired, str):
        if not isinstance(live, Sequence) or isinstance(live, str) or len(live) != len(desired):
            return False
        return all(contains(want, have) for want, have in zip(desired, live, strict=True))
    if isinstance(desired, bool) or isinstance(live, bool):
        return bool(desired == live)
    if isinstance(desired, int | float) and isinstance(live, int | float | str):
        return same_number(desired, live)
    return bool(desired == live)


def field_changes(desired: Mapping[str, Any], live: Mapping[str, Any],
                  fields: Sequence[str]) -> list[Change]:
    """Return a change for each of ``fields`` whose live value differs from the desired one."""
    changes = []
    for name in fields:
        if name not in desired:
            continue
        want = desired[name]
        have = live.get(name)
        if isinstance(want, str) and have is None and want == "":
            continue
        if not contains(want, have):
            changes.append(Change(name, have, want))
    return changes


def option_lines(old: Any, new: Any, lang: Lang = "en") -> list[str]:
    """Describe an options change value by value: ``+`` added, ``-`` removed, ``~`` relabelled.

    A whole option list does not fit on one line, so the printed plan shows each
    option that changes instead of two cut-off JSON lists.
    """
    before = _labels_by_value(old)
    after = _labels_by_value(new)
    lines = [f"+ {value} ({show(label)})" for value, label in after.items() if value not in before]
    lines += [f"- {value} ({show(label)})" for value, label in before.items() if value not in after]
    lines += [f"~ {value}: {show(before[value])} → {show(label)}"
              for value, label in after.items() if value in before and before[value] != label]
    if not lines and list(before) != list(after):
        lines.append(message("crm_change_option_order", lang, values=join_list(list(after), lang)))
    return lines


def _labels_by_value(options: Any) -> dict[str, Any]:
    if not isinstance(options, list):
        return {}
    return {str(option.get("value")): option.get("label")
            for option in options if isinstance(option, Mapping)}
