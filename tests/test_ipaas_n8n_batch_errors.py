"""n8n stops a run when a HubSpot batch response (207 Multi-Status) lists failed records."""

from __future__ import annotations

from typing import Any

import pytest

from tests.test_ipaas_n8n_run import linked, node_code, run_chain, workflow

REQUEST = "Create or update the contact: request"
CHECK = "Create or update the contact: check the results"
FAILED = {"status": "COMPLETE", "numErrors": 1,
          "results": [{"id": "c-1", "properties": {"email": "a@example.sa"}}],
          "errors": [{"status": "error", "category": "VALIDATION_ERROR",
                      "message": "Property values were not valid: b@example.sa"}]}


def order_sync() -> dict[str, Any]:
    return workflow("shopify-growth", "order-sync")


def test_check_follows_each_hubspot_batch() -> None:
    data = order_sync()
    names = {node["name"] for node in data["nodes"]}
    for step in ("Create or update the contact", "Create or update the deal",
                 "Link the order to its contact"):
        assert f"{step}: check the results" in names
        assert linked(data, f"{step}: request", f"{step}: check the results")
    assert not linked(data, REQUEST, "Map the order to the deal, with its stage")


def test_partial_failure_stops_run() -> None:
    with pytest.raises(AssertionError) as stopped:
        run_chain([(CHECK, node_code(order_sync(), CHECK), None)], [FAILED])
    message = str(stopped.value)
    assert "1 HubSpot record(s) failed in Create or update the contact" in message
    assert "VALIDATION_ERROR" in message
    assert "example.sa" not in message


def test_complete_batch_passes() -> None:
    answer = {"status": "COMPLETE", "results": [{"id": "c-1", "properties": {}}]}
    passed = run_chain([(CHECK, node_code(order_sync(), CHECK), None)], [answer])
    assert passed == [answer]


def test_zoho_has_no_hubspot_check() -> None:
    data = workflow("jeddah-fashion-zoho", "order-sync")
    assert not any(node["name"].endswith(": check the results") for node in data["nodes"])
