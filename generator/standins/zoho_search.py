"""Search of the Zoho CRM stand-in: ``criteria`` expressions and the email/phone/word keys.

A criteria string is ``(Field:operator:value)``, or groups joined by ``and`` / ``or``
such as ``((Email:equals:a@example.com)or(Phone:equals:0501234567))``. Inside a value,
``(``, ``)`` and ``,`` are escaped with a backslash. Text comparisons ignore case, as
Zoho's search does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .zoho_schema import ModuleDef

__all__ = ["Condition", "CriteriaError", "Group", "matches", "parse_criteria"]

OPERATORS = ("equals", "not_equal", "starts_with", "in", "greater_than", "greater_equal",
             "less_than", "less_equal", "between")


class CriteriaError(ValueError):
    """A criteria string that cannot be parsed or names an unknown field."""


@dataclass(frozen=True)
class Condition:
    """One ``Field:operator:value`` test."""

    field: str
    operator: str
    value: str


@dataclass(frozen=True)
class Group:
    """Conditions or groups joined by one ``and`` or ``or``."""

    joiner: str
    parts: tuple[Condition | Group, ...]


def parse_criteria(text: str, module: ModuleDef) -> Condition | Group:
    """Parse ``text`` into a tree of conditions on ``module``'s fields.

    Raises:
        CriteriaError: The text is malformed, uses an unknown operator, or names a
            field the module lacks.
    """
    parser = _Parser(text.strip())
    node = parser.group()
    if parser.position != len(parser.text):
        raise CriteriaError(f"unexpected text after position {parser.position}")
    _check_fields(node, module)
    return node


def _check_fields(node: Condition | Group, module: ModuleDef) -> None:
    if isinstance(node, Group):
        for part in node.parts:
            _check_fields(part, module)
        return
    if node.field != "id" and node.field not in module.fields:
        raise CriteriaError(f"the field {node.field} does not exist in {module.api_name}")


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.position = 0

    def _expect(self, char: str) -> None:
        if self.position >= len(self.text) or self.text[self.position] != char:
            raise CriteriaError(f"expected {char!r} at position {self.position}")
        self.position += 1

    def group(self) -> Condition | Group:
        self._expect("(")
        nested = self.text.startswith("(", self.position)
        node = self._joined() if nested else self._condition()
        self._expect(")")
        return node

    def _joined(self) -> Condition | Group:
        parts = [self.group()]
        joiners = set()
        while self.position < len(self.text) and self.text[self.position] != ")":
            for joiner in ("and", "or"):
                if self.text.lower().startswith(joiner, self.position):
                    joiners.add(joiner)
                    self.position += len(joiner)
                    break
            else:
                raise CriteriaError(f"expected and/or at position {self.position}")
            parts.append(self.group())
        if len(joiners) > 1:
            raise CriteriaError("mix of and/or in one group; add brackets")
        if len(parts) == 1:
            return parts[0]
        return Group(joiners.pop(), tuple(parts))

    def _condition(self) -> Condition:
        start = self.position
        while self.position < len(self.text):
            char = self.text[self.position]
            if char == "\\":
                self.position += 2
                continue
            if char in "()":
                break
            self.position += 1
        pieces = self.text[start:self.position].split(":", 2)
        if len(pieces) != 3 or not pieces[0]:
            raise CriteriaError(f"expected Field:operator:value at position {start}")
        name, operator, value = pieces
        if operator not in OPERATORS:
            raise CriteriaError(f"unknown operator {operator}")
        return Condition(name, operator, value)


def _unescape(value: str) -> str:
    return value.replace("\\(", "(").replace("\\)", ")").replace("\\,", ",")


def _split_list(value: str) -> list[str]:
    items, current, index = [], "", 0
    while index < len(value):
        if value[index] == "\\" and index + 1 < len(value):
            current += value[index:index + 2]
            index += 2
            continue
        if value[index] == ",":
            items.append(current)
            current = ""
        else:
            current += value[index]
        index += 1
    items.append(current)
    return [_unescape(item) for item in items]


def _plain(stored: Any) -> Any:
    if isinstance(stored, dict) and "id" in stored:
        return stored["id"]
    return stored


def _compare(stored: Any, value: str) -> int | None:
    """Return -1, 0 or 1 comparing ``stored`` with ``value``, or None if incomparable."""
    stored = _plain(stored)
    if stored is None:
        return None
    if isinstance(stored, bool):
        return 0 if str(stored).lower() == value.lower() else 1
    if isinstance(stored, int | float):
        try:
            number = float(value)
        except ValueError:
            return None
        return (stored > number) - (stored < number)
    left, right = str(stored).casefold(), value.casefold()
    return (left > right) - (left < right)


_TESTS: dict[str, Callable[[Any, str], bool]] = {
    "equals": lambda stored, value: _compare(stored, value) == 0,
    "not_equal": lambda stored, value: _compare(stored, value) != 0,
    "starts_with": lambda stored, value: str(_plain(stored) or "").casefold().startswith(
        value.casefold()),
    "greater_than": lambda stored, value: _compare(stored, value) == 1,
    "greater_equal": lambda stored, value: _compare(stored, value) in (0, 1),
    "less_than": lambda stored, value: _compare(stored, value) == -1,
    "less_equal": lambda stored, value: _compare(stored, value) in (0, -1),
}


def matches(node: Condition | Group, record: dict[str, Any]) -> bool:
    """Return whether ``record`` satisfies the criteria tree ``node``."""
    if isinstance(node, Group):
        results = (matches(part, record) for part in node.parts)
        return all(results) if node.joiner == "and" else any(results)
    stored = record.get(node.field)
    if node.operator == "in":
        return any(_compare(stored, item) == 0 for item in _split_list(node.value))
    if node.operator == "between":
        bounds = _split_list(node.value)
        return len(bounds) == 2 and _compare(stored, bounds[0]) in (0, 1) and _compare(
            stored, bounds[1]) in (0, -1)
    return _TESTS[node.operator](stored, _unescape(node.value))


def keyword_matches(module: ModuleDef, record: dict[str, Any], key: str, value: str) -> bool:
    """Return whether ``record`` matches the ``email``, ``phone`` or ``word`` search key."""
    data_types = {"email": ("email",), "phone": ("phone",),
              "word": ("text", "email", "phone", "textarea")}[key]
    for name, definition in module.fields.items():
        stored = record.get(name)
        if definition.data_type not in data_types or not isinstance(stored, str):
            continue
        if key == "word" and value.casefold() in stored.casefold():
            return True
        if key != "word" and stored.casefold() == value.casefold():
            return True
    return False
