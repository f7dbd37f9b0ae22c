"""The command line: read options and settings, read the store, write the CRM, save the state."""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from . import EXIT_FAILURE, EXIT_OK
from .collect import collect, dedupe, later
from .consent import ConsentRule, consent_rules
from .crm import MAX_BATCH, CrmWriter, Outcome, masked_keys, phone_targets, target_of
from .errors import InvalidInput, SyncError
from .http import HttpFailure
from .logs import JsonLog, scrub
from .rollups import add_rollups
from .settings import (
    WooSettings,
    hubspot_settings,
    load_env_file,
    woo_settings,
    zoho_settings,
)
from .state import MAX_RETRY_RUNS, Mark, SyncState, load_state, run_lock, save_state
from .store import Contact, StoreReader, store_client

PROJECT_DIR = Path(__file__).resolve().parents[2]
DEFAULT_STATE = Path("sync/state/contact-sync.json")
CRMS = ("hubspot", "zoho")


def _batch_size(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_BATCH:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 1 to {MAX_BATCH}")
    return int(text)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Read the options; an invalid option exits with code 2 and the usage text."""
    parser = argparse.ArgumentParser(
        prog="python sync/contact_sync.py",
        description="Upsert the WooCommerce customers and guest buyers changed since the last "
                    "run into the CRM as contacts, with their order roll-ups (paid orders, "
                    "lifetime value, first and last order) computed from every paid order. "
                    "Logs are JSON lines on standard error. "
                    "Exit codes: 0 all written, 1 some failed (kept for the next run) or a "
                    "service failed, 2 invalid settings or options, 3 another run holds the lock.")
    parser.add_argument("--dry-run", action="store_true",
                        help="read and map, log what would be written; write nothing to the "
                             "CRM or the state file (needs no CRM credentials)")
    parser.add_argument("--since", metavar="WHEN",
                        help="read changes after this UTC time (2026-01-31 or "
                             "2026-01-31T18:00:00Z) instead of the stored mark; 'all' reads "
                             "every customer and order")
    parser.add_argument("--project", type=Path, default=PROJECT_DIR,
                        help="project folder with integration/ and crm/ (default: the folder "
                             "that contains sync/)")
    parser.add_argument("--state", type=Path,
                        help=f"state file (default: <project>/{DEFAULT_STATE.as_posix()})")
    parser.add_argument("--env-file", type=Path,
                        help="KEY=value file to read settings from; variables already set win")
    parser.add_argument("--workflows", choices=("auto", "on", "off"), default="auto",
                        help="whether Zoho CRM writes fire the org's workflow rules: 'auto' "
                             "(default) fires them on incremental runs and not when the run "
                             "reads the whole store (the first run, or --since all); HubSpot "
                             "workflows enrol on their own triggers and ignore this")
    parser.add_argument("--batch-size", type=_batch_size, default=MAX_BATCH,
                        help=f"contacts per CRM call, 1 to {MAX_BATCH} (default {MAX_BATCH})")
    return parser.parse_args(argv)


def _since_marks(text: str | None, stored: Mapping[str, Mark]) -> dict[str, Mark]:
    if text is None:
        return dict(stored)
    if text == "all":
        return {}
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as error:
        raise InvalidInput(f"--since {text!r} is not a date or time",
                           "give a UTC time such as 2026-01-31 or 2026-01-31T18:00:00Z, "
                           "or 'all'") from error
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    value = moment.strftime("%Y-%m-%dT%H:%M:%S")
    return {"orders": Mark(value), "customers": Mark(value)}


def workflows_on(choice: str, marks: Mapping[str, Mark]) -> bool:
    """Return whether this run's CRM writes fire workflows (``--workflows``).

    ``auto`` mutes them only when the run reads the whole store: with no marks every
    customer and order is read, which would enrol every contact at once.
    """
    if choice in ("on", "off"):
        return choice == "on"
    return bool(marks)


def _load_yaml(project: Path, relative: str) -> dict[str, Any]:
    path = project / relative
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise InvalidInput(f"cannot read {path}: {error}",
                           "run the sync from a Rabt project, or pass --project") from error
    if not isinstance(data, dict):
        raise InvalidInput(f"{path} does not contain a mapping", "regenerate the project")
    return data


def _writer(crm: str, environ: Mapping[str, str], mapping: Mapping[str, Any],
            desired: Mapping[str, Any], log: JsonLog) -> CrmWriter:
    if crm == "hubspot":
        from .hubspot import HubSpotWriter

        return HubSpotWriter(hubspot_settings(environ), mapping, desired, log)
    from .zoho import ZohoWriter

    return ZohoWriter(zoho_settings(environ), mapping, desired, log)


def _store_failure(failure: HttpFailure) -> SyncError:
    if failure.status in (401, 403):
        return InvalidInput(f"the store rejected the API key: {failure.code}: {failure.message}",
                            "check WOOCOMMERCE_CONSUMER_KEY and WOOCOMMERCE_CONSUMER_SECRET, "
                            "and that the key has Read access")
    return SyncError(f"reading the store failed: {failure}", "the state was not changed; the "
                     "next run reads the same changes again")


def _write_all(writer: CrmWriter, contacts: list[Contact], batch_size: int,
               log: JsonLog) -> list[Outcome]:
    """Write every batch; after a call that fails for good, keep the rest for the next run."""
    outcomes: list[Outcome] = []
    for start in range(0, len(contacts), batch_size):
        batch = contacts[start:start + batch_size]
        try:
            results = writer.write(batch)
        except HttpFailure as failure:
            if failure.status in (401, 403):
                raise InvalidInput(f"{writer.label} rejected the credentials: {failure.code}: "
                                   f"{failure.message}", "check the CRM variables in "
                                   "sync/.env.example and the token's scopes") from failure
            log.error("batch_failed", crm=writer.label, status=failure.status, code=failure.code,
                      message=scrub(failure.message), contacts_kept=len(contacts) - start)
            outcomes += [Outcome(contact, "failed", failure.code, failure.message, retry=True)
                         for contact in contacts[start:]]
            return outcomes
        for outcome in results:
            if outcome.action in ("failed", "skipped"):
                level = log.error if outcome.action == "failed" else log.warning
                level(f"contact_{outcome.action}", source=outcome.contact.source,
                      id=outcome.contact.source_id, code=outcome.code,
                      message=scrub(outcome.message), **writer.keys(outcome.contact))
        log.info("batch_written", crm=writer.label, size=len(batch),
                 **{action: sum(1 for item in results if item.action == action)
                    for action in ("created", "updated", "failed", "skipped")})
        outcomes += results
    return outcomes


def _retry_list(outcomes: list[Outcome], previous: list[dict[str, Any]], writer: CrmWriter,
                log: JsonLog) -> list[dict[str, Any]]:
    runs_before = {(item.get("source"), item.get("id")): int(item.get("runs") or 0)
                   for item in previous}
    kept = []
    for outcome in outcomes:
        if outcome.action != "failed" or not outcome.retry:
            continue
        ref = outcome.contact.ref()
        runs = runs_before.get((ref["source"], ref["id"]), 0) + 1
        if runs > MAX_RETRY_RUNS:
            log.error("retry_dropped", **ref, runs=runs - 1, code=outcome.code,
                      fix="correct the record in the store or the CRM; the next change to it "
                          "is synced again")
            continue
        kept.append({**ref, "runs": runs, "code": outcome.code,
                     "message": scrub(outcome.message), **writer.keys(outcome.contact)})
    return kept


def _dry_run(contacts: list[Contact], mapping: Mapping[str, Any], log: JsonLog) -> None:
    email, phones = target_of(mapping, "email"), phone_targets(mapping)
    for contact in contacts:
        log.info("contact_would_write", source=contact.source, id=contact.source_id,
                 properties=sorted(contact.properties),
                 **masked_keys(contact.properties, email, phones))


def _summary(outcomes: list[Outcome]) -> dict[str, int]:
    return {action: sum(1 for item in outcomes if item.action == action)
            for action in ("created", "updated", "failed", "skipped")}


def run(args: argparse.Namespace, environ: Mapping[str, str], log: JsonLog) -> int:
    """Run one sync and return the exit code.

    Raises:
        SyncError: The run cannot go on; its exit code is 1, 2 or 3.
    """
    started = time.monotonic()
    project = args.project.resolve()
    mapping = _load_yaml(project, "integration/mapping.yaml")
    desired = _load_yaml(project, "crm/desired-state.yaml")
    consent = consent_rules(_load_yaml(project, "integration/consent.yaml"),
                            str(mapping.get("crm")))
    crm = str(mapping.get("crm"))
    if crm not in CRMS or mapping.get("platform") != "woocommerce":
        raise InvalidInput(f"this sync writes WooCommerce contacts to HubSpot or Zoho CRM, but "
                           f"the project is {mapping.get('platform')} with {crm}",
                           "use the project's own integration path for this combination")
    store = woo_settings(environ)
    writer = None if args.dry_run else _writer(crm, environ, mapping, desired, log)
    state_path = args.state or project / DEFAULT_STATE
    try:
        with run_lock(state_path, on_takeover=lambda holder: log.warning(
                "lock_taken_over", pid=holder.get("pid"), host=holder.get("host"),
                started_at=holder.get("started_at"))):
            state = load_state(state_path)
            code = _run_locked(args, state, state_path, store, writer, mapping, consent, log)
    finally:
        if writer is not None:
            writer.close()
    log.info("run_finished", exit_code=code, seconds=round(time.monotonic() - started, 2))
    return code


def _run_locked(args: argparse.Namespace, state: SyncState, state_path: Path, store: WooSettings,
                writer: CrmWriter | None, mapping: Mapping[str, Any],
                consent: list[ConsentRule], log: JsonLog) -> int:
    marks = _since_marks(args.since, state.marks)
    log.info("run_started", crm=mapping.get("crm"), dry_run=args.dry_run,
             marks={name: mark.to_data() for name, mark in marks.items()},
             retry=len(state.retry))
    client = store_client(store, log)
    reader = StoreReader(client, mapping, store.role, log)
    try:
        collected = collect(reader, marks, state.retry, log)
        contacts, merged = dedupe(collected.contacts, target_of(mapping, "email"),
                                  target_of(mapping, "phone"))
        add_rollups(reader, mapping, contacts, log, consent)
    except HttpFailure as failure:
        raise _store_failure(failure) from failure
    finally:
        client.close()
    log.info("store_read", **collected.read, contacts=len(contacts), merged=merged,
             unmapped=collected.unmapped)
    if writer is None:
        _dry_run(contacts, mapping, log)
        return EXIT_OK
    if mapping.get("crm") == "zoho":
        # Only Zoho's upsert takes a trigger list. HubSpot's API has no such switch, so a
        # HubSpot run keeps its writer's setting and logs nothing about it.
        writer.run_workflows = workflows_on(args.workflows, marks)
        log.info("workflows", on=writer.run_workflows)
    outcomes = _write_all(writer, contacts, args.batch_size, log)
    for name, mark in collected.marks.items():
        newest = later(state.marks.get(name), mark)
        if newest is not None:
            state.marks[name] = newest
    state.retry = _retry_list(outcomes, state.retry, writer, log)
    summary = _summary(outcomes)
    state.last_run = {"finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
                      **summary, "retry": len(state.retry)}
    save_state(state_path, state)
    log.info("state_saved", **summary, retry=len(state.retry))
    return EXIT_FAILURE if summary["failed"] else EXIT_OK


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run the command line and return its exit code."""
    args = parse_args(argv)
    log = JsonLog()
    try:
        env = dict(os.environ if environ is None else environ)
        if args.env_file is not None:
            env = load_env_file(args.env_file, env)
        return run(args, env, log)
    except SyncError as error:
        log.error("run_failed", message=scrub(error.message), fix=error.fix,
                  exit_code=error.exit_code)
        return error.exit_code
    except HttpFailure as failure:
        log.error("run_failed", message=scrub(str(failure)), exit_code=EXIT_FAILURE,
                  fix="the state was not changed; run again later")
        return EXIT_FAILURE
