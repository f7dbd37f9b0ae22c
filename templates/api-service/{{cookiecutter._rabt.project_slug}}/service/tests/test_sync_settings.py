"""The worker and CRM settings: defaults, and a clear message for each invalid value."""

from __future__ import annotations

from pathlib import Path

import pytest

from storesync.settings import SettingsError, load_settings
from sync_support import SPEC_DIR, project_mapping


def load(tmp_path: Path, **environ: str) -> object:
    return load_settings({"DATA_DIR": str(tmp_path / "var"), "SPEC_DIR": str(SPEC_DIR),
                          **environ})


def test_worker_defaults(tmp_path: Path) -> None:
    settings = load_settings({"DATA_DIR": str(tmp_path), "SPEC_DIR": str(SPEC_DIR)})
    # CRM_TARGET follows the crm of this project's field map.
    assert settings.crm_target == project_mapping()["crm"]
    assert settings.hubspot_access_token is None
    assert settings.hubspot_base_url == "https://api.hubapi.com"
    assert settings.hubspot_rate_limit_per_10s == 100
    assert settings.hubspot_search_rate_per_second == 5
    assert settings.sync_batch_window_ms == 500
    assert settings.sync_max_attempts == 8
    assert settings.sync_flusher == "process"
    assert settings.flusher_heartbeat_max_age_seconds == 120
    assert settings.hubspot_daily_limit_pause_seconds == 900
    assert settings.hubspot_auth_failure_pause_seconds == 60


def test_pause_values_read(tmp_path: Path) -> None:
    settings = load_settings({"DATA_DIR": str(tmp_path), "SPEC_DIR": str(SPEC_DIR),
                              "HUBSPOT_DAILY_LIMIT_PAUSE_SECONDS": "3600",
                              "HUBSPOT_AUTH_FAILURE_PAUSE_SECONDS": "120"})
    assert settings.hubspot_daily_limit_pause_seconds == 3600
    assert settings.hubspot_auth_failure_pause_seconds == 120


def test_worker_values_read(tmp_path: Path) -> None:
    settings = load_settings({"DATA_DIR": str(tmp_path), "SPEC_DIR": str(SPEC_DIR),
                              "HUBSPOT_RATE_LIMIT_PER_10S": "190", "SYNC_MAX_ATTEMPTS": "5",
                              "HUBSPOT_BASE_URL": "http://127.0.0.1:8010/",
                              "CRM_TARGET": "Zoho"})
    assert settings.hubspot_rate_limit_per_10s == 190
    assert settings.sync_max_attempts == 5
    assert settings.hubspot_base_url == "http://127.0.0.1:8010"
    assert settings.crm_target == "zoho"


def test_flusher_thread_read(tmp_path: Path) -> None:
    settings = load_settings({"DATA_DIR": str(tmp_path), "SPEC_DIR": str(SPEC_DIR),
                              "SYNC_FLUSHER": "Thread"})
    assert settings.sync_flusher == "thread"


def test_heartbeat_max_age_read(tmp_path: Path) -> None:
    settings = load_settings({"DATA_DIR": str(tmp_path), "SPEC_DIR": str(SPEC_DIR),
                              "FLUSHER_HEARTBEAT_MAX_AGE_SECONDS": "600"})
    assert settings.flusher_heartbeat_max_age_seconds == 600


def test_token_kept_out_of_repr(tmp_path: Path) -> None:
    settings = load_settings({"DATA_DIR": str(tmp_path), "SPEC_DIR": str(SPEC_DIR),
                              "HUBSPOT_ACCESS_TOKEN": "test-token-not-real",
                              "SHOPIFY_WEBHOOK_SECRETS": "test-secret-not-real",
                              "WOOCOMMERCE_WEBHOOK_SECRETS": "test-secret-not-real",
                              "STOREFRONT_WEBHOOK_SECRETS":
                                  "whsec_dGVzdC1zdG9yZWZyb250LWtleS1ub3QtcmVhbA=="})
    assert settings.hubspot_access_token == "test-token-not-real"
    assert "test-token-not-real" not in repr(settings)


@pytest.mark.parametrize(("variable", "value", "expected"), [
    ("CRM_TARGET", "salesforce", "is not a CRM target"),
    ("HUBSPOT_BASE_URL", "api.hubapi.com", "does not start with https://"),
    ("HUBSPOT_RATE_LIMIT_PER_10S", "0", "outside the allowed range 2 to 1000"),
    ("HUBSPOT_RATE_LIMIT_PER_10S", "fast", "is not a whole number"),
    ("HUBSPOT_SEARCH_RATE_PER_SECOND", "500", "outside the allowed range"),
    ("HUBSPOT_TIMEOUT_SECONDS", "0", "outside the allowed range"),
    ("SYNC_BATCH_WINDOW_MS", "-1", "outside the allowed range"),
    ("SYNC_MAX_ATTEMPTS", "0", "outside the allowed range"),
    ("SYNC_FLUSHER", "worker", "not a place the flusher can run"),
    ("FLUSHER_HEARTBEAT_MAX_AGE_SECONDS", "14", "outside the allowed range 15 to 86400"),
    ("FLUSHER_HEARTBEAT_MAX_AGE_SECONDS", "2m", "is not a whole number"),
    ("SYNC_BACKOFF_BASE_SECONDS", "0", "outside the allowed range"),
    ("HUBSPOT_ACCESS_TOKEN", "replace-with-a-private-app-token", "placeholder"),
    ("HUBSPOT_DAILY_LIMIT_PAUSE_SECONDS", "59", "outside the allowed range 60 to 86400"),
    ("HUBSPOT_DAILY_LIMIT_PAUSE_SECONDS", "a day", "is not a whole number"),
    ("HUBSPOT_AUTH_FAILURE_PAUSE_SECONDS", "4", "outside the allowed range 5 to 3600"),
    ("HUBSPOT_AUTH_FAILURE_PAUSE_SECONDS", "3601", "outside the allowed range 5 to 3600"),
])
def test_invalid_worker_setting(tmp_path: Path, variable: str, value: str,
                                expected: str) -> None:
    with pytest.raises(SettingsError) as raised:
        load(tmp_path, **{variable: value})
    problems = [problem for problem in raised.value.problems if problem.variable == variable]
    assert len(problems) == 1, raised.value.problems
    assert expected in problems[0].problem
    assert problems[0].fix


def test_backoff_max_below_base(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as raised:
        load(tmp_path, SYNC_BACKOFF_BASE_SECONDS="30", SYNC_BACKOFF_MAX_SECONDS="10")
    problem = raised.value.problems[0]
    assert problem.variable == "SYNC_BACKOFF_MAX_SECONDS"
    assert "below SYNC_BACKOFF_BASE_SECONDS (30)" in problem.problem


def test_token_value_never_in_message(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as raised:
        load(tmp_path, HUBSPOT_ACCESS_TOKEN="replace-with-a-private-app-token-xyz")
    assert "xyz" not in str(raised.value)
