"""Checks after the CRM writes of a Make blueprint: batch results, then the dedupe record.

A HubSpot batch call returns 207 Multi-Status when some of its records failed, and
Make's HTTP module treats every 2xx response as a success. So a router follows each
batch request. Its first route reports the failed records to the error-alert
scenario, which keeps the event in ``failed_items`` and alerts the team, and the run
ends there. Its second route runs the rest of the flow.

The dedupe check reads the event key before the writes, and the key is stored at
the end of every path below the check, after each write on that path succeeded. A
path that loops over an event's items (an iterator, such as the order's line items)
first collects the items that got to its end, and stores the key once, only when
every item did. A run that fails or stops on failed records stores no key, so the
store's next delivery or the reconciliation's replay of the same event is processed
again.
"""

from __future__ import annotations

from typing import Any

from generator.ipaas.make_builder import X_STEP, Y_STEP, Builder, both_conditions
from generator.ipaas.make_http import ERROR_HOOK_URL, error_body

ROUTER = "builtin:BasicRouter"
ITERATOR = "builtin:BasicFeeder"
AGGREGATOR = "builtin:BasicAggregator"
# The field of the aggregated bundle that keeps each item's id, and the filter after it.
ITEM_ID = "itemId"
EVERY_ITEM_NAME = "Every item written"
# The router after a HubSpot batch request; exactly one of its two routes runs.
BATCH_CHECK_ROUTER_NAME = "Check the batch results"
FAILED_ROUTE_NAME = "Some records failed"
WRITTEN_ROUTE_NAME = "Every record written"


