"""Parameters of n8n's Data table node for the key-value tables the workflows share.

Every table has the text columns ``key`` and ``value``, and its name starts with
``rabt_`` so the project's tables stand together in n8n's list.
"""

from __future__ import annotations

from typing import Any

DATA_TABLE_PREFIX = "rabt_"


def table_ref(name: str) -> dict[str, Any]:
    """Return the resource locator of the data table ``rabt_<name>``, by name."""
    return {"__rl": True, "mode": "name", "value": DATA_TABLE_PREFIX + name}


def delete_parameters(name: str, key_value: str, key_name: str = "key") -> dict[str, Any]:
    """Return the parameters that delete the rows whose ``key_name`` equals ``key_value``."""
    return {
        "resource": "row", "operation": "deleteRows", "dataTableId": table_ref(name),
        "matchType": "allConditions",
        "filters": {"conditions": [{"keyName": key_name, "condition": "eq",
                                    "keyValue": key_value}]}}


def upsert_parameters(name: str) -> dict[str, Any]:
    """Return the parameters that upsert each input item as a ``{key, value}`` row by key."""
    return {
        "resource": "row", "operation": "upsert", "dataTableId": table_ref(name),
        "matchType": "allConditions",
        "filters": {"conditions": [{"keyName": "key", "condition": "eq",
                                    "keyValue": "={{ $json.key }}"}]},
        "columns": {"mappingMode": "autoMapInputData", "value": {}, "matchingColumns": [],
                    "schema": [], "attemptToConvertTypes": False,
                    "convertFieldsToString": True}}
