"""iPaaS projects for several stores.

Checks per-store triggers and credentials, shop-keyed records and the budget's store factor.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from generator.ipaas import budget, n8n
from generator.spec import build_desired_state
from generator.validate import validate_project
from tests.ipaas_cases import load_case

PRESET = "shopify-growth"
STORES = 3
SLUG = "shopify-growth"


@cache
def workflows(store_count: int) -> dict[str, dict[str, Any]]:
    answers, plan, spec = load_case(PRESET, {"store_count": store_count})
    files = n8n.files(answers, plan, spec, build_desired_state(spec, plan))
    return {Path(path).stem: json.loads(data) for path, data in files.items()
            if path.startswith("workflows/n8n/")}


def nodes_of(workflow: dict[str, Any], node_type: str) -> list[dict[str, Any]]:
    return [node for node in workflow["nodes"] if node["type"] == f"n8n-nodes-base.{node_type}"]


def targets(workflow: dict[str, Any], name: str) -> list[str]:
    return [link["node"] for output in workflow["connections"].get(name, {}).get("main", [])
            for link in output]


def test_preset_answers_three_stores() -> None:
    answers, _, _ = load_case(PRESET, {})
    assert answers.store_count == STORES


def test_order_trigger_per_store_and_topic() -> None:
    order = workflows(STORES)["order-sync"]
    triggers = nodes_of(order, "shopifyTrigger")
    assert len(triggers) == 2 * STORES
    names = {node["name"] for node in triggers}
    assert "Shopify orders/create (store 2)" in names
    assert "Shopify orders/updated (store 3)" in names


def test_trigger_credential_per_store() -> None:
    order = workflows(STORES)["order-sync"]
    for node in nodes_of(order, "shopifyTrigger"):
        store = node["name"].rsplit("(store ", 1)[1].rstrip(")")
        reference = node["credentials"]["shopifyAccessTokenApi"]
        assert reference["name"] == f"{SLUG}-shopify-store-{store}"


def test_stores_share_one_chain() -> None:
    order = workflows(STORES)["order-sync"]
    for store in range(1, STORES + 1):
        assert targets(order, f"Shopify orders/create (store {store})") == [f"Store {store}"]
        assert targets(order, f"Store {store}") == ["Receive the payload"]
    deal_maps = [node for node in order["nodes"]
                 if node["name"] == "Map the order to the deal, with its stage"]
    assert len(deal_maps) == 1


def test_store_marker_reads_store_domain() -> None:
    order = workflows(STORES)["order-sync"]
    code = next(node for node in order["nodes"] if node["name"] == "Store 2")
    assert "$env.RABT_SHOPIFY_SHOP_2" in code["parameters"]["jsCode"]
    assert "rabt_store: 2" in code["parameters"]["jsCode"]


def test_reconciliation_schedule_per_store() -> None:
    reconcile = workflows(STORES)["reconciliation"]
    schedules = [node["name"] for node in nodes_of(reconcile, "scheduleTrigger")
                 if "(store" in node["name"]]
    assert len(schedules) == STORES
    cursor = next(node for node in reconcile["nodes"]
                  if node["name"] == "Read orders changed since the cursor: cursor")
    key = cursor["parameters"]["filters"]["conditions"][0]["keyValue"]
    assert key == '=orders:{{ $("Run for one store").first().json.rabt_shop }}'


def test_store_calls_use_store_credential() -> None:
    reconcile = workflows(STORES)["reconciliation"]
    polls = [node for node in nodes_of(reconcile, "httpRequest")
             if node["name"].startswith("Read orders changed since the cursor (store")]
    assert len(polls) == STORES
    for store, node in enumerate(polls, start=1):
        assert f"$env.RABT_SHOPIFY_SHOP_{store} " in node["parameters"]["url"]
        reference = node["credentials"]["shopifyAccessTokenApi"]
        assert reference["name"] == f"{SLUG}-shopify-store-{store}"
    switch = next(node for node in nodes_of(reconcile, "switch")
                  if node["name"] == "Read orders changed since the cursor: pick the store")
    assert switch["parameters"]["numberOutputs"] == STORES


def test_win_back_code_created_in_every_store() -> None:
    win_back = workflows(STORES)["win-back"]
    discounts = [node["name"] for node in nodes_of(win_back, "httpRequest")
                 if node["name"].startswith("Create the contact's single-use discount code (")]
    assert len(discounts) == STORES
    # In a chain, so the steps after it run once, not once per store.
    assert targets(win_back, discounts[0]) == [
        "Create the contact's single-use discount code: next store"]


def test_one_store_keeps_single_names() -> None:
    order = workflows(1)["order-sync"]
    names = {node["name"] for node in order["nodes"]}
    assert "Shopify orders/create" in names
    assert not any("(store" in name for name in names)
    credentials = {reference["name"] for node in order["nodes"]
                   for reference in node.get("credentials", {}).values()}
    assert f"{SLUG}-shopify" in credentials


def test_setup_lists_store_variables() -> None:
    answers, plan, spec = load_case(PRESET, {})
    context = n8n.setup_context(answers, plan, spec)
    names = {variable["name"]: variable["en"] for variable in context["variables"]}
    for store in range(1, STORES + 1):
        assert f"RABT_SHOPIFY_SHOP_{store}" in names
    assert names["RABT_SHOPIFY_SHOP_2"].startswith("store 2: ")
    assert "RABT_SHOPIFY_SHOP" not in names
    assert context["store_count"] == STORES
    credentials = [item["name"] for item in context["credentials"]]
    assert [name for name in credentials if "-shopify" in name] == [
        f"{SLUG}-shopify-store-{store}" for store in range(1, STORES + 1)]


def test_budget_multiplies_reconciliation() -> None:
    answers, plan, spec = load_case(PRESET, {})
    rows = {row["key"]: row for row in budget.flow_budget(answers, plan, spec)}
    assert rows["reconciliation"]["runs"] == 24 * 30 * STORES
    assert rows["reconciliation"]["runs_formula"] == ("24 * 30 runs (every 60 minutes) "
                                                      "* 3 stores")
    assert rows["reconciliation"]["runs_formula_ar"].endswith("\u00d7 3 متاجر")
    single = load_case(PRESET, {"store_count": 1})
    one = {row["key"]: row for row in budget.flow_budget(*single)}
    assert one["reconciliation"]["runs"] == 24 * 30
    # monthly_orders is the total of all stores: event-driven runs do not change.
    assert rows["order-sync"]["runs"] == one["order-sync"]["runs"]


def _run_map_code(code: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    runner = f"""
const items = {json.dumps([{"json": item} for item in items])};
const $input = {{ all: () => items, first: () => items[0] }};
const $ = () => ({{ first: () => ({{ json: {{ rabt_shop: 'run-shop.myshopify.com' }} }}) }});
const run = new Function('$input', '$', {json.dumps(code)});
process.stdout.write(JSON.stringify(run($input, $).map((item) => item.json)));
"""
    result = subprocess.run(["node", "-e", runner], capture_output=True, text=True, check=True,
                            timeout=60)
    output: list[dict[str, Any]] = json.loads(result.stdout)
    return output


@pytest.mark.skipif(shutil.which("node") is None and not os.environ.get("CI"),
                    reason="Node.js is not installed")
def test_deal_key_uses_delivery_shop() -> None:
    order = workflows(STORES)["order-sync"]
    code = next(node for node in order["nodes"]
                if node["name"] == "Map the order to the deal, with its stage")
    body = {"id": 1001, "name": "#1001", "total_price": "10.00", "currency": "SAR",
            "financial_status": "paid", "customer": {"id": 7, "email": "a@example.com"}}
    mapped = _run_map_code(code["parameters"]["jsCode"], [
        {**body, "rabt_store": 2, "rabt_shop": "second.myshopify.com"},
        {**body, "rabt_store": 3, "rabt_shop": "third.myshopify.com"}])
    assert [item["key"] for item in mapped] == ["second.myshopify.com:1001",
                                                "third.myshopify.com:1001"]
    assert mapped[0]["record"]["shopify_order_id"] == "second.myshopify.com:1001"
    assert mapped[0]["refs"]["contact"] == "second.myshopify.com:7"


def test_three_store_project_validates(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from generator.cli import main

    result = CliRunner().invoke(main, ["new", "--no-input", "--output-dir", str(tmp_path),
                                       "--preset", PRESET])
    assert result.exit_code == 0, result.output
    project = tmp_path / SLUG
    report = validate_project(project)
    assert not report.problems
    readme = (project / "workflows" / "n8n" / "README.md").read_text(encoding="utf-8")
    assert "### 3 stores, one set of workflows" in readme
    assert "`RABT_SHOPIFY_WEBHOOK_SECRET_3`" in readme
    guide = (project / "workflows" / "README.ar.md").read_text(encoding="utf-8")
    assert "## 3 متاجر" in guide


# The store-id targets of a HubSpot project, which ids repeat across WooCommerce sites.
STORE_KEYED_TARGETS = ("ecom_customer_id", "external_order_id", "ecom_line_item_id",
                       "ecom_product_id")


def test_sheets_key_woocommerce_ids_by_shop(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from generator.cli import main

    result = CliRunner().invoke(main, [
        "new", "--no-input", "--output-dir", str(tmp_path), "--preset", PRESET,
        "--set", "platform=woocommerce", "--set", "store_count=2"])
    assert result.exit_code == 0, result.output
    workflows_dir = tmp_path / SLUG / "workflows"
    for sheet, keyed in (("zapier-build-sheet.md", "(store key: `<shop domain>:"),
                         ("tray-build-sheet.md", "(store key: `<shop domain>:"),
                         ("zapier-build-sheet.ar.md", "(مفتاح المتجر: `<shop domain>:"),
                         ("tray-build-sheet.ar.md", "(مفتاح المتجر: `<shop domain>:")):
        text = (workflows_dir / sheet).read_text(encoding="utf-8")
        for target in STORE_KEYED_TARGETS:
            rows = [line for line in text.splitlines() if line.startswith("|")
                    and f"| `{target}` (" in line]
            assert rows, f"{sheet} maps no {target}"
            assert all(keyed in row for row in rows), (sheet, target)
        assert "`shop-2.example.sa:1234`" in text
    readme = (workflows_dir / "README.md").read_text(encoding="utf-8")
    assert "with several WooCommerce\n  stores, use n8n, Zapier or Tray" in readme
    assert "the fields the build sheets mark \"store key\" hold" in readme
    readme_ar = (workflows_dir / "README.ar.md").read_text(encoding="utf-8")
    assert "تحمل الحقول الموسومة «مفتاح المتجر»" in readme_ar


def test_one_store_sheets_keep_bare_ids(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from generator.cli import main

    result = CliRunner().invoke(main, [
        "new", "--no-input", "--output-dir", str(tmp_path), "--preset", PRESET,
        "--set", "platform=woocommerce", "--set", "store_count=1"])
    assert result.exit_code == 0, result.output
    text = (tmp_path / SLUG / "workflows" / "zapier-build-sheet.md").read_text(encoding="utf-8")
    assert "store key" not in text
