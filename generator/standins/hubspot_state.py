"""The whole in-memory account of one HubSpot stand-in app, behind one lock.

Starlette runs the handlers on uvicorn's event loop, and tests or seeding code may
call in from other threads, so every read and write takes ``StandinState.lock``.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from .hubspot_config import HubSpotStandinConfig
from .hubspot_limits import CallLog, FaultInjector, RateLimiter
from .hubspot_lists import EventStore, ListStore
from .hubspot_preferences import PreferenceStore
from .hubspot_records import RecordStore
from .hubspot_schema import SchemaStore

# Record, pipeline and stage ids start here, so they look like HubSpot's numeric ids.
FIRST_ID = 1001


class StandinState:
    """Records, schema, lists, events, limits and the call log of one stand-in."""

    def __init__(self, config: HubSpotStandinConfig) -> None:
        self.config = config
        self.lock = threading.RLock()
        self.limiter = RateLimiter(config)
        self.faults = FaultInjector(config)
        self.calls = CallLog()
        self._load_empty_account()

    def _load_empty_account(self) -> None:
        self._next_id = FIRST_ID
        self.schema = SchemaStore(self.next_id, self.now_iso)
        self.records = RecordStore(self.schema, self.next_id, self.config.clock, self.now_iso)
        self.lists = ListStore(self.schema, self.now_iso)
        self.events = EventStore(self.config.portal_id, self.now_iso)
        self.preferences = PreferenceStore()

    def reset(self) -> None:
        """Return to a new account: no records, default schema, no faults, counts at zero."""
        with self.lock:
            self._load_empty_account()
            self.limiter.reset()
            self.faults.faults.clear()
            self.calls.counts.clear()

    def next_id(self) -> str:
        """Return a new numeric id as a string."""
        value = self._next_id
        self._next_id += 1
        return str(value)

    def now_iso(self) -> str:
        """Return the clock's time as HubSpot formats timestamps: UTC, milliseconds, Z."""
        moment = datetime.fromtimestamp(self.config.clock(), UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
