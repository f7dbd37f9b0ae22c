"""Collect every CRM field the spec writes, in a form each CRM's desired state can use.

A ``Requirement`` is one target name on one CRM object: a field of the field map, a
contact roll-up, a consent field, a field the connector's CRM workflows use, a lookup
or a foreign key. Requirements carry the
kind of value (from ``data/spec/desired_state.yaml``), the value list of an
enumeration and the places in the spec that use the field.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from generator.resources import load_data

# The condition operator that is true exactly when the keyed one is false.
_NEGATIONS = {
    "gte": "lt", "lt": "gte", "within_days": "older_than_days",
    "older_than_days": "within_days", "is_set": "is_empty", "is_empty": "is_set",
}


@dataclass(frozen=True)
class Option:
    """One value of an enumeration, with its display label."""

    value: str
    label: dict[str, str]


@dataclass
class Requirement:
    """A field that must exist on a CRM object for the spec to work.

    ``origin`` is ``field``, ``rollup``, ``consent``, ``workflow``, ``lookup`` or
    ``foreign_key``.
    ``lookup_to`` names the entity a lookup or foreign key points to, and
    ``counts_from_zero`` marks a recomputed count or sum, which is 0 before any order.
    """

    entity: str
    name: str
    object: str
    target: str
    kind: str
    origin: str
    options: tuple[Option, ...] = ()
    unique: bool = False
    lookup_to: str | None = None
    counts_from_zero: bool = False
    label: dict[str, str] | None = None
    description: dict[str, str] | None = None
    used_by: list[str] = field(default_factory=list)


def collect_requirements(spec: Mapping[str, Mapping[str, Any]]) -> list[Requirement]:
    """Return every field the spec writes, one per CRM object and name, in spec order.

    Disabled entities are left out, because the project writes nothing to them.

    Raises:
        ValueError: A field has no kind in the desired-state data, which is a mistake
            in the data files.
    """
    data = load_data("spec/desired_state")
    mapping = spec["mapping"]
    found: dict[tuple[str, str], Requirement] = {}
    for entity_name, entity in mapping["entities"].items():
        if not entity["enabled"]:
            continue
        for requirement in _entity_requirements(entity_name, entity, spec, data):
            _merge(found, requirement)
    _merge(found, _pipeline_requirement(mapping))
    for requirement in _consent_requirements(spec, data):
        _merge(found, requirement)
    _add_spec_uses(found.values(), spec)
    return list(found.values())


def _merge(found: dict[tuple[str, str], Requirement], requirement: Requirement) -> None:
    key = (requirement.object, requirement.target)
    if key not in found:
        found[key] = requirement
        return
    existing = found[key]
    existing.used_by.extend(use for use in requirement.used_by if use not in existing.used_by)
    existing.unique = existing.unique or requirement.unique


def _entity_requirements(
    entity_name: str, entity: Mapping[str, Any], spec: Mapping[str, Any], data: Mapping[str, Any]
) -> list[Requirement]:
    lookups = {
        str(link["ref"]): link for link in entity["associations"]
        if link["kind"] in ("lookup", "foreign_key")
    }
    requirements = []
    for item in entity["fields"]:
        requirement = _field_requirement(entity_name, entity, item, spec, data)
        link = lookups.pop(requirement.target, None)
        if link is not None:
            requirement.kind, requirement.origin = "lookup", "lookup"
            requirement.lookup_to = link["to"]
        requirements.append(requirement)
    for item in entity.get("rollups", ()):
        requirements.append(_rollup_requirement(entity_name, entity, item, spec, data))
    for link in lookups.values():
        requirements.append(_link_requirement(entity_name, entity, link, spec))
    return requirements


def _field_requirement(
    entity_name: str,
    entity: Mapping[str, Any],
    item: Mapping[str, Any],
    spec: Mapping[str, Any],
    data: Mapping[str, Any],
) -> Requirement:
    definition = data["fields"].get(f"{entity_name}.{item['name']}", {})
    kind = definition.get("kind") or data["transform_kinds"].get(item["transform"])
    if kind is None:
        raise ValueError(
            f"missing kind for transform {item['transform']!r}: add it under transform_kinds "
            "in generator/data/spec/desired_state.yaml")
    return Requirement(
        entity=entity_name,
        name=item["name"],
        object=entity["object"],
        target=item["target"],
        kind=kind["kind"],
        origin="field",
        options=option_values(kind.get("options"), spec),
        unique=bool(item.get("unique", False)),
        label=definition.get("label"),
        description=definition.get("description"),
        used_by=[f"mapping.{entity_name}.{item['name']}"],
    )


def _rollup_requirement(
    entity_name: str,
    entity: Mapping[str, Any],
    item: Mapping[str, Any],
    spec: Mapping[str, Any],
    data: Mapping[str, Any],
) -> Requirement:
    definition = data["fields"].get(f"{entity_name}.{item['name']}", {})
    kind = definition.get("kind") or data["rollup_kinds"][item["type"]]
    return Requirement(
        entity=entity_name,
        name=item["name"],
        object=entity["object"],
        target=item["target"],
        kind=kind["kind"],
        origin="rollup",
        options=option_values(kind.get("options"), spec),
        counts_from_zero=item["update"] == "recompute" and kind["kind"] in ("integer", "money"),
        label=definition.get("label"),
        description=dict(item["rule"]),
        used_by=[f"mapping.{entity_name}.{item['name']}"],
    )


def _link_requirement(
    entity_name: str, entity: Mapping[str, Any], link: Mapping[str, Any], spec: Mapping[str, Any]
) -> Requirement:
    target_label = spec["mapping"]["entities"][link["to"]]["label"]
    return Requirement(
        entity=entity_name,
        name=f"{link['to']}_link",
        object=entity["object"],
        target=str(link["ref"]),
        kind="lookup" if link["kind"] == "lookup" else "key",
        origin=link["kind"],
        lookup_to=link["to"],
        label=dict(target_label),
        description={
            "en": f"Link to the {target_label['en'].lower()} record.",
            "ar": f"ربط بسجل {target_label['ar']}.",
        },
        used_by=[f"mapping.{entity_name}.associations.{link['to']}"],
    )


def _pipeline_requirement(mapping: Mapping[str, Any]) -> Requirement:
    """Return the order's pipeline field, which the stage table writes beside the stage."""
    pipeline = mapping["order_stages"]["pipeline"]
    return Requirement(
        entity="order",
        name="pipeline",
        object=mapping["entities"]["order"]["object"],
        target=pipeline["field"],
        kind="text",
        origin="field",
        label=dict(pipeline["name"]),
        used_by=["mapping.order_stages.pipeline"],
    )


