"""User-facing messages in English and Arabic, kept as data in ``data/messages.yaml``."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import jsonschema

from generator.model import Lang
from generator.resources import load_data


def message(name: str, lang: Lang = "en", /, **fields: Any) -> str:
    """Return message ``name`` in ``lang`` with ``fields`` filled in.

    Raises:
        KeyError: ``name`` is not in the catalogue (a programming error, caught by tests).
    """
    entry: dict[str, str] = load_data("messages")[name]
    return entry[lang].format(**fields)


def join_list(values: Iterable[str], lang: Lang = "en") -> str:
    """Join list items with the comma of ``lang``, which is "،" in Arabic."""
    return message("list_separator", lang).join(values)


def parse_error_text(error: Exception, lang: Lang = "en") -> str:
    """Describe a YAML or JSON parse error by line and column, without parser internals."""
    mark = getattr(error, "problem_mark", None)
    if mark is not None:
        problem = getattr(error, "problem", None) or str(error)
        return message("parse_position", lang, line=mark.line + 1, column=mark.column + 1,
                       problem=problem)
    line = getattr(error, "lineno", None)
    if line is not None:
        return message("parse_position", lang, line=line, column=getattr(error, "colno", 1),
                       problem=getattr(error, "msg", str(error)))
    return str(error).replace("\n", " ")


def schema_error_text(error: jsonschema.ValidationError, lang: Lang) -> str:
    """Word a schema error in ``lang`` as a plain sentence, without jsonschema's own text."""
    value = _short_repr(error.instance)
    rule = error.validator_value
    if error.validator == "enum":
        allowed = join_list((repr(item) for item in rule), lang)
        return message("schema_enum", lang, value=value, allowed=allowed)
    if error.validator == "const":
        return message("schema_const", lang, value=value, expected=repr(rule))
    if error.validator == "type":
        return message("schema_type", lang, value=value, expected=_type_names(rule, lang))
    if error.validator == "required":
        names = re.findall(r"'([^']+)' is a required property", error.message)
        return message("schema_required", lang, name=names[0] if names else error.message)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = error.schema.get("properties", {})
        extra = join_list(sorted(repr(key) for key in error.instance if key not in allowed), lang)
        return message("schema_additional", lang, names=extra)
    if error.validator in ("minLength", "minItems") and rule == 1:
        return message("schema_empty", lang, value=value)
    if error.validator in ("pattern", "minimum", "maximum", "minLength", "maxLength",
                           "minItems", "maxItems"):
        return message(f"schema_{error.validator}", lang, value=value, limit=rule)
    return message("schema_rule", lang, value=value, rule=error.validator)


def schema_error_fix(error: jsonschema.ValidationError, lang: Lang, default: str) -> str:
    """Return the fix for a schema error: add the missing field, remove the unknown one.

    Any other error gets ``default``.
    """
    if error.validator == "required":
        names = re.findall(r"'([^']+)' is a required property", error.message)
        if names:
            return message("schema_fix_required", lang, name=names[0])
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = error.schema.get("properties", {})
        extra = join_list(sorted(repr(key) for key in error.instance if key not in allowed), lang)
        if extra:
            return message("schema_fix_additional", lang, names=extra)
    return default


def _type_names(rule: Any, lang: Lang) -> str:
    """Name the JSON type or types ``rule`` in ``lang``."""
    catalogue = load_data("messages")
    types = rule if isinstance(rule, list) else [rule]
    names = [message(f"schema_type_{item}", lang) if f"schema_type_{item}" in catalogue
             else str(item) for item in types]
    return message("schema_type_or", lang).join(names)


def _short_repr(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit - 3]}..."
