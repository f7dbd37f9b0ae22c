"""Alembic environment of the customer database.

``python -m storesync db ...`` passes an open connection in
``config.attributes["connection"]``. Run through the ``alembic`` command instead, the
environment connects to the ``DATABASE_URL`` environment variable. Only online
migrations are supported, because the views and the trigger need a live server.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection

from storesync.customdb.connection import sqlalchemy_url


def _migrate(connection: Connection) -> None:
    context.configure(connection=connection, transactional_ddl=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations() -> None:
    """Run the migrations on the passed connection, or on ``DATABASE_URL``."""
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    url = os.environ.get("DATABASE_URL", "").strip()
    if not url:
        raise SystemExit("DATABASE_URL is not set. Set it to the customer database, e.g. "
                         "postgresql://postgres@127.0.0.1:5432/storesync")
    engine = create_engine(sqlalchemy_url(url))
    try:
        with engine.connect() as opened:
            _migrate(opened)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("Offline (--sql) migrations are not supported; run them against the "
                     "database with python -m storesync db upgrade.")
run_migrations()
