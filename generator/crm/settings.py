"""Credentials and endpoints for ``rabt crm``, read only from the environment.

Nothing here is written to disk or printed: the dataclasses hide their secrets
from ``repr``, and error messages name a variable, never its value.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from generator.crm.hubspot_scopes import PRIVATE_APPS_MENU, scopes_for_desired
from generator.errors import InputError, Problem
from generator.i18n import join_list, message
from generator.model import Lang
from generator.runtime.zoho_regions import ZOHO_ACCOUNTS_BY_DC

HUBSPOT_DEFAULT_BASE_URL = "https://api.hubapi.com"
# HubSpot's burst limit for Free and Starter accounts: 100 calls per rolling 10 s per
# app (usage guidelines page); Professional and Enterprise allow 190.
HUBSPOT_DEFAULT_RATE_LIMIT_PER_10S = 100
HUBSPOT_MAX_RATE_LIMIT_PER_10S = 250


@dataclass(frozen=True)
class HubSpotSettings:
    """How to reach one HubSpot account."""

    access_token: str = field(repr=False)
    base_url: str
    rate_limit_per_10s: int


@dataclass(frozen=True)
class ZohoSettings:
    """How to reach one Zoho CRM account through a refresh token."""

    client_id: str = field(repr=False)
    client_secret: str = field(repr=False)
    refresh_token: str = field(repr=False)
    dc: str
    accounts_url: str


def hubspot_settings(environ: Mapping[str, str], lang: Lang = "en",
                     desired: Mapping[str, Any] | None = None, *,
                     setup_guide: bool = False) -> HubSpotSettings:
    """Read ``HUBSPOT_ACCESS_TOKEN``, ``HUBSPOT_BASE_URL`` and ``HUBSPOT_RATE_LIMIT_PER_10S``.

    The fix for a missing token names the scopes that applying ``desired`` needs, or
    every scope Rabt uses when no desired state is given. It points to the connector
    setup guide only when ``setup_guide`` is true, that is, when the project has one.

    Raises:
        InputError: The token is missing, or a variable has an invalid value.
    """
    problems = []
    token = environ.get("HUBSPOT_ACCESS_TOKEN", "").strip()
    if not token:
        problems.append(Problem("HUBSPOT_ACCESS_TOKEN",
                                absent_text(environ, "HUBSPOT_ACCESS_TOKEN", lang),
                                message("crm_hubspot_token_fix", lang,
                                        scopes=scopes_for_desired(desired or {}),
                                        menu=PRIVATE_APPS_MENU[lang],
                                        guide=message("crm_hubspot_token_guide", lang)
                                        if setup_guide else "")))
    base_url = environ.get("HUBSPOT_BASE_URL", "").strip() or HUBSPOT_DEFAULT_BASE_URL
    problems += url_problems("HUBSPOT_BASE_URL", base_url, lang)
    rate_text = environ.get("HUBSPOT_RATE_LIMIT_PER_10S", "").strip()
    rate = HUBSPOT_DEFAULT_RATE_LIMIT_PER_10S
    if rate_text:
        if not rate_text.isdigit() or not 2 <= int(rate_text) <= HUBSPOT_MAX_RATE_LIMIT_PER_10S:
            problems.append(Problem("HUBSPOT_RATE_LIMIT_PER_10S", message(
                "crm_env_rate_invalid", lang, value=rate_text,
                maximum=HUBSPOT_MAX_RATE_LIMIT_PER_10S), message("crm_env_rate_fix", lang)))
        else:
            rate = int(rate_text)
    if problems:
        raise InputError(message("crm_env_invalid", lang), problems)
    return HubSpotSettings(access_token=token, base_url=base_url.rstrip("/"),
                           rate_limit_per_10s=rate)


def zoho_settings(environ: Mapping[str, str], lang: Lang = "en") -> ZohoSettings:
    """Read ``ZOHO_CLIENT_ID``, ``ZOHO_CLIENT_SECRET``, ``ZOHO_REFRESH_TOKEN``, ``ZOHO_DC``.

    ``ZOHO_ACCOUNTS_URL`` overrides the accounts server that ``ZOHO_DC`` selects.

    Raises:
        InputError: A variable is missing, or ``ZOHO_DC`` names no known data centre.
    """
    problems = []
    values = {}
    for name in ("ZOHO_CLIENT_ID", "ZOHO_CLIENT_SECRET", "ZOHO_REFRESH_TOKEN", "ZOHO_DC"):
        values[name] = environ.get(name, "").strip()
        if not values[name]:
            fix = "crm_zoho_dc_fix" if name == "ZOHO_DC" else "crm_zoho_client_fix"
            allowed = join_list(ZOHO_ACCOUNTS_BY_DC, lang)
            problems.append(Problem(name, absent_text(environ, name, lang),
                                    message(fix, lang, allowed=allowed)))
    dc = values["ZOHO_DC"].lower().lstrip(".")
    if dc and dc not in ZOHO_ACCOUNTS_BY_DC:
        problems.append(Problem("ZOHO_DC", message("crm_zoho_dc_unknown", lang, value=dc),
                                message("crm_zoho_dc_fix", lang,
                                        allowed=join_list(ZOHO_ACCOUNTS_BY_DC, lang))))
    accounts_url = environ.get("ZOHO_ACCOUNTS_URL", "").strip()
    if accounts_url:
        problems += url_problems("ZOHO_ACCOUNTS_URL", accounts_url, lang)
    if problems:
        raise InputError(message("crm_env_invalid", lang), problems)
    return ZohoSettings(
        client_id=values["ZOHO_CLIENT_ID"], client_secret=values["ZOHO_CLIENT_SECRET"],
        refresh_token=values["ZOHO_REFRESH_TOKEN"], dc=dc,
        accounts_url=(accounts_url or ZOHO_ACCOUNTS_BY_DC[dc]).rstrip("/"))


def absent_text(environ: Mapping[str, str], name: str, lang: Lang = "en") -> str:
    """Describe a required variable without a value: not set, or set to blank text."""
    entry = "crm_env_missing" if name not in environ else "crm_env_empty"
    return message(entry, lang, name=name)


def url_problems(name: str, value: str, lang: Lang = "en") -> list[Problem]:
    """Check the base URL ``value`` of ``name``: https anywhere, plain http only on this machine.

    The token or the Zoho client secret goes with every call, so plain http is
    allowed only for the loopback stand-ins.
    """
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return [Problem(name, message("crm_env_url_invalid", lang, value=value),
                        message("crm_env_url_fix", lang))]
    if parts.scheme == "http" and not _is_loopback(parts.hostname or ""):
        return [Problem(name, message("crm_env_url_cleartext", lang, value=value),
                        message("crm_env_url_cleartext_fix", lang))]
    return []


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
