"""Conditions over the contact roll-ups, shared by the lifecycle and segment files.

A condition is ``{rollup, op, value}``: ``rollup`` names a roll-up of the contact
entity in the field map, ``op`` is one of ``OPERATORS`` and ``value`` is an integer
(days for the ``*_days`` operators, SAR for money) or absent for the ``is_*`` ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from generator.resources import load_data

OPERATORS = ("eq", "gte", "lt", "within_days", "older_than_days", "is_set", "is_empty")
_VALUELESS = ("is_set", "is_empty")


def rollup_names() -> tuple[str, ...]:
    """Return the names of the contact roll-ups in the field map's data file."""
    contact = next(
        entity for entity in load_data("spec/mapping")["entities"] if entity["name"] == "contact"
    )
    return tuple(rollup["name"] for rollup in contact["rollups"])


def copy_conditions(
    conditions: Iterable[Mapping[str, Any]], variables: Mapping[str, int]
) -> list[dict[str, Any]]:
    """Copy conditions from a data file, replacing ``$name`` values from ``variables``.

    Raises:
        ValueError: A condition names an unknown roll-up, operator or variable, or
            lacks a value its operator needs. These are mistakes in the data files.
    """
    known = rollup_names()
    copied = []
    for condition in conditions:
        rollup, operator = condition["rollup"], condition["op"]
        if rollup not in known:
            raise ValueError(f"unknown roll-up {rollup!r} in a condition, expected one of {known}")
        if operator not in OPERATORS:
            raise ValueError(f"unknown operator {operator!r}, expected one of {OPERATORS}")
        item: dict[str, Any] = {"rollup": rollup, "op": operator}
        if operator not in _VALUELESS:
            item["value"] = _resolve(condition.get("value"), variables)
        copied.append(item)
    return copied


def _resolve(value: Any, variables: Mapping[str, int]) -> int:
    if isinstance(value, str) and value.startswith("$"):
        name = value[1:]
        if name not in variables:
            raise ValueError(f"unknown variable {value!r} in a condition")
        return variables[name]
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"condition value {value!r} must be an integer or a $variable")
    return value
