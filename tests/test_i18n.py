"""The message catalogue: every entry in both languages, every placeholder fillable."""

from __future__ import annotations

import string

import pytest

from generator.i18n import message
from generator.resources import load_data

CATALOGUE = load_data("messages")
TEXT_ENTRIES = [name for name, entry in CATALOGUE.items() if isinstance(entry["en"], str)]


def placeholders(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field}


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_entry_has_both_languages(name: str) -> None:
    assert set(CATALOGUE[name]) == {"en", "ar"}


@pytest.mark.parametrize("name", TEXT_ENTRIES)
def test_entry_formats_in_both_languages(name: str) -> None:
    entry = CATALOGUE[name]
    assert placeholders(entry["en"]) == placeholders(entry["ar"])
    fields = dict.fromkeys(placeholders(entry["en"]), "X")
    assert message(name, "en", **fields)
    arabic = message(name, "ar", **fields)
    if entry["ar"] != entry["en"]:  # a few entries are only placeholders
        assert any("\u0600" <= char <= "\u06ff" for char in arabic)


def test_marker_message_shows_braces() -> None:
    assert "{{" in message("validate_marker")
