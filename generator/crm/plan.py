"""Build the plan: connect to the project's CRM, read it, and diff it against the desired state."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from generator.crm.http import CallOptions, CrmApiError
from generator.crm.hubspot import HubSpotCrm
from generator.crm.model import APPLY_ORDER, CrmPlan, PlanItem, Text
from generator.crm.settings import hubspot_settings, zoho_settings
from generator.crm.state import CrmState
from generator.crm.zoho import ZohoCrm
from generator.errors import InputError, Problem
from generator.i18n import message
from generator.model import Lang


class CrmAdapter(Protocol):
    """What ``build_plan`` and ``apply_plan`` need from a CRM adapter."""

    crm: str
    label: str
    endpoint: str

    def plan_items(self, desired: Mapping[str, Any], state: CrmState) -> list[PlanItem]:
        """Compare the desired state with the account."""

    def create(self, item: PlanItem, state: CrmState) -> None:
        """Create ``item`` and record its id."""

    def update(self, item: PlanItem, state: CrmState) -> None:
        """Send the changes of ``item``."""

    def delete(self, item: PlanItem, state: CrmState) -> None:
        """Delete an item Rabt created."""

    def close(self) -> None:
        """Release the HTTP clients."""

    def desired_steps(self, steps: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        """Return the desired state's manual steps that still apply to this account."""


def connect(crm: str, environ: Mapping[str, str], lang: Lang = "en",
            options: CallOptions | None = None) -> CrmAdapter:
    """Return the adapter for ``crm`` with credentials read from ``environ``.

    Raises:
        InputError: A credential is missing or rejected (exit code 2).
        CrmApiError: Zoho's token endpoint failed for a reason other than the credentials.
    """
    if crm == "hubspot":
        return HubSpotCrm(hubspot_settings(environ, lang), options)
    if crm == "zoho":
        return ZohoCrm(zoho_settings(environ, lang), options, lang)
    raise ValueError(f"no CRM adapter for {crm!r}")


def build_plan(project: Path, desired: Mapping[str, Any], adapter: CrmAdapter,
               state: CrmState, *, prune: bool = False, lang: Lang = "en") -> CrmPlan:
    """Read the live CRM and return the plan for the project at ``project``.

    Raises:
        InputError: The CRM rejected the credentials (HTTP 401).
        CrmApiError: A read failed for another reason.
    """
    try:
        items = adapter.plan_items(desired, state)
    except CrmApiError as error:
        if error.status == 401:
            raise InputError(message("crm_auth_rejected", lang, crm=adapter.label), [
                Problem(f"{error.method} {error.base_url}{error.path}", error.text,
                        message(f"crm_auth_fix_{adapter.crm}", lang))]) from error
        raise
    items = _in_apply_order(items)
    items += _leftovers(state, {item.key for item in items}, prune)
    steps = [(step["key"], Text(step["text"]["en"], step["text"]["ar"]))
             for step in adapter.desired_steps(list(desired.get("manual_steps", [])))]
    plan = CrmPlan(crm=adapter.crm, project=project.resolve().name, items=items,
                   manual_steps=steps, prune=prune)
    layout_id = getattr(adapter, "layout_id", None)
    if layout_id:
        plan.context["layout_id"] = layout_id
    return plan


def _in_apply_order(items: list[PlanItem]) -> list[PlanItem]:
    """Sort items by kind in dependency order, keeping the desired state's order inside a kind."""
    def rank(item: PlanItem) -> int:
        return APPLY_ORDER.index(item.kind) if item.kind in APPLY_ORDER else len(APPLY_ORDER)

    return sorted(items, key=rank)


def _leftovers(state: CrmState, planned: set[str], prune: bool) -> list[PlanItem]:
    """Return items Rabt created that the desired state no longer has, deepest kind first."""
    leftovers = []
    for key, entry in state.items.items():
        if key in planned or not entry.get("owned"):
            continue
        name = str(entry.get("name") or key.split("/")[-1])
        leftovers.append(PlanItem(
            str(entry["kind"]), key, name, Text(name, name), str(entry.get("container", "")),
            "delete" if prune else "kept", live_id=entry.get("id"), owned=True,
            parent=entry.get("parent")))

    def rank(item: PlanItem) -> int:
        order = APPLY_ORDER.index(item.kind) if item.kind in APPLY_ORDER else -1
        return -order

    return sorted(leftovers, key=rank)
