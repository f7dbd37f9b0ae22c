"""HubSpot's error bodies, and the exception that carries one to the HTTP layer.

Standard error body: ``status: "error"``, ``message``, ``correlationId`` and
``category`` (VALIDATION_ERROR, CONFLICT, OBJECT_NOT_FOUND, INVALID_AUTHENTICATION,
...), with ``context`` and ``errors`` where HubSpot adds them. Rate-limit errors
use ``errorType: RATE_LIMIT`` and ``policyName`` in place of ``category``.
"""

from __future__ import annotations

import json
import uuid
from typing import Any


def correlation_id() -> str:
    """Return a new correlation id, a UUID as HubSpot sends them."""
    return str(uuid.uuid4())


class HubSpotError(Exception):
    """A HubSpot error response: the HTTP status and the JSON body."""

    def __init__(self, status: int, body: dict[str, Any],
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(body.get("message", ""))
        self.status = status
        self.body = body
        self.headers = headers or {}


def error_body(message: str, category: str, **extra: Any) -> dict[str, Any]:
    """Return a standard error body with a new correlation id."""
    body: dict[str, Any] = {
        "status": "error",
        "message": message,
        "correlationId": correlation_id(),
        "category": category,
    }
    body.update(extra)
    return body


def validation_error(message: str, **extra: Any) -> HubSpotError:
    """Return a 400 VALIDATION_ERROR."""
    return HubSpotError(400, error_body(message, "VALIDATION_ERROR", **extra))


def not_found(message: str = "resource not found") -> HubSpotError:
    """Return a 404 OBJECT_NOT_FOUND."""
    return HubSpotError(404, error_body(message, "OBJECT_NOT_FOUND"))


def conflict(message: str, category: str = "CONFLICT") -> HubSpotError:
    """Return a 409 conflict error."""
    return HubSpotError(409, error_body(message, category))


def existing_record_conflict(object_label: str, existing_id: str) -> HubSpotError:
    """Return the 409 HubSpot sends when a unique value already belongs to a record.

    Clients read the existing id from the message, so its wording matters:
    "Contact already exists. Existing ID: 123".
    """
    # NOTE: the wording is confirmed for contacts (email); for other objects the same
    # pattern with the object's label is assumed.
    return conflict(f"{object_label} already exists. Existing ID: {existing_id}")


def property_problem(name: str, error: str, message: str) -> dict[str, Any]:
    """Return one entry of a "Property values were not valid" error."""
    return {
        "isValid": False,
        "message": message,
        "error": error,
        "name": name,
        "localizedErrorMessage": message,
    }


def property_values_error(problems: list[dict[str, Any]]) -> HubSpotError:
    """Return the 400 HubSpot sends when property names or values are invalid.

    HubSpot serialises the list of problems as JSON inside the message.
    """
    message = "Property values were not valid: " + json.dumps(problems, separators=(",", ":"))
    return validation_error(message)


def batch_error(body: dict[str, Any], input_ids: list[str]) -> dict[str, Any]:
    """Return one entry of the ``errors`` list of a 207 Multi-Status batch response."""
    return {
        "status": "error",
        "category": body.get("category", "VALIDATION_ERROR"),
        "message": body.get("message", ""),
        "context": {"ids": input_ids},
        "errors": [],
    }


def unauthorized(missing: bool) -> HubSpotError:
    """Return the 401 for a missing or unknown bearer token."""
    if missing:
        message = ("Authentication credentials not found. This API supports OAuth 2.0 "
                   "authentication and you can find more details at "
                   "https://developers.hubspot.com/docs/methods/auth/oauth-overview")
    else:
        # NOTE: the message for a token HubSpot does not know was not confirmed; the
        # category and the body's keys are.
        message = "Authentication credentials are not valid. Check the access token."
    return HubSpotError(401, error_body(message, "INVALID_AUTHENTICATION"))


RATE_LIMIT_MESSAGES = {
    "TEN_SECONDLY_ROLLING": "You have reached your ten_secondly_rolling limit.",
    "SECONDLY": "You have reached your secondly limit.",
    "DAILY": "You have reached your daily limit.",
}


def rate_limited(policy: str, token_group: str, headers: dict[str, str]) -> HubSpotError:
    """Return the 429 for the rate-limit policy ``policy``."""
    body = {
        "status": "error",
        "message": RATE_LIMIT_MESSAGES[policy],
        "errorType": "RATE_LIMIT",
        "correlationId": correlation_id(),
        "policyName": policy,
        "groupName": token_group,
    }
    return HubSpotError(429, body, headers)
