"""Build the integration spec: six data files that describe the integration for one client.

``build_spec`` returns plain data: str, int, bool, None, lists and dicts, with money
as integers of SAR or decimal strings and dates as ISO text. The render stage writes
each document with ``yaml.safe_dump`` to ``integration/<name>.yaml`` and checks it
against ``schemas/spec-<name>.schema.json``. The output depends only on the answers
and the plan, never on the clock or on the order of values inside answer lists.

``build_desired_state`` turns a built spec into the CRM desired state
(``crm/desired-state.yaml``, checked against ``schemas/crm-desired-state.schema.json``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from generator.model import PATHS, Answers, Plan
from generator.spec._common import (
    CONSENT_CHANNELS,
    CRMS,
    MARKETING_CHANNELS,
    MODULES,
    PLATFORMS,
    SUPPORT_CHANNELS,
    SpecContext,
)
from generator.spec.consent import build_consent
from generator.spec.desired_state import build_desired_state, created_fields
from generator.spec.kpis import build_kpis
from generator.spec.lifecycle import build_lifecycle
from generator.spec.mapping import build_mapping
from generator.spec.playbooks import build_playbooks
from generator.spec.segments import build_segments

__all__ = ["SPEC_FILES", "build_desired_state", "build_spec", "created_fields"]

SPEC_FILES: tuple[str, ...] = ("mapping", "lifecycle", "segments", "playbooks", "consent", "kpis")

_BUILDERS: dict[str, Callable[[SpecContext], dict[str, Any]]] = {
    "mapping": build_mapping,
    "lifecycle": build_lifecycle,
    "segments": build_segments,
    "playbooks": build_playbooks,
    "consent": build_consent,
    "kpis": build_kpis,
}
_GOALS = ("repeat_purchase", "average_order_value", "fewer_returns")


def build_spec(answers: Answers, plan: Plan) -> dict[str, dict[str, Any]]:
    """Build every spec file for ``answers`` and the ``plan`` decided from them.

    Args:
        answers: Validated answers.
        plan: The decision. ``plan.crm`` must already be resolved, not ``undecided``.

    Returns:
        One plain-data document per name in ``SPEC_FILES``, in that order.

    Raises:
        ValueError: The plan or answers hold a value the spec cannot be built for,
            such as an unresolved CRM. The message lists every such value.
    """
    _check_inputs(answers, plan)
    ctx = SpecContext(answers=answers, plan=plan)
    return {name: _BUILDERS[name](ctx) for name in SPEC_FILES}


def _check_inputs(answers: Answers, plan: Plan) -> None:
    problems = []
    if plan.crm not in CRMS:
        problems.append(f"plan.crm is {plan.crm!r}, expected one of {', '.join(CRMS)}")
    if plan.platform not in PLATFORMS:
        problems.append(
            f"plan.platform is {plan.platform!r}, expected one of {', '.join(PLATFORMS)}")
    if plan.path not in PATHS:
        problems.append(f"plan.path is {plan.path!r}, expected one of {', '.join(PATHS)}")
    checks = (
        ("plan.modules", plan.modules, MODULES),
        ("answers.consent_channels", answers.consent_channels, CONSENT_CHANNELS),
        ("answers.support_channels", answers.support_channels, SUPPORT_CHANNELS),
        ("answers.marketing_channels", answers.marketing_channels, MARKETING_CHANNELS),
    )
    for name, values, allowed in checks:
        unknown = sorted(set(values) - set(allowed))
        if unknown:
            problems.append(f"{name} has unknown values {unknown}, expected values from {allowed}")
    if answers.goal not in _GOALS:
        problems.append(f"answers.goal is {answers.goal!r}, expected one of {', '.join(_GOALS)}")
    if answers.monthly_orders < 0:
        problems.append(f"answers.monthly_orders is {answers.monthly_orders}, expected 0 or more")
    if problems:
        raise ValueError("cannot build the integration spec: " + "; ".join(problems))
