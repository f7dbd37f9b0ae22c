"""Drive the timed playbooks: abandoned cart, post-purchase, win-back and VIP care.

The worker calls :meth:`PlaybookRunner.observe` inside the transaction of each
delivery. A checkout (Shopify ``checkouts/create``/``checkouts/update``, a storefront
``checkout_started``) schedules the abandoned-cart check after the spec's delay; an
order that names the checkout cancels it and records the checkout as completed, so a
later update of the same checkout schedules nothing. A fulfilled order schedules the
post-purchase series; a cancelled or refunded one cancels it. Every order also
re-checks the contact's lifetime value against the VIP bar.

A loop in the worker process calls :meth:`PlaybookRunner.run_due` (and once a day
:meth:`PlaybookRunner.scan_win_back`). When a playbook starts, it schedules one
``playbook_step`` timer per step at the step's offset. A step checks the consent
its channel needs (``ConsentCheck``), waits out the quiet hours when it is marketing,
and then marks the contact in the CRM through the outbox: ``playbook_step`` (which
starts the CRM's own workflow) with the discount code, its expiry and the cart
fields. With a direct WhatsApp sender configured, a WhatsApp step sends its template
instead. The CRM marks are written in the same transaction that finishes the timer,
so each step marks a contact once, also after a restart or with two workers.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol

from . import metrics
from .playbook_config import Playbook, PlaybookConfig, Step, iso
from .playbook_notes import NoteWriter, note_item
from .rollups import compute_rollups
from .sync_store import EMAIL_KIND, PHONE_KIND, OutboxItem, SyncStore
from .timers import FIRED, SKIPPED, Timer, TimerStore

log = logging.getLogger("storesync.playbooks")

COMPONENT = "playbook_state"
SCHEMA_STEPS: tuple[str, ...] = (
    "CREATE TABLE playbook_checkouts ("
    " checkout_key TEXT PRIMARY KEY, order_key TEXT, completed_at REAL NOT NULL)",
    "CREATE TABLE playbook_vip ("
    " contact_key TEXT PRIMARY KEY, member INTEGER NOT NULL, changes INTEGER NOT NULL)",
)
STEP_KIND = "playbook_step"
# Shopify checkout topics and storefront events that start the abandoned-cart timer.
CHECKOUT_TOPICS = frozenset({"checkouts/create", "checkouts/update", "checkout_started"})
# Where an order names the checkout it completed, by payload family.
# NOTE: WooCommerce core has no checkout id on an order, so the project's snippet must send
# the order's cart_hash as cart.token in checkout_started for the two to meet, and a
# storefront purchase_completed must repeat its checkout's cart.token. Neither pairing is
# in the shipped samples yet.
ORDER_CHECKOUT_PATHS = {
    "shopify": ("checkout_token", "cart_token", "checkout_id"),
    "woocommerce": ("cart_hash",),
    "storefront": ("cart.token", "checkout_token"),
}
# Order statuses that end the post-purchase series, per payload family (the stage rules'
# cancelled and refunded statuses).
CANCELLED = {
    "shopify": ("refunded", "voided", "expired"),
    "woocommerce": ("cancelled", "refunded", "failed", "trash"),
    "storefront": ("cancelled", "refunded", "payment_failed"),
}
# A fire that raised is tried again after this long.
RETRY_SECONDS = 300.0
_DAY = 86_400


class ConsentCheck(Protocol):
    """The consent check every playbook step calls before it marks or sends.

    ``storesync.consent.ConsentStore`` has this method.
    """

    def allows(self, contact_key: str, channel: str, at: float | None = None) -> bool:
        """Return whether the contact consents to marketing on ``channel`` at ``at``."""


class DiscountIssuer(Protocol):
    """Creates a single-use, expiring discount code in the store.

    The implementation must return the same code when called again for the same
    ``checkout_key``, because a fire that failed after the call is tried again.
    ``storesync.discounts.build_issuer`` returns the store's issuer.
    """

    def create_code(self, checkout_key: str, contact_key: str,
                    expires_at: float) -> tuple[str, float] | None:
        """Create (or return the existing) code for the checkout; raise when the store fails.

        Returns:
            The code and when it expires (the first try's expiry on a retry), or None
            when no store can create codes, so the step marks the contact without one.
        """


class StepSender(Protocol):
    """Sends a step's message directly, such as :class:`storesync.whatsapp.WhatsAppSender`."""

    channel: str

    def send_step(self, step: Step, payload: Mapping[str, Any], now: float) -> SendOutcome:
        """Send the step's template to the contact in ``payload``."""


@dataclass(frozen=True)
class SendOutcome:
    """The result of a direct send: ``sent``, ``deferred`` (with ``retry_at``) or ``failed``."""

    status: str
    retry_at: float | None = None
    reason: str | None = None


@dataclass(frozen=True)
class ContactRef:
    """The local contact a playbook marks, with the key the CRM upsert matches on.

    ``phone`` is the E.164 phone, used only by a direct WhatsApp sender; it is never logged.
    """

    key: str
    id_property: str | None = None
    id_value: str | None = None
    phone: str | None = None


@dataclass
class PlaybookRunner:
    """Schedules and fires the timed playbooks of one state file.

    Attributes:
        config: The playbooks from the spec.
        store: The sync store (outbox, orders) of the state file.
        timers: The timer table of the same state file.
        consent: The consent gate every step asks.
        discounts: Creates the discount codes in the store.
        senders: Direct senders by channel (only ``whatsapp`` today); empty when the
            CRM's workflows send every message.
        clock: Seconds since the epoch; tests pass their own.
        notes: Whether each mark also puts a timeline note in the outbox
            (``storesync.playbook_notes.NoteWriter`` writes them).
        note_crm: The CRM whose fields the notes are built with: ``hubspot`` or ``zoho``.
    """

    config: PlaybookConfig
    store: SyncStore
    timers: TimerStore
    consent: ConsentCheck
    discounts: DiscountIssuer
    senders: Mapping[str, StepSender]
    clock: Callable[[], float] = time.time
    notes: bool = False
    note_crm: str = "hubspot"

    def __post_init__(self) -> None:
        self.store.db.migrate(COMPONENT, SCHEMA_STEPS)

    # --- deliveries: called inside the delivery's transaction ---------------------------

    def observe(self, conn: sqlite3.Connection, source: str, topic: str,
                body: Mapping[str, Any], contact: ContactRef | None,
                order_key: str | None = None) -> None:
        """Schedule or cancel timers for one delivery.

        Args:
            conn: The delivery's open write transaction.
            source: The payload family: ``shopify``, ``woocommerce`` or ``storefront``.
            topic: The webhook topic or storefront event name.
            body: The parsed body.
            contact: The contact the delivery matched, or None when it named none.
            order_key: The order's record key when the delivery is an order.
        """
        if topic in CHECKOUT_TOPICS:
            self._on_checkout(conn, source, body, contact)
        elif order_key is not None:
            self._on_order(conn, source, body, contact, order_key)

    def _on_checkout(self, conn: sqlite3.Connection, source: str,
                     body: Mapping[str, Any], contact: ContactRef | None) -> None:
        playbook = self.config.playbook("abandoned_cart")
        checkout = _checkout_fields(source, body)
        if playbook is None or contact is None or checkout["token"] is None:
            return
        # The cart token alone is the key, without the shop part of record keys. A pixel
        # or storefront event is keyed under STORE_ID, while the order webhook names the
        # shop's domain, so a key with the shop part would never be cancelled.
        key = checkout["token"]
        if conn.execute("SELECT 1 FROM playbook_checkouts WHERE checkout_key = ?",
                        (key,)).fetchone():
            return
        started = checkout.pop("at") or self.clock()
        payload = {"contact": asdict(contact), "checkout_key": key, "checkout_at": started,
                   **checkout}
        # The delay counts from the latest update, so each update moves the check.
        if self.timers.schedule(conn, "abandoned_cart", key, started + playbook.delay_seconds,
                                payload):
            metrics.PLAYBOOK_TIMERS.labels(kind="abandoned_cart", outcome="scheduled").inc()

    def _on_order(self, conn: sqlite3.Connection, source: str, body: Mapping[str, Any],
                  contact: ContactRef | None, order_key: str) -> None:
        for token in _order_checkout_tokens(source, body):
            conn.execute("INSERT INTO playbook_checkouts (checkout_key, order_key, completed_at)"
                         " VALUES (?, ?, ?) ON CONFLICT (checkout_key) DO NOTHING",
                         (token, order_key, self.clock()))
            self._cancel(conn, "abandoned_cart", token)
        if _is_cancelled(source, body):
            self._cancel(conn, "post_purchase", order_key)
        elif contact is not None:
            self._schedule_post_purchase(conn, source, body, contact, order_key)
        if contact is not None:
            # A new order is win-back's exit, for the playbook and its waiting steps.
            cancelled = self.timers.cancel_prefix(conn, "win_back", f"{contact.key}:")
            cancelled += self.timers.cancel_prefix(conn, STEP_KIND, f"win_back:{contact.key}:")
            if cancelled:
                metrics.PLAYBOOK_TIMERS.labels(kind="win_back", outcome="cancelled").inc(
                    cancelled)
            self._check_vip(conn, contact)

    def _cancel(self, conn: sqlite3.Connection, kind: str, subject: str) -> None:
        cancelled = self.timers.cancel(conn, kind, subject)
        cancelled += self.timers.cancel(conn, STEP_KIND, f"{kind}:{subject}")
        if cancelled:
            metrics.PLAYBOOK_TIMERS.labels(kind=kind, outcome="cancelled").inc(cancelled)

    def _schedule_post_purchase(self, conn: sqlite3.Connection, source: str,
                                body: Mapping[str, Any], contact: ContactRef,
                                order_key: str) -> None:
        playbook = self.config.playbook("post_purchase")
        fulfilled = _fulfilled_at(source, body)
        if playbook is None or fulfilled is None:
            return
        payload = {"contact": asdict(contact), "order_key": order_key}
        if self.timers.schedule(conn, "post_purchase", order_key,
                                fulfilled + playbook.delay_seconds, payload):
            metrics.PLAYBOOK_TIMERS.labels(kind="post_purchase", outcome="scheduled").inc()

    def _check_vip(self, conn: sqlite3.Connection, contact: ContactRef) -> None:
        """Schedule VIP entry or exit when the lifetime value crosses the spec's bar."""
        enter, leave = self.config.vip_threshold, self.config.vip_exit_threshold
        if self.config.playbook("vip_care") is None or enter is None or leave is None:
            return
        orders = self.store.contact_orders(conn, contact.key)
        ltv = Decimal(compute_rollups(orders, {"ltv_sar": "ltv"})["ltv"])
        row = conn.execute("SELECT member, changes FROM playbook_vip WHERE contact_key = ?",
                           (contact.key,)).fetchone()
        member, changes = (bool(row[0]), int(row[1])) if row else (False, 0)
        if not member and ltv >= enter:
            transition = "entered"
        elif member and ltv < leave:
            transition = "exited"
        else:
            return
        changes += 1
        conn.execute("INSERT INTO playbook_vip (contact_key, member, changes) VALUES (?, ?, ?)"
                     " ON CONFLICT (contact_key) DO UPDATE SET member = excluded.member,"
                     " changes = excluded.changes",
                     (contact.key, int(transition == "entered"), changes))
        payload = {"contact": asdict(contact), "transition": transition}
        if self.timers.schedule(conn, "vip_care", f"{contact.key}:{changes}", self.clock(),
                                payload):
            metrics.PLAYBOOK_TIMERS.labels(kind="vip_care", outcome="scheduled").inc()

    # --- the daily win-back scan ---------------------------------------------------------

    def scan_win_back(self, contacts: Mapping[str, ContactRef]) -> int:
        """Schedule win-back for contacts whose last paid order is inside the spec's window.

        A contact qualifies when whole days since its last paid order are at least the
        window's first day and at most its last (45 and 60 by default). The timer is
        keyed by the contact and that order, so a contact is won back once per order.

        Args:
            contacts: The contacts to look at, by local key, with their upsert keys.

        Returns:
            How many win-back timers were scheduled.
        """
        playbook = self.config.playbook("win_back")
        if playbook is None:
            return 0
        now = self.clock()
        low, high = playbook.delay_seconds // _DAY, playbook.max_delay_seconds // _DAY
        scheduled = 0
        with self.store.transaction() as conn:
            for key, contact in contacts.items():
                last = _last_paid_order(self.store.contact_orders(conn, key))
                if last is None:
                    continue
                order_key, at = last
                if not low <= int((now - at) // _DAY) <= high:
                    continue
                if self.timers.schedule(conn, "win_back", f"{key}:{order_key}", now,
                                        {"contact": asdict(contact), "order_key": order_key}):
                    scheduled += 1
        if scheduled:
            metrics.PLAYBOOK_TIMERS.labels(kind="win_back", outcome="scheduled").inc(scheduled)
        return scheduled

    # --- firing --------------------------------------------------------------------------

    def run_due(self, limit: int = 50) -> int:
        """Fire the timers that are due now; return how many this call finished or deferred."""
        handled = 0
        for timer in self.timers.claim_due(limit):
            try:
                self._fire(timer)
            except Exception as error:  # the timer waits and is tried again
                log.warning("playbook timer failed; it will be tried again", exc_info=True,
                            extra={"timer_kind": timer.kind, "timer_id": timer.id})
                metrics.PLAYBOOK_TIMERS.labels(kind=timer.kind, outcome="failed").inc()
                self.timers.put_back(timer, self.clock() + RETRY_SECONDS,
                                     error=f"{type(error).__name__}: {error}")
            handled += 1
        return handled

    def run_until_idle(self, limit: int = 50, rounds: int = 20) -> int:
        """Call :meth:`run_due` until nothing is due or ``rounds`` passes have run."""
        total = 0
        for _ in range(rounds):
            count = self.run_due(limit)
            if not count:
                break
            total += count
        return total

    def _fire(self, timer: Timer) -> None:
        if timer.kind == STEP_KIND:
            self._fire_step(timer)
            return
        playbook = self.config.playbook(timer.kind)
        if playbook is None:
            self._finish(timer, SKIPPED, "disabled")
            return
        if timer.kind == "abandoned_cart" and self._checkout_completed(timer.subject_key):
            self._finish(timer, SKIPPED, "completed")
            return
        payload = dict(timer.payload)
        if timer.kind == "vip_care":
            marker = f"vip_care:{payload['transition']}"
            self._finish(timer, FIRED, "fired",
                         lambda conn: self._mark(conn, payload, marker, timer.subject_key))
            return
        code = self._discount(playbook, timer, payload)
        if code is not None:
            payload["discount_code"], payload["discount_expires_at"] = code
        self._finish(timer, FIRED, "fired",
                     lambda conn: self._start_steps(conn, playbook, timer, payload))

    def _finish(self, timer: Timer, status: str, outcome: str,
                work: Callable[[sqlite3.Connection], None] | None = None) -> None:
        if self.timers.complete(timer, status, work):
            metrics.PLAYBOOK_TIMERS.labels(kind=timer.kind, outcome=outcome).inc()

    def _checkout_completed(self, checkout_key: str) -> bool:
        with self.store.db.reading() as conn:
            return conn.execute("SELECT 1 FROM playbook_checkouts WHERE checkout_key = ?",
                                (checkout_key,)).fetchone() is not None

    def _discount(self, playbook: Playbook, timer: Timer,
                  payload: Mapping[str, Any]) -> tuple[str, float] | None:
        """Create the playbook's code when a step carries one and its channel may be used."""
        if playbook.discount_hours is None:
            return None
        contact = payload["contact"]["key"]
        now = self.clock()
        if not any(step.discount and self._allowed(contact, step, now) for step in playbook.steps):
            return None
        expires = now + playbook.discount_hours * 3600
        subject = payload.get("checkout_key") or f"{playbook.key}:{timer.subject_key}"
        return self.discounts.create_code(subject, contact, expires)

    def _allowed(self, contact_key: str, step: Step, at: float) -> bool:
        return step.consent == "none" or self.consent.allows(contact_key, step.consent, at)

    def _start_steps(self, conn: sqlite3.Connection, playbook: Playbook, timer: Timer,
                     payload: Mapping[str, Any]) -> None:
        started = self.clock()
        for step in playbook.steps:
            step_payload = {**payload, "playbook": playbook.key, "step": step.number}
            self.timers.schedule(conn, STEP_KIND, f"{playbook.key}:{timer.subject_key}#"
                                 f"{step.number}", started + step.offset_seconds, step_payload)

    def _fire_step(self, timer: Timer) -> None:
        payload = timer.payload
        playbook = self.config.playbook(str(payload["playbook"]))
        step = next((item for item in (playbook.steps if playbook else ())
                     if item.number == payload["step"]), None)
        if step is None:
            self._finish(timer, SKIPPED, "disabled")
            return
        now = self.clock()
        if not self._allowed(payload["contact"]["key"], step, now):
            self._finish(timer, SKIPPED, "skipped_consent")
            return
        if step.kind == "marketing":
            release = self.config.quiet_hours.release_time(now)
            if release is not None:
                self.timers.put_back(timer, release)
                metrics.PLAYBOOK_TIMERS.labels(kind=STEP_KIND, outcome="deferred").inc()
                return
        sender = self.senders.get(step.channel)
        if sender is not None:
            self._send(timer, step, sender, now)
            return
        self._finish(timer, FIRED, "fired", lambda conn: self._mark(
            conn, payload, step.marker, timer.subject_key, step.discount))

    def _send(self, timer: Timer, step: Step, sender: StepSender, now: float) -> None:
        outcome = sender.send_step(step, timer.payload, now)
        if outcome.status == "deferred" and outcome.retry_at is not None:
            self.timers.put_back(timer, outcome.retry_at)
            metrics.PLAYBOOK_TIMERS.labels(kind=STEP_KIND, outcome="deferred").inc()
            return
        metrics.PLAYBOOK_MESSAGES.labels(channel=step.channel, outcome=outcome.status).inc()
        if outcome.status != "sent":
            log.warning("playbook message not sent", extra={
                "timer_kind": timer.kind, "timer_id": timer.id, "reason": outcome.reason})
            self._finish(timer, SKIPPED, "send_failed")
            return
        # A sent step is marked in the CRM too, so the contact's record shows what it got.
        self._finish(timer, FIRED, "fired", lambda conn: self._mark(
            conn, timer.payload, step.marker, timer.subject_key, step.discount))

    def _mark(self, conn: sqlite3.Connection, payload: Mapping[str, Any], marker: str,
              subject: str, with_code: bool = False) -> None:
        """Put the contact's playbook properties, and with ``notes`` its note, in the outbox."""
        fields = self.config.fields
        values: dict[str, Any] = {"playbook_step": marker}
        if with_code and payload.get("discount_code"):
            values["discount_code"] = payload["discount_code"]
            values["discount_expires_at"] = iso(float(payload["discount_expires_at"]))
        if payload.get("checkout_key"):
            values["last_checkout_at"] = iso(float(payload["checkout_at"]))
            values["last_cart_url"] = payload.get("url")
            values["last_cart_value_sar"] = payload.get("value")
        properties = {fields[name]: value for name, value in values.items()
                      if name in fields and value is not None}
        if not properties:
            return
        contact = payload["contact"]
        self.store.enqueue(conn, OutboxItem(
            object="contacts", key=contact["key"], properties=properties,
            id_property=contact.get("id_property"), id_value=contact.get("id_value"),
            event_id=f"playbook:{marker}", resource=f"contacts:{contact['key']}"))
        if self.notes:
            lines = {"Recovery link / رابط الاسترجاع": values.get("last_cart_url"),
                     "Discount code / رمز الخصم": values.get("discount_code"),
                     "Code expires / ينتهي الرمز": values.get("discount_expires_at")}
            self.store.enqueue(conn, note_item(contact["key"], marker, subject,
                                               iso(self.clock()), lines, self.note_crm))


# --- wiring ----------------------------------------------------------------------------


def observe_delivery(ctx: Any, conn: sqlite3.Connection, delivery: Any, contact: Any,
                     writes: Any, order_key: str | None) -> None:
    """Hand one delivery to ``ctx.playbooks`` inside the worker's transaction.

    Called by ``storesync.worker`` with its context, the delivery, the mapped contact
    record and what the write found (the contact key and its upsert key). The body
    is parsed again here, so the worker needs no change when a playbook reads more.
    """
    try:
        body = json.loads(delivery.body)
    except ValueError:
        return
    if not isinstance(body, Mapping):
        return
    ref = None
    if writes.contact_key is not None:
        phone_target = ctx.fields["contact"].get("phone_e164")
        phone = contact.properties.get(phone_target) if contact and phone_target else None
        if not phone:
            # A pixel or storefront checkout carries no contact record, so the phone
            # comes from the contact's stored identity keys.
            phone = _stored_phone(conn, writes.contact_key)
        ref = ContactRef(writes.contact_key, writes.contact_id_property,
                         writes.contact_id_value, str(phone) if phone else None)
    ctx.playbooks.observe(conn, delivery.source, delivery.topic, body, ref, order_key)


def _stored_phone(conn: sqlite3.Connection, contact_key: str) -> str | None:
    row = conn.execute("SELECT value FROM sync_identity WHERE kind = ? AND contact_key = ?"
                       " ORDER BY value LIMIT 1", (PHONE_KIND, contact_key)).fetchone()
    return str(row[0]) if row else None


def contacts_with_orders(store: SyncStore, contact_fields: Mapping[str, str]
                         ) -> dict[str, ContactRef]:
    """Return every contact with a stored order, with its upsert key, for the win-back scan.

    The upsert key is the email, then the phone, as the worker picks it.
    """
    email_target = contact_fields.get("email")
    phone_target = contact_fields.get("phone_e164")
    found: dict[str, ContactRef] = {}
    with store.db.reading() as conn:
        rows = conn.execute(
            "SELECT o.contact_key, i.kind, i.value FROM"
            " (SELECT DISTINCT contact_key FROM sync_orders WHERE contact_key IS NOT NULL) o"
            " LEFT JOIN sync_identity i ON i.contact_key = o.contact_key"
            " ORDER BY o.contact_key, i.kind").fetchall()
    keys: dict[str, dict[str, str]] = {}
    for contact_key, kind, value in rows:
        keys.setdefault(contact_key, {})
        if kind is not None:
            keys[contact_key].setdefault(kind, value)
    for contact_key, known in keys.items():
        phone = known.get(PHONE_KIND)
        if email_target and known.get(EMAIL_KIND):
            ref = ContactRef(contact_key, email_target, known[EMAIL_KIND], phone)
        elif phone_target and phone:
            ref = ContactRef(contact_key, phone_target, phone, phone)
        else:
            ref = ContactRef(contact_key, phone=phone)
        found[contact_key] = ref
    return found


def run_loop(runner: PlaybookRunner, contact_fields: Mapping[str, str],
             stop: threading.Event, interval_seconds: float = 30.0,
             scan_every_seconds: float = _DAY, notes: NoteWriter | None = None) -> None:
    """Fire due timers every ``interval_seconds`` and scan for win-back once a day until ``stop``.

    Run it in a thread of the worker process; several workers on one state file may
    each run it, because claims keep them from firing a timer twice.
    """
    next_scan = runner.clock()
    while not stop.is_set():
        try:
            if runner.clock() >= next_scan:
                runner.scan_win_back(contacts_with_orders(runner.store, contact_fields))
                next_scan = runner.clock() + scan_every_seconds
            # A step with no offset falls due when its playbook starts, so it goes in the
            # same pass.
            runner.run_until_idle()
            if notes is not None:
                notes.flush()
        except Exception:  # the next pass tries again; timers stay in the state file
            log.warning("playbook timer pass failed", exc_info=True)
        stop.wait(interval_seconds)


# --- reading bodies --------------------------------------------------------------------


def _path(body: Mapping[str, Any], dotted: str) -> Any:
    value: Any = body
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def _text(value: Any) -> str | None:
    return None if value is None or str(value).strip() == "" else str(value).strip()


def _time(value: Any) -> float | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def _checkout_fields(source: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """Return the checkout's token, recovery link, value and time from its body."""
    if source == "shopify" and "token" in body:
        return {"token": _text(body.get("token")),
                "url": _text(body.get("abandoned_checkout_url")),
                "value": _text(body.get("total_price")),
                "at": _time(body.get("updated_at") or body.get("created_at"))}
    if source == "shopify":  # a Web Pixels checkout_started event
        checkout = _path(body, "data.checkout") or {}
        return {"token": _text(checkout.get("token")), "url": None,
                "value": _text(_path(checkout, "totalPrice.amount")),
                "at": _time(body.get("timestamp"))}
    return {"token": _text(_path(body, "cart.token")), "url": _text(_path(body, "cart.url")),
            "value": _text(_path(body, "cart.value")), "at": _time(body.get("occurred_at"))}


def _order_checkout_tokens(source: str, body: Mapping[str, Any]) -> list[str]:
    found = (_text(_path(body, path)) for path in ORDER_CHECKOUT_PATHS.get(source, ()))
    return list(dict.fromkeys(token for token in found if token))


def _is_cancelled(source: str, body: Mapping[str, Any]) -> bool:
    """Return whether the order is cancelled or fully refunded, which ends post-purchase."""
    if source == "shopify":
        return bool(body.get("cancelled_at")) or body.get("financial_status") in CANCELLED[source]
    status = _path(body, "order.status") if source == "storefront" else body.get("status")
    return status in CANCELLED.get(source, ())


def _fulfilled_at(source: str, body: Mapping[str, Any]) -> float | None:
    """Return when the order was fulfilled, or None while it is not."""
    if source == "shopify":
        if body.get("fulfillment_status") != "fulfilled":
            return None
        times = [_time(item.get("created_at")) for item in body.get("fulfillments") or []
                 if isinstance(item, Mapping)]
        known = [when for when in times if when is not None]
        return max(known) if known else _time(body.get("updated_at"))
    if source == "woocommerce":
        if body.get("status") != "completed":
            return None
        return _time(body.get("date_completed_gmt")) or _time(body.get("date_modified_gmt"))
    if _path(body, "order.status") == "fulfilled":
        return _time(body.get("occurred_at"))
    return None


def _last_paid_order(orders: Any) -> tuple[str, float] | None:
    best: tuple[str, float] | None = None
    for order in orders:
        at = _time(order.ordered_at) if order.won else None
        if at is not None and (best is None or at > best[1]):
            best = (order.order_key, at)
    return best

