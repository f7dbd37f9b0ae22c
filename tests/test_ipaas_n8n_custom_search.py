"""n8n searches of the client's own database give items shaped like a CRM search's.

HubSpot and Zoho results become ``{record, key, crm_id, payload}`` items, and the
consent gates and sends read ``record`` and ``key``. Rows of the client's PostgreSQL
database must give the same shape, or the gates drop every contact.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from generator.ipaas import n8n
from generator.spec import build_desired_state
from tests.ipaas_cases import load_case
from tests.test_ipaas_n8n_run import node_code, run_chain

SEARCH = "Find the customers whose latest order is 52 days old"
GATE = "Check whatsapp consent"
ROW = {"store_customer_id": "77", "email": "noura@example.sa", "first_name": "نورة",
       "phone_e164": "+966501234567"}


@cache
def custom_workflow(flow: str) -> dict[str, Any]:
    answers, plan, spec = load_case("shopify-growth", {"crm": "custom", "path": "ipaas"})
    files = n8n.files(answers, plan, spec, build_desired_state(spec, plan))
    data: dict[str, Any] = json.loads(files[f"workflows/n8n/{flow}.json"])
    return data


def search_items() -> list[dict[str, Any]]:
    data = custom_workflow("win-back")
    items: list[dict[str, Any]] = run_chain(
        [(f"{SEARCH}: results", node_code(data, f"{SEARCH}: results"), None)], [ROW])
    return items


def test_custom_search_item_has_record() -> None:
    item = search_items()[0]
    assert item["record"]["email"] == "noura@example.sa"
    assert item["record"]["contacts.email"] == "noura@example.sa"
    assert item["key"] == "77"
    assert item["payload"] == ROW


def test_custom_search_reaches_consent_read() -> None:
    data = custom_workflow("win-back")
    steps = [(f"{SEARCH}: results", node_code(data, f"{SEARCH}: results"), None),
             (f"{GATE}: request", node_code(data, f"{GATE}: request"), None)]
    requests = run_chain(steps, [ROW])
    # The consent query of the client's database takes the key, the phone and the email.
    assert len(requests) == 1
    assert requests[0]["params"] == ["77", "+966501234567", "noura@example.sa"]
