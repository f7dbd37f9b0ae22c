"""Batch settlement for the writer: retries, dead letters and the recorded outcome.

The HubSpot flusher follows the same rules for its batches: a row that failed is
retried with backoff until its attempt count reaches the maximum, then becomes a dead
letter. Every finished row is recorded in the state file in one transaction and
counted in ``storesync_sync_records_total`` by outcome.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from .. import metrics
from ..runtime.ratelimit import backoff_seconds
from ..sync_store import OutboxRow, SyncStore


@dataclass(frozen=True)
class RetryPolicy:
    """The attempts a row gets and the backoff between them, in seconds."""

    max_attempts: int = 8
    backoff_base_seconds: float = 2.0
    backoff_max_seconds: float = 600.0


@dataclass
class WriteReport:
    """Outcome of one cycle, as row counts by outbox object."""

    written: dict[str, int] = field(default_factory=dict)
    dead_lettered: dict[str, int] = field(default_factory=dict)
    retried: dict[str, int] = field(default_factory=dict)
    # Rows not written because the database already had a newer state of the record.
    stale: dict[str, int] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        """Rows handled in the cycle, whatever their outcome."""
        return sum(self.written.values()) + sum(self.dead_lettered.values()) + \
            sum(self.retried.values()) + sum(self.stale.values())


@dataclass
class BatchOutcome:
    """The rows of one batch, sorted by outcome.

    Attributes:
        written: Rows stored in the database.
        stale: Rows not stored because the database has a newer state of the record.
        retried: Rows to try again, with the next attempt time and the error.
        dead: Rows given up, with the HTTP status (always None here) and the error.
    """

    written: list[OutboxRow] = field(default_factory=list)
    stale: list[OutboxRow] = field(default_factory=list)
    retried: list[tuple[OutboxRow, float, str, bool]] = field(default_factory=list)
    dead: list[tuple[OutboxRow, int | None, str]] = field(default_factory=list)


def retry_or_give_up(rows: Sequence[OutboxRow], now: float, error: str, policy: RetryPolicy,
                     rng: random.Random) -> BatchOutcome:
    """Schedule each row of a failed batch again, or dead-letter it after its last attempt."""
    outcome = BatchOutcome()
    for row in rows:
        attempt = row.attempts + 1
        if attempt >= policy.max_attempts:
            outcome.dead.append((row, None, f"{error} after {attempt} attempts"))
            continue
        delay = backoff_seconds(attempt, policy.backoff_base_seconds,
                                policy.backoff_max_seconds, rng)
        outcome.retried.append((row, now + delay, error, True))
    return outcome


def record_outcome(store: SyncStore, obj: str, outcome: BatchOutcome,
                   report: WriteReport) -> None:
    """Record a batch's outcome in the state file, the cycle's report and the metrics."""
    # A stale row is finished too: the newer state it lost to is already stored.
    finished = [(row, None) for row in (*outcome.written, *outcome.stale)]
    store.finish_batch(finished, outcome.retried, outcome.dead)
    counts = {"written": len(outcome.written), "stale": len(outcome.stale),
              "retried": len(outcome.retried), "dead_lettered": len(outcome.dead)}
    for name, count in counts.items():
        totals: dict[str, int] = getattr(report, name)
        if count:
            totals[obj] = totals.get(obj, 0) + count
    # The metric calls a written row "synced", as the HubSpot flusher does.
    for label, count in (("synced", counts["written"]), ("stale", counts["stale"]),
                         ("dead_lettered", counts["dead_lettered"])):
        if count:
            metrics.SYNC_RECORDS.labels(object=obj, outcome=label).inc(count)
