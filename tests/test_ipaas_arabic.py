"""Arabic iPaaS documents: no English prose, and spec notes in their Arabic twin."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from generator.resources import load_schema
from generator.spec import mapping as spec_mapping
from generator.spec._common import add_confidence, unconfirmed_note
from tests.arabic_text import english_runs
from tests.ipaas_cases import IPAAS_CASES
from tests.test_ipaas_projects import bake

# Operator labels of Tray's Boolean Condition, which the Tray sheet names as the
# connector shows them.
TRAY_OPERATORS = ("Is not empty", "Equal to")
CASES = {case: (preset, values) for case, preset, values in IPAAS_CASES}
# The noted fields whose rows each case's Zapier sheet shows, so the note check below
# cannot pass on a sheet without notes.
NOTED_ROWS = {
    "shopify-hubspot": {"refunded_amount", "currency"},
    "shopify-hubspot-support": {"refunded_amount", "currency"},
    "shopify-zoho-support": {"refunded_amount", "currency", "sku", "title"},
    "shopify-zoho-no-support": {"refunded_amount", "currency", "sku", "title"},
    "woocommerce-zoho": {"currency", "order_source", "sku", "title"},
    "headless-hubspot": {"currency"},
    "shopify-postgres": {"refunded_amount"},
}
SPEC = Path(__file__).parents[1] / "generator/data/spec"


@pytest.fixture(scope="module", params=sorted(CASES))
def baked(request: pytest.FixtureRequest,
          tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    preset, values = CASES[request.param]
    return request.param, bake(tmp_path_factory.mktemp(request.param), preset, values)


def workflow_names(project: Path) -> list[str]:
    """Return the names of the n8n workflows, which the n8n guide shows as n8n lists them."""
    return [json.loads(path.read_text("utf-8"))["name"]
            for path in (project / "workflows/n8n").glob("*.json")]


def unescaped(text: str) -> str:
    """Return Markdown text without backslash escapes and with line breaks folded."""
    return " ".join(re.sub(r"\\(.)", r"\1", text).split())


def noted_fields(project: Path) -> list[dict[str, Any]]:
    """Return the field-map fields and roll-ups of the project's spec that carry a note."""
    mapping = yaml.safe_load((project / "integration/mapping.yaml").read_text("utf-8"))
    items = [item for entity in mapping["entities"].values() if entity["enabled"]
             for item in (*entity["fields"], *entity.get("rollups", []))]
    return [item for item in items if "note" in item]


def test_english_runs_skips_names() -> None:
    text = "| `a.json` | Store: Order to deal sync for the team | تدفق"
    assert english_runs(text) == ["Store: Order to deal sync for the team"]
    assert english_runs(text, ["Store: Order to deal sync for the team"]) == []


def test_arabic_ipaas_docs_have_no_english(baked: tuple[str, Path]) -> None:
    _, project = baked
    names = [*workflow_names(project), *TRAY_OPERATORS]
    documents = sorted(project.rglob("*.ar.md"))
    assert project / "workflows/zapier-build-sheet.ar.md" in documents
    for path in documents:
        runs = english_runs(path.read_text("utf-8"), names)
        assert runs == [], path.relative_to(project).as_posix()


def test_arabic_branch_names_use_ui_labels(baked: tuple[str, Path]) -> None:
    """Condition branches keep the labels true and false of the English sheets."""
    _, project = baked
    tray = (project / "workflows/tray-build-sheet.ar.md").read_text("utf-8")
    assert "فرع true" in unescaped(tray)
    assert "فرع false" in unescaped(tray)
    for path in sorted(project.rglob("*.ar.md")):
        text = unescaped(path.read_text("utf-8"))
        where = path.relative_to(project).as_posix()
        assert "المسار الصحيح" not in text, where
        assert "المسار الخاطئ" not in text, where
        assert "تدفق n8n لكل تدفق" not in text, where


def test_zapier_sheet_shows_arabic_notes(baked: tuple[str, Path]) -> None:
    case, project = baked
    english = unescaped((project / "workflows/zapier-build-sheet.md").read_text("utf-8"))
    arabic = unescaped((project / "workflows/zapier-build-sheet.ar.md").read_text("utf-8"))
    rows_with_notes = [item for item in noted_fields(project) if item["note"] in english]
    assert {item["name"] for item in rows_with_notes} == NOTED_ROWS[case]
    for item in rows_with_notes:
        assert item["note"] not in arabic, item["name"]
        assert f"(غير مؤكد: {item['note_ar']})" in arabic, item["name"]


def test_zapier_sheet_note_without_twin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def english_only(entry: dict[str, Any], marks: Any, ctx: Any) -> dict[str, Any]:
        return add_confidence(entry, unconfirmed_note(marks, ctx))

    monkeypatch.setattr(spec_mapping, "add_unconfirmed", english_only)
    preset, values = CASES["shopify-hubspot"]
    project = bake(tmp_path, preset, values)
    arabic = unescaped((project / "workflows/zapier-build-sheet.ar.md").read_text("utf-8"))
    assert "transactions[].amount path inside each refund" not in arabic
    assert "(غير مؤكد، والملاحظة مكتوبة بالإنجليزية في `integration/mapping.yaml`)" in arabic


def test_mapping_field_notes_have_arabic_twins() -> None:
    data = yaml.safe_load((SPEC / "mapping.yaml").read_text("utf-8"))
    items = [item for entity in data["entities"]
             for item in (*entity["fields"], *entity.get("rollups", []))]
    notes = [mark["note"] for item in items for mark in item.get("unconfirmed", [])]
    assert len(notes) == 9
    for note in notes:
        assert isinstance(note, dict), note
        assert set(note) == {"en", "ar"}, note
        assert re.search("[\u0600-\u06ff]", note["ar"]), note


def test_mapping_schema_note_ar_needs_note() -> None:
    schema = load_schema("spec-mapping")
    field = {"name": "currency", "source": "currency", "target": "deal_currency_code",
             "transform": "identity"}
    validator = jsonschema.Draft202012Validator(
        {**schema["$defs"]["field"], "$defs": schema["$defs"]})
    twin = "قد يلزم تفعيل الريال السعودي."
    assert list(validator.iter_errors({**field, "confidence": "unconfirmed",
                                       "note": "SAR may need enabling.", "note_ar": twin})) == []
    errors = [error.message for error in validator.iter_errors({**field, "note_ar": twin})]
    assert errors == ["'note' is a dependency of 'note_ar'"]


def test_english_runs_skips_code_blocks() -> None:
    text = ("<div dir=\"ltr\">\n\n```javascript\n"
            "throw new Error('the event was not processed at all');\n```\n\nتدفق")
    assert english_runs(text) == []
    assert english_runs("the event was not processed at all") != []
