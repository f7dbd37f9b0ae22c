"""The operations budget: per-flow formulas, plan choice and the API break-even."""

from __future__ import annotations

import math
import re
from dataclasses import replace
from pathlib import Path

from click.testing import CliRunner

from generator.cli import main
from generator.ipaas import budget, make
from generator.ipaas.flows import build_flows
from tests.ipaas_cases import load_case


def rows_by_key(orders: int) -> dict[str, dict[str, object]]:
    answers, plan, spec = load_case("shopify-growth", {})
    answers = replace(answers, monthly_orders=orders)
    return {row["key"]: row for row in budget.flow_budget(answers, plan, spec)}


def test_budget_contact_flow_hand_computed() -> None:
    # 1,000 orders * 1.2 customer events = 1,200 runs. When every record is written,
    # the HubSpot contact blueprint runs 4 modules: webhook, dedupe check, upsert and
    # the dedupe store on the batch check's success route. The failure report is not
    # counted. That gives 4,800 operations and one n8n execution per run. The Zap
    # bills 5 tasks a run: the signature Code step, Get Value, Set Value, the
    # Formatter and the request; its two Filters are free. 6,000 tasks.
    row = rows_by_key(1000)["contact-sync"]
    assert row["runs"] == 1200
    assert row["make"] == 4800
    assert row["zapier"] == 6000
    assert row["n8n_cloud"] == 1200
    assert row["make_formula"] == "runs * 4"


def batch_router(rest: list[dict[str, object]]) -> dict[str, object]:
    report = {"module": "http:MakeRequest", "metadata": {"designer": {"name": "Report"}},
              "filter": {"name": "Some records failed", "conditions": []}}
    return {"module": "builtin:BasicRouter",
            "metadata": {"designer": {"name": "Check the batch results"}},
            "routes": [{"flow": [report]}, {"flow": rest}]}


def plain(name: str, filter_name: str = "") -> dict[str, object]:
    module: dict[str, object] = {"module": name, "metadata": {"designer": {"name": name}}}
    if filter_name:
        module["filter"] = {"name": filter_name, "conditions": []}
    return module


def test_budget_batch_check_counts_success_route() -> None:
    # Webhook and request, then the router: its failure route has 1 module, its
    # success route 2 (a second request and the dedupe store). A normal run: 4.
    written = [plain("http:MakeRequest", "Email only; Every record written"),
               plain("datastore:AddRecord")]
    flow = [plain("gateway:CustomWebHook"), plain("http:MakeRequest"), batch_router(written)]
    count = budget._count_modules(flow)
    assert count.per_run == 4
    assert count.per_item == 0


def test_budget_batch_check_short_success_route() -> None:
    # The success route (1 module) is shorter than the failure route (2 modules):
    # still only the success route is counted.
    router = batch_router([plain("datastore:AddRecord", "Every record written")])
    router["routes"][0]["flow"].append(plain("http:MakeRequest"))  # type: ignore[index]
    count = budget._count_modules([plain("gateway:CustomWebHook"), router])
    assert count.per_run == 2


def test_budget_lone_failure_report_skipped() -> None:
    # After the last batch request with nothing behind it, the report carries the
    # failure filter and no router: a normal run skips it.
    flow = [plain("gateway:CustomWebHook"), plain("http:MakeRequest"),
            plain("http:MakeRequest", "Some records failed")]
    assert budget._count_modules(flow).per_run == 2


def test_budget_order_flow_counts_line_items() -> None:
    # 1,000 orders * 3 events = 3,000 runs, and 7,500 line items (3,000 * 2.5), each
    # with its own modules inside the line-item iterator.
    row = rows_by_key(1000)["order-sync"]
    assert row["runs"] == 3000
    assert row["records"] == 7500
    assert " + records * " in str(row["make_formula"])
    assert row["make"] == units_from_formula(str(row["make_formula"]), 3000, 7500)


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


def test_budget_plan_smallest_covering_tier() -> None:
    # 25,000 operations fit no 10,000 plan: the smallest tier that covers them is
    # Core 40,000, not Core with 15,000 extra operations.
    plans = {plan["platform"]: plan for plan in budget.recommendations({"make": 25000})}
    assert plans["make"]["plan"] == "Core 40,000"
    assert plans["make"]["included"] == 40000
    assert plans["make"]["price_usd"] == 36.0
    assert plans["make"]["confirmed"] is False


