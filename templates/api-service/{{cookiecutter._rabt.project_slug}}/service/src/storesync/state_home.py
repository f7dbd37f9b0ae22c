"""The state home: with ``REDIS_URL`` set, one state file serves every worker and flusher.

Redis shares the queue, the dedupe keys, the CRM rate limit, the Zoho credit budget and
the flusher lease between hosts. The worker's own state stays in ``DATA_DIR/state.sqlite3``:
the identity table (local contact keys such as ``c17``), the orders behind the contact
roll-ups, the newest-state guard, the outbox, the CRM ids and the dead letters. These
tables are read and written in one SQLite transaction per delivery, which is what makes a
repeated or reordered delivery harmless.

A worker with a DATA_DIR of its own, on a second machine, would therefore keep a second
identity table and a second newest-state guard. It would put a change the first worker
already wrote into its own outbox again, or put an older state of an order after a newer
one, and the one flusher that holds the lease would never drain its outbox. So the first
worker or flusher that starts against a Redis key prefix records its state file's id in
``<REDIS_KEY_PREFIX>:state-home``, and a process whose state file has another id refuses
to start. Processes of one host, or pods that mount the same volume, share the file and
so the id, and start as before.

The intake is not checked: each intake replica keeps only its quarantined deliveries in
a state file of its own, which is safe per host (see docs/deploy.md). Shopify privacy
requests go through the queue to the worker's state file.
"""

from __future__ import annotations

import uuid

import redis

from .db import Database
from .settings import Settings

COMPONENT = "state_home"
SCHEMA_STEPS: tuple[str, ...] = (
    "CREATE TABLE state_home (id TEXT NOT NULL)",
)
KEY_SUFFIX = "state-home"


class ForeignStateFile(Exception):
    """The Redis key prefix already belongs to another state file."""


def state_file_id(database: Database) -> str:
    """Return the id of the state file, created on first use."""
    database.migrate(COMPONENT, SCHEMA_STEPS)
    with database.transaction() as conn:
        row = conn.execute("SELECT id FROM state_home").fetchone()
        if row is not None:
            return str(row[0])
        created = uuid.uuid4().hex
        conn.execute("INSERT INTO state_home (id) VALUES (?)", (created,))
        return created


def home_key(settings: Settings) -> str:
    """Return the Redis key that stores the id of the prefix's state file."""
    return f"{settings.redis_key_prefix}:{KEY_SUFFIX}"


def claim_state_home(settings: Settings, client: redis.Redis | None = None) -> str | None:
    """Record this DATA_DIR's state file as the prefix's one, or refuse another one.

    Does nothing without ``REDIS_URL``: then the SQLite queue already ties every
    process to one DATA_DIR.

    Returns:
        The state file's id, or None without ``REDIS_URL``.

    Raises:
        ForeignStateFile: another state file already serves this Redis key prefix.
        redis.RedisError: Redis cannot be reached.
    """
    if not settings.redis_url:
        return None
    database = Database(settings.state_path)
    try:
        own = state_file_id(database)
    finally:
        database.close()
    owned = client is None
    client = client or redis.Redis.from_url(settings.redis_url)
    try:
        key = home_key(settings)
        client.set(key, own, nx=True)
        recorded = client.get(key)
    finally:
        if owned:
            client.close()
    found = recorded.decode() if isinstance(recorded, bytes) else str(recorded)
    if found != own:
        raise ForeignStateFile(
            f"DATA_DIR {settings.data_dir} contains state file {own}, but the Redis key {key} "
            f"names state file {found}: the workers and flushers of one REDIS_KEY_PREFIX must "
            "share one state file, or two of them would write the same change twice or "
            "an older state over a newer one. Point DATA_DIR at the volume the other "
            "workers use, or give this deployment its own REDIS_KEY_PREFIX. If the old "
            f"state file is lost for good, delete the key (redis-cli DEL {key}) and start "
            "again; records that waited in its outbox are then sent again by a backfill.")
    return own
