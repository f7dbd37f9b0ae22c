"""Modules and fields of a new Zoho CRM org, as the stand-in starts with them.

Field API names, types and mandatory fields follow Zoho's v8 field metadata and the
upsert page's system-defined duplicate check fields (Contacts and Leads: Email, Deals:
Deal_Name, Accounts: Account_Name, Products: Product_Name, Cases, Quotes and
Sales_Orders: Subject, custom modules: Name). Lengths and default picklist values are
those a new org shows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DATA_TYPE_LENGTHS",
    "FieldDef",
    "ModuleDef",
    "Option",
    "build_standard_modules",
    "custom_module",
    "json_type",
]

# Allowed "length" per data type when creating a custom field (Zoho's table of field
# types and length limits); None means the type takes no length.
DATA_TYPE_LENGTHS: dict[str, tuple[int, int] | None] = {
    "text": (1, 255),
    "textarea": (2000, 50000),
    "email": (1, 100),
    "phone": (1, 30),
    "integer": (1, 9),
    "currency": (1, 16),
    "percent": (1, 5),
    "bigint": (1, 18),
    "double": (1, 18),
    "website": (1, 450),
    "boolean": None,
    "date": None,
    "datetime": None,
    "picklist": None,
    "multiselectpicklist": None,
    "lookup": None,
}
_TEXTAREA_LENGTHS = (2000, 32000, 50000)
_DEFAULT_LENGTHS = {"text": 255, "textarea": 32000, "email": 100, "phone": 30,
                    "integer": 9, "currency": 16, "percent": 5, "bigint": 18,
                    "double": 16, "website": 255}

_JSON_TYPES = {
    "integer": "integer", "bigint": "integer",
    "currency": "double", "double": "double", "percent": "double",
    "boolean": "boolean", "lookup": "jsonobject", "ownerlookup": "jsonobject",
    "multiselectpicklist": "jsonarray", "subform": "jsonarray",
}


def json_type(data_type: str) -> str:
    """Return the ``json_type`` Zoho reports for ``data_type``."""
    return _JSON_TYPES.get(data_type, "string")


def valid_length(data_type: str, length: int) -> bool:
    """Return whether ``length`` is allowed for a custom field of ``data_type``."""
    bounds = DATA_TYPE_LENGTHS.get(data_type)
    if bounds is None:
        return False
    if data_type == "textarea":
        return length in _TEXTAREA_LENGTHS
    return bounds[0] <= length <= bounds[1]


@dataclass
class Option:
    """One value of a picklist."""

    display_value: str
    actual_value: str
    id: str
    sequence_number: int
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Return the option as Zoho's field metadata shows it."""
        return {"display_value": self.display_value, "actual_value": self.actual_value,
                "id": self.id, "sequence_number": self.sequence_number, **self.extra}


@dataclass
class FieldDef:
    """One field of a module, standard or custom."""

    api_name: str
    field_label: str
    data_type: str
    id: str
    length: int | None = None
    custom: bool = False
    system_mandatory: bool = False
    layout_required: bool = False
    unique: bool = False
    read_only: bool = False
    lookup_module: str | None = None
    options: list[Option] = field(default_factory=list)

    def option_for(self, value: str, match: str) -> Option | None:
        """Return the option ``value`` names under the ``match`` rule, or None."""
        for option in self.options:
            if match in ("actual_value", "either") and option.actual_value == value:
                return option
            if match in ("display_value", "either") and option.display_value == value:
                return option
        return None

    def to_json(self) -> dict[str, Any]:
        """Return the field as ``GET /settings/fields`` shows it."""
        # NOTE: the key inside "unique" for a unique field follows the create
        # request (case_sensitive); the GET shape of a unique field was not seen.
        return {
            "api_name": self.api_name,
            "field_label": self.field_label,
            "display_label": self.field_label,
            "data_type": self.data_type,
            "json_type": json_type(self.data_type),
            "length": self.length,
            "id": self.id,
            "custom_field": self.custom,
            "system_mandatory": self.system_mandatory,
            "read_only": self.read_only,
            "visible": True,
            "unique": {"case_sensitive": False} if self.unique else {},
            "pick_list_values": [option.to_json() for option in self.options],
            "lookup": ({"module": {"api_name": self.lookup_module}}
                       if self.lookup_module else {}),
        }


