"""The worker's periodic store jobs: reconciliation and the webhook subscription check.

:func:`start_store_jobs` runs both in one thread of the worker process, each at its own
interval (``RECONCILE_INTERVAL_SECONDS``, ``SUBSCRIPTION_CHECK_INTERVAL_SECONDS``),
the first time right after start. With no store API credentials it starts nothing.
Run one worker host with these jobs per store: two would read the same changes, which
is harmless (the dedupe store drops the copies) but wastes API calls.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from .db import Database
from .settings import Settings
from .store_settings import store_api_platforms

log = logging.getLogger("storesync.store_jobs")


class StoreJobs:
    """Runs reconciliation and the subscription check when each is due."""

    def __init__(self, settings: Settings, enqueue: Any, db: Database,
                 mapping: dict[str, Any], clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.enqueue = enqueue
        self.db = db
        self.mapping = mapping
        self.clock = clock
        self.next_reconcile = 0.0
        self.next_check = 0.0

    def run_due(self) -> None:
        """Run each job whose time has come, logging any exception instead of raising it."""
        from .reconcile import reconcile_all
        from .subscriptions import check_all

        now = self.clock()
        if now >= self.next_reconcile:
            self.next_reconcile = now + self.settings.reconcile_interval_seconds
            try:
                reconcile_all(self.settings, self.enqueue, self.db, self.clock)
            except Exception:  # a bug here must not stop the worker; the next run retries
                log.exception("reconciliation run failed")
        if self.settings.public_base_url and now >= self.next_check:
            self.next_check = now + self.settings.subscription_check_interval_seconds
            try:
                check_all(self.settings, self.mapping)
            except Exception:  # as above
                log.exception("webhook subscription check failed")


def start_store_jobs(settings: Settings) -> Callable[[], None]:
    """Start the store jobs in a thread; return the function that stops them."""
    if not store_api_platforms(settings):
        log.info("store jobs off: no store API credentials are set")
        return lambda: None
    from .queue import build_queue
    from .worker import load_mapping

    queue = build_queue(settings)
    db = Database(settings.state_path)
    jobs = StoreJobs(settings, queue.enqueue_once, db, load_mapping(settings.mapping_path))
    stopped = threading.Event()

    def run() -> None:
        while not stopped.is_set():
            jobs.run_due()
            stopped.wait(max(1.0, min(jobs.next_reconcile, jobs.next_check or
                                      jobs.next_reconcile) - time.time()))

    thread = threading.Thread(target=run, name="store-jobs", daemon=True)
    thread.start()
    log.info("store jobs started", extra={
        "platforms": list(store_api_platforms(settings)),
        "reconcile_interval": settings.reconcile_interval_seconds})

    def stop() -> None:
        stopped.set()
        thread.join(timeout=30)
        queue.close()
        db.close()

    return stop
