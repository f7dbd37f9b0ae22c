"""The worker: map one delivery through the spec and put its records in the outbox.

For each delivery the worker parses the body and maps it with
``integration/mapping.yaml``, using the same engine as ``rabt preview``, and keys
orders, line items, products, tickets and store customer ids by shop and store id
(``storesync.record_keys``). A body that lacks a field the field map requires (see
``REQUIRED_FIELDS``) goes to the quarantine instead. The worker then finds the local
contact through the identity table and drops any record older than the state already
seen. An order line whose SKU no product has yet gets a product made from the line.
Last, it stores the order for the contact roll-ups and merges the records into the
outbox. It makes no CRM call: the
flusher (``storesync.flusher``) writes the outbox to HubSpot in batches, so a slow or
failing CRM never holds up the queue.

All writes of one delivery happen in one SQLite transaction (a savepoint inside a
transaction that deliveries handled at the same moment by other consumer threads
share, so they pay for one fsync between them). Two workers handling copies of the
same delivery at once therefore serialise, and the second reads the first's version
and skips. The job returns only after that transaction has committed.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from . import metrics, tombstones, zoho_orders
from .checkouts import (
    Checkout,
    ContactRef,
    checkout_of,
    contact_for,
    has_events,
    note_unsent,
    write_checkout,
)
from .consent import ConsentRecorder, ConsentStore
from .db import Database
from .delivery import Delivery
from .logs import mask_email, mask_phone
from .quarantine import Quarantine
from .record_keys import product_key_from_sku, scope_record, shop_part, sku_key
from .rollups import OrderFields, compute_rollups, order_state
from .runtime.engine import MappedRecords, Record, map_payload
from .settings import Settings
from .sync_store import PHONE_KIND, OutboxItem, SyncStore, properties_of

log = logging.getLogger("storesync.worker")

# CRM objects the flusher writes, by field map entity.
WRITTEN_ENTITIES = {
    "contact": "contacts",
    "order": "deals",
    "line_item": "line_items",
    "product": "products",
    "ticket": "tickets",
}
# NOTE: HubSpot custom behavioral events need an Enterprise subscription, so this
# release does not send event records; a checkout_started event sets the contact's
# checkout roll-ups instead (storesync.checkouts).
SKIPPED_ENTITIES = frozenset({"event"})
# CRM targets where a checkout_started event writes the contact's checkout roll-ups.
CHECKOUT_CRM_TARGETS = ("hubspot", "zoho")

# Fields that hold the time a resource last changed, per payload family, in order of
# preference. WooCommerce's *_gmt fields carry no offset and are UTC.
VERSION_PATHS = {
    "shopify": ("updated_at", "created_at", "processed_at"),
    "woocommerce": ("date_modified_gmt", "date_created_gmt"),
    "storefront": ("occurred_at",),
}
UTC_WITHOUT_OFFSET = frozenset({"date_modified_gmt", "date_created_gmt"})

# Fields a record must get from the body, by entity. Every order is a deal whose amount
# is the order total, so an order body without a total (such as ``{"id": 77}``) cannot
# make a deal. A field the topic does not map, like the total of a refunds/create body,
# is not checked. Fields the field map marks ``required`` are not listed, because each
# has a placeholder that the engine writes when the body has no value.
REQUIRED_FIELDS: dict[str, tuple[str, ...]] = {"order": ("amount",)}
# The engine's flag on a field that had no value in the body.
MISSING_FLAG = "missing"
# The engine's flag on a required field that took the field map's placeholder value.
PLACEHOLDER_FLAG = "placeholder"
# Product fields filled from an order line when no product has the line's SKU yet.
PRODUCT_FIELDS_FROM_LINE = (("sku", "sku"), ("title", "title"), ("price", "unit_price"))


class JobOutcome(StrEnum):
    """Outcome of one job."""

    SYNCED_LATER = "synced_later"
    SKIPPED_STALE = "skipped_stale"
    SKIPPED_REDACTED = "skipped_redacted"
    QUARANTINED = "quarantined"
    NOTHING_TO_DO = "nothing_to_do"


# CRM targets the worker syncs: HubSpot and Zoho through the flusher, the client's own
# PostgreSQL database (custom) through storesync.customdb.writer.
SYNCED_CRM_TARGETS = ("hubspot", "zoho", "custom")


class UnsupportedCrmTarget(Exception):
    """``CRM_TARGET`` names a CRM this release's worker does not sync."""


