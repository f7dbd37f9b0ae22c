"""HubSpot adapter: read properties, groups, deal pipelines and lists v3; plan and apply changes.

Endpoints (CRM API v3): ``/crm/v3/properties/{object}`` and its ``/groups``,
``/crm/v3/pipelines/deals`` with ``/{id}/stages``, and ``/crm/v3/lists`` (looked
up by id, or by name with ``/object-type-id/0-1/name/{name}``). HubSpot returns
generated ids for pipelines, stages and lists; apply records them in the state file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from generator.crm.compare import (
    bilingual,
    bilingual_list,
    contains,
    field_changes,
    same_number,
    show,
)
from generator.crm.http import CallOptions, CrmApiError, CrmHttp
from generator.crm.hubspot_scopes import scopes_for_path
from generator.crm.model import Change, PlanItem, Text
from generator.crm.settings import HubSpotSettings
from generator.crm.state import CrmState
from generator.i18n import message
from generator.model import Lang
from generator.runtime.ratelimit import TokenBucket

CRM_LABEL = "HubSpot"
PIPELINE_OBJECT = "deals"
CONTACTS_OBJECT_TYPE_ID = "0-1"
# Returns portalId, the account's own id. Every account shares the API host.
ACCOUNT_PATH = "/account-info/v3/details"
RATE_WINDOW_SECONDS = 10.0
# Share of the limit saved for a burst; the rest refills steadily over the window. A
# plan or apply makes under a hundred calls, so half the limit at once keeps it quick.
RATE_BURST_SHARE = 0.5
# Fields compared per kind. The rest of the live record (ids, dates) is ignored.
_PROPERTY_FIELDS = ("label", "type", "fieldType", "hasUniqueValue", "groupName", "description")
# Differences the API cannot make, or must not: changing a type converts stored
# values, and HubSpot fixes hasUniqueValue when a property is created.
_NEVER_UPDATED = frozenset({"type", "fieldType", "hasUniqueValue", "processingType"})
# Renaming is refused on items Rabt did not create; these fields are the names.
_NAME_FIELDS = frozenset({"label", "name"})
# Fields left as they are on items Rabt did not create, unless empty: a person chose
# them, and changing them moves or redescribes something Rabt does not own.
_KEPT_ON_FOREIGN = frozenset({"description", "groupName", "filterBranch"})


class HubSpotCrm:
    """Plans and applies a HubSpot desired state through one HTTP client."""

    crm = "hubspot"
    label = CRM_LABEL

    def __init__(self, settings: HubSpotSettings, options: CallOptions | None = None,
                 limiter: TokenBucket | None = None) -> None:
        options = options or CallOptions()
        rate = settings.rate_limit_per_10s
        bucket = limiter or TokenBucket.for_rolling_window(
            rate, RATE_WINDOW_SECONDS, burst=max(1, int(rate * RATE_BURST_SHARE)),
            sleep=options.sleep)
        token = settings.access_token
        self.http = CrmHttp(settings.base_url, lambda: {"Authorization": f"Bearer {token}"},
                            options, bucket)
        self.endpoint = settings.base_url
        self._lang = options.lang

    def close(self) -> None:
        """Close the HTTP client."""
        self.http.close()

    def desired_steps(self, steps: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        """Return every manual step of the desired state; each applies to any account."""
        return steps

    # Reading the live account.

    def account_id(self) -> str | None:
        """Return the portal id of the account the token belongs to, None when unreadable.

        Raises:
            CrmApiError: HTTP 401 (the token is rejected) or a server failure.
        """
        try:
            data = self.http.request("GET", ACCOUNT_PATH)
        except CrmApiError as error:
            if error.status is not None and 400 <= error.status < 500 and error.status != 401:
                return None
            raise
        value = data.get("portalId") if isinstance(data, dict) else None
        return str(value) if value not in (None, "") else None

    def _results(self, path: str) -> list[dict[str, Any]]:
        data = self.http.request("GET", path)
        results = data.get("results", []) if isinstance(data, dict) else []
        return [entry for entry in results if isinstance(entry, dict)]

    def _groups(self, obj: str) -> dict[str, dict[str, Any]]:
        return {entry["name"]: entry
                for entry in self._results(f"/crm/v3/properties/{obj}/groups")
                if not entry.get("archived")}

    def _properties(self, obj: str) -> dict[str, dict[str, Any]]:
        return {entry["name"]: entry for entry in self._results(f"/crm/v3/properties/{obj}")
                if not entry.get("archived")}

    def _list(self, list_id: str | None, name: str) -> dict[str, Any] | None:
        """Find a list by its recorded id, then by name; None when neither exists."""
        paths = []
        if list_id:
            paths.append(f"/crm/v3/lists/{quote(list_id, safe='')}")
        paths.append(f"/crm/v3/lists/object-type-id/{CONTACTS_OBJECT_TYPE_ID}/name/"
                     f"{quote(name, safe='')}")
        for path in paths:
            try:
                data = self.http.request("GET", path, params={"includeFilters": "true"})
            except CrmApiError as error:
                if error.status == 404:
                    continue
                raise
            if isinstance(data, dict) and isinstance(data.get("list"), dict):
                return dict(data["list"])
        return None

    def _list_by_name(self, name: str) -> dict[str, Any] | None:
        """Return a list named ``name`` in the shape of a create response, or None."""
        found = self._list(None, name)
        return {"list": found} if found is not None else None

    # Planning.

    def plan_items(self, desired: Mapping[str, Any], state: CrmState) -> list[PlanItem]:
        """Compare the desired state with the account and return one item per desired thing."""
        objects = sorted({entry["object"] for entry in desired["property_groups"]}
                         | {entry["object"] for entry in desired["properties"]})
        groups = {obj: self._groups(obj) for obj in objects}
        properties = {obj: self._properties(obj) for obj in objects}
        items = [_group_item(entry, groups[entry["object"]].get(entry["name"]), state)
                 for entry in desired["property_groups"]]
        items += [_property_item(entry, properties[entry["object"]].get(entry["name"]), state)
                  for entry in desired["properties"]]
        live_pipelines = self._results(f"/crm/v3/pipelines/{PIPELINE_OBJECT}")
        for entry in desired["pipelines"]:
            items += _pipeline_items(entry, live_pipelines, state)
        for entry in desired["lists"]:
            key = f"list:{entry['key']}"
            items.append(_list_item(entry, self._list(state.item_id(key), entry["name"]), state))
        items += [_event_item(entry) for entry in desired.get("event_definitions", [])]
        return items

    # Applying.

    def create(self, item: PlanItem, state: CrmState) -> None:
        """Create ``item`` and record the id HubSpot returns."""
        payload = item.payload
        obj = item.container
        if item.kind == "property_group":
            self.http.request("POST", f"/crm/v3/properties/{obj}/groups", body=payload,
                              recover=lambda: self._groups(obj).get(item.name))
            _record(state, item, item.name, owned=True)
        elif item.kind == "property":
            self.http.request("POST", f"/crm/v3/properties/{obj}", body=payload,
                              recover=lambda: self._properties(obj).get(item.name))
            _record(state, item, item.name, owned=True)
        elif item.kind == "pipeline":
            self._create_pipeline(item, state)
        elif item.kind == "stage":
            self._create_stage(item, state)
        elif item.kind == "list":
            data = self.http.request("POST", "/crm/v3/lists", body=payload,
                                     recover=lambda: self._list_by_name(item.name))
            _record(state, item, str(_dig(data, self._lang, "list", "listId")), owned=True)
        else:
            raise ValueError(f"cannot create a {item.kind} in HubSpot")

    def _create_pipeline(self, item: PlanItem, state: CrmState) -> None:
        body = {key: value for key, value in item.payload.items() if key != "stage_keys"}
        path = f"/crm/v3/pipelines/{PIPELINE_OBJECT}"
        data = self.http.request("POST", path, body=body, recover=lambda: _by_label(
            self._results(path), item.payload["label"]))
        pipeline_id = str(_dig(data, self._lang, "id"))
        _record(state, item, pipeline_id, owned=True, label=item.label.en)
        stage_keys: dict[str, str] = item.payload["stage_keys"]
        for stage in data.get("stages", []) if isinstance(data, dict) else []:
            stage_key = stage_keys.get(stage.get("label", ""))
            if stage_key is None:
                continue
            state.record(f"stage:{item.name}/{stage_key}", "stage", str(stage["id"]), owned=True,
                         parent=item.key, stage_key=stage_key, name=stage_key,
                         container=PIPELINE_OBJECT, pipeline_id=pipeline_id)

    def _create_stage(self, item: PlanItem, state: CrmState) -> None:
        if state.item_id(item.key):
            return  # created together with its pipeline earlier in this run
        pipeline_id = _parent_id(item, state)
        path = f"/crm/v3/pipelines/{PIPELINE_OBJECT}/{pipeline_id}/stages"
        body = {key: value for key, value in item.payload.items() if key != "pipeline_id"}
        data = self.http.request("POST", path, body=body, recover=lambda: _by_label(
            self._results(path), item.payload["label"]))
        _record(state, item, str(_dig(data, self._lang, "id")), owned=True, parent=item.parent,
                stage_key=item.name, pipeline_id=pipeline_id)

    def update(self, item: PlanItem, state: CrmState) -> None:
        """Send the item's changes and record its id."""
        body = item.payload
        base = f"/crm/v3/pipelines/{PIPELINE_OBJECT}"
        if item.kind == "property_group":
            self.http.request("PATCH", f"/crm/v3/properties/{item.container}/groups/"
                              f"{item.name}", body=body)
        elif item.kind == "property":
            self.http.request("PATCH", f"/crm/v3/properties/{item.container}/{item.name}",
                              body=body)
        elif item.kind == "pipeline":
            self.http.request("PATCH", f"{base}/{item.live_id}", body=body)
        elif item.kind == "stage":
            self.http.request("PATCH", f"{base}/{_parent_id(item, state)}/stages/{item.live_id}",
                              body=body)
        elif item.kind == "list":
            self._update_list(item)
        else:
            raise ValueError(f"cannot update a {item.kind} in HubSpot")
        _record(state, item, item.live_id or item.name, owned=False, parent=item.parent)

    def _update_list(self, item: PlanItem) -> None:
        path = f"/crm/v3/lists/{item.live_id}"
        if "name" in item.payload:
            self.http.request("PUT", f"{path}/update-list-name",
                              params={"listName": item.payload["name"]})
        if "filterBranch" in item.payload:
            self.http.request("PUT", f"{path}/update-list-filters",
                              body={"filterBranch": item.payload["filterBranch"]})

    def delete(self, item: PlanItem, state: CrmState) -> None:
        """Delete an item Rabt created and drop it from the state."""
        entry = state.items.get(item.key, {})
        item_id = entry.get("id")
        container = entry.get("container", item.container)
        paths = {
            "property_group": f"/crm/v3/properties/{container}/groups/{item.name}",
            "property": f"/crm/v3/properties/{container}/{item.name}",
            "pipeline": f"/crm/v3/pipelines/{PIPELINE_OBJECT}/{item_id}",
            "stage": f"/crm/v3/pipelines/{PIPELINE_OBJECT}/{entry.get('pipeline_id')}"
                     f"/stages/{item_id}",
            "list": f"/crm/v3/lists/{item_id}",
        }
        try:
            self.http.request("DELETE", paths[item.kind])
        except CrmApiError as error:
            if error.status != 404:
                raise  # a 404 means it is gone already, which is what prune wants
        state.forget(item.key)


