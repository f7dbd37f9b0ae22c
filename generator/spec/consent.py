"""Build ``integration/consent.yaml``: consent per managed channel and the PDPL rules."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from generator.resources import load_data
from generator.spec._common import (
    SpecContext,
    add_confidence,
    bilingual,
    for_family,
    header,
    in_order,
    unconfirmed_note,
)


def build_consent(ctx: SpecContext) -> dict[str, Any]:
    """Build the consent spec for the channels in the answers' ``consent_channels``.

    Args:
        ctx: The answers and plan.

    Returns:
        Plain data for ``integration/consent.yaml``.
    """
    data = load_data("spec/consent")
    doc = header(ctx)
    order = data["channel_order"]
    managed = in_order(ctx.answers.consent_channels, order)
    doc["managed_channels"] = managed
    doc["unmanaged_channels"] = [channel for channel in order if channel not in managed]
    doc["channels"] = [_channel(name, data["channels"][name], ctx) for name in managed]
    doc["opt_in_capture"] = _opt_in_capture(data["opt_in_capture"], managed, ctx)
    doc["two_way"] = bilingual(data["two_way"])
    doc["unsubscribe"] = {
        "path": ctx.plan.path,
        "text": bilingual(data["unsubscribe"][ctx.plan.path]),
    }
    doc["check_before_send"] = bilingual(data["check_before_send"])
    doc["record"] = {
        "fields": [
            {"name": field["name"], "description": bilingual(field["description"])}
            for field in data["record"]["fields"]
        ]
    }
    basis = [*data["pdpl"]["basis"], data["pdpl"]["withdrawal"][ctx.plan.path]]
    pdpl: dict[str, Any] = {"basis": [bilingual(item) for item in basis]}
    doc["pdpl"] = add_confidence(pdpl, data["pdpl"]["note"])
    doc["erasure"] = for_family(data["erasure"], ctx)
    residency: dict[str, Any] = {"text": data["residency"][ctx.crm]}
    doc["residency"] = add_confidence(residency, data["residency_unconfirmed"].get(ctx.crm))
    return doc


def _opt_in_capture(
    data: Mapping[str, Any], managed: list[str], ctx: SpecContext
) -> dict[str, str]:
    """Describe the opt-in of the managed channels only, one sentence per channel."""
    if not managed:
        return bilingual(data["none"])
    texts = [data[ctx.family][channel] for channel in managed]
    return {lang: " ".join(text[lang] for text in texts) for lang in ("en", "ar")}


def _channel(name: str, data: Mapping[str, Any], ctx: SpecContext) -> dict[str, Any]:
    source_data = data["source"][ctx.family]
    source: dict[str, Any] = {
        "field": source_data["field"],
        "extra_fields": list(source_data["extra_fields"]),
        "states": [
            {"value": str(state["value"]), "meaning": state["meaning"]}
            for state in source_data["states"]
        ],
    }
    add_confidence(source, unconfirmed_note(source_data.get("unconfirmed"), ctx))
    target: dict[str, Any] = {
        "text": data["target"][ctx.crm],
        "fields": [str(field) for field in data["target_fields"][ctx.crm]],
    }
    add_confidence(target, unconfirmed_note(data.get("target_unconfirmed"), ctx))
    channel: dict[str, Any] = {
        "channel": name,
        "label": bilingual(data["label"]),
        "source": source,
        "target": target,
        "crm_status": data["crm_status"][ctx.crm],
    }
    if "rules" in data:
        channel["rules"] = [bilingual(rule) for rule in data["rules"]]
    return channel
