"""The manual steps ``rabt crm plan`` prints for Zoho: each once, in words, for this account."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from generator.standins.hubspot import HubSpotStandinConfig
from generator.standins.hubspot import create_app as create_hubspot
from generator.standins.zoho import create_app as create_zoho
from tests.crm_support import hubspot_env, json_output, make_project, run_crm
from tests.servers import serve


@pytest.fixture(scope="module")
def support_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # support-heavy is a connector project: nothing there writes Ecom_Events.
    return make_project("support-heavy", tmp_path_factory.mktemp("support"))


@pytest.fixture(scope="module")
def ipaas_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # On the iPaaS path the workflows write the custom module Ecom_Events, which a new
    # org lacks.
    return make_project("support-heavy", tmp_path_factory.mktemp("ipaas"), "path=ipaas")


def zoho_env(base_url: str, dc: str = "sa") -> dict[str, str | None]:
    return {"ZOHO_CLIENT_ID": "test-client-1", "ZOHO_CLIENT_SECRET": "test-secret-1",
            "ZOHO_REFRESH_TOKEN": "test-refresh-1", "ZOHO_DC": dc,
            "ZOHO_ACCOUNTS_URL": base_url}


def plan_steps(project: Path, dc: str = "sa") -> list[dict[str, Any]]:
    with serve(create_zoho()) as base_url:
        result = run_crm("plan", str(project), "--format", "json", env=zoho_env(base_url, dc))
    assert result.exit_code == 4, result.output
    steps: list[dict[str, Any]] = json_output(result)["manual_steps"]
    return steps


def test_missing_module_one_step(ipaas_project: Path) -> None:
    steps = [step for step in plan_steps(ipaas_project) if "Ecom_Events" in step["text"]["en"]]
    assert len(steps) == 1
    assert "Event_Type, Occurred_At, Contact, Cart_Token, Value_SAR, SKU" in steps[0]["text"]["en"]
    assert "Event_Type، Occurred_At، Contact، Cart_Token، Value_SAR، SKU" in steps[0]["text"]["ar"]


def test_connector_steps_fit_the_path(support_project: Path) -> None:
    steps = plan_steps(support_project)
    keys = [step["key"] for step in steps]
    assert not [step for step in steps if "Ecom_Events" in step["text"]["en"]]
    assert "zoho_line_items" not in keys
    # Pipelines are switched on first, then the Stage values, then the pipeline built
    # from them.
    assert keys[0] == "zoho_currency_pipeline"
    assert "layout id" not in steps[0]["text"]["en"]
    stage_steps = [number for number, step in enumerate(steps)
                   if step["key"] == "picklist:Deals/Stage"]
    pipeline_step = keys.index("pipeline:Deals/e_commerce")
    assert stage_steps and max(stage_steps) < pipeline_step
    assert "، " in steps[pipeline_step]["text"]["ar"]
    subscribers = steps[keys.index("view:Contacts/new_subscribers")]["text"]["en"]
    assert subscribers.startswith('Do not build the custom view "E-commerce: New subscribers"')
    assert "Email Opt Out is not selected" in subscribers


def test_covered_steps_not_repeated(support_project: Path) -> None:
    keys = [step["key"] for step in plan_steps(support_project)]
    assert "zoho_custom_views" not in keys
    assert "zoho_lead_source" not in keys
    assert "zoho_events_module" not in keys
    assert len([key for key in keys if key.startswith("view:")]) == 4


def test_data_centre_step_outside_sa(support_project: Path) -> None:
    assert "zoho_data_centre" not in [step["key"] for step in plan_steps(support_project)]
    assert "zoho_data_centre" in [step["key"] for step in plan_steps(support_project, "eu")]


def test_view_steps_use_words(ipaas_project: Path) -> None:
    # The iPaaS workflows fill the Ecom_ roll-ups, so the views filter on them.
    steps = {step["key"]: step["text"] for step in plan_steps(ipaas_project)}
    dormant = steps["view:Contacts/dormant_90"]
    assert dormant["en"].startswith(
        'Create the custom view "E-commerce: Dormant 90 days" on Contacts')
    assert ("Ecom_Orders_Count is greater than or equal to 1 and Ecom_Last_Order_At is more "
            "than 90 days ago") in dormant["en"]
    assert '"E-commerce: Dormant 90 days"' in dormant["ar"]
    assert "Ecom_Last_Order_At قبل أكثر من 90 يومًا" in dormant["ar"]
    for text in steps.values():
        for word in ("gte", "within_days", "older_than_days", " eq "):
            assert word not in text["en"]
            assert word not in text["ar"]


def test_hubspot_connector_subscription_step(tmp_path: Path) -> None:
    # riyadh-perfume-hubspot is a connector project: no integration writes the
    # subscription statuses there, so the step must not say one does.
    project = make_project("riyadh-perfume-hubspot", tmp_path)
    with serve(create_hubspot(HubSpotStandinConfig(rate_limit_per_10s=0))) as base_url:
        result = run_crm("plan", str(project), "--format", "json", env=hubspot_env(base_url))
    steps = {step["key"]: step["text"] for step in json_output(result)["manual_steps"]}
    text = steps["hubspot_subscription_types"]
    assert "communication preferences v4" not in text["en"] + text["ar"]
    assert text["en"].startswith("In HubSpot's subscription settings, create or pick one "
                                 "marketing subscription type per channel")
    assert "Rabt writes no status to them on this path" in text["en"]
    assert "لا يكتب Rabt فيها أي حالة في هذا المسار" in text["ar"]


def test_connector_views_use_rollup_summaries(support_project: Path) -> None:
    # A Shopify connector project on Zoho has no daily sync, so nothing fills the Ecom_
    # order roll-ups: the views filter on the rollup summary fields instead.
    steps = {step["key"]: step["text"] for step in plan_steps(support_project)}
    views = {key: text for key, text in steps.items() if key.startswith("view:")}
    assert len(views) == 4
    for key, text in views.items():
        for field in ("Ecom_Orders_Count", "Ecom_LTV_SAR", "Ecom_Last_Order_At"):
            assert f"{field} is" not in text["en"], key
            assert f"{field} يساوي" not in text["ar"], key
    assert ("the rollup summary field that sums Amount over paid Deals (in place of "
            "Ecom_LTV_SAR) is greater than or equal to 8000") in views["view:Contacts/vip"]["en"]
    assert "docs/connector-setup.md, section 4.1" in views["view:Contacts/dormant_90"]["en"]
    assert ("حقل Rollup Summary الذي يعدّ الصفقات المدفوعة (بدلًا من Ecom_Orders_Count) أكبر "
            "من 1 أو يساويه") in views["view:Contacts/dormant_90"]["ar"]
    subscribers = views["view:Contacts/new_subscribers"]["en"]
    assert "the rollup summary field that counts paid Deals" in subscribers
    assert "and Ecom_Orders_Count is 0 or empty" not in subscribers


def test_vip_view_states_exit(support_project: Path) -> None:
    vip = {step["key"]: step["text"] for step in plan_steps(support_project)}["view:Contacts/vip"]
    assert "Lifetime value falls below 7,200 SAR after refunds." in vip["en"]
    assert "أقل من 7,200 ريال" in vip["ar"]


def test_summary_views_admit_partial_refunds(support_project: Path) -> None:
    steps = {step["key"]: step["text"] for step in plan_steps(support_project)}
    vip = steps["view:Contacts/vip"]
    assert ("The sum of Amount there does not subtract partial refunds, because a partly "
            "refunded order keeps its paid stage") in vip["en"]
    assert "ولا يُخصم من مجموع Amount فيها ما استُرد جزئيًا" in vip["ar"]


def test_synced_connector_views_keep_ecom_fields(tmp_path: Path) -> None:
    # The daily contact sync of a WooCommerce project fills the Ecom_ roll-ups.
    project = make_project("woo-startup", tmp_path)
    steps = {step["key"]: step["text"] for step in plan_steps(project)}
    dormant = steps["view:Contacts/dormant_90"]["en"]
    assert "Ecom_Orders_Count is greater than or equal to 1" in dormant
    assert "rollup summary" not in dormant
    assert "and Ecom_Orders_Count is 0 or empty" in steps["view:Contacts/new_subscribers"]["en"]
