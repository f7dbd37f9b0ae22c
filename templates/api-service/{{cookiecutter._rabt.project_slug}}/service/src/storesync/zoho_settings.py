"""Zoho CRM settings of the service (``CRM_TARGET=zoho``), read by :mod:`storesync.settings`.

Without ``ZOHO_REFRESH_TOKEN`` the service is in sandbox mode and talks to the local
Zoho stand-in; ``ZOHO_ACCOUNTS_URL`` then must point at it. With the token,
``ZOHO_CLIENT_ID`` and ``ZOHO_CLIENT_SECRET`` are required too. The edition sets the
daily credit budget and the concurrency limit from Zoho's API limits table
(:mod:`storesync.standins.zoho_config`). ``ZOHO_CREDITS_PER_DAY`` and
``ZOHO_CONCURRENCY`` override them when Zoho changes the table or sells add-on credits.
"""

from __future__ import annotations

from typing import Any, Protocol
from urllib.parse import urlsplit

from . import logs
from .runtime.zoho_regions import ZOHO_ACCOUNTS_BY_DC
from .standins.zoho_config import EDITIONS

DEFAULT_ZOHO_DC = "sa"
DEFAULT_ZOHO_EDITION = "enterprise"
# Zoho's daily credits grow with the user licences; 10 is a small team.
DEFAULT_ZOHO_USER_LICENCES = 10
MAX_ZOHO_USER_LICENCES = 100_000
DEFAULT_ZOHO_TIMEOUT_SECONDS = 10
# The flusher's pauses, as HubSpot's: after the credits of the rolling 24 hours are used
# up, and after Zoho rejects the access token.
DEFAULT_ZOHO_CREDITS_PAUSE_SECONDS = 900
MIN_ZOHO_CREDITS_PAUSE_SECONDS = 60
MAX_ZOHO_CREDITS_PAUSE_SECONDS = 86_400
DEFAULT_ZOHO_AUTH_FAILURE_PAUSE_SECONDS = 60
MIN_ZOHO_AUTH_FAILURE_PAUSE_SECONDS = 5
MAX_ZOHO_AUTH_FAILURE_PAUSE_SECONDS = 3600
MAX_ZOHO_CREDITS_PER_DAY = 100_000_000
MAX_ZOHO_CONCURRENCY = 100
PLACEHOLDER_PREFIX = "replace-with"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
SECRET_NAMES = ("ZOHO_CLIENT_ID", "ZOHO_CLIENT_SECRET", "ZOHO_REFRESH_TOKEN")


class Reader(Protocol):
    """The part of the settings reader this module uses."""

    def text(self, name: str) -> str | None: ...

    def add(self, name: str, problem: str, fix: str) -> None: ...

    def integer(self, name: str, default: int, minimum: int, maximum: int,
                example: int | None = None) -> int: ...


def zoho_settings_from(reader: Reader, crm_target: str) -> dict[str, Any]:
    """Return the Zoho fields of the settings, adding problems to ``reader``."""
    secrets = _credentials(reader, crm_target)
    return {
        "zoho_dc": _data_centre(reader),
        **secrets,
        "zoho_accounts_url": _accounts_url(reader, secrets["zoho_refresh_token"] is None),
        "zoho_edition": _edition(reader),
        "zoho_user_licences": reader.integer("ZOHO_USER_LICENCES", DEFAULT_ZOHO_USER_LICENCES, 0,
                                             MAX_ZOHO_USER_LICENCES),
        "zoho_credits_per_day": (reader.integer("ZOHO_CREDITS_PER_DAY", 0, 1,
                                                MAX_ZOHO_CREDITS_PER_DAY, example=250_000)
                                 if reader.text("ZOHO_CREDITS_PER_DAY") else None),
        "zoho_concurrency": (reader.integer("ZOHO_CONCURRENCY", 0, 1, MAX_ZOHO_CONCURRENCY,
                                            example=20)
                             if reader.text("ZOHO_CONCURRENCY") else None),
        "zoho_timeout_seconds": reader.integer("ZOHO_TIMEOUT_SECONDS",
                                               DEFAULT_ZOHO_TIMEOUT_SECONDS, 1, 300),
        "zoho_credits_pause_seconds": reader.integer(
            "ZOHO_CREDITS_PAUSE_SECONDS", DEFAULT_ZOHO_CREDITS_PAUSE_SECONDS,
            MIN_ZOHO_CREDITS_PAUSE_SECONDS, MAX_ZOHO_CREDITS_PAUSE_SECONDS),
        "zoho_auth_failure_pause_seconds": reader.integer(
            "ZOHO_AUTH_FAILURE_PAUSE_SECONDS", DEFAULT_ZOHO_AUTH_FAILURE_PAUSE_SECONDS,
            MIN_ZOHO_AUTH_FAILURE_PAUSE_SECONDS, MAX_ZOHO_AUTH_FAILURE_PAUSE_SECONDS),
    }


