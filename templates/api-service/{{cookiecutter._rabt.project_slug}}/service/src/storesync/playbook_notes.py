"""Write the playbooks' timeline notes to HubSpot or Zoho CRM.

When a playbook marks a contact, the runner also puts a note in the outbox (object
``playbook_notes``) with the step, the recovery link and the discount code, so the
store's team sees on the contact's timeline what the contact was sent. HubSpot's
custom timeline events need a developer app, but a note needs only the contacts
write scope of the private app the service already uses. In Zoho CRM a note on the
contact shows in its Notes and timeline, with the ZohoCRM.modules.ALL scope the
service already has.

The main flusher leaves these rows alone. :class:`NoteWriter` creates each note once
the contact has a CRM id: in HubSpot with ``POST /crm/v3/objects/notes`` and an
association to the contact, in Zoho with ``POST /crm/v8/Notes`` naming the contact
in ``Parent_Id``. A note the CRM rejects goes to the dead letters.
"""

from __future__ import annotations

import html
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from .flusher import scrub_personal_data
from .hubspot import BatchRejected, HubSpotError
from .runtime.ratelimit import backoff_seconds
from .sync_store import OutboxItem, OutboxRow, SyncStore

log = logging.getLogger("storesync.playbook_notes")

NOTE_OBJECT = "playbook_notes"
# A note waits this long when its contact has no CRM id yet; that wait is no attempt.
CONTACT_WAIT_SECONDS = 60.0
MAX_ATTEMPTS = 8
BACKOFF_BASE_SECONDS = 5.0
BACKOFF_MAX_SECONDS = 600.0


class NoteClient(Protocol):
    """The CRM client call the note writer makes; HubSpot's and Zoho's clients have it."""

    def create_note(self, properties: Mapping[str, Any], contact_id: str) -> str:
        """Create a note on the contact ``contact_id`` and return the note's id."""

    def close(self) -> None:
        """Close the HTTP connections."""


def note_item(contact_key: str, marker: str, subject: str, at: str,
              lines: Mapping[str, Any], crm: str = "hubspot") -> OutboxItem:
    """Build the outbox row of one note, with the note's fields in the CRM's terms.

    Args:
        contact_key: The local contact the note belongs to.
        marker: The playbook step, such as ``abandoned_cart:cart_reminder_1``.
        subject: What the playbook ran for (checkout, order, contact), unique per step.
        at: The note's ISO 8601 time on the HubSpot timeline. Zoho dates a note by
            its creation, so a Zoho note does not carry it.
        lines: Label → value lines of the note, such as the recovery link.
        crm: ``hubspot`` (an HTML ``hs_note_body``) or ``zoho`` (``Note_Title`` and a
            plain-text ``Note_Content``).
    """
    filled = [(label, str(value)) for label, value in lines.items() if value]
    if crm == "zoho":
        properties = {"Note_Title": marker,
                      "Note_Content": "\n".join(f"{label}: {value}" for label, value in filled)
                      or marker}
    else:
        body = "".join(f"<p>{html.escape(label)}: {html.escape(value)}</p>"
                       for label, value in filled)
        properties = {"hs_timestamp": at,
                      "hs_note_body": f"<p>{html.escape(marker)}</p>{body}"}
    return OutboxItem(
        object=NOTE_OBJECT, key=f"{marker}|{subject}",
        properties={"contact_key": contact_key, **properties},
        event_id=f"playbook:{marker}", resource=f"contacts:{contact_key}")


class NoteWriter:
    """Creates the notes waiting in the outbox; ``flush`` is one pass."""

    def __init__(self, store: SyncStore, client: NoteClient,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.client = client
        self.clock = clock

    def flush(self, limit: int = 50) -> int:
        """Create the due notes whose contacts have CRM ids; return how many were made.

        A note whose key already has a CRM id was written before, so it is not sent
        again when its step is queued a second time.
        """
        now = self.clock()
        rows = self.store.due(NOTE_OBJECT, now, limit)
        if not rows:
            return 0
        contacts = [str(row.item.properties.get("contact_key")) for row in rows]
        ids = self.store.crm_ids("contacts", contacts)
        written = self.store.crm_ids(NOTE_OBJECT, [row.item.key for row in rows])
        synced: list[tuple[OutboxRow, str | None]] = []
        retried: list[tuple[OutboxRow, float, str, bool]] = []
        dead: list[tuple[OutboxRow, int | None, str]] = []
        created = 0
        for row, contact in zip(rows, contacts, strict=True):
            if row.item.key in written:
                synced.append((row, written[row.item.key]))
                continue
            contact_id = ids.get(contact)
            if contact_id is None:
                retried.append((row, now + CONTACT_WAIT_SECONDS,
                                "the contact has no CRM id yet", False))
                continue
            properties = {name: value for name, value in row.item.properties.items()
                          if name != "contact_key"}
            try:
                synced.append((row, self.client.create_note(properties, contact_id)))
                created += 1
            except BatchRejected as error:
                dead.append((row, error.status,
                             f"the CRM rejected the note: {scrub_personal_data(str(error))}"))
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
        return created
