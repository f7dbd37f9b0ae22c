"""Load answers from every source, merge them, validate them and type them.

Sources merge in this order, later wins: the schema's defaults, a preset, an
answers file, ``--set`` values, then interactive answers. Validation reports every
problem at once and never lets a partial set of answers through.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from unidecode import unidecode

from generator.errors import InputError, Problem
from generator.i18n import message, parse_error_text
from generator.model import Answers, Bilingual, Lang
from generator.resources import load_data, load_schema, presets_dir
from generator.transliterate import arabic_to_latin

DEFAULT_PRESET = "riyadh-perfume-hubspot"
SLUG_PATTERN = re.compile(r"^[a-z][a-z0-9-]{1,62}$")
SLUG_MAX_LENGTH = 63
# The questionnaire's label for "no value" in choices whose enum allows null.
NULL_CHOICE = "__none__"


@dataclass
class AnswerSources:
    """Raw answers from each source, in merge order, plus where each key came from."""

    values: dict[str, Any] = field(default_factory=dict)
    origin: dict[str, str] = field(default_factory=dict)
    rank: dict[str, int] = field(default_factory=dict)
    sources_added: int = 0

    def add(self, source: str, answers: Mapping[str, Any]) -> None:
        """Merge ``answers`` over what is there, remembering ``source`` for each key."""
        self.sources_added += 1
        for key, value in answers.items():
            self.values[key] = value
            self.origin[key] = source
            self.rank[key] = self.sources_added

    def slug_is_stale(self) -> bool:
        """Report whether a later source renamed the client without giving a new slug.

        A preset's slug belongs to the preset's client name; when ``--set
        client_name=...`` follows it, the slug is derived again from the new name.
        """
        if "project_slug" not in self.rank or "client_name" not in self.rank:
            return False
        return self.rank["client_name"] > self.rank["project_slug"]


@dataclass(frozen=True)
class Preset:
    """A named answer set shipped with Rabt or given as a file."""

    name: str
    description: Bilingual
    answers: dict[str, Any]
    source: str


def answer_schema() -> dict[str, Any]:
    """Return the answers JSON Schema."""
    return load_schema("answers")


def answer_keys() -> list[str]:
    """Return every answer key in questionnaire order."""
    properties = answer_schema()["properties"]
    return sorted(properties, key=lambda key: properties[key]["x-order"])


def schema_defaults() -> dict[str, Any]:
    """Return the default of every answer that has one."""
    properties = answer_schema()["properties"]
    return {key: spec["default"] for key, spec in properties.items() if "default" in spec}


# ---------------------------------------------------------------------------
# Reading sources


def _file_problem(path: Path, lang: Lang, text: str, fix: str) -> InputError:
    return InputError(message("invalid_answers", lang, count=1), [Problem(str(path), text, fix)])


def _read_yaml_mapping(path: Path, lang: Lang) -> dict[str, Any]:
    if not path.is_file():
        raise _file_problem(path, lang, message("file_not_found", lang, value=str(path)),
                            message("file_not_found_fix", lang))
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise _file_problem(path, lang, message("not_utf8", lang, value=str(path)),
                            message("not_utf8_fix", lang)) from error
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        detail = parse_error_text(error, lang)
        raise _file_problem(path, lang,
                            message("file_unreadable", lang, value=str(path), error=detail),
                            message("file_unreadable_fix", lang)) from error
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise _file_problem(path, lang, message("file_not_mapping", lang, value=str(path)),
                            message("file_not_mapping_fix", lang))
    return data


def builtin_preset_names() -> list[str]:
    """Return the names of the presets shipped with Rabt, sorted."""
    return sorted(path.stem for path in presets_dir().glob("*.yaml"))


def load_preset(name_or_path: str, lang: Lang = "en") -> Preset:
    """Load a built-in preset by name, or a preset file by path.

    Raises:
        InputError: no such preset or file, or the file lacks ``description`` or ``answers``.
    """
    builtin = presets_dir() / f"{name_or_path}.yaml"
    path = builtin if builtin.is_file() else Path(name_or_path)
    if not path.is_file():
        raise InputError(
            message("invalid_answers", lang, count=1),
            [Problem("--preset", message("preset_not_found", lang, value=repr(name_or_path)),
                     message("preset_not_found_fix", lang))],
        )
    data = _read_yaml_mapping(path, lang)
    description = data.get("description")
    answers = data.get("answers")
    valid_description = isinstance(description, dict) and {"en", "ar"} <= description.keys()
    if not valid_description or not isinstance(answers, dict):
        raise InputError(
            message("invalid_answers", lang, count=1),
            [Problem(str(path), message("preset_invalid", lang, value=str(path)))],
        )
    assert isinstance(description, dict)
    return Preset(
        name=path.stem,
        description=Bilingual(en=str(description["en"]), ar=str(description["ar"])),
        answers=answers,
        source=f"preset {path.stem}",
    )


def load_answers_file(path: Path, lang: Lang = "en") -> dict[str, Any]:
    """Read an answers file (the shape of ``.rabt/answers.yaml``)."""
    return _read_yaml_mapping(path, lang)


def _parse_scalar(key: str, text: str) -> Any:
    """Convert one ``--set`` value to the schema's type, leaving bad text as text."""
    spec = answer_schema()["properties"].get(key, {})
    kind = spec.get("type")
    if kind == "array":
        return [item.strip() for item in text.split(",") if item.strip()]
    if kind == "integer":
        # int() and float() accept Arabic-Indic digits, which merchants often type.
        cleaned = text.strip().replace("_", "").replace(",", "").replace("\u066c", "")
        try:
            return int(cleaned)
        except ValueError:
            pass
        try:
            return float(cleaned.replace("\u066b", "."))  # reported as "a number"
        except ValueError:
            return text
    if kind == "boolean":
        lowered = text.strip().lower()
        if lowered in {"true", "yes", "1", "on"}:
            return True
        if lowered in {"false", "no", "0", "off"}:
            return False
        return text
    if "enum" in spec and None in spec["enum"] and text.strip().lower() in {"", "none", "null"}:
        return None
    return text


