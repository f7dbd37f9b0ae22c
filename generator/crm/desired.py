"""Read a project's ``crm/desired-state.yaml`` and check it: JSON Schema, then cross-references."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from generator.crm.references import reference_problems
from generator.errors import InputError, Problem
from generator.i18n import message, parse_error_text, schema_error_fix, schema_error_text
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
    if project.is_file():
        summary = message("crm_desired_not_folder", lang, path=project)
        raise InputError(summary, [Problem("DIRECTORY", message("crm_directory_is_file", lang,
                                                                 value=project),
                                           message("crm_directory_is_file_fix", lang,
                                                   folder=project.resolve().parent))])
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
    if data is None:
        raise InputError(summary, [Problem(str(path), message("crm_desired_empty", lang), fix)])
    if not isinstance(data, dict):
        raise InputError(summary, [Problem(str(path), message(
            "crm_desired_not_mapping", lang, kind=_yaml_kind(data)), fix)])
    problems = _schema_problems(data, str(path), fix, lang)
    if not problems and isinstance(data, dict):
        separator = message("fix_separator", lang)
        problems = [Problem(f"{path}: {problem.location}", problem.message,
                            f"{problem.fix}{separator}{fix}")
                    for problem in reference_problems(data, lang)]
    if problems:
        raise InputError(summary, problems)
    if data["crm"] not in SUPPORTED_CRMS:
        # iPaaS projects ship the workflows' tables as SQL; API projects migrate their own.
        fixes = {"ipaas": "crm_unsupported_fix_ipaas", "api": "crm_unsupported_fix_api"}
        key = fixes.get(str(project_plan(project).get("path")), "crm_unsupported_fix")
        raise InputError(summary, [Problem(f"{path}: crm", message(
            "crm_unsupported", lang, value=data["crm"]), message(key, lang))])
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
    """Return the fix that regenerates the project at ``project``, runnable from any folder.

    ``rabt new`` writes ``<output-dir>/<slug>``, so ``--overwrite`` into the parent rewrites
    this folder only when its name is the slug. Otherwise the fix regenerates into a new
    sibling folder, so it never overwrites another project named like the slug.
    """
    folder = project.resolve()
    answers = folder / ".rabt" / "answers.yaml"
    if not answers.is_file():
        return message("crm_desired_no_answers_fix", lang, answers=answers)
    slug = _answers_slug(answers)
    if slug is None or slug == folder.name:
        return message("crm_desired_regenerate_fix", lang, answers=answers,
                       output=folder.parent)
    return message("crm_desired_regenerate_into_fix", lang, answers=answers, slug=slug,
                   folder=folder.name, output=folder.parent / f"{folder.name}-regenerated")


def _yaml_kind(data: Any) -> str:
    """Name the YAML type of a top-level value that is not a mapping."""
    if isinstance(data, list):
        return "list"
    if isinstance(data, str):
        return "string"
    return "number" if isinstance(data, int | float) and not isinstance(data, bool) else "value"


def _answers_slug(answers: Path) -> str | None:
    """Return the ``project_slug`` recorded in an answers file, None when it is unreadable."""
    try:
        data = yaml.safe_load(answers.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return None
    slug = data.get("project_slug") if isinstance(data, dict) else None
    return slug if isinstance(slug, str) and slug else None


def _schema_problems(data: Any, where: str, fix: str, lang: Lang) -> list[Problem]:
    """Return one problem for every schema violation, in file order, worded in ``lang``."""
    validator = jsonschema.Draft202012Validator(load_schema(SCHEMA_NAME))
    errors = sorted(validator.iter_errors(data), key=lambda error: list(error.absolute_path))
    schema_fix = message("validate_schema_fix", lang, schema=SCHEMA_NAME)
    separator = message("fix_separator", lang)
    problems = []
    for error in errors:
        location = _location(data, list(error.absolute_path))
        first = schema_error_fix(error, lang, schema_fix)
        problems.append(Problem(f"{where}: {location or message('schema_top_level', lang)}",
                                schema_error_text(error, lang), f"{first}{separator}{fix}"))
    return problems


def _location(data: Any, path: list[Any]) -> str:
    """Write a path into ``data`` with slashes, naming each list item by its ``name`` or ``key``.

    ``properties/3/type`` becomes ``properties/3 (ecom_ltv_sar)/type``, so the reader finds
    the item without counting from 0.
    """
    parts = []
    node = data
    for part in path:
        node = node[part] if isinstance(node, (dict, list)) else None
        label = None
        if isinstance(part, int) and isinstance(node, dict):
            label = node.get("name") or node.get("key")
        parts.append(f"{part} ({label})" if isinstance(label, str) and label else str(part))
    return "/".join(parts)
