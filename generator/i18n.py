"""User-facing messages in English and Arabic, kept as data in ``data/messages.yaml``."""

from __future__ import annotations

from typing import Any

from generator.model import Lang
from generator.resources import load_data


def message(name: str, lang: Lang = "en", /, **fields: Any) -> str:
    """Return message ``name`` in ``lang`` with ``fields`` filled in.

    Raises:
        KeyError: ``name`` is not in the catalogue (a programming error, caught by tests).
    """
    entry: dict[str, str] = load_data("messages")[name]
    return entry[lang].format(**fields)


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
