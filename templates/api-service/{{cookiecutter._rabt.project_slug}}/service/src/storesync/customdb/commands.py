"""Commands of the custom database: ``db upgrade|downgrade|current|grant-readonly``, ``export``.

:func:`register` adds them to the service's command line, and makes ``run``, ``intake``
and ``worker`` check the database's migration revision first when ``CRM_TARGET=custom``.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import click

EXIT_FAILURE = 1
EXIT_USAGE = 2
CUSTOMDB_PACKAGES = ("sqlalchemy", "alembic", "psycopg")
# check-config gives up on an unreachable database after this many seconds.
CHECK_CONNECT_TIMEOUT_SECONDS = 5


def _fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


def _require_packages() -> None:
    """Exit with code 2 when SQLAlchemy, Alembic or psycopg is not installed."""
    missing = [name for name in CUSTOMDB_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        _fail(f"{', '.join(missing)} not installed. Projects whose CRM is custom install them "
              "with the service; elsewhere run: pip install 'sqlalchemy>=2,<3' "
              "'alembic>=1.13,<2' 'psycopg[binary]>=3.1,<4'", EXIT_USAGE)


def _command_settings() -> Any:
    """Load the settings of ``db`` and ``export``, or exit with code 2 when one is invalid.

    These commands receive no webhooks, so a missing webhook secret is no problem here.
    """
    from ..cli import current_settings

    return current_settings(webhook_secrets_required=False)


def _database_url() -> str:
    """Return DATABASE_URL, or exit with code 2 naming what is missing."""
    from .writer import require_database_url

    try:
        return require_database_url(_command_settings())
    except ValueError as error:
        _fail(str(error), EXIT_USAGE)


def _shown_url(url: str) -> str:
    """Return ``url`` with its user and password replaced by ``***``, for messages."""
    from .urls import masked_url

    return masked_url(url)


def _driver_message(error: Exception) -> str:
    """Return the first line of the driver's message, without SQLAlchemy's statement dump."""
    origin = getattr(error, "orig", None) or error
    lines = str(origin).strip().splitlines()
    return lines[0] if lines else type(origin).__name__


@contextmanager
def _database_errors(url: str) -> Iterator[None]:
    """Turn database and migration errors into a message and an exit code, without a traceback.

    Connection failures, unknown revisions and a database without the schema exit with
    code 2, since DATABASE_URL or the database's state must be fixed first. Any other
    database error exits with code 1 and shows its SQLSTATE, never the statement, which
    may carry a password.
    """
    from alembic.util import CommandError
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError

    from .connection import DatabaseNotReady

    try:
        yield
    except DatabaseNotReady as error:
        _fail(str(error), EXIT_USAGE)
    except CommandError as error:
        _fail(f"the migration failed: {error}. A revision this release does not have was "
              "given as an argument, or the database was migrated by another release of this "
              "service. Compare with: python -m storesync db current, then run the release "
              "that migrated it, or restore a backup taken before that.", EXIT_USAGE)
    except (OperationalError, InterfaceError) as error:
        _fail(f"cannot connect to the customer database {_shown_url(url)}: "
              f"{_driver_message(error)}. Check DATABASE_URL (host, port, user, database "
              "name) and that PostgreSQL is running and accepts this user.", EXIT_USAGE)
    except DBAPIError as error:
        state = getattr(error.orig, "sqlstate", None) or "unknown"
        _fail(f"the customer database rejected a statement: {type(error.orig).__name__} "
              f"(SQLSTATE {state}).")
    except SQLAlchemyError as error:
        _fail(f"the customer database request failed: {type(error).__name__}.")


@click.group("db")
def db() -> None:
    """Manage the customer database (CRM_TARGET=custom): migrations and the BI role."""
    _require_packages()


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True,
              help="Migration revision to move up to.")
def db_upgrade(revision: str) -> None:
    """Migrate the customer database up and load the segment thresholds from the spec."""
    from .connection import opened_engine
    from .schema import load_segment_parameters, revision_of, upgrade

    settings = _command_settings()
    url = _database_url()
    if settings.sandbox and settings.crm_target == "custom" and not settings.database_url:
        _create_sandbox_database(url)
    with _database_errors(url), opened_engine(url) as engine:
        try:
            upgrade(engine, revision)
            values = load_segment_parameters(engine, settings.spec_dir / "segments.yaml")
        except ValueError as error:
            _fail(str(error), EXIT_USAGE)
        click.echo(f"The customer database is at revision {revision_of(engine)}.")
    names = ", ".join(f"{name}={value}" for name, value in sorted(values.items()))
    click.echo(f"Segment thresholds from segments.yaml: {names or 'none'}.")


def _create_sandbox_database(url: str) -> None:
    """Create the sandbox database when it is missing; exit 2 when the server refuses."""
    from sqlalchemy.exc import SQLAlchemyError

    from .connection import create_database_if_missing

    try:
        if create_database_if_missing(url):
            click.echo(f"Created the sandbox database {url} (DATABASE_URL is not set).")
    except SQLAlchemyError as error:
        _fail(f"cannot create the sandbox database {url}: {type(error).__name__}. Start "
              "PostgreSQL on 127.0.0.1:5432, or set DATABASE_URL to your own database.",
              EXIT_USAGE)


@db.command("downgrade")
@click.argument("revision")
@click.option("--yes", is_flag=True,
              help="Downgrade without asking; needed when not on a terminal.")
def db_downgrade(revision: str, yes: bool) -> None:
    """Migrate the customer database down to REVISION; ``base`` drops every table.

    Every downgrade drops the tables and data of the migrations it undoes (with one
    migration, ``-1`` and ``base`` both drop everything), so it prompts for confirmation
    on a terminal and needs --yes elsewhere. Exit codes: 0 done, 1 declined or a
    database error, 2 usage or settings error.
    """
    from .connection import opened_engine
    from .schema import downgrade, revision_of

    url = _database_url()
    if not yes:
        _confirm_downgrade(url, revision)
    with _database_errors(url), opened_engine(url) as engine:
        downgrade(engine, revision)
        click.echo(f"The customer database is at revision {revision_of(engine) or 'base'}.")


def _stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


def _confirm_downgrade(url: str, revision: str) -> None:
    """Ask before ``db downgrade``; exit 2 without a terminal, 1 when declined."""
    if not _stdin_is_terminal():
        _fail(f"db downgrade {revision} drops every table of the customer database that the "
              "undone migrations created, with all its data. Run it on a terminal to "
              "confirm, or add --yes.", EXIT_USAGE)
    question = (f"Drop every table and all data of {_shown_url(url)}?" if revision == "base"
                else f"Downgrade {_shown_url(url)} to {revision} and drop the tables and data "
                     "of every migration it undoes?")
    if not click.confirm(question, default=False):
        _fail("nothing was dropped.")


@db.command("current")
def db_current() -> None:
    """Print the database's migration revision and the one this release needs."""
    from .connection import head_revision, opened_engine, revision_advice
    from .schema import revision_of

    url = _database_url()
    with _database_errors(url), opened_engine(url) as engine:
        found = revision_of(engine)
    expected = head_revision()
    click.echo(f"current: {found or 'none (no schema yet)'}")
    click.echo(f"expected: {expected}")
    if found != expected:
        _fail(revision_advice(found, expected))


