"""Marketing consent per channel (email, sms, whatsapp) in the state file, and its gate.

Where consent comes from:

* the store: each delivery body, read by the channel rules of
  ``integration/consent.yaml`` (see :mod:`storesync.customdb.consents`). Shopify's
  ``email_marketing_consent`` and ``sms_marketing_consent`` on customer bodies and on
  the consent topics ``customers_marketing_consent/update`` and
  ``customers_email_marketing_consent/update``; WooCommerce order meta
  (``_rabt_email_opt_in``, ``_rabt_sms_opt_in``, ``_rabt_whatsapp_opt_in``); the
  storefront's ``consent.<channel>.state``;
* the CRM: Zoho's consent checkboxes on the contact, read by
  :func:`storesync.zoho_consent.pull_zoho_consent`, or HubSpot's subscription statuses
  (communication preferences v4), read by :func:`pull_crm_statuses`. A HubSpot channel
  counts as granted when any of its subscription types is ``SUBSCRIBED``, and as
  withdrawn when every status it has is ``NOT_SUBSCRIBED``. NOTE: how HubSpot reports a
  contact with several types, some on and some off, is not confirmed; this rule
  favours sending only with an opt-in.

WhatsApp needs an explicit WhatsApp opt-in (WhatsApp Business Messaging Policy): only
the WhatsApp fields above and HubSpot's WHATSAPP statuses count. An email or SMS
opt-in, or a known phone number, never grants WhatsApp.

Each statement is kept as an event (``consent_events``: contact, channel, state, the
time it was given, source and wording version), which is also the record of consent
that PDPL requires. The current state of a channel is the newest event at or before the
time asked about; when a withdrawal and an opt-in have the same time, the withdrawal
wins. So an unsubscribe on any side wins over an older or equal-time opt-in, and only
a newer opt-in undoes it.

A withdrawal that changes the current state is propagated (``consent_pushes``): to
HubSpot as ``unsubscribe-all`` on that channel when it came from the store, and back
to the store when it came from the CRM and ``CONSENT_STORE_WRITEBACK`` is on. For Zoho
an opt-in from the store is pushed too, because Zoho keeps consent in the contact's
own fields (``integration/consent.yaml``), which the push sets to the current state. The
store side goes through the store API (:class:`storesync.store_consent.StoreUnsubscriber`);
without store API settings for the customer's shop such pushes end with status
``no_store_client``. The worker's privacy thread sends the pushes (see
:mod:`storesync.privacy_runner`).

A push carries no state of its own, because it sends the channel's current state when
it goes out. So a withdrawal push still waiting when the customer opts in again on the store
sends no unsubscribe, and ends ``superseded`` unless it can resubscribe instead.
With HubSpot, a store opt-in that replaces a withdrawal (the opt-in is newer) is
pushed as a resubscription: communication preferences v4 sets the channel's
subscription type from ``HUBSPOT_SUBSCRIPTION_IDS`` to ``SUBSCRIBED`` with the legal
basis ``HUBSPOT_RESUBSCRIBE_LEGAL_BASIS``. Without a subscription type for the channel
the push ends ``no_subscription_type``, HubSpot keeps the contact unsubscribed, and
nothing is unsubscribed again. NOTE: HubSpot documents that v4 can resubscribe a
contact who opted out; whether setting one subscription type also lifts an earlier
"unsubscribe from all" of the channel is not confirmed. When HubSpot rejects the call
the push ends ``failed`` with HubSpot's message.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .customdb.consents import ConsentRule, consent_changes, load_rules, parse_consent_time
from .db import Database
from .record_keys import shop_of_key

log = logging.getLogger("storesync.consent")

CHANNELS = ("email", "sms", "whatsapp")
GRANTED = "granted"
NOT_GRANTED = "not_granted"
WITHDRAWN = "withdrawn"
CRM_SOURCE = "hubspot"
ZOHO_SOURCE = "zoho"
# Sources that are the CRM itself: their withdrawals go only back to the store.
CRM_SOURCES = frozenset({CRM_SOURCE, ZOHO_SOURCE})
STORE_SOURCES = frozenset({"shopify", "woocommerce", "storefront"})
# HubSpot's channel names, by our channel.
CRM_CHANNELS = {"email": "EMAIL", "sms": "SMS", "whatsapp": "WHATSAPP"}
# Identity kinds (storesync.sync_store) that contain each channel's address.
# NOTE: HubSpot's reference shows the subscriber of SMS and WHATSAPP only as a string;
# sending the phone in E.164 with its "+" is an assumption to check on a live account.
ADDRESS_KINDS = {"email": "email", "sms": "phone", "whatsapp": "phone"}
STORE_CUSTOMER_KIND = "store_customer_id"
# Push targets and statuses.
TO_CRM = "crm"
TO_STORE = "store"
PENDING = "pending"
# The end of a push whose channel no longer needs it (a newer opt-in, or the CRM's own).
SUPERSEDED = "superseded"
NO_SUBSCRIPTION_TYPE = "no_subscription_type"
# HubSpot's legal bases for a subscription status (communication preferences v3 and v4).
LEGAL_BASES = ("LEGITIMATE_INTEREST_PQL", "LEGITIMATE_INTEREST_CLIENT",
               "PERFORMANCE_OF_CONTRACT", "CONSENT_WITH_NOTICE", "NON_GDPR",
               "PROCESS_AND_STORE", "LEGITIMATE_INTEREST_OTHER")
DEFAULT_LEGAL_BASIS = "CONSENT_WITH_NOTICE"
MAX_PUSH_ATTEMPTS = 10
PUSH_BACKOFF_MAX_SECONDS = 3600.0

SCHEMA = (
    "CREATE TABLE consent_events ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, contact_key TEXT NOT NULL,"
    " channel TEXT NOT NULL, state TEXT NOT NULL, captured_at REAL NOT NULL,"
    " source TEXT NOT NULL, wording_version TEXT, recorded_at REAL NOT NULL,"
    " UNIQUE (contact_key, channel, state, captured_at, source))",
    "CREATE INDEX consent_events_current ON consent_events (contact_key, channel, captured_at)",
    "CREATE TABLE consent_pushes ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT, contact_key TEXT NOT NULL, channel TEXT NOT NULL,"
    " target TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,"
    " next_attempt_at REAL NOT NULL, last_error TEXT, created_at REAL NOT NULL,"
    " done_at REAL)",
    "CREATE UNIQUE INDEX consent_pushes_waiting ON consent_pushes (contact_key, channel, target)"
    " WHERE status = 'pending'",
)

# Unsubscribes in the store, called with (shop part of the record keys, store customer
# id, channel). It returns the push's status, and raises StoreApiError when the call fails.
StoreUnsubscribe = Callable[[str, str, str], str]


@dataclass(frozen=True)
class ConsentEvent:
    """One statement of consent for one contact and channel."""

    channel: str
    state: str
    captured_at: float
    source: str
    wording_version: str | None = None


@dataclass(frozen=True)
class Resubscription:
    """The HubSpot subscription types and legal basis that resubscribe a contact.

    Attributes:
        subscription_ids: HubSpot's subscription type id per channel (``email`` ...);
            a channel left out is never resubscribed.
        legal_basis: One of :data:`LEGAL_BASES`.
    """

    subscription_ids: Mapping[str, int] = field(default_factory=dict)
    legal_basis: str = DEFAULT_LEGAL_BASIS

    @classmethod
    def for_settings(cls, settings: Any) -> Resubscription:
        """Return the subscription types and legal basis the settings name."""
        return cls(dict(settings.hubspot_subscription_ids),
                   settings.hubspot_resubscribe_legal_basis)


@dataclass(frozen=True)
class ConsentPush:
    """A withdrawal waiting to reach the CRM or the store."""

    id: int
    contact_key: str
    channel: str
    target: str
    attempts: int


class ConsentStore:
    """The consent tables of the state file; the gate the playbooks ask before a message."""

    def __init__(self, database: Database, clock: Callable[[], float] = time.time, *,
                 store_writeback: bool = False, push_grants: bool = False,
                 push_resubscriptions: bool = False) -> None:
        """Open the consent tables.

        Args:
            database: The state file.
            clock: Returns the current Unix time.
            store_writeback: Push withdrawals made in the CRM back to the store.
            push_grants: Push opt-ins from the store to the CRM too (Zoho).
            push_resubscriptions: Push a store opt-in that replaces a withdrawal to the
                CRM (HubSpot).
        """
        self.database = database
        self.clock = clock
        self.store_writeback = store_writeback
        self.push_grants = push_grants
        self.push_resubscriptions = push_resubscriptions
        database.migrate("consent", SCHEMA)

    @classmethod
    def for_settings(cls, database: Database, settings: Any,
                     clock: Callable[[], float] = time.time) -> ConsentStore:
        """Return the store with the propagation the settings ask for."""
        return cls(database, clock, store_writeback=settings.consent_store_writeback,
                   push_grants=settings.crm_target == "zoho",
                   push_resubscriptions=settings.crm_target == "hubspot")

    @contextmanager
    def _connection(self, conn: sqlite3.Connection | None) -> Iterator[sqlite3.Connection]:
        if conn is not None:
            yield conn
        else:
            with self.database.transaction() as own:
                yield own

    # --- the gate -----------------------------------------------------------------

    def allows(self, contact_key: str, channel: str, at: float | None = None) -> bool:
        """Return whether ``contact_key`` may get a marketing message on ``channel``.

        Args:
            contact_key: The local contact key (``c<number>``).
            channel: ``email``, ``sms`` or ``whatsapp``; any other channel gives False.
            at: The time of the message (Unix seconds); now when left out.
        """
        if channel not in CHANNELS:
            return False
        current = self.current(contact_key, channel, at)
        return current is not None and current.state == GRANTED

    def current(self, contact_key: str, channel: str, at: float | None = None,
                conn: sqlite3.Connection | None = None) -> ConsentEvent | None:
        """Return the event that decides the channel's consent at ``at``, or None."""
        when = self.clock() if at is None else at
        query = ("SELECT channel, state, captured_at, source, wording_version FROM consent_events"
                 " WHERE contact_key = ? AND channel = ? AND captured_at <= ?"
                 " ORDER BY captured_at DESC, state = 'withdrawn' DESC, id DESC LIMIT 1")
        if conn is not None:
            row = conn.execute(query, (contact_key, channel, when)).fetchone()
        else:
            with self.database.reading() as reader:
                row = reader.execute(query, (contact_key, channel, when)).fetchone()
        return ConsentEvent(*row) if row else None

    def history(self, contact_key: str) -> list[ConsentEvent]:
        """Return every event of a contact, oldest first."""
        with self.database.reading() as reader:
            rows = reader.execute(
                "SELECT channel, state, captured_at, source, wording_version FROM consent_events"
                " WHERE contact_key = ? ORDER BY captured_at, id", (contact_key,)).fetchall()
        return [ConsentEvent(*row) for row in rows]

    # --- recording ----------------------------------------------------------------

    def record(self, contact_key: str, event: ConsentEvent,
               conn: sqlite3.Connection | None = None) -> bool:
        """Store one event; queue its propagation when it changes the current consent.

        A withdrawal goes where :meth:`_targets` returns. An opt-in goes to a CRM that
        keeps consent in fields of its own (``push_grants``), and to HubSpot when it
        replaces a withdrawal (``push_resubscriptions``).

        Returns:
            True when the event changed the channel's current state.
        """
        if event.channel not in CHANNELS:
            raise ValueError(f"unknown consent channel {event.channel!r}")
        now = self.clock()
        with self._connection(conn) as db:
            before = self.current(contact_key, event.channel, float("inf"), db)
            db.execute("INSERT OR IGNORE INTO consent_events (contact_key, channel, state,"
                       " captured_at, source, wording_version, recorded_at)"
                       " VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (contact_key, event.channel, event.state, event.captured_at,
                        event.source, event.wording_version, now))
            after = self.current(contact_key, event.channel, float("inf"), db)
            before_state = before.state if before else None
            after_state = after.state if after else None
            changed = before_state != after_state
            if changed:
                for target in self._targets(before_state, after_state, event.source):
                    db.execute("INSERT OR IGNORE INTO consent_pushes (contact_key, channel,"
                               " target, status, next_attempt_at, created_at)"
                               " VALUES (?, ?, ?, 'pending', ?, ?)",
                               (contact_key, event.channel, target, now, now))
        if changed:
            log.info("consent changed", extra={"contact_key": contact_key,
                                               "channel": event.channel, "state": event.state,
                                               "consent_source": event.source})
        return changed

    def _targets(self, before: str | None, state: str | None, source: str) -> list[str]:
        """Return where a change from ``before`` to ``state`` made by ``source`` is pushed."""
        if state == GRANTED and self.push_grants and source not in CRM_SOURCES:
            return [TO_CRM]
        if (state == GRANTED and before == WITHDRAWN and self.push_resubscriptions
                and source not in CRM_SOURCES):
            return [TO_CRM]
        if state != WITHDRAWN:
            return []
        if source in CRM_SOURCES:
            return [TO_STORE] if self.store_writeback else []
        targets = [TO_CRM]
        if self.store_writeback:
            targets.append(TO_STORE)
        return targets

    # --- propagation --------------------------------------------------------------

    def due_pushes(self, now: float, limit: int = 100,
                   targets: Sequence[str] = (TO_CRM, TO_STORE)) -> list[ConsentPush]:
        """Return pending pushes to ``targets`` whose next attempt is due, oldest first."""
        marks = ", ".join("?" * len(targets))
        with self.database.reading() as reader:
            rows = reader.execute(
                "SELECT id, contact_key, channel, target, attempts FROM consent_pushes"
                f" WHERE status = 'pending' AND next_attempt_at <= ? AND target IN ({marks})"
                " ORDER BY id LIMIT ?", (now, *targets, limit)).fetchall()
        return [ConsentPush(*row) for row in rows]

    def finish_push(self, push: ConsentPush, status: str, error: str | None = None) -> None:
        """Close a push with ``status`` (``done``, ``failed``, ``no_address`` ...)."""
        with self.database.transaction() as conn:
            conn.execute("UPDATE consent_pushes SET status = ?, last_error = ?, done_at = ?,"
                         " attempts = attempts + 1 WHERE id = ?",
                         (status, error, self.clock(), push.id))

    def retry_push(self, push: ConsentPush, error: str) -> None:
        """Try a push again later, or mark it failed after ``MAX_PUSH_ATTEMPTS``."""
        if push.attempts + 1 >= MAX_PUSH_ATTEMPTS:
            self.finish_push(push, "failed", error)
            return
        delay = min(PUSH_BACKOFF_MAX_SECONDS, 30.0 * 2 ** push.attempts)
        with self.database.transaction() as conn:
            conn.execute("UPDATE consent_pushes SET attempts = attempts + 1, last_error = ?,"
                         " next_attempt_at = ? WHERE id = ?",
                         (error, self.clock() + delay, push.id))

    def push_statuses(self, contact_key: str | None = None) -> list[tuple[str, str, str]]:
        """Return (channel, target, status) of the pushes, for tests and the export."""
        with self.database.reading() as reader:
            rows = reader.execute(
                "SELECT channel, target, status FROM consent_pushes"
                " WHERE ? IS NULL OR contact_key = ? ORDER BY id",
                (contact_key, contact_key)).fetchall()
        return [(row[0], row[1], row[2]) for row in rows]