def test_budget_make_beyond_largest_tier() -> None:
    # 614,801 operations used to be priced as Core plus 604,801 extra operations,
    # although automatic extra operations stop at the plan's own 10,000.
    plans = {plan["platform"]: plan for plan in budget.recommendations({"make": 614801})}
    make = plans["make"]
    assert make["plan"] is None
    assert make["price_usd"] is None
    assert make["beyond_listed"] is True
    assert make["largest_plan"] == "Core 150,000"
    assert make["largest_price_sar"] == 506
    assert make["api_cheaper"] is False
    assert "30%" in make["overage"]["en"]


def test_budget_n8n_cloud_over_top_plan() -> None:
    plans = {plan["platform"]: plan for plan in budget.recommendations({"n8n_cloud": 90000})}
    assert plans["n8n_cloud"]["price_usd"] is None
    assert plans["n8n_cloud"]["plan"] is None
    assert plans["n8n_cloud"]["beyond_listed"] is True
    assert plans["n8n_cloud"]["largest_plan"] == "Business"
    # Business costs $800 (SAR 3,000) a month. Over 12 months with set-up, that is
    # 4,250 + 12 * 3,000 = 40,250, less than the API path's 30,000 + 12 * 900 = 40,800,
    # so the API path is not surely cheaper although it costs less each month.
    assert plans["n8n_cloud"]["api_cheaper"] is False
    assert plans["n8n_cloud"]["horizon_total_sar"] is None


def test_budget_zapier_within_top_plan() -> None:
    plans = {plan["platform"]: plan for plan in budget.recommendations({"zapier": 1500})}
    assert plans["zapier"]["plan"] == "Team"
    assert plans["zapier"]["price_usd"] == 104.0
    assert plans["zapier"]["beyond_listed"] is False


def test_budget_zapier_beyond_self_serve() -> None:
    # The verifier's case: 394,533 tasks used to be priced linearly on Professional
    # (750 tasks for $30), about $15,781 a month.
    plans = {plan["platform"]: plan for plan in budget.recommendations({"zapier": 394533})}
    assert plans["zapier"]["plan"] is None
    assert plans["zapier"]["price_usd"] is None
    assert plans["zapier"]["price_sar"] is None
    assert plans["zapier"]["beyond_listed"] is True
    assert plans["zapier"]["largest_plan"] == "Team"
    assert plans["zapier"]["largest_units"] == 2000
    # Team costs $104 (SAR 390), less than the API path's SAR 900, so no claim.
    assert plans["zapier"]["api_cheaper"] is False
    assert "2M tasks" in plans["zapier"]["larger_tiers"]["en"]


