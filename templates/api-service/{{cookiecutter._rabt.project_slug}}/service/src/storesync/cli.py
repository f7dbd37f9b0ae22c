"""Command line of the service: ``python -m storesync COMMAND``.

Exit codes: 0 success; 1 a runtime failure (a store cannot be reached, a process
of ``run`` stopped); 2 invalid settings or usage.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any, NoReturn

import click
import yaml

from . import logs
from .cli_help import CRM_NAMES, CrmHelpCommand
from .db import Database
from .quarantine import Quarantine
from .settings import (
    ENV_FILE_NAME,
    LOOPBACK_HOSTS,
    SERVICE_DIR,
    Settings,
    SettingsError,
    load_settings,
)

if TYPE_CHECKING:
    from .queue import DeliveryQueue

EXIT_FAILURE = 1
EXIT_USAGE = 2
# How long `run` waits for its processes to stop after Ctrl-C before killing them.
SHUTDOWN_GRACE_SECONDS = 15
STANDIN_START_TIMEOUT_SECONDS = 20


def _fail(message: str, code: int = EXIT_FAILURE) -> NoReturn:
    click.echo(f"Error: {message}", err=True)
    sys.exit(code)


def current_settings(*, webhook_secrets_required: bool = True) -> Settings:
    """Load the settings from the environment and ``<service>/.env``, or exit with code 2.

    Commands that receive no webhooks pass ``webhook_secrets_required=False``.
    """
    try:
        return load_settings(os.environ, env_file=SERVICE_DIR / ENV_FILE_NAME,
                             webhook_secrets_required=webhook_secrets_required)
    except SettingsError as error:
        click.echo(str(error), err=True)
        click.echo(f"Settings come from the environment and from {SERVICE_DIR / ENV_FILE_NAME}; "
                   "see .env.example for every setting.", err=True)
        sys.exit(EXIT_USAGE)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Receive store webhooks, queue them and sync them to the CRM.

    Settings are read from environment variables and from a .env file in the service
    folder (the environment wins); .env.example lists them all.
    """


# --- run -------------------------------------------------------------------------------


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _wait_for_port(host: str, port: int, process: subprocess.Popen[bytes], timeout: float,
                   name: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            _fail(f"the {name} stand-in stopped at start (exit code {process.returncode}).")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    _fail(f"the {name} stand-in did not open port {port} within {timeout:.0f} seconds.")


def _child(command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "storesync", *command], env=env)


