"""n8n searches and store polls read every page before the next node runs.

The pagination expressions run in Node.js with ``$response`` and ``$pageCount`` set
as n8n 2.8.4's paginated request sets them: empty on the first request, then the
last response.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import pytest

from tests.test_ipaas_n8n_replay import run_order
from tests.test_ipaas_n8n_run import node_code, run_chain, workflow

POLL = "Read orders changed since the cursor"
SEARCH = "Find the customers whose latest order is 52 days old"


def pagination(data: dict[str, Any], name: str) -> dict[str, Any]:
    node = next(item for item in data["nodes"] if item["name"] == name)
    result: dict[str, Any] = node["parameters"]["options"]["pagination"]["pagination"]
    return result


def evaluate(expression: str, response: dict[str, Any], page_count: int) -> Any:
    """Return the value of an n8n ``={{ … }}`` expression for one response."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node (Node.js) not found: the expressions cannot run")
    body = expression.removeprefix("=").strip().removeprefix("{{").removesuffix("}}")
    script = (f"const $response = {json.dumps(response)}; const $pageCount = {page_count};\n"
              f"const value = ({body});\n"
              "process.stdout.write(JSON.stringify(value === undefined ? '<undefined>' : value));")
    done = subprocess.run([node, "-e", script], capture_output=True, text=True, check=False,
                          timeout=30)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_hubspot_search_paged() -> None:
    data = workflow("shopify-growth", "win-back")
    searches = [node for node in data["nodes"]
                if node["name"].startswith("Find the customers")
                and node["type"] == "n8n-nodes-base.httpRequest"]
    assert searches
    for node in searches:
        paging = node["parameters"]["options"]["pagination"]["pagination"]
        assert paging["paginationMode"] == "updateAParameterInEachRequest"
        assert paging["parameters"]["parameters"][0]["type"] == "body"
        assert paging["parameters"]["parameters"][0]["name"] == "after"
        assert paging["paginationCompleteWhen"] == "other"
        assert paging["maxRequests"] == 50


def test_hubspot_after_expressions() -> None:
    paging = pagination(workflow("shopify-growth", "win-back"), SEARCH)
    value = paging["parameters"]["parameters"][0]["value"]
    complete = paging["completeExpression"]
    assert evaluate(value, {}, 0) == "<undefined>"
    page = {"body": {"results": [], "paging": {"next": {"after": "200"}}}}
    assert evaluate(value, page, 1) == "200"
    assert evaluate(complete, page, 1) is False
    assert evaluate(complete, {"body": {"results": []}}, 2) is True


def test_shopify_poll_sorted_by_update() -> None:
    data = workflow("shopify-growth", "reconciliation")
    rows = run_chain([(f"{POLL}: request", node_code(data, f"{POLL}: request"), None)],
                     [{"key": "orders", "value": "2026-12-01T10:00:00Z"}])
    body = rows[0]["body"]
    assert "sortKey: UPDATED_AT" in body["query"]
    assert "after: $after" in body["query"]
    assert "pageInfo { hasNextPage endCursor }" in body["query"]
    assert "updated_at:>'2026-12-01T10:00:00Z'" in body["query"]
    assert body["variables"] == {"after": None}


def test_shopify_cursor_expressions() -> None:
    # The preset has three stores: each store's request node pages on its own.
    paging = pagination(workflow("shopify-growth", "reconciliation"), f"{POLL} (store 1)")
    parameter = paging["parameters"]["parameters"][0]
    assert (parameter["type"], parameter["name"]) == ("body", "variables")
    complete = paging["completeExpression"]
    assert evaluate(parameter["value"], {}, 0) == {"after": None}
    more = {"body": {"data": {"orders": {"edges": [], "pageInfo": {
        "hasNextPage": True, "endCursor": "cursor-2"}}}}}
    assert evaluate(parameter["value"], more, 1) == {"after": "cursor-2"}
    assert evaluate(complete, more, 1) is False
    last = {"body": {"data": {"orders": {"edges": [], "pageInfo": {
        "hasNextPage": False, "endCursor": "cursor-3"}}}}}
    assert evaluate(complete, last, 2) is True


def test_cursor_saved_after_all_pages() -> None:
    data = workflow("shopify-growth", "reconciliation")
    order = run_order(data, "Every 60 minutes (store 1)")
    assert order.index("Save the newest updated_at as the cursor") > order.index(POLL)
    assert order.index("Save the newest updated_at as the cursor") > order.index(
        "Send each order to the order flow")


def test_poll_results_read_every_page() -> None:
    data = workflow("shopify-growth", "reconciliation")
    pages = []
    for number in (1, 2):
        node = {"id": f"gid://shopify/Order/{number}", "updatedAt": f"2026-12-01T1{number}:00:00Z"}
        pages.append({"data": {"orders": {"edges": [{"node": node}]}}})
    rows = run_chain([(f"{POLL}: results", node_code(data, f"{POLL}: results"), None)], pages)
    assert [row["id"] for row in rows] == ["1", "2"]


def test_zoho_search_paged() -> None:
    paging = pagination(workflow("jeddah-fashion-zoho", "win-back"), SEARCH)
    parameter = paging["parameters"]["parameters"][0]
    assert (parameter["type"], parameter["name"]) == ("qs", "page")
    assert evaluate(parameter["value"], {}, 0) == 1
    assert evaluate(parameter["value"], {"body": {}}, 1) == 2
    more = {"body": {"data": [], "info": {"more_records": True}}}
    assert evaluate(paging["completeExpression"], more, 1) is False
    assert evaluate(paging["completeExpression"], {"body": ""}, 2) is True
