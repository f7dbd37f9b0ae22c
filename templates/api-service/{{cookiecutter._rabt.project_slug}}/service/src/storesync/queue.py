"""The durable queue between the intake and the worker, built on huey.

Without ``REDIS_URL`` the queue is an SQLite file, ``DATA_DIR/queue.sqlite3``, in WAL
mode with ``synchronous`` from ``QUEUE_SQLITE_SYNCHRONOUS``. With the default, FULL, a
delivery is on disk before the intake responds and survives a power loss; NORMAL
skips the fsync per commit and survives a crash of the process but not of the
machine. One fsync costs milliseconds on most disks, so concurrent deliveries are
committed together (group commit). Each request still waits for the commit that
contains its delivery, and one fsync covers the whole batch. The dedupe key of each
delivery is written in the same transaction as its job.

With ``REDIS_URL`` the same task code runs on Redis, so several workers on several
machines can share it; ``REDIS_KEY_PREFIX`` names the queue there. Concurrent
deliveries are sent together too, as one pipeline of the script that stores the
dedupe key and the job in one atomic step per delivery. Durability is then Redis's
own (its AOF or snapshot settings).
"""

from __future__ import annotations

import asyncio
import logging
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import huey
import redis
from huey.api import TaskWrapper
from huey.storage import SqliteStorage
from starlette.concurrency import run_in_threadpool

from .db import Database, check_writable, insert_rows
from .dedupe import DedupeStore, RedisDedupe, SqliteDedupe
from .delivery import Delivery
from .inbox import Inbox, RedisInbox, SqliteInbox
from .settings import Settings
from .tasks import DeliveryHandler, register_process_delivery

log = logging.getLogger(__name__)

# Errors that mean "the queue cannot take this delivery now". The intake responds with
# 503 to them, so the platform retries.
QUEUE_ERRORS: tuple[type[BaseException], ...] = (sqlite3.Error, redis.RedisError, OSError)
# Maximum number of deliveries committed in one transaction or sent in one pipeline.
MAX_GROUP_COMMIT = 500

# Redis: remember the dedupe key for the window, push the job and record it in the inbox,
# in one atomic step. KEYS: the dedupe key, huey's queue list, the inbox hash and the
# inbox sorted set; ARGV: the serialized job, the window in seconds (0: no dedupe check),
# the task id and the time. LPUSH onto huey's list is what RedisStorage.enqueue does
# (huey 2.5 to 3.x).
ENQUEUE_ONCE_LUA = """
if ARGV[2] == '0' or redis.call('SET', KEYS[1], 'done', 'NX', 'EX', ARGV[2]) then
  redis.call('LPUSH', KEYS[2], ARGV[1])
  redis.call('HSET', KEYS[3], ARGV[3], ARGV[1])
  redis.call('ZADD', KEYS[4], ARGV[4], ARGV[3])
  return 1
end
return 0
"""


class GroupCommitSqliteStorage(SqliteStorage):  # type: ignore[misc]
    """huey's SQLite storage that can also insert tasks inside a caller's transaction.

    ``synchronous`` is set here rather than through huey's ``fsync`` option, which
    offers only FULL and OFF.
    """

    def __init__(self, *args: Any, synchronous: str = "FULL", **kwargs: Any) -> None:
        self.synchronous = synchronous
        super().__init__(*args, **kwargs)

    def _create_connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection = super()._create_connection()
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        # A finished job's body is overwritten when huey deletes it, so a redacted
        # customer's webhook bodies do not stay in the queue file's free pages.
        conn.execute("PRAGMA secure_delete=ON")
        return conn

    def insert_tasks(self, cursor: sqlite3.Cursor, messages: Sequence[bytes]) -> None:
        """Insert serialized tasks with ``cursor``, in order, inside an open transaction.

        The rows are those ``SqliteStorage.enqueue`` inserts (huey 2.5 to 3.x): queue
        name, data and priority 0. The consumer therefore dequeues them like any
        other, in the order given, which a test checks.
        """
        insert_rows(cursor, "INSERT INTO task (queue, data, priority)",
                    [(self.name, self.to_blob(message), 0) for message in messages])


@dataclass(frozen=True)
class _Job:
    key: str | None  # None: queue without a dedupe check
    now: float
    task_id: str
    message: bytes