def finish(builder: Builder, flow: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Store the dedupe key after the writes and check each HubSpot batch response, in place."""
    saved, builder.pending_filter = builder.pending_filter, None
    for check_id, key, name in builder.dedupe_checks:
        found = _find(flow, check_id)
        if found is not None:
            modules, index = found
            _remember_at_ends(builder, modules, index, key, name)
    _check_batches(builder, flow)
    builder.pending_filter = saved
    return flow


def _find(flow: list[dict[str, Any]], module_id: int) -> tuple[list[dict[str, Any]], int] | None:
    """Return the module list that contains ``module_id`` and its index there."""
    for index, module in enumerate(flow):
        if module["id"] == module_id:
            return flow, index
        for route in module.get("routes", []):
            found = _find(route["flow"], module_id)
            if found is not None:
                return found
    return None


def _remember_at_ends(builder: Builder, modules: list[dict[str, Any]], start: int,
                      key: str, name: str, loop: dict[str, Any] | None = None) -> None:
    """Append the module that stores ``key`` to every path after ``modules[start]``.

    A router ends the list it is in, so the key goes to the end of each of its routes.
    Several routes of one router can run for one event, so the record is overwritten.
    ``loop`` is an iterator between the check and this list that no aggregator has
    closed yet: a path inside it stores the key once, after every item (``_after_items``).
    """
    for module in modules[start + 1:]:
        if module["module"] == ITERATOR:
            loop = module
        elif module["module"] == AGGREGATOR and loop is not None and \
                module["parameters"].get("feeder") == loop["id"]:
            loop = None
    if not modules:
        # A route kept only to store the key (make_ticket) starts empty.
        modules.append(builder.module("datastore:AddRecord",
                                      {"key": key, "data": {"processedAt": "{{now}}"},
                                       "overwrite": True}, name))
        return
    last = modules[-1]
    if len(modules) > start + 1 and last["module"] == ROUTER:
        for route in last["routes"]:
            _remember_at_ends(builder, route["flow"], -1, key, name, loop)
        return
    builder.x = int(last["metadata"]["designer"]["x"]) + X_STEP
    y = int(last["metadata"]["designer"]["y"])
    if loop is not None:
        modules.append(_after_items(builder, loop, y))
    modules.append(builder.module("datastore:AddRecord",
                                  {"key": key, "data": {"processedAt": "{{now}}"},
                                   "overwrite": True}, name, y))


def _after_items(builder: Builder, loop: dict[str, Any], y: int) -> dict[str, Any]:
    """Return the aggregator that closes ``loop``, and set the filter that every item arrived.

    The aggregator collects the id of each item whose path got this far, so an item
    whose write failed (its error route, or the failed-records route of a batch check)
    is missing. The filter lets the event key be stored only when the collected ids
    equal the ids of the iterated list, in order: once per event, after every item.
    NOTE: an aggregator placed inside a router's route after its iterator, and its
    output for a list with no items (one bundle with an empty array, which passes),
    are read in third-party exported blueprints and not confirmed in Make's help.
    """
    source = str(loop["mapper"]["array"]).removeprefix("{{").removesuffix("}}")
    aggregator = builder.module(AGGREGATOR, {ITEM_ID: "{{" + f"{loop['id']}.id" + "}}"},
                                "Collect the items written", y,
                                parameters={"feeder": int(loop["id"])})
    written = f'join(map({aggregator["id"]}.array; "{ITEM_ID}"); ",")'
    listed = f'join(map({source}; "id"); ",")'
    builder.pending_filter = {"name": EVERY_ITEM_NAME, "conditions": [[
        {"a": "{{" + f'if({written} = {listed}; "all"; "some")' + "}}", "o": "text:equal",
         "b": "all"}]]}
    return aggregator


def _check_batches(builder: Builder, flow: list[dict[str, Any]]) -> None:
    """Put a results check after each HubSpot batch request in ``flow``, in place."""
    for index, module in enumerate(flow):
        for route in module.get("routes", []):
            _check_batches(builder, route["flow"])
        if module["id"] in builder.batch_requests:
            rest = flow[index + 1:]
            del flow[index + 1:]
            _check_batches(builder, rest)
            flow.extend(_batch_check(builder, module, rest))
            return


def batch_conditions(module_id: int) -> tuple[list[list[dict[str, str]]],
                                               list[list[dict[str, str]]]]:
    """Return the filter conditions of a batch response with failed records, and without.

    HubSpot returns 207 with ``numErrors`` and an ``errors`` list when any record
    failed. The second conditions are the exact negation of the first.
    """
    status = "{{" + f"{module_id}.statusCode" + "}}"
    count = "{{" + f"{module_id}.data.numErrors" + "}}"
    failed = [[{"a": status, "o": "text:equal", "b": "207"}],
              [{"a": count, "o": "text:notequal", "b": ""},
               {"a": count, "o": "text:notequal", "b": "0"}]]
    written = [[{"a": status, "o": "text:notequal", "b": "207"},
                {"a": count, "o": "text:equal", "b": value}] for value in ("", "0")]
    return failed, written


def _batch_check(builder: Builder, request: dict[str, Any],
                 rest: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the modules after a batch request: a route to the failure report, one to ``rest``."""
    designer = request["metadata"]["designer"]
    builder.x = int(designer["x"]) + X_STEP
    y = int(designer["y"])
    step, builder.record_ref = builder.batch_requests[int(request["id"])]
    failed, written = batch_conditions(int(request["id"]))
    errors = f"{request['id']}.data"
    message = (f'"HubSpot returned 207: " + toString(ifempty({errors}.numErrors; 1)) + '
               f'" record(s) failed (" + join(map({errors}.errors; "category"); ", ") + ")"')
    if not rest:
        builder.pending_filter = {"name": FAILED_ROUTE_NAME, "conditions": failed}
        return [_report(builder, step, message, y)]
    router = builder.module(ROUTER, None, BATCH_CHECK_ROUTER_NAME, y)
    builder.pending_filter = {"name": FAILED_ROUTE_NAME, "conditions": failed}
    report = _report(builder, step, message, y + Y_STEP)
    _add_filter(rest, {"name": WRITTEN_ROUTE_NAME, "conditions": written})
    router["routes"] = [{"flow": [report]}, {"flow": rest}]
    return [router]


def _report(builder: Builder, step: str, message: str, y: int) -> dict[str, Any]:
    """Return the request that posts the failed records' count and categories to the error alert.

    The report names the event, never the records' values: HubSpot's error messages
    can quote an email or a phone.
    """
    mapper = {"url": ERROR_HOOK_URL, "method": "post", "headers": [], "contentType": "json",
              "parseResponse": False, "queryParameters": [], "inputMethod": "jsonString",
              "jsonStringBodyContent": error_body(builder, f"{step}: failed records", message)}
    return builder.module("http:MakeRequest", mapper, f"Report the failed records of {step}", y,
                          parameters={"authenticationType": "noAuth"})


def _add_filter(flow: list[dict[str, Any]], condition_filter: dict[str, Any]) -> None:
    """Join ``condition_filter`` to the filter of the first module of ``flow``.

    Make takes no filter on a router, so a router passes the filter on to each route.
    """
    first = flow[0]
    if first["module"] == ROUTER:
        for route in first["routes"]:
            _add_filter(route["flow"], condition_filter)
        return
    pending = first.get("filter")
    if pending is None:
        first["filter"] = condition_filter
        return
    first["filter"] = {"name": f"{pending['name']}; {condition_filter['name']}",
                       "conditions": both_conditions(pending, condition_filter["conditions"])}
