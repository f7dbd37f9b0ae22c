"""A local stand-in for Zoho CRM and Zoho Accounts, served as a Starlette app.

It serves the calls Rabt and the generated services make, with Zoho's shapes,
limits and error bodies: the token endpoint (``POST /oauth/v2/token``), records
(insert, update, upsert, get, list by page or by ids, search, delete), notes on
records, metadata (modules, fields, custom field creation, layouts, Deals pipelines),
API credits and concurrency per edition. Paths under ``/_standin/`` are not Zoho's:
they inspect and steer the stand-in in tests.

Run it with ``python -m generator.standins.zoho --port 8787 [--seed desired-state.yaml]``
(``python -m storesync.standins.zoho`` in generated services). To see Rabt's
wrong-data-centre error, play one data centre and accept one token from another:
``--dc com --refresh-token my-test-token=sa``.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from .entry import exit_missing_package, module_command

try:
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route
except ModuleNotFoundError as missing:  # started from a plain install, without [test]
    if __name__ != "__main__":
        raise
    exit_missing_package(missing, "Zoho CRM")

from . import zoho_endpoints as endpoints
from . import zoho_notes as notes
from .zoho_app import CallSpec, Handler, crm_endpoint, fault_response, logged
from .zoho_config import DATA_CENTRES, EDITIONS, ZohoStandinConfig
from .zoho_records import error_item
from .zoho_seed import apply_desired_state
from .zoho_state import Fault, ZohoState

__all__ = ["ZohoStandinConfig", "ZohoState", "create_app", "main", "seed_from_desired_state"]

_Endpoint = Callable[[Request], Awaitable[Response]]


# -- Zoho Accounts ----------------------------------------------------------------


async def token_endpoint(request: Request) -> Response:
    """``POST /oauth/v2/token`` with ``grant_type=refresh_token``.

    Zoho Accounts returns failures with HTTP 200 and ``{"error": ...}``, so clients
    must read the body, not only the status.
    """
    state: ZohoState = request.app.state.zoho
    injected = state.take_fault(request.url.path)
    if injected is not None:
        return fault_response(injected)
    params = dict(request.query_params)
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        # Parsed by hand: Starlette's form parser needs python-multipart.
        raw = (await request.body()).decode("utf-8", errors="replace")
        params.update(dict(parse_qsl(raw)))
    problem = _token_problem(state.config, params)
    if problem is not None:
        return JSONResponse({"error": problem})
    token = state.issue_access_token(params["refresh_token"], params["client_id"])
    api_domain = state.config.api_domain or str(request.base_url).rstrip("/")
    return JSONResponse({"access_token": token, "scope": " ".join(state.config.scopes),
                         "api_domain": api_domain, "token_type": "Bearer",
                         "expires_in": state.config.access_token_seconds})


def _token_problem(config: ZohoStandinConfig, params: Mapping[str, str]) -> str | None:
    """Return Zoho's ``error`` value for a bad refresh request, or None."""
    # NOTE: the error for a grant type other than refresh_token was not confirmed.
    if params.get("grant_type") != "refresh_token":
        return "unsupported_grant_type"
    client_id, secret = params.get("client_id", ""), params.get("client_secret", "")
    if not client_id or not secret:
        return "invalid_client"
    if config.clients is not None and config.clients.get(client_id) != secret:
        return "invalid_client"
    refresh_token = params.get("refresh_token", "")
    if not refresh_token:
        return "invalid_code"
    if config.refresh_tokens is not None:
        issued_by = config.refresh_tokens.get(refresh_token)
        if issued_by is None:
            return "invalid_code"
        if issued_by != config.data_centre:
            return config.wrong_data_centre_error
    return None


# -- inspection (not Zoho) --------------------------------------------------------


def _state(request: Request) -> ZohoState:
    state: ZohoState = request.app.state.zoho
    return state


async def standin_records(request: Request) -> Response:
    """``GET /_standin/records/{module}``: every stored record of a module."""
    state = _state(request)
    module = str(request.path_params["module"])
    with state.lock:
        if module == notes.NOTES_MODULE:
            records = [dict(note) for note in state.notes.values()]
        elif module not in state.records:
            return JSONResponse({"error": f"unknown module {module}"}, status_code=404)
        else:
            records = [dict(record) for record in state.records[module].values()]
    return JSONResponse({"module": module, "records": records})


