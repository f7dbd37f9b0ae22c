"""HubSpot CRM API client: shared rate limit, 429 handling, and errors sorted by what to do next.

Endpoints (HubSpot CRM API v3 objects and v4 associations):

* ``POST /crm/v3/objects/{object}/batch/upsert`` with ``inputs`` of ``{id, idProperty,
  properties}``; ``idProperty`` must be a property with unique values;
* ``POST /crm/v3/objects/{object}/batch/update`` with ``inputs`` of ``{id, properties}``;
* ``POST /crm/v4/associations/{from}/{to}/batch/create`` with ``inputs`` of
  ``{from: {id}, to: {id}, types: [{associationCategory, associationTypeId}]}``;
* ``GET /crm/v3/pipelines/{object}`` and ``POST /crm/v3/objects/{object}/search``;
* communication preferences v4 (``statuses/batch/read``, ``statuses/{subscriber}`` and
  ``unsubscribe-all``) and ``POST /crm/v3/objects/contacts/gdpr-delete``, for consent
  and privacy requests.

Batch endpoints take at most 100 inputs. A batch that returns 207 Multi-Status lists
per-record ``errors`` beside ``results``. A 429 body names the limit in
``policyName``: ``TEN_SECONDLY_ROLLING`` (the burst limit per app), ``SECONDLY``
(search) or ``DAILY`` (per account, reset at midnight in the account's time zone).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote

import httpx

from . import metrics
from .runtime.ratelimit import (
    StatusClass,
    TokenBucket,
    backoff_seconds,
    classify_status,
    retry_after_seconds,
)

log = logging.getLogger("storesync.hubspot")

BATCH_LIMIT = 100
RATE_WINDOW_SECONDS = 10.0
# Tokens the bucket saves for a burst. Burst plus refill never exceeds the limit in any
# 10-second window, so a larger burst costs steady rate: at 2 % the bucket refills 98 %
# of the limit (186 of 190), and a few calls still go at once after an idle spell.
RATE_BURST_FRACTION = 0.02
# Consecutive 429 responses to one call before it counts as a failed attempt.
MAX_RATE_LIMITED_RETRIES = 8
# The longest Retry-After waited out inside a call. A longer one fails the attempt, so
# the flusher reschedules the records instead of blocking on one call.
MAX_RETRY_AFTER_SECONDS = 60.0
DAILY_POLICY = "DAILY"
SECONDLY_POLICY = "SECONDLY"
# Error categories that mean an update by id named a record HubSpot no longer has.
NOT_FOUND_CATEGORY = "OBJECT_NOT_FOUND"
# A unique property value already belongs to another record ("Contact already exists.
# Existing ID: ..."): 409 for a single record, category CONFLICT in a 207's errors.
CONFLICT_STATUS = 409
CONFLICT_CATEGORY = "CONFLICT"
NOTE_TO_CONTACT_TYPE = 202


class HubSpotError(Exception):
    """Base of the errors this client raises.

    Attributes:
        status: The HTTP status, or None when no response arrived.
        body: The response body as parsed JSON, or ``{"message": text}``.
    """

    def __init__(self, message: str, status: int | None = None,
                 body: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = dict(body or {})


class CrmUnavailable(HubSpotError):
    """A 5xx, 408, timeout, connection failure or a run of 429s: retry the call later."""


class DailyLimitReached(HubSpotError):
    """HubSpot's daily request limit is used up: stop calling until it resets."""


class AuthFailed(HubSpotError):
    """HubSpot rejected the access token (401) or its scopes (403)."""


class SettingsRejected(AuthFailed):
    """The CRM rejected the service's own settings, such as a Zoho client of another data centre.

    Retrying cannot help: only a change of settings and a restart do, so the flusher
    parks its calls instead of pausing and retrying.
    """


class BatchRejected(HubSpotError):
    """HubSpot rejected the whole request with a 4xx data error (not 401, 403 or 429)."""


@dataclass(frozen=True)
class BatchResult:
    """A batch call's outcome: records written and per-record errors (207 Multi-Status)."""

    status: int
    results: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)


