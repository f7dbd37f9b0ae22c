"""The budget's plan ends, extra operations and upkeep at 450, 500 and 4,000 orders."""

from __future__ import annotations

from pathlib import Path

import pytest

from generator.ipaas import budget
from tests.ipaas_cases import load_case
from tests.test_ipaas_budget_plans import budget_of, render


def test_plan_end_not_below_recommended_volume(tmp_path: Path) -> None:
    # 450 orders need just under 150,000 operations, which Core 150,000 covers. The document used
    # to say that plan ends at about 250 orders, a 250-order grid step below the volume.
    context = budget_of("shopify-growth", {"monthly_orders": 450})
    assert context["overall"]["plan"] == "Core 150,000"
    assert context["break_even"]["make"] == {"orders": None, "priced_up_to": 1100,
                                             "listed_up_to": 450}
    english, arabic, _ = render(tmp_path, "shopify-growth", "monthly_orders=450",
                                "project_slug=sg-450")
    assert "- Make: the iPaaS path stays cheaper up to about 1,100 orders a month, where its " \
        "largest plan listed ends with extra operations (without them, about 450 orders)" \
        in english
    assert "- Make: يبقى مسار iPaaS أقل تكلفة حتى نحو 1,100 طلب شهريًا حيث تنتهي أكبر باقة " \
        "مدرجة لها مع عمليات إضافية (ودونها نحو 450 طلبًا)" in arabic
    assert "up to about 250 orders" not in english
    assert "n8n Cloud: the iPaaS path stays cheaper up to about 1,480 orders a month" in english


def test_round_down_keeps_covered_volume() -> None:
    # A plan that covers the project's 455 orders never ends below 455 in the document.
    answers, _, _ = load_case("shopify-growth", {"monthly_orders": 455})
    assert budget._round_down(458, answers, covered=True) == 455
    assert budget._round_down(458, answers, covered=False) == 450
    assert budget._round_down(7, answers, covered=False) == 7


def test_make_extra_operations_priced(tmp_path: Path) -> None:
    # 160,565 operations are 10,565 above Core 150,000 ($135). Extra operations cost
    # 1.3 times the plan's rate: 10,565 * 135 / 150,000 * 1.3 = $12.36, so $147.36 or
    # SAR 553, not n8n Cloud Business at SAR 3,000.
    context = budget_of("shopify-growth", {"monthly_orders": 500})
    plans = {plan["platform"]: plan for plan in context["plans"]}
    make = plans["make"]
    assert make["plan"] == "Core 150,000"
    assert make["extra_units"] == 10565
    assert make["price_usd"] == 147.36
    assert make["price_sar"] == 553
    assert make["confirmed"] is False
    overall = context["overall"]
    assert (overall["platform"], overall["price_sar"]) == ("make", 553)
    english, arabic, _ = render(tmp_path, "shopify-growth", "monthly_orders=500",
                                "project_slug=sg-500")
    assert "Core 150,000 (150,000 included, plus 10,565 extra operations at 1.3 times the " \
        "plan's rate) | SAR 553 ($147.36), unconfirmed" in english
    assert "**Recommended: Make, Core 150,000, SAR 553 a month (unconfirmed).**" in english
    assert "**التوصية: Make، Core 150,000، بسعر 553 ريالًا شهريًا (غير مؤكد).**" in arabic
    assert "ويُضاف إليها 10,565 عملية إضافية بسعر يبلغ 1.3 ضعف سعر الوحدة في الباقة" in arabic


def test_make_extra_operations_stop_at_twice_the_plan() -> None:
    # Automatic extra operations stop at the plan's own 150,000 operations.
    plans = {plan["platform"]: plan for plan in budget.recommendations({"make": 300000})}
    assert plans["make"]["extra_units"] == 150000
    assert plans["make"]["price_usd"] == 310.5
    plans = {plan["platform"]: plan for plan in budget.recommendations({"make": 300001})}
    assert plans["make"]["beyond_listed"] is True
    assert plans["make"]["priced_limit"] == 300000


def test_flagship_above_every_hosted_plan(tmp_path: Path) -> None:
    english, arabic, _ = render(tmp_path, "shopify-growth")
    assert "At 4,000 orders a month the flows are above every hosted plan listed here, so no " \
        "hosted platform has a break-even figure: only self-hosted n8n is compared with the " \
        "API path." in english
    assert "عند 4,000 طلب شهريًا تتجاوز التدفقات كل باقة مستضافة مدرجة هنا، فلا نقطة تعادل " \
        "لأي منصة مستضافة" in arabic
    assert "where its largest plan listed ends; above that no price is recorded, so no " \
        "crossover is computed. At 4,000 orders a month this project is above every plan " \
        "listed for it." in english
    assert "وعند 4,000 طلب شهريًا يتجاوز هذا المشروع كل باقة مدرجة لها" in arabic
    # Make's largest plan listed costs less than the recommendation, so the jump is explained.
    assert "Make's larger plans are not listed here: its 964,165 operations are more than " \
        "its largest plan listed covers, even with extra operations (up to 300,000)." in english
    assert "ولم تُدرج هنا باقات Make الأكبر" in arabic


@pytest.mark.parametrize("hours, monthly", [(2, 750), (0, 150)])
def test_self_hosted_upkeep_configurable(monkeypatch: pytest.MonkeyPatch, hours: int,
                                         monthly: int) -> None:
    # The API path's SAR 900 includes its upkeep; self-hosted n8n's server price gets
    # its own hours at the same assumed rate, read from plans.yaml.
    original = budget.load_data

    def patched(name: str) -> dict[str, object]:
        data = original(name)
        if name == "ipaas/plans":
            data = {**data, "upkeep": {**data["upkeep"], "n8n_self_hosted_hours": hours}}
        return data

    monkeypatch.setattr(budget, "load_data", patched)
    plans = {plan["platform"]: plan for plan in budget.recommendations({})}
    assert plans["n8n_self_hosted"]["price_sar"] == monthly
    assert plans["n8n_self_hosted"]["horizon_total_sar"] == 4250 + 12 * monthly


def test_self_hosted_upkeep_in_both_languages(tmp_path: Path) -> None:
    english, arabic, _ = render(tmp_path, "shopify-growth")
    assert "Self-hosted n8n costs its server plus 2 hours of upkeep a month at SAR 300 an " \
        "hour, since the API path's monthly cost includes its own upkeep" in english
    assert "وتُحسب تكلفة n8n المستضافة ذاتيًا بسعر خادمها مضافًا إليه صيانة ساعتين شهريًا " \
        "بسعر 300 ريال للساعة، لأن التكلفة الشهرية لمسار API تشمل صيانته" in arabic
    assert "**Recommended: n8n, self-hosted, Self-hosted server, SAR 750 a month" in english
