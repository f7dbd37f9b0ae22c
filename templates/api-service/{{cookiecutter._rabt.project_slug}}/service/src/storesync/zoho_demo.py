"""The demo's view of the Zoho stand-in: the records the samples made, personal data masked."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import httpx

from .logs import mask_email, mask_name, mask_phone

# Fields shown per module, with how each is masked.
SHOWN_FIELDS: dict[str, tuple[str, ...]] = {
    "Contacts": ("Email", "Mobile", "Last_Name", "Ecom_Orders_Count", "Ecom_LTV_SAR"),
    "Deals": ("Deal_Name", "Amount", "Stage", "Contact_Name"),
    "Products": ("Product_Code", "Product_Name", "Unit_Price"),
    "Sales_Orders": ("Subject", "Deal_Name", "Product_Details"),
}
MASKS: dict[str, Callable[[str], str]] = {"Email": mask_email, "Mobile": mask_phone,
                                          "Last_Name": mask_name}


def _shown(name: str, value: Any) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, Mapping):
        return f"#{value.get('id')}"
    if isinstance(value, list):
        return f"{len(value)} rows"
    return MASKS.get(name, str)(str(value))


def print_records(client: httpx.Client, echo: Callable[[str], None]) -> dict[str, int]:
    """Print the stand-in's records of each shown module; return the count per module."""
    counts: dict[str, int] = {}
    for module, fields in SHOWN_FIELDS.items():
        response = client.get(f"/_standin/records/{module}")
        response.raise_for_status()
        records = response.json().get("records", [])
        counts[module] = len(records)
        echo(f"\n{module} ({len(records)}):")
        for record in records:
            shown = ", ".join(f"{name}={_shown(name, record.get(name))}" for name in fields
                              if name in record)
            echo(f"  #{record.get('id')}  {shown}")
    return counts
