"""A local stand-in for the WooCommerce REST API v3, served as a Starlette app.

It serves customers and orders with WooCommerce's shapes, paging, authentication and
error bodies (``{"code", "message", "data": {"status"}}``):

- ``GET /wp-json/wc/v3/customers`` and ``/orders`` with the parameters listed in
  ``woocommerce_query``, and the ``X-WP-Total``, ``X-WP-TotalPages`` and ``Link`` headers;
- ``GET``, ``PUT``, ``PATCH`` or ``POST`` on ``/customers/{id}`` and ``/orders/{id}``,
  and ``POST`` on the collections to create; a change sets ``date_modified`` to now;
- webhooks and coupons, as ``woocommerce_hooks`` lists.

Requests authenticate with the consumer key and secret as HTTP Basic credentials or
as the ``consumer_key`` and ``consumer_secret`` query parameters, which WooCommerce
accepts over HTTPS only (see ``WooStandinConfig.https``).

Paths under ``/_standin/`` are not WooCommerce's; they inspect and steer the store:

- ``GET /_standin/health``, ``GET /_standin/calls`` (counts per method, route, status)
- ``GET /_standin/customers`` and ``/_standin/orders``: every stored record
- ``POST /_standin/seed``: ``{"customers": [...], "orders": [...]}``, kept by reset
- ``POST /_standin/faults``: ``{"status": 503, "count": 2}`` or ``"seconds": 5``, with
  optional ``"path_prefix"`` and ``"retry_after"`` (seconds, sent as ``Retry-After``)
- ``POST /_standin/reset``: back to the seed (``{"seed": false}``: an empty store)

Run it with ``python -m generator.standins.woocommerce --port 8788 [--seed store.json]``
(``python -m storesync.standins.woocommerce`` in generated services).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hmac
import ipaddress
import json
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from .entry import exit_missing_package, module_command

try:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route
except ModuleNotFoundError as missing:  # started from a plain install, without [test]
    if __name__ != "__main__":
        raise
    exit_missing_package(missing, "WooCommerce")

from .woocommerce_hooks import (
    create_coupon,
    create_webhook,
    get_webhook,
    list_coupons,
    list_webhooks,
    update_webhook,
)
from .woocommerce_query import Page, QueryError, customer_page, order_page
from .woocommerce_state import Fault, WooStandinConfig, WooState

__all__ = ["WooStandinConfig", "WooState", "create_app", "main", "wc_error"]

API = "/wp-json/wc/v3"
_Endpoint = Callable[[Request], Awaitable[Response]]


def wc_error(code: str, message: str, status: int, **data: Any) -> JSONResponse:
    """Return a WordPress REST error response: ``code``, ``message`` and ``data.status``."""
    return JSONResponse({"code": code, "message": message, "data": {"status": status, **data}},
                        status_code=status)


def _state(request: Request) -> WooState:
    state: WooState = request.app.state.woocommerce
    return state


# -- authentication ---------------------------------------------------------------


def _credentials(request: Request) -> tuple[str, str] | None:
    """Read the key and secret from Basic auth, else from the query string."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        key, _, secret = decoded.partition(":")
        return key, secret
    query_key = request.query_params.get("consumer_key")
    query_secret = request.query_params.get("consumer_secret")
    if query_key is not None and query_secret is not None:
        return query_key, query_secret
    return None


def _auth_problem(request: Request, writes: bool, listing: bool) -> Response | None:
    config = _state(request).config
    credentials = _credentials(request) if config.https else None
    if credentials is None:
        text = "Sorry, you cannot list resources." if listing else \
            "Sorry, you cannot view this resource."
        return wc_error("woocommerce_rest_cannot_view", text, 401)
    key, secret = credentials
    if not hmac.compare_digest(key.encode(), config.consumer_key.encode()):
        return wc_error("woocommerce_rest_authentication_error", "Consumer key is invalid.", 401)
    if not hmac.compare_digest(secret.encode(), config.consumer_secret.encode()):
        return wc_error("woocommerce_rest_authentication_error", "Consumer secret is invalid.",
                        401)
    needed = "write" if writes else "read"
    if config.key_permissions not in (needed, "read_write"):
        return wc_error("woocommerce_rest_authentication_error",
                        f"The API key provided does not have {needed} permissions.", 401)
    return None


