"""Render a project: cookiecutter for prose and code, serializers for every data file.

The project is built in a staging folder beside the output, validated there, and
moved into place only when it is complete, so a failure never leaves a
half-written project behind.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cookiecutter.generate
import yaml
from cookiecutter.generate import generate_context, generate_files

from generator import __version__
from generator.answers import NULL_CHOICE, question_applies
from generator.checklist import Checklist, build_checklist, checklist_csv, checklist_ics
from generator.crm.hubspot_scopes import guide_context
from generator.errors import InputError, Problem, RabtError
from generator.i18n import message
from generator.ipaas.crm_ids import load_crm_ids
from generator.model import Answers, Lang, Plan
from generator.path_files import path_data_files
from generator.resources import load_data, schemas_dir, templates_dir
from generator.spec import SPEC_FILES, build_desired_state, build_spec, created_fields
from generator.validate import PROJECT_SCHEMAS, validate_project

log = logging.getLogger(__name__)
SECTION_FILES = {"en": "README.section.md", "ar": "README.section.ar.md"}
# Written by `rabt crm apply`, not by rendering; kept when a project is regenerated.
CRM_STATE_FILE = ".rabt/crm-state.json"


@dataclass(frozen=True)
class ProjectParts:
    """The pieces built once per project and used by both templates and data files."""

    checklist: Checklist
    spec: dict[str, dict[str, Any]]
    desired_state: dict[str, Any]
    # The ids section of the CRM state file of the folder being regenerated, if any.
    crm_ids: dict[str, Any] | None = None


def build_parts(answers: Answers, plan: Plan,
                crm_ids: dict[str, Any] | None = None) -> ProjectParts:
    """Build the checklist, the integration spec and the CRM desired state."""
    spec = build_spec(answers, plan)
    return ProjectParts(checklist=build_checklist(answers, plan), spec=spec,
                        desired_state=build_desired_state(spec, plan), crm_ids=crm_ids)


@dataclass(frozen=True)
class RenderResult:
    """The project folder (written, or planned on a dry run) and its files, relative and sorted."""

    project_dir: Path
    files: tuple[str, ...]
    dry_run: bool


def _labels(plan: Plan) -> dict[str, Any]:
    paths = load_data("paths")
    questions = load_data("questions")
    return {
        "platform": questions["platform"]["choices"][plan.platform],
        "crm": paths["crm_labels"][plan.crm],
        "path": paths["paths"][plan.path]["label"],
        "recommended_path": paths["paths"][plan.recommended_path]["label"],
    }


def _answer_value_text(key: str, value: Any, lang: Lang) -> str:
    choices = load_data("questions")[key].get("choices", {})
    none = {"en": "none", "ar": "لا شيء"}[lang]
    if isinstance(value, list):
        separator = "، " if lang == "ar" else ", "
        return separator.join(choices.get(item, {}).get(lang, str(item)) for item in value) or none
    if isinstance(value, bool):
        return {True: {"en": "yes", "ar": "نعم"}, False: {"en": "no", "ar": "لا"}}[value][lang]
    if value is None and NULL_CHOICE in choices:
        return str(choices[NULL_CHOICE][lang])
    if value is None:
        return none
    if isinstance(value, str) and value in choices:
        return str(choices[value][lang])
    return str(value)


def _answer_rows(answers: Answers) -> list[dict[str, str]]:
    questions = load_data("questions")
    values = answers.to_data()
    rows = []
    for key, value in values.items():
        label = questions[key]["label"]
        asked = question_applies(key, values)
        rows.append({
            "key": key,
            "label_en": label["en"],
            "label_ar": label["ar"],
            "value_en": _answer_value_text(key, value, "en") if asked else message("not_asked"),
            "value_ar": (_answer_value_text(key, value, "ar") if asked
                         else message("not_asked", "ar")),
        })
    return rows


def _plan_context(plan: Plan) -> dict[str, Any]:
    paths = load_data("paths")
    modules = paths["modules"]
    return {
        "platform": plan.platform,
        "crm": plan.crm,
        "path": plan.path,
        "recommended_path": plan.recommended_path,
        "overridden": plan.overridden,
        "contact_sync": plan.contact_sync,
        "product_sync_limit": plan.product_sync_limit,
        "modules": [{"id": mid, **modules[mid]} for mid in plan.modules],
        "rules": [{"id": hit.id, "reason_en": hit.reason.en, "reason_ar": hit.reason.ar}
                  for hit in plan.applied_rules],
        "outranked_rules": [
            {"id": hit.id, "reason_en": hit.reason.en, "reason_ar": hit.reason.ar,
             "winner_id": hit.outranked_by}
            for hit in plan.outranked_rules
        ],
        "alternatives": [
            {"path": alt.path, "label_en": paths["paths"][alt.path]["label"]["en"],
             "label_ar": paths["paths"][alt.path]["label"]["ar"],
             "reason_en": alt.reason.en, "reason_ar": alt.reason.ar,
             "decided_by": alt.decided_by}
            for alt in plan.alternatives
        ],
        "estimate": {
            "days_min": plan.estimate.days_min,
            "days_max": plan.estimate.days_max,
            "setup_sar_min": plan.estimate.setup_sar_min,
            "setup_sar_max": plan.estimate.setup_sar_max,
            "subscription_en": plan.estimate.subscription.en,
            "subscription_ar": plan.estimate.subscription.ar,
        },
        "comparison": [_comparison_row(path, paths["paths"][path]) for path in paths["order"]],
        "notes": [{"en": note.en, "ar": note.ar} for note in plan.notes],
    }


def _comparison_row(path: str, entry: Mapping[str, Any]) -> dict[str, Any]:
    days_min, days_max = entry["days"]
    sar_min, sar_max = entry["setup_sar"]
    return {
        "path": path,
        "label_en": entry["label"]["en"],
        "label_ar": entry["label"]["ar"],
        "strengths_en": entry["strengths"]["en"],
        "strengths_ar": entry["strengths"]["ar"],
        "limits_en": entry["limits"]["en"],
        "limits_ar": entry["limits"]["ar"],
        "effort_en": f"{days_min} to {days_max} working days; "
                     f"{sar_min:,} to {sar_max:,} SAR set-up",
        "effort_ar": f"عدد أيام العمل: من {days_min} إلى {days_max}؛ "
                     f"تكلفة الإعداد: من {sar_min:,} إلى {sar_max:,} ريال",
    }


def build_context(answers: Answers, plan: Plan, parts: ProjectParts) -> dict[str, Any]:
    """Return the complete, flat template context (the value of ``cookiecutter._rabt``)."""
    labels = _labels(plan)
    context: dict[str, Any] = {
        "rabt_version": __version__,
        "client_name": answers.client_name,
        "project_slug": answers.project_slug,
        "labels": labels,
        "path_label_en": labels["path"]["en"],
        "path_label_ar": labels["path"]["ar"],
        **_plan_context(plan),
        "answers": answers.to_data(),
        "answer_rows": _answer_rows(answers),
        "checklist": parts.checklist.to_context(),
        "spec": parts.spec,
        "crm_created_fields": created_fields(parts.desired_state),
        "hubspot_scopes": guide_context(parts.desired_state),
        "spec_files": [f"integration/{name}.yaml" for name in SPEC_FILES],
        "path_section_en": "",
        "path_section_ar": "",
    }
    if plan.path == "ipaas":
        from generator.ipaas.budget import ipaas_context

        context["ipaas"] = ipaas_context(answers, plan, parts.spec)
    return context


# Template files that are always text. cookiecutter calls binaryornot, which reads
# only the first 512 bytes. A cut through a multi-byte Arabic character there makes
# it report the file as binary, and cookiecutter then copies it unrendered.
TEXT_TEMPLATE_SUFFIXES = frozenset({".md", ".py", ".txt", ".toml", ".cfg", ".ini", ".sh", ".html",
                                    ".js", ".ts", ".example", ".j2"})


@contextmanager
def _text_templates_are_text() -> Iterator[None]:
    original = cookiecutter.generate.is_binary

    def is_binary(path: str) -> bool:
        if Path(path).suffix.lower() in TEXT_TEMPLATE_SUFFIXES:
            return False
        return bool(original(path))

    cookiecutter.generate.is_binary = is_binary
    try:
        yield
    finally:
        cookiecutter.generate.is_binary = original


def _cookiecutter(template: Path, rabt: Mapping[str, Any], output_dir: Path) -> Path:
    """Render one template with our context passed raw (keys with one ``_`` are not re-rendered)."""
    context = generate_context(context_file=template / "cookiecutter.json")
    # Replace the defaults whole: our context is complete and already validated.
    context["cookiecutter"]["_rabt"] = dict(rabt)
    context["cookiecutter"]["_template"] = str(template)
    with _text_templates_are_text():
        project = generate_files(
            repo_dir=template,
            context=context,
            output_dir=output_dir,
            overwrite_if_exists=True,
            accept_hooks=False,
        )
    _remove_bytecode(Path(project))
    return Path(project)


def _remove_bytecode(project: Path) -> None:
    """Delete Python bytecode caches that came along from the installed templates.

    pip compiles every ``.py`` file of the wheel at install time, templates included, so
    an installed Rabt has ``__pycache__`` folders inside its templates that cookiecutter
    would copy into each project.
    """
    for cache in sorted(project.rglob("__pycache__"), reverse=True):
        if cache.is_dir():
            shutil.rmtree(cache)
    for stray in project.rglob("*.py[co]"):
        stray.unlink()


def _dump_yaml(data: Any, header: str = "") -> bytes:
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=100)
    return (header + text).encode("utf-8")


def _dump_json(data: Any) -> bytes:
    return (json.dumps(data, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def _workflow() -> dict[str, Any]:
    """Return the generated project's CI workflow, which runs ``rabt validate``."""
    return {
        "name": "validate",
        "on": {"push": {}, "pull_request": {}},
        "permissions": {"contents": "read"},
        # Rabt is not on the public PyPI: the agency sets a wheel URL or a git+https
        # URL here, or keeps the pin and adds PIP_INDEX_URL, as the project README explains.
        "env": {"RABT_PACKAGE": f"rabt=={__version__}"},
        "jobs": {
            "validate": {
                "runs-on": "ubuntu-latest",
                "steps": [
                    {"uses": "actions/checkout@v4"},
                    {"uses": "actions/setup-python@v5", "with": {"python-version": "3.11"}},
                    {"name": "Install Rabt", "run": 'pip install "$RABT_PACKAGE"'},
                    {"name": "Validate the project", "run": "rabt validate ."},
                ],
            }
        },
    }


