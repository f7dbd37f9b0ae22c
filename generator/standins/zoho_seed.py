"""Seed the Zoho CRM stand-in from a project's ``crm/desired-state.yaml``.

After seeding, the org looks as it does once set-up is done: custom modules exist,
custom fields (unique ones enforced) are on their modules, standard picklists hold
the spec's values, and the E-commerce pipeline uses the spec's stages. Seeding writes
the state directly, so API limits on field creation do not apply to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .zoho_schema import FieldDef, Option, custom_module, default_length
from .zoho_settings import stage_ids_for
from .zoho_state import Pipeline, ZohoState

__all__ = ["apply_desired_state"]


def apply_desired_state(state: ZohoState, desired_state: Mapping[str, Any]) -> None:
    """Create what ``desired_state`` lists in ``state``; existing items are kept.

    Raises:
        ValueError: The desired state is not for Zoho or a section has the wrong type.
    """
    _check(desired_state)
    with state.lock:
        for entry in desired_state.get("modules", []):
            _seed_module(state, entry)
        for picklist in desired_state.get("picklists", []):
            _seed_picklist(state, picklist)
        pipeline = desired_state.get("pipeline")
        if pipeline and state.config.pipelines_enabled:
            _seed_pipeline(state, pipeline)


def _check(desired_state: Mapping[str, Any]) -> None:
    if not isinstance(desired_state, Mapping):
        raise ValueError("the desired state must be a mapping, as crm/desired-state.yaml is")
    crm = desired_state.get("crm")
    if crm != "zoho":
        raise ValueError(f"the desired state is for crm {crm!r}, but this is the Zoho "
                         "stand-in; generate the project with crm: zoho")
    for key in ("modules", "picklists"):
        if not isinstance(desired_state.get(key, []), list):
            raise ValueError(f"the desired state's {key} must be a list")


def _seed_module(state: ZohoState, entry: Mapping[str, Any]) -> None:
    name = str(entry["module"])
    if name not in state.modules:
        singular = name.rstrip("s").replace("_", " ")
        state.modules[name] = custom_module(name, singular, state.next_id)
        state.records[name] = {}
    module = state.modules[name]
    for spec in entry.get("fields", []):
        api_name = str(spec["api_name"])
        if api_name in module.fields:
            continue
        data_type = str(spec["data_type"])
        created = FieldDef(api_name, str(spec.get("field_label", api_name)), data_type,
                           state.next_id(), length=spec.get("length", default_length(data_type)),
                           custom=True, unique=bool(spec.get("unique")))
        created.options = [Option(str(value["display_value"]), str(value["actual_value"]),
                                  state.next_id(), number)
                           for number, value in enumerate(spec.get("pick_list_values", []), 1)]
        lookup = spec.get("lookup")
        if isinstance(lookup, Mapping):
            created.lookup_module = str(lookup["module"])
        module.fields[api_name] = created


def _seed_picklist(state: ZohoState, picklist: Mapping[str, Any]) -> None:
    module = state.modules.get(str(picklist["module"]))
    if module is None or str(picklist["field"]) not in module.fields:
        return
    target = module.fields[str(picklist["field"])]
    for value in picklist.get("values", []):
        if target.option_for(str(value["actual_value"]), "either") is not None:
            continue
        extra = {key: value[key] for key in ("probability", "forecast_type") if key in value}
        target.options.append(Option(str(value["display_value"]), str(value["actual_value"]),
                                     state.next_id(), len(target.options) + 1, extra))


def _seed_pipeline(state: ZohoState, pipeline: Mapping[str, Any]) -> None:
    name = str(pipeline["name"])
    stage_ids = stage_ids_for(state, [str(stage) for stage in pipeline.get("stages", [])])
    existing = next((item for item in state.pipelines if item.display_value == name), None)
    if existing is not None:
        existing.stage_ids = stage_ids
    else:
        state.pipelines.append(Pipeline(state.next_id(), name, False, stage_ids))
    state.refresh_pipeline_field()
