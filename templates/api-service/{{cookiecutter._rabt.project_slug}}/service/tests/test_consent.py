"""Consent per channel: each source, withdrawal wins, the gate, and propagation to HubSpot."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from storesync.consent import (
    ConsentEvent,
    ConsentRecorder,
    ConsentStore,
    Resubscription,
    pull_crm_statuses,
    send_pushes,
)
from storesync.customdb.consents import ConsentRule, load_rules
from storesync.db import Database
from storesync.settings import SettingsError, load_settings
from sync_support import SARA, SPEC_DIR, Order, SyncHarness, family

MakeHarness = Callable[..., SyncHarness]
T0 = 1_800_000_000.0
ISO_T0 = "2027-01-15T08:00:00+00:00"  # T0 as ISO 8601
ISO_LATER = "2027-01-15T09:00:00+00:00"

# The rules of integration/consent.yaml for each payload family (as rabt writes them).
YES_NO = {"yes": "granted", "no": "not_granted", "withdrawn": "withdrawn"}
SHOPIFY_STATES = {"subscribed": "granted", "unsubscribed": "withdrawn",
                  "not_subscribed": "not_granted", "pending": "not_granted"}
RULES: dict[str, list[ConsentRule]] = {
    "shopify": [
        ConsentRule("email", "customer.email_marketing_consent.state",
                    ("customer.email_marketing_consent.consent_updated_at",), SHOPIFY_STATES),
        ConsentRule("sms", "customer.sms_marketing_consent.state",
                    ("customer.sms_marketing_consent.consent_updated_at",), SHOPIFY_STATES),
        ConsentRule("whatsapp", "customer.metafields.rabt.whatsapp_opt_in",
                    ("customer.metafields.rabt.whatsapp_opt_in_at",),
                    {"true": "granted", "false": "not_granted", "withdrawn": "withdrawn"}),
    ],
    "woocommerce": [
        ConsentRule(channel, f"meta_data[_rabt_{channel}_opt_in]",
                    (f"meta_data[_rabt_{channel}_opt_in_at]", "meta_data[_rabt_consent_wording]"),
                    YES_NO) for channel in ("email", "sms", "whatsapp")],
}


@pytest.fixture
def store(tmp_path: Path) -> ConsentStore:
    return ConsentStore(Database(tmp_path / "state.sqlite3"), clock=lambda: T0 + 10_000)


def test_shopify_customer_and_consent_topic_bodies(store: ConsentStore) -> None:
    recorder = ConsentRecorder(store, RULES["shopify"])
    customer = {"id": 1, "email_marketing_consent": {"state": "subscribed",
                                                      "consent_updated_at": ISO_T0},
                "sms_marketing_consent": {"state": "not_subscribed"}}
    with store.database.transaction() as conn:
        assert recorder.record_body(conn, "c1", customer, "shopify", T0) == 2
        # customers_marketing_consent/update: the SMS consent at the top level of the body.
        sms_topic = {"id": 1, "phone": "+966500000011",
                     "sms_marketing_consent": {"state": "subscribed",
                                               "consent_updated_at": ISO_LATER}}
        recorder.record_body(conn, "c1", sms_topic, "shopify", T0)
    assert store.allows("c1", "email")
    assert store.allows("c1", "sms")
    assert not store.allows("c1", "whatsapp")
    [email] = [event for event in store.history("c1") if event.channel == "email"]
    assert (email.state, email.captured_at, email.source) == ("granted", T0, "shopify")


def test_woocommerce_order_meta(store: ConsentStore) -> None:
    recorder = ConsentRecorder(store, RULES["woocommerce"])
    order = {"id": 5, "meta_data": [
        {"id": 1, "key": "_rabt_email_opt_in", "value": "yes"},
        {"id": 2, "key": "_rabt_email_opt_in_at", "value": ISO_T0},
        {"id": 3, "key": "_rabt_consent_wording", "value": "v3"},
        {"id": 4, "key": "_rabt_whatsapp_opt_in", "value": "no"},
        {"id": 5, "key": "_rabt_sms_opt_in", "value": "withdrawn"}]}
    with store.database.transaction() as conn:
        recorder.record_body(conn, "c2", order, "woocommerce", T0)
    assert store.allows("c2", "email")
    assert not store.allows("c2", "sms")
    assert not store.allows("c2", "whatsapp")
    email = store.current("c2", "email")
    assert email is not None and email.wording_version == "v3"


def test_rules_of_this_project_load() -> None:
    rules = load_rules(SPEC_DIR / "consent.yaml")
    assert rules, "the project's consent.yaml has no channel rules"
    assert {rule.channel for rule in rules} <= {"email", "sms", "whatsapp"}


def test_withdrawal_wins_over_older_or_equal_opt_in(store: ConsentStore) -> None:
    store.record("c1", ConsentEvent("email", "granted", T0, "shopify"))
    assert store.allows("c1", "email")
    # The same time from the CRM: the withdrawal wins.
    store.record("c1", ConsentEvent("email", "withdrawn", T0, "hubspot"))
    assert not store.allows("c1", "email")
    # An older opt-in arriving late changes nothing.
    assert not store.record("c1", ConsentEvent("email", "granted", T0 - 60, "shopify"))
    assert not store.allows("c1", "email")
    # Only a newer opt-in undoes it, and only from its own time on.
    store.record("c1", ConsentEvent("email", "granted", T0 + 60, "shopify"))
    assert store.allows("c1", "email")
    assert not store.allows("c1", "email", at=T0 + 30)
    assert not store.allows("c1", "email", at=T0 - 120)


def test_gate_denies_unknown_contact_and_channel(store: ConsentStore) -> None:
    store.record("c1", ConsentEvent("email", "granted", T0, "shopify"))
    assert not store.allows("c999", "email")
    assert not store.allows("c1", "push")
    assert not store.allows("c1", "EMAIL")
    with pytest.raises(ValueError, match="unknown consent channel"):
        store.record("c1", ConsentEvent("fax", "granted", T0, "shopify"))


def test_whatsapp_needs_its_own_opt_in(store: ConsentStore) -> None:
    store.record("c1", ConsentEvent("email", "granted", T0, "shopify"))
    store.record("c1", ConsentEvent("sms", "granted", T0, "shopify"))
    assert not store.allows("c1", "whatsapp")
    store.record("c1", ConsentEvent("whatsapp", "granted", T0, "shopify"))
    assert store.allows("c1", "whatsapp")


def test_withdrawal_queues_one_push_per_target(store: ConsentStore) -> None:
    store.record("c1", ConsentEvent("email", "granted", T0, "shopify"))
    store.record("c1", ConsentEvent("email", "withdrawn", T0 + 1, "shopify"))
    # A second withdrawal does not change the state, so nothing more is queued.
    store.record("c1", ConsentEvent("email", "withdrawn", T0 + 2, "shopify"))
    assert store.push_statuses("c1") == [("email", "crm", "pending")]
    # A withdrawal read from the CRM goes nowhere unless the store write-back is on.
    store.record("c2", ConsentEvent("sms", "withdrawn", T0, "hubspot"))
    assert store.push_statuses("c2") == []


def test_store_writeback_hook(tmp_path: Path) -> None:
    db = Database(tmp_path / "state.sqlite3")
    store = ConsentStore(db, clock=lambda: T0, store_writeback=True)
    from storesync.sync_store import SyncStore

    SyncStore(db)
    with db.transaction() as conn:
        conn.execute("INSERT INTO sync_identity VALUES ('store_customer_id', 'shop-a:77', 'c1')")
    store.record("c1", ConsentEvent("email", "withdrawn", T0, "hubspot"))
    assert send_pushes(store, None, T0) == {"no_store_client": 1}
    calls: list[tuple[str, str, str]] = []

    def unsubscribe(*args: str) -> str:
        calls.append((args[0], args[1], args[2]))
        return "done"

    store.record("c1", ConsentEvent("email", "granted", T0 + 5, "shopify"))
    store.record("c1", ConsentEvent("email", "withdrawn", T0 + 9, "hubspot"))
    assert send_pushes(store, None, T0 + 10, store_unsubscribe=unsubscribe) == {"done": 1}
    assert calls == [("shop-a", "77", "email")]


# --- through the worker and the HubSpot stand-in ------------------------------------------


def with_email_consent(body: dict[str, Any], source: str, state: str, at: str) -> dict[str, Any]:
    """Add an email consent statement to an order body in the shape of ``source``."""
    if source == "shopify":
        value = {"granted": "subscribed", "withdrawn": "unsubscribed"}[state]
        body["customer"]["email_marketing_consent"] = {"state": value,
                                                       "consent_updated_at": at}
    elif source == "woocommerce":
        value = {"granted": "yes", "withdrawn": "withdrawn"}[state]
        body["meta_data"] = [{"key": "_rabt_email_opt_in", "value": value},
                             {"key": "_rabt_email_opt_in_at", "value": at}]
    else:
        body["consent"] = {"email": {"state": state, "captured_at": at}}
    return body


def require_email_rule() -> None:
    if not any(rule.channel == "email" for rule in load_rules(SPEC_DIR / "consent.yaml")):
        pytest.skip("this project does not manage email consent")


def contact_key(sync: SyncHarness, email: str) -> str:
    with sync.context.store.db.reading() as reader:
        row = reader.execute("SELECT contact_key FROM sync_identity WHERE kind = 'email' "
                             "AND value = ?", (email,)).fetchone()
    assert row is not None
    return str(row[0])


def crm_email_statuses(sync: SyncHarness, email: str) -> list[str]:
    found = sync.client.subscription_statuses("EMAIL", [email])
    return [str(item["status"]) for item in found.get(email, [])]


def test_store_unsubscribe_reaches_hubspot(make_harness: MakeHarness) -> None:
    require_email_rule()
    sync = make_harness()
    source = family()
    order = Order(8100001, SARA, updated_at="2027-01-15T08:00:00+00:00")
    sync.deliver(with_email_consent(order.body(source), source, "granted", ISO_T0),
                 order.topic(source))
    key = contact_key(sync, SARA["email"])
    consent = sync.context.consent
    assert consent is not None
    assert consent.store.allows(key, "email", at=T0 + 1)
    later = Order(8100001, SARA, updated_at="2027-01-15T09:00:00+00:00")
    sync.deliver(with_email_consent(later.body(source), source, "withdrawn", ISO_LATER),
                 later.topic(source))
    assert not consent.store.allows(key, "email", at=T0 + 7200)
    assert send_pushes(consent.store, sync.client, T0 + 7200) == {"done": 1}
    assert crm_email_statuses(sync, SARA["email"]) == ["NOT_SUBSCRIBED"]
    assert consent.store.push_statuses(key) == [("email", "crm", "done")]


def deliver_email_consent(sync: SyncHarness, state: str, at: str) -> None:
    """Deliver an order of SARA whose body states her email consent at ``at``."""
    source = family()
    order = Order(8100003, SARA, updated_at=at)
    sync.deliver(with_email_consent(order.body(source), source, state, at), order.topic(source))


def crm_email_status_details(sync: SyncHarness, email: str) -> list[tuple[str, Any, Any]]:
    found = sync.client.subscription_statuses("EMAIL", [email])
    return [(str(item["status"]), item.get("source"), item.get("legalBasis"))
            for item in found.get(email, [])]


# The stand-in's EMAIL subscription type (generator/standins/hubspot_privacy.py).
STANDIN_EMAIL_TYPE = 7001
ISO_T0_2H = "2027-01-15T10:00:00+00:00"


def test_opt_in_before_push_sends_no_unsubscribe(make_harness: MakeHarness) -> None:
    require_email_rule()
    sync = make_harness()
    deliver_email_consent(sync, "granted", ISO_T0)
    deliver_email_consent(sync, "withdrawn", ISO_LATER)
    # The customer opts in again before the privacy thread sends the withdrawal.
    deliver_email_consent(sync, "granted", ISO_T0_2H)
    key = contact_key(sync, SARA["email"])
    consent = sync.context.consent
    assert consent is not None
    assert consent.store.allows(key, "email", at=T0 + 7200)
    # Without a subscription type nothing reaches HubSpot, and above all no unsubscribe.
    assert send_pushes(consent.store, sync.client, T0 + 7300) == {"no_subscription_type": 1}
    assert crm_email_statuses(sync, SARA["email"]) == []
    assert consent.store.push_statuses(key) == [("email", "crm", "no_subscription_type")]


def test_opt_in_before_push_resubscribes(make_harness: MakeHarness) -> None:
    require_email_rule()
    sync = make_harness()
    deliver_email_consent(sync, "granted", ISO_T0)
    deliver_email_consent(sync, "withdrawn", ISO_LATER)
    deliver_email_consent(sync, "granted", ISO_T0_2H)
    consent = sync.context.consent
    assert consent is not None
    resubscription = Resubscription({"email": STANDIN_EMAIL_TYPE}, "CONSENT_WITH_NOTICE")
    assert send_pushes(consent.store, sync.client, T0 + 7300,
                       resubscription=resubscription) == {"done": 1}
    # One SUBSCRIBED status set through the API, never an unsubscribe-all before it.
    assert crm_email_status_details(sync, SARA["email"]) == [
        ("SUBSCRIBED", "API", "CONSENT_WITH_NOTICE")]


def test_later_store_opt_in_resubscribes(make_harness: MakeHarness) -> None:
    require_email_rule()
    sync = make_harness()
    deliver_email_consent(sync, "granted", ISO_T0)
    deliver_email_consent(sync, "withdrawn", ISO_LATER)
    key = contact_key(sync, SARA["email"])
    consent = sync.context.consent
    assert consent is not None
    resubscription = Resubscription({"email": STANDIN_EMAIL_TYPE}, "CONSENT_WITH_NOTICE")
    assert send_pushes(consent.store, sync.client, T0 + 3700,
                       resubscription=resubscription) == {"done": 1}
    assert crm_email_statuses(sync, SARA["email"]) == ["NOT_SUBSCRIBED"]
    # Hours later the customer ticks the box on the store again (a newer time).
    deliver_email_consent(sync, "granted", ISO_T0_2H)
    assert send_pushes(consent.store, sync.client, T0 + 7300,
                       resubscription=resubscription) == {"done": 1}
    assert crm_email_statuses(sync, SARA["email"]) == ["SUBSCRIBED"]
    assert consent.store.push_statuses(key) == [("email", "crm", "done"),
                                                ("email", "crm", "done")]
    # Reading HubSpot back keeps the opt-in: its status is newer than the withdrawal.
    store = ConsentStore(consent.store.database)
    pull_crm_statuses(store, sync.client, ["email"])
    assert store.allows(key, "email")
    assert store.push_statuses(key)[-1] == ("email", "crm", "done")


def test_crm_opt_in_is_not_pushed_back(store: ConsentStore) -> None:
    from storesync.sync_store import SyncStore

    SyncStore(store.database)
    hubspot = ConsentStore(store.database, store.clock, push_resubscriptions=True)
    hubspot.record("c1", ConsentEvent("email", "withdrawn", T0, "shopify"))
    # The contact resubscribed in HubSpot itself: nothing goes back to HubSpot.
    hubspot.record("c1", ConsentEvent("email", "granted", T0 + 60, "hubspot"))
    assert send_pushes(hubspot, None, T0 + 10_000) == {"superseded": 1}
    assert hubspot.push_statuses("c1") == [("email", "crm", "superseded")]


def test_store_opt_in_supersedes_writeback(tmp_path: Path) -> None:
    db = Database(tmp_path / "state.sqlite3")
    store = ConsentStore(db, clock=lambda: T0, store_writeback=True)
    from storesync.sync_store import SyncStore

    SyncStore(db)
    with db.transaction() as conn:
        conn.execute("INSERT INTO sync_identity VALUES ('store_customer_id', 'shop-a:77', 'c1')")
    store.record("c1", ConsentEvent("email", "withdrawn", T0, "hubspot"))
    # A newer opt-in on the store arrives before the write-back was sent.
    store.record("c1", ConsentEvent("email", "granted", T0 + 5, "shopify"))
    calls: list[tuple[str, ...]] = []

    def unsubscribe(*args: str) -> str:
        calls.append(args)
        return "done"

    assert send_pushes(store, None, T0 + 10, store_unsubscribe=unsubscribe) == {
        "superseded": 1}
    assert calls == []


def test_hubspot_status_is_a_source(make_harness: MakeHarness) -> None:
    require_email_rule()
    sync = make_harness()
    source = family()
    order = Order(8100002, SARA)
    sync.deliver(order.body(source), order.topic(source))
    key = contact_key(sync, SARA["email"])
    consent = sync.context.consent
    assert consent is not None
    assert not consent.store.allows(key, "email")
    sync.standin.http.post(
        f"/communication-preferences/v4/statuses/{SARA['email']}",
        headers={"Authorization": "Bearer test-token-not-real"},
        json={"channel": "EMAIL", "statusState": "SUBSCRIBED", "subscriptionId": 7001,
              "legalBasis": "CONSENT_WITH_NOTICE"}).raise_for_status()
    store = ConsentStore(consent.store.database)
    assert pull_crm_statuses(store, sync.client, ["email"]) == 1
    assert store.allows(key, "email")
    sync.client.unsubscribe_all("EMAIL", SARA["email"])
    assert pull_crm_statuses(store, sync.client, ["email"]) == 1
    assert not store.allows(key, "email")
    # Read from the CRM, so nothing is pushed back to it.
    assert store.push_statuses(key) == []


# --- settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "value", "words"), [
    ("PRIVACY_CRM_DELETE", "maybe", "is not on or off"),
    ("CONSENT_STORE_WRITEBACK", "2", "is not on or off"),
    ("CONSENT_CRM_PULL_SECONDS", "-5", "outside the allowed range"),
    ("CONSENT_CRM_PULL_SECONDS", "hourly", "is not a whole number"),
    ("HUBSPOT_SUBSCRIPTION_IDS", "email", "is not a channel and a subscription type id"),
    ("HUBSPOT_SUBSCRIPTION_IDS", "fax=12", "is not a channel and a subscription type id"),
    ("HUBSPOT_SUBSCRIPTION_IDS", "email=abc", "is not a channel and a subscription type id"),
    ("HUBSPOT_SUBSCRIPTION_IDS", "sms=0", "is not a channel and a subscription type id"),
    ("HUBSPOT_SUBSCRIPTION_IDS", "email=1,EMAIL=2", "names the email channel twice"),
    ("HUBSPOT_RESUBSCRIBE_LEGAL_BASIS", "because", "is not a HubSpot legal basis"),
])
def test_bad_consent_and_privacy_settings(tmp_path: Path, name: str, value: str,
                                          words: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"DATA_DIR": str(tmp_path / "var"), "SPEC_DIR": str(SPEC_DIR),
                       name: value})
    [problem] = caught.value.problems
    assert problem.variable == name
    assert words in problem.problem
    assert value in problem.problem
    assert name in problem.fix


def test_privacy_export_dir_must_be_a_folder(tmp_path: Path) -> None:
    file = tmp_path / "exports.txt"
    file.write_text("not a folder", encoding="utf-8")
    with pytest.raises(SettingsError) as caught:
        load_settings({"DATA_DIR": str(tmp_path / "var"), "SPEC_DIR": str(SPEC_DIR),
                       "PRIVACY_EXPORT_DIR": str(file)})
    [problem] = caught.value.problems
    assert problem.variable == "PRIVACY_EXPORT_DIR"
    assert "is a file" in problem.problem


def test_crm_delete_rejected_for_custom(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings({"DATA_DIR": str(tmp_path / "var"), "SPEC_DIR": str(SPEC_DIR),
                       "CRM_TARGET": "custom", "PRIVACY_CRM_DELETE": "true"})
    [problem] = [item for item in caught.value.problems
                 if item.variable == "PRIVACY_CRM_DELETE"]
    assert "CRM_TARGET is custom" in problem.problem
    assert "set it to false" in problem.fix


def test_consent_and_privacy_defaults(tmp_path: Path) -> None:
    settings = load_settings({"DATA_DIR": str(tmp_path / "var"), "SPEC_DIR": str(SPEC_DIR),
                              "CRM_TARGET": "hubspot", "PRIVACY_CRM_DELETE": "TRUE",
                              "PRIVACY_EXPORT_DIR": "exports"})
    assert settings.privacy_crm_delete is True
    assert settings.consent_store_writeback is False
    assert settings.consent_crm_pull_seconds == 3600
    assert settings.privacy_export_dir is not None and settings.privacy_export_dir.is_absolute()
    assert settings.hubspot_subscription_ids == {}
    assert settings.hubspot_resubscribe_legal_basis == "CONSENT_WITH_NOTICE"


def test_resubscription_settings_are_read(tmp_path: Path) -> None:
    settings = load_settings({"DATA_DIR": str(tmp_path / "var"), "SPEC_DIR": str(SPEC_DIR),
                              "HUBSPOT_SUBSCRIPTION_IDS": " Email=12345, whatsapp=678 ,",
                              "HUBSPOT_RESUBSCRIBE_LEGAL_BASIS": "performance_of_contract"})
    assert settings.hubspot_subscription_ids == {"email": 12345, "whatsapp": 678}
    assert settings.hubspot_resubscribe_legal_basis == "PERFORMANCE_OF_CONTRACT"
    resubscription = Resubscription.for_settings(settings)
    assert resubscription.subscription_ids == {"email": 12345, "whatsapp": 678}
    assert resubscription.legal_basis == "PERFORMANCE_OF_CONTRACT"


# --- late events: the newest time wins per channel, an unsubscribe wins a tie -------------


def shopify_customer(state: str, consent_at: str, updated_at: str) -> dict[str, Any]:
    """Return a Shopify customers/update body stating the email consent ``state``."""
    return {"id": 1, "updated_at": updated_at,
            "email_marketing_consent": {"state": state, "opt_in_level": "single_opt_in",
                                        "consent_updated_at": consent_at}}


def woocommerce_order(state: str, consent_at: str | None) -> dict[str, Any]:
    """Return a WooCommerce order body whose meta states the email consent ``state``."""
    meta = [{"id": 1, "key": "_rabt_email_opt_in", "value": state}]
    if consent_at is not None:
        meta.append({"id": 2, "key": "_rabt_email_opt_in_at", "value": consent_at})
    return {"id": 5, "meta_data": meta}


@pytest.mark.parametrize("late_at", [ISO_T0, "2027-01-15T07:00:00+00:00"])
def test_late_shopify_opt_in_ignored(store: ConsentStore, late_at: str) -> None:
    recorder = ConsentRecorder(store, RULES["shopify"])
    with store.database.transaction() as conn:
        recorder.record_body(conn, "c1", shopify_customer("unsubscribed", ISO_T0, ISO_T0),
                             "shopify", T0)
        # Delivered later, stating an opt-in from before the unsubscribe or at its time.
        late = shopify_customer("subscribed", late_at, ISO_LATER)
        assert recorder.record_body(conn, "c1", late, "shopify", T0 + 3600) == 0
    assert not store.allows("c1", "email")
    current = store.current("c1", "email")
    assert current is not None
    assert (current.state, current.captured_at) == ("withdrawn", T0)


@pytest.mark.parametrize("late_at", [ISO_T0, "2027-01-15T07:00:00+00:00"])
def test_late_woocommerce_opt_in_ignored(store: ConsentStore, late_at: str) -> None:
    recorder = ConsentRecorder(store, RULES["woocommerce"])
    with store.database.transaction() as conn:
        recorder.record_body(conn, "c2", woocommerce_order("withdrawn", ISO_T0), "woocommerce",
                             T0)
        late = woocommerce_order("yes", late_at)
        assert recorder.record_body(conn, "c2", late, "woocommerce", T0 + 3600) == 0
    assert not store.allows("c2", "email")
    assert store.push_statuses("c2") == [("email", "crm", "pending")]


def test_woocommerce_newer_opt_in_counts(store: ConsentStore) -> None:
    recorder = ConsentRecorder(store, RULES["woocommerce"])
    with store.database.transaction() as conn:
        recorder.record_body(conn, "c2", woocommerce_order("withdrawn", ISO_T0), "woocommerce",
                             T0)
        assert recorder.record_body(conn, "c2", woocommerce_order("yes", ISO_LATER),
                                    "woocommerce", T0) == 1
    assert store.allows("c2", "email")


def test_updated_old_order_keeps_meta_time(store: ConsentStore) -> None:
    # The order's opt-in meta has no time of its own. Completing the order after a
    # withdrawal repeats the checkout's opt-in, which must stay older than the withdrawal.
    recorder = ConsentRecorder(store, RULES["woocommerce"])
    store.record("c8", ConsentEvent("email", "withdrawn", T0, "hubspot"))
    completed = {**woocommerce_order("yes", None), "line_items": [],
                 "date_created_gmt": "2027-01-10T12:00:00", "date_modified_gmt": ISO_LATER}
    with store.database.transaction() as conn:
        assert recorder.record_body(conn, "c8", completed, "woocommerce", T0 + 3600) == 0
    assert not store.allows("c8", "email")
    [granted] = [event for event in store.history("c8") if event.state == "granted"]
    assert granted.captured_at == T0 - 5 * 86_400 + 4 * 3600


def test_woocommerce_customer_meta_keeps_update_time(store: ConsentStore) -> None:
    # A customer body is no order: its meta may change after creation, so the update
    # time counts.
    recorder = ConsentRecorder(store, RULES["woocommerce"])
    customer = {**woocommerce_order("yes", None), "date_created_gmt": "2027-01-10T12:00:00"}
    with store.database.transaction() as conn:
        recorder.record_body(conn, "c9", customer, "woocommerce", T0)
    assert store.current("c9", "email") == ConsentEvent("email", "granted", T0, "woocommerce")


class FakeHubSpotStatuses:
    """Returns fixed HubSpot statuses per subscriber from subscription_statuses."""

    def __init__(self, statuses: dict[str, list[dict[str, Any]]]) -> None:
        self.statuses = statuses

    def subscription_statuses(self, channel: str, subscribers: list[str]
                              ) -> dict[str, list[dict[str, Any]]]:
        return {subscriber: self.statuses[subscriber] for subscriber in subscribers
                if subscriber in self.statuses}


def known_address(store: ConsentStore, contact_key: str, email: str) -> None:
    with store.database.transaction() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS sync_identity (kind TEXT, value TEXT,"
                     " contact_key TEXT)")
        conn.execute("INSERT INTO sync_identity VALUES ('email', ?, ?)", (email, contact_key))


@pytest.mark.parametrize("crm_at", [ISO_T0, "2027-01-15T07:00:00+00:00"])
def test_late_crm_opt_in_ignored(store: ConsentStore, crm_at: str) -> None:
    known_address(store, "c3", "late.crm@example.com")
    store.record("c3", ConsentEvent("email", "withdrawn", T0, "shopify"))
    client = FakeHubSpotStatuses({"late.crm@example.com": [
        {"status": "SUBSCRIBED", "timestamp": crm_at, "subscriptionId": 7001}]})

    assert pull_crm_statuses(store, client, ["email"]) == 0

    assert not store.allows("c3", "email")


def test_crm_opt_in_keeps_its_own_time(store: ConsentStore) -> None:
    # An opt-in of one subscription type takes its own time, not that of a newer
    # opt-out of another type.
    known_address(store, "c4", "two.types@example.com")
    store.record("c4", ConsentEvent("email", "withdrawn", T0, "shopify"))
    client = FakeHubSpotStatuses({"two.types@example.com": [
        {"status": "SUBSCRIBED", "timestamp": "2027-01-15T07:00:00+00:00", "subscriptionId": 1},
        {"status": "NOT_SUBSCRIBED", "timestamp": ISO_LATER, "subscriptionId": 2}]})

    pull_crm_statuses(store, client, ["email"])

    assert not store.allows("c4", "email")


def test_crm_unsubscribe_wins_equal_time(store: ConsentStore) -> None:
    known_address(store, "c5", "tie.crm@example.com")
    store.record("c5", ConsentEvent("email", "granted", T0, "shopify"))
    client = FakeHubSpotStatuses({"tie.crm@example.com": [
        {"status": "NOT_SUBSCRIBED", "timestamp": ISO_T0, "subscriptionId": 7001}]})

    assert pull_crm_statuses(store, client, ["email"]) == 1

    assert not store.allows("c5", "email")


class FakeZohoContacts:
    """Returns fixed Zoho contact records by id from read_records."""

    def __init__(self, records: dict[str, dict[str, Any]]) -> None:
        self.records = records

    def read_records(self, module: str, ids: list[str], fields: list[str]
                     ) -> list[dict[str, Any]]:
        return [{"id": record_id, **self.records[record_id]} for record_id in ids
                if record_id in self.records]


def zoho_contact(store: ConsentStore, contact_key: str, zoho_id: str) -> None:
    with store.database.transaction() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS sync_crm_ids (object TEXT, key TEXT,"
                     " crm_id TEXT)")
        conn.execute("INSERT INTO sync_crm_ids VALUES ('contacts', ?, ?)",
                     (contact_key, zoho_id))


@pytest.mark.parametrize(("modified", "allowed"), [
    ("2027-01-15T07:00:00+00:00", True),  # an opt-out older than the store's opt-in
    (ISO_T0, False),  # the same time: the unsubscribe wins
    (ISO_LATER, False),
])
def test_zoho_opt_out_by_time(store: ConsentStore, modified: str, allowed: bool) -> None:
    from storesync.zoho_consent import channel_fields, pull_zoho_consent

    zoho_contact(store, "c6", "zoho-6")
    store.record("c6", ConsentEvent("email", "granted", T0, "shopify"))
    client = FakeZohoContacts({"zoho-6": {"Email_Opt_Out": True, "Modified_Time": modified}})
    fields = {"email": channel_fields(["Email_Opt_Out", "Ecom_Email_Consent_At"], "email")}

    pull_zoho_consent(store, client, fields)

    assert store.allows("c6", "email") is allowed


def test_zoho_opt_in_never_undoes_opt_out(store: ConsentStore) -> None:
    from storesync.zoho_consent import channel_fields, pull_zoho_consent

    zoho_contact(store, "c7", "zoho-7")
    store.record("c7", ConsentEvent("email", "withdrawn", T0, "shopify"))
    # The opt-out box is still unticked in Zoho, and another field changed since.
    client = FakeZohoContacts({"zoho-7": {"Email_Opt_Out": False, "Modified_Time": ISO_LATER}})
    fields = {"email": channel_fields(["Email_Opt_Out"], "email")}

    assert pull_zoho_consent(store, client, fields) == (0, "")

    assert not store.allows("c7", "email")
