"""The Make reconciliation scenario: page through the store's changed orders across runs.

Make has no confirmed loop module, so one run reads one page and keeps its place in
the data store ``sync_cursors``, record ``orders``. The record contains ``since`` (the
change time a walk starts from), ``walk_started`` (when the current walk began) and
the next page: a GraphQL ``after`` cursor for Shopify or a ``page`` number for WooCommerce. The run
that reads the last page moves ``since`` to ``walk_started``, so changes made during
a walk are read by the next one. Each order is read again in the REST shape that the
store's webhooks send and posted unchanged to the order-sync scenario's webhook.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from generator.ipaas import crm_calls
from generator.ipaas.crm_calls import CrmCall
from generator.ipaas.flows import RECONCILE_EVERY_MINUTES, Flow
from generator.ipaas.make_builder import Y_STEP, Builder
from generator.ipaas.make_http import http_module

CURSOR_STORE = "sync_cursors"
CURSOR_KEY = "orders"
# The change time the first walk starts from when the data store has no cursor yet.
FIRST_WALK_DAYS = 1
NOW = 'formatDate(now; "YYYY-MM-DDTHH:mm:ssZ")'
SINCE = f'ifempty(1.since; formatDate(addMinutes(now; -{FIRST_WALK_DAYS * 1440}); ' \
        '"YYYY-MM-DDTHH:mm:ssZ"))'
# Shopify's REST order read returns {"order": {...}}, and the webhook body is the
# inner object, so the wrapper is cut from the response text before the replay.
SHOPIFY_UNWRAP = 'replace({text}; "/^\\s*\\{{\\s*\\x22order\\x22\\s*:([\\s\\S]*)\\}}\\s*$/"; "$1")'
REPLAY_URL_KEY = "{order_sync_webhook_url}"
# A storefront's API has no cursor this scenario can page, so each run reads the
# changes of two schedule intervals. A run that starts late still overlaps the last
# one, and a replayed order is harmless because the deal is upserted by its store id.
STOREFRONT_WINDOW_MINUTES = 2 * RECONCILE_EVERY_MINUTES


def _braces(formula: str) -> str:
    return "{{" + formula + "}}"


def _cursor_module(builder: Builder, y: int) -> dict[str, Any]:
    return builder.module("datastore:GetRecord", {"key": CURSOR_KEY, "returnWrapped": False},
                          f"Read the reconciliation cursor (data store {CURSOR_STORE})", y)


def _save_cursor(builder: Builder, data: dict[str, str], y: int) -> dict[str, Any]:
    return builder.module("datastore:AddRecord",
                          {"key": CURSOR_KEY, "overwrite": True, "data": data},
                          f"Save the next page and the cursor (data store {CURSOR_STORE})", y)


def _replay_modules(builder: Builder, feeder_array: str, record_id: str, read: CrmCall,
                    unwrap: str | None, y: int) -> list[dict[str, Any]]:
    """Return the modules that read each order again and post it to the order-sync webhook."""
    feeder = builder.module("builtin:BasicFeeder", {"array": _braces(feeder_array)},
                            "Each changed order", y)
    builder.item_id = int(feeder["id"])
    builder.record_ref = f"{feeder['id']}.{record_id}"
    path = read.endpoint.replace("{record_id}", _braces(f"{feeder['id']}.{record_id}"))
    fetch = http_module(builder, replace(read, endpoint=path), "Read the order as the webhook "
                        "sends it", y)
    # The raw text is the order's JSON, posted on unchanged.
    fetch["mapper"]["parseResponse"] = False
    text = f"{fetch['id']}.data"
    replay = CrmCall(system="flow", action="replay order", method="POST",
                     base_url=REPLAY_URL_KEY, endpoint="", body={})
    post = http_module(builder, replay, "Send the order to the order flow", y)
    post["mapper"]["jsonStringBodyContent"] = _braces(unwrap.format(text=text) if unwrap
                                                      else text)
    return [feeder, fetch, post]


def _shopify_page(builder: Builder, poll: CrmCall, first: bool, y: int) -> list[dict[str, Any]]:
    """Return one route's modules: the page request, the cursor save and the replays."""
    builder.record_ref = None
    body = {**poll.body, "variables": {"after": None if first else "<after>"}}
    builder.values["after"] = "1.after"
    page = http_module(builder, replace(poll, body=body), "Read one page of changed orders", y)
    # The cursor is inside the query text, so it is put in after serialising, because
    # the serialiser would escape the quotes of its formula.
    mapper = page["mapper"]
    mapper["jsonStringBodyContent"] = mapper["jsonStringBodyContent"].replace(
        "<cursor>", _braces(SINCE if first else "1.since"))
    info = f"{page['id']}.data.data.orders.pageInfo"
    more = f"{info}.hasNextPage"
    started = NOW if first else "1.walk_started"
    save = _save_cursor(builder, {
        "since": _braces(f"if({more}; {SINCE if first else '1.since'}; {started})"),
        "after": _braces(f"if({more}; {info}.endCursor; emptystring)"),
        "walk_started": _braces(started)}, y)
    read = CrmCall(system="shopify", action="read order", method="GET",
                   base_url=crm_calls.SHOPIFY_BASE_URL, endpoint="/orders/{record_id}.json")
    return [page, save, *_replay_modules(builder, f"{page['id']}.data.data.orders.edges",
                                         "node.legacyResourceId", read, SHOPIFY_UNWRAP, y)]


