"""Marketing channel of an order or sign-up: meta, google, tiktok, snapchat, organic or offline.

The channel is the platform that brought the visit, paid or not, because the
project segments and reports by platform. The signals are read in this order, and
the first that decides wins:

1. an offline order: Shopify ``source_name`` "pos" (point of sale) or
   "shopify_draft_order" (staff-created, such as phone orders), WooCommerce
   ``created_via`` "admin" or attribution source type "admin";
2. the UTM source (``utm_source`` in the landing URL, the WooCommerce attribution
   meta or the storefront's ``attribution``);
3. an ad click id in the landing URL (gclid, fbclid, ttclid, ScCid);
4. the referrer's host.

Without any of these the order counts as organic (a typed-in or unattributed visit).
A UTM source that names no known platform, such as "newsletter", also counts as
organic and gets the flag "unknown_source", so it can be reviewed.

When the mapping lists the client's channels (``attribution.values`` in
mapping.yaml), a channel outside that list becomes ``attribution.other_value``,
so a CRM picklist never receives a value it does not list. The flags
"unlisted_channel" and "channel:<name>" keep the classified channel visible.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .result import TransformContext, Transformed

__all__ = ["CHANNELS", "CLICK_IDS", "OFFLINE_SOURCES", "PLATFORM_WORDS", "classify_source",
           "utm_channel"]

CHANNELS = ("meta", "google", "tiktok", "snapchat", "organic", "offline")

# Words that name a platform inside a UTM source, a source name or a host name
# ("l.facebook.com", "google.com.sa", "ig_story"). YouTube counts as google
# because its ads are bought through Google Ads.
PLATFORM_WORDS: dict[str, str] = {
    **dict.fromkeys(("facebook", "fb", "instagram", "ig", "meta", "messenger"), "meta"),
    **dict.fromkeys(
        ("google", "googleads", "adwords", "gads", "googleadservices", "doubleclick",
         "youtube", "youtu"),
        "google",
    ),
    **dict.fromkeys(("tiktok",), "tiktok"),
    **dict.fromkeys(("snapchat", "snap"), "snapchat"),
}
OFFLINE_SOURCES = frozenset({
    "pos", "shopify_draft_order", "offline", "phone", "phone_order", "instore", "in_store",
})
CLICK_IDS: dict[str, str] = {
    "gclid": "google", "gbraid": "google", "wbraid": "google", "dclid": "google",
    "fbclid": "meta", "ttclid": "tiktok", "sccid": "snapchat",
}
_WORDS = re.compile(r"[a-z0-9]+")
_WOO_META_PREFIX = "_wc_order_attribution_"
_DEFAULT_OTHER_VALUE = "other"


def classify_source(text: str) -> str | None:
    """Name the channel of one source text: a UTM source, a source name or a host.

    Args:
        text: Such as "snapchat", "ig_story", "pos" or "l.facebook.com".

    Returns:
        A channel from ``CHANNELS``, or None when the text names no known platform.
    """
    source = text.strip().lower()
    if source in OFFLINE_SOURCES:
        return "offline"
    for word in _WORDS.findall(source):
        if word in PLATFORM_WORDS:
            return PLATFORM_WORDS[word]
    return None


def utm_channel(value: Any, context: TransformContext) -> Transformed:
    """Transform ``utm_channel``: classify the order's source into one of ``CHANNELS``.

    Args:
        value: The source the engine resolved: a landing URL or path with UTM
            parameters, a referrer URL, a UTM source or a Shopify ``source_name``.
        context: The transform context; the payload's other source fields are read too.

    Returns:
        The channel as the value: one of ``CHANNELS``, or the mapping's other value
        for a channel the mapping does not list. Flags: "unknown_source" when a UTM
        source names no known platform; "unlisted_channel" and "channel:<name>"
        when the channel was replaced by the other value.
    """
    channel, flags = _classify(_collect_signals(value, context))
    listed = _listed_channels(context)
    if listed is None or channel in listed[0]:
        return Transformed(value=channel, raw=value, flags=flags)
    return Transformed(value=listed[1], raw=value,
                       flags=(*flags, "unlisted_channel", f"channel:{channel}"))


def _classify(signals: _Signals) -> tuple[str, tuple[str, ...]]:
    if signals.offline:
        return "offline", ()
    if signals.utm_sources:
        channel = classify_source(signals.utm_sources[0])
        return (channel, ()) if channel is not None else ("organic", ("unknown_source",))
    if signals.click_channels:
        return signals.click_channels[0], ()
    for host in signals.referrer_hosts:
        channel = classify_source(host)
        if channel is not None and channel != "offline":
            return channel, ()
    return "organic", ()


def _listed_channels(context: TransformContext) -> tuple[frozenset[str], str] | None:
    """Return the mapping's channel values and its value for other channels, if it lists any."""
    attribution = context.mapping.get("attribution")
    if not isinstance(attribution, Mapping):
        return None
    values = attribution.get("values")
    if not isinstance(values, list):
        return None
    other = attribution.get("other_value")
    return frozenset(str(value) for value in values), str(other or _DEFAULT_OTHER_VALUE)


