"""Settings read from the environment only; secrets never come from files or options.

``repr`` of every settings object hides its secrets, and messages name a variable,
never its value.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from .errors import InvalidInput

ENV_EXAMPLE = "sync/.env.example"
HUBSPOT_DEFAULT_BASE_URL = "https://api.hubapi.com"
# HubSpot's burst limit for Free and Starter accounts is 100 calls per rolling 10 s per
# app; Professional and Enterprise allow 190 (HubSpot's API usage guidelines).
HUBSPOT_DEFAULT_RATE_LIMIT_PER_10S = 100
HUBSPOT_MAX_RATE_LIMIT_PER_10S = 250
# Zoho Accounts server per data centre, from Zoho's multi-DC OAuth page.
# NOTE: the UK entry comes from a secondary source.
ZOHO_ACCOUNTS_BY_DC = {
    "com": "https://accounts.zoho.com",
    "eu": "https://accounts.zoho.eu",
    "in": "https://accounts.zoho.in",
    "com.au": "https://accounts.zoho.com.au",
    "jp": "https://accounts.zoho.jp",
    "com.cn": "https://accounts.zoho.com.cn",
    "ca": "https://accounts.zohocloud.ca",
    "sa": "https://accounts.zoho.sa",
    "uk": "https://accounts.zoho.uk",
}
# Zoho limits API credits per day and concurrent calls, not calls per minute; this
# client-side pace keeps a daily run gentle on the org's shared credits.
ZOHO_DEFAULT_CALLS_PER_MINUTE = 100
WOOCOMMERCE_ROLES = ("customer", "subscriber", "all")


@dataclass(frozen=True)
class WooSettings:
    """How to reach the store's REST API."""

    url: str
    consumer_key: str = field(repr=False)
    consumer_secret: str = field(repr=False)
    auth: str
    role: str


@dataclass(frozen=True)
class HubSpotSettings:
    """How to reach one HubSpot account."""

    access_token: str = field(repr=False)
    base_url: str
    rate_limit_per_10s: int


@dataclass(frozen=True)
class ZohoSettings:
    """How to reach one Zoho CRM org through a refresh token."""

    client_id: str = field(repr=False)
    client_secret: str = field(repr=False)
    refresh_token: str = field(repr=False)
    dc: str
    accounts_url: str
    calls_per_minute: int


