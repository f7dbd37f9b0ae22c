"""Commands of the worker side: ``dead-letters list|show|replay`` and ``demo``.

``storesync.cli`` adds every command in ``commands`` to the main group. Exit codes
follow the CLI's: 0 success, 1 a failure at run time, 2 invalid settings or usage.
"""

from __future__ import annotations

import json
import sys
from typing import NoReturn

import click

from . import dead_letters as letters
from .cli import EXIT_FAILURE, EXIT_USAGE, current_settings
from .cli_help import CrmHelpCommand, CrmHelpGroup
from .db import Database
from .demo import DemoError, run_demo, standin_url
from .settings import Settings
from .sync_store import SyncStore


def _fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


def _open_store(settings: Settings) -> SyncStore:
    try:
        return SyncStore(Database(settings.state_path))
    except Exception as error:  # report any failure to open the state file
        _fail(f"cannot open the state file {settings.state_path}: {error}")


@click.group("dead-letters", cls=CrmHelpGroup)
def dead_letters_group() -> None:
    """Inspect and replay records {crm} rejected or that ran out of attempts."""


@dead_letters_group.command("list")
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True,
              help="Newest dead letters to show.")
@click.option("--all", "include_replayed", is_flag=True, help="Include replayed dead letters.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
def list_command(limit: int, include_replayed: bool, as_json: bool) -> None:
    """List dead letters, newest first: id, time, object, key, status, attempts, error."""
    store = _open_store(current_settings())
    found = store.dead_letters(include_replayed=include_replayed, limit=limit)
    for letter in found:
        if as_json:
            data = letters.details(letter)
            data.pop("properties")
            click.echo(json.dumps(data, ensure_ascii=False))
        else:
            click.echo(letters.summary_line(letter))
    if not found and not as_json:
        click.echo("There are no dead letters.")


@dead_letters_group.command("show", cls=CrmHelpCommand)
@click.argument("letter_id", type=int)
@click.option("--reveal", is_flag=True,
              help="Print names, emails and phones unmasked (they are masked by default).")
def show_command(letter_id: int, reveal: bool) -> None:
    """Show one dead letter: the record as last sent, {crm}'s error and the delivery id."""
    store = _open_store(current_settings())
    letter = store.dead_letter_by_id(letter_id)
    if letter is None:
        _fail(f"no dead letter has id {letter_id}. List them with: "
              "python -m storesync dead-letters list", EXIT_USAGE)
    click.echo(json.dumps(letters.details(letter, reveal), ensure_ascii=False, indent=2))


@dead_letters_group.command("replay")
@click.argument("letter_id", type=int, required=False)
@click.option("--all", "replay_all", is_flag=True,
              help="Replay every dead letter not replayed yet.")
def replay_command(letter_id: int | None, replay_all: bool) -> None:
    """Put dead letters back in the outbox; the running worker sends them with its next batch.

    Fix the cause first (see `dead-letters show ID`), or the record comes back.
    """
    if (letter_id is None) == (not replay_all):
        _fail("give one dead letter id, or --all (not both).", EXIT_USAGE)
    store = _open_store(current_settings())
    if replay_all:
        count = store.replay_all()
        click.echo(f"Replayed {count} dead letter{'s' if count != 1 else ''}.")
        return
    assert letter_id is not None
    done, _ = letters.replay(store, [letter_id])
    if not done:
        _fail(f"no dead letter with id {letter_id} is waiting for replay (unknown id, or "
              "replayed already).", EXIT_USAGE)
    click.echo(f"Dead letter {letter_id} is back in the outbox.")


@click.command("demo", cls=CrmHelpCommand)
@click.option("--intake-url",
              help="The running intake (default: http://HOST:PORT of the settings).")
@click.option("--standin-url", "standin_address",
              help="With CRM_TARGET=hubspot or zoho, the stand-in whose records are printed "
                   "(default: the address `run` left in DATA_DIR, or HUBSPOT_BASE_URL when it "
                   "is local). With CRM_TARGET=custom the rows come from DATABASE_URL (or the "
                   "sandbox database) and this option is not used.")
@click.option("--timeout", type=click.FloatRange(1, 3600), default=60, show_default=True,
              help="Seconds to wait for the worker to sync the samples.")
def demo_command(intake_url: str | None, standin_address: str | None, timeout: float) -> None:
    """Post the sample webhooks (samples/) to the running service and print the CRM records.

    The records are read from the {crm} stand-in, or from the customer database when
    CRM_TARGET=custom.
    """
    settings = current_settings()
    try:
        crm_url = standin_url(settings, standin_address)
        url = intake_url or f"http://{settings.host}:{settings.port}"
        run_demo(settings, url, crm_url, click.echo, timeout)
    except DemoError as error:
        _fail(str(error))


commands: list[click.Command] = [dead_letters_group, demo_command]
