"""Step kinds, their writers and the Zoho sales-order bodies, shared by both build sheets."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from generator.ipaas.flows import Step, walk_steps

ActionWriter = Callable[[Step], list[dict[str, str]]]
# Step kinds that both sheets build as one HTTP request step.
REQUEST_KINDS = ("upsert", "associate", "discount", "send", "alert")


def writers_by_kind(request: ActionWriter, **writers: ActionWriter) -> dict[str, ActionWriter]:
    """Return the writer of each step kind: ``request`` for the request kinds, else ``writers``."""
    return {**writers, **dict.fromkeys(REQUEST_KINDS, request)}


def database_step(step: Step, crm: str) -> bool:
    """Return whether ``step`` runs SQL on the client's own database instead of an HTTP request.

    A wait's SQL is the due search of Make's runner, which the Zapier and Tray
    sheets replace with a delay, so a wait is never a database step.
    """
    return (crm == "custom" and step.kind != "wait"
            and any(call.method == "SQL" for call in step.calls))


def zoho_line_step(step: Step, crm: str) -> bool:
    """Return whether ``step`` maps, writes or links line items that Zoho keeps in a sales order.

    Zoho has no line-item module: an order's lines are rows of the Product_Details
    subform of one Sales_Orders record, so the sheets write them in one request.
    """
    if crm != "zoho":
        return False
    if step.kind == "map":
        return step.key == "map_line_items"
    return step.params.get("entity") == "line_item" or step.params.get("from") == "line_item"


def products_body(key: str, lines: str) -> tuple[str, str]:
    """Return the Zoho products upsert body that a code step builds, in English and Arabic.

    ``key`` is the products' unique field that the upsert checks for duplicates, and
    ``lines`` the payload path of the order's line items.
    """
    en = ("the JSON text of the Zoho products upsert body "
          f'`{{"data": [...], "duplicate_check_fields": ["{key}"], "trigger": []}}`, '
          f"with one record per distinct product of `{lines}`: `{key}` (the "
          "store's variant id as text), `Product_Code` (the SKU, else the variant id), "
          "`Product_Name` (the line's title) and `Unit_Price` (the price as a number).")
    ar = ("نص JSON لجسم طلب إنشاء المنتجات أو تحديثها في Zoho "
          f'`{{"data": [...], "duplicate_check_fields": ["{key}"], "trigger": []}}`، '
          f"وفيه سجل لكل منتج مختلف في `{lines}`: `{key}` (معرّف المتغيّر في "
          "المتجر نصًّا)، و`Product_Code` (رمز SKU، أو معرّف المتغيّر إن غاب)، "
          "و`Product_Name` (عنوان البند)، و`Unit_Price` (السعر رقمًا).")
    return en, ar


def sales_order_body() -> tuple[str, str]:
    """Return the Zoho sales-order body that a code step builds, in English and Arabic."""
    en = ('the JSON text of `{"data": [{"Subject": ..., "Deal_Name": {"id": ...}, '
          '"Product_Details": [...]}], "trigger": ["workflow"]}` with one row per line '
          'of the order, `{"product": {"id": ...}, "quantity": ..., "list_price": ...}`, '
          "its product id taken from the answer and both numbers as JSON numbers.")
    ar = ('نص JSON للجسم `{"data": [{"Subject": ..., "Deal_Name": {"id": ...}, '
          '"Product_Details": [...]}], "trigger": ["workflow"]}`، وفيه صف لكل بند من '
          'بنود الطلب `{"product": {"id": ...}, "quantity": ..., "list_price": ...}`، '
          "يُؤخذ معرّف المنتج فيه من الرد، وتُكتب الكمية والسعر أرقامًا في JSON.")
    return en, ar


def value_text(value: Any) -> str:
    """Return the value a store step writes as text, a mapped value as its source names."""
    if isinstance(value, dict):
        return ", ".join(str(item) for item in value.values())
    return str(value)


def _starts_entity(step: Step) -> bool:
    return step.kind == "map" or (step.kind == "store" and not step.params.get("delete"))


def _guarded_end(steps: tuple[Step, ...], index: int, crm: str) -> int:
    """Return the index of the last step that the check at ``steps[index]`` guards.

    A branch guards only itself. A consent gate guards the steps up to its send, and
    the Zoho sales-order check the line-item steps. A filter on the contact's email or
    phone guards that contact's steps: the next entity's mapping after a CRM write
    starts a new unit, as in the n8n workflows. Any other check guards every later step.
    """
    step = steps[index]
    last = len(steps) - 1
    if step.kind == "branch":
        # The steps after a branch run only on the routes that go on, so they belong
        # inside those routes.
        return index
    if step.kind == "consent_gate" and step.params.get("until_step"):
        until = step.params["until_step"]
        return next((number for number in range(index + 1, len(steps))
                     if steps[number].key == until), last)
    if zoho_line_step(step, crm):
        end = index
        while end < last and zoho_line_step(steps[end + 1], crm):
            end += 1
        return end
    if step.kind == "filter" and step.params.get("any_set"):
        synced = False
        for number in range(index + 1, len(steps)):
            if synced and _starts_entity(steps[number]):
                return number - 1
            synced = synced or steps[number].kind in ("upsert", "associate")
    return last


def step_after_guard(steps: tuple[Step, ...], index: int, crm: str) -> Step | None:
    """Return the first step that the check at ``steps[index]`` does not guard, or None.

    With such a step, a check that ends the run on failure (a Zapier Filter, a Tray
    false path that ends) would also skip steps that must still run.
    """
    end = _guarded_end(steps, index, crm)
    return steps[end + 1] if end + 1 < len(steps) else None


def _repeats_code(step: Step) -> bool:
    return step.kind == "send" and bool(step.params.get("discount"))


def discount_before_gates(steps: tuple[Step, ...]) -> tuple[Step, ...]:
    """Return ``steps`` with each gated discount step moved before its consent gate.

    Only a discount that a later send of the same run repeats moves (the abandoned-cart
    reminder), as in the n8n workflows: inside the gate, a contact the gate drops
    would reach the later send without a code.
    """
    result = list(steps)
    for index, step in enumerate(steps):
        if step.kind != "consent_gate" or not step.params.get("until_step"):
            continue
        end = _guarded_end(steps, index, "")
        if not any(_repeats_code(later) for later in walk_steps(steps[end + 1:])):
            continue
        discounts = [inner for inner in steps[index + 1:end + 1] if inner.kind == "discount"]
        for discount in discounts:
            result.remove(discount)
            result.insert(result.index(step), discount)
    return tuple(result)


def code_text(step: Step, code_in_run: bool, fields: tuple[str | None, str | None],
              crm: str) -> tuple[str, str] | None:
    """Return where a WhatsApp or SMS send with a discount takes its code, in both languages.

    ``code_in_run`` is true when a discount step earlier on the same path created the
    code. Otherwise (a later step of a daily playbook run) the send reads the code that
    the playbook's first discount step wrote to the contact, ``fields`` being the
    contact's code and expiry fields.
    """
    if not _repeats_code(step) or step.params.get("via") not in ("whatsapp", "sms"):
        return None
    place_en = ("the copy-code button's `coupon_code` parameter"
                if step.params["via"] == "whatsapp" else "the message")
    place_ar = ("المعامل `coupon_code` لزر نسخ الرمز" if step.params["via"] == "whatsapp"
                else "نص الرسالة")
    if code_in_run:
        return (f"Put the code of the discount step above in {place_en}.",
                f"ضع رمز خطوة الخصم أعلاه في {place_ar}.")
    code, expiry = fields
    en = (f"This run creates no code: put the contact's `{code}` from the search result, "
          f"which the playbook's first discount step wrote, in {place_en}, and leave it out "
          f"when `{expiry}` has passed.")
    ar = (f"لا ينشئ هذا التشغيل رمزًا: ضع قيمة `{code}` لجهة الاتصال من نتيجة البحث، وهي "
          f"التي كتبتها أول خطوة خصم في الخطة، في {place_ar}، واحذفها إذا مضى وقت `{expiry}`.")
    if crm == "hubspot":
        # HubSpot's search returns only the properties its body lists.
        en += " List both in the search body's `properties`."
        ar += " واذكر الحقلين كليهما في `properties` ضمن جسم طلب البحث."
    return en, ar


def consent_read(step: Step, crm: str) -> dict[str, Any]:
    """Return the read of a contact's current consent in the CRM, just before a send.

    The store's webhook body dates from the trigger, and a contact found by a CRM
    search carries no store consent field, so every send first reads the CRM, as the
    n8n workflows do. The result holds the request in English and Arabic, the field
    of the response to test and the values that mean consent is granted. The HubSpot
    subscriber is the contact's email for email and its E.164 phone for SMS and
    WhatsApp; a Zoho or database contact is found by its store customer id or email.
    """
    gate = step.gate
    assert gate is not None
    channel = gate.channel
    if crm == "hubspot":
        subscriber = "email" if channel == "email" else "phone in E.164"
        subscriber_ar = "البريد الإلكتروني" if channel == "email" else "رقم الجوال بصيغة E.164"
        request = ("GET https://api.hubapi.com/communication-preferences/v4/statuses/"
                   f"{{subscriber}}?channel={channel.upper()}")
        return {"request": request, "field": f"results[].status (channel {channel.upper()})",
                "granted": ["SUBSCRIBED"],
                "en": f"`{request}`, where the subscriber is the contact's {subscriber}",
                "ar": f"`{request}`، والمشترك هو {subscriber_ar} لجهة الاتصال"}
    if crm == "zoho":
        field = next((name for name in gate.crm_status.split() if "_" in name), "")
        request = "GET {api_domain}/crm/v8/Contacts/search?criteria=(Email:equals:{email})"
        granted = ["false"] if field.endswith("Opt_Out") else ["true"]
        return {"request": request, "field": f"data[0].{field}", "granted": granted,
                "en": f"`{request}`", "ar": f"`{request}`"}
    # The n8n workflows compare the database's state with the same values.
    request = f"the latest consents row of the contact for channel '{channel}'"
    return {"request": request, "field": "state",
            "granted": [value.lower() for value in gate.granted_values],
            "en": f"the latest `consents` row of the contact (found by its store customer id "
                  f"or email) for channel `{channel}`",
            "ar": "أحدث صف في `consents` لجهة الاتصال (بمعرّف العميل في المتجر أو البريد "
                  f"الإلكتروني) للقناة `{channel}`"}
