"""In-memory state of the Zoho CRM stand-in: metadata, records, tokens, credits, faults.

One ``ZohoState`` is one Zoho org plus its Accounts server. Every method takes the
lock, because uvicorn serves requests on its event loop while tests read the state
from their own thread.
"""

from __future__ import annotations

import secrets
import threading
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from .zoho_config import (
    CREDIT_WINDOW_SECONDS,
    MAX_ACCESS_TOKENS_PER_REFRESH_TOKEN,
    ZohoStandinConfig,
)
from .zoho_schema import ModuleDef, Option, build_standard_modules

__all__ = ["AccessToken", "Fault", "Pipeline", "ZohoState"]

_ORG_ID_PREFIX = "5725767"
_OWNER = {"name": "Stand-in Admin", "id": "5725767000000411001", "email": "admin@example.com"}


@dataclass
class AccessToken:
    """An issued access token and what it may do."""

    expires_at: float
    refresh_token: str
    client_id: str
    scopes: tuple[str, ...]


@dataclass
class Fault:
    """An injected failure: ``status`` for ``remaining`` calls or until ``until``."""

    status: int
    remaining: int | None
    until: float | None
    path_prefix: str = "/"


@dataclass
class Pipeline:
    """A Deals pipeline: a name and the Stage options it uses, in order."""

    id: str
    display_value: str
    default: bool
    stage_ids: list[str] = field(default_factory=list)


