"""Template filters: Markdown escaping, Python literals, riyal amounts."""

from __future__ import annotations

import ast

import pytest

from generator.jinja_ext import markdown_inline, python_string, sar_amount


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ("{{ x }}", "\\{\\{ x \\}\\}"),
        ("# not a heading", "\\# not a heading"),
        ("- not an item", "\\- not an item"),
        ("12. not an item", "12\\. not an item"),
        ("a|b", "a\\|b"),
        ("<b>bold</b>", "\\<b\\>bold\\</b\\>"),
        ("line one\nline two", "line one<br>line two"),
        ("عطور (الورد) - جدة", "عطور (الورد) - جدة"),
    ],
)
def test_markdown_inline(value: str, escaped: str) -> None:
    assert markdown_inline(value) == escaped


@pytest.mark.parametrize("value", ['a "quoted" \\ value', "سطر\nجديد", "🎉 '{{ x }}'"])
def test_python_string_round_trips(value: str) -> None:
    assert ast.literal_eval(python_string(value)) == value


@pytest.mark.parametrize(("amount", "text"), [(15000, "15,000"), ("1234.5", "1,234.50"), (0, "0")])
def test_sar_amount(amount: object, text: str) -> None:
    assert sar_amount(amount) == text
