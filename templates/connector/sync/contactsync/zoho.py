"""Write contacts to Zoho CRM with ``POST /crm/v8/Contacts/upsert``.

The access token comes from the refresh token at the accounts server of the
configured data centre, and calls go to the ``api_domain`` the token response names
(``https://www.zohoapis.sa`` for the Saudi data centre), with the header
``Authorization: Zoho-oauthtoken <token>``. A 401 refreshes the token once.

``duplicate_check_fields`` lists the identity keys of ``integration/mapping.yaml``
that Zoho can match on: the module's own duplicate check field (Email for Contacts)
and the fields ``crm/desired-state.yaml`` marks unique. A contact with none of them
(a guest with only a phone) is looked up by phone with the search API and updated
when found, so each run does not add it again.

``trigger`` is ``["workflow"]`` on the daily runs, so the org's workflow rules (the
lifecycle rules of docs/crm-workflows.md) run for each contact the sync changes. A
run that reads the whole store (the first run, or ``--since all``) sends an empty
``trigger`` by default, so a bulk load does not fire those rules at every contact;
``--workflows`` chooses otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .crm import MAX_BATCH, Outcome, masked_keys, phone_targets, target_of
from .errors import InvalidInput
from .http import JsonClient
from .logs import JsonLog
from .runtime.ratelimit import TokenBucket
from .settings import ZohoSettings
from .store import Contact

API = "/crm/v8"
MODULE = "Contacts"
# Contacts' system-defined duplicate check field (Zoho's upsert documentation).
SYSTEM_DUPLICATE_CHECK_FIELD = "Email"
_BAD_TOKEN_ERRORS = frozenset({"invalid_code", "invalid_client", "invalid_token"})
# Zoho's trigger values: workflow rules only, not approvals or blueprints.
WORKFLOW_TRIGGER = ["workflow"]


def duplicate_check_fields(mapping: Mapping[str, Any],
                           desired_state: Mapping[str, Any]) -> list[str]:
    """Return the identity targets Zoho can match Contacts on, in the mapping's order."""
    unique = {SYSTEM_DUPLICATE_CHECK_FIELD}
    for module in desired_state.get("modules") or []:
        if isinstance(module, Mapping) and module.get("module") == MODULE:
            unique |= {str(item.get("api_name")) for item in module.get("fields") or []
                       if isinstance(item, Mapping) and item.get("unique")}
    identity = mapping.get("identity") or {}
    order = identity.get("match_order") if isinstance(identity, Mapping) else None
    targets = [str(entry.get("target")) for entry in order or [] if isinstance(entry, Mapping)]
    return [target for target in targets if target in unique]


