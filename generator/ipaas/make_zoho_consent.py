"""The Zoho consent write of a Make blueprint: update the contact found by its key, or create it.

A consent body carries no name, and Zoho creates a contact only with a Last_Name
(MANDATORY_NOT_FOUND). An upsert with the spec's placeholder would overwrite the
real last name of a contact that exists, so the write searches Contacts by the
contact's unique key first. A router follows: its first route updates the contact
found by its Zoho id and sends no Last_Name, and its second route, for a customer who
is not in Zoho yet, creates the contact with the placeholder. The contact scenario's
upsert later writes the real name over the placeholder, because it matches the
same key.

An opt-out on either side wins, as on HubSpot: the search also reads the contact's
opt-out checkboxes (``Email_Opt_Out``), and the update keeps a checkbox that Zoho
already shows ticked, so a store opt-in never clears an opt-out made in Zoho.
NOTE: an unticked opt-in checkbox (``Ecom_WhatsApp_Opt_In``) cannot tell a withdrawal
in Zoho from consent never given, so a store opt-in still ticks it.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from generator.ipaas.crm_calls import ZOHO_BASE_URL, CrmCall
from generator.ipaas.flows import Step
from generator.ipaas.make_builder import Y_STEP, Builder
from generator.ipaas.make_contact import is_empty, is_set
from generator.ipaas.make_http import http_module
from generator.ipaas.make_records import without_values

ROUTER_NAME = "Update the contact if Zoho has it, else create it"
FOUND_ROUTE_NAME = "Contact found in Zoho"
NEW_ROUTE_NAME = "Contact not in Zoho: create it with the placeholder last name"
LAST_NAME = "Last_Name"


def _placeholder(builder: Builder) -> str | None:
    """Return the spec's placeholder of the contact's Last_Name, or None when it has none."""
    for item in builder.mapping["entities"]["contact"]["fields"]:
        if item.get("target") == LAST_NAME and "placeholder" in item:
            return str(item["placeholder"])
    return None


def _keep_zoho_opt_outs(builder: Builder, record: dict[str, Any], opt_outs: list[str],
                        search_id: int) -> dict[str, Any]:
    """Return ``record`` with each opt-out checkbox kept ticked when the found contact has it.

    Each mapped opt-out value gets a formula of its own in ``builder.values``, named
    after the search module, so the create route still writes the store's value.
    """
    kept = dict(record)
    for name in opt_outs:
        placeholder = re.fullmatch(r"<([^<>]+)>", str(record[name]))
        if placeholder is None or placeholder.group(1) not in builder.values:
            continue
        mapped = placeholder.group(1)
        in_zoho = f'first(map({search_id}.data.data; "{name}"))'
        combined = f"{mapped}_or_zoho_{search_id}"
        builder.values[combined] = f"if({in_zoho}; true; {builder.values[mapped]})"
        if mapped in builder.unquoted_values:
            builder.unquoted_values.add(combined)
        if mapped in builder.safe_values:
            builder.safe_values.add(combined)
        kept[name] = f"<{combined}>"
    return kept


def zoho_consent_modules(builder: Builder, step: Step, y: int,
                         leave_out: frozenset[str]) -> list[dict[str, Any]]:
    """Return the search by the contact's key, then the router that updates or creates it.

    ``step`` is the consent write, whose first call is the Zoho upsert. The mapped
    values named in ``leave_out`` are left out of both bodies. Returns no module when
    the body keeps none of the upsert's duplicate check fields to search by.
    """
    upsert = without_values(step.calls[0], leave_out)
    body: dict[str, Any] = upsert.body
    record = dict(body["data"][0])
    checks = [name for name in body.get("duplicate_check_fields", []) if name in record]
    if not checks:
        return []
    obj = upsert.endpoint.removeprefix("/").removesuffix("/upsert")
    key = checks[0]
    # NOTE: Zoho's criteria syntax needs a backslash before "(", ")" and "," in a
    # value. The key is the store's customer id, a number on Shopify and WooCommerce,
    # so none is escaped here.
    opt_outs = [name for name in record if name.lower().endswith("opt_out")]
    query = {"criteria": f"({key}:equals:{record[key]})"}
    if opt_outs:
        # NOTE: Zoho's search is taken to return the fields that ``fields`` names; it
        # is not confirmed that it returns checkboxes without it.
        query["fields"] = ",".join(["id", *opt_outs])
    search = CrmCall(system="zoho", action=f"search {obj}", method="GET",
                     base_url=ZOHO_BASE_URL, endpoint=f"/{obj}/search", query=query)
    found = http_module(builder, search, f"Find the contact by {key}", y)
    zoho_id = f'first(map({found["id"]}.data.data; "id"))'
    kept = _keep_zoho_opt_outs(builder, record, opt_outs, found["id"])
    router = builder.module("builtin:BasicRouter", None, ROUTER_NAME, y)
    start_x = builder.x
    builder.pending_filter = {"name": FOUND_ROUTE_NAME, "conditions": [[is_set(zoho_id)]]}
    update = replace(upsert, action=f"update {obj}", method="PUT",
                     endpoint=f"/{obj}/" + "{{" + zoho_id + "}}",
                     body={"data": [kept], "trigger": body.get("trigger", [])})
    routes = [{"flow": [http_module(builder, update, step.title.en, y)]}]
    placeholder = _placeholder(builder)
    if placeholder is not None:
        builder.x = start_x
        builder.pending_filter = {"name": NEW_ROUTE_NAME, "conditions": [[is_empty(zoho_id)]]}
        # The placeholder comes last, so the body never ends in a formula's braces.
        create = replace(upsert, action=f"create {obj}", method="POST", endpoint=f"/{obj}",
                         body={"data": [{**record, LAST_NAME: placeholder}],
                               "trigger": body.get("trigger", [])})
        routes.append({"flow": [http_module(builder, create, f"{step.title.en} (new contact)",
                                            y + Y_STEP)]})
    router["routes"] = routes
    return [found, router]
