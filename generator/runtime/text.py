"""Plain value transforms: identity, list_join, category_map and html_to_text."""

from __future__ import annotations

import re
from collections.abc import Mapping
from html.parser import HTMLParser
from typing import Any

from .digits import ascii_digits, is_digit_string
from .result import TransformContext, Transformed

__all__ = ["LIST_SEPARATOR", "category_map", "html_to_text", "identity", "list_join"]

LIST_SEPARATOR = ", "

# Tags that end a line of text, so words on either side of them do not run together.
_BLOCK_TAGS = frozenset({
    "address", "article", "blockquote", "br", "dd", "div", "dl", "dt", "figcaption",
    "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "ol", "p",
    "pre", "section", "table", "td", "th", "tr", "ul",
})
_HIDDEN_TAGS = frozenset({"script", "style", "template", "noscript"})
_SPACES = re.compile(r"[^\S\n]+")


def identity(value: Any, context: TransformContext) -> Transformed:
    """Transform ``identity``: copy the value unchanged.

    The one change: text made only of digits, some of them Arabic-Indic, gets ASCII
    digits (flag "ascii_digits"), so a quantity or postcode typed as "٣" arrives as
    "3". Other text, such as a ticket body, keeps its digits as written.

    Args:
        value: Any value.
        context: The transform context (unused; every transform takes one).

    Returns:
        The value; None with "missing" for None or blank text.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return Transformed(value=None, raw=value, flags=("missing",))
    if isinstance(value, str):
        stripped = value.strip()
        if is_digit_string(stripped) and not stripped.isascii():
            return Transformed(value=ascii_digits(stripped), raw=value, flags=("ascii_digits",))
    return Transformed(value=value, raw=value)


def list_join(value: Any, context: TransformContext) -> Transformed:
    """Transform ``list_join``: join a list into one comma-separated text value.

    Elements may be text, numbers or objects with a ``code`` (Shopify
    ``discount_codes[]``, WooCommerce ``coupon_lines[]``). Empty elements are skipped.

    Args:
        value: A list, or one text value.
        context: The transform context (unused; every transform takes one).

    Returns:
        The joined text, such as "RAMADAN10, VIP"; None with "missing" when nothing
        is left, or with "invalid_value" and "kept_raw" for other input.
    """
    if isinstance(value, str):
        elements: list[Any] = [value]
    elif isinstance(value, list | tuple):
        elements = list(value)
    elif value is None:
        elements = []
    else:
        return Transformed(value=None, raw=value, flags=("invalid_value", "kept_raw"))

    parts = [part for part in map(_element_text, elements) if part]
    if not parts:
        return Transformed(value=None, raw=value, flags=("missing",))
    return Transformed(value=LIST_SEPARATOR.join(parts), raw=value)


def category_map(value: Any, context: TransformContext) -> Transformed:
    """Transform ``category_map``: map the store's category to the project's category scheme.

    The scheme is an optional ``category_map`` table at the top level of the mapping
    document, from store category to scheme category, matched case-insensitively.
    Until a project configures one the category passes through unchanged.

    Args:
        value: The store's category or product type.
        context: The transform context; ``context.mapping["category_map"]`` is the table.

    Returns:
        The scheme category; or the store's category with "unmapped_category" when
        the table is missing or lacks it; None with "missing" for empty input.
    """
    if not isinstance(value, str | int) or isinstance(value, bool):
        flags = ("missing",) if value is None else ("invalid_value", "kept_raw")
        return Transformed(value=None, raw=value, flags=flags)
    category = " ".join(str(value).split())
    if not category:
        return Transformed(value=None, raw=value, flags=("missing",))

    table = context.mapping.get("category_map")
    if isinstance(table, Mapping):
        wanted = category.casefold()
        for store_category, scheme_category in table.items():
            if str(store_category).casefold() == wanted and scheme_category:
                return Transformed(value=str(scheme_category), raw=value)
    return Transformed(value=category, raw=value, flags=("unmapped_category",))


def html_to_text(value: Any, context: TransformContext) -> Transformed:
    """Transform ``html_to_text``: strip HTML tags and collapse whitespace.

    Entities are decoded, script and style content is dropped, block tags (``p``,
    ``br``, ``li``, ...) end a line, and every line is trimmed with runs of spaces
    collapsed. Arabic text and its punctuation pass through untouched.

    Args:
        value: HTML text, such as a Shopify ``body_html``.
        context: The transform context (unused; every transform takes one).

    Returns:
        The plain text; None with "missing" when no text is left, or with
        "invalid_value" and "kept_raw" for input that is not text.
    """
    if value is None:
        return Transformed(value=None, raw=value, flags=("missing",))
    if not isinstance(value, str):
        return Transformed(value=None, raw=value, flags=("invalid_value", "kept_raw"))

    parser = _TextCollector()
    parser.feed(value)
    parser.close()
    lines = (_SPACES.sub(" ", line).strip() for line in "".join(parser.chunks).split("\n"))
    text = "\n".join(line for line in lines if line)
    if not text:
        return Transformed(value=None, raw=value, flags=("missing",))
    return Transformed(value=text, raw=value)


def _element_text(element: Any) -> str:
    if isinstance(element, Mapping):
        element = element.get("code")
    if isinstance(element, bool) or not isinstance(element, str | int | float):
        return ""
    return " ".join(str(element).split())


class _TextCollector(HTMLParser):
    """Collects the text of an HTML fragment, one line per block element."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self._hidden_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN_TAGS:
            self._hidden_depth += 1
        elif tag in _BLOCK_TAGS:
            self.chunks.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN_TAGS:
            self._hidden_depth = max(0, self._hidden_depth - 1)
        elif tag in _BLOCK_TAGS:
            self.chunks.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden_depth:
            self.chunks.append(data)