# A caller waiting for its job: a thread's Future, or an asyncio future and its loop.
_Waiter = tuple[_Job, "Future[bool] | asyncio.Future[bool]", "asyncio.AbstractEventLoop | None"]


def _settle_in_loop(outcomes: list[tuple[asyncio.Future[bool], bool | BaseException]]) -> None:
    for future, outcome in outcomes:
        if future.cancelled():
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


# Stores a batch of jobs; returns, per job, True when queued and False for a duplicate.
CommitBatch = Callable[[list[_Job]], list[bool]]


class GroupCommitWriter:
    """A thread that stores waiting jobs in batches: one SQLite transaction and fsync, or
    one Redis pipeline, each.

    Callers wait for the commit that contains their job. The result is True when the
    job was queued, and False when its dedupe key was already there.
    """

    def __init__(self, commit: CommitBatch, max_batch: int = MAX_GROUP_COMMIT) -> None:
        self._commit = commit
        self._max_batch = max_batch
        self._pending: list[_Waiter] = []
        self._wake = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="queue-group-commit", daemon=True)
        self._thread.start()

    def _add(self, waiter: _Waiter) -> None:
        with self._wake:
            if self._closed:
                raise RuntimeError("the queue writer is closed")
            self._pending.append(waiter)
            self._wake.notify()

    def submit(self, job: _Job) -> Future[bool]:
        """Add ``job`` to the next batch; the future is resolved after its commit.

        Raises:
            RuntimeError: the writer is closed.
        """
        future: Future[bool] = Future()
        self._add((job, future, None))
        return future

    def submit_async(self, job: _Job) -> asyncio.Future[bool]:
        """Like :meth:`submit`, for a coroutine: the future belongs to the running loop.

        The loop is woken once per batch, not once per job.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        self._add((job, future, loop))
        return future

    def close(self) -> None:
        """Commit what is waiting, then stop the thread."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._pending and not self._closed:
                    self._wake.wait()
                if not self._pending:
                    return
                batch = self._pending[:self._max_batch]
                del self._pending[:self._max_batch]
            outcomes: list[bool | BaseException]
            try:
                outcomes = list(self._commit([job for job, _, _ in batch]))
            except BaseException as error:  # every waiting caller gets the error
                outcomes = [error] * len(batch)
            self._settle(batch, outcomes)

    @staticmethod
    def _settle(batch: list[_Waiter], outcomes: list[bool | BaseException]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[Any]] = {}
        for (_, future, loop), outcome in zip(batch, outcomes, strict=True):
            if loop is not None:
                by_loop.setdefault(loop, []).append((future, outcome))
            elif isinstance(future, Future):
                if isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)
        for loop, settled in by_loop.items():
            loop.call_soon_threadsafe(_settle_in_loop, settled)



def sqlite_commit(storage: GroupCommitSqliteStorage, dedupe: SqliteDedupe) -> CommitBatch:
    """Return the batch commit of the SQLite queue: dedupe keys, jobs and inbox entries in
    one transaction."""

    def commit(jobs: list[_Job]) -> list[bool]:
        # huey's storage opens the transaction with BEGIN EXCLUSIVE, which the
        # read-then-write dedupe claim needs.
        with storage.db(commit=True) as cursor:
            claims = iter(dedupe.claim_many_in(
                cursor, [(job.key, job.now) for job in jobs if job.key is not None]))
            results = [job.key is None or next(claims) for job in jobs]
            queued = [job for job, fresh in zip(jobs, results, strict=True) if fresh]
            storage.insert_tasks(cursor, [job.message for job in queued])
            SqliteInbox.add_many_in(cursor, [(job.task_id, job.message, job.now)
                                             for job in queued])
            dedupe.purge_in(cursor, jobs[-1].now)
        return results

    return commit


def redis_commit(dedupe: RedisDedupe, queue_key: str, inbox: RedisInbox) -> CommitBatch:
    """Return the batch commit of the Redis queue: one pipeline of the enqueue-once script.

    The pipeline is not a transaction, but each script call is atomic, so every job
    is either queued with its dedupe key or not at all. If any call fails, every
    caller of the batch gets the error and a 503. A job of that batch that was queued
    anyway is then found as a duplicate when the platform retries.
    """
    script = dedupe.client.register_script(ENQUEUE_ONCE_LUA)

    def commit(jobs: list[_Job]) -> list[bool]:
        with dedupe.client.pipeline(transaction=False) as pipe:
            for job in jobs:
                window = 0 if job.key is None else dedupe.window_seconds
                script(keys=[dedupe.prefix + (job.key or ""), queue_key, inbox.hash_key,
                             inbox.times_key],
                       args=[job.message, window, job.task_id, job.now], client=pipe)
            return [bool(result) for result in pipe.execute()]

    return commit


