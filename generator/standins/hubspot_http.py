"""The HTTP wrapper every HubSpot endpoint of the stand-in goes through.

For each call, in order: the configured latency, an injected fault, the bearer
token, the rate limits, the JSON body, then the handler under the state's lock.
The response carries the rate-limit headers, and the call is counted by its path
template and status for ``/_standin/calls``.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .hubspot_config import OBJECT_ALIASES, OBJECT_TYPE_IDS
from .hubspot_errors import HubSpotError, unauthorized, validation_error
from .hubspot_limits import injected_error
from .hubspot_state import StandinState

NO_CONTENT = 204
RATE_LIMITED = 429
LOGGER = logging.getLogger("standins.hubspot")


@dataclass
class Call:
    """The parts of one request that a handler reads."""

    path: dict[str, str]
    query: dict[str, list[str]]
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    def body_object(self) -> dict[str, Any]:
        """Return the JSON body as an object, or raise HubSpot's 400."""
        if not isinstance(self.body, dict):
            raise validation_error("Invalid input JSON: expected a JSON object")
        return self.body

    def query_value(self, name: str) -> str | None:
        """Return the last value of query parameter ``name``."""
        values = self.query.get(name)
        return values[-1] if values else None

    def query_list(self, name: str) -> list[str] | None:
        """Return a list parameter given repeated or comma-separated, or None when absent."""
        if name not in self.query:
            return None
        return [item for value in self.query[name] for item in value.split(",") if item]


Handler = Callable[[StandinState, Call], tuple[int, Any]]


def object_name(raw: str) -> str:
    """Return the object name for a path's object type (name, singular or type id)."""
    if raw in OBJECT_TYPE_IDS:
        return raw
    name = OBJECT_ALIASES.get(raw)
    if name is None:
        # NOTE: the wording of this error is assumed; HubSpot rejects unknown types with 400.
        raise validation_error(f"Unable to infer object type from: {raw}")
    return name


def endpoint(state: StandinState, template: str, handler: Handler,
             is_search: bool = False) -> Callable[[Request], Awaitable[Response]]:
    """Wrap ``handler`` as a Starlette endpoint for the path ``template``."""

    async def run(request: Request) -> Response:
        config = state.config
        if config.latency_seconds:
            await asyncio.sleep(config.latency_seconds)
        headers: dict[str, str] = {}
        try:
            with state.lock:
                fault = state.faults.take(request.url.path)
                if fault is not None:
                    limits = (state.limiter.rejected_headers(_token_or_blank(request), is_search)
                              if fault.status == RATE_LIMITED else {})
                    raise injected_error(fault, limits)
                token = _bearer_token(request, state)
                headers = state.limiter.admit(token, is_search)
            call = Call(dict(request.path_params), _query(request),
                        await _json_body(request), dict(request.headers))
            with state.lock:
                status, body = handler(state, call)
        except HubSpotError as error:
            status, body = error.status, error.body
            headers = {**headers, **error.headers}
        with state.lock:
            state.calls.add(request.method, template, status)
        if status >= 400:
            LOGGER.info("HubSpot stand-in returned %s for %s %s (correlationId %s)", status,
                        request.method, template, body.get("correlationId"))
        if status == NO_CONTENT:
            return Response(status_code=NO_CONTENT, headers=headers)
        return JSONResponse(body, status_code=status, headers=headers)

    return run


def _token_or_blank(request: Request) -> str:
    """Return the bearer token unchecked, because an injected fault comes before the check."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _bearer_token(request: Request, state: StandinState) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise unauthorized(missing=True)
    accepted = state.config.accepted_tokens
    if accepted is not None and token not in accepted:
        raise unauthorized(missing=False)
    return token


def _query(request: Request) -> dict[str, list[str]]:
    query: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        query.setdefault(key, []).append(value)
    return query


async def _json_body(request: Request) -> Any:
    if request.method in ("GET", "DELETE"):
        return None
    raw = await request.body()
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise validation_error(f"Invalid input JSON: {error}") from error
