"""Map one webhook body to CRM records with the field map of ``integration/mapping.yaml``.

The engine reads the generated field map as plain data: ``entities`` (each with
``enabled``, ``object`` and ``fields``), ``identity.match_order`` and ``order_stages``.
It looks each field's source path up in the body, falls back to ``fallback_sources``
when the value is missing or empty, runs the named transform and writes the result
under the field's target name. It makes no network call, and what it cannot map
(an unknown topic, a body that is not an object) is reported in
``MappedRecords.problems`` instead of raised.

Source paths use dots for nested objects and brackets for lists:

* ``customer.phone`` reads a nested value;
* ``line_items[].sku`` reads ``sku`` from every item of a list, and an entity whose
  first field runs through a list yields one record per item of that list;
* ``categories[0].name`` reads one item by position;
* ``meta_data[_wc_order_attribution_utm_source]`` reads the ``value`` of the item
  whose ``key`` matches, as in WooCommerce's ``meta_data`` lists.

This module is copied verbatim into generated services, so it imports only the
standard library and the other ``runtime`` modules.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from .result import TransformContext, Transformed
from .transforms import apply

# Payload families the engine reads; a webhook body is in the shape of one of them.
PLATFORMS = ("shopify", "woocommerce", "storefront")

# The source family whose paths the field map holds, by the map's ``platform`` value.
# Headless and custom storefronts post the documented storefront event body.
SOURCE_FAMILY = {
    "shopify": "shopify",
    "woocommerce": "woocommerce",
    "headless": "storefront",
    "custom": "storefront",
}

# Entities whose paths are in another family's shape than the rest of the project's map.
# A WooCommerce project receives behaviour events as storefront event bodies from its
# WordPress snippet, because WooCommerce core sends no cart or checkout webhook.
FOREIGN_FAMILY_ENTITIES: dict[tuple[str, str], tuple[str, ...]] = {
    ("woocommerce", "storefront"): ("event",),
}

# The entity whose records are matched with ``identity.match_order``; other entities
# are identified by their fields marked ``unique``.
IDENTITY_ENTITY = "contact"

ORDER_ENTITIES = ("contact", "order", "line_item")

View = Callable[[Mapping[str, Any]], Mapping[str, Any]]


@dataclass(frozen=True)
class Route:
    """The entities one topic feeds, and how its body is read for each of them.

    Attributes:
        entities: Entity names in the order their records are made.
        views: Entity name → function that reshapes the body into the shape the
            field map reads, for topics whose body is another resource.
        only_fields: Entity name → the only fields this topic's body carries; the
            entity's other fields are skipped.
        field_flags: ``entity.field`` → flags added to that field on every record
            of this topic.
    """

    entities: tuple[str, ...]
    views: Mapping[str, View] = field(default_factory=dict)
    only_fields: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    field_flags: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Record:
    """One CRM record built from the body: its properties, identity keys and flags."""

    entity: str
    object: str
    properties: dict[str, Any]
    identity: list[tuple[str, Any]]
    flags: dict[str, list[str]]

    def to_data(self) -> dict[str, Any]:
        """Return the record as plain data for JSON or YAML."""
        return {
            "entity": self.entity,
            "object": self.object,
            "properties": dict(self.properties),
            # A mapping keeps the match order in JSON and YAML and reads better than pairs.
            "identity": dict(self.identity),
            "flags": {name: list(flags) for name, flags in self.flags.items()},
        }


@dataclass(frozen=True)
class MappedRecords:
    """Every record one webhook body produces, and what could not be mapped."""

    platform: str
    topic: str
    records: list[Record]
    problems: list[str]

    def to_data(self) -> dict[str, Any]:
        """Return the result as plain data for JSON or YAML."""
        return {
            "platform": self.platform,
            "topic": self.topic,
            "records": [record.to_data() for record in self.records],
            "problems": list(self.problems),
        }


# ---------------------------------------------------------------------------
# Views: reshape a body whose topic carries a resource other than the one the
# field map was written for.


def _as_mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _shopify_customer_view(body: Mapping[str, Any]) -> Mapping[str, Any]:
    # customers/* bodies are the customer itself; the contact map reads order.customer.
    return {"customer": body}


def _shopify_refund_view(body: Mapping[str, Any]) -> Mapping[str, Any]:
    # A refunds/create body is one entry of the order's refunds[] with its order_id.
    return {"id": body.get("order_id"), "refunds": [body]}


def _shopify_checkout_event_view(body: Mapping[str, Any]) -> Mapping[str, Any]:
    # The event map reads Web Pixels events; a checkout webhook becomes the matching
    # checkout_started event. Its id names one state of the checkout, so each update
    # is a new event and a repeated delivery of the same state is a duplicate.
    token = body.get("token")
    updated_at = body.get("updated_at") or body.get("created_at")
    total = body.get("total_price")
    return {
        "name": "checkout_started",
        "id": f"{token}:{updated_at}" if token and updated_at else None,
        "timestamp": updated_at,
        "data": {
            "checkout": {
                "email": body.get("email"),
                "token": token,
                "totalPrice": {"amount": total, "currencyCode": body.get("currency")},
            }
        },
    }


def _woocommerce_customer_view(body: Mapping[str, Any]) -> Mapping[str, Any]:
    # The contact map reads an order (customer_id, billing.*); a customer body keeps
    # its id at the top and may leave billing names and email empty.
    billing = dict(_as_mapping(body.get("billing")))
    for key in ("email", "first_name", "last_name"):
        if is_empty(billing.get(key)):
            billing[key] = body.get(key)
    return {
        "customer_id": body.get("id"),
        "billing": billing,
        "shipping": _as_mapping(body.get("shipping")),
    }


_SHOPIFY_ORDER = Route(ORDER_ENTITIES)
_SHOPIFY_CUSTOMER = Route(("contact",), views={"contact": _shopify_customer_view})
_SHOPIFY_CHECKOUT = Route(("contact", "event"), views={"event": _shopify_checkout_event_view})
_WEB_PIXEL_EVENT = Route(("event",))
_WOOCOMMERCE_CUSTOMER = Route(("contact",), views={"contact": _woocommerce_customer_view})

# Which entities each topic feeds, by payload family. Shopify and WooCommerce topics
# are the webhook topics the store sends. The Shopify Web Pixels event names come from
# the project's pixel, and storefront topics are the ``event`` names of the storefront
# contract.
TOPICS: dict[str, dict[str, Route]] = {
    "shopify": {
        "orders/create": _SHOPIFY_ORDER,
        "orders/updated": _SHOPIFY_ORDER,
        "orders/paid": _SHOPIFY_ORDER,
        "orders/cancelled": _SHOPIFY_ORDER,
        "orders/fulfilled": _SHOPIFY_ORDER,
        # A refund body carries only this refund and the order id, so the stage comes
        # from the orders/updated body with the new financial_status that follows a
        # refund. NOTE: only a secondary source states that orders/updated follows.
        "refunds/create": Route(
            ("order",),
            views={"order": _shopify_refund_view},
            only_fields={"order": ("external_order_id", "refunded_amount")},
            field_flags={"order.refunded_amount": ("this_refund_only",)},
        ),
        "customers/create": _SHOPIFY_CUSTOMER,
        "customers/update": _SHOPIFY_CUSTOMER,
        "products/create": Route(("product",)),
        "products/update": Route(("product",)),
        "checkouts/create": _SHOPIFY_CHECKOUT,
        "checkouts/update": _SHOPIFY_CHECKOUT,
        "page_viewed": _WEB_PIXEL_EVENT,
        "product_added_to_cart": _WEB_PIXEL_EVENT,
        "checkout_started": _WEB_PIXEL_EVENT,
        "checkout_completed": _WEB_PIXEL_EVENT,
    },
    "woocommerce": {
        # order.updated also fires on refunds and status changes; WooCommerce has no
        # separate refund topic.
        "order.created": Route(ORDER_ENTITIES),
        "order.updated": Route(ORDER_ENTITIES),
        "customer.created": _WOOCOMMERCE_CUSTOMER,
        "customer.updated": _WOOCOMMERCE_CUSTOMER,
        "product.created": Route(("product",)),
        "product.updated": Route(("product",)),
    },
    "storefront": {
        "page_view": Route(("event",)),
        "add_to_cart": Route(("event",)),
        "checkout_started": Route(("event",)),
        "purchase_completed": Route(("contact", "order", "line_item", "event")),
        "order_updated": Route(ORDER_ENTITIES),
        "return_requested": Route(("event",)),
        "customer_updated": Route(("contact",)),
    },
}


def topics(platform: str) -> tuple[str, ...]:
    """Return the topics the engine maps for ``platform``, in table order (empty if unknown)."""
    return tuple(TOPICS.get(platform, {}))


def source_family(mapping: Mapping[str, Any]) -> str | None:
    """Return the payload family whose paths the field map holds, or None if unknown."""
    return SOURCE_FAMILY.get(str(mapping.get("platform")))


def accepted_platforms(mapping: Mapping[str, Any]) -> tuple[str, ...]:
    """Return the payload families a project with this field map can map."""
    family = source_family(mapping)
    if family is None:
        return ()
    extra = [other for (own, other) in FOREIGN_FAMILY_ENTITIES if own == family]
    return (family, *extra)


# ---------------------------------------------------------------------------
# Paths


_SEGMENT = re.compile(r"([^.\[\]]+)(?:\[([^\]]*)\])?")


@lru_cache(maxsize=512)
def _parse_path(path: str) -> tuple[tuple[str, str | None], ...]:
    return tuple((match.group(1), match.group(2)) for match in _SEGMENT.finditer(path))


def _select(child: Any, selector: str) -> Any:
    """Read one list item by position, or the ``value`` of the item whose ``key`` matches."""
    if not isinstance(child, list):
        return None
    if selector.isdigit():
        index = int(selector)
        return child[index] if index < len(child) else None
    for entry in child:
        if isinstance(entry, Mapping) and entry.get("key") == selector:
            return entry.get("value")
    return None


def resolve_path(data: Any, path: str) -> Any:
    """Read the value at ``path`` in ``data``.

    Args:
        data: A parsed JSON body or a part of it.
        path: Dotted path; ``name[]`` runs through a list, ``name[0]`` reads one
            item, ``name[key]`` reads a WooCommerce ``meta_data``-style entry.

    Returns:
        The value, or None when any step is missing. A path with ``[]`` returns a
        list of every value found, without the missing ones.
    """
    segments = _parse_path(path)
    if not segments:
        return None
    values: list[Any] = [data]
    through_list = False
    for name, selector in segments:
        found: list[Any] = []
        for value in values:
            child = value.get(name) if isinstance(value, Mapping) else None
            if selector is None:
                found.append(child)
            elif selector == "":
                through_list = True
                if isinstance(child, list):
                    found.extend(child)
            else:
                found.append(_select(child, selector))
        values = found
    if through_list:
        return [value for value in values if value is not None]
    return values[0] if values else None


def is_empty(value: Any) -> bool:
    """Tell whether a source value is missing, so the next fallback source is tried.

    None, blank text, and lists or objects with nothing in them are empty. So is the
    integer 0, because WooCommerce writes 0 for an absent id (``customer_id`` of a guest,
    ``variation_id`` of a simple product, ``product_id`` of a deleted product).
    """
    if value is None:
        return True
    if isinstance(value, bool):
        return False
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, int):
        return value == 0
    if isinstance(value, list):
        return all(is_empty(item) for item in value)
    if isinstance(value, Mapping):
        return not value
    return False


def _item_list(fields: Sequence[Mapping[str, Any]]) -> str | None:
    """Return the list path (``line_items[]``) an entity yields one record per item of."""
    if not fields:
        return None
    source = str(fields[0].get("source", ""))
    marker = source.find("[]")
    return source[: marker + 2] if marker >= 0 else None


# ---------------------------------------------------------------------------
# Mapping


@dataclass(frozen=True)
class _Scope:
    """The body one record is read from, and the list item when the entity has one."""

    payload: Mapping[str, Any]
    item_path: str | None = None
    item: Mapping[str, Any] | None = None

    def read(self, path: str) -> Any:
        if self.item_path is not None and self.item is not None:
            if path == self.item_path:
                return self.item
            if path.startswith(self.item_path + "."):
                return resolve_path(self.item, path[len(self.item_path) + 1 :])
        return resolve_path(self.payload, path)


def _read_field(spec: Mapping[str, Any], scope: _Scope) -> tuple[Any, list[str]]:
    """Read a field's source, then its fallbacks in order; flag the fallback used."""
    primary = scope.read(str(spec.get("source", "")))
    if not is_empty(primary):
        return primary, []
    for fallback in spec.get("fallback_sources") or []:
        value = scope.read(str(fallback))
        if not is_empty(value):
            return value, [f"fallback:{fallback}"]
    return primary, []


