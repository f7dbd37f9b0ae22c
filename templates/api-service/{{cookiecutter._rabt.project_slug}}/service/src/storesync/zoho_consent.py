"""Consent between the state file and Zoho CRM, in the contact fields ``consent.yaml`` names.

Zoho has no subscription API like HubSpot's, so consent is kept in fields of the
contact. Each channel of ``integration/consent.yaml`` lists them in ``target.fields``.
The state is a checkbox: an opt-out (``Email_Opt_Out``, ticked after a withdrawal) or
an opt-in (``Ecom_WhatsApp_Opt_In``, ticked while granted). The other fields keep the
time, source and wording version of the consent (``..._Consent_At``,
``..._Consent_Source``, ``..._Consent_Wording``). Fields are distinguished by the end of
their API name.

Push: each due push to the CRM sets the contact's fields to the channel's current
state. Up to 100 contacts go in one update call. A contact without a Zoho id waits
with a backoff, because the flusher has not written it yet.

Pull: the state checkboxes of contacts with a Zoho id are read by id, 100 per call
and at most ``MAX_PULL_CALLS_PER_PASS`` calls per pass; the next pass goes on after the
last contact read, so a large contact base is read over several passes. Each call
costs one credit and waits for the credit budget like the flusher's calls. A ticked
opt-out, or an opt-in unticked while the local state is granted, is recorded as a
withdrawal from Zoho at the record's ``Modified_Time``, so it wins over an older or
equal-time opt-in. A contact whose push to Zoho still waits is skipped for that
channel, because Zoho does not show its current state yet.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from .consent import (
    GRANTED,
    TO_CRM,
    WITHDRAWN,
    ZOHO_SOURCE,
    ConsentEvent,
    ConsentPush,
    ConsentStore,
)
from .hubspot import BATCH_LIMIT, BatchRejected, HubSpotError

log = logging.getLogger("storesync.consent")

MAX_PULL_CALLS_PER_PASS = 20
PUSHES_PER_PASS = 500
MODIFIED_TIME = "Modified_Time"


@dataclass(frozen=True)
class ChannelFields:
    """The Zoho contact fields of one channel's consent; None where the spec names none."""

    channel: str
    state_field: str | None = None
    opt_out: bool = False
    time_field: str | None = None
    source_field: str | None = None
    wording_field: str | None = None

    def values(self, event: ConsentEvent | None) -> dict[str, Any]:
        """Return the field values that show ``event`` (the current state) in Zoho.

        An opt-out checkbox is ticked unless consent is granted, as the iPaaS flows
        write it; an opt-in checkbox is ticked only while granted.
        """
        granted = event is not None and event.state == GRANTED
        values: dict[str, Any] = {}
        if self.state_field:
            values[self.state_field] = not granted if self.opt_out else granted
        if event is None:
            return values
        if self.time_field:
            values[self.time_field] = datetime.fromtimestamp(
                event.captured_at, UTC).isoformat(timespec="seconds")
        if self.source_field:
            values[self.source_field] = event.source
        if self.wording_field and event.wording_version:
            values[self.wording_field] = event.wording_version
        return values


def channel_fields(names: Sequence[str], channel: str) -> ChannelFields:
    """Sort a channel's target fields into state, time, source and wording by their names."""
    found: dict[str, Any] = {"channel": channel}
    for name in names:
        lowered = name.lower()
        if lowered.endswith(("opt_out", "opt_in")) and "state_field" not in found:
            found["state_field"] = name
            found["opt_out"] = lowered.endswith("opt_out")
        elif lowered.endswith("_at"):
            found.setdefault("time_field", name)
        elif lowered.endswith("_source"):
            found.setdefault("source_field", name)
        elif lowered.endswith("_wording"):
            found.setdefault("wording_field", name)
    return ChannelFields(**found)


def load_channel_fields(path: Path) -> dict[str, ChannelFields]:
    """Return the Zoho fields of each channel in a ``consent.yaml``; none when it is missing.

    Raises:
        ValueError: the file exists but cannot be read as YAML.
    """
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ValueError(f"cannot read {path}: {error}") from error
    channels = data.get("channels") if isinstance(data, Mapping) else None
    found = {}
    for entry in channels if isinstance(channels, list) else []:
        target = entry.get("target") if isinstance(entry, Mapping) else None
        names = target.get("fields") if isinstance(target, Mapping) else None
        if isinstance(names, list) and entry.get("channel"):
            channel = str(entry["channel"])
            found[channel] = channel_fields([str(name) for name in names], channel)
    return found


def _zoho_ids(store: ConsentStore, contact_keys: set[str]) -> dict[str, str]:
    keys = sorted(contact_keys)
    marks = ", ".join("?" * len(keys)) or "NULL"
    with store.database.reading() as reader:
        rows = reader.execute("SELECT key, crm_id FROM sync_crm_ids WHERE object = 'contacts'"
                              f" AND key IN ({marks})", keys).fetchall()
    return {str(row[0]): str(row[1]) for row in rows}


# --- push ---------------------------------------------------------------------------------------


