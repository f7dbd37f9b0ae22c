"""The stand-in's subscription statuses and GDPR blocklist (see ``hubspot_privacy``)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Status:
    """One subscriber's status for one subscription type."""

    status: str
    timestamp: str
    legal_basis: str | None = None
    explanation: str | None = None
    source: str = "API"


@dataclass
class PreferenceStore:
    """Statuses by (channel, subscriber), the GDPR blocklist and the deleted contacts."""

    statuses: dict[tuple[str, str], dict[int, Status]] = field(default_factory=dict)
    blocklist: set[str] = field(default_factory=set)
    deleted: list[dict[str, str]] = field(default_factory=list)
