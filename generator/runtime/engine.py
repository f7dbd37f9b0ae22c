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
# Support tickets come from the inbox, not from the store, so every project reads
# them as the storefront contract's ``ticket_created`` body.
FOREIGN_FAMILY_ENTITIES: dict[tuple[str, str], tuple[str, ...]] = {
    ("woocommerce", "storefront"): ("event", "ticket"),
    ("shopify", "storefront"): ("ticket",),
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
        held_fields: ``entity.field`` → fields whose value this topic's body gives
            only in part, so it is shown under ``not_sent`` and never written to
            the target.
    """

    entities: tuple[str, ...]
    views: Mapping[str, View] = field(default_factory=dict)
    only_fields: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    field_flags: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    held_fields: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Record:
    """One CRM record built from the body: its properties, identity keys and flags.

    ``not_sent`` contains, by field name, values that were read but must not be
    written to their target (an amount in another currency than SAR, a single
    refund); the field's flags say why.
    """

    entity: str
    object: str
    properties: dict[str, Any]
    identity: list[tuple[str, Any]]
    flags: dict[str, list[str]]
    not_sent: dict[str, Any] = field(default_factory=dict)

    def to_data(self) -> dict[str, Any]:
        """Return the record as plain data for JSON or YAML."""
        return {
            "entity": self.entity,
            "object": self.object,
            "properties": dict(self.properties),
            # A mapping keeps the match order in JSON and YAML and reads better than pairs.
            "identity": dict(self.identity),
            "flags": {name: list(flags) for name, flags in self.flags.items()},
            "not_sent": dict(self.not_sent),
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


def _first_present(body: Mapping[str, Any], *keys: str) -> Any:
    return next((body[key] for key in keys if not is_empty(body.get(key))), None)


def _shopify_sms_consent_view(body: Mapping[str, Any]) -> Mapping[str, Any]:
    # A customers_marketing_consent/update body is {id, phone, sms_marketing_consent}.
    # The customer id is also read from customer_id, the key the email consent topic uses.
    return {"customer": {"id": _first_present(body, "id", "customer_id"),
                         "phone": body.get("phone"),
                         "sms_marketing_consent": body.get("sms_marketing_consent")}}


def _shopify_email_consent_view(body: Mapping[str, Any]) -> Mapping[str, Any]:
    # A customers_email_marketing_consent/update body is {customer_id, email_address,
    # email_marketing_consent}.
    return {"customer": {"id": _first_present(body, "customer_id", "id"),
                         "email": _first_present(body, "email_address", "email"),
                         "email_marketing_consent": body.get("email_marketing_consent")}}


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
# A consent body names the customer and one channel's consent, nothing else, so its
# contact record carries only the identity fields the body has. Every other contact
# field is skipped, so a placeholder (Zoho's Last_Name) never replaces a stored value.
# The consent itself is read from the body at the paths of integration/consent.yaml,
# which the view keeps under customer.
_SHOPIFY_SMS_CONSENT = Route(
    ("contact",), views={"contact": _shopify_sms_consent_view},
    only_fields={"contact": ("store_customer_id", "phone")})
_SHOPIFY_EMAIL_CONSENT = Route(
    ("contact",), views={"contact": _shopify_email_consent_view},
    only_fields={"contact": ("store_customer_id", "email")})

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
            # refunded_amount contains the sum of all refunds; this body has only one,
            # so it is shown but not written, and orders/updated writes the sum.
            only_fields={"order": ("external_order_id", "refunded_amount")},
            field_flags={"order.refunded_amount": ("this_refund_only",)},
            held_fields=frozenset({"order.refunded_amount"}),
        ),
        "customers/create": _SHOPIFY_CUSTOMER,
        "customers/update": _SHOPIFY_CUSTOMER,
        # Since API 2025-01 customer bodies no longer carry the consent objects, which
        # moved to these two topics (Shopify developer changelog "New customer's
        # webhook and changes to existing customer's webhooks payload", 2025-01). Their
        # WebhookSubscriptionTopic values are CUSTOMERS_MARKETING_CONSENT_UPDATE (SMS)
        # and CUSTOMERS_EMAIL_MARKETING_CONSENT_UPDATE.
        # NOTE: both body shapes come from secondary sources and were not checked
        # against a live delivery.
        "customers_marketing_consent/update": _SHOPIFY_SMS_CONSENT,
        "customers_email_marketing_consent/update": _SHOPIFY_EMAIL_CONSENT,
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
        # Posted by the support inbox, for any store platform.
        "ticket_created": Route(("ticket",)),
        "ticket_updated": Route(("ticket",)),
    },
}


def json_type(value: Any) -> str:
    """Name the JSON type of a parsed value: null, boolean, number, string, array or object."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "object" if isinstance(value, Mapping) else "array"


# Topic names accepted for another topic's route. Earlier releases mapped Shopify's SMS
# consent topic as customers/marketing_consent, which Shopify never sends. A body posted
# under that name by a replay or a hand-made test still maps as the real topic. Aliases
# are never subscribed to.
TOPIC_ALIASES: dict[str, dict[str, str]] = {
    "shopify": {"customers/marketing_consent": "customers_marketing_consent/update"},
}


def topics(platform: str) -> tuple[str, ...]:
    """Return the topics the engine maps for ``platform``, in table order (empty if unknown)."""
    return tuple(TOPICS.get(platform, {}))


def accepted_topics(platform: str) -> tuple[str, ...]:
    """Return the mapped topics of ``platform`` followed by their accepted aliases."""
    return (*topics(platform), *TOPIC_ALIASES.get(platform, {}))


def canonical_topic(platform: str, topic: str) -> str:
    """Return the mapped topic an alias stands for, or ``topic`` itself."""
    return TOPIC_ALIASES.get(platform, {}).get(topic, topic)


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
            # A parsed JSON body is made of plain dicts. Checking the exact type first
            # costs far less than the Mapping ABC check.
            child = value.get(name) if type(value) is dict or isinstance(value, Mapping) \
                else None
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
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, bool):
        return False
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


