"""The flusher: drain the outbox to HubSpot in batches of up to 100, in dependency order.

Each cycle writes contacts, products and tickets first, then deals, then line items,
which point at their product through ``hs_product_id``. The v4 associations deal →
contact and line item → deal follow once both ends have HubSpot ids.

Contacts the identity table already knows are updated by id (``batch/update``);
others are upserted by email, by the unique phone property when they have no email,
or by the store customer id. Deals, line items, products and tickets are upserted
by their unique key property. A partly filled batch waits up to
``SYNC_BATCH_WINDOW_MS`` for more records, and up to ``BATCH_HOLD_WINDOWS`` of those
windows while records of its object keep arriving, so a busy store sends full batches.

The batch calls run on sender threads. While they run, the cycle reads and queues the
next object's batches, so the rate limit, not the reads and the state-file commits,
sets the pace. An object is read again only after every batch of it has its outcome
recorded, so a record is never in two batches at once, and only after the objects it
depends on (``dependencies_of``) have theirs, so their HubSpot ids are known.

Outcomes per record: written (the row leaves the outbox and its HubSpot id is kept);
rejected with a 4xx data error (dead letter with HubSpot's message); 5xx, timeout or
a run of 429s (retried with exponential backoff and full jitter until
``SYNC_MAX_ATTEMPTS``, then dead-lettered). A 400 or 409 for a whole batch is split
in halves until the bad record is alone, so one bad record never fails the other 99.
A daily-limit 429 or a rejected token pauses the flusher instead of spinning.
"""

from __future__ import annotations

import logging
import math
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any

import httpx
import redis

from . import metrics
from .crm_client import CrmClient
from .flusher_lock import OutboxLock, open_flusher_lock
from .heartbeat import HeartbeatStore, HeartbeatWriter, open_heartbeat
from .hubspot import (
    BATCH_LIMIT,
    CONFLICT_CATEGORY,
    CONFLICT_STATUS,
    NOT_FOUND_CATEGORY,
    AuthFailed,
    BatchRejected,
    BatchResult,
    CrmUnavailable,
    DailyLimitReached,
    HubSpotClient,
    HubSpotError,
    SettingsRejected,
    error_message,
)
from .logs import mask_email, mask_phone
from .record_keys import shop_of_key, sku_key
from .runtime.ratelimit import backoff_seconds
from .sync_store import OutboxRow, SyncStore, properties_of, unique_properties_of
from .zoho_credits import CreditsExhausted

log = logging.getLogger("storesync.flusher")

RECORD_STAGES: tuple[tuple[str, ...], ...] = (
    ("contacts", "products", "tickets"),
    ("deals",),
    ("line_items",),
)
ASSOCIATION_PREFIX = "assoc:"
HUBSPOT_DEFINED = "HUBSPOT_DEFINED"
# Rows read per object and cycle; more stay for the next cycle.
MAX_ROWS_PER_CYCLE = 2000
# Batch calls on their way to HubSpot at once. In the sync bench a call took about as long
# as the rate limit allows per call, so with one call at a time the flusher stayed below
# the limit whenever a response came late.
MAX_CALLS_IN_FLIGHT = 2
# Batches queued for the sender threads before the cycle stops reading more objects.
# Reading and queueing one object took about 40 ms on average in an 8,000-order sync
# bench run, and four calls take about 200 ms at 190 per 10 s. So the senders seldom
# wait for a read, and rows are still read shortly before they are sent.
MAX_BATCHES_QUEUED = 4
# How many batch windows a partly filled batch is held at most while its object keeps
# getting new rows.
BATCH_HOLD_WINDOWS = 10
# Record objects whose HubSpot ids a batch of the key object needs: a line item points
# at its product through ``hs_product_id``. An association needs both of its ends.
RECORD_DEPENDENCIES: dict[str, tuple[str, ...]] = {"line_items": ("products",),
                                                   "sales_orders": ("products", "deals")}

_EMAIL = re.compile(r"[^\s@\"',;:<>()\[\]{}]+@[^\s@\"',;:<>()\[\]{}]+")
_PHONE = re.compile(r"\+?\d[\d \-]{7,}\d")


def scrub_personal_data(text: str) -> str:
    """Mask emails and phone numbers inside a CRM error message before it is logged."""
    text = _EMAIL.sub(lambda match: mask_email(match.group(0)), text)
    return _PHONE.sub(lambda match: mask_phone(match.group(0)), text)


class SetupError(Exception):
    """HubSpot lacks something the sync needs, such as the deal pipeline."""


@dataclass
class FlushReport:
    """Outcome of one cycle: calls made, and records by outcome and object."""

    calls: int = 0
    synced: Counter[str] = field(default_factory=Counter)
    dead_lettered: Counter[str] = field(default_factory=Counter)
    retried: Counter[str] = field(default_factory=Counter)
    waiting: int = 0
    submitted: int = 0
    paused: bool = False


@dataclass
class _Outcome:
    synced: list[tuple[OutboxRow, str | None]] = field(default_factory=list)
    retried: list[tuple[OutboxRow, float, str, bool]] = field(default_factory=list)
    dead: list[tuple[OutboxRow, int | None, str]] = field(default_factory=list)
    # Rows to send again without some unique properties: the properties, the error
    # and the time the row is due again.
    unique_conflicts: list[tuple[OutboxRow, list[str], str, float]] = field(
        default_factory=list)


class _Paused(Exception):
    """Stops the current cycle; the flusher is paused until ``paused_until``."""


def _chunks(rows: Sequence[OutboxRow], size: int) -> Iterator[list[OutboxRow]]:
    for start in range(0, len(rows), size):
        yield list(rows[start:start + size])