def _consent_requirements(
    spec: Mapping[str, Any], data: Mapping[str, Any]
) -> list[Requirement]:
    contact = spec["mapping"]["entities"]["contact"]
    requirements = []
    for channel in spec["consent"]["channels"]:
        for name in channel["target"]["fields"]:
            definition = data["consent_fields"].get(name, {})
            kind = definition.get("kind", {"kind": "boolean"})
            table, _, column = name.rpartition(".")
            requirements.append(Requirement(
                entity="consent" if table else "contact",
                name=column,
                object=table or contact["object"],
                target=name,
                kind=kind["kind"],
                origin="consent",
                options=option_values(kind.get("options"), spec),
                label=definition.get("label"),
                description=definition.get("description"),
                used_by=[f"consent.{channel['channel']}"],
            ))
    return requirements


def workflow_requirements(
    spec: Mapping[str, Any], data: Mapping[str, Any], crm: str
) -> list[Requirement]:
    """Return the contact fields that the enabled playbooks' CRM workflows need.

    Only connector projects build their playbooks as CRM workflows, so the caller
    decides by path. ``crm`` picks each field's name, because HubSpot property names
    are lower case and Zoho API names are capitalised.
    """
    enabled = {playbook["key"] for playbook in spec["playbooks"]["playbooks"]
               if playbook["enabled"]}
    contact = spec["mapping"]["entities"]["contact"]
    requirements = []
    for item in data["workflow_fields"]:
        users = [key for key in item["playbooks"] if key in enabled]
        if not users or crm not in item["target"]:
            continue
        requirements.append(Requirement(
            entity="contact",
            name=item["name"],
            object=contact["object"],
            target=item["target"][crm],
            kind=item["kind"]["kind"],
            origin="workflow",
            label=dict(item["label"]),
            description=dict(item["description"]),
            used_by=[f"playbooks.{key}" for key in users],
        ))
    return requirements


def _add_spec_uses(requirements: Iterable[Requirement], spec: Mapping[str, Any]) -> None:
    """Record which segments, lifecycle stages and KPIs read each contact roll-up."""
    readers: dict[str, list[str]] = {}
    for segment in spec["segments"]["segments"]:
        conditions = [*segment["entry"]["all"], *segment["exit"]["any"]]
        for condition in conditions:
            readers.setdefault(condition["rollup"], []).append(f"segments.{segment['key']}")
    for stage in spec["lifecycle"]["stages"]:
        for condition in stage["entry"]:
            readers.setdefault(condition["rollup"], []).append(f"lifecycle.{stage['key']}")
    readers.setdefault("lifecycle_stage", []).append("lifecycle")
    for kpi in spec["kpis"]["kpis"]:
        for item in kpi["inputs"]:
            readers.setdefault(item["name"], []).append(f"kpis.{kpi['key']}")
    for requirement in requirements:
        if requirement.origin != "rollup":
            continue
        for use in readers.get(requirement.name, ()):
            if use not in requirement.used_by:
                requirement.used_by.append(use)


