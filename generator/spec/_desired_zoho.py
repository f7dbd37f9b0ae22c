"""The Zoho CRM part of the CRM desired state: custom fields, picklists, pipeline, views.

Field shapes follow the v8 custom fields API (``field_label``, ``data_type``,
``pick_list_values``); Zoho derives a custom field's API name from its label, so
each label here is the wanted API name with spaces for underscores. Custom views and
the custom module for events are manual steps (see ``desired_state.yaml``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from generator.spec._desired_fields import Requirement, dynamic_exit_note, is_standard

_MODULE_ORDER = ("Contacts", "Deals", "Products", "Cases", "Sales_Orders", "Ecom_Events")
_CUSTOM_MODULES = ("Ecom_Events",)
_TEXT_LENGTH = 255
_STAGE_FIELD = "Stage"


def zoho_state(
    spec: Mapping[str, Any], requirements: Sequence[Requirement], data: Mapping[str, Any]
) -> dict[str, Any]:
    """Return the Zoho sections of the desired state.

    Raises:
        ValueError: A custom field has no label or description in the desired-state data.
    """
    custom = [item for item in requirements
              if not is_standard("zoho", item.object, item.target)]
    modules = []
    for module in _MODULE_ORDER:
        fields = [_field(item, spec, data) for item in custom if item.object == module]
        if fields:
            modules.append({"module": module, "custom_module": module in _CUSTOM_MODULES,
                            "fields": fields})
    standard_picklists = [
        item for item in requirements
        if item.options and item.target != _STAGE_FIELD
        and is_standard("zoho", item.object, item.target)
    ]
    return {
        "modules": modules,
        "picklists": [_stage_picklist(spec, data),
                      *(_picklist(item) for item in standard_picklists)],
        "pipeline": _pipeline(spec),
        "segments": [_view(segment, spec, data) for segment in spec["segments"]["segments"]],
    }


def _field(item: Requirement, spec: Mapping[str, Any], data: Mapping[str, Any]) -> dict[str, Any]:
    if item.label is None or item.description is None:
        raise ValueError(
            f"missing label or description for Zoho field {item.target!r} on {item.object}: "
            f"add {item.entity}.{item.name} under fields (or the name under consent_fields) "
            "in generator/data/spec/desired_state.yaml")
    data_type = data["zoho_types"][item.kind]
    field: dict[str, Any] = {
        "api_name": item.target,
        "field_label": item.target.replace("_", " "),
        "label_ar": item.label["ar"],
        "data_type": data_type,
        "description": item.description["en"],
        "description_ar": item.description["ar"],
        "unique": item.unique,
    }
    if data_type == "text":
        field["length"] = _TEXT_LENGTH
    if item.options:
        field["pick_list_values"] = _values(item)
    if item.lookup_to is not None:
        field["lookup"] = {"module": spec["mapping"]["entities"][item.lookup_to]["object"]}
    field["used_by"] = list(item.used_by)
    return field


def _values(item: Requirement) -> list[dict[str, str]]:
    # The integration writes the value; people see the label.
    return [{"display_value": option.label["en"], "actual_value": option.value}
            for option in item.options]


def _picklist(item: Requirement) -> dict[str, Any]:
    return {
        "module": item.object,
        "field": item.target,
        "standard": True,
        "values": _values(item),
        "used_by": list(item.used_by),
        "confidence": "unconfirmed",
        "note": ("Values of a standard picklist are added in Setup; whether the written "
                 "value must match actual_value or display_value was not confirmed."),
    }


def _stage_picklist(spec: Mapping[str, Any], data: Mapping[str, Any]) -> dict[str, Any]:
    values = []
    for stage in spec["mapping"]["order_stages"]["stages"]:
        probability = int(Decimal(str(data["stage_probability"][stage["key"]])) * 100)
        if not stage["closed"]:
            forecast = "Open"
        else:
            forecast = "Closed Won" if stage["won"] else "Closed Lost"
        values.append({
            "key": stage["key"],
            "display_value": str(stage["crm_value"]),
            "actual_value": str(stage["crm_value"]),
            "probability": probability,
            "forecast_type": forecast,
        })
    return {
        "module": "Deals",
        "field": _STAGE_FIELD,
        "standard": True,
        "values": values,
        "used_by": ["mapping.order.stage"],
        "confidence": "unconfirmed",
        "note": "The forecast type names (Open, Closed Won, Closed Lost) come from Zoho's UI.",
    }


def _pipeline(spec: Mapping[str, Any]) -> dict[str, Any]:
    table = spec["mapping"]["order_stages"]
    return {
        "module": "Deals",
        "field": table["pipeline"]["field"],
        "id": None,
        "layout_id": None,
        "name": table["pipeline"]["name"]["en"],
        "name_ar": table["pipeline"]["name"]["ar"],
        "stages": [str(stage["crm_value"]) for stage in table["stages"]],
        "confidence": "unconfirmed",
        "note": ("Create the pipeline with POST /crm/v8/settings/pipeline?layout_id=<Deals "
                 "layout id> after pipelines are enabled; the endpoint is not confirmed."),
    }


def _view(
    segment: Mapping[str, Any], spec: Mapping[str, Any], data: Mapping[str, Any]
) -> dict[str, Any]:
    rollups = {
        rollup["name"]: rollup["target"]
        for rollup in spec["mapping"]["entities"]["contact"]["rollups"]
    }
    criteria = []
    for condition in segment["entry"]["all"]:
        criterion: dict[str, Any] = {"field": rollups[condition["rollup"]], "op": condition["op"]}
        if "value" in condition:
            criterion["value"] = condition["value"]
        criteria.append(criterion)
    view: dict[str, Any] = {
        "key": segment["key"],
        "module": "Contacts",
        "view_name": f"E-commerce: {segment['name']['en']}",
        "view_name_ar": segment["name"]["ar"],
        "criteria": criteria,
        "rule": dict(segment["rule"]["entry"]),
        "manual": True,
    }
    exit_note = dynamic_exit_note(segment, data)
    if exit_note:
        view["exit_note"] = exit_note
    return view