def parse_set_options(items: Iterable[str], lang: Lang = "en") -> dict[str, Any]:
    """Parse ``--set KEY=VALUE`` options into typed answers.

    Raises:
        InputError: an item has no ``=`` or an empty key; every such item is reported.
    """
    parsed: dict[str, Any] = {}
    problems: list[Problem] = []
    for item in items:
        key, separator, value = item.partition("=")
        key = key.strip()
        if not separator or not key:
            problems.append(Problem("--set", message("set_syntax", lang, value=repr(item)),
                                    message("set_syntax_fix", lang)))
            continue
        parsed[key] = _parse_scalar(key, value)
    if problems:
        raise InputError(message("invalid_answers", lang, count=len(problems)), problems)
    return parsed


# ---------------------------------------------------------------------------
# Derived values


def derive_slug(client_name: str) -> str | None:
    """Derive a Latin project slug from a client name, or return None when none can be made.

    Arabic goes through ``arabic_to_latin`` (``عطور الرياض`` becomes
    ``atur-al-riyad``), then any other script through Unidecode.
    """
    latin = unidecode(arabic_to_latin(client_name)).lower()
    words = re.findall(r"[a-z0-9]+", latin)
    slug = "-".join(words)
    slug = slug.lstrip("0123456789-")
    slug = slug[:SLUG_MAX_LENGTH].rstrip("-")
    return slug if SLUG_PATTERN.match(slug) else None


def next_working_day(day: dt.date) -> dt.date:
    """Return ``day`` or the first Sunday-to-Thursday day after it (Saudi working week)."""
    while day.weekday() in (4, 5):  # Friday, Saturday
        day += dt.timedelta(days=1)
    return day


def _applies(spec: Mapping[str, Any], values: Mapping[str, Any]) -> bool:
    """Report whether a question with ``x-ask-when`` applies to ``values``."""
    condition = spec.get("x-ask-when")
    if not condition:
        return True
    other = values.get(condition["key"])
    if "equals" in condition:
        return bool(other == condition["equals"])
    if condition.get("not_empty"):
        return bool(other)
    return True


def question_applies(key: str, values: Mapping[str, Any]) -> bool:
    """Whether question ``key`` should be asked given the answers so far."""
    return _applies(answer_schema()["properties"][key], values)


# ---------------------------------------------------------------------------
# Validation


_TYPE_NAMES: dict[str, dict[str, str]] = {
    "boolean": {"en": "a boolean", "ar": "قيمة منطقية"},
    "number": {"en": "a number", "ar": "رقم"},
    "integer": {"en": "a whole number", "ar": "عدد صحيح"},
    "string": {"en": "text", "ar": "نص"},
    "array": {"en": "a list", "ar": "قائمة"},
    "object": {"en": "a mapping", "ar": "مجموعة مفاتيح وقيم"},
    "null": {"en": "empty", "ar": "قيمة فارغة"},
}


def _describe(value: Any, lang: Lang) -> str:
    if isinstance(value, bool):
        kind = "boolean"
    elif isinstance(value, int | float):
        kind = "number"
    elif isinstance(value, str):
        kind = "string"
    elif isinstance(value, list):
        kind = "array"
    elif isinstance(value, dict):
        kind = "object"
    else:
        kind = "null"
    return _TYPE_NAMES[kind][lang]