def _record(state: CrmState, item: PlanItem, item_id: str, *, owned: bool,
            **extra: Any) -> None:
    extra = {key: value for key, value in extra.items() if value is not None}
    state.record(item.key, item.kind, item_id, owned=owned, name=item.name,
                 container=item.container, **extra)


def _by_label(entries: list[dict[str, Any]], label: str) -> dict[str, Any] | None:
    """Return the live pipeline or stage labelled ``label``, or None."""
    return next((entry for entry in entries
                 if entry.get("label") == label and not entry.get("archived")), None)


def _dig(data: Any, lang: Lang, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, dict) or key not in data:
            raise CrmApiError("POST", "", None, message("crm_http_response_lacks", lang,
                                                        keys=".".join(keys)), lang=lang)
        data = data[key]
    return data


def _parent_id(item: PlanItem, state: CrmState) -> str:
    parent = state.item_id(item.parent) if item.parent else None
    parent = parent or item.payload.get("pipeline_id")
    if not parent:
        raise ValueError(f"stage {item.key} has no pipeline id; apply its pipeline first")
    return str(parent)


def _text(entry: Mapping[str, Any], field: str = "label") -> Text:
    return Text(en=str(entry[field]), ar=str(entry.get(f"{field}_ar") or entry[field]))


def _split(item: PlanItem, changes: list[Change], payload: dict[str, Any]) -> PlanItem:
    """Sort ``changes`` into what apply sends and what becomes a manual step."""
    what = f"{item.container}.{item.name}" if item.container else item.name
    for change in changes:
        if change.field in _NEVER_UPDATED:
            item.manual.append(bilingual("crm_manual_fixed_field", what=what, crm=CRM_LABEL,
                                         field=change.field, old=show(change.old),
                                         new=show(change.new)))
        elif change.field in _NAME_FIELDS and not item.owned:
            item.manual.append(bilingual("crm_manual_rename", what=what, crm=CRM_LABEL,
                                         old=show(change.old), new=show(change.new)))
        elif change.field in _KEPT_ON_FOREIGN and not item.owned and change.old not in (None, ""):
            item.manual.append(bilingual("crm_manual_not_owned", what=what, crm=CRM_LABEL,
                                         field=change.field, old=show(change.old),
                                         new=show(change.new)))
        else:
            item.changes.append(change)
            item.payload[change.field] = payload.get(change.field, change.new)
    if item.changes:
        item.action = "update"
    elif item.manual:
        item.action = "manual"
    else:
        item.action = "unchanged"
    return item


