"""Zoho CRM adapter: custom fields on the spec's modules, Deals stages, pipeline and views.

Calls go to the ``api_domain`` that Zoho's token response names (so an account on
the Saudi data centre is reached at ``www.zohoapis.sa``), with the header
``Authorization: Zoho-oauthtoken <token>``. Custom fields are created and changed
through ``/crm/v8/settings/fields``. Values of standard picklists (Deals ``Stage``,
``Lead_Source``), the pipeline and the custom views are compared where the API
reads them and otherwise printed as manual steps, because their write APIs are
not confirmed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from generator.crm.compare import bilingual, bilingual_list, field_changes, show
from generator.crm.http import CallOptions, CrmApiError, CrmHttp
from generator.crm.model import Change, PlanItem, Text
from generator.crm.settings import ZohoSettings, url_problems
from generator.crm.state import CrmState
from generator.errors import InputError, Problem
from generator.i18n import message
from generator.model import Lang

CRM_LABEL = "Zoho CRM"
API = "/crm/v8"
CURRENCY_PRECISION = 2
# Token errors Zoho returns when the client id or refresh token belongs to another
# data centre, or was revoked.
_WRONG_DC_ERRORS = frozenset({"invalid_client"})
_BAD_TOKEN_ERRORS = frozenset({"invalid_code", "invalid_token"})
# General steps of the desired state that items of the plan state more exactly.
_STEPS_COVERED_BY_ITEMS = ("zoho_custom_views", "zoho_lead_source", "zoho_events_module")

# Errors of GET /settings/fields that mean the module does not exist in the org.
_MISSING_MODULE_CODES = frozenset({"INVALID_MODULE", "INVALID_DATA", "NOT_SUPPORTED"})
# Differences Rabt never makes through the API: a type change converts stored values,
# a shorter length cuts them, and uniqueness is fixed at creation.
_NEVER_UPDATED = frozenset({"data_type", "length", "unique"})


class ZohoCrm:
    """Plans and applies a Zoho CRM desired state through one refresh token."""

    crm = "zoho"
    label = CRM_LABEL

    def __init__(self, settings: ZohoSettings, options: CallOptions | None = None,
                 lang: Lang = "en") -> None:
        self._settings = settings
        self._lang = lang
        self._token = ""
        self._accounts = CrmHttp(settings.accounts_url, dict, options)
        try:
            api_domain = self._refresh()
            problems = url_problems("api_domain", api_domain, lang)
            if problems:
                raise InputError(message("crm_env_invalid", lang), problems)
        except BaseException:
            self._accounts.close()
            raise
        self.http = CrmHttp(api_domain, lambda: {"Authorization": f"Zoho-oauthtoken {self._token}"},
                            options, refresh_auth=self._refresh_again)
        self.endpoint = api_domain
        self.layout_id: str | None = None
        self._fields: dict[str, dict[str, dict[str, Any]] | None] = {}

    def close(self) -> None:
        """Close both HTTP clients."""
        self._accounts.close()
        self.http.close()

    def _refresh(self) -> str:
        """Get a new access token and return the API domain Zoho names for the account.

        Raises:
            InputError: Zoho rejected the client or the refresh token; the message names
                the data centre when it is the likely cause.
        """
        settings = self._settings
        form = {"grant_type": "refresh_token", "client_id": settings.client_id,
                "client_secret": settings.client_secret, "refresh_token": settings.refresh_token}
        try:
            data = self._accounts.request("POST", "/oauth/v2/token", form=form)
        except CrmApiError as error:
            if error.status is not None and 400 <= error.status < 500:
                data = {"error": error.text}
            else:
                raise
        if not isinstance(data, dict) or "access_token" not in data:
            code = str(data.get("error", "")) if isinstance(data, dict) else ""
            raise self._token_error(code)
        self._token = str(data["access_token"])
        return str(data.get("api_domain") or "https://www.zohoapis.com")

    def _refresh_again(self) -> bool:
        self._refresh()
        return True

    def _token_error(self, code: str) -> InputError:
        lang = self._lang
        settings = self._settings
        if code in _WRONG_DC_ERRORS:
            text = message("crm_zoho_wrong_dc", lang, code=code, dc=settings.dc,
                           accounts=settings.accounts_url)
        elif code in _BAD_TOKEN_ERRORS:
            text = message("crm_zoho_bad_refresh", lang, code=code, dc=settings.dc)
        else:
            text = message("crm_zoho_token_failed", lang, code=code or "?")
        return InputError(message("crm_zoho_auth_failed", lang), [
            Problem("ZOHO_DC", text, message("crm_zoho_dc_fix_all", lang))])

    # Reading the live account.

    def account_id(self) -> str | None:
        """Return the id of the org the token belongs to, None when unreadable.

        Reading it needs the scope ZohoCRM.org.READ. A token without it gets None,
        and the plan then reports that the account could not be read.

        Raises:
            CrmApiError: A server failure.
        """
        try:
            data = self.http.request("GET", f"{API}/org")
        except CrmApiError as error:
            if error.status is not None and 400 <= error.status < 500:
                return None
            raise
        orgs = data.get("org") if isinstance(data, dict) else None
        if not isinstance(orgs, list) or not orgs or not isinstance(orgs[0], dict):
            return None
        value = orgs[0].get("id")
        return str(value) if value not in (None, "") else None

    def _module_fields(self, module: str) -> dict[str, dict[str, Any]] | None:
        """Return the fields of ``module`` by API name, or None when the module is missing."""
        if module not in self._fields:
            try:
                data = self.http.request("GET", f"{API}/settings/fields",
                                         params={"module": module})
            except CrmApiError as error:
                if error.status in (400, 404) and (error.code in _MISSING_MODULE_CODES):
                    self._fields[module] = None
                    return None
                raise
            fields = data.get("fields", []) if isinstance(data, dict) else []
            self._fields[module] = {entry["api_name"]: entry for entry in fields
                                    if isinstance(entry, dict) and "api_name" in entry}
        return self._fields[module]

    def _pipelines(self) -> tuple[str | None, list[dict[str, Any]] | None, str]:
        """Return the Deals layout id, its pipelines (None when unreadable) and why not."""
        try:
            layouts = self.http.request("GET", f"{API}/settings/layouts",
                                        params={"module": "Deals"})
            layout_list = layouts.get("layouts", []) if isinstance(layouts, dict) else []
            if not layout_list:
                return None, None, message("crm_zoho_no_deals_layout", self._lang)
            layout_id = str(layout_list[0]["id"])
            data = self.http.request("GET", f"{API}/settings/pipeline",
                                     params={"layout_id": layout_id})
        except CrmApiError as error:
            if error.status is not None and 400 <= error.status < 500 and error.status != 401:
                return None, None, str(error)
            raise
        pipelines = data.get("pipeline", []) if isinstance(data, dict) else []
        return layout_id, [entry for entry in pipelines if isinstance(entry, dict)], ""

    # Planning.

    def desired_steps(self, steps: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        """Drop the general steps that the plan's own items already spell out.

        The custom views, the Lead_Source values and a missing custom module each get an
        exact step from their item, and the data-centre step is moot once ``ZOHO_DC`` is
        already ``sa``.
        """
        skip = set(_STEPS_COVERED_BY_ITEMS)
        if self._settings.dc == "sa":
            skip.add("zoho_data_centre")
        return [step for step in steps if step.get("key") not in skip]


    def plan_items(self, desired: Mapping[str, Any], state: CrmState) -> list[PlanItem]:
        """Compare the desired state with the org and return one item per desired thing."""
        items: list[PlanItem] = []
        for module in desired["modules"]:
            live_fields = self._module_fields(module["module"])
            fields = [_field_item(module["module"], entry, live_fields, state)
                      for entry in module["fields"]]
            if live_fields is None and fields:
                # One step per missing module: creating the module lets apply add every field.
                fields[0].manual.append(bilingual_list(
                    "crm_manual_zoho_module", module=module["module"],
                    lists={"fields": [item.name for item in fields]}))
            items += fields
        for picklist in desired["picklists"]:
            items.append(_picklist_item(picklist, self._module_fields(picklist["module"])))
        layout_id, pipelines, reason = self._pipelines()
        deals = self._module_fields("Deals") or {}
        items.append(_pipeline_item(desired["pipeline"], pipelines, reason, deals.get("Stage")))
        self.layout_id = layout_id
        items += [_view_item(view) for view in desired["segments"]]
        return items

    # Applying.

    def create(self, item: PlanItem, state: CrmState) -> None:
        """Create a custom field or the Deals pipeline and record the id Zoho returns."""
        if item.kind == "pipeline":
            path = f"{API}/settings/pipeline"
            data = self.http.request("POST", path, params={"layout_id": str(self.layout_id)},
                                     body={"pipeline": [item.payload]},
                                     recover=lambda: self._created_pipeline(item))
            pipeline_id = _result_id(data, "POST", path, self._lang, key="pipeline")
            state.record(item.key, item.kind, pipeline_id, owned=True, name=item.name,
                         container=item.container, label=item.label.en)
            return
        if item.kind != "custom_field":
            raise ValueError(f"cannot create a {item.kind} in Zoho CRM")
        data = self.http.request("POST", f"{API}/settings/fields",
                                 params={"module": item.container},
                                 body={"fields": [item.payload]},
                                 recover=lambda: self._created_field(item))
        field_id = _result_id(data, "POST", f"{API}/settings/fields", self._lang)
        state.record(item.key, item.kind, field_id, owned=True, name=item.name,
                     container=item.container)

    def _created_field(self, item: PlanItem) -> dict[str, Any] | None:
        """Look up a field whose create may have succeeded, as a create response, or None."""
        self._fields.pop(item.container, None)  # read it again, not from the plan's copy
        fields = self._module_fields(item.container) or {}
        label = item.payload.get("field_label")
        found = fields.get(item.name) or next(
            (entry for entry in fields.values() if label and entry.get("field_label") == label),
            None)
        return _success(found.get("id")) if found and found.get("id") else None

    def _created_pipeline(self, item: PlanItem) -> dict[str, Any] | None:
        """Look up a pipeline whose create may have succeeded, as a create response, or None."""
        _, pipelines, _ = self._pipelines()
        name = item.payload.get("display_value")
        found = next((entry for entry in pipelines or []
                      if name in (entry.get("display_value"), entry.get("actual_value"))), None)
        return _success(found.get("id"), key="pipeline") if found and found.get("id") else None

    def update(self, item: PlanItem, state: CrmState) -> None:
        """Send a custom field's changes and record its id."""
        path = f"{API}/settings/fields/{item.live_id}"
        data = self.http.request("PATCH", path, params={"module": item.container},
                                 body={"fields": [item.payload]})
        _result_id(data, "PATCH", path, self._lang, required=False)
        state.record(item.key, item.kind, item.live_id, owned=False, name=item.name,
                     container=item.container)

    def delete(self, item: PlanItem, state: CrmState) -> None:
        """Delete a custom field Rabt created and drop it from the state."""
        entry = state.items.get(item.key, {})
        path = f"{API}/settings/fields/{entry.get('id')}"
        try:
            self.http.request("DELETE", path,
                              params={"module": str(entry.get("container", item.container))})
        except CrmApiError as error:
            if error.status != 404:
                raise
        state.forget(item.key)


