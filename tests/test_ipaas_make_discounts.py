"""Make playbook runners: a discount code exists in the store before any message carries it.

Each runner route runs in its own scheduled run, hours or days apart. So a test runs
one route for a contact that the route's search found, and compares the code that the
store request creates with the code that a later send carries.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.test_ipaas_make_outcomes import module_named, run, subscribed
from tests.test_ipaas_make_records import Bundles, blueprints, body_of, modules, name_of

PHONE_CHANNELS = ("whatsapp", "sms")
CREATE_CODE = "Create the contact's single-use discount code"
NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
# A contact found by a runner search: WhatsApp and SMS consent, no email consent. HubSpot
# keeps the consent in its v4 statuses; the contact's consent times say nothing of the state.
NO_EMAIL_CONSENT = {"id": "901", "properties": {
    "firstname": "Noura", "ecom_phone_e164": "+966501234567", "ecom_email_consent_at": "",
    "ecom_whatsapp_consent_at": "2026-01-01", "ecom_sms_consent_at": "2026-01-01",
    "ecom_last_checkout_at": "2026-12-01T20:00:00+03:00", "ecom_last_order_at": ""}}


def route_flows(blueprint: dict[str, Any], router_name: str) -> list[list[dict[str, Any]]]:
    return [route["flow"] for route in module_named(blueprint, router_name)["routes"]]


def feeder_id(flow: list[dict[str, Any]]) -> str:
    return str(next(module["id"] for module in flow if module["module"] == "builtin:BasicFeeder"))


def created_code(flow: list[dict[str, Any]], item: dict[str, Any]) -> str:
    """Return the code that the route's store request creates for ``item``."""
    create = next(module for module in modules(flow) if name_of(module) == CREATE_CODE)
    body = body_of(create, Bundles({feeder_id(flow): item, "now": NOW}))
    code: str = body["variables"]["basicCodeDiscount"]["code"]
    return code


def sent_body(flow: list[dict[str, Any]], name: str, item: dict[str, Any]) -> Any:
    send = next(module for module in modules(flow) if name_of(module) == name)
    return body_of(send, Bundles({feeder_id(flow): item, "now": NOW}))


def test_cart_code_created_without_email_consent() -> None:
    runner = blueprints("shopify-growth")["abandoned-checkout-runner"]
    first, second = route_flows(runner, "One route per due day")
    ran = run(first, {feeder_id(first): NO_EMAIL_CONSENT, "now": NOW,
                      **subscribed(first, *PHONE_CHANNELS)})
    assert CREATE_CODE in ran
    assert "Send step 1 by email" not in ran
    later = run(second, {feeder_id(second): NO_EMAIL_CONSENT, "now": NOW,
                         **subscribed(second, *PHONE_CHANNELS)})
    assert "Send step 2 by whatsapp" in later
    button = sent_body(second, "Send step 2 by whatsapp", NO_EMAIL_CONSENT)[
        "template"]["components"][-1]
    assert button["parameters"][0]["coupon_code"] == created_code(first, NO_EMAIL_CONSENT)


def test_cart_code_not_created_after_order() -> None:
    runner = blueprints("shopify-growth")["abandoned-checkout-runner"]
    first = route_flows(runner, "One route per due day")[0]
    ordered = {"id": "901", "properties": {**NO_EMAIL_CONSENT["properties"],
                                           "ecom_last_order_at": "2026-12-01T21:00:00+03:00"}}
    assert CREATE_CODE not in run(first, {feeder_id(first): ordered, "now": NOW})


def test_cart_code_created_once_per_route() -> None:
    runner = blueprints("shopify-growth")["abandoned-checkout-runner"]
    first, second = route_flows(runner, "One route per due day")
    assert [name_of(module) for module in modules(first)].count(CREATE_CODE) == 1
    assert CREATE_CODE not in [name_of(module) for module in modules(second)]


@pytest.mark.parametrize(("route", "send"), [(1, "Send step 2 by whatsapp"),
                                             (2, "Send step 3 by sms")])
def test_win_back_later_steps_repeat_code(route: int, send: str) -> None:
    flows = route_flows(blueprints("shopify-growth")["win-back"], "One route per playbook step")
    ran = run(flows[0], {feeder_id(flows[0]): NO_EMAIL_CONSENT, "now": NOW,
                         **subscribed(flows[0], *PHONE_CHANNELS)})
    assert CREATE_CODE in ran
    assert "Send step 1 by email" not in ran
    assert send in run(flows[route], {feeder_id(flows[route]): NO_EMAIL_CONSENT,
                                      **subscribed(flows[route], *PHONE_CHANNELS)})
    body = sent_body(flows[route], send, NO_EMAIL_CONSENT)
    code = body["code"] if send.endswith("sms") else \
        body["template"]["components"][-1]["parameters"][0]["coupon_code"]
    assert code.startswith("RABT-")
    assert code == created_code(flows[0], NO_EMAIL_CONSENT)


def test_win_back_email_step_carries_code() -> None:
    first = route_flows(blueprints("shopify-growth")["win-back"], "One route per playbook step")[0]
    consented = {"id": "901", "properties": {**NO_EMAIL_CONSENT["properties"],
                                             "email": "noura@example.sa",
                                             "ecom_email_consent_at": "2026-01-01"}}
    ran = run(first, {feeder_id(first): consented, "now": NOW,
                      **subscribed(first, "email", *PHONE_CHANNELS)})
    assert ran.index(CREATE_CODE) < ran.index("Send step 1 by email")
    properties = sent_body(first, "Send step 1 by email", consented)["inputs"][0]["properties"]
    assert properties["ecom_discount_code"] == created_code(first, consented)


