"""A local stand-in for the Shopify Admin GraphQL API, served as a Starlette app.

``POST /admin/api/<version>/graphql.json`` serves the operations listed in
``shopify_graphql.OPERATIONS``: ``orders`` and ``customers`` with cursor paging and the
``updated_at``/``created_at`` search terms, ``webhookSubscriptions``,
``webhookSubscriptionCreate``, ``discountCodeBasicCreate``, and
``customerEmailMarketingConsentUpdate`` with its SMS twin. Requests authenticate
with the ``X-Shopify-Access-Token`` header. Every response carries ``extensions.cost``
with the bucket's ``throttleStatus``; a request the bucket cannot pay for gets the
``THROTTLED`` error.

Paths under ``/_standin/`` are not Shopify's; they inspect and steer the shop:

- ``GET /_standin/health``, ``GET /_standin/calls`` (counts per operation)
- ``POST /_standin/seed``: ``{"orders": [...], "customers": [...]}`` in GraphQL form,
  keeping their ``updatedAt``
- ``POST /_standin/orders`` and ``/_standin/customers``: create or change one now
- ``GET /_standin/customers``: every customer, with its marketing consent
- ``GET /_standin/subscriptions``, ``DELETE /_standin/subscriptions`` (all of them)
- ``GET /_standin/discounts``
- ``POST /_standin/throttle``: ``{"count": N}`` throttles the next N requests
- ``POST /_standin/reset``

Run it with ``python -m generator.standins.shopify --port 8789``
(``python -m storesync.standins.shopify`` in generated services).
"""

from __future__ import annotations

import argparse
import hmac
import ipaddress
import json
import sys
from collections.abc import Sequence
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
    exit_missing_package(missing, "Shopify")

from .shopify_graphql import GraphQLError, price, run_operation
from .shopify_state import ShopifyStandinConfig, ShopifyState

__all__ = ["ShopifyStandinConfig", "ShopifyState", "create_app", "main"]

# The body Shopify sends for a missing or wrong access token.
INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"


def _state(request: Request) -> ShopifyState:
    state: ShopifyState = request.app.state.shopify
    return state


def _cost(requested: float, actual: float | None, status: dict[str, float]) -> dict[str, Any]:
    return {"cost": {"requestedQueryCost": requested, "actualQueryCost": actual,
                     "throttleStatus": status}}


async def graphql(request: Request) -> Response:
    """``POST /admin/api/{version}/graphql.json``."""
    state = _state(request)
    if request.path_params["version"] not in state.config.api_versions:
        return JSONResponse({"errors": "Not Found"}, status_code=404)
    token = request.headers.get("x-shopify-access-token", "")
    if not hmac.compare_digest(token.encode(), state.config.access_token.encode()):
        state.record_call("unauthorized")
        return JSONResponse({"errors": INVALID_TOKEN}, status_code=401)
    try:
        body = json.loads(await request.body())
        query, variables = body["query"], body.get("variables") or {}
        if not isinstance(query, str) or not isinstance(variables, dict):
            raise TypeError
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError):
        return JSONResponse({"errors": [{"message": "Send a JSON object with query (a string) "
                                                    "and optional variables (an object)."}]},
                            status_code=400)
    return _respond(state, query, variables)


def _respond(state: ShopifyState, query: str, variables: dict[str, Any]) -> Response:
    try:
        requested = price(query, variables)
        with state.lock:
            allowed, status = state.charge(requested)
            if not allowed:
                state.record_call("throttled")
                return JSONResponse(
                    {"errors": [{"message": "Throttled", "extensions": {
                        "code": "THROTTLED",
                        "documentation": "https://shopify.dev/api/usage/rate-limits"}}],
                     "extensions": _cost(requested, None, status)},
                    status_code=state.config.throttled_status)
            data, actual = run_operation(state, query, variables)
            state.refund(requested - actual)
            status = state.bucket.status()
    except GraphQLError as error:
        return JSONResponse({"errors": [{"message": str(error),
                                         "extensions": {"code": error.code}}]})
    state.record_call(next(iter(data)))
    return JSONResponse({"data": data, "extensions": _cost(requested, actual, status)})


# -- inspection (not Shopify) -------------------------------------------------------


