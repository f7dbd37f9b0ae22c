"""Webhooks and coupons of the WooCommerce stand-in.

- ``GET /wp-json/wc/v3/webhooks`` (``status``: ``all`` (default), ``active``, ``paused``,
  ``disabled``), ``POST`` to create one, ``GET``/``PUT`` on ``/webhooks/{id}``;
- ``POST /wp-json/wc/v3/coupons`` and ``GET /wp-json/wc/v3/coupons``.

Shapes follow the REST API v3 docs on developer.woocommerce.com. The stand-in delivers
nothing to a webhook's ``delivery_url`` and sends no ping on creation.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .woocommerce_state import WooState, format_wc_date, parse_wc_date

__all__ = ["WEBHOOK_STATUSES", "create_coupon", "create_webhook", "get_webhook",
           "list_coupons", "list_webhooks", "update_webhook"]

WEBHOOK_STATUSES = ("active", "paused", "disabled")
TOPIC_RESOURCES = ("coupon", "customer", "order", "product")
TOPIC_EVENTS = ("created", "updated", "deleted", "restored")
DISCOUNT_TYPES = ("percent", "fixed_cart", "fixed_product")


def _error(code: str, message: str, status: int, **data: Any) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, "data": {"status": status, **data}},
                        status_code=status)


def _state(request: Request) -> WooState:
    state: WooState = request.app.state.woocommerce
    return state


async def _body(request: Request) -> dict[str, Any] | None:
    try:
        body = json.loads(await request.body() or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


def _valid_topic(topic: str) -> bool:
    resource, _, event = topic.partition(".")
    if resource == "action":
        return bool(event)
    return resource in TOPIC_RESOURCES and event in TOPIC_EVENTS


def _stamp(state: WooState, record: dict[str, Any], name: str) -> None:
    gmt = state.now_gmt()
    record[f"date_{name}_gmt"] = format_wc_date(gmt)
    record[f"date_{name}"] = format_wc_date(state.site_time(gmt))


def _new_id(state: WooState) -> int:
    taken = set(state.webhooks) | set(state.coupons) | set(state.orders) | set(state.customers)
    return max(taken, default=0) + 1


async def list_webhooks(request: Request) -> Response:
    """``GET /wp-json/wc/v3/webhooks``."""
    requested_status = request.query_params.get("status", "all")
    if requested_status not in ("all", *WEBHOOK_STATUSES):
        allowed = ", ".join(WEBHOOK_STATUSES)
        return _error("rest_invalid_param", "Invalid parameter(s): status", 400,
                      params={"status": f"status is not one of all, {allowed}."})
    state = _state(request)
    with state.lock:
        found = [dict(item) for _, item in sorted(state.webhooks.items())
                 if requested_status in ("all", item["status"])]
    response = JSONResponse(found)
    response.headers["X-WP-Total"] = str(len(found))
    response.headers["X-WP-TotalPages"] = "1"
    return response


async def create_webhook(request: Request) -> Response:
    """``POST /wp-json/wc/v3/webhooks``."""
    body = await _body(request)
    if body is None:
        return _error("rest_invalid_json", "Invalid JSON body passed.", 400)
    missing = [name for name in ("topic", "delivery_url") if not body.get(name)]
    if missing:
        return _error("rest_missing_callback_param",
                      f"Missing parameter(s): {', '.join(missing)}", 400, params=missing)
    topic, url = str(body["topic"]), str(body["delivery_url"])
    if not _valid_topic(topic):
        return _error("woocommerce_rest_webhook_invalid_topic",
                      "Webhook topic is required and must be valid.", 400)
    if not url.startswith(("http://", "https://")):
        return _error("rest_invalid_param", "Invalid parameter(s): delivery_url", 400,
                      params={"delivery_url": "Invalid URL."})
    status = str(body.get("status") or "active")
    if status not in WEBHOOK_STATUSES:
        return _error("rest_invalid_param", "Invalid parameter(s): status", 400)
    state = _state(request)
    with state.lock:
        number = _new_id(state)
        resource, _, event = topic.partition(".")
        record = {"id": number, "name": str(body.get("name") or f"Webhook created by API "
                                                                 f"({topic})"),
                  "status": status, "topic": topic, "resource": resource, "event": event,
                  "hooks": [], "delivery_url": url}
        _stamp(state, record, "created")
        _stamp(state, record, "modified")
        state.webhooks[number] = record
        return JSONResponse(dict(record), status_code=201)


async def get_webhook(request: Request) -> Response:
    """``GET /wp-json/wc/v3/webhooks/{id}``."""
    state = _state(request)
    with state.lock:
        found = state.webhooks.get(int(request.path_params["record_id"]))
    if found is None:
        return _error("woocommerce_rest_webhook_invalid_id", "Invalid ID.", 404)
    return JSONResponse(dict(found))


async def update_webhook(request: Request) -> Response:
    """``PUT /wp-json/wc/v3/webhooks/{id}``: change ``status``, ``name`` or ``delivery_url``."""
    body = await _body(request)
    if body is None:
        return _error("rest_invalid_json", "Invalid JSON body passed.", 400)
    state = _state(request)
    with state.lock:
        found = state.webhooks.get(int(request.path_params["record_id"]))
        if found is None:
            return _error("woocommerce_rest_webhook_invalid_id", "Invalid ID.", 404)
        if "status" in body and body["status"] not in WEBHOOK_STATUSES:
            return _error("rest_invalid_param", "Invalid parameter(s): status", 400)
        for name in ("status", "name", "delivery_url"):
            if name in body:
                found[name] = str(body[name])
        _stamp(state, found, "modified")
        return JSONResponse(dict(found))


def _coupon_problem(state: WooState, body: dict[str, Any]) -> Response | None:
    code = str(body.get("code") or "").strip()
    if not code:
        return _error("rest_missing_callback_param", "Missing parameter(s): code", 400,
                      params=["code"])
    if any(item["code"].lower() == code.lower() for item in state.coupons.values()):
        return _error("woocommerce_rest_coupon_code_already_exists",
                      "The coupon code already exists", 400)
    if body.get("discount_type", "fixed_cart") not in DISCOUNT_TYPES:
        return _error("rest_invalid_param", "Invalid parameter(s): discount_type", 400,
                      params={"discount_type": f"discount_type is not one of "
                                               f"{', '.join(DISCOUNT_TYPES)}."})
    for name in ("usage_limit", "usage_limit_per_user"):
        value = body.get(name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            return _error("rest_invalid_param", f"Invalid parameter(s): {name}", 400,
                          params={name: f"{name} is not of type integer."})
    for name in ("date_expires", "date_expires_gmt"):
        if body.get(name) and parse_wc_date(str(body[name])) is None:
            return _error("rest_invalid_param", f"Invalid parameter(s): {name}", 400,
                          params={name: "Invalid date."})
    return None


async def create_coupon(request: Request) -> Response:
    """``POST /wp-json/wc/v3/coupons``."""
    body = await _body(request)
    if body is None:
        return _error("rest_invalid_json", "Invalid JSON body passed.", 400)
    state = _state(request)
    with state.lock:
        problem = _coupon_problem(state, body)
        if problem is not None:
            return problem
        number = _new_id(state)
        record = {"id": number, "code": str(body["code"]).strip().lower(),
                  "amount": str(body.get("amount") or "0"),
                  "discount_type": body.get("discount_type", "fixed_cart"),
                  "description": str(body.get("description") or ""),
                  "date_expires": body.get("date_expires"),
                  "date_expires_gmt": body.get("date_expires_gmt"),
                  "usage_count": 0, "individual_use": bool(body.get("individual_use")),
                  "usage_limit": body.get("usage_limit"),
                  "usage_limit_per_user": body.get("usage_limit_per_user"),
                  "email_restrictions": list(body.get("email_restrictions") or []),
                  "meta_data": list(body.get("meta_data") or [])}
        _stamp(state, record, "created")
        _stamp(state, record, "modified")
        state.coupons[number] = record
        return JSONResponse(dict(record), status_code=201)


async def list_coupons(request: Request) -> Response:
    """``GET /wp-json/wc/v3/coupons`` (every coupon, one page)."""
    state = _state(request)
    with state.lock:
        return JSONResponse([dict(item) for _, item in sorted(state.coupons.items())])