# HubSpot event definitions are named "ecom_<event key>" in the desired state. The
# send call needs the fully qualified name "pe<HubID>_ecom_<event key>", and only the
# account knows its HubID, so the sync adds that prefix from its configuration.
HUBSPOT_EVENT_PREFIX = "ecom_"

# A target named for SAR (ecom_refunded_sar, Value_SAR, orders.total_sar) is for riyals only.
_SAR_TARGET = re.compile(r"(?:^|[._])sar(?:$|[._\[])", re.IGNORECASE)


def _last_name_required(fields: Sequence[Mapping[str, Any]]) -> bool:
    return any(spec.get("name") == "last_name" and spec.get("required") for spec in fields)


def _name_value(
    spec: Mapping[str, Any], fields: Sequence[Mapping[str, Any]], names: Mapping[str, Any]
) -> tuple[Any, list[str]]:
    """Pick a name part; a one-word name is the first name unless a last name is required."""
    first, last = names.get("first"), names.get("last")
    flags: list[str] = []
    if first is None and last is not None:
        # Only a CRM that rejects a contact without a last name (Zoho's required
        # Last_Name) keeps a one-word name there; elsewhere it is the given name.
        if not _last_name_required(fields):
            first, last = last, None
        flags = ["single_name"]
    part = _NAME_PARTS.get(str(spec.get("name")))
    if part is None:
        # A single name field gets the whole name.
        return " ".join(str(name) for name in (first, last) if name) or None, []
    value = first if part == "first" else last
    return value, flags if value is not None else []


def _property_value(
    spec: Mapping[str, Any], fields: Sequence[Mapping[str, Any]], result: Transformed, crm: str
) -> tuple[Any, list[str]]:
    """Pick what is written to the target from a transform's value, with the flags it adds."""
    value = result.value
    transform = spec.get("transform")
    if transform == "split_name" and isinstance(value, Mapping):
        return _name_value(spec, fields, value)
    part = _VALUE_PART.get(str(transform))
    if part is not None and isinstance(value, Mapping):
        return value.get(part), []
    if transform in _STAGE_TRANSFORMS and isinstance(value, Mapping):
        # The CRM's own stage value once set-up has filled it in, else the stage key.
        crm_value = value.get("crm_value")
        if crm_value is None:
            return value.get("key"), ["stage_id_pending"]
        return crm_value, []
    if transform == "event_key" and crm == "hubspot" and isinstance(value, str):
        return HUBSPOT_EVENT_PREFIX + value, ["needs_hub_id_prefix"]
    return value, []


@dataclass
class _Builder:
    """Collects one record's properties, flags, held values and notes in field order."""

    properties: dict[str, Any] = field(default_factory=dict)
    flags: dict[str, list[str]] = field(default_factory=dict)
    not_sent: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add_flags(self, name: str, flags: Sequence[str]) -> None:
        if flags:
            self.flags.setdefault(name, []).extend(flags)


@dataclass(frozen=True)
class _EntityEnv:
    """What every field of one entity is mapped with."""

    name: str
    fields: Sequence[Mapping[str, Any]]
    route: Route
    context: TransformContext

    @property
    def crm(self) -> str:
        return str(self.context.mapping.get("crm", ""))


def _currency_code(flags: Sequence[str]) -> str:
    return next((flag.partition(":")[2] for flag in flags if flag.startswith("currency:")), "?")


def _held_reason(env: _EntityEnv, name: str, target: str, result: Transformed) -> str | None:
    """Return the flag that keeps a value out of its target, or None to write it."""
    if f"{env.name}.{name}" in env.route.held_fields:
        return "not_written"
    if "currency_not_sar" in result.flags and _SAR_TARGET.search(target):
        return "not_sar_not_written"
    return None


