"""Jinja filters for the templates: escape answer values for the language they land in.

Templates render prose and code only (data files are serialized in Python), so the
filters here cover Markdown text and Python string literals.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

from jinja2 import Environment
from jinja2.ext import Extension

from generator.arabic_counts import arabic_count

# Characters with a meaning anywhere in CommonMark inline text or in a table row,
# plus braces so that a user value never looks like an unrendered template marker.
_MARKDOWN_INLINE = re.compile(r"([\\`*_\[\]{}<>|~&])")
# A value that starts a line could open a heading or a list item.
_MARKDOWN_LINE_START = re.compile(r"^([#+\-=])")
_MARKDOWN_ORDERED_ITEM = re.compile(r"^(\d+)([.)])")


def markdown_inline(value: Any) -> str:
    """Escape ``value`` for one line of Markdown; newlines become ``<br>``."""
    lines = []
    for line in str(value).replace("\r\n", "\n").split("\n"):
        line = _MARKDOWN_INLINE.sub(r"\\\1", line)
        line = _MARKDOWN_LINE_START.sub(r"\\\1", line.strip("\r"))
        line = _MARKDOWN_ORDERED_ITEM.sub(r"\1\\\2", line)
        lines.append(line)
    return "<br>".join(lines)


def python_string(value: Any) -> str:
    """Render ``value`` as a Python string literal (JSON strings are valid Python)."""
    return json.dumps(str(value), ensure_ascii=False)


def sar_amount(value: Any) -> str:
    """Format a riyal amount with thousands separators and ASCII digits, e.g. ``15,000``."""
    amount = Decimal(str(value))
    if amount == amount.to_integral_value():
        return f"{int(amount):,}"
    return f"{amount:,.2f}"


def usd_amount(value: Any) -> str:
    """Format US dollars with the sign, thousands separators and cents, e.g. ``$1,250.00``."""
    return f"${Decimal(str(value)):,.2f}"


class RabtExtension(Extension):
    """Register Rabt's filters: ``md``, ``py_str``, ``sar``, ``usd`` and ``ar_count``."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.filters["md"] = markdown_inline
        environment.filters["py_str"] = python_string
        environment.filters["sar"] = sar_amount
        environment.filters["usd"] = usd_amount
        environment.filters["ar_count"] = arabic_count