async def standin_calls(request: Request) -> Response:
    """``GET /_standin/calls``: counts per method, route and status."""
    state = _state(request)
    with state.lock:
        calls = [{"method": method, "path": path, "status": status, "count": count}
                 for (method, path, status), count in sorted(state.calls.items())]
    return JSONResponse({"total": sum(item["count"] for item in calls), "calls": calls})


async def standin_faults(request: Request) -> Response:
    """``POST /_standin/faults``: ``{"status": 503, "count": N}`` or ``"seconds": T``."""
    state = _state(request)
    try:
        body = json.loads(await request.body())
        status, count, seconds = int(body["status"]), body.get("count"), body.get("seconds")
    except (ValueError, KeyError, TypeError):
        return JSONResponse({"error": "send JSON with status and count or seconds"},
                            status_code=400)
    if (count is None) == (seconds is None) or not 400 <= status <= 599:
        return JSONResponse({"error": "give a status from 400 to 599 and exactly one of "
                                      "count or seconds"}, status_code=400)
    until = None if seconds is None else state.now() + float(seconds)
    prefix = str(body.get("path_prefix", "/"))
    state.add_fault(Fault(status, None if count is None else int(count), until, prefix))
    return JSONResponse({"status": status, "count": count, "until": until,
                         "path_prefix": prefix}, status_code=201)


async def standin_reset(request: Request) -> Response:
    """``POST /_standin/reset``: back to the seeded org (``{"seed": false}``: empty org)."""
    try:
        options = json.loads(await request.body() or b"{}")
    except json.JSONDecodeError:
        return JSONResponse({"error": "send JSON such as {\"seed\": false}, or no body"},
                            status_code=400)
    keep_seed = not (isinstance(options, dict) and options.get("seed") is False)
    seeded = _state(request).reset(seed=keep_seed)
    return JSONResponse({"status": "reset", "seeded": seeded})


async def standin_health(request: Request) -> Response:
    """``GET /_standin/health``."""
    state = _state(request)
    return JSONResponse({"status": "ok", "data_centre": state.config.data_centre,
                         "edition": state.config.edition})


async def standin_credits(request: Request) -> Response:
    """``GET /_standin/credits``: credits and concurrency in use."""
    state = _state(request)
    with state.lock:
        body = {"edition": state.config.edition, "credits_per_day": state.config.daily_credits(),
                "credits_used": state.credits_used(), "credits_remaining":
                state.credits_remaining(), "concurrency_limit": state.config.concurrency(),
                "in_flight": sum(state.in_flight.values())}
    return JSONResponse(body)


async def standin_tokens(request: Request) -> Response:
    """``GET /_standin/tokens``: refreshes so far and live access tokens."""
    state = _state(request)
    return JSONResponse({"refreshes": state.refresh_count,
                         "live_access_tokens": state.live_token_count()})


async def standin_expire_tokens(request: Request) -> Response:
    """``POST /_standin/tokens/expire``: expire every issued access token now."""
    return JSONResponse({"expired": _state(request).expire_access_tokens()})


# -- the app ----------------------------------------------------------------------


def _crm(path: str, spec: CallSpec, handler: Handler, method: str) -> Route:
    template = f"/crm/v8{path}"
    return Route(f"/crm/{{version}}{path}", logged(template, crm_endpoint(spec, handler)),
                 methods=[method])