def identity_values(conn: sqlite3.Connection, contact_key: str, kind: str) -> list[str]:
    """Return the identity values of one kind (email, phone ...) that lead to a contact."""
    return [row[0] for row in conn.execute(
        "SELECT value FROM sync_identity WHERE contact_key = ? AND kind = ? ORDER BY value",
        (contact_key, kind))]


# --- reading bodies (worker side) ------------------------------------------------------------


class ConsentRecorder:
    """Reads a delivery body's consent with the project's rules and stores it."""

    def __init__(self, store: ConsentStore, rules: Sequence[ConsentRule]) -> None:
        self.store = store
        self.rules = list(rules)

    @classmethod
    def from_spec(cls, store: ConsentStore, spec_dir: Path) -> ConsentRecorder:
        """Load the rules of ``spec_dir/consent.yaml``; a broken file is logged, not fatal."""
        try:
            rules = load_rules(spec_dir / "consent.yaml")
        except ValueError as error:
            # Records still sync; only consent is left out until the file is fixed.
            log.error("consent rules not loaded, so no consent is stored: %s", error)
            rules = []
        return cls(store, rules)

    def record_body(self, conn: sqlite3.Connection, contact_key: str, body: Any, source: str,
                    fallback_time: float) -> int:
        """Store the consent ``body`` states for a contact; return how many channels changed.

        A body without a readable consent time takes ``fallback_time`` (the payload's
        version), so a replay of an old body never looks newer than it is.
        """
        changed = 0
        fallback_time = order_meta_time(body, source, fallback_time)
        for change in consent_changes(self.rules, body):
            when = _timestamp(change.captured_at, fallback_time)
            event = ConsentEvent(change.channel, change.state, when, source,
                                 change.wording_version)
            changed += int(self.store.record(contact_key, event, conn))
        return changed


