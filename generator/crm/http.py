"""One HTTP client for the CRM APIs: explicit timeouts, rate limit, retries and clear errors.

Every call waits for the token bucket (when there is one), retries 429 after the
server's ``Retry-After`` and 5xx, 408 and network errors after exponential backoff
with jitter, and turns any other failure into ``CrmApiError`` with the CRM's own
message. A 429 from one of HubSpot's rolling limits waits out the whole window and
pauses the shared bucket without using up an attempt. A create may have succeeded
when its response was lost (a 5xx from a proxy, a timeout), so a caller can pass
``recover``: before each such retry it looks the item up, and a match is taken as
the result instead of sending the create again. Calls made inside ``recover`` get one
attempt each, so while the CRM keeps failing, a create costs at most ``max_attempts``
create calls plus one failed lookup call before each retry. The transport is injectable so
tests can use ``httpx.MockTransport``; the generator's tests run against the CRM
stand-ins under uvicorn instead.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from generator.i18n import message
from generator.model import Lang
from generator.runtime.ratelimit import RetryPolicy, StatusClass, TokenBucket, classify_status

log = logging.getLogger("rabt.crm")

# Metadata calls are small, so a long wait means the CRM or the network is stuck.
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
DEFAULT_RETRY = RetryPolicy(max_attempts=5, base_seconds=1.0, cap_seconds=30.0,
                            max_retry_after_seconds=120.0)
# HubSpot's 429 body names the limit in policyName; the daily one resets at midnight
# in the account's time zone, so waiting for it is pointless.
_DAILY_POLICIES = frozenset({"DAILY"})
# HubSpot's short limits count calls in a rolling window and their 429 often has no
# Retry-After, so the client waits one whole window: by then every counted call has
# aged out. Such a wait is not a failed attempt.
ROLLING_WINDOW_SECONDS = {"TEN_SECONDLY_ROLLING": 10.0, "SECONDLY": 1.0}
# Added to a window wait, so a call does not land just before the oldest counted one
# leaves the server's window.
WINDOW_MARGIN_SECONDS = 0.5
# Window waits allowed per call; more in a row means another client shares the limit
# and keeps it used up, so the call fails with HubSpot's message instead of hanging.
MAX_WINDOW_WAITS = 6
_ERROR_TEXT_LIMIT = 500


class CrmApiError(Exception):
    """A CRM call failed for good: the status, the CRM's message and error code.

    ``text`` is the CRM's own message, or Rabt's message in ``lang`` when no response
    arrived. ``details`` is the CRM's details object as text, shown after the message.
    ``required_scopes`` lists the scopes of a HubSpot ``MISSING_SCOPES`` 403.
    """

    def __init__(self, method: str, path: str, status: int | None, text: str,
                 code: str | None = None, *, details: str = "", lang: Lang = "en",
                 required_scopes: tuple[str, ...] = ()) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.text = text
        self.code = code
        self.details = details
        self.required_scopes = required_scopes
        # The API base URL; the client that sent the call fills it in.
        self.base_url = ""
        where = f"{method} {path}"
        status_text = (f"HTTP {status}" if status is not None
                       else message("crm_http_no_response", lang))
        code_text = f" {code}" if code else ""
        details_text = message("crm_http_details", lang, details=details) if details else ""
        super().__init__(f"{where}: {status_text}{code_text}: {text}{details_text}")


@dataclass(frozen=True)
class CallOptions:
    """Per-client settings that tests and the CLI choose."""

    timeout: httpx.Timeout = field(default_factory=lambda: DEFAULT_TIMEOUT)
    retry: RetryPolicy = DEFAULT_RETRY
    transport: httpx.BaseTransport | None = None
    sleep: Callable[[float], None] = time.sleep
    # Language of the warnings logged and of the errors Rabt words itself.
    lang: Lang = "en"


class CrmHttp:
    """A JSON client for one CRM API base URL.

    Args:
        base_url: Scheme and host, such as ``https://api.hubapi.com``.
        auth_headers: Returns the authorization header; called before every try so a
            refreshed token is used.
        options: Timeouts, retry policy, transport and sleep.
        limiter: Token bucket shared by all calls, or None for no client-side limit.
        refresh_auth: Called once after a 401 to get a new token; returns whether the
            call should be tried again.
    """

    def __init__(self, base_url: str, auth_headers: Callable[[], Mapping[str, str]],
                 options: CallOptions | None = None, limiter: TokenBucket | None = None,
                 refresh_auth: Callable[[], bool] | None = None) -> None:
        self.options = options or CallOptions()
        self.base_url = base_url.rstrip("/")
        self._auth_headers = auth_headers
        self._limiter = limiter
        self._refresh_auth = refresh_auth
        self._client = httpx.Client(base_url=self.base_url, timeout=self.options.timeout,
                                    transport=self.options.transport)
        self.calls = 0
        # True while a lost-create lookup runs: its calls then get one attempt each,
        # because the create's own retry loop already waits and tries again.
        self._in_lookup = False

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def request(self, method: str, path: str, *, params: Mapping[str, str] | None = None,
                body: Any = None, form: Mapping[str, str] | None = None,
                recover: Callable[[], Any] | None = None) -> Any:
        """Send one call and return its parsed JSON body (None when empty).

        ``body`` is sent as JSON and ``form`` as a form, so secrets never go in the URL.
        ``recover`` is called before retrying after a 5xx, 408 or network error; when it
        returns something other than None, that is returned and the call is not sent again.

        Raises:
            CrmApiError: The CRM returned a status that is not retried, or the
                retries ran out.
        """
        try:
            return self._request(method, path, params, body, form, recover, self.options.lang)
        except CrmApiError as error:
            error.base_url = error.base_url or self.base_url
            raise

    def _request(self, method: str, path: str, params: Mapping[str, str] | None, body: Any,
                 form: Mapping[str, str] | None, recover: Callable[[], Any] | None,
                 lang: Lang) -> Any:
        attempt = 0
        window_waits = 0
        refreshed = False
        while True:
            attempt += 1
            response = self._send(method, path, params, body, form, attempt)
            if response is None:  # a network error that is retried
                found = self._recovered(recover, method, path, lang)
                if found is not None:
                    return found
                continue
            status_class = classify_status(response.status_code)
            if status_class is StatusClass.OK:
                return _json_or_none(response)
            window = _rolling_window_seconds(response)
            if window is not None and window_waits < MAX_WINDOW_WAITS:
                window_waits += 1
                attempt -= 1
                self._wait_out_window(method, path, response, window)
                continue
            if response.status_code == 401 and self._refresh_auth and not refreshed:
                refreshed = self._refresh_auth()
                if refreshed:
                    attempt -= 1
                    continue
            if status_class is StatusClass.FAIL or not self._can_retry(attempt):
                raise _api_error(method, path, response, lang)
            self._wait_before_retry(method, path, response, attempt)
            if response.status_code != 429:  # a 429 was not processed, so nothing to find
                found = self._recovered(recover, method, path, lang)
                if found is not None:
                    return found

    def _send(self, method: str, path: str, params: Mapping[str, str] | None, body: Any,
              form: Mapping[str, str] | None, attempt: int) -> httpx.Response | None:
        if self._limiter is not None:
            self._limiter.acquire()
        self.calls += 1
        started = time.monotonic()
        try:
            response = self._client.request(method, path, params=params, json=body, data=form,
                                            headers=dict(self._auth_headers()))
        except httpx.TransportError as error:
            lang = self.options.lang
            kind = ("crm_http_timed_out" if isinstance(error, httpx.TimeoutException)
                    else "crm_http_connection_failed")
            reason = message(kind, lang, error=type(error).__name__)
            if not self._can_retry(attempt):
                raise CrmApiError(method, path, None, reason, lang=lang) from error
            delay = self.options.retry.delay_seconds(attempt)
            log.warning("%s", message("crm_log_retry", lang, call=f"{method} {path}",
                                      reason=reason, attempt=attempt, seconds=f"{delay:.1f}"))
            self.options.sleep(delay)
            return None
        log.debug("%s %s -> %d in %.0f ms", method, path, response.status_code,
                  (time.monotonic() - started) * 1000)
        return response

    def _can_retry(self, attempt: int) -> bool:
        return not self._in_lookup and self.options.retry.can_retry(attempt)

    def _recovered(self, recover: Callable[[], Any] | None, method: str, path: str,
                   lang: Lang) -> Any:
        """Return what ``recover`` finds, or None; a failing lookup means try the call again."""
        if recover is None:
            return None
        self._in_lookup = True
        try:
            found = recover()
        except CrmApiError as error:
            log.warning("%s", message("crm_log_lookup_failed", lang, call=f"{method} {path}",
                                      error=error))
            return None
        finally:
            self._in_lookup = False
        if found is not None:
            log.warning("%s", message("crm_log_lost_create_found", lang,
                                      call=f"{method} {path}"))
        return found

    def _wait_before_retry(self, method: str, path: str, response: httpx.Response,
                           attempt: int) -> None:
        lang = self.options.lang
        policy = _policy_name(response)
        if response.status_code == 429 and policy in _DAILY_POLICIES:
            raise _api_error(method, path, response, lang)
        delay = self.options.retry.delay_seconds(attempt, response.headers)
        if delay > self.options.retry.max_retry_after_seconds:
            raise _api_error(method, path, response, lang)
        reason = f"HTTP {response.status_code}" + (f" ({policy})" if policy else "")
        log.warning("%s", message("crm_log_retry", lang, call=f"{method} {path}",
                                  reason=reason, attempt=attempt, seconds=f"{delay:.1f}"))
        if response.status_code == 429 and self._limiter is not None:
            self._limiter.pause(delay)
        self.options.sleep(delay)


    def _wait_out_window(self, method: str, path: str, response: httpx.Response,
                         window: float) -> None:
        """Sleep until the server's rolling window has room, holding back every caller."""
        requested = self.options.retry.delay_seconds(1, response.headers)
        has_header = any(name.lower() == "retry-after" for name in response.headers)
        delay = requested if has_header else window + WINDOW_MARGIN_SECONDS
        log.warning("%s", message("crm_log_window_wait", self.options.lang,
                                  call=f"{method} {path}", policy=_policy_name(response),
                                  seconds=f"{delay:.1f}"))
        if self._limiter is not None:
            self._limiter.pause(delay)
        self.options.sleep(delay)


