"""Record writes of the Zoho CRM stand-in: insert, update and upsert with per-record results.

Shapes follow Zoho's v7/v8 records pages: each record in ``data[]`` gets its own
result with ``code``, ``details``, ``message`` and ``status``; upsert adds ``action``
and ``duplicate_field``. Mandatory fields are checked first, then values, then unique
fields, and a record stops at its first error.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from .zoho_schema import FieldDef, ModuleDef
from .zoho_state import ZohoState

__all__ = ["error_item", "find_record", "success_item", "write_records", "write_status"]

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Zoho writes and expects date-times as yyyy-MM-ddTHH:mm:ss with a ±HH:mm offset.
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TEXT_TYPES = ("text", "textarea", "email", "phone", "website")
_NUMBER_TYPES = ("currency", "double", "percent")
_INTEGER_TYPES = ("integer", "bigint")
# The subform of a sales order's lines, by its name in Zoho API v2 to v6.
LINE_ITEMS_FIELD = "Product_Details"


def error_item(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return one error in Zoho's shape: ``code``, ``details``, ``message``, ``status``."""
    return {"code": code, "details": details or {}, "message": message, "status": "error"}


def _field_error(code: str, message: str, api_name: str, path: str,
                 **extra: Any) -> dict[str, Any]:
    return error_item(code, message, {"api_name": api_name, "json_path": path, **extra})


def write_status(results: Sequence[dict[str, Any]], success_status: int) -> int:
    """Return the HTTP status of a batch: all passed, none passed (400) or mixed (207)."""
    passed = sum(1 for item in results if item["status"] == "success")
    if passed == len(results):
        return success_status
    return 400 if passed == 0 else 207


def find_record(state: ZohoState, module: str, record_id: str) -> dict[str, Any] | None:
    """Return the stored record ``record_id`` of ``module``, or None."""
    with state.lock:
        return state.records.get(module, {}).get(record_id)