@dataclass
class WorkerContext:
    """State that every job of one process shares.

    Attributes:
        settings: The service settings.
        mapping: The parsed ``integration/mapping.yaml``.
        store: The sync tables of the state file.
        quarantine: The quarantine of the state file.
        fields: Field name → CRM property, per entity.
        rollup_targets: Roll-up name → CRM property of the contact.
        won_stages: Stage key or CRM stage id → whether the stage counts as a paid order.
        required: Entity → (field name, body path) of the fields a body must give.
        products_from_lines: Whether order lines make products for unknown SKUs: the
            product entity is enabled and line items point at products.
    """

    settings: Settings
    mapping: dict[str, Any]
    store: SyncStore
    quarantine: Quarantine
    fields: dict[str, dict[str, str]] = field(default_factory=dict)
    rollup_targets: dict[str, str] = field(default_factory=dict)
    won_stages: dict[str, bool] = field(default_factory=dict)
    required: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    products_from_lines: bool = False
    # The playbook runner (storesync.playbooks), when the timed playbooks are wired in.
    playbooks: Any = None
    # Records the consent a body states (storesync.consent); None leaves consent out.
    consent: ConsentRecorder | None = None


def check_crm_target(settings: Settings, mapping: Mapping[str, Any] | None = None) -> None:
    """Raise when ``CRM_TARGET`` or the field map names a CRM this release does not sync.

    Raises:
        UnsupportedCrmTarget: with a message naming the setting and the fix.
    """
    if settings.crm_target not in SYNCED_CRM_TARGETS:
        raise UnsupportedCrmTarget(
            f"CRM_TARGET={settings.crm_target} is not supported by the worker in this release: "
            "only hubspot, zoho and custom are. Set CRM_TARGET to the field map's crm, or "
            "remove it.")
    crm = (mapping or {}).get("crm", settings.crm_target)
    if crm != settings.crm_target:
        raise UnsupportedCrmTarget(
            f"The field map {settings.mapping_path} is for the CRM {crm!r}, and CRM_TARGET is "
            f"{settings.crm_target}. The intake still receives and queues webhooks; set "
            f"CRM_TARGET={crm} if that CRM is synced in this release, or generate the project "
            f"for {settings.crm_target}.")


def load_mapping(path: Path) -> dict[str, Any]:
    """Read the field map.

    Raises:
        ValueError: the file is missing, unreadable or not a YAML mapping.
    """
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ValueError(f"cannot read the field map {path}: {error}. Set SPEC_DIR to the "
                         "project's integration folder.") from error
    if not isinstance(data, dict):
        raise ValueError(f"the field map {path} is not a YAML mapping; regenerate it with rabt.")
    return data


def build_context(settings: Settings, database: Database | None = None,
                  clock: Callable[[], float] = time.time) -> WorkerContext:
    """Build the context every job of this process uses.

    Raises:
        UnsupportedCrmTarget: ``CRM_TARGET`` is not hubspot.
        ValueError: the field map cannot be read.
    """
    mapping = load_mapping(settings.mapping_path)
    check_crm_target(settings, mapping)
    db = database or Database(settings.state_path)
    tombstones.create_table(db)
    stages = (mapping.get("order_stages") or {}).get("stages") or []
    won: dict[str, bool] = {}
    for stage in stages:
        won[str(stage.get("key"))] = bool(stage.get("won"))
        if stage.get("crm_value"):
            won[str(stage["crm_value"])] = bool(stage.get("won"))
    contact = (mapping.get("entities") or {}).get("contact") or {}
    rollups = {str(item["name"]): str(item["target"]) for item in contact.get("rollups") or []
               if isinstance(item, Mapping) and item.get("target")}
    return WorkerContext(
        settings=settings, mapping=mapping, store=SyncStore(db, clock=clock),
        quarantine=Quarantine(db),
        fields={entity: properties_of(mapping, entity) for entity in WRITTEN_ENTITIES},
        rollup_targets=rollups, won_stages=won, required=required_fields(mapping),
        products_from_lines=_products_from_lines(mapping),
        consent=ConsentRecorder.from_spec(
            ConsentStore.for_settings(db, settings, clock),
            settings.spec_dir),
    )


# The worker context of each state file in this process, shared by the queue's jobs
# (storesync.tasks) and the playbook timers, which must see the same runner.
_PROCESS_CONTEXTS: dict[Path, WorkerContext] = {}
_PROCESS_CONTEXTS_LOCK = threading.Lock()