def _timestamp(value: datetime | None, fallback: float) -> float:
    return value.timestamp() if value is not None else fallback


def order_meta_time(body: Any, source: str, fallback: float) -> float:
    """Return the time an order's consent meta without its own time counts from.

    The checkout writes a WooCommerce order's consent meta once, and every later
    update of the order repeats it. So the meta dates from the order's creation
    (``date_created_gmt``, UTC without an offset), not from the update: otherwise
    completing an old order would restate its opt-in as newer than a withdrawal
    made since.
    """
    if source != "woocommerce" or not isinstance(body, Mapping) or "line_items" not in body:
        return fallback
    created = parse_consent_time(body.get("date_created_gmt"))
    return fallback if created is None else min(fallback, created.timestamp())


# --- the CRM side -----------------------------------------------------------------------------


def crm_state(statuses: Sequence[dict[str, Any]]) -> tuple[str, float] | None:
    """Return one channel's HubSpot statuses as (state, time), or None without a clear state.

    The time is the newest of the statuses that give the state. An opt-in takes the
    time of its ``SUBSCRIBED`` types only, because a newer opt-out of another type
    must not make an old opt-in look newer than a withdrawal stored since. Without
    any timestamp the time is 0, older than every stored event.
    """
    states = {str(item.get("status") or "").upper() for item in statuses}
    if "SUBSCRIBED" in states:
        state, deciding = GRANTED, "SUBSCRIBED"
    elif states == {"NOT_SUBSCRIBED"}:
        state, deciding = WITHDRAWN, "NOT_SUBSCRIBED"
    else:
        return None
    times = [_iso_seconds(item.get("timestamp")) for item in statuses
             if str(item.get("status") or "").upper() == deciding]
    known = [moment for moment in times if moment is not None]
    return state, max(known) if known else 0.0


