"""The READMEs of a customer-database (custom-erp) API project describe only what it has.

Such a project has no HubSpot or Zoho client, flusher, playbook timers or CRM
deletion, so its READMEs must not promise them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from generator.cli import main


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("custom-erp")
    result = CliRunner().invoke(main, ["new", "--no-input", "--preset", "custom-erp",
                                       "--output-dir", str(output)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    (folder,) = [path for path in output.iterdir() if path.is_dir()]
    return folder


def read(project: Path, name: str) -> str:
    return (project / name).read_text(encoding="utf-8")


def test_desired_state_row_names_tables(project: Path) -> None:
    desired = yaml.safe_load(read(project, "crm/desired-state.yaml"))
    assert "tables" in desired
    assert "pipeline" not in desired
    english = read(project, "README.md")
    arabic = read(project, "README.ar.md")
    assert "| `crm/desired-state.yaml` | the customer database the service writes to" in english
    assert "deal pipeline and its stages" not in english
    assert "| `crm/desired-state.yaml` | قاعدة بيانات العملاء" in arabic
    assert "ومسار الصفقات ومراحله" not in arabic


@pytest.mark.parametrize("absent", [
    "playbooks' coupons",
    "playbooks' discount codes",
    "Zoho's credit budget",
    "flusher's lock",
    "Last_Name",
    "`PRIVACY_CRM_DELETE=true` the same",
    "HUBSPOT_RATE_LIMIT_PER_10S`), then",
    "For Zoho the estimate",
    "read_all_orders",
])
def test_service_readme_omits_other_crms(project: Path, absent: str) -> None:
    assert absent not in read(project, "service/README.md")


@pytest.mark.parametrize("absent", [
    "ورموز الخصم في خطط التشغيل",
    "وقسائم الخصم في خطط",
    "رصيدَ Zoho",
    "Last_Name",
    "ومع `PRIVACY_CRM_DELETE=true` تُدرج",
    "وفق حد CRM للمعدل",
    "مشاريع Zoho",
    "read_all_orders",
])
def test_arabic_service_readme_omits_other_crms(project: Path, absent: str) -> None:
    assert absent not in read(project, "service/README.ar.md")


def test_backfill_estimate_explained(project: Path) -> None:
    english = read(project, "service/README.md")
    arabic = read(project, "service/README.ar.md")
    assert "from the store API alone because the customer\ndatabase has no rate limit" in english
    assert "لأن قاعدة بيانات العملاء بلا حد للمعدل" in arabic
