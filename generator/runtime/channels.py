"""Behaviour event names to event keys, and support channels to CRM ticket origins."""

from __future__ import annotations

from typing import Any

from .result import TransformContext, Transformed

__all__ = ["EVENT_KEYS", "SUPPORT_ORIGINS", "channel_to_origin", "event_key"]

# Integration event key by platform event name: Shopify Web Pixels standard
# events, the storefront contract's own names and the GA4 names that storefront
# snippets often reuse.
EVENT_KEYS: dict[str, str] = {
    "page_view": "page_view",
    "page_viewed": "page_view",
    "add_to_cart": "add_to_cart",
    "product_added_to_cart": "add_to_cart",
    "checkout_started": "checkout_started",
    "begin_checkout": "checkout_started",
    "purchase_completed": "purchase_completed",
    "checkout_completed": "purchase_completed",
    "purchase": "purchase_completed",
    "return_requested": "return_requested",
}

# Support channel to the CRM's ticket source (HubSpot ``source_type``) or case
# origin (Zoho ``Case_Origin``); the custom database stores the channel itself.
# NOTE: unconfirmed. HubSpot's source_type options (CHAT, EMAIL, PHONE, FORM) and
# Zoho's default Case_Origin values (Email, Phone, Web) vary by account, and
# neither lists WhatsApp by default: add a "WhatsApp" option to Case_Origin, or
# change these values, before the first sync.
SUPPORT_ORIGINS: dict[str, dict[str, str]] = {
    "hubspot": {"whatsapp": "CHAT", "phone": "PHONE", "email": "EMAIL"},
    "zoho": {"whatsapp": "WhatsApp", "phone": "Phone", "email": "Email"},
    "custom": {"whatsapp": "whatsapp", "phone": "phone", "email": "email"},
}
_CHANNEL_ALIASES = {"wa": "whatsapp", "call": "phone", "voice": "phone", "mail": "email"}


def event_key(value: Any, context: TransformContext) -> Transformed:
    """Transform ``event_key``: map the platform's event name to the integration's event key.

    Args:
        value: The event name as sent, such as "product_added_to_cart".
        context: The transform context (unused; every transform takes one).

    Returns:
        One of page_view, add_to_cart, checkout_started, purchase_completed or
        return_requested; None with "unknown_event" for other names, or with
        "missing" for empty input.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return Transformed(value=None, raw=value, flags=("missing",))
    key = EVENT_KEYS.get(value.strip().lower()) if isinstance(value, str) else None
    if key is None:
        return Transformed(value=None, raw=value, flags=("unknown_event",))
    return Transformed(value=key, raw=value)


def channel_to_origin(value: Any, context: TransformContext) -> Transformed:
    """Transform ``channel_to_origin``: map the support channel to the CRM's ticket origin.

    Args:
        value: The channel: "whatsapp", "phone" or "email" (also "wa", "call",
            "voice", "mail").
        context: The transform context; ``context.mapping["crm"]`` picks the values.

    Returns:
        The CRM's origin value; None with "unknown_channel" for another channel,
        or with "missing" for empty input.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return Transformed(value=None, raw=value, flags=("missing",))
    channel = value.strip().lower() if isinstance(value, str) else ""
    channel = _CHANNEL_ALIASES.get(channel, channel)
    origins = SUPPORT_ORIGINS.get(str(context.mapping.get("crm")), SUPPORT_ORIGINS["custom"])
    origin = origins.get(channel)
    if origin is None:
        return Transformed(value=None, raw=value, flags=("unknown_channel",))
    return Transformed(value=origin, raw=value)
