"""Keys of store records that are unique across shops: ``<shop>:<store id>``.

Store ids are unique only within one store: two Shopify shops, or two WooCommerce
sites, can both have order 1001, customer 100 or the SKU ``OUD-50``. So the worker
keys these records by the shop the delivery came from and the store's value, and
writes that same key into the record's unique property in the CRM:

* orders: the property of the ``external_order_id`` field, e.g. ``shopify_order_id``;
* line items, products and tickets: their store id field (``ecom_line_item_id``,
  ``ecom_product_id``, ``ecom_ticket_id``);
* contacts: the store customer id (``ecom_customer_id``), which is also the first
  identity key. Phones and emails stay as they are, because one person keeps them
  across shops and the contact is shared;
* SKUs: the worker's SKU → product table keys each SKU as ``<shop>:<sku>``, and a
  product made from an order line has the key ``<shop>:sku:<sku>``. The line item's
  ``hs_sku`` property keeps the plain SKU.

The outbox, the newest-state versions, the identity table, the associations and the
contact roll-ups all use these keys.

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

# Field map entities whose first identity key is a store id, unique only within one shop.
SHOP_SCOPED_ENTITIES = frozenset({"order", "line_item", "product", "ticket"})
SCHEMES = ("https://", "http://")
# Marks the store part of a product key made from an order line's SKU, so it never
# equals the key of a product webhook, whose store part is a variant id.
SKU_KEY_PREFIX = "sku:"


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


def shop_of_key(key: str) -> str:
    """Return the shop part of a key made by :func:`record_key`."""
    return key.partition(":")[0]


def sku_key(shop: str, sku: str) -> str:
    """Return the key of a SKU in the SKU → product table: ``<shop>:<sku>``."""
    return record_key(shop, sku)


def product_key_from_sku(shop: str, sku: str) -> str:
    """Return the key of a product made from an order line: ``<shop>:sku:<sku>``."""
    return record_key(shop, SKU_KEY_PREFIX + sku)


def scope_record(record: Record, shop: str, customer_id_target: str | None = None) -> Record:
    """Return ``record`` with its store id key, and that property, set to the shop's key.

    For entities in ``SHOP_SCOPED_ENTITIES`` that is the first identity key. For
    contacts it is the identity key whose target is ``customer_id_target`` (the store
    customer id), when the record has one. Other records come back unchanged.
    """
    if not record.identity:
        return record
    if record.entity in SHOP_SCOPED_ENTITIES:
        target = record.identity[0][0]
    elif record.entity == "contact" and customer_id_target is not None:
        target = customer_id_target
    else:
        return record
    identity = [(name, record_key(shop, str(value)) if name == target else value)
                for name, value in record.identity]
    if identity == record.identity:
        return record
    properties = dict(record.properties)
    if target in properties:
        properties[target] = record_key(shop, str(properties[target]))
    return replace(record, properties=properties, identity=identity)
