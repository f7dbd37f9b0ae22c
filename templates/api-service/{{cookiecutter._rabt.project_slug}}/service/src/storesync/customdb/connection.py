"""Connections to the customer database and the check of its migration revision."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection, Engine, make_url

from .urls import URL_SCHEMES

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
UPGRADE_COMMAND = "python -m storesync db upgrade"
# Sandbox mode (DATABASE_URL not set): a database on the local PostgreSQL server,
# named after the project, which ``run`` and ``db upgrade`` create and migrate.
SANDBOX_SERVER_URL = "postgresql://postgres@127.0.0.1:5432"
SANDBOX_FALLBACK_NAME = "storesync_sandbox"
# src/storesync/customdb/connection.py → the service folder with pyproject.toml.
SERVICE_DIR = Path(__file__).resolve().parents[3]


class DatabaseNotReady(Exception):
    """The customer database is unreachable or not at the revision this release needs."""


def sqlalchemy_url(url: str) -> str:
    """Return ``url`` with the ``postgresql+psycopg`` driver name SQLAlchemy needs.

    Raises:
        ValueError: the URL is not a PostgreSQL URL.
    """
    for scheme in URL_SCHEMES:
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme):]
    raise ValueError("DATABASE_URL must start with postgresql:// (or postgres://).")


def sandbox_database_name(service_dir: Path = SERVICE_DIR) -> str:
    """Return ``<project slug>_sandbox``, from the package name in the service's pyproject.toml.

    The package is named ``<slug>-storesync``; ``storesync_sandbox`` is used when the
    file cannot be read.
    """
    try:
        project = tomllib.loads((service_dir / "pyproject.toml").read_text(encoding="utf-8"))
        name = str(project["project"]["name"])
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, KeyError, TypeError):
        return SANDBOX_FALLBACK_NAME
    slug = re.sub(r"[^a-z0-9]+", "_", name.lower().removesuffix("-storesync")).strip("_")
    # PostgreSQL names hold up to 63 bytes.
    return f"{slug[:50]}_sandbox" if slug else SANDBOX_FALLBACK_NAME


def sandbox_database_url(service_dir: Path = SERVICE_DIR) -> str:
    """Return the URL of the sandbox database on the local PostgreSQL server."""
    return f"{SANDBOX_SERVER_URL}/{sandbox_database_name(service_dir)}"


def create_database_if_missing(url: str) -> bool:
    """Create the database of ``url`` on its server unless it exists; return True if created.

    Connects to the server's ``postgres`` database with the same user.

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the server cannot be reached or refuses.
    """
    target = make_url(sqlalchemy_url(url))
    name = target.database or ""
    engine = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            found = connection.execute(text("SELECT 1 FROM pg_database WHERE datname = :name"),
                                       {"name": name}).first()
            if found is not None:
                return False
            quoted = '"' + name.replace('"', '""') + '"'
            connection.execute(text(f"CREATE DATABASE {quoted}"))
            return True
    finally:
        engine.dispose()


def create_database_engine(url: str, connect_timeout_seconds: int | None = None) -> Engine:
    """Create the engine of the customer database; connections are checked before use.

    ``connect_timeout_seconds`` limits each connection attempt; None keeps libpq's
    default, which waits as long as the operating system does.
    """
    options = {} if connect_timeout_seconds is None else {
        "connect_args": {"connect_timeout": connect_timeout_seconds}}
    return create_engine(sqlalchemy_url(url), pool_pre_ping=True, pool_size=2, max_overflow=2,
                         **options)


def alembic_config(connection: Connection | None = None) -> Config:
    """Return the Alembic configuration of the migrations shipped in this package."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """Return the newest migration revision of this release."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migration found in {MIGRATIONS_DIR}")
    return head


def current_revision(connection: Connection) -> str | None:
    """Return the database's migration revision, or None when it has none yet."""
    return MigrationContext.configure(connection).get_current_revision()


def check_revision(engine: Engine) -> str:
    """Return the database's revision when it is this release's head.

    Raises:
        DatabaseNotReady: the database cannot be reached or is at another revision;
            the message names both revisions and the command to run.
    """
    expected = head_revision()
    try:
        with engine.connect() as connection:
            found = current_revision(connection)
    except Exception as error:  # any driver error means the database is not usable
        reason = _first_line(getattr(error, "orig", None) or error)
        raise DatabaseNotReady(
            f"cannot connect to the customer database (DATABASE_URL): {reason}. Check "
            "DATABASE_URL (host, port, user, database name) and that PostgreSQL is running "
            "and accepts this user.") from error
    if found == expected:
        return found
    raise DatabaseNotReady(revision_advice(found, expected))


def is_known_revision(revision: str) -> bool:
    """Return True when ``revision`` is one of this release's migrations."""
    from alembic.util import CommandError

    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except CommandError:
        return False


def revision_advice(found: str | None, expected: str) -> str:
    """Return the message for a database at revision ``found`` when this release needs ``expected``.

    A revision this release does not know was written by a newer release, and
    ``db upgrade`` cannot move it, so the message names the newer release instead.
    """
    if found is not None and not is_known_revision(found):
        return (f"the customer database is at revision {found}, which this release does not "
                f"have: a newer release of this service migrated it (this release needs "
                f"{expected}). Deploy that newer release, or with that release run: python -m "
                f"storesync db downgrade {expected}. Do not run db upgrade with this release.")
    state = "has no schema yet" if found is None else f"is at revision {found}"
    return (f"the customer database {state}, and this release needs revision {expected}. "
            f"Run: {UPGRADE_COMMAND}")


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


@contextmanager
def opened_engine(url: str, connect_timeout_seconds: int | None = None) -> Iterator[Engine]:
    """Yield an engine for ``url`` and dispose of it afterwards."""
    engine = create_database_engine(url, connect_timeout_seconds)
    try:
        yield engine
    finally:
        engine.dispose()