def _iso_seconds(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def pull_crm_statuses(store: ConsentStore, client: Any, channels: Sequence[str],
                      batch: int = 100) -> int:
    """Record HubSpot's subscription status of every known address; return changes.

    Args:
        store: The consent store. Its database also contains the identity table.
        client: A :class:`storesync.hubspot.HubSpotClient`.
        channels: The channels the project manages (those of ``consent.yaml``).
        batch: Subscribers per call, at most 100.
    """
    changed = 0
    for channel in channels:
        kind = ADDRESS_KINDS[channel]
        with store.database.reading() as reader:
            owners = reader.execute("SELECT value, contact_key FROM sync_identity WHERE kind = ?"
                                    " ORDER BY value", (kind,)).fetchall()
        for start in range(0, len(owners), batch):
            chunk = dict(owners[start:start + batch])
            found = client.subscription_statuses(CRM_CHANNELS[channel], list(chunk))
            for subscriber, statuses in found.items():
                contact_key = chunk.get(subscriber) or chunk.get(subscriber.lower())
                read = crm_state(statuses)
                if contact_key is None or read is None:
                    continue
                event = ConsentEvent(channel, read[0], read[1], CRM_SOURCE)
                changed += int(store.record(contact_key, event))
    return changed


def send_pushes(store: ConsentStore, client: Any, now: float,
                targets: Sequence[str] = (TO_CRM, TO_STORE),
                resubscription: Resubscription | None = None,
                store_unsubscribe: StoreUnsubscribe | None = None) -> dict[str, int]:
    """Send the due pushes to HubSpot or the store; return counts by outcome.

    Each push sends the channel's current state (see the module's notes). CRM or store
    errors that may pass (5xx, 429, timeouts, a bad token) leave the push pending with
    a backoff; a 4xx data error fails it. ``targets`` limits the pushes sent, so Zoho
    projects send only the store's here. ``resubscription`` names HubSpot's
    subscription types; without it no contact is resubscribed. ``store_unsubscribe``
    writes to the store; without it pushes to the store end ``no_store_client``.
    """
    from .hubspot import BatchRejected, HubSpotError
    from .store_api import StoreApiError, StoreAuthError, StoreUnavailable

    counts: dict[str, int] = {}
    for push in store.due_pushes(now, targets=targets):
        failure: str | None = None
        try:
            outcome = _send_one(store, client, push, resubscription or Resubscription(),
                                store_unsubscribe)
        except (BatchRejected, StoreApiError) as error:
            if isinstance(error, StoreAuthError | StoreUnavailable):
                outcome, failure = "retry", type(error).__name__
                store.retry_push(push, f"{type(error).__name__}: {error}")
            else:
                outcome, failure = "failed", type(error).__name__
                store.finish_push(push, outcome, str(error))
        except (HubSpotError, OSError, RuntimeError) as error:
            outcome, failure = "retry", type(error).__name__
            store.retry_push(push, f"{type(error).__name__}: {error}")
        else:
            store.finish_push(push, outcome)
        counts[outcome] = counts.get(outcome, 0) + 1
        level = logging.INFO if failure is None else logging.WARNING
        log.log(level, "consent push %s", outcome, extra={
            "contact_key": push.contact_key, "channel": push.channel, "target": push.target,
            "error": failure})
    return counts


def _send_one(store: ConsentStore, client: Any, push: ConsentPush,
              resubscription: Resubscription, store_unsubscribe: StoreUnsubscribe | None) -> str:
    with store.database.reading() as reader:
        current = store.current(push.contact_key, push.channel, float("inf"), reader)
        if push.target == TO_CRM:
            addresses = identity_values(reader, push.contact_key, ADDRESS_KINDS[push.channel])
        else:
            addresses = identity_values(reader, push.contact_key, STORE_CUSTOMER_KIND)
    if current is None or not _still_needed(push, current):
        return SUPERSEDED
    if not addresses:
        return "no_address"
    if push.target == TO_CRM:
        if client is None:
            return "no_crm_client"
        if current.state != GRANTED:
            for address in addresses:
                client.unsubscribe_all(CRM_CHANNELS[push.channel], address)
            return "done"
        return _resubscribe(client, push, addresses, current, resubscription)
    if store_unsubscribe is None:
        return "no_store_client"
    # A contact can be a customer of several shops; "done" when any store took it.
    outcomes = {store_unsubscribe(shop_of_key(key), key.partition(":")[2], push.channel)
                for key in addresses}
    return "done" if "done" in outcomes else min(outcomes)


def _still_needed(push: ConsentPush, current: ConsentEvent) -> bool:
    """Return whether the channel's current state still calls for this push.

    Pushes are queued for withdrawals and, to the CRM, for store opt-ins. A current
    opt-in therefore ends a push to the store, and one to the CRM unless the store
    gave it. In those cases a newer opt-in replaced the withdrawal the push was
    queued for, or the CRM itself stated the current consent.
    """
    if current.state != GRANTED:
        return True
    return push.target == TO_CRM and current.source not in CRM_SOURCES


def _resubscribe(client: Any, push: ConsentPush, addresses: Sequence[str],
                 opt_in: ConsentEvent, resubscription: Resubscription) -> str:
    """Set the channel's subscription type to SUBSCRIBED for each address of the contact."""
    subscription_id = resubscription.subscription_ids.get(push.channel)
    if subscription_id is None:
        log.warning("store opt-in not sent to HubSpot: HUBSPOT_SUBSCRIPTION_IDS names no "
                    "subscription type for the channel, so HubSpot keeps the contact "
                    "unsubscribed", extra={"contact_key": push.contact_key,
                                           "channel": push.channel})
        return NO_SUBSCRIPTION_TYPE
    opted_in_at = datetime.fromtimestamp(opt_in.captured_at, UTC).isoformat(timespec="seconds")
    explanation = f"Opted in again on the store ({opt_in.source}) at {opted_in_at}"
    if opt_in.wording_version:
        explanation += f", consent wording {opt_in.wording_version}"
    for address in addresses:
        client.subscribe(CRM_CHANNELS[push.channel], address, subscription_id,
                         resubscription.legal_basis, explanation + ".")
    return "done"
