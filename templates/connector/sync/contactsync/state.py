"""The sync's durable state: high-water marks and the contacts to retry, in one JSON file.

The file contains store ids, timestamps, counters and masked error texts, never a name,
email or phone number. It is replaced atomically (written beside itself, flushed to
disk, then renamed over the old one), so a crash or a full disk leaves the previous
state whole, and a lock file keeps two runs from interleaving; a lock left by a
run that crashed is taken over.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import InvalidInput, RunLocked

STATE_VERSION = 1
# A contact that failed this many runs in a row is dropped from the retry list and
# logged, so one bad record cannot grow the list for ever.
MAX_RETRY_RUNS = 7
# A lock older than this is taken over even when its process cannot be checked
# (another host) or still exists (hung); a daily run of a store takes minutes.
LOCK_STALE_AFTER_HOURS = 6


@dataclass
class Mark:
    """The newest change a run has written: its ``date_modified_gmt`` and the ids at it.

    WooCommerce dates count whole seconds, so the ids of every record at the mark's
    second are kept, and a record changed in the same second but not yet written is
    still read next time.
    """

    modified_gmt: str
    ids: list[int] = field(default_factory=list)

    def admits(self, modified: datetime, number: int) -> bool:
        """Return whether a record changed at ``modified`` is newer than the mark."""
        text = modified.strftime("%Y-%m-%dT%H:%M:%S")
        return text > self.modified_gmt or (text == self.modified_gmt and number not in self.ids)

    def to_data(self) -> dict[str, Any]:
        """Return the mark as plain data for JSON."""
        return {"modified_gmt": self.modified_gmt, "ids": sorted(self.ids)}


@dataclass
class SyncState:
    """Marks per source (``customers``, ``orders``), contacts to retry, and the last run."""

    marks: dict[str, Mark] = field(default_factory=dict)
    retry: list[dict[str, Any]] = field(default_factory=list)
    last_run: dict[str, Any] = field(default_factory=dict)

    def to_data(self) -> dict[str, Any]:
        """Return the state as plain data for JSON."""
        return {"version": STATE_VERSION,
                "marks": {name: mark.to_data() for name, mark in sorted(self.marks.items())},
                "retry": self.retry, "last_run": self.last_run}


def _mark(data: Any) -> Mark:
    if not isinstance(data, dict) or not isinstance(data.get("modified_gmt"), str):
        raise ValueError("a mark needs modified_gmt")
    ids = data.get("ids") or []
    if not isinstance(ids, list) or not all(isinstance(number, int) for number in ids):
        raise ValueError("a mark's ids must be whole numbers")
    return Mark(data["modified_gmt"], list(ids))


def load_state(path: Path) -> SyncState:
    """Read the state file; a missing file is a first run.

    Raises:
        InvalidInput: The file exists but is not a state file this version can read.
    """
    if not path.exists():
        return SyncState()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
            raise ValueError(f"expected version {STATE_VERSION}")
        marks = {str(name): _mark(value) for name, value in (data.get("marks") or {}).items()}
        retry = [item for item in data.get("retry") or [] if isinstance(item, dict)]
        last_run = data.get("last_run") if isinstance(data.get("last_run"), dict) else {}
    except (OSError, ValueError, AttributeError) as error:
        raise InvalidInput(f"the state file {path} cannot be read: {error}",
                           "restore it from a backup, or delete it to sync every contact "
                           "again (upserts make that safe)") from error
    return SyncState(marks, retry, dict(last_run or {}))


def save_state(path: Path, state: SyncState) -> None:
    """Replace the state file atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(state.to_data(), ensure_ascii=False, indent=2) + "\n"
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@contextmanager
def run_lock(path: Path, now: Callable[[], float] = time.time,
             on_takeover: Callable[[dict[str, Any]], None] | None = None) -> Iterator[None]:
    """Hold ``<state>.lock`` for one run, taking over a lock its run left behind.

    The lock file records the run's host, process id and start time. A lock counts
    as left behind when its process no longer exists on this host, or when it is
    older than ``LOCK_STALE_AFTER_HOURS`` (a daily run never takes that long, so the
    holder is hung or ran on another machine).

    Args:
        path: The state file; the lock is beside it.
        now: Seconds since the epoch.
        on_takeover: Called with the old lock's contents before it is taken over.

    Raises:
        RunLocked: A live run holds the lock (exit code 3).
    """
    lock = path.with_name(path.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    handle = _create_lock(lock)
    if handle is None:
        holder = _read_lock(lock)
        if not _is_stale(holder, lock, now()):
            raise _locked_error(lock, holder)
        if on_takeover is not None:
            on_takeover(holder)
        lock.unlink(missing_ok=True)
        handle = _create_lock(lock)
        if handle is None:  # another run took it over first
            raise _locked_error(lock, _read_lock(lock))
    try:
        record = {"pid": os.getpid(), "host": socket.gethostname(), "started_at": now()}
        os.write(handle, json.dumps(record).encode())
        os.close(handle)
        yield
    finally:
        lock.unlink(missing_ok=True)


def _create_lock(lock: Path) -> int | None:
    try:
        return os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return None


def _read_lock(lock: Path) -> dict[str, Any]:
    """Return the lock's record; an empty dict when it is unreadable."""
    try:
        data = json.loads(lock.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if isinstance(data, int):  # earlier syncs wrote only the process id
        return {"pid": data, "host": socket.gethostname()}
    return data if isinstance(data, dict) else {}


def _is_stale(holder: Mapping[str, Any], lock: Path, current: float) -> bool:
    started = holder.get("started_at")
    if not isinstance(started, int | float):
        try:
            started = lock.stat().st_mtime  # no readable record: judge by the file's age
        except FileNotFoundError:
            return True
    if current - started > LOCK_STALE_AFTER_HOURS * 3600:
        return True
    pid = holder.get("pid")
    if holder.get("host") != socket.gethostname() or not isinstance(pid, int):
        return False  # another machine's run: only its age can tell
    return not _process_exists(pid)


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0 checks the process without touching it
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists but belongs to another user
    return True


def _locked_error(lock: Path, holder: Mapping[str, Any]) -> RunLocked:
    started = holder.get("started_at")
    since = (datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds")
             if isinstance(started, int | float) else "an unknown time")
    return RunLocked(
        f"another sync run holds the lock {lock} (process {holder.get('pid', 'unknown')} "
        f"on {holder.get('host', 'an unknown host')}, since {since})",
        f"wait for that run to finish; a lock whose process is gone, or older than "
        f"{LOCK_STALE_AFTER_HOURS} hours, is taken over by the next run")
