"""The Zoho CRM endpoints of the stand-in: records, search and metadata.

Each handler gets a ``Call`` whose token, scope, credits and concurrency were already
checked by ``zoho_app.crm_endpoint``.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from .zoho_app import Call, json_response
from .zoho_config import MAX_RECORDS_PER_PAGE, MAX_RECORDS_PER_WRITE
from .zoho_notes import notes_create
from .zoho_records import error_item, find_record, upsert_order, write_records, write_status
from .zoho_schema import ModuleDef
from .zoho_search import CriteriaError, keyword_matches, matches, parse_criteria
from .zoho_settings import (
    create_fields,
    create_pipelines,
    delete_field,
    fields_body,
    layouts_body,
    modules_body,
    pipelines_body,
    update_fields,
)

__all__ = [
    "field_by_id", "field_delete", "fields_create", "fields_list", "fields_update", "layouts_list",
    "modules_list", "pipelines_create", "pipelines_list", "record_get", "record_update",
    "records_delete", "records_insert", "records_list", "records_search", "records_update",
    "records_upsert",
]


def _invalid_module() -> dict[str, Any]:
    return error_item("INVALID_MODULE", "the module name given seems to be invalid",
                      {"resource_path_index": 0})


def _missing_param(name: str) -> dict[str, Any]:
    return error_item("REQUIRED_PARAM_MISSING", "One of the expected parameter is missing",
                      {"param_name": name})


def _module(call: Call, name: str | None) -> ModuleDef | None:
    if not name:
        return None
    with call.state.lock:
        modules = call.state.modules
        if name in modules:
            return modules[name]
        return next((module for key, module in modules.items()
                     if key.casefold() == name.casefold()), None)


def _path_module(call: Call) -> ModuleDef | None:
    return _module(call, str(call.request.path_params.get("module", "")))


def _query_module(call: Call) -> tuple[ModuleDef | None, Response | None]:
    name = call.request.query_params.get("module")
    if not name:
        return None, json_response(400, _missing_param("module"), call.state)
    module = _module(call, name)
    if module is None:
        return None, json_response(400, _invalid_module(), call.state)
    return module, None


# -- records --------------------------------------------------------------------


async def records_insert(call: Call) -> Response:
    """``POST /crm/v8/{module}``: insert up to 100 records, or notes for ``Notes``."""
    if str(call.request.path_params.get("module", "")).casefold() == "notes":
        return await notes_create(call)
    return _write(call, "insert", 201)


async def records_update(call: Call) -> Response:
    """``PUT /crm/v8/{module}``: update up to 100 records by their ``id``."""
    return _write(call, "update", 200)


async def records_upsert(call: Call) -> Response:
    """``POST /crm/v8/{module}/upsert``: insert or update by duplicate check fields."""
    return _write(call, "upsert", 200)


async def record_update(call: Call) -> Response:
    """``PUT /crm/v8/{module}/{id}``: update one record named in the path."""
    data = call.body.get("data") if isinstance(call.body, dict) else None
    if isinstance(data, list) and data and isinstance(data[0], dict):
        data[0]["id"] = str(call.request.path_params["record_id"])
    return _write(call, "update", 200)


def _write(call: Call, mode: str, success_status: int) -> Response:
    module = _path_module(call)
    if module is None:
        return json_response(400, _invalid_module(), call.state)
    data = call.body.get("data") if isinstance(call.body, dict) else None
    if not isinstance(data, list) or not data:
        return json_response(400, error_item(
            "MANDATORY_NOT_FOUND", "required field not found",
            {"api_name": "data", "json_path": "$.data"}), call.state)
    if len(data) > MAX_RECORDS_PER_WRITE:
        # NOTE: the code and details for more than 100 records were not confirmed.
        return json_response(400, error_item(
            "LIMIT_EXCEEDED", "a maximum of 100 records can be written in one call",
            {"api_name": "data", "json_path": "$.data", "limit": MAX_RECORDS_PER_WRITE}),
            call.state)
    check_fields = call.body.get("duplicate_check_fields") if mode == "upsert" else None
    problem = _duplicate_fields_problem(module, check_fields)
    if problem is not None:
        return json_response(400, problem, call.state)
    with call.state.lock:
        call.state.triggers.append(call.body.get("trigger"))
    results = write_records(call.state, module, data, mode, check_fields)
    return json_response(write_status(results, success_status), {"data": results}, call.state)


def _duplicate_fields_problem(module: ModuleDef, fields: Any) -> dict[str, Any] | None:
    """Check ``duplicate_check_fields``: only the module's duplicate check fields."""
    if fields is None:
        return None
    allowed = set(upsert_order(module, None))
    if not isinstance(fields, list):
        return error_item("INVALID_DATA", "invalid data", {
            "api_name": "duplicate_check_fields", "json_path": "$.duplicate_check_fields"})
    for index, name in enumerate(fields):
        if name not in allowed:
            # NOTE: the code for a field that is neither unique nor a system-defined
            # duplicate check field was not confirmed.
            return error_item("INVALID_DATA", "invalid data", {
                "api_name": str(name), "json_path": f"$.duplicate_check_fields[{index}]"})
    return None


