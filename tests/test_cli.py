"""The command line through click's CliRunner: options, output, exit codes, files written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from generator import __version__
from generator.answers import builtin_preset_names
from generator.cli import main


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_version() -> None:
    result = run("--version")
    assert result.exit_code == 0
    assert __version__ in result.output


@pytest.mark.parametrize("command", [[], ["new"], ["presets"], ["explain"], ["validate"],
                                     ["preview"]])
def test_help_has_example(command: list[str]) -> None:
    result = run(*command, "--help")
    assert result.exit_code == 0
    assert "Example" in result.output


def test_unknown_option_is_usage_error() -> None:
    result = run("new", "--colour", "red")
    assert result.exit_code == 2
    assert "No such option" in result.output


def test_presets_lists_every_preset() -> None:
    result = run("presets")
    assert result.exit_code == 0
    header, *lines = result.output.strip().splitlines()
    assert header.split() == ["NAME", "PLATFORM", "CRM", "PATH", "DESCRIPTION"]
    assert len(lines) == len(builtin_preset_names()) == 7
    woo = next(line for line in lines if line.startswith("woo-startup"))
    assert woo.split()[1:4] == ["woocommerce", "zoho", "connector"]
    headless = next(line for line in lines if line.startswith("headless-nextjs"))
    assert headless.split()[1:4] == ["headless", "hubspot", "api"]


def test_presets_in_arabic() -> None:
    result = run("presets", "--lang", "ar")
    assert "موصل جاهز" in result.output


def test_explain_json_has_contract_keys() -> None:
    result = run("explain", "--preset", "shopify-growth", "--no-input", "--format", "json")
    assert result.exit_code == 0
    plan = json.loads(result.output)
    assert plan["path"] == "ipaas"
    assert plan["crm"] == "hubspot"
    assert plan["platform"] == "shopify"
    assert "events" in plan["modules"]
    assert {"id": "shopify-scale-ipaas"}.items() <= plan["rules"][0].items()
    assert all(set(rule) >= {"id", "reason"} for rule in plan["rules"])
    assert {alt["path"] for alt in plan["alternatives"]} == {"connector", "api"}
    assert plan["estimate"] == {**plan["estimate"], "days_min": 4, "days_max": 7,
                                "setup_sar_min": 2500, "setup_sar_max": 6000}


def test_explain_text_in_arabic() -> None:
    result = run("explain", "--no-input", "--set", "platform=headless", "--lang", "ar")
    assert result.exit_code == 0
    assert "القواعد المطبّقة" in result.output
    assert "headless-api" in result.output


def test_explain_override_shows_both() -> None:
    result = run("explain", "--no-input", "--set", "path=ipaas")
    assert ("Path iPaaS workflows was set by the answers; Rabt recommends Ready connector"
            in result.output)


def test_bad_answers_exit_2_with_every_problem(tmp_path: Path) -> None:
    result = run("new", "--no-input", "--output-dir", str(tmp_path),
                 "--set", "crm=salesforce", "--set", "monthly_orders=lots", "--set", "colour=red")
    assert result.exit_code == 2
    assert "(problems found: 3)" in result.output
    assert "crm (--set): 'salesforce' is not an allowed value" in result.output
    assert "monthly_orders (--set): 'lots' is text" in result.output
    assert "colour (--set): unknown answer key 'colour'" in result.output
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_bad_set_syntax_exit_2() -> None:
    result = run("explain", "--no-input", "--set", "crm")
    assert result.exit_code == 2
    assert "'crm' is not in KEY=VALUE form" in result.output


def test_missing_preset_exit_2() -> None:
    result = run("explain", "--preset", "nope", "--no-input")
    assert result.exit_code == 2
    assert "no preset named 'nope'" in result.output


def test_not_a_terminal_without_no_input(tmp_path: Path) -> None:
    result = run("new", "--preset", "woo-startup", "--output-dir", str(tmp_path))
    assert result.exit_code == 2
    assert "standard input is not a terminal" in result.output
    assert "asked: start_date, path" in result.output
    assert "--no-input" in result.output


def test_new_default_preset(tmp_path: Path) -> None:
    result = run("new", "--no-input", "--output-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    project = tmp_path / "riyadh-perfume"
    assert f"Created {project}" in result.output
    assert "Next steps:" in result.output
    assert (project / "docs/decision.ar.md").is_file()
    answers = yaml.safe_load((project / ".rabt/answers.yaml").read_text(encoding="utf-8"))
    assert answers["client_name"] == "عطور الرياض"
    assert [path.name for path in tmp_path.iterdir()] == ["riyadh-perfume"]


def test_existing_folder_needs_overwrite(tmp_path: Path) -> None:
    assert run("new", "--no-input", "--output-dir", str(tmp_path)).exit_code == 0
    marker = tmp_path / "riyadh-perfume" / "notes.txt"
    marker.write_text("keep me", encoding="utf-8")
    result = run("new", "--no-input", "--output-dir", str(tmp_path))
    assert result.exit_code == 2
    assert "already exists" in result.output
    assert "--overwrite" in result.output
    assert marker.read_text(encoding="utf-8") == "keep me"
    assert run("new", "--no-input", "--output-dir", str(tmp_path), "--overwrite").exit_code == 0
    assert not marker.exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["riyadh-perfume"]


def test_output_path_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "riyadh-perfume").write_text("x", encoding="utf-8")
    result = run("new", "--no-input", "--output-dir", str(tmp_path), "--overwrite")
    assert result.exit_code == 2
    assert "is not a folder" in result.output


def test_output_dir_that_is_a_file(tmp_path: Path) -> None:
    existing = tmp_path / "a.yaml"
    existing.write_text("x", encoding="utf-8")
    result = run("new", "--no-input", "--output-dir", str(existing))
    assert result.exit_code == 2
    assert f"the output path {existing} exists and is not a folder" in result.output
    assert "Internal error" not in result.output


def test_output_dir_not_creatable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    result = run("new", "--no-input", "--output-dir", str(blocker / "sub"))
    assert result.exit_code == 2
    assert f"cannot create {blocker / 'sub'}" in result.output
    assert "Internal error" not in result.output


def test_overwrite_refuses_foreign_folder(tmp_path: Path) -> None:
    foreign = tmp_path / "riyadh-perfume" / "sub"
    foreign.mkdir(parents=True)
    (foreign / "file.txt").write_text("data", encoding="utf-8")
    result = run("new", "--no-input", "--output-dir", str(tmp_path), "--overwrite")
    assert result.exit_code == 2
    assert "is not a Rabt project" in result.output
    assert (foreign / "file.txt").read_text(encoding="utf-8") == "data"


def test_empty_existing_folder_is_used(tmp_path: Path) -> None:
    (tmp_path / "riyadh-perfume").mkdir()
    result = run("new", "--no-input", "--output-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "riyadh-perfume" / ".rabt/answers.yaml").is_file()


def test_new_client_name_gets_own_folder(tmp_path: Path) -> None:
    result = run("new", "--no-input", "--output-dir", str(tmp_path),
                 "--set", "client_name=Dar Al Qahwa")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "dar-al-qahwa").is_dir()


def test_dry_run_on_existing_project(tmp_path: Path) -> None:
    run("new", "--no-input", "--output-dir", str(tmp_path))
    result = run("new", "--no-input", "--output-dir", str(tmp_path), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "A real run would stop: the output folder" in result.output
    result = run("new", "--no-input", "--output-dir", str(tmp_path), "--dry-run", "--overwrite")
    assert "A real run replaces the files in" in result.output


def test_dry_run_on_foreign_folder(tmp_path: Path) -> None:
    (tmp_path / "riyadh-perfume").mkdir()
    (tmp_path / "riyadh-perfume" / "keep.txt").write_text("x", encoding="utf-8")
    result = run("new", "--no-input", "--output-dir", str(tmp_path), "--dry-run", "--overwrite")
    assert result.exit_code == 0, result.output
    assert "A real run would stop" in result.output
    assert "is not a Rabt project" in result.output


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    result = run("new", "--no-input", "--output-dir", str(tmp_path / "out"), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "Dry run: nothing was written" in result.output
    assert "  .rabt/answers.yaml" in result.output
    assert "  integration/mapping.yaml" in result.output
    assert not (tmp_path / "out").exists()


def test_regeneration_is_byte_identical(tmp_path: Path) -> None:
    first = tmp_path / "first"
    second = tmp_path / "second"
    assert run("new", "--preset", "support-heavy", "--no-input",
               "--output-dir", str(first)).exit_code == 0
    answers = first / "support-heavy" / ".rabt/answers.yaml"
    result = run("new", "--answers", str(answers), "--no-input", "--output-dir", str(second))
    assert result.exit_code == 0, result.output
    first_files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    second_files = sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    assert first_files == second_files
    for relative in first_files:
        assert (first / relative).read_bytes() == (second / relative).read_bytes(), relative


def test_validate_clean_project(tmp_path: Path) -> None:
    run("new", "--no-input", "--output-dir", str(tmp_path))
    result = run("validate", str(tmp_path / "riyadh-perfume"))
    assert result.exit_code == 0
    assert "no problems found" in result.output


def test_validate_reports_every_problem(tmp_path: Path) -> None:
    run("new", "--no-input", "--output-dir", str(tmp_path))
    project = tmp_path / "riyadh-perfume"
    (project / "docs/decision.md").unlink()
    (project / "notes.md").write_text("Hello {{ cookiecutter._rabt.client_name }}\n",
                                      encoding="utf-8")
    answers = project / ".rabt/answers.yaml"
    answers.write_text(answers.read_text(encoding="utf-8").replace("crm: hubspot", "crm: sap"),
                       encoding="utf-8")
    (project / "integration/segments.yaml").write_text("version: [unclosed\n", encoding="utf-8")
    (project / "integration/kpis.yaml").unlink()
    (project / "docs/connector-setup.md").unlink()
    result = run("validate", str(project))
    assert result.exit_code == 3
    assert "docs/decision.md: is missing" in result.output
    assert "integration/kpis.yaml: is missing" in result.output
    assert "docs/connector-setup.md: is missing" in result.output
    assert "notes.md: contains an unrendered template marker" in result.output
    assert ".rabt/answers.yaml: crm" in result.output
    assert "integration/segments.yaml: does not parse: line 2, column 1" in result.output


def test_validate_in_arabic(tmp_path: Path) -> None:
    run("new", "--no-input", "--output-dir", str(tmp_path))
    project = tmp_path / "riyadh-perfume"
    (project / "docs/decision.md").unlink()
    result = run("validate", str(project), "--lang", "ar")
    assert result.exit_code == 3
    assert "docs/decision.md: مفقود" in result.output
    assert "أعد توليد المشروع" in result.output
    assert "is missing" not in result.output


def test_validate_checks_csv_dates(tmp_path: Path) -> None:
    run("new", "--no-input", "--output-dir", str(tmp_path))
    csv_path = tmp_path / "riyadh-perfume" / "docs/checklist.csv"
    text = csv_path.read_bytes().decode("utf-8-sig")
    first_date = text.splitlines()[1].split(",")[1]
    csv_path.write_bytes(b"\xef\xbb\xbf" + text.replace(first_date, "2026-12-99", 1)
                         .replace(",no\r\n", ",maybe\r\n", 1).encode("utf-8"))
    result = run("validate", str(tmp_path / "riyadh-perfume"))
    assert result.exit_code == 3
    assert "'2026-12-99' is not a calendar date" in result.output
    assert "'maybe' is not one of 'no', 'yes'" in result.output


def test_validate_not_a_folder(tmp_path: Path) -> None:
    result = run("validate", str(tmp_path / "missing"))
    assert result.exit_code == 2
    assert result.output.count("missing not found") == 1
    existing = tmp_path / "file.txt"
    existing.write_text("x", encoding="utf-8")
    result = run("validate", str(existing))
    assert result.exit_code == 2
    assert "is not a folder" in result.output


def test_validate_csv_row_with_wrong_width(tmp_path: Path) -> None:
    run("new", "--no-input", "--output-dir", str(tmp_path))
    csv_path = tmp_path / "riyadh-perfume" / "docs/checklist.csv"
    lines = csv_path.read_bytes().decode("utf-8-sig").split("\r\n")
    lines[1] += ",extra"
    lines[2] = lines[2].rsplit(",", 1)[0]
    csv_path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode("utf-8"))
    result = run("validate", str(tmp_path / "riyadh-perfume"))
    assert result.exit_code == 3
    assert "docs/checklist.csv:2: has 7 fields, expected 6" in result.output
    assert "docs/checklist.csv:3: has 5 fields, expected 6" in result.output
    assert "Internal error" not in result.output


def test_validate_plan_that_is_a_list(tmp_path: Path) -> None:
    run("new", "--no-input", "--output-dir", str(tmp_path))
    (tmp_path / "riyadh-perfume" / ".rabt/plan.json").write_text("[]", encoding="utf-8")
    result = run("validate", str(tmp_path / "riyadh-perfume"))
    assert result.exit_code == 3
    assert ".rabt/plan.json: (top level): [] is not of type object" in result.output
    assert "Internal error" not in result.output


def test_validate_schema_errors_in_arabic(tmp_path: Path) -> None:
    run("new", "--no-input", "--output-dir", str(tmp_path))
    plan = tmp_path / "riyadh-perfume" / ".rabt/plan.json"
    plan.write_text(plan.read_text(encoding="utf-8").replace('"path": "connector"',
                                                            '"path": 42', 1), encoding="utf-8")
    result = run("validate", str(tmp_path / "riyadh-perfume"), "--lang", "ar")
    assert result.exit_code == 3
    assert "القيمة 42 ليست من القيم المسموح بها" in result.output
    assert "is not one of" not in result.output


def test_validate_folder_that_is_not_a_project(tmp_path: Path) -> None:
    result = run("validate", str(tmp_path))
    assert result.exit_code == 3
    assert "problems found: 1" in result.output
    assert "is not a Rabt project" in result.output


def test_validate_reports_stale_plan(tmp_path: Path) -> None:
    run("new", "--no-input", "--output-dir", str(tmp_path))
    answers = tmp_path / "riyadh-perfume" / ".rabt/answers.yaml"
    answers.write_text(answers.read_text(encoding="utf-8") + "path: api\n", encoding="utf-8")
    result = run("validate", str(tmp_path / "riyadh-perfume"))
    assert result.exit_code == 3
    assert "no longer matches the answers: path 'connector' → 'api'" in result.output


def test_explain_needs_no_start_date() -> None:
    result = run("explain", "--preset", "shopify-growth", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["path"] == "ipaas"


def test_boolean_fix_names_true_false() -> None:
    result = run("explain", "--no-input", "--set", "deep_erp_link=maybe",
                 "--set", "erp_bi=odoo")
    assert result.exit_code == 2
    assert "use true or false" in result.output


def test_answers_file_parse_error_position(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("client_name: Dar\n  platform: shopify\n", encoding="utf-8")
    result = run("explain", "--answers", str(bad), "--no-input")
    assert result.exit_code == 2
    assert "line 2, column 11: mapping values are not allowed here" in result.output
    assert "<unicode string>" not in result.output


def test_messages_in_arabic(tmp_path: Path) -> None:
    result = run("new", "--no-input", "--output-dir", str(tmp_path), "--lang", "ar")
    assert result.exit_code == 0
    assert "أُنشئ المشروع" in result.output
    result = run("new", "--no-input", "--output-dir", str(tmp_path), "--lang", "ar")
    assert result.exit_code == 2
    assert "موجود مسبقًا" in result.output
