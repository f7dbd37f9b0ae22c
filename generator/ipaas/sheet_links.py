"""Zoho links in the Zapier and Tray build sheets.

Zoho links records through a lookup field, ``{"id": "<Zoho id>"}``, in the record
itself. When the flow wrote the linked record earlier (an order's contact), the
sheet sets that field in the record's upsert body and has no link step. Otherwise
(a ticket's contact and order) the link step finds the linked record by the keys the
payload carries and then updates the lookup field of the record just written.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from generator.ipaas.crm_calls import ZOHO_BASE_URL, CrmCall
from generator.ipaas.flows import Step
from generator.ipaas.sheet_steps import zoho_line_step

# The transform of the field whose value finds a contact, with the contact's
# field that Zoho searches.
CONTACT_KEY_TRANSFORMS = ("email_lower", "phone_e164_sa")
# The record's field that contains the store's id of the order it is about.
ORDER_REFERENCE_FIELD = "order_id"


def is_field_link(step: Step, crm: str) -> bool:
    """Return whether ``step`` links through a Zoho lookup field and sends nothing itself."""
    return (crm == "zoho" and step.kind == "associate" and bool(step.calls)
            and all(call.method == "FIELD" for call in step.calls)
            and not zoho_line_step(step, crm))


def _upserted(steps: tuple[Step, ...], before: int) -> dict[str, Step]:
    return {str(step.params.get("entity")): step for step in steps[:before]
            if step.kind == "upsert" and step.params.get("entity")}


def body_links(steps: tuple[Step, ...], index: int, crm: str) -> tuple[str, str] | None:
    """Return the lookup fields that the upsert ``steps[index]`` sets, in both languages.

    Only links to a record that an earlier step of the same path wrote are set here,
    because its upsert response carries the Zoho id.
    """
    upsert = steps[index]
    entity = upsert.params.get("entity")
    if upsert.kind != "upsert" or not entity:
        return None
    written = _upserted(steps, index)
    parts_en, parts_ar = [], []
    for step in steps[index + 1:]:
        target = str(step.params.get("to"))
        if not is_field_link(step, crm) or step.params.get("from") != entity \
                or target not in written:
            continue
        field = step.calls[0].endpoint
        source = written[target].title
        parts_en.append(f"`{field}` = `{{\"id\": \"…\"}}` with the id from "
                        f"`data[0].details.id` of the step «{source.en}»")
        parts_ar.append(f"`{field}` = `{{\"id\": \"…\"}}` بالمعرّف من "
                        f"`data[0].details.id` في استجابة الخطوة «{source.ar}»")
    if not parts_en:
        return None
    return ("In the body's record, also set the lookup " + "; ".join(parts_en)
            + ". This links the records, so the flow has no separate link step.",
            "واضبط كذلك في سجل جسم الطلب حقل الربط (lookup) " + "؛ و".join(parts_ar)
            + ". وبهذا تُربط السجلات، فلا يحتاج التدفق إلى خطوة ربط مستقلة.")


def linked_in_body(steps: tuple[Step, ...], index: int, crm: str) -> bool:
    """Return whether the link ``steps[index]`` is set in an earlier upsert's body."""
    step = steps[index]
    return is_field_link(step, crm) and str(step.params.get("to")) in _upserted(steps, index)


def _search_key(mapping: Mapping[str, Any], entity: str,
                target: str) -> tuple[str, str] | None:
    """Return the Zoho field that finds a ``target`` record and the field with its value."""
    entities = mapping["entities"]
    own = {str(item.get("transform")): str(item["name"])
           for item in entities[entity].get("fields", [])}
    if target == "contact":
        for transform in CONTACT_KEY_TRANSFORMS:
            item = next((item for item in entities["contact"].get("fields", [])
                         if item.get("transform") == transform), None)
            if item is not None and transform in own:
                return str(item["target"]), own[transform]
        return None
    names = {str(item["name"]) for item in entities[entity].get("fields", [])}
    unique = next((item for item in entities.get(target, {}).get("fields", [])
                   if item.get("unique")), None)
    if unique is None or ORDER_REFERENCE_FIELD not in names:
        return None
    return str(unique["target"]), ORDER_REFERENCE_FIELD


