"""The huey task that hands each queued delivery to the worker.

``process_delivery`` rebuilds the :class:`~storesync.delivery.Delivery` from the queued
dict and calls ``storesync.worker.handle_delivery`` with one worker context per
process, built on first use by ``storesync.worker.process_context(settings)``. A job
that raises is retried. When the retries are used up, the delivery goes to the
quarantine with the error, so an acknowledged webhook is not dropped. Once a job has
finished either way, its inbox entry is deleted (see :mod:`storesync.inbox`).

A Shopify privacy request queued by the intake is not mapped: the job stores it in the
``privacy_requests`` table of this worker's state file, where the privacy thread
(:mod:`storesync.privacy_runner`) handles it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import huey
from huey.api import Task, TaskWrapper

from . import metrics
from .db import Database
from .delivery import Delivery
from .privacy import PrivacyRequests, is_privacy_delivery, keep_privacy_job
from .quarantine import Quarantine
from .settings import Settings

log = logging.getLogger(__name__)

# Stable across processes and releases: queued jobs name their task by it.
TASK_NAME = "storesync.process_delivery"
# Retries for a job that raised, e.g. a locked state file. CRM errors do not raise
# here: the worker stores records in its outbox and the flusher retries CRM calls.
TASK_RETRIES = 3
TASK_RETRY_DELAY_SECONDS = 10
# The outcome of a job that stored a privacy request for the privacy thread.
PRIVACY_STORED = "privacy_stored"

DeliveryHandler = Callable[[Delivery], Any]
# Deletes the inbox entry of a finished job, by huey task id.
FinishJob = Callable[[str], None]


class _WorkerHandler:
    """Calls ``storesync.worker.handle_delivery`` with a context built once per process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._context: Any = None
        self._lock = threading.Lock()

    def __call__(self, delivery: Delivery) -> Any:
        from . import worker  # imported late so the web process does not need it

        with self._lock:
            if self._context is None:
                self._context = worker.process_context(self.settings)
        if self.settings.crm_target == "custom":
            from .customdb.deliveries import handle_delivery

            return handle_delivery(delivery, self._context)
        return worker.handle_delivery(delivery, self._context)


class _QuarantineOnFailure:
    """Opens the quarantine on first use, in the process that runs the jobs."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._quarantine: Quarantine | None = None
        self._lock = threading.Lock()

    def add(self, delivery: Delivery, reason: str) -> int:
        with self._lock:
            if self._quarantine is None:
                self._quarantine = Quarantine(Database(self.settings.state_path))
        return self._quarantine.add(delivery, reason)


class _PrivacyInbox:
    """Stores queued privacy requests in the state file, opened on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._requests: PrivacyRequests | None = None
        self._lock = threading.Lock()

    def keep(self, delivery: Delivery) -> str:
        with self._lock:
            if self._requests is None:
                self._requests = PrivacyRequests(Database(self.settings.state_path))
        request_id, stored = keep_privacy_job(self._requests, delivery)
        # Only ids are logged: the request names a customer whose data may be erased.
        log.info("privacy request stored for the privacy thread" if stored
                 else "privacy request already stored", extra={
                     "delivery_id": delivery.delivery_id, "topic": delivery.topic,
                     "privacy_request_id": request_id})
        return PRIVACY_STORED


def outcome_name(outcome: Any) -> str:
    """Return a job outcome as its metric label (enum members by their value)."""
    return str(getattr(outcome, "value", outcome))


def _finish(finish: FinishJob | None, task: Task | None, ids: dict[str, str]) -> None:
    if finish is None or task is None:
        return
    try:
        finish(task.id)
    except Exception:  # the entry stays, so recovery runs the job again, harmlessly
        log.warning("could not delete the inbox entry of a finished job", exc_info=True,
                    extra={**ids, "task_id": task.id})


def register_process_delivery(queue: huey.Huey, settings: Settings,
                              handler: DeliveryHandler | None = None,
                              finish: FinishJob | None = None) -> TaskWrapper:
    """Register the ``process_delivery`` task on ``queue`` and return it.

    Args:
        queue: The huey instance of this process.
        settings: The service settings; the default handler builds its worker context from them.
        handler: Called with each delivery instead of ``storesync.worker.handle_delivery``,
            e.g. a stub in tests.
        finish: Called with the task id once a job has finished, e.g. ``Inbox.done``.
    """
    handle = handler or _WorkerHandler(settings)
    failures = _QuarantineOnFailure(settings)
    privacy = _PrivacyInbox(settings)

    def process_delivery(data: dict[str, Any], task: Task | None = None) -> str:
        delivery = Delivery.from_dict(data)
        started = time.perf_counter()
        ids = {"delivery_id": delivery.delivery_id, "source": delivery.source,
               "topic": delivery.topic}
        try:
            if is_privacy_delivery(delivery):
                outcome = privacy.keep(delivery)
            else:
                outcome = outcome_name(handle(delivery))
        except Exception as error:
            retries_left = task.retries if task is not None else 0
            if retries_left > 0:
                log.warning("job failed, will retry", exc_info=True,
                            extra={**ids, "retries_left": retries_left})
                raise
            entry = failures.add(delivery, f"worker failed after {TASK_RETRIES + 1} attempts: "
                                           f"{type(error).__name__}: {error}")
            log.error("job failed, delivery quarantined", exc_info=True,
                      extra={**ids, "quarantine_id": entry})
            metrics.JOBS.labels(outcome="failed").inc()
            _finish(finish, task, ids)
            return "failed"
        _finish(finish, task, ids)
        metrics.JOBS.labels(outcome=outcome).inc()
        duration_ms = round(1000 * (time.perf_counter() - started), 1)
        log.debug("job finished", extra={**ids, "outcome": outcome, "duration_ms": duration_ms})
        return outcome

    wrapper: TaskWrapper = queue.task(retries=TASK_RETRIES, retry_delay=TASK_RETRY_DELAY_SECONDS,
                                      context=True, name=TASK_NAME)(process_delivery)
    return wrapper
