"""The direct WhatsApp sender against the Cloud API stand-in, and the playbook settings."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from intake_support import sample_value, serve
from playbook_support import (
    CONTACT,
    HOUR,
    MAPPING,
    PLAYBOOKS,
    SEGMENTS,
    Clock,
    FakeConsent,
    FakeDiscounts,
    Rig,
    contact_marks,
    load_test_config,
    make_rig,
    riyadh,
    write_playbook_spec,
)
from storesync import metrics
from storesync.playbook_config import (
    PlaybookConfig,
    PlaybookConfigError,
    Step,
    load_playbook_config,
)
from storesync.playbooks import ContactRef
from storesync.settings import SettingsError, load_settings
from storesync.standins.whatsapp import Template, WhatsAppStandinConfig, create_app
from storesync.whatsapp import (
    WhatsAppSender,
    WhatsAppSettings,
    WhatsAppSettingsError,
    WhatsAppUnavailable,
    load_whatsapp_settings,
)
from sync_support import SPEC_DIR, project_mapping

TOKEN = "standin-whatsapp-token"
PHONE_ID = "100000000000001"
STEP = Step("abandoned_cart", 2, "whatsapp", "marketing", "whatsapp", 0, "cart_reminder", True)
PAYLOAD: dict[str, Any] = {"contact": {"key": "c1", "phone": "+966500000021"},
                           "url": "https://shop.example/recover/1", "discount_code": "BACK-1"}
NOON = riyadh("2026-03-01 12:00")  # a Sunday, outside the quiet hours


@pytest.fixture
def standin() -> Iterator[tuple[str, Any]]:
    config = WhatsAppStandinConfig(
        access_token=TOKEN, phone_number_id=PHONE_ID, rate_limit=2,
        templates=(Template("cart_reminder", "ar", body_parameters=2),
                   Template("review_request", "ar", status="PENDING"),
                   Template("win_back_offer", "ar", status="PAUSED", body_parameters=2)),
        clock=lambda: NOON)
    app = create_app(config)
    with serve(app) as url:
        yield url, app.state.whatsapp


def sender_for(url: str, config: PlaybookConfig, token: str = TOKEN) -> WhatsAppSender:
    settings = load_whatsapp_settings({"WHATSAPP_ACCESS_TOKEN": token,
                                       "WHATSAPP_PHONE_NUMBER_ID": PHONE_ID,
                                       "WHATSAPP_BASE_URL": url})
    assert settings is not None
    return WhatsAppSender(settings, config.quiet_hours)


@pytest.fixture
def config(tmp_path: Path) -> PlaybookConfig:
    return load_test_config(tmp_path / "integration")


def test_template_is_sent_with_link_and_code(standin: tuple[str, Any],
                                             config: PlaybookConfig) -> None:
    url, state = standin
    sender = sender_for(url, config)
    try:
        outcome = sender.send_step(STEP, PAYLOAD, NOON)
    finally:
        sender.close()
    assert outcome.status == "sent"
    [message] = state.messages
    assert message["to"] == "966500000021"
    assert message["type"] == "template"
    assert message["template"]["name"] == "cart_reminder"
    assert message["template"]["language"] == {"code": "ar"}
    texts = [item["text"] for item in message["template"]["components"][0]["parameters"]]
    assert texts == ["https://shop.example/recover/1", "BACK-1"]


def test_quiet_hours_defer_to_the_window_end(standin: tuple[str, Any],
                                             config: PlaybookConfig) -> None:
    url, state = standin
    sender = sender_for(url, config)
    try:
        outcome = sender.send_step(STEP, PAYLOAD, riyadh("2026-03-01 23:00"))
    finally:
        sender.close()
    assert (outcome.status, outcome.retry_at) == ("deferred", riyadh("2026-03-02 09:00"))
    assert state.messages == []


@pytest.mark.parametrize(("template", "code"), [("review_request", 132001),
                                                ("win_back_offer", 132015),
                                                ("no_such_template", 132001)])
def test_unapproved_or_paused_template_fails(standin: tuple[str, Any], config: PlaybookConfig,
                                            template: str, code: int) -> None:
    url, state = standin
    step = Step("win_back", 1, "whatsapp", "marketing", "whatsapp", 0, template, True)
    sender = sender_for(url, config)
    try:
        outcome = sender.send_step(step, PAYLOAD, NOON)
    finally:
        sender.close()
    assert outcome.status == "failed"
    assert f"WhatsApp error {code}" in str(outcome.reason)
    assert state.messages == []


def test_rate_limit_defers(standin: tuple[str, Any], config: PlaybookConfig) -> None:
    url, _ = standin
    sender = sender_for(url, config)
    try:
        outcomes = [sender.send_step(STEP, PAYLOAD, NOON).status for _ in range(3)]
        last = sender.send_step(STEP, PAYLOAD, NOON)
    finally:
        sender.close()
    assert outcomes == ["sent", "sent", "deferred"]
    assert last.retry_at == NOON + 60


def test_wrong_token_keeps_the_step_for_later(standin: tuple[str, Any],
                                              config: PlaybookConfig) -> None:
    url, state = standin
    sender = sender_for(url, config, token="not-the-token")
    try:
        with pytest.raises(WhatsAppUnavailable, match="error 190"):
            sender.send_step(STEP, PAYLOAD, NOON)
    finally:
        sender.close()
    assert state.messages == []


def test_standin_rejects_free_form_outside_the_window(standin: tuple[str, Any]) -> None:
    url, _ = standin
    body = {"messaging_product": "whatsapp", "to": "966500000021", "type": "text",
            "text": {"body": "hello"}}
    headers = {"Authorization": f"Bearer {TOKEN}"}
    response = httpx.post(f"{url}/v21.0/{PHONE_ID}/messages", json=body, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == 131047
    httpx.post(f"{url}/_standin/inbound", json={"from": "966500000021"})
    response = httpx.post(f"{url}/v21.0/{PHONE_ID}/messages", json=body, headers=headers)
    assert response.status_code == 200
    assert response.json()["messages"][0]["id"].startswith("wamid.")


def test_step_without_template_sends_nothing(config: PlaybookConfig) -> None:
    # The service records no inbound WhatsApp messages, so it cannot tell that the 24-hour
    # window is open. A step without an approved template is therefore never sent.
    requests: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, json={"messages": [{"id": "wamid.not-expected"}]})

    settings = load_whatsapp_settings({"WHATSAPP_ACCESS_TOKEN": TOKEN,
                                       "WHATSAPP_PHONE_NUMBER_ID": PHONE_ID})
    assert settings is not None
    sender = WhatsAppSender(settings, config.quiet_hours, transport=httpx.MockTransport(answer))
    step = Step("post_purchase", 1, "whatsapp", "marketing", "whatsapp", 0, None, False)
    try:
        outcome = sender.send_step(step, PAYLOAD, NOON)
    finally:
        sender.close()
    assert outcome.status == "failed"
    assert outcome.reason == "the step has no approved template"
    assert requests == []


def test_open_window_still_gets_a_template(standin: tuple[str, Any],
                                           config: PlaybookConfig) -> None:
    url, state = standin
    # The customer wrote within the last 24 hours, so WhatsApp would accept free-form text.
    httpx.post(f"{url}/_standin/inbound", json={"from": "966500000021"}).raise_for_status()
    sender = sender_for(url, config)
    try:
        outcome = sender.send_step(STEP, PAYLOAD, NOON)
    finally:
        sender.close()
    assert outcome.status == "sent"
    [message] = state.messages
    assert message["type"] == "template"
    assert "text" not in message
    assert message["template"]["name"] == "cart_reminder"


def test_runner_sends_whatsapp_step_and_marks_the_contact(
        standin: tuple[str, Any], config: PlaybookConfig, tmp_path: Path) -> None:
    url, state = standin
    clock = Clock(riyadh("2026-03-01 10:00"))
    sender = sender_for(url, config)
    contact = ContactRef("c1", "email", "cart.buyer@example.com", "+966500000021")
    rig: Rig = make_rig(tmp_path / "state.sqlite3", config, clock, FakeConsent(),
                        FakeDiscounts(), {"whatsapp": sender})
    sent_before = sample_value(metrics.SYNC_REGISTRY, "storesync_playbook_messages_total",
                               {"channel": "whatsapp", "outcome": "sent"})
    try:
        body = {"token": "tok-9", "updated_at": "2026-03-01T07:00:00Z", "total_price": "50.00",
                "abandoned_checkout_url": "https://shop.example/recover/9"}
        with rig.store.transaction() as conn:
            rig.runner.observe(conn, "shopify", "checkouts/create", body, contact)
        clock.advance(2 * HOUR)
        rig.runner.run_until_idle()
        clock.advance(20 * HOUR)  # 08:00 next day: quiet until 09:00
        rig.runner.run_until_idle()
        assert len(state.messages) == 0
        clock.advance(HOUR)
        rig.runner.run_until_idle()
    finally:
        sender.close()
        rig.close()
    assert len(state.messages) == 1
    assert [mark["ecom_playbook_step"] for mark in contact_marks(rig)] == [
        "abandoned_cart:cart_reminder_2"]
    assert sample_value(metrics.SYNC_REGISTRY, "storesync_playbook_messages_total",
                        {"channel": "whatsapp", "outcome": "sent"}) == sent_before + 1


# --- settings ------------------------------------------------------------------------------


def test_sender_is_off_unless_configured() -> None:
    assert load_whatsapp_settings({}) is None


@pytest.mark.parametrize(("environ", "named"), [
    ({"WHATSAPP_ACCESS_TOKEN": "x"}, "WHATSAPP_PHONE_NUMBER_ID"),
    ({"WHATSAPP_PHONE_NUMBER_ID": PHONE_ID}, "WHATSAPP_ACCESS_TOKEN"),
    ({"WHATSAPP_PHONE_NUMBER_ID": PHONE_ID,
      "WHATSAPP_ACCESS_TOKEN": "replace-with-the-access-token"}, "WHATSAPP_ACCESS_TOKEN"),
    ({"WHATSAPP_PHONE_NUMBER_ID": "+966500000021", "WHATSAPP_ACCESS_TOKEN": "x"},
     "WHATSAPP_PHONE_NUMBER_ID"),
    ({"WHATSAPP_PHONE_NUMBER_ID": PHONE_ID, "WHATSAPP_ACCESS_TOKEN": "x",
      "WHATSAPP_API_VERSION": "21"}, "WHATSAPP_API_VERSION"),
    ({"WHATSAPP_PHONE_NUMBER_ID": PHONE_ID, "WHATSAPP_ACCESS_TOKEN": "x",
      "WHATSAPP_QUIET_HOURS": "late"}, "WHATSAPP_QUIET_HOURS"),
    ({"WHATSAPP_PHONE_NUMBER_ID": PHONE_ID, "WHATSAPP_ACCESS_TOKEN": "x",
      "WHATSAPP_BASE_URL": "graph.facebook.com/v1"}, "WHATSAPP_BASE_URL"),
    ({"WHATSAPP_PHONE_NUMBER_ID": PHONE_ID, "WHATSAPP_ACCESS_TOKEN": "x",
      "WHATSAPP_TEMPLATE_LANGUAGE": "Arabic"}, "WHATSAPP_TEMPLATE_LANGUAGE"),
])
def test_bad_whatsapp_settings_are_named(environ: dict[str, str], named: str) -> None:
    with pytest.raises(WhatsAppSettingsError) as raised:
        load_whatsapp_settings(environ)
    assert [problem[0] for problem in raised.value.problems] == [named]
    value = environ.get(named)
    if value and value != "x" and "replace-with" not in value:
        assert repr(value) in str(raised.value)


@pytest.mark.parametrize(("environ", "named"), [
    ({"WHATSAPP_PHONE_NUMBER_ID": "12", "WHATSAPP_ACCESS_TOKEN": "x"},
     "WHATSAPP_PHONE_NUMBER_ID"),
    ({"PLAYBOOK_CART_DELAY_HOURS": "9"}, "PLAYBOOK_CART_DELAY_HOURS"),
])
def test_service_settings_reject_bad_playbook_values(tmp_path: Path, environ: dict[str, str],
                                                    named: str) -> None:
    base = {"DATA_DIR": str(tmp_path / "var"), "SPEC_DIR": str(SPEC_DIR)}
    with pytest.raises(SettingsError) as raised:
        load_settings({**base, **environ})
    assert [problem.variable for problem in raised.value.problems] == [named]


def test_service_settings_keep_playbook_values(tmp_path: Path) -> None:
    settings = load_settings({"DATA_DIR": str(tmp_path / "var"), "SPEC_DIR": str(SPEC_DIR),
                              "WHATSAPP_PHONE_NUMBER_ID": PHONE_ID,
                              "WHATSAPP_ACCESS_TOKEN": "token-for-the-test-only"})
    assert settings.playbook_environ["WHATSAPP_PHONE_NUMBER_ID"] == PHONE_ID
    assert "token-for-the-test-only" not in repr(settings)


def test_settings_never_show_the_token() -> None:
    settings = load_whatsapp_settings({"WHATSAPP_PHONE_NUMBER_ID": PHONE_ID,
                                       "WHATSAPP_ACCESS_TOKEN": "very-private-value"})
    assert isinstance(settings, WhatsAppSettings)
    assert "very-private-value" not in repr(settings)


def test_quiet_hours_setting_keeps_other_windows(config: PlaybookConfig) -> None:
    fridays = [window for window in config.quiet_hours.windows if len(window.days) < 7]
    if not fridays:
        pytest.skip("the project's spec has no quiet window of some days only")
    settings = load_whatsapp_settings({"WHATSAPP_PHONE_NUMBER_ID": PHONE_ID,
                                       "WHATSAPP_ACCESS_TOKEN": "x",
                                       "WHATSAPP_QUIET_HOURS": "23:00-08:00"})
    assert settings is not None
    sender = WhatsAppSender(settings, config.quiet_hours)
    try:
        windows = sender.quiet_hours.windows
        # The spec's Friday-prayer style windows stay beside the daily one of the setting.
        assert [window for window in windows if len(window.days) < 7] == fridays
        assert [(window.start.isoformat("minutes"), window.end.isoformat("minutes"))
                for window in windows if len(window.days) == 7] == [("23:00", "08:00")]
        window = fridays[0]
        zone = config.quiet_hours.zone
        day = next(date(2026, 3, number) for number in range(1, 8)
                   if date(2026, 3, number).weekday() in window.days)
        inside = datetime.combine(day, window.start, zone) + timedelta(minutes=1)
        window_end = datetime.combine(day, window.end, zone)
        assert sender.quiet_hours.release_time(inside.timestamp()) == window_end.timestamp()
    finally:
        sender.close()


def test_quiet_hours_setting_replaces_the_spec(config: PlaybookConfig) -> None:
    settings = load_whatsapp_settings({"WHATSAPP_PHONE_NUMBER_ID": PHONE_ID,
                                       "WHATSAPP_ACCESS_TOKEN": "x",
                                       "WHATSAPP_QUIET_HOURS": "21:00-10:00"})
    assert settings is not None
    sender = WhatsAppSender(settings, config.quiet_hours)
    try:
        assert sender.quiet_hours.release_time(riyadh("2026-03-01 09:30")) == \
            riyadh("2026-03-01 10:00")
    finally:
        sender.close()


@pytest.mark.parametrize("value", ["5", "0.5", "two", "nan"])
def test_cart_delay_outside_the_spec_range_is_rejected(tmp_path: Path, value: str) -> None:
    with pytest.raises(PlaybookConfigError, match=r"PLAYBOOK_CART_DELAY_HOURS: .* from 1 to 4"):
        load_test_config(tmp_path / "integration", {"PLAYBOOK_CART_DELAY_HOURS": value})


def test_cart_delay_setting_moves_the_delay(tmp_path: Path) -> None:
    config = load_test_config(tmp_path / "integration", {"PLAYBOOK_CART_DELAY_HOURS": "3.5"})
    assert config.playbooks["abandoned_cart"].delay_seconds == int(3.5 * HOUR)


def test_bad_spec_values_are_named(tmp_path: Path) -> None:
    broken = {**PLAYBOOKS, "playbooks": [
        {**PLAYBOOKS["playbooks"][0], "delay": {"default": 6, "min": 1, "max": 4,
                                                "unit": "hours"}}]}
    folder = write_playbook_spec(tmp_path / "a", broken)
    with pytest.raises(PlaybookConfigError, match=r"abandoned_cart\.delay\.default is 6"):
        load_playbook_config(folder, MAPPING)
    folder = write_playbook_spec(tmp_path / "b", segments={
        "vip_threshold": {"threshold_sar": 4000, "exit_threshold_sar": 4500}})
    with pytest.raises(PlaybookConfigError, match="exit_threshold_sar"):
        load_playbook_config(folder, MAPPING)
    folder = write_playbook_spec(tmp_path / "c", segments={**SEGMENTS, "vip_threshold": {
        "threshold_sar": "lots", "exit_threshold_sar": 1}})
    with pytest.raises(PlaybookConfigError, match="threshold_sar is 'lots'"):
        load_playbook_config(folder, MAPPING)


def test_project_spec_loads_with_its_own_numbers() -> None:
    import yaml

    config = load_playbook_config(SPEC_DIR, project_mapping())
    doc = yaml.safe_load((SPEC_DIR / "playbooks.yaml").read_text(encoding="utf-8"))
    cart = next(item for item in doc["playbooks"] if item["key"] == "abandoned_cart")
    hours = {"hours": 1, "days": 24}[cart["delay"]["unit"]]
    expected = cart["delay"]["default"] * hours * 3600
    assert config.playbooks["abandoned_cart"].delay_seconds == expected
    assert config.quiet_hours.windows
    assert set(config.fields) >= {"playbook_step", "discount_code"}
    assert CONTACT.key == "c1"


# --- wiring ------------------------------------------------------------------------------


def test_runner_is_built_from_the_settings(make_harness: Any) -> None:
    from playbook_support import FakeConsent, FakeDiscounts
    from storesync.playbook_wiring import build_runner, start_playbooks
    from sync_support import require_hubspot

    require_hubspot()
    harness = make_harness()
    plain = build_runner(harness.settings, harness.context, FakeConsent(), FakeDiscounts())
    assert plain.senders == {}
    assert plain.notes is True
    assert "abandoned_cart" in plain.config.playbooks

    harness.settings.playbook_environ.update({"WHATSAPP_PHONE_NUMBER_ID": PHONE_ID,
                                              "WHATSAPP_ACCESS_TOKEN": "token-for-the-test"})
    with_sender = build_runner(harness.settings, harness.context, FakeConsent(), FakeDiscounts())
    assert set(with_sender.senders) == {"whatsapp"}

    stop = start_playbooks(harness.settings, harness.context, FakeConsent(), FakeDiscounts())
    try:
        assert harness.context.playbooks is not None
    finally:
        stop()