def _routes() -> list[Route]:
    read, create = CallSpec("settings", "READ"), CallSpec("settings", "CREATE")
    update = CallSpec("settings", "UPDATE")
    delete = CallSpec("settings", "DELETE")
    inspection: list[tuple[str, _Endpoint, str]] = [
        ("/_standin/records/{module}", standin_records, "GET"),
        ("/_standin/calls", standin_calls, "GET"),
        ("/_standin/faults", standin_faults, "POST"),
        ("/_standin/reset", standin_reset, "POST"),
        ("/_standin/health", standin_health, "GET"),
        ("/_standin/credits", standin_credits, "GET"),
        ("/_standin/tokens", standin_tokens, "GET"),
        ("/_standin/tokens/expire", standin_expire_tokens, "POST"),
    ]
    return [
        Route("/oauth/v2/token", logged("/oauth/v2/token", token_endpoint), methods=["POST"]),
        *(Route(path, handler, methods=[method]) for path, handler, method in inspection),
        _crm("/org", CallSpec("org", "READ"), endpoints.org_details, "GET"),
        _crm("/settings/modules", CallSpec("settings", "READ"), endpoints.modules_list, "GET"),
        _crm("/settings/fields", read, endpoints.fields_list, "GET"),
        _crm("/settings/fields", create, endpoints.fields_create, "POST"),
        _crm("/settings/fields", update, endpoints.fields_update, "PATCH"),
        _crm("/settings/fields/{field_id}", read, endpoints.field_by_id, "GET"),
        _crm("/settings/fields/{field_id}", update, endpoints.fields_update, "PATCH"),
        _crm("/settings/fields/{field_id}", delete, endpoints.field_delete, "DELETE"),
        _crm("/settings/layouts", read, endpoints.layouts_list, "GET"),
        _crm("/settings/pipeline", read, endpoints.pipelines_list, "GET"),
        _crm("/settings/pipeline", create, endpoints.pipelines_create, "POST"),
        _crm("/{module}/upsert", CallSpec("modules", "CREATE"), endpoints.records_upsert,
             "POST"),
        _crm("/{module}/search", CallSpec("modules", "READ", search=True),
             endpoints.records_search, "GET"),
        _crm("/{module}/{record_id}/Notes", CallSpec("modules", "CREATE"),
             notes.notes_create_for_record, "POST"),
        _crm("/{module}", CallSpec("modules", "CREATE"), endpoints.records_insert, "POST"),
        _crm("/{module}", CallSpec("modules", "UPDATE"), endpoints.records_update, "PUT"),
        _crm("/{module}", CallSpec("modules", "READ"), endpoints.records_list, "GET"),
        _crm("/{module}", CallSpec("modules", "DELETE"), endpoints.records_delete, "DELETE"),
        _crm("/{module}/{record_id}", CallSpec("modules", "READ"), endpoints.record_get, "GET"),
        _crm("/{module}/{record_id}", CallSpec("modules", "UPDATE"), endpoints.record_update,
             "PUT"),
    ]


async def _not_found(request: Request, exc: Exception) -> Response:
    if isinstance(exc, HTTPException) and exc.status_code == 405:
        return JSONResponse(error_item("INVALID_REQUEST_METHOD", "The http request method "
                                       "type is not a valid one", {}), status_code=400)
    return JSONResponse(error_item("INVALID_URL_PATTERN", "Please check if the URL trying "
                                   "to access is a correct one", {}), status_code=404)


def create_app(config: ZohoStandinConfig | None = None, *,
               state: ZohoState | None = None) -> Starlette:
    """Build the stand-in app; ``app.state.zoho`` is its ``ZohoState``.

    Args:
        config: Settings; the defaults play an Enterprise org in the ``sa`` data centre.
        state: An existing state to serve, for example one seeded beforehand.
    """
    app = Starlette(routes=_routes(),
                    exception_handlers={404: _not_found, 405: _not_found})
    app.state.zoho = state or ZohoState(config)
    return app


def seed_from_desired_state(target: Starlette | ZohoState,
                            desired_state: Mapping[str, Any]) -> ZohoState:
    """Create the custom modules, fields, picklist values and pipeline of a Zoho project.

    The seed stays in force: ``POST /_standin/reset`` returns to the seeded org.

    Args:
        target: The app ``create_app`` returned, or its state.
        desired_state: A Zoho ``crm/desired-state.yaml``, loaded.

    Returns:
        The seeded state.

    Raises:
        ValueError: The desired state is not for Zoho or is malformed.
    """
    state: ZohoState = target.state.zoho if isinstance(target, Starlette) else target
    apply_desired_state(state, desired_state)
    state.after_reset = lambda fresh: apply_desired_state(fresh, desired_state)
    return state


