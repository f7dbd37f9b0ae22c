"""The PostgreSQL part of the CRM desired state: tables, keys and segment views.

Every column comes from a ``table.column`` target in the spec, so the custom-database
migrations create exactly what the integration writes. Each table gets an ``id``
identity key; a foreign key points at that key. The ``where`` text of a view is
SQL built from the segment's entry conditions and fixed values from the spec.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from generator.spec._desired_fields import Requirement, dynamic_exit_note

_KEY_COLUMN = "id"
_E164_CHECK = "{column} ~ '^\\+[1-9][0-9]{{7,14}}$'"
_SQL_OPERATORS = {"eq": "=", "gte": ">=", "lt": "<"}


def postgres_state(
    spec: Mapping[str, Any], requirements: Sequence[Requirement], data: Mapping[str, Any]
) -> dict[str, Any]:
    """Return the PostgreSQL sections of the desired state."""
    tables: dict[str, dict[str, Any]] = {}
    for item in requirements:
        table_name, _, column_name = item.target.partition(".")
        table = tables.setdefault(table_name, _new_table(table_name))
        table["columns"].append(_column(column_name, item, spec, data))
        if item.origin == "foreign_key" and item.lookup_to is not None:
            table["foreign_keys"].append({
                "columns": [column_name],
                "references": {"table": _table_of(item.lookup_to, spec), "column": _KEY_COLUMN},
            })
    if "consents" in tables:
        _add_consent_keys(tables["consents"], spec)
    for table in tables.values():
        table["unique"] = _unique_columns(table["name"], requirements, spec)
    return {
        "tables": list(tables.values()),
        "views": [_view(segment, spec, data) for segment in spec["segments"]["segments"]],
    }


def _new_table(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "columns": [{"name": _KEY_COLUMN, "type": "bigint", "identity": True,
                     "nullable": False, "used_by": ["keys"]}],
        "primary_key": [_KEY_COLUMN],
        "foreign_keys": [],
    }


def _column(
    name: str, item: Requirement, spec: Mapping[str, Any], data: Mapping[str, Any]
) -> dict[str, Any]:
    column: dict[str, Any] = {
        "name": name,
        "type": data["postgres_types"]["key" if item.kind in ("key", "lookup") else item.kind],
        "nullable": not item.counts_from_zero,
    }
    # Counts and sums start at zero, so a segment rule such as orders_count = 0 also
    # matches a contact who never ordered.
    if not column["nullable"]:
        column["default"] = "0"
    check = _check(name, item)
    if check:
        column["check"] = check
    column["used_by"] = list(item.used_by)
    return column


def _check(name: str, item: Requirement) -> str | None:
    if item.kind == "phone":
        return _E164_CHECK.format(column=name)
    if item.options:
        values = ", ".join(_sql_text(option.value) for option in item.options)
        return f"{name} IN ({values})"
    return None


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _table_of(entity: str, spec: Mapping[str, Any]) -> str:
    return str(spec["mapping"]["entities"][entity]["object"])


def _add_consent_keys(table: dict[str, Any], spec: Mapping[str, Any]) -> None:
    """Give the consent record its contact link and channel, which every row needs."""
    channels = ", ".join(_sql_text(channel) for channel in spec["consent"]["managed_channels"])
    table["columns"][1:1] = [
        {"name": "contact_id", "type": "bigint", "nullable": False, "used_by": ["consent"]},
        {"name": "channel", "type": "text", "nullable": False,
         "check": f"channel IN ({channels})", "used_by": ["consent"]},
    ]
    table["foreign_keys"].append({
        "columns": ["contact_id"],
        "references": {"table": _table_of("contact", spec), "column": _KEY_COLUMN},
    })


def _unique_columns(
    table: str, requirements: Sequence[Requirement], spec: Mapping[str, Any]
) -> list[list[str]]:
    """Return the unique constraints of ``table``: unique fields and the identity keys.

    PostgreSQL treats NULLs as distinct, so contacts without an email or phone do not
    collide. The transforms leave empty values out, so such a column holds NULL.
    """
    identity = {item["target"] for item in spec["mapping"]["identity"]["match_order"]}
    columns = []
    for item in requirements:
        table_name, _, column = item.target.partition(".")
        wanted = table_name == table and (item.unique or item.target in identity)
        if wanted and [column] not in columns:
            columns.append([column])
    return columns


def _view(
    segment: Mapping[str, Any], spec: Mapping[str, Any], data: Mapping[str, Any]
) -> dict[str, Any]:
    contact = spec["mapping"]["entities"]["contact"]
    columns = {
        rollup["name"]: rollup["target"].partition(".")[2] for rollup in contact["rollups"]
    }
    where = " AND ".join(_sql_condition(condition, columns[condition["rollup"]])
                         for condition in segment["entry"]["all"])
    view: dict[str, Any] = {
        "name": f"segment_{segment['key']}",
        "key": segment["key"],
        "from": str(contact["object"]),
        "where": where,
        "rule": dict(segment["rule"]["entry"]),
    }
    exit_note = dynamic_exit_note(segment, data)
    if exit_note:
        view["exit_note"] = exit_note
    return view


def _sql_condition(condition: Mapping[str, Any], column: str) -> str:
    operator = condition["op"]
    if operator in _SQL_OPERATORS:
        return f"{column} {_SQL_OPERATORS[operator]} {int(condition['value'])}"
    if operator == "within_days":
        return f"{column} >= now() - interval '{int(condition['value'])} days'"
    if operator == "older_than_days":
        return f"{column} < now() - interval '{int(condition['value'])} days'"
    if operator == "is_set":
        return f"{column} IS NOT NULL"
    return f"{column} IS NULL"