class ZohoState:
    """The org the stand-in plays; see the module docstring for the locking rule."""

    def __init__(self, config: ZohoStandinConfig | None = None) -> None:
        self.config = config or ZohoStandinConfig()
        self.lock = threading.RLock()
        self.after_reset: Callable[[ZohoState], None] | None = None
        self.reset()

    # -- set-up -------------------------------------------------------------

    def reset(self, seed: bool = True) -> bool:
        """Forget records, tokens, credits, calls and faults; return whether it re-seeded.

        Args:
            seed: Apply the seed again (``after_reset``), as after set-up; False leaves
                a new, empty org.
        """
        with self.lock:
            self._counter = 0
            self.modules: dict[str, ModuleDef] = build_standard_modules(self.next_id)
            self.records: dict[str, dict[str, dict[str, Any]]] = {
                name: {} for name in self.modules}
            self.written_at: dict[str, float] = {}
            # Notes by id. Notes are not a module of ``modules``, because the stand-in
            # serves only their creation.
            self.notes: dict[str, dict[str, Any]] = {}
            self.pipelines: list[Pipeline] = []
            self.access_tokens: dict[str, AccessToken] = {}
            self.tokens_by_refresh: dict[str, deque[str]] = {}
            self.refresh_count = 0
            self.credit_log: deque[tuple[float, int]] = deque()
            self.in_flight: Counter[str] = Counter()
            self.heavy_in_flight: Counter[str] = Counter()
            self.faults: list[Fault] = []
            self.calls: Counter[tuple[str, str, int]] = Counter()
            # The ``trigger`` of each record write, in order. None means the body had
            # none, and then Zoho runs every trigger (workflow rules among them).
            self.triggers: list[Any] = []
            self._add_standard_pipeline()
            if seed and self.after_reset is not None:
                self.after_reset(self)
                return True
            return False

    def _add_standard_pipeline(self) -> None:
        stage = self.modules["Deals"].fields["Stage"]
        pipeline = Pipeline(self.next_id(), "Standard", True,
                            [option.id for option in stage.options])
        self.pipelines.append(pipeline)
        self.refresh_pipeline_field()

    def refresh_pipeline_field(self) -> None:
        """Rebuild the options of Deals.Pipeline from the pipelines."""
        item = self.modules["Deals"].fields["Pipeline"]
        item.options = [Option(pipeline.display_value, pipeline.display_value, pipeline.id, number)
                        for number, pipeline in enumerate(self.pipelines, 1)]

    def next_id(self) -> str:
        """Return a new 19-digit id, shaped like Zoho's record and metadata ids."""
        with self.lock:
            self._counter += 1
            return f"{_ORG_ID_PREFIX}{self._counter:012d}"

    # -- time ---------------------------------------------------------------

    def now(self) -> float:
        """Return the stand-in's clock reading in seconds since the epoch."""
        return self.config.clock()

    def timestamp(self, moment: float | None = None) -> str:
        """Return ``moment`` (default now) as Zoho writes times: ISO 8601 with offset."""
        zone = timezone(timedelta(hours=self.config.utc_offset_hours))
        value = datetime.fromtimestamp(self.now() if moment is None else moment, UTC)
        return value.astimezone(zone).isoformat(timespec="seconds")

    @staticmethod
    def owner() -> dict[str, str]:
        """Return the user that owns every record the stand-in writes."""
        return dict(_OWNER)

    # -- tokens -------------------------------------------------------------

    def issue_access_token(self, refresh_token: str, client_id: str) -> str:
        """Issue an access token; a refresh token keeps at most 30, oldest dropped."""
        token = f"1000.{secrets.token_hex(16)}.{secrets.token_hex(16)}"
        with self.lock:
            self.refresh_count += 1
            self.access_tokens[token] = AccessToken(
                self.now() + self.config.access_token_seconds, refresh_token, client_id,
                self.config.scopes)
            issued = self.tokens_by_refresh.setdefault(refresh_token, deque())
            issued.append(token)
            while len(issued) > MAX_ACCESS_TOKENS_PER_REFRESH_TOKEN:
                self.access_tokens.pop(issued.popleft(), None)
        return token

    def find_access_token(self, token: str) -> AccessToken | None:
        """Return the live access token ``token``, or None when unknown or expired."""
        if token in self.config.static_access_tokens:
            return AccessToken(float("inf"), "", "static", self.config.scopes)
        with self.lock:
            found = self.access_tokens.get(token)
            if found is None or found.expires_at <= self.now():
                return None
            return found

    def expire_access_tokens(self) -> int:
        """Expire every issued access token now; return how many were live."""
        with self.lock:
            now = self.now()
            live = [item for item in self.access_tokens.values() if item.expires_at > now]
            for item in live:
                item.expires_at = now
            return len(live)

    def live_token_count(self) -> int:
        """Return how many issued access tokens have not expired."""
        with self.lock:
            now = self.now()
            return sum(1 for item in self.access_tokens.values() if item.expires_at > now)

    # -- credits and concurrency ---------------------------------------------

    def credits_used(self) -> int:
        """Return the credits spent in the rolling 24-hour window."""
        with self.lock:
            horizon = self.now() - CREDIT_WINDOW_SECONDS
            while self.credit_log and self.credit_log[0][0] <= horizon:
                self.credit_log.popleft()
            return sum(cost for _, cost in self.credit_log)

    def credits_remaining(self) -> int:
        """Return the credits left in the rolling 24-hour window."""
        return max(0, self.config.daily_credits() - self.credits_used())

    def charge_credits(self, cost: int) -> bool:
        """Spend ``cost`` credits; return False, spending nothing, when too few are left."""
        with self.lock:
            if self.credits_used() + cost > self.config.daily_credits():
                return False
            self.credit_log.append((self.now(), cost))
            return True

    def enter_call(self, client_id: str, heavy: bool) -> str | None:
        """Count a call in flight; return the exceeded limit's name, or None."""
        with self.lock:
            if self.in_flight[client_id] >= self.config.concurrency():
                return "concurrency"
            if heavy and self.heavy_in_flight[client_id] >= self.config.heavy_concurrency_limit:
                return "sub_concurrency"
            self.in_flight[client_id] += 1
            if heavy:
                self.heavy_in_flight[client_id] += 1
            return None

    def leave_call(self, client_id: str, heavy: bool) -> None:
        """Release the slot ``enter_call`` took."""
        with self.lock:
            self.in_flight[client_id] -= 1
            if heavy:
                self.heavy_in_flight[client_id] -= 1

    # -- faults and call log -------------------------------------------------

    def add_fault(self, fault: Fault) -> None:
        """Queue an injected failure."""
        with self.lock:
            self.faults.append(fault)

    def take_fault(self, path: str) -> int | None:
        """Return the status of the first active fault matching ``path``, using it up."""
        with self.lock:
            now = self.now()
            self.faults = [fault for fault in self.faults if _active(fault, now)]
            for fault in self.faults:
                if not path.startswith(fault.path_prefix):
                    continue
                if fault.remaining is not None:
                    fault.remaining -= 1
                return fault.status
            return None

    def record_call(self, method: str, template: str, status: int) -> None:
        """Count one call by method, route template and response status."""
        with self.lock:
            self.calls[(method, template, status)] += 1


def _active(fault: Fault, now: float) -> bool:
    if fault.remaining is not None and fault.remaining <= 0:
        return False
    return fault.until is None or now < fault.until
