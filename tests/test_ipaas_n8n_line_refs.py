"""Product references of the n8n line-item mapping node, run with node on sample orders.

Each line of an order names its own product, so the node's ``refs`` and ``ref_keys``
must carry the line's variant or product id, never the order's id.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from generator.ipaas import n8n
from generator.spec import build_desired_state
from tests.ipaas_cases import load_case
from tests.test_ipaas_n8n_run import node_code, run_chain

MAPPER = "Map each line item, linked by SKU"

WOO_ORDER = {
    "id": 5101, "number": "5101", "customer_id": 77, "status": "processing",
    "currency": "SAR", "total": "215.00", "billing": {"email": "sara@example.com"},
    "line_items": [
        # A simple product: WooCommerce writes 0 for the absent variation.
        {"id": 301, "product_id": 210, "variation_id": 0, "sku": "", "quantity": 2,
         "price": 65, "name": "Oud 50 ml"},
        {"id": 302, "product_id": 220, "variation_id": 225, "sku": "MUSK-100",
         "quantity": 1, "price": 85, "name": "Musk 100 ml"},
    ],
}
SHOPIFY_ORDER = {
    "id": 5900000000001, "name": "#1001", "financial_status": "paid",
    "currency": "SAR", "total_price": "290.00", "email": "sara@example.com",
    "line_items": [
        {"id": 14000000000001, "product_id": 8000000000001, "variant_id": 44000000000001,
         "sku": "OUD-50", "quantity": 1, "price": "145.00", "name": "Oud - 50 ml"},
        {"id": 14000000000002, "product_id": 8000000000001, "variant_id": 44000000000002,
         "sku": "OUD-100", "quantity": 1, "price": "145.00", "name": "Oud - 100 ml"},
    ],
}
CASES = [
    ("woo-hubspot", "woo-startup", {"path": "ipaas", "crm": "hubspot"}, WOO_ORDER,
     {"301": "210", "302": "225"}),
    ("woo-custom", "woo-startup", {"path": "ipaas", "crm": "custom"}, WOO_ORDER,
     {"301": "210", "302": "225"}),
    # One store: the multi-store nodes have tests of their own.
    ("shopify-hubspot", "shopify-growth", {"store_count": 1}, SHOPIFY_ORDER,
     {"14000000000001": "44000000000001", "14000000000002": "44000000000002"}),
    ("shopify-custom", "shopify-growth", {"path": "ipaas", "crm": "custom", "store_count": 1},
     SHOPIFY_ORDER,
     {"14000000000001": "44000000000001", "14000000000002": "44000000000002"}),
]


def mapped_lines(preset: str, values: dict[str, Any], order: dict[str, Any]) -> list[Any]:
    answers, plan, spec = load_case(preset, values)
    files = n8n.files(answers, plan, spec, build_desired_state(spec, plan))
    data = json.loads(files["workflows/n8n/order-sync.json"])
    return [item for item in
            run_chain([(MAPPER, node_code(data, MAPPER), None)], [order])]


@pytest.mark.parametrize(("preset", "values", "order", "expected"),
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_line_product_ref_per_line(preset: str, values: dict[str, Any],
                                   order: dict[str, Any], expected: dict[str, str]) -> None:
    lines = mapped_lines(preset, values, order)
    assert {line["key"]: line["refs"]["product"] for line in lines} == expected
    for line in lines:
        product_values = [value for _, value in line["ref_keys"]["product"]]
        assert product_values == [expected[line["key"]]]
        assert str(order["id"]) not in product_values


@pytest.mark.parametrize(("preset", "values", "order"),
                         [case[1:4] for case in CASES], ids=[case[0] for case in CASES])
def test_line_order_ref_is_order_id(preset: str, values: dict[str, Any],
                                    order: dict[str, Any]) -> None:
    lines = mapped_lines(preset, values, order)
    assert len(lines) == 2
    assert [line["refs"]["order"] for line in lines] == [str(order["id"])] * 2
