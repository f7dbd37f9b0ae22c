"""Lists v3 (segments) and custom behavioral events of the HubSpot stand-in.

Every method expects the caller to hold the state's lock and raises ``HubSpotError``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .hubspot_config import OBJECT_ALIASES, OBJECT_TYPE_IDS
from .hubspot_errors import conflict, not_found, validation_error
from .hubspot_schema import SchemaStore

PROCESSING_TYPES = ("MANUAL", "DYNAMIC", "SNAPSHOT")
# Custom behavioral event limits (HubSpot changelog, effective 2021-09-20).
# NOTE: these 2021 limits were not re-checked against the current limits page.
EVENT_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
EVENT_NAME_MAX = 50
EVENT_VALUE_MAX = 50
EVENT_URL_VALUE_MAX = 200
EVENT_PROPERTIES_MAX = 50
EVENT_PROPERTY_TYPES = {"string", "number", "enumeration", "datetime"}
_PRIMARY_OBJECTS = {"CONTACT": "0-1", "COMPANY": "0-2", "DEAL": "0-3", "TICKET": "0-5"}


class ListStore:
    """Lists v3 definitions; the stand-in keeps no memberships."""

    def __init__(self, schema: SchemaStore, now_iso: Callable[[], str]) -> None:
        self._schema = schema
        self._now_iso = now_iso
        self._next = 1
        self.lists: dict[str, dict[str, Any]] = {}

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create a list from a lists API request body."""
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise validation_error("A list needs a non-empty name")
        object_type_id = body.get("objectTypeId")
        obj = _object_for(object_type_id)

        processing = body.get("processingType")
        if processing not in PROCESSING_TYPES:
            raise validation_error(
                f"Invalid processingType {processing!r}; use one of {', '.join(PROCESSING_TYPES)}")
        if self.find_by_name(str(object_type_id), name) is not None:
            raise conflict(f"A list named '{name}' already exists.")

        branch = body.get("filterBranch")
        if processing == "DYNAMIC" and branch is None:
            raise validation_error("A DYNAMIC list needs a filterBranch")
        if branch is not None:
            self._check_branch(obj, branch, root=True)

        now = self._now_iso()
        entry = {
            "listId": str(self._next),
            "listVersion": 1,
            "name": name,
            "objectTypeId": object_type_id,
            "processingType": processing,
            "processingStatus": "COMPLETE",
            "createdAt": now,
            "updatedAt": now,
            "filtersUpdatedAt": now,
            "size": 0,
        }
        if branch is not None:
            entry["filterBranch"] = branch
        self._next += 1
        self.lists[entry["listId"]] = entry
        return entry

    def get(self, list_id: str) -> dict[str, Any]:
        """Return a list by id or raise a 404."""
        entry = self.lists.get(list_id)
        if entry is None:
            raise not_found(f"List {list_id} does not exist")
        return entry

    def find_by_name(self, object_type_id: str, name: str) -> dict[str, Any] | None:
        """Return the list of ``object_type_id`` named ``name``, ignoring case."""
        for entry in self.lists.values():
            if entry["objectTypeId"] == object_type_id and entry["name"].lower() == name.lower():
                return entry
        return None

    def rename(self, list_id: str, name: Any) -> dict[str, Any]:
        """Rename a list; names stay unique per object type."""
        entry = self.get(list_id)
        if not isinstance(name, str) or not name.strip():
            raise validation_error("listName must be a non-empty name")
        other = self.find_by_name(entry["objectTypeId"], name)
        if other is not None and other["listId"] != list_id:
            raise conflict(f"A list named '{name}' already exists.")
        entry["name"] = name
        entry["updatedAt"] = self._now_iso()
        return entry

    def update_filters(self, list_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """Replace a DYNAMIC list's filter branch and bump its version."""
        entry = self.get(list_id)
        if entry["processingType"] != "DYNAMIC":
            raise validation_error(f"List {list_id} is {entry['processingType']}; only DYNAMIC "
                                   "lists have filters to update")
        branch = body.get("filterBranch")
        self._check_branch(_object_for(entry["objectTypeId"]), branch, root=True)
        now = self._now_iso()
        entry.update({"filterBranch": branch, "listVersion": entry["listVersion"] + 1,
                      "filtersUpdatedAt": now, "updatedAt": now})
        return entry

    def delete(self, list_id: str) -> None:
        """Delete a list."""
        self.get(list_id)
        del self.lists[list_id]

    def search(self, body: dict[str, Any]) -> dict[str, Any]:
        """Return the lists that match a lists search request, a page at a time."""
        query = str(body.get("query") or "").lower()
        types = body.get("processingTypes") or list(PROCESSING_TYPES)
        ids = body.get("listIds")
        found = [
            entry for entry in self.lists.values()
            if query in entry["name"].lower() and entry["processingType"] in types
            and (not ids or entry["listId"] in ids)
        ]
        offset = int(body.get("offset") or 0)
        count = int(body.get("count") or 20)
        page = found[offset:offset + count]
        return {
            "lists": [without_filters(entry) for entry in page],
            "hasMore": offset + count < len(found),
            "offset": offset + len(page),
            "total": len(found),
        }

    def _check_branch(self, obj: str, branch: Any, root: bool) -> None:
        if not isinstance(branch, dict):
            raise validation_error("filterBranch must be a JSON object")
        kind = branch.get("filterBranchType")
        if root and kind != "OR":
            raise validation_error(f"The root filterBranch must have filterBranchType OR, "
                                   f"got {kind!r}")
        if kind not in ("OR", "AND", "NOT_ALL", "NOT_ANY", "ASSOCIATION"):
            raise validation_error(f"Invalid filterBranchType {kind!r}")
        for item in branch.get("filters") or []:
            self._check_filter(obj, item)
        for child in branch.get("filterBranches") or []:
            if root and isinstance(child, dict) and child.get("filterBranchType") != "AND":
                raise validation_error("Branches under the root OR branch must be AND branches")
            self._check_branch(obj, child, root=False)

    def _check_filter(self, obj: str, item: Any) -> None:
        if not isinstance(item, dict) or item.get("filterType") != "PROPERTY":
            # NOTE: only PROPERTY filters are checked; other filter types pass unchecked.
            return
        prop = item.get("property")
        if prop not in self._schema.properties[obj]:
            raise validation_error(f"Property {prop!r} does not exist on object type {obj}; "
                                   "create it before filtering on it")
        operation = item.get("operation")
        if not isinstance(operation, dict) or not operation.get("operationType") or not (
                operation.get("operator")):
            raise validation_error(f"The filter on {prop} needs an operation with "
                                   "operationType and operator")


def without_filters(entry: dict[str, Any]) -> dict[str, Any]:
    """Return a list without its filter branch, as reads without includeFilters return it."""
    return {key: value for key, value in entry.items() if key != "filterBranch"}


def _object_for(object_type_id: Any) -> str:
    obj = OBJECT_ALIASES.get(str(object_type_id))
    if obj is None or object_type_id not in OBJECT_TYPE_IDS.values():
        raise validation_error(
            f"Invalid objectTypeId {object_type_id!r}; use one of "
            + ", ".join(OBJECT_TYPE_IDS.values()))
    return obj


class EventStore:
    """Custom behavioral event definitions and the occurrences sent to them."""

    def __init__(self, portal_id: int, now_iso: Callable[[], str]) -> None:
        self._portal_id = portal_id
        self._now_iso = now_iso
        self.definitions: dict[str, dict[str, Any]] = {}
        self.occurrences: list[dict[str, Any]] = []

    def define(self, body: dict[str, Any]) -> dict[str, Any]:
        """Create an event definition; HubSpot names it ``pe<portal id>_<name>``."""
        label = body.get("label")
        name = body.get("name") or (str(label).lower().replace(" ", "_") if label else None)
        if not isinstance(label, str) or not label or len(label) > EVENT_NAME_MAX:
            raise validation_error(f"label must be 1-{EVENT_NAME_MAX} characters, got {label!r}")
        if not isinstance(name, str) or not EVENT_NAME_PATTERN.match(name) or (
                len(name) > EVENT_NAME_MAX):
            raise validation_error(
                f"Invalid event name {name!r}: up to {EVENT_NAME_MAX} characters of a-z, 0-9 "
                "and _, starting with a letter")

        primary = body.get("primaryObject", "CONTACT")
        if primary not in _PRIMARY_OBJECTS:
            raise validation_error(f"Invalid primaryObject {primary!r}; use one of "
                                   + ", ".join(_PRIMARY_OBJECTS))

        qualified = f"pe{self._portal_id}_{name}"
        if qualified in self.definitions:
            raise conflict(f"An event named '{name}' already exists.")
        definition = {
            "name": name,
            "label": label,
            "description": body.get("description", ""),
            "fullyQualifiedName": qualified,
            "primaryObject": primary,
            "primaryObjectId": _PRIMARY_OBJECTS[primary],
            "propertyDefinitions": self._properties(body.get("propertyDefinitions") or []),
            "archived": False,
            "createdAt": self._now_iso(),
        }
        self.definitions[qualified] = definition
        return definition

    def _properties(self, items: Any) -> list[dict[str, Any]]:
        if not isinstance(items, list) or len(items) > EVENT_PROPERTIES_MAX:
            raise validation_error(
                f"propertyDefinitions must be a list of up to {EVENT_PROPERTIES_MAX} items")
        checked = []
        for item in items:
            name = item.get("name") if isinstance(item, dict) else None
            if not isinstance(name, str) or not EVENT_NAME_PATTERN.match(name) or (
                    len(name) > EVENT_NAME_MAX):
                raise validation_error(f"Invalid event property name {name!r}")
            kind = item.get("type", "string")
            if kind not in EVENT_PROPERTY_TYPES:
                raise validation_error(f"Invalid type {kind!r} for event property {name}")
            checked.append({"name": name, "label": item.get("label", name), "type": kind,
                            "options": item.get("options", [])})
        return checked

    def send(self, body: dict[str, Any]) -> None:
        """Record one event occurrence after HubSpot's checks."""
        event_name = body.get("eventName")
        definition = self.definitions.get(str(event_name))
        if definition is None:
            raise validation_error(
                f"Event {event_name!r} is not defined; use the fullyQualifiedName the event "
                "definitions API returned")
        if not any(body.get(key) for key in ("email", "utk", "objectId")):
            raise validation_error("An event occurrence needs email, utk or objectId")
        properties = body.get("properties") or {}
        if not isinstance(properties, dict) or len(properties) > EVENT_PROPERTIES_MAX:
            raise validation_error(
                f"properties must be an object of up to {EVENT_PROPERTIES_MAX} values")
        known = {prop["name"] for prop in definition["propertyDefinitions"]}
        for key, value in properties.items():
            if key not in known:
                raise validation_error(f"Property {key!r} is not defined on event {event_name}")
            limit = EVENT_URL_VALUE_MAX if "url" in key or "referrer" in key else EVENT_VALUE_MAX
            if len(str(value)) > limit:
                raise validation_error(
                    f"Value of {key} is {len(str(value))} characters; the maximum is {limit}")
        self.occurrences.append({**body, "receivedAt": self._now_iso()})