def data_files(answers: Answers, plan: Plan, parts: ProjectParts) -> dict[str, bytes]:
    """Return every serialized data file of the project, by relative path."""
    header = (f"# Answers for rabt {__version__}. From the project folder, regenerate it with:\n"
              "#   rabt new --answers .rabt/answers.yaml --no-input --overwrite --output-dir ..\n")
    files = {
        ".rabt/answers.yaml": _dump_yaml(answers.to_data(), header),
        ".rabt/plan.json": _dump_json(plan.to_data()),
        ".github/workflows/validate.yml": _dump_yaml(_workflow()),
    }
    for name, document in parts.spec.items():
        files[f"integration/{name}.yaml"] = _dump_yaml(document)
    files["crm/desired-state.yaml"] = _dump_yaml(parts.desired_state)
    files.update(path_data_files(answers, plan, parts.spec, parts.desired_state,
                                 parts.crm_ids))
    files["docs/checklist.csv"] = checklist_csv(parts.checklist)
    files["docs/checklist.ics"] = checklist_ics(parts.checklist, answers.client_name,
                                                answers.project_slug)
    for name in PROJECT_SCHEMAS:
        files[f"schemas/{name}.schema.json"] = (schemas_dir() / f"{name}.schema.json").read_bytes()
    return files


