"""Phone numbers to E.164, with the region of the store as the default (Saudi Arabia).

Parsing uses ``phonenumbers``, the Python port of Google's libphonenumber, whose
metadata decides which ranges are valid: a Saudi mobile number is 9 digits starting
with 5, and the 052 range is not valid.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat, PhoneNumberType

from .digits import ascii_digits, strip_format_marks
from .result import TransformContext, Transformed

__all__ = ["PhoneKind", "PhoneResult", "normalise_phone", "phone_e164_sa"]

PhoneKind = Literal["mobile", "landline", "toll_free", "other"]

# Digits, one leading "+" and the separators people type between digit groups.
# Anything else, letters above all, makes the number invalid: phonenumbers would
# otherwise read letters as a keypad vanity number.
_ALLOWED_PHONE_TEXT = re.compile(r"\+?[0-9 \-.()/\u00a0]+")

_KINDS: dict[int, PhoneKind] = {
    PhoneNumberType.MOBILE: "mobile",
    # The metadata of some regions cannot tell the two apart. Such a number counts
    # as a mobile, so that it is not silently excluded from messaging.
    PhoneNumberType.FIXED_LINE_OR_MOBILE: "mobile",
    PhoneNumberType.FIXED_LINE: "landline",
    PhoneNumberType.TOLL_FREE: "toll_free",
}


@dataclass(frozen=True)
class PhoneResult:
    """A phone number after parsing.

    Attributes:
        e164: The number in E.164 form, such as "+966501234567", or None when invalid.
        kind: "mobile", "landline", "toll_free" or "other" (for example a 9200
            unified number); None when invalid.
        messageable: Whether SMS and WhatsApp can reach the number (mobiles only).
        flags: Flags in the ``Transformed`` sense, such as "landline" or "invalid_phone".
    """

    e164: str | None
    kind: PhoneKind | None
    messageable: bool
    flags: tuple[str, ...]


_INVALID = PhoneResult(e164=None, kind=None, messageable=False,
                       flags=("invalid_phone", "kept_raw"))

# Parsed numbers kept per process. A field map often reads one number into two
# fields (phone and phone_e164), and a customer's next order repeats it. The result
# depends only on the text, the region and phonenumbers' metadata, and PhoneResult
# is frozen, so a cached result is the same as a fresh one.
PHONE_CACHE_SIZE = 4096


@lru_cache(maxsize=PHONE_CACHE_SIZE)
def normalise_phone(text: str, region: str = "SA") -> PhoneResult:
    """Parse ``text`` as a phone number and classify it.

    Accepts local forms ("0501234567", "501234567"), international forms ("+966…",
    "00966…", "966…", "+966 0…" with a stray trunk 0), separators (spaces, dashes,
    dots, brackets), Arabic-Indic and Eastern Arabic-Indic digits and bidi marks.

    Args:
        text: The number as typed.
        region: ISO 3166 region used for numbers without a country code.

    Returns:
        The parsed number. A number that does not parse, contains letters or is not
        a valid number of its region has ``e164`` None and the flags
        "invalid_phone" and "kept_raw".
    """
    cleaned = ascii_digits(strip_format_marks(text)).strip()
    if not _ALLOWED_PHONE_TEXT.fullmatch(cleaned):
        return _INVALID
    try:
        number = phonenumbers.parse(cleaned, region)
    except NumberParseException:
        return _INVALID
    if not phonenumbers.is_valid_number(number):
        return _INVALID

    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    kind = _KINDS.get(phonenumbers.number_type(number), "other")
    if kind == "mobile":
        return PhoneResult(e164=e164, kind=kind, messageable=True, flags=())
    kind_flags = (kind,) if kind in ("landline", "toll_free") else ()
    return PhoneResult(e164=e164, kind=kind, messageable=False,
                       flags=("not_messageable", *kind_flags))


def phone_e164_sa(value: Any, context: TransformContext) -> Transformed:
    """Transform ``phone_e164_sa``: write the number in E.164, parsed with the context's region.

    Args:
        value: The phone number as sent: text, or a number when a platform sends digits.
        context: The transform context; ``context.region`` is the default region.

    Returns:
        The E.164 text as the value. Landlines and toll-free numbers keep their
        value and get "not_messageable" plus "landline" or "toll_free". Invalid
        input gets value None with "invalid_phone" and "kept_raw". Empty input
        gets value None with "missing".
    """
    if value is None:
        return Transformed(value=None, raw=value, flags=("missing",))
    if isinstance(value, int) and not isinstance(value, bool):
        # A number typed into a numeric field loses its leading 0; the national
        # significant number still parses with the default region.
        text = str(value)
    elif isinstance(value, str):
        text = value
    else:
        return Transformed(value=None, raw=value, flags=_INVALID.flags)

    if not strip_format_marks(text).strip():
        return Transformed(value=None, raw=value, flags=("missing",))
    result = normalise_phone(text, context.region)
    return Transformed(value=result.e164, raw=value, flags=result.flags)