def process_context(settings: Settings) -> WorkerContext:
    """Return this process's context for the settings' state file, built on first use.

    Raises:
        UnsupportedCrmTarget: ``CRM_TARGET`` is not synced.
        ValueError: the field map cannot be read.
    """
    with _PROCESS_CONTEXTS_LOCK:
        context = _PROCESS_CONTEXTS.get(settings.state_path)
        if context is None:
            context = build_context(settings)
            _PROCESS_CONTEXTS[settings.state_path] = context
        return context


def required_fields(mapping: Mapping[str, Any]) -> dict[str, list[tuple[str, str]]]:
    """Return, per entity, the ``REQUIRED_FIELDS`` the field map has, with their body paths."""
    found: dict[str, list[tuple[str, str]]] = {}
    for name, entity in (mapping.get("entities") or {}).items():
        if not isinstance(entity, Mapping):
            continue
        for spec in entity.get("fields") or []:
            if not isinstance(spec, Mapping):
                continue
            if spec.get("name") in REQUIRED_FIELDS.get(name, ()):
                found.setdefault(str(name), []).append((str(spec["name"]),
                                                        str(spec.get("source"))))
    return found


def _products_from_lines(mapping: Mapping[str, Any]) -> bool:
    entities = mapping.get("entities") or {}
    product = entities.get("product") or {}
    links = (entities.get("line_item") or {}).get("associations") or []
    points_at_product = any(isinstance(link, Mapping) and link.get("to") == "product"
                            for link in links)
    return bool(product.get("enabled", True)) and points_at_product


# --- versions ----------------------------------------------------------------------------


