"""Playbook wiring: store discount codes, the consent gate and the worker's timer thread.

The codes are created in the Shopify and WooCommerce stand-ins on 127.0.0.1; time moves
through injected clocks. Every email and phone is made up.
"""

from __future__ import annotations

import copy
import logging
import re
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from playbook_support import HOUR, PLAYBOOKS, Clock, _step, riyadh, write_playbook_spec
from store_support import Stores
from storesync.consent import ConsentRecorder, ConsentStore
from storesync.customdb.consents import ConsentRule
from storesync.db import Database
from storesync.discounts import (
    CODE_PREFIX,
    CREATED,
    PLANNED,
    DiscountConfigError,
    DiscountRule,
    NoStoreDiscounts,
    StoreDiscounts,
    build_issuer,
    load_rule,
)
from storesync.playbook_config import load_playbook_config
from storesync.playbooks import PlaybookRunner
from storesync.settings import Settings
from storesync.store_api import StoreApiError, open_client
from storesync.timers import FIRED, SKIPPED, TimerStore

START = riyadh("2026-03-01 10:00")
CODE_PATTERN = re.compile(rf"^{CODE_PREFIX}[A-HJKMNP-Z2-9]{{12}}$")
TEN_PERCENT = DiscountRule("percentage", 10)


class Crash(Exception):
    """Simulates the process dying between the store call and the state file write."""


def issuer_for(stores: Stores, tmp_path: Path, platform: str,
               clock: Clock) -> tuple[StoreDiscounts, Settings]:
    settings = stores.settings(tmp_path, platform)
    db = Database(tmp_path / f"state-{platform}.sqlite3")
    issuer = StoreDiscounts(db, platform, TEN_PERCENT, lambda: open_client(settings, platform),
                            clock)
    return issuer, settings


def shopify_codes(stores: Stores) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = stores.http.get(
        f"{stores.shopify_url}/_standin/discounts").json()["discounts"]
    return found


def woo_coupons(stores: Stores) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = [dict(item) for item in stores.woocommerce.coupons.values()]
    return found


def crash_once_after_create(monkeypatch: pytest.MonkeyPatch, issuer: StoreDiscounts) -> None:
    """Make the next ``created`` mark fail, as a crash right after the store call would."""
    real = issuer._mark_created

    def crash(subject_key: str, store_id: str | None) -> None:
        monkeypatch.setattr(issuer, "_mark_created", real)
        raise Crash("killed after the store created the code")

    monkeypatch.setattr(issuer, "_mark_created", crash)


# --- Shopify and WooCommerce codes ------------------------------------------------------------


def test_shopify_code_is_created_once_single_use(stores: Stores, tmp_path: Path) -> None:
    clock = Clock(START)
    issuer, _ = issuer_for(stores, tmp_path, "shopify", clock)
    expires = START + 68 * HOUR

    code, expiry = issuer.create_code("test-store:tok-1", "c1", expires)
    again = issuer.create_code("test-store:tok-1", "c1", expires + 300)

    assert CODE_PATTERN.match(code)
    assert again == (code, expires)
    assert expiry == expires
    [created] = shopify_codes(stores)
    assert created["code"] == code
    assert created["usageLimit"] == 1
    assert created["appliesOncePerCustomer"] is True
    assert created["customerGets"]["value"] == {"percentage": 0.1}
    assert created["endsAt"] == "2026-03-04T03:00:00Z"
    status = issuer.status("test-store:tok-1")
    assert status is not None
    assert status.status == CREATED