def _group_item(entry: Mapping[str, Any], live: Mapping[str, Any] | None,
                state: CrmState) -> PlanItem:
    key = f"group:{entry['object']}/{entry['name']}"
    item = PlanItem("property_group", key, entry["name"], _text(entry), entry["object"],
                    "create", owned=state.owned(key))
    payload = {"name": entry["name"], "label": entry["label"]}
    if live is None:
        item.payload = payload
        return item
    item.live_id = entry["name"]
    return _split(item, field_changes(payload, live, ("label",)), payload)


def _property_payload(entry: Mapping[str, Any]) -> dict[str, Any]:
    payload = {name: entry[name] for name in ("name", *_PROPERTY_FIELDS)}
    if "options" in entry:
        payload["options"] = [dict(option) for option in entry["options"]]
    return payload


def _property_item(entry: Mapping[str, Any], live: Mapping[str, Any] | None,
                   state: CrmState) -> PlanItem:
    key = f"property:{entry['object']}/{entry['name']}"
    item = PlanItem("property", key, entry["name"], _text(entry), entry["object"], "create",
                    owned=state.owned(key))
    payload = _property_payload(entry)
    if live is None:
        item.payload = payload
        return item
    item.live_id = entry["name"]
    changes = field_changes(payload, live, _PROPERTY_FIELDS)
    live_options = live.get("options") or []
    option_change = _option_change(entry.get("options"), live_options, item.owned)
    if option_change is not None:
        changes.append(option_change)
        payload["options"] = option_change.new
    extra = _extra_options(entry.get("options"), live_options)
    if extra:
        item.manual.append(bilingual_list("crm_manual_extra_options", crm=CRM_LABEL,
                                          what=f"{item.container}.{item.name}",
                                          lists={"values": extra}))
    return _split(item, changes, payload)


