"""JSON-lines logging, masking helpers for personal data, and a filter that redacts secrets.

Level policy: DEBUG for mechanics, INFO once per delivery and once per job, WARNING
for a retry or a degraded dependency, ERROR for a failure, always with the ids
involved. Log lines never carry a webhook body, and names, phones and emails from
store payloads go through the ``mask_*`` helpers first.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import time
from typing import Any, TextIO

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
# Uvicorn adds color_message, a copy of the message with terminal colour codes.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime",
                                                                     "taskName", "color_message"}
# Extra fields written in this order first, so lines line up when read side by side.
FIELD_ORDER = ("event_id", "delivery_id", "source", "topic", "resource", "duration_ms",
               "attempt", "status")
SECRET_KEY = re.compile(r"secret|token|authorization|password|api[_-]?key", re.IGNORECASE)
REDACTED = "[redacted]"

# Registered secrets, longest first so a secret containing another is replaced whole.
# Replaced as a whole tuple, so readers need no lock.
_registered_secrets: tuple[str, ...] = ()
_secrets_lock = threading.Lock()


def register_secret(value: str | bytes) -> None:
    """Add a secret value that the redacting filter removes from any log message.

    Values shorter than 6 characters are ignored: replacing them would blank out
    ordinary words.
    """
    global _registered_secrets
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    if len(text) < 6:
        return
    with _secrets_lock:
        if text not in _registered_secrets:
            _registered_secrets = tuple(sorted((*_registered_secrets, text), key=len,
                                               reverse=True))


def _scrub(text: str) -> str:
    for secret in _registered_secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def _redact_value(key: str, value: Any) -> Any:
    if SECRET_KEY.search(key):
        return REDACTED
    if isinstance(value, dict):
        return {inner: _redact_value(str(inner), item) for inner, item in value.items()}
    if isinstance(value, str):
        return _scrub(value)
    return value


class RedactSecretsFilter(logging.Filter):
    """Replace the value of any extra field named like a secret, and registered secret values.

    Field names matching ``secret``, ``token``, ``authorization``, ``password`` or
    ``api_key`` (any case) lose their value, inside nested dicts too. The message
    itself is formatted once and every registered secret in it is replaced.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        fields = vars(record)
        for key in fields.keys() - _RECORD_ATTRIBUTES:
            fields[key] = _redact_value(key, fields[key])
        message = record.getMessage()
        scrubbed = _scrub(message)
        if scrubbed != message or record.args:
            record.msg = scrubbed
            record.args = None
        return True


class JsonLinesFormatter(logging.Formatter):
    """Format each record as one JSON object: time, level, logger, message, then extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        seconds = time.gmtime(record.created)
        line: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", seconds) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = vars(record)
        extras = {key: fields[key] for key in fields.keys() - _RECORD_ATTRIBUTES}
        for key in FIELD_ORDER:
            if key in extras:
                line[key] = extras.pop(key)
        line.update(sorted(extras.items()))
        if record.exc_info:
            line["error"] = _scrub(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False, default=str)


def configure_logging(level: str = "INFO", stream: TextIO | None = None) -> logging.Handler:
    """Send every logger's records to ``stream`` (default stderr) as JSON lines.

    Replaces the root logger's handlers, so calling it twice does not double lines.
    Returns the handler, which tests may remove again.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonLinesFormatter())
    handler.addFilter(RedactSecretsFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Uvicorn's own loggers pass their records to the root handler.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    # httpx logs every request at INFO; the service logs its own line per job instead.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return handler


def mask_email(email: str | None) -> str:
    """Mask an email address: ``sara@example.com`` → ``s***@e***.com``."""
    if not email:
        return ""
    local, _, domain = email.strip().partition("@")
    if not domain:
        return _first_letter(local) + "***"
    name, dot, suffix = domain.rpartition(".")
    if not dot:
        return f"{_first_letter(local)}***@{_first_letter(domain)}***"
    return f"{_first_letter(local)}***@{_first_letter(name)}***.{suffix}"


def mask_phone(phone: str | None) -> str:
    """Mask a phone number, keeping its first 5 and last 3 characters: ``+9665*****567``."""
    if not phone:
        return ""
    text = phone.strip()
    if len(text) <= 8:
        return "*" * len(text)
    return text[:5] + "*" * (len(text) - 8) + text[-3:]


def mask_name(name: str | None) -> str:
    """Mask a person's name, keeping the first letter of each word: ``Sara Ali`` → ``S*** A***``."""
    if not name:
        return ""
    return " ".join(_first_letter(word) + "***" for word in name.split())


def _first_letter(text: str) -> str:
    return text[:1]

