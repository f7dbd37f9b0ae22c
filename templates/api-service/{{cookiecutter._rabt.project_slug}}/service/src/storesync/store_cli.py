"""Commands of the store API jobs: ``reconcile``, ``subscriptions`` and ``backfill``.

``storesync.cli`` adds every command in ``commands`` to the main group. Exit codes
follow the CLI's: 0 success, 1 a failure at run time (a store could not be read), 2
invalid settings or usage (no store credentials, bad dates).
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from typing import Any, NoReturn

import click

from . import logs, metrics
from .cli import EXIT_FAILURE, EXIT_USAGE, current_settings
from .db import Database
from .settings import Settings
from .store_settings import jobs_status, store_api_platforms


def _fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


def _settings_with_stores() -> Settings:
    settings = current_settings()
    logs.configure_logging(settings.log_level)
    if not store_api_platforms(settings):
        status = ", ".join(f"{name}: {text}" for name, text in jobs_status(settings).items())
        _fail("no store API credentials are set, so the store jobs are off "
              f"({status or 'this project receives no store webhooks'}). Set "
              "SHOPIFY_SHOP_DOMAIN and SHOPIFY_ADMIN_ACCESS_TOKEN, or WOOCOMMERCE_SITE_URL, "
              "WOOCOMMERCE_CONSUMER_KEY and WOOCOMMERCE_CONSUMER_SECRET.", EXIT_USAGE)
    return settings


def _open_queue(settings: Settings) -> Any:
    from .queue import build_queue

    try:
        return build_queue(settings)
    except Exception as error:  # report any failure to open the queue or dedupe store
        _fail(f"cannot open the queue: {error}")


@click.command("reconcile")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def reconcile_command(as_json: bool) -> None:
    """Queue the orders and customers changed since the last run, once per store.

    The worker running beside it handles them like webhooks. Exit code 1 when a store
    could not be read.
    """
    from .reconcile import reconcile_all, results_as_dicts

    settings = _settings_with_stores()
    queue = _open_queue(settings)
    db = Database(settings.state_path)
    try:
        results = reconcile_all(settings, queue.enqueue_once, db)
    finally:
        db.close()
        queue.close()
        # The service's /metrics then shows this run, as it shows the scheduled ones.
        metrics.publish_once(settings)
    if as_json:
        click.echo(json.dumps(results_as_dicts(results), ensure_ascii=False))
    else:
        for result in results:
            click.echo(f"{result.platform} {result.shop}: read {result.read}, queued "
                       f"{result.queued}, missed by webhooks {result.missed_orders} orders; "
                       f"high-water mark {result.mark or 'not set'}")
    if len(results) < len(store_api_platforms(settings)):
        _fail("a store could not be read; see the log above. The high-water mark did not move.")


@click.command("subscriptions")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def subscriptions_command(as_json: bool) -> None:
    """Re-create the store's missing webhook subscriptions for the topics the project maps."""
    from .subscriptions import check_all
    from .worker import load_mapping

    settings = _settings_with_stores()
    if settings.public_base_url is None:
        _fail("PUBLIC_BASE_URL is not set, so the service cannot tell the store where to "
              "deliver. Set it to the service's public https:// address, e.g. "
              "PUBLIC_BASE_URL=https://hooks.example.sa.", EXIT_USAGE)
    try:
        mapping = load_mapping(settings.mapping_path)
    except ValueError as error:
        _fail(str(error), EXIT_USAGE)
    try:
        results = check_all(settings, mapping)
    finally:
        metrics.publish_once(settings)
    if as_json:
        click.echo(json.dumps([vars(result) for result in results], ensure_ascii=False))
    else:
        for result in results:
            click.echo(f"{result.platform}: {len(result.expected)} topics; created "
                       f"{', '.join(result.created) or 'none'}; re-activated "
                       f"{', '.join(result.reactivated) or 'none'}; failed "
                       f"{', '.join(result.failed) or 'none'}")
    if len(results) < len(store_api_platforms(settings)) or \
            any(result.failed for result in results):
        _fail("some subscriptions could not be checked or created; see the log above.")


@click.command("backfill")
@click.option("--from", "first", required=True, metavar="YYYY-MM-DD",
              help="First day to import (orders created that day or later, Asia/Riyadh).")
@click.option("--to", "last", required=True, metavar="YYYY-MM-DD",
              help="Last day to import, included.")
@click.option("--dry-run", is_flag=True, help="Print the estimate only; import nothing.")
@click.option("--lang", "language", type=click.Choice(["en", "ar"]), default="en",
              show_default=True, help="Language of the estimate line: English or Arabic.")
def backfill_command(first: str, last: str, dry_run: bool, language: str) -> None:
    """Import the orders created from --from to --to, with an estimate first.

    \b
    Examples:
      storesync backfill --from 2026-01-01 --to 2026-01-31 --dry-run
      storesync backfill --from 2026-01-01 --to 2026-01-31
      storesync backfill --from 2025-01-01 --to 2025-12-31 --dry-run --lang ar
    """
    from .backfill import BackfillInputError, date_range

    today = datetime.now(UTC).date()
    try:
        start, end = date_range(first, last, today)
    except BackfillInputError as error:
        _fail(str(error), EXIT_USAGE)
    settings = _settings_with_stores()
    from .backfill_run import run_backfill

    code = run_backfill(settings, start, end, today, dry_run=dry_run, echo=click.echo,
                        clock=time.time, language=language)
    if code:
        sys.exit(code)


commands = [reconcile_command, subscriptions_command, backfill_command]