def option_values(source: str | None, spec: Mapping[str, Any]) -> tuple[Option, ...]:
    """Return the values of the named value list, with labels, for an enumeration.

    ``source_values``, ``lifecycle``, ``order_stages``, ``ticket_stages`` and
    ``consent_channels`` come from the spec; the other lists are fixed in ``desired_state.yaml``.
    """
    if source is None:
        return ()
    labels = load_data("spec/desired_state")["option_labels"]
    if source == "source_values":
        values = spec["mapping"]["attribution"]["values"]
        return tuple(Option(value, dict(labels[value])) for value in values)
    if source == "lifecycle":
        return tuple(
            Option(str(stage.get("detail_value", stage["crm_value"])), dict(stage["label"]))
            for stage in spec["lifecycle"]["stages"]
        )
    if source == "order_stages":
        return tuple(
            Option(stage["key"], dict(stage["label"]))
            for stage in spec["mapping"]["order_stages"]["stages"]
        )
    if source == "ticket_stages":
        # The values the runtime writes, from the one table in the field map.
        # A standard picklist such as Zoho's Status shows its own values, so the
        # value doubles as the English label.
        return tuple(
            Option(str(stage["crm_value"]),
                   {"en": str(stage["crm_value"]), "ar": stage["label"]["ar"]})
            for stage in spec["mapping"]["ticket_stages"]["stages"]
        )
    if source == "consent_channels":
        values = spec["consent"]["managed_channels"]
        return tuple(Option(value, dict(labels[value])) for value in values)
    fixed = load_data("spec/desired_state")["option_sets"][source]
    return tuple(Option(value, dict(labels[value])) for value in fixed)


def standard_fields(crm: str) -> dict[str, frozenset[str]]:
    """Return the register's standard field names of ``crm``, by CRM object."""
    register = load_data("spec/crm-fields").get(crm, {})
    return {
        obj: frozenset(str(entry["name"]) for entry in entries)
        for obj, entries in register.items()
    }


def is_standard(crm: str, obj: str, name: str) -> bool:
    """Whether ``name`` is a standard field of ``obj`` in ``crm``, per the register.

    A subform object such as ``Sales_Orders.Product_Details`` also counts the fields
    of its parent module.
    """
    register = standard_fields(crm)
    candidates = (obj, obj.split(".")[0])
    return any(name in register.get(candidate, frozenset()) for candidate in candidates)


def dynamic_exit_note(
    segment: Mapping[str, Any], data: Mapping[str, Any]
) -> dict[str, str] | None:
    """Explain a segment exit rule that a dynamic list or view cannot apply.

    A dynamic list (and a SQL view) holds exactly the contacts that meet every entry
    condition. That matches the exit rule when each exit condition rules out an entry
    condition, and each entry condition that has exit conditions on its roll-up is
    ruled out only when one of them holds. VIP fails the second test: it keeps a
    contact down to 90% of the entry bar, where the list would already drop it.
    """
    entries = [dict(condition) for condition in segment["entry"]["all"]]
    exits = [dict(condition) for condition in segment["exit"]["any"]]
    if _list_applies_exit(entries, exits):
        return None
    text = data["dynamic_exit_note"]
    return {lang: text[lang].format(exit=segment["rule"]["exit"][lang]) for lang in ("en", "ar")}


def _list_applies_exit(
    entries: Sequence[Mapping[str, Any]], exits: Sequence[Mapping[str, Any]]
) -> bool:
    if not all(any(_rules_out(leave, enter) for enter in entries) for leave in exits):
        return False
    for enter in entries:
        related = [leave for leave in exits if leave["rollup"] == enter["rollup"]]
        if related and not any(_covers_failure(leave, enter) for leave in related):
            return False
    return True


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _rules_out(leave: Mapping[str, Any], enter: Mapping[str, Any]) -> bool:
    """Whether the exit condition ``leave`` holding means ``enter`` fails."""
    if leave["rollup"] != enter["rollup"]:
        return False
    if leave["op"] == "is_empty":
        # An empty roll-up fails every comparison and "is_set".
        return bool(enter["op"] != "is_empty")
    if leave["op"] == "is_set":
        return bool(enter["op"] == "is_empty")
    low, high = _number(leave.get("value")), _number(enter.get("value"))
    if low is None or high is None:
        return False
    return {
        ("lt", "gte"): low <= high,
        ("gte", "lt"): low >= high,
        ("gte", "eq"): low > high,
        ("lt", "eq"): low <= high,
        ("older_than_days", "within_days"): low >= high,
        ("within_days", "older_than_days"): low <= high,
    }.get((leave["op"], enter["op"]), False)


def _covers_failure(leave: Mapping[str, Any], enter: Mapping[str, Any]) -> bool:
    """Whether ``leave`` holds whenever ``enter`` fails on a roll-up that has a value."""
    if _NEGATIONS.get(enter["op"]) == leave["op"] and enter["op"] in ("is_set", "is_empty"):
        return True
    low, high = _number(leave.get("value")), _number(enter.get("value"))
    if low is None or high is None:
        return False
    return {
        ("lt", "gte"): low >= high,
        ("gte", "lt"): low <= high,
        # A count of zero fails only by growing, so "at least one" covers it.
        ("gte", "eq"): high == 0 and low == 1,
        ("older_than_days", "within_days"): low <= high,
        ("within_days", "older_than_days"): low >= high,
    }.get((leave["op"], enter["op"]), False)
