"""The outcome a CRM writer returns for each contact, and the writer interface."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from .logs import mask_email, mask_phone
from .store import Contact

# Contacts per upsert call: HubSpot's batch endpoints and Zoho's upsert both take 100.
MAX_BATCH = 100


@dataclass(frozen=True)
class Outcome:
    """The result for one contact: ``created``, ``updated``, ``failed`` or ``skipped``.

    ``retry`` is True when the contact goes on the retry list for the next run.
    """

    contact: Contact
    action: str
    code: str = ""
    message: str = ""
    retry: bool = False


class CrmWriter(Protocol):
    """Writes contacts to one CRM account."""

    label: str
    # Whether writes fire the CRM's workflows, where the API lets the caller choose.
    run_workflows: bool

    def write(self, contacts: list[Contact]) -> list[Outcome]:
        """Upsert up to ``MAX_BATCH`` contacts and return one outcome per contact."""
        ...

    def keys(self, contact: Contact) -> dict[str, str]:
        """Return the contact's masked email and phone for a log line."""
        ...

    def close(self) -> None:
        """Close the connections."""
        ...


def masked_keys(properties: Mapping[str, Any], email_key: str | None,
                phone_keys: tuple[str, ...]) -> dict[str, str]:
    """Return the contact's email and phone, masked, for a log line."""
    keys: dict[str, str] = {}
    if email_key and properties.get(email_key):
        keys["email"] = mask_email(str(properties[email_key]))
    for name in phone_keys:
        if properties.get(name):
            keys["phone"] = mask_phone(str(properties[name]))
            break
    return keys


def contact_fields(mapping: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Return the field specs of the contact entity in ``integration/mapping.yaml``."""
    entities = mapping.get("entities") or {}
    contact = entities.get("contact") if isinstance(entities, Mapping) else None
    fields = contact.get("fields") if isinstance(contact, Mapping) else None
    return [spec for spec in fields or [] if isinstance(spec, Mapping)]


def target_of(mapping: Mapping[str, Any], name: str) -> str | None:
    """Return the CRM property of the contact field called ``name``."""
    for spec in contact_fields(mapping):
        if spec.get("name") == name and spec.get("target"):
            return str(spec["target"])
    return None


def phone_targets(mapping: Mapping[str, Any]) -> tuple[str, ...]:
    """Return every CRM property the contact's phone is written to."""
    return tuple(str(spec["target"]) for spec in contact_fields(mapping)
                 if spec.get("transform") == "phone_e164_sa" and spec.get("target"))
