"""Set up a stand-in account from a project's ``crm/desired-state.yaml`` like ``rabt crm apply``.

Only the HubSpot API's own keys of each item are sent; the desired state's extra
keys (``label_ar``, ``used_by``, ``note``, ...) are documentation for people.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .hubspot_errors import HubSpotError
from .hubspot_state import StandinState

_PROPERTY_KEYS = ("name", "label", "type", "fieldType", "groupName", "description",
                  "options", "hasUniqueValue", "displayOrder", "hidden", "formField")


def seed_state(state: StandinState, desired_state: Mapping[str, Any]) -> dict[str, Any]:
    """Create the groups, properties and pipelines of ``desired_state`` that do not exist yet.

    Returns:
        The ids the stand-in gave each pipeline and stage, as
        ``{"pipelines": {label: {"id": ..., "stages": {key or label: id}}}}``.

    Raises:
        ValueError: The desired state is not for HubSpot, or an item is invalid; the
            message names the item and HubSpot's error.
    """
    crm = desired_state.get("crm")
    if crm != "hubspot":
        raise ValueError(f"desired state is for crm {crm!r}; the HubSpot stand-in needs "
                         "crm: hubspot (generate the project with --set crm=hubspot)")
    with state.lock:
        for group in desired_state.get("property_groups") or []:
            _apply(f"property group {group.get('name')!r} on {group.get('object')}",
                   lambda group=group: _ensure_group(state, group))
        for prop in desired_state.get("properties") or []:
            _apply(f"property {prop.get('name')!r} on {prop.get('object')}",
                   lambda prop=prop: _ensure_property(state, prop))
        pipelines: dict[str, Any] = {}
        for pipeline in desired_state.get("pipelines") or []:
            label = str(pipeline.get("label"))
            pipelines[label] = _apply(f"pipeline {label!r}",
                                      lambda pipeline=pipeline: _ensure_pipeline(state, pipeline))
    return {"pipelines": pipelines}


def _apply(what: str, action: Any) -> Any:
    try:
        return action()
    except HubSpotError as error:
        raise ValueError(f"cannot seed {what}: {error.body.get('message')}") from error
    except (AttributeError, KeyError, TypeError) as error:
        raise ValueError(f"cannot seed {what}: malformed item ({error})") from error


def _ensure_group(state: StandinState, group: Mapping[str, Any]) -> None:
    obj = str(group["object"])
    if group["name"] not in state.schema.groups[obj]:
        state.schema.create_group(obj, {"name": group["name"], "label": group["label"]})


def _ensure_property(state: StandinState, prop: Mapping[str, Any]) -> None:
    obj = str(prop["object"])
    if prop["name"] in state.schema.properties[obj]:
        return
    body = {key: prop[key] for key in _PROPERTY_KEYS if key in prop}
    state.schema.create_property(obj, body)


def _ensure_pipeline(state: StandinState, pipeline: Mapping[str, Any]) -> dict[str, Any]:
    obj = str(pipeline["object"])
    existing = next((p for p in state.schema.pipelines_of(obj).values()
                     if p["label"] == pipeline["label"]), None)
    if existing is None:
        body = {
            "label": pipeline["label"],
            "displayOrder": pipeline.get("displayOrder", 0),
            "stages": [
                {"label": stage["label"], "displayOrder": stage.get("displayOrder", 0),
                 "metadata": stage.get("metadata") or {}}
                for stage in pipeline.get("stages") or []
            ],
        }
        existing = state.schema.create_pipeline(obj, body)
    by_label = {stage["label"]: stage["id"] for stage in existing["stages"]}
    stages = {}
    for stage in pipeline.get("stages") or []:
        stages[str(stage.get("key") or stage["label"])] = by_label.get(stage["label"])
    return {"id": existing["id"], "stages": stages}
