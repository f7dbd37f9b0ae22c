"""Context and helpers shared by the spec file builders.

Data files under ``generator/data/spec/`` key store paths by *source family*
(``shopify``, ``woocommerce``, ``storefront``) and CRM targets by CRM. A headless
or custom store sends the documented storefront event, so both map to the
``storefront`` family.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from generator.model import Answers, Plan

SPEC_VERSION = 1
CRMS = ("hubspot", "zoho", "custom")
PLATFORMS = ("shopify", "woocommerce", "headless", "custom")
SOURCE_FAMILY = {
    "shopify": "shopify",
    "woocommerce": "woocommerce",
    "headless": "storefront",
    "custom": "storefront",
}
MODULES = ("contacts", "orders", "products", "events", "playbooks", "consent", "support", "erp_bi")
CONSENT_CHANNELS = ("email", "sms", "whatsapp")
SUPPORT_CHANNELS = ("whatsapp", "phone", "email")
MARKETING_CHANNELS = ("meta", "google", "tiktok", "snapchat", "organic", "offline")


@dataclass(frozen=True)
class SpecContext:
    """The answers and plan one spec is built from, with the lookups every builder needs."""

    answers: Answers
    plan: Plan

    @property
    def crm(self) -> str:
        """CRM the spec writes to: ``hubspot``, ``zoho`` or ``custom``."""
        return self.plan.crm

    @property
    def platform(self) -> str:
        """Store platform the spec reads from."""
        return self.plan.platform

    @property
    def family(self) -> str:
        """Source family of the platform: ``shopify``, ``woocommerce`` or ``storefront``."""
        return SOURCE_FAMILY[self.plan.platform]

    def has_module(self, module: str) -> bool:
        """Whether the plan includes ``module``."""
        return module in self.plan.modules


def header(ctx: SpecContext) -> dict[str, Any]:
    """Return the keys every spec file starts with."""
    return {"version": SPEC_VERSION, "crm": ctx.crm, "platform": ctx.platform}


def bilingual(text: Mapping[str, str]) -> dict[str, str]:
    """Copy an ``{en, ar}`` text from a data file."""
    return {"en": str(text["en"]), "ar": str(text["ar"])}


def fill(text: Mapping[str, str], **fields: Any) -> dict[str, str]:
    """Copy an ``{en, ar}`` text with ``str.format`` fields filled in both languages."""
    return {"en": text["en"].format(**fields), "ar": text["ar"].format(**fields)}


def for_family(value: Any, ctx: SpecContext) -> Any:
    """Pick the family's entry of a value keyed by source family.

    A plain value, such as one string, fits every family.
    """
    if isinstance(value, Mapping):
        return value.get(ctx.family)
    return value


def for_crm(value: Any, ctx: SpecContext) -> Any:
    """Pick the CRM's entry of a value keyed by CRM, then by family when that entry is keyed too."""
    if not isinstance(value, Mapping):
        return value
    entry = value.get(ctx.crm)
    if isinstance(entry, Mapping):
        return entry.get(ctx.family, entry.get("default"))
    return entry


def unconfirmed_note(
    marks: Iterable[Mapping[str, Any]] | None, ctx: SpecContext, lang: str = "en"
) -> str | None:
    """Join the notes of the ``unconfirmed`` marks that apply to this CRM and source family.

    A mark applies when its ``crm`` and ``source`` keys, where present, match the context.
    For ``lang="ar"`` the result is None unless every applying note has an Arabic twin,
    so an Arabic guide never shows part of the notes, or English ones.
    """
    notes = [
        note_text(mark["note"], lang)
        for mark in marks or ()
        if mark.get("crm", ctx.crm) == ctx.crm and mark.get("source", ctx.family) == ctx.family
    ]
    if not notes or None in notes:
        return None
    return " ".join(note for note in notes if note)


def note_text(note: Any, lang: str) -> str | None:
    """Return a data file's note in ``lang``.

    A note is either English text or a mapping with ``en`` and ``ar``. English text
    has no Arabic twin, so it returns None for ``ar``.
    """
    if isinstance(note, Mapping):
        return str(note[lang])
    return str(note) if lang == "en" else None


def add_confidence(entry: dict[str, Any], note: str | None,
                   note_ar: str | None = None) -> dict[str, Any]:
    """Mark ``entry`` as unconfirmed with ``note`` when a note is given, and return the entry.

    ``note_ar``, the note's Arabic twin, is kept only beside an English note.
    """
    if note:
        entry["confidence"] = "unconfirmed"
        entry["note"] = note
        if note_ar:
            entry["note_ar"] = note_ar
    return entry


def add_unconfirmed(entry: dict[str, Any], marks: Iterable[Mapping[str, Any]] | None,
                    ctx: SpecContext) -> dict[str, Any]:
    """Mark ``entry`` with the applying ``unconfirmed`` marks, in English and in Arabic."""
    marks = list(marks or ())
    return add_confidence(entry, unconfirmed_note(marks, ctx), unconfirmed_note(marks, ctx, "ar"))


def in_order(values: Iterable[str], order: Iterable[str]) -> list[str]:
    """Return ``values`` in the canonical ``order``.

    The order of an answer list therefore never changes the spec.
    """
    present = set(values)
    return [value for value in order if value in present]
