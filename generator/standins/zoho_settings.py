"""Metadata endpoints of the Zoho CRM stand-in: modules, fields, layouts and pipelines.

Custom field creation follows Zoho's v7/v8 Create Custom Fields page. Each item of
``fields[]`` needs ``field_label`` and ``data_type``, a ``length`` within the type's
limits, ``unique`` as an object, ``pick_list_values`` for picklists, a ``currency``
object for currency fields and a ``lookup`` object for lookups. A call creates at most
5 fields, and a module has at most 2 unique fields. Pipelines follow the v8 pipeline
page: stages are Stage picklist options referred to by id, so a stage that is not yet
an option cannot be added through the API.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from .zoho_config import MAX_FIELDS_PER_CREATE_CALL, MAX_UNIQUE_FIELDS_PER_MODULE
from .zoho_records import error_item, write_status
from .zoho_schema import (
    DATA_TYPE_LENGTHS,
    FieldDef,
    ModuleDef,
    Option,
    default_length,
    valid_length,
)
from .zoho_state import Pipeline, ZohoState

__all__ = [
    "create_fields",
    "create_pipelines",
    "fields_body",
    "layouts_body",
    "modules_body",
    "pipelines_body",
    "update_fields",
]

_ROUNDING_OPTIONS = ("normal", "round_off", "round_up", "round_down")
_FORECAST_CATEGORIES = {"Open": "Pipeline", "Closed Won": "Closed", "Closed Lost": "Omitted"}
Result = tuple[int, dict[str, Any]]


def _problem(code: str, message: str, api_name: str, path: str) -> dict[str, Any]:
    return error_item(code, message, {"api_name": api_name, "json_path": path})


def modules_body(state: ZohoState) -> dict[str, Any]:
    """Return the body of ``GET /settings/modules``."""
    with state.lock:
        return {"modules": [module.to_json() for module in state.modules.values()]}


def fields_body(module: ModuleDef) -> dict[str, Any]:
    """Return the body of ``GET /settings/fields?module=``."""
    return {"fields": [item.to_json() for item in module.fields.values()]}


def layouts_body(module: ModuleDef) -> dict[str, Any]:
    """Return the body of ``GET /settings/layouts?module=``: the one standard layout."""
    fields = []
    for item in module.fields.values():
        described = item.to_json()
        described["required"] = item.system_mandatory or item.layout_required
        fields.append(described)
    section = {"display_label": f"{module.singular_label} Information", "sequence_number": 1,
               "api_name": f"{module.singular_label.replace(' ', '_')}_Information",
               "fields": fields}
    layout = {"id": module.layout_id, "name": "Standard", "display_label": "Standard",
              "visible": True, "status": "active", "sections": [section]}
    return {"layouts": [layout]}


# -- custom fields --------------------------------------------------------------


def api_name_for(label: str) -> str:
    """Return the API name Zoho derives from a field label: spaces become underscores."""
    return re.sub(r"[^A-Za-z0-9_]", "", label.strip().replace(" ", "_"))


def create_fields(state: ZohoState, module: ModuleDef, body: Any) -> Result:
    """Create the custom fields in ``body['fields']``; return the status and body."""
    items = body.get("fields") if isinstance(body, dict) else None
    if not isinstance(items, list) or not items:
        return 400, _problem("MANDATORY_NOT_FOUND", "required field not found", "fields",
                             "$.fields")
    if len(items) > MAX_FIELDS_PER_CREATE_CALL:
        # NOTE: the error code for more than five fields in one call was not confirmed.
        return 400, error_item("LIMIT_EXCEEDED", "a maximum of 5 fields can be created "
                               "in one call", {"api_name": "fields", "json_path": "$.fields",
                                               "limit": MAX_FIELDS_PER_CREATE_CALL})
    results = []
    with state.lock:
        for index, item in enumerate(items):
            created = _new_field(state, module, item, f"$.fields[{index}]")
            if isinstance(created, FieldDef):
                module.fields[created.api_name] = created
                results.append({"code": "SUCCESS", "details": {"id": created.id},
                                "message": "field created", "status": "success"})
            else:
                results.append(created)
    return write_status(results, 201), {"fields": results}


def _new_field(state: ZohoState, module: ModuleDef, item: Any,
               path: str) -> FieldDef | dict[str, Any]:
    if not isinstance(item, dict):
        return error_item("INVALID_DATA", "invalid data", {"json_path": path})
    for key in ("field_label", "data_type"):
        if not isinstance(item.get(key), str) or not item[key].strip():
            return _problem("MANDATORY_NOT_FOUND", "required field not found", key,
                            f"{path}.{key}")
    label, data_type = item["field_label"].strip(), item["data_type"]
    if data_type not in DATA_TYPE_LENGTHS:
        return _problem("INVALID_DATA", "invalid data", "data_type", f"{path}.data_type")
    problem = (_label_problem(module, label, path) or _length_problem(item, path)
               or _type_problem(state, item, path) or _limit_problem(state, module, item, path))
    if problem is not None:
        return problem
    length = item.get("length", default_length(data_type))
    created = FieldDef(api_name_for(label), label, data_type, state.next_id(), length=length,
                       custom=True, unique=isinstance(item.get("unique"), dict))
    if data_type in ("picklist", "multiselectpicklist"):
        created.options = [Option(value["display_value"], value["actual_value"],
                                  state.next_id(), number)
                           for number, value in enumerate(item["pick_list_values"], 1)]
    if data_type == "lookup":
        created.lookup_module = item["lookup"]["module"]["api_name"]
    return created


def _label_problem(module: ModuleDef, label: str, path: str) -> dict[str, Any] | None:
    api_name = api_name_for(label).casefold()
    for existing in module.fields.values():
        if (existing.field_label.casefold() == label.casefold()
                or existing.api_name.casefold() == api_name):
            return _problem("DUPLICATE_DATA", "duplicate data", "field_label",
                            f"{path}.field_label")
    return None


def _length_problem(item: dict[str, Any], path: str) -> dict[str, Any] | None:
    if "length" not in item:
        return None
    length = item["length"]
    if not isinstance(length, int) or isinstance(length, bool) or not valid_length(
            item["data_type"], length):
        return _problem("DEPENDENT_MISMATCH", "the given length value seems to be invalid",
                        "length", f"{path}.length")
    return None


def _type_problem(state: ZohoState, item: dict[str, Any], path: str) -> dict[str, Any] | None:
    data_type = item["data_type"]
    if data_type in ("picklist", "multiselectpicklist"):
        return _picklist_problem(item.get("pick_list_values"), f"{path}.pick_list_values")
    if data_type == "currency":
        currency = item.get("currency")
        if not isinstance(currency, dict) or "rounding_option" not in currency:
            return _problem("DEPENDENT_FIELD_MISSING", "one or more dependent fields are "
                            "missing", "currency", f"{path}.currency")
        if currency["rounding_option"] not in _ROUNDING_OPTIONS:
            return _problem("INVALID_DATA", "invalid data", "rounding_option",
                            f"{path}.currency.rounding_option")
    if data_type == "lookup":
        return _lookup_problem(state, item.get("lookup"), f"{path}.lookup")
    if "unique" in item and not isinstance(item["unique"], dict):
        return _problem("INVALID_DATA", "invalid data", "unique", f"{path}.unique")
    return None


def _picklist_problem(values: Any, path: str) -> dict[str, Any] | None:
    if not isinstance(values, list) or not values:
        return _problem("EXPECTED_DEPENDENT_FIELD_MISSING", "either global_picklist or "
                        "picklist values is expected", "pick_list_values", path)
    seen: set[str] = set()
    for index, value in enumerate(values):
        for key in ("display_value", "actual_value"):
            if not isinstance(value, dict) or not isinstance(value.get(key), str):
                return _problem("MANDATORY_NOT_FOUND", "required field not found", key,
                                f"{path}[{index}].{key}")
        if value["display_value"].casefold() in seen:
            return _problem("DUPLICATE_DATA", "duplicate data", "display_value",
                            f"{path}[{index}].display_value")
        seen.add(value["display_value"].casefold())
    return None


def _lookup_problem(state: ZohoState, lookup: Any, path: str) -> dict[str, Any] | None:
    target = lookup.get("module") if isinstance(lookup, dict) else None
    if not isinstance(target, dict) or not isinstance(lookup.get("display_label"), str):
        return _problem("DEPENDENT_FIELD_MISSING", "one or more dependent fields are missing",
                        "lookup", path)
    if target.get("api_name") not in state.modules:
        return _problem("INVALID_DATA", "invalid data", "module", f"{path}.module")
    return None


def _limit_problem(state: ZohoState, module: ModuleDef, item: dict[str, Any],
                   path: str) -> dict[str, Any] | None:
    custom_count = sum(1 for existing in module.fields.values() if existing.custom)
    if custom_count >= state.config.custom_field_limit():
        return _problem("LIMIT_EXCEEDED", "the field has reached its maximum creation limit",
                        "field_label", f"{path}.field_label")
    if isinstance(item.get("unique"), dict) and (
            len(module.unique_fields()) >= MAX_UNIQUE_FIELDS_PER_MODULE):
        return _problem("LIMIT_EXCEEDED", "the field has reached its maximum creation limit",
                        "unique", f"{path}.unique")
    return None


def update_fields(state: ZohoState, module: ModuleDef, body: Any,
                  field_id: str | None = None) -> Result:
    """Apply ``PATCH /settings/fields``: labels and picklist values of custom fields."""
    items = body.get("fields") if isinstance(body, dict) else None
    if not isinstance(items, list) or not items:
        return 400, _problem("MANDATORY_NOT_FOUND", "required field not found", "fields",
                             "$.fields")
    results = []
    with state.lock:
        for index, item in enumerate(items):
            path = f"$.fields[{index}]"
            target_id = field_id or (item.get("id") if isinstance(item, dict) else None)
            target = next((f for f in module.fields.values() if f.id == target_id), None)
            if not isinstance(item, dict) or target is None:
                results.append(_problem("INVALID_DATA", "the id given seems to be invalid",
                                        "id", f"{path}.id"))
                continue
            results.append(_update_field(state, target, item, path))
    return write_status(results, 200), {"fields": results}


def delete_field(state: ZohoState, module: ModuleDef, field_id: str) -> Result:
    """Apply ``DELETE /settings/fields/{id}``: drop a custom field and its record values."""
    with state.lock:
        target = next((f for f in module.fields.values() if f.id == field_id), None)
        if target is None:
            return 400, {"fields": [_problem("INVALID_DATA", "the id given seems to be invalid",
                                             "id", "$.fields[0].id")]}
        if not target.custom:
            # NOTE: code and message for deleting a system-defined field are not confirmed.
            return 400, {"fields": [_problem("NOT_ALLOWED",
                                             "system-defined fields cannot be deleted",
                                             target.api_name, "$.fields[0]")]}
        del module.fields[target.api_name]
        for record in state.records.get(module.api_name, {}).values():
            record.pop(target.api_name, None)
    return 200, {"fields": [{"code": "SUCCESS", "details": {"id": target.id},
                             "message": "field deleted", "status": "success"}]}


def _update_field(state: ZohoState, target: FieldDef, item: dict[str, Any],
                  path: str) -> dict[str, Any]:
    if not target.custom and not state.config.allow_standard_field_updates:
        # NOTE: code and message for changing a system-defined field are not confirmed.
        return _problem("NOT_ALLOWED", "system-defined fields cannot be updated",
                        target.api_name, path)
    values = item.get("pick_list_values")
    if values is not None:
        problem = _merge_options(state, target, values, f"{path}.pick_list_values")
        if problem is not None:
            return problem
    if isinstance(item.get("field_label"), str) and target.custom:
        target.field_label = item["field_label"]
    return {"code": "SUCCESS", "details": {"id": target.id}, "message": "field updated",
            "status": "success"}


def _merge_options(state: ZohoState, target: FieldDef, values: Any,
                   path: str) -> dict[str, Any] | None:
    """Update options named by id, drop those with ``_delete``, append the rest."""
    if not isinstance(values, list):
        return _problem("INVALID_DATA", "invalid data", "pick_list_values", path)
    for index, value in enumerate(values):
        if not isinstance(value, dict):
            return _problem("INVALID_DATA", "invalid data", "pick_list_values",
                            f"{path}[{index}]")
        existing = next((o for o in target.options if o.id == value.get("id")), None)
        if value.get("id") is not None and existing is None:
            return _problem("INVALID_DATA", "invalid data", "id", f"{path}[{index}].id")
        if existing is not None and "_delete" in value:
            target.options.remove(existing)
        elif existing is not None:
            existing.display_value = value.get("display_value", existing.display_value)
            existing.actual_value = value.get("actual_value", existing.actual_value)
        else:
            problem = _picklist_problem([value], f"{path}[{index}]")
            if problem is None and target.option_for(value["display_value"], "either"):
                problem = _problem("DUPLICATE_DATA", "duplicate data", "display_value",
                                   f"{path}[{index}].display_value")
            if problem is not None:
                return problem
            target.options.append(Option(value["display_value"], value["actual_value"],
                                         state.next_id(), len(target.options) + 1))
    return None


# -- pipelines ------------------------------------------------------------------


def pipelines_body(state: ZohoState) -> dict[str, Any]:
    """Return the body of ``GET /settings/pipeline``."""
    with state.lock:
        stage = state.modules["Deals"].fields["Stage"]
        return {"pipeline": [_pipeline_json(pipeline, stage) for pipeline in state.pipelines]}


def _pipeline_json(pipeline: Pipeline, stage: FieldDef) -> dict[str, Any]:
    options = {option.id: option for option in stage.options}
    maps = []
    for number, stage_id in enumerate(pipeline.stage_ids, 1):
        option = options.get(stage_id)
        if option is None:
            continue
        forecast = str(option.extra.get("forecast_type", "Open"))
        maps.append({"display_value": option.display_value, "actual_value": option.actual_value,
                     "id": option.id, "sequence_number": number, "forecast_type": forecast,
                     "forecast_category": {"name": _FORECAST_CATEGORIES.get(forecast,
                                                                            "Pipeline")}})
    return {"display_value": pipeline.display_value, "actual_value": pipeline.display_value,
            "default": pipeline.default, "id": pipeline.id, "maps": maps}


def create_pipelines(state: ZohoState, body: Any) -> Result:
    """Create the pipelines in ``body['pipeline']`` from existing Stage options."""
    items = body.get("pipeline") if isinstance(body, dict) else None
    if not isinstance(items, list) or not items:
        return 400, _problem("MANDATORY_NOT_FOUND", "required field not found", "pipeline",
                             "$.pipeline")
    results = []
    with state.lock:
        for index, item in enumerate(items):
            created = _new_pipeline(state, item, f"$.pipeline[{index}]")
            if isinstance(created, Pipeline):
                if created.default:
                    for pipeline in state.pipelines:
                        pipeline.default = False
                state.pipelines.append(created)
                results.append({"code": "SUCCESS", "details": {"id": created.id},
                                "message": "Pipeline created successfully",
                                "status": "success"})
            else:
                results.append(created)
        state.refresh_pipeline_field()
    return write_status(results, 201), {"pipeline": results}


def _new_pipeline(state: ZohoState, item: Any, path: str) -> Pipeline | dict[str, Any]:
    if not isinstance(item, dict) or not isinstance(item.get("display_value"), str):
        return _problem("MANDATORY_NOT_FOUND", "required field not found", "display_value",
                        f"{path}.display_value")
    name = item["display_value"]
    if any(pipeline.display_value.casefold() == name.casefold()
           for pipeline in state.pipelines):
        return _problem("DUPLICATE_DATA", "Duplicate pipeline label found", "display_value",
                        f"{path}.display_value")
    maps = item.get("maps")
    if not isinstance(maps, list) or not maps:
        return _problem("MANDATORY_NOT_FOUND", "required field not found", "maps",
                        f"{path}.maps")
    known = {option.id for option in state.modules["Deals"].fields["Stage"].options}
    for index, entry in enumerate(maps):
        if not isinstance(entry, dict) or not entry.get("id"):
            return _problem("MANDATORY_NOT_FOUND", "required field not found", "id",
                            f"{path}.maps[{index}].id")
        if entry["id"] not in known:
            return _problem("INVALID_DATA", "Invalid child option id", "id",
                            f"{path}.maps[{index}].id")
    ordered = sorted(maps, key=lambda entry: int(entry.get("sequence_number", 0)))
    return Pipeline(state.next_id(), name, bool(item.get("default", False)),
                    [str(entry["id"]) for entry in ordered])


def stage_ids_for(state: ZohoState, names: Sequence[str]) -> list[str]:
    """Return the Stage option ids for stage names, skipping unknown names."""
    stage = state.modules["Deals"].fields["Stage"]
    found = (stage.option_for(name, "either") for name in names)
    return [option.id for option in found if option is not None]