@db.command("grant-readonly")
def db_grant_readonly() -> None:
    """Create or update the read-only login role for BI tools.

    The role name is CUSTOMDB_READONLY_ROLE (default storesync_bi) and its password
    CUSTOMDB_READONLY_PASSWORD, which must be set in the environment.
    """
    from .connection import opened_engine
    from .roles import OwnRoleError, PrivilegeError, grant_readonly

    settings = _command_settings()
    if not settings.customdb_readonly_password:
        _fail("CUSTOMDB_READONLY_PASSWORD is not set. Set it in the environment to a new random "
              "password for the BI role, then run this command again.", EXIT_USAGE)
    url = _database_url()
    try:
        with _database_errors(url), opened_engine(url) as engine:
            grant_readonly(engine, settings.customdb_readonly_role,
                           settings.customdb_readonly_password)
    except (OwnRoleError, PrivilegeError) as error:
        _fail(str(error), EXIT_USAGE)
    click.echo(f"Role {settings.customdb_readonly_role} can log in and read every table and "
               "view of the customer database.")


@click.command("export")
@click.option("--from", "start", type=click.DateTime(["%Y-%m-%d"]), required=True,
              help="First day of the range, inclusive (YYYY-MM-DD, Asia/Riyadh).")
@click.option("--to", "end", type=click.DateTime(["%Y-%m-%d"]), required=True,
              help="Day after the range, exclusive (YYYY-MM-DD, Asia/Riyadh).")
@click.option("--format", "output_format", type=click.Choice(["csv", "json"]), default="csv",
              show_default=True, help="Output shape (see docs/customer-database.md).")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              help="File to write; standard output when not given.")
def export(start: Any, end: Any, output_format: str, output: Path | None) -> None:
    """Export the orders placed in a date range, with their lines, for the ERP."""
    _require_packages()
    from .connection import check_revision, opened_engine
    from .export import UTF8_BOM, DateRange, fetch_orders, to_csv, to_json

    period = DateRange(start.date(), end.date())
    if period.end <= period.start:
        _fail(f"--to ({period.end}) must be a later day than --from ({period.start}); --to is "
              "the day after the last day to export.", EXIT_USAGE)
    if output is not None and not output.parent.is_dir():
        _fail(f"--output {output}: the folder {output.parent} does not exist. Create it or "
              "choose another file.", EXIT_USAGE)
    url = _database_url()
    with _database_errors(url), opened_engine(url) as engine:
        check_revision(engine)
        orders = fetch_orders(engine, period)
    text = UTF8_BOM + to_csv(orders) if output_format == "csv" else to_json(period, orders)
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as error:
        _fail(f"cannot write --output {output}: {error.strerror or error}. Choose a file in a "
              "folder you can write to.", EXIT_USAGE)
    click.echo(f"Wrote {len(orders)} orders to {output}.", err=True)


