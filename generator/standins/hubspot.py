"""A local HubSpot CRM stand-in: a Starlette app with HubSpot's shapes, limits and errors.

It serves the endpoints Rabt and the generated services call: CRM objects v3
(single, batch and search), associations v4, properties and groups, pipelines,
lists v3, custom behavioral events, subscription statuses (communication preferences v4)
and GDPR delete of contacts, each behind a bearer token and HubSpot's
rate limits. Inspection and fault injection live under ``/_standin/`` and are not
part of HubSpot:

- ``GET /_standin/health``
- ``GET /_standin/records/{objectType}``: every record with properties and associations
- ``GET /_standin/calls``: call counts per method, path template and status, and the total
- ``GET /_standin/events``: the custom event occurrences received
- ``POST /_standin/faults``: ``{"status": 503, "count": 2}`` or ``{"status": 503,
  "seconds": 5}``, optional ``"path_prefix"``
- ``POST /_standin/reset``: back to the seeded (or, with ``{"seed": false}``, empty) account

Run it with ``python -m generator.standins.hubspot --port 8091 [--seed desired-state.yaml]``
(``python -m storesync.standins.hubspot`` in generated services).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .entry import exit_missing_package, module_command

try:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route
except ModuleNotFoundError as missing:  # started from a plain install, without [test]
    if __name__ != "__main__":
        raise
    exit_missing_package(missing, "HubSpot")

from . import hubspot_admin as admin
from . import hubspot_associations as associations
from . import hubspot_objects as objects
from . import hubspot_privacy as privacy
from .hubspot_config import OBJECT_TYPE_IDS, HubSpotStandinConfig
from .hubspot_errors import HubSpotError, error_body
from .hubspot_http import Handler, endpoint, object_name
from .hubspot_seed import seed_state
from .hubspot_state import StandinState

__all__ = [
    "HubSpotStandinConfig",
    "StandinState",
    "create_app",
    "create_seeded_app",
    "main",
    "seed_from_desired_state",
]

_OBJECT = "/crm/v3/objects/{object_type}"
_PROPERTIES = "/crm/v3/properties/{object_type}"
_PIPELINES = "/crm/v3/pipelines/{object_type}"
_ASSOCIATIONS = "/crm/v4/associations/{from_type}/{to_type}"
_PREFERENCES = "/communication-preferences/v4/statuses"

# (path template, methods, handler); more specific paths come first, because
# Starlette takes the first route whose path and method match.
_API_ROUTES: list[tuple[str, str, Handler]] = [
    ("/crm/v3/objects/contacts/gdpr-delete", "POST", privacy.gdpr_delete),
    (f"{_PREFERENCES}/batch/read", "POST", privacy.batch_read),
    (f"{_PREFERENCES}/{{subscriber}}/unsubscribe-all", "POST", privacy.unsubscribe_all),
    (f"{_PREFERENCES}/{{subscriber}}", "POST", privacy.set_status),
    (f"{_OBJECT}/batch/upsert", "POST", objects.batch_upsert),
    (f"{_OBJECT}/batch/create", "POST", objects.batch_create),
    (f"{_OBJECT}/batch/update", "POST", objects.batch_update),
    (f"{_OBJECT}/batch/read", "POST", objects.batch_read),
    (f"{_OBJECT}/search", "POST", objects.search),
    (_OBJECT, "POST", objects.create_record),
    (f"{_OBJECT}/{{record_id}}", "GET", objects.get_record),
    (f"{_OBJECT}/{{record_id}}", "PATCH", objects.update_record),
    (f"{_ASSOCIATIONS}/batch/create", "POST", associations.batch_create),
    (f"{_ASSOCIATIONS}/batch/associate/default", "POST", associations.batch_default),
    (f"{_ASSOCIATIONS}/batch/read", "POST", associations.batch_read),
    ("/crm/v4/objects/{from_type}/{from_id}/associations/default/{to_type}/{to_id}", "PUT",
     associations.put_default),
    (f"{_PROPERTIES}/groups", "GET", admin.list_groups),
    (f"{_PROPERTIES}/groups", "POST", admin.create_group),
    (f"{_PROPERTIES}/groups/{{name}}", "PATCH", admin.update_group),
    (_PROPERTIES, "GET", admin.list_properties),
    (_PROPERTIES, "POST", admin.create_property),
    (f"{_PROPERTIES}/{{name}}", "GET", admin.get_property),
    (f"{_PROPERTIES}/{{name}}", "PATCH", admin.update_property),
    (f"{_PROPERTIES}/{{name}}", "DELETE", admin.delete_property),
    (_PIPELINES, "GET", admin.list_pipelines),
    (_PIPELINES, "POST", admin.create_pipeline),
    (f"{_PIPELINES}/{{pipeline_id}}", "GET", admin.get_pipeline),
    (f"{_PIPELINES}/{{pipeline_id}}", "PATCH", admin.update_pipeline),
    (f"{_PIPELINES}/{{pipeline_id}}/stages", "GET", admin.list_stages),
    (f"{_PIPELINES}/{{pipeline_id}}/stages", "POST", admin.create_stage),
    (f"{_PIPELINES}/{{pipeline_id}}/stages/{{stage_id}}", "PATCH", admin.update_stage),
    ("/crm/v3/lists/search", "POST", admin.search_lists),
    ("/crm/v3/lists/object-type-id/{object_type_id}/name/{list_name}", "GET",
     admin.get_list_by_name),
    ("/crm/v3/lists", "POST", admin.create_list),
    ("/crm/v3/lists/{list_id}/update-list-name", "PUT", admin.rename_list),
    ("/crm/v3/lists/{list_id}/update-list-filters", "PUT", admin.update_list_filters),
    ("/crm/v3/lists/{list_id}", "GET", admin.get_list),
    ("/crm/v3/lists/{list_id}", "DELETE", admin.delete_list),
    ("/account-info/v3/details", "GET", admin.account_details),
    ("/events/v3/event-definitions", "GET", admin.list_event_definitions),
    ("/events/v3/event-definitions", "POST", admin.create_event_definition),
    ("/events/v3/send", "POST", admin.send_event),
]


def create_app(config: HubSpotStandinConfig | None = None) -> Starlette:
    """Build a stand-in app with an empty account.

    Args:
        config: Limits, tokens, clock and delays; the defaults match a Free account.

    Returns:
        The Starlette app. Its state object is ``app.state.hubspot`` (a ``StandinState``).
    """
    state = StandinState(config or HubSpotStandinConfig())
    routes = [
        Route(path, endpoint(state, path, handler, is_search=path.endswith("/search")
                             and path.startswith("/crm/v3/objects")), methods=[method])
        for path, method, handler in _API_ROUTES
    ]
    routes += _inspection_routes(state)
    app = Starlette(routes=routes, exception_handlers={404: _not_found, 405: _not_allowed})
    app.state.hubspot = state
    app.state.hubspot_seed = None
    return app


def seed_from_desired_state(app_or_state: Starlette | StandinState,
                            desired_state: Mapping[str, Any]) -> dict[str, Any]:
    """Create the property groups, properties and pipelines of a project's desired state.

    Unique properties (``hasUniqueValue: true``) are then enforced as in an account
    that ``rabt crm apply`` has set up. Items that already exist are left as they are.

    Args:
        app_or_state: An app from ``create_app`` or its ``StandinState``.
        desired_state: The parsed ``crm/desired-state.yaml`` of a HubSpot project.

    Returns:
        The pipeline and stage ids, as ``{"pipelines": {label: {"id", "stages": {key: id}}}}``.

    Raises:
        ValueError: The desired state is not for HubSpot or has an invalid item.
    """
    if isinstance(app_or_state, StandinState):
        return seed_state(app_or_state, desired_state)
    ids = seed_state(app_or_state.state.hubspot, desired_state)
    app_or_state.state.hubspot_seed = desired_state
    return ids


def create_seeded_app(desired_state: Mapping[str, Any],
                      config: HubSpotStandinConfig | None = None) -> Starlette:
    """Build a stand-in app already seeded from ``desired_state``; reset returns to it."""
    app = create_app(config)
    seed_from_desired_state(app, desired_state)
    return app


def _inspection_routes(state: StandinState) -> list[Route]:
    def app_of(request: Request) -> Any:
        return request.app

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "service": "hubspot-standin"})

    async def records(request: Request) -> Response:
        try:
            obj = object_name(request.path_params["object_type"])
        except HubSpotError as error:
            return JSONResponse(error.body, status_code=error.status)
        with state.lock:
            items = [_inspect_record(record) for record in state.records.records[obj].values()]
        return JSONResponse({"object": obj, "total": len(items), "results": items})

    async def calls(request: Request) -> Response:
        with state.lock:
            return JSONResponse(state.calls.summary())

    async def events(request: Request) -> Response:
        with state.lock:
            return JSONResponse({"results": list(state.events.occurrences)})

    async def faults(request: Request) -> Response:
        try:
            body = json.loads(await request.body() or b"null")
            with state.lock:
                fault = state.faults.add(body)
        except json.JSONDecodeError as error:
            return JSONResponse(error_body(f"Invalid input JSON: {error}", "VALIDATION_ERROR"),
                                status_code=400)
        except HubSpotError as error:
            return JSONResponse(error.body, status_code=error.status)
        return JSONResponse({"status": fault.status, "count": fault.count,
                             "until": fault.until, "path_prefix": fault.path_prefix,
                             "missing_scopes": list(fault.missing_scopes)},
                            status_code=201)

    async def reset(request: Request) -> Response:
        try:
            options = json.loads(await request.body() or b"{}")
        except json.JSONDecodeError as error:
            return JSONResponse(error_body(f"Invalid input JSON: {error}", "VALIDATION_ERROR"),
                                status_code=400)
        keep_seed = not (isinstance(options, dict) and options.get("seed") is False)
        state.reset()
        seed = app_of(request).state.hubspot_seed
        if keep_seed and seed is not None:
            seed_state(state, seed)
        return JSONResponse({"status": "reset", "seeded": keep_seed and seed is not None})

    return [
        Route("/_standin/health", health, methods=["GET"]),
        Route("/_standin/records/{object_type}", records, methods=["GET"]),
        Route("/_standin/calls", calls, methods=["GET"]),
        Route("/_standin/events", events, methods=["GET"]),
        Route("/_standin/faults", faults, methods=["POST"]),
        Route("/_standin/reset", reset, methods=["POST"]),
    ]


def _inspect_record(record: Any) -> dict[str, Any]:
    return {
        "id": record.id,
        "properties": dict(record.properties),
        "createdAt": record.created_at,
        "updatedAt": record.updated_at,
        "associations": {
            to_obj: [{"id": to_id, "types": sorted(types)} for to_id, types in linked.items()]
            for to_obj, linked in record.associations.items()
        },
    }


async def _not_found(request: Request, exc: Exception) -> Response:
    return JSONResponse(error_body(f"No endpoint {request.method} {request.url.path}",
                                   "OBJECT_NOT_FOUND"), status_code=404)


async def _not_allowed(request: Request, exc: Exception) -> Response:
    return JSONResponse(error_body(f"Method {request.method} is not allowed on "
                                   f"{request.url.path}", "VALIDATION_ERROR"), status_code=405)


# Command line


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=module_command(__file__, __package__),
        description="Serve the local HubSpot stand-in (not HubSpot) on a loopback address.")

    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8091, help="TCP port (default 8091)")
    parser.add_argument("--seed", type=Path,
                        help="crm/desired-state.yaml (or .json) to create properties and "
                             "pipelines from")
    parser.add_argument("--rate-limit", type=int, default=100,
                        help="requests per token per rolling 10 s; 100 or 190 as HubSpot "
                             "tiers, 0 turns it off (default 100)")
    parser.add_argument("--search-rate", type=int, default=5,
                        help="search requests per token per second; 0 turns it off (default 5)")
    parser.add_argument("--token", action="append", default=None,
                        help="accepted bearer token; repeat for several (default: any token)")
    parser.add_argument("--indexing-delay", type=float, default=0.0,
                        help="seconds before writes show in search results (default 0)")
    parser.add_argument("--latency", type=float, default=0.0,
                        help="seconds added to every API call (default 0)")
    parser.add_argument("--retry-after", type=int, default=None,
                        help="send Retry-After with this many seconds on 429 responses")
    parser.add_argument("--allow-remote", action="store_true",
                        help="allow binding an address other than loopback")

    args = parser.parse_args(argv)
    if not args.allow_remote and not _is_loopback(args.host):
        parser.error(f"--host {args.host} is not a loopback address; the stand-in accepts any "
                     "token, so bind 127.0.0.1 or ::1, or pass --allow-remote on purpose")
    for name in ("rate_limit", "search_rate"):
        if getattr(args, name) < 0:
            parser.error(f"--{name.replace('_', '-')} must be 0 or more, got {getattr(args, name)}")
    return args


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _load_seed(path: Path) -> Any:
    """Read a desired-state file; YAML needs PyYAML, which generated services install."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        return json.loads(text)
    try:
        import yaml
    except ImportError as error:
        raise ValueError("reading YAML needs PyYAML; install it or pass a .json file") from error
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ValueError(f"invalid YAML: {error}") from error


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the stand-in under uvicorn until interrupted; return the exit code."""
    args = _parse_args(argv)
    config = HubSpotStandinConfig(
        rate_limit_per_10s=args.rate_limit,
        search_rate_per_second=args.search_rate,
        accepted_tokens=frozenset(args.token) if args.token else None,
        indexing_delay_seconds=args.indexing_delay,
        latency_seconds=args.latency,
        retry_after_seconds=args.retry_after,
    )
    app = create_app(config)
    if args.seed is not None:
        try:
            ids = seed_from_desired_state(app, _load_seed(args.seed))
        except (OSError, ValueError) as error:
            print(f"error: cannot seed from {args.seed}: {error}", file=sys.stderr)
            return 2
        print(json.dumps({"seeded_from": str(args.seed), **ids}, ensure_ascii=False))
    try:
        import uvicorn
    except ModuleNotFoundError as missing:
        exit_missing_package(missing, "HubSpot")

    print(f"HubSpot stand-in (not HubSpot) on http://{args.host}:{args.port}; objects: "
          + ", ".join(OBJECT_TYPE_IDS), file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
