"""Handlers of the CRM objects v3 endpoints: single records, batches and search.

Batch rules as HubSpot applies them: at most 100 inputs, no repeated id in one
batch, and a batch create is all or nothing (400 or 409 for the whole batch).
Batch update, upsert and read handle each input alone and return 207 Multi-Status
with ``results`` and ``errors`` when some inputs fail.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from .hubspot_config import (
    ASSOCIATION_TYPES,
    BATCH_INPUT_LIMIT,
    OBJECT_ERROR_NAMES,
    REQUIRED_ON_CREATE,
)
from .hubspot_errors import (
    HubSpotError,
    batch_error,
    error_body,
    not_found,
    validation_error,
)
from .hubspot_http import Call, object_name
from .hubspot_records import Record
from .hubspot_search import check_search_request, matches
from .hubspot_state import StandinState

PROPERTY_HISTORY_INPUT_LIMIT = 50
SEARCH_MAX_RESULTS = 10_000
MULTI_STATUS = 207


def batch_inputs(body: dict[str, Any], limit: int = BATCH_INPUT_LIMIT) -> list[Any]:
    """Return the ``inputs`` of a batch request, or raise HubSpot's 400."""
    inputs = body.get("inputs")
    if not isinstance(inputs, list):
        raise validation_error("inputs must be a list")
    if len(inputs) > limit:
        # NOTE: the wording follows HubSpot's message for the property-history limit;
        # the 400 and its category are confirmed, the exact text for 100 is not.
        raise validation_error(
            f"The maximum number of inputs supported in a batch request is {limit}. "
            "Please reduce the number of items and try again",
            context={"inputs": [str(len(inputs))]})
    for item in inputs:
        if not isinstance(item, dict):
            raise validation_error("Every input must be a JSON object")
    return inputs


def reject_duplicates(keys: list[str]) -> None:
    """Raise the 400 HubSpot sends for an id repeated within one batch."""
    repeated = sorted(key for key, count in Counter(keys).items() if count > 1)
    if repeated:
        # NOTE: wording taken from client reports of this error, not from HubSpot's docs.
        raise validation_error(
            f"Duplicate IDs found in batch input: [{', '.join(repeated)}]. IDs must be unique",
            context={"ids": repeated})


def batch_response(state: StandinState, started: str, results: list[Any],
                   errors: list[dict[str, Any]], ok_status: int = 200) -> tuple[int, Any]:
    """Return a batch response: ``ok_status``, or 207 when some inputs failed."""
    body: dict[str, Any] = {
        "status": "COMPLETE",
        "results": results,
        "startedAt": started,
        "completedAt": state.now_iso(),
    }
    if errors:
        body["errors"] = errors
        body["numErrors"] = len(errors)
        return MULTI_STATUS, body
    return ok_status, body


# Single records


def create_record(state: StandinState, call: Call) -> tuple[int, Any]:
    """POST /crm/v3/objects/{objectType}: create one record, with inline associations."""
    obj = object_name(call.path["object_type"])
    body = call.body_object()
    _check_required(obj, body.get("properties"))
    values = state.records.prepare_create(obj, body.get("properties"))
    links = _inline_associations(state, obj, body.get("associations"))
    record = state.records.insert(obj, values)
    for target, type_id in links:
        state.records.associate(record, target, type_id)
    return 201, state.records.record_json(record, "*")


def get_record(state: StandinState, call: Call) -> tuple[int, Any]:
    """GET /crm/v3/objects/{objectType}/{objectId}."""
    obj = object_name(call.path["object_type"])
    record = state.records.get(obj, call.path["record_id"], call.query_value("idProperty"))
    associations = call.query_list("associations") or []
    return 200, state.records.record_json(
        record, call.query_list("properties"),
        [object_name(item) for item in associations])