def parse_time(value: Any, assume_utc: bool = False) -> float | None:
    """Read an ISO 8601 time as seconds since the epoch; None when it is not one."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        if not assume_utc:
            return None
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def payload_version(body: Mapping[str, Any], delivery: Delivery) -> float:
    """Return the time the payload's resource last changed, for the newest-state guard.

    The body's own time comes first (``updated_at``, ``date_modified_gmt``,
    ``occurred_at``); then the platform's trigger time; then the receipt time.
    """
    for path in VERSION_PATHS.get(delivery.source, ()):
        found = parse_time(body.get(path), assume_utc=path in UTC_WITHOUT_OFFSET)
        if found is not None:
            return found
    for fallback in (delivery.triggered_at, delivery.received_at):
        found = parse_time(fallback, assume_utc=True)
        if found is not None:
            return found
    return time.time()


# --- one delivery ------------------------------------------------------------------------


@dataclass
class _Plan:
    """The records of one delivery sorted by entity, and what was set aside."""

    contact: Record | None = None
    order: Record | None = None
    line_items: list[Record] = field(default_factory=list)
    others: list[Record] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    missing_keys: list[str] = field(default_factory=list)
    # Zoho: the order's lines, written as one sales order (storesync.zoho_orders).
    sales_order_lines: list[Record] = field(default_factory=list)


def _has_values(record: Record) -> bool:
    keys = {key for key, _ in record.identity}
    return any(name not in keys for name in record.properties)


def _plan(records: Sequence[Record]) -> _Plan:
    plan = _Plan()
    for record in records:
        if record.entity in SKIPPED_ENTITIES or record.entity not in WRITTEN_ENTITIES:
            plan.skipped.append(record.entity)
        elif not record.identity:
            plan.missing_keys.append(record.entity)
        elif record.entity != "contact" and not _has_values(record):
            # A refunds/create body carries only the order id here; the
            # orders/updated that follows writes the new totals.
            plan.skipped.append(record.entity)
        elif record.entity == "contact":
            plan.contact = record
        elif record.entity == "order":
            plan.order = record
        elif record.entity == "line_item":
            plan.line_items.append(record)
        else:
            plan.others.append(record)
    return plan


def _quarantine(delivery: Delivery, ctx: WorkerContext, reason: str) -> JobOutcome:
    entry = ctx.quarantine.add(delivery, reason)
    log.warning("delivery quarantined: %s", reason,
                extra={"event_id": delivery.delivery_id, "quarantine_id": entry,
                       "source": delivery.source, "topic": delivery.topic})
    return JobOutcome.QUARANTINED


def handle_delivery(delivery: Delivery, ctx: WorkerContext,
                    mapped: MappedRecords | None = None) -> JobOutcome:
    """Map one delivery and put its records in the outbox.

    ``mapped`` is the engine's result for this delivery's body when the caller has
    already mapped it (the custom database step does); the body is then not mapped
    again.

    Returns:
        ``synced_later`` when records went to the outbox. ``skipped_stale`` when
        every record was older than (or the same as) the state already seen.
        ``skipped_redacted`` when a redaction of the customer or shop came after
        the delivery arrived, or, for a record read by reconciliation or backfill,
        after the store made it (see :mod:`storesync.tombstones`). ``quarantined``
        when the field map could not use the body. ``nothing_to_do``
        when the delivery carries nothing this release writes.
    """
    started = time.perf_counter()
    outcome, resource = _process(delivery, ctx, mapped)
    log.info("job %s", outcome.value, extra={
        "event_id": delivery.delivery_id, "source": delivery.source, "topic": delivery.topic,
        "resource": resource, "outcome": outcome.value,
        "duration_ms": round(1000 * (time.perf_counter() - started), 1)})
    return outcome


def _process(delivery: Delivery, ctx: WorkerContext,
             mapped: MappedRecords | None = None) -> tuple[JobOutcome, str | None]:
    try:
        body = json.loads(delivery.body)
    except json.JSONDecodeError as error:
        return _quarantine(delivery, ctx, f"the body is not valid JSON: {error.msg} at "
                                          f"character {error.pos}"), None
    with ctx.store.db.reading() as reader:
        request_id = tombstones.redaction_of(reader, delivery, body)
    if request_id is not None and delivery.read_from_store:
        # Only the two ids are logged, never the body: the data it names has been erased.
        log.info("store record skipped: made before the redaction of its customer or shop",
                 extra={"event_id": delivery.delivery_id, "privacy_request_id": request_id})
        return JobOutcome.SKIPPED_REDACTED, None
    if request_id is not None:
        # Logged without the body: the data it names has been erased.
        log.info("delivery skipped: its customer or shop was redacted after it arrived",
                 extra={"event_id": delivery.delivery_id, "privacy_request_id": request_id,
                        "source": delivery.source, "topic": delivery.topic})
        return JobOutcome.SKIPPED_REDACTED, None
    if mapped is None:
        mapped = map_payload(ctx.mapping, delivery.source, delivery.topic, body)
    if not mapped.records:
        if mapped.problems:
            return _quarantine(delivery, ctx, " ".join(mapped.problems)), None
        return JobOutcome.NOTHING_TO_DO, None
    # Store ids repeat across shops, so their keys name the shop.
    shop = shop_part(delivery.source, delivery.shop)
    customer_id_target = ctx.fields["contact"].get("store_customer_id")
    records = [scope_record(record, shop, customer_id_target) for record in mapped.records]
    lines: list[Record] = []
    if ctx.settings.crm_target == "zoho":
        records, lines = zoho_orders.split_lines(records)
    plan = _plan(records)
    plan.sales_order_lines = lines
    if plan.missing_keys and plan.missing_keys != ["contact"]:
        reason = (f"the field map found no identity key for: {', '.join(plan.missing_keys)}. "
                  + " ".join(mapped.problems))
        return _quarantine(delivery, ctx, reason.strip()), None
    missing = _missing_required(ctx, mapped.records)
    if missing:
        return _quarantine(delivery, ctx, missing), None
    if plan.missing_keys:
        log.warning("contact skipped: the body has no store customer id, phone or email",
                    extra={"event_id": delivery.delivery_id, "source": delivery.source})
    resource = _resource_name(plan)
    # Checkout events set contact roll-ups on HubSpot and Zoho CRM. The contact they find
    # is the one the abandoned-cart timer starts for. The custom database keeps the events
    # themselves (storesync.customdb.deliveries).
    checkout = (checkout_of(ctx.mapping, ctx.rollup_targets, mapped.records)
                if ctx.settings.crm_target in CHECKOUT_CRM_TARGETS else None)
    if checkout is None and ctx.settings.crm_target == "hubspot" and has_events(mapped.records):
        note_unsent(delivery, None)
    if plan.contact is None and plan.order is None and not plan.line_items and not plan.others \
            and checkout is None:
        return JobOutcome.NOTHING_TO_DO, resource
    version = payload_version(body, delivery)
    writes = _write(delivery, ctx, plan, version, shop, body, checkout)
    if writes.checkout_unsent is not None:
        note_unsent(delivery, writes.checkout_unsent)
        if not writes.count:
            return JobOutcome.NOTHING_TO_DO, resource
    return (JobOutcome.SYNCED_LATER if writes.count else JobOutcome.SKIPPED_STALE), resource


def _missing_required(ctx: WorkerContext, records: Sequence[Record]) -> str | None:
    """Return why the records cannot be used when one lacks a required field, else None."""
    gaps = []
    for record in records:
        for name, source in ctx.required.get(record.entity, ()):
            if MISSING_FLAG in record.flags.get(name, ()):
                gaps.append(f"{record.entity}.{name} (from {source})")
    if not gaps:
        return None
    return (f"the body has no value for {', '.join(gaps)}, which the field map requires, "
            "so nothing was synced.")


def _resource_name(plan: _Plan) -> str | None:
    for record in (plan.order, *plan.others, plan.contact):
        if record is not None and record.identity:
            # Contact keys are phones and emails, so only other resources are named.
            if record.entity == "contact":
                return "contact"
            return f"{WRITTEN_ENTITIES[record.entity]}:{record.identity[0][1]}"
    return None


# --- writing -----------------------------------------------------------------------------


def _id_choice(ctx: WorkerContext, record: Record) -> tuple[str | None, str | None]:
    """Pick the upsert key of a record: email, then the unique phone, then the store id."""
    if record.entity != "contact":
        key, value = record.identity[0]
        return key, str(value)
    fields = ctx.fields["contact"]
    for name in ("email", "phone_e164", "store_customer_id"):
        target = fields.get(name)
        if target and record.properties.get(target):
            return target, str(record.properties[target])
    return None, None


def _identity_keys(ctx: WorkerContext, record: Record) -> list[tuple[str, str]]:
    """Return the contact's identity keys as (match key name, value), in match order."""
    kinds = {}
    for entry in (ctx.mapping.get("identity") or {}).get("match_order") or []:
        if isinstance(entry, Mapping) and entry.get("target"):
            kinds[str(entry["target"])] = str(entry.get("key"))
    return [(kinds.get(target, target), str(value)) for target, value in record.identity]