def _rolling_window_seconds(response: httpx.Response) -> float | None:
    """Return the window of a 429 from one of HubSpot's rolling limits, else None."""
    if response.status_code != 429:
        return None
    return ROLLING_WINDOW_SECONDS.get(_policy_name(response) or "")


def _json_or_none(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except json.JSONDecodeError:
        return None


def _policy_name(response: httpx.Response) -> str | None:
    body = _json_or_none(response)
    if isinstance(body, dict) and isinstance(body.get("policyName"), str):
        return str(body["policyName"])
    return None


def _api_error(method: str, path: str, response: httpx.Response,
               lang: Lang = "en") -> CrmApiError:
    """Build the error from the CRM's body: HubSpot's ``message``/``category``, Zoho's ``code``."""
    body = _json_or_none(response)
    text = ""
    details_text = ""
    code = None
    if isinstance(body, dict):
        items = body.get("data") or body.get("fields") or body.get("pipeline")
        if isinstance(items, list) and items and isinstance(items[0], dict):
            body = items[0]  # Zoho puts per-item errors in a list
        text = str(body.get("message") or body.get("error") or "")
        code_value = body.get("code") or body.get("category") or body.get("errorType")
        code = str(code_value) if code_value else None
        details = body.get("details")
        if isinstance(details, dict) and details:
            details_text = json.dumps(details, ensure_ascii=False)[:_ERROR_TEXT_LIMIT]
    if not text:
        text = response.text[:_ERROR_TEXT_LIMIT] or response.reason_phrase
    scopes = _required_scopes(body) if code == "MISSING_SCOPES" else ()
    return CrmApiError(method, path, response.status_code, text[:_ERROR_TEXT_LIMIT], code,
                       details=details_text, lang=lang, required_scopes=scopes)


def _required_scopes(body: Any) -> tuple[str, ...]:
    """Return the scopes of HubSpot's MISSING_SCOPES body, in its order, without repeats.

    HubSpot lists them under ``errors[].context.requiredGranularScopes``, and older
    responses under ``requiredScopes``.
    """
    scopes: dict[str, None] = {}
    errors = body.get("errors") if isinstance(body, dict) else None
    for entry in errors if isinstance(errors, list) else []:
        context = entry.get("context") if isinstance(entry, dict) else None
        if not isinstance(context, dict):
            continue
        for key in ("requiredGranularScopes", "requiredScopes"):
            names = context.get(key)
            if isinstance(names, list):
                scopes.update({str(name): None for name in names})
    return tuple(scopes)