def build_huey(settings: Settings) -> huey.Huey:
    """Return a RedisHuey when ``REDIS_URL`` is set, otherwise an SQLite huey in ``DATA_DIR``.

    Raises:
        sqlite3.Error or OSError: the SQLite queue file cannot be created.
    """
    if settings.redis_url:
        return huey.RedisHuey(name=settings.redis_key_prefix, url=settings.redis_url,
                              results=False)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return huey.Huey(name=settings.redis_key_prefix, results=False,
                     storage_class=GroupCommitSqliteStorage,
                     filename=str(settings.queue_path),
                     synchronous=settings.queue_sqlite_synchronous)


def build_dedupe(settings: Settings) -> DedupeStore:
    """Return the dedupe store that goes with the queue: Redis keys, or a table in the queue file.

    Raises:
        sqlite3.Error or OSError: the queue file cannot be opened.
    """
    window = settings.dedup_window_hours * 3600
    if settings.redis_url:
        return RedisDedupe(redis.Redis.from_url(settings.redis_url), settings.redis_key_prefix,
                           window)
    # No fsync per commit on this connection: it only serves the two-step claims of
    # quarantined deliveries, and a key lost in a power cut only lets one copy through
    # again, which the worker handles idempotently.
    return SqliteDedupe(Database(settings.queue_path, synchronous="NORMAL"), window)


def build_inbox(settings: Settings, queue: huey.Huey) -> Inbox:
    """Return the inbox that goes with the queue: Redis keys, or a table in the queue file.

    Raises:
        sqlite3.Error or OSError: the queue file cannot be opened.
    """
    if settings.redis_url:
        return RedisInbox(redis.Redis.from_url(settings.redis_url), settings.redis_key_prefix,
                          queue.storage.queue_key)
    # No fsync per commit: this connection only deletes finished entries and requeues
    # lost jobs. An entry that reappears after a power cut only runs its job again.
    return SqliteInbox(Database(settings.queue_path, synchronous="NORMAL"), queue.storage.name)


