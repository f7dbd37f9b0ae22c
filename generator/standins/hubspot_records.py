"""CRM records of the stand-in: property checks, unique values, associations, search index.

Every method expects the caller to hold the state's lock and raises ``HubSpotError``
with HubSpot's status and body when a write or read is invalid.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from .hubspot_config import (
    ASSOCIATION_TYPES,
    DEFAULT_READ_PROPERTIES,
    OBJECT_LABELS,
    PIPELINE_PROPERTIES,
    PRIMARY_ASSOCIATION_TYPES,
)
from .hubspot_errors import (
    existing_record_conflict,
    not_found,
    property_problem,
    property_values_error,
    validation_error,
)
from .hubspot_schema import SchemaStore

ALWAYS_READ = ("hs_object_id", "createdate", "lastmodifieddate")


@dataclass
class Record:
    """One CRM record with its property values as HubSpot stores them: strings."""

    id: str
    obj: str
    properties: dict[str, str]
    created_at: str
    updated_at: str
    # (write time in clock seconds, properties) of each write not yet superseded in the
    # search index. Search reads the newest version that is older than the indexing delay.
    versions: list[tuple[float, dict[str, str]]] = field(default_factory=list)
    # to object type -> to record id -> association type ids
    associations: dict[str, dict[str, set[int]]] = field(default_factory=dict)


class RecordStore:
    """Records per object type, with HubSpot's unique-value and pipeline rules."""

    def __init__(self, schema: SchemaStore, next_id: Callable[[], str],
                 now: Callable[[], float], now_iso: Callable[[], str]) -> None:
        self.schema = schema
        self._next_id = next_id
        self._now = now
        self._now_iso = now_iso
        self.records: dict[str, dict[str, Record]] = {obj: {} for obj in schema.properties}
        # (object, property) -> stored value -> record id, built on the first lookup of a
        # property and kept current by every write, so a lookup does not scan all records.
        self._unique_index: dict[tuple[str, str], dict[str, str]] = {}

    # Property checks

    def check_properties(self, obj: str, values: Any) -> dict[str, str]:
        """Return ``values`` as HubSpot stores them, or raise its validation error."""
        if values is None:
            return {}
        if not isinstance(values, dict):
            raise validation_error("properties must be a JSON object of property names to values")
        problems = []
        clean: dict[str, str] = {}
        for name, raw in values.items():
            text = _as_text(raw)
            problem = self._value_problem(obj, name, text)
            if problem:
                problems.append(problem)
            elif name == "email" and obj == "contacts":
                clean[name] = text.strip().lower()
            else:
                clean[name] = text
        if problems:
            raise property_values_error(problems)
        return clean

    def _value_problem(self, obj: str, name: str, text: str) -> dict[str, Any] | None:
        prop = self.schema.properties[obj].get(name)
        if prop is None:
            return property_problem(name, "PROPERTY_DOESNT_EXIST",
                                    f'Property "{name}" does not exist')
        if prop["modificationMetadata"]["readOnlyValue"]:
            return property_problem(name, "READ_ONLY_VALUE",
                                    f'"{name}" is a read only property; its value cannot be set.')
        if text == "":
            return None
        if prop["type"] == "number" and not _is_number(text):
            # NOTE: the error code for a number that does not parse is assumed.
            return property_problem(name, "INVALID_FLOAT",
                                    f"{text} was not a valid number.")
        if prop["type"] == "enumeration" and prop["options"] and not prop["externalOptions"]:
            allowed = [option["value"] for option in prop["options"]]
            chosen = text.split(";") if prop["fieldType"] == "checkbox" else [text]
            if any(value not in allowed for value in chosen):
                return property_problem(
                    name, "INVALID_OPTION",
                    f"{text} was not one of the allowed options: [{', '.join(allowed)}]")
        if name == "email" and obj == "contacts" and "@" not in text:
            return property_problem(name, "INVALID_EMAIL", f"Email address {text} is invalid")
        return None

    def _check_pipeline(self, obj: str, merged: dict[str, str]) -> None:
        """Raise the INVALID_OPTION error when a record's stage is not in its pipeline."""
        if obj not in PIPELINE_PROPERTIES:
            return
        pipeline_prop, stage_prop = PIPELINE_PROPERTIES[obj]
        default_pipeline = next(iter(self.schema.pipelines[obj]))
        pipeline_id = merged.get(pipeline_prop) or default_pipeline
        stage_ids = self.schema.stage_ids(obj, pipeline_id)
        if stage_ids is None:
            raise property_values_error([property_problem(
                pipeline_prop, "INVALID_OPTION",
                f"{pipeline_id} was not one of the allowed options: "
                f"[{', '.join(self.schema.pipelines[obj])}]")])
        stage = merged.get(stage_prop)
        if stage and stage not in stage_ids:
            raise property_values_error([property_problem(
                stage_prop, "INVALID_OPTION",
                f"{stage} was not one of the allowed options: [{', '.join(stage_ids)}]")])

    # Unique values

    def find_unique(self, obj: str, prop: str, value: str) -> Record | None:
        """Return the record whose unique property ``prop`` has ``value``."""
        wanted = value.strip().lower() if prop == "email" and obj == "contacts" else value
        index = self._unique_index.get((obj, prop))
        if index is None:
            index = {}
            for record in self.records[obj].values():
                stored = record.properties.get(prop)
                if stored is not None:
                    index.setdefault(stored, record.id)
            self._unique_index[(obj, prop)] = index
        record_id = index.get(wanted)
        return self.records[obj].get(record_id) if record_id is not None else None

    def _reindex(self, record: Record, before: dict[str, str]) -> None:
        """Move ``record`` in every built unique index whose property value changed."""
        for (obj, prop), index in self._unique_index.items():
            if obj != record.obj:
                continue
            old, new = before.get(prop), record.properties.get(prop)
            if old == new:
                continue
            if old is not None and index.get(old) == record.id:
                del index[old]
            if new is not None:
                index.setdefault(new, record.id)

    def conflicting_record(self, obj: str, values: dict[str, str],
                           own_id: str | None) -> Record | None:
        """Return another record that already has one of the unique ``values``."""
        for prop in self.schema.unique_properties(obj):
            value = values.get(prop)
            if not value:
                continue
            holder = self.find_unique(obj, prop, value)
            if holder is not None and holder.id != own_id:
                return holder
        return None

    def find(self, obj: str, record_id: str, id_property: str | None = None) -> Record | None:
        """Return a record by its id or by the value of a unique ``id_property``."""
        if id_property in (None, "", "hs_object_id"):
            return self.records[obj].get(str(record_id))
        self.require_unique_property(obj, str(id_property))
        return self.find_unique(obj, str(id_property), str(record_id))

    def require_unique_property(self, obj: str, id_property: str) -> None:
        """Raise the 400 HubSpot sends when ``id_property`` is not a unique property."""
        if id_property not in self.schema.properties[obj]:
            raise validation_error(f"Property {id_property} does not exist on object type {obj}")
        if id_property not in self.schema.unique_properties(obj):
            raise validation_error(
                f"Property {id_property} is not a unique identifier property for {obj}; "
                "use email for contacts or a property created with hasUniqueValue true")

    # Writes

    def prepare_create(self, obj: str, properties: Any) -> dict[str, str]:
        """Check a new record's properties and return them cleaned, without writing."""
        values = self.check_properties(obj, properties)
        self._check_pipeline(obj, values)
        holder = self.conflicting_record(obj, values, None)
        if holder is not None:
            raise existing_record_conflict(OBJECT_LABELS[obj], holder.id)
        return values

    def insert(self, obj: str, values: dict[str, str]) -> Record:
        """Write a new record from checked ``values`` and return it."""
        now_iso = self._now_iso()
        record_id = self._next_id()
        record = Record(record_id, obj, dict(values), now_iso, now_iso)
        if obj in PIPELINE_PROPERTIES:
            pipeline_prop, _ = PIPELINE_PROPERTIES[obj]
            record.properties.setdefault(pipeline_prop, next(iter(self.schema.pipelines[obj])))
        record.properties.update(
            {"hs_object_id": record_id, "createdate": now_iso, "lastmodifieddate": now_iso})
        if "hs_lastmodifieddate" in self.schema.properties[obj]:
            record.properties["hs_lastmodifieddate"] = now_iso
        self.records[obj][record_id] = record
        self._reindex(record, {})
        self._index(record)
        return record

    def create(self, obj: str, properties: Any) -> Record:
        """Create one record, or raise the 400 or 409 HubSpot sends."""
        return self.insert(obj, self.prepare_create(obj, properties))

    def update(self, record: Record, properties: Any) -> Record:
        """Overwrite the given properties of ``record``; an empty string clears a value."""
        values = self.check_properties(record.obj, properties)
        merged = {**record.properties, **values}
        self._check_pipeline(record.obj, merged)
        holder = self.conflicting_record(record.obj, values, record.id)
        if holder is not None:
            raise existing_record_conflict(OBJECT_LABELS[record.obj], holder.id)
        before = dict(record.properties)
        for name, value in values.items():
            if value == "":
                record.properties.pop(name, None)
            else:
                record.properties[name] = value
        now_iso = self._now_iso()
        record.updated_at = now_iso
        record.properties["lastmodifieddate"] = now_iso
        if "hs_lastmodifieddate" in self.schema.properties[record.obj]:
            record.properties["hs_lastmodifieddate"] = now_iso
        self._reindex(record, before)
        self._index(record)
        return record

    def upsert(self, obj: str, id_property: str, value: str,
               properties: Any) -> tuple[Record, bool]:
        """Update the record whose ``id_property`` is ``value``, or create it.

        Returns:
            The record and True when it was created.
        """
        self.require_unique_property(obj, id_property)
        values = dict(properties or {})
        values[id_property] = value
        existing = self.find_unique(obj, id_property, value)
        if existing is not None:
            return self.update(existing, values), False
        return self.create(obj, values), True

    def get(self, obj: str, record_id: str, id_property: str | None = None) -> Record:
        """Return a record or raise HubSpot's 404."""
        record = self.find(obj, record_id, id_property)
        if record is None:
            raise not_found()
        return record

    def _index(self, record: Record) -> None:
        now = self._now()
        record.versions.append((now, dict(record.properties)))

    # Reads

    def searchable(self, obj: str, delay_seconds: float) -> Iterable[tuple[Record, dict[str, str]]]:
        """Yield each record with the properties visible to search after the indexing delay."""
        cutoff = self._now() - delay_seconds
        for record in self.records[obj].values():
            visible = [props for written, props in record.versions if written <= cutoff]
            if not visible:
                continue
            newest = len(visible) - 1
            # Versions older than the newest visible one can never be read again.
            del record.versions[:newest]
            yield record, visible[-1]

    # Associations

    def associate(self, from_record: Record, to_record: Record, type_id: int,
                  category: str = "HUBSPOT_DEFINED") -> None:
        """Associate two records in both directions, or raise for an invalid type."""
        pair = (from_record.obj, to_record.obj)
        allowed = {ASSOCIATION_TYPES.get(pair), PRIMARY_ASSOCIATION_TYPES.get(pair)} - {None}
        if category != "HUBSPOT_DEFINED" or type_id not in allowed:
            raise validation_error(
                f"Association type {category} {type_id} is not valid from {pair[0]} to "
                f"{pair[1]}; valid HUBSPOT_DEFINED types: {sorted(t for t in allowed if t)}")
        _link(from_record, to_record, type_id)
        reverse = _reverse_type(pair, type_id)
        if reverse is not None:
            _link(to_record, from_record, reverse)

    def record_json(self, record: Record, wanted: Iterable[str] | None = None,
                    associations: Iterable[str] = ()) -> dict[str, Any]:
        """Return a record as the objects API returns it."""
        if wanted is None:
            names = list(DEFAULT_READ_PROPERTIES.get(record.obj, ())) + list(ALWAYS_READ)
            properties = {name: record.properties.get(name) for name in names}
        elif wanted == "*":
            properties = dict(record.properties)
        else:
            names = [*wanted, *ALWAYS_READ]
            properties = {name: record.properties.get(name) for name in names}
        body: dict[str, Any] = {
            "id": record.id,
            "properties": properties,
            "createdAt": record.created_at,
            "updatedAt": record.updated_at,
            "archived": False,
        }
        links = {}
        for to_obj in associations:
            linked = record.associations.get(to_obj, {})
            if linked:
                links[to_obj] = {"results": [
                    {"id": to_id, "type": f"{record.obj}_to_{to_obj}"} for to_id in linked]}
        if links:
            body["associations"] = links
        return body


def _link(from_record: Record, to_record: Record, type_id: int) -> None:
    targets = from_record.associations.setdefault(to_record.obj, {})
    targets.setdefault(to_record.id, set()).add(type_id)


def _reverse_type(pair: tuple[str, str], type_id: int) -> int | None:
    reverse_pair = (pair[1], pair[0])
    if type_id == PRIMARY_ASSOCIATION_TYPES.get(pair):
        return PRIMARY_ASSOCIATION_TYPES.get(reverse_pair)
    return ASSOCIATION_TYPES.get(reverse_pair)


def _as_text(raw: Any) -> str:
    """Return a property value as the string HubSpot stores; numbers and booleans are allowed."""
    if raw is None:
        return ""
    if isinstance(raw, bool):
        return "true" if raw else "false"
    return str(raw)


def _is_number(text: str) -> bool:
    try:
        Decimal(text)
    except InvalidOperation:
        return False
    return True

