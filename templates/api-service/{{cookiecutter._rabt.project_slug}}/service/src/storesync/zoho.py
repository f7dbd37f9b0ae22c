"""Zoho CRM API client for the flusher: upserts, updates and lookups with per-record results.

Endpoints (Zoho CRM API v8, on the ``api_domain`` of the access token):

* ``POST /crm/v8/{module}/upsert`` with ``data`` (up to 100 records),
  ``duplicate_check_fields`` (the field each record is matched by) and ``trigger``;
* ``PUT /crm/v8/{module}`` with ``data`` of records carrying their Zoho ``id``, for
  updates and for lookups such as a deal's ``Contact_Name``;
* ``POST /crm/v8/Sales_Orders`` for new sales orders;
* ``POST /crm/v8/Notes`` for the playbooks' notes on contacts;
* ``GET /crm/v8/settings/layouts`` and ``/settings/pipeline`` for the deal pipelines.

Every record gets its own entry in the response's ``data``, in the order sent, with
``code``, ``details`` and ``message``. The HTTP status is 200, 201, 202 or 207, or
400 when no record was written. The client speaks the flusher's terms
(:class:`storesync.hubspot.BatchResult`, the same error classes), so one flusher
drives both CRMs: a written record comes back with its Zoho id, and a failed one as an
error naming Zoho's code, the field (``details.api_name``) and the value masked.

``trigger: []`` keeps the org's workflows, approvals and blueprints from running on
every synced record; ``ZOHO_TRIGGERS`` turns chosen ones back on.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx

from . import metrics
from .hubspot import (
    BATCH_LIMIT,
    NOT_FOUND_CATEGORY,
    AuthFailed,
    BatchRejected,
    BatchResult,
    CrmUnavailable,
)
from .logs import mask_email, mask_phone
from .runtime.ratelimit import backoff_seconds
from .zoho_auth import ZohoTokens
from .zoho_credits import CREDITS_REMAINING_HEADER, CreditBudget, SlotPool, is_heavy, write_cost
from .zoho_values import to_zoho

log = logging.getLogger("storesync.zoho")

API = "/crm/v8"
# The flusher's object names and the Zoho modules they are written to.
MODULES = {
    "contacts": "Contacts",
    "deals": "Deals",
    "products": "Products",
    "tickets": "Cases",
    "sales_orders": "Sales_Orders",
}
# Consecutive 429s for the concurrency limit before a call counts as a failed attempt.
MAX_BUSY_RETRIES = 6
MAX_BUSY_WAIT_SECONDS = 8.0
INVALID_TOKEN = "INVALID_TOKEN"
_PHONE = re.compile(r"\+?[\d\s-]{8,}")


class ApiDomainUnreachable(CrmUnavailable):
    """The token's ``api_domain`` refused the connection or its name did not resolve."""


def mask_value(value: Any) -> str:
    """Return a value as a dead letter may show it: emails, phones and text masked.

    Numbers, booleans and lookup ids are not personal data and stay as they are.
    """
    if value is None:
        return "empty"
    if isinstance(value, bool | int | float):
        return str(value)
    if isinstance(value, Mapping):
        return f"id {value.get('id')}"
    text = str(value)
    if "@" in text:
        return mask_email(text)
    if _PHONE.fullmatch(text.strip()):
        return mask_phone(text)
    return f"{text[:1]}*** ({len(text)} characters)" if text else "empty"


def record_error(entry: Mapping[str, Any], record: Mapping[str, Any]) -> dict[str, Any]:
    """Turn one failed record of Zoho's ``data`` into a batch error naming field and value.

    The value is read from the record sent, because Zoho's error names only the field.
    """
    code = str(entry.get("code") or "ERROR")
    found = entry.get("details")
    details: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    text = str(entry.get("message") or "").strip() or code.lower()
    field = details.get("api_name")
    if field:
        text += f" in {field} (value {mask_value(record.get(str(field)))})"
    duplicate = details.get("duplicate_record")
    if isinstance(duplicate, Mapping) and duplicate.get("id"):
        text += f"; Zoho record {duplicate['id']} already holds it"
    category = NOT_FOUND_CATEGORY if code == "INVALID_DATA" and field == "id" else code
    return {"category": category, "message": text, "code": code, "field": field}


