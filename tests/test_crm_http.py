"""The CRM HTTP client's waits on HubSpot's rate limits, driven by ``httpx.MockTransport``."""

from __future__ import annotations

import httpx
import pytest

from generator.crm.http import CallOptions, CrmApiError, CrmHttp
from generator.runtime.ratelimit import TokenBucket


def limited_then_ok(policy: str, rejections: int, headers: dict[str, str] | None = None
                    ) -> tuple[httpx.MockTransport, list[int]]:
    """Return a transport that answers 429 with ``policy`` ``rejections`` times, then 200."""
    seen: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(1)
        if len(seen) <= rejections:
            return httpx.Response(429, headers=headers or {},
                                  json={"status": "error", "errorType": "RATE_LIMIT",
                                        "message": "You have reached your ten_secondly_rolling "
                                                   "limit.", "policyName": policy})
        return httpx.Response(200, json={"results": []})

    return httpx.MockTransport(handler), seen


def client(transport: httpx.MockTransport, sleeps: list[float],
           limiter: TokenBucket | None = None) -> CrmHttp:
    options = CallOptions(transport=transport, sleep=sleeps.append)
    return CrmHttp("http://127.0.0.1:1", lambda: {}, options, limiter)


def test_rolling_429_waits_whole_window() -> None:
    transport, seen = limited_then_ok("TEN_SECONDLY_ROLLING", 5)
    sleeps: list[float] = []
    data = client(transport, sleeps).request("GET", "/crm/v3/properties/contacts")
    assert data == {"results": []}
    assert len(seen) == 6
    assert sleeps == [10.5] * 5


def test_secondly_429_waits_one_second() -> None:
    transport, _ = limited_then_ok("SECONDLY", 1)
    sleeps: list[float] = []
    client(transport, sleeps).request("POST", "/crm/v3/objects/contacts/search", body={})
    assert sleeps == [1.5]


def test_rolling_429_honours_retry_after() -> None:
    transport, _ = limited_then_ok("TEN_SECONDLY_ROLLING", 1, {"Retry-After": "3"})
    sleeps: list[float] = []
    client(transport, sleeps).request("GET", "/crm/v3/properties/contacts")
    assert sleeps == [3.0]


def test_rolling_429_pauses_shared_bucket() -> None:
    transport, _ = limited_then_ok("TEN_SECONDLY_ROLLING", 1)
    sleeps: list[float] = []
    bucket = TokenBucket(100, 10.0, sleep=sleeps.append)
    client(transport, [], bucket).request("GET", "/crm/v3/properties/contacts")
    assert bucket.available() < -90


def test_rolling_429_gives_up_eventually() -> None:
    transport, seen = limited_then_ok("TEN_SECONDLY_ROLLING", 1000)
    sleeps: list[float] = []
    with pytest.raises(CrmApiError) as raised:
        client(transport, sleeps).request("GET", "/crm/v3/properties/contacts")
    assert raised.value.status == 429
    assert sleeps[:6] == [10.5] * 6
    assert len(seen) == 6 + 5


def test_daily_429_fails_at_once() -> None:
    transport, seen = limited_then_ok("DAILY", 1)
    with pytest.raises(CrmApiError):
        client(transport, []).request("GET", "/crm/v3/properties/contacts")
    assert len(seen) == 1