def test_shopify_retry_after_crash_reuses_the_code(stores: Stores, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock(START)
    issuer, _ = issuer_for(stores, tmp_path, "shopify", clock)
    crash_once_after_create(monkeypatch, issuer)

    with pytest.raises(Crash):
        issuer.create_code("test-store:tok-2", "c1", START + 48 * HOUR)
    planned = issuer.status("test-store:tok-2")
    assert planned is not None
    assert planned.status == PLANNED
    clock.advance(300)
    code, expiry = issuer.create_code("test-store:tok-2", "c1", START + 300 + 48 * HOUR)

    assert code == planned.code
    assert expiry == START + 48 * HOUR
    assert [item["code"] for item in shopify_codes(stores)] == [code]
    marked = issuer.status("test-store:tok-2")
    assert marked is not None
    assert marked.status == CREATED


def test_woocommerce_retry_after_crash_reuses_the_coupon(stores: Stores, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock(START)
    issuer, _ = issuer_for(stores, tmp_path, "woocommerce", clock)
    crash_once_after_create(monkeypatch, issuer)

    with pytest.raises(Crash):
        issuer.create_code("test-store:cart-9", "c4", START + 48 * HOUR)
    code, _ = issuer.create_code("test-store:cart-9", "c4", START + 49 * HOUR)

    [coupon] = woo_coupons(stores)
    # WooCommerce keeps coupon codes in lower case.
    assert coupon["code"] == code.lower()
    assert coupon["usage_limit"] == 1
    assert coupon["discount_type"] == "percent"
    assert coupon["amount"] == "10"
    assert coupon["date_expires_gmt"] == "2026-03-03T07:00:00"
    status = issuer.status("test-store:cart-9")
    assert status is not None
    assert status.status == CREATED


def test_codes_are_random_per_subject(stores: Stores, tmp_path: Path) -> None:
    issuer, _ = issuer_for(stores, tmp_path, "woocommerce", Clock(START))

    codes = {issuer.create_code(f"test-store:cart-{number}", "c1", START + HOUR)[0]
             for number in range(5)}

    assert len(codes) == 5
    for code in codes:
        assert CODE_PATTERN.match(code)
        assert "CART" not in code


def test_store_error_keeps_the_plan(stores: Stores, tmp_path: Path) -> None:
    settings = stores.settings(tmp_path, "shopify", SHOPIFY_ADMIN_ACCESS_TOKEN="shpat_wrong")
    issuer = StoreDiscounts(Database(tmp_path / "state.sqlite3"), "shopify", TEN_PERCENT,
                            lambda: open_client(settings, "shopify"), Clock(START))

    with pytest.raises(StoreApiError, match="rejected the credentials"):
        issuer.create_code("test-store:tok-3", "c1", START + HOUR)

    status = issuer.status("test-store:tok-3")
    assert status is not None
    assert status.status == PLANNED
    assert shopify_codes(stores) == []


def test_expired_plan_gets_a_new_code(stores: Stores, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock(START)
    issuer, _ = issuer_for(stores, tmp_path, "shopify", clock)
    crash_once_after_create(monkeypatch, issuer)
    with pytest.raises(Crash):
        issuer.create_code("win_back:c1", "c1", START + HOUR)
    first = issuer.status("win_back:c1")

    # The store was down until the first code expired: a code that no longer works is
    # no use to the customer.
    clock.advance(2 * HOUR)
    code, expiry = issuer.create_code("win_back:c1", "c1", clock.now + 48 * HOUR)

    assert first is not None
    assert code != first.code
    assert expiry == clock.now + 48 * HOUR


# --- the spec's discount ----------------------------------------------------------------------


def spec_with_discount(folder: Path, discount: Any) -> Path:
    doc = copy.deepcopy(PLAYBOOKS)
    doc["discount"] = discount
    return write_playbook_spec(folder, doc)


def test_rule_is_read_from_the_spec(tmp_path: Path) -> None:
    folder = spec_with_discount(tmp_path / "spec", {"kind": "percentage", "percent": 15})
    assert load_rule(folder) == DiscountRule("percentage", 15)
    assert load_rule(write_playbook_spec(tmp_path / "none")) is None


@pytest.mark.parametrize(("discount", "message"), [
    ({"kind": "free_shipping", "percent": 10},
     "discount.kind is 'free_shipping', but the service creates only percentage codes"),
    ({"kind": "percentage", "percent": 0},
     "discount.percent is 0, but it must be a whole number from 1 to 100"),
    ({"kind": "percentage", "percent": "10"},
     "discount.percent is '10', but it must be a whole number from 1 to 100"),
])
def test_bad_discount_in_the_spec(tmp_path: Path, discount: dict[str, Any], message: str) -> None:
    with pytest.raises(DiscountConfigError, match=re.escape(message)):
        load_rule(spec_with_discount(tmp_path / "spec", discount))


# --- no store API -----------------------------------------------------------------------------


def test_no_credentials_marks_without_code(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from intake_support import write_spec
    from playbook_support import MAPPING, FakeConsent
    from storesync.settings import load_settings

    spec = spec_with_discount(write_spec(tmp_path / "spec", "shopify"),
                              {"kind": "percentage", "percent": 10})
    settings = load_settings({"DATA_DIR": str(tmp_path / "var"), "SPEC_DIR": str(spec)})
    db = Database(tmp_path / "state.sqlite3")
    clock = Clock(START)
    with caplog.at_level(logging.WARNING, logger="storesync.discounts"):
        issuer = build_issuer(settings, db, clock)
        assert isinstance(issuer, NoStoreDiscounts)
        runner = PlaybookRunner(
            config=load_playbook_config(spec, MAPPING), store=_store(db, clock),
            timers=TimerStore(db, clock=clock), consent=FakeConsent(), discounts=issuer,
            senders={}, clock=clock)
        contact = _contact("c1")
        for token in ("tok-a", "tok-b"):
            with runner.store.transaction() as conn:
                runner.observe(conn, "shopify", "checkouts/create",
                               {"token": token, "updated_at": "2026-03-01T07:00:00Z",
                                "abandoned_checkout_url": f"https://shop.example/{token}"},
                               contact)
        clock.advance(3 * HOUR)
        runner.run_until_idle()

    marks = [row.item.properties for row in runner.store.due("contacts", float("inf"), 100)]
    assert marks
    for mark in marks:
        assert "ecom_discount_code" not in mark
    assert {mark["ecom_playbook_step"] for mark in marks} == {"abandoned_cart:cart_reminder_1"}
    warnings = [record.getMessage() for record in caplog.records
                if "without a discount code" in record.getMessage()]
    assert len(warnings) == 1
    assert "store API credentials are not set" in warnings[0]
    db.close()


def test_headless_storefront_has_no_store_to_create_codes(tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    from intake_support import write_spec
    from storesync.settings import load_settings

    spec = spec_with_discount(write_spec(tmp_path / "spec", "headless"),
                              {"kind": "percentage", "percent": 10})
    settings = load_settings({"DATA_DIR": str(tmp_path / "var"), "SPEC_DIR": str(spec)})
    with caplog.at_level(logging.WARNING, logger="storesync.discounts"):
        issuer = build_issuer(settings, Database(tmp_path / "state.sqlite3"))
    assert isinstance(issuer, NoStoreDiscounts)
    assert issuer.create_code("test-store:cart-1", "c1", START) is None
    assert "headless storefront has no store API" in caplog.text


def _store(db: Database, clock: Clock) -> Any:
    from storesync.sync_store import SyncStore

    return SyncStore(db, clock=clock)


def _contact(key: str) -> Any:
    from storesync.playbooks import ContactRef

    return ContactRef(key, "email", "cart.buyer@example.com")


# --- end to end: a Shopify project ------------------------------------------------------------

SMS_AND_EMAIL = {"subscribed": "granted", "unsubscribed": "withdrawn",
                 "not_subscribed": "not_granted"}
SHOPIFY_CONSENT_RULES = [
    ConsentRule("email", "customer.email_marketing_consent.state", (), SMS_AND_EMAIL),
    ConsentRule("sms", "customer.sms_marketing_consent.state",
                ("customer.sms_marketing_consent.consent_updated_at",), SMS_AND_EMAIL),
]


def test_sms_consent_skips_the_email_step(
        make_harness: Any, stores: Stores, tmp_path: Path) -> None:
    from store_support import SHOP_DOMAIN, SHOPIFY_TOKEN
    from sync_support import SARA, family, project_mapping, require_hubspot

    require_hubspot()
    if family() != "shopify":
        pytest.skip(f"this test sends Shopify checkout webhooks; this project reads {family()}")
    harness = make_harness(SHOPIFY_SHOP_DOMAIN=SHOP_DOMAIN,
                           SHOPIFY_ADMIN_ACCESS_TOKEN=SHOPIFY_TOKEN,
                           SHOPIFY_ADMIN_URL=stores.shopify_url)
    context = harness.context
    db = context.store.db
    clock = Clock(START)
    # The project's consent.yaml leaves SMS unmanaged; this test reads Shopify's SMS consent.
    context.consent = ConsentRecorder(ConsentStore(db, clock), SHOPIFY_CONSENT_RULES)
    doc = copy.deepcopy(PLAYBOOKS)
    cart = next(item for item in doc["playbooks"] if item["key"] == "abandoned_cart")
    cart["steps"] = [_step("email", "marketing", 0, "hours", "cart_reminder", True, 1),
                     _step("sms", "marketing", 0, "hours", "cart_reminder", True, 2)]
    config = load_playbook_config(write_playbook_spec(tmp_path / "spec", doc), project_mapping())
    issuer = build_issuer(harness.settings, db, clock)
    assert isinstance(issuer, StoreDiscounts)
    assert issuer.platform == "shopify"
    context.playbooks = PlaybookRunner(
        config=config, store=context.store, timers=TimerStore(db, clock=clock),
        consent=context.consent.store, discounts=issuer, senders={}, clock=clock)

    customer = {**{key: SARA[key] for key in ("id", "email", "phone", "first_name",
                                               "last_name")},
                "email_marketing_consent": {"state": "not_subscribed"},
                "sms_marketing_consent": {"state": "subscribed",
                                          "consent_updated_at": "2026-02-01T00:00:00Z"}}
    harness.deliver({"id": 2, "token": "tok-sms", "email": SARA["email"], "customer": customer,
                     "updated_at": "2026-03-01T07:00:00Z", "total_price": "420.00",
                     "currency": "SAR",
                     "abandoned_checkout_url": f"https://{SHOP_DOMAIN}/recover/tok-sms"},
                    "checkouts/create")
    harness.flush()
    clock.advance(3 * HOUR)
    context.playbooks.run_until_idle()

    timers = context.playbooks.timers
    email_step = timers.get("playbook_step", "abandoned_cart:tok-sms#1")
    sms_step = timers.get("playbook_step", "abandoned_cart:tok-sms#2")
    assert email_step is not None
    assert email_step.status == SKIPPED
    assert sms_step is not None
    assert sms_step.status == FIRED
    [created] = shopify_codes(stores)
    marks = [row.item.properties for row in context.store.due("contacts", float("inf"), 100)]
    step_marks = [mark for mark in marks if "ecom_playbook_step" in mark]
    assert step_marks == [{**step_marks[0], "ecom_playbook_step": "abandoned_cart:cart_reminder_2",
                           "ecom_discount_code": created["code"]}]


# --- the worker starts the timers -------------------------------------------------------------


def playbook_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "playbook-timers"]


def test_worker_starts_and_stops_the_timers(make_harness: Any) -> None:
    from storesync.settings import load_settings
    from storesync.worker import process_context, start_background

    harness = make_harness()
    settings = load_settings({"DATA_DIR": str(harness.settings.data_dir),
                              "SPEC_DIR": str(harness.settings.spec_dir),
                              "HUBSPOT_BASE_URL": harness.standin.url,
                              "SYNC_FLUSHER": "process", "STORE_ID": "test-store"})
    if settings.crm_target not in ("hubspot", "zoho"):
        pytest.skip(f"CRM_TARGET={settings.crm_target} runs no playbook timers")
    before = len(playbook_threads())

    stop = start_background(settings)
    try:
        context = process_context(settings)
        assert len(playbook_threads()) == before + 1
        assert isinstance(context.playbooks, PlaybookRunner)
        # The steps check consent in the store that the deliveries record into.
        assert context.consent is not None
        assert context.playbooks.consent is context.consent.store
    finally:
        stop()
    assert len(playbook_threads()) == before
    assert process_context(settings).playbooks is None


def test_worker_refuses_a_bad_discount_in_the_spec(make_harness: Any, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    from storesync.settings import load_settings
    from storesync.worker import start_background

    harness = make_harness()
    spec = tmp_path / "bad-spec"
    shutil.copytree(harness.settings.spec_dir, spec)
    doc = yaml.safe_load((spec / "playbooks.yaml").read_text(encoding="utf-8"))
    doc["discount"]["kind"] = "free_gift"
    (spec / "playbooks.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True),
                                         encoding="utf-8")
    settings = load_settings({"DATA_DIR": str(tmp_path / "var2"), "SPEC_DIR": str(spec),
                              "HUBSPOT_BASE_URL": harness.standin.url,
                              "SYNC_FLUSHER": "process", "STORE_ID": "test-store"})
    if settings.crm_target not in ("hubspot", "zoho"):
        pytest.skip(f"CRM_TARGET={settings.crm_target} runs no playbook timers")
    before = len(playbook_threads())

    with pytest.raises(SystemExit) as stopped:
        start_background(settings)

    assert stopped.value.code == 2
    assert "discount.kind is 'free_gift'" in capsys.readouterr().err
    assert len(playbook_threads()) == before
