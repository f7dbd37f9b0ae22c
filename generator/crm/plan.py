"""Build the plan: connect to the project's CRM, read it, and diff it against the desired state."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, Protocol

from generator.crm.compare import bilingual
from generator.crm.desired import project_plan
from generator.crm.http import CallOptions, CrmApiError
from generator.crm.hubspot import HubSpotCrm
from generator.crm.model import APPLY_ORDER, CrmPlan, PlanItem, Text
from generator.crm.settings import hubspot_settings, zoho_settings
from generator.crm.state import CrmState
from generator.crm.zoho import ZohoCrm, criteria_text, exit_text
from generator.errors import InputError, Problem
from generator.i18n import message
from generator.model import Lang


class CrmAdapter(Protocol):
    """The CRM adapter interface that ``build_plan`` and ``apply_plan`` call."""

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
            options: CallOptions | None = None,
            desired: Mapping[str, Any] | None = None, *,
            setup_guide: bool = False) -> CrmAdapter:
    """Return the adapter for ``crm`` with credentials read from ``environ``.

    ``desired`` is the project's desired state, whose items decide which scopes the
    fix for a missing HubSpot token names. ``setup_guide`` is true when the project
    has the connector setup guide that the fix can point to.

    Raises:
        InputError: A credential is missing or rejected (exit code 2).
        CrmApiError: Zoho's token endpoint failed for a reason other than the credentials.
    """
    options = replace(options or CallOptions(), lang=lang)
    if crm == "hubspot":
        return HubSpotCrm(hubspot_settings(environ, lang, desired, setup_guide=setup_guide),
                          options)
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
    decision = project_plan(project)
    path = decision.get("path")
    desired_keys = {item.key for item in items}
    items = [_for_path(item, path, adapter.crm) for item in _in_apply_order(items)
             if _fits_path(item, path)]
    if adapter.crm == "zoho" and not _order_rollups_filled(decision):
        items = [_on_rollup_summaries(item, desired) for item in items]
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
# Steps with a catalogue message of their own on the connector path. There no call
# needs the Deals layout id and nothing writes subscription statuses, so the desired
# state's text for these steps would mislead.
_CONNECTOR_STEP_TEXT = {
    "zoho_currency_pipeline": "crm_step_zoho_currency_pipeline_connector",
    "hubspot_subscription_types": "crm_step_hubspot_subscription_types_connector",
}
# The custom module that contains events. Nothing fills it on the connector path.
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


# Zoho fields of the order roll-ups and the catalogue entry naming the rollup summary
# field that takes each one's place where nothing fills it (docs/connector-setup.md,
# section 4.1). The names are the Zoho targets in generator/data/spec/mapping.yaml.
_ROLLUP_SUMMARIES = {
    "Ecom_Orders_Count": "crm_rollup_summary_orders_count",
    "Ecom_LTV_SAR": "crm_rollup_summary_ltv_sar",
    "Ecom_First_Order_At": "crm_rollup_summary_first_order_at",
    "Ecom_Last_Order_At": "crm_rollup_summary_last_order_at",
}


def _order_rollups_filled(decision: Mapping[str, Any]) -> bool:
    """Return whether something writes the order roll-up fields on the project's path.

    The iPaaS and API paths write them, and so does the daily contact sync of a
    WooCommerce connector project. Other connector projects leave them empty, and an
    unknown path counts as filled, so the plan keeps the desired state's own steps.
    """
    if decision.get("path") != "connector":
        return True
    return decision.get("platform") == "woocommerce" and decision.get("contact_sync") == "daily"


def _on_rollup_summaries(item: PlanItem, desired: Mapping[str, Any]) -> PlanItem:
    """Rewrite a custom view step on the rollup summary fields where no roll-up is filled."""
    if item.key in _CONNECTOR_EMPTY_SEGMENTS:
        if item.action == "manual":  # the substitute step of _for_path
            item.manual = [bilingual("crm_manual_new_subscribers_connector_zoho_summary",
                                     name=item.name)]
        return item
    view = next((entry for entry in desired.get("segments", [])
                 if item.key == f"view:Contacts/{entry['key']}"), None)
    if item.kind != "view" or view is None:
        return item
    if not any(entry["field"] in _ROLLUP_SUMMARIES for entry in view["criteria"]):
        return item
    item.manual = [Text(en=_summary_view_text(view, "en"), ar=_summary_view_text(view, "ar"))]
    return item


def _summary_view_text(view: Mapping[str, Any], lang: Lang) -> str:
    criteria = criteria_text(_on_summaries(view["criteria"], lang), lang)
    return message("crm_manual_zoho_view_rollup_summary", lang, name=view["view_name"],
                   module=view["module"], criteria=criteria, rule=view["rule"][lang],
                   exit=exit_text(view, lang))


def _on_summaries(criteria: list[dict[str, Any]], lang: Lang) -> list[dict[str, Any]]:
    """Put the rollup summary field's description in place of each order roll-up field."""
    named = []
    for entry in criteria:
        entry_name = _ROLLUP_SUMMARIES.get(entry["field"])
        named.append({**entry, "field": message(entry_name, lang)} if entry_name else entry)
    return named


def _step_text(step: Mapping[str, Any], path: str | None) -> Text:
    entry = _CONNECTOR_STEP_TEXT.get(step["key"]) if path == "connector" else None
    if entry is not None:
        return bilingual(entry)
    return Text(step["text"]["en"], step["text"]["ar"])


# Account statuses under which the state file may describe another account, so the
# plan ignores it.
FOREIGN_ACCOUNT = frozenset({"other", "unknown"})


def account_check(state: CrmState, live: str | None) -> dict[str, Any]:
    """Compare the account the state file records with the connected one.

    Returns:
        ``status``, ``recorded`` (the account id in the state file) and ``live`` (the
        id of the connected account). The status is one of:

        - ``same``: the two ids are equal.
        - ``new``: the state records no account yet (a new file, or one written before
          accounts were recorded).
        - ``other``: the two ids differ.
        - ``unknown``: the state records an account, but the connected account's id
          could not be read.

        Under ``other`` and ``unknown`` the plan ignores the state.
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
