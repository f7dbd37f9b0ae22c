"""Pipeline and stage ids from ``.rabt/crm-state.json`` for the iPaaS workflows.

``rabt crm apply`` records the ids HubSpot generates for the order pipeline and its
stages. When a project is regenerated over a folder that has the state file, the
workflows are built with those ids in place of the stage keys. Without the file they
keep the keys, and the deal batch node stops before sending a key HubSpot rejects.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from generator.crm.state import load_state, state_path
from generator.model import Lang

log = logging.getLogger(__name__)


def load_crm_ids(project: Path, crm: str, lang: Lang = "en") -> dict[str, Any] | None:
    """Return the ``ids`` section of the project's CRM state, or None without a state file.

    Raises:
        InputError: The state file does not parse, or it was written for another CRM.
    """
    if not state_path(project).is_file():
        return None
    return load_state(project, crm, lang).ids()


def _order_pipeline(order_stages: Mapping[str, Any],
                    ids: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """Return the recorded pipeline of the order stages: by label, else by its stage keys."""
    pipelines = [entry for entry in (ids.get("pipelines") or {}).values()
                 if isinstance(entry, Mapping)]
    label = str((order_stages["pipeline"].get("name") or {}).get("en", ""))
    for entry in pipelines:
        if label and entry.get("label") == label:
            return entry
    keys = {str(stage["key"]) for stage in order_stages["stages"]}
    for entry in pipelines:
        if keys <= set(entry.get("stages") or {}):
            return entry
    return None


def with_stage_ids(spec: Mapping[str, Mapping[str, Any]],
                   ids: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """Return a copy of ``spec`` whose order pipeline and stages carry the recorded ids.

    A stage or pipeline the state does not record keeps its ``crm_value``.
    """
    result: dict[str, dict[str, Any]] = {name: dict(part) for name, part in spec.items()}
    if not ids or "order_stages" not in spec.get("mapping", {}):
        return result
    order_stages = copy.deepcopy(spec["mapping"]["order_stages"])
    pipeline = _order_pipeline(order_stages, ids)
    if pipeline is None:
        log.info("the CRM state records no pipeline for the order stages; keeping stage keys")
        return result
    if pipeline.get("id"):
        order_stages["pipeline"]["crm_value"] = str(pipeline["id"])
    stage_ids = pipeline.get("stages") or {}
    for stage in order_stages["stages"]:
        if stage_ids.get(stage["key"]):
            stage["crm_value"] = str(stage_ids[stage["key"]])
    result["mapping"] = {**spec["mapping"], "order_stages": order_stages}
    return result
