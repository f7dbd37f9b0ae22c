"""The read-only role that BI tools (Power BI, Metabase) log in with."""

from __future__ import annotations

from psycopg import errors, sql
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError


class OwnRoleError(ValueError):
    """The read-only role named is the role the service itself connects as."""


class PrivilegeError(Exception):
    """The connected user may not create or alter roles or grant on the database."""


def grant_readonly(engine: Engine, role: str, password: str) -> None:
    """Create or update ``role`` as a login role that can only read the customer database.

    The role gets ``SELECT`` on every table and view of the ``public`` schema, and its
    sessions are read-only by default. Tables that later migrations add are covered
    by default privileges set ``FOR ROLE`` the owner of ``alembic_version`` (the role
    that runs the migrations) and for the connected user, so a superuser may grant
    while the service's own user migrates.

    Raises:
        OwnRoleError: ``role`` is the role of this connection, which would make the
            service's own sessions read-only.
        PrivilegeError: the connected user lacks CREATEROLE (or superuser) or may not
            grant on the database. The message holds no SQL and no password.

    NOTE: PostgreSQL receives the password in the statement text, so a server that
    logs every statement (``log_statement = 'all'``) writes it to its log.
    """
    with engine.begin() as connection:
        driver = connection.connection.driver_connection
        database, user, session_user = connection.execute(
            text("SELECT current_database(), current_user, session_user")).one()
        if role in (user, session_user):
            raise OwnRoleError(
                f"CUSTOMDB_READONLY_ROLE is {role}, the role DATABASE_URL connects as. Making "
                "it read-only would stop the service writing. Set CUSTOMDB_READONLY_ROLE to "
                "another name (default storesync_bi), then run this command again.")
        exists = connection.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :role"),
                                    {"role": role}).first() is not None
        name = sql.Identifier(role)
        creators = sorted({_migration_owner(connection) or user, user})
        statements = [
            sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}" if exists else
                    "CREATE ROLE {} LOGIN PASSWORD {}").format(name, sql.Literal(password)),
            sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(name),
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                sql.Identifier(database), name),
            sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(name),
            sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(name),
            *(sql.SQL("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA public "
                      "GRANT SELECT ON TABLES TO {}").format(sql.Identifier(creator), name)
              for creator in creators),
        ]
        for statement in statements:
            try:
                connection.exec_driver_sql(statement.as_string(driver))
            except DBAPIError as error:
                if not isinstance(error.orig, errors.InsufficientPrivilege):
                    raise
                # The error's text repeats the statement, and with it the password.
                raise PrivilegeError(
                    f"the role {user} that DATABASE_URL connects as may not create or alter "
                    f"the role {role} or grant it access to {database} (SQLSTATE "
                    f"{error.orig.sqlstate}). Run this command with a DATABASE_URL whose user "
                    "has CREATEROLE and owns the database and its tables, or as a superuser."
                ) from None


def _migration_owner(connection: Connection) -> str | None:
    """Return the owner of ``public.alembic_version``, or None before the first migration."""
    owner = connection.execute(text(
        "SELECT tableowner FROM pg_tables WHERE schemaname = 'public' "
        "AND tablename = 'alembic_version'")).scalar_one_or_none()
    return None if owner is None else str(owner)
