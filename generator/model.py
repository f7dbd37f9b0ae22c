"""Typed values passed between the pipeline stages: answers in, a plan out."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

Lang = Literal["en", "ar"]
LANGS: tuple[Lang, ...] = ("en", "ar")
PATHS = ("connector", "ipaas", "api")


@dataclass(frozen=True)
class Bilingual:
    """A short text in English and Arabic."""

    en: str
    ar: str

    def get(self, lang: Lang) -> str:
        """Return the text in ``lang``."""
        return self.ar if lang == "ar" else self.en

    @classmethod
    def from_data(cls, data: dict[str, str]) -> Bilingual:
        """Build from a ``{en, ar}`` mapping read from a data file."""
        return cls(en=data["en"], ar=data["ar"])


@dataclass(frozen=True)
class Answers:
    """Validated answers with their final types; built only by ``answers.resolve_answers``."""

    client_name: str
    project_slug: str
    platform: str
    monthly_orders: int
    store_count: int
    growth: str
    sku_count: int
    crm: str
    team_focus: str | None
    erp_bi: tuple[str, ...]
    deep_erp_link: bool
    support_channels: tuple[str, ...]
    support_agents: int
    marketing_channels: tuple[str, ...]
    consent_channels: tuple[str, ...]
    goal: str
    start_date: dt.date
    path: str | None
    eid_al_fitr_days: int
    eid_al_adha_days: int

    def to_data(self) -> dict[str, Any]:
        """Return the answers as plain YAML/JSON data in schema order (dates as ISO text)."""
        data: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, dt.date):
                value = value.isoformat()
            data[name] = value
        return data


@dataclass(frozen=True)
class RuleHit:
    """A decision rule that fired, with its reason.

    ``outranked_by`` names the winning path rule when this rule proposed a path
    that lost; such a rule fired but did not shape the plan.
    """

    id: str
    reason: Bilingual
    outcome: dict[str, Any] = field(default_factory=dict)
    outranked_by: str | None = None


@dataclass(frozen=True)
class Alternative:
    """A path that was not chosen, why, and the id of the rule that decided against it."""

    path: str
    reason: Bilingual
    decided_by: str


@dataclass(frozen=True)
class Estimate:
    """Effort in working days and set-up cost in SAR for one path; both are estimates."""

    path: str
    days_min: int
    days_max: int
    setup_sar_min: int
    setup_sar_max: int
    subscription: Bilingual


@dataclass(frozen=True)
class Plan:
    """The decision: integration path, CRM, modules and every reason behind them."""

    path: str
    recommended_path: str
    crm: str
    platform: str
    modules: tuple[str, ...]
    rules: tuple[RuleHit, ...]
    alternatives: tuple[Alternative, ...]
    estimate: Estimate
    contact_sync: str
    product_sync_limit: int | None
    notes: tuple[Bilingual, ...] = ()

    @property
    def applied_rules(self) -> tuple[RuleHit, ...]:
        """Return the rules that shaped the plan, leaving out outranked path rules."""
        return tuple(hit for hit in self.rules if hit.outranked_by is None)

    @property
    def outranked_rules(self) -> tuple[RuleHit, ...]:
        """Return the path rules that fired but lost to a stronger one."""
        return tuple(hit for hit in self.rules if hit.outranked_by is not None)

    @property
    def overridden(self) -> bool:
        """Whether the answers forced a path other than the recommended one."""
        return self.path != self.recommended_path

    def to_data(self) -> dict[str, Any]:
        """Return the plan as the JSON shape printed by ``rabt explain --format json``."""
        return {
            "path": self.path,
            "recommended_path": self.recommended_path,
            "overridden": self.overridden,
            "crm": self.crm,
            "platform": self.platform,
            "modules": list(self.modules),
            "contact_sync": self.contact_sync,
            "product_sync_limit": self.product_sync_limit,
            "rules": [
                {"id": hit.id, "reason": hit.reason.en, "reason_ar": hit.reason.ar,
                 "outranked_by": hit.outranked_by}
                for hit in self.rules
            ],
            "alternatives": [
                {"path": alt.path, "reason": alt.reason.en, "reason_ar": alt.reason.ar,
                 "decided_by": alt.decided_by}
                for alt in self.alternatives
            ],
            "estimate": {
                "days_min": self.estimate.days_min,
                "days_max": self.estimate.days_max,
                "setup_sar_min": self.estimate.setup_sar_min,
                "setup_sar_max": self.estimate.setup_sar_max,
                "subscription": self.estimate.subscription.en,
                "subscription_ar": self.estimate.subscription.ar,
            },
            "notes": [{"en": note.en, "ar": note.ar} for note in self.notes],
        }
