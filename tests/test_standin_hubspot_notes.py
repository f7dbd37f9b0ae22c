"""Notes in the HubSpot stand-in: a note is created with an association to a contact."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from generator.standins.hubspot import HubSpotStandinConfig, create_app
from tests.servers import serve

TOKEN = "pat-standin-notes-not-real"


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    app = create_app(HubSpotStandinConfig(accepted_tokens=frozenset({TOKEN})))
    with serve(app) as url, httpx.Client(base_url=url, headers={
            "Authorization": f"Bearer {TOKEN}"}) as http:
        yield http


def contact_id(client: httpx.Client) -> str:
    response = client.post("/crm/v3/objects/contacts",
                           json={"properties": {"email": "note.reader@example.com"}})
    assert response.status_code == 201
    return str(response.json()["id"])


def note_body(to_id: str, type_id: int = 202, **properties: str) -> dict[str, object]:
    return {"properties": {"hs_timestamp": "2026-03-01T07:00:00Z",
                           "hs_note_body": "<p>abandoned_cart:cart_reminder_1</p>", **properties},
            "associations": [{"to": {"id": to_id}, "types": [
                {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}]}]}


def test_note_is_linked_to_the_contact(client: httpx.Client) -> None:
    contact = contact_id(client)
    response = client.post("/crm/v3/objects/notes", json=note_body(contact))
    assert response.status_code == 201
    note = response.json()
    assert note["properties"]["hs_note_body"] == "<p>abandoned_cart:cart_reminder_1</p>"
    [stored] = client.get("/_standin/records/notes").json()["results"]
    assert stored["associations"]["contacts"][0]["id"] == contact
    [owner] = [record for record in client.get("/_standin/records/contacts").json()["results"]
               if record["id"] == contact]
    assert owner["associations"]["notes"][0]["id"] == note["id"]


def test_note_without_timestamp_is_rejected(client: httpx.Client) -> None:
    contact = contact_id(client)
    body = note_body(contact)
    del body["properties"]["hs_timestamp"]  # type: ignore[attr-defined]
    response = client.post("/crm/v3/objects/notes", json=body)
    assert response.status_code == 400
    assert response.json()["category"] == "VALIDATION_ERROR"
    assert "hs_timestamp" in response.json()["message"]
    assert client.get("/_standin/records/notes").json()["total"] == 0


def test_note_with_wrong_association_type_is_rejected(client: httpx.Client) -> None:
    contact = contact_id(client)
    response = client.post("/crm/v3/objects/notes", json=note_body(contact, type_id=3))
    assert response.status_code == 400
    assert client.get("/_standin/records/notes").json()["total"] == 0


def test_note_for_a_missing_contact_is_rejected(client: httpx.Client) -> None:
    response = client.post("/crm/v3/objects/notes", json=note_body("999999"))
    assert response.status_code == 400
