"""Read a project's ``crm/desired-state.yaml`` and check it: JSON Schema, then cross-references."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from generator.crm.references import reference_problems
from generator.errors import InputError, Problem
from generator.i18n import message, parse_error_text, schema_error_text
from generator.model import Lang
from generator.resources import load_schema

DESIRED_STATE_FILE = "crm/desired-state.yaml"
PLAN_FILE = ".rabt/plan.json"
SCHEMA_NAME = "crm-desired-state"
# The CRMs that `rabt crm` can plan against; the client's own database has no API here.
SUPPORTED_CRMS = ("hubspot", "zoho")


def load_desired_state(project: Path, lang: Lang = "en") -> dict[str, Any]:
    """Read and validate the desired state of the project folder ``project``.

    Raises:
        InputError: The folder or file is missing, the YAML does not parse, the data
            breaks the schema, or the CRM is not one ``rabt crm`` supports.
    """
    path = project / DESIRED_STATE_FILE
    summary = message("crm_desired_invalid", lang, path=path)
    if not project.is_dir():
        raise InputError(summary, [Problem("DIRECTORY", message("dir_not_found", lang,
                                                                 value=project),
                                           message("not_a_project_fix", lang))])
    if not path.is_file():
        raise InputError(summary, [Problem(str(path), message("crm_desired_missing", lang),
                                           message("crm_desired_missing_fix", lang))])
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise InputError(summary, [Problem(str(path), parse_error_text(error, lang),
                                           regenerate_fix(project, lang))]) from error
    fix = regenerate_fix(project, lang)
    problems = _schema_problems(data, str(path), fix, lang)
    if not problems and isinstance(data, dict):
        problems = [Problem(f"{path}: {problem.location}", problem.message,
                            f"{problem.fix}; {fix}")
                    for problem in reference_problems(data, lang)]
    if problems:
        raise InputError(summary, problems)
    if data["crm"] not in SUPPORTED_CRMS:
        raise InputError(summary, [Problem(f"{path}: crm", message(
            "crm_unsupported", lang, value=data["crm"]), message("crm_unsupported_fix", lang))])
    return dict(data)


def project_plan(project: Path) -> dict[str, Any]:
    """Return the decision the project was generated from (``.rabt/plan.json``).

    An empty mapping when the file is missing or unreadable: the plan then keeps
    every step.
    """
    try:
        data = json.loads((project / PLAN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return dict(data) if isinstance(data, dict) else {}


def project_path(project: Path) -> str | None:
    """Return the integration path the project was generated for, None when unknown."""
    path = project_plan(project).get("path")
    return str(path) if isinstance(path, str) else None


def regenerate_fix(project: Path, lang: Lang = "en") -> str:
    """Return the fix that regenerates the project at ``project``, runnable from any folder."""
    folder = project.resolve()
    return message("crm_desired_regenerate_fix", lang,
                   answers=folder / ".rabt" / "answers.yaml", output=folder.parent)


def _schema_problems(data: Any, where: str, fix: str, lang: Lang) -> list[Problem]:
    """Return one problem for every schema violation, in file order, worded in ``lang``."""
    validator = jsonschema.Draft202012Validator(load_schema(SCHEMA_NAME))
    errors = sorted(validator.iter_errors(data), key=lambda error: list(error.absolute_path))
    schema_fix = message("validate_schema_fix", lang, schema=SCHEMA_NAME)
    problems = []
    for error in errors:
        location = "/".join(str(part) for part in error.absolute_path)
        problems.append(Problem(f"{where}: {location or message('schema_top_level', lang)}",
                                schema_error_text(error, lang), f"{schema_fix}; {fix}"))
    return problems
