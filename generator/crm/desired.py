"""Read a project's ``crm/desired-state.yaml`` and check it against its JSON Schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import yaml

from generator.errors import InputError, Problem
from generator.i18n import message, parse_error_text
from generator.model import Lang
from generator.resources import load_schema

DESIRED_STATE_FILE = "crm/desired-state.yaml"
SCHEMA_NAME = "crm-desired-state"
# The CRMs that `rabt crm` can plan against; the client's own database has no API here.
SUPPORTED_CRMS = ("hubspot", "zoho")
# Schema errors shown before the list is cut short.
MAX_SCHEMA_PROBLEMS = 10


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
                                           message("crm_desired_regenerate_fix", lang))]
                         ) from error
    problems = _schema_problems(data, str(path), lang)
    if problems:
        raise InputError(summary, problems)
    if data["crm"] not in SUPPORTED_CRMS:
        raise InputError(summary, [Problem(f"{path}: crm", message(
            "crm_unsupported", lang, value=data["crm"]), message("crm_unsupported_fix", lang))])
    return dict(data)


def _schema_problems(data: Any, where: str, lang: Lang) -> list[Problem]:
    validator = jsonschema.Draft202012Validator(load_schema(SCHEMA_NAME))
    errors = sorted(validator.iter_errors(data), key=lambda error: list(error.absolute_path))
    problems = []
    for error in errors[:MAX_SCHEMA_PROBLEMS]:
        location = "/".join(str(part) for part in error.absolute_path)
        problems.append(Problem(f"{where}: {location or '/'}", error.message,
                                message("crm_desired_regenerate_fix", lang)))
    return problems
