"""Writing a consent withdrawal made in the CRM back to the store (``CONSENT_STORE_WRITEBACK``).

The worker's privacy thread sends the pushes of :mod:`storesync.consent` to the store
through :class:`StoreUnsubscriber`, which calls the store API of the customer's shop:

* Shopify: ``customerEmailMarketingConsentUpdate`` or
  ``customerSmsMarketingConsentUpdate`` sets the marketing state to ``UNSUBSCRIBED``.
  Shopify keeps no WhatsApp consent, so a WhatsApp withdrawal stays in the CRM and the
  state file.
* WooCommerce: core has no consent field, so the customer gets the meta entry that the
  project's ``consent.yaml`` reads (``_rabt_email_opt_in`` by default) set to its
  withdrawn value, and ``_rabt_<channel>_opt_in_at`` set to the time. NOTE: the
  service reads the order meta, so the store stops its own mailings only when the
  checkout snippet or plugin that writes the opt-in also reads this customer meta.

A customer of a shop whose store API settings are not set (another shop, a headless
storefront) gets nothing, and the push ends ``no_store_client``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from .customdb.consents import ConsentRule
from .record_keys import shop_part
from .store_api import CONSENT_MUTATIONS, ShopifyAdmin, WooCommerceApi, open_client
from .store_settings import store_api_platforms

# Outcomes of one write, which become the push's status.
WRITTEN = "done"
NO_STORE_CLIENT = "no_store_client"
# The store keeps no consent for the channel (WhatsApp on Shopify).
NOT_IN_STORE = "not_in_store"
DEFAULT_WITHDRAWN_VALUE = "withdrawn"
_META_FIELD = re.compile(r"^meta_data\[([^\]]+)\]$")


class StoreUnsubscriber:
    """Writes withdrawals to the Shopify shop and WooCommerce site the settings name.

    Args:
        settings: The service settings (store API credentials, ``accepted_platforms``).
        rules: The channel rules of ``consent.yaml``; they name the WooCommerce meta keys.
        clients: Store API clients by platform; opened from ``settings`` when left out.
        clock: Returns the current Unix time, written as the withdrawal time.
    """

    def __init__(self, settings: Any, rules: Sequence[ConsentRule], *,
                 clients: dict[str, ShopifyAdmin | WooCommerceApi] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.clients = clients if clients is not None else {
            platform: open_client(settings, platform)
            for platform in store_api_platforms(settings)}
        self.rules = list(rules)
        self.clock = clock
        # The shop part of record keys that each client's store writes (see record_keys).
        self.shops: dict[str, str] = {}
        if settings.shopify_shop_domain:
            self.shops[shop_part("shopify", settings.shopify_shop_domain)] = "shopify"
        if settings.woocommerce_site_url:
            self.shops[shop_part("woocommerce", settings.woocommerce_site_url)] = "woocommerce"
        # Deliveries without a shop header are keyed by the platform's name.
        for platform in ("shopify", "woocommerce"):
            self.shops.setdefault(platform, platform)

    @classmethod
    def for_settings(cls, settings: Any, rules: Sequence[ConsentRule]) -> StoreUnsubscriber | None:
        """Return a writer when ``CONSENT_STORE_WRITEBACK`` is on and a store API is set."""
        if not settings.consent_store_writeback or not store_api_platforms(settings):
            return None
        return cls(settings, rules)

    def close(self) -> None:
        """Close the store API clients."""
        for client in self.clients.values():
            client.close()

    def __call__(self, shop: str, customer_id: str, channel: str) -> str:
        """Write one withdrawal; return ``done``, ``no_store_client`` or ``not_in_store``.

        Raises:
            StoreApiError: the store rejected the call or could not be reached.
        """
        platform = self.shops.get(shop)
        client = self.clients.get(platform) if platform is not None else None
        now = datetime.fromtimestamp(self.clock(), UTC)
        if isinstance(client, ShopifyAdmin):
            if channel not in CONSENT_MUTATIONS:
                return NOT_IN_STORE
            client.unsubscribe_marketing(customer_id, channel, now)
            return WRITTEN
        if isinstance(client, WooCommerceApi):
            key, value = self.woocommerce_meta(channel)
            client.update_customer_meta(customer_id, {
                key: value, f"{key}_at": now.strftime("%Y-%m-%dT%H:%M:%SZ")})
            return WRITTEN
        return NO_STORE_CLIENT

    def woocommerce_meta(self, channel: str) -> tuple[str, str]:
        """Return the meta key that contains the channel's opt-in and its withdrawn value."""
        for rule in self.rules:
            found = _META_FIELD.match(rule.field)
            if rule.channel != channel or found is None:
                continue
            withdrawn = [value for value, meaning in rule.states.items()
                         if meaning == "withdrawn"]
            return found.group(1), withdrawn[0] if withdrawn else DEFAULT_WITHDRAWN_VALUE
        return f"_rabt_{channel}_opt_in", DEFAULT_WITHDRAWN_VALUE
