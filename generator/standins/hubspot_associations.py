"""Handlers of the associations v4 endpoints: batch create, default, read, and single PUT.

Both records of an association must exist; an input naming a missing record
fails alone and the response is 207 Multi-Status with the other results.
"""

from __future__ import annotations

from typing import Any

from .hubspot_config import (
    ASSOCIATION_CREATE_LIMIT,
    ASSOCIATION_READ_LIMIT,
    ASSOCIATION_TYPES,
    OBJECT_TYPE_IDS,
    PRIMARY_ASSOCIATION_TYPES,
)
from .hubspot_errors import HubSpotError, batch_error, error_body, validation_error
from .hubspot_http import Call, object_name
from .hubspot_objects import batch_inputs, batch_response
from .hubspot_records import Record
from .hubspot_state import StandinState

CREATED = 201


def _pair(call: Call) -> tuple[str, str]:
    return object_name(call.path["from_type"]), object_name(call.path["to_type"])


def _default_type(from_obj: str, to_obj: str) -> int:
    type_id = ASSOCIATION_TYPES.get((from_obj, to_obj))
    if type_id is None:
        raise validation_error(f"No default association type exists from {from_obj} to {to_obj}")
    return type_id


def _records(state: StandinState, from_obj: str, to_obj: str,
             item: dict[str, Any]) -> tuple[Record, Record]:
    """Return both records of an input, or raise the error for the one that is missing."""
    from_id = str((item.get("from") or {}).get("id", ""))
    to_id = str((item.get("to") or {}).get("id", ""))
    source = state.records.find(from_obj, from_id)
    target = state.records.find(to_obj, to_id)
    # NOTE: HubSpot's exact message for a missing record here was not confirmed.
    if source is None:
        raise validation_error(f"No {from_obj} record with id {from_id} exists",
                               context={"fromObjectId": [from_id]})
    if target is None:
        raise validation_error(f"No {to_obj} record with id {to_id} exists",
                               context={"toObjectId": [to_id]})
    return source, target


def _labelled_result(source: Record, target: Record) -> dict[str, Any]:
    return {
        "fromObjectTypeId": OBJECT_TYPE_IDS[source.obj],
        "fromObjectId": source.id,
        "toObjectTypeId": OBJECT_TYPE_IDS[target.obj],
        "toObjectId": target.id,
        "labels": [],
    }


def _default_result(source: Record, target: Record, type_id: int) -> dict[str, Any]:
    return {
        "from": {"id": source.id},
        "to": {"id": target.id},
        "associationSpec": {"associationCategory": "HUBSPOT_DEFINED",
                            "associationTypeId": type_id},
    }


def batch_create(state: StandinState, call: Call) -> tuple[int, Any]:
    """POST /crm/v4/associations/{from}/{to}/batch/create with explicit types."""
    from_obj, to_obj = _pair(call)
    started = state.now_iso()
    inputs = batch_inputs(call.body_object(), ASSOCIATION_CREATE_LIMIT)
    results: list[Any] = []
    errors: list[dict[str, Any]] = []
    for item in inputs:
        try:
            source, target = _records(state, from_obj, to_obj, item)
            types = item.get("types")
            if not isinstance(types, list) or not types:
                raise validation_error("Every input needs types with associationCategory "
                                       "and associationTypeId")
            for kind in types:
                state.records.associate(source, target, int(kind.get("associationTypeId", 0)),
                                        str(kind.get("associationCategory", "")))
        except HubSpotError as error:
            errors.append(batch_error(error.body, _input_ids(item)))
            continue
        results.append(_labelled_result(source, target))
    return batch_response(state, started, results, errors, ok_status=CREATED)


def batch_default(state: StandinState, call: Call) -> tuple[int, Any]:
    """POST /crm/v4/associations/{from}/{to}/batch/associate/default."""
    from_obj, to_obj = _pair(call)
    started = state.now_iso()
    inputs = batch_inputs(call.body_object(), ASSOCIATION_CREATE_LIMIT)
    type_id = _default_type(from_obj, to_obj)
    results: list[Any] = []
    errors: list[dict[str, Any]] = []
    for item in inputs:
        try:
            source, target = _records(state, from_obj, to_obj, item)
        except HubSpotError as error:
            errors.append(batch_error(error.body, _input_ids(item)))
            continue
        state.records.associate(source, target, type_id)
        results.append(_default_result(source, target, type_id))
    return batch_response(state, started, results, errors)


def put_default(state: StandinState, call: Call) -> tuple[int, Any]:
    """PUT /crm/v4/objects/{from}/{fromId}/associations/default/{to}/{toId}."""
    from_obj, to_obj = _pair(call)
    started = state.now_iso()
    item = {"from": {"id": call.path["from_id"]}, "to": {"id": call.path["to_id"]}}
    source, target = _records(state, from_obj, to_obj, item)
    type_id = _default_type(from_obj, to_obj)
    state.records.associate(source, target, type_id)
    return batch_response(state, started, [_default_result(source, target, type_id)], [])


def batch_read(state: StandinState, call: Call) -> tuple[int, Any]:
    """POST /crm/v4/associations/{from}/{to}/batch/read."""
    from_obj, to_obj = _pair(call)
    started = state.now_iso()
    inputs = batch_inputs(call.body_object(), ASSOCIATION_READ_LIMIT)
    results: list[Any] = []
    errors: list[dict[str, Any]] = []
    for item in inputs:
        record_id = str(item.get("id", ""))
        record = state.records.find(from_obj, record_id)
        if record is None:
            body = error_body(f"No {from_obj} record with id {record_id} exists",
                              "OBJECT_NOT_FOUND")
            errors.append(batch_error(body, [record_id]))
            continue
        linked = record.associations.get(to_obj, {})
        results.append({
            "from": {"id": record.id},
            "to": [
                {"toObjectId": to_id,
                 "associationTypes": [{"category": "HUBSPOT_DEFINED", "typeId": type_id,
                                       "label": _label(from_obj, to_obj, type_id)}
                                      for type_id in sorted(type_ids)]}
                for to_id, type_ids in linked.items()
            ],
        })
    return batch_response(state, started, results, errors)


def _label(from_obj: str, to_obj: str, type_id: int) -> str | None:
    if type_id == PRIMARY_ASSOCIATION_TYPES.get((from_obj, to_obj)):
        return "Primary"
    return None


def _input_ids(item: dict[str, Any]) -> list[str]:
    return [str((item.get(side) or {}).get("id", "")) for side in ("from", "to")]
