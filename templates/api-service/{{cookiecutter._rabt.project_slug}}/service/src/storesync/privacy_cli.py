"""``python -m storesync privacy list|show|run|hand-over``: see, rerun and move privacy requests.

Exit codes follow the CLI's: 0 success, 1 a request failed or the state file cannot
be opened, 2 invalid settings or usage (such as an unknown request id).
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from typing import Any, NoReturn

import click

from .cli import EXIT_FAILURE, EXIT_USAGE, current_settings
from .inspection import iso_time
from .privacy import STATUSES, StoredPrivacyRequest, hand_over
from .privacy_runner import PrivacyRunner, build_runner
from .settings import Settings


def _fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


def _runner(*, connect: bool = True) -> PrivacyRunner:
    """Open the privacy requests; ``connect`` False skips the CRM, which only ``run`` needs."""
    settings = current_settings(webhook_secrets_required=False)
    try:
        return build_runner(settings, connect=connect)
    except Exception as error:  # report any failure to open the state file
        _fail(f"cannot open the state file {settings.state_path}: {error}")


def _fields(stored: StoredPrivacyRequest) -> dict[str, Any]:
    fields = asdict(stored)
    request = fields.pop("request")
    request["order_ids"] = list(request["order_ids"])
    return {**fields, **request}


@click.group("privacy")
def privacy_group() -> None:
    """See and rerun Shopify privacy requests (data requests and redactions)."""


@privacy_group.command("list")
@click.option("--status", type=click.Choice(STATUSES), help="Only requests with this status.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True,
              help="Newest requests to show.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
def list_command(status: str | None, limit: int, as_json: bool) -> None:
    """List privacy requests, newest first: id, received, topic, status, handled."""
    found = _runner(connect=False).requests.listing(status, limit)
    for stored in found:
        if as_json:
            click.echo(json.dumps(_fields(stored), ensure_ascii=False))
        else:
            click.echo(f"{stored.id:>6}  {stored.received_at}  {stored.request.topic:<24}  "
                       f"{stored.status:<8}  {stored.handled_at or '-'}")
    if not found and not as_json:
        click.echo("There are no privacy requests.")


@privacy_group.command("show")
@click.argument("request_id", type=int)
def show_command(request_id: int) -> None:
    """Show one request: its ids, status, attempts, last error and counts."""
    runner = _runner(connect=False)
    stored = runner.requests.get(request_id)
    if stored is None:
        _fail(f"no privacy request has id {request_id}. List them with: "
              "python -m storesync privacy list", EXIT_USAGE)
    for key, value in _fields(stored).items():
        click.echo(f"{key}: {value if value not in (None, '', []) else '-'}")
    deletes = runner.crm_deletes.statuses(request_id)
    if deletes:
        click.echo("crm_deletes: " + ", ".join(f"{count} {status}"
                                               for status, count in sorted(deletes.items())))


@privacy_group.command("run")
@click.argument("request_id", type=int, required=False)
def run_command(request_id: int | None) -> None:
    """Handle one request now (again, whatever its status), or every due one."""
    runner = _runner()
    if request_id is not None:
        if not runner.requests.reopen(request_id):
            _fail(f"no privacy request has id {request_id}. List them with: "
                  "python -m storesync privacy list", EXIT_USAGE)
        runner.crm_deletes.reopen(request_id)
        runner.run_due(request_id)
        runner.crm_deletes.send_due(request_id)
        stored = runner.requests.get(request_id)
        if stored is None or stored.status != "done":
            _fail(f"privacy request {request_id} failed: "
                  f"{stored.last_error if stored else 'gone'}. It is tried again later; see "
                  f"python -m storesync privacy show {request_id}")
        click.echo(f"Privacy request {request_id} ({stored.request.topic}) is done: "
                   f"{json.dumps(stored.result, ensure_ascii=False)}")
        return
    handled = runner.run_due()
    click.echo(f"Handled {handled} privacy request(s).")


@privacy_group.command("hand-over")
def hand_over_command() -> None:
    """Queue this intake's kept requests for the workers (once, after an upgrade).

    Releases before this one kept privacy requests in the intake's own state file, where
    no worker sees them when the intake has a volume of its own (Kubernetes). Run this
    once in each such intake replica: every pending or failed request is queued for
    the workers and marked done here. It needs REDIS_URL and refuses to run on the
    workers' own state file.
    """
    import time

    from .queue import QUEUE_ERRORS, build_queue

    settings = current_settings(webhook_secrets_required=False)
    runner = _runner(connect=False)
    try:
        _check_not_state_home(settings, runner)
        queue = build_queue(settings)
    except QUEUE_ERRORS as error:
        _fail(f"cannot reach the queue: {error}")
    try:
        moved = hand_over(runner.requests, queue.enqueue, iso_time(time.time()))
    finally:
        queue.close()
    click.echo(f"Queued {moved} privacy request(s) for the workers.")


def _check_not_state_home(settings: Settings, runner: PrivacyRunner) -> None:
    """Exit unless this DATA_DIR is an intake's own, not the workers' state file."""
    import redis

    from .state_home import home_key, state_file_id

    if not settings.redis_url:
        _fail("hand-over needs REDIS_URL: without it the intake and the workers share one "
              "DATA_DIR, so the workers already handle its requests.", EXIT_USAGE)
    client = redis.Redis.from_url(settings.redis_url)
    try:
        recorded = client.get(home_key(settings))
    finally:
        client.close()
    if recorded is None:
        _fail(f"no worker has recorded its state file under {home_key(settings)} yet; start "
              "the workers first, then run hand-over again.", EXIT_USAGE)
    found = recorded.decode() if isinstance(recorded, bytes) else str(recorded)
    if found == state_file_id(runner.database):
        _fail(f"DATA_DIR {settings.data_dir} is the workers' state file, so the workers already "
              "handle its requests; run hand-over only in an intake with a volume of its own.",
              EXIT_USAGE)


commands = [privacy_group]