def create_seeded_app(desired_state: Mapping[str, Any],
                      config: ZohoStandinConfig | None = None) -> Starlette:
    """Build the app and seed it from ``desired_state`` in one step."""
    app = create_app(config)
    seed_from_desired_state(app, desired_state)
    return app


# -- command line -----------------------------------------------------------------


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=module_command(__file__, __package__),
        description="Serve a local Zoho CRM stand-in (not Zoho; for tests and sandboxes).")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on "
                        "(default 127.0.0.1; other than loopback needs --allow-remote)")
    parser.add_argument("--port", type=int, default=8787, help="TCP port (default 8787)")
    parser.add_argument("--seed", type=Path, help="crm/desired-state.yaml (or .json) to "
                        "create custom fields, picklist values and the pipeline from")
    parser.add_argument("--dc", default="sa", choices=DATA_CENTRES,
                        help="data centre the stand-in plays (default sa)")
    parser.add_argument("--edition", default="enterprise", choices=sorted(EDITIONS),
                        help="edition whose credit and concurrency limits apply")
    parser.add_argument("--credits-per-day", type=int, help="override the daily API credits")
    parser.add_argument("--latency", type=float, default=0.0,
                        help="seconds added to every CRM call (default 0)")
    parser.add_argument("--refresh-token", dest="refresh_tokens", action="append",
                        type=_refresh_token_option, metavar="TOKEN[=DC]",
                        help="accept only this refresh token, as issued by data centre DC "
                        "(default: the --dc value); repeat for more tokens. A token issued "
                        "by another DC gets Zoho's wrong-data-centre error. Without this "
                        "option any non-empty refresh token is accepted")
    parser.add_argument("--allow-remote", action="store_true",
                        help="allow listening on an address other than loopback")
    return parser.parse_args(argv)


def _refresh_token_option(value: str) -> tuple[str, str | None]:
    """Split ``TOKEN`` or ``TOKEN=DC`` into the token and its data centre (None: --dc)."""
    token, _, data_centre = value.partition("=")
    if not token:
        raise argparse.ArgumentTypeError(f"{value!r} has no token before '='; "
                                         "write TOKEN or TOKEN=DC")
    if not data_centre:
        return token, None
    if data_centre not in DATA_CENTRES:
        raise argparse.ArgumentTypeError(f"{data_centre!r} is not a Zoho data centre; "
                                         f"use one of {', '.join(DATA_CENTRES)}")
    return token, data_centre


def _config(args: argparse.Namespace) -> ZohoStandinConfig:
    refresh_tokens = None
    if args.refresh_tokens:
        refresh_tokens = {token: data_centre or args.dc
                          for token, data_centre in args.refresh_tokens}
    return ZohoStandinConfig(data_centre=args.dc, edition=args.edition,
                             credits_per_day=args.credits_per_day,
                             latency_seconds=args.latency, refresh_tokens=refresh_tokens)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _load_seed(path: Path) -> Mapping[str, Any]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        loaded: Any = json.loads(text)
    else:
        import yaml  # generated services and Rabt both depend on PyYAML

        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as problem:
            raise ValueError(f"{path} is not valid YAML: {problem}") from problem
    if not isinstance(loaded, Mapping):
        raise ValueError(f"{path} does not hold a mapping")
    return loaded


def main(argv: Sequence[str] | None = None) -> int:
    """Run the stand-in under uvicorn; return the exit code (2 for invalid options)."""
    args = _parse_args(argv)
    if not _is_loopback(args.host) and not args.allow_remote:
        print(f"error: --host {args.host} is not a loopback address; the stand-in has no "
              "real security, so pass --allow-remote to listen there anyway", file=sys.stderr)
        return 2
    app = create_app(_config(args))
    if args.seed is not None:
        try:
            seed_from_desired_state(app, _load_seed(args.seed))
        except (OSError, ValueError, KeyError, TypeError) as problem:
            print(f"error: cannot seed from {args.seed}: {problem}", file=sys.stderr)
            return 2
    try:
        import uvicorn
    except ModuleNotFoundError as missing:
        exit_missing_package(missing, "Zoho CRM")

    print(f"Zoho CRM stand-in (data centre {args.dc}, {args.edition} edition) on "
          f"http://{args.host}:{args.port}; this is not Zoho", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
