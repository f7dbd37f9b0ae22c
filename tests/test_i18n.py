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


ZOHO_MENU_EN = "Setup, Customization, Modules and Fields"
ZOHO_MENU_AR = "Setup ثم Customization ثم Modules and Fields"


def _zoho_manual_texts() -> list[dict[str, str]]:
    texts = [entry for name, entry in CATALOGUE.items() if name.startswith("crm_manual_zoho")]
    steps = load_data("spec/desired_state")["manual_steps"]
    texts += [step["text"] for step in steps if step.get("when", {}).get("crm") == "zoho"]
    return texts


def test_zoho_menu_paths_use_ui_labels() -> None:
    texts = _zoho_manual_texts()
    with_menu = [text for text in texts if "Modules and Fields" in text["en"]]
    assert len(with_menu) >= 7
    for text in with_menu:
        assert ZOHO_MENU_EN in text["en"], text["en"]
        assert ZOHO_MENU_AR in text["ar"], text["ar"]
    for text in texts:
        assert "الإعدادات" not in text["ar"], text["ar"]
        assert "الوحدات والحقول" not in text["ar"], text["ar"]


def test_zoho_stage_step_names_forecast_type() -> None:
    entry = CATALOGUE["crm_manual_zoho_stage"]
    assert "Forecast Type {forecast}" in entry["en"]
    assert "Forecast Type {forecast}" in entry["ar"]
    assert "Forecast category" not in entry["ar"]