def _body(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {"message": response.text[:500]}
    return data if isinstance(data, dict) else {"message": str(data)[:500]}


def _reported_remaining(response: httpx.Response) -> int | None:
    value = response.headers.get(CREDITS_REMAINING_HEADER)
    return int(value) if value is not None and value.strip().isdigit() else None


class ZohoClient:
    """Synchronous Zoho CRM client for the calls the flusher makes; safe across threads."""

    def __init__(self, tokens: ZohoTokens, budget: CreditBudget, slots: SlotPool, *,
                 triggers: Sequence[str] = (), timeout_seconds: float = 10.0,
                 transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        """Create the client; ``transport`` replaces the network in tests."""
        self.tokens = tokens
        self.budget = budget
        self.slots = slots
        self.triggers = list(triggers)
        self._sleep = sleep
        self._http = httpx.Client(timeout=httpx.Timeout(timeout_seconds), transport=transport)
        self._count_lock = threading.Lock()
        self.calls = 0
        self.rate_limited_calls = 0
        self._field_types: dict[str, dict[str, str]] = {}

    def close(self) -> None:
        """Close the HTTP connections of the client and of its token source.

        A budget and slots shared in Redis close their Redis connections too.
        """
        self._http.close()
        self.tokens.close()
        for part in (self.budget, self.slots):
            close = getattr(part, "close", None)
            if close is not None:
                close()

    # --- the flusher's calls -----------------------------------------------------------

    def batch_upsert(self, obj: str, inputs: Sequence[Mapping[str, Any]]) -> BatchResult:
        """Create or update up to 100 records, each matched by its ``idProperty`` value.

        All inputs of one call share one ``idProperty``, which becomes
        ``duplicate_check_fields``; results carry it so the flusher can match them.
        """
        _check_size(inputs)
        field = str(inputs[0]["idProperty"])
        types = self.field_types(obj)
        records = [to_zoho({**item["properties"], field: item["id"]}, types) for item in inputs]
        status, entries = self._write(f"{obj}.upsert", "POST", f"{API}/{MODULES[obj]}/upsert",
                                      records, {"duplicate_check_fields": [field]})
        results, errors = [], []
        for item, record, entry in zip(inputs, records, entries, strict=False):
            if entry.get("status") == "success":
                results.append({"id": str(entry["details"]["id"]),
                                "properties": {field: item["id"]}})
            else:
                errors.append({**record_error(entry, record), "context": {"ids": [item["id"]]}})
        return BatchResult(status, results, errors)

    def batch_update(self, obj: str, inputs: Sequence[Mapping[str, Any]]) -> BatchResult:
        """Update up to 100 records by their Zoho ids."""
        _check_size(inputs)
        types = self.field_types(obj)
        records = [to_zoho({**item["properties"], "id": str(item["id"])}, types)
                   for item in inputs]
        status, entries = self._write(f"{obj}.update", "PUT", f"{API}/{MODULES[obj]}", records)
        results, errors = [], []
        for record, entry in zip(records, entries, strict=False):
            if entry.get("status") == "success":
                results.append({"id": str(entry["details"]["id"])})
            else:
                errors.append({**record_error(entry, record), "context": {"ids": [record["id"]]}})
        return BatchResult(status, results, errors)

    def create_associations(self, from_obj: str, to_obj: str,
                            inputs: Sequence[Mapping[str, Any]]) -> BatchResult:
        """Point a lookup field of up to 100 records at other records.

        Each input is ``{"from": {"id"}, "to": {"id"}, "lookup": field}``: a deal's
        ``Contact_Name`` takes the contact's id, for example.
        """
        _check_size(inputs)
        records = [{"id": str(item["from"]["id"]),
                    str(item["lookup"]): {"id": str(item["to"]["id"])}} for item in inputs]
        status, entries = self._write(f"{from_obj}.link_{to_obj}", "PUT",
                                      f"{API}/{MODULES[from_obj]}", records)
        results, errors = [], []
        for item, record, entry in zip(inputs, records, entries, strict=False):
            pair = {"fromObjectId": str(item["from"]["id"]), "toObjectId": str(item["to"]["id"])}
            if entry.get("status") == "success":
                results.append(pair)
            else:
                errors.append({**record_error(entry, record),
                               "context": {"ids": list(pair.values())}})
        return BatchResult(status, results, errors)

    def insert(self, obj: str, records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Insert up to 100 records; return Zoho's entry for each, in order."""
        _check_size(records)
        _, entries = self._write(f"{obj}.insert", "POST", f"{API}/{MODULES[obj]}",
                                 [dict(record) for record in records])
        return entries

    def create_note(self, properties: Mapping[str, Any], contact_id: str) -> str:
        """Create a note on a contact and return the note's id.

        ``properties`` are the note's fields (``Note_Title``, ``Note_Content``). The
        contact goes in ``Parent_Id`` as ``{"module": {"api_name"}, "id"}``, the shape
        of Zoho CRM API v5 and later.

        Raises:
            BatchRejected: Zoho rejected the note, with the code and the field.
        """
        note = {**properties, "Parent_Id": {"module": {"api_name": MODULES["contacts"]},
                                            "id": str(contact_id)}}
        status, data = self._request("notes.create", "POST", f"{API}/Notes", {"data": [note]},
                                     cost=write_cost(1), heavy=False)
        entries = [entry for entry in data.get("data") or [] if isinstance(entry, dict)]
        if len(entries) != 1:
            raise CrmUnavailable(f"Zoho returned {len(entries)} results for 1 note on "
                                 "notes.create", status, data)
        if entries[0].get("status") == "success":
            return str(entries[0]["details"]["id"])
        error = record_error(entries[0], note)
        raise BatchRejected(f"{error['category']}: {error['message']}", status,
                            {"category": error["category"], "message": error["message"]})

    def field_types(self, obj: str) -> dict[str, str]:
        """Return the data type of each field of ``obj``'s module, read once per module.

        A module whose fields cannot be read gets no conversion; Zoho then names any
        value of the wrong type in its per-record error.
        """
        module = MODULES[obj]
        with self._count_lock:
            known = self._field_types.get(module)
        if known is not None:
            return known
        try:
            data = self._call(f"{obj}.fields", "GET", f"{API}/settings/fields",
                              params={"module": module})
        except BatchRejected:
            data = {}
        types = {str(entry["api_name"]): str(entry.get("data_type"))
                 for entry in data.get("fields") or []
                 if isinstance(entry, dict) and "api_name" in entry}
        with self._count_lock:
            self._field_types[module] = types
        return types

    def pipelines(self, obj: str) -> list[dict[str, Any]]:
        """Return the pipelines of the Deals layout with their stages, HubSpot-shaped.

        A Zoho deal names its pipeline and stage by their display values, so those are
        the ids the flusher writes.
        """
        if obj != "deals":
            return []
        layouts = self._call(f"{obj}.layouts", "GET", f"{API}/settings/layouts",
                             params={"module": "Deals"})
        layout_list = layouts.get("layouts") or []
        if not layout_list:
            return []
        try:
            data = self._call(f"{obj}.pipelines", "GET", f"{API}/settings/pipeline",
                              params={"layout_id": str(layout_list[0]["id"])})
        except BatchRejected as error:
            # NOTE: the response of an org with pipelines switched off is not confirmed;
            # any 4xx is read as "no pipelines", which the flusher reports with the fix.
            log.warning("Zoho returned no deal pipelines: %s", error)
            return []
        found = []
        for pipeline in data.get("pipeline") or []:
            stages = [{"id": stage["display_value"], "label": stage["display_value"]}
                      for stage in pipeline.get("maps") or []]
            found.append({"id": pipeline["display_value"], "label": pipeline["display_value"],
                          "stages": stages})
        return found

    # --- consent and privacy ---------------------------------------------------------

    def read_records(self, obj: str, ids: Sequence[str],
                     fields: Sequence[str]) -> list[dict[str, Any]]:
        """Return ``fields`` of up to 100 records by their Zoho ids; unknown ids are left out.

        NOTE: the ``ids`` parameter of Get Records is taken from public client code and
        the older API's ``idlist`` (up to 100 ids); it is not confirmed on v8.
        """
        _check_size(ids)
        data = self._call(f"{obj}.read", "GET", f"{API}/{MODULES[obj]}",
                          params={"ids": ",".join(ids), "fields": ",".join(fields)})
        return [entry for entry in data.get("data") or [] if isinstance(entry, dict)]

    def search_ids(self, obj: str, email: str) -> list[str]:
        """Return the ids of the records whose email fields hold ``email``."""
        data = self._request(f"{obj}.search", "GET", f"{API}/{MODULES[obj]}/search", None,
                             cost=1, heavy=True, params={"email": email})[1]
        return [str(entry["id"]) for entry in data.get("data") or []
                if isinstance(entry, dict) and entry.get("id")]

    def delete_records(self, obj: str, ids: Sequence[str]) -> dict[str, str]:
        """Delete up to 100 records; return each id's outcome, ``deleted`` or ``not_found``.

        Zoho moves deleted records to its recycle bin, where the org's administrators
        can still restore them until Zoho purges the bin. ``wf_trigger=false`` keeps
        the org's workflows from running on the deletion.

        Raises:
            BatchRejected: Zoho refused a record for another reason than an unknown id.
        """
        _check_size(ids)
        status, data = self._request(
            f"{obj}.delete", "DELETE", f"{API}/{MODULES[obj]}", None,
            cost=write_cost(len(ids)), heavy=is_heavy(len(ids)),
            params={"ids": ",".join(ids), "wf_trigger": "false"})
        outcomes: dict[str, str] = {}
        for record_id, entry in zip(ids, data.get("data") or [], strict=False):
            if not isinstance(entry, dict):
                continue
            if entry.get("status") == "success":
                outcomes[record_id] = "deleted"
            elif entry.get("code") == "INVALID_DATA":
                # NOTE: an id that no longer exists is read as already deleted; the
                # error code is the stand-in's and not confirmed on a live org.
                outcomes[record_id] = "not_found"
            else:
                error = record_error(entry, {"id": record_id})
                raise BatchRejected(error["message"], status, error)
        return outcomes

    # --- plumbing ----------------------------------------------------------------------

    def _write(self, operation: str, method: str, path: str, records: list[dict[str, Any]],
               extra: Mapping[str, Any] | None = None) -> tuple[int, list[dict[str, Any]]]:
        """Send one write and return its status and one entry per record."""
        body = {"data": records, "trigger": self.triggers, **(extra or {})}
        status, data = self._request(operation, method, path, body,
                                     cost=write_cost(len(records)),
                                     heavy=is_heavy(len(records)))
        entries = [entry for entry in data.get("data") or [] if isinstance(entry, dict)]
        if len(entries) != len(records):
            raise CrmUnavailable(f"Zoho answered {operation} with {len(entries)} results for "
                                 f"{len(records)} records", status, data)
        return status, entries

    def _call(self, operation: str, method: str, path: str,
              params: Mapping[str, str] | None = None) -> dict[str, Any]:
        return self._request(operation, method, path, None, cost=1, heavy=False,
                             params=params)[1]

    def _request(self, operation: str, method: str, path: str, json: Any, *, cost: int,
                 heavy: bool, params: Mapping[str, str] | None = None
                 ) -> tuple[int, dict[str, Any]]:
        """Send one call: refresh the token once on 401 INVALID_TOKEN, wait out busy 429s.

        A cached token whose ``api_domain`` cannot be reached is refreshed once too,
        because the refresh returns the account's current API domain.
        """
        token_retried = False
        busy = 0
        while True:
            self.budget.before_call(cost)
            token = self.tokens.current()
            try:
                with self.slots.hold(heavy):
                    response = self._send(operation, method, token.api_domain + path, json,
                                          token.value, params)
            except ApiDomainUnreachable:
                if token_retried or not self.tokens.reject_unreachable(token):
                    raise
                token_retried = True
                continue
            body = _body(response)
            code = str(body.get("code") or "")
            remaining = _reported_remaining(response)
            status = response.status_code
            if status == 401 and code == INVALID_TOKEN and not token_retried:
                # The token expired early or was revoked: one refresh, one retry.
                self.tokens.reject(token.value)
                token_retried = True
                continue
            if status == 429:
                busy += 1
                self._after_429(operation, body, remaining, busy)
                continue
            self.budget.spend(cost, remaining)
            return status, self._checked(operation, status, body, code)

    def _checked(self, operation: str, status: int, body: dict[str, Any],
                 code: str) -> dict[str, Any]:
        """Return the body of a call Zoho answered, or raise the error its status means."""
        message = str(body.get("message") or code or status)
        if status < 300 or (status == 400 and isinstance(body.get("data"), list)):
            return body
        if status == 408 or status >= 500:
            raise CrmUnavailable(f"Zoho returned {status} on {operation}: {message}", status,
                                 body)
        if status in (401, 403):
            raise AuthFailed(f"Zoho refused the access token with {status} {code} on "
                             f"{operation}: {message}. Check the scopes of the Zoho client "
                             "(ZohoCRM.modules.ALL, ZohoCRM.settings.READ).", status, body)
        raise BatchRejected(f"{code}: {message}", status, {"category": code, "message": message})

    def _after_429(self, operation: str, body: Mapping[str, Any], remaining: int | None,
                   count: int) -> None:
        """Stop on a spent credit budget; wait and retry when only the concurrency limit hit."""
        with self._count_lock:
            self.rate_limited_calls += 1
        metrics.CRM_RATE_LIMITED.labels(operation=operation).inc()
        found = body.get("details")
        details: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        # NOTE: Zoho answers 429 TOO_MANY_REQUESTS for both limits. The credit header
        # at 0, or a message about credits, is read as the budget being spent.
        text = f"{body.get('message', '')} {details.get('limit', '')}".lower()
        if remaining == 0 or "credit" in text:
            raise self.budget.exhausted(remaining)
        if count > MAX_BUSY_RETRIES:
            raise CrmUnavailable(f"Zoho returned 429 {count} times in a row on {operation}",
                                 429, dict(body))
        delay = backoff_seconds(count, 0.5, MAX_BUSY_WAIT_SECONDS)
        log.warning("Zoho concurrency limit hit; waiting before the retry",
                    extra={"resource": operation, "attempt": count, "status": 429,
                           "wait_seconds": round(delay, 3)})
        self._sleep(delay)

    def _send(self, operation: str, method: str, url: str, json: Any, token: str,
              params: Mapping[str, str] | None) -> httpx.Response:
        started = time.perf_counter()
        with self._count_lock:
            self.calls += 1
        try:
            response = self._http.request(
                method, url, json=json, params=params,
                headers={"Authorization": f"Zoho-oauthtoken {token}"})
        except httpx.TimeoutException as error:
            metrics.CRM_RESPONSES.labels(operation=operation, status="timeout").inc()
            raise CrmUnavailable(f"Zoho timed out on {operation}: {type(error).__name__}",
                                 None) from error
        except httpx.ConnectError as error:
            metrics.CRM_RESPONSES.labels(operation=operation, status="error").inc()
            raise ApiDomainUnreachable(f"Zoho could not be reached on {operation}: "
                                       f"{type(error).__name__}", None) from error
        except httpx.TransportError as error:
            metrics.CRM_RESPONSES.labels(operation=operation, status="error").inc()
            raise CrmUnavailable(f"Zoho could not be reached on {operation}: "
                                 f"{type(error).__name__}", None) from error
        finally:
            metrics.CRM_REQUEST_SECONDS.labels(operation=operation).observe(
                time.perf_counter() - started)
        metrics.CRM_RESPONSES.labels(operation=operation, status=str(response.status_code)).inc()
        return response


def _check_size(items: Sequence[Any]) -> None:
    if not 0 < len(items) <= BATCH_LIMIT:
        raise ValueError(f"a Zoho write takes 1 to {BATCH_LIMIT} records, got {len(items)}")
