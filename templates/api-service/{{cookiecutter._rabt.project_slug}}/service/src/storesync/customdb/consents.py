"""Marketing consent read from delivery bodies, by the rules of ``integration/consent.yaml``.

Each channel of the spec names the body field that contains the consent state and
the extra fields beside it: the time it changed, the opt-in level, the wording version.
It also says what each state value means (granted, not_granted or withdrawn). Paths
are dotted; ``meta_data[KEY]`` reads the value of the WooCommerce meta entry with that
key. A Shopify path that starts with ``customer.`` is also tried without that prefix.
A customers/create or customers/update body is the customer itself, and the bodies of
the consent topics customers_marketing_consent/update and
customers_email_marketing_consent/update keep the consent object at the top level.

This module only reads bodies; the writer stores one ``consents`` row per contact,
channel and capture time, and the newest row per channel is the current state.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

CHANNELS = ("email", "sms", "whatsapp")
MEANINGS = ("granted", "not_granted", "withdrawn")
_META_SEGMENT = re.compile(r"^([A-Za-z0-9_]+)\[([^\]]+)\]$")
_MISSING = object()


@dataclass(frozen=True)
class ConsentRule:
    """The location of one channel's consent in a body, and the meaning of each value."""

    channel: str
    field: str
    extra_fields: tuple[str, ...]
    states: Mapping[str, str]


@dataclass(frozen=True)
class ConsentChange:
    """One channel's consent as a body states it.

    ``captured_at`` is None when the body gives no readable time; the caller then
    uses the delivery's own time.
    """

    channel: str
    state: str
    captured_at: datetime | None
    source: str | None
    wording_version: str | None
    opt_in_level: str | None


def load_rules(path: Path) -> list[ConsentRule]:
    """Return the channel rules of a ``consent.yaml``; none when the file is missing.

    Raises:
        ValueError: the file exists but cannot be read as YAML.
    """
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ValueError(f"cannot read {path}: {error}") from error
    channels = data.get("channels") if isinstance(data, Mapping) else None
    rules = []
    for entry in channels if isinstance(channels, list) else []:
        source = entry.get("source") if isinstance(entry, Mapping) else None
        if not isinstance(source, Mapping) or entry.get("channel") not in CHANNELS:
            continue
        states = {_text(state.get("value")): str(state.get("meaning"))
                  for state in source.get("states") or []
                  if isinstance(state, Mapping) and state.get("meaning") in MEANINGS}
        if source.get("field") and states:
            rules.append(ConsentRule(str(entry["channel"]), str(source["field"]),
                                     tuple(str(name) for name in source.get("extra_fields") or []),
                                     states))
    return rules


def read_path(body: Any, path: str) -> Any:
    """Return the value at ``path`` in ``body``, or ``_MISSING``."""
    value = body
    for segment in path.split("."):
        meta = _META_SEGMENT.match(segment)
        if meta is not None:
            value = _meta_value(value.get(meta.group(1)) if isinstance(value, Mapping) else None,
                                meta.group(2))
        elif isinstance(value, Mapping) and segment in value:
            value = value[segment]
        else:
            return _MISSING
        if value is _MISSING:
            return _MISSING
    return value


def _meta_value(entries: Any, key: str) -> Any:
    # The newest entry of a key is the last one WooCommerce lists.
    found: Any = _MISSING
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, Mapping) and entry.get("key") == key:
            found = entry.get("value")
    return found


def field_value(body: Any, path: str) -> Any:
    """Return the value at ``path``, also trying a ``customer.`` path on the body itself."""
    # From API 2025-01, customer bodies no longer carry the consent objects (Shopify
    # developer changelog, January 2025). The two consent topics carry them instead.
    value = read_path(body, path)
    if value is _MISSING and path.startswith("customer."):
        value = read_path(body, path[len("customer."):])
    return value


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip().lower()


def parse_consent_time(value: Any) -> datetime | None:
    """Read an ISO 8601 time (UTC when it has no offset) or Unix seconds; None otherwise."""
    if isinstance(value, bool) or value is None or value is _MISSING:
        return None
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    text = str(value).strip()
    if text.isdigit():
        return datetime.fromtimestamp(int(text), UTC)
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _extra(body: Any, fields: Sequence[str], test: Any) -> Any:
    for path in fields:
        if test(path.rsplit(".", 1)[-1].rstrip("]")):
            value = field_value(body, path)
            if value is not _MISSING and value not in (None, ""):
                return value
    return None


def consent_changes(rules: Sequence[ConsentRule], body: Any) -> list[ConsentChange]:
    """Return the consent each channel rule finds in ``body``.

    A channel whose field is absent, or holds a value the spec does not list, gives
    nothing: a body that says nothing about consent changes nothing.
    """
    changes = []
    for rule in rules:
        value = field_value(body, rule.field)
        if value is _MISSING or value is None:
            continue
        meaning = rule.states.get(_text(value))
        if meaning is None:
            continue
        when = _extra(body, rule.extra_fields, lambda name: name.endswith("_at"))
        wording = _extra(body, rule.extra_fields, lambda name: "wording" in name)
        source = _extra(body, rule.extra_fields, lambda name: name == "source")
        level = _extra(body, rule.extra_fields, lambda name: name == "opt_in_level")
        changes.append(ConsentChange(
            rule.channel, meaning, parse_consent_time(when),
            str(source) if source is not None else None,
            str(wording) if wording is not None else None,
            str(level) if level is not None else None))
    return changes
