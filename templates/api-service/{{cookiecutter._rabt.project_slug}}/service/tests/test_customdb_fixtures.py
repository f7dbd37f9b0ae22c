"""Fixtures of the custom database tests: a throw-away PostgreSQL database per test.

The server comes from ``DATABASE_URL`` (default ``postgresql://postgres@127.0.0.1:5432/
postgres``). Each test gets its own database, created here and dropped afterwards,
so the named database itself is never written. The tests skip when the server is
unreachable, and fail instead when ``CI`` is set. They run in projects whose CRM is
``custom``, the ones whose pyproject.toml installs SQLAlchemy, Alembic and psycopg.
"""

from __future__ import annotations

import importlib.util
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from intake_support import SHOPIFY_SECRET, STOREFRONT_SECRET, WOOCOMMERCE_SECRET
from sync_support import SPEC_DIR, Order, family, project_mapping

DEFAULT_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
CUSTOMDB_PACKAGES = ("sqlalchemy", "alembic", "psycopg")


def require_custom_project() -> None:
    """Skip unless this project's CRM is custom; fail when its packages are missing."""
    crm = project_mapping().get("crm")
    if crm != "custom":
        pytest.skip(f"this project's CRM is {crm}; the custom database tests run in projects "
                    "whose CRM is custom")
    missing = [name for name in CUSTOMDB_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not installed; install the service with "
                    "pip install -e '.[dev]'")


def server_url() -> str:
    """Return the URL of the test server's maintenance database."""
    return os.environ.get("DATABASE_URL", "").strip() or DEFAULT_SERVER_URL


def _unreachable(error: Exception) -> None:
    reason = (f"PostgreSQL is not answering at {server_url().rsplit('@', 1)[-1]} "
              f"({type(error).__name__}); start it, or set DATABASE_URL to a server")
    if os.environ.get("CI"):
        pytest.fail(f"{reason}. CI is set, so the PostgreSQL tests must run.")
    pytest.skip(reason)


def _with_database(url: str, name: str) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{name}"


@pytest.fixture(name="database_url")
def database_url_fixture() -> Iterator[str]:
    """Create a throw-away database on the test server; yield its URL and drop it."""
    require_custom_project()
    from sqlalchemy import text

    from storesync.customdb.connection import create_database_engine

    name = f"storesync_test_{uuid.uuid4().hex[:12]}"
    admin = create_database_engine(server_url()).execution_options(isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as error:  # any driver error: the server is not usable
        admin.dispose()
        _unreachable(error)
    try:
        yield _with_database(server_url(), name)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(name="engine")
def engine_fixture(database_url: str) -> Iterator[Any]:
    """Return an engine of the throw-away database."""
    from storesync.customdb.connection import create_database_engine

    created = create_database_engine(database_url)
    yield created
    created.dispose()


@pytest.fixture(name="migrated")
def migrated_fixture(engine: Any) -> Any:
    """Return the engine after migrating its database to this release's head."""
    from storesync.customdb.schema import upgrade

    upgrade(engine)
    return engine


@dataclass
class CustomHarness:
    """A worker context and a custom database writer on one throw-away database."""

    context: Any
    writer: Any
    engine: Any
    source: str
    deliveries: int = 0

    def deliver(self, body: dict[str, Any], topic: str, *, delivery_id: str | None = None,
                shop: str = "test-store") -> Any:
        """Hand one delivery to the custom database's worker step, as the queue task does."""
        from intake_support import encode_body
        from storesync.customdb.deliveries import handle_delivery
        from storesync.delivery import Delivery

        self.deliveries += 1
        delivery = Delivery(delivery_id=delivery_id or f"test-delivery-{self.deliveries}",
                            source=self.source, topic=topic, shop=shop,
                            received_at="2026-03-03T18:10:00Z", triggered_at=None,
                            body=encode_body(body).decode("utf-8"))
        return handle_delivery(delivery, self.context)

    def deliver_order(self, order: Order, **options: Any) -> Any:
        """Deliver ``order`` as this project's platform sends it."""
        return self.deliver(order.body(self.source), order.topic(self.source), **options)

    def write(self) -> Any:
        """Write every due outbox row to the database."""
        return self.writer.write_once(now=10_000_000_000.0)

    def rows(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        """Run a query and return its rows as dicts."""
        from sqlalchemy import text

        with self.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(text(sql), params)]


@pytest.fixture(name="make_custom_harness")
def make_custom_harness_fixture(tmp_path: Path, database_url: str, migrated: Any
                        ) -> Callable[..., CustomHarness]:
    """Return a factory of harnesses; keyword arguments become settings."""
    from storesync.customdb.deliveries import prepare_state
    from storesync.customdb.writer import writer_for
    from storesync.db import Database
    from storesync.settings import load_settings
    from storesync.worker import build_context

    def build(**environ: str) -> CustomHarness:
        # DATABASE_URL makes the service live, so every platform needs its secret.
        values = {"DATA_DIR": str(tmp_path / "var"), "SPEC_DIR": str(SPEC_DIR),
                  "DATABASE_URL": database_url, "CRM_TARGET": "custom",
                  "SYNC_MAX_ATTEMPTS": "3", "STORE_ID": "test-store",
                  "SHOPIFY_WEBHOOK_SECRETS": SHOPIFY_SECRET,
                  "WOOCOMMERCE_WEBHOOK_SECRETS": WOOCOMMERCE_SECRET,
                  "STOREFRONT_WEBHOOK_SECRETS": STOREFRONT_SECRET}
        values.update(environ)
        settings = load_settings(values)
        context = build_context(settings, Database(settings.state_path))
        prepare_state(context.store.db)
        writer = writer_for(settings, context.store, migrated, context.mapping)
        return CustomHarness(context, writer, migrated, family())

    return build
