"""A local stand-in for the WhatsApp Cloud API's send endpoint, served as a Starlette app.

``POST /{version}/{phone-number-id}/messages`` takes a JSON message with
``messaging_product: "whatsapp"``, ``to`` and ``type``, authenticated with a Bearer
token. It answers as the Cloud API does, with ``{"messaging_product", "contacts":
[{"input", "wa_id"}], "messages": [{"id"}]}`` on success and Meta's error body
``{"error": {"message", "type", "code", "error_data": {"messaging_product", "details"},
"fbtrace_id"}}`` otherwise:

- 401, code 190: a missing or wrong access token;
- 400, code 100: an unknown phone number id, or a body that is not a message;
- 400, code 131008: a required parameter is missing;
- 400, code 131047: a message that is not a template, to a number whose 24-hour
  customer-service window is closed (the stand-in opens it with ``/_standin/inbound``);
- 400, code 132001: no approved template with that name and language;
- 400, code 132015: the template is paused;
- 400, code 132000: the number of body parameters differs from the template's;
- code 130429: more messages than the configured throughput in the window.

NOTE: the HTTP status of the throughput error differs between secondary sources (400 or
429); ``WhatsAppStandinConfig.rate_limit_status`` sets it, 429 by default. That an
unapproved (pending or rejected) template gives 132001 is also an assumption.

Paths under ``/_standin/`` are not Meta's: ``GET /_standin/health``, ``GET
/_standin/messages`` (every accepted message), ``POST /_standin/inbound`` with
``{"from": "9665..."}`` (the customer wrote, so the window opens), ``POST
/_standin/reset``.

Run it with ``python -m generator.standins.whatsapp --port 8790``
(``python -m storesync.standins.whatsapp`` in generated services).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .entry import exit_missing_package

try:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route
except ModuleNotFoundError as missing:  # started from a plain install, without [test]
    if __name__ != "__main__":
        raise
    exit_missing_package(missing, "WhatsApp")

__all__ = ["Template", "WhatsAppStandinConfig", "WhatsAppState", "create_app", "main"]

SERVICE_WINDOW_SECONDS = 24 * 3600


@dataclass(frozen=True)
class Template:
    """A message template of the business account.

    Attributes:
        name: The template's name.
        language: Its language code, such as ``ar``.
        status: ``APPROVED``, ``PENDING``, ``REJECTED`` or ``PAUSED``.
        body_parameters: How many body parameters it takes.
    """

    name: str
    language: str
    status: str = "APPROVED"
    body_parameters: int = 0


@dataclass
class WhatsAppStandinConfig:
    """The stand-in's account: token, phone number id, templates and throughput."""

    access_token: str = "standin-whatsapp-token"
    phone_number_id: str = "100000000000001"
    templates: tuple[Template, ...] = ()
    # Messages accepted per rate_limit_window_seconds before code 130429.
    rate_limit: int = 80
    rate_limit_window_seconds: float = 1.0
    rate_limit_status: int = 429
    clock: Callable[[], float] = time.time


@dataclass
class WhatsAppState:
    """The accepted messages, the open customer-service windows and the recent send times."""

    config: WhatsAppStandinConfig
    messages: list[dict[str, Any]] = field(default_factory=list)
    inbound: dict[str, float] = field(default_factory=dict)
    recent: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _error(status: int, code: int, message: str, details: str,
           kind: str = "OAuthException") -> JSONResponse:
    body = {"error": {"message": message, "type": kind, "code": code,
                      "error_data": {"messaging_product": "whatsapp", "details": details},
                      "fbtrace_id": "standin-trace"}}
    return JSONResponse(body, status_code=status)


def _check_template(state: WhatsAppState, template: Any) -> JSONResponse | None:
    if not isinstance(template, dict) or not template.get("name") or \
            not isinstance(template.get("language"), dict):
        return _error(400, 131008, "(#131008) Required parameter is missing",
                      "template.name and template.language.code are required")
    name, language = template["name"], template["language"].get("code")
    found = next((item for item in state.config.templates
                  if item.name == name and item.language == language), None)
    if found is None or found.status in ("PENDING", "REJECTED"):
        return _error(400, 132001, "(#132001) Template name does not exist in the translation",
                      f"template name ({name}) does not exist in {language}")
    if found.status == "PAUSED":
        return _error(400, 132015, "(#132015) Template is Paused",
                      f"template {name} is paused because of low quality")
    given = sum(len(component.get("parameters") or [])
                for component in template.get("components") or []
                if isinstance(component, dict) and component.get("type") == "body")
    if given != found.body_parameters:
        return _error(400, 132000, "(#132000) Number of parameters does not match the expected "
                      "number of params", f"body: number of localizable_params ({given}) does "
                      f"not match the expected number of params ({found.body_parameters})")
    return None


