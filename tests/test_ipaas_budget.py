"""The operations budget: per-flow formulas, plan choice and the API break-even."""

from __future__ import annotations

import math
import re
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
    assert plans["n8n_cloud"]["plan"] is None
    assert plans["n8n_cloud"]["beyond_self_serve"] is True
    assert plans["n8n_cloud"]["largest_plan"] == "Business"


def test_budget_zapier_within_top_plan() -> None:
    plans = {plan["platform"]: plan for plan in budget.recommendations({"zapier": 1500})}
    assert plans["zapier"]["plan"] == "Team"
    assert plans["zapier"]["price_usd"] == 104.0
    assert plans["zapier"]["beyond_self_serve"] is False


def test_budget_zapier_beyond_self_serve() -> None:
    # The verifier's case: 394,533 tasks used to be priced linearly on Professional
    # (750 tasks for $30), about $15,781 a month.
    plans = {plan["platform"]: plan for plan in budget.recommendations({"zapier": 394533})}
    assert plans["zapier"]["plan"] is None
    assert plans["zapier"]["price_usd"] is None
    assert plans["zapier"]["price_sar"] is None
    assert plans["zapier"]["beyond_self_serve"] is True
    assert plans["zapier"]["largest_plan"] == "Team"
    assert plans["zapier"]["largest_units"] == 2000


def test_budget_break_even_above_small_store() -> None:
    answers, plan, spec = load_case("shopify-growth", {})
    make_point = budget.break_even(answers, plan, spec, "make")
    assert make_point["orders"] is not None
    assert 1000 < make_point["orders"] < 200000
    assert make_point["priced_up_to"] is None


def test_budget_break_even_priced_tiers_only() -> None:
    # The scheduled flows alone need more than Team's 2,000 tasks, so no volume is
    # priced and no crossover is claimed.
    answers, plan, spec = load_case("shopify-growth", {})
    zapier = budget.break_even(answers, plan, spec, "zapier")
    assert zapier["orders"] is None
    assert zapier["priced_up_to"] == 0


def units_from_formula(formula: str, runs: int, records: int) -> int:
    """Evaluate a budget formula such as ``runs * 7 + records * 2``."""
    total = 0
    for term in formula.split(" + "):
        name, factor = term.split(" * ")
        total += (runs if name == "runs" else records) * int(factor)
    return total


def test_budget_units_match_shown_figures() -> None:
    # 6,000 orders gave an error flow of 1,271.4 runs, shown as 1,272, while its
    # units used 1,271.4 (3,815 operations instead of 3 * 1,272 = 3,816).
    for orders in (4000, 6000, 1234):
        for row in rows_by_key(orders).values():
            runs, records = int(row["runs"]), int(row["records"])  # type: ignore[call-overload]
            assert row["make"] == units_from_formula(str(row["make_formula"]), runs, records), row
            assert row["zapier"] == units_from_formula(str(row["zapier_formula"]), runs,
                                                       records), row


def test_budget_error_flow_from_rows() -> None:
    rows = rows_by_key(6000)
    others = sum(int(row["runs"]) for key, row in rows.items()  # type: ignore[call-overload]
                 if key != "error-alert")
    assert rows["error-alert"]["runs"] == math.ceil(others * 0.01)
    assert rows["error-alert"]["runs_formula"] == "runs above * 0.01 failure rate"


def test_budget_arabic_formulas() -> None:
    rows = rows_by_key(1000)
    assert rows["win-back"]["runs_formula_ar"] == "30 تشغيلًا، مرة كل يوم"
    times = budget.TIMES
    assert rows["win-back"]["records_formula_ar"] == (
        f"الطلبات {times} 0.65 (المشترون الذين لا يعيدون الشراء)")
    assert rows["contact-sync"]["make_formula_ar"] == f"مرات التشغيل {times} 4"
    for row in rows.values():
        for name in ("runs_formula_ar", "records_formula_ar", "make_formula_ar",
                     "zapier_formula_ar"):
            text = str(row[name])
            assert not re.search(r"\b(runs|records|orders|daily|buyers)\b", text), (name, text)


def test_budget_context_keys() -> None:
    answers, plan, spec = load_case("jeddah-fashion-zoho", {})
    context = budget.ipaas_context(answers, plan, spec)
    assert set(context) == {"flows", "make", "budget", "n8n", "dedupe_ttl_days"}
    assert context["budget"]["monthly_orders"] == answers.monthly_orders
    assert "ticket-sync" in {row["key"] for row in context["budget"]["rows"]}


def test_runner_runs_inside_send_hours() -> None:
    # Every 15 minutes from 09:00 to 22:00 is 52 runs a day, 1,560 in 30 days.
    row = rows_by_key(1000)["abandoned-checkout-runner"]
    assert row["runs"] == 1560