def update_record(state: StandinState, call: Call) -> tuple[int, Any]:
    """PATCH /crm/v3/objects/{objectType}/{objectId}: overwrite the given properties."""
    obj = object_name(call.path["object_type"])
    record = state.records.get(obj, call.path["record_id"], call.query_value("idProperty"))
    state.records.update(record, call.body_object().get("properties"))
    return 200, state.records.record_json(record, "*")


def _check_required(obj: str, properties: Any) -> None:
    """Reject a create without a property the object requires, such as a note's hs_timestamp.

    NOTE: the message text is assumed; the notes guide states only that hs_timestamp is
    required.
    """
    given = properties if isinstance(properties, dict) else {}
    missing = [name for name in REQUIRED_ON_CREATE.get(obj, ()) if given.get(name) in (None, "")]
    if missing:
        raise validation_error(f"Property values were not valid: {', '.join(missing)} is "
                               "required")


def _inline_associations(state: StandinState, obj: str,
                         items: Any) -> list[tuple[Record, int]]:
    """Resolve the ``associations`` of a create request before anything is written."""
    links = []
    for item in items or []:
        to_id = str((item.get("to") or {}).get("id", "")) if isinstance(item, dict) else ""
        for kind in item.get("types") or [] if isinstance(item, dict) else []:
            type_id = kind.get("associationTypeId")
            to_obj = next((to for (source, to), known in ASSOCIATION_TYPES.items()
                           if source == obj and known == type_id), None)
            if to_obj is None:
                raise validation_error(
                    f"Association type {type_id} is not a HUBSPOT_DEFINED type from {obj}")
            target = state.records.find(to_obj, to_id)
            if target is None:
                raise validation_error(f"Cannot associate with {to_obj} {to_id}: no such record")
            links.append((target, int(type_id)))
    return links


# Batches


def batch_create(state: StandinState, call: Call) -> tuple[int, Any]:
    """POST .../batch/create: check every input first, then create all of them."""
    obj = object_name(call.path["object_type"])
    started = state.now_iso()
    inputs = batch_inputs(call.body_object())
    for item in inputs:
        _check_required(obj, item.get("properties"))
    prepared = [state.records.prepare_create(obj, item.get("properties")) for item in inputs]
    for prop in state.schema.unique_properties(obj):
        reject_duplicates([values[prop] for values in prepared if values.get(prop)])
    links = [_inline_associations(state, obj, item.get("associations")) for item in inputs]
    results = []
    for values, record_links in zip(prepared, links, strict=True):
        record = state.records.insert(obj, values)
        for target, type_id in record_links:
            state.records.associate(record, target, type_id)
        results.append(state.records.record_json(record, "*"))
    return batch_response(state, started, results, [], ok_status=201)


def batch_update(state: StandinState, call: Call) -> tuple[int, Any]:
    """POST .../batch/update: update each input by record id or by its ``idProperty``."""
    obj = object_name(call.path["object_type"])
    started = state.now_iso()
    inputs = batch_inputs(call.body_object())
    reject_duplicates([str(item.get("id")) for item in inputs])
    results: list[Any] = []
    errors: list[dict[str, Any]] = []
    for item in inputs:
        record_id = str(item.get("id"))
        try:
            record = state.records.find(obj, record_id, item.get("idProperty"))
            if record is None:
                raise not_found(f"Object {OBJECT_ERROR_NAMES[obj]} {record_id} not found")
            state.records.update(record, item.get("properties"))
        except HubSpotError as error:
            errors.append(batch_error(error.body, [record_id]))
            continue
        results.append(state.records.record_json(record, "*"))
    return batch_response(state, started, results, errors)


def batch_upsert(state: StandinState, call: Call) -> tuple[int, Any]:
    """POST .../batch/upsert: create or update each input by its unique ``idProperty``."""
    obj = object_name(call.path["object_type"])
    started = state.now_iso()
    inputs = batch_inputs(call.body_object())
    reject_duplicates([f"{item.get('id')}" for item in inputs])
    results: list[Any] = []
    errors: list[dict[str, Any]] = []
    for item in inputs:
        value = str(item.get("id", ""))
        try:
            id_property = item.get("idProperty")
            if not isinstance(id_property, str) or not id_property:
                raise validation_error(
                    f"Input {value!r} has no idProperty; name a unique property such as email")
            record, created = state.records.upsert(obj, id_property, value,
                                                   item.get("properties"))
        except HubSpotError as error:
            errors.append(batch_error(error.body, [value]))
            continue
        results.append({**state.records.record_json(record, "*"), "new": created})
    return batch_response(state, started, results, errors)


