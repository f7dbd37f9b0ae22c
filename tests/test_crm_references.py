"""Cross-reference checks of ``crm/desired-state.yaml``, through the library, ``rabt crm`` and
``rabt validate`` (no CRM is called: the checks stop the run first)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from generator.cli import main
from generator.crm.references import reference_problems
from tests.crm_support import copy_project, edit_desired, hubspot_env, make_project, run_crm

# Nothing listens here; the desired-state checks stop every run before a call.
UNUSED_URL = "http://127.0.0.1:9"


@pytest.fixture(scope="module")
def hubspot_generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project("shopify-growth", tmp_path_factory.mktemp("hubspot"))


@pytest.fixture(scope="module")
def zoho_generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project("woo-startup", tmp_path_factory.mktemp("zoho"))


@pytest.fixture()
def project(hubspot_generated: Path, tmp_path: Path) -> Path:
    return copy_project(hubspot_generated, tmp_path / hubspot_generated.name)


def desired(project: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((project / "crm/desired-state.yaml").read_text("utf-8"))
    return data


def test_generated_states_have_no_problems(hubspot_generated: Path,
                                           zoho_generated: Path) -> None:
    assert reference_problems(desired(hubspot_generated)) == []
    assert reference_problems(desired(zoho_generated)) == []


def test_unknown_group_reported(hubspot_generated: Path) -> None:
    data = copy.deepcopy(desired(hubspot_generated))
    data["properties"][2]["groupName"] = "no_such_group"
    problems = reference_problems(data)
    assert [problem.location for problem in problems] == ["properties/2/groupName"]
    assert "no_such_group" in problems[0].message
    assert "property_groups" in problems[0].fix


def test_default_group_accepted(hubspot_generated: Path) -> None:
    data = copy.deepcopy(desired(hubspot_generated))
    first = next(index for index, entry in enumerate(data["properties"])
                 if entry["object"] == "contacts")
    data["properties"][first]["groupName"] = "contactinformation"
    assert reference_problems(data) == []


def test_duplicate_property_reported(hubspot_generated: Path) -> None:
    data = copy.deepcopy(desired(hubspot_generated))
    data["properties"].append(copy.deepcopy(data["properties"][0]))
    problems = reference_problems(data)
    assert [problem.location for problem in problems] == [
        f"properties/{len(data['properties']) - 1}"]
    assert "appears more than once" in problems[0].message


def test_duplicate_stage_key_reported(hubspot_generated: Path) -> None:
    data = copy.deepcopy(desired(hubspot_generated))
    stages = data["pipelines"][0]["stages"]
    stages[1]["key"] = stages[0]["key"]
    problems = reference_problems(data)
    assert [problem.location for problem in problems] == ["pipelines/0/stages/1"]
    assert stages[0]["key"] in problems[0].message


def test_unknown_filter_property_reported(hubspot_generated: Path) -> None:
    data = copy.deepcopy(desired(hubspot_generated))
    data["properties"] = [entry for entry in data["properties"]
                          if entry["name"] != "ecom_ltv_sar"]
    problems = reference_problems(data)
    assert "lists/0/filterBranch" in [problem.location for problem in problems]
    assert any("ecom_ltv_sar" in problem.message for problem in problems)


def test_zoho_unknown_view_field(zoho_generated: Path) -> None:
    data = copy.deepcopy(desired(zoho_generated))
    data["segments"][0]["criteria"][0]["field"] = "Ecom_Typo"
    problems = reference_problems(data)
    assert [problem.location for problem in problems] == ["segments/0/criteria/0/field"]
    assert "Ecom_Typo" in problems[0].message


def test_zoho_duplicate_field(zoho_generated: Path) -> None:
    data = copy.deepcopy(desired(zoho_generated))
    fields = data["modules"][0]["fields"]
    fields.append(copy.deepcopy(fields[0]))
    problems = reference_problems(data)
    assert [problem.location for problem in problems] == [f"modules/0/fields/{len(fields) - 1}"]


def test_arabic_problem_text(hubspot_generated: Path) -> None:
    data = copy.deepcopy(desired(hubspot_generated))
    data["properties"].append(copy.deepcopy(data["properties"][0]))
    problems = reference_problems(data, "ar")
    assert "الخاصية" in problems[0].message


def test_crm_plan_stops_on_unknown_group(project: Path) -> None:
    edit_desired(project, lambda data: data["properties"][2].update(groupName="no_such_group"))
    result = run_crm("plan", str(project), env=hubspot_env(UNUSED_URL))
    assert result.exit_code == 2
    assert "properties/2/groupName" in result.stderr
    assert "no_such_group" in result.stderr


def test_validate_reports_unknown_group(project: Path) -> None:
    edit_desired(project, lambda data: data["properties"][2].update(groupName="no_such_group"))
    result = CliRunner().invoke(main, ["validate", str(project)])
    assert result.exit_code == 3
    assert "properties/2/groupName" in result.output


def test_crm_reports_every_schema_error(project: Path) -> None:
    def break_labels(data: dict[str, Any]) -> None:
        for entry in data["properties"][:12]:
            entry["label"] = ""

    edit_desired(project, break_labels)
    result = run_crm("plan", str(project), env=hubspot_env(UNUSED_URL))
    assert result.exit_code == 2
    data = yaml.safe_load((project / "crm/desired-state.yaml").read_text("utf-8"))
    for index, entry in enumerate(data["properties"][:12]):
        assert f"properties/{index} ({entry['name']})/label" in result.stderr


def test_regenerate_fix_has_full_paths(project: Path) -> None:
    edit_desired(project, lambda data: data["lists"][0].update(processingType="SOMETIMES"))
    result = run_crm("plan", str(project), env=hubspot_env(UNUSED_URL))
    folder = project.resolve()
    assert f"--answers {folder / '.rabt' / 'answers.yaml'}" in result.stderr
    assert f"--output-dir {folder.parent}" in result.stderr
    assert "--overwrite" in result.stderr


def test_regenerate_fix_keeps_renamed_folder(project: Path, tmp_path: Path) -> None:
    # The folder's name differs from the slug, so --output-dir of the parent would write
    # a different folder, <parent>/<slug>, and --overwrite could replace another project.
    renamed = copy_project(project, tmp_path / "client-copy")
    edit_desired(renamed, lambda data: data["lists"][0].update(processingType="SOMETIMES"))
    result = run_crm("plan", str(renamed), env=hubspot_env(UNUSED_URL))
    folder = renamed.resolve()
    assert result.exit_code == 2
    assert f"--output-dir {folder.parent}-" not in result.stderr
    assert f"--output-dir {folder.parent / 'client-copy-regenerated'}" in result.stderr
    assert "--overwrite" not in result.stderr
    assert f"is not the project's slug, {project.name}" in result.stderr
