"""Build ``integration/mapping.yaml``: transforms, identity rules, entities and stages."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from generator.resources import load_data
from generator.spec._common import (
    MARKETING_CHANNELS,
    SUPPORT_CHANNELS,
    SpecContext,
    add_confidence,
    add_unconfirmed,
    bilingual,
    fill,
    for_crm,
    for_family,
    header,
    in_order,
    unconfirmed_note,
)

# Keys of an association entry in the data file, and the kind each one becomes.
_ASSOCIATION_KINDS = {
    "association_type_id": "association",
    "property": "property",
    "lookup_field": "lookup",
    "column": "foreign_key",
}


def build_mapping(ctx: SpecContext) -> dict[str, Any]:
    """Build the field map for the plan's platform and CRM.

    Args:
        ctx: The answers and plan.

    Returns:
        Plain data for ``integration/mapping.yaml``.
    """
    data = load_data("spec/mapping")
    doc = header(ctx)
    doc["transforms"] = transform_catalogue()
    doc["attribution"] = _attribution(data["attribution"], ctx)
    if ctx.family == "storefront":
        doc["storefront_event"] = _storefront_event(data["storefront_event"])
    entities = {
        entry["name"]: _entity(entry, data["disabled_reason"], ctx) for entry in data["entities"]
    }
    stages = load_data("spec/stages")
    entities["order"]["setup_fields"] = [_pipeline_field(stages, ctx)]
    doc["identity"] = _identity(data["identity"], entities["contact"], ctx)
    doc["entities"] = entities
    doc["order_stages"] = _order_stages(stages, ctx)
    doc["ticket_stages"] = _ticket_stages(stages["ticket_stages"], ctx)
    doc["source_of_truth"] = _source_of_truth(data["source_of_truth"], ctx)
    doc["notes"] = _notes(data["notes"], ctx)
    return doc


def transform_catalogue() -> list[dict[str, Any]]:
    """Return every named transform with its description and, where given, an example."""
    catalogue = []
    for entry in load_data("spec/transforms")["transforms"]:
        item: dict[str, Any] = {
            "name": entry["name"],
            "description": bilingual(entry["description"]),
        }
        if "example" in entry:
            item["example"] = {
                "input": str(entry["example"]["input"]),
                "output": str(entry["example"]["output"]),
            }
        catalogue.append(item)
    return catalogue


def _attribution(data: Mapping[str, Any], ctx: SpecContext) -> dict[str, Any]:
    channels = in_order(ctx.answers.marketing_channels, MARKETING_CHANNELS)
    return {
        "values": [*channels, str(data["other_value"])],
        "other_value": str(data["other_value"]),
        "rule": bilingual(data["rule"]),
    }


def _storefront_event(data: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "description": bilingual(data["description"]),
        "fields": [
            {"name": field["name"], "description": field["description"]}
            for field in data["fields"]
        ],
    }


def _entity(
    data: Mapping[str, Any], disabled_reason: Mapping[str, str], ctx: SpecContext
) -> dict[str, Any]:
    module = data.get("module")
    enabled = module is None or ctx.has_module(module)
    entity: dict[str, Any] = {
        "enabled": enabled,
        "label": bilingual(data["label"]),
        "object": for_crm(data["object"], ctx),
        "payload": for_family(data["payload"], ctx),
    }
    if module is not None:
        entity["module"] = module
    if not enabled:
        entity["disabled_reason"] = fill(disabled_reason, module=module)
    add_confidence(entity, unconfirmed_note(data.get("unconfirmed"), ctx))
    _add_entity_settings(entity, data, ctx)
    entity["fields"] = [
        field for field in (_field(item, ctx) for item in data["fields"]) if field is not None
    ]
    if "rollups" in data:
        entity["rollups"] = [_rollup(item, ctx) for item in data["rollups"]]
    entity["associations"] = [
        association
        for association in (_association(item, ctx) for item in data["associations"])
        if association is not None
    ]
    return entity


def _add_entity_settings(
    entity: dict[str, Any], data: Mapping[str, Any], ctx: SpecContext
) -> None:
    """Add the settings that the plan and answers decide for one entity."""
    if data["name"] == "contact":
        entity["sync"] = ctx.plan.contact_sync
    if data["name"] == "product":
        limit = ctx.plan.product_sync_limit
        entity["sync_limit"] = limit
        if limit is not None:
            entity["sync_limit_rule"] = fill(data["sync_limit_rule"], limit=limit)
    options = data.get("object_options", {}).get(ctx.crm)
    if options:
        entity["object_options"] = _object_options(options, ctx)
    if "sla" in data and entity["enabled"] and ctx.answers.support_channels:
        entity["sla"] = _sla(data["sla"], ctx)


def _object_options(data: Mapping[str, Any], ctx: SpecContext) -> list[dict[str, Any]]:
    """List the CRM objects that can hold an entity and which of them this project uses.

    HubSpot's own Shopify data sync app writes orders and carts to its commerce
    objects, so those are in use only on the connector path with Shopify.
    """
    data_sync = ctx.plan.path == "connector" and ctx.family == "shopify"
    note = unconfirmed_note(data.get("unconfirmed"), ctx)
    options = []
    for option in data["options"]:
        writer = option["written_by"]
        item: dict[str, Any] = {
            "object": option["object"],
            "object_type_id": str(option["object_type_id"]),
            "written_by": writer,
            "in_use": writer == "integration" or data_sync,
            "holds": bilingual(option["holds"]),
        }
        options.append(add_confidence(item, note if writer != "integration" else None))
    return options


def _sla(data: Mapping[str, Any], ctx: SpecContext) -> dict[str, Any]:
    hours = load_data("spec/kpis")["business_hours"]
    channels = in_order(ctx.answers.support_channels, SUPPORT_CHANNELS)
    percents = {
        "alert_at_percent": int(data["alert_at_percent"]),
        "vip_percent_of_target": int(data["vip_percent_of_target"]),
    }
    sla: dict[str, Any] = {
        "business_hours": {
            "timezone": hours["timezone"],
            "days": list(hours["days"]),
            "start": str(hours["start"]),
            "end": str(hours["end"]),
        },
        "targets": [
            {"channel": channel,
             "first_response_minutes": int(data["targets"][channel]["first_response_minutes"]),
             "resolution_hours": int(data["targets"][channel]["resolution_hours"])}
            for channel in channels
        ],
        **percents,
        "rule": fill(data["rule"], **percents),
    }
    return add_confidence(sla, data["note"])


def _field(data: Mapping[str, Any], ctx: SpecContext) -> dict[str, Any] | None:
    """Resolve one field for the context, or return ``None`` when the CRM has no target for it."""
    target = for_crm(data["target"], ctx)
    source = for_family(data["source"], ctx)
    if target is None or source is None:
        return None
    transform = data.get("transform_for_crm", {}).get(ctx.crm, data["transform"])
    field: dict[str, Any] = {
        "name": data["name"],
        "source": str(source),
        "target": str(target),
        "transform": transform,
    }
    for key in ("fallback_sources", "extra_sources"):
        paths = for_family(data.get(key, {}), ctx)
        if paths:
            field[key] = [str(path) for path in paths]
    if ctx.crm in data.get("required_in", ()):
        field["required"] = True
        field["placeholder"] = str(data["placeholder"])
    if data.get("unique"):
        field["unique"] = True
    return add_unconfirmed(field, data.get("unconfirmed"), ctx)


def _rollup(data: Mapping[str, Any], ctx: SpecContext) -> dict[str, Any]:
    rollup: dict[str, Any] = {
        "name": data["name"],
        "type": data["type"],
        "update": data["update"],
        "target": str(for_crm(data["target"], ctx)),
        "rule": bilingual(data["rule"].get(ctx.crm, data["rule"])),
    }
    return add_unconfirmed(rollup, data.get("unconfirmed"), ctx)


def _association(data: Mapping[str, Any], ctx: SpecContext) -> dict[str, Any] | None:
    link = data.get(ctx.crm)
    if not link:
        return None
    # Each CRM entry contains exactly one key, which names the kind of link.
    key, ref = next(iter(link.items()))
    association: dict[str, Any] = {"to": data["to"], "kind": _ASSOCIATION_KINDS[key], "ref": ref}
    return add_confidence(association, unconfirmed_note(data.get("unconfirmed"), ctx))


def _identity(
    data: Mapping[str, Any], contact: Mapping[str, Any], ctx: SpecContext
) -> dict[str, Any]:
    targets = {field["name"]: field["target"] for field in contact["fields"]}
    return {
        "match_order": [
            {"key": key["key"], "target": targets[key["key"]], "transform": key["transform"]}
            for key in data["match_order"]
        ],
        "upsert": bilingual(data["upsert"][ctx.crm]),
        "rules": [bilingual(rule) for rule in data["rules"]],
    }


def _pipeline_field(data: Mapping[str, Any], ctx: SpecContext) -> dict[str, Any]:
    """Return the deal field that carries the pipeline, a value no payload carries."""
    pipeline = data["pipeline"]
    value = pipeline["crm_value"][ctx.crm]
    field: dict[str, Any] = {
        "name": "pipeline",
        "target": str(for_crm(pipeline["field"], ctx)),
        "value": value,
        "value_from": "order_stages.pipeline.crm_value",
        "filled_at_setup": value is None,
    }
    if value is None:
        field["rule"] = bilingual(data["setup_pending"])
    return field


def _order_stages(data: Mapping[str, Any], ctx: SpecContext) -> dict[str, Any]:
    pipeline = data["pipeline"]
    stages = [_stage(stage, ctx) for stage in data["stages"]]
    pending = [
        name for name, value in [
            ("pipeline", pipeline["crm_value"][ctx.crm]),
            *((stage["key"], stage["crm_value"]) for stage in stages),
        ] if value is None
    ]
    table: dict[str, Any] = {
        "pipeline": {
            "key": pipeline["key"],
            "name": bilingual(pipeline["name"]),
            "field": str(for_crm(pipeline["field"], ctx)),
            "crm_value": pipeline["crm_value"][ctx.crm],
            "note": pipeline["note"],
        },
        "abandoned_after_hours": int(data["abandoned_after_hours"]),
        "partial_refunds": bilingual(data["partial_refunds"]),
        "status_fields": {
            name: list(values) for name, values in data["status_fields"][ctx.family].items()
        },
        "stages": stages,
        "rules": [
            {"when": {key: _copy_match(value) for key, value in rule["when"].items()},
             "stage": rule["stage"]}
            for rule in data["rules"][ctx.family]
        ],
    }
    if pending:
        table["setup_pending"] = {"values": pending, "rule": bilingual(data["setup_pending"])}
    return table


def _ticket_stages(data: Mapping[str, Any], ctx: SpecContext) -> dict[str, Any]:
    """Return the inbox status to ticket stage table that the runtime and the CRM share."""
    table: dict[str, Any] = {
        "stages": [
            {"key": stage["key"], "label": bilingual(stage["label"]),
             "crm_value": str(stage["crm_value"][ctx.crm])}
            for stage in data["stages"]
        ],
        "rules": [
            {"when": {key: _copy_match(value) for key, value in rule["when"].items()},
             "stage": rule["stage"]}
            for rule in data["rules"]
        ],
    }
    return add_confidence(table, data["note"] if ctx.crm != "custom" else None)


def _stage(data: Mapping[str, Any], ctx: SpecContext) -> dict[str, Any]:
    # HubSpot generates stage ids when the pipeline is created, so the value stays
    # empty until set-up writes it back.
    crm_value = {"hubspot": None, "zoho": data["zoho_value"], "custom": data["key"]}[ctx.crm]
    return {
        "key": data["key"],
        "label": bilingual(data["label"]),
        "closed": bool(data["closed"]),
        "won": bool(data["won"]),
        "crm_value": crm_value,
    }


def _copy_match(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value


def _source_of_truth(data: Mapping[str, Any], ctx: SpecContext) -> dict[str, Any]:
    products = data["products_with_erp"] if ctx.has_module("erp_bi") else data["products"]
    return {"orders": data["orders"], "products": products, "behaviour": list(data["behaviour"])}


def _notes(data: list[Mapping[str, Any]], ctx: SpecContext) -> list[dict[str, Any]]:
    facts = {"crm": ctx.crm, "path": ctx.plan.path, "source": ctx.family}
    notes = []
    for entry in data:
        condition = dict(entry["when"])
        module = condition.pop("module", None)
        if module is not None and not ctx.has_module(module):
            continue
        if any(facts[key] != value for key, value in condition.items()):
            continue
        note: dict[str, Any] = {"text": entry["note"]}
        if entry["unconfirmed"]:
            note["confidence"] = "unconfirmed"
        notes.append(note)
    return notes
