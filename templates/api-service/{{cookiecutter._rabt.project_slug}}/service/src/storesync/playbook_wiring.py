"""Build the playbook runner from the settings and run its loop beside the worker.

The worker process calls :func:`start_playbooks` with its worker context, the consent
store and the store's discount issuer. The runner is then attached to the context,
so each delivery schedules or cancels timers in its own transaction, and a thread
fires the due timers, runs the daily win-back scan and writes the notes to HubSpot or
Zoho CRM.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from .playbook_config import load_playbook_config
from .playbook_notes import NoteWriter
from .playbooks import ConsentCheck, DiscountIssuer, PlaybookRunner, StepSender, run_loop
from .settings import Settings
from .timers import TimerStore

log = logging.getLogger("storesync.playbook_wiring")

# Seconds between two passes over the due timers. A step is at most this late.
LOOP_INTERVAL_SECONDS = 30.0
# The CRM targets whose contacts get a note for each playbook mark.
NOTE_CRMS = ("hubspot", "zoho")


def build_runner(settings: Settings, context: Any, consent: ConsentCheck,
                 discounts: DiscountIssuer,
                 clock: Callable[[], float] = time.time) -> PlaybookRunner:
    """Build the runner for a worker context (``storesync.worker.WorkerContext``).

    The direct WhatsApp sender is added when ``WHATSAPP_PHONE_NUMBER_ID`` is set.
    Notes are written for HubSpot and Zoho CRM; a custom database has no timeline.

    Raises:
        PlaybookConfigError: the spec or ``PLAYBOOK_CART_DELAY_HOURS`` cannot be used.
    """
    from .whatsapp import WhatsAppSender, load_whatsapp_settings

    config = load_playbook_config(settings.spec_dir, context.mapping, settings.playbook_environ)
    senders: dict[str, StepSender] = {}
    whatsapp = load_whatsapp_settings(settings.playbook_environ)
    if whatsapp is not None:
        senders["whatsapp"] = WhatsAppSender(whatsapp, config.quiet_hours)
    store = context.store
    return PlaybookRunner(config=config, store=store, timers=TimerStore(store.db, clock=clock),
                          consent=consent, discounts=discounts, senders=senders, clock=clock,
                          notes=settings.crm_target in NOTE_CRMS,
                          note_crm=settings.crm_target)


def start_playbooks(settings: Settings, context: Any, consent: ConsentCheck,
                    discounts: DiscountIssuer,
                    interval_seconds: float = LOOP_INTERVAL_SECONDS) -> Callable[[], None]:
    """Attach a runner to ``context`` and start the timer loop; return the stop function.

    Args:
        settings: The service settings.
        context: The worker context whose deliveries feed the timers.
        consent: The consent store (``storesync.consent.ConsentStore``).
        discounts: The store's discount issuer (``storesync.discounts.build_issuer``).
        interval_seconds: Seconds between two passes over the due timers.
    """
    runner = build_runner(settings, context, consent, discounts)
    context.playbooks = runner
    notes = None
    if runner.notes:
        from .flusher import client_for
        from .hubspot import HubSpotClient
        from .zoho import ZohoClient

        # runner.notes is set only for the CRMs of NOTE_CRMS, whose clients write notes.
        client = client_for(settings)
        if isinstance(client, HubSpotClient | ZohoClient):
            notes = NoteWriter(runner.store, client)
    stop = threading.Event()
    thread = threading.Thread(
        target=run_loop, name="playbook-timers", daemon=True,
        args=(runner, context.fields.get("contact", {}), stop, interval_seconds),
        kwargs={"notes": notes})
    thread.start()
    log.info("playbook timers started", extra={"senders": sorted(runner.senders)})

    def stop_playbooks() -> None:
        stop.set()
        thread.join(timeout=30)
        for sender in runner.senders.values():
            close = getattr(sender, "close", None)
            if close is not None:
                close()
        if notes is not None:
            notes.client.close()

    return stop_playbooks
