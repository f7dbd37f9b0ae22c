"""The worker's privacy thread: privacy requests, CRM deletions and consent propagation.

Every ``POLL_SECONDS`` the thread claims each due privacy request and handles it
(:func:`handle_request`), tries the due CRM deletions (:mod:`storesync.privacy_crm`),
sends the due consent pushes (``storesync.consent``) and, every
``CONSENT_CRM_PULL_SECONDS``, reads the CRM's consent: HubSpot's subscription statuses,
or Zoho's consent fields (:mod:`storesync.zoho_consent`). With
``CONSENT_STORE_WRITEBACK=true`` and store API settings, a withdrawal made in the CRM
is written to the store (:mod:`storesync.store_consent`). A request that fails is tried
again after a growing pause, up to ``MAX_ATTEMPTS`` times; it then stays ``failed``
until ``python -m storesync privacy run ID``.

The CRM calls need ``CRM_TARGET=hubspot`` or ``zoho``. With ``CRM_TARGET=custom`` the
requests also redact and export the customer database (``storesync.customdb.privacy``),
and consent is neither pushed nor pulled.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .consent import (
    CHANNELS,
    TO_STORE,
    ConsentStore,
    Resubscription,
    StoreUnsubscribe,
    pull_crm_statuses,
    send_pushes,
)
from .customdb.consents import load_rules
from .db import Database, checkpoint, connect
from .privacy import PrivacyRequests, StoredPrivacyRequest
from .privacy_actions import (
    Customer,
    bury_customer,
    delete_exports,
    export_customer,
    find_customer,
    open_tables,
    redact_customer,
    redact_shop,
    shop_contacts,
    write_export,
)
from .privacy_crm import CrmDeletes, queue_deletes
from .record_keys import shop_part
from .settings import Settings
from .store_consent import StoreUnsubscriber
from .zoho_consent import ChannelFields, load_channel_fields, pull_zoho_consent, send_zoho_pushes

log = logging.getLogger("storesync.privacy")

POLL_SECONDS = 10.0
MAX_ATTEMPTS = 8
RETRY_BASE_SECONDS = 60.0
RETRY_MAX_SECONDS = 6 * 3600.0
# A claimed request that is not finished by then is taken again by another process.
LEASE_SECONDS = 900.0


def export_folder(settings: Settings) -> Path:
    """Return the folder of data request exports."""
    return settings.privacy_export_dir or settings.data_dir / "privacy-exports"


class PrivacyRunner:
    """Handles privacy requests and consent propagation for one state file."""

    def __init__(self, settings: Settings, database: Database, *, client: Any = None,
                 engine: Any = None, store_unsubscribe: StoreUnsubscribe | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        """Open the tables.

        Args:
            settings: The service settings.
            database: The state file.
            client: The HubSpot or Zoho client, or None without one.
            engine: The customer database's SQLAlchemy engine (``CRM_TARGET=custom``).
            store_unsubscribe: Writes a CRM withdrawal to the store, or None without
                ``CONSENT_STORE_WRITEBACK`` or store API settings.
            clock: Returns the current Unix time.
        """
        self.settings = settings
        self.database = database
        self.client = client
        self.engine = engine
        self.store_unsubscribe = store_unsubscribe
        self.clock = clock
        open_tables(database)
        self.requests = PrivacyRequests(database)
        self.consent = ConsentStore.for_settings(database, settings, clock)
        self.crm_deletes = CrmDeletes(database, client, clock)
        self.last_pull = 0.0
        # The contact key a Zoho consent pull stopped after; empty between full passes.
        self.pull_cursor = ""
        self.zoho_fields: dict[str, ChannelFields] = {}
        if settings.crm_target == "zoho":
            try:
                self.zoho_fields = load_channel_fields(settings.spec_dir / "consent.yaml")
            except ValueError as error:
                log.error("consent fields not loaded, so consent is not sent to Zoho: %s", error)

    # --- privacy requests ---------------------------------------------------------

    def run_due(self, request_id: int | None = None) -> int:
        """Handle every due request (or only ``request_id``); return how many were handled."""
        handled = 0
        while True:
            claimed = self.requests.claim(self.clock(), LEASE_SECONDS, request_id)
            if claimed is None:
                return handled
            self.run_claimed(claimed)
            handled += 1
            if request_id is not None:
                return handled

    def run_claimed(self, request: StoredPrivacyRequest) -> bool:
        """Handle one claimed request; record done, or the failure and the next try."""
        ids = {"privacy_request_id": request.id, "topic": request.request.topic,
               "delivery_id": request.delivery_id}
        try:
            counts = handle_request(self, request)
        except Exception as error:  # any failure is retried; the message has no personal data
            attempt = request.attempts + 1
            retry_at = None
            if attempt < MAX_ATTEMPTS:
                retry_at = self.clock() + min(RETRY_MAX_SECONDS,
                                              RETRY_BASE_SECONDS * 2 ** (attempt - 1))
            self.requests.fail(request.id, f"{type(error).__name__}: {error}", retry_at)
            log.error("privacy request failed", extra={
                **ids, "attempt": attempt, "will_retry": retry_at is not None,
                "error": type(error).__name__})
            return False
        handled_at = datetime.fromtimestamp(self.clock(), UTC).isoformat().replace("+00:00", "Z")
        self.requests.finish(request.id, counts, handled_at)
        log.info("privacy request handled", extra={**ids, "counts": counts})
        return True

    # --- consent ------------------------------------------------------------------

    def consent_pass(self) -> dict[str, int]:
        """Send due consent pushes, and pull the CRM's consent when that is due."""
        if self.client is None:
            return {}
        if self.settings.crm_target == "zoho":
            return self._zoho_consent_pass()
        counts = send_pushes(self.consent, self.client, self.clock(),
                             resubscription=Resubscription.for_settings(self.settings),
                             store_unsubscribe=self.store_unsubscribe)
        interval = self.settings.consent_crm_pull_seconds
        now = self.clock()
        if interval and now - self.last_pull >= interval:
            self.last_pull = now
            channels = managed_channels(self.settings.spec_dir)
            counts["pulled_changes"] = pull_crm_statuses(self.consent, self.client, channels)
        return counts

    def _zoho_consent_pass(self) -> dict[str, int]:
        now = self.clock()
        counts = send_zoho_pushes(self.consent, self.client, self.zoho_fields, now)
        store_counts = send_pushes(self.consent, None, now, targets=(TO_STORE,),
                                   store_unsubscribe=self.store_unsubscribe)
        for outcome, number in store_counts.items():
            counts[outcome] = counts.get(outcome, 0) + number
        interval = self.settings.consent_crm_pull_seconds
        # A pull that stopped part way goes on at the next pass, not after the interval.
        if interval and (self.pull_cursor or now - self.last_pull >= interval):
            if not self.pull_cursor:
                self.last_pull = now
            changed, self.pull_cursor = pull_zoho_consent(self.consent, self.client,
                                                          self.zoho_fields, self.pull_cursor)
            counts["pulled_changes"] = changed
        return counts

    def crm_deletes_pass(self) -> dict[str, int]:
        """Try the due CRM deletions of redacted customers; return counts by outcome."""
        return self.crm_deletes.send_due()


