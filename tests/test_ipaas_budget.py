"""The operations budget: per-flow formulas, plan choice and the API break-even."""

from __future__ import annotations

from dataclasses import replace

from generator.ipaas import budget
from tests.ipaas_cases import load_case


def rows_by_key(orders: int) -> dict[str, dict[str, object]]:
    answers, plan, spec = load_case("shopify-growth", {})
    answers = replace(answers, monthly_orders=orders)
    return {row["key"]: row for row in budget.flow_budget(answers, plan, spec)}


def test_budget_contact_flow_hand_computed() -> None:
    # 1,000 orders * 1.2 customer events = 1,200 runs. The HubSpot contact blueprint
    # runs 4 modules (webhook, dedupe check, dedupe store, upsert): 4,800 operations;
    # Zapier bills the 3 actions: 3,600 tasks; n8n one execution per run.
    row = rows_by_key(1000)["contact-sync"]
    assert row["runs"] == 1200
    assert row["make"] == 4800
    assert row["zapier"] == 3600
    assert row["n8n_cloud"] == 1200
    assert row["make_formula"] == "runs * 4"


def test_budget_order_flow_counts_line_items() -> None:
    # 1,000 orders * 3 events = 3,000 runs with 7 modules each, and 7,500 line items
    # (3,000 * 2.5) with 2 modules each (upsert, associate): 21,000 + 15,000.
    row = rows_by_key(1000)["order-sync"]
    assert row["runs"] == 3000
    assert row["records"] == 7500
    assert row["make"] == 36000


def test_budget_scheduled_flow_runs_daily() -> None:
    row = rows_by_key(1000)["win-back"]
    assert row["runs"] == 30
    assert row["n8n_cloud"] == 30
    assert row["records"] == 650


def test_budget_totals_sum_rows() -> None:
    rows = list(rows_by_key(1000).values())
    totals = budget.totals(rows)  # type: ignore[arg-type]
    assert totals["make"] == sum(int(row["make"]) for row in rows)  # type: ignore[call-overload]


def test_budget_plan_within_allowance() -> None:
    plans = {plan["platform"]: plan for plan in budget.recommendations({"make": 10000})}
    assert plans["make"]["plan"] == "Core"
    assert plans["make"]["price_usd"] == 9.0
    assert plans["make"]["price_sar"] == 34
    assert plans["make"]["confirmed"] is True


def test_budget_plan_beyond_allowance_scales() -> None:
    plans = {plan["platform"]: plan for plan in budget.recommendations({"make": 25000})}
    assert plans["make"]["price_usd"] == 22.5


def test_budget_n8n_cloud_over_top_plan() -> None:
    plans = {plan["platform"]: plan for plan in budget.recommendations({"n8n_cloud": 90000})}
    assert plans["n8n_cloud"]["price_usd"] is None
    assert plans["n8n_cloud"]["plan"] == "Business or a custom contract"


def test_budget_break_even_above_small_store() -> None:
    answers, plan, spec = load_case("shopify-growth", {})
    orders = budget.break_even_orders(answers, plan, spec, "make")
    assert orders is not None
    assert 1000 < orders < 200000
    zapier = budget.break_even_orders(answers, plan, spec, "zapier")
    assert zapier is not None
    assert zapier < orders


def test_budget_context_keys() -> None:
    answers, plan, spec = load_case("jeddah-fashion-zoho", {})
    context = budget.ipaas_context(answers, plan, spec)
    assert set(context) == {"flows", "make", "budget", "n8n"}
    assert context["budget"]["monthly_orders"] == answers.monthly_orders
    assert "ticket-sync" in {row["key"] for row in context["budget"]["rows"]}


def test_runner_runs_inside_send_hours() -> None:
    # Every 15 minutes from 09:00 to 22:00 is 52 runs a day, 1,560 in 30 days.
    row = rows_by_key(1000)["abandoned-checkout-runner"]
    assert row["runs"] == 1560