def _expected(spec: Mapping[str, Any], lang: Lang) -> str:
    if "enum" in spec:
        return _join((str(item) for item in spec["enum"] if item is not None), lang)
    names = _TYPE_NAMES.get(str(spec.get("type")))
    return names[lang] if names else str(spec.get("type"))


def _unknown_key_problem(key: str, valid: list[str], origin: str, lang: Lang) -> Problem:
    closest = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    valid_text = _join(valid, lang)
    if closest:
        fix = message("unknown_key_fix_closest", lang, closest=closest[0], valid=valid_text)
    else:
        fix = message("unknown_key_fix", lang, valid=valid_text)
    return Problem(f"{key} ({origin})", message("unknown_key", lang, key=key), fix)


def _schema_error_problem(
    error: jsonschema.ValidationError, origin: Mapping[str, str], lang: Lang
) -> Problem:
    path = list(error.absolute_path)
    key = str(path[0]) if path else ""
    spec = answer_schema()["properties"].get(key, {})
    value = error.instance
    value_text = repr(value)
    where = f"{key} ({origin.get(key, 'default')})" if key else "answers"
    validator = error.validator

    if len(path) > 1:  # an item inside a list
        item_spec = spec.get("items", {})
        allowed = _join((str(item) for item in item_spec.get("enum", [])), lang)
        return Problem(where, message("not_allowed", lang, value=value_text),
                       message("list_allowed_fix", lang, allowed=allowed))
    if validator == "enum":
        allowed = _join((str(item) for item in spec["enum"] if item is not None), lang)
        return Problem(where, message("not_allowed", lang, value=value_text),
                       message("allowed_fix", lang, allowed=allowed))
    if validator == "type":
        text = message("wrong_type", lang, value=value_text, actual=_describe(value, lang),
                       expected=_expected(spec, lang))
        return Problem(where, text, _fix_for(spec, key, lang))
    if validator in {"minimum", "maximum"}:
        name = "too_small" if validator == "minimum" else "too_large"
        return Problem(where, message(name, lang, value=value_text, limit=error.validator_value),
                       _fix_for(spec, key, lang))
    if validator == "uniqueItems":
        return Problem(where, message("duplicate_items", lang, value=value_text),
                       message("duplicate_items_fix", lang))
    if validator in {"minLength", "maxLength"}:
        maximum = spec.get("maxLength", 0)
        return Problem(where, message("text_length", lang, value=value_text, maximum=maximum),
                       message("text_length_fix", lang, maximum=maximum))
    if validator == "pattern" and key == "project_slug":
        return Problem(where, message("slug_pattern", lang, value=value_text),
                       message("slug_pattern_fix", lang))
    if validator == "required":
        # jsonschema names the missing property only in its message text.
        names = re.findall(r"'([^']+)'", error.message)
        missing = names[0] if names else "answers"
        return Problem(missing, message("missing", lang), message("missing_fix", lang, key=missing))
    return Problem(where, error.message)


def _fix_for(spec: Mapping[str, Any], key: str, lang: Lang) -> str:
    if "enum" in spec:
        allowed = _join((str(item) for item in spec["enum"] if item is not None), lang)
        return message("allowed_fix", lang, allowed=allowed)
    if spec.get("type") == "integer":
        return message("range_fix", lang, minimum=spec.get("minimum", 0),
                       maximum=spec.get("maximum", "∞"))
    if spec.get("type") == "array":
        allowed = _join((str(item) for item in spec.get("items", {}).get("enum", [])), lang)
        return message("list_allowed_fix", lang, allowed=allowed)
    if spec.get("type") == "boolean":
        return message("boolean_fix", lang)
    return message("missing_fix", lang, key=key)


def _join(items: Iterable[str], lang: Lang) -> str:
    """Join values for a message, with the Arabic comma in Arabic text."""
    return ("، " if lang == "ar" else ", ").join(items)


def _normalise_raw(values: dict[str, Any]) -> None:
    """Turn YAML-native values into the schema's JSON types before validation."""
    start = values.get("start_date")
    if isinstance(start, dt.datetime):
        values["start_date"] = start.date().isoformat()
    elif isinstance(start, dt.date):
        values["start_date"] = start.isoformat()
    for key in ("path", "team_focus"):
        if values.get(key) == NULL_CHOICE:
            values[key] = None
    slug = values.get("project_slug")
    if slug is None or slug == "":
        values.pop("project_slug", None)


