"""The operations budget: Zapier tasks from the build sheet, the plan chosen and the horizon."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from generator.cli import main
from generator.ipaas import budget, buildsheets
from generator.ipaas.flows import RECONCILE_EVERY_MINUTES, build_flows
from generator.ipaas.zapier_tasks import zap_tasks
from tests.ipaas_cases import load_case


def budget_of(preset: str, values: dict[str, Any]) -> dict[str, Any]:
    answers, plan, spec = load_case(preset, values)
    context: dict[str, Any] = budget.ipaas_context(answers, plan, spec)["budget"]
    return context


def rows_of(context: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {row["key"]: row for row in context["rows"]}


def render(tmp_path: Path, preset: str, *values: str) -> tuple[str, str, str]:
    """Return the English and Arabic budget and the English workflows guide, one line each."""
    args = ["new", "--no-input", "--preset", preset, "--output-dir", str(tmp_path)]
    for value in values:
        args += ["--set", value]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    project = next(path for path in tmp_path.iterdir() if path.is_dir())
    texts = [(project / name).read_text("utf-8") for name in
             ("docs/operations-budget.md", "docs/operations-budget.ar.md", "workflows/README.md")]
    english, arabic, guide = (" ".join(text.split()) for text in texts)
    return english, arabic, guide


def test_zapier_contact_zap_from_sheet() -> None:
    # The contact Zap: the signature Code step, Get Value, Set Value, the Formatter
    # and the request are billed; the dedupe Filter and the contact Filter are not.
    answers, plan, spec = load_case("shopify-growth", {})
    flow_set = build_flows(answers, plan, spec)
    sheet = {row["key"]: row for row in buildsheets.sheet_context(flow_set)}
    tasks = zap_tasks(flow_set.get("contact-sync"), sheet["contact-sync"])
    assert tasks.per_run == 5
    assert tasks.per_record == 0
    tools = [action["tool"] for row in sheet["contact-sync"]["steps"] for action in row["zapier"]]
    assert tools.count("Filter by Zapier") == 2


def test_zapier_shopify_waiting_zaps() -> None:
    # 4,000 orders: 18,000 checkout events at 7 tasks (signature, Get and Set Value,
    # the pending store, the delay, the latest-update read, the order check), then
    # 6,000 abandoned checkouts at 12 tasks on the no-order path, which reads the CRM's
    # consent before each of its two sends. No runner Zap.
    rows = rows_of(budget_of("shopify-growth", {}))
    cart = rows["abandoned-checkout"]
    assert cart["zapier"] == 18000 * 7 + 6000 * 12
    assert cart["zapier_formula"] == "runs * 7 + 6,000 records * 12"
    assert rows["abandoned-checkout-runner"]["zapier"] == 0
    # Post-purchase: 4,000 fulfilment events at 3 tasks, 4,000 orders at 12.
    assert rows["post-purchase"]["zapier"] == 4000 * 3 + 4000 * 12
    assert rows["post-purchase-runner"]["zapier"] == 0


def test_zapier_woocommerce_budget_numbers() -> None:
    # woo-startup on the iPaaS path: 150 orders, Zoho. The order Zap writes the
    # lines as one sales order through Code steps, so it has no per-record tasks, and
    # the deal's upsert body carries the contact link, so no link step is billed.
    context = budget_of("woo-startup", {"path": "ipaas"})
    rows = rows_of(context)
    assert context["monthly_orders"] == 150
    assert rows["order-sync"]["zapier"] == 450 * 14
    # Each send first reads the contact's consent in Zoho: one more task per record.
    assert rows["abandoned-checkout"]["zapier"] == 675 * 7 + 225 * 6
    assert rows["win-back"]["zapier"] == 30 * 2 + 98 * 4
    assert rows["reconciliation"]["make"] == 3780
    assert context["totals"] == {"make": 86896, "n8n_cloud": 4744, "zapier": 34730}


def test_budget_woocommerce_plan_chosen() -> None:
    # 4,744 executions fit n8n Cloud Pro ($60, SAR 225), the cheapest hosted fit.
    # Over 12 months: 4,250 + 12 * 225 = 6,950 against the API path's 40,800. With
    # HubSpot, which holds the data abroad anyway, a hosted plan may be recommended.
    context = budget_of("woo-startup", {"path": "ipaas", "crm": "hubspot"})
    overall = context["overall"]
    assert overall["platform"] == "n8n_cloud"
    assert overall["plan"] == "Pro"
    assert overall["reason"] == "cheapest_hosted"
    assert overall["horizon_total_sar"] == 6950
    assert overall["api_total_sar"] == 40800
    assert overall["api_cheaper"] is False


def test_budget_high_volume_self_hosted() -> None:
    # 60,000 orders: no hosted plan listed covers the volume, so self-hosted n8n is
    # recommended at its server price plus two hours of upkeep at SAR 300:
    # 4,250 + 12 * (150 + 600) = 13,250 over 12 months.
    context = budget_of("shopify-growth", {"path": "ipaas", "monthly_orders": 60000})
    hosted = [plan for plan in context["plans"] if plan["platform"] != "n8n_self_hosted"]
    assert [plan["price_sar"] for plan in hosted] == [None, None, None]
    overall = context["overall"]
    assert overall["platform"] == "n8n_self_hosted"
    assert overall["reason"] == "no_hosted_fits"
    assert overall["price_sar"] == 750
    assert overall["horizon_total_sar"] == 13250
    assert overall["api_cheaper"] is False
    assert context["break_even"]["n8n_self_hosted"] == {"orders": None, "priced_up_to": None,
                                                         "listed_up_to": None}


def test_budget_doc_high_volume(tmp_path: Path) -> None:
    english, arabic, _ = render(tmp_path, "shopify-growth", "path=ipaas",
                                "monthly_orders=60000")
    assert "**Recommended: n8n, self-hosted, Self-hosted server, SAR 750 a month " \
        "(unconfirmed).** No hosted plan listed here covers the estimate" in english
    assert "**التوصية: n8n مستضافة ذاتيًا، خادم مستضاف ذاتيًا، بسعر 750 ريالًا شهريًا " \
        "(غير مؤكد).** فلا تكفي الحجمَ المقدَّر أيُّ باقة مستضافة" in arabic
    # The claim states its server assumption and the monthly cost that would reverse it:
    # (40,800 - 4,250) / 12 = 3,045.83, so from SAR 3,045 a month.
    assert "- n8n, self-hosted: the estimate assumes one server at SAR 150 a month ($40.00, " \
        "an estimate, not a quote) and 2 hours of upkeep, SAR 750 a month at every volume, " \
        "or SAR 13,250 over 12 months with set-up. On that assumption the API path " \
        "(SAR 40,800) is not cheaper at any volume up to 200,000 orders a month." in english
    assert "the API path costs less once self-hosted n8n costs more than SAR 3,045 a month, " \
        "server and upkeep together." in english
    assert "وبهذا الافتراض لا يصبح مسار API (40,800 ريال) أقل تكلفة عند أي حجم حتى " \
        "200,000 طلب شهريًا" in arabic
    assert "متى تجاوزت تكلفة n8n المستضافة ذاتيًا 3,045 ريالًا شهريًا" in arabic
    # The old claim compared monthly running costs only and left set-up out.
    assert "is the cheaper route" not in english


@pytest.mark.parametrize("orders", [1000, 4000])
def test_budget_reconciliation_interval_and_replays(orders: int) -> None:
    context = budget_of("shopify-growth", {"monthly_orders": orders})
    rows = rows_of(context)
    reconcile = rows["reconciliation"]
    # The preset has three stores, and each store's reconciliation runs on its own.
    assert reconcile["runs"] == 24 * 60 // RECONCILE_EVERY_MINUTES * 30 * 3
    assert reconcile["runs_formula"] == (f"24 * 30 runs (every {RECONCILE_EVERY_MINUTES} "
                                         "minutes) * 3 stores")
    # Every changed order read is posted to the order flow once more.
    replays = rows[budget.REPLAY_ROW]
    assert replays["runs"] == reconcile["records"] == orders * 3
    assert replays["make"] == rows["order-sync"]["make"]
    assert replays["n8n_cloud"] == orders * 3


def test_make_guide_reconcile_interval(tmp_path: Path) -> None:
    english, arabic, guide = render(tmp_path, "shopify-growth")
    assert "every 15 minutes reads up to" not in guide
    assert f"Run it every {RECONCILE_EVERY_MINUTES} minutes, as the n8n workflow does and the " \
        "operations budget counts: that reads up to 2,400 changed orders a day." in guide
    assert f"The reconciliation runs every {RECONCILE_EVERY_MINUTES} minutes on every " \
        "platform" in english
    assert "Over 12 months, with the middle of the iPaaS set-up range (SAR 4,250), the " \
        "recommended plan costs SAR 13,250; the custom API path costs SAR 40,800" in english
    assert "مع منتصف نطاق تكلفة إعداد iPaaS (4,250 ريالًا)" in arabic


def test_zapier_larger_tiers_match_listed_plans() -> None:
    import re

    from generator.resources import load_data

    zapier = load_data("ipaas/plans")["platforms"]["zapier"]
    names = "|".join(re.escape(plan["name"]) for plan in zapier["plans"])
    for language in ("en", "ar"):
        text = zapier["larger_tiers"][language]
        # A tier size next to a listed plan's name would contradict the plan's own row.
        assert re.search(rf"(?:{names})\s*(?:from|up to|حتى|ابتداءً)", text) is None, text
    english = zapier["larger_tiers"]["en"]
    assert "each plan's smallest tier" in english


def test_budget_zoho_recommends_self_hosted() -> None:
    # Zoho in its Saudi data centre keeps the CRM's data in the Kingdom, so the
    # budget does not recommend n8n Cloud Business (SAR 3,000), the cheapest hosted
    # fit at 900 orders, which runs in Germany: only self-hosted n8n remains.
    context = budget_of("jeddah-fashion-zoho", {})
    assert context["in_kingdom"] is True
    plans = {plan["platform"]: plan for plan in context["plans"]}
    assert plans["n8n_cloud"]["price_sar"] == 3000
    overall = context["overall"]
    assert overall["platform"] == "n8n_self_hosted"
    assert overall["reason"] == "residency"
    assert overall["unlisted_cheaper"] == []


def test_budget_custom_recommends_self_hosted() -> None:
    context = budget_of("woo-startup", {"path": "ipaas", "crm": "custom"})
    assert context["in_kingdom"] is True
    assert context["overall"]["platform"] == "n8n_self_hosted"
    assert context["overall"]["reason"] == "residency"


def test_budget_hosted_plans_name_location() -> None:
    context = budget_of("woo-startup", {"path": "ipaas", "crm": "hubspot"})
    assert context["in_kingdom"] is False
    locations = {plan["platform"]: plan["data_location"] for plan in context["plans"]}
    assert locations["n8n_self_hosted"]["in_kingdom"] is True
    for name in ("make", "n8n_cloud", "zapier"):
        assert locations[name]["in_kingdom"] is False
        assert locations[name]["source"]
        assert locations[name]["en"]
        assert locations[name]["ar"]
    assert "Germany" in locations["n8n_cloud"]["en"]
    assert "United States" in locations["zapier"]["en"]
    assert locations["n8n_cloud"]["confirmed"] is False


def test_budget_doc_residency(tmp_path: Path) -> None:
    english, arabic, _ = render(tmp_path, "jeddah-fashion-zoho")
    assert "**Recommended: n8n, self-hosted, Self-hosted server, SAR 750 a month " \
        "(unconfirmed).** The data must stay in the Kingdom" in english
    assert "Zoho CRM in its Saudi data centre" in english
    assert "only self-hosted n8n on a server in the Kingdom is recommended" in english
    assert "إذ يجب أن تبقى البيانات داخل المملكة" in arabic
    assert "ولا يُوصى إلا باستضافة n8n ذاتيًا على خادم داخل المملكة" in arabic
    # The hosted platforms' larger plans are not suggested when they cannot be used.
    assert "ask Make for the price of a larger plan" not in english
    assert "| Where the data is processed |" in english
    assert "n8n's cloud in Germany (Microsoft Azure Germany West Central and Hetzner, as " \
        "n8n's sub-processor list names them), outside the Kingdom [U]" in english
    assert "| مكان معالجة البيانات |" in arabic
    assert "، خارج المملكة [U]" in arabic


def test_budget_doc_pdpl_note_on_hosted(tmp_path: Path) -> None:
    english, arabic, _ = render(tmp_path, "woo-startup", "path=ipaas", "crm=hubspot")
    assert "**Recommended: n8n Cloud, Pro, SAR 225 a month (unconfirmed).**" in english
    assert "PDPL: n8n Cloud processes the data in n8n's cloud in Germany" in english
    assert "[U], outside the Kingdom, so each run is a transfer of the customers' personal " \
        "data outside the Kingdom" in english
    assert "SDAIA's standard contractual clauses" in english
    assert "نظام حماية البيانات الشخصية: تعالج n8n Cloud البيانات في سحابة n8n في ألمانيا" \
        in arabic
    assert "كالبنود التعاقدية القياسية الصادرة عن سدايا" in arabic
