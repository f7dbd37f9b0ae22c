"""The inbox: every queued job stays recorded until the worker has finished it.

huey deletes a job from its queue when a consumer takes it, so a worker killed in the
middle of a job (SIGKILL, power loss) would lose the delivery. The intake therefore
writes each job twice in one atomic step: onto huey's queue and into the inbox, keyed
by huey's task id. The worker deletes the inbox entry after the job has returned (see
``storesync.tasks``). Recovery, run by the worker at start and every
``INBOX_SCAN_INTERVAL_SECONDS``, puts inbox entries older than ``INBOX_GRACE_SECONDS``
back on the queue unless they are still waiting there.

A job can thus run more than once: after a crash between the worker's commit and the
inbox delete, or when a job runs longer than the grace period. The worker is
idempotent (a repeated delivery finds its version already recorded and is skipped),
so a second run changes nothing.

With the SQLite queue the inbox is a table in the queue file. With Redis it is a hash
of task id to job and a sorted set of task id by queue time, under ``<prefix>:inbox``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any, Protocol

import redis

from .db import Database, insert_rows

# Entries handled per recovery pass, so one pass cannot hold the queue file for long.
RECOVERY_BATCH = 500

SCHEMA = (
    "CREATE TABLE inbox (task_id TEXT PRIMARY KEY, message BLOB NOT NULL, "
    "queued_at REAL NOT NULL)",
    "CREATE INDEX inbox_queued_at ON inbox (queued_at)",
)

# Re-queue one entry unless it still waits in huey's list, and restart its grace period.
# KEYS: huey's queue list, the inbox hash, the inbox sorted set; ARGV: task id, now.
# LPOS needs Redis 6.0.6 or later.
REQUEUE_LUA = """
local message = redis.call('HGET', KEYS[2], ARGV[1])
if not message then
  redis.call('ZREM', KEYS[3], ARGV[1])
  return 0
end
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1])
if redis.call('LPOS', KEYS[1], message) then
  return 0
end
redis.call('LPUSH', KEYS[1], message)
return 1
"""


class Inbox(Protocol):
    """The record of queued jobs that have not finished."""

    def done(self, task_id: str) -> None:
        """Delete the entry of a finished job."""

    def requeue_stale(self, now: float, grace: float) -> int:
        """Queue again the entries older than ``grace`` seconds; return how many."""

    def count(self) -> int:
        """Return how many jobs have not finished."""

    def close(self) -> None:
        """Release connections."""


class SqliteInbox:
    """The ``inbox`` table of the SQLite queue file, next to huey's ``task`` table."""

    def __init__(self, database: Database, queue_name: str) -> None:
        self.database = database
        self.queue_name = queue_name
        database.migrate("inbox", SCHEMA)

    @staticmethod
    def add_many_in(cursor: sqlite3.Cursor, entries: Sequence[tuple[str, bytes, float]]) -> None:
        """Record jobs, as (task id, message, time queued), inside the caller's open
        transaction, which also queues them."""
        insert_rows(cursor, "INSERT INTO inbox (task_id, message, queued_at)", entries)

    def done(self, task_id: str) -> None:
        """Delete the entry of a finished job."""
        with self.database.connection() as conn:
            conn.execute("DELETE FROM inbox WHERE task_id = ?", (task_id,))

    def requeue_stale(self, now: float, grace: float) -> int:
        """Queue again, in one transaction, the old entries no longer in huey's table."""
        requeued = 0
        with self.database.transaction() as conn:
            stale = conn.execute("SELECT task_id, message FROM inbox WHERE queued_at <= ? "
                                 "ORDER BY queued_at LIMIT ?",
                                 (now - grace, RECOVERY_BATCH)).fetchall()
            # NOTE: each lookup scans huey's task table, so a pass costs up to
            # RECOVERY_BATCH scans of the backlog; fine for thousands of waiting jobs.
            for task_id, message in stale:
                conn.execute("UPDATE inbox SET queued_at = ? WHERE task_id = ?", (now, task_id))
                waiting = conn.execute("SELECT 1 FROM task WHERE queue = ? AND data = ? LIMIT 1",
                                       (self.queue_name, message)).fetchone()
                if waiting is None:
                    conn.execute("INSERT INTO task (queue, data, priority) VALUES (?, ?, 0)",
                                 (self.queue_name, message))
                    requeued += 1
        return requeued

    def count(self) -> int:
        """Return how many jobs have not finished."""
        with self.database.connection() as conn:
            return int(conn.execute("SELECT count(*) FROM inbox").fetchone()[0])

    def close(self) -> None:
        """Close the inbox's connection."""
        self.database.close()


class RedisInbox:
    """A hash of task id to job and a sorted set of task id by queue time."""

    def __init__(self, client: redis.Redis, prefix: str, queue_key: str) -> None:
        self.client = client
        self.hash_key = f"{prefix}:inbox"
        self.times_key = f"{prefix}:inbox:queued_at"
        self.queue_key = queue_key
        self._requeue: Any = client.register_script(REQUEUE_LUA)

    def done(self, task_id: str) -> None:
        """``HDEL`` and ``ZREM`` the entry, in one transaction."""
        with self.client.pipeline(transaction=True) as pipe:
            pipe.hdel(self.hash_key, task_id)
            pipe.zrem(self.times_key, task_id)
            pipe.execute()

    def requeue_stale(self, now: float, grace: float) -> int:
        """Queue again the old entries that no longer wait in huey's list."""
        stale = self.client.zrangebyscore(self.times_key, "-inf", now - grace,
                                          start=0, num=RECOVERY_BATCH)
        requeued = 0
        for task_id in stale:
            requeued += int(self._requeue(keys=[self.queue_key, self.hash_key, self.times_key],
                                          args=[task_id, now]))
        return requeued

    def count(self) -> int:
        """Return how many jobs have not finished."""
        return int(self.client.hlen(self.hash_key))

    def close(self) -> None:
        """Close the client's connections."""
        self.client.close()