def write_records(state: ZohoState, module: ModuleDef, items: Sequence[Any], mode: str,
                  duplicate_check_fields: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Insert, update or upsert ``items`` one by one and return their results.

    Args:
        state: The org to write to.
        module: The module the records belong to.
        items: The request's ``data`` list.
        mode: ``insert``, ``update`` or ``upsert``.
        duplicate_check_fields: For upsert, the fields to match existing records on.

    Returns:
        One result per item, in order. Records are written in order, so a later
        record of the same batch can match or clash with an earlier one.
    """
    results = []
    with state.lock:
        for index, item in enumerate(items):
            path = f"$.data[{index}]"
            if not isinstance(item, dict):
                results.append(error_item("INVALID_DATA", "invalid data", {"json_path": path}))
            elif mode == "insert":
                results.append(_insert(state, module, item, path))
            elif mode == "update":
                results.append(_update_by_id(state, module, item, path))
            else:
                results.append(_upsert(state, module, item, path, duplicate_check_fields))
    return results


def _insert(state: ZohoState, module: ModuleDef, item: dict[str, Any], path: str,
            upsert: bool = False) -> dict[str, Any]:
    values, problem = _clean(state, module, item, path, creating=True)
    if problem is None:
        problem = _unique_clash(state, module, values, path, None)
    if problem is not None:
        return problem
    record_id = state.next_id()
    now = state.timestamp()
    record: dict[str, Any] = {"id": record_id, "Owner": state.owner(), "Created_Time": now,
                              "Modified_Time": now, "Created_By": state.owner(),
                              "Modified_By": state.owner(), **values}
    state.records[module.api_name][record_id] = record
    state.written_at[record_id] = state.now()
    result = success_item(record, "record added")
    if upsert:
        result.update({"action": "insert", "duplicate_field": None})
    return result


def _update_by_id(state: ZohoState, module: ModuleDef, item: dict[str, Any],
                  path: str) -> dict[str, Any]:
    record_id = item.get("id")
    if record_id in (None, ""):
        return _field_error("MANDATORY_NOT_FOUND", "required field not found", "id",
                            f"{path}.id")
    record = state.records[module.api_name].get(str(record_id))
    if record is None:
        return _field_error("INVALID_DATA", "the id given seems to be invalid", "id",
                            f"{path}.id")
    return _update(state, module, record, item, path)


def _update(state: ZohoState, module: ModuleDef, record: dict[str, Any], item: dict[str, Any],
            path: str) -> dict[str, Any]:
    values, problem = _clean(state, module, item, path, creating=False)
    if problem is None:
        problem = _unique_clash(state, module, values, path, record["id"])
    if problem is None:
        problem = _check_stage({**record, **values}, state, module, path)
    if problem is not None:
        return problem
    record.update(values)
    record["Modified_Time"] = state.timestamp()
    state.written_at[record["id"]] = state.now()
    return success_item(record, "record updated")


def _upsert(state: ZohoState, module: ModuleDef, item: dict[str, Any], path: str,
            duplicate_check_fields: Sequence[str] | None) -> dict[str, Any]:
    match, matched_field = _match(state, module, item, duplicate_check_fields)
    if match is None:
        return _insert(state, module, item, path, upsert=True)
    result = _update(state, module, match, {k: v for k, v in item.items() if k != "id"}, path)
    if result["status"] == "success":
        result.update({"action": "update", "duplicate_field": matched_field})
    return result


def upsert_order(module: ModuleDef, duplicate_check_fields: Sequence[str] | None) -> list[str]:
    """Return the fields upsert matches on, in order.

    The requested fields come first, then the other user-defined unique fields. The module's
    system-defined duplicate check field counts only when no fields are given or
    when it is among them.
    """
    unique = module.unique_fields()
    if not duplicate_check_fields:
        order = [module.duplicate_check_field] if module.duplicate_check_field else []
        return order + unique
    order = list(duplicate_check_fields)
    return order + [name for name in unique if name not in order]


def _match(state: ZohoState, module: ModuleDef, item: dict[str, Any],
           duplicate_check_fields: Sequence[str] | None
           ) -> tuple[dict[str, Any] | None, str | None]:
    record_id = item.get("id")
    if isinstance(record_id, str) and record_id in state.records[module.api_name]:
        return state.records[module.api_name][record_id], "id"
    for name in upsert_order(module, duplicate_check_fields):
        value = item.get(name)
        if value in (None, ""):
            continue
        for record in state.records[module.api_name].values():
            if _same(record.get(name), value):
                return record, name
    return None, None


def _same(stored: Any, value: Any) -> bool:
    if isinstance(stored, dict) and "id" in stored:
        stored = stored["id"]
    if isinstance(value, dict) and "id" in value:
        value = value["id"]
    if isinstance(stored, str) and isinstance(value, str):
        return stored.casefold() == value.casefold()
    return bool(stored == value) and stored is not None


def success_item(record: dict[str, Any], message: str) -> dict[str, Any]:
    """Return one written record's result in Zoho's shape, with its id and audit fields."""
    details = {key: record[key] for key in ("Modified_Time", "Modified_By", "Created_Time",
                                            "id", "Created_By")}
    return {"code": "SUCCESS", "details": details, "message": message, "status": "success"}


def _clean(state: ZohoState, module: ModuleDef, item: dict[str, Any], path: str,
           creating: bool) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Return the storable values of ``item`` or the first error it has."""
    problem = _missing_mandatory(module, item, path, creating)
    if problem is not None:
        return {}, problem
    values: dict[str, Any] = {}
    for name, value in item.items():
        if name in ("id", "Layout", "$append_values") or name.startswith("$"):
            continue
        definition = module.fields.get(name)
        if definition is None:
            if state.config.reject_unknown_fields:
                return {}, _field_error("INVALID_DATA", "invalid data", name, f"{path}.{name}")
            continue
        if definition.read_only:
            continue
        normalised, problem = _check_value(state, definition, value, f"{path}.{name}")
        if problem is not None:
            return {}, problem
        values[name] = normalised
    if creating:
        problem = _check_stage(values, state, module, path)
    return values, problem


def _missing_mandatory(module: ModuleDef, item: dict[str, Any], path: str,
                       creating: bool) -> dict[str, Any] | None:
    with_layout = "Layout" in item
    for name, definition in module.fields.items():
        required = definition.system_mandatory or (with_layout and definition.layout_required)
        if not required:
            continue
        value = item.get(name)
        empty = value is None or value == ""
        # An update may leave a mandatory field out, but may not blank it.
        absent = empty if creating else (name in item and empty)
        if absent:
            return _field_error("MANDATORY_NOT_FOUND", "required field not found", name,
                                f"{path}.{name}")
    return None


def _check_value(state: ZohoState, definition: FieldDef, value: Any,
                 path: str) -> tuple[Any, dict[str, Any] | None]:
    """Validate one field value; return the value to store or an INVALID_DATA error."""
    if value is None:
        return None, None
    data_type = definition.data_type
    problem: str | None = None
    if data_type in _TEXT_TYPES:
        problem = _text_problem(definition, value)
        if problem == "length":
            return None, _field_error("INVALID_DATA", "invalid data", definition.api_name, path,
                                      maximum_length=definition.length)
    elif data_type in _INTEGER_TYPES:
        problem = None if isinstance(value, int) and not isinstance(value, bool) else "integer"
    elif data_type in _NUMBER_TYPES:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        problem = None if ok else "double"
    elif data_type == "boolean":
        problem = None if isinstance(value, bool) else "boolean"
    elif data_type in ("date", "datetime"):
        problem = _time_problem(data_type, value)
    elif data_type in ("picklist", "multiselectpicklist"):
        return _check_picklist(state, definition, value, path)
    elif data_type == "lookup":
        return _check_lookup(state, definition, value, path)
    elif data_type == "subform" and definition.api_name == LINE_ITEMS_FIELD:
        return _check_line_items(state, definition, value, path)
    if problem is not None:
        return None, _field_error("INVALID_DATA", "invalid data", definition.api_name, path,
                                  expected_data_type=_expected_type(definition.data_type))
    return value, None


def _expected_type(data_type: str) -> str:
    if data_type in _TEXT_TYPES:
        return "text" if data_type != "email" else "email"
    return data_type


def _text_problem(definition: FieldDef, value: Any) -> str | None:
    if not isinstance(value, str):
        return "text"
    if definition.length is not None and len(value) > definition.length:
        return "length"
    if definition.data_type == "email" and value and not _EMAIL.match(value):
        return "email"
    return None


def _time_problem(data_type: str, value: Any) -> str | None:
    if not isinstance(value, str):
        return data_type
    pattern = _DATE if data_type == "date" else _DATETIME
    if not pattern.match(value):
        return data_type
    try:
        if data_type == "date":
            date.fromisoformat(value)
        else:
            datetime.fromisoformat(value)
    except ValueError:
        return data_type
    return None


def _check_picklist(state: ZohoState, definition: FieldDef, value: Any,
                    path: str) -> tuple[Any, dict[str, Any] | None]:
    values = value if definition.data_type == "multiselectpicklist" else [value]
    if not isinstance(values, list):
        return None, _field_error("INVALID_DATA", "invalid data", definition.api_name, path,
                                  expected_data_type="jsonarray")
    for entry in values:
        if not isinstance(entry, str) or definition.option_for(
                entry, state.config.picklist_match) is None:
            return None, _field_error("INVALID_DATA", "invalid data", definition.api_name, path)
    return value, None


def _check_lookup(state: ZohoState, definition: FieldDef, value: Any,
                  path: str) -> tuple[Any, dict[str, Any] | None]:
    record_id = value.get("id") if isinstance(value, dict) else value
    target = definition.lookup_module or ""
    record = state.records.get(target, {}).get(str(record_id)) if record_id else None
    if record is None:
        return None, _field_error("INVALID_DATA", "invalid data", definition.api_name,
                                  f"{path}.id" if isinstance(value, dict) else path)
    return {"id": record["id"], "name": _record_name(record)}, None


def _check_line_items(state: ZohoState, definition: FieldDef, value: Any,
                      path: str) -> tuple[Any, dict[str, Any] | None]:
    """Check the ``Product_Details`` rows of a sales order: a product and a quantity each.

    NOTE: Zoho's docs show the row shape (``product`` lookup, ``quantity``, ``list_price``)
    but not the error for a bad row. The stand-in names the subform and the row's path.
    """
    if not isinstance(value, list) or not value:
        return None, _field_error("INVALID_DATA", "invalid data", definition.api_name, path,
                                  expected_data_type="jsonarray")
    rows = []
    for index, row in enumerate(value):
        row_path = f"{path}[{index}]"
        product = row.get("product") if isinstance(row, dict) else None
        product_id = product.get("id") if isinstance(product, dict) else None
        record = state.records["Products"].get(str(product_id)) if product_id else None
        if record is None:
            return None, _field_error("INVALID_DATA", "invalid data", definition.api_name,
                                      f"{row_path}.product")
        quantity = row.get("quantity", 1)
        if isinstance(quantity, bool) or not isinstance(quantity, int | float) or quantity <= 0:
            return None, _field_error("INVALID_DATA", "invalid data", definition.api_name,
                                      f"{row_path}.quantity")
        rows.append({**row, "id": state.next_id(),
                     "product": {"id": record["id"], "name": _record_name(record)}})
    return rows, None


def _record_name(record: dict[str, Any]) -> str:
    for name in ("Deal_Name", "Product_Name", "Account_Name", "Subject", "Name"):
        if record.get(name):
            return str(record[name])
    parts = [record.get("First_Name"), record.get("Last_Name")]
    return " ".join(str(part) for part in parts if part)


def _check_stage(values: dict[str, Any], state: ZohoState, module: ModuleDef,
                 path: str) -> dict[str, Any] | None:
    """Check that a deal's Stage belongs to its Pipeline when both are set."""
    if module.api_name != "Deals" or not values.get("Pipeline") or not values.get("Stage"):
        return None
    pipeline = next((item for item in state.pipelines
                     if item.display_value == values["Pipeline"]), None)
    stage = module.fields["Stage"].option_for(str(values["Stage"]), state.config.picklist_match)
    if pipeline is None or stage is None or stage.id not in pipeline.stage_ids:
        return _field_error("INVALID_DATA", "invalid data", "Stage", f"{path}.Stage")
    return None


def _unique_clash(state: ZohoState, module: ModuleDef, values: dict[str, Any], path: str,
                  own_id: str | None) -> dict[str, Any] | None:
    """Return DUPLICATE_DATA when a user-defined unique field clashes with another record."""
    for name in module.unique_fields():
        value = values.get(name)
        if value in (None, ""):
            continue
        for record in state.records[module.api_name].values():
            if record["id"] != own_id and _same(record.get(name), value):
                return _duplicate(module, record, name, f"{path}.{name}")
    return None


def _duplicate(module: ModuleDef, record: dict[str, Any], name: str,
               path: str) -> dict[str, Any]:
    owner = dict(record["Owner"])
    duplicate_record = {"Owner": {"name": owner["name"], "id": owner["id"]},
                        "module": {"api_name": module.api_name, "id": module.id},
                        "id": record["id"]}
    return error_item("DUPLICATE_DATA", "duplicate data", {
        "api_name": name, "json_path": path, "duplicate_record": duplicate_record,
        "more_records": False})
