"""The read-only role that BI tools (Power BI, Metabase) log in with."""

from __future__ import annotations

from psycopg import sql
from sqlalchemy import text
from sqlalchemy.engine import Engine


def grant_readonly(engine: Engine, role: str, password: str) -> None:
    """Create or update ``role`` as a login role that can only read the customer database.

    The role gets ``SELECT`` on every table and view of the ``public`` schema, also on
    those later migrations add, and its sessions are read-only by default.

    NOTE: PostgreSQL receives the password in the statement text, so a server that
    logs every statement (``log_statement = 'all'``) writes it to its log.
    """
    with engine.begin() as connection:
        driver = connection.connection.driver_connection
        database = connection.execute(text("SELECT current_database()")).scalar_one()
        exists = connection.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :role"),
                                    {"role": role}).first() is not None
        name = sql.Identifier(role)
        statements = [
            sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}" if exists else
                    "CREATE ROLE {} LOGIN PASSWORD {}").format(name, sql.Literal(password)),
            sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(name),
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                sql.Identifier(database), name),
            sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(name),
            sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(name),
            sql.SQL("ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO {}")
            .format(name),
        ]
        for statement in statements:
            connection.exec_driver_sql(statement.as_string(driver))