def _success(item_id: Any, key: str = "fields") -> dict[str, Any]:
    """Return Zoho's per-item success response for ``item_id``."""
    return {key: [{"status": "success", "code": "SUCCESS", "details": {"id": str(item_id)}}]}


def _result_id(data: Any, method: str, path: str, lang: Lang, required: bool = True,
               key: str = "fields") -> str:
    """Return the id from Zoho's per-item result, raising the item's error when it failed."""
    results = data.get(key) if isinstance(data, dict) else None
    first = results[0] if isinstance(results, list) and results else {}
    if not isinstance(first, dict):
        first = {}
    if first and str(first.get("status", "success")).lower() != "success":
        details = first.get("details")
        raise CrmApiError(method, path, 200, str(first.get("message", "")),
                          str(first.get("code") or "") or None,
                          details=str(details) if details else "", lang=lang)
    details = first.get("details") if isinstance(first.get("details"), dict) else {}
    field_id = details.get("id") if details else None
    if field_id is None and required:
        raise CrmApiError(method, path, 200, message("crm_http_response_lacks", lang,
                                                     keys=f"{key}[0].details.id"), lang=lang)
    return str(field_id) if field_id is not None else ""


def _field_payload(entry: Mapping[str, Any]) -> dict[str, Any]:
    payload: dict[str, Any] = {"field_label": entry["field_label"],
                               "data_type": entry["data_type"]}
    if "length" in entry:
        payload["length"] = entry["length"]
    if "pick_list_values" in entry:
        payload["pick_list_values"] = [dict(value) for value in entry["pick_list_values"]]
    if entry["data_type"] == "currency":
        # SAR amounts keep two decimals; Zoho requires the currency object on currency fields.
        payload["currency"] = {"rounding_option": "normal", "precision": CURRENCY_PRECISION}
    if "lookup" in entry:
        payload["lookup"] = {"module": {"api_name": entry["lookup"]["module"]},
                             "display_label": entry["field_label"]}
    if entry.get("unique"):
        # NOTE: the shape of "unique" in the create request is not confirmed.
        payload["unique"] = {"case_sensitive": False}
    return payload


