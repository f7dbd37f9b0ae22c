"""Fixtures of the Zoho tests: the Zoho stand-in under uvicorn and clients pointed at it.

The client tests seed a small org of their own, so they run in every project. The
end-to-end tests use the project's field map and desired state, so they need a
project whose CRM is Zoho. Every credential here is a made-up test value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from intake_support import serve
from storesync.standins.zoho import ZohoStandinConfig, create_app, seed_from_desired_state
from storesync.standins.zoho_state import ZohoState
from storesync.zoho import ZohoClient
from storesync.zoho_auth import ZohoTokens
from storesync.zoho_credits import CallSlots, CreditBudget

CLIENT_ID = "1000.TESTCLIENTNOTREAL"
CLIENT_SECRET = "test-client-secret-not-real"
REFRESH_TOKEN = "1000.test-refresh-token-not-real"
# A small org: Contacts with a unique store customer id, as a Zoho project's set-up makes.
SMALL_ORG: dict[str, Any] = {
    "crm": "zoho",
    "modules": [{"module": "Contacts", "fields": [
        {"api_name": "Ecom_Customer_ID", "data_type": "text", "unique": True}]}],
    "picklists": [],
}


class ZohoClock:
    """A clock for the stand-in, the token source and the credit budget; sleeping moves it."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@dataclass
class ZohoStandin:
    """A Zoho stand-in served on 127.0.0.1, with its in-process state for inspection."""

    url: str
    http: httpx.Client
    state: ZohoState

    def records(self, module: str) -> list[dict[str, Any]]:
        """Return every stored record of ``module``."""
        response = self.http.get(f"/_standin/records/{module}")
        response.raise_for_status()
        records = response.json()["records"]
        assert isinstance(records, list)
        return records

    def refreshes(self) -> int:
        """Return how many access tokens the stand-in has issued."""
        return int(self.http.get("/_standin/tokens").json()["refreshes"])

    def fault(self, status: int, count: int, path_prefix: str = "/") -> None:
        """Fail the next ``count`` calls under ``path_prefix`` with ``status``."""
        self.http.post("/_standin/faults", json={"status": status, "count": count,
                                                 "path_prefix": path_prefix}
                       ).raise_for_status()


@pytest.fixture
def start_zoho() -> Iterator[Callable[..., ZohoStandin]]:
    """Return a function that serves a seeded Zoho stand-in until the test ends."""
    with ExitStack() as stack:

        def start(config: ZohoStandinConfig | None = None,
                  desired_state: Mapping[str, Any] | None = None) -> ZohoStandin:
            app = create_app(config)
            seed_from_desired_state(app, desired_state or SMALL_ORG)
            url = stack.enter_context(serve(app))
            http = stack.enter_context(httpx.Client(base_url=url, timeout=10))
            return ZohoStandin(url, http, app.state.zoho)

        yield start


@pytest.fixture
def make_zoho_client(tmp_path: Path) -> Iterator[Callable[..., ZohoClient]]:
    """Return a factory of Zoho clients for a stand-in; they close when the test ends."""
    clients: list[ZohoClient] = []

    def build(standin: ZohoStandin, *, clock: ZohoClock | None = None, daily_limit: int = 50_000,
              concurrency: int = 20,
              refresh_token: str = REFRESH_TOKEN, dc: str = "sa") -> ZohoClient:
        clock = clock or ZohoClock()
        tokens = ZohoTokens(CLIENT_ID, CLIENT_SECRET, refresh_token, dc=dc,
                            accounts_url=standin.url, clock=clock)
        budget = CreditBudget(daily_limit, clock=clock, sleep=clock.sleep)
        client = ZohoClient(tokens, budget, CallSlots(concurrency), sleep=clock.sleep)
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.close()