def _field_map_crm(mapping_path: Path) -> Any:
    import yaml

    try:
        mapping = yaml.safe_load(mapping_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None  # the settings check already reports an unreadable field map
    return mapping.get("crm") if isinstance(mapping, dict) else None


def _check_revision_first(callback: Callable[..., Any], name: str) -> Callable[..., Any]:
    """Wrap a command so it stops with code 2 when the customer database is not ready.

    ``run`` also stops when the field map is for the custom database and ``CRM_TARGET``
    is not, because it would otherwise start the HubSpot sandbox for a project that
    has no HubSpot set-up.
    """

    def checked(*args: Any, **kwargs: Any) -> Any:
        from ..cli import current_settings

        settings = current_settings()
        if name == "run" and settings.crm_target != "custom" and \
                _field_map_crm(settings.mapping_path) == "custom":
            _fail(f"the field map {settings.mapping_path} is for the customer database, and "
                  f"CRM_TARGET is {settings.crm_target}. Remove CRM_TARGET (it then follows the "
                  "field map) or set CRM_TARGET=custom, then start again.", EXIT_USAGE)
        if settings.crm_target == "custom":
            _require_packages()
            from .connection import DatabaseNotReady, check_revision, opened_engine
            from .writer import require_database_url

            if name == "run" and settings.sandbox:
                _prepare_sandbox(settings)
            try:
                with opened_engine(require_database_url(settings)) as engine:
                    check_revision(engine)
            except (DatabaseNotReady, ValueError) as error:
                _fail(str(error), EXIT_USAGE)
        return callback(*args, **kwargs)

    return checked


def _prepare_sandbox(settings: Any) -> None:
    """Announce the sandbox database, then create and migrate it; exit 2 when that fails."""
    from sqlalchemy.exc import SQLAlchemyError

    from .connection import sandbox_database_url
    from .schema import prepare_sandbox_database

    url = sandbox_database_url()
    click.echo("")
    click.echo("SANDBOX MODE: DATABASE_URL is not set, so records go to a local sandbox "
               f"database: {url}")
    try:
        created = prepare_sandbox_database(url, settings.spec_dir / "segments.yaml")
    except (SQLAlchemyError, ValueError) as error:
        first_line = (str(error).strip().splitlines() or [""])[0]
        _fail(f"cannot prepare the sandbox database {url}: {type(error).__name__}: "
              f"{first_line}. Start PostgreSQL on 127.0.0.1:5432 with a user postgres that "
              "may create databases, or set DATABASE_URL to your own database and run: "
              "python -m storesync db upgrade", EXIT_USAGE)
    click.echo(f"  {'Created and migrated' if created else 'Migrated'} it to the newest revision;"
               " set DATABASE_URL to write to the client's database instead.")
    for platform in settings.sandbox_secret_platforms:
        click.echo(f"  {platform}: webhook secret not set, so the public sandbox placeholder is "
                   "used (see the README).")
    click.echo("")


def check_database(settings: Any) -> tuple[str, str | None]:
    """Connect to the customer database for ``check-config`` and compare its revision.

    Returns:
        ``(status line, None)`` when the database is at this release's revision, or
        ``(status line, failure)`` when it cannot be reached within
        CHECK_CONNECT_TIMEOUT_SECONDS or is at another revision. Sandbox mode is not
        checked, because ``run`` creates and migrates the sandbox database.
    """
    if not settings.database_url:
        return "Customer database: sandbox (created and migrated by run)", None
    missing = [name for name in CUSTOMDB_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        return "Customer database: not checked", f"{', '.join(missing)} not installed."
    from .connection import DatabaseNotReady, check_revision, opened_engine

    masked = _shown_url(settings.database_url)
    try:
        with opened_engine(settings.database_url, CHECK_CONNECT_TIMEOUT_SECONDS) as engine:
            revision = check_revision(engine)
    except DatabaseNotReady as error:
        return f"Customer database: {masked}", str(error)
    return f"Customer database: {masked}, at revision {revision}", None


def register(main: click.Group) -> None:
    """Add the custom database commands to ``main`` and the revision check to its servers."""
    main.add_command(db)
    main.add_command(export)
    for name in ("run", "intake", "worker"):
        command = main.commands.get(name)
        if command is not None and command.callback is not None:
            command.callback = _check_revision_first(command.callback, name)