def _field_item(module: str, entry: Mapping[str, Any],
                live_fields: Mapping[str, Mapping[str, Any]] | None,
                state: CrmState) -> PlanItem:
    key = f"field:{module}/{entry['api_name']}"
    label = Text(entry["field_label"], entry.get("label_ar") or entry["field_label"])
    item = PlanItem("custom_field", key, entry["api_name"], label, module, "create",
                    owned=state.owned(key))
    if live_fields is None:
        item.action = "manual"
        return item
    live = live_fields.get(entry["api_name"])
    if live is None:
        item.payload = _field_payload(entry)
        return item
    item.live_id = str(live.get("id"))
    desired = {"field_label": entry["field_label"], "data_type": entry["data_type"],
               "unique": bool(entry.get("unique"))}
    have = {"field_label": live.get("field_label"), "data_type": live.get("data_type"),
            "unique": bool(live.get("unique"))}
    changes = field_changes(desired, have, ("field_label", "data_type", "unique"))
    if "length" in entry and live.get("length") is not None and \
            int(live["length"]) < int(entry["length"]):
        changes.append(Change("length", live["length"], entry["length"]))
    value_change = _value_change(entry.get("pick_list_values"), live.get("pick_list_values"))
    if value_change is not None:
        changes.append(value_change)
    return _split(item, changes)