def dependencies_of(obj: str) -> tuple[str, ...]:
    """Return the objects whose writes must be recorded before ``obj`` is read."""
    if obj.startswith(ASSOCIATION_PREFIX):
        _, from_obj, to_obj = obj.split(":", 2)
        return (from_obj, to_obj)
    return RECORD_DEPENDENCIES.get(obj, ())


class Flusher:
    """Writes the outbox to HubSpot; ``flush_once`` is one steppable cycle."""

    # What a cleared property is sent as: HubSpot's objects API clears a property
    # given an empty string.
    cleared_value: Any = ""
    # The CRM's name in log messages.
    crm_name = "HubSpot"

    def __init__(
        self,
        store: SyncStore,
        client: CrmClient,
        mapping: Mapping[str, Any],
        *,
        batch_window_seconds: float = 0.5,
        max_attempts: int = 8,
        backoff_base_seconds: float = 2.0,
        backoff_max_seconds: float = 600.0,
        daily_limit_pause_seconds: float = 900.0,
        auth_failure_pause_seconds: float = 60.0,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        heartbeat: Callable[[], None] | None = None,
    ) -> None:
        """Create a flusher; call :meth:`resolve_stages` before the first cycle.

        ``heartbeat`` is called often while :meth:`run` loops; it must return quickly.
        """
        self.store = store
        self.client = client
        self.mapping = mapping
        self.batch_window_seconds = batch_window_seconds
        self.max_batch_wait_seconds = batch_window_seconds * BATCH_HOLD_WINDOWS
        self.heartbeat = heartbeat or (lambda: None)
        self.max_attempts = max_attempts
        self.backoff_base_seconds = backoff_base_seconds
        self.backoff_max_seconds = backoff_max_seconds
        self.daily_limit_pause_seconds = daily_limit_pause_seconds
        self.auth_failure_pause_seconds = auth_failure_pause_seconds
        self.clock = clock
        self.rng = rng or random.Random()
        self.paused_until = 0.0
        self.record_stages = RECORD_STAGES
        stages = mapping.get("order_stages") or {}
        self.pipeline_property = str((stages.get("pipeline") or {}).get("field") or "pipeline")
        self.stage_property = properties_of(mapping, "order").get("stage", "dealstage")
        self.sku_property = properties_of(mapping, "line_item").get("sku", "hs_sku")
        self.unique_properties = unique_properties_of(mapping)
        self.unique_phone_property = properties_of(mapping, "contact").get("phone_e164")
        self.pipeline_id: str | None = None
        self.stage_ids: dict[str, str] = {}
        # A batch's outcome is written to the state file by this thread while the next
        # batch is on its way to HubSpot. A state-file commit takes about as long as a
        # batch call while the worker writes too, so doing both in turn would halve the
        # calls per second.
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="flusher-write")
        # Batches go out on these threads, so the next call does not wait for the
        # previous response, nor for the cycle to read the next object.
        self._sender = ThreadPoolExecutor(max_workers=MAX_CALLS_IN_FLIGHT,
                                          thread_name_prefix="flusher-send")
        # Calls and outcome writes not yet waited for, by object; see :meth:`_settle`.
        self._sends: dict[str, list[Future[Any]]] = {}
        self._writes: dict[str, list[Future[Any]]] = {}
        self._tracking = threading.Lock()
        # Batches submitted to the sender threads that no thread has started yet.
        self._queued = 0
        self._room = threading.Condition()
        self._pausing = threading.Event()

    # --- set-up ----------------------------------------------------------------------

    def resolve_stages(self) -> None:
        """Find the deal pipeline and stage ids in HubSpot by label, once, and cache them.

        A ``crm_value`` already filled in the field map wins over the label.

        Raises:
            SetupError: the pipeline or a stage is missing in HubSpot.
            HubSpotError: HubSpot could not be asked.
        """
        table = self.mapping.get("order_stages") or {}
        pipeline = table.get("pipeline") or {}
        stages = [stage for stage in table.get("stages") or [] if isinstance(stage, Mapping)]
        self.stage_ids = {str(stage["key"]): str(stage["crm_value"]) for stage in stages
                          if stage.get("crm_value")}
        self.pipeline_id = str(pipeline["crm_value"]) if pipeline.get("crm_value") else None
        if self.pipeline_id is not None and len(self.stage_ids) == len(stages):
            return
        label = str((pipeline.get("name") or {}).get("en") or "")
        found = next((item for item in self.client.pipelines("deals")
                      if str(item.get("label", "")).casefold() == label.casefold()), None)
        if found is None:
            raise SetupError(
                f"HubSpot has no deal pipeline labelled {label!r}. Create the pipeline and its "
                "stages from crm/desired-state.yaml, or fill order_stages.pipeline.crm_value "
                "and each stage's crm_value in integration/mapping.yaml with HubSpot's ids.")
        self.pipeline_id = self.pipeline_id or str(found["id"])
        by_label = {str(stage.get("label", "")).casefold(): str(stage.get("id"))
                    for stage in found.get("stages") or [] if isinstance(stage, Mapping)}
        missing = []
        for stage in stages:
            key = str(stage["key"])
            stage_label = str((stage.get("label") or {}).get("en") or "").casefold()
            if key not in self.stage_ids and stage_label in by_label:
                self.stage_ids[key] = by_label[stage_label]
            elif key not in self.stage_ids:
                missing.append(str((stage.get("label") or {}).get("en") or key))
        if missing:
            raise SetupError(
                f"The HubSpot pipeline {label!r} has no stage labelled {', '.join(missing)}. "
                "Add the stages from crm/desired-state.yaml, or fill their crm_value in "
                "integration/mapping.yaml.")
        log.info("deal pipeline resolved", extra={"resource": f"pipelines:{self.pipeline_id}",
                                                  "stages": len(self.stage_ids)})

    # --- one cycle -------------------------------------------------------------------

    def flush_once(self, now: float | None = None, force: bool = False) -> FlushReport:
        """Send every due batch once, in dependency order, and record every outcome.

        Args:
            now: The current time (seconds since the epoch); the clock when None.
            force: Send partly filled batches without waiting for the batch window.
        """
        calls_before = self.client.calls
        try:
            report = self._cycle(now, force)
        finally:
            paused = self._drain()
        report.paused = report.paused or paused
        report.calls = self.client.calls - calls_before
        return report

    def run(self, stop: threading.Event) -> None:
        """Flush until ``stop`` is set.

        Unlike :meth:`flush_once`, a cycle does not wait for its last batches, so the next
        cycle reads other objects while they are sent. A cycle that queues nothing is
        followed by a wait for the next batch to end, or by half a batch window (at
        least 50 ms) when no batch is out.
        """
        idle_wait = max(0.05, self.batch_window_seconds / 2)
        try:
            while not stop.is_set():
                self.heartbeat()
                try:
                    report = self._cycle(None, False, skip_busy=True)
                except _Paused:
                    continue
                except Exception:  # keep the loop alive; the next cycle retries
                    log.exception("flush cycle failed")
                    stop.wait(idle_wait)
                    continue
                if report.submitted:
                    continue
                # Nothing new to send: read again once a batch still out has ended, or
                # after an idle wait when none is out.
                if not self._wait_for_any(idle_wait):
                    stop.wait(idle_wait)
        finally:
            # Stop after the calls already out: queued batches stay in the outbox as
            # they are, as during a pause.
            self._pausing.set()
            self._drain()

    def _cycle(self, now: float | None, force: bool, skip_busy: bool = False) -> FlushReport:
        """Read each object in dependency order and queue its due batches.

        Batches of an earlier cycle may still be out when this returns; see
        :meth:`_settle`. With ``now`` None, each object is read at the clock's time
        then, because waiting for earlier batches can take seconds. With
        ``skip_busy``, an object whose own or dependencies' batches are still out is
        left for the next cycle instead of waited for, so the senders keep working
        through the queue meanwhile.
        """
        report = FlushReport()
        if (self.clock() if now is None else now) < self.paused_until:
            report.paused = True
            return report
        if self._pausing.is_set():
            # Batches skipped during the pause must have ended before sends resume.
            self._drain()
            self._pausing.clear()
        try:
            for objects in self.record_stages:
                for obj in objects:
                    if self._before_read(obj, skip_busy):
                        self._flush_records(obj, self.clock() if now is None else now, force,
                                            report)
            for obj in sorted(self.store.pending_objects()):
                if obj.startswith(ASSOCIATION_PREFIX) and self._before_read(obj, skip_busy):
                    self._flush_links(obj, self.clock() if now is None else now, force,
                                      report)
        except _Paused:
            report.paused = True
        return report

    def _before_read(self, obj: str, skip_busy: bool) -> bool:
        """Wait until ``obj`` and its dependencies are recorded and the send queue has room.

        Returns:
            Whether to read ``obj`` now. It is False, without any wait, when
            ``skip_busy`` is set and a batch of ``obj`` or of a dependency is still out.
        """
        self.heartbeat()
        objects = (obj, *dependencies_of(obj))
        if skip_busy and self._busy(*objects):
            return False
        self._settle(*objects)
        with self._room:
            while self._queued >= MAX_BATCHES_QUEUED:
                self._room.wait()
        return True

    def _wait_for_any(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for one call or write to end; False when none is out."""
        with self._tracking:
            futures = [future for tracked in (*self._sends.values(), *self._writes.values())
                       for future in tracked if not future.done()]
        if futures:
            wait(futures, timeout=timeout, return_when=FIRST_COMPLETED)
        return bool(futures)

    def _busy(self, *objects: str) -> bool:
        """Return whether a call or outcome write of ``objects`` has not ended yet."""
        with self._tracking:
            # A call hands its outcome to the writer before it ends, so calls are
            # checked before writes.
            sends = [future for obj in objects for future in self._sends.get(obj, [])]
            if not all(future.done() for future in sends):
                return True
            writes = [future for obj in objects for future in self._writes.get(obj, [])]
            return not all(future.done() for future in writes)

    def _drain(self) -> bool:
        """Wait for every batch still out; return whether one of them paused the flusher."""
        try:
            self._settle(*self._tracked())
        except _Paused:
            return True
        return False

    # --- records ---------------------------------------------------------------------

    def _ready(self, chunk: Sequence[OutboxRow], now: float, force: bool,
               newest: float) -> bool:
        """Return whether a chunk goes now.

        A chunk goes when it is full or forced. A partly filled one goes once its oldest
        row has waited a batch window and no row of its object arrived for a window
        (``newest`` is the latest arrival), or once that row has waited
        ``max_batch_wait_seconds`` while rows keep arriving.
        """
        if force or len(chunk) >= BATCH_LIMIT:
            return True
        waited = now - min(row.enqueued_at for row in chunk)
        if waited >= self.max_batch_wait_seconds:
            return True
        return waited >= self.batch_window_seconds and now - newest >= self.batch_window_seconds

    @staticmethod
    def _newest_arrival(rows: Sequence[OutboxRow], now: float) -> float:
        """Return when the latest of ``rows`` arrived; ``now`` when more rows wait unread."""
        if len(rows) >= MAX_ROWS_PER_CYCLE:
            return now
        return max(row.enqueued_at for row in rows)

    def _flush_records(self, obj: str, now: float, force: bool, report: FlushReport) -> None:
        rows = self.store.due(obj, now, MAX_ROWS_PER_CYCLE)
        if not rows:
            return
        newest = self._newest_arrival(rows, now)
        known = self.store.crm_ids(obj, [row.item.key for row in rows])
        updates = [row for row in rows if row.item.key in known]
        upserts, keyless = self._upsert_rows([row for row in rows if row.item.key not in known])
        if keyless:
            outcome = _Outcome(dead=[(row, None, "the record has no HubSpot id and no unique "
                                                 "property to upsert by") for row in keyless])
            self._finish(obj, outcome, report)
        for chunk in _chunks(updates, BATCH_LIMIT):
            if self._ready(chunk, now, force, newest):
                self._submit(obj, report, self._send, obj, "update", chunk, known, now,
                             report)
            else:
                report.waiting += len(chunk)
        # One idProperty per batch, so each result is matched to its input by that property.
        by_property: dict[str, list[OutboxRow]] = {}
        for row in upserts:
            by_property.setdefault(str(row.item.id_property), []).append(row)
        for group in by_property.values():
            for chunk in _chunks(group, BATCH_LIMIT):
                if self._ready(chunk, now, force, newest):
                    self._submit(obj, report, self._send, obj, "upsert", chunk, known, now,
                                 report)
                else:
                    report.waiting += len(chunk)

    @staticmethod
    def _upsert_rows(rows: Sequence[OutboxRow]) -> tuple[list[OutboxRow], list[OutboxRow]]:
        """Split rows into those with an upsert key and those without one.

        Two rows with the same key value cannot share a batch, so the later one waits
        for the next cycle.
        """
        seen: set[tuple[str, str]] = set()
        ready: list[OutboxRow] = []
        keyless: list[OutboxRow] = []
        for row in rows:
            item = row.item
            if not item.id_property or not item.id_value:
                keyless.append(row)
                continue
            unique = (item.id_property, item.id_value.casefold())
            if unique not in seen:
                seen.add(unique)
                ready.append(row)
        return ready, keyless

    def _properties(self, obj: str, row: OutboxRow,
                    product_ids: Mapping[str, str]) -> dict[str, Any]:
        """Return the properties to send, with stage ids, pipeline and product id filled in.

        A None value becomes :attr:`cleared_value`, the CRM's way to clear a property.
        Mapped records carry no empty values, so None comes only from a value the
        worker cleared, such as ``last_order_at`` after the contact's only paid order
        was refunded, or a roll-up of a contact with no paid order yet.
        """
        properties = {name: self.cleared_value if value is None else value
                      for name, value in row.item.properties.items()}
        if obj == "deals":
            stage = properties.get(self.stage_property)
            if stage is not None and str(stage) in self.stage_ids:
                properties[self.stage_property] = self.stage_ids[str(stage)]
            if self.pipeline_id is not None and self.stage_property in properties:
                properties.setdefault(self.pipeline_property, self.pipeline_id)
        if obj == "line_items" and "hs_product_id" not in properties \
                and row.item.key in product_ids:
            properties["hs_product_id"] = product_ids[row.item.key]
        return properties

    def _product_ids(self, chunk: Sequence[OutboxRow]) -> dict[str, str]:
        """Return the HubSpot product id of each line item row whose product has one, by key.

        The SKU table is keyed per shop, and a line item's key starts with its shop.
        """
        skus: dict[str, str] = {}
        for row in chunk:
            sku = row.item.properties.get(self.sku_property)
            if sku:
                skus[row.item.key] = sku_key(shop_of_key(row.item.key), str(sku))
        products = self.store.product_keys_for_skus(list(skus.values()))
        ids = self.store.crm_ids("products", list(products.values()))
        return {key: ids[products[sku]] for key, sku in skus.items()
                if sku in products and products[sku] in ids}

    def _inputs(self, obj: str, kind: str, chunk: Sequence[OutboxRow],
                known: Mapping[str, str]) -> list[dict[str, Any]]:
        product_ids = self._product_ids(chunk) if obj == "line_items" else {}
        if kind == "update":
            return [{"id": known[row.item.key],
                     "properties": self._properties(obj, row, product_ids)} for row in chunk]
        return [{"id": row.item.id_value, "idProperty": row.item.id_property,
                 "properties": self._properties(obj, row, product_ids)} for row in chunk]

    def _send(self, obj: str, kind: str, chunk: list[OutboxRow], known: Mapping[str, str],
              now: float, report: FlushReport) -> None:
        inputs = self._inputs(obj, kind, chunk, known)
        call = self.client.batch_update if kind == "update" else self.client.batch_upsert
        try:
            result = call(obj, inputs)
        except BatchRejected as error:
            self._rejected(obj, kind, chunk, known, error, now, report)
            return
        except (DailyLimitReached, AuthFailed) as error:
            self._pause(error, now)
        except CrmUnavailable as error:
            self._finish(obj, self._retry_all(chunk, error, now), report)
            return
        self._finish(obj, self._read_result(kind, chunk, inputs, known, result, now), report)

    def _rejected(self, obj: str, kind: str, chunk: list[OutboxRow], known: Mapping[str, str],
                  error: BatchRejected, now: float, report: FlushReport) -> None:
        """Split a rejected batch until each bad record is alone, then dead-letter it."""
        if len(chunk) > 1:
            middle = len(chunk) // 2
            self._send(obj, kind, chunk[:middle], known, now, report)
            self._send(obj, kind, chunk[middle:], known, now, report)
            return
        row = chunk[0]
        category = str(error.body.get("category") or "")
        if kind == "update" and (error.status == 404 or category == NOT_FOUND_CATEGORY):
            # The contact was deleted or merged in HubSpot: upsert it again by its key.
            self.store.forget_crm_id(obj, row.item.key)
            self._finish(obj, _Outcome(retried=[(row, now, str(error), True)]), report)
            return
        message = error_message(error.body) if error.body else str(error)
        droppable = self._droppable(row, error.status, category)
        if droppable:
            self._finish(obj, _Outcome(unique_conflicts=[(row, droppable, message, now)]),
                         report)
            return
        self._finish(obj, _Outcome(dead=[(row, error.status, message)]), report)

    def _droppable(self, row: OutboxRow, status: int | None, category: str) -> list[str]:
        """Return the unique property to drop when HubSpot reports a unique-value conflict.

        NOTE: HubSpot's conflict error does not name the property. So one unique
        property the record carries, other than the one it is matched by, is dropped
        per retry: the unique phone first, because a phone is what two people share
        most often, then the others by name.
        """
        if status != CONFLICT_STATUS and category != CONFLICT_CATEGORY:
            return []
        unique = self.unique_properties.get(row.item.object, frozenset())
        candidates = sorted((name for name in row.item.properties
                             if name in unique and name != row.item.id_property),
                            key=lambda name: (name != self.unique_phone_property, name))
        return candidates[:1]

    def _pause(self, error: HubSpotError, now: float) -> None:
        """Hold every call for the configured pause, or until credits return when sooner.

        The pause is shown as ``storesync_crm_paused_until_timestamp_seconds``.
        """
        if isinstance(error, SettingsRejected):
            self.park(error)
            raise _Paused from error
        limit = isinstance(error, DailyLimitReached)
        seconds = self.daily_limit_pause_seconds if limit else self.auth_failure_pause_seconds
        reason = "daily_limit" if limit else "auth"
        if isinstance(error, CreditsExhausted):
            reason = "credits"
            if error.wait_seconds is not None:
                seconds = max(1.0, min(seconds, error.wait_seconds))
        self.paused_until = now + seconds
        self._pausing.set()
        metrics.CRM_PAUSED_UNTIL.labels(reason=reason).set(self.paused_until)
        log.error("%s calls paused for %d s: %s", self.crm_name, seconds, error,
                  extra={"status": error.status, "paused_until": self.paused_until,
                         "reason": reason})
        raise _Paused from error

    def park(self, error: SettingsRejected) -> None:
        """Hold every call until the service restarts, because only new settings can help.

        The outbox keeps its records as they are, with no attempt counted, so they go
        out after the fix. Logged once, shown as ``storesync_crm_parked{reason="settings"}``.
        """
        if self.paused_until == math.inf:
            return
        self.paused_until = math.inf
        self._pausing.set()
        metrics.CRM_PARKED.labels(reason=PARKED_REASON).set(1)
        log.error("%s calls parked until the settings are fixed and the service restarts; "
                  "%d records wait in the outbox: %s", self.crm_name, self.store.pending_count(),
                  error, extra={"status": error.status, "reason": PARKED_REASON})

    def _retry_all(self, chunk: Sequence[OutboxRow], error: HubSpotError,
                   now: float) -> _Outcome:
        outcome = _Outcome()
        for row in chunk:
            attempt = row.attempts + 1
            if attempt >= self.max_attempts:
                outcome.dead.append((row, error.status, f"gave up after {attempt} attempts: "
                                                        f"{error}"))
                continue
            delay = backoff_seconds(attempt, self.backoff_base_seconds, self.backoff_max_seconds,
                                    self.rng)
            outcome.retried.append((row, now + delay, str(error), True))
        if outcome.retried:
            log.warning("CRM call failed; records will be retried", extra={
                "resource": chunk[0].item.object, "status": error.status,
                "attempt": chunk[0].attempts + 1, "records": len(outcome.retried),
                "error": scrub_personal_data(str(error))})
        return outcome

    def _read_result(self, kind: str, chunk: Sequence[OutboxRow],
                     inputs: Sequence[Mapping[str, Any]], known: Mapping[str, str],
                     result: BatchResult, now: float) -> _Outcome:
        """Match a batch's results and per-record errors back to its rows."""
        outcome = _Outcome()
        by_input = {str(item["id"]).casefold(): row for item, row in zip(inputs, chunk,
                                                                           strict=True)}
        done: set[str] = set()
        for entry in result.results:
            key = self._result_key(kind, entry, chunk, known)
            row = by_input.get(key) if key is not None else None
            if row is not None and row.item.key not in done:
                done.add(row.item.key)
                outcome.synced.append((row, str(entry.get("id"))))
        loose_errors: list[str] = []
        for entry in result.errors:
            ids = [str(value).casefold() for value in (entry.get("context") or {}).get("ids", [])]
            rows = [by_input[value] for value in ids if value in by_input]
            category = str(entry.get("category") or "")
            for row in rows:
                if row.item.key in done:
                    continue
                done.add(row.item.key)
                if kind == "update" and category == NOT_FOUND_CATEGORY:
                    # Deleted or merged in the CRM since: upsert it again by its key.
                    self.store.forget_crm_id(row.item.object, row.item.key)
                    outcome.retried.append((row, now, error_message(entry), False))
                    continue
                droppable = self._droppable(row, None, category)
                if droppable:
                    outcome.unique_conflicts.append((row, droppable, error_message(entry), now))
                else:
                    outcome.dead.append((row, result.status, error_message(entry)))
            if not rows:
                loose_errors.append(error_message(entry))
        rest = [row for row in chunk if row.item.key not in done]
        if rest and len(rest) == len(loose_errors):
            outcome.dead.extend((row, result.status, message)
                                for row, message in zip(rest, loose_errors, strict=True))
        elif rest:
            failure = CrmUnavailable("HubSpot returned no result for some records", result.status)
            retry = self._retry_all(rest, failure, now)
            outcome.retried.extend(retry.retried)
            outcome.dead.extend(retry.dead)
        return outcome

    @staticmethod
    def _result_key(kind: str, entry: Mapping[str, Any], chunk: Sequence[OutboxRow],
                    known: Mapping[str, str]) -> str | None:
        if kind == "update":
            return str(entry.get("id", "")).casefold()
        value = (entry.get("properties") or {}).get(str(chunk[0].item.id_property))
        return None if value is None else str(value).casefold()

    def _submit(self, obj: str, report: FlushReport, send: Callable[..., None],
                *args: Any) -> None:
        """Queue one batch call of ``obj`` for a sender thread; see :meth:`_settle`."""
        report.submitted += 1
        with self._room:
            self._queued += 1
        future = self._sender.submit(self._send_unless_paused, send, *args)
        with self._tracking:
            self._sends.setdefault(obj, []).append(future)

    def _send_unless_paused(self, send: Callable[..., None], *args: Any) -> None:
        with self._room:
            self._queued -= 1
            self._room.notify_all()
        # After a daily-limit 429 or a rejected token, batches not yet sent stay in the
        # outbox unchanged and go out once the pause ends.
        if not self._pausing.is_set():
            send(*args)

    def _tracked(self) -> list[str]:
        with self._tracking:
            return sorted(set(self._sends) | set(self._writes))

    def _settle(self, *objects: str) -> None:
        """Wait until every batch of ``objects`` has returned and its outcome is recorded.

        Raises:
            _Paused: a call paused the flusher.
            The first other error a call or write raised, after all of them have ended.
        """
        failures: list[BaseException] = []
        for obj in objects:
            with self._tracking:
                sends = self._sends.pop(obj, [])
            # A call hands its outcome to the writer before it returns, so once the
            # calls have ended, every write of theirs is in ``_writes``.
            failures.extend(error for error in (send.exception() for send in sends)
                            if error is not None)
            with self._tracking:
                writes = self._writes.pop(obj, [])
            failures.extend(error for error in (write.exception() for write in writes)
                            if error is not None)
        others = [error for error in failures if not isinstance(error, _Paused)]
        if others:
            raise others[0]
        if failures:
            raise failures[0]

    def _finish(self, obj: str, outcome: _Outcome, report: FlushReport) -> None:
        """Record a batch's outcome on the writer thread; see :meth:`_settle`."""
        self._write(obj, self._record_outcome, obj, outcome, report)

    def _write(self, obj: str, work: Callable[..., object], *args: Any) -> None:
        future = self._writer.submit(work, *args)
        with self._tracking:
            self._writes.setdefault(obj, []).append(future)

    def _record_outcome(self, obj: str, outcome: _Outcome, report: FlushReport) -> None:
        letters = self.store.finish_batch(outcome.synced, outcome.retried, outcome.dead)
        report.synced[obj] += len(outcome.synced)
        report.retried[obj] += len(outcome.retried)
        report.dead_lettered[obj] += len(outcome.dead)
        kind = obj.split(":")[0] if not obj.startswith(ASSOCIATION_PREFIX) else "association"
        if outcome.synced:
            metrics.SYNC_RECORDS.labels(object=kind, outcome="synced").inc(len(outcome.synced))
        if outcome.dead:
            metrics.SYNC_RECORDS.labels(object=kind, outcome="dead_lettered").inc(
                len(outcome.dead))
        for (row, status, error), letter in zip(outcome.dead, letters, strict=True):
            log.error("record dead-lettered", extra={
                "event_id": row.item.event_id, "resource": row.item.resource,
                "dead_letter_id": letter, "status": status, "attempt": row.attempts + 1,
                "error": scrub_personal_data(error)})
        for row, names, error, due in outcome.unique_conflicts:
            self._drop_unique(obj, row, names, error, due, report)

    def _drop_unique(self, obj: str, row: OutboxRow, names: list[str], error: str, due: float,
                     report: FlushReport) -> None:
        """Send the row again without ``names``: another record already has their values."""
        self.store.drop_properties(row, names, error, due)
        report.retried[obj] += 1
        for name in names:
            metrics.UNIQUE_VALUE_CONFLICTS.labels(object=obj, property=name).inc()
        log.warning("unique value held by another CRM record; the record is sent again "
                    "without it", extra={
                        "event_id": row.item.event_id, "resource": row.item.resource,
                        "properties": names, "status": CONFLICT_STATUS,
                        "values": [scrub_personal_data(str(row.item.properties[name]))
                                   for name in names],
                        "error": scrub_personal_data(error)})

    # --- associations ----------------------------------------------------------------

    def _flush_links(self, obj: str, now: float, force: bool, report: FlushReport) -> None:
        _, from_obj, to_obj = obj.split(":", 2)
        rows = self.store.due(obj, now, MAX_ROWS_PER_CYCLE)
        if not rows:
            return
        newest = self._newest_arrival(rows, now)
        from_ids = self.store.crm_ids(from_obj, [str(row.item.properties["from_key"])
                                                 for row in rows])
        to_ids = self.store.crm_ids(to_obj, [str(row.item.properties["to_key"])
                                             for row in rows])
        ready: list[OutboxRow] = []
        waiting: list[OutboxRow] = []
        for row in rows:
            ends = (str(row.item.properties["from_key"]), str(row.item.properties["to_key"]))
            both = ends[0] in from_ids and ends[1] in to_ids
            (ready if both else waiting).append(row)
        if waiting:
            # Not counted as attempts: the ends are still on their way to HubSpot.
            later = now + max(self.batch_window_seconds, 1.0)
            self._write(obj, self.store.finish_batch, [],
                        [(row, later, "waiting for both ends", False) for row in waiting], [])
        for chunk in _chunks(ready, BATCH_LIMIT):
            if not self._ready(chunk, now, force, newest):
                report.waiting += len(chunk)
                continue
            inputs = [self._link_input(row, from_ids, to_ids) for row in chunk]
            self._submit(obj, report, self._send_links, obj, from_obj, to_obj, chunk, inputs,
                         now, report)

    @staticmethod
    def _link_input(row: OutboxRow, from_ids: Mapping[str, str],
                    to_ids: Mapping[str, str]) -> dict[str, Any]:
        """Return the input of one link for ``create_associations``."""
        return {"from": {"id": from_ids[str(row.item.properties["from_key"])]},
                "to": {"id": to_ids[str(row.item.properties["to_key"])]},
                "types": [{"associationCategory": HUBSPOT_DEFINED,
                           "associationTypeId": int(row.item.properties["type_id"])}]}

    def _send_links(self, obj: str, from_obj: str, to_obj: str, chunk: list[OutboxRow],
                    inputs: list[dict[str, Any]], now: float, report: FlushReport) -> None:
        try:
            result = self.client.create_associations(from_obj, to_obj, inputs)
        except BatchRejected as error:
            if len(chunk) > 1:
                middle = len(chunk) // 2
                self._send_links(obj, from_obj, to_obj, chunk[:middle], inputs[:middle], now,
                                 report)
                self._send_links(obj, from_obj, to_obj, chunk[middle:], inputs[middle:], now,
                                 report)
                return
            message = error_message(error.body) if error.body else str(error)
            self._finish(obj, _Outcome(dead=[(chunk[0], error.status, message)]), report)
            return
        except (DailyLimitReached, AuthFailed) as error:
            self._pause(error, now)
        except CrmUnavailable as error:
            self._finish(obj, self._retry_all(chunk, error, now), report)
            return
        if not result.errors:
            self._finish(obj, _Outcome(synced=[(row, None) for row in chunk]), report)
            return
        self._finish(obj, _match_link_results(chunk, inputs, result), report)


def _match_link_results(chunk: Sequence[OutboxRow], inputs: Sequence[Mapping[str, Any]],
                        result: BatchResult) -> _Outcome:
    """Match a 207 of ``associations/batch/create`` back to its links.

    Each result names the pair it linked (``fromObjectId`` and ``toObjectId``, the
    ``LabelsBetweenObjectPair`` shape of HubSpot's v4 API), so a link is written
    when its pair is among the results. The ``context`` of an error entry is not
    specified for this endpoint. So an error goes to the failed link whose two ids
    both appear in its context, and a failed link that no error names that way gets
    every error message.
    """
    linked = {(str(entry.get("fromObjectId")), str(entry.get("toObjectId")))
              for entry in result.results}
    outcome = _Outcome()
    failed: list[tuple[OutboxRow, tuple[str, str]]] = []
    for row, item in zip(chunk, inputs, strict=True):
        pair = (str(item["from"]["id"]), str(item["to"]["id"]))
        if pair in linked:
            outcome.synced.append((row, None))
        else:
            failed.append((row, pair))
    every_message = "; ".join(error_message(entry) for entry in result.errors)
    for row, pair in failed:
        own = [error_message(entry) for entry in result.errors
               if set(pair) <= _context_values(entry)]
        outcome.dead.append((row, result.status, "; ".join(own) or every_message))
    return outcome


def _context_values(entry: Mapping[str, Any]) -> set[str]:
    """Return every id listed in an error entry's ``context`` (a map of lists of strings)."""
    context = entry.get("context")
    if not isinstance(context, Mapping):
        return set()
    return {str(value) for values in context.values() if isinstance(values, list)
            for value in values}


# --- process wiring ------------------------------------------------------------------------

# The bearer token sent to the local stand-in in sandbox mode; the stand-in accepts any.
SANDBOX_TOKEN = "sandbox-token-not-real"
LOOPBACK_NAMES = frozenset({"127.0.0.1", "::1", "[::1]", "localhost"})
STAGE_LOOKUP_RETRY_SECONDS = 10.0
PARKED_REASON = "settings"
# How often a flusher that waits for the lock tries again.
LOCK_RETRY_SECONDS = 2.0


def client_for(settings: Any, transport: Any = None) -> CrmClient:
    """Create the HubSpot or Zoho client the settings describe.

    Every caller of the CRM (the flusher, the playbook timers, the consent pulls and the
    privacy actions) gets its client here, so with ``REDIS_URL`` set they all share the
    rate limits in Redis (see :mod:`storesync.shared_limits`).

    Raises:
        SetupError: sandbox mode (no access token) with a base URL that is not a
            loopback stand-in, which would send unauthenticated calls to HubSpot.
    """
    if settings.crm_target == "zoho":
        from .zoho_flusher import zoho_client_for

        return zoho_client_for(settings, transport)
    token = settings.hubspot_access_token
    if token is None:
        host = httpx.URL(settings.hubspot_base_url).host
        if host not in LOOPBACK_NAMES:
            raise SetupError(
                f"HUBSPOT_ACCESS_TOKEN is not set (sandbox mode), but HUBSPOT_BASE_URL is "
                f"{settings.hubspot_base_url}, not a local stand-in. Start the service with "
                "`python -m storesync run`, which starts the stand-in, or set "
                "HUBSPOT_BASE_URL=http://127.0.0.1:PORT of `python -m storesync standin`.")
        token = SANDBOX_TOKEN
    bucket = search_bucket = None
    if settings.redis_url:
        from .shared_limits import hubspot_buckets

        bucket, search_bucket = hubspot_buckets(settings)
    return HubSpotClient(
        settings.hubspot_base_url, token,
        rate_limit_per_10s=settings.hubspot_rate_limit_per_10s,
        search_rate_per_second=settings.hubspot_search_rate_per_second,
        timeout_seconds=float(settings.hubspot_timeout_seconds),
        transport=transport,
        bucket=bucket,
        search_bucket=search_bucket,
    )


def flusher_for(settings: Any, store: SyncStore, mapping: Mapping[str, Any],
                client: CrmClient) -> Flusher:
    """Create a flusher with the sync settings: the Zoho flusher for a Zoho client."""
    from .zoho_flusher import ZohoFlusher

    zoho = settings.crm_target == "zoho"
    return (ZohoFlusher if zoho else Flusher)(
        store, client, mapping,
        batch_window_seconds=settings.sync_batch_window_ms / 1000,
        max_attempts=settings.sync_max_attempts,
        backoff_base_seconds=float(settings.sync_backoff_base_seconds),
        backoff_max_seconds=float(settings.sync_backoff_max_seconds),
        daily_limit_pause_seconds=float(settings.zoho_credits_pause_seconds if zoho
                                        else settings.hubspot_daily_limit_pause_seconds),
        auth_failure_pause_seconds=float(settings.zoho_auth_failure_pause_seconds if zoho
                                         else settings.hubspot_auth_failure_pause_seconds),
    )


def _crm_address(settings: Any) -> str:
    """Return the address the flusher's client starts from, for the start log line."""
    if settings.crm_target == "zoho":
        return str(settings.zoho_accounts_url or f"Zoho accounts server of {settings.zoho_dc}")
    return str(settings.hubspot_base_url)


def _wait_for_lock(lock: OutboxLock, stop: threading.Event) -> bool:
    """Take the flusher lock, waiting while another flusher holds it; False when stopped."""
    warned = False
    while not stop.is_set():
        try:
            taken = lock.acquire()
        except redis.RedisError as error:
            log.warning("cannot reach Redis for the flusher lease; trying again",
                        extra={"resource": lock.where, "error": repr(error)})
            taken = False
        if taken:
            if warned:
                log.info("flusher lock taken; this flusher drains the outbox now",
                         extra={"resource": lock.where})
            return True
        if not warned:
            log.warning("another flusher drains the outbox (%s holds %s); this one "
                        "waits until it stops", lock.holder() or "an unknown holder", lock.where)
            warned = True
        stop.wait(LOCK_RETRY_SECONDS)
    return False


def _run_when_ready(flusher: Flusher, stop: threading.Event, lock: OutboxLock) -> None:
    """Take the flusher lock, resolve the deal stages (retrying while HubSpot is
    unreachable), then flush until ``stop`` is set.

    A lost Redis lease ends the draining, and the flusher waits for the lock again.
    """
    while _wait_for_lock(lock, stop):
        try:
            _resolve_then_flush(flusher, lock.guard(stop))
        finally:
            lock.release()


def _resolve_then_flush(flusher: Flusher, stop: threading.Event) -> None:
    # This flusher drains now: a park of a flusher that stopped no longer holds.
    metrics.CRM_PARKED.labels(reason=PARKED_REASON).set(0)
    while not stop.is_set() and flusher.pipeline_id is None:
        # The flusher is running, even while HubSpot cannot be read yet.
        flusher.heartbeat()
        try:
            flusher.resolve_stages()
        except SettingsRejected as error:
            # No retry would help; run() keeps the heartbeat while the calls stay parked.
            flusher.park(error)
            break
        except SetupError as error:
            log.error("deal pipeline missing in %s; nothing is synced until it exists: %s",
                      flusher.crm_name, error)
            stop.wait(STAGE_LOOKUP_RETRY_SECONDS * 6)
        except HubSpotError as error:
            log.warning("cannot read the deal pipelines from %s yet: %s", flusher.crm_name,
                        error)
            stop.wait(STAGE_LOOKUP_RETRY_SECONDS)
    flusher.run(stop)


def _build_flusher(settings: Any) -> tuple[Flusher, CrmClient, HeartbeatStore]:
    """Create the flusher, its client and its heartbeat store from the settings.

    Raises:
        SystemExit: with code 2 when the settings cannot work.
    """
    import sys

    from .db import Database
    from .worker import load_mapping

    try:
        client = client_for(settings)
        mapping = load_mapping(settings.mapping_path)
    except (SetupError, ValueError) as error:
        sys.stderr.write(f"Error: {error}\n")
        raise SystemExit(2) from error
    store = SyncStore(Database(settings.state_path))
    flusher = flusher_for(settings, store, mapping, client)
    beats = open_heartbeat(settings)
    flusher.heartbeat = HeartbeatWriter(beats)
    return flusher, client, beats


def start_flusher(settings: Any) -> Callable[[], None]:
    """Start the flusher loop in a thread; return the function that stops it.

    The worker calls this when ``SYNC_FLUSHER=thread``.

    Raises:
        SystemExit: with code 2 when the settings cannot work (see :func:`client_for`).
    """
    flusher, client, beats = _build_flusher(settings)
    stop = threading.Event()
    lock = open_flusher_lock(settings)
    thread = threading.Thread(target=_run_when_ready, args=(flusher, stop, lock),
                              name="storesync-flusher", daemon=True)
    thread.start()
    log.info("flusher started", extra={"resource": _crm_address(settings),
                                       "batch_window_ms": settings.sync_batch_window_ms})

    def stop_flusher() -> None:
        stop.set()
        thread.join(timeout=30)
        client.close()
        beats.close()

    return stop_flusher


def run_flusher_process(settings: Any, stop: threading.Event) -> None:
    """Run the flusher in the calling thread until ``stop`` is set (``SYNC_FLUSHER=process``).

    The ``flusher`` command calls this; it sets ``stop`` on SIGTERM and SIGINT.

    Raises:
        SystemExit: with code 2 when the settings cannot work (see :func:`client_for`).
    """
    flusher, client, beats = _build_flusher(settings)
    lock = open_flusher_lock(settings)
    log.info("flusher started", extra={"resource": _crm_address(settings),
                                       "batch_window_ms": settings.sync_batch_window_ms})
    try:
        _run_when_ready(flusher, stop, lock)
    finally:
        client.close()
        beats.close()
        log.info("flusher stopped")