def test_budget_doc_no_enterprise_claim(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["new", "--no-input", "--preset", "shopify-growth",
                                       "--output-dir", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    project = next(path for path in tmp_path.iterdir() if path.is_dir())
    english = " ".join((project / "docs/operations-budget.md").read_text("utf-8").split())
    arabic = " ".join((project / "docs/operations-budget.ar.md").read_text("utf-8").split())
    assert "enterprise" not in english.lower()
    assert "مؤسسي" not in arabic
    # The Make volume is more than the largest Make tier listed; Core is not offered.
    assert "operations | none listed: more than the largest plan listed (Core 150,000" \
        in english
    assert "tasks a month is more than its largest plan listed here." in english
    assert "The plans listed here are each plan's smallest tier" in english
    assert "Over 12 months, set-up included, the custom API path costs SAR 40,800; compare " \
        "that with this platform's price for the volume, set-up included." in english
    assert "وتبلغ تكلفة مسار API المخصص على مدى 12 شهرًا مع الإعداد 40,800 ريال" in arabic


def test_budget_break_even_make_listed_tiers() -> None:
    # Make's largest listed tier (150,000 operations) ends at about 450 orders a month
    # with three stores; with extra operations up to twice that tier it is priced up
    # to about 1,100. No crossover is claimed above it.
    answers, plan, spec = load_case("shopify-growth", {})
    make_point = budget.break_even(answers, plan, spec, "make")
    assert make_point == {"orders": None, "priced_up_to": 1100, "listed_up_to": 450}


def test_budget_break_even_n8n_cloud() -> None:
    # n8n Cloud's largest listed plan, Business, includes 40,000 executions. About
    # 2,610 fixed (three stores' reconciliation) plus 25.25 per order (replays
    # included) fill it at about 1,480 orders, not at a 250-order grid step.
    answers, plan, spec = load_case("shopify-growth", {})
    point = budget.break_even(answers, plan, spec, "n8n_cloud")
    assert point == {"orders": None, "priced_up_to": 1480, "listed_up_to": None}
    context = budget.ipaas_context(answers, plan, spec)
    assert list(context["budget"]["break_even"]) == ["make", "n8n_cloud", "zapier",
                                                     "n8n_self_hosted"]


def test_budget_doc_n8n_cloud_break_even(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["new", "--no-input", "--preset", "shopify-growth",
                                       "--output-dir", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    project = next(path for path in tmp_path.iterdir() if path.is_dir())
    english = " ".join((project / "docs/operations-budget.md").read_text("utf-8").split())
    arabic = " ".join((project / "docs/operations-budget.ar.md").read_text("utf-8").split())
    assert ("- n8n Cloud: the iPaaS path stays cheaper up to about 1,480 orders a month, where "
            "its largest plan listed ends") in english
    assert "- n8n Cloud: يبقى مسار iPaaS أقل تكلفة حتى نحو 1,480 طلبًا شهريًا" in arabic


def test_budget_break_even_priced_tiers_only() -> None:
    # The scheduled flows alone need more than Team's 2,000 tasks, so no volume is
    # priced and no crossover is claimed.
    answers, plan, spec = load_case("shopify-growth", {})
    zapier = budget.break_even(answers, plan, spec, "zapier")
    assert zapier["orders"] is None
    assert zapier["priced_up_to"] == 0


def units_from_formula(formula: str, runs: int, records: int) -> int:
    """Evaluate a budget formula such as ``runs * 7 + records * 2`` or ``6,000 records * 2``."""
    total = 0
    if formula.startswith("no Zap"):
        return 0
    for term in formula.split(" + "):
        name, factor = term.split(" * ")
        if name.endswith(" records"):
            count = int(name.removesuffix(" records").replace(",", ""))
        else:
            count = runs if name == "runs" else records
        total += count * int(factor)
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


def test_runner_runs_around_clock() -> None:
    # Every 15 minutes around the clock is 96 runs a day, 2,880 in 30 days; the
    # quiet hours hold the messages back, not the runs.
    row = rows_by_key(1000)["abandoned-checkout-runner"]
    assert row["runs"] == 2880
    assert row["runs_formula"] == "96 * 30 runs (every 15 minutes)"


def test_runner_runs_match_guide(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["new", "--no-input", "--preset", "shopify-growth",
                                       "--output-dir", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    project = next(path for path in tmp_path.iterdir() if path.is_dir())
    guide = " ".join((project / "workflows/README.md").read_text("utf-8").split())
    arabic = " ".join((project / "workflows/README.ar.md").read_text("utf-8").split())
    scheduled = re.search(r"Run the `abandoned-checkout-runner` every (\d+) minutes", guide)
    assert scheduled is not None
    minutes = int(scheduled.group(1))
    assert f"شغّل `abandoned-checkout-runner` كل {minutes} دقيقة طوال اليوم" in arabic
    budget_text = (project / "docs/operations-budget.md").read_text("utf-8")
    runs = 24 * 60 // minutes * budget.DAYS_PER_MONTH
    assert f"(`abandoned-checkout-runner`) | {runs:,} = " in budget_text


def test_post_purchase_runs_per_fulfilment() -> None:
    # Shopify sends one fulfilment event per order (the assumption is 1), so 1,000 orders
    # give 1,000 webhook runs: 1,000 n8n executions, each waiting inside for both steps.
    rows = rows_by_key(1000)
    webhook = rows["post-purchase"]
    assert webhook["runs"] == 1000
    assert webhook["runs_formula"] == "orders * 1 (fulfilment events)"
    assert webhook["records"] == 0
    assert webhook["n8n_cloud"] == 1000


def test_post_purchase_runner_daily() -> None:
    # The Make runner runs once a day (30 runs) and sends each of the 1,000 fulfilled
    # orders once per step. n8n has no runner, and neither has Zapier: its Zap delays
    # inside the webhook's run, so the per-order tasks are on the webhook's row.
    rows = rows_by_key(1000)
    runner = rows["post-purchase-runner"]
    assert runner["runs"] == 30
    assert runner["records"] == 1000
    assert runner["n8n_cloud"] == 0
    assert runner["zapier"] == 0
    # Each of the two sends reads the contact's consent in the CRM first: 2 more tasks.
    assert rows["post-purchase"]["zapier_formula"] == "runs * 3 + 1,000 records * 12"


def test_post_purchase_order_updates_woocommerce() -> None:
    # WooCommerce sends every order.updated to the flow: 3 order events - 1 created = 2
    # updates per order, 800 orders * 2 = 1,600 runs.
    answers, plan, spec = load_case("woo-startup", {"monthly_orders": 800})
    rows = {row["key"]: row for row in budget.flow_budget(answers, plan, spec)}
    assert rows["post-purchase"]["runs"] == 1600
    assert rows["post-purchase"]["runs_formula"] == "orders * 2 (order updates)"
    assert rows["post-purchase"]["n8n_cloud"] == 1600
    assert rows["post-purchase-runner"]["records"] == 800


def module(name: str, **extra: object) -> dict[str, object]:
    return {"module": name, "metadata": {"designer": {}}, **extra}


def test_count_modules_after_search() -> None:
    # One route per step: a data store search (once per run), then per found order a
    # contact read, an iterator and a send. Route 1 has 1 + 3 modules, route 2 too.
    route = [module("datastore:SearchRecord"), module("http:MakeRequest"),
             module("builtin:BasicFeeder"), module("http:MakeRequest")]
    router = module("builtin:BasicRouter", routes=[{"flow": route}, {"flow": route}])
    count = budget._count_modules([router])
    assert count.per_run == 2
    assert count.per_item == 6
    assert count.feeders == 0
    assert count.item_feeders == 2
    units = budget._platform_units(30, 1000, count, scheduled=True)
    assert units["make"] == 30 * 2 + 1000 * 6


def test_budget_doc_counts_success_route(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["new", "--no-input", "--preset", "shopify-growth",
                                       "--output-dir", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    project = next(path for path in tmp_path.iterdir() if path.is_dir())
    english = " ".join((project / "docs/operations-budget.md").read_text("utf-8").split())
    arabic = " ".join((project / "docs/operations-budget.ar.md").read_text("utf-8").split())
    assert "only the route of a batch with every record written is counted" in english
    assert "ولا يُحتسب إلا مسار الدفعة التي كُتبت سجلاتها كلها" in arabic


def support_rows(values: dict[str, object]) -> dict[str, dict[str, object]]:
    answers, plan, spec = load_case("support-heavy", values)
    return {row["key"]: row for row in budget.flow_budget(answers, plan, spec)}


def test_sla_check_counted_on_n8n() -> None:
    # 24 * 60 / 15 = 96 checks a day, 2,880 a month, each one n8n execution.
    row = support_rows({})[budget.SLA_CHECK_ROW]
    assert row["runs"] == 96 * 30
    assert row["n8n_cloud"] == 2880
    assert row["runs_formula"] == "96 * 30 runs (every 15 minutes)"
    # The Zapier build sheet has no scheduled check, so it bills no tasks.
    assert row["zapier"] == 0


def test_sla_check_counted_on_make() -> None:
    # The scenario's modules per run (the Zoho token route, the search and the
    # feeder), 96 runs a day; the modules per ticket found are left out.
    answers, plan, spec = load_case("support-heavy", {})
    blueprint = make.blueprints(build_flows(answers, plan, spec))[make.SLA_CHECK_STEM]
    per_run = budget._count_modules(blueprint["flow"]).per_run
    row = support_rows({})[budget.SLA_CHECK_ROW]
    assert per_run == 7
    assert row["make_formula"] == "runs * 7"
    assert row["make"] == 2880 * 7


def test_sla_check_once_for_all_stores() -> None:
    # The check reads the CRM, so a second store adds no runs.
    row = support_rows({"store_count": 2})[budget.SLA_CHECK_ROW]
    assert row["runs"] == 2880


def test_sla_check_row_after_ticket_flow() -> None:
    keys = list(support_rows({}))
    assert keys[keys.index("ticket-sync") + 1] == budget.SLA_CHECK_ROW


def test_sla_check_in_error_flow_runs() -> None:
    rows = support_rows({})
    rate = budget._assumptions()["failure_rate"]
    shown = sum(int(row["runs"]) for key, row in rows.items() if key != "error-alert")
    assert rows["error-alert"]["runs"] == math.ceil(round(shown * rate, 6))


def test_no_sla_check_without_tickets() -> None:
    rows = support_rows({"support_channels": [], "support_agents": 0})
    assert budget.SLA_CHECK_ROW not in rows