@contextmanager
def _children() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Yield a list to put child processes in; stop them all when the block ends."""
    processes: list[subprocess.Popen[bytes]] = []
    try:
        yield processes
    finally:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + SHUTDOWN_GRACE_SECONDS
        for process in processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _stop_requests() -> threading.Event:
    """Install SIGTERM and SIGINT handlers and return the event they set.

    SIGTERM (from a process manager, or `kill`) stops `run` the way Ctrl-C does. The
    handlers only set the event, because an exception raised from a handler can
    interrupt Popen.poll while it holds its lock, and a later wait for that child then
    blocks for ever.
    """
    requested = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        requested.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, request_stop)
    return requested


# The store stand-ins `run` starts in sandbox mode, by platform: the module and its name.
# The settings that point the store API jobs at a stand-in carry the stand-ins' own
# public test credentials (shpat_test_not_real, ck_test_not_real, cs_test_not_real).
STORE_STANDINS = {"shopify": ("storesync.standins.shopify", "Shopify Admin API"),
                  "woocommerce": ("storesync.standins.woocommerce", "WooCommerce REST API")}


def _store_standin_env(platform: str, url: str) -> dict[str, str]:
    if platform == "shopify":
        return {"SHOPIFY_SHOP_DOMAIN": "demo-store.myshopify.com",
                "SHOPIFY_ADMIN_ACCESS_TOKEN": "shpat_test_not_real", "SHOPIFY_ADMIN_URL": url}
    return {"WOOCOMMERCE_SITE_URL": url, "WOOCOMMERCE_CONSUMER_KEY": "ck_test_not_real",
            "WOOCOMMERCE_CONSUMER_SECRET": "cs_test_not_real"}


def _start_store_standin(settings: Settings, env: dict[str, str],
                         processes: list[subprocess.Popen[bytes]]) -> str | None:
    """Start the store's API stand-in and point the store API jobs at it; return its address.

    Only in sandbox mode, for a Shopify or WooCommerce project whose store API settings
    are not set, so reconciliation, backfill and discount codes can be tried locally.
    """
    from .store_settings import store_api_platforms

    platform = next((name for name in settings.accepted_platforms if name in STORE_STANDINS),
                    None)
    if not settings.sandbox or platform is None or platform in store_api_platforms(settings):
        return None
    module, name = STORE_STANDINS[platform]
    port = _free_port("127.0.0.1")
    processes.append(subprocess.Popen([sys.executable, "-m", module, "--port", str(port)],
                                      env=env))
    _wait_for_port("127.0.0.1", port, processes[-1], STANDIN_START_TIMEOUT_SECONDS, name)
    url = f"http://127.0.0.1:{port}"
    env.update(_store_standin_env(platform, url))
    return url


def _print_banner(settings: Settings, standin_url: str | None) -> None:
    click.echo(f"Intake: http://{settings.host}:{settings.port}  "
               f"(webhooks: {', '.join('/webhooks/' + p for p in settings.accepted_platforms)})")
    click.echo(f"Queue: {'Redis (REDIS_URL)' if settings.redis_url else settings.queue_path}")
    if settings.crm_target == "custom":
        click.echo("CRM: the customer database in DATABASE_URL (CRM_TARGET=custom).")
        return
    crm = "Zoho CRM" if settings.crm_target == "zoho" else "HubSpot"
    if standin_url is None:
        click.echo(f"CRM: {crm} ({settings.sandbox_switch} is set).")
        return
    click.echo("")
    click.echo(f"SANDBOX MODE: {settings.sandbox_switch} is not set, so nothing is sent to "
               f"{crm}.")
    click.echo(f"  Records go to a local {crm} stand-in at {standin_url}, seeded from "
               f"{settings.desired_state_path}.")
    records = "Contacts" if settings.crm_target == "zoho" else "contacts"
    click.echo(f"  See them with: curl {standin_url}/_standin/records/{records}")
    for platform in settings.sandbox_secret_platforms:
        click.echo(f"  {platform}: webhook secret not set, so the public sandbox placeholder is "
                   "used (see the README).")
    click.echo("")


@main.command(cls=CrmHelpCommand)
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Worker threads of the queue consumer.")
def run(workers: int) -> None:
    """Start the intake, the worker, the {crm} flusher and, in sandbox mode, the stand-in.

    The flusher is a process of its own unless SYNC_FLUSHER=thread. With
    CRM_TARGET=custom the worker writes to the customer database itself, and sandbox
    mode creates a local database instead of a stand-in.

    Sandbox mode is on while {switch} is not set. Press Ctrl-C to stop; every process
    is stopped with it.
    """
    from .demo import STANDIN_URL_FILE

    settings = current_settings()
    env = dict(os.environ)
    standin_url = None
    # The demo command reads the stand-in's address from this file.
    address_file = settings.data_dir / STANDIN_URL_FILE
    with _children() as processes:
        stop_requested = _stop_requests()
        # The stand-ins serve the HubSpot and Zoho targets.
        if settings.sandbox and settings.crm_target in FLUSHED_CRM_TARGETS:
            port = _free_port("127.0.0.1")
            standin_url = f"http://127.0.0.1:{port}"
            processes.append(_child(["standin", "--port", str(port)], env))
            _wait_for_port("127.0.0.1", port, processes[-1], STANDIN_START_TIMEOUT_SECONDS,
                           CRM_NAMES[settings.crm_target])
            env["HUBSPOT_BASE_URL"] = standin_url
            # The Zoho stand-in is its own accounts server and names itself as api_domain.
            env["ZOHO_ACCOUNTS_URL"] = standin_url
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            address_file.write_text(standin_url + "\n", encoding="utf-8")
        _print_banner(settings, standin_url)
        if standin_url is not None:
            forget_sandbox_crm_ids(settings)
        store_url = _start_store_standin(settings, env, processes)
        if store_url is not None:
            click.echo(f"  The store API jobs (reconcile, backfill, discount codes) use a local "
                       f"store stand-in at {store_url}; set the store API settings to use the "
                       "real store.\n")
        worker_command = ["worker", "--workers", str(workers)]
        if separate_flusher(settings):
            # Tells the worker not to ask for a flusher that this command starts.
            worker_command.append("--flusher-started")
        processes.append(_child(worker_command, env))
        if separate_flusher(settings):
            processes.append(_child(["flusher"], env))
        processes.append(_child(["intake"], env))
        try:
            while all(process.poll() is None for process in processes):
                if stop_requested.wait(0.5):
                    click.echo("Stopping…", err=True)
                    return
        finally:
            address_file.unlink(missing_ok=True)
        stopped = next(process for process in processes if process.poll() is not None)
        command = "a process"
        if isinstance(stopped.args, list):
            # storesync's own commands, or a store stand-in's module.
            command = stopped.args[3] if stopped.args[2] == "storesync" else stopped.args[2]
        click.echo(f"Error: {command} stopped with exit code {stopped.returncode}; stopping "
                   "the others.", err=True)
    sys.exit(EXIT_FAILURE)


def forget_sandbox_crm_ids(settings: Settings) -> int:
    """Forget the CRM ids of earlier runs, because a new sandbox stand-in starts empty.

    The stand-in keeps its records in memory, but the state file keeps the CRM id of
    each synced record. Without this, a write after a restart would name an id the
    new stand-in does not have, and Zoho's or HubSpot's error would dead-letter it.
    Records synced before are sent again with their next delivery. Returns how many
    ids were forgotten.
    """
    from .sync_store import SyncStore

    db = Database(settings.state_path)
    try:
        count = SyncStore(db).forget_crm_records()
    finally:
        db.close()
    if count:
        click.echo(f"  The new stand-in starts empty, so the {count} CRM ids of the previous "
                   "sandbox run were forgotten; records synced before are sent again with "
                   "their next delivery.")
    return count


# --- intake, worker, standin --------------------------------------------------------------


@main.command()
@click.option("--host", help="Address to listen on (default: the HOST setting).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port (default: the PORT setting).")
def intake(host: str | None, port: int | None) -> None:
    """Serve the webhook intake with uvicorn (no worker)."""
    import uvicorn

    from .intake import create_app

    settings = current_settings()
    logs.configure_logging(settings.log_level)
    if host is not None and settings.sandbox and host not in LOOPBACK_HOSTS:
        _fail(f"--host {host} is not a loopback address, and the service is in sandbox mode. "
              f"Use --host 127.0.0.1, or set {settings.sandbox_switch} and the webhook "
              "secrets.",
              EXIT_USAGE)
    app = create_app(settings)
    uvicorn.run(app, host=host or settings.host, port=port or settings.port, log_config=None,
                access_log=False, proxy_headers=False)


def build_worker_queue(settings: Settings) -> DeliveryQueue:
    """Build the worker's queue, whose SQLite connection uses WORKER_QUEUE_SQLITE_SYNCHRONOUS.

    This connection takes jobs off the SQLite queue, and with NORMAL a dequeue commit
    can be lost in a power cut (not in a crash of the process). That is harmless: the
    intake's FULL commit wrote each job into huey's task table and the inbox together,
    and the inbox entry is deleted only after the job's own FULL commit to the state
    file. A lost dequeue (or a lost retry that huey queued) therefore brings back the
    task row, or leaves the inbox entry for recovery. Either way the job runs again,
    the worker finds its versions already recorded, and nothing changes. The intake's
    own connection keeps QUEUE_SQLITE_SYNCHRONOUS, FULL by default, because its commit
    is the acknowledgement.
    """
    from .queue import build_queue

    return build_queue(replace(
        settings, queue_sqlite_synchronous=settings.worker_queue_sqlite_synchronous))


@main.command()
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Worker threads of the queue consumer.")
@click.option("--flusher-started", is_flag=True, hidden=True,
              help="Set by `run`, which starts the flusher process beside the worker.")
def worker(workers: int, flusher_started: bool) -> None:
    """Run the queue consumer that hands deliveries to the worker."""
    from prometheus_client import start_http_server

    from . import worker as worker_module
    from .queue import start_recovery

    settings = current_settings()
    logs.configure_logging(settings.log_level)
    _claim_state_home(settings)
    queue = build_worker_queue(settings)
    log_flusher_process(settings, flusher_started)
    if settings.worker_metrics_port:
        start_http_server(settings.worker_metrics_port, addr=settings.host)
    # The worker side may run loops beside the consumer (metrics snapshots, the custom
    # database writer, the HubSpot flusher thread when SYNC_FLUSHER=thread):
    # storesync.worker.start_background(settings) starts them and returns a stop function.
    start_background = getattr(worker_module, "start_background", None)
    stop_background = start_background(settings) if start_background else None
    consumer = queue.huey.create_consumer(workers=workers, worker_type="thread", periodic=False)
    # Jobs that a killed worker took off the queue are queued again from the inbox.
    stop_recovery = start_recovery(queue)
    try:
        consumer.run()
    finally:
        stop_recovery()
        if stop_background is not None:
            stop_background()
        queue.close()


def log_flusher_process(settings: Settings, flusher_started: bool) -> None:
    """Log where the flusher runs when it is not a thread of this worker.

    Under ``run``, which starts the flusher process itself, the line names ``run``. A worker
    started on its own is told to start ``python -m storesync flusher`` too.
    """
    if not separate_flusher(settings):
        return
    log = logging.getLogger("storesync.worker")
    if flusher_started:
        log.info("the flusher runs as its own process (SYNC_FLUSHER=process), started by "
                 "`run` beside this worker")
    else:
        log.info("the flusher runs as its own process (SYNC_FLUSHER=process): start `python -m "
                 "storesync flusher` beside this worker, or nothing reaches the CRM")


def _claim_state_home(settings: Settings) -> None:
    """Exit with code 2 when another state file serves this Redis key prefix."""
    import redis

    from .state_home import ForeignStateFile, claim_state_home

    try:
        claim_state_home(settings)
    except ForeignStateFile as error:
        _fail(str(error), EXIT_USAGE)
    except redis.RedisError as error:
        _fail(f"cannot reach Redis at REDIS_URL to check the state file ({error}). Start "
              "Redis or correct REDIS_URL.")


# CRM targets written by the flusher; custom is written by the worker itself.
FLUSHED_CRM_TARGETS = ("hubspot", "zoho")


def separate_flusher(settings: Settings) -> bool:
    """Return whether the CRM flusher runs as its own ``flusher`` process."""
    return settings.crm_target in FLUSHED_CRM_TARGETS and settings.sync_flusher == "process"


@main.command(cls=CrmHelpCommand)
def flusher() -> None:
    """Write the outbox to {crm} in batches (the worker's other half).

    Run it beside the worker when SYNC_FLUSHER=process, the default. Only one flusher
    drains the outbox of a DATA_DIR at a time; a second one waits for the first to stop.
    SIGTERM or Ctrl-C stops it after the batch in flight.
    """
    import threading

    from . import metrics
    from .flusher import run_flusher_process
    from .worker import UnsupportedCrmTarget, check_crm_target, load_mapping

    settings = current_settings()
    logs.configure_logging(settings.log_level)
    try:
        check_crm_target(settings, load_mapping(settings.mapping_path))
    except (UnsupportedCrmTarget, ValueError) as error:
        _fail(str(error), EXIT_USAGE)
    if settings.crm_target not in FLUSHED_CRM_TARGETS:
        _fail(f"CRM_TARGET={settings.crm_target} has no flusher: the worker writes to the "
              "customer database itself.", EXIT_USAGE)
    _claim_state_home(settings)
    stop = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    stop_publisher = metrics.start_publisher(settings)
    try:
        run_flusher_process(settings, stop)
    finally:
        stop_publisher()


def _standin_app(settings: Settings, seed: bool) -> Any:
    try:
        from .standins import hubspot, zoho
    except ImportError as error:
        _fail(f"the CRM stand-ins are not in this service ({error}). Regenerate the project "
              "with rabt.")
    standin_module: Any = zoho if settings.crm_target == "zoho" else hubspot
    app = standin_module.create_app()
    if seed:
        path = settings.desired_state_path
        try:
            desired = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as error:
            _fail(f"cannot read the desired state {path}: {error}. Set DESIRED_STATE_PATH, or "
                  "pass --no-seed.", EXIT_USAGE)
        standin_module.seed_from_desired_state(app, desired)
    return app


@main.command(cls=CrmHelpCommand)
@click.option("--port", type=click.IntRange(1, 65535), default=8010, show_default=True,
              help="Port to listen on, on 127.0.0.1.")
@click.option("--seed/--no-seed", default=True, show_default=True,
              help="Create the properties and pipelines of DESIRED_STATE_PATH first.")
def standin(port: int, seed: bool) -> None:
    """Serve the local {crm} stand-in on 127.0.0.1 (it keeps records in memory)."""
    import uvicorn

    settings = current_settings()
    logs.configure_logging(settings.log_level)
    app = _standin_app(settings, seed)
    uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, access_log=False)


# --- check-config ------------------------------------------------------------------------


def _check_stores(settings: Settings) -> list[str]:
    from .queue import build_queue

    failures = []
    try:
        Database(settings.state_path).close()
    except Exception as error:  # report any failure to open the state file
        failures.append(f"state file {settings.state_path}: {type(error).__name__}: {error}")
    try:
        queue = build_queue(settings, handler=lambda delivery: None)
        queue.check()
        queue.close()
    except Exception as error:  # report any failure to reach the queue
        where = "Redis (REDIS_URL)" if settings.redis_url else f"queue file {settings.queue_path}"
        failures.append(f"{where}: {type(error).__name__}: {error}")
    return failures


@main.command("check-config")
def check_config() -> None:
    """Check the settings and that the queue and state store can be written.

    With CRM_TARGET=custom and DATABASE_URL set, also connect to the customer
    database and check that it is at this release's migration revision.
    """
    settings = current_settings()
    click.echo(f"Accepted platforms: {', '.join(settings.accepted_platforms)}")
    for platform in settings.accepted_platforms:
        count = len(settings.webhook_secrets(platform))
        source = " (sandbox placeholder)" if platform in settings.sandbox_secret_platforms else ""
        click.echo(f"  {platform}: {count} webhook secret{'s' if count != 1 else ''}{source}")
    mode = f"sandbox ({settings.sandbox_switch} not set)" if settings.sandbox else "live"
    click.echo(f"Mode: {mode}")
    click.echo(f"Queue: {'Redis' if settings.redis_url else settings.queue_path}")
    click.echo(f"State file: {settings.state_path}")
    failures = _check_stores(settings)
    if settings.crm_target == "custom":
        from .customdb.commands import check_database

        status, failure = check_database(settings)
        click.echo(status)
        failures += [failure] if failure else []
    for warning in _config_warnings(settings):
        click.echo(f"Warning: {warning}", err=True)
    for failure in failures:
        click.echo(f"Error: {failure}", err=True)
    if failures:
        sys.exit(EXIT_FAILURE)
    click.echo("Settings are valid and the stores can be written.")


def _config_warnings(settings: Settings) -> list[str]:
    """Return warnings about settings that are valid but have no effect."""
    from .store_settings import store_api_platforms

    warnings = []
    if settings.consent_store_writeback and settings.crm_target != "custom" and \
            not store_api_platforms(settings):
        warnings.append(
            "CONSENT_STORE_WRITEBACK=true, but no store API settings are set, so opt-outs "
            "made in the CRM are not written to the store. Set SHOPIFY_SHOP_DOMAIN and "
            "SHOPIFY_ADMIN_ACCESS_TOKEN (scope write_customers), or WOOCOMMERCE_SITE_URL, "
            "WOOCOMMERCE_CONSUMER_KEY and WOOCOMMERCE_CONSUMER_SECRET (read/write).")
    return warnings


# --- quarantine ------------------------------------------------------------------------


def _open_quarantine(settings: Settings) -> Quarantine:
    try:
        return Quarantine(Database(settings.state_path))
    except Exception as error:  # report any failure to open the state file
        _fail(f"cannot open the state file {settings.state_path}: {error}")


@main.group()
def quarantine() -> None:
    """Inspect and requeue deliveries the service could not process."""


@quarantine.command("list")
@click.option("--limit", type=click.IntRange(1, 10000), default=50, show_default=True,
              help="Newest entries to show.")
@click.option("--source", type=click.Choice(["shopify", "woocommerce", "storefront"]),
              help="Only entries from this platform.")
@click.option("--all", "include_requeued", is_flag=True, help="Include entries already requeued.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines instead of a table.")
def quarantine_list(limit: int, source: str | None, include_requeued: bool, as_json: bool) -> None:
    """List quarantined deliveries, newest first (bodies are not printed)."""
    store = _open_quarantine(current_settings())
    entries = store.entries(limit=limit, source=source, include_requeued=include_requeued)
    for entry in entries:
        if as_json:
            fields = {key: value for key, value in vars(entry).items() if key != "body"}
            click.echo(json.dumps(fields, ensure_ascii=False))
        else:
            click.echo(f"{entry.id:>6}  {entry.quarantined_at}  {entry.source:<11}  "
                       f"{entry.topic or '-':<24}  {entry.reason}")
    if not entries and not as_json:
        click.echo("The quarantine is empty.")


@quarantine.command("show")
@click.argument("entry_id", type=int)
def quarantine_show(entry_id: int) -> None:
    """Show one quarantined delivery with its reason and raw body."""
    store = _open_quarantine(current_settings())
    entry = store.get(entry_id)
    if entry is None:
        _fail(f"no quarantine entry has id {entry_id}. List them with: "
              "python -m storesync quarantine list", EXIT_USAGE)
    for key, value in vars(entry).items():
        if key != "body":
            click.echo(f"{key}: {value if value is not None else '-'}")
    click.echo("body:")
    click.echo(entry.body.decode("utf-8", "replace"))


@quarantine.command("requeue")
@click.argument("entry_id", type=int)
def quarantine_requeue(entry_id: int) -> None:
    """Put one quarantined delivery on the queue again, e.g. after fixing the field map."""
    from .queue import build_queue

    settings = current_settings()
    store = _open_quarantine(settings)
    entry = store.get(entry_id)
    if entry is None:
        _fail(f"no quarantine entry has id {entry_id}.", EXIT_USAGE)
    try:
        delivery = entry.to_delivery()
    except UnicodeDecodeError:
        _fail(f"entry {entry_id} has a body that is not UTF-8, so it cannot be processed.")
    queue = build_queue(settings)
    try:
        queue.enqueue(delivery)
    finally:
        queue.close()
    store.mark_requeued(entry_id)
    click.echo(f"Entry {entry_id} ({entry.source} {entry.topic or '-'}) is queued again.")


# --- Commands of the worker side (dead letters, demo) ------------------------------------


def _register_sync_commands() -> None:
    from .sync_cli import commands

    for command in commands:
        main.add_command(command)


_register_sync_commands()


# The store API jobs' commands (reconcile, subscriptions, backfill).
def _register_store_commands() -> None:
    from .store_cli import commands

    for command in commands:
        main.add_command(command)


_register_store_commands()


# The privacy requests' commands (privacy list, show, run, hand-over).
def _register_privacy_commands() -> None:
    from .privacy_cli import commands

    for command in commands:
        main.add_command(command)


_register_privacy_commands()


# The custom database's commands (db, export). They also make run, intake and worker
# check the database's migration revision first when CRM_TARGET=custom.
def _register_customdb_commands() -> None:
    from .customdb.commands import register

    register(main)


_register_customdb_commands()
