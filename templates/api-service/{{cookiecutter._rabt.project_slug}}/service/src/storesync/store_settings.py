"""Settings of the store API jobs: reconciliation, webhook subscription checks and backfill.

All of them are optional. A platform's jobs run only while its store API credentials
are set: ``SHOPIFY_SHOP_DOMAIN`` with ``SHOPIFY_ADMIN_ACCESS_TOKEN``, or
``WOOCOMMERCE_SITE_URL`` with the consumer key and secret. The subscription check also
needs ``PUBLIC_BASE_URL``. ``storesync.settings.load_settings`` calls
:func:`store_api_settings` with its reader, so problems are reported with all others.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from . import logs

if TYPE_CHECKING:
    from .settings import Settings, _Reader

# NOTE: a pinned Admin API version; Shopify supports each for about a year, so move it
# forward (SHOPIFY_API_VERSION) before Shopify retires it.
DEFAULT_SHOPIFY_API_VERSION = "2025-10"
SHOPIFY_API_VERSION_PATTERN = re.compile(r"^\d{4}-(01|04|07|10)$")
SHOP_DOMAIN_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]*\.myshopify\.com$")
DEFAULT_STORE_API_TIMEOUT_SECONDS = 30
DEFAULT_RECONCILE_INTERVAL_SECONDS = 900
MIN_RECONCILE_INTERVAL_SECONDS = 60
# Updates that land while a page is being read, or whose updated_at is a little behind
# the clock, are caught by reading this far back behind the high-water mark.
DEFAULT_RECONCILE_OVERLAP_SECONDS = 300
# With no high-water mark yet, the first run reads this far back.
DEFAULT_RECONCILE_FIRST_LOOKBACK_HOURS = 24
DEFAULT_SUBSCRIPTION_CHECK_INTERVAL_SECONDS = 3600
LOOPBACK_NAMES = frozenset({"127.0.0.1", "::1", "localhost"})
PLACEHOLDER_PREFIX = "replace-with"


def _is_loopback_url(url: str) -> bool:
    return (urlsplit(url).hostname or "") in LOOPBACK_NAMES


def _https_url(reader: _Reader, name: str, example: str) -> str | None:
    """Read a URL that must use HTTPS, except on a loopback address (stand-ins and tests)."""
    url = reader.text(name)
    if url is None:
        return None
    url = url.rstrip("/")
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and _is_loopback_url(url):
        return url
    reader.add(name, f"{url!r} is not an https:// URL.",
               f"set {name} to an https:// address, e.g. {name}={example}; plain http:// is "
               "accepted only for 127.0.0.1, [::1] or localhost.")
    return None


def _secret(reader: _Reader, name: str) -> str | None:
    value = reader.text(name)
    if value is None:
        return None
    logs.register_secret(value)
    if PLACEHOLDER_PREFIX in value:
        reader.add(name, "is still the placeholder from .env.example.",
                   f"set {name} to the real value, or remove it to turn the store API jobs off.")
        return None
    return value


def _shopify(reader: _Reader) -> dict[str, Any]:
    domain = (reader.text("SHOPIFY_SHOP_DOMAIN") or "").lower() or None
    domain_set = domain is not None
    if domain is not None and not SHOP_DOMAIN_PATTERN.match(domain):
        reader.add("SHOPIFY_SHOP_DOMAIN", f"{domain!r} is not a *.myshopify.com domain.",
                   "set the shop's permanent domain, e.g. SHOPIFY_SHOP_DOMAIN="
                   "demo-store.myshopify.com (not the storefront's own domain).")
        domain = None
    token = _secret(reader, "SHOPIFY_ADMIN_ACCESS_TOKEN")
    if domain_set != (reader.text("SHOPIFY_ADMIN_ACCESS_TOKEN") is not None):
        missing = "SHOPIFY_SHOP_DOMAIN" if not domain_set else "SHOPIFY_ADMIN_ACCESS_TOKEN"
        reader.add(missing, "is not set, and the other Shopify Admin API setting is.",
                   "set both SHOPIFY_SHOP_DOMAIN and SHOPIFY_ADMIN_ACCESS_TOKEN to turn "
                   "reconciliation on, or neither to leave it off.")
    version = reader.text("SHOPIFY_API_VERSION") or DEFAULT_SHOPIFY_API_VERSION
    if not SHOPIFY_API_VERSION_PATTERN.match(version):
        reader.add("SHOPIFY_API_VERSION", f"{version!r} is not an Admin API version.",
                   "use a quarterly version such as SHOPIFY_API_VERSION="
                   f"{DEFAULT_SHOPIFY_API_VERSION}.")
        version = DEFAULT_SHOPIFY_API_VERSION
    return {"shopify_shop_domain": domain, "shopify_admin_access_token": token,
            "shopify_api_version": version,
            "shopify_admin_url": _https_url(reader, "SHOPIFY_ADMIN_URL",
                                            "https://demo-store.myshopify.com")}


def _woocommerce(reader: _Reader) -> dict[str, Any]:
    site = _https_url(reader, "WOOCOMMERCE_SITE_URL", "https://shop.example.sa")
    key = _secret(reader, "WOOCOMMERCE_CONSUMER_KEY")
    secret = _secret(reader, "WOOCOMMERCE_CONSUMER_SECRET")
    names = ("WOOCOMMERCE_SITE_URL", "WOOCOMMERCE_CONSUMER_KEY", "WOOCOMMERCE_CONSUMER_SECRET")
    present = [reader.text(name) is not None for name in names]
    if any(present) and not all(present):
        missing = [name for name, is_set in zip(names, present, strict=True) if not is_set]
        reader.add(missing[0], "is not set, and other WooCommerce REST API settings are.",
                   "set WOOCOMMERCE_SITE_URL, WOOCOMMERCE_CONSUMER_KEY and "
                   "WOOCOMMERCE_CONSUMER_SECRET together (a key with read/write access), or "
                   "none of them to leave reconciliation off.")
    return {"woocommerce_site_url": site, "woocommerce_consumer_key": key,
            "woocommerce_consumer_secret": secret}


def store_api_settings(reader: _Reader) -> dict[str, Any]:
    """Return the store API fields of ``Settings``, adding problems to ``reader``."""
    found = {**_shopify(reader), **_woocommerce(reader)}
    found.update({
        "store_api_timeout_seconds": reader.integer(
            "STORE_API_TIMEOUT_SECONDS", DEFAULT_STORE_API_TIMEOUT_SECONDS, 1, 300),
        "reconcile_interval_seconds": reader.integer(
            "RECONCILE_INTERVAL_SECONDS", DEFAULT_RECONCILE_INTERVAL_SECONDS,
            MIN_RECONCILE_INTERVAL_SECONDS, 86_400),
        "reconcile_overlap_seconds": reader.integer(
            "RECONCILE_OVERLAP_SECONDS", DEFAULT_RECONCILE_OVERLAP_SECONDS, 0, 86_400),
        "reconcile_first_lookback_hours": reader.integer(
            "RECONCILE_FIRST_LOOKBACK_HOURS", DEFAULT_RECONCILE_FIRST_LOOKBACK_HOURS, 1, 24 * 60),
        "public_base_url": _https_url(reader, "PUBLIC_BASE_URL",
                                      "https://hooks.example.sa"),
        "subscription_check_interval_seconds": reader.integer(
            "SUBSCRIPTION_CHECK_INTERVAL_SECONDS", DEFAULT_SUBSCRIPTION_CHECK_INTERVAL_SECONDS,
            MIN_RECONCILE_INTERVAL_SECONDS, 86_400),
    })
    return found


def store_api_platforms(settings: Settings) -> tuple[str, ...]:
    """Return the accepted platforms whose store API credentials are set."""
    found = []
    if "shopify" in settings.accepted_platforms and settings.shopify_shop_domain and \
            settings.shopify_admin_access_token:
        found.append("shopify")
    if "woocommerce" in settings.accepted_platforms and settings.woocommerce_site_url and \
            settings.woocommerce_consumer_key and settings.woocommerce_consumer_secret:
        found.append("woocommerce")
    return tuple(found)


def jobs_status(settings: Settings) -> dict[str, str]:
    """Return, per accepted store platform, whether its jobs run and why not, for /readyz."""
    status: dict[str, str] = {}
    on = store_api_platforms(settings)
    for platform in ("shopify", "woocommerce"):
        if platform not in settings.accepted_platforms:
            continue
        if platform not in on:
            status[platform] = "off: store API credentials not set"
        elif settings.public_base_url is None:
            status[platform] = "reconciliation on; subscription check off: PUBLIC_BASE_URL not set"
        else:
            status[platform] = "on"
    return status
