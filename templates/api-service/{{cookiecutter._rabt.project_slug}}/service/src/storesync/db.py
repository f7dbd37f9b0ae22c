"""SQLite connections for the service's state file, and a small schema migration helper.

Connections run in autocommit mode with WAL journaling, so readers never block the
writer, and a busy timeout, so a writer waits for another process's transaction
instead of failing at once. ``synchronous=FULL`` makes each commit durable across a
power loss, because an acknowledged webhook must never be lost.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

BUSY_TIMEOUT_SECONDS = 5.0
SYNCHRONOUS_MODES = ("FULL", "NORMAL")
# Bound parameters per statement. 999 is SQLite's default limit before 3.32.0 (later
# releases allow 32766), so statements stay valid on older builds too.
MAX_STATEMENT_VARIABLES = 999


def connect(path: Path, *, timeout: float = BUSY_TIMEOUT_SECONDS,
            synchronous: str = "FULL") -> sqlite3.Connection:
    """Open ``path`` (creating its folder) with WAL, a busy timeout and autocommit.

    ``synchronous="NORMAL"`` skips the fsync per commit: a commit then survives a crash
    of the process but not of the machine. Use it only for data that may be lost,
    such as dedupe keys. The connection may be shared between threads; callers
    serialise its use (see :class:`Database`).

    Raises:
        sqlite3.Error: the file cannot be opened or is not a database.
        OSError: the folder cannot be created.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
    if synchronous not in SYNCHRONOUS_MODES:
        raise ValueError(f"synchronous must be one of {SYNCHRONOUS_MODES}, not {synchronous!r}")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA foreign_keys=ON")
    # Deleted rows are overwritten with zeros, so a redaction leaves no copy of them in
    # the file's free space. Debian's SQLite is built with this on by default; SQLite's
    # own default and other builds leave it off.
    conn.execute("PRAGMA secure_delete=ON")
    return conn


def checkpoint(conn: sqlite3.Connection) -> bool:
    """Copy the WAL into the database file and empty it; return False when a reader blocked it.

    Until a checkpoint, the WAL still contains the pages as they were before a delete, so
    a redaction runs this (``wal_checkpoint(TRUNCATE)``, which also truncates the WAL
    file to zero bytes).
    """
    busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
    return int(busy) == 0


def migrate(conn: sqlite3.Connection, component: str, steps: Sequence[str]) -> int:
    """Apply the steps of ``component``'s schema that this file has not had yet.

    Each component (dedupe, quarantine, the worker's sync store) keeps its own
    version in ``schema_versions``: step N is applied once, in order, inside one
    transaction with the version update. Append new steps; never edit an old one.

    Returns:
        The component's schema version after migrating.
    """
    conn.execute("CREATE TABLE IF NOT EXISTS schema_versions ("
                 "component TEXT PRIMARY KEY, version INTEGER NOT NULL)")
    conn.execute("BEGIN IMMEDIATE")
    try:
        row = conn.execute("SELECT version FROM schema_versions WHERE component = ?",
                           (component,)).fetchone()
        version = int(row[0]) if row else 0
        for statement in steps[version:]:
            conn.execute(statement)
        if len(steps) > version:
            conn.execute("INSERT INTO schema_versions (component, version) VALUES (?, ?) "
                         "ON CONFLICT (component) DO UPDATE SET version = excluded.version",
                         (component, len(steps)))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return max(version, len(steps))


def insert_rows(cursor: sqlite3.Cursor, insert: str, rows: Sequence[Sequence[Any]],
                conflict: str = "") -> None:
    """Insert ``rows`` with as few statements as the variable limit allows.

    A group commit inserts many rows at once. One multi-row ``INSERT`` per table
    costs one statement step instead of one per row, and each step releases and
    takes back the GIL, which the intake's event loop thread is waiting for.

    Args:
        cursor: A cursor inside the caller's open transaction.
        insert: The statement up to ``VALUES``, e.g. ``INSERT INTO t (a, b)``.
        rows: The rows; all have the same number of values.
        conflict: An ``ON CONFLICT`` clause to append, or nothing.
    """
    if not rows:
        return
    width = len(rows[0])
    per_statement = max(1, MAX_STATEMENT_VARIABLES // width)
    for start in range(0, len(rows), per_statement):
        chunk = rows[start:start + per_statement]
        values = [value for row in chunk for value in row]
        cursor.execute(_insert_statement(insert, width, len(chunk), conflict), values)


@lru_cache(maxsize=256)
def _insert_statement(insert: str, width: int, count: int, conflict: str) -> str:
    row = "(" + ", ".join("?" * width) + ")"
    return f"{insert} VALUES {', '.join([row] * count)} {conflict}".rstrip()


class Database:
    """One shared connection to a state file, used by one thread at a time.

    SQLite allows one writer per file anyway. A lock around a single connection is
    simpler than a pool, and threads of the same process never see "database is locked".
    A second, read-only connection with a lock of its own serves :meth:`reading`, so a
    read never waits for a write transaction of another thread of this process.
    """

    def __init__(self, path: Path, *, synchronous: str = "FULL") -> None:
        self.path = path
        self._conn = connect(path, synchronous=synchronous)
        self._lock = threading.Lock()
        self._reader: sqlite3.Connection | None = None
        self._reader_lock = threading.Lock()

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """Lend the connection to the caller while holding the lock."""
        with self._lock:
            yield self._conn

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """Lend the read-only connection, opened on first use, while holding its lock.

        In WAL mode a read sees every transaction committed before its statement
        started and waits for no writer, neither this process's nor another's. Each
        statement runs in autocommit, so consecutive statements may see different
        commits. ``PRAGMA query_only`` makes any write on it raise ``sqlite3.Error``.
        """
        with self._reader_lock:
            if self._reader is None:
                self._reader = connect(self.path)
                self._reader.execute("PRAGMA query_only=ON")
            yield self._reader

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run the block in ``BEGIN IMMEDIATE`` … ``COMMIT``, rolling back on any error."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def checkpoint(self) -> bool:
        """Empty this file's WAL into the file (see :func:`checkpoint`)."""
        with self._lock:
            return checkpoint(self._conn)

    def migrate(self, component: str, steps: Sequence[str]) -> int:
        """Apply ``component``'s schema steps (see :func:`migrate`)."""
        with self._lock:
            return migrate(self._conn, component, steps)

    def close(self) -> None:
        """Close both connections."""
        with self._lock:
            self._conn.close()
        with self._reader_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None


def check_writable(path: Path, *, timeout: float = 1.0) -> None:
    """Open ``path`` on a fresh connection and take the write lock for a moment.

    Used by ``/readyz``: a moved, deleted or read-only file, or a folder that can
    no longer be written, fails here even while an older open connection still works.

    Raises:
        sqlite3.Error or OSError: the file cannot be opened or locked for writing.
    """
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
    finally:
        conn.close()
