"""The workflows guide lists every placeholder that the Make blueprints carry, with its count."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from generator.ipaas import make_placeholders
from generator.ipaas.make_placeholders import DATE_FORMAT_LETTERS, PATTERN, placeholder_rows
from tests.test_ipaas_projects import bake

CASES = [("shopify-hubspot", "shopify-growth", {}),
         ("woocommerce-zoho", "woo-startup", {"monthly_orders": 400}),
         ("headless-hubspot", "headless-nextjs", {"path": "ipaas"})]


def guide_rows(guide: str) -> dict[str, str]:
    """Return the placeholder table of a workflows guide: the occurrences cell by placeholder."""
    rows = {}
    for line in guide.splitlines():
        match = re.match(r"\| `([^`]+)` \|.*\| ([^|]+) \|$", line)
        if match and PATTERN.fullmatch(match.group(1)):
            rows[match.group(1)] = match.group(2)
    return rows


def written_count(cell: str) -> int:
    """Return the count at the start of an occurrences cell, in English or Arabic."""
    match = re.match(r"([\d,]+|مرة واحدة|مرتين) (in|مرة|مرات|في)", cell)
    assert match is not None, cell
    return int({"مرة واحدة": "1", "مرتين": "2"}.get(match.group(1), match.group(1))
               .replace(",", ""))


@pytest.mark.parametrize(("case", "preset", "values"), CASES, ids=[c[0] for c in CASES])
def test_make_guide_lists_every_placeholder(tmp_path: Path, case: str, preset: str,
                                            values: dict[str, Any]) -> None:
    project = bake(tmp_path, preset, values)
    texts = [path.read_text("utf-8")
             for path in (project / "workflows/make").glob("*.blueprint.json")]
    for name in ("README.md", "README.ar.md"):
        rows = guide_rows((project / "workflows" / name).read_text("utf-8"))
        assert "https://hook.make.example/ERROR-ALERT-WEBHOOK" in rows, name
        rest = list(texts)
        for value in sorted(rows, key=len, reverse=True):
            exact = re.compile(r"(?<![\w-])" + re.escape(value) + r"(?![\w-])")
            count = sum(len(exact.findall(text)) for text in rest)
            assert written_count(rows[value]) == count, f"{name}: {value}"
            rest = [text.replace(value, " ") for text in rest]
        left = {match for text in rest for match in PATTERN.findall(text)
                if not set(match) <= DATE_FORMAT_LETTERS}
        assert left == set(), name


def test_make_guide_error_webhook_replace_command(tmp_path: Path) -> None:
    project = bake(tmp_path, "shopify-growth", {})
    guide = (project / "workflows/README.md").read_text("utf-8")
    assert ("sed -i 's#https://hook.make.example/ERROR-ALERT-WEBHOOK#NEW-VALUE#g' "
            "workflows/make/*.blueprint.json") in guide
    assert guide_rows(guide)["https://hook.make.example/ERROR-ALERT-WEBHOOK"].startswith(
        "156 in 12 files:")


def test_placeholder_rows_reject_unknown() -> None:
    with pytest.raises(ValueError, match="NEW-SECRET-TOKEN"):
        placeholder_rows({"order-sync": '{"value": "Bearer NEW-SECRET-TOKEN"}'})


def test_placeholder_rows_count_whole_strings() -> None:
    text = '{"url": "https://graph.facebook.com/GRAPH-API-VERSION/x", "date": "YYYY-MM-DDTHH:mm"}'
    rows = {row["value"]: row for row in placeholder_rows({"send": text})}
    assert list(rows) == ["GRAPH-API-VERSION"]
    assert rows["GRAPH-API-VERSION"]["count"] == 1
    assert rows["GRAPH-API-VERSION"]["files"] == ["send"]


def test_placeholder_entries_match_pattern() -> None:
    for placeholder in make_placeholders.KNOWN:
        assert PATTERN.fullmatch(placeholder.value), placeholder.value


def whatsapp_bodies(project: Path) -> list[str]:
    """Return every WhatsApp send body of the project's Make blueprints."""
    bodies = []
    for path in (project / "workflows/make").glob("*.blueprint.json"):
        for match in re.finditer(r'"jsonStringBodyContent": ("(?:[^"\\]|\\.)*")',
                                 path.read_text("utf-8")):
            body = json.loads(match.group(1))
            if '"messaging_product"' in body:
                bodies.append(body)
    return bodies


def test_whatsapp_language_placeholder_default(tmp_path: Path) -> None:
    from tests.test_ipaas_make_iml import evaluate

    project = bake(tmp_path, "shopify-growth", {})
    bodies = whatsapp_bodies(project)
    assert bodies, "no WhatsApp send in the blueprints"
    for body in bodies:
        language = re.search(r'"language": \{"code": "(\{\{.*?\}\})"\}', body)
        assert language is not None, body[:200]
        formula = language.group(1)
        assert "WHATSAPP-TEMPLATE-LANGUAGE" in formula
        # Left as is, the scenario sends n8n's default; edited, it sends the new code.
        assert evaluate(formula, {}) == "ar"
        edited = formula.replace("WHATSAPP-TEMPLATE-LANGUAGE", "en_US")
        assert evaluate(edited, {}) == "en_US"
    for name, words in (("README.md", "Optional: left as is, the scenarios send `ar`"),
                        ("README.ar.md", "إن بقي كما هو أرسلت السيناريوهات `ar`")):
        guide = (project / "workflows" / name).read_text("utf-8")
        assert "WHATSAPP-TEMPLATE-LANGUAGE" in guide_rows(guide), name
        assert words in guide, name
