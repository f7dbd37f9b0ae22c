"""The HubSpot stand-in's subscription statuses and GDPR delete, under uvicorn on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from generator.standins.hubspot import HubSpotStandinConfig, create_app
from generator.standins.hubspot_privacy import SUBSCRIPTION_TYPES
from tests.servers import serve

AUTH = {"Authorization": "Bearer test-token-not-real"}
EMAIL = "sara.privacy@example.com"
PREFERENCES = "/communication-preferences/v4/statuses"


@pytest.fixture
def hubspot() -> Iterator[httpx.Client]:
    config = HubSpotStandinConfig(rate_limit_per_10s=0, search_rate_per_second=0,
                                  clock=lambda: 1_800_000_000.0)
    with serve(create_app(config)) as base_url, httpx.Client(
            base_url=base_url, headers=AUTH, timeout=10) as client:
        yield client


def statuses(hubspot: httpx.Client, channel: str, subscriber: str) -> list[str]:
    response = hubspot.post(f"{PREFERENCES}/batch/read", params={"channel": channel},
                            json={"inputs": [subscriber]})
    assert response.status_code == 200
    [result] = response.json()["results"]
    return [item["status"] for item in result["statuses"]]


def test_status_set_read_and_unsubscribe_all(hubspot: httpx.Client) -> None:
    assert statuses(hubspot, "EMAIL", EMAIL) == []
    set_status = hubspot.post(f"{PREFERENCES}/{EMAIL}", json={
        "channel": "EMAIL", "statusState": "SUBSCRIBED",
        "subscriptionId": SUBSCRIPTION_TYPES["EMAIL"], "legalBasis": "CONSENT_WITH_NOTICE"})
    assert set_status.status_code == 200
    # Email subscribers are matched without regard to case.
    assert statuses(hubspot, "EMAIL", EMAIL.upper()) == ["SUBSCRIBED"]
    off = hubspot.post(f"{PREFERENCES}/{EMAIL}/unsubscribe-all", params={"channel": "EMAIL"})
    assert off.status_code == 200
    assert statuses(hubspot, "EMAIL", EMAIL) == ["NOT_SUBSCRIBED"]
    assert statuses(hubspot, "WHATSAPP", "+966500000011") == []


@pytest.mark.parametrize(("path", "params", "body", "words"), [
    ("/batch/read", {}, {"inputs": [EMAIL]}, "channel must be one of"),
    ("/batch/read", {"channel": "FAX"}, {"inputs": [EMAIL]}, "channel must be one of"),
    ("/batch/read", {"channel": "EMAIL"}, {"inputs": []}, "inputs must be a list"),
    (f"/{EMAIL}", {}, {"channel": "EMAIL", "statusState": "MAYBE", "subscriptionId": 7001},
     "statusState must be one of"),
    (f"/{EMAIL}", {}, {"channel": "SMS", "statusState": "SUBSCRIBED", "subscriptionId": 7001},
     "is not a SMS subscription type"),
])
def test_preference_request_rejected(hubspot: httpx.Client, path: str, params: dict[str, str],
                                 body: dict[str, object], words: str) -> None:
    response = hubspot.post(f"{PREFERENCES}{path}", params=params, json=body)
    assert response.status_code == 400
    assert response.json()["category"] == "VALIDATION_ERROR"
    assert words in response.json()["message"]


def test_gdpr_delete_by_id_and_email(hubspot: httpx.Client) -> None:
    created = hubspot.post("/crm/v3/objects/contacts", json={"properties": {"email": EMAIL}})
    contact_id = created.json()["id"]
    other = hubspot.post("/crm/v3/objects/contacts",
                         json={"properties": {"email": "guest.privacy@example.com"}})
    deleted = hubspot.post("/crm/v3/objects/contacts/gdpr-delete", json={"objectId": contact_id})
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert hubspot.get(f"/crm/v3/objects/contacts/{contact_id}").status_code == 404
    assert hubspot.get(f"/crm/v3/objects/contacts/{other.json()['id']}").status_code == 200
    again = hubspot.post("/crm/v3/objects/contacts/gdpr-delete", json={"objectId": contact_id})
    assert again.status_code == 404
    # By email: an address no contact has is blocklisted, and the status is still 204.
    by_email = hubspot.post("/crm/v3/objects/contacts/gdpr-delete",
                            json={"objectId": "nobody@example.com", "idProperty": "email"})
    assert by_email.status_code == 204
    missing = hubspot.post("/crm/v3/objects/contacts/gdpr-delete", json={})
    assert missing.status_code == 400