async def _json(request: Request) -> Any:
    try:
        return json.loads(await request.body() or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


async def standin_health(request: Request) -> Response:
    """``GET /_standin/health``."""
    state = _state(request)
    with state.lock:
        counts = {"orders": len(state.orders), "customers": len(state.customers),
                  "subscriptions": len(state.subscriptions)}
    return JSONResponse({"status": "ok", **counts})


async def standin_calls(request: Request) -> Response:
    """``GET /_standin/calls``: counts per operation."""
    state = _state(request)
    with state.lock:
        calls = dict(sorted(state.calls.items()))
    return JSONResponse({"total": sum(calls.values()), "calls": calls})


async def standin_seed(request: Request) -> Response:
    """``POST /_standin/seed``: store orders and customers with their own ``updatedAt``."""
    body = await _json(request)
    orders = body.get("orders", []) if isinstance(body, dict) else None
    customers = body.get("customers", []) if isinstance(body, dict) else None
    if not isinstance(orders, list) or not isinstance(customers, list) or \
            not all(isinstance(item, dict) for item in [*orders, *customers]):
        return JSONResponse({"error": "send JSON such as {\"orders\": [{...}], "
                                      "\"customers\": [{...}]} with objects in both lists"},
                            status_code=400)
    stored = _state(request).seed(orders, customers)
    return JSONResponse({"orders": stored[0], "customers": stored[1]}, status_code=201)


async def standin_put(request: Request) -> Response:
    """``POST /_standin/orders`` or ``/_standin/customers``: create or change one record now."""
    body = await _json(request)
    if not isinstance(body, dict):
        return JSONResponse({"error": "send one record as a JSON object"}, status_code=400)
    state = _state(request)
    kind = request.url.path.rsplit("/", 1)[-1]
    record = state.put_order(body) if kind == "orders" else state.put_customer(body)
    return JSONResponse(record, status_code=201)


async def standin_customers(request: Request) -> Response:
    """``GET /_standin/customers``: every customer in GraphQL form."""
    return JSONResponse({"customers": _state(request).all_customers()})


async def standin_subscriptions(request: Request) -> Response:
    """``GET`` lists the webhook subscriptions; ``DELETE`` removes all of them."""
    state = _state(request)
    with state.lock:
        if request.method == "DELETE":
            removed = len(state.subscriptions)
            state.subscriptions.clear()
            return JSONResponse({"removed": removed})
        return JSONResponse({"subscriptions": [dict(item) for _, item in
                                               sorted(state.subscriptions.items())]})


async def standin_discounts(request: Request) -> Response:
    """``GET /_standin/discounts``: every discount code created."""
    state = _state(request)
    with state.lock:
        return JSONResponse({"discounts": [dict(item) for _, item in
                                           sorted(state.discounts.items())]})


async def standin_throttle(request: Request) -> Response:
    """``POST /_standin/throttle``: ``{"count": N}`` throttles the next N requests."""
    body = await _json(request)
    count = body.get("count") if isinstance(body, dict) else None
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        return JSONResponse({"error": "send JSON such as {\"count\": 2}"}, status_code=400)
    state = _state(request)
    with state.lock:
        state.forced_throttles = count
    return JSONResponse({"count": count}, status_code=201)


async def standin_reset(request: Request) -> Response:
    """``POST /_standin/reset``: an empty shop with a full bucket."""
    _state(request).reset()
    return JSONResponse({"status": "reset"})


def create_app(config: ShopifyStandinConfig | None = None, *,
               state: ShopifyState | None = None) -> Starlette:
    """Build the stand-in app; ``app.state.shopify`` is its ``ShopifyState``.

    Args:
        config: Settings; the defaults play ``demo-store.myshopify.com`` with the
            placeholder token ``shpat_test_not_real``.
        state: An existing state to serve, for example one seeded beforehand.
    """
    routes = [
        Route("/admin/api/{version}/graphql.json", graphql, methods=["POST"]),
        Route("/_standin/health", standin_health, methods=["GET"]),
        Route("/_standin/calls", standin_calls, methods=["GET"]),
        Route("/_standin/seed", standin_seed, methods=["POST"]),
        Route("/_standin/orders", standin_put, methods=["POST"]),
        Route("/_standin/customers", standin_put, methods=["POST"]),
        Route("/_standin/customers", standin_customers, methods=["GET"]),
        Route("/_standin/subscriptions", standin_subscriptions, methods=["GET", "DELETE"]),
        Route("/_standin/discounts", standin_discounts, methods=["GET"]),
        Route("/_standin/throttle", standin_throttle, methods=["POST"]),
        Route("/_standin/reset", standin_reset, methods=["POST"]),
    ]
    app = Starlette(routes=routes)
    app.state.shopify = state or ShopifyState(config)
    return app


# -- command line -------------------------------------------------------------------


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def main(argv: Sequence[str] | None = None) -> int:
    """Run the stand-in under uvicorn; return the exit code (2 for invalid options)."""
    parser = argparse.ArgumentParser(
        prog=module_command(__file__, __package__),
        description="Serve a local Shopify Admin GraphQL API stand-in (not Shopify; for tests "
                    "and sandboxes).")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on "
                        "(default 127.0.0.1; other than loopback needs --allow-remote)")
    parser.add_argument("--port", type=int, default=8789, help="TCP port (default 8789)")
    parser.add_argument("--access-token", default=ShopifyStandinConfig.access_token,
                        help="Admin API access token the shop accepts "
                             "(default shpat_test_not_real)")
    parser.add_argument("--allow-remote", action="store_true",
                        help="allow listening on an address other than loopback")
    args = parser.parse_args(argv)
    if not _is_loopback(args.host) and not args.allow_remote:
        print(f"error: --host {args.host} is not a loopback address; the stand-in has no "
              "real security, so pass --allow-remote to listen there anyway", file=sys.stderr)
        return 2
    app = create_app(ShopifyStandinConfig(access_token=args.access_token))
    try:
        import uvicorn
    except ModuleNotFoundError as missing:
        exit_missing_package(missing, "Shopify")
    print(f"Shopify Admin GraphQL stand-in on http://{args.host}:{args.port}/admin/api/"
          "<version>/graphql.json; this is not Shopify", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