class _Reader:
    """Reads variables and collects every problem, so one run reports them all."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.problems: list[str] = []

    def required(self, name: str, what: str) -> str:
        value = self.environ.get(name, "").strip()
        if not value:
            absence = "is missing" if name not in self.environ else "is set but empty"
            self.problems.append(f"{name} {absence}: set it to {what}")
        return value

    def optional(self, name: str) -> str:
        return self.environ.get(name, "").strip()

    def url(self, name: str, value: str, example: str) -> str:
        parts = urlsplit(value)
        if not value:
            return value
        if parts.scheme not in ("http", "https") or not parts.hostname:
            self.problems.append(f"{name} is not a URL: set it to an address such as {example}")
        elif parts.scheme == "http" and not _is_loopback(parts.hostname):
            self.problems.append(
                f"{name} uses http:// for a host that is not this machine: use https://, "
                "because the credentials travel with every request")
        return value.rstrip("/")

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        text = self.optional(name)
        if not text:
            return default
        if not text.isdigit() or not low <= int(text) <= high:
            self.problems.append(f"{name} is {text!r}: set a whole number from {low} to {high}")
            return default
        return int(text)

    def check(self) -> None:
        if self.problems:
            raise InvalidInput("; ".join(self.problems),
                               f"export the variables (see {ENV_EXAMPLE}) or pass --env-file")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def woo_settings(environ: Mapping[str, str]) -> WooSettings:
    """Read ``WOOCOMMERCE_URL``, ``WOOCOMMERCE_CONSUMER_KEY`` and ``WOOCOMMERCE_CONSUMER_SECRET``.

    ``WOOCOMMERCE_AUTH`` (``header``, the default, or ``query`` for hosts that strip the
    Authorization header) and ``WOOCOMMERCE_CUSTOMER_ROLE`` (``customer``, the
    default, ``subscriber`` or ``all``) are optional.

    Raises:
        InvalidInput: A variable is missing or invalid; the message lists every one.
    """
    reader = _Reader(environ)
    url = reader.url("WOOCOMMERCE_URL", reader.required(
        "WOOCOMMERCE_URL", "the store's address, such as https://store.example.sa"),
        "https://store.example.sa")
    key = reader.required("WOOCOMMERCE_CONSUMER_KEY", "the REST API key (ck_...) from "
                          "WooCommerce → Settings → Advanced → REST API, with Read access")
    secret = reader.required("WOOCOMMERCE_CONSUMER_SECRET", "the secret (cs_...) shown with "
                             "that key")
    auth = reader.optional("WOOCOMMERCE_AUTH") or "header"
    if auth not in ("header", "query"):
        reader.problems.append(f"WOOCOMMERCE_AUTH is {auth!r}: set header or query")
    role = reader.optional("WOOCOMMERCE_CUSTOMER_ROLE") or "customer"
    if role not in WOOCOMMERCE_ROLES:
        reader.problems.append(f"WOOCOMMERCE_CUSTOMER_ROLE is {role!r}: set one of "
                               f"{', '.join(WOOCOMMERCE_ROLES)}")
    reader.check()
    return WooSettings(url, key, secret, auth, role)


def hubspot_settings(environ: Mapping[str, str]) -> HubSpotSettings:
    """Read ``HUBSPOT_ACCESS_TOKEN``, and optionally ``HUBSPOT_BASE_URL`` and the rate limit.

    Raises:
        InvalidInput: A variable is missing or invalid.
    """
    reader = _Reader(environ)
    token = reader.required("HUBSPOT_ACCESS_TOKEN", "the private app's access token, with "
                            "the crm.objects.contacts.write scope")
    base_url = reader.url("HUBSPOT_BASE_URL", reader.optional("HUBSPOT_BASE_URL"),
                          HUBSPOT_DEFAULT_BASE_URL) or HUBSPOT_DEFAULT_BASE_URL
    rate = reader.integer("HUBSPOT_RATE_LIMIT_PER_10S", HUBSPOT_DEFAULT_RATE_LIMIT_PER_10S, 2,
                          HUBSPOT_MAX_RATE_LIMIT_PER_10S)
    reader.check()
    return HubSpotSettings(token, base_url, rate)


def zoho_settings(environ: Mapping[str, str]) -> ZohoSettings:
    """Read ``ZOHO_CLIENT_ID``, ``ZOHO_CLIENT_SECRET``, ``ZOHO_REFRESH_TOKEN`` and ``ZOHO_DC``.

    ``ZOHO_ACCOUNTS_URL`` overrides the accounts server that ``ZOHO_DC`` selects, and
    ``ZOHO_CALLS_PER_MINUTE`` the client-side pace.

    Raises:
        InvalidInput: A variable is missing, or ``ZOHO_DC`` names no known data centre.
    """
    reader = _Reader(environ)
    client_id = reader.required("ZOHO_CLIENT_ID", "the client id of the self client in the "
                                "Zoho API console")
    client_secret = reader.required("ZOHO_CLIENT_SECRET", "that client's secret")
    refresh_token = reader.required("ZOHO_REFRESH_TOKEN", "a refresh token with the scope "
                                    "ZohoCRM.modules.contacts.ALL")
    dc = reader.required("ZOHO_DC", "the data centre of the Zoho account, such as sa for "
                         "zoho.sa").lower().lstrip(".")
    if dc and dc not in ZOHO_ACCOUNTS_BY_DC:
        reader.problems.append(f"ZOHO_DC is {dc!r}: set one of {', '.join(ZOHO_ACCOUNTS_BY_DC)}")
    accounts = reader.url("ZOHO_ACCOUNTS_URL", reader.optional("ZOHO_ACCOUNTS_URL"),
                          "https://accounts.zoho.sa")
    pace = reader.integer("ZOHO_CALLS_PER_MINUTE", ZOHO_DEFAULT_CALLS_PER_MINUTE, 2, 10000)
    reader.check()
    return ZohoSettings(client_id, client_secret, refresh_token, dc,
                        accounts or ZOHO_ACCOUNTS_BY_DC[dc], pace)


def load_env_file(path: Path, environ: dict[str, str] | None = None) -> dict[str, str]:
    """Return the environment with ``KEY=value`` lines of ``path`` added.

    Variables already set win over the file, so a scheduler's secrets are never
    replaced by a stale file. Blank lines and lines starting with ``#`` are skipped.

    Raises:
        InvalidInput: The file cannot be read or has a line without ``=``.
    """
    merged = dict(os.environ if environ is None else environ)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise InvalidInput(f"cannot read the env file {path}: {error.strerror}",
                           "pass the path of a KEY=value file, such as sync/.env") from error
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, separator, value = line.removeprefix("export ").partition("=")
        if not separator or not name.strip():
            raise InvalidInput(f"{path}, line {number}: expected KEY=value",
                               "fix or remove that line")
        merged.setdefault(name.strip(), value.strip().strip("'\""))
    return merged
