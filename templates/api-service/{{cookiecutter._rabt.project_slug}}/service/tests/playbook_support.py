"""Helpers of the playbook timer tests: a fixed spec, a clock, fake consent and discounts.

The spec here is fixed rather than the project's, so the timings the tests step
through do not depend on the answers; ``test_playbooks.py`` also loads the project's
own spec. Every email and phone is made up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from storesync.db import Database
from storesync.playbook_config import PlaybookConfig, load_playbook_config
from storesync.playbooks import ContactRef, PlaybookRunner, StepSender
from storesync.sync_store import SyncStore
from storesync.timers import TimerStore

RIYADH = ZoneInfo("Asia/Riyadh")
HOUR = 3600.0
DAY = 86_400.0
SHOP = "test-shop.myshopify.com"
CONTACT = ContactRef("c1", "email", "cart.buyer@example.com", "+966500000021")


def riyadh(text: str) -> float:
    """Return a local Riyadh time such as ``2026-03-01 10:00`` as seconds since the epoch."""
    return datetime.fromisoformat(text).replace(tzinfo=RIYADH).timestamp()


def _step(channel: str, kind: str, offset: int, unit: str, template: str | None,
          discount: bool, number: int) -> dict[str, Any]:
    return {"step": number, "channel": channel, "kind": kind,
            "consent": channel if kind == "marketing" else "none",
            "offset": {"value": offset, "unit": unit}, "template": template,
            "discount": discount}


PLAYBOOKS: dict[str, Any] = {
    "quiet_hours": {"timezone": "Asia/Riyadh", "windows": [
        {"name": "night", "days": ["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
         "start": "22:00", "end": "09:00"},
        {"name": "friday_prayer", "days": ["fri"], "start": "11:30", "end": "13:30"}]},
    "whatsapp": {"service_window_hours": 24},
    "playbooks": [
        {"key": "abandoned_cart", "enabled": True,
         "delay": {"default": 2, "min": 1, "max": 4, "unit": "hours"},
         "steps": [_step("email", "marketing", 0, "hours", "cart_reminder", True, 1),
                   _step("whatsapp", "marketing", 20, "hours", "cart_reminder", True, 2)],
         "discount_code": {"issued_at_step": 1, "last_step": 2, "expires_after_hours": 68}},
        {"key": "post_purchase", "enabled": True,
         "delay": {"default": 7, "min": 7, "max": 7, "unit": "days"},
         "steps": [_step("email", "marketing", 0, "days", "review_and_recommendations", False,
                         1)]},
        {"key": "win_back", "enabled": True,
         "delay": {"default": 45, "min": 45, "max": 60, "unit": "days"},
         "steps": [_step("email", "marketing", 0, "days", "win_back_offer", True, 1)],
         "discount_code": {"issued_at_step": 1, "last_step": 1, "expires_after_hours": 48}},
        {"key": "vip_care", "enabled": True,
         "delay": {"default": 0, "min": 0, "max": 0, "unit": "hours"},
         "steps": [_step("internal", "internal", 0, "hours", None, False, 1)]},
    ],
}
SEGMENTS: dict[str, Any] = {"vip_threshold": {"threshold_sar": 5000, "exit_threshold_sar": 4500}}
MAPPING: dict[str, Any] = {"entities": {"contact": {"rollups": [
    {"name": name, "target": f"ecom_{name}"} for name in (
        "playbook_step", "discount_code", "discount_expires_at", "last_checkout_at",
        "last_cart_url", "last_cart_value_sar", "ltv_sar")]}}}


def write_playbook_spec(folder: Path, playbooks: dict[str, Any] | None = None,
                        segments: dict[str, Any] | None = None) -> Path:
    """Write ``playbooks.yaml`` and ``segments.yaml`` into ``folder`` and return it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "playbooks.yaml").write_text(yaml.safe_dump(playbooks or PLAYBOOKS),
                                           encoding="utf-8")
    (folder / "segments.yaml").write_text(yaml.safe_dump(segments or SEGMENTS), encoding="utf-8")
    return folder


@dataclass
class Clock:
    """A clock the test moves by hand."""

    now: float

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class FakeConsent:
    """Consent per (contact, channel); every channel is allowed unless denied."""

    denied: set[tuple[str, str]] = field(default_factory=set)
    asked: list[tuple[str, str]] = field(default_factory=list)

    def allows(self, contact_key: str, channel: str, at: float | None = None) -> bool:
        self.asked.append((contact_key, channel))
        return (contact_key, channel) not in self.denied


@dataclass
class FakeDiscounts:
    """Issues one code per checkout key and records every call."""

    calls: list[tuple[str, str, float]] = field(default_factory=list)

    def create_code(self, checkout_key: str, contact_key: str,
                    expires_at: float) -> tuple[str, float]:
        self.calls.append((checkout_key, contact_key, expires_at))
        return f"BACK-{len({call[0] for call in self.calls})}", expires_at


@dataclass
class Rig:
    """One worker's view of a state file: its stores and runner."""

    db: Database
    store: SyncStore
    timers: TimerStore
    runner: PlaybookRunner

    def close(self) -> None:
        self.db.close()


def make_rig(state: Path, config: PlaybookConfig, clock: Clock, consent: FakeConsent,
             discounts: FakeDiscounts, senders: dict[str, StepSender] | None = None) -> Rig:
    """Open the state file as one worker would."""
    db = Database(state)
    store = SyncStore(db, clock=clock)
    timers = TimerStore(db, clock=clock)
    runner = PlaybookRunner(config=config, store=store, timers=timers, consent=consent,
                            discounts=discounts, senders=senders or {}, clock=clock)
    return Rig(db, store, timers, runner)


def load_test_config(folder: Path, environ: dict[str, str] | None = None) -> PlaybookConfig:
    """Write the fixed spec into ``folder`` and load it."""
    return load_playbook_config(write_playbook_spec(folder), MAPPING, environ)


def contact_marks(rig: Rig) -> list[dict[str, Any]]:
    """Return the contact properties waiting in the outbox, one dict per contact row."""
    return [row.item.properties for row in rig.store.due("contacts", float("inf"), 100)]


def clear_outbox(rig: Rig) -> None:
    """Empty the outbox, as if the flusher had written everything."""
    with rig.db.transaction() as conn:
        conn.execute("DELETE FROM sync_outbox")
