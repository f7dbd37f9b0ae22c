"""Build ``integration/segments.yaml``: VIP, recent buyers, dormant and new subscribers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from generator.resources import load_data
from generator.spec._common import SpecContext, add_confidence, bilingual, fill, header
from generator.spec.conditions import copy_conditions


def build_segments(ctx: SpecContext) -> dict[str, Any]:
    """Build the segments with entry and exit rules over the contact roll-ups.

    The VIP threshold comes from the answers' monthly orders (see ``vip_threshold``).

    Args:
        ctx: The answers and plan.

    Returns:
        Plain data for ``integration/segments.yaml``.
    """
    data = load_data("spec/segments")
    doc = header(ctx)
    vip = vip_threshold(ctx.answers.monthly_orders)
    doc["vip_threshold"] = vip
    list_data = data["list"][ctx.crm]
    list_spec = {"type": list_data["type"], "how": list_data["how"]}
    doc["list"] = add_confidence(list_spec, list_data.get("unconfirmed"))
    variables = {
        "vip_threshold_sar": vip["threshold_sar"],
        "vip_exit_threshold_sar": vip["exit_threshold_sar"],
    }
    doc["segments"] = [_segment(item, variables) for item in data["segments"]]
    return doc


def vip_threshold(monthly_orders: int) -> dict[str, Any]:
    """Choose the VIP lifetime-value bar in SAR for a store of ``monthly_orders``.

    The first tier in ``data/spec/segments.yaml`` whose ``max_monthly_orders`` is at
    least ``monthly_orders`` (or is open-ended) decides. The exit bar is a share of it,
    so one small refund does not move a customer in and out of the segment.

    Args:
        monthly_orders: Orders a month from the answers, 0 or more.

    Returns:
        ``threshold_sar`` and ``exit_threshold_sar`` as integers of SAR, the
        ``monthly_orders`` used and the reason in English and Arabic.

    Raises:
        ValueError: ``monthly_orders`` is negative.
    """
    if monthly_orders < 0:
        raise ValueError(f"monthly_orders must be 0 or more, got {monthly_orders}")
    data = load_data("spec/segments")["vip"]
    tiers: Sequence[Mapping[str, Any]] = data["threshold_tiers"]
    low = 0
    for tier in tiers:
        high = tier["max_monthly_orders"]
        if high is None or monthly_orders <= high:
            break
        low = high + 1
    else:
        raise ValueError("the last VIP threshold tier must have max_monthly_orders: null")
    threshold = int(tier["threshold_sar"])
    exit_threshold = threshold * int(data["exit_percent_of_threshold"]) // 100
    labels = data["tier_labels"]
    kind = "open" if high is None else "bounded"
    tier_text = {
        lang: labels[lang][kind].format(low=f"{low:,}", high=f"{high or 0:,}")
        for lang in ("en", "ar")
    }
    reason = {
        lang: data["reason"][lang].format(
            monthly_orders=f"{monthly_orders:,}", tier=tier_text[lang],
            threshold_sar=f"{threshold:,}")
        for lang in ("en", "ar")
    }
    return {
        "threshold_sar": threshold,
        "exit_threshold_sar": exit_threshold,
        "monthly_orders": monthly_orders,
        "reason": reason,
    }


def _segment(data: Mapping[str, Any], variables: Mapping[str, int]) -> dict[str, Any]:
    amounts = {name: f"{value:,}" for name, value in variables.items()}
    return {
        "key": data["key"],
        "name": bilingual(data["name"]),
        "purpose": bilingual(data["purpose"]),
        "entry": {"all": copy_conditions(data["entry"], variables)},
        "exit": {"any": copy_conditions(data["exit"], variables)},
        "rule": {
            "entry": fill(data["rule"]["entry"], **amounts),
            "exit": fill(data["rule"]["exit"], **amounts),
        },
    }
