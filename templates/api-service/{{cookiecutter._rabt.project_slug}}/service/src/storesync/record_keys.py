"""Keys of store records that are unique across shops: ``<shop>:<store id>``.

Order, line item and product ids are unique only within one store: two Shopify
shops, or two WooCommerce sites, can both have order 1001. So the worker keys these
records by the shop the delivery came from and the store's id, and writes that same
key into the record's unique property in the CRM (for deals, the property of the
``external_order_id`` field, e.g. ``shopify_order_id``). The outbox, the newest-state
versions, the associations and the contact roll-ups all use this key.

The shop part is:

* Shopify: the ``X-Shopify-Shop-Domain`` header, e.g. ``demo-store.myshopify.com``;
* WooCommerce: the ``X-WC-Webhook-Source`` header without its scheme and trailing
  slash, e.g. ``demo-store.example.com`` or ``example.com/shop``;
* the storefront: the ``STORE_ID`` setting.

It is lower-cased, and a ``:`` in it (a port) is written ``%3A``, so the first ``:``
of a key always ends the shop part. A delivery without a shop uses the platform's
name (``shopify``, ``woocommerce`` or ``storefront``) instead. Changing ``STORE_ID``
after going live therefore starts new keys, and the CRM gets new deals for orders
it already has.
"""

from __future__ import annotations

from dataclasses import replace

from .runtime.engine import Record

# Field map entities whose store ids are unique only within one shop.
SHOP_SCOPED_ENTITIES = frozenset({"order", "line_item", "product"})
SCHEMES = ("https://", "http://")


def shop_part(source: str, shop: str | None) -> str:
    """Return the shop part of record keys for a delivery from ``source`` and ``shop``."""
    text = (shop or "").strip().lower()
    for scheme in SCHEMES:
        if text.startswith(scheme):
            text = text[len(scheme):]
    text = text.rstrip("/").replace(":", "%3A")
    return text or source


def record_key(shop: str, store_id: str) -> str:
    """Return the key of a store record: the shop part, a colon and the store's id."""
    return f"{shop}:{store_id}"


def scope_record(record: Record, shop: str) -> Record:
    """Return ``record`` with its first identity key, and that property, set to the shop's key.

    Records of entities outside ``SHOP_SCOPED_ENTITIES`` come back unchanged.
    """
    if record.entity not in SHOP_SCOPED_ENTITIES or not record.identity:
        return record
    target, value = record.identity[0]
    key = record_key(shop, str(value))
    properties = dict(record.properties)
    if target in properties:
        properties[target] = key
    return replace(record, properties=properties, identity=[(target, key), *record.identity[1:]])
