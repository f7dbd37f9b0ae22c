"""The lock that lets only one flusher drain the outbox at a time.

Two flushers on the same outbox would read the same due rows and send each batch
twice. The flusher therefore holds a lock while it runs, whether it runs as its own
process or as a thread of the worker:

* Without ``REDIS_URL``: an exclusive ``flock`` on ``DATA_DIR/flusher.lock``
  (:class:`FlusherLock`). The kernel releases it when the process ends, even on
  SIGKILL, so a crashed flusher never blocks the next one. ``flock`` works between
  processes of one machine and is not reliable on network file systems.
* With ``REDIS_URL``: a lease in Redis, the key ``<REDIS_KEY_PREFIX>:flusher-lease``
  (:class:`RedisFlusherLease`), taken with ``SET NX PX``, renewed by a thread of the
  holder and deleted when it stops. A killed holder stops renewing, and the lease
  expires after ``LEASE_SECONDS``. One flusher drains in the whole deployment.

What is still per host: the state file ``DATA_DIR/state.sqlite3`` holds the worker's
identity table, the orders behind the contact roll-ups, the newest-state guard and the
outbox. The lease only keeps two flushers from draining at once. A worker with a
DATA_DIR of its own would fill an outbox that the lease holder never reads, so every
worker and flusher process must share one DATA_DIR volume today.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Protocol

import redis

log = logging.getLogger("storesync.flusher")

LOCK_FILE_NAME = "flusher.lock"
# How long a lease outlives the last renewal. The holder renews every third of it, so a
# Redis that stalls for less than two renewals does not cost the lease.
LEASE_SECONDS = 30.0
# The maximum delay before the renewal thread passes ``stop`` on to the drain loop.
WATCH_SECONDS = 0.5

# Renew the lease KEYS[1] for ARGV[2] ms only while it still holds ARGV[1], this holder.
_RENEW_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
# Delete the lease KEYS[1] only while it holds ARGV[1], so a late release never deletes
# the lease of the next holder.
_RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class OutboxLock(Protocol):
    """The flusher's lock: the flock or the Redis lease."""

    where: str

    def acquire(self) -> bool:
        """Take the lock unless another holder has it; return whether it is held now."""

    def holder(self) -> str | None:
        """Return who holds the lock (a process id, or host and process), when known."""

    def guard(self, stop: threading.Event) -> threading.Event:
        """Return the event that stops the drain loop: ``stop``, or one also set on a lost lease."""

    def release(self) -> None:
        """Release the lock; nothing happens when it is not held."""