def _item(ctx: WorkerContext, record: Record, key: str, event_id: str,
          properties: dict[str, Any] | None = None) -> OutboxItem:
    obj = WRITTEN_ENTITIES[record.entity]
    id_property, id_value = _id_choice(ctx, record)
    return OutboxItem(object=obj, key=key, properties=dict(properties or record.properties),
                      id_property=id_property, id_value=id_value, event_id=event_id,
                      resource=f"{obj}:{key}")


def _link(from_obj: str, from_key: str, to_obj: str, to_key: str, type_id: Any,
          event_id: str) -> OutboxItem:
    # HubSpot links by association type id; Zoho by a lookup field's name.
    kind = {"type_id": int(type_id)} if str(type_id).isdigit() else {"lookup": str(type_id)}
    return OutboxItem(
        object=f"assoc:{from_obj}:{to_obj}", key=f"{from_key}|{to_key}",
        properties={"from_key": from_key, "to_key": to_key, **kind},
        event_id=event_id, resource=f"{from_obj}:{from_key}")


def _association_type(ctx: WorkerContext, entity: str, to: str) -> Any:
    entities = ctx.mapping.get("entities") or {}
    for link in (entities.get(entity) or {}).get("associations") or []:
        if isinstance(link, Mapping) and link.get("to") == to and \
                link.get("kind") in ("association", "lookup"):
            return link.get("ref")
    return None


@dataclass
class _Writes:
    shop: str
    count: int = 0
    contact_key: str | None = None
    contact_id_property: str | None = None
    contact_id_value: str | None = None
    # Why a checkout event's roll-ups were not sent, when they were not.
    checkout_unsent: str | None = None


def _write(delivery: Delivery, ctx: WorkerContext, plan: _Plan, version: float,
           shop: str, body: Any = None, checkout: Checkout | None = None) -> _Writes:
    """Apply one delivery's records in one transaction; ``count`` is how many were not stale."""
    event_id = delivery.delivery_id

    def apply(conn: Any) -> _Writes:
        writes = _Writes(shop=shop)
        if plan.contact is not None:
            _write_contact(conn, ctx, plan.contact, version, event_id, writes)
            if ctx.consent is not None and writes.contact_key is not None:
                ctx.consent.record_body(conn, writes.contact_key, body, delivery.source, version)
        order_key = None
        if plan.order is not None:
            order_key = _write_order(conn, ctx, plan.order, version, event_id, writes)
        for line in plan.line_items:
            _write_line_item(conn, ctx, line, order_key, version, event_id, writes)
        for record in plan.others:
            _write_other(conn, ctx, record, version, event_id, writes)
        if plan.order is not None and plan.sales_order_lines:
            _write_sales_order(conn, ctx, plan, str(order_key), version, event_id, writes)
        if checkout is not None:
            _write_checkout(conn, ctx, checkout, version, event_id, writes)
        if ctx.playbooks is not None:
            from .playbooks import observe_delivery

            observe_delivery(ctx, conn, delivery, plan.contact, writes, order_key)
        return writes

    # Deliveries handled at the same time by other consumer threads share the commit.
    return ctx.store.write_together(apply)


