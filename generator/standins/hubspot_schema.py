"""Property groups, properties and pipelines of the stand-in's account.

Shapes follow the properties v3 and pipelines v3 APIs. Every method expects the
caller to hold the state's lock, and raises ``HubSpotError`` for bad input.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from .hubspot_config import (
    DEFAULT_GROUPS,
    DEFAULT_OPTIONS,
    DEFAULT_PIPELINES,
    DEFAULT_PROPERTIES,
    EXTERNAL_OPTION_PROPERTIES,
    MAX_UNIQUE_PROPERTIES_PER_OBJECT,
    OBJECT_TYPE_IDS,
    SYSTEM_PROPERTIES,
)
from .hubspot_errors import HubSpotError, conflict, error_body, not_found, validation_error

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
# Valid (type, fieldType) pairs of the properties API.
FIELD_TYPES = {
    "string": {"text", "textarea", "html", "phonenumber", "file"},
    "number": {"number", "calculation_equation"},
    "date": {"date"},
    "datetime": {"date"},
    "enumeration": {"select", "radio", "checkbox", "booleancheckbox", "calculation_equation"},
    "bool": {"booleancheckbox"},
    "phone_number": {"phonenumber"},
}
UNIQUE_ALLOWED_TYPES = {"string", "number"}
_PROPERTY_PATCH_KEYS = {"label", "description", "groupName", "options", "fieldType",
                        "displayOrder", "hidden", "formField", "type"}


class SchemaStore:
    """Groups, properties and pipelines per object type."""

    def __init__(self, next_id: Callable[[], str], now_iso: Callable[[], str]) -> None:
        self._next_id = next_id
        self._now_iso = now_iso
        self.groups: dict[str, dict[str, dict[str, Any]]] = {}
        self.properties: dict[str, dict[str, dict[str, Any]]] = {}
        self.pipelines: dict[str, dict[str, dict[str, Any]]] = {}
        self._load_defaults()

    def _load_defaults(self) -> None:
        for obj in OBJECT_TYPE_IDS:
            name, label = DEFAULT_GROUPS[obj]
            self.groups[obj] = {name: _group(name, label, 0)}
            self.properties[obj] = {}
            defaults = {**DEFAULT_PROPERTIES.get(obj, {}), **SYSTEM_PROPERTIES}
            for position, (prop, (kind, field_type)) in enumerate(defaults.items()):
                values = DEFAULT_OPTIONS.get((obj, prop), ())
                self.properties[obj][prop] = self._property_record({
                    "name": prop, "label": prop, "type": kind, "fieldType": field_type,
                    "groupName": name, "displayOrder": position,
                    "options": [{"label": value, "value": value, "displayOrder": order}
                                for order, value in enumerate(values)],
                }, hubspot_defined=True, read_only=prop in SYSTEM_PROPERTIES,
                    external=(obj, prop) in EXTERNAL_OPTION_PROPERTIES)
        for obj, pipelines in DEFAULT_PIPELINES.items():
            self.pipelines[obj] = {}
            for pipeline in pipelines:
                stored: dict[str, Any] = copy.deepcopy(pipeline)
                self._stamp(stored)
                for stage in stored["stages"]:
                    self._stamp(stage)
                    stage["writePermissions"] = "CRM_PERMISSIONS_ENFORCEMENT"
                self.pipelines[obj][str(stored["id"])] = stored

    def _stamp(self, item: dict[str, Any]) -> None:
        now = self._now_iso()
        item.setdefault("createdAt", now)
        item["updatedAt"] = now
        item.setdefault("archived", False)

    # Groups

    def list_groups(self, obj: str) -> list[dict[str, Any]]:
        """Return the groups of ``obj`` in display order."""
        return sorted(self.groups[obj].values(), key=lambda group: group["displayOrder"])

    def create_group(self, obj: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create a property group from a groups API request body."""
        name = body.get("name")
        label = body.get("label")
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise validation_error(
                f"Invalid group name {name!r}: use lower-case letters, digits and underscores, "
                "starting with a letter")
        if not isinstance(label, str) or not label:
            raise validation_error(f"Group {name} needs a non-empty label")
        if name in self.groups[obj]:
            raise conflict(f"A property group named '{name}' already exists.",
                           "OBJECT_ALREADY_EXISTS")
        group = _group(name, label, int(body.get("displayOrder", -1)))
        self.groups[obj][name] = group
        return group

    def update_group(self, obj: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """Change the label or display order of a group."""
        group = self.groups[obj].get(name)
        if group is None:
            raise not_found(f"Unable to find property group {name} for object type {obj}")
        if "label" in body:
            if not isinstance(body["label"], str) or not body["label"]:
                raise validation_error(f"Group {name} needs a non-empty label")
            group["label"] = body["label"]
        if "displayOrder" in body:
            group["displayOrder"] = int(body["displayOrder"])
        return group

    # Properties

    def get_property(self, obj: str, name: str) -> dict[str, Any]:
        """Return the property ``name`` of ``obj`` or raise a 404."""
        prop = self.properties[obj].get(name)
        if prop is None:
            raise not_found(f"Unable to find property {name} for object type {obj}")
        return prop

    def unique_properties(self, obj: str) -> list[str]:
        """Return the names of the properties of ``obj`` that HubSpot keeps unique."""
        names = [name for name, prop in self.properties[obj].items() if prop["hasUniqueValue"]]
        if obj == "contacts":
            names.insert(0, "email")
        return names

    def create_property(self, obj: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create a property from a properties API request body."""
        name = body.get("name")
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise validation_error(
                f"Invalid property name {name!r}: use lower-case letters, digits and "
                "underscores, starting with a letter")
        if name in self.properties[obj]:
            raise conflict(f"Property named '{name}' already exists.", "OBJECT_ALREADY_EXISTS")
        self._check_definition(obj, body)
        if body.get("hasUniqueValue"):
            self._check_unique_allowed(obj, body)
        prop = self._property_record(body, hubspot_defined=False, read_only=False,
                                     external=False)
        self.properties[obj][name] = prop
        return prop

    def update_property(self, obj: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """Change a property's definition; ``name`` and ``hasUniqueValue`` are fixed."""
        prop = self.get_property(obj, name)
        if "hasUniqueValue" in body and bool(body["hasUniqueValue"]) != prop["hasUniqueValue"]:
            raise validation_error(
                f"hasUniqueValue of property {name} cannot be changed after creation")
        if prop["modificationMetadata"]["readOnlyDefinition"]:
            raise validation_error(f"Property {name} is read-only and cannot be changed")
        changes = {key: value for key, value in body.items() if key in _PROPERTY_PATCH_KEYS}
        merged = {**prop, **changes}
        self._check_definition(obj, merged)
        if "options" in changes:
            changes["options"] = _options(changes["options"])
        prop.update(changes)
        prop["updatedAt"] = self._now_iso()
        return prop

    def delete_property(self, obj: str, name: str) -> None:
        """Delete a custom property; HubSpot's own properties cannot be deleted."""
        prop = self.get_property(obj, name)
        if prop["hubspotDefined"]:
            raise validation_error(f"Property {name} is defined by HubSpot and cannot be deleted")
        del self.properties[obj][name]

    def _check_definition(self, obj: str, body: dict[str, Any]) -> None:
        name = body.get("name")
        label = body.get("label")
        kind = body.get("type")
        field_type = body.get("fieldType")
        group = body.get("groupName")
        if not isinstance(label, str) or not label:
            raise validation_error(f"Property {name} needs a non-empty label")
        if kind not in FIELD_TYPES:
            raise validation_error(
                f"Invalid type {kind!r} for property {name}: use one of "
                + ", ".join(sorted(FIELD_TYPES)))
        if field_type not in FIELD_TYPES[str(kind)]:
            raise validation_error(
                f"Invalid fieldType {field_type!r} for a {kind} property {name}: use one of "
                + ", ".join(sorted(FIELD_TYPES[str(kind)])))
        if group not in self.groups[obj]:
            raise validation_error(
                f"Property group {group!r} does not exist for object type {obj}; "
                "create it first")
        if kind == "enumeration" and not body.get("options") and not body.get("externalOptions"):
            raise validation_error(f"Enumeration property {name} needs options")
        for option in body.get("options") or []:
            if not isinstance(option, dict) or not option.get("value") or not option.get("label"):
                raise validation_error(f"Every option of property {name} needs a label and a value")

    def _check_unique_allowed(self, obj: str, body: dict[str, Any]) -> None:
        if body.get("type") not in UNIQUE_ALLOWED_TYPES:
            raise validation_error(
                f"hasUniqueValue is allowed only on string and number properties, "
                f"not on {body.get('type')} property {body.get('name')}")
        count = sum(1 for prop in self.properties[obj].values() if prop["hasUniqueValue"])
        if count >= MAX_UNIQUE_PROPERTIES_PER_OBJECT:
            raise validation_error(
                f"Object type {obj} already has {MAX_UNIQUE_PROPERTIES_PER_OBJECT} properties "
                "with unique values, the maximum")

    def _property_record(self, body: dict[str, Any], *, hubspot_defined: bool,
                         read_only: bool, external: bool) -> dict[str, Any]:
        now = self._now_iso()
        return {
            "name": body["name"],
            "label": body["label"],
            "type": body["type"],
            "fieldType": body["fieldType"],
            "description": body.get("description", ""),
            "groupName": body["groupName"],
            "options": _options(body.get("options") or []),
            "displayOrder": int(body.get("displayOrder", -1)),
            "calculated": False,
            "externalOptions": external or bool(body.get("externalOptions", False)),
            "hasUniqueValue": bool(body.get("hasUniqueValue", False)),
            "hidden": bool(body.get("hidden", False)),
            "hubspotDefined": hubspot_defined,
            "formField": bool(body.get("formField", False)),
            "modificationMetadata": {
                "archivable": not hubspot_defined,
                "readOnlyDefinition": hubspot_defined and read_only,
                "readOnlyValue": read_only,
            },
            "createdAt": now,
            "updatedAt": now,
            "archived": False,
        }

    # Pipelines

    def pipelines_of(self, obj: str) -> dict[str, dict[str, Any]]:
        """Return the pipelines of ``obj`` by id, or raise the error for objects without them."""
        if obj not in self.pipelines:
            raise HubSpotError(400, error_body(
                f"Object type {obj} does not support pipelines; use deals or tickets",
                "VALIDATION_ERROR"))
        return self.pipelines[obj]

    def get_pipeline(self, obj: str, pipeline_id: str) -> dict[str, Any]:
        """Return one pipeline or raise a 404."""
        pipeline = self.pipelines_of(obj).get(pipeline_id)
        if pipeline is None:
            raise not_found(f"Unable to find pipeline {pipeline_id} for object type {obj}")
        return pipeline

    def create_pipeline(self, obj: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create a pipeline with its stages; HubSpot generates the ids."""
        pipelines = self.pipelines_of(obj)
        label = body.get("label")
        if not isinstance(label, str) or not label:
            raise validation_error("A pipeline needs a non-empty label")
        if any(p["label"] == label for p in pipelines.values()):
            raise conflict(f"A pipeline with label '{label}' already exists.")
        stages = body.get("stages")
        if not isinstance(stages, list) or not stages:
            raise validation_error(f"Pipeline {label!r} needs at least one stage")
        pipeline: dict[str, Any] = {
            "id": self._next_id(),
            "label": label,
            "displayOrder": int(body.get("displayOrder", 0)),
            "stages": [],
        }
        self._stamp(pipeline)
        for stage_body in stages:
            pipeline["stages"].append(self._stage(obj, pipeline, stage_body))
        pipelines[pipeline["id"]] = pipeline
        return pipeline

    def update_pipeline(self, obj: str, pipeline_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Change a pipeline's label, display order or archived flag."""
        pipeline = self.get_pipeline(obj, pipeline_id)
        if "label" in body:
            if not isinstance(body["label"], str) or not body["label"]:
                raise validation_error("A pipeline needs a non-empty label")
            pipeline["label"] = body["label"]
        if "displayOrder" in body:
            pipeline["displayOrder"] = int(body["displayOrder"])
        if "archived" in body:
            pipeline["archived"] = bool(body["archived"])
        pipeline["updatedAt"] = self._now_iso()
        return pipeline

    def create_stage(self, obj: str, pipeline_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Add a stage to a pipeline."""
        pipeline = self.get_pipeline(obj, pipeline_id)
        stage = self._stage(obj, pipeline, body)
        pipeline["stages"].append(stage)
        return stage

    def update_stage(self, obj: str, pipeline_id: str, stage_id: str,
                     body: dict[str, Any]) -> dict[str, Any]:
        """Change a stage's label, display order or metadata."""
        pipeline = self.get_pipeline(obj, pipeline_id)
        stage: dict[str, Any] | None = next(
            (s for s in pipeline["stages"] if s["id"] == stage_id), None)
        if stage is None:
            raise not_found(f"Unable to find stage {stage_id} in pipeline {pipeline_id}")
        merged = {**stage, **{k: v for k, v in body.items() if k != "id"}}
        if "metadata" in body:
            merged["metadata"] = {**stage["metadata"], **(body["metadata"] or {})}
        checked = _check_stage(obj, merged)
        stage.update({key: checked[key] for key in ("label", "displayOrder", "metadata")})
        stage["updatedAt"] = self._now_iso()
        return stage

    def _stage(self, obj: str, pipeline: dict[str, Any], body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise validation_error("Every stage must be a JSON object")
        checked = _check_stage(obj, body)
        if any(s["label"] == checked["label"] for s in pipeline["stages"]):
            raise validation_error(
                f"Pipeline {pipeline['label']!r} already has a stage labelled "
                f"{checked['label']!r}")
        stage = {"id": self._next_id(), **checked,
                 "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT"}
        self._stamp(stage)
        return stage

    def stage_ids(self, obj: str, pipeline_id: str) -> list[str] | None:
        """Return the stage ids of a pipeline, or None when it does not exist."""
        pipeline = self.pipelines.get(obj, {}).get(pipeline_id)
        if pipeline is None:
            return None
        return [stage["id"] for stage in pipeline["stages"]]


def _group(name: str, label: str, order: int) -> dict[str, Any]:
    return {"name": name, "label": label, "displayOrder": order, "archived": False}


def _options(options: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "label": option["label"],
            "value": option["value"],
            "displayOrder": int(option.get("displayOrder", position)),
            "hidden": bool(option.get("hidden", False)),
            "description": option.get("description", ""),
        }
        for position, option in enumerate(options)
    ]


def _check_stage(obj: str, body: dict[str, Any]) -> dict[str, Any]:
    """Return a stage's label, order and metadata (as strings) after HubSpot's checks.

    Deal stages need ``metadata.probability`` between 0.0 and 1.0; ticket stages need
    ``metadata.ticketState`` OPEN or CLOSED.
    """
    label = body.get("label")
    if not isinstance(label, str) or not label:
        raise validation_error("Every stage needs a non-empty label")
    raw_metadata = body.get("metadata") or {}
    if not isinstance(raw_metadata, dict):
        raise validation_error(f"metadata of stage {label!r} must be a JSON object")
    # HubSpot returns metadata values as strings; numbers and booleans are accepted.
    metadata = {key: _metadata_text(value) for key, value in raw_metadata.items()}
    if obj == "deals":
        _check_probability(label, metadata.get("probability"))
    if obj == "tickets" and metadata.get("ticketState") not in ("OPEN", "CLOSED"):
        raise validation_error(
            f"Ticket stage {label!r} needs metadata.ticketState OPEN or CLOSED, "
            f"got {metadata.get('ticketState')!r}")
    if "isClosed" in metadata and metadata["isClosed"] not in ("true", "false"):
        raise validation_error(
            f"metadata.isClosed of stage {label!r} must be true or false, "
            f"got {metadata['isClosed']!r}")
    return {"label": label, "displayOrder": int(body.get("displayOrder", 0)),
            "metadata": metadata}


def _metadata_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _check_probability(label: str, value: str | None) -> None:
    if value is None:
        raise validation_error(
            f"Deal stage {label!r} needs metadata.probability, a number from 0.0 to 1.0")
    try:
        probability = Decimal(value)
    except InvalidOperation:
        probability = Decimal(-1)
    if not Decimal(0) <= probability <= Decimal(1):
        raise validation_error(
            f"metadata.probability of deal stage {label!r} must be a number from 0.0 "
            f"to 1.0, got {value!r}")
