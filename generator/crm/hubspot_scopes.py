"""The HubSpot private app scopes that ``rabt crm`` calls need, by API.

``SCOPE_GROUPS`` is the one table behind the scopes that docs/connector-setup.md lists
and the scopes that the fixes of ``rabt crm`` name, so both show them in its order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# The HubSpot menu path to the private apps, whose pages create an app and edit its scopes.
PRIVATE_APPS_MENU = {"en": "Settings → Integrations → Private apps",
                     "ar": "Settings ثم Integrations ثم Private apps"}


@dataclass(frozen=True)
class ScopeGroup:
    """The private app scopes that one HubSpot API needs, and what ``rabt crm`` uses it for."""

    scopes: tuple[str, ...]
    # Path prefixes after /crm/v3/ of the calls that need these scopes.
    apis: tuple[str, ...]
    purpose: dict[str, str]
    # Shown beside the scopes in the guide when HubSpot's reference did not confirm them.
    unconfirmed: dict[str, str] = field(default_factory=dict)


_NOT_CONFIRMED = {"en": "not confirmed", "ar": "لم يُتحقَّق منه"}

# NOTE: the scopes for product, line item and ticket properties and for the pipelines
# API are not confirmed against HubSpot's reference.
SCOPE_GROUPS = (
    ScopeGroup(("crm.schemas.contacts.read", "crm.schemas.contacts.write"),
               ("properties/contacts",),
               {"en": "contact properties and their group", "ar": "خصائص جهات الاتصال ومجموعتها"}),
    ScopeGroup(("crm.schemas.deals.read", "crm.schemas.deals.write"), ("properties/deals",),
               {"en": "deal properties", "ar": "خصائص الصفقات"}),
    ScopeGroup(("crm.lists.read", "crm.lists.write"), ("lists",),
               {"en": "the segment lists", "ar": "قوائم الشرائح"}),
    ScopeGroup(("crm.objects.deals.read", "crm.objects.deals.write"), ("pipelines",),
               {"en": "the deal pipeline and its stages",
                "ar": "مسار المبيعات (Pipeline) للصفقات ومراحله"},
               {"en": "scope of the pipelines API not confirmed",
                "ar": "لم يُتحقَّق من نطاق واجهة المسارات"}),
    ScopeGroup(("e-commerce",), ("properties/products", "properties/line_items"),
               {"en": "product and line item properties", "ar": "خصائص المنتجات وبنود الطلبات"},
               _NOT_CONFIRMED),
    ScopeGroup(("tickets",), ("properties/tickets",),
               {"en": "ticket properties", "ar": "خصائص التذاكر"}, _NOT_CONFIRMED),
)


def _join(groups: list[ScopeGroup] | tuple[ScopeGroup, ...]) -> str:
    return ", ".join(scope for group in groups for scope in group.scopes)


def scopes_for_path(path: str) -> str:
    """Return the private app scopes that a call to ``path`` needs, or every scope Rabt uses."""
    parts = path.strip("/").split("/")
    if parts[:2] == ["crm", "v3"]:
        for group in SCOPE_GROUPS:
            for api in group.apis:
                prefix = api.split("/")
                if parts[2:2 + len(prefix)] == prefix:
                    return _join([group])
    return _join(SCOPE_GROUPS)


def groups_for_desired(desired: Mapping[str, Any]) -> list[ScopeGroup]:
    """Return the scope groups, in table order, whose APIs the desired state's items use.

    A desired state that uses none of them (an empty one, for example) gets every group,
    so the fix for a missing token always names scopes.
    """
    apis = set()
    for key in ("property_groups", "properties"):
        for item in desired.get(key) or []:
            if isinstance(item, Mapping):
                apis.add(f"properties/{item.get('object')}")
    if desired.get("lists"):
        apis.add("lists")
    if desired.get("pipelines"):
        apis.add("pipelines")
    used = [group for group in SCOPE_GROUPS if apis & set(group.apis)]
    return used or list(SCOPE_GROUPS)


def scopes_for_desired(desired: Mapping[str, Any]) -> str:
    """Return the scopes that applying ``desired`` needs, comma-separated in table order."""
    return _join(groups_for_desired(desired))


def guide_context(desired: Mapping[str, Any]) -> dict[str, Any]:
    """Return the scope rows and menu path that the connector guide renders for ``desired``."""
    rows = [{"scopes": list(group.scopes), "purpose": dict(group.purpose),
             "unconfirmed": dict(group.unconfirmed)} for group in groups_for_desired(desired)]
    return {"groups": rows, "menu": dict(PRIVATE_APPS_MENU)}