def _option_change(desired: list[dict[str, Any]] | None, live: list[dict[str, Any]],
                   owned: bool) -> Change | None:
    """Compare option lists by value and label; the change never drops a live option.

    On a property Rabt created the desired options come first, in the desired order
    and with the desired labels. On any other property the live options keep their
    order and labels and the missing ones are added after them. Either way, options
    added by hand stay at the end, because Rabt deletes nothing it did not create.
    """
    if desired is None:
        return None
    wanted = {option["value"] for option in desired}
    extra = [dict(option) for option in live if option.get("value") not in wanted]
    if owned:
        merged = [dict(option) for option in desired]
        added = extra
    else:
        known = {option.get("value") for option in live}
        merged = [dict(option) for option in live]
        added = [dict(option) for option in desired if option["value"] not in known]
    for option in added:
        merged.append({**option, "displayOrder": len(merged)})
    have = [(option.get("value"), option.get("label")) for option in live]
    want = [(option.get("value"), option.get("label")) for option in merged]
    return None if have == want else Change("options", live, merged)


def _extra_options(desired: list[dict[str, Any]] | None,
                   live: list[dict[str, Any]]) -> list[str]:
    """Return the values of live options that the desired state does not list."""
    if desired is None:
        return []
    wanted = {option["value"] for option in desired}
    return [str(option.get("value")) for option in live if option.get("value") not in wanted]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "pipeline"


def _pipeline_items(entry: Mapping[str, Any], live_pipelines: list[dict[str, Any]],
                    state: CrmState) -> list[PlanItem]:
    name = _slug(entry["label"])
    key = f"pipeline:{PIPELINE_OBJECT}/{name}"
    item = PlanItem("pipeline", key, name, _text(entry), PIPELINE_OBJECT, "create",
                    owned=state.owned(key))
    wanted_id = state.item_id(key) or entry.get("id")
    live = next((pipeline for pipeline in live_pipelines
                 if wanted_id and str(pipeline.get("id")) == wanted_id), None)
    live = live or next((pipeline for pipeline in live_pipelines
                         if pipeline.get("label") == entry["label"]), None)
    stages = entry["stages"]
    stage_payloads = [{"label": stage["label"], "displayOrder": stage["displayOrder"],
                       "metadata": dict(stage["metadata"])} for stage in stages]
    if live is None:
        item.payload = {"label": entry["label"], "displayOrder": entry["displayOrder"],
                        "stages": stage_payloads,
                        "stage_keys": {stage["label"]: stage["key"] for stage in stages}}
        items = [item]
        for stage, payload in zip(stages, stage_payloads, strict=True):
            stage_item = _stage_item(item, stage, None, state)
            stage_item.payload = payload
            items.append(stage_item)
        return items
    item.live_id = str(live["id"])
    payload = {"label": entry["label"]}
    items = [_split(item, field_changes(payload, live, ("label",)), payload)]
    live_stages = [stage for stage in live.get("stages", []) if not stage.get("archived")]
    for stage, stage_payload in zip(stages, stage_payloads, strict=True):
        stage_item = _stage_item(item, stage, live_stages, state)
        if stage_item.action == "create":
            stage_item.payload = {**stage_payload, "pipeline_id": item.live_id}
        items.append(stage_item)
    return items


