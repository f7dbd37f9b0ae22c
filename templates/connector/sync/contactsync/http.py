"""A JSON HTTP client with explicit timeouts, a rate limit and retries, for the store and CRM.

Each call waits for the token bucket (when there is one), retries 429 after the
server's ``Retry-After`` and 5xx, 408 and network errors after exponential backoff
with jitter (``runtime/ratelimit.py``), and turns any other failure into
``HttpFailure`` with the service's own error code and a message with personal data
masked.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

import httpx

from .logs import JsonLog, scrub
from .runtime.ratelimit import RetryPolicy, StatusClass, TokenBucket, classify_status

DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
DEFAULT_RETRY = RetryPolicy(max_attempts=5, base_seconds=1.0, cap_seconds=30.0,
                            max_retry_after_seconds=120.0)
_MESSAGE_LIMIT = 300


class HttpFailure(Exception):
    """A call that failed for good: the service, the status and the service's error."""

    def __init__(self, service: str, method: str, path: str, status: int | None, code: str,
                 message: str) -> None:
        self.service = service
        self.method = method
        self.path = path
        self.status = status
        self.code = code
        self.message = message
        status_text = f"HTTP {status}" if status is not None else "no response"
        super().__init__(f"{service} {method} {path}: {status_text} {code}: {message}")


def error_of(response: httpx.Response) -> tuple[str, str]:
    """Read the error code and message of a WooCommerce, HubSpot or Zoho error body."""
    try:
        body: Any = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if isinstance(body, dict) and isinstance(body.get("data"), list) and body["data"]:
        body = body["data"][0]  # Zoho puts the error of each record in a list
    if not isinstance(body, dict):
        return str(response.status_code), scrub(response.text[:_MESSAGE_LIMIT])
    code = body.get("code") or body.get("category") or body.get("error") or response.status_code
    message = body.get("message") or body.get("error_description") or response.reason_phrase
    return str(code), scrub(str(message))[:_MESSAGE_LIMIT]


class JsonClient:
    """Calls one service at one base URL.

    Args:
        service: The name used in logs and errors, such as ``woocommerce``.
        base_url: Scheme and host, such as ``https://store.example.sa``.
        log: Where retries are logged.
        auth: Returns the headers and query parameters that authenticate a call; it
            is called before every try, so a refreshed token is used.
        limiter: Token bucket shared by every call, or None for no client-side limit.
        refresh_auth: Called once after a 401; returns whether to try again.
        give_up: Returns True for a 429 or 5xx response that must not be retried.
    """

    def __init__(self, service: str, base_url: str, log: JsonLog, *,
                 auth: Callable[[], tuple[dict[str, str], dict[str, str]]] | None = None,
                 limiter: TokenBucket | None = None,
                 refresh_auth: Callable[[], bool] | None = None,
                 give_up: Callable[[httpx.Response], bool] | None = None,
                 retry: RetryPolicy = DEFAULT_RETRY,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.service = service
        self.log = log
        self.retry = retry
        self._auth = auth or (lambda: ({}, {}))
        self._limiter = limiter
        self._refresh_auth = refresh_auth
        self._give_up = give_up
        self._sleep = sleep
        self._client = httpx.Client(base_url=base_url.rstrip("/"), timeout=DEFAULT_TIMEOUT,
                                    follow_redirects=False)
        self.calls = 0

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def request(self, method: str, path: str, *, params: Mapping[str, str] | None = None,
                body: Any = None, form: Mapping[str, str] | None = None,
                accept: Collection[int] = ()) -> httpx.Response:
        """Send one call and return its response: a 2xx, or a status listed in ``accept``.

        Raises:
            HttpFailure: Any other status, or the retries ran out.
        """
        attempt = 0
        refreshed = False
        while True:
            attempt += 1
            response = self._send(method, path, params, body, form, attempt)
            if response is None:
                continue
            status = response.status_code
            status_class = classify_status(status)
            if status_class is StatusClass.OK or status in accept:
                return response
            if status == 401 and self._refresh_auth is not None and not refreshed:
                refreshed = True
                if self._refresh_auth():
                    attempt -= 1
                    continue
            stop = status_class is StatusClass.FAIL or not self.retry.can_retry(attempt)
            if stop or (self._give_up is not None and self._give_up(response)):
                raise self.failure(method, path, response)
            self._wait(method, path, response, attempt)

    def _send(self, method: str, path: str, params: Mapping[str, str] | None, body: Any,
              form: Mapping[str, str] | None, attempt: int) -> httpx.Response | None:
        if self._limiter is not None:
            self._limiter.acquire()
        headers, auth_params = self._auth()
        self.calls += 1
        try:
            return self._client.request(method, path, params={**(params or {}), **auth_params},
                                        json=body, data=form, headers=headers)
        except httpx.TransportError as error:
            kind = "timed_out" if isinstance(error, httpx.TimeoutException) else "connection_failed"
            if not self.retry.can_retry(attempt):
                raise HttpFailure(self.service, method, path, None, kind,
                                  type(error).__name__) from error
            delay = self.retry.delay_seconds(attempt)
            self.log.warning("retry", service=self.service, method=method, path=path,
                             reason=kind, attempt=attempt, delay_seconds=round(delay, 2))
            self._sleep(delay)
            return None

    def _wait(self, method: str, path: str, response: httpx.Response, attempt: int) -> None:
        delay = self.retry.delay_seconds(attempt, response.headers)
        if delay > self.retry.max_retry_after_seconds:
            raise self.failure(method, path, response)
        self.log.warning("retry", service=self.service, method=method, path=path,
                         status=response.status_code, attempt=attempt,
                         delay_seconds=round(delay, 2))
        if response.status_code == 429 and self._limiter is not None:
            self._limiter.pause(delay)
        self._sleep(delay)

    def failure(self, method: str, path: str, response: httpx.Response) -> HttpFailure:
        """Build the failure for an error response from the service's error body."""
        code, message = error_of(response)
        return HttpFailure(self.service, method, path, response.status_code, code, message)
