"""The lock that lets only one flusher drain the outbox of a state file at a time.

Two flushers on the same outbox would read the same due rows and send each batch
twice. Each process also keeps its own rate limiter, so together they would exceed
``HUBSPOT_RATE_LIMIT_PER_10S`` and draw 429s. The flusher therefore holds an
exclusive ``flock`` on ``DATA_DIR/flusher.lock`` while it runs, whether it runs as its
own process or as a thread of the worker. The kernel releases the lock when the
process ends, even on SIGKILL, so a crashed flusher never blocks the next one.

NOTE: ``flock`` works between processes of one machine, which is also the reach of
the SQLite state file it guards; it is not reliable on network file systems.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_FILE_NAME = "flusher.lock"


class FlusherLock:
    """An exclusive, non-blocking ``flock`` on the flusher's lock file."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_FILE_NAME
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

    def release(self) -> None:
        """Release the lock; nothing happens when it is not held."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
