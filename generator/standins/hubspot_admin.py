"""Handlers of the account set-up endpoints: properties, groups, pipelines, lists, events."""

from __future__ import annotations

from typing import Any

from .hubspot_errors import not_found
from .hubspot_http import NO_CONTENT, Call, object_name
from .hubspot_lists import without_filters
from .hubspot_state import StandinState

CREATED = 201


# Properties and groups


def list_properties(state: StandinState, call: Call) -> tuple[int, Any]:
    """GET /crm/v3/properties/{objectType}."""
    obj = object_name(call.path["object_type"])
    return 200, {"results": list(state.schema.properties[obj].values())}


def create_property(state: StandinState, call: Call) -> tuple[int, Any]:
    """POST /crm/v3/properties/{objectType}."""
    obj = object_name(call.path["object_type"])
    return CREATED, state.schema.create_property(obj, call.body_object())


def get_property(state: StandinState, call: Call) -> tuple[int, Any]:
    """GET /crm/v3/properties/{objectType}/{propertyName}."""
    obj = object_name(call.path["object_type"])
    return 200, state.schema.get_property(obj, call.path["name"])


def update_property(state: StandinState, call: Call) -> tuple[int, Any]:
    """PATCH /crm/v3/properties/{objectType}/{propertyName}."""
    obj = object_name(call.path["object_type"])
    return 200, state.schema.update_property(obj, call.path["name"], call.body_object())


def delete_property(state: StandinState, call: Call) -> tuple[int, Any]:
    """DELETE /crm/v3/properties/{objectType}/{propertyName}."""
    obj = object_name(call.path["object_type"])
    state.schema.delete_property(obj, call.path["name"])
    return NO_CONTENT, None


def list_groups(state: StandinState, call: Call) -> tuple[int, Any]:
    """GET /crm/v3/properties/{objectType}/groups."""
    obj = object_name(call.path["object_type"])
    return 200, {"results": state.schema.list_groups(obj)}


def create_group(state: StandinState, call: Call) -> tuple[int, Any]:
    """POST /crm/v3/properties/{objectType}/groups."""
    obj = object_name(call.path["object_type"])
    return CREATED, state.schema.create_group(obj, call.body_object())


def update_group(state: StandinState, call: Call) -> tuple[int, Any]:
    """PATCH /crm/v3/properties/{objectType}/groups/{groupName}."""
    obj = object_name(call.path["object_type"])
    return 200, state.schema.update_group(obj, call.path["name"], call.body_object())


# Pipelines


def list_pipelines(state: StandinState, call: Call) -> tuple[int, Any]:
    """GET /crm/v3/pipelines/{objectType}."""
    obj = object_name(call.path["object_type"])
    pipelines = sorted(state.schema.pipelines_of(obj).values(),
                       key=lambda pipeline: pipeline["displayOrder"])
    return 200, {"results": pipelines}


def create_pipeline(state: StandinState, call: Call) -> tuple[int, Any]:
    """POST /crm/v3/pipelines/{objectType}."""
    obj = object_name(call.path["object_type"])
    return CREATED, state.schema.create_pipeline(obj, call.body_object())


def get_pipeline(state: StandinState, call: Call) -> tuple[int, Any]:
    """GET /crm/v3/pipelines/{objectType}/{pipelineId}."""
    obj = object_name(call.path["object_type"])
    return 200, state.schema.get_pipeline(obj, call.path["pipeline_id"])


def update_pipeline(state: StandinState, call: Call) -> tuple[int, Any]:
    """PATCH /crm/v3/pipelines/{objectType}/{pipelineId}."""
    obj = object_name(call.path["object_type"])
    return 200, state.schema.update_pipeline(obj, call.path["pipeline_id"], call.body_object())


def list_stages(state: StandinState, call: Call) -> tuple[int, Any]:
    """GET /crm/v3/pipelines/{objectType}/{pipelineId}/stages."""
    obj = object_name(call.path["object_type"])
    return 200, {"results": state.schema.get_pipeline(obj, call.path["pipeline_id"])["stages"]}