def managed_channels(spec_dir: Path) -> list[str]:
    """Return the channels ``consent.yaml`` has rules for."""
    try:
        rules = load_rules(spec_dir / "consent.yaml")
    except ValueError:
        return []
    return [channel for channel in CHANNELS if any(rule.channel == channel for rule in rules)]


def handle_request(runner: PrivacyRunner, stored: StoredPrivacyRequest) -> dict[str, Any]:
    """Act on one request; return counts (never data) for the row and the log."""
    topic = stored.request.topic
    if topic == "shop/redact":
        return _redact_shop(runner, stored)
    with runner.database.reading() as reader:
        customer = find_customer(reader, stored)
    if topic == "customers/data_request":
        return _export(runner, stored, customer)
    return _redact_customer(runner, stored, customer)


def _customer_db(runner: PrivacyRunner) -> Any:
    """Return ``storesync.customdb.privacy`` when the runner has a customer database."""
    if runner.engine is None:
        return None
    # Imported here because it needs SQLAlchemy, which only custom projects install.
    from .customdb import privacy

    return privacy


def _redact_shop(runner: PrivacyRunner, stored: StoredPrivacyRequest) -> dict[str, Any]:
    counts: dict[str, Any] = {}
    customer_db = _customer_db(runner)
    if customer_db is not None:
        shop_key = shop_part("shopify", stored.request.shop)
        with runner.database.reading() as reader:
            own, _shared = shop_contacts(reader, shop_key + ":")
        with runner.engine.begin() as connection:
            counts.update(customer_db.redact_shop(connection, shop_key, own))
    with runner.database.transaction() as conn:
        counts.update(redact_shop(conn, stored.request.shop, stored.id, runner.clock()))
    _erase_old_copies(runner)
    counts["exports_deleted"] = delete_exports(export_folder(runner.settings),
                                               stored.request.shop, whole_shop=True)
    return counts


