"""The run of ``storesync backfill``: count, estimate, then queue the orders with a progress bar."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

import click

from .backfill import describe, estimate, shopify_history_warning
from .db import Database
from .reconcile import queue_pages, store_readers
from .settings import Settings
from .store_api import StoreApiError, iso_z

log = logging.getLogger("storesync.backfill")

EXIT_FAILURE = 1


def count_orders(platform: str, client: Any, start: datetime, end: datetime) -> int:
    """Return how many orders the store has with a creation time in ``[start, end)``."""
    if platform == "shopify":
        return int(client.orders_count(f"created_at:>='{iso_z(start)}' AND "
                                       f"created_at:<'{iso_z(end)}'"))
    return int(client.orders_total(start, end))


def run_backfill(settings: Settings, start: datetime, end: datetime, today: date, *,
                 dry_run: bool, echo: Callable[[str], None], clock: Callable[[], float],
                 transport: Any = None, sleep: Any = None,
                 enqueue: Any = None, language: str = "en") -> int:
    """Estimate, and unless ``dry_run`` queue, every store's orders created in the range.

    Args:
        enqueue: ``DeliveryQueue.enqueue_once``; None opens the service's queue.
        language: The language of the estimate line, ``en`` or ``ar``.

    Returns:
        The exit code: 0, or 1 when a store could not be read.
    """
    kwargs = {"sleep": sleep} if sleep is not None else {}
    readers = store_readers(settings, transport, **kwargs)
    queue = None
    if not dry_run and enqueue is None:
        from .queue import build_queue

        queue = build_queue(settings)
        enqueue = queue.enqueue_once
    db = Database(settings.state_path)
    code = 0
    try:
        for platform, (shop, client, read) in readers.items():
            try:
                code = max(code, _one_store(platform, shop, client, read, settings, start, end,
                                            today, dry_run, echo, clock, enqueue, db,
                                            language))
            except StoreApiError as error:
                echo(f"Error: {platform}: {error}")
                code = EXIT_FAILURE
            finally:
                client.close()
    finally:
        db.close()
        if queue is not None:
            queue.close()
    return code


def _one_store(platform: str, shop: str, client: Any, read: Any, settings: Settings,
               start: datetime, end: datetime, today: date, dry_run: bool,
               echo: Callable[[str], None], clock: Callable[[], float], enqueue: Any,
               db: Database, language: str = "en") -> int:
    orders = count_orders(platform, client, start, end)
    restore = getattr(client, "restore_rate", None)
    label = "التقدير: " if language == "ar" else "Estimate: "
    echo(label + describe(platform, estimate(platform, orders, settings, restore, language),
                          language))
    warning = shopify_history_warning(start, today) if platform == "shopify" else None
    if warning:
        echo(f"Warning: {warning}")
    if dry_run or orders == 0:
        return 0
    # The stores' lower bounds are exclusive, so the start moves back one second.
    pages = read(start - timedelta(seconds=1), end, "created_at")
    with click.progressbar(length=orders, label=f"{platform} orders", file=None) as bar:
        result = queue_pages(platform, shop, pages, enqueue, db, clock, progress=bar.update,
                             count_missed=False)
    echo(f"{platform}: read {result.read}, queued {result.queued} (the rest were already "
         "queued or synced).")
    log.info("backfill finished", extra={"source": platform, "shop": shop, "read": result.read,
                                         "queued": result.queued})
    return 0