def _render_into(staging: Path, answers: Answers, plan: Plan,
                 crm_ids: dict[str, Any] | None = None) -> Path:
    """Render both templates and the data files into ``staging``; return the project folder."""
    parts = build_parts(answers, plan, crm_ids)
    context = build_context(answers, plan, parts)
    path_template = templates_dir() / load_data("paths")["paths"][plan.path]["template"]
    log.debug("rendering template %s into %s", path_template, staging)
    project = _cookiecutter(path_template, context, staging)
    for lang, name in SECTION_FILES.items():
        section = project / name
        context[f"path_section_{lang}"] = section.read_text(encoding="utf-8")
        section.unlink()
    _cookiecutter(templates_dir() / "common", context, staging)
    files = data_files(answers, plan, parts)
    log.debug("writing %d data files", len(files))
    for relative, content in files.items():
        target = project / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    return project


def list_files(project: Path) -> tuple[str, ...]:
    """Return every file under ``project`` as sorted POSIX paths relative to it."""
    return tuple(sorted(path.relative_to(project).as_posix()
                        for path in project.rglob("*") if path.is_file()))


def check_output_dir(target: Path, overwrite: bool, lang: Lang = "en") -> None:
    """Reject a target that must not be replaced.

    An empty folder is fine. A folder with files needs ``overwrite``, and even then
    only a Rabt project (one with ``.rabt/answers.yaml``) is replaced.

    Raises:
        InputError: the path is a file, or the folder may not be replaced.
    """
    summary = message("cannot_write", lang)
    if target.exists() and not target.is_dir():
        raise InputError(summary, [
            Problem("--output-dir", message("output_not_folder", lang, value=str(target)),
                    message("output_not_folder_fix", lang))])
    if not target.is_dir() or not any(target.iterdir()):
        return
    if not (target / ".rabt" / "answers.yaml").is_file():
        raise InputError(summary, [
            Problem("--output-dir", message("output_not_project", lang, value=str(target)),
                    message("output_not_project_fix", lang))])
    if not overwrite:
        raise InputError(summary, [
            Problem("--output-dir", message("output_exists", lang, value=str(target)),
                    message("output_exists_fix", lang))])