def _erase_old_copies(runner: PrivacyRunner) -> None:
    """Empty the WAL of the state file and of the SQLite queue after a redaction.

    The deleted rows are zeroed in the files themselves (``secure_delete``), but their
    earlier page versions stay in each WAL until a checkpoint. A checkpoint that a
    long reader blocks is logged; the next checkpoint of that file finishes it.

    Jobs still waiting in the queue (SQLite or Redis) are not searched: their bodies
    stay in the queue until the worker takes them and skips them by the redaction's
    tombstones (:mod:`storesync.tombstones`), so they never write the data again.
    """
    files = [(runner.settings.state_path, runner.database.checkpoint())]
    queue_path = runner.settings.queue_path
    if runner.settings.redis_url is None and queue_path.exists():
        conn = connect(queue_path, synchronous="NORMAL")
        try:
            files.append((queue_path, checkpoint(conn)))
        finally:
            conn.close()
    for path, emptied in files:
        if not emptied:
            log.warning("the WAL could not be emptied after a redaction because a reader "
                        "was busy; it is emptied at the next checkpoint",
                        extra={"resource": str(path)})


def _export(runner: PrivacyRunner, stored: StoredPrivacyRequest,
            customer: Customer) -> dict[str, Any]:
    with runner.database.reading() as reader:
        data = export_customer(reader, customer, stored)
    customer_db = _customer_db(runner)
    if customer_db is not None:
        with runner.engine.connect() as connection:
            data["customer_database"] = customer_db.export_customer(
                connection, customer.contact_keys, sorted(customer.order_keys))
    path = write_export(export_folder(runner.settings), stored.id, data)
    counts = {"contacts": len(customer.contact_keys), "orders": len(data["orders"])}
    log.info("privacy export written",
             extra={"privacy_request_id": stored.id, "path": str(path), **counts})
    return {**counts, "export": str(path)}


