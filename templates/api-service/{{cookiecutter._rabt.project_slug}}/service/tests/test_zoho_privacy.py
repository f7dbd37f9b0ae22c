"""Consent and privacy requests against the Zoho stand-in: consent both ways, contact deletion.

They use the project's field map, consent spec and desired state, so they run in
projects whose CRM is Zoho and skip in the others, as the Zoho sync tests do.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from intake_support import encode_body
from storesync.consent import ConsentStore
from storesync.delivery import Delivery
from storesync.privacy import PrivacyRequest, PrivacyRequests
from storesync.privacy_runner import PrivacyRunner
from storesync.worker import JobOutcome, handle_delivery
from storesync.zoho_consent import load_channel_fields
from sync_support import SARA, SPEC_DIR, family

# make_zoho_harness is a fixture of the Zoho sync tests, shared with these.
from test_zoho_sync import ORDER, ZohoHarness, make_zoho_harness  # noqa: F401

MakeZohoHarness = Callable[..., ZohoHarness]
SHOP = "test-store"
T0 = 1_800_000_000.0
GRANTED_AT = "2024-01-10T09:00:00+03:00"


def email_consent(state: str, when: str) -> dict[str, Any]:
    """Return a customers_email_marketing_consent/update body for Sara."""
    return {"customer_id": SARA["id"], "email_address": SARA["email"],
            "email_marketing_consent": {"state": state, "opt_in_level": "single_opt_in",
                                        "consent_updated_at": when}}


def deliver_consent(harness: ZohoHarness, body: dict[str, Any], number: int) -> None:
    delivery = Delivery(delivery_id=f"consent-{number}", source="shopify",
                        topic="customers_email_marketing_consent/update", shop=SHOP,
                        received_at="2026-03-03T18:10:00Z", triggered_at=None,
                        body=encode_body(body).decode("utf-8"))
    assert handle_delivery(delivery, harness.context) is not JobOutcome.QUARANTINED


def sara_in_zoho(harness: ZohoHarness) -> dict[str, Any]:
    [record] = [item for item in harness.standin.records("Contacts")
                if item.get("Email") == SARA["email"]]
    return record


def consent_store(harness: ZohoHarness) -> ConsentStore:
    assert harness.context.consent is not None
    return harness.context.consent.store


def sara_key(harness: ZohoHarness) -> str:
    with harness.context.store.db.reading() as reader:
        [(key,)] = reader.execute("SELECT contact_key FROM sync_identity WHERE kind = 'email'"
                                  " AND value = ?", (SARA["email"],)).fetchall()
    return str(key)


def require_email_consent() -> None:
    if family() != "shopify":
        pytest.skip("these consent bodies are Shopify's consent topic")
    if "email" not in load_channel_fields(SPEC_DIR / "consent.yaml"):
        pytest.skip("this project keeps no email consent in Zoho")


def test_email_unsubscribe_reaches_zoho(make_zoho_harness: MakeZohoHarness) -> None:  # noqa: F811
    harness = make_zoho_harness()
    require_email_consent()
    harness.deliver_order(ORDER)
    harness.flush()
    runner = PrivacyRunner(harness.settings, harness.context.store.db, client=harness.client,
                           clock=lambda: T0)

    deliver_consent(harness, email_consent("subscribed", GRANTED_AT), 1)
    granted = runner.consent_pass()
    opted_in = sara_in_zoho(harness)
    deliver_consent(harness, email_consent("unsubscribed", "2024-02-01T10:00:00+03:00"), 2)
    withdrawn = runner.consent_pass()
    opted_out = sara_in_zoho(harness)

    assert granted["done"] == 1
    assert opted_in["Email_Opt_Out"] is False
    assert opted_in["Ecom_Email_Consent_Source"] == "shopify"
    assert opted_in["Ecom_Email_Consent_At"].startswith("2024-01-10T06:00:00")
    assert withdrawn["done"] == 1
    assert opted_out["Email_Opt_Out"] is True
    assert opted_out["Ecom_Email_Consent_At"].startswith("2024-02-01T07:00:00")
    assert consent_store(harness).push_statuses(sara_key(harness)) == [
        ("email", "crm", "done"), ("email", "crm", "done")]


def test_push_waits_for_the_zoho_contact(make_zoho_harness: MakeZohoHarness) -> None:  # noqa: F811
    harness = make_zoho_harness()
    require_email_consent()
    harness.deliver_order(ORDER)
    now = [T0]
    runner = PrivacyRunner(harness.settings, harness.context.store.db, client=harness.client,
                           clock=lambda: now[0])
    deliver_consent(harness, email_consent("unsubscribed", GRANTED_AT), 1)

    waiting = runner.consent_pass()
    harness.flush()
    now[0] += 3600
    sent = runner.consent_pass()

    assert waiting["waiting_for_contact"] == 1
    assert "done" not in waiting
    assert sent["done"] == 1
    assert sara_in_zoho(harness)["Email_Opt_Out"] is True


def test_zoho_opt_out_is_recorded(make_zoho_harness: MakeZohoHarness) -> None:  # noqa: F811
    harness = make_zoho_harness(CONSENT_CRM_PULL_SECONDS="60")
    require_email_consent()
    harness.deliver_order(ORDER)
    harness.flush()
    now = [T0]
    runner = PrivacyRunner(harness.settings, harness.context.store.db, client=harness.client,
                           clock=lambda: now[0])
    deliver_consent(harness, email_consent("subscribed", GRANTED_AT), 1)
    first = runner.consent_pass()
    key = sara_key(harness)
    store = consent_store(harness)
    assert store.allows(key, "email", at=T0)

    # Someone ticks Email Opt Out on the contact in Zoho.
    zoho_id = sara_in_zoho(harness)["id"]
    harness.client.batch_update("contacts", [{"id": zoho_id,
                                              "properties": {"Email_Opt_Out": True}}])
    now[0] += 61
    second = runner.consent_pass()
    now[0] += 61
    third = runner.consent_pass()

    assert first["pulled_changes"] == 0
    assert second["pulled_changes"] == 1
    assert third["pulled_changes"] == 0
    current = store.current(key, "email", at=float("inf"))
    assert current is not None
    assert (current.state, current.source) == ("withdrawn", "zoho")
    assert not store.allows(key, "email", at=float("inf"))
    # The withdrawal came from Zoho, so nothing is pushed back to it.
    assert store.push_statuses(key) == [("email", "crm", "done")]


def add_redact(harness: ZohoHarness) -> int:
    request = PrivacyRequest("customers/redact", SHOP, "55", str(SARA["id"]), (str(ORDER.id),))
    return PrivacyRequests(harness.context.store.db).add(request, "evt-redact",
                                                         "2026-03-04T08:00Z")


def test_redact_deletes_the_zoho_contact(make_zoho_harness: MakeZohoHarness) -> None:  # noqa: F811
    harness = make_zoho_harness(PRIVACY_CRM_DELETE="true")
    harness.deliver_order(ORDER)
    harness.flush()
    zoho_id = sara_in_zoho(harness)["id"]
    request_id = add_redact(harness)

    PrivacyRunner(harness.settings, harness.context.store.db, client=harness.client,
                  clock=lambda: T0).run_due()

    stored = PrivacyRequests(harness.context.store.db).get(request_id)
    assert stored is not None and stored.status == "done"
    assert stored.result is not None and stored.result["crm_deleted"] == 1
    assert zoho_id not in {item["id"] for item in harness.standin.records("Contacts")}


def test_zoho_outage_keeps_no_local_data(make_zoho_harness: MakeZohoHarness) -> None:  # noqa: F811
    harness = make_zoho_harness(PRIVACY_CRM_DELETE="true")
    harness.deliver_order(ORDER)
    harness.flush()
    zoho_id = sara_in_zoho(harness)["id"]
    request_id = add_redact(harness)
    harness.standin.fault(503, 1, "/crm/v8/Contacts")
    now = [T0]
    runner = PrivacyRunner(harness.settings, harness.context.store.db, client=harness.client,
                           clock=lambda: now[0])

    runner.run_due()
    with harness.context.store.db.reading() as reader:
        identity = reader.execute("SELECT value FROM sync_identity").fetchall()
        state = reader.execute("SELECT status, attempts, last_error FROM privacy_crm_deletes"
                               " WHERE request_id = ?", (request_id,)).fetchall()
    before = {item["id"] for item in harness.standin.records("Contacts")}
    now[0] += 3600
    retried = runner.crm_deletes_pass()

    stored = PrivacyRequests(harness.context.store.db).get(request_id)
    assert stored is not None and stored.status == "done"
    assert SARA["email"] not in json.dumps(identity)
    [(status, attempts, error)] = state
    assert (status, attempts) == ("pending", 1)
    assert "503" in error
    assert zoho_id in before
    assert retried == {"deleted": 1}
    assert zoho_id not in {item["id"] for item in harness.standin.records("Contacts")}
