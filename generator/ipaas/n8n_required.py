"""Required n8n node parameters that a workflow file leaves missing or empty.

The rules follow n8n-workflow 2.8.0 (``getParameterIssues`` and ``displayParameter`` in
``node-helpers.js``), the library that n8n 2.8.4's editor uses to mark a node as having
issues. The catalogue (``generator/data/ipaas/n8n-nodes.json``) keeps, for every
definition of a parameter, its type, its default, whether it is required and its
``show``/``hide`` display conditions.

- A parameter the file leaves out takes the default of its first definition that is
  shown, as n8n fills it in when it loads the node. A required parameter with a
  non-empty default is therefore never missing.

  NOTE: n8n 2.8.4 activates a workflow through its REST API only after the same check
  on the stored parameters, without defaults. There a required parameter with a
  non-empty default that the file leaves out (the Postgres node's ``schema``) is also
  missing. ``rabt validate`` follows the editor and does not report it.
- A required definition counts only while it is shown: every ``show`` condition is met
  and no ``hide`` condition is, read from the node's values with their defaults. A
  condition on an expression (a value that starts with ``=``) counts as shown.
- Empty means ``""`` or absent for the types string, options and dateTime; an empty
  list for multiOptions; a resource locator without a value. Other types, such as
  number, boolean, json and credentialsSelect, are never empty to n8n.
- A fixed collection with a minimum number of items (``minRequiredFields``) needs that
  many in each of its groups while it is shown.
- Inside a fixed collection only the groups the file sets are checked, item by item.
  A collection's own children are not checked: n8n 2.8 looks their values up beside
  the collection rather than inside it, and a test asserts that none of them is
  required in the nodes of the catalogue.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

# The parameter types n8n checks for a missing value (addToIssuesIfMissing).
TEXT_TYPES = frozenset({"string", "options", "dateTime"})
LOCATOR_TYPES = frozenset({"resourceLocator", "workflowSelector"})
# A condition reads a parameter whose default can depend on another condition. The
# limit ends a cycle (``a`` shown when ``b`` is, ``b`` when ``a`` is) in an edited catalogue.
MAX_DEPTH = 20
_ABSENT = object()


@dataclass(frozen=True)
class Missing:
    """One required parameter without a value, or a fixed collection group short of items.

    Attributes:
        path: The parameter's path in the node's parameters, such as ``url`` or
            ``workflowInputs.values[1].name``.
        minimum: For a group short of items, how many it needs, otherwise ``None``.
        count: For a group short of items, how many it has.
    """

    path: str
    minimum: int | None = None
    count: int = 0


class Scope:
    """The values of one level of a node: its parameters, or one fixed collection item.

    Args:
        given: The values the workflow file sets at this level.
        allowed: The catalogue's parameter entries of this level.
        root: The node's top level, which conditions written as ``/name`` read.
        defaults: Whether absent values take their defaults.
    """

    def __init__(self, given: dict[str, Any], allowed: dict[str, Any],
                 root: Scope | None = None, defaults: bool = True) -> None:
        self.given = given
        self.allowed = allowed
        self.root = root or self
        self.defaults: bool = root.defaults if root else defaults

    def value(self, name: str, depth: int = 0) -> Any:
        """Return the value of ``name`` with n8n's default filled in, or ``_ABSENT``."""
        if name in self.given:
            return self.given[name]
        entry = self.allowed.get(name)
        if entry is None or depth > MAX_DEPTH or not self.defaults:
            return _ABSENT
        for definition in entry.get("definitions", []):
            if self.shown(definition, depth + 1):
                return definition.get("default")
        return _ABSENT

    def shown(self, definition: dict[str, Any], depth: int = 0) -> bool:
        """Return whether n8n shows ``definition`` for the values of this scope."""
        # NOTE: n8n reads the show keys in the node's order and stops at the first
        # expression or failed condition, but the catalogue sorts them. With an expression
        # on one key and a failed condition on another, the two can disagree.
        for name, conditions in definition.get("show", {}).items():
            values = self._condition_values(name, depth)
            if any(isinstance(item, str) and item.startswith("=") for item in values):
                return True
            if not _holds(conditions, values):
                return False
        for name, conditions in definition.get("hide", {}).items():
            values = self._condition_values(name, depth)
            if values and _holds(conditions, values):
                return False
        return True

    def _condition_values(self, name: str, depth: int) -> list[Any]:
        if name == "@tool":
            return [False]  # no node Rabt writes is an AI tool variant
        if name.startswith("/"):
            value = self.root.value(name[1:], depth)
        else:
            value = self.value(name, depth)
        if value is _ABSENT:
            value = None
        if isinstance(value, dict) and value.get("__rl"):
            value = value.get("value")
        return value if isinstance(value, list) else [value]


