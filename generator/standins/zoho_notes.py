"""Notes of the Zoho CRM stand-in: creating notes on records, as Zoho CRM API v8 takes them.

Two requests create notes, both with up to 100 notes in ``data``:

* ``POST /crm/v8/Notes``: each note names its record in ``Parent_Id``, an object
  ``{"module": {"api_name": "Contacts"}, "id": "<record id>"}`` (API v5 and later);
* ``POST /crm/v8/{module}/{record_id}/Notes``: the path names the record.

``Note_Content`` is mandatory and ``Note_Title`` optional. Each note gets its own
result, as records do: ``code``, ``details`` with the new id, ``message`` and
``status``. ``/_standin/records/Notes`` lists the stored notes with their
``Parent_Id`` (module and record id).
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from .zoho_app import Call, json_response
from .zoho_config import MAX_RECORDS_PER_WRITE
from .zoho_records import error_item, success_item, write_status
from .zoho_schema import ModuleDef
from .zoho_state import ZohoState

__all__ = ["NOTES_MODULE", "notes_create", "notes_create_for_record"]

NOTES_MODULE = "Notes"


def _field_error(code: str, message: str, api_name: str, path: str) -> dict[str, Any]:
    return error_item(code, message, {"api_name": api_name, "json_path": path})


def _module_named(state: ZohoState, name: Any) -> ModuleDef | None:
    if not isinstance(name, str):
        return None
    return next((module for key, module in state.modules.items()
                 if key.casefold() == name.casefold()), None)


def _data(call: Call) -> tuple[list[Any], Response | None]:
    data = call.body.get("data") if isinstance(call.body, dict) else None
    if not isinstance(data, list) or not data:
        return [], json_response(400, error_item(
            "MANDATORY_NOT_FOUND", "required field not found",
            {"api_name": "data", "json_path": "$.data"}), call.state)
    if len(data) > MAX_RECORDS_PER_WRITE:
        # NOTE: the code and details for more than 100 notes were not confirmed.
        return [], json_response(400, error_item(
            "LIMIT_EXCEEDED", "a maximum of 100 records can be written in one call",
            {"api_name": "data", "json_path": "$.data", "limit": MAX_RECORDS_PER_WRITE}),
            call.state)
    return data, None


async def notes_create(call: Call) -> Response:
    """``POST /crm/v8/Notes``: create notes, each on the record its ``Parent_Id`` names."""
    data, problem = _data(call)
    if problem is not None:
        return problem
    results = []
    with call.state.lock:
        for index, item in enumerate(data):
            path = f"$.data[{index}]"
            parent = item.get("Parent_Id") if isinstance(item, dict) else None
            module_name = parent.get("module") if isinstance(parent, dict) else None
            module = _module_named(call.state, module_name.get("api_name")
                                   if isinstance(module_name, dict) else None)
            record_id = parent.get("id") if isinstance(parent, dict) else None
            results.append(_create(call.state, item, module, record_id, path))
    return json_response(write_status(results, 201), {"data": results}, call.state)


async def notes_create_for_record(call: Call) -> Response:
    """``POST /crm/v8/{module}/{record_id}/Notes``: create notes on the record in the path.

    NOTE: the scope is checked for the record's module only, but Zoho also requires
    ZohoCRM.modules.notes.CREATE (or ZohoCRM.modules.ALL).
    """
    module = _module_named(call.state, call.request.path_params.get("module"))
    if module is None:
        return json_response(400, error_item(
            "INVALID_MODULE", "the module name given seems to be invalid",
            {"resource_path_index": 0}), call.state)
    data, problem = _data(call)
    if problem is not None:
        return problem
    record_id = str(call.request.path_params["record_id"])
    with call.state.lock:
        results = [_create(call.state, item, module, record_id, f"$.data[{index}]")
                   for index, item in enumerate(data)]
    return json_response(write_status(results, 201), {"data": results}, call.state)


def _create(state: ZohoState, item: Any, module: ModuleDef | None, record_id: Any,
            path: str) -> dict[str, Any]:
    """Store one note on ``module``'s record ``record_id``, or return its first error."""
    if not isinstance(item, dict):
        return error_item("INVALID_DATA", "invalid data", {"json_path": path})
    content = item.get("Note_Content")
    if not isinstance(content, str) or not content.strip():
        return _field_error("MANDATORY_NOT_FOUND", "required field not found",
                            "Note_Content", f"{path}.Note_Content")
    title = item.get("Note_Title")
    if title is not None and not isinstance(title, str):
        return _field_error("INVALID_DATA", "invalid data", "Note_Title", f"{path}.Note_Title")
    record = (state.records[module.api_name].get(str(record_id))
              if module is not None and record_id else None)
    if module is None or record is None:
        # NOTE: Zoho's error for a note on a record that does not exist was not
        # confirmed. The stand-in names Parent_Id, as it names a bad lookup.
        return _field_error("INVALID_DATA", "invalid data", "Parent_Id", f"{path}.Parent_Id")
    note_id = state.next_id()
    now = state.timestamp()
    note: dict[str, Any] = {
        "id": note_id, "Owner": state.owner(), "Created_Time": now, "Modified_Time": now,
        "Created_By": state.owner(), "Modified_By": state.owner(),
        "Note_Title": title, "Note_Content": content,
        "Parent_Id": {"module": {"api_name": module.api_name, "id": module.id},
                      "id": record["id"]}}
    state.notes[note_id] = note
    state.written_at[note_id] = state.now()
    return success_item(note, "record added")
