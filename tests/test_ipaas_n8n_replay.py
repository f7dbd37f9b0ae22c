"""n8n flows claim the dedupe key before any wait, and keep failed events until written.

The order checks copy n8n 2.8.4's v1 execution order. A node's children run one
whole branch after the other, the smallest position y first (then the smallest x).
A failed request stops the run, so a node that runs after every CRM request runs
only when all of them succeeded.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.test_ipaas_n8n_run import node_code, run_chain, workflow

PRESETS = ["shopify-growth", "jeddah-fashion-zoho"]
DEDUPE = "Skip an event already processed"
CLAIM = f"{DEDUPE}: claim"
RELEASE = "Release the failed run's event claims"
KEEP = "Keep the event until its CRM writes succeed (failed_items)"
CLEAR = "Clear the event from failed_items"
READ = "Read orders changed since the cursor"
WRITE_TYPES = {"n8n-nodes-base.httpRequest", "n8n-nodes-base.postgres"}


def run_order(data: dict[str, Any], start: str) -> list[str]:
    """Return the nodes reachable from ``start`` in the order n8n's v1 order runs them."""
    nodes = {node["name"]: node for node in data["nodes"]}
    order: list[str] = []
    stack = [start]
    while stack:
        name = stack.pop()
        if name in order:
            continue
        order.append(name)
        children = [link["node"] for output in data["connections"].get(name, {}).get("main", [])
                    for link in output]
        children.sort(key=lambda child: (nodes[child]["position"][1],
                                          nodes[child]["position"][0]))
        stack.extend(reversed(children))
    return order


def node_type(data: dict[str, Any], name: str) -> str:
    result: str = next(node["type"] for node in data["nodes"] if node["name"] == name)
    return result


@pytest.mark.parametrize("preset", PRESETS)
def test_failed_item_cleared_after_writes(preset: str) -> None:
    data = workflow(preset, "order-sync")
    order = run_order(data, "Receive the payload")
    writes = [index for index, name in enumerate(order) if node_type(data, name) in WRITE_TYPES]
    assert writes
    assert order.index(CLEAR) > max(writes)
    assert order.index(CLAIM) < min(writes)


@pytest.mark.parametrize("flow", ["abandoned-checkout", "post-purchase"])
def test_key_claimed_before_waits(flow: str) -> None:
    data = workflow("shopify-growth", flow)
    order = run_order(data, "Receive the payload")
    waits = [index for index, name in enumerate(order)
             if node_type(data, name) == "n8n-nodes-base.wait"]
    assert waits
    assert order.index(f"{CLAIM} row") < order.index(CLAIM) < min(waits)
    claim = next(node for node in data["nodes"] if node["name"] == CLAIM)
    assert claim["parameters"]["operation"] == "upsert"
    assert claim["parameters"]["dataTableId"]["value"] == "rabt_processed_events"


def test_claim_row_holds_execution_id() -> None:
    data = workflow("shopify-growth", "abandoned-checkout")
    rows = run_chain([(f"{CLAIM} row", node_code(data, f"{CLAIM} row"), None)],
                     [{"id": 7001, "updated_at": "2026-12-01T10:00:00+03:00"}])
    assert rows == [{"key": "7001:2026-12-01T10:00:00+03:00", "value": "exec-test"}]


def test_error_flow_releases_claims_first() -> None:
    data = workflow("shopify-growth", "error-alert")
    order = run_order(data, "Failed run")
    assert order[1] == RELEASE
    release = next(node for node in data["nodes"] if node["name"] == RELEASE)
    parameters = release["parameters"]
    assert parameters["operation"] == "deleteRows"
    assert parameters["dataTableId"]["value"] == "rabt_processed_events"
    condition = parameters["filters"]["conditions"][0]
    assert condition["keyName"] == "value"
    body = condition["keyValue"].removeprefix("=").strip().removeprefix("{{").removesuffix("}}")
    released = run_chain([("release key", None, f"($json) => ({{ value: {body} }})")],
                         [{"execution": {"id": "exec-test"}, "workflow": {"id": "wf-1"}}])
    assert released == [{"value": "exec-test"}]


@pytest.mark.parametrize("preset", PRESETS)
def test_failed_item_kept_before_writes(preset: str) -> None:
    data = workflow(preset, "order-sync")
    order = run_order(data, "Receive the payload")
    writes = [index for index, name in enumerate(order) if node_type(data, name) in WRITE_TYPES]
    assert order.index(KEEP) < min(writes)


def test_every_deduped_flow_claims_first() -> None:
    for flow in ("contact-sync", "order-sync", "product-sync", "consent-sync"):
        data = workflow("shopify-growth", flow)
        order = run_order(data, "Receive the payload")
        assert order[1:4] == [DEDUPE, f"{CLAIM} row", CLAIM], flow
        assert order[-1] == CLEAR, flow


