"""Build the Delivery of a verified request and find any reason to quarantine it.

The intake runs this on every verified request, so it stays cheap. A Shopify or
WooCommerce body is checked for valid UTF-8 and for the shape of a JSON object
(first and last non-blank bytes ``{`` and ``}``). It is not parsed, because parsing
a large order costs more than everything else the intake does. The worker parses
it and quarantines a body that is not valid JSON after all. A storefront body is
parsed here, because its topic is the body's ``event`` field.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .delivery import Delivery, body_digest_id
from .runtime.engine import json_type
from .signatures import header_value

# Delivery id headers of each platform, in order of preference. Shopify's event id is
# the same on every delivery of one event, and its webhook id is the fallback.
DELIVERY_ID_HEADERS = {
    "shopify": ("X-Shopify-Event-Id", "X-Shopify-Webhook-Id"),
    "woocommerce": ("X-WC-Webhook-Delivery-ID",),
    "storefront": ("webhook-id",),
}
TOPIC_HEADERS = {"shopify": "X-Shopify-Topic", "woocommerce": "X-WC-Webhook-Topic"}
SHOP_HEADERS = {"shopify": "X-Shopify-Shop-Domain", "woocommerce": "X-WC-Webhook-Source"}
# JSON allows these four bytes around a value.
JSON_BLANKS = b" \t\r\n"


@dataclass(frozen=True)
class Inspection:
    """A verified delivery, with the reason to quarantine it when it cannot be processed."""

    delivery: Delivery
    problem: str | None
    raw_body: bytes


def iso_time(timestamp: float) -> str:
    """Return a Unix time as ISO 8601 UTC with milliseconds and a ``Z``."""
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat(timespec="milliseconds") \
        .replace("+00:00", "Z")


def header_topic(source: str, headers: Mapping[str, str]) -> str | None:
    """Return the topic a platform sends in a header, or None (always None for the storefront)."""
    name = TOPIC_HEADERS.get(source)
    if name is None:
        return None
    return (header_value(headers, name) or "").strip() or None


def inspect_delivery(source: str, headers: Mapping[str, str], body: bytes, now: float,
                     store_id: str | None, mapped_topics: frozenset[str]) -> Inspection:
    """Build the Delivery of a verified request and find any reason to quarantine it.

    Args:
        source: ``shopify``, ``woocommerce`` or ``storefront``.
        headers: The request headers (names in any case).
        body: The raw body, already verified.
        now: The time of receipt, in Unix seconds.
        store_id: The ``STORE_ID`` setting, the shop of storefront deliveries.
        mapped_topics: The topics the worker maps for ``source``.
    """
    problem: str | None = None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = body.decode("utf-8", "replace")
        problem = "the body is not valid UTF-8"
    if source in TOPIC_HEADERS:
        topic = header_topic(source, headers)
        if problem is None:
            problem = _object_shape_problem(body)
    else:
        parsed, parse_problem = _parse(text) if problem is None else (None, None)
        problem = problem or parse_problem
        topic = _event_name(parsed)
    if problem is None:
        problem = _topic_problem(source, topic, mapped_topics)
    delivery = Delivery(
        delivery_id=delivery_id(source, headers, body),
        source=source,
        topic=topic or "",
        shop=delivery_shop(source, headers, store_id),
        received_at=iso_time(now),
        triggered_at=_triggered_at(source, headers),
        body=text,
    )
    return Inspection(delivery=delivery, problem=problem, raw_body=body)


def _object_shape_problem(body: bytes) -> str | None:
    """Return why ``body`` cannot be a JSON object, judged by its first and last bytes."""
    stripped = body.strip(JSON_BLANKS)
    if stripped[:1] == b"{" and stripped[-1:] == b"}":
        return None
    if not stripped:
        return "the body is empty, not a JSON object"
    if stripped[:1] == b"[":
        return "the body is a JSON array, not an object"
    return "the body is not a JSON object"


def _parse(text: str) -> tuple[Any, str | None]:
    try:
        parsed = json.loads(text)
    except ValueError:
        return None, "the body is not valid JSON"
    if not isinstance(parsed, dict):
        return parsed, f"the body is a JSON {json_type(parsed)}, not an object"
    return parsed, None


def _event_name(parsed: Any) -> str | None:
    event = parsed.get("event") if isinstance(parsed, dict) else None
    if not isinstance(event, str):
        return None
    return event.strip() or None


def _topic_problem(source: str, topic: str | None, mapped_topics: frozenset[str]) -> str | None:
    if topic is None:
        where = (f"the {TOPIC_HEADERS[source]} header" if source in TOPIC_HEADERS
                 else "the body's event field")
        return f"no topic: {where} is missing"
    if topic not in mapped_topics:
        return f"topic {topic!r} is not one this service maps for {source}"
    return None


def delivery_id(source: str, headers: Mapping[str, str], body: bytes) -> str:
    """Return the dedupe id of a delivery: the platform's id header, else the body's digest."""
    for name in DELIVERY_ID_HEADERS[source]:
        value = (header_value(headers, name) or "").strip()
        if value:
            return value
    return body_digest_id(body)


def delivery_shop(source: str, headers: Mapping[str, str], store_id: str | None) -> str | None:
    """Return the shop a delivery comes from: the platform's shop header, or ``STORE_ID``."""
    if source in SHOP_HEADERS:
        return (header_value(headers, SHOP_HEADERS[source]) or "").strip() or None
    return store_id


def _triggered_at(source: str, headers: Mapping[str, str]) -> str | None:
    if source == "shopify":
        return (header_value(headers, "X-Shopify-Triggered-At") or "").strip() or None
    if source == "storefront":
        raw = (header_value(headers, "webhook-timestamp") or "").strip()
        return iso_time(int(raw)) if raw.isdigit() else None
    return None