@dataclass
class _Signals:
    """The source signals of one payload, each list in order of trust."""

    offline: bool = False
    utm_sources: list[str] = field(default_factory=list)
    click_channels: list[str] = field(default_factory=list)
    referrer_hosts: list[str] = field(default_factory=list)


def _collect_signals(value: Any, context: TransformContext) -> _Signals:
    resolved = [value] if isinstance(value, str) and value.strip() else []
    landing, referrers, utm_sources = _payload_sources(context)
    signals = _Signals(offline=_is_offline_order(context))
    if resolved and classify_source(resolved[0]) == "offline":
        signals.offline = True

    for text in [*resolved, *landing]:
        for name, param in _query(text):
            key = name.lower()
            if key == "utm_source" and param.strip():
                signals.utm_sources.append(param)
            elif key in CLICK_IDS and param.strip():
                signals.click_channels.append(CLICK_IDS[key])
    signals.utm_sources.extend(utm_sources)
    # A bare word from the engine is a UTM source, unless it is Shopify's
    # source_name ("web", "iphone", an app id), which names a sales channel.
    source_name = context.payload.get("source_name")
    if resolved and not _looks_like_url(resolved[0]) and resolved[0] != source_name:
        signals.utm_sources.append(resolved[0])

    for text in [*resolved, *referrers]:
        host = _host(text)
        if host:
            signals.referrer_hosts.append(host)
    return signals


def _is_offline_order(context: TransformContext) -> bool:
    payload = context.payload
    if context.platform == "shopify":
        return str(payload.get("source_name") or "").lower() in ("pos", "shopify_draft_order")
    if context.platform == "woocommerce":
        source_type = _woo_meta(payload).get("source_type")
        return payload.get("created_via") == "admin" or source_type == "admin"
    return False


def _payload_sources(context: TransformContext) -> tuple[list[str], list[str], list[str]]:
    """Return the landing URLs, referrers and UTM sources the payload carries."""
    payload = context.payload
    if context.platform == "shopify":
        return _texts(payload.get("landing_site")), _texts(payload.get("referring_site")), []
    if context.platform == "woocommerce":
        meta = _woo_meta(payload)
        return (_texts(meta.get("session_entry")), _texts(meta.get("referrer")),
                _texts(meta.get("utm_source")))
    attribution = payload.get("attribution")
    if not isinstance(attribution, Mapping):
        return [], [], []
    return (_texts(attribution.get("landing_page")), _texts(attribution.get("referrer")),
            _texts(attribution.get("utm_source")))


def _woo_meta(payload: Mapping[str, Any]) -> dict[str, Any]:
    """Return the order attribution meta (WooCommerce 8.5 and later) without its key prefix."""
    entries = payload.get("meta_data")
    if not isinstance(entries, list):
        return {}
    found: dict[str, Any] = {}
    for entry in entries:
        if isinstance(entry, Mapping) and isinstance(entry.get("key"), str):
            key = entry["key"]
            if key.startswith(_WOO_META_PREFIX):
                found.setdefault(key.removeprefix(_WOO_META_PREFIX), entry.get("value"))
    return found


def _texts(value: Any) -> list[str]:
    return [value] if isinstance(value, str) and value.strip() else []


def _looks_like_url(text: str) -> bool:
    return any(mark in text for mark in ("/", "?", "=", "."))


def _query(text: str) -> Iterator[tuple[str, str]]:
    try:
        query = urlsplit(text.strip()).query
    except ValueError:
        return iter(())
    return iter(parse_qsl(query, keep_blank_values=False))


def _host(text: str) -> str:
    candidate = text.strip()
    if not _looks_like_url(candidate) or candidate.startswith(("/", "?")):
        return ""
    if "://" not in candidate:
        candidate = f"//{candidate}"
    try:
        return (urlsplit(candidate).hostname or "").lower()
    except ValueError:
        return ""