def _value_change(desired: list[dict[str, str]] | None,
                  live: list[dict[str, Any]] | None) -> Change | None:
    if desired is None:
        return None
    have = [value.get("actual_value") for value in live or []]
    missing = [value for value in desired if value["actual_value"] not in have]
    if not missing:
        return None
    return Change("pick_list_values", have, [value["actual_value"] for value in desired])


def _split(item: PlanItem, changes: list[Change]) -> PlanItem:
    what = f"{item.container}.{item.name}"
    for change in changes:
        if change.field in _NEVER_UPDATED:
            item.manual.append(bilingual("crm_manual_fixed_field", what=what, crm=CRM_LABEL,
                                         field=change.field, old=show(change.old),
                                         new=show(change.new)))
        elif not item.owned:
            name = "crm_manual_rename" if change.field == "field_label" else "crm_manual_not_owned"
            item.manual.append(bilingual(name, what=what, crm=CRM_LABEL, field=change.field,
                                         old=show(change.old), new=show(change.new)))
        else:
            item.changes.append(change)
            if change.field == "pick_list_values":
                item.payload["pick_list_values"] = [
                    {"display_value": value, "actual_value": value} for value in change.new]
            else:
                item.payload[change.field] = change.new
    if item.changes:
        item.action = "update"
    elif item.manual:
        item.action = "manual"
    else:
        item.action = "unchanged"
    return item


def _picklist_item(picklist: Mapping[str, Any],
                   live_fields: Mapping[str, Mapping[str, Any]] | None) -> PlanItem:
    module = picklist["module"]
    name = picklist["field"]
    key = f"picklist:{module}/{name}"
    item = PlanItem("picklist", key, name, Text(name, name), module, "unchanged")
    live = (live_fields or {}).get(name)
    options = {}
    for option in (live or {}).get("pick_list_values") or []:
        options[option.get("actual_value")] = option
        options.setdefault(option.get("display_value"), option)
    for value in picklist["values"]:
        have = options.get(value["actual_value"])
        if have is None:
            item.manual.append(_missing_value_step(module, name, value))
            continue
        for field in ("probability", "forecast_type"):
            if field in value and str(have.get(field)) != str(value[field]):
                item.manual.append(bilingual(
                    "crm_manual_zoho_value_field", module=module, field=name,
                    value=value["actual_value"], name=field, old=show(have.get(field)),
                    new=show(value[field])))
    if item.manual:
        item.action = "manual"
    return item


