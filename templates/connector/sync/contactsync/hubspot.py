"""Write contacts to HubSpot with ``POST /crm/v3/objects/contacts/batch/upsert``.

A contact with an email is upserted with ``idProperty`` email. One with a phone and
no email is upserted by the unique phone property of ``crm/desired-state.yaml``
(``hasUniqueValue: true``), and never with an empty email. A 207 Multi-Status
response lists the failed inputs by their id value, so each failure is matched back
to its contact.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from .crm import MAX_BATCH, Outcome, contact_fields, masked_keys, phone_targets, target_of
from .http import JsonClient
from .logs import JsonLog
from .runtime.ratelimit import TokenBucket
from .settings import HubSpotSettings
from .store import Contact

UPSERT_PATH = "/crm/v3/objects/contacts/batch/upsert"
RATE_WINDOW_SECONDS = 10.0
# HubSpot's DAILY limit resets at midnight in the account's time zone: waiting is pointless.
_NO_RETRY_POLICIES = frozenset({"DAILY"})


def unique_phone_property(mapping: Mapping[str, Any],
                          desired_state: Mapping[str, Any]) -> str | None:
    """Return the contact property that contains the phone and has unique values, if any."""
    unique = {str(item.get("name")) for item in desired_state.get("properties") or []
              if isinstance(item, Mapping) and item.get("object") == "contacts"
              and item.get("hasUniqueValue")}
    for spec in contact_fields(mapping):
        target = str(spec.get("target"))
        if spec.get("transform") == "phone_e164_sa" and spec.get("unique") and target in unique:
            return target
    return None


def _daily_limit(response: httpx.Response) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("policyName") in _NO_RETRY_POLICIES


class HubSpotWriter:
    """Upserts contacts into one HubSpot account."""

    label = "HubSpot"

    def __init__(self, settings: HubSpotSettings, mapping: Mapping[str, Any],
                 desired_state: Mapping[str, Any], log: JsonLog) -> None:
        headers = {"Authorization": f"Bearer {settings.access_token}"}
        burst = max(1, settings.rate_limit_per_10s // 10)
        limiter = TokenBucket.for_rolling_window(settings.rate_limit_per_10s,
                                                 RATE_WINDOW_SECONDS, burst)
        self.client = JsonClient("hubspot", settings.base_url, log, auth=lambda: (headers, {}),
                                 limiter=limiter, give_up=_daily_limit)
        self.email = target_of(mapping, "email") or "email"
        self.phone = unique_phone_property(mapping, desired_state)
        self.phones = phone_targets(mapping)
        # HubSpot's API has no such switch: workflows enrol on their own triggers.
        self.run_workflows = True

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()

    def _input(self, contact: Contact) -> dict[str, Any] | None:
        properties = {name: str(value) for name, value in contact.properties.items()}
        if properties.get(self.email):
            key, value = self.email, properties[self.email]
        elif self.phone is not None and properties.get(self.phone):
            key, value = self.phone, properties[self.phone]
        else:
            return None
        return {"id": value.casefold() if key == self.email else value, "idProperty": key,
                "properties": properties}

    def write(self, contacts: list[Contact]) -> list[Outcome]:
        """Upsert up to 100 contacts and return one outcome per contact.

        Raises:
            HttpFailure: HubSpot rejected the whole call or kept failing.
        """
        if len(contacts) > MAX_BATCH:
            raise ValueError(f"at most {MAX_BATCH} contacts per call, got {len(contacts)}")
        outcomes: list[Outcome] = []
        inputs: list[dict[str, Any]] = []
        by_id: dict[str, Contact] = {}
        for contact in contacts:
            item = self._input(contact)
            if item is None:
                reason = "no email" if self.phone else "no email, and crm/desired-state.yaml " \
                    "has no unique phone property to upsert by"
                outcomes.append(Outcome(contact, "skipped", "no_identity", reason))
            elif item["id"] in by_id:
                outcomes.append(Outcome(contact, "skipped", "duplicate_in_batch",
                                        "another contact of this run has the same key"))
            else:
                by_id[item["id"]] = contact
                inputs.append(item)
        if inputs:
            response = self.client.request("POST", UPSERT_PATH, body={"inputs": inputs})
            outcomes += self._read(response.json(), by_id)
        return outcomes

    def _read(self, body: Any, by_id: dict[str, Contact]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        pending = dict(by_id)
        body = body if isinstance(body, dict) else {}
        for error in body.get("errors") or []:
            ids = (error.get("context") or {}).get("ids") or []
            for value in ids:
                contact = pending.pop(str(value), None) or pending.pop(str(value).casefold(), None)
                if contact is not None:
                    outcomes.append(Outcome(contact, "failed", str(error.get("category") or ""),
                                            str(error.get("message") or ""), retry=True))
        for result in body.get("results") or []:
            properties = result.get("properties") or {}
            for key in (self.email, self.phone):
                value = str(properties.get(key) or "") if key else ""
                contact = pending.pop(value, None) or pending.pop(value.casefold(), None)
                if contact is not None:
                    action = "created" if result.get("new") else "updated"
                    outcomes.append(Outcome(contact, action))
                    break
        for contact in pending.values():
            outcomes.append(Outcome(contact, "failed", "no_result",
                                    "HubSpot returned no result for this contact", retry=True))
        return outcomes

    def keys(self, contact: Contact) -> dict[str, str]:
        """Return the contact's masked email and phone for a log line."""
        return masked_keys(contact.properties, self.email, self.phones)