def _shopify_modules(builder: Builder, poll: CrmCall) -> list[dict[str, Any]]:
    cursor = _cursor_module(builder, 0)
    router = builder.module("builtin:BasicRouter", None, "Start a walk or go on with it", 0)
    start_x = builder.x
    routes = []
    for index, first in enumerate((True, False)):
        builder.x = start_x
        builder.pending_filter = {
            "name": "First page of a walk" if first else "Next page of a walk",
            "conditions": [[{"a": "{{1.after}}", "o": "text:equal" if first else
                             "text:notequal", "b": ""}]]}
        routes.append({"flow": _shopify_page(builder, poll, first, index * Y_STEP)})
    router["routes"] = routes
    return [cursor, router]


def _woocommerce_modules(builder: Builder, poll: CrmCall) -> list[dict[str, Any]]:
    cursor = _cursor_module(builder, 0)
    page_number = "ifempty(1.page; 1)"
    # Oldest change first, and only the ids: each order is read again on its own.
    query = {**poll.query, "modified_after": "{{" + SINCE + "}}",
             "page": _braces(page_number), "orderby": "modified", "order": "asc",
             "_fields": "id"}
    page = http_module(builder, replace(poll, query=query), "Read one page of changed orders", 0)
    # NOTE: the response headers are read as a collection keyed by lower-case name
    # with get(); neither is confirmed in a Make export. A miss ends every walk after
    # its first page, and the next runs start again from the same since.
    total = f'parseNumber(ifempty(get({page["id"]}.headers; "x-wp-totalpages"); 1); ".")'
    more = f"{page_number} < {total}"
    started = f"if({page_number} = 1; {NOW}; 1.walk_started)"
    save = _save_cursor(builder, {
        "since": _braces(f"if({more}; {SINCE}; {started})"),
        "page": _braces(f"if({more}; {page_number} + 1; 1)"),
        "walk_started": _braces(started)}, 0)
    read = CrmCall(system="woocommerce", action="read order", method="GET",
                   base_url=crm_calls.WOOCOMMERCE_BASE_URL, endpoint="/orders/{record_id}")
    return [cursor, page, save,
            *_replay_modules(builder, f"{page['id']}.data", "id", read, None, 0)]


def _storefront_modules(builder: Builder, poll: CrmCall) -> list[dict[str, Any]]:
    """Return the storefront's reconciliation: read the recent changes, replay each order.

    NOTE: the storefront's API is the storefront team's choice. These modules assume it
    returns a JSON list of orders with an ``id`` each. They also assume it reads one
    order at ``/orders/{id}`` in the shape of its order webhook. Change both to the real API.
    """
    since = f'formatDate(addMinutes(now; -{STOREFRONT_WINDOW_MINUTES}); "YYYY-MM-DDTHH:mm:ssZ")'
    query = {**poll.query, "updated_since": _braces(since)}
    page = http_module(builder, replace(poll, query=query),
                       "Read the orders changed in the last two runs", 0)
    read = CrmCall(system="storefront", action="read order", method="GET",
                   base_url="{storefront_api_url}", endpoint="/orders/{record_id}")
    return [page, *_replay_modules(builder, f"{page['id']}.data", "id", read, None, 0)]


def reconcile_modules(builder: Builder, flow: Flow, platform: str) -> list[dict[str, Any]] | None:
    """Return the modules of the reconciliation scenario, or None when the flow reads no store."""
    poll = next((call for step in flow.steps for call in step.calls
                 if call.action.startswith("read changed ")), None)
    if poll is None:
        return None
    if platform == "shopify":
        return _shopify_modules(builder, poll)
    if platform == "woocommerce":
        return _woocommerce_modules(builder, poll)
    return _storefront_modules(builder, poll)
