"""Build ``integration/lifecycle.yaml``: the four lifecycle stages and their CRM values."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from generator.resources import load_data
from generator.spec._common import SpecContext, add_confidence, bilingual, header, note_text
from generator.spec.conditions import copy_conditions


def build_lifecycle(ctx: SpecContext) -> dict[str, Any]:
    """Build the lifecycle stages with entry rules and the CRM's stage values.

    Args:
        ctx: The answers and plan.

    Returns:
        Plain data for ``integration/lifecycle.yaml``.
    """
    data = load_data("spec/lifecycle")
    doc = header(ctx)
    crm_field: dict[str, Any] = dict(data["crm_field"][ctx.crm])
    if ctx.crm == "hubspot":
        note = data["hubspot_backward_note"]
        add_confidence(crm_field, note_text(note, "en"), note_text(note, "ar"))
    doc["crm_field"] = crm_field
    doc["stages"] = [
        _stage(stage, position, ctx) for position, stage in enumerate(data["stages"], start=1)
    ]
    return doc


def _stage(data: Mapping[str, Any], position: int, ctx: SpecContext) -> dict[str, Any]:
    stage: dict[str, Any] = {
        "key": data["key"],
        "order": position,
        "label": bilingual(data["label"]),
        "entry": copy_conditions(data["entry"], {}),
        "rule": bilingual(data["rule"]),
        "crm_value": str(data["crm_value"][ctx.crm]),
    }
    # lifecyclestage has one value for both kinds of customer, so HubSpot also
    # gets the stage key in a property of its own.
    if ctx.crm == "hubspot":
        stage["detail_value"] = data["key"]
    return stage