CLAIM = "Claim the code for this checkout (data store processed_events)"


def test_cart_code_differs_per_checkout() -> None:
    first = route_flows(blueprints("shopify-growth")["abandoned-checkout-runner"],
                        "One route per due day")[0]
    later = {"id": "901", "properties": {**NO_EMAIL_CONSENT["properties"],
                                         "ecom_last_checkout_at": "2026-12-05T20:00:00+03:00"}}
    assert created_code(first, later) != created_code(first, NO_EMAIL_CONSENT)
    assert created_code(first, NO_EMAIL_CONSENT) == created_code(first, NO_EMAIL_CONSENT)


def test_cart_code_claimed_before_create() -> None:
    first = route_flows(blueprints("shopify-growth")["abandoned-checkout-runner"],
                        "One route per due day")[0]
    ran = run(first, {feeder_id(first): NO_EMAIL_CONSENT, "now": NOW})
    assert ran.index(CLAIM) < ran.index(CREATE_CODE)
    claim = next(module for module in modules(first) if name_of(module) == CLAIM)
    assert claim["mapper"]["overwrite"] is False
    assert [handler["module"] for handler in claim["onerror"]] == ["builtin:Ignore"]
    key = claim["mapper"]["key"]
    feeder = feeder_id(first)
    assert key == (f"abandoned-checkout-runner:code:{{{{{feeder}.id}}}}:"
                   f"{{{{{feeder}.properties.ecom_last_checkout_at}}}}")


def test_cart_code_not_created_when_claimed() -> None:
    first = route_flows(blueprints("shopify-growth")["abandoned-checkout-runner"],
                        "One route per due day")[0]
    claim = next(module for module in modules(first) if name_of(module) == CLAIM)
    # A run whose window overlaps an earlier run's finds the record already added.
    ran = run(first, {feeder_id(first): NO_EMAIL_CONSENT, "now": NOW}, failing={claim["id"]})
    assert CLAIM in ran
    assert CREATE_CODE not in ran


# A guest found by a runner search: email consent, no store customer id.
GUEST = {"id": "902", "properties": {**NO_EMAIL_CONSENT["properties"],
                                     "ecom_customer_id": "",
                                     "ecom_email_consent_at": "2026-01-01"}}


@pytest.mark.parametrize(("flow", "playbook"), [("abandoned-checkout-runner", "abandoned_cart"),
                                                ("post-purchase-runner", "post_purchase"),
                                                ("win-back", "win_back")])
def test_guest_email_step_updates_by_record_id(flow: str, playbook: str) -> None:
    blueprint = blueprints("shopify-growth")[flow]
    send = next(module for module in modules(blueprint["flow"])
                if name_of(module) == "Send step 1 by email")
    route = next(route["flow"] for module in modules(blueprint["flow"])
                 for route in module.get("routes", [])
                 if send in list(modules(route["flow"])))
    assert send["mapper"]["url"].endswith("/crm/v3/objects/contacts/batch/update")
    body = body_of(send, Bundles({feeder_id(route): GUEST, "now": NOW}))
    assert body["inputs"][0]["id"] == "902"
    assert "idProperty" not in body["inputs"][0]
    assert "ecom_customer_id" not in body["inputs"][0]["properties"]
    assert body["inputs"][0]["properties"]["ecom_playbook_step"].startswith(f"{playbook}:")


# Each win-back route's send, by channel.
WIN_BACK_SENDS = [(0, "email", "Send step 1 by email"), (1, "whatsapp", "Send step 2 by whatsapp"),
                  (2, "sms", "Send step 3 by sms")]
# A consent time is set whatever the state: the consent-sync records the time of an
# unsubscribe too, so only HubSpot's status decides.
CONSENT_TIMES = {"id": "901", "properties": {
    **NO_EMAIL_CONSENT["properties"], "email": "noura@example.sa",
    "ecom_email_consent_at": "2026-01-01"}}


@pytest.mark.parametrize(("route", "channel", "send"), WIN_BACK_SENDS)
def test_win_back_sends_only_when_subscribed(route: int, channel: str, send: str) -> None:
    flows = route_flows(blueprints("shopify-growth")["win-back"], "One route per playbook step")
    flow = flows[route]
    bundles = {feeder_id(flow): CONSENT_TIMES, "now": NOW}
    assert send in run(flow, {**bundles, **subscribed(flow, channel)})
    # Withdrawn: HubSpot reports NOT_SUBSCRIBED on the channel.
    assert send not in run(flow, {**bundles, **subscribed(flow)})
    # Never given: HubSpot returns no status for the channel.
    assert send not in run(flow, bundles)


@pytest.mark.parametrize("channel", ["email", "whatsapp"])
def test_cart_sends_only_when_subscribed(channel: str) -> None:
    first, second = route_flows(blueprints("shopify-growth")["abandoned-checkout-runner"],
                                "One route per due day")
    flow, send = (first, "Send step 1 by email") if channel == "email" else \
        (second, "Send step 2 by whatsapp")
    bundles = {feeder_id(flow): CONSENT_TIMES, "now": NOW}
    assert send in run(flow, {**bundles, **subscribed(flow, channel)})
    assert send not in run(flow, {**bundles, **subscribed(flow)})
    assert send not in run(flow, bundles)
