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