def _api(template: str, handler: _Endpoint, writes: bool = False,
         listing: bool = False) -> _Endpoint:
    """Wrap a store endpoint: injected faults first, then authentication, then counting."""

    async def run(request: Request) -> Response:
        state = _state(request)
        fault = state.take_fault(request.url.path)
        if fault is not None:
            response: Response = wc_error("standin_fault", "Injected fault from the stand-in.",
                                          fault.status)
            if fault.retry_after is not None:
                response.headers["Retry-After"] = str(fault.retry_after)
        else:
            response = _auth_problem(request, writes, listing) or await handler(request)
        state.record_call(request.method, template, response.status_code)
        return response

    return run


# -- store endpoints --------------------------------------------------------------


def _page_response(request: Request, page: Page) -> Response:
    response = JSONResponse(page.items)
    response.headers["X-WP-Total"] = str(page.total)
    response.headers["X-WP-TotalPages"] = str(page.total_pages)
    links = []
    base = f"{str(request.base_url).rstrip('/')}{request.url.path}"
    query = {key: value for key, value in request.query_params.items()
             if key not in ("consumer_key", "consumer_secret")}
    if page.page > 1:
        links.append(f'<{base}?{urlencode({**query, "page": page.page - 1})}>; rel="prev"')
    if page.page < page.total_pages:
        links.append(f'<{base}?{urlencode({**query, "page": page.page + 1})}>; rel="next"')
    if links:
        response.headers["Link"] = ", ".join(links)
    return response


async def list_customers(request: Request) -> Response:
    """``GET /wp-json/wc/v3/customers``."""
    state = _state(request)
    try:
        page = customer_page(state.all_customers(), request.query_params)
    except QueryError as error:
        return JSONResponse(error.body(), status_code=400)
    return _page_response(request, page)


async def list_orders(request: Request) -> Response:
    """``GET /wp-json/wc/v3/orders``."""
    state = _state(request)
    try:
        page = order_page(state.all_orders(), request.query_params,
                          state.config.site_utc_offset_hours)
    except QueryError as error:
        return JSONResponse(error.body(), status_code=400)
    return _page_response(request, page)


def _invalid_id(kind: str) -> Response:
    code = "woocommerce_rest_invalid_id" if kind == "customer" else \
        "woocommerce_rest_shop_order_invalid_id"
    return wc_error(code, "Invalid ID.", 404)


async def get_customer(request: Request) -> Response:
    """``GET /wp-json/wc/v3/customers/{id}``."""
    found = _state(request).customer(int(request.path_params["record_id"]))
    return JSONResponse(found) if found is not None else _invalid_id("customer")


async def get_order(request: Request) -> Response:
    """``GET /wp-json/wc/v3/orders/{id}``."""
    found = _state(request).order(int(request.path_params["record_id"]))
    return JSONResponse(found) if found is not None else _invalid_id("order")


