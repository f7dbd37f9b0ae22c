"""State file tables that the custom database's worker step keeps beside the sync store."""

from __future__ import annotations

import gc
import sqlite3
from pathlib import Path

from storesync.customdb.deliveries import prepare_state
from storesync.db import Database


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {row[0] for row in rows}


def test_prepare_state_each_new_database(tmp_path: Path) -> None:
    # A collected Database's id() is often reused by the next one, which must still
    # get its tables.
    for number in range(20):
        path = tmp_path / f"state-{number}.sqlite3"
        database = Database(path)
        prepare_state(database)
        found = tables(path)
        database.close()
        del database
        gc.collect()
        assert "customdb_marks" in found, path.name
        assert "customdb_line_orders" in found, path.name