def _make_staging(parent: Path, lang: Lang) -> Path:
    """Create a staging folder in ``parent``, turning OS errors into a clear input error."""
    try:
        parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=".rabt-staging-", dir=parent))
    except OSError as error:
        raise InputError(message("cannot_write", lang), [
            Problem("--output-dir",
                    message("output_unwritable", lang, value=str(parent), error=error.strerror),
                    message("output_unwritable_fix", lang))]) from error


def render_project(
    answers: Answers,
    plan: Plan,
    output_dir: Path,
    *,
    overwrite: bool = False,
    dry_run: bool = False,
    lang: Lang = "en",
) -> RenderResult:
    """Render, validate and place the project at ``output_dir/<slug>``.

    Raises:
        InputError: the target exists and ``overwrite`` is not set.
        ValidationFailed: the rendered project fails its own checks (a Rabt bug).
    """
    target = output_dir / answers.project_slug
    if not dry_run:
        check_output_dir(target, overwrite, lang)
    if output_dir.exists() and not output_dir.is_dir():
        raise InputError(message("cannot_write", lang), [
            Problem("--output-dir", message("output_not_folder", lang, value=str(output_dir)),
                    message("output_not_folder_fix", lang))])
    # The CRM state is read before rendering, because the workflows of the iPaaS path
    # send the pipeline and stage ids it records; _replace carries the file over.
    crm_ids = load_crm_ids(target, plan.crm, lang) if plan.path == "ipaas" else None
    staging_parent = Path(tempfile.gettempdir()) if dry_run else output_dir
    staging = _make_staging(staging_parent, lang)
    try:
        project = _render_into(staging, answers, plan, crm_ids)
        report = validate_project(project)
        log.debug("validated %d files: %d problems", report.checked, len(report.problems))
        if report.problems:
            raise RabtError("The generated project failed validation; this is a bug in Rabt.",
                            report.problems)
        files = list_files(project)
        if not dry_run:
            _replace(project, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return RenderResult(project_dir=target, files=files, dry_run=dry_run)


# Files and folders a project's users create while running it, which no template writes
# and git ignores: secrets (.env files), local state and virtual environments. Regenerating
# with --overwrite keeps them, because git cannot bring them back.
LOCAL_FILES = (".env", ".venv", "venv", "sync/.env", "sync/state", "sync/.venv", "service/.env",
               "service/var", "service/.venv")


def _replace(project: Path, target: Path) -> None:
    """Move the finished project to ``target``, replacing an older copy's files.

    The target folder itself stays (a shell inside it keeps working), and so does
    its ``.git`` folder, so a project under version control keeps its history.
    ``.rabt/crm-state.json`` is carried over too: it records what ``rabt crm apply``
    created in the client's CRM, which regenerating does not undo. So are the
    ``LOCAL_FILES`` that exist, with their permissions, unless the new project has a
    file of that name. Every other entry is removed before the new files move in.
    """
    if not target.exists():
        project.rename(target)
        return
    for relative in (CRM_STATE_FILE, *LOCAL_FILES):
        source = target / relative
        kept = project / relative
        if source.is_symlink() or not source.exists() or (
                kept.exists() and relative != CRM_STATE_FILE):
            continue
        kept.parent.mkdir(parents=True, exist_ok=True)
        if kept.exists():
            kept.unlink()
        source.rename(kept)
    for entry in target.iterdir():
        if entry.name == ".git":
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    for entry in project.iterdir():
        entry.rename(target / entry.name)