async def _json_object(request: Request) -> dict[str, Any] | None:
    try:
        body = json.loads(await request.body() or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


async def write_customer(request: Request) -> Response:
    """Create (``POST /customers``) or change (``/customers/{id}``) a customer."""
    state = _state(request)
    body = await _json_object(request)
    if body is None:
        return wc_error("rest_invalid_json", "Invalid JSON body passed.", 400)
    number = request.path_params.get("record_id")
    if number is not None:
        if state.customer(int(number)) is None:
            return _invalid_id("customer")
        return JSONResponse(state.put_customer({**body, "id": int(number)}))
    if not str(body.get("email") or "").strip():
        return wc_error("rest_missing_callback_param", "Missing parameter(s): email", 400,
                        params=["email"])
    body.pop("id", None)
    return JSONResponse(state.put_customer(body), status_code=201)


async def write_order(request: Request) -> Response:
    """Create (``POST /orders``) or change (``/orders/{id}``) an order."""
    state = _state(request)
    body = await _json_object(request)
    if body is None:
        return wc_error("rest_invalid_json", "Invalid JSON body passed.", 400)
    number = request.path_params.get("record_id")
    if number is not None:
        if state.order(int(number)) is None:
            return _invalid_id("order")
        return JSONResponse(state.put_order({**body, "id": int(number)}))
    body.pop("id", None)
    return JSONResponse(state.put_order(body), status_code=201)


# -- inspection (not WooCommerce) -------------------------------------------------


async def standin_health(request: Request) -> Response:
    """``GET /_standin/health``."""
    state = _state(request)
    with state.lock:
        counts = {"customers": len(state.customers), "orders": len(state.orders)}
    return JSONResponse({"status": "ok", **counts})


async def standin_calls(request: Request) -> Response:
    """``GET /_standin/calls``: counts per method, route and status."""
    state = _state(request)
    with state.lock:
        calls = [{"method": method, "path": path, "status": status, "count": count}
                 for (method, path, status), count in sorted(state.calls.items())]
    return JSONResponse({"total": sum(item["count"] for item in calls), "calls": calls})


async def standin_customers(request: Request) -> Response:
    """``GET /_standin/customers``: every stored customer."""
    return JSONResponse({"customers": _state(request).all_customers()})


async def standin_orders(request: Request) -> Response:
    """``GET /_standin/orders``: every stored order."""
    return JSONResponse({"orders": _state(request).all_orders()})


async def standin_seed(request: Request) -> Response:
    """``POST /_standin/seed``: add customers and orders that reset keeps."""
    body = await _json_object(request)
    customers = body.get("customers", []) if body is not None else None
    orders = body.get("orders", []) if body is not None else None
    if not isinstance(customers, list) or not isinstance(orders, list) or \
            not all(isinstance(item, dict) for item in [*customers, *orders]):
        return JSONResponse({"error": "send JSON such as {\"customers\": [{...}], "
                                      "\"orders\": [{...}]} with objects in both lists"},
                            status_code=400)
    stored = _state(request).seed(customers, orders)
    return JSONResponse({"customers": stored[0], "orders": stored[1]}, status_code=201)


async def standin_faults(request: Request) -> Response:
    """``POST /_standin/faults``: ``{"status": 503, "count": N}`` or ``"seconds": T``."""
    state = _state(request)
    body = await _json_object(request)
    try:
        if body is None:
            raise TypeError
        status, count, seconds = int(body["status"]), body.get("count"), body.get("seconds")
        retry_after = body.get("retry_after")
        retry_after = None if retry_after is None else int(retry_after)
    except (ValueError, KeyError, TypeError):
        return JSONResponse({"error": "send JSON with status and count or seconds"},
                            status_code=400)
    if (count is None) == (seconds is None) or not 400 <= status <= 599:
        return JSONResponse({"error": "give a status from 400 to 599 and exactly one of "
                                      "count or seconds"}, status_code=400)
    until = None if seconds is None else state.now() + float(seconds)
    prefix = str(body.get("path_prefix", "/"))
    state.add_fault(Fault(status, None if count is None else int(count), until, prefix,
                          retry_after))
    return JSONResponse({"status": status, "count": count, "until": until,
                         "path_prefix": prefix, "retry_after": retry_after}, status_code=201)


async def standin_reset(request: Request) -> Response:
    """``POST /_standin/reset``: back to the seed (``{"seed": false}``: an empty store)."""
    body = await _json_object(request)
    if body is None:
        return JSONResponse({"error": "send JSON such as {\"seed\": false}, or no body"},
                            status_code=400)
    remaining = _state(request).reset(seed=body.get("seed") is not False)
    return JSONResponse({"status": "reset", "records": remaining})


# -- the app ----------------------------------------------------------------------


def _routes() -> list[Route]:
    one = "{record_id:int}"
    store: list[tuple[str, list[str], _Endpoint]] = [
        (f"{API}/customers", ["GET"], _api(f"{API}/customers", list_customers, listing=True)),
        (f"{API}/customers", ["POST"], _api(f"{API}/customers", write_customer, writes=True)),
        (f"{API}/customers/{one}", ["GET"], _api(f"{API}/customers/{{id}}", get_customer)),
        (f"{API}/customers/{one}", ["PUT", "PATCH", "POST"],
         _api(f"{API}/customers/{{id}}", write_customer, writes=True)),
        (f"{API}/orders", ["GET"], _api(f"{API}/orders", list_orders, listing=True)),
        (f"{API}/orders", ["POST"], _api(f"{API}/orders", write_order, writes=True)),
        (f"{API}/orders/{one}", ["GET"], _api(f"{API}/orders/{{id}}", get_order)),
        (f"{API}/orders/{one}", ["PUT", "PATCH", "POST"],
         _api(f"{API}/orders/{{id}}", write_order, writes=True)),
        (f"{API}/webhooks", ["GET"], _api(f"{API}/webhooks", list_webhooks, listing=True)),
        (f"{API}/webhooks", ["POST"], _api(f"{API}/webhooks", create_webhook, writes=True)),
        (f"{API}/webhooks/{one}", ["GET"], _api(f"{API}/webhooks/{{id}}", get_webhook)),
        (f"{API}/webhooks/{one}", ["PUT", "PATCH", "POST"],
         _api(f"{API}/webhooks/{{id}}", update_webhook, writes=True)),
        (f"{API}/coupons", ["GET"], _api(f"{API}/coupons", list_coupons, listing=True)),
        (f"{API}/coupons", ["POST"], _api(f"{API}/coupons", create_coupon, writes=True)),
    ]
    inspection: list[tuple[str, list[str], _Endpoint]] = [
        ("/_standin/health", ["GET"], standin_health),
        ("/_standin/calls", ["GET"], standin_calls),
        ("/_standin/customers", ["GET"], standin_customers),
        ("/_standin/orders", ["GET"], standin_orders),
        ("/_standin/seed", ["POST"], standin_seed),
        ("/_standin/faults", ["POST"], standin_faults),
        ("/_standin/reset", ["POST"], standin_reset),
    ]
    return [Route(path, handler, methods=methods) for path, methods, handler in
            [*store, *inspection]]


async def _no_route(request: Request, exc: Exception) -> Response:
    return wc_error("rest_no_route", "No route was found matching the URL and request method.",
                    404)


def create_app(config: WooStandinConfig | None = None, *,
               state: WooState | None = None) -> Starlette:
    """Build the stand-in app; ``app.state.woocommerce`` is its ``WooState``.

    Args:
        config: Settings; the defaults play a store on HTTPS in Asia/Riyadh time with
            the placeholder key ``ck_test_not_real`` and secret ``cs_test_not_real``.
        state: An existing state to serve, for example one seeded beforehand.
    """
    app = Starlette(routes=_routes(), exception_handlers={404: _no_route, 405: _no_route})
    app.state.woocommerce = state or WooState(config)
    return app


# -- command line -----------------------------------------------------------------


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=module_command(__file__, __package__),
        description="Serve a local WooCommerce REST API stand-in (not WooCommerce; for tests "
                    "and sandboxes).")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on "
                        "(default 127.0.0.1; other than loopback needs --allow-remote)")
    parser.add_argument("--port", type=int, default=8788, help="TCP port (default 8788)")
    parser.add_argument("--seed", type=Path, help='JSON file {"customers": [...], '
                        '"orders": [...]} to load at start')
    parser.add_argument("--consumer-key", default=WooStandinConfig.consumer_key,
                        help="key the store accepts (default ck_test_not_real)")
    parser.add_argument("--consumer-secret", default=WooStandinConfig.consumer_secret,
                        help="secret the store accepts (default cs_test_not_real)")
    parser.add_argument("--allow-remote", action="store_true",
                        help="allow listening on an address other than loopback")
    return parser.parse_args(argv)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _load_seed(state: WooState, path: Path) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError("the file must contain a JSON object with customers and orders")
    customers, orders = data.get("customers", []), data.get("orders", [])
    if not isinstance(customers, list) or not isinstance(orders, list):
        raise ValueError("customers and orders must be JSON lists")
    state.seed(customers, orders)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the stand-in under uvicorn; return the exit code (2 for invalid options)."""
    args = _parse_args(argv)
    if not _is_loopback(args.host) and not args.allow_remote:
        print(f"error: --host {args.host} is not a loopback address; the stand-in has no "
              "real security, so pass --allow-remote to listen there anyway", file=sys.stderr)
        return 2
    config = WooStandinConfig(consumer_key=args.consumer_key,
                              consumer_secret=args.consumer_secret)
    app = create_app(config)
    if args.seed is not None:
        try:
            _load_seed(app.state.woocommerce, args.seed)
        except (OSError, ValueError, TypeError, AttributeError) as problem:
            print(f"error: cannot seed from {args.seed}: {problem}", file=sys.stderr)
            return 2
    try:
        import uvicorn
    except ModuleNotFoundError as missing:
        exit_missing_package(missing, "WooCommerce")

    print(f"WooCommerce REST API stand-in on http://{args.host}:{args.port}{API}; this is "
          "not WooCommerce", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