def _write_sales_order(conn: Any, ctx: WorkerContext, plan: _Plan, order_key: str,
                       version: float, event_id: str, writes: _Writes) -> None:
    """Put the order's Zoho sales order, and products for unknown SKUs, in the outbox."""
    for line in plan.sales_order_lines:
        if ctx.products_from_lines:
            _product_from_line(conn, ctx, line, event_id, writes)
    if ctx.store.check_version(conn, f"sales_orders:{order_key}", version, event_id) != "newer":
        return
    assert plan.order is not None
    subject = plan.order.properties.get(ctx.fields["order"].get("deal_name", "")) or order_key
    item = zoho_orders.sales_order_item(order_key, str(subject), plan.sales_order_lines,
                                        ctx.fields["line_item"], event_id)
    if item is not None:
        ctx.store.enqueue(conn, item)
        writes.count += 1


def _write_checkout(conn: Any, ctx: WorkerContext, checkout: Checkout, version: float,
                    event_id: str, writes: _Writes) -> None:
    named = (ContactRef(writes.contact_key, writes.contact_id_property, writes.contact_id_value)
             if writes.contact_key is not None else None)
    contact, writes.checkout_unsent = contact_for(
        conn, checkout, named, ctx.fields["contact"].get("email", "email"))
    if contact is not None and named is None:
        # A pixel or storefront event carries no contact record, so the contact found by
        # its email is the one the abandoned-cart playbook schedules for.
        writes.contact_key = contact.key
        writes.contact_id_property, writes.contact_id_value = contact.id_property, contact.id_value
    # A pixel body has no updated_at, so the event's own time orders checkouts.
    checkout_version = parse_time(checkout.occurred_at) or version
    if contact is not None and write_checkout(conn, ctx.store, checkout, contact,
                                              checkout_version, event_id):
        writes.count += 1


def _write_contact(conn: Any, ctx: WorkerContext, record: Record, version: float,
                   event_id: str, writes: _Writes) -> None:
    match = ctx.store.match_contact(conn, _identity_keys(ctx, record))
    writes.contact_key = match.contact_key
    if match.shared_phone:
        record = _without_unique_phone(ctx, record, match.contact_key, event_id)
    if not match.created and ctx.store.has_record(conn, "contacts", match.contact_key):
        record = _without_placeholders(ctx, record)
    writes.contact_id_property, writes.contact_id_value = _id_choice(ctx, record)
    conflicts = [kind for kind in match.conflicts
                 if not (match.shared_phone and kind == PHONE_KIND)]
    if conflicts:
        log.warning("identity keys point to different contacts; writing to the first match",
                    extra={"event_id": event_id, "resource": f"contacts:{match.contact_key}",
                           "conflicting_keys": conflicts})
    state = ctx.store.check_version(conn, f"contacts:{match.contact_key}", version, event_id)
    if state == "newer":
        ctx.store.enqueue(conn, _item(ctx, record, match.contact_key, event_id))
        writes.count += 1


def _without_placeholders(ctx: WorkerContext, record: Record) -> Record:
    """Drop the placeholders of required fields the body left empty (Zoho's Last_Name "-").

    A placeholder only lets the CRM create the record. Once the contact has a CRM id or
    a waiting outbox row, the field already has a value there, which the placeholder
    would overwrite.

    NOTE: if the contact was deleted in the CRM since, the flusher creates it again from
    this row, and Zoho rejects the row without Last_Name into the dead letters.
    """
    targets = {ctx.fields["contact"].get(name) for name, flags in record.flags.items()
               if PLACEHOLDER_FLAG in flags}
    if not targets:
        return record
    properties = {name: value for name, value in record.properties.items()
                  if name not in targets}
    return replace(record, properties=properties)


