"""Bake every preset and one answer combination per rule through ``rabt new``.

Every generated data file is parsed and checked against its schema, and no template
marker may remain. Hostile client names must survive into every file unchanged.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import icalendar
import pytest
import yaml
from click.testing import CliRunner

from generator.answers import builtin_preset_names
from generator.cli import main
from generator.validate import MARKER, validate_project
from tests.rule_cases import RULE_CASES, RuleCase

HOSTILE_NAMES = {
    "quotes-colons": 'Ali\'s "Store": the best',
    "braces": "{{ cookiecutter.x }} {% if %} {# c #}",
    "newline": "First line\nsecond: line",
    "arabic-rtl": "\u200fمتجر «الورد» للعطور\u200f",
    "emoji": "Rose 🌹 Shop 🎉",
    "yaml-like": "yes: no, - [x] & *anchor | >",
}


def bake(tmp_path: Path, *args: str) -> Path:
    result = CliRunner().invoke(main, ["new", "--no-input", "--output-dir", str(tmp_path), *args],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    projects = [path for path in tmp_path.iterdir() if path.is_dir()]
    assert len(projects) == 1
    return projects[0]


def parse_all(project: Path) -> dict[str, Any]:
    """Parse every structured file, failing on the first that does not parse."""
    parsed: dict[str, Any] = {}
    for path in sorted(project.rglob("*")):
        relative = path.relative_to(project).as_posix()
        if path.suffix == ".json":
            parsed[relative] = json.loads(path.read_text(encoding="utf-8"))
        elif path.suffix in {".yaml", ".yml"}:
            parsed[relative] = yaml.safe_load(path.read_text(encoding="utf-8"))
        elif path.suffix == ".csv":
            text = path.read_bytes().decode("utf-8-sig")
            parsed[relative] = list(csv.DictReader(io.StringIO(text, newline="")))
        elif path.suffix == ".ics":
            parsed[relative] = icalendar.Calendar.from_ical(path.read_bytes())
    return parsed


def assert_project_sound(project: Path) -> dict[str, Any]:
    report = validate_project(project)
    assert [problem.render() for problem in report.problems] == []
    parsed = parse_all(project)
    for name in ("mapping", "lifecycle", "segments", "playbooks", "consent", "kpis"):
        assert f"integration/{name}.yaml" in parsed
    assert len(parsed["docs/checklist.csv"]) == 10
    return parsed


@pytest.mark.parametrize("preset", builtin_preset_names())
def test_preset_bakes(tmp_path: Path, preset: str) -> None:
    project = bake(tmp_path, "--preset", preset)
    parsed = assert_project_sound(project)
    plan = parsed[".rabt/plan.json"]
    readme = (project / "README.md").read_text(encoding="utf-8")
    assert plan["path"] in {"connector", "ipaas", "api"}
    assert parsed[".rabt/answers.yaml"]["project_slug"] == project.name
    assert "rabt validate" in readme


@pytest.mark.parametrize("rule_case", RULE_CASES, ids=lambda item: item.rule)
def test_rule_case_bakes(tmp_path: Path, rule_case: RuleCase) -> None:
    answers_file = tmp_path / "answers.yaml"
    answers_file.write_text(yaml.safe_dump(rule_case.answers, allow_unicode=True),
                            encoding="utf-8")
    out = tmp_path / "out"
    project = bake(out, "--answers", str(answers_file))
    parsed = assert_project_sound(project)
    plan = parsed[".rabt/plan.json"]
    assert plan["path"] == rule_case.path
    assert rule_case.rule in [rule["id"] for rule in plan["rules"]]
    decision = (project / "docs/decision.md").read_text(encoding="utf-8")
    decision_ar = (project / "docs/decision.ar.md").read_text(encoding="utf-8")
    assert rule_case.rule in decision
    assert rule_case.rule in decision_ar


@pytest.mark.parametrize("name", list(HOSTILE_NAMES.values()), ids=list(HOSTILE_NAMES))
def test_hostile_client_name(tmp_path: Path, name: str) -> None:
    project = bake(tmp_path, "--set", f"client_name={name}", "--set", "project_slug=hostile")
    parsed = assert_project_sound(project)
    assert parsed[".rabt/answers.yaml"]["client_name"] == name
    calendar = parsed["docs/checklist.ics"]
    assert str(calendar.get("X-WR-CALNAME")) == name
    for relative in ("README.md", "README.ar.md", "docs/decision.md", "docs/checklist.md"):
        text = (project / relative).read_text(encoding="utf-8")
        assert not MARKER.search(text), relative


def test_template_path_sections_differ(tmp_path: Path) -> None:
    connector = bake(tmp_path / "a", "--preset", "woo-startup")
    api = bake(tmp_path / "b", "--preset", "headless-nextjs")
    assert (connector / "docs/connector-setup.md").is_file()
    assert (api / "service/README.md").is_file()
    assert not (connector / "README.section.md").exists()
    connector_readme = (connector / "README.md").read_text(encoding="utf-8")
    api_readme = (api / "README.md").read_text(encoding="utf-8")
    assert connector_readme != api_readme


def test_workflow_runs_rabt_validate(tmp_path: Path) -> None:
    project = bake(tmp_path)
    workflow = yaml.safe_load((project / ".github/workflows/validate.yml").read_text("utf-8"))
    steps = workflow["jobs"]["validate"]["steps"]
    assert any(step.get("run") == "rabt validate ." for step in steps)
    assert "on" in workflow  # quoted by the serializer, so YAML 1.1 does not read it as true
