"""The HubSpot private app scopes that ``rabt crm`` calls need, by API."""

from __future__ import annotations

# Private app scopes by the API the call used, as docs/connector-setup.md lists them.
# NOTE: the scopes for product, line item and ticket properties and for the pipelines
# API are not confirmed against HubSpot's reference.
_PROPERTY_SCOPES = {
    "contacts": "crm.schemas.contacts.read, crm.schemas.contacts.write",
    "deals": "crm.schemas.deals.read, crm.schemas.deals.write",
    "products": "e-commerce",
    "line_items": "e-commerce",
    "tickets": "tickets",
}
_LIST_SCOPES = "crm.lists.read, crm.lists.write"
_PIPELINE_SCOPES = "crm.objects.deals.read, crm.objects.deals.write"


def scopes_for_path(path: str) -> str:
    """Return the private app scopes that a call to ``path`` needs, or every scope Rabt uses."""
    parts = path.strip("/").split("/")
    if parts[:3] == ["crm", "v3", "properties"] and len(parts) > 3 and parts[3] in _PROPERTY_SCOPES:
        return _PROPERTY_SCOPES[parts[3]]
    if parts[:3] == ["crm", "v3", "lists"]:
        return _LIST_SCOPES
    if parts[:3] == ["crm", "v3", "pipelines"]:
        return _PIPELINE_SCOPES
    every = [*dict.fromkeys(_PROPERTY_SCOPES.values()), _LIST_SCOPES, _PIPELINE_SCOPES]
    return ", ".join(every)