def _without_unique_phone(ctx: WorkerContext, record: Record, contact_key: str,
                          event_id: str) -> Record:
    """Drop the unique phone property, which stays with the contact that had the phone first.

    The phone stays in the ordinary phone property of both contacts.
    """
    target = ctx.fields["contact"].get("phone_e164")
    email_target = ctx.fields["contact"].get("email", "email")
    value = record.properties.get(target) if target else None
    if target is None or value is None:
        return record
    properties = {name: item for name, item in record.properties.items() if name != target}
    metrics.UNIQUE_VALUE_CONFLICTS.labels(object="contacts", property=target).inc()
    log.warning("phone held by a contact with another email; this contact is written without "
                "the unique phone property", extra={
                    "event_id": event_id, "resource": f"contacts:{contact_key}",
                    "property": target, "phone": mask_phone(str(value)),
                    "email": mask_email(str(record.properties.get(email_target) or ""))})
    return replace(record, properties=properties)


def _write_order(conn: Any, ctx: WorkerContext, record: Record, version: float,
                 event_id: str, writes: _Writes) -> str:
    key = str(record.identity[0][1])
    state = ctx.store.check_version(conn, f"deals:{key}", version, event_id)
    if state != "newer":
        return key
    ctx.store.enqueue(conn, _item(ctx, record, key, event_id))
    writes.count += 1
    fields = OrderFields.from_targets(ctx.fields["order"])
    ctx.store.save_order(conn, order_state(key, writes.contact_key, record.properties, fields,
                                           ctx.won_stages))
    if writes.contact_key is None:
        return key
    type_id = _association_type(ctx, "order", "contact")
    if type_id is not None:
        ctx.store.enqueue(conn, _link("deals", key, "contacts", writes.contact_key, type_id,
                                      event_id))
    orders = ctx.store.contact_orders(conn, writes.contact_key)
    rollups = compute_rollups(orders, ctx.rollup_targets)
    # The contact's upsert key goes along, because its own record may have been older
    # than the state already seen and so not be waiting in the outbox.
    contact_item = OutboxItem(object="contacts", key=writes.contact_key, properties=rollups,
                              id_property=writes.contact_id_property,
                              id_value=writes.contact_id_value, event_id=event_id,
                              resource=f"contacts:{writes.contact_key}")
    ctx.store.enqueue(conn, contact_item)
    return key


def _write_line_item(conn: Any, ctx: WorkerContext, record: Record, order_key: str | None,
                     version: float, event_id: str, writes: _Writes) -> None:
    key = str(record.identity[0][1])
    if ctx.products_from_lines:
        _product_from_line(conn, ctx, record, event_id, writes)
    if ctx.store.check_version(conn, f"line_items:{key}", version, event_id) != "newer":
        return
    ctx.store.enqueue(conn, _item(ctx, record, key, event_id))
    writes.count += 1
    type_id = _association_type(ctx, "line_item", "order")
    if order_key is not None and type_id is not None:
        ctx.store.enqueue(conn, _link("line_items", key, "deals", order_key, type_id, event_id))


def _product_from_line(conn: Any, ctx: WorkerContext, line: Record, event_id: str,
                       writes: _Writes) -> None:
    """Put a product made from an order line in the outbox when no product has its SKU.

    The product is keyed ``<shop>:sku:<sku>`` and only ever written this once from
    orders; a product webhook with the same SKU later updates that same record.
    """
    sku = line.properties.get(ctx.fields["line_item"].get("sku", ""))
    product_fields = ctx.fields["product"]
    id_target = product_fields.get("store_product_id")
    if not sku or id_target is None:
        return
    scoped_sku = sku_key(writes.shop, str(sku))
    if ctx.store.product_for_sku(conn, scoped_sku) is not None:
        return
    key = product_key_from_sku(writes.shop, str(sku))
    properties: dict[str, Any] = {id_target: key}
    for product_field, line_field in PRODUCT_FIELDS_FROM_LINE:
        target = product_fields.get(product_field)
        value = line.properties.get(ctx.fields["line_item"].get(line_field, ""))
        if target is not None and value is not None:
            properties[target] = value
    ctx.store.enqueue(conn, OutboxItem(object="products", key=key, properties=properties,
                                       id_property=id_target, id_value=key, event_id=event_id,
                                       resource=f"products:{key}"))
    ctx.store.save_product_sku(conn, scoped_sku, key)
    writes.count += 1


def _product_key(conn: Any, ctx: WorkerContext, record: Record, key: str,
                 shop: str) -> tuple[Record, str, str | None]:
    """Return the product record and key to write, and its shop-scoped SKU.

    A SKU that already has a product (one made from an order line, or another
    variant with the same SKU) keeps that product's key, so HubSpot holds one
    product per SKU and the line items that point at it stay linked.
    """
    sku_target = ctx.fields["product"].get("sku")
    sku = record.properties.get(sku_target) if sku_target else None
    if not sku:
        return record, key, None
    scoped_sku = sku_key(shop, str(sku))
    known = ctx.store.product_for_sku(conn, scoped_sku)
    if known is None or known == key:
        return record, key, scoped_sku
    target = record.identity[0][0]
    properties = {**record.properties, target: known}
    return replace(record, properties=properties, identity=[(target, known)]), known, scoped_sku


