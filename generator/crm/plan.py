"""Build the plan: connect to the project's CRM, read it, and diff it against the desired state."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from generator.crm.compare import bilingual
from generator.crm.desired import project_path
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

    def account_id(self) -> str | None:
        """Return the CRM's id of the connected account, None when it cannot be read."""

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
        account = account_check(state, adapter.account_id())
        if account["status"] in FOREIGN_ACCOUNT:
            # Nothing recorded for another account may be matched, renamed or pruned.
            state = CrmState(crm=state.crm)
        items = adapter.plan_items(desired, state)
    except CrmApiError as error:
        if error.status == 401:
            raise InputError(message("crm_auth_rejected", lang, crm=adapter.label), [
                Problem(f"{error.method} {error.base_url}{error.path}", error.text,
                        message(f"crm_auth_fix_{adapter.crm}", lang))]) from error
        raise
    path = project_path(project)
    desired_keys = {item.key for item in items}
    items = [_for_path(item, path, adapter.crm) for item in _in_apply_order(items)
             if _fits_path(item, path)]
    items += _leftovers(state, desired_keys, prune)
    steps = [(step["key"], _step_text(step, path))
             for step in adapter.desired_steps(list(desired.get("manual_steps", [])))
             if not (path == "connector" and step["key"] in CONNECTOR_SKIPPED_STEPS)]
    plan = CrmPlan(crm=adapter.crm, project=project.resolve().name, items=items,
                   manual_steps=[step for step in steps if step[0] not in SETUP_STEPS],
                   prune=prune,
                   setup_steps=[step for step in steps if step[0] in SETUP_STEPS])
    plan.context["account"] = account
    layout_id = getattr(adapter, "layout_id", None)
    if layout_id:
        plan.context["layout_id"] = layout_id
    return plan


# On the connector path nothing writes events or reads integration/mapping.yaml's line
# items, and no call needs the Deals layout id: the steps for those are left out.
CONNECTOR_SKIPPED_STEPS = frozenset({"hubspot_events_tier", "zoho_events_module",
                                     "zoho_line_items"})
# General steps that the items' own steps depend on, so they are numbered first: the
# data centre, the Deals pipelines switch and the custom module come before the
# stages, the pipeline and the fields.
SETUP_STEPS = frozenset({"zoho_data_centre", "zoho_currency_pipeline", "zoho_events_module"})
# Steps whose text on the connector path is a catalogue message of its own: there the
# integration writes no subscription status, so the step must not say it does.
_CONNECTOR_STEP_TEXT = {
    "zoho_currency_pipeline": "crm_step_zoho_currency_pipeline_connector",
    "hubspot_subscription_types": "crm_step_hubspot_subscription_types_connector",
}
# The custom module and definitions that hold events, which nothing fills on that path.
_EVENT_CONTAINERS = frozenset({"Ecom_Events"})


def _fits_path(item: PlanItem, path: str | None) -> bool:
    """Return whether ``item`` is of use on the project's path."""
    if path != "connector":
        return True
    return item.kind != "event_definition" and item.container not in _EVENT_CONTAINERS


# Segments whose field nothing fills on the connector path: the marketing opt-in time
# comes from the store's checkout consent, which only the iPaaS and API paths write.
_CONNECTOR_EMPTY_SEGMENTS = frozenset({"list:new_subscribers", "view:Contacts/new_subscribers"})


def _for_path(item: PlanItem, path: str | None, crm: str) -> PlanItem:
    """Turn a segment that would stay empty on the connector path into its substitute step."""
    if path != "connector" or item.key not in _CONNECTOR_EMPTY_SEGMENTS:
        return item
    substitute = PlanItem(item.kind, item.key, item.name, item.label, item.container, "manual",
                          drift=False, live_id=item.live_id, owned=item.owned)
    substitute.manual.append(bilingual(f"crm_manual_new_subscribers_connector_{crm}",
                                       name=item.name))
    return substitute


def _step_text(step: Mapping[str, Any], path: str | None) -> Text:
    entry = _CONNECTOR_STEP_TEXT.get(step["key"]) if path == "connector" else None
    if entry is not None:
        return bilingual(entry)
    return Text(step["text"]["en"], step["text"]["ar"])


# Account statuses under which the state file describes some other account, or may.
FOREIGN_ACCOUNT = frozenset({"other", "unknown"})


def account_check(state: CrmState, live: str | None) -> dict[str, Any]:
    """Compare the account the state file records with the connected one.

    The status is ``same``; ``new`` when the state records no account yet (a new
    file, or one written before accounts were recorded); ``other`` when the ids
    differ; ``unknown`` when the state records an account but the connected one
    could not be read. Under ``other`` and ``unknown`` the plan ignores the state.
    """
    recorded = state.account or None
    if recorded is None:
        status = "new"
    elif live is None:
        status = "unknown"
    else:
        status = "same" if live == recorded else "other"
    return {"status": status, "recorded": recorded, "live": live}


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