def _missing_value_step(module: str, name: str, value: Mapping[str, Any]) -> Text:
    if "probability" in value:
        return bilingual("crm_manual_zoho_stage", module=module, field=name,
                         value=value["actual_value"], probability=value["probability"],
                         forecast=value["forecast_type"])
    return bilingual("crm_manual_zoho_value", module=module, field=name,
                     value=value["actual_value"], display=value["display_value"])


def _pipeline_item(pipeline: Mapping[str, Any], live: list[dict[str, Any]] | None,
                   reason: str, stage_field: Mapping[str, Any] | None) -> PlanItem:
    """Compare the Deals pipeline; create it when every stage exists as a Stage option.

    Zoho builds a pipeline from existing Stage picklist options, referred to by id,
    so a missing stage value stays a manual step and the pipeline waits for it.
    """
    name = re.sub(r"[^a-z0-9]+", "_", pipeline["name"].lower()).strip("_")
    item = PlanItem("pipeline", f"pipeline:Deals/{name}", pipeline["name"],
                    Text(pipeline["name"], pipeline["name_ar"]), "Deals", "unchanged")
    found = next((entry for entry in live or []
                  if pipeline["name"] in (entry.get("display_value"), entry.get("actual_value"))),
                 None)
    if found is None:
        option_ids = _stage_option_ids(stage_field, pipeline["stages"])
        if live is not None and option_ids is not None:
            item.action = "create"
            item.payload = {"display_value": pipeline["name"], "default": False, "maps": [
                {"id": option_id, "sequence_number": number}
                for number, option_id in enumerate(option_ids, 1)]}
            return item
        item.action = "manual"
        # Drift is a difference Rabt read. Pipelines it could not read stay a step to check,
        # so they never make `rabt crm plan` exit 4 on their own.
        item.drift = live is not None
        key = "crm_manual_zoho_pipeline_unread" if live is None else "crm_manual_zoho_pipeline"
        item.manual.append(bilingual_list(key, name=pipeline["name"],
                                          lists={"stages": list(pipeline["stages"])},
                                          reason=reason or "-"))
        return item
    item.live_id = str(found.get("id"))
    have = [str(stage.get("display_value") or stage.get("actual_value"))
            for stage in found.get("maps", []) if isinstance(stage, dict)]
    missing = [stage for stage in pipeline["stages"] if stage not in have]
    if missing:
        item.action = "manual"
        item.manual.append(bilingual_list("crm_manual_zoho_pipeline_stages",
                                          name=pipeline["name"], lists={"stages": missing}))
    return item


def _stage_option_ids(stage_field: Mapping[str, Any] | None,
                      names: list[str]) -> list[str] | None:
    """Return the Stage option id of each name, or None when any is missing."""
    options = (stage_field or {}).get("pick_list_values") or []
    ids = []
    for name in names:
        match = next((option for option in options
                      if name in (option.get("actual_value"), option.get("display_value"))), None)
        if match is None or match.get("id") is None:
            return None
        ids.append(str(match["id"]))
    return ids


def _view_item(view: Mapping[str, Any]) -> PlanItem:
    # The user types this name in Zoho and searches for it later, so both languages
    # keep the same name. Only the sentence around it is translated.
    name = view["view_name"]
    item = PlanItem("view", f"view:Contacts/{view['key']}", name, Text(name, name),
                    view["module"], "manual", drift=False)
    item.manual.append(Text(**{
        lang: message("crm_manual_zoho_view", lang, name=name, module=view["module"],
                      criteria=criteria_text(view["criteria"], lang), rule=view["rule"][lang],
                      exit=exit_text(view, lang))
        for lang in ("en", "ar")}))
    return item


def exit_text(view: Mapping[str, Any], lang: Lang) -> str:
    """Return the segment's exit note after a space, or nothing when leaving is the entry rule.

    A custom view drops a contact as soon as a criterion stops matching, so the step
    of a segment with an exit rule of its own (the VIP exit bar) states the difference.
    """
    note = view.get("exit_note")
    return f" {note[lang]}" if note else ""


def criteria_text(criteria: Sequence[Mapping[str, Any]], lang: Lang) -> str:
    """Describe a segment's criteria in words, as a view's filter editor shows them."""
    return message("crm_view_criteria_join", lang).join(
        message(f"crm_view_criterion_{entry['op']}", lang, field=entry["field"],
                value=entry.get("value", ""))
        for entry in criteria)