def _redact_customer(runner: PrivacyRunner, stored: StoredPrivacyRequest,
                     customer: Customer) -> dict[str, Any]:
    # The customer database goes first: when it fails, the state file still leads to
    # the customer, so the next attempt finds the same records. The CRM deletion is
    # queued in the state file's redaction and tried after it, so a CRM that is down
    # never keeps the local data.
    counts: dict[str, Any] = {}
    customer_db = _customer_db(runner)
    if customer_db is not None:
        plain_ids = {key.partition(":")[2] for key in customer.customer_keys}
        with runner.engine.begin() as connection:
            counts.update(customer_db.redact_customer(
                connection, customer.contact_keys, customer.emails, customer.phones, plain_ids,
                sorted(customer.order_keys), shop_part("shopify", stored.request.shop)))
    crm_delete = runner.settings.privacy_crm_delete
    with runner.database.transaction() as conn:
        if crm_delete:
            counts["crm_deletes_queued"] = queue_deletes(
                conn, stored.id, runner.settings.crm_target, customer.contact_keys,
                customer.emails, runner.clock())
        counts.update(redact_customer(conn, customer, stored.id, stored.request.shop))
        counts["tombstones"] = bury_customer(conn, customer, stored.id, runner.clock())
    _erase_old_copies(runner)
    # After the transaction: a file deleted before a rollback could not be written back.
    counts["exports_deleted"] = delete_exports(
        export_folder(runner.settings), stored.request.shop,
        customer_id=stored.request.customer_id, contact_keys=customer.contact_keys)
    if crm_delete:
        outcomes = runner.crm_deletes.send_due(stored.id)
        counts["crm_deleted"] = outcomes.get("deleted", 0)
        counts["crm_deletes_waiting"] = outcomes.get("retry", 0)
    return counts


def build_runner(settings: Settings, database: Database | None = None, *,
                 connect: bool = True) -> PrivacyRunner:
    """Create a runner with the CRM client or customer database the settings describe.

    With ``connect`` False the runner only reads and writes the state file, as
    ``privacy list`` and ``privacy show`` need: no CRM client, customer database or
    store API is set up, so sandbox mode without a running stand-in logs no error.
    """
    if not connect:
        return PrivacyRunner(settings, database or Database(settings.state_path))
    client = engine = None
    if settings.crm_target == "custom":
        from .customdb.connection import create_database_engine
        from .customdb.writer import require_database_url

        try:
            engine = create_database_engine(require_database_url(settings))
        except ValueError as error:
            log.error("privacy thread has no customer database: %s", error)
    if settings.crm_target in ("hubspot", "zoho"):
        from .flusher import SetupError, client_for

        try:
            client = client_for(settings)
        except (SetupError, ValueError) as error:
            log.error("privacy thread has no %s client: %s", settings.crm_target, error)
    store_unsubscribe = None
    if settings.crm_target in ("hubspot", "zoho"):
        try:
            store_unsubscribe = StoreUnsubscriber.for_settings(
                settings, load_rules(settings.spec_dir / "consent.yaml"))
        except ValueError as error:
            log.error("consent rules not loaded, so CRM opt-outs are not written to the "
                      "store: %s", error)
        if settings.consent_store_writeback and store_unsubscribe is None:
            log.warning("CONSENT_STORE_WRITEBACK is on, but no store API settings are set "
                        "(SHOPIFY_SHOP_DOMAIN and SHOPIFY_ADMIN_ACCESS_TOKEN, or the "
                        "WOOCOMMERCE_* settings), so CRM opt-outs stay in the CRM")
    return PrivacyRunner(settings, database or Database(settings.state_path), client=client,
                         engine=engine, store_unsubscribe=store_unsubscribe)


def start_privacy_thread(settings: Settings) -> Callable[[], None]:
    """Run the runner every ``POLL_SECONDS`` in a daemon thread; return the stop function."""
    runner = build_runner(settings)
    stopped = threading.Event()

    def loop() -> None:
        while not stopped.is_set():
            try:
                runner.run_due()
                runner.crm_deletes_pass()
                runner.consent_pass()
            except Exception:  # the next pass tries again
                log.warning("privacy pass failed", exc_info=True)
            stopped.wait(POLL_SECONDS)

    thread = threading.Thread(target=loop, name="privacy", daemon=True)
    thread.start()

    def stop() -> None:
        stopped.set()
        thread.join(timeout=30)
        if runner.client is not None:
            runner.client.close()
        if isinstance(runner.store_unsubscribe, StoreUnsubscriber):
            runner.store_unsubscribe.close()
        if runner.engine is not None:
            runner.engine.dispose()
        runner.database.close()

    return stop