class DeliveryQueue:
    """Puts deliveries on the queue once per dedupe key; reports the queue's depth and health."""

    def __init__(self, queue: huey.Huey, task: TaskWrapper, settings: Settings,
                 dedupe: DedupeStore, inbox: Inbox) -> None:
        self.huey = queue
        self.task = task
        self.settings = settings
        self.dedupe = dedupe
        self.inbox = inbox
        storage = queue.storage
        self._writer = None
        if isinstance(storage, GroupCommitSqliteStorage) and isinstance(dedupe, SqliteDedupe):
            self._writer = GroupCommitWriter(sqlite_commit(storage, dedupe))
        elif (isinstance(dedupe, RedisDedupe) and isinstance(inbox, RedisInbox)
              and hasattr(storage, "queue_key")):
            self._writer = GroupCommitWriter(redis_commit(dedupe, storage.queue_key, inbox))

    def _job(self, delivery: Delivery, key: str | None, now: float) -> _Job:
        # huey's default task id is uuid4(), which reads os.urandom; that call releases
        # the GIL and can leave the event loop waiting for the writer thread. The id
        # only has to be unique, so a pseudo-random one does.
        task_id = f"{random.getrandbits(128):032x}"
        task = self.task.s(delivery.to_dict(), id=task_id)
        return _Job(key, now, task_id, bytes(self.huey.serialize_task(task)))

    def enqueue(self, delivery: Delivery, now: float | None = None) -> None:
        """Queue ``delivery`` without a dedupe check (used to requeue from the quarantine).

        Raises:
            One of ``QUEUE_ERRORS`` when the queue cannot be written.
        """
        if self._writer is not None:
            self._writer.submit(self._job(delivery, None, time.time() if now is None else now)
                                ).result()
            return
        self.task(delivery.to_dict())

    def recover(self, now: float | None = None, grace: float | None = None) -> int:
        """Queue again the jobs whose worker stopped before finishing them; return how many.

        See :mod:`storesync.inbox`. A job still waiting in the queue is not queued twice.
        ``grace`` defaults to the ``INBOX_GRACE_SECONDS`` setting.

        Raises:
            One of ``QUEUE_ERRORS`` when the queue cannot be read or written.
        """
        if grace is None:
            grace = self.settings.inbox_grace_seconds
        return self.inbox.requeue_stale(time.time() if now is None else now, grace)

    def enqueue_once(self, delivery: Delivery, key: str, now: float) -> bool:
        """Queue ``delivery`` unless ``key`` was seen within the dedupe window.

        Returns:
            True when queued (durable on return), False for a duplicate.

        Raises:
            One of ``QUEUE_ERRORS``: nothing was stored, and the key is not remembered.
        """
        if self._writer is not None:
            return self._writer.submit(self._job(delivery, key, now)).result()
        # Another dedupe store (tests): claim, queue, then confirm. NOTE: this path writes
        # no inbox entry, so a worker crash during the job loses it.
        if not self.dedupe.claim(key, now):
            return False
        try:
            self.task(delivery.to_dict())
        except BaseException:
            self.dedupe.release(key)
            raise
        self.dedupe.confirm(key, now)
        return True

    async def enqueue_once_async(self, delivery: Delivery, key: str, now: float) -> bool:
        """Like :meth:`enqueue_once`, without blocking the event loop."""
        if self._writer is not None:
            return await self._writer.submit_async(self._job(delivery, key, now))
        return await run_in_threadpool(self.enqueue_once, delivery, key, now)

    def depth(self) -> int:
        """Return how many jobs wait in the queue."""
        return int(self.huey.pending_count())

    def unfinished(self) -> int:
        """Return how many queued jobs have not finished: waiting, running or lost."""
        return self.inbox.count()

    def check(self) -> None:
        """Raise if the queue cannot be written now (Redis ``PING``, or an SQLite write lock)."""
        if self.settings.redis_url:
            client: Any = self.huey.storage.conn
            client.ping()
        else:
            check_writable(self.settings.queue_path)

    def close(self) -> None:
        """Commit waiting jobs and close the queue's connections."""
        if self._writer is not None:
            self._writer.close()
        self.dedupe.close()
        self.inbox.close()
        storage: Any = self.huey.storage
        if self.settings.redis_url:
            storage.conn.close()
        else:
            storage.close()


def build_queue(settings: Settings, handler: DeliveryHandler | None = None,
                dedupe: DedupeStore | None = None) -> DeliveryQueue:
    """Build the queue with the ``process_delivery`` task registered.

    Args:
        settings: The service settings.
        handler: Passed to :func:`storesync.tasks.register_process_delivery`; None uses the worker.
        dedupe: The dedupe store; by default the one :func:`build_dedupe` returns.
    """
    queue = build_huey(settings)
    inbox = build_inbox(settings, queue)
    task = register_process_delivery(queue, settings, handler, inbox.done)
    return DeliveryQueue(queue, task, settings, dedupe or build_dedupe(settings), inbox)


def _recover_once(queue: DeliveryQueue) -> None:
    try:
        requeued = queue.recover()
    except QUEUE_ERRORS:
        log.error("inbox recovery failed, will try again", exc_info=True)
        return
    if requeued:
        log.warning("requeued jobs that a stopped worker had not finished",
                    extra={"requeued": requeued})


def start_recovery(queue: DeliveryQueue, interval: float | None = None) -> Callable[[], None]:
    """Run :meth:`DeliveryQueue.recover` now and then every ``interval`` seconds in a thread.

    ``interval`` defaults to the ``INBOX_SCAN_INTERVAL_SECONDS`` setting.

    Returns:
        The function that stops the thread.
    """
    stopped = threading.Event()
    pause = queue.settings.inbox_scan_interval_seconds if interval is None else interval

    def run() -> None:
        while True:
            _recover_once(queue)
            if stopped.wait(pause):
                return

    thread = threading.Thread(target=run, name="inbox-recovery", daemon=True)
    thread.start()

    def stop() -> None:
        stopped.set()
        thread.join(timeout=30)

    return stop
