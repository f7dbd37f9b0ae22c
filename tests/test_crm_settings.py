"""Reading ``rabt crm`` credentials and endpoints from the environment (no calls are made)."""

from __future__ import annotations

import pytest

from generator.crm.settings import hubspot_settings, zoho_settings
from generator.errors import InputError
from generator.model import Lang

TOKEN = "test-token-not-real"
ZOHO = {"ZOHO_CLIENT_ID": "test-client-not-real", "ZOHO_CLIENT_SECRET": "test-secret-not-real",
        "ZOHO_REFRESH_TOKEN": "test-refresh-not-real", "ZOHO_DC": "sa"}


@pytest.mark.parametrize("url", ["http://127.0.0.1:8001", "http://[::1]:8001",
                                 "http://localhost:8001", "https://crm.invalid"])
def test_base_url_accepted(url: str) -> None:
    settings = hubspot_settings({"HUBSPOT_ACCESS_TOKEN": TOKEN, "HUBSPOT_BASE_URL": url})
    assert settings.base_url == url


@pytest.mark.parametrize("url", ["http://crm.invalid", "http://10.0.0.8:8001",
                                 "http://localhost.crm.invalid"])
def test_cleartext_base_url_rejected(url: str) -> None:
    with pytest.raises(InputError) as raised:
        hubspot_settings({"HUBSPOT_ACCESS_TOKEN": TOKEN, "HUBSPOT_BASE_URL": url})
    problem = raised.value.problems[0]
    assert problem.location == "HUBSPOT_BASE_URL"
    assert url in problem.message
    assert "unencrypted" in problem.message
    assert "https" in problem.fix


def test_cleartext_accounts_url_rejected() -> None:
    with pytest.raises(InputError) as raised:
        zoho_settings({**ZOHO, "ZOHO_ACCOUNTS_URL": "http://accounts.crm.invalid"})
    assert raised.value.problems[0].location == "ZOHO_ACCOUNTS_URL"


def test_loopback_accounts_url_accepted() -> None:
    settings = zoho_settings({**ZOHO, "ZOHO_ACCOUNTS_URL": "http://127.0.0.1:8002/"})
    assert settings.accounts_url == "http://127.0.0.1:8002"


def test_rate_error_names_settings() -> None:
    with pytest.raises(InputError) as raised:
        hubspot_settings({"HUBSPOT_ACCESS_TOKEN": TOKEN, "HUBSPOT_RATE_LIMIT_PER_10S": "many"})
    assert raised.value.summary == ("Some CRM settings in the environment are missing or "
                                    "invalid. Nothing was read or changed.")
    assert raised.value.problems[0].location == "HUBSPOT_RATE_LIMIT_PER_10S"


@pytest.mark.parametrize(("lang", "missing", "empty"), [
    ("en", "the environment variable ZOHO_DC is not set",
     "the environment variable ZOHO_REFRESH_TOKEN is set but empty"),
    ("ar", "متغير البيئة ZOHO_DC غير مضبوط",
     "متغير البيئة ZOHO_REFRESH_TOKEN مضبوط لكن قيمته فارغة"),
])
def test_empty_variable_not_called_unset(lang: Lang, missing: str, empty: str) -> None:
    environ = {**ZOHO, "ZOHO_REFRESH_TOKEN": "  "}
    del environ["ZOHO_DC"]
    with pytest.raises(InputError) as raised:
        zoho_settings(environ, lang)
    messages = {problem.location: problem.message for problem in raised.value.problems}
    assert messages["ZOHO_DC"] == missing
    assert messages["ZOHO_REFRESH_TOKEN"] == empty


def test_empty_hubspot_token_called_empty() -> None:
    with pytest.raises(InputError) as raised:
        hubspot_settings({"HUBSPOT_ACCESS_TOKEN": ""})
    assert raised.value.problems[0].message == ("the environment variable "
                                                "HUBSPOT_ACCESS_TOKEN is set but empty")
