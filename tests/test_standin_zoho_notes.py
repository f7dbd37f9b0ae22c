"""Notes in the Zoho CRM stand-in: created on a record through /Notes or the record's path."""

from __future__ import annotations

from typing import Any

import httpx

from tests.test_standin_zoho import auth, contact, standin


def contact_id(client: httpx.Client, headers: dict[str, str]) -> str:
    created = client.post("/crm/v8/Contacts", headers=headers, json={"data": [contact(1)]})
    assert created.status_code == 201
    return str(created.json()["data"][0]["details"]["id"])


def note(parent_id: str, module: str = "Contacts", **fields: Any) -> dict[str, Any]:
    return {"Note_Title": "abandoned_cart:cart_reminder_1",
            "Note_Content": "Recovery link: https://demo-store.example.com/recover/tok-1",
            "Parent_Id": {"module": {"api_name": module}, "id": parent_id}, **fields}


def test_note_created_on_contact() -> None:
    with standin() as (client, _):
        headers = auth(client)
        parent = contact_id(client, headers)
        response = client.post("/crm/v8/Notes", headers=headers, json={"data": [note(parent)]})
        stored = client.get("/_standin/records/Notes").json()["records"]

    assert response.status_code == 201
    [result] = response.json()["data"]
    assert result["code"] == "SUCCESS"
    assert result["status"] == "success"
    assert result["message"] == "record added"
    assert set(result["details"]) == {"Modified_Time", "Modified_By", "Created_Time", "id",
                                      "Created_By"}
    [saved] = stored
    assert saved["id"] == result["details"]["id"]
    assert saved["Parent_Id"]["id"] == parent
    assert saved["Parent_Id"]["module"]["api_name"] == "Contacts"
    assert saved["Note_Title"] == "abandoned_cart:cart_reminder_1"
    assert saved["Note_Content"].endswith("/recover/tok-1")


def test_note_on_record_path() -> None:
    with standin() as (client, _):
        headers = auth(client)
        parent = contact_id(client, headers)
        response = client.post(f"/crm/v8/Contacts/{parent}/Notes", headers=headers,
                               json={"data": [{"Note_Content": "Checked by phone"}]})
        unknown_module = client.post(f"/crm/v8/Orders/{parent}/Notes", headers=headers,
                                     json={"data": [{"Note_Content": "x"}]})
        stored = client.get("/_standin/records/Notes").json()["records"]

    assert response.status_code == 201
    assert stored[0]["Parent_Id"]["id"] == parent
    assert stored[0]["Note_Title"] is None
    assert unknown_module.status_code == 400
    assert unknown_module.json()["code"] == "INVALID_MODULE"


def test_note_errors_per_record() -> None:
    with standin() as (client, _):
        headers = auth(client)
        parent = contact_id(client, headers)
        response = client.post("/crm/v8/Notes", headers=headers, json={"data": [
            note(parent),
            note(parent, Note_Content=""),
            note("5725767999999999999"),
            note(parent, module="Orders"),
            {"Note_Content": "no parent"},
        ]})
        stored = client.get("/_standin/records/Notes").json()["records"]

    assert response.status_code == 207
    results = response.json()["data"]
    assert results[0]["status"] == "success"
    assert results[1]["code"] == "MANDATORY_NOT_FOUND"
    assert results[1]["details"] == {"api_name": "Note_Content",
                                     "json_path": "$.data[1].Note_Content"}
    for index in (2, 3, 4):
        assert results[index]["code"] == "INVALID_DATA"
        assert results[index]["details"]["api_name"] == "Parent_Id"
    assert len(stored) == 1


def test_notes_need_data_and_token() -> None:
    with standin() as (client, _):
        headers = auth(client)
        empty = client.post("/crm/v8/Notes", headers=headers, json={"data": []})
        too_many = client.post("/crm/v8/Notes", headers=headers,
                               json={"data": [note("1")] * 101})
        anonymous = client.post("/crm/v8/Notes", json={"data": [note("1")]})

    assert empty.status_code == 400
    assert empty.json()["code"] == "MANDATORY_NOT_FOUND"
    assert too_many.status_code == 400
    assert too_many.json()["code"] == "LIMIT_EXCEEDED"
    assert anonymous.status_code == 401
