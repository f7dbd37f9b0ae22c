"""Cross-reference checks of a desired state that its JSON Schema cannot express.

The schema checks each entry on its own; these checks compare entries with each
other: a property's group exists, names are unique per object, stage keys are
unique per pipeline, and list filters and Zoho views name fields that exist.
``rabt crm`` runs them before it calls the CRM and ``rabt validate`` runs them on
every project, so a broken file stops before apply has made half its changes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from generator.errors import Problem
from generator.i18n import join_list, message
from generator.model import Lang

# HubSpot's own property groups, which a desired property may use without listing them.
# NOTE: only the groups HubSpot documents for contacts and deals; other objects' default
# group names are not confirmed, so properties there must use a group the file lists.
HUBSPOT_DEFAULT_GROUPS = {"contacts": {"contactinformation"}, "deals": {"dealinformation"}}
# HubSpot's default contact properties that a list filter may use besides the desired ones.
# NOTE: a subset of HubSpot's default contact properties, the ones segments commonly use.
HUBSPOT_DEFAULT_CONTACT_PROPERTIES = frozenset({
    "email", "firstname", "lastname", "phone", "mobilephone", "city", "country", "company",
    "createdate", "lastmodifieddate", "lifecyclestage", "hs_lead_status",
    "hs_email_optout", "hubspot_owner_id", "hs_language",
})
# Object type id of HubSpot contacts, the only object whose lists Rabt creates.
CONTACTS_OBJECT_TYPE_ID = "0-1"


def reference_problems(data: Mapping[str, Any], lang: Lang = "en") -> list[Problem]:
    """Return every cross-reference problem of a desired state that passed its schema.

    Locations are slash paths into the file, such as ``properties/3/groupName``.
    """
    if data.get("crm") == "hubspot":
        problems = list(_hubspot_problems(data, lang))
    elif data.get("crm") == "zoho":
        problems = list(_zoho_problems(data, lang))
    else:
        problems = []
    return problems


def _duplicates(where: str, names: Iterable[tuple[int, Any]], kind: str,
                lang: Lang) -> Iterator[Problem]:
    """Yield a problem for each entry that repeats the name of an earlier one."""
    seen: Counter[Any] = Counter()
    what = message(f"crm_ref_kind_{kind}", lang)
    for index, name in names:
        seen[name] += 1
        if seen[name] > 1:
            yield Problem(f"{where}/{index}", message("crm_ref_duplicate", lang, what=what,
                                                      value=_show(name)),
                          message("crm_ref_duplicate_fix", lang))


def _show(name: Any) -> str:
    if isinstance(name, tuple):
        return "/".join(str(part) for part in name)
    return str(name)


def _hubspot_problems(data: Mapping[str, Any], lang: Lang) -> Iterator[Problem]:
    groups = data.get("property_groups", [])
    properties = data.get("properties", [])
    yield from _duplicates("property_groups", ((index, (entry["object"], entry["name"]))
                                               for index, entry in enumerate(groups)),
                           "property_group", lang)
    yield from _duplicates("properties", ((index, (entry["object"], entry["name"]))
                                          for index, entry in enumerate(properties)),
                           "property", lang)
    known_groups = {(entry["object"], entry["name"]) for entry in groups}
    for index, entry in enumerate(properties):
        obj, group = entry["object"], entry["groupName"]
        if (obj, group) in known_groups or group in HUBSPOT_DEFAULT_GROUPS.get(obj, set()):
            continue
        listed = sorted(name for owner, name in known_groups if owner == obj)
        yield Problem(f"properties/{index}/groupName",
                      message("crm_ref_unknown_group", lang, value=group, object=obj),
                      message("crm_ref_unknown_group_fix", lang, object=obj,
                              known=join_list(listed, lang) or message("crm_nothing", lang)))
    for index, pipeline in enumerate(data.get("pipelines", [])):
        yield from _pipeline_problems(f"pipelines/{index}", pipeline, lang)
    yield from _duplicates("pipelines", enumerate(entry["label"]
                                                  for entry in data.get("pipelines", [])),
                           "pipeline_label", lang)
    yield from _list_problems(data, lang)


def _pipeline_problems(where: str, pipeline: Mapping[str, Any], lang: Lang) -> Iterator[Problem]:
    stages = pipeline.get("stages", [])
    yield from _duplicates(f"{where}/stages", enumerate(stage["key"] for stage in stages),
                           "stage_key", lang)
    yield from _duplicates(f"{where}/stages", enumerate(stage["label"] for stage in stages),
                           "stage_label", lang)


def _list_problems(data: Mapping[str, Any], lang: Lang) -> Iterator[Problem]:
    lists = data.get("lists", [])
    yield from _duplicates("lists", enumerate(entry["key"] for entry in lists), "list_key", lang)
    yield from _duplicates("lists", enumerate(entry["name"] for entry in lists), "list_name",
                           lang)
    desired = {entry["name"] for entry in data.get("properties", [])
               if entry["object"] == "contacts"}
    known = desired | HUBSPOT_DEFAULT_CONTACT_PROPERTIES
    for index, entry in enumerate(lists):
        if entry.get("objectTypeId") != CONTACTS_OBJECT_TYPE_ID:
            continue
        for name in sorted(set(_filter_properties(entry.get("filterBranch")))):
            if name not in known:
                yield Problem(f"lists/{index}/filterBranch",
                              message("crm_ref_unknown_filter", lang, value=name,
                                      list=entry["name"]),
                              message("crm_ref_unknown_filter_fix", lang))


def _filter_properties(branch: Any) -> Iterator[str]:
    """Yield the property name of every filter in a HubSpot filter branch tree."""
    if not isinstance(branch, Mapping):
        return
    for entry in branch.get("filters", []) or []:
        if isinstance(entry, Mapping) and isinstance(entry.get("property"), str):
            yield entry["property"]
    for sub in branch.get("filterBranches", []) or []:
        yield from _filter_properties(sub)


def _zoho_problems(data: Mapping[str, Any], lang: Lang) -> Iterator[Problem]:
    fields: set[tuple[str, str]] = set()
    for index, module in enumerate(data.get("modules", [])):
        names = [field["api_name"] for field in module.get("fields", [])]
        yield from _duplicates(f"modules/{index}/fields", enumerate(names), "field", lang)
        fields |= {(module["module"], name) for name in names}
    yield from _duplicates("modules", enumerate(module["module"]
                                                for module in data.get("modules", [])),
                           "module", lang)
    picklists = data.get("picklists", [])
    yield from _duplicates("picklists", ((index, (entry["module"], entry["field"]))
                                         for index, entry in enumerate(picklists)),
                           "picklist", lang)
    for index, entry in enumerate(picklists):
        values = [value["actual_value"] for value in entry.get("values", [])]
        yield from _duplicates(f"picklists/{index}/values", enumerate(values),
                               "picklist_value", lang)
    stages = data.get("pipeline", {}).get("stages", [])
    yield from _duplicates("pipeline/stages", enumerate(stages), "stage", lang)
    # Standard picklists (Lead_Source, Stage) exist in every account, so a view may use them.
    known = fields | {(entry["module"], entry["field"]) for entry in picklists}
    segments = data.get("segments", [])
    yield from _duplicates("segments", enumerate(entry["key"] for entry in segments),
                           "view_key", lang)
    yield from _duplicates("segments", enumerate(entry["view_name"] for entry in segments),
                           "view_name", lang)
    for index, entry in enumerate(segments):
        for number, criterion in enumerate(entry.get("criteria", [])):
            if (entry["module"], criterion["field"]) not in known:
                yield Problem(f"segments/{index}/criteria/{number}/field",
                              message("crm_ref_unknown_field", lang, value=criterion["field"],
                                      module=entry["module"]),
                              message("crm_ref_unknown_field_fix", lang))