def _holds(conditions: list[Any], values: list[Any]) -> bool:
    """Return whether one of ``conditions`` matches ``values`` (n8n's checkConditions)."""
    for condition in conditions:
        if isinstance(condition, dict) and set(condition) == {"_cnd"}:
            if _operator_holds(condition["_cnd"], values):
                return True
        elif condition in values:
            return True
    return False


def _operator_holds(operator: dict[str, Any], values: list[Any]) -> bool:
    key, target = next(iter(operator.items()))
    if not values:
        return key == "not"
    return all(_compare(key, target, value) for value in values)


def _compare(key: str, target: Any, value: Any) -> bool:
    if key == "eq":
        return bool(value == target)
    if key == "not":
        return bool(value != target)
    if key == "exists":
        return value not in (None, "")
    try:
        if key == "gte":
            return bool(value >= target)
        if key == "lte":
            return bool(value <= target)
        if key == "gt":
            return bool(value > target)
        if key == "lt":
            return bool(value < target)
        if key == "between":
            return bool(target["from"] <= value <= target["to"])
        if key == "includes":
            return bool(target in value)
        if key == "startsWith":
            return bool(str(value).startswith(target))
        if key == "endsWith":
            return bool(str(value).endswith(target))
    except (TypeError, KeyError):
        return False
    return False


def is_empty(kind: str, value: Any) -> bool:
    """Return whether n8n treats ``value`` of a required ``kind`` parameter as missing."""
    if kind in TEXT_TYPES:
        return value is _ABSENT or value == ""
    if kind == "multiOptions":
        return isinstance(value, list) and not value
    if kind in LOCATOR_TYPES:
        if isinstance(value, dict):
            inner = value.get("value")
            return not isinstance(inner, (int, float)) and not inner
        return value is _ABSENT or not value
    return False


def missing_parameters(given: dict[str, Any], allowed: dict[str, Any],
                       defaults: bool = True) -> Iterator[Missing]:
    """Yield every required parameter that ``given`` leaves missing or empty.

    Args:
        given: A node's ``parameters``.
        allowed: The catalogue's parameter entries of the node's type version.
        defaults: Whether absent values take their defaults first, as in n8n's editor.
            With ``False`` the values are read as stored, as n8n 2.8.4's activation
            check through its REST API reads them (``WorkflowService._validateNodes``).
    """
    yield from _missing(Scope(given, allowed, defaults=defaults), "")


def _missing(scope: Scope, prefix: str) -> Iterator[Missing]:
    for name, entry in scope.allowed.items():
        path = f"{prefix}{name}"
        for definition in entry.get("definitions", []):
            required = definition.get("required") and scope.shown(definition)
            if required and _definition_missing(definition, scope.value(name)):
                yield Missing(path)
                break
        for definition in entry.get("definitions", []):
            if definition.get("min_required_fields") and scope.shown(definition):
                yield from _short_groups(definition, scope.value(name), f"{path}.")
                break
        groups = entry.get("groups")
        value = scope.given.get(name)
        if groups and isinstance(value, dict):
            yield from _missing_in_groups(value, groups, scope.root, f"{path}.")


def _definition_missing(definition: dict[str, Any], value: Any) -> bool:
    kind = definition["type"]
    if definition.get("multiple_values"):
        items = value if isinstance(value, list) else []
        return any(is_empty(kind, item) for item in items)
    return is_empty(kind, value)


def _short_groups(definition: dict[str, Any], value: Any, prefix: str) -> Iterator[Missing]:
    minimum = definition["min_required_fields"]
    for group in definition.get("groups", []):
        items = value.get(group) if isinstance(value, dict) else None
        count = len(items) if isinstance(items, list) else 0
        if count < minimum:
            yield Missing(f"{prefix}{group}", minimum, count)


def _missing_in_groups(value: dict[str, Any], groups: dict[str, Any], root: Scope,
                       prefix: str) -> Iterator[Missing]:
    for group, content in value.items():
        children = groups.get(group)
        if children is None:
            continue  # an unknown group, which the parameter name check reports
        if isinstance(content, dict):
            yield from _missing(Scope(content, children, root), f"{prefix}{group}.")
            continue
        for index, item in enumerate(content if isinstance(content, list) else []):
            if isinstance(item, dict):
                yield from _missing(Scope(item, children, root), f"{prefix}{group}[{index}].")
