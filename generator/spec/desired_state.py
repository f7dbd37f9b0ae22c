"""Build ``crm/desired-state.yaml``: everything the spec needs created in the chosen CRM.

The desired state is plain data for a later ``rabt crm plan`` / ``rabt crm apply``:
custom properties or fields with their types and value lists, the E-commerce
pipeline, the segments as lists or views, and the steps a person must do by hand.
Every custom field comes from a target the spec writes, so nothing is created that
the mapping, segments, lifecycle, consent or KPIs do not use, except the contact
fields that a connector project's playbook workflows read and write. Standard fields, listed
in ``data/spec/crm-fields.yaml``, are left out because every account has them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from generator.model import Plan
from generator.resources import load_data
from generator.spec._common import CRMS, SOURCE_FAMILY
from generator.spec._desired_fields import (
    Requirement,
    collect_requirements,
    workflow_requirements,
)
from generator.spec._desired_hubspot import hubspot_state
from generator.spec._desired_postgres import postgres_state
from generator.spec._desired_zoho import zoho_state

DESIRED_STATE_VERSION = 1
_SPEC_PARTS = ("mapping", "lifecycle", "segments", "playbooks", "consent", "kpis")

_Builder = Callable[[Mapping[str, Any], Sequence[Requirement], Mapping[str, Any]], dict[str, Any]]
_BUILDERS: dict[str, _Builder] = {
    "hubspot": hubspot_state,
    "zoho": zoho_state,
    "custom": postgres_state,
}


def build_desired_state(spec: Mapping[str, Mapping[str, Any]], plan: Plan) -> dict[str, Any]:
    """Build the CRM desired state for ``spec``, the output of ``build_spec``, and ``plan``.

    Args:
        spec: The six spec documents by name, as ``build_spec`` returns them.
        plan: The plan the spec was built from.

    Returns:
        Plain data for ``crm/desired-state.yaml``. It starts with ``version``, ``crm`` and
        ``platform`` and ends with ``manual_steps``. In between are the CRM's sections.
        HubSpot has ``property_groups``, ``properties``, ``pipelines``, ``lists`` and,
        when events are on, ``event_definitions``. Zoho has ``modules``, ``picklists``,
        ``pipeline`` and ``segments``. The custom database has ``tables`` and ``views``.
        The same input always gives the same output.

    Raises:
        ValueError: The plan's CRM is not resolved, a spec document is missing, or the
            spec was built for another CRM or platform. The message lists every problem.
    """
    _check_inputs(spec, plan)
    data = load_data("spec/desired_state")
    requirements = collect_requirements(spec)
    if plan.path == "connector":
        requirements += workflow_requirements(spec, data, plan.crm)
    state: dict[str, Any] = {
        "version": DESIRED_STATE_VERSION,
        "crm": plan.crm,
        "platform": plan.platform,
    }
    state.update(_BUILDERS[plan.crm](spec, requirements, data))
    state["manual_steps"] = _manual_steps(data["manual_steps"], spec, plan)
    return state


def _check_inputs(spec: Mapping[str, Mapping[str, Any]], plan: Plan) -> None:
    problems = []
    if plan.crm not in CRMS:
        problems.append(f"plan.crm is {plan.crm!r}, expected one of {', '.join(CRMS)}")
    missing = [name for name in _SPEC_PARTS if name not in spec]
    if missing:
        problems.append(f"the spec lacks {', '.join(missing)}; pass the result of build_spec")
    for name in _SPEC_PARTS:
        document = spec.get(name)
        if document is None:
            continue
        if document.get("crm") != plan.crm:
            problems.append(f"spec {name} is for crm {document.get('crm')!r}, "
                            f"but plan.crm is {plan.crm!r}")
        if document.get("platform") != plan.platform:
            problems.append(f"spec {name} is for platform {document.get('platform')!r}, "
                            f"but plan.platform is {plan.platform!r}")
    if problems:
        raise ValueError("cannot build the CRM desired state: " + "; ".join(problems))


def _manual_steps(
    steps: Sequence[Mapping[str, Any]], spec: Mapping[str, Any], plan: Plan
) -> list[dict[str, Any]]:
    """Return the hand-made steps whose ``when`` matches this project, in file order."""
    managed = spec["consent"]["managed_channels"]
    labels = load_data("spec/desired_state")["option_labels"]
    channels = {
        lang: (", " if lang == "en" else "، ").join(labels[name][lang] for name in managed)
        for lang in ("en", "ar")
    }
    chosen = []
    for step in steps:
        if not _applies(step["when"], spec, plan):
            continue
        chosen.append({
            "key": step["key"],
            "text": {lang: step["text"][lang].format(channels=channels[lang])
                     for lang in ("en", "ar")},
        })
    return chosen


def _applies(when: Mapping[str, Any], spec: Mapping[str, Any], plan: Plan) -> bool:
    entities = spec["mapping"]["entities"]
    module_on = {
        "events": entities["event"]["enabled"],
        "support": entities["ticket"]["enabled"],
    }
    checks = (
        when.get("crm", plan.crm) == plan.crm,
        when.get("path", plan.path) == plan.path,
        when.get("family", SOURCE_FAMILY.get(plan.platform)) == SOURCE_FAMILY.get(plan.platform),
        "module" not in when or module_on.get(when["module"], False),
        "consent" not in when or bool(spec["consent"]["managed_channels"]),
    )
    return all(checks)


def created_fields(state: Mapping[str, Any]) -> list[dict[str, Any]]:
    """List the custom fields that ``rabt crm apply`` creates from the desired ``state``.

    Each entry has ``object`` (the HubSpot object type or Zoho module, as the field
    map's entity ``object`` names it), ``name``, ``unique`` and ``used_by`` (the spec
    places that write or read the field). The connector guides build their field map
    from this list, so it names exactly what apply creates. The custom database's
    tables are left out, because no connector writes to them.
    """
    fields = []
    for prop in state.get("properties", ()):
        fields.append({"object": prop["object"], "name": prop["name"],
                       "unique": bool(prop.get("hasUniqueValue")),
                       "used_by": list(prop.get("used_by", ()))})
    for module in state.get("modules", ()):
        for field in module["fields"]:
            fields.append({"object": module["module"], "name": field["api_name"],
                           "unique": bool(field.get("unique")),
                           "used_by": list(field.get("used_by", ()))})
    return fields
