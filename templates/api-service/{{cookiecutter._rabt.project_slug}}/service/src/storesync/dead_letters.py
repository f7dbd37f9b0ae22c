"""Dead letters: records HubSpot rejected or that ran out of attempts, and their replay.

A dead letter keeps the record as it was last sent, the HubSpot error and the
delivery it came from. Replaying one puts it back in the outbox under any newer
state of the same record, so a replay never overwrites newer data. The flusher then
sends it with the next batch. Fix the cause first (a property missing in HubSpot, a
mapping error), or the record comes back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from .logs import mask_email, mask_name, mask_phone
from .sync_store import DeadLetter, SyncStore

# Properties whose values are personal data, masked unless the operator asks to see them.
_MASKED_PROPERTIES = {
    "email": mask_email,
    "phone": mask_phone,
    "mobilephone": mask_phone,
    "ecom_phone_e164": mask_phone,
    "firstname": mask_name,
    "lastname": mask_name,
}


def _time(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat(timespec="seconds").replace(
        "+00:00", "Z")


def summary_line(letter: DeadLetter) -> str:
    """Return one table line: id, time, object, key, status, attempts and the error."""
    status = "-" if letter.status is None else str(letter.status)
    error = letter.error if len(letter.error) <= 120 else letter.error[:117] + "..."
    return (f"{letter.id:>6}  {_time(letter.created_at)}  {letter.item.object:<24}  "
            f"{letter.item.key:<22}  {status:>4}  {letter.attempts:>3}  {error}")


def masked_properties(properties: dict[str, Any], reveal: bool) -> dict[str, Any]:
    """Return the properties with personal data masked unless ``reveal`` is set."""
    if reveal:
        return dict(properties)
    shown: dict[str, Any] = {}
    for name, value in properties.items():
        mask = _MASKED_PROPERTIES.get(name)
        shown[name] = mask(str(value)) if mask is not None and value is not None else value
    return shown


def details(letter: DeadLetter, reveal: bool = False) -> dict[str, Any]:
    """Return everything about one dead letter as plain data, personal data masked by default."""
    item = letter.item
    id_value = item.id_value
    if not reveal and item.id_property in _MASKED_PROPERTIES and id_value is not None:
        id_value = _MASKED_PROPERTIES[item.id_property](id_value)
    return {
        "id": letter.id,
        "created_at": _time(letter.created_at),
        "replayed_at": _time(letter.replayed_at),
        "object": item.object,
        "key": item.key,
        "resource": item.resource,
        "event_id": item.event_id,
        "id_property": item.id_property,
        "id_value": id_value,
        "attempts": letter.attempts,
        "status": letter.status,
        "error": letter.error,
        "properties": masked_properties(item.properties, reveal),
    }


def replay(store: SyncStore, ids: Iterable[int]) -> tuple[list[int], list[int]]:
    """Replay dead letters by id; returns (replayed ids, unknown or already replayed ids)."""
    done: list[int] = []
    skipped: list[int] = []
    for letter_id in ids:
        (done if store.replay(letter_id) else skipped).append(letter_id)
    return done, skipped
