"""Check a generated project: data files against their schemas, no template markers left.

Used by ``rabt validate``, by ``rabt new`` before a project is moved into place, by
the generated project's CI and by the tests.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import icalendar
import jsonschema
import yaml

from generator.answers import check_answers
from generator.crm.references import reference_problems
from generator.errors import Problem
from generator.i18n import message, parse_error_text, schema_error_text
from generator.ipaas import checks, n8n_code_check
from generator.ipaas.n8n_structure import ProjectFacts
from generator.model import Answers, Lang, Plan
from generator.path_files import contact_sync_paths
from generator.resources import load_data, load_schema
from generator.spec import SPEC_FILES

CSV_COLUMNS = ["day", "date", "title_en", "title_ar", "owner", "done"]
UTF8_BOM = b"\xef\xbb\xbf"
CHECKLIST_DAYS = 10
# A Jinja variable, block or comment opening that no escaping produced. The prose
# templates escape braces in answer values as "\{", so an unescaped pair is a leftover.
MARKER = re.compile(r"(?<!\\)\{[{%#]")
TEXT_SUFFIXES = {".md", ".txt", ".py", ".toml", ".cfg", ".ini", ".sh", ".env", ".example",
                 ".html", ".js", ".ts", ".dockerfile", ""}
# Folders of tools and runs, not of the generated project: version control, virtual
# environments, caches and the service's local queue and state files.
SKIPPED_DIRS = frozenset({".git", ".venv", "venv", "node_modules", "__pycache__", ".mypy_cache",
                          ".pytest_cache", ".ruff_cache", "var"})
REQUIRED_FILES = (
    ".rabt/answers.yaml", ".rabt/plan.json", "README.md", "README.ar.md",
    "docs/decision.md", "docs/decision.ar.md", "docs/checklist.md", "docs/checklist.ar.md",
    "docs/checklist.csv", "docs/checklist.ics", ".github/workflows/validate.yml",
    *(f"integration/{name}.yaml" for name in SPEC_FILES),
    "crm/desired-state.yaml", "docs/playbooks.md", "docs/playbooks.ar.md", "docs/kpis.md",
    "docs/kpis.ar.md",
)
# Workflow files whose strings use {{ }} as the platform's expression syntax: Make
# maps values with {{1.email}} and n8n with {{ $json.email }}. They are serialized
# data, never rendered by Jinja, so the leftover-marker check does not apply.
EXPRESSION_SCHEMAS = frozenset({"make-blueprint", "n8n-workflow"})
# Folders of the API service that are copied verbatim, never rendered by Jinja (the
# template's _copy_without_render, and the runtime and stand-ins the generator copies):
# a {{ there is Python or shell, such as an f-string's literal brace, not a leftover.
VERBATIM_PREFIXES = ("service/src/", "service/tests/", "service/bench/", "service/scripts/",
                     "service/samples/")
# GitHub Actions expressions such as ${{ secrets.NAME }}: the workflow files are
# serialized data, and these braces are GitHub's syntax, not template leftovers.
GITHUB_EXPRESSION = re.compile(r"\$\{\{[^{}]*\}\}")
# Fixes more specific than "use a value the schema allows", by (schema, where).
SPECIFIC_SCHEMA_FIXES = {
    ("n8n-workflow", "active"): "validate_n8n_active_fix",
    ("n8n-workflow", "settings/errorWorkflow"): "validate_n8n_error_workflow_fix",
}
# Schemas copied into every project so that its data files describe themselves.
PROJECT_SCHEMAS = ("answers", "plan", "checklist-csv", "crm-desired-state",
                   *(f"spec-{name}" for name in SPEC_FILES))


@dataclass
class ValidationReport:
    """Every problem found in a project, and how many files were checked."""

    project: Path
    lang: Lang = "en"
    problems: list[Problem] = field(default_factory=list)
    checked: int = 0
    # Checks that could not run, each as a message for the user.
    skipped: list[str] = field(default_factory=list)
    # What the answers say the n8n workflows refer to (credential names, workflow ids).
    n8n_facts: ProjectFacts = field(default_factory=ProjectFacts)
    # The JavaScript of every Code node, by (file, node name), parsed after the file loop.
    code_snippets: dict[tuple[str, str], str] = field(default_factory=dict)

    def add(self, relative: str, name: str, fix: str = "", **fields: Any) -> None:
        """Record problem ``name`` from the message catalogue for the file at ``relative``."""
        text = message(name, self.lang, **fields)
        fix_text = message(fix, self.lang, **fields) if fix else ""
        self.problems.append(Problem(relative, text, fix_text))


def _schema_problems(data: Any, schema_name: str,
                     lang: Lang = "en") -> Iterator[tuple[str, str]]:
    """Yield ``(where, error)`` for every schema violation, ``where`` as a slash path."""
    validator = jsonschema.Draft202012Validator(load_schema(schema_name))
    for error in sorted(validator.iter_errors(data), key=lambda err: list(err.absolute_path)):
        where = "/".join(str(part) for part in error.absolute_path)
        yield where or message("schema_top_level", lang), schema_error_text(error, lang)


def _answer_strings(project: Path) -> list[str]:
    """Return the answer texts, longest first, so marker checks can ignore them."""
    path = project / ".rabt/answers.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return []
    if not isinstance(data, dict):
        return []
    texts = [value for value in data.values() if isinstance(value, str) and value]
    return sorted(texts, key=len, reverse=True)


def _strings(data: Any) -> Iterator[str]:
    if isinstance(data, str):
        yield data
    elif isinstance(data, dict):
        for key, value in data.items():
            yield from _strings(key)
            yield from _strings(value)
    elif isinstance(data, list):
        for item in data:
            yield from _strings(item)


def _check_markers(report: ValidationReport, relative: str, texts: Iterator[str],
                   answers: list[str]) -> None:
    if relative.startswith(VERBATIM_PREFIXES):
        return
    for text in texts:
        if relative.startswith(".github/workflows/"):
            text = GITHUB_EXPRESSION.sub("", text)
        for answer in answers:
            text = text.replace(answer, "")
        if MARKER.search(text):
            report.add(relative, "validate_marker", "validate_marker_fix")
            return


def _load_structured(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        return json.loads(text)
    return yaml.safe_load(text)


def _schema_for(relative: str) -> str | None:
    if relative == ".rabt/answers.yaml":
        return "answers"
    if relative == ".rabt/plan.json":
        return "plan"
    if relative == ".github/workflows/validate.yml":
        return "workflow"
    if relative == "crm/desired-state.yaml":
        return "crm-desired-state"
    if re.fullmatch(r"workflows/n8n/[^/]+\.json", relative):
        return "n8n-workflow"
    if re.fullmatch(r"workflows/make/[^/]+\.blueprint\.json", relative):
        return "make-blueprint"
    match = re.fullmatch(r"integration/([a-z]+)\.yaml", relative)
    if match:
        return f"spec-{match.group(1)}"
    return None


def _check_structured(report: ValidationReport, path: Path, relative: str,
                      answers: list[str]) -> None:
    try:
        data = _load_structured(path)
    except (ValueError, yaml.YAMLError, UnicodeDecodeError) as error:
        report.add(relative, "validate_parse", "validate_parse_fix",
                   error=parse_error_text(error, report.lang))
        return
    schema = _schema_for(relative)
    if relative.startswith("schemas/") and relative.endswith(".schema.json"):
        try:
            jsonschema.Draft202012Validator.check_schema(data)
        except jsonschema.SchemaError as error:
            report.add(relative, "validate_bad_schema", error=error.message)
    elif schema == "answers" and isinstance(data, dict):
        # check_answers covers the schema with messages that name the allowed values.
        origin = dict.fromkeys(data, message("answers_file_origin", report.lang))
        for problem in check_answers(data, origin, lang=report.lang):
            report.problems.append(Problem(f"{relative}: {problem.location}", problem.message,
                                           problem.fix))
    elif schema is not None:
        try:
            load_schema(schema)
        except FileNotFoundError:
            report.add(relative, "validate_no_schema", schema=schema)
            return
        schema_problems = list(_schema_problems(data, schema, report.lang))
        for where, text in schema_problems:
            fix = SPECIFIC_SCHEMA_FIXES.get((schema, where), "validate_schema_fix")
            report.add(relative, "validate_schema", fix, where=where, error=text, schema=schema,
                       expected=report.n8n_facts.error_workflow_id or "?")
        if schema == "crm-desired-state" and not schema_problems and isinstance(data, dict):
            report.problems += [Problem(f"{relative}: {problem.location}", problem.message,
                                        problem.fix)
                                for problem in reference_problems(data, report.lang)]
    if schema in EXPRESSION_SCHEMAS:
        _check_workflow_references(report, relative, schema, data)
        return  # their {{ }} are the platform's own expressions, not template leftovers
    _check_markers(report, relative, _strings(data), answers)


def _check_workflow_references(report: ValidationReport, relative: str, schema: str,
                               data: Any) -> None:
    """Report n8n connections, node types and Make module ids that do not exist."""
    if schema == "n8n-workflow":
        findings = checks.n8n_workflow_findings(data, report.n8n_facts)
        for node, code in n8n_code_check.code_snippets(data):
            report.code_snippets[(relative, node)] = code
    else:
        findings = checks.make_blueprint_findings(data)
    for finding in findings:
        report.add(relative, finding.name, finding.fix, **finding.fields)


def _check_csv(report: ValidationReport, path: Path, relative: str, answers: list[str]) -> None:
    raw = path.read_bytes()
    if not raw.startswith(UTF8_BOM):
        report.add(relative, "validate_no_bom", "validate_no_bom_fix")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        report.add(relative, "validate_not_utf8", error=error)
        return
    table = list(csv.reader(io.StringIO(text, newline="")))
    if not table:
        report.add(relative, "validate_no_header", "validate_regenerate_fix")
        return
    header, rows = table[0], table[1:]
    if header != CSV_COLUMNS:
        report.add(relative, "validate_columns", "validate_regenerate_fix", found=header,
                   expected=CSV_COLUMNS)
        return
    if len(rows) != CHECKLIST_DAYS:
        report.add(relative, "validate_rows", "validate_regenerate_fix", found=len(rows),
                   expected=CHECKLIST_DAYS)
    for number, cells in enumerate(rows, start=2):
        if len(cells) != len(CSV_COLUMNS):
            report.add(f"{relative}:{number}", "validate_row_width", "validate_row_width_fix",
                       found=len(cells), expected=len(CSV_COLUMNS))
            continue
        row = dict(zip(CSV_COLUMNS, cells, strict=True))
        for where, schema_error in _schema_problems(row, "checklist-csv", report.lang):
            report.add(f"{relative}:{number}", "validate_schema", "validate_schema_fix",
                       where=where, error=schema_error, schema="checklist-csv")
        if not _is_date(row["date"]):
            report.add(f"{relative}:{number}", "validate_bad_date", value=repr(row["date"]))
    _check_markers(report, relative, (cell for cells in rows for cell in cells), answers)


def _check_ics(report: ValidationReport, path: Path, relative: str, answers: list[str]) -> None:
    try:
        calendar = icalendar.Calendar.from_ical(path.read_bytes())
    except ValueError as error:
        report.add(relative, "validate_ics_invalid", "validate_regenerate_fix", error=error)
        return
    events = list(calendar.walk("VEVENT"))
    if len(events) != CHECKLIST_DAYS:
        report.add(relative, "validate_events", "validate_regenerate_fix", found=len(events),
                   expected=CHECKLIST_DAYS)
    texts = [str(component.get(name, "")) for component in [calendar, *events]
             for name in ("SUMMARY", "DESCRIPTION", "X-WR-CALNAME")]
    _check_markers(report, relative, iter(texts), answers)


def _is_date(text: str) -> bool:
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _check_text(report: ValidationReport, path: Path, relative: str, answers: list[str]) -> None:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return  # a binary file; nothing to render in it
    _check_markers(report, relative, iter([text]), answers)


def _checker(relative: str) -> Callable[[ValidationReport, Path, str, list[str]], None] | None:
    suffix = Path(relative).suffix.lower()
    if suffix in {".json", ".yaml", ".yml"}:
        return _check_structured
    if suffix == ".csv":
        return _check_csv
    if suffix == ".ics":
        return _check_ics
    if suffix in TEXT_SUFFIXES:
        return _check_text
    return None


def _current_decision(project: Path) -> tuple[Answers, Plan] | None:
    """Return the project's answers and the plan they produce now, or None when they
    cannot be read."""
    from generator.answers import AnswerSources, resolve_answers
    from generator.decide import decide
    from generator.errors import InputError

    try:
        data = yaml.safe_load((project / ".rabt/answers.yaml").read_text(encoding="utf-8"))
        sources = AnswerSources()
        sources.add("answers file", data)
        answers = resolve_answers(sources)
        return answers, decide(answers)
    except (OSError, ValueError, yaml.YAMLError, TypeError, AttributeError, InputError):
        return None  # unreadable or invalid answers are reported by their own check


def _workflow_files(report: ValidationReport,
                    decision: tuple[Answers, Plan] | None) -> tuple[str, ...]:
    """Return the n8n and Make files an iPaaS project's answers call for.

    Also stores the credential names and workflow ids the n8n checks compare with.
    """
    if decision is None or decision[1].path != "ipaas":
        return ()
    from generator.ipaas import project_checks

    expected = project_checks.expected(*decision)
    report.n8n_facts = expected.facts
    return expected.files


def _check_code_nodes(report: ValidationReport) -> None:
    """Report every n8n Code node whose JavaScript does not parse, or note a skipped check."""
    if not report.code_snippets:
        return
    errors = n8n_code_check.syntax_errors(report.code_snippets)
    if errors is None:
        report.skipped.append(message("validate_code_skipped", report.lang,
                                      count=len(report.code_snippets)))
        return
    for (relative, node), (line, error) in sorted(errors.items()):
        report.add(relative, "ipaas_n8n_code_syntax", "ipaas_n8n_code_syntax_fix", node=node,
                   line=line if line is not None else "?", error=error)


def _path_files(project: Path, plan: dict[str, Any] | None) -> tuple[str, ...]:
    """Return the files the path template writes for the project's path, CRM and platform.

    The path, CRM and platform come from the answers; when they cannot be read, from
    ``.rabt/plan.json``.
    """
    path = plan["path"] if plan is not None else None
    crm = plan.get("crm") if plan is not None else None
    platform = plan.get("platform") if plan is not None else None
    if path is None:
        try:
            recorded = json.loads((project / ".rabt/plan.json").read_text(encoding="utf-8"))
            path = recorded.get("path") if isinstance(recorded, dict) else None
            crm = recorded.get("crm") if isinstance(recorded, dict) else None
            platform = recorded.get("platform") if isinstance(recorded, dict) else None
        except (OSError, ValueError):
            path = None
    paths = load_data("paths")["paths"]
    files = tuple(paths[path]["files"]) if path in paths else ()
    crm_files = tuple((paths[path].get("crm_files") or {}).get(crm) or ()) if path in paths else ()
    platform_files = (tuple((paths[path].get("platform_files") or {}).get(platform) or ())
                      if path in paths else ())
    return files + crm_files + platform_files + contact_sync_paths(plan)


def validate_project(project: Path, lang: Lang = "en") -> ValidationReport:
    """Check every file of the project at ``project`` and return all problems found."""
    report = ValidationReport(project=project, lang=lang)
    if not (project / ".rabt/answers.yaml").is_file():
        report.add(".rabt/answers.yaml", "validate_not_project", "validate_not_project_fix")
        return report
    decision = _current_decision(project)
    plan = decision[1].to_data() if decision is not None else None
    schemas = tuple(f"schemas/{name}.schema.json" for name in PROJECT_SCHEMAS)
    workflows = _workflow_files(report, decision)
    for relative in (*REQUIRED_FILES, *schemas, *_path_files(project, plan)):
        if not (project / relative).is_file():
            report.add(relative, "validate_missing", "validate_missing_fix")
    for relative in workflows:
        if not (project / relative).is_file():
            report.add(relative, "validate_workflow_missing", "validate_missing_fix")
    if plan is not None:
        _check_plan_matches_answers(report, plan)
    answers = _answer_strings(project)
    for path in sorted(project.rglob("*")):
        relative = path.relative_to(project).as_posix()
        if not path.is_file() or SKIPPED_DIRS.intersection(path.relative_to(project).parts[:-1]):
            continue
        checker = _checker(relative)
        if checker is None:
            continue
        report.checked += 1
        checker(report, path, relative, answers)
    _check_code_nodes(report)
    return report


def _check_plan_matches_answers(report: ValidationReport, current: dict[str, Any]) -> None:
    """Report a ``.rabt/plan.json`` that the current answers would no longer produce.

    Editing ``.rabt/answers.yaml`` without regenerating leaves every other file
    describing the old decision; comparing the plan catches that cheaply.
    """
    try:
        recorded = json.loads((report.project / ".rabt/plan.json").read_text("utf-8"))
    except (OSError, ValueError):
        return  # a missing or broken plan.json is reported by its own check
    if not isinstance(recorded, dict):
        return
    differences = [key for key in ("path", "crm", "modules", "contact_sync", "product_sync_limit")
                   if recorded.get(key) != current[key]]
    if differences:
        detail = ", ".join(f"{key} {recorded.get(key)!r} → {current[key]!r}"
                           for key in differences)
        report.add(".rabt/plan.json", "validate_plan_stale", "validate_plan_stale_fix",
                   difference=detail)
