"""Evaluate the decision rules in ``data/rules.yaml`` and return a Plan with every reason.

Rules run in stages: ``crm`` resolves an undecided CRM, ``path`` proposes paths
with a strength, ``override`` records a forced path, ``module`` adds modules and
settings knowing the chosen path, and ``note`` adds advice. The engine is generic:
all knowledge lives in the rules file.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from generator.estimate import estimate_for
from generator.model import PATHS, Alternative, Answers, Bilingual, Plan, RuleHit
from generator.resources import load_data

log = logging.getLogger(__name__)
STAGES = ("crm", "path", "override", "module", "note")
# On equal strength the more capable path wins: a weaker path cannot serve the
# need of the rule that proposed the stronger one.
CAPABILITY = {"connector": 0, "ipaas": 1, "api": 2}


@dataclass(frozen=True)
class Rule:
    """One decision rule as read from the rules file."""

    id: str
    stage: str
    when: Mapping[str, Any]
    then: Mapping[str, Any]
    reason: Bilingual
    gap: bool = False


def load_rules() -> tuple[list[Rule], dict[str, Any]]:
    """Return the rules in file order and the named thresholds they refer to."""
    data = load_data("rules")
    rules = [
        Rule(
            id=entry["id"],
            stage=entry["stage"],
            when=entry["when"],
            then=entry["then"],
            reason=Bilingual.from_data(entry["reason"]),
            gap=bool(entry.get("gap", False)),
        )
        for entry in data["rules"]
    ]
    return rules, dict(data.get("thresholds", {}))


def _resolve(value: Any, thresholds: Mapping[str, Any]) -> Any:
    """Replace a ``$name`` reference with the named threshold."""
    if isinstance(value, str) and value.startswith("$"):
        return thresholds[value[1:]]
    return value


def _test(fact: Any, operator: str, expected: Any) -> bool:
    if operator == "lt":
        return bool(fact < expected)
    if operator == "lte":
        return bool(fact <= expected)
    if operator == "gt":
        return bool(fact > expected)
    if operator == "gte":
        return bool(fact >= expected)
    if operator == "ne":
        return bool(fact != expected)
    if operator == "in":
        return fact in expected
    if operator == "contains_any":
        return any(item in fact for item in expected)
    if operator == "empty":
        return not fact if expected else bool(fact)
    if operator == "not_empty":
        return bool(fact) if expected else not fact
    raise ValueError(f"unknown operator {operator!r} in the rules file")


def matches(condition: Mapping[str, Any], facts: Mapping[str, Any],
            thresholds: Mapping[str, Any]) -> bool:
    """Test ``condition`` against ``facts``; an empty condition always matches."""
    for key, expected in condition.items():
        if key == "all":
            ok = all(matches(part, facts, thresholds) for part in expected)
        elif key == "any":
            ok = any(matches(part, facts, thresholds) for part in expected)
        elif key == "not":
            ok = not matches(expected, facts, thresholds)
        elif isinstance(expected, Mapping):
            ok = all(_test(facts.get(key), operator, _resolve(value, thresholds))
                     for operator, value in expected.items())
        else:
            ok = facts.get(key) == _resolve(expected, thresholds)
        if not ok:
            return False
    return True


@dataclass
class _State:
    facts: dict[str, Any]
    hits: list[RuleHit]
    path_hits: list[tuple[RuleHit, str, int]]
    modules: list[str]
    notes: list[Bilingual]
    contact_sync: str = "realtime"
    product_sync_limit: int | None = None


def _apply(rule: Rule, state: _State, thresholds: Mapping[str, Any]) -> None:
    outcome = {key: _resolve(value, thresholds) for key, value in rule.then.items()}
    log.debug("rule %s fired: %s", rule.id, outcome)
    hit = RuleHit(id=rule.id, reason=rule.reason, outcome=outcome)
    state.hits.append(hit)
    if rule.stage == "note":
        state.notes.append(rule.reason)
    if "crm" in outcome:
        state.facts["crm"] = outcome["crm"]
    if "path" in outcome:
        state.path_hits.append((hit, outcome["path"], int(outcome.get("strength", 1))))
    for module in outcome.get("add_modules", []):
        if module not in state.modules:
            state.modules.append(module)
    if "contact_sync" in outcome:
        state.contact_sync = outcome["contact_sync"]
    if "product_sync_limit" in outcome:
        state.product_sync_limit = int(outcome["product_sync_limit"])


def _winner(path_hits: list[tuple[RuleHit, str, int]]) -> tuple[RuleHit, str]:
    if not path_hits:
        raise RuntimeError("no path rule fired; the rules file must cover every platform")
    hit, path, _ = max(path_hits, key=lambda item: (item[2], CAPABILITY[item[1]]))
    return hit, path


def decide(answers: Answers) -> Plan:
    """Evaluate every rule against ``answers`` and return the plan."""
    rules, thresholds = load_rules()
    paths_data = load_data("paths")
    state = _State(facts=answers.to_data(), hits=[], path_hits=[],
                   modules=list(paths_data["base_modules"]), notes=[])
    override = answers.path
    recommended: str | None = None
    winner_hit: RuleHit | None = None

    for stage in STAGES:
        # Module and note rules see the chosen path, so it is settled before them.
        if stage == "module":
            winner_hit, recommended = _winner(state.path_hits)
            state.facts["path"] = override or recommended
        for rule in rules:
            if rule.stage == stage and matches(rule.when, state.facts, thresholds):
                _apply(rule, state, thresholds)
    assert recommended is not None and winner_hit is not None

    chosen = override or recommended
    hits = _mark_outranked(state.hits, state.path_hits, winner_hit)
    alternatives = _alternatives(chosen, recommended, winner_hit, state.path_hits, paths_data)
    return Plan(
        path=chosen,
        recommended_path=recommended,
        crm=state.facts["crm"],
        platform=answers.platform,
        modules=tuple(state.modules),
        rules=hits,
        alternatives=alternatives,
        estimate=estimate_for(chosen, state.facts["crm"]),
        contact_sync=state.contact_sync,
        product_sync_limit=state.product_sync_limit,
        notes=tuple(state.notes),
    )


def _mark_outranked(
    hits: list[RuleHit], path_hits: list[tuple[RuleHit, str, int]], winner: RuleHit
) -> tuple[RuleHit, ...]:
    """Mark the path rules that proposed another path than the winner's as outranked.

    A rule that proposed the same path as the winner supports the choice and stays applied.
    """
    winning_path = winner.outcome["path"]
    losers = {hit.id for hit, path, _ in path_hits if path != winning_path}
    return tuple(replace(hit, outranked_by=winner.id) if hit.id in losers else hit
                 for hit in hits)


def _alternatives(
    chosen: str,
    recommended: str,
    winner: RuleHit,
    path_hits: list[tuple[RuleHit, str, int]],
    paths_data: Mapping[str, Any],
) -> tuple[Alternative, ...]:
    """Explain each path that was not chosen, in the comparison table's order."""
    result = []
    for path in PATHS:
        if path == chosen:
            continue
        if path == recommended:
            template = paths_data["recommended_but_overridden"]
            label = paths_data["paths"][chosen]["label"]
            reason = Bilingual(en=template["en"].format(path=label["en"], path_id=chosen),
                               ar=template["ar"].format(path=label["ar"], path_id=chosen))
            result.append(Alternative(path=path, reason=reason, decided_by="path-override"))
            continue
        proposed_here = any(proposed == path for _, proposed, _ in path_hits)
        reason = _reason_not_chosen(path, winner, proposed_here, paths_data)
        result.append(Alternative(path=path, reason=reason, decided_by=winner.id))
    return tuple(result)


def _reason_not_chosen(
    path: str, winner: RuleHit, proposed_here: bool, paths_data: Mapping[str, Any]
) -> Bilingual:
    if proposed_here:
        template = paths_data["outranked"]
        return Bilingual(en=template["en"].format(winner_reason=winner.reason.en),
                         ar=template["ar"].format(winner_reason=winner.reason.ar))
    winner_path = winner.outcome["path"]
    limits = paths_data["paths"][path]["limits"]
    label = paths_data["paths"][winner_path]["label"]
    template = paths_data["not_chosen"]
    return Bilingual(
        en=template["en"].format(limits=limits["en"], winner_label=label["en"]),
        ar=template["ar"].format(limits=limits["ar"], winner_label=label["ar"]),
    )