def _check_message(state: WhatsAppState, body: Any, now: float) -> JSONResponse | None:
    if not isinstance(body, dict):
        return _error(400, 100, "(#100) Invalid parameter", "the body must be a JSON object")
    missing = [name for name in ("messaging_product", "to", "type") if not body.get(name)]
    if missing:
        return _error(400, 131008, "(#131008) Required parameter is missing",
                      f"parameter {missing[0]} is required")
    if body["messaging_product"] != "whatsapp":
        return _error(400, 100, "(#100) Invalid parameter",
                      "messaging_product must be whatsapp")
    to = str(body["to"]).lstrip("+")
    if body["type"] == "template":
        return _check_template(state, body.get("template"))
    if now - state.inbound.get(to, float("-inf")) > SERVICE_WINDOW_SECONDS:
        return _error(400, 131047, "(#131047) Re-engagement message",
                      "Message failed to send because more than 24 hours have passed since the "
                      "customer last replied to this number.")
    return None


def _rate_limited(state: WhatsAppState, now: float) -> bool:
    window = state.config.rate_limit_window_seconds
    state.recent = [at for at in state.recent if now - at < window]
    if len(state.recent) >= state.config.rate_limit:
        return True
    state.recent.append(now)
    return False


def create_app(config: WhatsAppStandinConfig | None = None) -> Starlette:
    """Build a stand-in app; its state is ``app.state.whatsapp`` (a ``WhatsAppState``)."""
    state = WhatsAppState(config or WhatsAppStandinConfig())

    async def send(request: Request) -> JSONResponse:
        if request.headers.get("authorization") != f"Bearer {state.config.access_token}":
            return _error(401, 190, "Invalid OAuth access token - Cannot parse access token",
                          "the access token is missing or not valid")
        if request.path_params["phone_number_id"] != state.config.phone_number_id:
            return _error(400, 100, "Unsupported post request. Object with ID does not exist",
                          "unknown phone number id", kind="GraphMethodException")
        try:
            body = json.loads(await request.body())
        except ValueError:
            return _error(400, 100, "(#100) Invalid parameter", "the body is not JSON")
        now = state.config.clock()
        with state.lock:
            problem = _check_message(state, body, now)
            if problem is not None:
                return problem
            if _rate_limited(state, now):
                return _error(state.config.rate_limit_status, 130429, "(#130429) Rate limit hit",
                              "Cloud API message throughput has been reached.")
            number = len(state.messages) + 1
            state.messages.append({**body, "id": f"wamid.standin{number}", "accepted_at": now})
        to = str(body["to"]).lstrip("+")
        return JSONResponse({"messaging_product": "whatsapp",
                             "contacts": [{"input": body["to"], "wa_id": to}],
                             "messages": [{"id": f"wamid.standin{number}"}]})

    async def messages(request: Request) -> JSONResponse:
        with state.lock:
            return JSONResponse(list(state.messages))

    async def inbound(request: Request) -> JSONResponse:
        body = json.loads(await request.body())
        with state.lock:
            state.inbound[str(body["from"]).lstrip("+")] = state.config.clock()
        return JSONResponse({"ok": True})

    async def reset(request: Request) -> JSONResponse:
        with state.lock:
            state.messages.clear()
            state.inbound.clear()
            state.recent.clear()
        return JSONResponse({"ok": True})

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True, "standin": "whatsapp"})

    app = Starlette(routes=[
        Route("/{version}/{phone_number_id}/messages", send, methods=["POST"]),
        Route("/_standin/health", health, methods=["GET"]),
        Route("/_standin/messages", messages, methods=["GET"]),
        Route("/_standin/inbound", inbound, methods=["POST"]),
        Route("/_standin/reset", reset, methods=["POST"]),
    ])
    app.state.whatsapp = state
    return app


def main(argv: Sequence[str] | None = None) -> int:
    """Run the stand-in under uvicorn on a loopback address; return the exit code."""
    parser = argparse.ArgumentParser(description="WhatsApp Cloud API stand-in (not Meta's API)")
    parser.add_argument("--host", default="127.0.0.1", choices=["127.0.0.1", "::1"])
    parser.add_argument("--port", type=int, default=8790)
    parser.add_argument("--template", action="append", default=[], metavar="NAME:LANG:PARAMS",
                        help="an approved template, e.g. cart_reminder:ar:2 (repeatable)")
    args = parser.parse_args(argv)
    templates = []
    for text in args.template:
        name, language, count = [*text.split(":"), "", "0"][:3]
        if not name or not language or not count.isdigit():
            print(f"error: --template {text!r} must be NAME:LANG:PARAMS", file=sys.stderr)
            return 2
        templates.append(Template(name, language, body_parameters=int(count)))
    app = create_app(WhatsAppStandinConfig(templates=tuple(templates)))
    try:
        import uvicorn
    except ModuleNotFoundError as missing:
        exit_missing_package(missing, "WhatsApp")
    print(f"WhatsApp Cloud API stand-in on http://{args.host}:{args.port}; this is not Meta's "
          "API", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
