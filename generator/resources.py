"""Locate the templates, schemas, presets and data files that ship with Rabt.

An installed wheel carries them under ``generator/_bundled``; a source checkout
keeps them at the top of the repository. Both layouts are searched in that order.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import yaml

PACKAGE_DIR = Path(__file__).resolve().parent
DATA_DIR = PACKAGE_DIR / "data"


def _resource_root(name: str) -> Path:
    bundled = PACKAGE_DIR / "_bundled" / name
    if bundled.is_dir():
        return bundled
    return PACKAGE_DIR.parent / name


def templates_dir() -> Path:
    """Return the folder that contains the cookiecutter templates."""
    return _resource_root("templates")


def schemas_dir() -> Path:
    """Return the folder that contains the JSON Schemas."""
    return _resource_root("schemas")


def presets_dir() -> Path:
    """Return the folder that contains the built-in presets."""
    return _resource_root("presets")


@cache
def load_schema(name: str) -> dict[str, Any]:
    """Load ``schemas/<name>.schema.json``; the result is cached and must not be mutated."""
    path = schemas_dir() / f"{name}.schema.json"
    with path.open(encoding="utf-8") as handle:
        schema: dict[str, Any] = json.load(handle)
    return schema


@cache
def load_data(name: str) -> Any:
    """Load ``generator/data/<name>.yaml``; the result is cached and must not be mutated."""
    path = DATA_DIR / f"{name}.yaml"
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)