async def record_get(call: Call) -> Response:
    """``GET /crm/v8/{module}/{id}``: one record, or 204 when there is none."""
    module = _path_module(call)
    if module is None:
        return json_response(400, _invalid_module(), call.state)
    record = find_record(call.state, module.api_name, str(call.request.path_params["record_id"]))
    if record is None:
        # NOTE: 204 for an unknown id is assumed from Zoho's "no content" rule.
        return json_response(204, None, call.state)
    return json_response(200, {"data": [dict(record)]}, call.state)


async def records_list(call: Call) -> Response:
    """``GET /crm/v8/{module}?fields=...[&ids=...]``: a page of records, 204 when empty.

    With ``ids`` (up to 100, comma-separated) only those records are listed; unknown
    ids are left out. NOTE: the ``ids`` parameter of Get Records is taken from public
    client code and the older API's ``idlist`` (up to 100 ids); its limit on v8 is
    not confirmed.
    """
    module = _path_module(call)
    if module is None:
        return json_response(400, _invalid_module(), call.state)
    requested = call.request.query_params.get("fields")
    if not requested:
        return json_response(400, _missing_param("fields"), call.state)
    names = [name.strip() for name in requested.split(",") if name.strip()]
    requested_ids = _id_list(call.request.query_params.get("ids"))
    if requested_ids is not None and not 0 < len(requested_ids) <= MAX_RECORDS_PER_WRITE:
        return json_response(400, error_item("INVALID_DATA", "invalid data",
                                             {"param_name": "ids"}), call.state)
    with call.state.lock:
        stored = call.state.records[module.api_name]
        if requested_ids is None:
            records = list(stored.values())
        else:
            records = [stored[record_id] for record_id in requested_ids if record_id in stored]
    selected = [{"id": record["id"], **{name: record.get(name) for name in names}}
                for record in records]
    return _page(call, selected)


def _page(call: Call, records: list[dict[str, Any]]) -> Response:
    try:
        page = int(call.request.query_params.get("page", "1"))
        per_page = int(call.request.query_params.get("per_page", str(MAX_RECORDS_PER_PAGE)))
    except ValueError:
        page, per_page = 0, 0
    if page < 1 or not 1 <= per_page <= MAX_RECORDS_PER_PAGE:
        return json_response(400, error_item("INVALID_DATA", "invalid data", {
            "param_name": "per_page" if page >= 1 else "page"}), call.state)
    start = (page - 1) * per_page
    chunk = records[start:start + per_page]
    if not chunk:
        return json_response(204, None, call.state)
    info = {"per_page": per_page, "count": len(chunk), "page": page,
            "more_records": start + per_page < len(records)}
    return json_response(200, {"data": chunk, "info": info}, call.state)