def _is_blank(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    return isinstance(value, list | dict) and not value


# Transforms whose value is an object; the engine writes one part of it to the target.
_VALUE_PART = {"city_canonical": "en"}

# Transforms whose value is {"key": stage key, "crm_value": CRM value or None}.
_STAGE_TRANSFORMS = frozenset({"status_to_stage", "ticket_status_to_stage"})

# split_name gives first and last name at once; each name field takes its part.
_NAME_PARTS = {"first_name": "first", "last_name": "last"}


def _name_input(fields: Sequence[Mapping[str, Any]], scope: _Scope) -> dict[str, Any]:
    """Collect the raw first and last names, so split_name receives both at once."""
    names: dict[str, Any] = {"first": None, "last": None}
    for spec in fields:
        part = _NAME_PARTS.get(str(spec.get("name")))
        if spec.get("transform") == "split_name" and part is not None:
            names[part] = _read_field(spec, scope)[0]
    return names


def _property_value(spec: Mapping[str, Any], result: Transformed) -> Any:
    """Pick what is written to the target from a transform's value."""
    value = result.value
    transform = spec.get("transform")
    if transform == "split_name" and isinstance(value, Mapping):
        part = _NAME_PARTS.get(str(spec.get("name")))
        if part is not None:
            return value.get(part)
        # A single name field gets the whole name.
        return " ".join(str(value[key]) for key in ("first", "last") if value.get(key)) or None
    part = _VALUE_PART.get(str(transform))
    if part is not None and isinstance(value, Mapping):
        return value.get(part)
    if transform in _STAGE_TRANSFORMS and isinstance(value, Mapping):
        # The CRM's own stage value when set-up has filled it in, else the stage key.
        crm_value = value.get("crm_value")
        return crm_value if crm_value is not None else value.get("key")
    return value


@dataclass
class _Builder:
    """Collects one record's properties and flags in field order."""

    properties: dict[str, Any] = field(default_factory=dict)
    flags: dict[str, list[str]] = field(default_factory=dict)

    def add_flags(self, name: str, flags: Sequence[str]) -> None:
        if flags:
            self.flags.setdefault(name, []).extend(flags)


def _map_field(
    spec: Mapping[str, Any], fields: Sequence[Mapping[str, Any]], scope: _Scope,
    context: TransformContext, builder: _Builder,
) -> None:
    name = str(spec.get("name"))
    transform = str(spec.get("transform", "identity"))
    raw, engine_flags = _read_field(spec, scope)
    if transform == "split_name" and name in _NAME_PARTS:
        raw = _name_input(fields, scope)
    result = apply(transform, raw, context)
    value = _property_value(spec, result) if result.ok else None
    if value is None and spec.get("required") and "placeholder" in spec:
        # The CRM rejects the record without this field (Zoho's Last_Name).
        value = spec["placeholder"]
        engine_flags.append("placeholder")
    builder.add_flags(name, [*result.flags, *engine_flags])
    target = spec.get("target")
    if target is not None and not _is_blank(value):
        builder.properties[str(target)] = value


def _identity(
    entity: str, fields: Sequence[Mapping[str, Any]], mapping: Mapping[str, Any],
    properties: Mapping[str, Any],
) -> list[tuple[str, Any]]:
    """List the identity keys a record has, as (target, value) pairs in match order."""
    if entity == IDENTITY_ENTITY:
        targets = {str(spec.get("name")): spec.get("target") for spec in fields}
        match_order = _as_mapping(mapping.get("identity")).get("match_order") or []
        keys = [
            entry.get("target") or targets.get(str(entry.get("key")))
            for entry in match_order
            if isinstance(entry, Mapping)
        ]
    else:
        keys = [spec.get("target") for spec in fields if spec.get("unique")]
    present = [str(key) for key in keys if key is not None and str(key) in properties]
    return [(key, properties[key]) for key in present]


def _scopes(
    entity: str, body: Mapping[str, Any], item_path: str | None, problems: list[str]
) -> list[_Scope]:
    if item_path is None:
        return [_Scope(body)]
    items = [item for item in resolve_path(body, item_path) if isinstance(item, Mapping)]
    if not items:
        problems.append(f"{entity}: the body has no items at {item_path}, so no record was made.")
    return [_Scope(body, item_path, item) for item in items]


def _entity_records(
    name: str, entity: Mapping[str, Any], route: Route, platform: str,
    payload: Mapping[str, Any], mapping: Mapping[str, Any], problems: list[str],
) -> list[Record]:
    """Map one entity of the field map; an entity with a list path yields a record per item."""
    fields = [spec for spec in entity.get("fields") or [] if isinstance(spec, Mapping)]
    view = route.views.get(name)
    body = view(payload) if view is not None else payload
    only = route.only_fields.get(name)
    mapped = [spec for spec in fields if only is None or spec.get("name") in only]
    records = []
    for scope in _scopes(name, body, _item_list(fields), problems):
        context = TransformContext(payload=body, platform=platform, mapping=mapping,
                                   item=scope.item)
        builder = _Builder()
        for spec in mapped:
            _map_field(spec, fields, scope, context, builder)
        for key, flags in route.field_flags.items():
            entity_name, _, field_name = key.partition(".")
            if entity_name == name:
                builder.add_flags(field_name, flags)
        if not builder.properties:
            problems.append(f"{name}: no field of the body had a value, so no record was made.")
            continue
        records.append(Record(
            entity=name,
            object=str(entity.get("object")),
            properties=builder.properties,
            identity=_identity(name, fields, mapping, builder.properties),
            flags=builder.flags,
        ))
    return records


def _route_entities(
    mapping: Mapping[str, Any], platform: str, topic: str, problems: list[str]
) -> tuple[Route, tuple[str, ...]] | None:
    """Find the topic's route and the entities of it that this project maps from ``platform``."""
    if platform not in TOPICS:
        problems.append(f"Unknown platform {platform!r}: expected one of {', '.join(PLATFORMS)}.")
        return None
    route = TOPICS[platform].get(topic)
    if route is None:
        problems.append(f"Unknown {platform} topic {topic!r}: the engine maps "
                        f"{', '.join(topics(platform))}.")
        return None
    family = source_family(mapping)
    if family is None:
        problems.append(f"The field map's platform {mapping.get('platform')!r} is unknown: "
                        f"expected one of {', '.join(SOURCE_FAMILY)}.")
        return None
    if family == platform:
        return route, route.entities
    foreign = FOREIGN_FAMILY_ENTITIES.get((family, platform), ())
    names = tuple(name for name in route.entities if name in foreign)
    if not names:
        problems.append(f"This field map reads {family} bodies; a {platform} {topic!r} body "
                        f"feeds none of its entities.")
        return None
    return route, names


def map_payload(
    mapping: Mapping[str, Any], platform: str, topic: str, payload: Mapping[str, Any]
) -> MappedRecords:
    """Map one webhook body to the CRM records the field map describes.

    Args:
        mapping: The parsed ``integration/mapping.yaml`` document.
        platform: Payload family of the body: ``shopify``, ``woocommerce`` or ``storefront``.
        topic: The webhook topic (``orders/create``, ``order.updated``) or, for storefront
            bodies, the event name (``add_to_cart``).
        payload: The parsed JSON body.

    Returns:
        The records in entity order, then item order, with the problems found. An
        unknown platform or topic, or a body that is not a JSON object, gives no
        records and a problem that describes it, not an exception.
    """
    problems: list[str] = []
    if not isinstance(payload, Mapping):
        problems.append(f"The body is a JSON {type(payload).__name__}, not an object.")
        return MappedRecords(platform, topic, [], problems)
    found = _route_entities(mapping, platform, topic, problems)
    if found is None:
        return MappedRecords(platform, topic, [], problems)
    route, names = found
    if platform == "storefront" and payload.get("event") != topic:
        problems.append(f"The body's event is {payload.get('event')!r}, not {topic!r}; "
                        f"it was mapped as {topic!r}.")
    entities = _as_mapping(mapping.get("entities"))
    records: list[Record] = []
    for name in names:
        entity = entities.get(name)
        if not isinstance(entity, Mapping):
            problems.append(f"{name}: the field map has no such entity.")
        elif not entity.get("enabled", True):
            reason = _as_mapping(entity.get("disabled_reason")).get("en", "it is disabled.")
            problems.append(f"{name}: not mapped. {reason}")
        else:
            records.extend(_entity_records(name, entity, route, platform, payload, mapping,
                                           problems))
    return MappedRecords(platform, topic, records, problems)
