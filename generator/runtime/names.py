"""Split customer names into first and last name, for Arabic and Latin spellings.

A one-word name comes back as the last name; the engine moves it to the first name
unless the field map marks the last name required (Zoho rejects a contact without
``Last_Name``). Compound parts stay together: a given name such as "عبد الله" or "Abdul
Rahman" (any "عبد" or "Abd" plus the next word), a kunya such as "أبو بكر", and a
family or patronymic part such as "آل سعود", "بن سلمان" or "Al Saud".
"""

# Arabic letters in this module are its data, not look-alikes of Latin letters.
# ruff: noqa: RUF001

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

from .digits import strip_format_marks
from .result import TransformContext, Transformed

__all__ = ["split_full_name", "split_name"]

# Words that join the word (or compound) after them. Arabic entries use a bare alef
# because hamza forms (أ إ آ) are unified before lookup, so "ال" also covers "آل".
# Given-name joiners bind anywhere: "عبد الله", "Abdul Rahman", "أبو بكر".
_GIVEN_NAME_JOINERS: frozenset[str] = frozenset({
    "عبد", "ابو", "ابا", "ابي", "ام",
    "abd", "abdul", "abdel", "abdal", "abdol", "abdur", "abu", "abou", "umm",
})
# Family and patronymic joiners bind only after the first word, so that a given
# name such as "Al" in "Al Pacino" is not read as the article of a family name.
_FAMILY_JOINERS: frozenset[str] = frozenset({
    "ال", "بن", "بنت", "ابن",
    "al", "el", "bin", "bint", "ibn",
})

_FIRST_KEYS = ("first_name", "first", "firstName", "given_name")
_LAST_KEYS = ("last_name", "last", "lastName", "family_name")
_FULL_KEYS = ("name", "full_name", "fullName")

# Maximum nesting depth searched for the payload object that contains a name field.
_SEARCH_DEPTH = 3


def split_full_name(text: str) -> tuple[str | None, str | None]:
    """Split one full name into ``(first, last)``.

    The last part (a word or a compound such as "Al Saud") is the last name and the
    rest is the first name. A name of one part has no first name.

    Args:
        text: A full name, Arabic or Latin, such as "محمد عبد الله".

    Returns:
        ``(first, last)``; both None when ``text`` has no words.
    """
    parts = _name_parts(strip_format_marks(text).split())
    if not parts:
        return None, None
    if len(parts) == 1:
        return None, parts[0]
    return " ".join(parts[:-1]), parts[-1]


def split_name(value: Any, context: TransformContext) -> Transformed:
    """Transform ``split_name``: write ``{"first": ..., "last": ...}`` for one customer.

    The input may be a mapping with the platform's name fields (``first_name`` and
    ``last_name``), or one name field's text. For text, the transform looks in the
    payload for the object whose ``first_name`` or ``last_name`` is that text and
    uses both of its fields, so the engine may pass either name field. Fields that
    both contain text are used as sent. When only one contains text, that text is
    split by ``split_full_name``.

    Args:
        value: A mapping of name fields, or one name as text.
        context: The transform context; its payload and item are searched for the
            object that contains a name given as text.

    Returns:
        The first and last name (each None when absent) as the value. Flags:
        "name_split" when one field was split, "missing" when there is no name,
        "invalid_value" and "kept_raw" for input that is neither text nor a mapping.
    """
    if isinstance(value, Mapping):
        first, last = _fields_of(value)
    elif isinstance(value, str):
        holder = _find_name_holder(value, context)
        first, last = _fields_of(holder) if holder is not None else (value, None)
    elif value is None:
        first, last = None, None
    else:
        return Transformed(value={"first": None, "last": None}, raw=value,
                           flags=("invalid_value", "kept_raw"))

    first, last = _clean(first), _clean(last)
    if first and last:
        return Transformed(value={"first": first, "last": last}, raw=value)
    whole = first or last
    if not whole:
        return Transformed(value={"first": None, "last": None}, raw=value, flags=("missing",))
    split_first, split_last = split_full_name(whole)
    flags = ("name_split",) if split_first else ()
    return Transformed(value={"first": split_first, "last": split_last}, raw=value, flags=flags)


def _name_parts(words: list[str]) -> list[str]:
    parts: list[str] = []
    index = 0
    while index < len(words):
        end = index
        # A joiner takes the next word with it, and so does a chain of joiners
        # ("Abd Al Rahman"). A joiner at the very end is a part of its own.
        while end < len(words) - 1 and _joins_next(words[end], end):
            end += 1
        parts.append(" ".join(words[index:end + 1]))
        index = end + 1
    return parts


def _joins_next(word: str, position: int) -> bool:
    key = word.casefold().replace("أ", "ا").replace("إ", "ا").replace("آ", "ا")
    if key in _GIVEN_NAME_JOINERS:
        return True
    return position > 0 and key in _FAMILY_JOINERS


def _fields_of(holder: Mapping[str, Any]) -> tuple[Any, Any]:
    first = _first_present(holder, _FIRST_KEYS)
    last = _first_present(holder, _LAST_KEYS)
    if _clean(first) is None and _clean(last) is None:
        return _first_present(holder, _FULL_KEYS), None
    return first, last


def _first_present(holder: Mapping[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if _clean(holder.get(key)) is not None:
            return holder.get(key)
    return None


def _clean(text: Any) -> str | None:
    if not isinstance(text, str):
        return None
    words = strip_format_marks(text).split()
    return " ".join(words) if words else None


def _find_name_holder(text: str, context: TransformContext) -> Mapping[str, Any] | None:
    target = _clean(text)
    if target is None:
        return None
    roots: list[Mapping[str, Any]] = [context.item] if context.item is not None else []
    roots.append(context.payload)
    queue: deque[tuple[Mapping[str, Any], int]] = deque((root, 0) for root in roots)
    while queue:
        holder, depth = queue.popleft()
        names = [_clean(holder.get(key)) for key in (*_FIRST_KEYS, *_LAST_KEYS)]
        if target in names:
            return holder
        if depth < _SEARCH_DEPTH:
            queue.extend((child, depth + 1) for child in holder.values()
                         if isinstance(child, Mapping))
    return None
