"""The request pipeline every Zoho CRM call of the stand-in goes through.

Order: injected fault, ``Authorization: Zoho-oauthtoken`` check, OAuth scope, request
body, concurrency slot, API credits, latency, then the endpoint. Error bodies have
Zoho's shape: ``code``, ``details``, ``message``, ``status``.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .zoho_config import HEAVY_WRITE_RECORDS, MAX_RECORDS_PER_WRITE, RECORDS_PER_CREDIT
from .zoho_records import error_item
from .zoho_state import AccessToken, ZohoState

__all__ = ["Call", "CallSpec", "crm_endpoint", "fault_response", "json_response", "logged"]

_AUTH_SCHEME = "zoho-oauthtoken"
_FAULT_MESSAGES = {429: ("TOO_MANY_REQUESTS", "too many requests"),
                   500: ("INTERNAL_ERROR", "Internal Server Error")}


@dataclass
class Call:
    """Input of an endpoint: the org, the request, its parsed body and the access token."""

    state: ZohoState
    request: Request
    body: Any
    token: AccessToken


@dataclass(frozen=True)
class CallSpec:
    """Authorisation and charging rules of one endpoint.

    Attributes:
        family: ``modules`` for records, ``settings`` for metadata (the scope family).
        operation: ``READ``, ``CREATE``, ``UPDATE`` or ``DELETE`` (the scope operation).
        search: Whether the call is a search, which counts as a heavy call.
    """

    family: str
    operation: str
    search: bool = False


Handler = Callable[[Call], Awaitable[Response]]


def json_response(status: int, body: Any, state: ZohoState | None = None) -> Response:
    """Return ``body`` as JSON, with the credit header when the stand-in sends it."""
    response: Response = (Response(status_code=204) if status == 204
                          else JSONResponse(body, status_code=status))
    if state is not None and state.config.credit_headers:
        response.headers[state.config.credits_remaining_header] = str(
            state.credits_remaining())
    return response


def fault_response(status: int) -> Response:
    """Return the response of an injected fault, with a Zoho-shaped error body."""
    code, message = _FAULT_MESSAGES.get(status, ("INTERNAL_ERROR", "Internal Server Error"))
    if 400 <= status < 500 and status != 429:
        code, message = "INVALID_REQUEST", "injected failure"
    return JSONResponse(error_item(code, message), status_code=status)


def logged(template: str, endpoint: Callable[[Request], Awaitable[Response]]
           ) -> Callable[[Request], Awaitable[Response]]:
    """Wrap ``endpoint`` so each call is counted under ``template`` and its status."""
    async def run(request: Request) -> Response:
        response = await endpoint(request)
        state: ZohoState = request.app.state.zoho
        state.record_call(request.method, template, response.status_code)
        return response

    return run


def crm_endpoint(spec: CallSpec, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Wrap ``handler`` in the fault, auth, scope, concurrency and credit checks."""
    async def run(request: Request) -> Response:
        state: ZohoState = request.app.state.zoho
        injected = state.take_fault(request.url.path)
        if injected is not None:
            return fault_response(injected)
        token, rejection = _authorise(state, request, spec)
        if token is None:
            return rejection or json_response(401, _auth_failure())
        body, problem = await _read_body(request)
        if problem is not None:
            return json_response(400, problem, state)
        return await _run_counted(state, Call(state, request, body, token), spec, handler)

    return run


async def _run_counted(state: ZohoState, call: Call, spec: CallSpec,
                       handler: Handler) -> Response:
    heavy = spec.search or _record_count(call.body) > HEAVY_WRITE_RECORDS
    exceeded = state.enter_call(call.token.client_id, heavy)
    if exceeded is not None:
        # NOTE: Zoho documents 429 TOO_MANY_REQUESTS for both limits; the details
        # shown here are the stand-in's own.
        return json_response(429, error_item(
            "TOO_MANY_REQUESTS", "too many concurrent requests",
            {"limit": exceeded}), state)
    try:
        if not state.charge_credits(_cost(call.body)):
            return json_response(429, error_item(
                "TOO_MANY_REQUESTS", "API credits for the last 24 hours are used up",
                {"limit": "credits"}), state)
        if state.config.latency_seconds > 0:
            await asyncio.sleep(state.config.latency_seconds)
        return await handler(call)
    finally:
        state.leave_call(call.token.client_id, heavy)


def _record_count(body: Any) -> int:
    data = body.get("data") if isinstance(body, dict) else None
    return len(data) if isinstance(data, list) else 0


def _cost(body: Any) -> int:
    """Return a call's credits: 1, or 1 per 10 records written (at most 10)."""
    count = min(_record_count(body), MAX_RECORDS_PER_WRITE)
    return max(1, math.ceil(count / RECORDS_PER_CREDIT))


def _auth_failure() -> dict[str, Any]:
    return error_item("AUTHENTICATION_FAILURE", "Authentication failed")


def _authorise(state: ZohoState, request: Request,
               spec: CallSpec) -> tuple[AccessToken | None, Response | None]:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != _AUTH_SCHEME or not value.strip():
        return None, json_response(401, _auth_failure())
    token = state.find_access_token(value.strip())
    if token is None:
        return None, json_response(401, error_item("INVALID_TOKEN", "invalid oauth token"))
    sub = _scope_subject(request, spec)
    if not _scope_allows(token.scopes, spec.family, sub, spec.operation):
        return None, json_response(401, error_item("OAUTH_SCOPE_MISMATCH", "Unauthorized"))
    return token, None


def _scope_subject(request: Request, spec: CallSpec) -> str:
    if spec.family == "settings":
        parts = request.url.path.split("/")
        return parts[4] if len(parts) > 4 else ""
    module = str(request.path_params.get("module", ""))
    return module.lower().replace("_", "")


def _scope_allows(scopes: tuple[str, ...], family: str, subject: str, operation: str) -> bool:
    """Return whether ``scopes`` grant ``operation`` on ``subject`` (Zoho's scope names)."""
    allowed = {f"zohocrm.{family}.all", f"zohocrm.{family}.{subject}.all",
              f"zohocrm.{family}.{subject}.{operation.lower()}"}
    if not subject:  # a family without subjects, such as ZohoCRM.org.READ
        allowed.add(f"zohocrm.{family}.{operation.lower()}")
    if operation in ("CREATE", "UPDATE"):
        allowed.add(f"zohocrm.{family}.{subject}.write")
    return any(scope.lower() in allowed for scope in scopes)


async def _read_body(request: Request) -> tuple[Any, dict[str, Any] | None]:
    if request.method not in ("POST", "PUT", "PATCH"):
        return None, None
    raw = await request.body()
    try:
        return json.loads(raw), None
    except (UnicodeDecodeError, json.JSONDecodeError):
        # NOTE: Zoho's code for a body that is not JSON was not confirmed.
        return None, error_item("INVALID_DATA", "body is not valid JSON", {})