def _write_other(conn: Any, ctx: WorkerContext, record: Record, version: float,
                 event_id: str, writes: _Writes) -> None:
    obj = WRITTEN_ENTITIES[record.entity]
    key = str(record.identity[0][1])
    scoped_sku = None
    if record.entity == "product":
        record, key, scoped_sku = _product_key(conn, ctx, record, key, writes.shop)
    if ctx.store.check_version(conn, f"{obj}:{key}", version, event_id) != "newer":
        return
    ctx.store.enqueue(conn, _item(ctx, record, key, event_id))
    writes.count += 1
    if scoped_sku is not None:
        ctx.store.save_product_sku(conn, scoped_sku, key)


def start_background(settings: Settings) -> Callable[[], None]:
    """Start the metrics snapshots and the CRM writer beside the consumer; return the stop.

    The CRM writer is the customer database writer for ``CRM_TARGET=custom``, and the
    HubSpot flusher thread only when ``SYNC_FLUSHER=thread``; with ``process`` the
    ``flusher`` command runs it. Called by the ``worker`` command before the consumer
    starts. A CRM target this release does not sync, or (with the flusher thread) a
    sandbox pointed at the real HubSpot, stops the process here with exit code 2 and a
    message, before any job runs.
    """
    from .flusher import start_flusher

    try:
        check_crm_target(settings)
        check_crm_target(settings, load_mapping(settings.mapping_path))
    except (UnsupportedCrmTarget, ValueError) as error:
        sys.stderr.write(f"Error: {error}\n")
        raise SystemExit(2) from error
    # The playbook timers fire in this process, on the context the jobs use.
    stop_playbooks = (_start_playbook_timers(settings) if settings.crm_target in PLAYBOOK_TARGETS
                      else _nothing_to_stop)
    # The metrics reach the web's /metrics through snapshots in the shared backend.
    stop_publisher = _stop_in_turn(metrics.start_publisher(settings), stop_playbooks)
    # Reconciliation and the webhook subscription check (off without store credentials).
    from .store_jobs import start_store_jobs

    stop_publisher = _stop_in_turn(start_store_jobs(settings), stop_publisher)
    # Privacy requests and consent propagation run in a thread of every worker process.
    from .privacy_runner import start_privacy_thread

    stop_publisher = _stop_in_turn(start_privacy_thread(settings), stop_publisher)
    if settings.crm_target == "custom":
        from .customdb.writer import start_writer

        return _stop_in_turn(start_writer(settings), stop_publisher)
    if settings.sync_flusher == "process":
        return stop_publisher
    return _stop_in_turn(start_flusher(settings), stop_publisher)


# CRM targets whose worker runs the playbook timers. NOTE: custom-database projects get
# none yet: storesync.customdb.deliveries does not hand deliveries to the runner.
PLAYBOOK_TARGETS = ("hubspot", "zoho")


def _nothing_to_stop() -> None:
    return None


def _start_playbook_timers(settings: Settings) -> Callable[[], None]:
    """Attach the playbook runner to this process's context and start its loop.

    The consent gate is the store the context records consent in, so the steps check
    the same contact keys the deliveries wrote. A spec the timers cannot use
    stops the process with exit code 2 and the message, before any job runs.
    """
    from .discounts import DiscountConfigError, build_issuer
    from .playbook_config import PlaybookConfigError
    from .playbook_wiring import start_playbooks

    context = process_context(settings)
    db = context.store.db
    consent = (context.consent.store if context.consent is not None
               else ConsentStore.for_settings(db, settings))
    try:
        stop = start_playbooks(settings, context, consent, build_issuer(settings, db))
    except (PlaybookConfigError, DiscountConfigError) as error:
        sys.stderr.write(f"Error: {error}\n")
        raise SystemExit(2) from error

    def stop_and_detach() -> None:
        stop()
        context.playbooks = None

    return stop_and_detach


def _stop_in_turn(*stops: Callable[[], None]) -> Callable[[], None]:
    """Return a function that calls each stop function in order."""
    def stop() -> None:
        for stop_one in stops:
            stop_one()

    return stop
