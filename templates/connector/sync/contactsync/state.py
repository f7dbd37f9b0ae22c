"""The sync's durable state: high-water marks and the contacts to retry, in one JSON file.

The file contains store ids, timestamps, counters and masked error texts, never a name,
email or phone number. It is replaced atomically (written beside itself, flushed to
disk, then renamed over the old one), so a crash or a full disk leaves the previous
state whole, and a lock file keeps two runs from interleaving.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from .errors import InvalidInput

STATE_VERSION = 1
# A contact that failed this many runs in a row is dropped from the retry list and
# logged, so one bad record cannot grow the list for ever.
MAX_RETRY_RUNS = 7


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
def run_lock(path: Path) -> Iterator[None]:
    """Hold ``<state>.lock`` for one run.

    Raises:
        InvalidInput: Another run holds the lock.
    """
    lock = path.with_name(path.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    try:
        handle = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError as error:
        raise InvalidInput(f"another sync run holds the lock {lock}",
                           "wait for it to finish; if no run is active (the machine "
                           "restarted mid-run), delete the lock file") from error
    try:
        os.write(handle, f"{os.getpid()}\n".encode())
        os.close(handle)
        yield
    finally:
        lock.unlink(missing_ok=True)