def send_zoho_pushes(store: ConsentStore, client: Any, fields: Mapping[str, ChannelFields],
                     now: float) -> dict[str, int]:
    """Write the current consent of each contact with a due push to Zoho; return counts.

    Args:
        store: The consent store; its database also contains the CRM ids.
        client: A :class:`storesync.zoho.ZohoClient`.
        fields: The Zoho fields of each channel (:func:`load_channel_fields`).
        now: The current Unix time.
    """
    pushes = store.due_pushes(now, PUSHES_PER_PASS, targets=(TO_CRM,))
    counts: Counter[str] = Counter()
    if not pushes:
        return {}
    zoho_ids = _zoho_ids(store, {push.contact_key for push in pushes})
    records: dict[str, tuple[dict[str, Any], list[ConsentPush]]] = {}
    for push in pushes:
        channel = fields.get(push.channel)
        if channel is None or channel.state_field is None:
            store.finish_push(push, "no_crm_field")
            counts["no_crm_field"] += 1
            continue
        zoho_id = zoho_ids.get(push.contact_key)
        if zoho_id is None:
            store.retry_push(push, "the contact has no Zoho id yet; the flusher writes it first")
            counts["waiting_for_contact"] += 1
            continue
        values, members = records.setdefault(zoho_id, ({}, []))
        values.update(channel.values(store.current(push.contact_key, push.channel,
                                                   float("inf"))))
        members.append(push)
    batch = list(records.items())
    for start in range(0, len(batch), BATCH_LIMIT):
        counts.update(_send_batch(store, client, batch[start:start + BATCH_LIMIT]))
    log.info("consent pushed to Zoho", extra={"counts": dict(counts)})
    return dict(counts)


def _send_batch(store: ConsentStore, client: Any,
                batch: list[tuple[str, tuple[dict[str, Any], list[ConsentPush]]]]
                ) -> Counter[str]:
    counts: Counter[str] = Counter()
    inputs = [{"id": zoho_id, "properties": values} for zoho_id, (values, _) in batch]
    try:
        result = client.batch_update("contacts", inputs)
    except BatchRejected as error:
        for _, (_, members) in batch:
            for push in members:
                store.finish_push(push, "failed", str(error))
                counts["failed"] += 1
        log.warning("Zoho rejected a consent update", extra={"error": str(error)})
        return counts
    except (HubSpotError, OSError, RuntimeError) as error:
        for _, (_, members) in batch:
            for push in members:
                store.retry_push(push, f"{type(error).__name__}: {error}")
                counts["retry"] += 1
        log.warning("consent update to Zoho failed; it is tried again later",
                    extra={"error": type(error).__name__})
        return counts
    errors = {str(record_id): str(entry.get("message"))
              for entry in result.errors for record_id in entry.get("context", {}).get("ids", [])}
    for zoho_id, (_, members) in batch:
        for push in members:
            if zoho_id in errors:
                store.finish_push(push, "failed", errors[zoho_id])
                counts["failed"] += 1
                log.warning("Zoho rejected a consent update", extra={
                    "contact_key": push.contact_key, "channel": push.channel,
                    "crm_id": zoho_id, "error": errors[zoho_id]})
            else:
                store.finish_push(push, "done")
                counts["done"] += 1
    return counts


# --- pull ---------------------------------------------------------------------------------------


def pull_zoho_consent(store: ConsentStore, client: Any, fields: Mapping[str, ChannelFields],
                      after: str = "", max_calls: int = MAX_PULL_CALLS_PER_PASS
                      ) -> tuple[int, str]:
    """Record the withdrawals Zoho shows for known contacts; return (changes, next cursor).

    Args:
        store: The consent store; its database also contains the CRM ids.
        client: A :class:`storesync.zoho.ZohoClient`.
        fields: The Zoho fields of each channel.
        after: The contact key the previous pass stopped after; empty to start over.
        max_calls: Read calls this pass may make.

    Returns:
        The number of channels whose state changed, and the contact key to go on
        after, or an empty string once every contact was read.
    """
    checked = {name: item for name, item in fields.items() if item.state_field}
    if not checked:
        return 0, ""
    names = sorted({str(item.state_field) for item in checked.values()} | {MODIFIED_TIME})
    changed = 0
    cursor = after
    for _ in range(max_calls):
        with store.database.reading() as reader:
            rows = reader.execute("SELECT key, crm_id FROM sync_crm_ids WHERE object = 'contacts'"
                                  " AND key > ? ORDER BY key LIMIT ?",
                                  (cursor, BATCH_LIMIT)).fetchall()
        if not rows:
            return changed, ""
        keys = {str(row[1]): str(row[0]) for row in rows}
        for record in client.read_records("contacts", list(keys), names):
            contact_key = keys.get(str(record.get("id")))
            if contact_key is not None:
                changed += _record_withdrawals(store, contact_key, record, checked)
        cursor = str(rows[-1][0])
        if len(rows) < BATCH_LIMIT:
            return changed, ""
    return changed, cursor


def _record_withdrawals(store: ConsentStore, contact_key: str, record: Mapping[str, Any],
                        fields: Mapping[str, ChannelFields]) -> int:
    when = _zoho_time(record.get(MODIFIED_TIME)) or store.clock()
    with store.database.reading() as reader:
        waiting = {row[0] for row in reader.execute(
            "SELECT channel FROM consent_pushes WHERE contact_key = ? AND target = ?"
            " AND status = 'pending'", (contact_key, TO_CRM))}
    changed = 0
    for channel, item in fields.items():
        if channel in waiting:
            continue
        value = record.get(str(item.state_field))
        current = store.current(contact_key, channel, float("inf"))
        state = current.state if current is not None else None
        if item.opt_out:
            withdrawn = value is True and state in (None, GRANTED)
        else:
            withdrawn = value is False and state == GRANTED
        if withdrawn:
            event = ConsentEvent(channel, WITHDRAWN, when, ZOHO_SOURCE)
            changed += int(store.record(contact_key, event))
    return changed


def _zoho_time(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