def _body(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {"message": response.text[:500]}
    return data if isinstance(data, dict) else {"message": str(data)[:500]}


def burst_size(limit_per_10s: int) -> int:
    """Return the tokens the bucket of a limit of ``limit_per_10s`` saves for a burst."""
    return max(1, min(limit_per_10s - 1, round(limit_per_10s * RATE_BURST_FRACTION)))


def rate_limit_bucket(limit_per_10s: int, clock: Callable[[], float] = time.monotonic,
                      sleep: Callable[[float], None] = time.sleep) -> TokenBucket:
    """Create the bucket that keeps every call of this process under HubSpot's burst limit."""
    return TokenBucket.for_rolling_window(limit_per_10s, RATE_WINDOW_SECONDS,
                                          burst_size(limit_per_10s), clock=clock, sleep=sleep)


class CallBucket(Protocol):
    """A token bucket of this process (``TokenBucket``) or of the deployment, in Redis."""

    def acquire(self, tokens: float = 1) -> float:
        """Take ``tokens``, sleeping until they are there; return the seconds slept."""

    def pause(self, seconds: float) -> None:
        """Hold back every caller of the bucket for ``seconds``."""


class HubSpotClient:
    """Synchronous HubSpot client for the calls the flusher makes.

    All calls share one token bucket sized to ``HUBSPOT_RATE_LIMIT_PER_10S``; search
    calls also take a token from a second bucket at ``HUBSPOT_SEARCH_RATE_PER_SECOND``.
    The buckets belong to this process unless ``bucket`` and ``search_bucket`` pass
    buckets shared in Redis (:func:`storesync.shared_limits.hubspot_buckets`).
    """

    def __init__(
        self,
        base_url: str,
        access_token: str,
        *,
        rate_limit_per_10s: int = 100,
        search_rate_per_second: int = 5,
        timeout_seconds: float = 10.0,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        bucket: CallBucket | None = None,
        search_bucket: CallBucket | None = None,
    ) -> None:
        """Create the client; ``transport`` replaces the network in tests."""
        self.bucket: CallBucket = bucket or rate_limit_bucket(rate_limit_per_10s, clock, sleep)
        self.search_bucket: CallBucket = search_bucket or TokenBucket(
            search_rate_per_second, 1.0, clock=clock, sleep=sleep, capacity=1)
        self._clock = clock
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"Authorization": f"Bearer {access_token}",
                     "Content-Type": "application/json"},
            timeout=httpx.Timeout(timeout_seconds),
            transport=transport,
        )
        # The flusher sends from two threads at once, so the counters take a lock.
        self._count_lock = threading.Lock()
        self.rate_limited_calls = 0
        self.calls = 0

    def close(self) -> None:
        """Close the HTTP connections, and the buckets' Redis connections when shared."""
        self._http.close()
        for bucket in (self.bucket, self.search_bucket):
            close = getattr(bucket, "close", None)
            if close is not None:
                close()

    # --- endpoints -------------------------------------------------------------------

    def batch_upsert(self, obj: str, inputs: Sequence[Mapping[str, Any]]) -> BatchResult:
        """Create or update up to 100 records matched by their ``idProperty`` values."""
        return self._batch(f"{obj}.batch_upsert", f"/crm/v3/objects/{obj}/batch/upsert", inputs)

    def batch_update(self, obj: str, inputs: Sequence[Mapping[str, Any]]) -> BatchResult:
        """Update up to 100 records by their HubSpot ids."""
        return self._batch(f"{obj}.batch_update", f"/crm/v3/objects/{obj}/batch/update", inputs)

    def create_associations(self, from_obj: str, to_obj: str,
                            inputs: Sequence[Mapping[str, Any]]) -> BatchResult:
        """Create up to 100 associations from ``from_obj`` records to ``to_obj`` records."""
        return self._batch(f"{from_obj}.associate", f"/crm/v4/associations/{from_obj}/{to_obj}"
                           "/batch/create", inputs)

    def create_note(self, properties: Mapping[str, Any], contact_id: str) -> str:
        """Create a note on a contact's timeline and return the note's id.

        Notes need only the contacts write scope of a private app. The association type
        202 (note to contact, HUBSPOT_DEFINED) comes from HubSpot's notes schema examples.
        """
        body = {"properties": dict(properties), "associations": [{
            "to": {"id": str(contact_id)},
            "types": [{"associationCategory": "HUBSPOT_DEFINED",
                       "associationTypeId": NOTE_TO_CONTACT_TYPE}]}]}
        response = self._request("notes.create", "POST", "/crm/v3/objects/notes", json=body)
        return str(_body(response).get("id"))

    def pipelines(self, obj: str) -> list[dict[str, Any]]:
        """Return the pipelines of ``deals`` or ``tickets`` with their stages."""
        response = self._request(f"{obj}.pipelines", "GET", f"/crm/v3/pipelines/{obj}")
        results = _body(response).get("results")
        return [item for item in results or [] if isinstance(item, dict)]

    def search(self, obj: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Run one search request under the search rate limit.

        Search results lag writes by seconds, so the sync never uses them to decide
        whether a record exists.
        """
        self.search_bucket.acquire()
        response = self._request(f"{obj}.search", "POST", f"/crm/v3/objects/{obj}/search",
                                 json=dict(body))
        return _body(response)

    # --- consent and privacy (see storesync.consent and storesync.privacy_actions) ----

    def subscription_statuses(self, channel: str,
                              subscribers: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """Return the statuses of up to 100 subscribers on ``EMAIL``, ``SMS`` or ``WHATSAPP``.

        The subscriber is the email address for EMAIL and the phone for the others.
        """
        if not 0 < len(subscribers) <= BATCH_LIMIT:
            raise ValueError(f"a batch takes 1 to {BATCH_LIMIT} inputs, got {len(subscribers)}")
        response = self._request(
            "preferences.batch_read", "POST",
            f"/communication-preferences/v4/statuses/batch/read?channel={channel}",
            json={"inputs": list(subscribers)})
        found: dict[str, list[dict[str, Any]]] = {}
        for item in _body(response).get("results") or []:
            if isinstance(item, dict) and item.get("subscriberIdString"):
                found[str(item["subscriberIdString"])] = [
                    status for status in item.get("statuses") or [] if isinstance(status, dict)]
        return found

    def unsubscribe_all(self, channel: str, subscriber: str) -> None:
        """Opt ``subscriber`` out of every subscription type of ``channel``."""
        self._request("preferences.unsubscribe_all", "POST",
                      f"/communication-preferences/v4/statuses/{quote(subscriber, safe='')}"
                      f"/unsubscribe-all?channel={channel}")

    def subscribe(self, channel: str, subscriber: str, subscription_id: int, legal_basis: str,
                  explanation: str) -> None:
        """Set ``subscriber``'s status for one subscription type of ``channel`` to SUBSCRIBED.

        Communication preferences v4 can subscribe a contact who opted out before (v3
        cannot). HubSpot requires ``legalBasis`` and its explanation on accounts with
        GDPR features turned on.
        """
        body = {"channel": channel, "statusState": "SUBSCRIBED",
                "subscriptionId": subscription_id, "legalBasis": legal_basis,
                "legalBasisExplanation": explanation}
        self._request("preferences.subscribe", "POST",
                      f"/communication-preferences/v4/statuses/{quote(subscriber, safe='')}",
                      json=body)

    def gdpr_delete_contact(self, object_id: str, id_property: str | None = None) -> bool:
        """Permanently delete a contact by id, or by email with ``id_property="email"``.

        Returns:
            False when HubSpot returns 404 (no such contact id), True otherwise.
        """
        body: dict[str, Any] = {"objectId": object_id}
        if id_property:
            body["idProperty"] = id_property
        try:
            self._request("contacts.gdpr_delete", "POST",
                          "/crm/v3/objects/contacts/gdpr-delete", json=body)
        except BatchRejected as error:
            if error.status == 404:
                return False
            raise
        return True

    # --- plumbing --------------------------------------------------------------------

    def _batch(self, operation: str, path: str,
               inputs: Sequence[Mapping[str, Any]]) -> BatchResult:
        if not 0 < len(inputs) <= BATCH_LIMIT:
            raise ValueError(f"a batch takes 1 to {BATCH_LIMIT} inputs, got {len(inputs)}")
        response = self._request(operation, "POST", path, json={"inputs": list(inputs)})
        data = _body(response)
        results = [item for item in data.get("results") or [] if isinstance(item, dict)]
        errors = [item for item in data.get("errors") or [] if isinstance(item, dict)]
        return BatchResult(response.status_code, results, errors)

    def _request(self, operation: str, method: str, path: str,
                 json: Any = None) -> httpx.Response:
        """Send one call and wait out 429s; other failures raise their status's error class."""
        rate_limited = 0
        while True:
            response = self._send(operation, method, path, json)
            kind = classify_status(response.status_code)
            if kind is StatusClass.OK:
                return response
            if kind is StatusClass.RATE_LIMITED:
                rate_limited += 1
                self._wait_after_429(operation, response, rate_limited)
                continue
            body = _body(response)
            message = str(body.get("message") or response.reason_phrase)
            if kind is StatusClass.RETRY:
                raise CrmUnavailable(f"HubSpot returned {response.status_code} on {operation}: "
                                     f"{message}", response.status_code, body)
            if response.status_code in (401, 403):
                raise AuthFailed(f"HubSpot rejected the access token with "
                                 f"{response.status_code} on {operation}: {message}",
                                 response.status_code, body)
            raise BatchRejected(message, response.status_code, body)

    def _send(self, operation: str, method: str, path: str, json: Any) -> httpx.Response:
        self.bucket.acquire()
        started = time.perf_counter()
        with self._count_lock:
            self.calls += 1
        try:
            response = self._http.request(method, path, json=json)
        except httpx.TimeoutException as error:
            metrics.CRM_RESPONSES.labels(operation=operation, status="timeout").inc()
            raise CrmUnavailable(f"HubSpot timed out on {operation}: {type(error).__name__}",
                                 None) from error
        except httpx.TransportError as error:
            metrics.CRM_RESPONSES.labels(operation=operation, status="error").inc()
            raise CrmUnavailable(f"HubSpot could not be reached on {operation}: "
                                 f"{type(error).__name__}", None) from error
        finally:
            metrics.CRM_REQUEST_SECONDS.labels(operation=operation).observe(
                time.perf_counter() - started)
        metrics.CRM_RESPONSES.labels(operation=operation, status=str(response.status_code)).inc()
        return response

    def _wait_after_429(self, operation: str, response: httpx.Response, count: int) -> None:
        """Pause every caller of the bucket, or raise when waiting cannot help."""
        with self._count_lock:
            self.rate_limited_calls += 1
        metrics.CRM_RATE_LIMITED.labels(operation=operation).inc()
        body = _body(response)
        policy = str(body.get("policyName") or "")
        if policy == DAILY_POLICY:
            raise DailyLimitReached(f"HubSpot's daily request limit is used up ({operation}); "
                                    "HubSpot resets it at midnight in the account's time zone",
                                    429, body)
        if count > MAX_RATE_LIMITED_RETRIES:
            raise CrmUnavailable(f"HubSpot returned 429 {count} times in a row on {operation}",
                                 429, body)
        delay = retry_after_seconds(response.headers)
        if delay is not None and delay > MAX_RETRY_AFTER_SECONDS:
            raise CrmUnavailable(f"HubSpot asked to wait {delay:.0f} s after a 429 on "
                                 f"{operation}", 429, body)
        if delay is None:
            # NOTE: HubSpot's docs do not promise Retry-After on a 429, so without it
            # the wait grows from 1 s up to the 10-second window.
            ceiling = 1.0 if policy == SECONDLY_POLICY \
                else min(RATE_WINDOW_SECONDS, 2.0 ** (count - 1))
            delay = max(ceiling / 2, backoff_seconds(count, ceiling, ceiling))
        log.warning("HubSpot rate limit hit; waiting before the retry",
                    extra={"resource": operation, "attempt": count, "status": 429,
                           "policy": policy or "unknown", "wait_seconds": round(delay, 3)})
        target = self.search_bucket if policy == SECONDLY_POLICY else self.bucket
        target.pause(delay)


def error_message(error: Mapping[str, Any]) -> str:
    """Return the text of one batch error entry: its category and message."""
    category = error.get("category") or error.get("status") or "error"
    return f"{category}: {error.get('message') or ''}".strip()
