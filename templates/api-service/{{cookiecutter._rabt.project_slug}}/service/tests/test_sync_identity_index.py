"""The identity table's index by contact, which the phone-sharing check reads through."""

from __future__ import annotations

from pathlib import Path

from storesync.db import Database
from storesync.sync_store import (
    COMPONENT,
    CONTACT_IDENTITY_SQL,
    EMAIL_KIND,
    SCHEMA_STEPS,
    SyncStore,
)

INDEX = "sync_identity_contact"


def test_contact_identity_query_uses_index(tmp_path: Path) -> None:
    store = SyncStore(Database(tmp_path / "state.sqlite3"))
    with store.db.connection() as conn:
        plan = conn.execute(f"EXPLAIN QUERY PLAN {CONTACT_IDENTITY_SQL}",
                            (EMAIL_KIND, "c1")).fetchall()
    details = " ".join(str(row[-1]) for row in plan)
    assert INDEX in details, details
    store.db.close()


def test_older_state_file_gets_index(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    older = Database(path)
    step = next(number for number, statement in enumerate(SCHEMA_STEPS) if INDEX in statement)
    older.migrate(COMPONENT, SCHEMA_STEPS[:step])
    older.close()

    store = SyncStore(Database(path))
    with store.db.connection() as conn:
        names = {row[0] for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert INDEX in names
    store.db.close()