def link_requests(step: Step, mapping: Mapping[str, Any]) -> tuple[list[CrmCall], str, str]:
    """Return the search and update requests of a Zoho link step, and their text in both languages.

    The update puts the found id into the lookup field of the record that the flow's
    upsert just wrote. Returns no requests when the record carries no key to search by.
    """
    entity = str(step.params.get("from"))
    target = str(step.params.get("to"))
    field = step.calls[0].endpoint
    module = str(mapping["entities"][entity]["object"])
    key = _search_key(mapping, entity, target)
    if key is None:
        return ([], f"The record carries no key to find the {target} by, so leave `{field}` "
                    "empty.",
                f"لا يحمل السجل مفتاحًا يُعثر به على السجل المرتبط، فاترك `{field}` فارغًا.")
    search_field, value = key
    target_module = str(mapping["entities"][target]["object"])
    search = CrmCall(system="zoho", action=f"search {target_module}", method="GET",
                     base_url=ZOHO_BASE_URL,
                     endpoint=f"/{target_module}/search?criteria=({search_field}:equals:<{value}>)")
    update = CrmCall(system="zoho", action=f"update {module}", method="PUT",
                     base_url=ZOHO_BASE_URL, endpoint=f"/{module}/<record id>",
                     body={"data": [{field: {"id": "<found id>"}}]})
    body = json.dumps(update.body, ensure_ascii=False)
    en = (f"Two requests, each with the header `Authorization: Zoho-oauthtoken <access token>`: "
          f"first the search above, with `<{value}>` from the mapped `{value}`, skipping the "
          f"update when Zoho answers 204 (no match); then the update, with `<record id>` from "
          f"`data[0].details.id` of the upsert above, `Content-Type: application/json` and "
          f"the body `{body}`, where `<found id>` is `data[0].id` of the search. The update "
          f"URL and body follow Zoho's update-records API and were not checked against a v8 "
          f"response.")
    ar = (f"طلبان، ولكل منهما الترويسة `Authorization: Zoho-oauthtoken <access token>`: "
          f"أولهما طلب البحث أعلاه، وتؤخذ فيه `<{value}>` من الحقل `{value}` بعد الربط، ويُتجاوز "
          f"التحديث إذا ردّ Zoho بالرمز 204 (لا نتيجة)؛ وثانيهما طلب التحديث، وتؤخذ فيه "
          f"`<record id>` من `data[0].details.id` في استجابة خطوة upsert أعلاه، مع "
          f"`Content-Type: application/json` والجسم `{body}`، حيث `<found id>` هو "
          f"`data[0].id` من نتيجة البحث. ويتبع عنوان التحديث وجسمه واجهة تحديث السجلات في "
          f"Zoho، ولم يُتحقق منهما على استجابة فعلية من الإصدار v8.")
    return [search, update], en, ar


def needs_search(steps: tuple[Step, ...], index: int, crm: str) -> bool:
    """Return whether the HubSpot link ``steps[index]`` names a record the path did not write."""
    step = steps[index]
    return (crm == "hubspot" and step.kind == "associate"
            and str(step.params.get("to")) not in _upserted(steps, index))


def hubspot_search(step: Step, mapping: Mapping[str, Any]) -> tuple[list[CrmCall], str, str]:
    """Return the search that finds the HubSpot id of the record a link step names.

    The association request takes both records' ids, and the flow wrote only the
    first, so the other one is found by the keys the payload carries.
    """
    entity = str(step.params.get("from"))
    target = str(step.params.get("to"))
    key = _search_key(mapping, entity, target)
    if key is None:
        return ([], "The record carries no key to find the linked record by, so skip this "
                    "step.",
                "لا يحمل السجل مفتاحًا يُعثر به على السجل المرتبط، فتجاوز هذه الخطوة.")
    prop, value = key
    obj = str(mapping["entities"][target]["object"])
    body = {"filterGroups": [{"filters": [
        {"propertyName": prop, "operator": "EQ", "value": f"<{value}>"}]}], "limit": 1}
    search = CrmCall(system="hubspot", action=f"search {obj}", method="POST",
                     base_url="https://api.hubapi.com", endpoint=f"/crm/v3/objects/{obj}/search",
                     body=body)
    text = json.dumps(body, ensure_ascii=False)
    en = (f"First the search above, with the body `{text}` and `<{value}>` from the mapped "
          f"`{value}`; skip the link when `results` is empty. Then the association request, "
          f"with `to.id` = `results[0].id` of the search and `from.id` = `results[0].id` "
          f"of the upsert above.")
    ar = (f"أولًا طلب البحث أعلاه، بالجسم `{text}`، وتؤخذ فيه `<{value}>` من الحقل `{value}` "
          f"بعد الربط، وتجاوز الربط إذا كانت `results` فارغة. ثم طلب الربط، وفيه `to.id` هو "
          f"`results[0].id` من نتيجة البحث، و`from.id` هو `results[0].id` من استجابة upsert "
          f"أعلاه.")
    return [search], en, ar