def _credentials(reader: Reader, crm_target: str) -> dict[str, str | None]:
    values = {name: reader.text(name) for name in SECRET_NAMES}
    placeholders = set()
    for name, value in values.items():
        if value is None:
            continue
        logs.register_secret(value)
        if PLACEHOLDER_PREFIX in value:
            reader.add(name, "is still the placeholder from .env.example.",
                       "set it from the Zoho API console (api-console.zoho.<dc>), or remove "
                       "ZOHO_REFRESH_TOKEN to run the sandbox against the local Zoho stand-in.")
            placeholders.add(name)
            values[name] = None
    if crm_target == "zoho" and values["ZOHO_REFRESH_TOKEN"] is not None:
        for name in ("ZOHO_CLIENT_ID", "ZOHO_CLIENT_SECRET"):
            if values[name] is None and name not in placeholders:
                reader.add(name, "is not set, and ZOHO_REFRESH_TOKEN is.",
                           f"set {name} to the value of the Zoho client the refresh token "
                           "was made with.")
    return {"zoho_client_id": values["ZOHO_CLIENT_ID"],
            "zoho_client_secret": values["ZOHO_CLIENT_SECRET"],
            "zoho_refresh_token": values["ZOHO_REFRESH_TOKEN"]}


def _data_centre(reader: Reader) -> str:
    dc = (reader.text("ZOHO_DC") or DEFAULT_ZOHO_DC).lower().lstrip(".")
    if dc not in ZOHO_ACCOUNTS_BY_DC:
        reader.add("ZOHO_DC", f"{dc!r} is not a Zoho data centre.",
                   f"set ZOHO_DC to one of {', '.join(ZOHO_ACCOUNTS_BY_DC)}: the end of the "
                   "domain the Zoho account signs in on (zoho.sa is sa).")
        return DEFAULT_ZOHO_DC
    return dc


def _accounts_url(reader: Reader, sandbox: bool) -> str | None:
    """Read ZOHO_ACCOUNTS_URL: https, or http on this machine (the stand-in)."""
    url = reader.text("ZOHO_ACCOUNTS_URL")
    if url is None:
        return None
    parts = urlsplit(url)
    loopback = (parts.hostname or "") in LOOPBACK_HOSTS
    if parts.scheme not in ("https", "http") or not parts.netloc or \
            (parts.scheme == "http" and not loopback):
        reader.add("ZOHO_ACCOUNTS_URL", f"{url!r} is not an https URL or a local http one.",
                   "remove it to use the accounts server of ZOHO_DC, or set "
                   "http://127.0.0.1:PORT of the local Zoho stand-in.")
        return None
    if sandbox and not loopback:
        reader.add("ZOHO_ACCOUNTS_URL", f"{url!r} is not a local stand-in, and the service is in "
                   "sandbox mode (ZOHO_REFRESH_TOKEN is not set).",
                   "set ZOHO_REFRESH_TOKEN with the client id and secret, or point "
                   "ZOHO_ACCOUNTS_URL at the local stand-in.")
        return None
    return url.rstrip("/")


def _edition(reader: Reader) -> str:
    edition = (reader.text("ZOHO_EDITION") or DEFAULT_ZOHO_EDITION).lower()
    if edition not in EDITIONS:
        reader.add("ZOHO_EDITION", f"{edition!r} is not a Zoho CRM edition.",
                   f"set ZOHO_EDITION to one of {', '.join(EDITIONS)} (Zoho One counts as "
                   "enterprise, CRM Plus as ultimate).")
        return DEFAULT_ZOHO_EDITION
    return edition
