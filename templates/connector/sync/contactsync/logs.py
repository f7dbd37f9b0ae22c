"""JSON-lines logs with personal data masked.

Every line is one JSON object with ``ts`` (UTC, ISO 8601), ``level`` and ``event``.
Names are never logged. Emails and phone numbers are logged only through
``mask_email`` and ``mask_phone``, and ``scrub`` masks any that a CRM error message
repeats back, so a log file can be shared with the client's support team.
"""

from __future__ import annotations

import json
import re
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

_EMAIL = re.compile(r"[^\s@\"'<>(),;:]+@[^\s@\"'<>(),;:]+\.[A-Za-z]{2,}")
# Seven or more digits, optionally with a leading + and spaces or dashes between them.
_PHONE = re.compile(r"\+?\d(?:[\s-]?\d){6,}")


def mask_email(value: str) -> str:
    """Keep the first character and the top-level domain: ``s***@***.sa``."""
    local, _, domain = value.partition("@")
    top_level = domain.rsplit(".", 1)[-1] if "." in domain else ""
    return f"{local[:1]}***@***.{top_level}" if top_level else f"{local[:1]}***@***"


def mask_phone(value: str) -> str:
    """Keep the country code of an E.164 number and its last two digits: ``+966*******67``."""
    digits = re.sub(r"\D", "", value)
    if len(digits) <= 4:
        return "*" * len(digits)
    head = "+" + digits[:3] if value.strip().startswith("+") else ""
    hidden = len(digits) - (3 if head else 0) - 2
    return f"{head}{'*' * hidden}{digits[-2:]}"


def scrub(text: str) -> str:
    """Mask every email address and phone number inside a free text, such as a CRM message."""
    text = _EMAIL.sub(lambda match: mask_email(match.group(0)), text)
    return _PHONE.sub(lambda match: mask_phone(match.group(0)), text)


class JsonLog:
    """Writes one JSON object per line to a text stream (standard error by default)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.counts: dict[str, int] = {}

    def write(self, level: str, event: str, **fields: Any) -> None:
        """Write one line; ``fields`` must already be free of raw personal data."""
        self.counts[level] = self.counts.get(level, 0) + 1
        line = {"ts": datetime.now(UTC).isoformat(timespec="seconds"), "level": level,
                "event": event, **fields}
        self.stream.write(json.dumps(line, ensure_ascii=False, default=str) + "\n")
        self.stream.flush()

    def info(self, event: str, **fields: Any) -> None:
        """Write an ``info`` line."""
        self.write("info", event, **fields)

    def warning(self, event: str, **fields: Any) -> None:
        """Write a ``warning`` line."""
        self.write("warning", event, **fields)

    def error(self, event: str, **fields: Any) -> None:
        """Write an ``error`` line."""
        self.write("error", event, **fields)