class FlusherLock:
    """An exclusive, non-blocking ``flock`` on the flusher's lock file."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_FILE_NAME
        self.where = str(self.path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None

    def acquire(self) -> bool:
        """Take the lock unless another holder has it; return whether it is held now.

        Raises:
            OSError: the lock file cannot be created or opened.
        """
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        # The holder's process id goes into the file, so a waiting flusher can log it.
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def holder_pid(self) -> int | None:
        """Return the process id written by the current holder, when the file has one."""
        try:
            text = self.path.read_text(encoding="utf-8").strip()
        except OSError:
            return None
        return int(text) if text.isdigit() else None

    def holder(self) -> str | None:
        """Return the holder's process id as text, when the file has one."""
        pid = self.holder_pid()
        return None if pid is None else f"process {pid}"

    def guard(self, stop: threading.Event) -> threading.Event:
        """Return ``stop``: the kernel keeps the lock until the process releases it."""
        return stop

    def release(self) -> None:
        """Release the lock; nothing happens when it is not held."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


class RedisFlusherLease:
    """The flusher's lock as a lease in Redis, for flushers on any host of the deployment."""

    def __init__(self, client: redis.Redis, prefix: str, *,
                 lease_seconds: float = LEASE_SECONDS) -> None:
        self.client = client
        self.key = f"{prefix}:flusher-lease"
        self.where = f"the Redis key {self.key}"
        self.lease_milliseconds = max(300, round(lease_seconds * 1000))
        self.value = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._renew = client.register_script(_RENEW_SCRIPT)
        self._release = client.register_script(_RELEASE_SCRIPT)
        self._held = False
        self._renewer: threading.Thread | None = None
        self._stop_renewing = threading.Event()

    @property
    def held(self) -> bool:
        """Whether this object took the lease and has not released or lost it."""
        return self._held

    def acquire(self) -> bool:
        """``SET key holder NX PX lease``; return whether this object holds the lease now.

        Raises:
            redis.RedisError: Redis cannot be reached.
        """
        if self._held:
            return True
        self._held = bool(self.client.set(self.key, self.value, nx=True,
                                          px=self.lease_milliseconds))
        return self._held

    def holder(self) -> str | None:
        """Return the holder as ``host:pid:id``, or None when no lease is set."""
        try:
            value = self.client.get(self.key)
        except redis.RedisError:
            return None
        if isinstance(value, bytes):
            return value.decode("utf-8", "replace")
        return None if value is None else str(value)

    def renew(self) -> bool:
        """Extend the lease by its length; False when another holder has it now.

        Raises:
            redis.RedisError: Redis cannot be reached.
        """
        return bool(self._renew(keys=[self.key], args=[self.value, self.lease_milliseconds]))

    def guard(self, stop: threading.Event) -> threading.Event:
        """Start renewing the lease; return an event set on ``stop`` or when the lease is lost.

        The lease is lost when a renewal finds another holder, or when no renewal has
        succeeded for a whole lease, because another flusher may hold it by then.
        """
        drain_stop = threading.Event()
        self._stop_renewing.clear()
        self._renewer = threading.Thread(target=self._keep, args=(stop, drain_stop),
                                         name="storesync-flusher-lease", daemon=True)
        self._renewer.start()
        return drain_stop

    def release(self) -> None:
        """Stop renewing and delete the lease while this object still holds it."""
        self._stop_renewing.set()
        if self._renewer is not None and self._renewer is not threading.current_thread():
            self._renewer.join(timeout=10)
        self._renewer = None
        if not self._held:
            return
        self._held = False
        try:
            self._release(keys=[self.key], args=[self.value])
        except redis.RedisError as error:
            log.warning("flusher lease could not be deleted; it expires on its own",
                        extra={"resource": self.key, "error": repr(error)})

    def _keep(self, stop: threading.Event, drain_stop: threading.Event) -> None:
        interval = self.lease_milliseconds / 3000
        last_renewed = time.monotonic()
        next_renewal = last_renewed + interval
        while not (stop.is_set() or self._stop_renewing.is_set()):
            # Short waits, so ``stop`` reaches the drain loop within half a second.
            stop.wait(min(WATCH_SECONDS, max(0.0, next_renewal - time.monotonic())))
            if stop.is_set() or self._stop_renewing.is_set() or \
                    time.monotonic() < next_renewal:
                continue
            next_renewal = time.monotonic() + interval
            try:
                if self.renew():
                    last_renewed = time.monotonic()
                    continue
                reason = "another flusher holds it now"
            except redis.RedisError as error:
                if time.monotonic() - last_renewed < self.lease_milliseconds / 1000:
                    log.warning("flusher lease could not be renewed; trying again",
                                extra={"resource": self.key, "error": repr(error)})
                    continue
                reason = "Redis was unreachable for a whole lease"
            log.error("flusher lease lost (%s); this flusher stops draining and waits for the "
                      "lease again", reason, extra={"resource": self.key})
            self._held = False
            break
        drain_stop.set()


def open_flusher_lock(settings: Any) -> OutboxLock:
    """Return the flusher's lock: the Redis lease with ``REDIS_URL``, else the flock."""
    if settings.redis_url:
        return RedisFlusherLease(redis.Redis.from_url(settings.redis_url),
                                 settings.redis_key_prefix)
    return FlusherLock(settings.data_dir)