def _map_field(spec: Mapping[str, Any], scope: _Scope, env: _EntityEnv, builder: _Builder) -> None:
    name = str(spec.get("name"))
    transform = str(spec.get("transform", "identity"))
    raw, engine_flags = _read_field(spec, scope)
    if transform == "split_name" and name in _NAME_PARTS:
        raw = _name_input(env.fields, scope)
    result = apply(transform, raw, env.context)
    value, value_flags = _property_value(spec, env.fields, result, env.crm) if result.ok \
        else (None, [])
    engine_flags += value_flags
    if value is None and spec.get("required") and "placeholder" in spec:
        # The CRM rejects the record without this field (Zoho's Last_Name).
        value = spec["placeholder"]
        engine_flags.append("placeholder")
    target = spec.get("target")
    held = _held_reason(env, name, str(target), result) if not _is_blank(value) else None
    if held == "not_sar_not_written":
        builder.notes.append(
            f"{env.name}: the body is in {_currency_code(result.flags)}, so {target} was left "
            f"out: it is for SAR amounts, and converting needs an exchange rate the project "
            f"does not have.")
    builder.add_flags(name, [*result.flags, *engine_flags, *([held] if held else [])])
    if held is not None:
        builder.not_sent[name] = value
    elif target is not None and not _is_blank(value):
        builder.properties[str(target)] = value
    if transform == "status_to_stage":
        _add_pipeline(env.context.mapping, name, builder)


def _add_pipeline(mapping: Mapping[str, Any], name: str, builder: _Builder) -> None:
    """Write the pipeline id beside the stage, or flag it when set-up has not filled it yet."""
    stages = _as_mapping(mapping.get("order_stages"))
    pipeline = _as_mapping(stages.get("pipeline"))
    target = pipeline.get("field")
    if "crm_value" not in pipeline or not target:
        return
    if pipeline["crm_value"] is None:
        builder.add_flags(name, ["pipeline_id_pending"])
        builder.notes.append(
            f"The pipeline id is not filled yet (order_stages.pipeline.crm_value is null), so "
            f"{target} was left out: fill it with the id the CRM returns at set-up.")
    else:
        builder.properties[str(target)] = pipeline["crm_value"]


def _stage_note(entity: str, builder: _Builder) -> None:
    for name, flags in builder.flags.items():
        if "stage_id_pending" in flags:
            builder.notes.append(
                f"{entity}: the CRM's stage ids are not filled yet (crm_value is null), so {name} "
                f"contains the stage key. Fill each stage's crm_value with the id the CRM returns "
                f"at set-up.")


def _lookup_notes(
    name: str, entity: Mapping[str, Any], fields: Sequence[Mapping[str, Any]], builder: _Builder
) -> None:
    """Flag lookup fields that still hold a store value, and say how the sync resolves them."""
    targets = {str(spec.get("target")): str(spec.get("name")) for spec in fields}
    steps = []
    for link in entity.get("associations") or []:
        if not isinstance(link, Mapping) or link.get("kind") != "lookup":
            continue
        ref, other = str(link.get("ref")), link.get("to")
        field_name = targets.get(ref)
        if field_name is not None and ref in builder.properties:
            builder.add_flags(field_name, ["pending_lookup"])
            steps.append(f"{ref} contains the store's {field_name} until the sync puts in the id "
                         f"of the {other} record it finds by that value")
        elif field_name is None:
            steps.append(f"the sync sets {ref} to the id of the {other} record")
    obj = str(entity.get("object"))
    if "." in obj:
        steps.append(f"each item is sent inside its parent {obj.partition('.')[0]} record, which "
                     f"the sync finds or creates for the order")
    if steps:
        builder.notes.append(f"{name} ({obj}): lookups take Zoho record ids, so before sending "
                             f"{'; '.join(steps)}.")


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
        env = _EntityEnv(name, fields, route, context)
        builder = _Builder()
        for spec in mapped:
            _map_field(spec, scope, env, builder)
        for key, flags in route.field_flags.items():
            entity_name, _, field_name = key.partition(".")
            if entity_name == name:
                builder.add_flags(field_name, flags)
        if not builder.properties:
            problems.append(f"{name}: no field of the body had a value, so no record was made.")
            continue
        _stage_note(name, builder)
        _lookup_notes(name, entity, fields, builder)
        problems.extend(note for note in builder.notes if note not in problems)
        records.append(Record(
            entity=name,
            object=str(entity.get("object")),
            properties=builder.properties,
            identity=_identity(name, fields, mapping, builder.properties),
            flags=builder.flags,
            not_sent=builder.not_sent,
        ))
    return records


def _route_entities(
    mapping: Mapping[str, Any], platform: str, topic: str, problems: list[str]
) -> tuple[Route, tuple[str, ...]] | None:
    """Find the topic's route and the entities of it that this project maps from ``platform``."""
    if platform not in TOPICS:
        problems.append(f"Unknown platform {platform!r}: expected one of {', '.join(PLATFORMS)}.")
        return None
    route = TOPICS[platform].get(canonical_topic(platform, topic))
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
        problems.append(f"The body is a JSON {json_type(payload)}, but it must be a JSON object.")
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
