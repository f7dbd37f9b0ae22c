"""Digit and format-mark clean-up shared by the phone, money, id and quantity transforms.

Customers in Saudi Arabia type Arabic-Indic (U+0660-U+0669) and Eastern Arabic-Indic
(U+06F0-U+06F9) digits, and text copied from right-to-left interfaces carries
invisible bidi marks. Both are cleaned from parsed field values only, never from a
webhook body before its signature is checked, because any change to the bytes breaks
the HMAC.
"""

from __future__ import annotations

import unicodedata

__all__ = ["ascii_digits", "is_digit_string", "strip_format_marks"]


def ascii_digits(text: str) -> str:
    """Replace every Unicode decimal digit in ``text`` with its ASCII digit.

    Args:
        text: Any text, for example "٠٥٠١٢٣٤٥٦٧" or "۱۲۳".

    Returns:
        The text with only ASCII digits; other characters are unchanged.
    """
    if text.isascii():
        # Text that is all ASCII, the common case, has no other digits to replace.
        return text
    return "".join(
        str(unicodedata.decimal(char)) if char.isdecimal() and not char.isascii() else char
        for char in text
    )


def strip_format_marks(text: str) -> str:
    """Remove invisible format characters (Unicode category Cf) from ``text``.

    This covers the bidi marks U+200E and U+200F, the embeddings and overrides
    U+202A-U+202E, the isolates U+2066-U+2069, the Arabic letter mark U+061C, the
    zero-width characters U+200B-U+200D and the byte order mark U+FEFF.

    Args:
        text: Any text.

    Returns:
        The text without those characters.
    """
    if text.isascii():
        # No ASCII character is in category Cf, and most values are ASCII, so the
        # per-character lookup runs only on the rest.
        return text
    return "".join(char for char in text if unicodedata.category(char) != "Cf")


def is_digit_string(text: str) -> bool:
    """Return whether ``text`` is non-empty and made only of decimal digits of any script."""
    return text != "" and all(char.isdecimal() for char in text)