def batch_read(state: StandinState, call: Call) -> tuple[int, Any]:
    """POST .../batch/read: read records by id or ``idProperty``; 207 lists missing ids."""
    obj = object_name(call.path["object_type"])
    started = state.now_iso()
    body = call.body_object()
    history = body.get("propertiesWithHistory") or []
    limit = PROPERTY_HISTORY_INPUT_LIMIT if history else BATCH_INPUT_LIMIT
    inputs = batch_inputs(body, limit)
    id_property = body.get("idProperty")
    if id_property not in (None, "", "hs_object_id"):
        state.records.require_unique_property(obj, str(id_property))
    wanted = body.get("properties") or None
    results = []
    missing = []
    for item in inputs:
        record = state.records.find(obj, str(item.get("id")), id_property)
        if record is None:
            missing.append(str(item.get("id")))
        else:
            results.append(state.records.record_json(record, wanted))
    if not missing:
        return batch_response(state, started, results, [])
    message = (f"Could not get some {OBJECT_ERROR_NAMES[obj]} objects, they may be deleted or "
               "not exist. Check that ids are valid.")
    if not results:
        # NOTE: a client library reports 404 when no id of the batch exists; assumed here.
        raise HubSpotError(404, error_body(message, "OBJECT_NOT_FOUND",
                                           context={"ids": missing}))
    error = batch_error(error_body(message, "OBJECT_NOT_FOUND"), missing)
    return batch_response(state, started, results, [error])


# Search


def search(state: StandinState, call: Call) -> tuple[int, Any]:
    """POST /crm/v3/objects/{objectType}/search over the eventually consistent index."""
    obj = object_name(call.path["object_type"])
    body = call.body_object()
    groups = check_search_request(body, set(state.schema.properties[obj]))
    found = [
        (record, props)
        for record, props in state.records.searchable(obj, state.config.indexing_delay_seconds)
        if matches(props, groups)
    ]
    found.sort(key=_sort_key(body.get("sorts")))
    if _descending(body.get("sorts")):
        found.reverse()
    after = int(body.get("after") or 0)
    limit = int(body.get("limit", 10))
    if after + limit > SEARCH_MAX_RESULTS:
        raise validation_error(
            f"Search can page through at most {SEARCH_MAX_RESULTS} results; narrow the filters")
    page = found[after:after + limit]
    wanted = body.get("properties") or None
    results = []
    for record, props in page:
        snapshot = Record(record.id, obj, props, record.created_at, record.updated_at)
        results.append(state.records.record_json(snapshot, wanted))
    response: dict[str, Any] = {"total": len(found), "results": results}
    if after + limit < len(found):
        response["paging"] = {"next": {"after": str(after + limit)}}
    return 200, response


def _sort_spec(sorts: Any) -> tuple[str, bool]:
    """Return (property, descending) of the first sort; HubSpot sorts by id by default."""
    if not sorts:
        return "hs_object_id", False
    first = sorts[0]
    if isinstance(first, str):
        return first.lstrip("-"), first.startswith("-")
    return str(first.get("propertyName")), first.get("direction") == "DESCENDING"


def _sort_key(sorts: Any) -> Any:
    prop, _ = _sort_spec(sorts)

    def key(item: tuple[Record, dict[str, str]]) -> tuple[int, Any]:
        value = item[1].get(prop, "")
        if value.isdigit():
            return (0, int(value))
        return (1, value)

    return key


def _descending(sorts: Any) -> bool:
    return _sort_spec(sorts)[1]
