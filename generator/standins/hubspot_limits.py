"""Rate limits, injected faults and the call log of the HubSpot stand-in.

Limits per token: a rolling 10-second window (policy TEN_SECONDLY_ROLLING), a
1-second window for search (SECONDLY) and a daily count (DAILY, reset at midnight
UTC). A rejected request does not count against a window, so the window recovers
once older requests age out.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

from .hubspot_config import RATE_WINDOW_SECONDS, SEARCH_WINDOW_SECONDS, HubSpotStandinConfig
from .hubspot_errors import HubSpotError, correlation_id, rate_limited, validation_error

SECONDS_PER_DAY = 86_400


class RateLimiter:
    """Sliding-window request counts per token, and the headers HubSpot sends with them."""

    def __init__(self, config: HubSpotStandinConfig) -> None:
        self._config = config
        self._burst: dict[str, deque[float]] = {}
        self._search: dict[str, deque[float]] = {}
        self._daily: dict[str, tuple[int, int]] = {}

    def reset(self) -> None:
        """Forget every request counted so far."""
        self._burst.clear()
        self._search.clear()
        self._daily.clear()

    def admit(self, token: str, is_search: bool) -> dict[str, str]:
        """Count one request and return the rate-limit headers for its response.

        Raises:
            HubSpotError: A 429 with the policy that was exceeded.
        """
        now = self._config.clock()
        burst = _window(self._burst, token, now, RATE_WINDOW_SECONDS)
        search = _window(self._search, token, now, SEARCH_WINDOW_SECONDS)
        day = int(now // SECONDS_PER_DAY)
        day_count = self._day_count(token, day)
        group = f"publicapi:standin-token-{abs(hash(token)) % 100_000}"
        config = self._config
        if config.daily_limit and day_count >= config.daily_limit:
            raise rate_limited("DAILY", group,
                               self._headers(len(burst), day_count, is_search, True))
        if is_search and config.search_rate_per_second and (
                len(search) >= config.search_rate_per_second):
            raise rate_limited("SECONDLY", group, self._headers(len(burst), day_count, True, True))
        if config.rate_limit_per_10s and len(burst) >= config.rate_limit_per_10s:
            raise rate_limited("TEN_SECONDLY_ROLLING", group,
                               self._headers(len(burst), day_count, is_search, True))
        burst.append(now)
        if is_search:
            search.append(now)
        self._daily[token] = (day, day_count + 1)
        return self._headers(len(burst), day_count + 1, is_search, False)

    def rejected_headers(self, token: str, is_search: bool) -> dict[str, str]:
        """Return the headers of a 429 that fault injection caused, without counting a request.

        They are the headers of an organic 429 from the burst window: that window shows
        as used up, and the daily count is the token's real one.
        """
        day = int(self._config.clock() // SECONDS_PER_DAY)
        return self._headers(self._config.rate_limit_per_10s, self._day_count(token, day),
                             is_search, True)

    def _day_count(self, token: str, day: int) -> int:
        day_seen, day_count = self._daily.get(token, (day, 0))
        return day_count if day_seen == day else 0

    def _headers(self, burst_used: int, day_count: int, is_search: bool,
                 rejected: bool) -> dict[str, str]:
        config = self._config
        headers: dict[str, str] = {}
        if rejected and config.retry_after_seconds is not None:
            headers["Retry-After"] = str(config.retry_after_seconds)
        if is_search and not config.search_sends_rate_headers:
            return headers
        if config.rate_limit_per_10s:
            headers["X-HubSpot-RateLimit-Max"] = str(config.rate_limit_per_10s)
            headers["X-HubSpot-RateLimit-Remaining"] = str(
                max(config.rate_limit_per_10s - burst_used, 0))
            headers["X-HubSpot-RateLimit-Interval-Milliseconds"] = str(
                int(RATE_WINDOW_SECONDS * 1000))
        if config.daily_limit:
            headers["X-HubSpot-RateLimit-Daily"] = str(config.daily_limit)
            headers["X-HubSpot-RateLimit-Daily-Remaining"] = str(
                max(config.daily_limit - day_count, 0))
        return headers


def _window(windows: dict[str, deque[float]], token: str, now: float,
            seconds: float) -> deque[float]:
    window = windows.setdefault(token, deque())
    while window and window[0] <= now - seconds:
        window.popleft()
    return window


@dataclass
class Fault:
    """Injected failure with ``status`` for the next ``count`` calls or until ``until``.

    A 403 with ``missing_scopes`` returns HubSpot's ``MISSING_SCOPES`` body.
    """

    status: int
    count: int | None
    until: float | None
    path_prefix: str
    missing_scopes: tuple[str, ...] = ()


class FaultInjector:
    """Failures injected through ``POST /_standin/faults``."""

    def __init__(self, config: HubSpotStandinConfig) -> None:
        self._config = config
        self.faults: list[Fault] = []

    def add(self, body: Any) -> Fault:
        """Add a fault from a request body, or raise a 400 naming the bad field."""
        if not isinstance(body, dict):
            raise validation_error('Send a JSON object such as {"status": 503, "count": 2}')
        status = body.get("status")
        if not isinstance(status, int) or not 400 <= status <= 599:
            raise validation_error(f"status must be an HTTP error status 400-599, got {status!r}")
        count = body.get("count")
        seconds = body.get("seconds")
        if (count is None) == (seconds is None):
            raise validation_error("Give exactly one of count (calls) or seconds (duration)")
        if count is not None and (not isinstance(count, int) or count < 1):
            raise validation_error(f"count must be a whole number of calls >= 1, got {count!r}")
        if seconds is not None and (not isinstance(seconds, int | float) or seconds <= 0):
            raise validation_error(f"seconds must be a number > 0, got {seconds!r}")
        prefix = body.get("path_prefix", "/")
        if not isinstance(prefix, str) or not prefix.startswith("/"):
            raise validation_error(f"path_prefix must start with '/', got {prefix!r}")
        scopes = body.get("missing_scopes", [])
        if (not isinstance(scopes, list) or not all(isinstance(item, str) for item in scopes)
                or (scopes and status != 403)):
            raise validation_error("missing_scopes must be a list of scope names, and only "
                                   f"with status 403, got {scopes!r} with status {status}")
        until = self._config.clock() + float(seconds) if seconds is not None else None
        fault = Fault(status, count, until, prefix, tuple(scopes))
        self.faults.append(fault)
        return fault

    def take(self, path: str) -> Fault | None:
        """Return the fault to fail a call to ``path`` with, using up one count."""
        now = self._config.clock()
        self.faults = [fault for fault in self.faults if not _spent(fault, now)]
        for fault in self.faults:
            if path.startswith(fault.path_prefix):
                if fault.count is not None:
                    fault.count -= 1
                return fault
        return None


def _spent(fault: Fault, now: float) -> bool:
    if fault.count is not None:
        return fault.count <= 0
    return fault.until is not None and now >= fault.until


def injected_error(fault: Fault, rate_limit_headers: dict[str, str]) -> HubSpotError:
    """Return the response for an injected fault.

    ``rate_limit_headers`` go out with a 429 only, as on an organic one (see
    :meth:`RateLimiter.rejected_headers`).
    """
    status = fault.status
    if status == 429:
        return rate_limited("TEN_SECONDLY_ROLLING", "publicapi:standin-injected",
                            rate_limit_headers)
    if fault.missing_scopes:
        return missing_scopes_error(fault.missing_scopes)
    # NOTE: HubSpot's 5xx bodies vary (some come from its CDN as HTML); a JSON error
    # body is sent so clients can log it.
    body = {
        "status": "error",
        "message": f"Injected failure with HTTP {status} from the stand-in",
        "correlationId": correlation_id(),
        "category": "SERVICE_UNAVAILABLE" if status == 503 else "INTERNAL_ERROR",
    }
    return HubSpotError(status, body)


def missing_scopes_error(scopes: tuple[str, ...]) -> HubSpotError:
    """Return HubSpot's 403 for a token without the scopes a call needs.

    The shape (``category`` MISSING_SCOPES, the scopes under
    ``errors[].context.requiredGranularScopes``) follows 403 bodies that HubSpot
    client projects record from live accounts; the message text is the stand-in's own.
    """
    body = {
        "status": "error",
        "message": "This app has not been granted all the scopes this call requires",
        "correlationId": correlation_id(),
        "errors": [{"message": "One or more of the following scopes are required.",
                    "context": {"requiredGranularScopes": list(scopes)}}],
        "category": "MISSING_SCOPES",
    }
    return HubSpotError(403, body)


class CallLog:
    """Counts of HubSpot API calls per method, path template and status."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str, int]] = Counter()

    def add(self, method: str, template: str, status: int) -> None:
        """Count one call."""
        self.counts[(method, template, status)] += 1

    def summary(self) -> dict[str, Any]:
        """Return the counts as the ``/_standin/calls`` response."""
        calls = [
            {"method": method, "path": template, "status": status, "count": count}
            for (method, template, status), count in sorted(self.counts.items())
        ]
        return {"total": sum(self.counts.values()), "calls": calls}
