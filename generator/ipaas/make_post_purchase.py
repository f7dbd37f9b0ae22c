"""The Make post-purchase scenarios: the series counts from each order's fulfilment.

The webhook scenario records every order that starts the series in the data store
``playbook_orders``: the key is the store's order id, with the fulfilment date
(Asia/Riyadh) and the CRM id of the order's contact. The daily runner searches that
data store for the orders fulfilled the due number of days ago, reads each order's
contact from the CRM for its consent fields, and sends the step. So the days count
from the fulfilment, as in the n8n workflow and the spec, and not from the contact's
latest order.
"""

from __future__ import annotations

from typing import Any

from generator.ipaas import crm_calls
from generator.ipaas.crm_calls import CrmCall
from generator.ipaas.flows import TIMEZONE, Step
from generator.ipaas.make_builder import Builder, source_ref
from generator.ipaas.make_http import http_module
from generator.ipaas.post_purchase import STARTED_STORE

FLOW_KEY = "post-purchase"
# The maximum number of orders one runner route reads from the data store per run.
DUE_ORDERS_LIMIT = 500
DATE_FORMAT = "YYYY-MM-DD"


def is_started_step(step: Step) -> bool:
    """Return whether ``step`` checks or records the orders that started the series."""
    return step.params.get("store") == STARTED_STORE


def started_modules(builder: Builder, step: Step, y: int) -> list[dict[str, Any]]:
    """Return the check that the order has not started the series, or the record that it has.

    The record is written after the contact upsert, so it carries the contact's CRM id.
    """
    key = "{{" + f"{builder.trigger_id}.{step.params['key']}" + "}}"
    store = f"(data store {STARTED_STORE})"
    if step.params.get("absent"):
        exists = builder.module("datastore:ExistRecord", {"key": key},
                                f"Has the order started the series? {store}", y)
        builder.pending_filter = {"name": "The order has not started the series", "conditions": [
            [{"a": "{{" + f"{exists['id']}.exist" + "}}", "o": "boolean:equal",
              "b": "false"}]]}
        return [exists]
    fulfilled = source_ref(builder, str(step.params["fulfilled_at"][0]))
    for fallback in step.params["fulfilled_at"][1:]:
        fulfilled = f"ifempty({fulfilled}; {source_ref(builder, str(fallback))})"
    data = {"fulfilledOn": "{{" + f'formatDate({fulfilled}; "{DATE_FORMAT}"; "{TIMEZONE}")'
            + "}}",
            "contactId": "{{" + builder.values.get("contact id", "emptystring") + "}}"}
    return [builder.module("datastore:AddRecord", {"key": key, "overwrite": False, "data": data},
                           f"Remember the order's fulfilment and contact {store}", y)]


def _contact_read(builder: Builder, contact_id: str) -> CrmCall:
    """Return the CRM call that reads one contact by id.

    HubSpot's search by ``hs_object_id`` and Zoho's record read both return a list
    (``results`` or ``data``), which the runner's iterator reads like a search result.
    """
    contact = builder.mapping["entities"]["contact"]
    obj = str(contact["object"])
    if builder.crm == "zoho":
        return CrmCall(system="zoho", action=f"read {obj}", method="GET",
                       base_url=crm_calls.ZOHO_BASE_URL, endpoint=f"/{obj}/{contact_id}")
    properties = [str(item["target"]) for item in contact["fields"]]
    properties += [str(item["target"]) for item in contact["rollups"]]
    call = crm_calls.search_call("hubspot", obj, [
        {"field": "hs_object_id", "op": "eq", "value": contact_id}],
        [name for name in dict.fromkeys(properties) if "." not in name])
    return call


def due_order_modules(builder: Builder, wait: Step, y: int) -> list[dict[str, Any]]:
    """Return the modules that find the orders fulfilled ``due_days`` ago and read each contact.

    The search module gives one bundle per order record; its fields are under ``data``.
    """
    days = int(wait.params["due_days"])
    due_on = f'formatDate(addMinutes(now; -{days * 1440}); "{DATE_FORMAT}"; "{TIMEZONE}")'
    search = builder.module(
        "datastore:SearchRecord",
        {"filter": [[{"a": "fulfilledOn", "o": "text:equal", "b": "{{" + due_on + "}}"}]],
         "sort": []},
        f"Orders fulfilled {days} days ago (data store {STARTED_STORE})", y,
        parameters={"continueWhenNoRes": False, "limit": DUE_ORDERS_LIMIT})
    # The record key is the store's order id, which a failure report names.
    builder.record_ref = f"{search['id']}.key"
    builder.pending_filter = {"name": "The order has a contact", "conditions": [
        [{"a": "{{" + f"{search['id']}.data.contactId" + "}}", "o": "text:notequal", "b": ""}]]}
    contact_id = "{{" + f"{search['id']}.data.contactId" + "}}"
    read = http_module(builder, _contact_read(builder, contact_id), "Read the order's contact",
                       y)
    return [search, read]
