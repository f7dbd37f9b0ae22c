"""The Delivery envelope: one verified webhook as it travels from the intake to the worker."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

SOURCES = ("shopify", "woocommerce", "storefront")
# Reconciliation and backfill give the records they read from a store's API delivery ids
# that start with this word and a colon (see storesync.reconcile).
STORE_READ_PREFIX = "reconcile"
# The platforms whose API those jobs read; a storefront delivery is always a webhook.
STORE_READ_SOURCES = ("shopify", "woocommerce")


@dataclass(frozen=True)
class Delivery:
    """One verified webhook delivery.

    Attributes:
        delivery_id: The dedupe key: ``X-Shopify-Event-Id`` (else ``X-Shopify-Webhook-Id``),
            ``X-WC-Webhook-Delivery-ID`` or ``webhook-id``; ``sha256:`` and the hex digest of
            the raw body when the platform sent none.
        source: ``shopify``, ``woocommerce`` or ``storefront``.
        topic: The platform's topic, e.g. ``orders/create`` or ``order.updated``; for the
            storefront, the body's ``event`` name. Empty when the delivery named none.
        shop: The shop domain, the WooCommerce site URL, or the ``STORE_ID`` setting.
        received_at: ISO 8601 UTC time the intake received the delivery.
        triggered_at: ISO 8601 time of the event as the platform reports it, when it sent one.
        body: The raw body decoded as UTF-8, exactly the bytes that were verified.
    """

    delivery_id: str
    source: str
    topic: str
    shop: str | None
    received_at: str
    triggered_at: str | None
    body: str

    @property
    def read_from_store(self) -> bool:
        """Whether reconciliation or backfill read this record from the store's API.

        Such a delivery is received when the job runs, which may be long after the
        record was made, so its receive time does not show how old the record is.
        """
        return (self.source in STORE_READ_SOURCES
                and self.delivery_id.startswith(f"{STORE_READ_PREFIX}:"))

    def to_dict(self) -> dict[str, Any]:
        """Return the envelope as a JSON-safe dict (the form stored in the queue)."""
        return {"delivery_id": self.delivery_id, "source": self.source, "topic": self.topic,
                "shop": self.shop, "received_at": self.received_at,
                "triggered_at": self.triggered_at, "body": self.body}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Delivery:
        """Rebuild an envelope from :meth:`to_dict` output.

        Raises:
            KeyError: a field is missing.
            TypeError: a field has the wrong type.
        """
        for name in ("delivery_id", "source", "topic", "received_at", "body"):
            if not isinstance(data[name], str):
                raise TypeError(f"Delivery field {name!r} must be a string, "
                                f"got {type(data[name]).__name__}")
        for name in ("shop", "triggered_at"):
            value = data.get(name)
            if value is not None and not isinstance(value, str):
                raise TypeError(f"Delivery field {name!r} must be a string or None, "
                                f"got {type(value).__name__}")
        return cls(
            delivery_id=data["delivery_id"],
            source=data["source"],
            topic=data["topic"],
            shop=data.get("shop"),
            received_at=data["received_at"],
            triggered_at=data.get("triggered_at"),
            body=data["body"],
        )


def body_digest_id(body: bytes) -> str:
    """Return the dedupe key used when a platform sends no delivery id."""
    return "sha256:" + hashlib.sha256(body).hexdigest()
