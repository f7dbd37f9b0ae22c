"""JSON-lines logging, masking helpers and secret redaction."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from storesync import logs


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    output = io.StringIO()
    handler = logs.configure_logging("DEBUG", output)
    yield output
    logging.getLogger().removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_mask_email() -> None:
    assert logs.mask_email("sara@example.com") == "s***@e***.com"
    assert logs.mask_email("") == ""
    assert logs.mask_email("no-at-sign") == "n***"


def test_mask_phone() -> None:
    assert logs.mask_phone("+966501234567") == "+9665*****567"
    assert logs.mask_phone("0501") == "****"
    assert logs.mask_phone(None) == ""


def test_mask_name() -> None:
    assert logs.mask_name("سارة العتيبي") == "س*** ا***"  # noqa: RUF001 - Arabic on purpose
    assert logs.mask_name("Test Customer") == "T*** C***"


def test_json_line_fields(stream: io.StringIO) -> None:
    logging.getLogger("storesync.test").info(
        "job done", extra={"status": "ok", "delivery_id": "evt-1", "duration_ms": 4.2})
    line = lines(stream)[-1]
    assert list(line)[:7] == ["time", "level", "logger", "message", "delivery_id",
                              "duration_ms", "status"]
    assert line["level"] == "INFO"
    assert line["logger"] == "storesync.test"
    assert line["message"] == "job done"
    assert str(line["time"]).endswith("Z")


def test_secret_keys_redacted(stream: io.StringIO) -> None:
    logging.getLogger("storesync.test").warning(
        "call failed", extra={"authorization": "Bearer test-token-not-real",
                              "headers": {"X-Api-Key": "k-not-real", "Accept": "json"}})
    line = lines(stream)[-1]
    assert line["authorization"] == "[redacted]"
    assert line["headers"] == {"X-Api-Key": "[redacted]", "Accept": "json"}


def test_registered_secret_scrubbed(stream: io.StringIO) -> None:
    logs.register_secret("test-registered-secret-not-real")
    logging.getLogger("storesync.test").error("bad key %s", "test-registered-secret-not-real")
    assert "test-registered-secret-not-real" not in stream.getvalue()
    assert lines(stream)[-1]["message"] == "bad key [redacted]"


def test_exception_is_one_line(stream: io.StringIO) -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("storesync.test").exception("failed")
    assert len(stream.getvalue().splitlines()) == 1
    assert "ValueError: boom" in str(lines(stream)[-1]["error"])
