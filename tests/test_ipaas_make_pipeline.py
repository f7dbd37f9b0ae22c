"""Make on HubSpot sends the order pipeline beside the deal stage, or stops without its id."""

from __future__ import annotations

import json
from typing import Any

from generator.ipaas.make_records import PIPELINE_MISSING
from tests.test_ipaas_make_records import (
    blueprints,
    blueprints_with_ids,
    body_of,
    modules,
    name_of,
    passes,
)
from tests.test_ipaas_n8n_stages import STAGE_IDS

ORDER = {"1": {"id": 5001, "name": "#1001", "total_price": "10.00", "email": "a@example.sa",
               "financial_status": "paid", "fulfillment_status": None,
               "created_at": "2026-01-05T10:00:00+03:00",
               "customer": {"id": "77", "email": "a@example.sa", "phone": "0501234567"},
               "line_items": []}}


def deal_modules(blueprint: dict[str, Any]) -> list[dict[str, Any]]:
    return [module for module in modules(blueprint["flow"])
            if name_of(module) == "Create or update the deal"]


def test_deal_body_carries_pipeline() -> None:
    deals = deal_modules(blueprints_with_ids("shopify-growth")["order-sync"])
    assert deals
    for module in deals:
        properties = body_of(module, ORDER)["inputs"][0]["properties"]
        assert properties["pipeline"] == "77001"
        assert properties["dealstage"] in STAGE_IDS.values()
        assert PIPELINE_MISSING not in json.dumps(module.get("filter"))


def test_deal_stops_without_pipeline_id() -> None:
    deals = deal_modules(blueprints("shopify-growth")["order-sync"])
    assert deals
    for module in deals:
        assert module["filter"]["name"].startswith(PIPELINE_MISSING)
        assert not passes(module["filter"], ORDER)
        assert '"pipeline"' not in module["mapper"]["jsonStringBodyContent"]


def test_zoho_deal_unchanged() -> None:
    for module in deal_modules(blueprints("jeddah-fashion-zoho")["order-sync"]):
        assert PIPELINE_MISSING not in json.dumps(module.get("filter"))
