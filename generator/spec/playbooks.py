"""Build ``integration/playbooks.yaml``: the six playbooks, limited to the allowed channels.

A marketing step stays only when its channel is one of the answers'
``consent_channels``, and a service step only when its channel is one of the
``support_channels``. Internal steps always stay. Every dropped step is listed with
its reason, so the client sees why a channel is missing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from generator.resources import load_data
from generator.spec._common import (
    SpecContext,
    add_confidence,
    add_unconfirmed,
    bilingual,
    fill,
    for_family,
    header,
    note_text,
)


def build_playbooks(ctx: SpecContext) -> dict[str, Any]:
    """Build the playbooks with triggers, delays, consent-gated steps and exits.

    Args:
        ctx: The answers and plan.

    Returns:
        Plain data for ``integration/playbooks.yaml``.
    """
    data = load_data("spec/playbooks")
    doc = header(ctx)
    doc["quiet_hours"] = _quiet_hours(data["quiet_hours"])
    doc["whatsapp"] = {
        "service_window_hours": int(data["whatsapp"]["service_window_hours"]),
        "rule": bilingual(data["whatsapp"]["rule"]),
    }
    doc["discount"] = _discount(data["discount"], ctx)
    hours_after_last = int(data["discount"]["expires_after_hours"])
    doc["playbooks"] = [
        _playbook(item, data["drop_reasons"], hours_after_last, ctx) for item in data["playbooks"]
    ]
    return doc


def _quiet_hours(data: Mapping[str, Any]) -> dict[str, Any]:
    quiet: dict[str, Any] = {
        "timezone": data["timezone"],
        "windows": [
            {"name": window["name"], "days": list(window["days"]),
             "start": str(window["start"]), "end": str(window["end"])}
            for window in data["windows"]
        ],
        "rule": bilingual(data["rule"]),
    }
    return add_confidence(quiet, note_text(data["note"], "en"), note_text(data["note"], "ar"))


def _discount(data: Mapping[str, Any], ctx: SpecContext) -> dict[str, Any]:
    discount: dict[str, Any] = {
        "kind": data["kind"],
        "percent": int(data["percent"]),
        "single_use": bool(data["single_use"]),
        "expires_after_hours": int(data["expires_after_hours"]),
        "create_with": for_family(data["create_with"], ctx),
        "rule": fill(data["rule"], expires_after_hours=int(data["expires_after_hours"])),
    }
    return add_unconfirmed(discount, data.get("unconfirmed"), ctx)


_HOURS_PER_UNIT = {"hours": 1, "days": 24}


def discount_code(steps: list[dict[str, Any]], hours_after_last: int) -> dict[str, Any] | None:
    """Return when a playbook's discount code is issued and how long it stays valid.

    One code serves the whole playbook: the first kept step with a discount sends it
    and the later ones repeat it, so it must outlive the last of them.

    Args:
        steps: The playbook's kept steps, in order.
        hours_after_last: Hours the code stays valid after the last step that carries it.

    Returns:
        ``{"issued_at_step", "last_step", "expires_after_hours"}`` with the expiry
        counted from the issuing step, or None when no kept step carries a discount.
    """
    carriers = [step for step in steps if step["discount"]]
    if not carriers:
        return None
    first, last = carriers[0], carriers[-1]
    span = _offset_hours(last["offset"]) - _offset_hours(first["offset"])
    return {
        "issued_at_step": first["step"],
        "last_step": last["step"],
        "expires_after_hours": span + hours_after_last,
    }


def _offset_hours(offset: Mapping[str, Any]) -> int:
    return int(offset["value"]) * _HOURS_PER_UNIT[offset["unit"]]


def _playbook(
    data: Mapping[str, Any],
    drop_reasons: Mapping[str, Any],
    hours_after_last: int,
    ctx: SpecContext,
) -> dict[str, Any]:
    steps, dropped = _split_steps(data["steps"], drop_reasons, ctx)
    playbook: dict[str, Any] = {
        "key": data["key"],
        "enabled": ctx.has_module("playbooks") and bool(steps),
        "name": bilingual(data["name"]),
        "goal": bilingual(data["goal"]),
        "trigger": _trigger(data["trigger"], ctx),
        "delay": {key: data["delay"][key] for key in ("default", "min", "max", "unit")},
        "steps": steps,
        "dropped_steps": dropped,
        "exit": {"events": list(data["exit"]["events"]), "text": bilingual(data["exit"]["text"])},
        "kpis": list(data["kpis"]),
    }
    if not steps:
        playbook["disabled_reason"] = bilingual(drop_reasons["empty"])
    elif not ctx.has_module("playbooks"):
        playbook["disabled_reason"] = fill(drop_reasons["module"], module="playbooks")
    code = discount_code(steps, hours_after_last)
    if code is not None:
        playbook["discount_code"] = code
    if "points" in data:
        playbook["points"] = {key: int(value) for key, value in data["points"].items()}
    return add_unconfirmed(playbook, data.get("unconfirmed"), ctx)


def _trigger(data: Mapping[str, Any], ctx: SpecContext) -> dict[str, Any]:
    trigger: dict[str, Any] = {"events": list(data["events"]), "text": bilingual(data["text"])}
    if "source" in data:
        trigger["source"] = for_family(data["source"], ctx)
    return trigger


def _split_steps(
    candidates: list[Mapping[str, Any]], drop_reasons: Mapping[str, Any], ctx: SpecContext
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Keep the steps whose channel the answers allow and explain the others."""
    kept: list[dict[str, Any]] = []
    dropped: list[dict[str, Any]] = []
    for candidate in candidates:
        kind, channel = candidate["kind"], candidate["channel"]
        if kind == "marketing" and channel not in ctx.answers.consent_channels:
            reason = _named(drop_reasons["marketing"], channel)
        elif kind == "service" and channel not in ctx.answers.support_channels:
            reason = _named(drop_reasons["service"], channel)
        else:
            kept.append(_step(candidate, len(kept) + 1, ctx))
            continue
        dropped.append({"channel": channel, "kind": kind, "reason": reason})
    return kept, dropped


def _named(text: Mapping[str, str], channel: str) -> dict[str, str]:
    """Fill ``{channel}`` with the channel's name in each language, not its id."""
    names = load_data("spec/playbooks")["channel_names"][channel]
    return {lang: text[lang].format(channel=names[lang]) for lang in ("en", "ar")}


def _step(data: Mapping[str, Any], number: int, ctx: SpecContext) -> dict[str, Any]:
    kind, channel = data["kind"], data["channel"]
    step: dict[str, Any] = {
        "step": number,
        "channel": channel,
        "kind": kind,
        "offset": {"value": int(data["offset"]["value"]), "unit": data["offset"]["unit"]},
        # Only marketing needs consent on the channel, because a service reply answers
        # the customer's own request and an internal step sends nothing.
        "consent": channel if kind == "marketing" else "none",
        "template": data["template"],
        "discount": bool(data["discount"]),
        "content": bilingual(data["content"]),
    }
    if "template_category" in data:
        step["template_category"] = data["template_category"]
    if "alternative_group" in data:
        step["alternative_group"] = data["alternative_group"]
    return add_unconfirmed(step, data.get("unconfirmed"), ctx)
