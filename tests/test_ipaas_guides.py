"""iPaaS project guides: links to the n8n folder, one credential list, Make webhook steps."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from generator.cli import main

CREDENTIAL_ROW = re.compile(r"^\| `([a-z0-9-]+)` \|", re.M)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("guides")
    result = CliRunner().invoke(main, ["new", "--no-input", "--preset", "jeddah-fashion-zoho",
                                       "--output-dir", str(output)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return next(path for path in output.iterdir() if path.is_dir())


def read(project: Path, relative: str) -> str:
    return (project / relative).read_text(encoding="utf-8")


@pytest.mark.parametrize(("readme", "link"), [
    ("README.md", "(workflows/n8n/README.md)"),
    ("README.ar.md", "(workflows/n8n/README.ar.md)"),
    ("workflows/README.md", "(n8n/README.md)"),
    ("workflows/README.ar.md", "(n8n/README.ar.md)"),
])
def test_readme_links_n8n_guide(project: Path, readme: str, link: str) -> None:
    assert link in read(project, readme)


@pytest.mark.parametrize("lang", ["", ".ar"])
def test_credentials_match_n8n_guide(project: Path, lang: str) -> None:
    listed = set(CREDENTIAL_ROW.findall(read(project, f"workflows/README{lang}.md")))
    n8n_listed = set(CREDENTIAL_ROW.findall(read(project, f"workflows/n8n/README{lang}.md")))
    credentials = {name for name in n8n_listed if name.startswith("jeddah-fashion-")}
    assert len(credentials) >= 5
    assert listed == credentials


@pytest.mark.parametrize("lang", ["", ".ar"])
def test_make_guide_headers_and_phone(project: Path, lang: str) -> None:
    text = read(project, f"workflows/README{lang}.md")
    assert "**Get request headers**" in text
    assert "| `phone_e164_sa` |" in text


def test_tray_sheet_concrete_steps(project: Path) -> None:
    text = read(project, "workflows/tray-build-sheet.md")
    assert "{'" not in text
    assert "`{" not in text
    assert ("| Data Storage | Operation Get Value, scope Account. Key: `processed_events:` "
            "followed by `header X-Shopify-Event-Id` from the trigger.") in text
    assert "| Script | Input: the trigger body." in text
    assert "| HTTP Client | Operation by the method below" in text
    assert "Unconfirmed name: use the Delay operation that pauses the run for a set time." in text


def test_tray_sheet_arabic_steps(project: Path) -> None:
    text = read(project, "workflows/tray-build-sheet.ar.md")
    assert "{'" not in text
    assert "| Data Storage | العملية Get Value بالنطاق Account." in text
    assert "اسم غير مؤكد: استخدم من Delay العملية التي توقف التشغيل مدة محددة." in text


def test_zapier_sheet_marks_action_names(project: Path) -> None:
    text = read(project, "workflows/zapier-build-sheet.md")
    assert ("The name Get Value may differ in your Zapier account; pick the Storage by Zapier "
            "action or rule that reads the value stored under one key.") in text
    assert ("The name Custom Request may differ in your Zapier account; pick the Webhooks by "
            "Zapier action or rule that sends an HTTP request") in text
    arabic = read(project, "workflows/zapier-build-sheet.ar.md")
    assert "قد يختلف الاسم Get Value في حسابك على Zapier" in arabic
