"""Email addresses: trimmed, syntax-checked and lower-cased.

The module is not named ``email`` so that it cannot shadow the standard library
package of that name.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from email_validator import EmailNotValidError, validate_email

from .digits import strip_format_marks
from .result import TransformContext, Transformed

__all__ = ["email_lower", "normalise_email"]

# Checked addresses kept per process, because a customer's next order repeats the
# address. The result depends only on the text (no DNS lookup), so a cached result
# is the same as a fresh check.
EMAIL_CACHE_SIZE = 4096


@lru_cache(maxsize=EMAIL_CACHE_SIZE)
def normalise_email(text: str) -> str | None:
    """Check the syntax of ``text`` and return the address in lower case.

    The whole address is lower-cased, the local part too. RFC 5321 lets a mail
    server treat the local part as case-sensitive, but stores and CRMs match
    addresses case-insensitively, and one spelling per customer keeps the identity
    match on email stable.

    The check never touches the network: deliverability (DNS) checks are off.

    Args:
        text: The address as typed, with surrounding spaces or bidi marks allowed.

    Returns:
        The lower-cased address, or None when it is empty or not a valid address.
    """
    candidate = strip_format_marks(text).strip()
    if not candidate:
        return None
    try:
        checked = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError:
        return None
    # The local part is lower-cased too: RFC 5321 allows it to be case-sensitive, but
    # mail systems treat it case-insensitively in practice, and identity matching on
    # email needs one spelling per customer.
    return str(checked.normalized).lower()


def email_lower(value: Any, context: TransformContext) -> Transformed:
    """Transform ``email_lower``: write the trimmed, lower-cased address.

    Args:
        value: The address as sent.
        context: The transform context (unused; every transform takes one).

    Returns:
        The address as the value. Empty input gets value None with "missing", so
        a phone-only customer maps without any email property. An invalid address
        gets value None with "invalid_email" and "kept_raw".
    """
    if value is None or (isinstance(value, str) and not strip_format_marks(value).strip()):
        return Transformed(value=None, raw=value, flags=("missing",))
    if not isinstance(value, str):
        return Transformed(value=None, raw=value, flags=("invalid_email", "kept_raw"))

    address = normalise_email(value)
    if address is None:
        return Transformed(value=None, raw=value, flags=("invalid_email", "kept_raw"))
    return Transformed(value=address, raw=value)