def _check_date(values: Mapping[str, Any], origin: Mapping[str, str], lang: Lang) -> list[Problem]:
    text = values.get("start_date")
    if not isinstance(text, str):
        return []
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        return [Problem(f"start_date ({origin.get('start_date', 'default')})",
                        message("bad_date", lang, value=repr(text)),
                        message("bad_date_fix", lang))]
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text, flags=re.ASCII):
        return [Problem(f"start_date ({origin.get('start_date', 'default')})",
                        message("bad_date", lang, value=repr(text)),
                        message("bad_date_fix", lang))]
    return []


def check_answers(
    values: Mapping[str, Any], origin: Mapping[str, str] | None = None, lang: Lang = "en"
) -> list[Problem]:
    """Return every problem with ``values`` (unknown keys, types, enums, ranges, dates, slug)."""
    origin = origin or {}
    schema = answer_schema()
    valid = answer_keys()
    problems = [
        _unknown_key_problem(key, valid, origin.get(key, "answers"), lang)
        for key in values
        if key not in schema["properties"]
    ]
    known = {key: value for key, value in values.items() if key in schema["properties"]}
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(known), key=lambda error: list(error.absolute_path))
    problems.extend(_schema_error_problem(error, origin, lang) for error in errors)
    problems.extend(_check_date(known, origin, lang))
    return problems


def check_one(key: str, value: Any, lang: Lang = "en") -> str | None:
    """Validate a single answer, as the questionnaire does after each question.

    Returns:
        The problem as one line of text, or None when the value is valid.
    """
    values = {key: value}
    if key != "client_name":
        values["client_name"] = "x"
    problems = [problem for problem in check_answers(values, {key: "answer"}, lang)
                if problem.location.startswith(key)]
    if not problems:
        return None
    return "; ".join(problem.message + (f" ({problem.fix})" if problem.fix else "")
                     for problem in problems)


# ---------------------------------------------------------------------------
# Resolution


def resolve_answers(
    sources: AnswerSources,
    *,
    today: dt.date | None = None,
    lang: Lang = "en",
) -> Answers:
    """Merge defaults under ``sources``, validate, derive the slug and return typed answers.

    Raises:
        InputError: one or more problems; all are listed and nothing has been written.
    """
    values: dict[str, Any] = dict(schema_defaults())
    values.update(sources.values)
    if sources.slug_is_stale():
        del values["project_slug"]
    _normalise_raw(values)
    origin = dict(sources.origin)
    problems = check_answers(values, origin, lang)
    if not problems and "project_slug" not in values:
        slug = derive_slug(str(values["client_name"]))
        if slug is None:
            problems.append(Problem(
                "project_slug",
                message("slug_underivable", lang, value=repr(values["client_name"])),
                message("slug_underivable_fix", lang),
            ))
        else:
            values["project_slug"] = slug
    if problems:
        raise InputError(message("invalid_answers", lang, count=len(problems)), problems)
    return _typed(values, today or dt.date.today())


def _typed(values: Mapping[str, Any], today: dt.date) -> Answers:
    start_text = values.get("start_date")
    start = dt.date.fromisoformat(start_text) if start_text else next_working_day(today)
    crm = values["crm"]
    erp_bi = tuple(values["erp_bi"])
    return Answers(
        client_name=values["client_name"],
        project_slug=values["project_slug"],
        platform=values["platform"],
        monthly_orders=values["monthly_orders"],
        store_count=values["store_count"],
        growth=values["growth"],
        sku_count=values["sku_count"],
        crm=crm,
        team_focus=values["team_focus"] if crm == "undecided" else None,
        erp_bi=erp_bi,
        deep_erp_link=bool(values["deep_erp_link"]) if erp_bi else False,
        support_channels=tuple(values["support_channels"]),
        support_agents=values["support_agents"],
        marketing_channels=tuple(values["marketing_channels"]),
        consent_channels=tuple(values["consent_channels"]),
        goal=values["goal"],
        start_date=start,
        path=values["path"],
        eid_al_fitr_days=values["eid_al_fitr_days"],
        eid_al_adha_days=values["eid_al_adha_days"],
    )


def missing_questions(values: Mapping[str, Any]) -> list[str]:
    """Return the keys the questionnaire should still ask, in order.

    A key is missing when no source gave it and the question applies; derived and
    advanced keys are asked only through ``--set`` or a file.
    """
    properties = answer_schema()["properties"]
    missing = []
    for key in answer_keys():
        spec = properties[key]
        if key in values or spec.get("x-advanced"):
            continue
        if _applies(spec, {**schema_defaults(), **values}):
            missing.append(key)
    return missing


def question_text(key: str) -> dict[str, Any]:
    """Return the questionnaire entry (label, help, choices) for ``key``."""
    entry: dict[str, Any] = load_data("questions")[key]
    return entry