def _id_list(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [part.strip() for part in text.split(",") if part.strip()]


async def records_delete(call: Call) -> Response:
    """``DELETE /crm/v8/{module}?ids=...``: delete up to 100 records, one result per id.

    Zoho moves deleted records to the recycle bin; the stand-in drops them. An unknown
    id gets ``INVALID_DATA``. NOTE: the message and details of that error are not
    confirmed against a live org.
    """
    module = _path_module(call)
    if module is None:
        return json_response(400, _invalid_module(), call.state)
    requested_ids = _id_list(call.request.query_params.get("ids"))
    if not requested_ids:
        return json_response(400, _missing_param("ids"), call.state)
    if len(requested_ids) > MAX_RECORDS_PER_WRITE:
        return json_response(400, error_item("LIMIT_EXCEEDED", "the number of ids exceeds "
                                             f"{MAX_RECORDS_PER_WRITE}",
                                             {"param_name": "ids"}), call.state)
    results = []
    with call.state.lock:
        stored = call.state.records[module.api_name]
        for record_id in requested_ids:
            if stored.pop(record_id, None) is None:
                results.append(error_item("INVALID_DATA", "the related id given seems to be "
                                          "invalid", {"id": record_id}))
                continue
            call.state.written_at.pop(record_id, None)
            results.append({"code": "SUCCESS", "details": {"id": record_id},
                            "message": "record deleted", "status": "success"})
    return json_response(write_status(results, 200), {"data": results}, call.state)


async def records_search(call: Call) -> Response:
    """``GET /crm/v8/{module}/search``: by ``criteria``, ``email``, ``phone`` or ``word``."""
    module = _path_module(call)
    if module is None:
        return json_response(400, _invalid_module(), call.state)
    params = call.request.query_params
    key = next((name for name in ("criteria", "email", "phone", "word") if params.get(name)),
               None)
    if key is None:
        return json_response(400, _missing_param("criteria"), call.state)
    try:
        test = parse_criteria(params[key], module) if key == "criteria" else None
    except CriteriaError as problem:
        # NOTE: the details of INVALID_QUERY are the stand-in's own.
        return json_response(400, error_item("INVALID_QUERY", "invalid query formed",
                                             {"reason": str(problem)}), call.state)
    state = call.state
    with state.lock:
        visible_before = state.now() - state.config.search_index_delay_seconds
        found = [dict(record) for record in state.records[module.api_name].values()
                 if state.written_at.get(record["id"], 0.0) <= visible_before
                 and (matches(test, record) if test is not None
                      else keyword_matches(module, record, key, params[key]))]
    return _page(call, found)


# -- metadata -------------------------------------------------------------------


async def org_details(call: Call) -> Response:
    """``GET /crm/v8/org``: the org's id and a few settings."""
    config = call.state.config
    # NOTE: clients read only id. The other fields follow the documented example.
    body = {"org": [{"id": config.org_id, "company_name": "Stand-in org",
                     "time_zone": "Asia/Riyadh", "currency": "Saudi Riyal", "iso_code": "SAR",
                     "country_code": "SA", "zgid": config.org_id[-8:]}]}
    return json_response(200, body, call.state)


async def modules_list(call: Call) -> Response:
    """``GET /crm/v8/settings/modules``."""
    return json_response(200, modules_body(call.state), call.state)


async def fields_list(call: Call) -> Response:
    """``GET /crm/v8/settings/fields?module=``."""
    module, problem = _query_module(call)
    if module is None:
        return problem or json_response(400, _invalid_module(), call.state)
    with call.state.lock:
        return json_response(200, fields_body(module), call.state)


async def field_by_id(call: Call) -> Response:
    """``GET /crm/v8/settings/fields/{id}?module=``."""
    module, problem = _query_module(call)
    if module is None:
        return problem or json_response(400, _invalid_module(), call.state)
    field_id = str(call.request.path_params["field_id"])
    with call.state.lock:
        found = [item.to_json() for item in module.fields.values() if item.id == field_id]
    if not found:
        return json_response(400, error_item("INVALID_DATA", "the id given seems to be invalid",
                                             {"api_name": "id"}), call.state)
    return json_response(200, {"fields": found}, call.state)


async def fields_create(call: Call) -> Response:
    """``POST /crm/v8/settings/fields?module=``: up to 5 custom fields."""
    module, problem = _query_module(call)
    if module is None:
        return problem or json_response(400, _invalid_module(), call.state)
    status, body = create_fields(call.state, module, call.body)
    return json_response(status, body, call.state)


async def fields_update(call: Call) -> Response:
    """``PATCH /crm/v8/settings/fields[/{id}]?module=``: labels and picklist values."""
    module, problem = _query_module(call)
    if module is None:
        return problem or json_response(400, _invalid_module(), call.state)
    field_id = call.request.path_params.get("field_id")
    status, body = update_fields(call.state, module, call.body,
                                 str(field_id) if field_id else None)
    return json_response(status, body, call.state)


async def field_delete(call: Call) -> Response:
    """``DELETE /crm/v8/settings/fields/{id}?module=``: one custom field."""
    module, problem = _query_module(call)
    if module is None:
        return problem or json_response(400, _invalid_module(), call.state)
    status, body = delete_field(call.state, module, str(call.request.path_params["field_id"]))
    return json_response(status, body, call.state)


async def layouts_list(call: Call) -> Response:
    """``GET /crm/v8/settings/layouts?module=``."""
    module, problem = _query_module(call)
    if module is None:
        return problem or json_response(400, _invalid_module(), call.state)
    with call.state.lock:
        return json_response(200, layouts_body(module), call.state)


def _pipeline_problem(call: Call) -> Response | None:
    layout_id = call.request.query_params.get("layout_id")
    if not layout_id:
        return json_response(400, _missing_param("layout_id"), call.state)
    if layout_id != call.state.modules["Deals"].layout_id:
        return json_response(400, error_item("INVALID_DATA", "Invalid layoutid",
                                             {"param_name": "layout_id"}), call.state)
    if not call.state.config.pipelines_enabled:
        # NOTE: Zoho's response when pipelines are switched off was not confirmed.
        return json_response(400, error_item("NOT_ALLOWED", "pipeline is not enabled "
                                             "for this org"), call.state)
    return None


async def pipelines_list(call: Call) -> Response:
    """``GET /crm/v8/settings/pipeline?layout_id=``: the Deals pipelines and stages."""
    return _pipeline_problem(call) or json_response(200, pipelines_body(call.state), call.state)


async def pipelines_create(call: Call) -> Response:
    """``POST /crm/v8/settings/pipeline?layout_id=``: pipelines from existing stages."""
    problem = _pipeline_problem(call)
    if problem is not None:
        return problem
    status, body = create_pipelines(call.state, call.body)
    return json_response(status, body, call.state)