@dataclass
class ModuleDef:
    """One module with its fields and its standard layout."""

    api_name: str
    singular_label: str
    plural_label: str
    id: str
    layout_id: str
    custom: bool = False
    duplicate_check_field: str | None = None
    fields: dict[str, FieldDef] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Return the module as ``GET /settings/modules`` shows it."""
        return {
            "api_name": self.api_name,
            "module_name": self.api_name,
            "singular_label": self.singular_label,
            "plural_label": self.plural_label,
            "id": self.id,
            "api_supported": True,
            "creatable": True,
            "editable": True,
            "deletable": True,
            "generated_type": "custom" if self.custom else "default",
            "status": "visible",
        }

    def unique_fields(self) -> list[str]:
        """Return the user-defined unique fields, in creation order."""
        return [name for name, item in self.fields.items() if item.unique]


# (api_name, label, data_type, length, mandatory, lookup module or picklist values)
_FieldRow = tuple[str, str, str, int | None, bool, str | tuple[str, ...] | None]

_NONE = "-None-"
# NOTE: default picklist values of a new org as commonly seen, not from a doc page.
_LEAD_SOURCES = (_NONE, "Advertisement", "Cold Call", "Employee Referral", "External Referral",
                 "Online Store", "Partner", "Public Relations", "Sales Email Alias",
                 "Seminar Partner", "Internal Seminar", "Trade Show", "Web Download",
                 "Web Research", "Chat")

_STANDARD_FIELDS: dict[str, tuple[_FieldRow, ...]] = {
    "Leads": (
        ("First_Name", "First Name", "text", 40, False, None),
        ("Last_Name", "Last Name", "text", 80, True, None),
        ("Email", "Email", "email", 100, False, None),
        ("Phone", "Phone", "phone", 30, False, None),
        ("Mobile", "Mobile", "phone", 30, False, None),
        ("Company", "Company", "text", 200, False, None),
        ("City", "City", "text", 100, False, None),
        ("Lead_Source", "Lead Source", "picklist", None, False, _LEAD_SOURCES),
        ("Description", "Description", "textarea", 32000, False, None),
    ),
    "Contacts": (
        ("First_Name", "First Name", "text", 40, False, None),
        ("Last_Name", "Last Name", "text", 80, True, None),
        ("Email", "Email", "email", 100, False, None),
        ("Phone", "Phone", "phone", 30, False, None),
        ("Mobile", "Mobile", "phone", 30, False, None),
        ("Mailing_City", "Mailing City", "text", 100, False, None),
        ("Mailing_Country", "Mailing Country", "text", 100, False, None),
        ("Lead_Source", "Lead Source", "picklist", None, False, _LEAD_SOURCES),
        ("Email_Opt_Out", "Email Opt Out", "boolean", None, False, None),
        ("Account_Name", "Account Name", "lookup", None, False, "Accounts"),
        ("Description", "Description", "textarea", 32000, False, None),
    ),
    "Accounts": (
        ("Account_Name", "Account Name", "text", 200, True, None),
        ("Phone", "Phone", "phone", 30, False, None),
        ("Website", "Website", "website", 255, False, None),
        ("Billing_City", "Billing City", "text", 100, False, None),
        ("Description", "Description", "textarea", 32000, False, None),
    ),
    "Deals": (
        ("Deal_Name", "Deal Name", "text", 120, True, None),
        ("Stage", "Stage", "picklist", None, True, ()),
        ("Pipeline", "Pipeline", "picklist", None, False, ()),
        ("Amount", "Amount", "currency", 16, False, None),
        ("Closing_Date", "Closing Date", "date", None, False, None),
        ("Contact_Name", "Contact Name", "lookup", None, False, "Contacts"),
        ("Account_Name", "Account Name", "lookup", None, False, "Accounts"),
        ("Currency", "Currency", "picklist", None, False, ("SAR", "USD")),
        ("Lead_Source", "Lead Source", "picklist", None, False, _LEAD_SOURCES),
        ("Description", "Description", "textarea", 32000, False, None),
    ),
    "Products": (
        ("Product_Name", "Product Name", "text", 200, True, None),
        ("Product_Code", "Product Code", "text", 40, False, None),
        ("Unit_Price", "Unit Price", "currency", 16, False, None),
        ("Product_Category", "Product Category", "picklist", None, False,
         (_NONE, "Hardware", "Software", "CRM Applications")),
        ("Product_Active", "Product Active", "boolean", None, False, None),
        ("Description", "Description", "textarea", 32000, False, None),
    ),
    "Cases": (
        ("Subject", "Subject", "text", 255, True, None),
        ("Status", "Status", "picklist", None, False, ("New", "On Hold", "Escalated", "Closed")),
        ("Case_Origin", "Case Origin", "picklist", None, False,
         (_NONE, "Email", "Phone", "Web")),
        ("Priority", "Priority", "picklist", None, False, (_NONE, "High", "Medium", "Low")),
        ("Related_To", "Contact Name", "lookup", None, False, "Contacts"),
        ("Email", "Email", "email", 100, False, None),
        ("Phone", "Phone", "phone", 30, False, None),
        ("Description", "Description", "textarea", 32000, False, None),
    ),
    "Sales_Orders": (
        ("Subject", "Subject", "text", 255, True, None),
        ("Deal_Name", "Deal Name", "lookup", None, False, "Deals"),
        ("Contact_Name", "Contact Name", "lookup", None, False, "Contacts"),
        ("Status", "Status", "picklist", None, False,
         ("Created", "Approved", "Delivered", "Cancelled")),
        ("Grand_Total", "Grand Total", "currency", 16, False, None),
        ("Product_Details", "Ordered Items", "subform", None, False, None),
    ),
}

# (api_name, singular label, plural label, system-defined duplicate check field)
_MODULES = (
    ("Leads", "Lead", "Leads", "Email"),
    ("Contacts", "Contact", "Contacts", "Email"),
    ("Accounts", "Account", "Accounts", "Account_Name"),
    ("Deals", "Deal", "Deals", "Deal_Name"),
    ("Products", "Product", "Products", "Product_Name"),
    ("Cases", "Case", "Cases", "Subject"),
    ("Sales_Orders", "Sales Order", "Sales Orders", "Subject"),
)

# Fields every record carries; the API sets them, so writes cannot.
_SYSTEM_FIELDS = (("Created_Time", "Created Time"), ("Modified_Time", "Modified Time"))

# The stages of the standard Deals pipeline in a new org, with their forecast type.
STANDARD_STAGES = (
    ("Qualification", 10, "Open"),
    ("Needs Analysis", 20, "Open"),
    ("Value Proposition", 40, "Open"),
    ("Id. Decision Makers", 60, "Open"),
    ("Perception Analysis", 70, "Open"),
    ("Proposal/Price Quote", 75, "Open"),
    ("Negotiation/Review", 90, "Open"),
    ("Closed Won", 100, "Closed Won"),
    ("Closed Lost", 0, "Closed Lost"),
    ("Closed Lost to Competition", 0, "Closed Lost"),
)


def _field_from_row(row: _FieldRow, next_id: Callable[[], str]) -> FieldDef:
    api_name, label, data_type, length, mandatory, extra = row
    item = FieldDef(api_name=api_name, field_label=label, data_type=data_type, id=next_id(),
                    length=length, system_mandatory=mandatory)
    if data_type == "lookup" and isinstance(extra, str):
        item.lookup_module = extra
    if isinstance(extra, tuple):
        item.options = options_from_values(extra, next_id)
    return item


def options_from_values(values: Iterable[str], next_id: Callable[[], str]) -> list[Option]:
    """Build picklist options whose display and actual values are equal."""
    return [Option(value, value, next_id(), number) for number, value in enumerate(values, 1)]


def _add_system_fields(module: ModuleDef, next_id: Callable[[], str]) -> None:
    for api_name, label in _SYSTEM_FIELDS:
        module.fields[api_name] = FieldDef(api_name, label, "datetime", next_id(),
                                           read_only=True)


def build_standard_modules(next_id: Callable[[], str]) -> dict[str, ModuleDef]:
    """Build the standard modules of a new org, keyed by API name.

    Deals start with the stages of the standard pipeline, and Closing_Date is
    mandatory in the Deals layout (so only when a write names the layout).
    """
    modules: dict[str, ModuleDef] = {}
    for api_name, singular, plural, duplicate_field in _MODULES:
        module = ModuleDef(api_name, singular, plural, next_id(), next_id(),
                           duplicate_check_field=duplicate_field)
        for row in _STANDARD_FIELDS[api_name]:
            item = _field_from_row(row, next_id)
            module.fields[item.api_name] = item
        _add_system_fields(module, next_id)
        modules[api_name] = module
    deals = modules["Deals"]
    for number, (stage, probability, forecast) in enumerate(STANDARD_STAGES, 1):
        deals.fields["Stage"].options.append(Option(
            stage, stage, next_id(), number,
            {"probability": probability, "forecast_type": forecast}))
    deals.fields["Closing_Date"].layout_required = True
    return modules


def custom_module(api_name: str, singular: str, next_id: Callable[[], str]) -> ModuleDef:
    """Build a custom module with the record name field every custom module gets."""
    module = ModuleDef(api_name, singular, api_name.replace("_", " "), next_id(), next_id(),
                       custom=True, duplicate_check_field="Name")
    module.fields["Name"] = FieldDef("Name", f"{singular} Name", "text", next_id(), length=120,
                                     system_mandatory=True)
    _add_system_fields(module, next_id)
    return module


def default_length(data_type: str) -> int | None:
    """Return the length a custom field of ``data_type`` gets when none is given."""
    return _DEFAULT_LENGTHS.get(data_type)
