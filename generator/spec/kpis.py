"""Build ``integration/kpis.yaml``: definitions, formulas, sources and the primary KPI."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from generator.resources import load_data
from generator.spec._common import (
    MARKETING_CHANNELS,
    SpecContext,
    add_confidence,
    bilingual,
    fill,
    for_crm,
    header,
    in_order,
    unconfirmed_note,
)


def build_kpis(ctx: SpecContext) -> dict[str, Any]:
    """Build the KPI definitions and mark the one that the answers' goal makes primary.

    Args:
        ctx: The answers and plan.

    Returns:
        Plain data for ``integration/kpis.yaml``.
    """
    data = load_data("spec/kpis")
    doc = header(ctx)
    primary = data["primary_by_goal"][ctx.answers.goal]
    doc["goal"] = ctx.answers.goal
    doc["primary_kpi"] = primary
    hours = data["business_hours"]
    doc["business_hours"] = {
        "timezone": hours["timezone"],
        "days": list(hours["days"]),
        "start": str(hours["start"]),
        "end": str(hours["end"]),
    }
    channels = in_order(ctx.answers.marketing_channels, MARKETING_CHANNELS)
    doc["kpis"] = [_kpi(item, primary, channels, data, ctx) for item in data["kpis"]]
    return doc


def _kpi(
    data: Mapping[str, Any],
    primary: str,
    channels: list[str],
    catalogue: Mapping[str, Any],
    ctx: SpecContext,
) -> dict[str, Any]:
    source = for_crm(data["source"], ctx)
    if source == "$sync_source":
        source = catalogue["sync_source"][ctx.plan.path]
    module = data.get("module")
    enabled = module is None or ctx.has_module(module)
    kpi: dict[str, Any] = {
        "key": data["key"],
        "enabled": enabled,
        "primary": data["key"] == primary,
        "name": bilingual(data["name"]),
        "definition": bilingual(data["definition"]),
        "formula": data["formula"],
        "formula_text": bilingual(data["formula_text"]),
        "unit": data["unit"],
        "direction": data["direction"],
        "source": source,
    }
    if not enabled:
        kpi["disabled_reason"] = fill(catalogue["disabled_reason"], module=module)
    if data.get("per_channel"):
        kpi["per_channel"] = list(channels)
    kpi["inputs"] = [_input(name, catalogue, ctx) for name in data["inputs"]]
    return add_confidence(kpi, unconfirmed_note(data.get("unconfirmed"), ctx))


def _input(name: str, catalogue: Mapping[str, Any], ctx: SpecContext) -> dict[str, Any]:
    """Describe one KPI input from the catalogue, with the system it is read from."""
    entry = catalogue["inputs"][name]
    system = entry["system"]
    if system == "$sync_system":
        system = catalogue["sync_system"][ctx.plan.path]
    return {
        "name": name,
        "system": system,
        "external": bool(entry.get("external", False)),
        "description": bilingual(entry["description"]),
    }
