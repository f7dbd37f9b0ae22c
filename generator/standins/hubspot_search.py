"""The CRM search endpoint's filters, sorting and paging, over the stand-in's search index.

Filter groups are ORed and the filters inside a group are ANDed, as in HubSpot.
String comparisons ignore case. Limits: 5 groups, 10 filters per group, 25 in
total (HubSpot changelog, August 2024), and 200 results per page.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from .hubspot_config import (
    SEARCH_MAX_FILTER_GROUPS,
    SEARCH_MAX_FILTERS_PER_GROUP,
    SEARCH_MAX_FILTERS_TOTAL,
    SEARCH_PAGE_LIMIT,
)
from .hubspot_errors import validation_error

OPERATORS = {
    "EQ", "NEQ", "LT", "LTE", "GT", "GTE", "IN", "NOT_IN", "HAS_PROPERTY",
    "NOT_HAS_PROPERTY", "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN", "BETWEEN",
}
_NO_VALUE = {"HAS_PROPERTY", "NOT_HAS_PROPERTY"}


def check_search_request(body: dict[str, Any], known: set[str]) -> list[list[dict[str, Any]]]:
    """Return the filter groups of a search request after HubSpot's checks."""
    groups = body.get("filterGroups") or []
    if not isinstance(groups, list):
        raise validation_error("filterGroups must be a list")
    if len(groups) > SEARCH_MAX_FILTER_GROUPS:
        raise validation_error(
            f"Too many filterGroups: {len(groups)}; the maximum is {SEARCH_MAX_FILTER_GROUPS}")
    total = 0
    checked = []
    for group in groups:
        filters = (group.get("filters") or []) if isinstance(group, dict) else None
        if not isinstance(filters, list):
            raise validation_error("Each filter group needs a filters list")
        if len(filters) > SEARCH_MAX_FILTERS_PER_GROUP:
            raise validation_error(
                f"Too many filters in a group: {len(filters)}; the maximum is "
                f"{SEARCH_MAX_FILTERS_PER_GROUP}")
        total += len(filters)
        checked.append([_check_filter(item, known) for item in filters])
    if total > SEARCH_MAX_FILTERS_TOTAL:
        raise validation_error(
            f"Too many filters: {total}; the maximum is {SEARCH_MAX_FILTERS_TOTAL}")
    limit = body.get("limit", 10)
    if not isinstance(limit, int) or not 0 < limit <= SEARCH_PAGE_LIMIT:
        raise validation_error(
            f"limit must be a whole number from 1 to {SEARCH_PAGE_LIMIT}, got {limit!r}")
    return checked


def _check_filter(item: Any, known: set[str]) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise validation_error("Each filter must be a JSON object")
    name = item.get("propertyName")
    operator = item.get("operator")
    if operator not in OPERATORS:
        raise validation_error(
            f"Invalid operator {operator!r}; use one of {', '.join(sorted(OPERATORS))}")
    if name not in known:
        raise validation_error(f"Property {name!r} does not exist and cannot be searched")
    if operator in ("IN", "NOT_IN") and not isinstance(item.get("values"), list):
        raise validation_error(f"Operator {operator} needs a values list")
    if operator not in _NO_VALUE and operator not in ("IN", "NOT_IN") and "value" not in item:
        raise validation_error(f"Operator {operator} on {name} needs a value")
    return item


def matches(properties: dict[str, str], groups: list[list[dict[str, Any]]]) -> bool:
    """Return whether a record's ``properties`` match any filter group."""
    if not groups:
        return True
    return any(all(_matches(properties, item) for item in group) for group in groups)


def _matches(properties: dict[str, str], item: dict[str, Any]) -> bool:
    operator = item["operator"]
    actual = properties.get(item["propertyName"])
    if operator == "HAS_PROPERTY":
        return bool(actual)
    if operator == "NOT_HAS_PROPERTY":
        return not actual
    if operator in ("IN", "NOT_IN"):
        wanted = {_fold(value) for value in item["values"]}
        found = actual is not None and _fold(actual) in wanted
        return found if operator == "IN" else not found
    if actual is None:
        return operator in ("NEQ", "NOT_CONTAINS_TOKEN")
    value = item.get("value")
    if operator == "EQ":
        return _fold(actual) == _fold(value)
    if operator == "NEQ":
        return _fold(actual) != _fold(value)
    if operator == "CONTAINS_TOKEN":
        return _fold(value).strip("*") in _fold(actual)
    if operator == "NOT_CONTAINS_TOKEN":
        return _fold(value).strip("*") not in _fold(actual)
    if operator == "BETWEEN":
        return _compare(actual, value) >= 0 and _compare(actual, item.get("highValue")) <= 0
    order = _compare(actual, value)
    return {"LT": order < 0, "LTE": order <= 0, "GT": order > 0, "GTE": order >= 0}[operator]


def _fold(value: Any) -> str:
    return str(value).lower()


def _compare(actual: str, value: Any) -> int:
    """Compare as numbers when both sides are numbers, else as strings."""
    try:
        left, right = Decimal(actual), Decimal(str(value))
    except InvalidOperation:
        left_text, right_text = actual, str(value)
        return (left_text > right_text) - (left_text < right_text)
    return (left > right) - (left < right)
