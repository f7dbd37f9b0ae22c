"""Answers for the iPaaS tests: the iPaaS presets and the variants the rules allow."""

from __future__ import annotations

from typing import Any

from generator.answers import AnswerSources, load_preset, resolve_answers
from generator.decide import decide
from generator.model import Answers, Plan
from generator.spec import build_spec

# (id, preset, --set values). Each one decides the iPaaS path.
IPAAS_CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("shopify-hubspot", "shopify-growth", {}),
    ("shopify-zoho-support", "jeddah-fashion-zoho", {}),
    ("shopify-zoho-no-support", "jeddah-fashion-zoho",
     {"support_channels": [], "support_agents": 0}),
    ("shopify-hubspot-support", "shopify-growth",
     {"support_channels": ["whatsapp", "phone"], "support_agents": 12}),
    ("woocommerce-zoho", "woo-startup", {"monthly_orders": 400}),
    ("headless-hubspot", "headless-nextjs", {"path": "ipaas"}),
    ("shopify-postgres", "shopify-growth", {"crm": "custom", "path": "ipaas"}),
]


def load_case(preset: str, values: dict[str, Any]) -> tuple[Answers, Plan, dict[str, Any]]:
    """Return the answers, plan and spec of a preset with ``values`` set on top."""
    sources = AnswerSources()
    sources.add("preset", load_preset(preset).answers)
    if values:
        sources.add("--set", values)
    answers = resolve_answers(sources)
    plan = decide(answers)
    return answers, plan, build_spec(answers, plan)
