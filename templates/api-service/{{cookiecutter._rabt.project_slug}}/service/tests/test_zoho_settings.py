"""Zoho settings: defaults, bad values with their fix, and credits planning."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from storesync.settings import SettingsError, load_settings
from storesync.zoho_credits import (
    MAX_PACE_SECONDS,
    CreditBudget,
    CreditsExhausted,
    daily_credits,
    plan_backfill,
)
from sync_support import SPEC_DIR
from zoho_support import ZohoClock


def settings_for(tmp_path: Path, **environ: str) -> Any:
    return load_settings({"DATA_DIR": str(tmp_path / "var"), "SPEC_DIR": str(SPEC_DIR),
                          **environ})


def problems_for(tmp_path: Path, **environ: str) -> str:
    with pytest.raises(SettingsError) as failed:
        settings_for(tmp_path, **environ)
    return str(failed.value)


def test_defaults(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    assert settings.zoho_dc == "sa"
    assert settings.zoho_edition == "enterprise"
    assert settings.zoho_refresh_token is None
    assert settings.zoho_credits_per_day is None
    assert settings.zoho_credits_pause_seconds == 900
    assert settings.zoho_auth_failure_pause_seconds == 60


def test_pauses_are_read(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, ZOHO_CREDITS_PAUSE_SECONDS="3600",
                            ZOHO_AUTH_FAILURE_PAUSE_SECONDS="120")
    assert settings.zoho_credits_pause_seconds == 3600
    assert settings.zoho_auth_failure_pause_seconds == 120
    # The HubSpot pauses are their own settings.
    assert settings.hubspot_daily_limit_pause_seconds == 900


@pytest.mark.parametrize(("name", "value", "rule"), [
    ("ZOHO_CREDITS_PAUSE_SECONDS", "59", "outside the allowed range 60 to 86400"),
    ("ZOHO_CREDITS_PAUSE_SECONDS", "a day", "is not a whole number"),
    ("ZOHO_AUTH_FAILURE_PAUSE_SECONDS", "4", "outside the allowed range 5 to 3600"),
    ("ZOHO_AUTH_FAILURE_PAUSE_SECONDS", "3601", "outside the allowed range 5 to 3600"),
])
def test_bad_pause_is_named(tmp_path: Path, name: str, value: str, rule: str) -> None:
    text = problems_for(tmp_path, **{name: value})
    assert name in text
    assert rule in text


def test_refresh_token_ends_zoho_sandbox(tmp_path: Path) -> None:
    settings = load_settings({"DATA_DIR": str(tmp_path / "var"), "SPEC_DIR": str(SPEC_DIR),
                              "CRM_TARGET": "zoho", "ZOHO_REFRESH_TOKEN": "1000.test-refresh",
                              "ZOHO_CLIENT_ID": "1000.TESTCLIENT",
                              "ZOHO_CLIENT_SECRET": "test-secret-1"},
                             webhook_secrets_required=False)
    assert settings.sandbox_switch == "ZOHO_REFRESH_TOKEN"
    assert not settings.sandbox
    assert "test-secret-1" not in repr(settings)


def test_unknown_data_centre(tmp_path: Path) -> None:
    text = problems_for(tmp_path, ZOHO_DC="zoho.ae")
    assert "ZOHO_DC" in text
    assert "'zoho.ae' is not a Zoho data centre" in text
    assert "com, eu, in, com.au, jp, com.cn, ca, sa, uk" in text


def test_unknown_edition(tmp_path: Path) -> None:
    text = problems_for(tmp_path, ZOHO_EDITION="premium")
    assert "'premium' is not a Zoho CRM edition" in text
    assert "enterprise" in text


def test_refresh_token_needs_the_client(tmp_path: Path) -> None:
    text = problems_for(tmp_path, CRM_TARGET="zoho", ZOHO_REFRESH_TOKEN="1000.test-refresh")
    assert "ZOHO_CLIENT_ID: is not set, and ZOHO_REFRESH_TOKEN is" in text
    assert "ZOHO_CLIENT_SECRET" in text
    assert "1000.test-refresh" not in text


def test_placeholder_is_refused(tmp_path: Path) -> None:
    text = problems_for(tmp_path, ZOHO_CLIENT_SECRET="replace-with-the-client-secret")
    assert "ZOHO_CLIENT_SECRET: is still the placeholder" in text


@pytest.mark.parametrize("url", ["ftp://accounts.zoho.sa", "http://accounts.zoho.sa"])
def test_accounts_url_must_be_https_or_local(tmp_path: Path, url: str) -> None:
    text = problems_for(tmp_path, ZOHO_ACCOUNTS_URL=url)
    assert "ZOHO_ACCOUNTS_URL" in text
    assert "not an https URL or a local http one" in text


def test_sandbox_accounts_url_must_be_local(tmp_path: Path) -> None:
    text = problems_for(tmp_path, CRM_TARGET="zoho", ZOHO_ACCOUNTS_URL="https://accounts.zoho.sa")
    assert "is not a local stand-in, and the service is in sandbox mode" in text


@pytest.mark.parametrize(("name", "value"), [("ZOHO_CREDITS_PER_DAY", "0"),
                                             ("ZOHO_CONCURRENCY", "many"),
                                             ("ZOHO_USER_LICENCES", "-1"),
                                             ("ZOHO_TIMEOUT_SECONDS", "0")])
def test_numbers_are_checked(tmp_path: Path, name: str, value: str) -> None:
    assert name in problems_for(tmp_path, **{name: value})


def test_daily_credits_follow_the_edition() -> None:
    assert daily_credits("professional", 20) == 60_000
    assert daily_credits("free", 50) == 5_000
    assert daily_credits("standard", 1000) == 100_000
    assert daily_credits("enterprise", 10, override=7) == 7


def test_budget_paces_calls_when_credits_run_low() -> None:
    clock = ZohoClock()
    budget = CreditBudget(100, clock=clock, sleep=clock.sleep)
    budget.spend(70)
    budget.before_call(10)
    assert clock.sleeps == []

    clock.now += 3600
    budget.spend(15)
    budget.before_call(10)

    # 15 left, one call of 10 fits: it waits until the first 70 credits return, at most
    # MAX_PACE_SECONDS.
    assert clock.sleeps == [MAX_PACE_SECONDS]


def test_budget_stops_when_credits_are_gone() -> None:
    clock = ZohoClock()
    budget = CreditBudget(100, clock=clock, sleep=clock.sleep)
    budget.spend(95)
    clock.now += 600

    with pytest.raises(CreditsExhausted) as raised:
        budget.before_call(10)

    assert raised.value.wait_seconds == 24 * 3600 - 600
    clock.now += 24 * 3600 - 600
    budget.before_call(10)
    assert budget.remaining() == 100


def test_backfill_plan() -> None:
    plan = plan_backfill(orders=1000, contacts=850, daily_limit=200, credits_available=100,
                         seconds_per_call=2.0)
    # Contacts: 9 calls; deals, deal contacts and sales orders: 10 calls each.
    assert plan.calls == 39
    assert plan.credits == 8 * 10 + 5 + 30 * 10
    assert plan.days == 1 + 2
    assert plan.seconds == 39 * 2.0 + 2 * 24 * 3600
    assert plan.records == 850 + 2000


def test_backfill_plan_refuses_negative_counts() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        plan_backfill(orders=-1, contacts=0, daily_limit=100)