def _stage_item(pipeline: PlanItem, stage: Mapping[str, Any],
                live_stages: list[dict[str, Any]] | None, state: CrmState) -> PlanItem:
    key = f"stage:{pipeline.name}/{stage['key']}"
    item = PlanItem("stage", key, stage["key"], _text(stage), PIPELINE_OBJECT, "create",
                    owned=state.owned(key), parent=pipeline.key)
    if live_stages is None:
        return item
    wanted_id = state.item_id(key) or stage.get("id")
    live = next((entry for entry in live_stages
                 if wanted_id and str(entry.get("id")) == wanted_id), None)
    live = live or next((entry for entry in live_stages if entry.get("label") == stage["label"]),
                        None)
    if live is None:
        return item
    item.live_id = str(live["id"])
    changes = field_changes(stage, live, ("label", "displayOrder"))
    live_metadata = live.get("metadata") or {}
    for name, value in stage["metadata"].items():
        have = live_metadata.get(name)
        equal = same_number(value, have) if name == "probability" else (
            str(value).lower() == str(have).lower())
        if not equal:
            changes.append(Change(f"metadata.{name}", have, value))
    if any(change.field.startswith("metadata.") for change in changes):
        payload = {"metadata": dict(stage["metadata"])}
    else:
        payload = {}
    item = _split(item, changes, payload)
    for change in item.changes:
        if change.field.startswith("metadata."):
            item.payload.pop(change.field, None)
            item.payload["metadata"] = dict(stage["metadata"])
    return item


def _list_item(entry: Mapping[str, Any], live: Mapping[str, Any] | None,
               state: CrmState) -> PlanItem:
    key = f"list:{entry['key']}"
    item = PlanItem("list", key, entry["name"], Text(entry["name"], entry["name_ar"]),
                    "contacts", "create", owned=state.owned(key))
    payload = {name: entry[name]
               for name in ("name", "objectTypeId", "processingType", "filterBranch")}
    if live is None:
        item.payload = payload
        return item
    item.live_id = str(live.get("listId"))
    changes = field_changes(payload, live, ("name", "processingType"))
    if not contains(entry["filterBranch"], live.get("filterBranch")):
        changes.append(Change("filterBranch", _filter_summary(live.get("filterBranch")),
                              _filter_summary(entry["filterBranch"])))
    return _split(item, changes, payload)


def _filter_summary(branch: Any) -> list[str]:
    """Describe a filter branch as one readable line per filter."""
    if not isinstance(branch, dict):
        return []
    lines = []
    for sub in branch.get("filterBranches", []) or []:
        lines += _filter_summary(sub)
    for entry in branch.get("filters", []) or []:
        operation = entry.get("operation", {}) if isinstance(entry, dict) else {}
        value = operation.get("value", operation.get("numberOfDays", ""))
        lines.append(f"{entry.get('property')} {operation.get('operator')} {value}".strip())
    return lines


def _event_item(entry: Mapping[str, Any]) -> PlanItem:
    item = PlanItem("event_definition", f"event:{entry['name']}", entry["name"], _text(entry),
                    "contacts", "manual", drift=False)
    item.manual.append(bilingual("crm_manual_hubspot_event", name=entry["name"],
                                 count=len(entry["propertyDefinitions"])))
    return item


def forbidden_scopes(error: CrmApiError) -> tuple[bool, str]:
    """Return whether a 403 is HubSpot's MISSING_SCOPES, and the scopes to name in the fix.

    For MISSING_SCOPES these are the scopes HubSpot lists in the body. Other 403s,
    and a body that lists none, get the scopes that calls to the path need.
    """
    if error.code == "MISSING_SCOPES":
        return True, ", ".join(error.required_scopes) or scopes_for_path(error.path)
    return False, scopes_for_path(error.path)
