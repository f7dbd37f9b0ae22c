"""The webhook subscription check: list the store's subscriptions and re-create missing ones.

A store can stop sending webhooks without a word: Shopify deletes a subscription made
through the Admin API after repeated failed deliveries, and WooCommerce sets a webhook
to ``disabled`` after more than 5 failures in a row. This job lists the store's
subscriptions and compares them with the topics the project maps (the intake's accepted
topics whose entities the field map enables) at ``PUBLIC_BASE_URL/webhooks/<platform>``.
It creates each missing one and re-activates a paused or disabled WooCommerce webhook.
Each repair is logged at ERROR with the topic, because events may have been lost in
between; reconciliation picks those up.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import metrics
from .runtime.engine import TOPICS
from .settings import Settings
from .store_api import ShopifyAdmin, StoreApiError, WooCommerceApi

log = logging.getLogger("storesync.subscriptions")

# Privacy topics are set in the app's configuration, not through the Admin API.
PRIVACY_TOPICS = frozenset({"customers/data_request", "customers/redact", "shop/redact"})
WEBHOOK_NAME = "storesync"


@dataclass
class CheckResult:
    """Findings and repairs of one subscription check of one store.

    Attributes:
        platform: ``shopify`` or ``woocommerce``.
        expected: The topics the project needs.
        created: Topics that had no subscription and were subscribed.
        reactivated: WooCommerce topics whose webhook was paused or disabled.
        failed: Topic → the error, for subscriptions the store refused.
    """

    platform: str
    expected: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    reactivated: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def needed_topics(platform: str, mapping: Mapping[str, Any]) -> list[str]:
    """Return the store webhook topics the project maps, in the engine's order.

    A topic counts when every entity it feeds, other than the contact, is enabled in
    the field map (so ``checkouts/*`` only when the event entity is).
    """
    entities = mapping.get("entities") or {}
    separator = "/" if platform == "shopify" else "."
    found = []
    for topic, route in TOPICS.get(platform, {}).items():
        if separator not in topic or topic in PRIVACY_TOPICS:
            continue
        others = [name for name in route.entities if name != "contact"]
        if all(bool((entities.get(name) or {}).get("enabled", True)) and name in entities
               for name in others):
            found.append(topic)
    return found


def shopify_topic_enum(topic: str) -> str:
    """Return the ``WebhookSubscriptionTopic`` value of a topic, e.g. ``ORDERS_CREATE``.

    The rule (upper case, ``/`` to ``_``) gives the values of Shopify's enum for every
    mapped topic, the consent topics included: ``customers_marketing_consent/update``
    is ``CUSTOMERS_MARKETING_CONSENT_UPDATE``.
    """
    return topic.replace("/", "_").upper()


def _alert(platform: str, topic: str, action: str, url: str) -> None:
    metrics.SUBSCRIPTIONS_REPAIRED.labels(source=platform, action=action).inc()
    log.error("webhook subscription was missing or inactive; events may have been lost until "
              "now, and reconciliation will pick them up", extra={
                  "source": platform, "topic": topic, "action": action, "delivery_url": url})


def check_shopify(client: ShopifyAdmin, topics: list[str], url: str) -> CheckResult:
    """Create the Shopify subscriptions of ``topics`` that do not point at ``url``."""
    result = CheckResult("shopify", expected=list(topics))
    present = {str(item.get("topic")) for item in client.webhook_subscriptions()
               if item.get("uri") == url}
    for topic in topics:
        enum = shopify_topic_enum(topic)
        if enum in present:
            continue
        try:
            client.create_webhook_subscription(enum, url)
        except StoreApiError as error:
            result.failed[topic] = str(error)
            log.error("webhook subscription could not be created", extra={
                "source": "shopify", "topic": topic, "error": str(error)})
            continue
        result.created.append(topic)
        _alert("shopify", topic, "created", url)
    return result


def check_woocommerce(client: WooCommerceApi, topics: list[str], url: str,
                      secret: str | None) -> CheckResult:
    """Create or re-activate the WooCommerce webhooks of ``topics`` that deliver to ``url``."""
    result = CheckResult("woocommerce", expected=list(topics))
    hooks = [item for item in client.webhooks() if item.get("delivery_url") == url]
    for topic in topics:
        mine = [item for item in hooks if item.get("topic") == topic]
        try:
            if any(item.get("status") == "active" for item in mine):
                continue
            if mine:
                client.activate_webhook(int(mine[0]["id"]))
                result.reactivated.append(topic)
                _alert("woocommerce", topic, "reactivated", url)
                continue
            client.create_webhook(topic, url, secret, f"{WEBHOOK_NAME} {topic}")
        except StoreApiError as error:
            result.failed[topic] = str(error)
            log.error("webhook could not be created or re-activated", extra={
                "source": "woocommerce", "topic": topic, "error": str(error)})
            continue
        result.created.append(topic)
        _alert("woocommerce", topic, "created", url)
    return result


def check_all(settings: Settings, mapping: Mapping[str, Any], transport: Any = None,
              sleep: Any = None) -> list[CheckResult]:
    """Check every store with credentials; needs ``PUBLIC_BASE_URL``.

    Returns:
        One result per store that could be listed; a store that cannot is logged.
    """
    from .reconcile import store_readers

    if settings.public_base_url is None:
        return []
    results = []
    kwargs = {"sleep": sleep} if sleep is not None else {}
    for platform, (_, client, _) in store_readers(settings, transport, **kwargs).items():
        url = f"{settings.public_base_url}/webhooks/{platform}"
        topics = needed_topics(platform, mapping)
        try:
            if platform == "shopify":
                results.append(check_shopify(client, topics, url))
            else:
                secrets = settings.woocommerce_webhook_secrets
                secret = secrets[0].decode("utf-8") if secrets else None
                results.append(check_woocommerce(client, topics, url, secret))
        except StoreApiError as error:
            metrics.RECONCILE_FAILURES.labels(source=platform).inc()
            log.error("webhook subscriptions could not be listed", extra={
                "source": platform, "error": str(error)})
        finally:
            client.close()
    return results