def test_pending_row_and_clear_key_match() -> None:
    data = workflow("shopify-growth", "order-sync")
    rows = run_chain([(f"{KEEP}: row", node_code(data, f"{KEEP}: row"), None)],
                     [{"id": 5001, "updated_at": "2026-12-01T10:00:00+03:00"}])
    assert rows[0]["key"] == "order-sync:5001"
    value = json.loads(rows[0]["value"])
    assert value["flow"] == "order-sync"
    assert value["record_id"] == "5001"
    assert value["event_key"] == "5001:2026-12-01T10:00:00+03:00"
    clear = next(node for node in data["nodes"] if node["name"] == CLEAR)
    expression = clear["parameters"]["filters"]["conditions"][0]["keyValue"]
    body = expression.removeprefix("=").strip().removeprefix("{{").removesuffix("}}")
    stub = f"($json) => ({{ key: {body} }})"
    cleared = run_chain([("clear key", None, stub)],
                        [{"id": 5001, "updated_at": "2026-12-01T10:00:00+03:00"}])
    assert cleared[0]["key"] == "order-sync:5001"


def test_reconciliation_reads_failed_items() -> None:
    data = workflow("shopify-growth", "reconciliation")
    # The preset has three stores, so each store has its own schedule.
    order = run_order(data, "Every 60 minutes (store 1)")
    assert order.index(f"{READ}: failed items") < order.index(f"{READ}: paths")
    read = next(node for node in data["nodes"] if node["name"] == f"{READ}: failed items")
    assert read["parameters"]["dataTableId"]["value"] == "rabt_failed_items"
    assert read["parameters"]["returnAll"] is True
    assert read["executeOnce"] is True
    results = next(node for node in data["nodes"] if node["name"] == f"{READ}: results")
    assert results["alwaysOutputData"] is True


def test_reconciliation_replays_failed_orders() -> None:
    data = workflow("shopify-growth", "reconciliation")
    rows = ("(json) => json.id === '11' ? { key: 'order-sync:9', value: "
            "JSON.stringify({ flow: 'order-sync', record_id: '9' }) } : { key: "
            "'contact-sync:77', value: JSON.stringify({ flow: 'contact-sync', "
            "record_id: '77' }) }")
    merged = run_chain([
        (f"{READ}: results", None, "(json) => json"),
        (f"{READ}: failed items", None, rows),
        (f"{READ}: with failed items", node_code(data, f"{READ}: with failed items"), None),
    ], [{"id": "11", "updated_at": "2026-12-01T10:00:00Z"},
        {"id": "12", "updated_at": "2026-12-01T11:00:00Z"}])
    assert [item["id"] for item in merged] == ["11", "12", "9"]


def test_reconciliation_replays_without_poll() -> None:
    data = workflow("shopify-growth", "reconciliation")
    rows = ("() => ({ key: 'order-sync:9', value: "
            "JSON.stringify({ flow: 'order-sync', record_id: '9' }) })")
    merged = run_chain([
        (f"{READ}: results", None, "(json) => json"),
        (f"{READ}: failed items", None, rows),
        (f"{READ}: with failed items", node_code(data, f"{READ}: with failed items"), None),
    ], [{}])
    assert [item["id"] for item in merged] == ["9"]


def test_error_row_keyed_by_execution() -> None:
    data = workflow("shopify-growth", "error-alert")
    steps = [(name, node_code(data, name), None) for name in (
        "Collect the flow, step, error code and record ids",
        "Keep the failed item for replay: row")]
    rows = run_chain(steps, [{"execution": {"id": "231", "lastNodeExecuted": "Deal",
                                            "error": {"message": "429"}},
                              "workflow": {"id": "wf-1", "name": "Order to deal"}}])
    assert rows[0]["key"] == "231"
    assert json.loads(rows[0]["value"])["workflow_id"] == "wf-1"


def test_woocommerce_reconciliation_reads_failed_items() -> None:
    data = workflow("woo-startup", "reconciliation")
    order = run_order(data, "Every 60 minutes")
    assert order.index(f"{READ}: results") < order.index(f"{READ}: failed items")
    assert order.index(f"{READ}: with failed items") < order.index(f"{READ}: read each")
    assert order.index(f"{READ}: bodies") < order.index("Send each order to the order flow")
    read = next(node for node in data["nodes"] if node["name"] == f"{READ}: read each")
    assert read["parameters"]["url"] == ("=https://{{ $env.RABT_WOOCOMMERCE_DOMAIN }}"
                                         "/wp-json/wc/v3/orders/{{ $json.path || '' }}")


def test_woocommerce_reconciliation_replays_failed_orders() -> None:
    data = workflow("woo-startup", "reconciliation")
    rows = ("() => ({ key: 'order-sync:9', value: "
            "JSON.stringify({ flow: 'order-sync', record_id: '9' }) })")
    paths = run_chain([
        (f"{READ}: results", node_code(data, f"{READ}: results"), None),
        (f"{READ}: failed items", None, rows),
        (f"{READ}: with failed items", node_code(data, f"{READ}: with failed items"), None),
        (f"{READ}: paths", node_code(data, f"{READ}: paths"), None),
    ], [{"id": 11, "status": "completed", "date_modified_gmt": "2026-12-01T10:00:00"}])
    assert paths == [{"path": "11"}, {"path": "9"}]
