"""Whole iPaaS projects: every preset and variant renders and passes ``rabt validate``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from generator.cli import main
from tests.ipaas_cases import IPAAS_CASES

DOCS = ["workflows/README.md", "workflows/README.ar.md", "workflows/zapier-build-sheet.md",
        "workflows/zapier-build-sheet.ar.md", "workflows/tray-build-sheet.md",
        "workflows/tray-build-sheet.ar.md", "docs/operations-budget.md",
        "docs/operations-budget.ar.md"]


def set_options(values: dict[str, Any]) -> list[str]:
    options = []
    for key, value in values.items():
        text = ",".join(value) if isinstance(value, list) else str(value)
        options += ["--set", f"{key}={text}"]
    return options


def bake(tmp_path: Path, preset: str, values: dict[str, Any]) -> Path:
    result = CliRunner().invoke(main, ["new", "--no-input", "--preset", preset,
                                       "--output-dir", str(tmp_path), *set_options(values)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return next(path for path in tmp_path.iterdir() if path.is_dir())


@pytest.mark.parametrize(("case", "preset", "values"), IPAAS_CASES, ids=[c[0] for c in IPAAS_CASES])
def test_project_validates(tmp_path: Path, case: str, preset: str,
                           values: dict[str, Any]) -> None:
    project = bake(tmp_path, preset, values)
    result = CliRunner().invoke(main, ["validate", str(project)])
    assert result.exit_code == 0, result.output
    for name in DOCS:
        assert (project / name).is_file(), name


@pytest.mark.parametrize(("case", "preset", "values"), IPAAS_CASES, ids=[c[0] for c in IPAAS_CASES])
def test_project_make_files_per_crm(tmp_path: Path, case: str, preset: str,
                                    values: dict[str, Any]) -> None:
    project = bake(tmp_path, preset, values)
    blueprints = sorted((project / "workflows/make").glob("*.blueprint.json"))
    if case == "shopify-postgres":
        assert blueprints == []
        assert "No Make blueprints" in (project / "workflows/README.md").read_text("utf-8")
    else:
        assert "order-sync.blueprint.json" in {path.name for path in blueprints}
    assert (project / "schemas/make-blueprint.schema.json").is_file()


def test_project_arabic_docs_rendered(tmp_path: Path) -> None:
    project = bake(tmp_path, "jeddah-fashion-zoho", {})
    for name in DOCS:
        if not name.endswith(".ar.md"):
            continue
        text = (project / name).read_text("utf-8")
        assert "{{" not in text, name
        assert "{%" not in text, name
        assert text.lstrip().startswith('<div dir="rtl">'), name
        assert "ticket-sync" in text or "operations-budget" in name, name


def test_project_sheets_say_no_import(tmp_path: Path) -> None:
    project = bake(tmp_path, "shopify-growth", {})
    zapier = (project / "workflows/zapier-build-sheet.md").read_text("utf-8")
    tray = (project / "workflows/tray-build-sheet.md").read_text("utf-8")
    assert "Zapier has no file format that a user can import" in zapier
    assert "publishes no format or schema" in tray
    assert "`orders/create`, `orders/updated`" in zapier


def test_project_budget_numbers(tmp_path: Path) -> None:
    project = bake(tmp_path, "shopify-growth", {"monthly_orders": 1000})
    text = (project / "docs/operations-budget.md").read_text("utf-8")
    assert "| Customer to contact (`contact-sync`) | 1,200 = `orders * 1.2` |" in text
    assert "4,800 = `runs * 4`" in text


def test_project_bad_blueprint_exit_3(tmp_path: Path) -> None:
    project = bake(tmp_path, "shopify-growth", {})
    path = project / "workflows/make/order-sync.blueprint.json"
    blueprint = json.loads(path.read_text("utf-8"))
    blueprint["flow"][0]["parameters"] = {"__IMTCONN__": 12345}
    del blueprint["flow"][1]["version"]
    path.write_text(json.dumps(blueprint), "utf-8")
    result = CliRunner().invoke(main, ["validate", str(project)])
    assert result.exit_code == 3, result.output
    assert "workflows/make/order-sync.blueprint.json" in result.output
    assert "make-blueprint" in result.output


def test_project_missing_budget_exit_3(tmp_path: Path) -> None:
    project = bake(tmp_path, "shopify-growth", {})
    (project / "docs/operations-budget.md").unlink()
    result = CliRunner().invoke(main, ["validate", str(project)])
    assert result.exit_code == 3, result.output
    assert "docs/operations-budget.md" in result.output


def test_project_zoho_readme_matches_files(tmp_path: Path) -> None:
    project = bake(tmp_path, "jeddah-fashion-zoho", {})
    readme = (project / "workflows/README.md").read_text("utf-8")
    readme_ar = (project / "workflows/README.ar.md").read_text("utf-8")
    assert "Zoho OAuth2 API" not in readme
    assert "| OAuth2 API (the generic one;" in readme
    assert "| OAuth2 API (العامة؛" in readme_ar
    assert "`zoho_oauth`" in readme
    assert "| `status_to_stage` | nested if()" in readme
    kinds = {kind for path in (project / "workflows/n8n").glob("*.json")
             for node in json.loads(path.read_text("utf-8"))["nodes"]
             for kind in node.get("credentials", {})
             if node.get("credentials", {}).get(kind, {}).get("name") == "jeddah-fashion-zoho"}
    assert kinds == {"oAuth2Api"}


def read_flat(project: Path, name: str) -> str:
    """Return a generated document with its line breaks folded into spaces."""
    return " ".join((project / name).read_text("utf-8").split())


def test_project_budget_money_and_plans(tmp_path: Path) -> None:
    project = bake(tmp_path, "shopify-growth", {"monthly_orders": 6000})
    english = read_flat(project, "docs/operations-budget.md")
    arabic = read_flat(project, "docs/operations-budget.ar.md")
    assert "SAR 750: the server, SAR 150 ($40.00), plus 2 hours of upkeep at SAR 300 an hour, " \
        "unconfirmed" in english
    assert "750 ريالًا: الخادم بسعر 150 ريالًا ($40.00)، وصيانة ساعتين بسعر 300 ريال للساعة، " \
        "غير مؤكد" in arabic
    assert "(USD " not in english
    assert " دولار)" not in arabic
    for text in (english, arabic):
        assert ".)." not in text
        assert "Professional (" not in text
    assert "tasks a month is more than its largest plan listed here" in english
    assert "**Recommended: n8n, self-hosted, Self-hosted server, SAR 750 a month " \
        "(unconfirmed).**" in english
    assert "Zapier: the scheduled flows alone, with no order, need more tasks" in english
    assert "from about 250 orders" not in english
    assert "تحتاج التدفقات المجدولة وحدها، دون أي طلب، إلى مهام أكثر" in arabic


def test_project_arabic_budget_no_english(tmp_path: Path) -> None:
    project = bake(tmp_path, "shopify-growth", {"monthly_orders": 6000})
    arabic = read_flat(project, "docs/operations-budget.ar.md")
    for fragment in ("Business or a custom contract", "Self-hosted server", "daily runs",
                     "buyers who do not reorder", "not opened", "runs *", "250 طلب ",
                     "6,000 طلبًا"):
        assert fragment not in arabic, fragment
    assert "عند 6,000 طلب شهريًا" in arabic
    assert "خادم مستضاف ذاتيًا" in arabic


def test_project_zapier_sheet_readable(tmp_path: Path) -> None:
    project = bake(tmp_path, "shopify-growth", {})
    english = (project / "workflows/zapier-build-sheet.md").read_text("utf-8")
    arabic = (project / "workflows/zapier-build-sheet.ar.md").read_text("utf-8")
    for text in (english, arabic):
        assert "any_set=" not in text
        assert "ttl_days=" not in text
        assert "Formatter by Zapier, or the next step's fields" not in text
    rows = [line for line in english.splitlines() if line.startswith("| ")]
    get_value = next(index for index, line in enumerate(rows) if "Action Get Value" in line)
    assert "| Filter by Zapier | Only continue if the Value" in rows[get_value + 1]
    assert "Action Set Value" in rows[get_value + 2]
    assert "Remove All Values" in english
    assert "Remove All Values" in arabic
    assert "لا تستمر إلا إذا كانت القيمة Value" in arabic
    assert "No order" not in arabic