class ZohoWriter:
    """Upserts contacts into one Zoho CRM org."""

    label = "Zoho CRM"

    def __init__(self, settings: ZohoSettings, mapping: Mapping[str, Any],
                 desired_state: Mapping[str, Any], log: JsonLog) -> None:
        self.settings = settings
        self.log = log
        self.token = ""
        self.accounts = JsonClient("zoho-accounts", settings.accounts_url, log)
        api_domain = self._refresh()
        limiter = TokenBucket(settings.calls_per_minute, 60.0)
        self.client = JsonClient(
            "zoho", api_domain, log, limiter=limiter, refresh_auth=self._refresh_again,
            auth=lambda: ({"Authorization": f"Zoho-oauthtoken {self.token}"}, {}))
        self.check_fields = duplicate_check_fields(mapping, desired_state)
        self.email = target_of(mapping, "email")
        self.phone = target_of(mapping, "phone")
        self.phones = phone_targets(mapping)
        # Whether writes fire the org's workflow rules; the command line sets it per run.
        self.run_workflows = True

    def close(self) -> None:
        """Close both connection pools."""
        self.accounts.close()
        if hasattr(self, "client"):
            self.client.close()

    def _refresh(self) -> str:
        """Get a new access token and return the API domain Zoho names for the org.

        Raises:
            InvalidInput: Zoho rejected the client or the refresh token.
        """
        form = {"grant_type": "refresh_token", "client_id": self.settings.client_id,
                "client_secret": self.settings.client_secret,
                "refresh_token": self.settings.refresh_token}
        response = self.accounts.request("POST", "/oauth/v2/token", form=form, accept=(400,))
        data = response.json() if response.content else {}
        if not isinstance(data, dict) or "access_token" not in data:
            code = str(data.get("error", "unknown")) if isinstance(data, dict) else "unknown"
            hint = (f" (a client or token of another data centre than ZOHO_DC={self.settings.dc} "
                    "gives this too)") if code in _BAD_TOKEN_ERRORS else ""
            raise InvalidInput(f"Zoho Accounts rejected the refresh token: {code}{hint}",
                               "check ZOHO_CLIENT_ID, ZOHO_CLIENT_SECRET, ZOHO_REFRESH_TOKEN "
                               "and ZOHO_DC")
        self.token = str(data["access_token"])
        return str(data.get("api_domain") or "https://www.zohoapis.com")

    def _refresh_again(self) -> bool:
        self._refresh()
        return True

    def _find_by_phone(self, phone: str) -> str | None:
        criteria = f"({self.phone}:equals:{phone})"
        response = self.client.request("GET", f"{API}/{MODULE}/search",
                                       params={"criteria": criteria})
        body = response.json() if response.status_code == 200 and response.content else {}
        records = body.get("data") if isinstance(body, dict) else None
        if isinstance(records, list) and records and isinstance(records[0], dict):
            return str(records[0].get("id"))
        return None

    def write(self, contacts: list[Contact]) -> list[Outcome]:
        """Upsert up to 100 contacts and return one outcome per contact.

        Raises:
            HttpFailure: Zoho rejected the whole call or kept failing.
        """
        if len(contacts) > MAX_BATCH:
            raise ValueError(f"at most {MAX_BATCH} contacts per call, got {len(contacts)}")
        upserts: list[tuple[Contact, dict[str, Any]]] = []
        updates: list[tuple[Contact, dict[str, Any]]] = []
        for contact in contacts:
            record = dict(contact.properties)
            keyless = not any(record.get(name) for name in self.check_fields)
            phone = record.get(self.phone) if self.phone else None
            found = self._find_by_phone(str(phone)) if keyless and phone else None
            if found is not None:
                updates.append((contact, {**record, "id": found}))
            else:
                upserts.append((contact, record))
        outcomes: list[Outcome] = []
        if upserts:
            body = {"data": [record for _, record in upserts],
                    "duplicate_check_fields": self.check_fields, "trigger": self._trigger()}
            outcomes += self._send("POST", f"{API}/{MODULE}/upsert", body, upserts)
        if updates:
            body = {"data": [record for _, record in updates], "trigger": self._trigger()}
            outcomes += self._send("PUT", f"{API}/{MODULE}", body, updates)
        return outcomes

    def _trigger(self) -> list[str]:
        return list(WORKFLOW_TRIGGER) if self.run_workflows else []

    def _send(self, method: str, path: str, body: dict[str, Any],
              items: list[tuple[Contact, dict[str, Any]]]) -> list[Outcome]:
        # Zoho returns 400 when every record failed, with the per-record errors in data.
        response = self.client.request(method, path, body=body, accept=(400,))
        data = response.json().get("data") if response.content else None
        if response.status_code == 400 and not isinstance(data, list):
            raise self.client.failure(method, path, response)
        results = data if isinstance(data, list) else []
        outcomes = []
        for index, (contact, _) in enumerate(items):
            result = results[index] if index < len(results) else {}
            outcomes.append(_outcome(contact, result if isinstance(result, dict) else {}))
        return outcomes

    def keys(self, contact: Contact) -> dict[str, str]:
        """Return the contact's masked email and phone for a log line."""
        return masked_keys(contact.properties, self.email, self.phones)


def _outcome(contact: Contact, result: Mapping[str, Any]) -> Outcome:
    if result.get("status") == "success":
        action = "created" if result.get("action") == "insert" else "updated"
        if "action" not in result and result.get("message") == "record added":
            action = "created"
        return Outcome(contact, action)
    details = result.get("details")
    api_name = details.get("api_name") if isinstance(details, Mapping) else None
    field = f" (field {api_name})" if api_name else ""
    code = str(result.get("code") or "no_result")
    message = str(result.get("message") or "Zoho returned no result for this contact")
    return Outcome(contact, "failed", code, message + field, retry=True)