def create_stage(state: StandinState, call: Call) -> tuple[int, Any]:
    """POST /crm/v3/pipelines/{objectType}/{pipelineId}/stages."""
    obj = object_name(call.path["object_type"])
    return CREATED, state.schema.create_stage(obj, call.path["pipeline_id"], call.body_object())


def update_stage(state: StandinState, call: Call) -> tuple[int, Any]:
    """PATCH /crm/v3/pipelines/{objectType}/{pipelineId}/stages/{stageId}."""
    obj = object_name(call.path["object_type"])
    return 200, state.schema.update_stage(obj, call.path["pipeline_id"], call.path["stage_id"],
                                          call.body_object())


# Lists v3


def _list_view(call: Call, entry: dict[str, Any]) -> dict[str, Any]:
    include = (call.query_value("includeFilters") or "").lower() == "true"
    return entry if include else without_filters(entry)


def create_list(state: StandinState, call: Call) -> tuple[int, Any]:
    """POST /crm/v3/lists."""
    return 200, {"list": state.lists.create(call.body_object())}


def get_list(state: StandinState, call: Call) -> tuple[int, Any]:
    """GET /crm/v3/lists/{listId}; filters only with ``includeFilters=true``."""
    return 200, {"list": _list_view(call, state.lists.get(call.path["list_id"]))}


def get_list_by_name(state: StandinState, call: Call) -> tuple[int, Any]:
    """GET /crm/v3/lists/object-type-id/{objectTypeId}/name/{listName}."""
    entry = state.lists.find_by_name(call.path["object_type_id"], call.path["list_name"])
    if entry is None:
        raise not_found(f"List {call.path['list_name']} does not exist")
    return 200, {"list": _list_view(call, entry)}


def search_lists(state: StandinState, call: Call) -> tuple[int, Any]:
    """POST /crm/v3/lists/search."""
    return 200, state.lists.search(call.body_object())


def rename_list(state: StandinState, call: Call) -> tuple[int, Any]:
    """PUT /crm/v3/lists/{listId}/update-list-name?listName=..."""
    entry = state.lists.rename(call.path["list_id"], call.query_value("listName"))
    return 200, {"updatedList": _list_view(call, entry)}


def update_list_filters(state: StandinState, call: Call) -> tuple[int, Any]:
    """PUT /crm/v3/lists/{listId}/update-list-filters."""
    entry = state.lists.update_filters(call.path["list_id"], call.body_object())
    return 200, {"updatedList": entry}


def delete_list(state: StandinState, call: Call) -> tuple[int, Any]:
    """DELETE /crm/v3/lists/{listId}."""
    state.lists.delete(call.path["list_id"])
    return NO_CONTENT, None


# Account information


def account_details(state: StandinState, call: Call) -> tuple[int, Any]:
    """GET /account-info/v3/details: the portal id, the way clients tell accounts apart."""
    # NOTE: clients read only portalId. The other fields follow the documented example.
    return 200, {"portalId": state.config.portal_id, "accountType": "STANDARD",
                 "timeZone": "Asia/Riyadh", "companyCurrency": "SAR",
                 "additionalCurrencies": [], "utcOffset": "+03:00",
                 "utcOffsetMilliseconds": 10_800_000, "uiDomain": "app.hubspot.com",
                 "dataHostingLocation": "na1"}


# Custom behavioral events


def list_event_definitions(state: StandinState, call: Call) -> tuple[int, Any]:
    """GET /events/v3/event-definitions."""
    definitions = list(state.events.definitions.values())
    return 200, {"total": len(definitions), "results": definitions}


def create_event_definition(state: StandinState, call: Call) -> tuple[int, Any]:
    """POST /events/v3/event-definitions."""
    return CREATED, state.events.define(call.body_object())


def send_event(state: StandinState, call: Call) -> tuple[int, Any]:
    """POST /events/v3/send: 204 once the occurrence passes the checks."""
    state.events.send(call.body_object())
    return NO_CONTENT, None
