"""Write the playbooks' timeline notes to HubSpot.

When a playbook marks a contact, the runner also puts a note in the outbox (object
``playbook_notes``) with the step, the recovery link and the discount code, so the
store's team sees on the contact's timeline what the contact was sent. HubSpot's
custom timeline events need a developer app, but a note needs only the contacts
write scope of the private app the service already uses.

The main flusher leaves these rows alone. :class:`NoteWriter` creates each note once
the contact has a HubSpot id, with ``POST /crm/v3/objects/notes`` and an association
to the contact, and moves a note HubSpot rejects to the dead letters.
"""

from __future__ import annotations

import html
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from .flusher import scrub_personal_data
from .hubspot import BatchRejected, HubSpotClient, HubSpotError
from .runtime.ratelimit import backoff_seconds
from .sync_store import OutboxItem, OutboxRow, SyncStore

log = logging.getLogger("storesync.playbook_notes")

NOTE_OBJECT = "playbook_notes"
# A note waits this long when its contact has no HubSpot id yet; that wait is no attempt.
CONTACT_WAIT_SECONDS = 60.0
MAX_ATTEMPTS = 8
BACKOFF_BASE_SECONDS = 5.0
BACKOFF_MAX_SECONDS = 600.0


def note_item(contact_key: str, marker: str, subject: str, at: str,
              lines: Mapping[str, Any]) -> OutboxItem:
    """Build the outbox row of one note.

    Args:
        contact_key: The local contact the note belongs to.
        marker: The playbook step, such as ``abandoned_cart:cart_reminder_1``.
        subject: What the playbook ran for (checkout, order, contact), unique per step.
        at: The note's ISO 8601 time on the timeline.
        lines: Label → value lines of the note, such as the recovery link.
    """
    body = "".join(f"<p>{html.escape(label)}: {html.escape(str(value))}</p>"
                   for label, value in lines.items() if value)
    return OutboxItem(
        object=NOTE_OBJECT, key=f"{marker}|{subject}",
        properties={"contact_key": contact_key, "hs_timestamp": at,
                    "hs_note_body": f"<p>{html.escape(marker)}</p>{body}"},
        event_id=f"playbook:{marker}", resource=f"contacts:{contact_key}")


class NoteWriter:
    """Creates the notes waiting in the outbox; ``flush`` is one pass."""

    def __init__(self, store: SyncStore, client: HubSpotClient,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.client = client
        self.clock = clock

    def flush(self, limit: int = 50) -> int:
        """Create the due notes whose contacts have HubSpot ids; return how many were made."""
        now = self.clock()
        rows = self.store.due(NOTE_OBJECT, now, limit)
        if not rows:
            return 0
        contacts = [str(row.item.properties.get("contact_key")) for row in rows]
        ids = self.store.crm_ids("contacts", contacts)
        synced: list[tuple[OutboxRow, str | None]] = []
        retried: list[tuple[OutboxRow, float, str, bool]] = []
        dead: list[tuple[OutboxRow, int | None, str]] = []
        for row, contact in zip(rows, contacts, strict=True):
            contact_id = ids.get(contact)
            if contact_id is None:
                retried.append((row, now + CONTACT_WAIT_SECONDS,
                                "the contact has no HubSpot id yet", False))
                continue
            properties = {name: value for name, value in row.item.properties.items()
                          if name != "contact_key"}
            try:
                synced.append((row, self.client.create_note(properties, contact_id)))
            except BatchRejected as error:
                dead.append((row, error.status,
                             f"HubSpot rejected the note: {scrub_personal_data(str(error))}"))
            except HubSpotError as error:
                if row.attempts + 1 >= MAX_ATTEMPTS:
                    dead.append((row, error.status,
                                 f"no attempt succeeded: {scrub_personal_data(str(error))}"))
                else:
                    wait = backoff_seconds(row.attempts + 1, BACKOFF_BASE_SECONDS,
                                           BACKOFF_MAX_SECONDS)
                    retried.append((row, now + wait, str(error), True))
        for row, status, reason in dead:
            log.warning("playbook note moved to the dead letters", extra={
                "resource": row.item.resource, "status": status, "error": reason})
        self.store.finish_batch(synced, retried, dead)
        return len(synced)
