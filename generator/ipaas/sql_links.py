"""The SQL that links a record to the records it names in the client's PostgreSQL database.

With ``crm: custom`` there is no CRM API to link records through, so each foreign-key
association of the field map (``orders.contact_id``, ``order_lines.order_id`` ...)
becomes one ``UPDATE`` that runs after the record's upsert. It finds the linked row's
id by the keys the record's payload carries and writes it into the link column. The
n8n Postgres nodes and the Zapier and Tray build sheets run the same statement.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from generator.ipaas.crm_calls import CrmCall

# Identity keys that a record can carry in fields of its own (an event's customer
# email), found by the transform the contact's identity field uses.
OWN_IDENTITY_TRANSFORMS = frozenset({"email_lower", "phone_e164_sa"})
# Names of fields that hold the store's id of an order the record names, such as
# the order a support ticket is about.
ORDER_REFERENCE_FIELDS = ("order_id",)
SKU_FIELD = "sku"


def _column(target: str) -> str:
    return target.split(".", 1)[1] if "." in target else target


def _fields(mapping: Mapping[str, Any], entity: str) -> list[Mapping[str, Any]]:
    fields: list[Mapping[str, Any]] = mapping["entities"].get(entity, {}).get("fields", [])
    return fields


def _unique(mapping: Mapping[str, Any], entity: str) -> Mapping[str, Any] | None:
    return next((item for item in _fields(mapping, entity) if item.get("unique")), None)


def _table(mapping: Mapping[str, Any], entity: str) -> str:
    return str(mapping["entities"][entity]["object"]).split(".")[0]


def _latest_id(table: str, column: str, name: str) -> str:
    # A column without a unique index (a product's SKU) can match several rows. The
    # latest of them is the row that the flow's upsert has just written.
    return f"(SELECT id FROM {table} WHERE {column} = <{name}> ORDER BY id DESC LIMIT 1)"


def _order_reference(mapping: Mapping[str, Any], entity: str) -> str | None:
    """Return the name of the record's own field that contains the store's order id, if any."""
    names = {str(item["name"]) for item in _fields(mapping, entity)}
    return next((name for name in ORDER_REFERENCE_FIELDS if name in names), None)


def _contact_lookups(mapping: Mapping[str, Any], entity: str) -> list[str]:
    """Return the contact id lookups in the identity match order.

    A record with its own email or phone field (an event, a ticket's requester) is
    matched on those. Any other record is matched on the contact fields of the same
    payload (an order's customer id, phone and email), which the flow maps for the
    contact's upsert. A record that names an order also falls back to that order's
    contact.
    """
    contacts = _table(mapping, "contact")
    by_target = {str(item["target"]): item for item in _fields(mapping, "contact")}
    own = {str(item.get("transform")): str(item["name"]) for item in _fields(mapping, entity)
           if item.get("transform") in OWN_IDENTITY_TRANSFORMS}
    lookups = []
    for key in mapping["identity"]["match_order"]:
        field = by_target.get(str(key.get("target")))
        if field is None:
            continue
        column = _column(str(field["target"]))
        if own:
            name = own.get(str(field.get("transform")))
            if name is not None:
                lookups.append(_latest_id(contacts, column, name))
        else:
            lookups.append(_latest_id(contacts, column, str(field["name"])))
    order = _unique(mapping, "order")
    reference = _order_reference(mapping, entity)
    if order is not None and reference is not None:
        lookups.append(f"(SELECT contact_id FROM {_table(mapping, 'order')} WHERE "
                       f"{_column(str(order['target']))} = <{reference}>)")
    return lookups


def _order_lookups(mapping: Mapping[str, Any], entity: str) -> list[str]:
    order = _unique(mapping, "order")
    if order is None:
        return []
    name = _order_reference(mapping, entity) or str(order["name"])
    return [_latest_id(_table(mapping, "order"), _column(str(order["target"])), name)]


def _product_lookups(mapping: Mapping[str, Any], entity: str) -> list[str]:
    """Return the product id lookup by the line's SKU.

    The line and the product both write the SKU, or the variant id when the store
    sends no SKU (the ``sku_or_variant_id`` transform), so the two columns match.
    """
    line = next((item for item in _fields(mapping, entity) if item["name"] == SKU_FIELD), None)
    product = next((item for item in _fields(mapping, "product")
                    if item["name"] == SKU_FIELD), None)
    if line is None or product is None:
        return []
    return [_latest_id(_table(mapping, "product"), _column(str(product["target"])),
                       str(line["name"]))]


LOOKUPS = {"contact": _contact_lookups, "order": _order_lookups, "product": _product_lookups}


def link_call(mapping: Mapping[str, Any], entity: str, to: str, ref: str) -> CrmCall | None:
    """Return the ``UPDATE`` that writes the id of the ``to`` record into column ``ref``.

    The statement keeps the column's value when no linked row is found, so a lookup
    that fails later never erases a link. Returns None when the record has no unique
    field to find its row by or nothing to find the linked row by.
    """
    key = _unique(mapping, entity)
    finder = LOOKUPS.get(to)
    lookups: Sequence[str] = finder(mapping, entity) if finder else []
    if key is None or not lookups:
        return None
    table = _table(mapping, entity)
    column = _column(ref)
    statement = (f"UPDATE {table} SET {column} = COALESCE({', '.join(lookups)}, {column}) "
                 f"WHERE {_column(str(key['target']))} = <{key['name']}>")
    return CrmCall(system="postgres", action=f"link {entity} to {to}", method="SQL",
                   base_url="", endpoint=statement)
