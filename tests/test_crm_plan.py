"""``rabt crm plan`` against the HubSpot stand-in under uvicorn on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
import yaml
from click.testing import CliRunner

from generator.cli import main
from generator.crm.http import CallOptions, CrmApiError
from generator.crm.hubspot import scopes_for_path
from generator.crm.hubspot_scopes import scopes_for_desired
from generator.crm.session import api_failure_fix, open_session
from generator.errors import RabtError
from generator.runtime.ratelimit import RetryPolicy
from generator.standins.hubspot import HubSpotStandinConfig, create_app
from tests.crm_support import (
    copy_project,
    edit_desired,
    hubspot_call,
    hubspot_env,
    json_output,
    make_project,
    run_crm,
)
from tests.servers import serve

PRESET = "riyadh-perfume-hubspot"
NO_LIMIT = HubSpotStandinConfig(rate_limit_per_10s=0)


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project(PRESET, tmp_path_factory.mktemp("generated"))


@pytest.fixture()
def project(generated: Path, tmp_path: Path) -> Path:
    return copy_project(generated, tmp_path / "project")


@pytest.fixture()
def hubspot() -> Iterator[str]:
    with serve(create_app(NO_LIMIT)) as base_url:
        yield base_url


def test_plan_empty_crm_lists_everything(project: Path, hubspot: str) -> None:
    result = run_crm("plan", str(project), "--format", "json", env=hubspot_env(hubspot))
    assert result.exit_code == 4
    data = json_output(result)
    actions = {item["key"]: item["action"] for item in data["items"]}
    assert actions["group:contacts/ecommerce"] == "create"
    assert actions["property:contacts/ecom_ltv_sar"] == "create"
    assert actions["pipeline:deals/e_commerce"] == "create"
    assert actions["stage:e_commerce/cart_abandoned"] == "create"
    assert actions["list:vip"] == "create"
    assert data["counts"]["unchanged"] == 0
    assert data["differs"] is True


def test_plan_json_shape(project: Path, hubspot: str) -> None:
    data = json_output(run_crm("plan", str(project), "--format", "json",
                               env=hubspot_env(hubspot)))
    assert set(data) == {"kind", "version", "crm", "project", "endpoint", "prune", "account",
                         "differs", "counts", "items", "manual_steps"}
    assert data["account"] == {"status": "new", "recorded": None, "live": "1234567"}
    assert data["kind"] == "rabt.crm.plan"
    assert data["version"] == 1
    assert data["crm"] == "hubspot"
    assert data["endpoint"] == hubspot
    assert set(data["counts"]) == {"create", "update", "unchanged", "manual", "delete", "kept",
                                   "manual_steps"}
    assert data["counts"]["manual_steps"] == len(data["manual_steps"])
    item = data["items"][0]
    assert set(item) == {"kind", "key", "name", "label", "container", "action", "changes",
                         "manual", "drift", "id", "owned", "parent"}
    assert set(item["label"]) == {"en", "ar"}
    numbers = [step["number"] for step in data["manual_steps"]]
    assert numbers == list(range(1, len(numbers) + 1))
    keys = {step["key"] for step in data["manual_steps"]}
    # A Shopify connector project syncs orders through HubSpot's data sync app, which
    # writes Orders records, so no deal needs SAR added to the account.
    assert "hubspot_currency" not in keys


def test_plan_text_marks_each_action(project: Path, hubspot: str) -> None:
    result = run_crm("plan", str(project), env=hubspot_env(hubspot))
    assert result.exit_code == 4
    assert "  + create property contacts/ecom_ltv_sar" in result.stdout
    assert "Manual steps" in result.stdout
    assert "  1. " in result.stdout
    assert "exit code 4" in result.stdout


def test_plan_clean_after_apply(project: Path, hubspot: str) -> None:
    env = hubspot_env(hubspot)
    assert run_crm("apply", str(project), "--yes", env=env).exit_code == 0
    result = run_crm("plan", str(project), env=env)
    assert result.exit_code == 0
    assert "= unchanged:" in result.stdout
    assert "+ create" not in result.stdout


def test_plan_reports_changed_label(project: Path, hubspot: str) -> None:
    env = hubspot_env(hubspot)
    assert run_crm("apply", str(project), "--yes", env=env).exit_code == 0
    hubspot_call(hubspot, "PATCH", "/crm/v3/properties/contacts/ecom_ltv_sar",
                 {"label": "LTV edited by hand"})
    result = run_crm("plan", str(project), env=env)
    assert result.exit_code == 4
    assert "~ update property contacts/ecom_ltv_sar" in result.stdout
    assert 'label: "LTV edited by hand" → "Lifetime value (SAR)"' in result.stdout


def test_plan_changed_label_json(project: Path, hubspot: str) -> None:
    env = hubspot_env(hubspot)
    assert run_crm("apply", str(project), "--yes", env=env).exit_code == 0
    hubspot_call(hubspot, "PATCH", "/crm/v3/properties/contacts/ecom_ltv_sar",
                 {"label": "LTV edited by hand"})
    data = json_output(run_crm("plan", str(project), "--format", "json", env=env))
    item = next(entry for entry in data["items"]
                if entry["key"] == "property:contacts/ecom_ltv_sar")
    assert item["action"] == "update"
    assert item["changes"] == [{"field": "label", "old": "LTV edited by hand",
                                "new": "Lifetime value (SAR)"}]
    assert item["owned"] is True


def test_plan_foreign_property_not_renamed(project: Path, hubspot: str) -> None:
    hubspot_call(hubspot, "POST", "/crm/v3/properties/contacts/groups",
                 {"name": "ecommerce", "label": "E-commerce"})
    hubspot_call(hubspot, "POST", "/crm/v3/properties/contacts",
                 {"name": "ecom_city_raw", "label": "City (typed)", "type": "string",
                  "fieldType": "text", "groupName": "ecommerce"})
    data = json_output(run_crm("plan", str(project), "--format", "json",
                               env=hubspot_env(hubspot)))
    item = next(entry for entry in data["items"]
                if entry["key"] == "property:contacts/ecom_city_raw")
    assert item["owned"] is False
    assert item["action"] == "update"  # the description is added; the label is left alone
    assert [change["field"] for change in item["changes"]] == ["description"]
    assert "not created by Rabt" in item["manual"][0]["en"]
    assert '"City (typed)"' in item["manual"][0]["en"]


def test_plan_type_change_is_manual(project: Path, hubspot: str) -> None:
    hubspot_call(hubspot, "POST", "/crm/v3/properties/contacts/groups",
                 {"name": "ecommerce", "label": "E-commerce"})
    hubspot_call(hubspot, "POST", "/crm/v3/properties/contacts",
                 {"name": "ecom_orders_count", "label": "Paid orders", "type": "string",
                  "fieldType": "text", "groupName": "ecommerce",
                  "description": "Number of paid orders, not counting orders cancelled or "
                                 "fully refunded."})
    data = json_output(run_crm("plan", str(project), "--format", "json",
                               env=hubspot_env(hubspot)))
    item = next(entry for entry in data["items"]
                if entry["key"] == "property:contacts/ecom_orders_count")
    assert item["action"] == "manual"
    assert item["drift"] is True
    assert item["changes"] == []
    assert "type" in item["manual"][0]["en"]


def test_plan_arabic(project: Path, hubspot: str) -> None:
    result = run_crm("plan", str(project), "--lang", "ar", env=hubspot_env(hubspot))
    assert result.exit_code == 4
    assert "خطة CRM للمشروع" in result.stdout
    assert "+ إنشاء خاصية contacts/ecom_ltv_sar" in result.stdout
    assert "ثبّت تطبيق مزامنة Shopify" in result.stdout


def test_plan_missing_token(project: Path, hubspot: str) -> None:
    result = run_crm("plan", str(project),
                     env=hubspot_env(hubspot, HUBSPOT_ACCESS_TOKEN=None))
    assert result.exit_code == 2
    assert "HUBSPOT_ACCESS_TOKEN" in result.stderr
    assert "Private apps" in result.stderr


def test_plan_rejected_token(project: Path) -> None:
    config = HubSpotStandinConfig(rate_limit_per_10s=0, accepted_tokens=frozenset({"other"}))
    with serve(create_app(config)) as base_url:
        result = run_crm("plan", str(project), env=hubspot_env(base_url))
    assert result.exit_code == 2
    assert "rejected the credentials (HTTP 401)" in result.stderr


def test_plan_bad_rate_setting(project: Path, hubspot: str) -> None:
    result = run_crm("plan", str(project),
                     env=hubspot_env(hubspot, HUBSPOT_RATE_LIMIT_PER_10S="fast"))
    assert result.exit_code == 2
    assert "HUBSPOT_RATE_LIMIT_PER_10S" in result.stderr


def test_plan_bad_base_url(project: Path) -> None:
    result = run_crm("plan", str(project), env=hubspot_env("api.hubapi.com"))
    assert result.exit_code == 2
    assert "HUBSPOT_BASE_URL" in result.stderr


def test_plan_not_a_project(tmp_path: Path, hubspot: str) -> None:
    result = run_crm("plan", str(tmp_path / "missing"), env=hubspot_env(hubspot))
    assert result.exit_code == 2
    assert "missing" in result.stderr


def test_plan_broken_desired_state(project: Path, hubspot: str) -> None:
    (project / "crm/desired-state.yaml").write_text("crm: [unclosed\n", "utf-8")
    result = run_crm("plan", str(project), env=hubspot_env(hubspot))
    assert result.exit_code == 2
    assert "desired-state.yaml" in result.stderr
    assert "Traceback" not in result.output


def test_plan_schema_violation(project: Path, hubspot: str) -> None:
    edit_desired(project, lambda data: data["lists"][0].update(processingType="SOMETIMES"))
    result = run_crm("plan", str(project), env=hubspot_env(hubspot))
    assert result.exit_code == 2
    assert "lists/0 (E-commerce: VIP)/processingType" in result.stderr


def test_plan_schema_error_is_plain(project: Path, hubspot: str) -> None:
    def break_names(data: dict[str, Any]) -> None:
        data["property_groups"][0]["name"] = "E-commerce"
        data["properties"][0]["label"] = ""

    edit_desired(project, break_names)
    for lang, words in (("en", ("does not have the required form", "is empty")),
                        ("ar", ("ليست بالصيغة المطلوبة", "فارغة"))):
        result = run_crm("plan", str(project), "--lang", lang, env=hubspot_env(hubspot))
        assert result.exit_code == 2
        assert "desired-state.yaml: property_groups/0 (E-commerce)/name" in result.stderr
        assert "desired-state.yaml: properties/0 (ecom_customer_id)/label" in result.stderr
        for word in words:
            assert word in result.stderr, (lang, word)
        assert "crm-desired-state.schema.json" in result.stderr
        # jsonschema's own wording never reaches the user.
        assert "does not match" not in result.stderr
        assert "should be non-empty" not in result.stderr
        assert "is too short" not in result.stderr


def test_arabic_schema_lists_use_arabic_comma(project: Path, hubspot: str) -> None:
    def break_values(data: dict[str, Any]) -> None:
        data["properties"][0]["object"] = "companies"
        data["properties"][2].update(colour="red", size="big")

    edit_desired(project, break_values)
    arabic = run_crm("plan", str(project), "--lang", "ar", env=hubspot_env(hubspot))
    assert arabic.exit_code == 2
    assert ("ليست من القيم المسموح بها: 'contacts'، 'deals'، 'line_items'، 'products'، 'tickets'"
            in arabic.stderr)
    assert "حقول غير مسموح بها هنا: 'colour'، 'size'" in arabic.stderr
    assert "احذف 'colour'، 'size'" in arabic.stderr
    english = run_crm("plan", str(project), env=hubspot_env(hubspot))
    assert "is not one of 'contacts', 'deals', 'line_items', 'products'" in english.stderr
    assert "fields not allowed here: 'colour', 'size'" in english.stderr


def test_schema_fix_names_the_key(project: Path, hubspot: str) -> None:
    def break_keys(data: dict[str, Any]) -> None:
        del data["properties"][1]["label"]
        data["properties"][2]["colour"] = "red"
        data["properties"][3]["label"] = ["not", "text"]

    edit_desired(project, break_keys)
    data = yaml.safe_load((project / "crm/desired-state.yaml").read_text("utf-8"))
    names = [data["properties"][index]["name"] for index in (1, 2, 3)]
    result = run_crm("plan", str(project), env=hubspot_env(hubspot))
    assert result.exit_code == 2
    assert f"properties/1 ({names[0]}): the field 'label' is required" in result.stderr
    assert "add the field 'label'" in result.stderr
    assert f"properties/2 ({names[1]}): fields not allowed here: 'colour'" in result.stderr
    assert "remove 'colour', or correct the spelling" in result.stderr
    assert f"properties/3 ({names[2]})/label" in result.stderr
    arabic = run_crm("plan", str(project), "--lang", "ar", env=hubspot_env(hubspot))
    assert arabic.exit_code == 2
    assert "أضف الحقل 'label'؛ " in arabic.stderr
    assert "احذف 'colour'" in arabic.stderr
    assert "(نص)" in arabic.stderr
    assert "(string)" not in arabic.stderr
    assert "; " not in arabic.stderr


def test_yaml_error_arabic_sentence(project: Path, hubspot: str) -> None:
    (project / "crm/desired-state.yaml").write_text("crm: [unclosed\n", "utf-8")
    result = run_crm("plan", str(project), "--lang", "ar", env=hubspot_env(hubspot))
    assert result.exit_code == 2
    assert "تعذّرت قراءة الملف عند السطر 2، العمود 1." in result.stderr
    assert "نص المحلّل بالإنجليزية:" in result.stderr


def test_plan_custom_crm_rejected(tmp_path: Path, hubspot: str) -> None:
    project = make_project("custom-erp", tmp_path, "path=connector")
    result = run_crm("plan", str(project), env=hubspot_env(hubspot))
    assert result.exit_code == 2
    assert "rabt crm sets up HubSpot and Zoho CRM only, and this project's CRM is custom" \
        in result.stderr
    assert "crm is custom" not in result.stderr
    assert "outside rabt crm" in result.stderr


def test_plan_custom_ipaas_points_schema(tmp_path: Path) -> None:
    project = make_project("shopify-growth", tmp_path, "crm=custom", "path=ipaas")
    assert (project / "database/schema.sql").is_file()
    result = run_crm("plan", str(project), env={})
    assert result.exit_code == 2
    assert "psql -d DATABASE -f database/schema.sql" in result.stderr
    assert "API service" not in result.stderr
    arabic = run_crm("plan", str(project), "--lang", "ar", env={})
    assert "أنشئ بدلًا من ذلك الجداول التي تكتب فيها تدفقات العمل" in arabic.stderr


def test_plan_custom_api_points_migrations(tmp_path: Path) -> None:
    project = make_project("custom-erp", tmp_path, "path=api")
    result = run_crm("plan", str(project), env={})
    assert result.exit_code == 2
    assert "python -m storesync db upgrade" in result.stderr


def test_plan_unreachable_crm(project: Path) -> None:
    with serve(create_app(NO_LIMIT)) as base_url:
        pass  # the port is closed again: nothing listens there now
    options = CallOptions(retry=RetryPolicy(max_attempts=2, base_seconds=0.0),
                          sleep=lambda seconds: None)
    env = {"HUBSPOT_ACCESS_TOKEN": "test-token-not-real", "HUBSPOT_BASE_URL": base_url}
    with (pytest.raises(RabtError) as raised,
          open_session(project, env, options=options) as session):
        session.plan()
    assert raised.value.exit_code == 1
    assert "connection failed" in raised.value.render()


@pytest.mark.parametrize("command", [["crm"], ["crm", "plan"], ["crm", "apply"]])
def test_crm_help_has_example(command: list[str]) -> None:
    result = CliRunner().invoke(main, [*command, "--help"], catch_exceptions=False)
    assert result.exit_code == 0
    assert "Example" in result.output


def test_connector_plan_skips_events(project: Path, hubspot: str) -> None:
    assert json.loads((project / ".rabt/plan.json").read_text("utf-8"))["path"] == "connector"
    data = json_output(run_crm("plan", str(project), "--format", "json",
                               env=hubspot_env(hubspot)))
    assert not [item for item in data["items"] if item["kind"] == "event_definition"]
    keys = [step["key"] for step in data["manual_steps"]]
    assert "hubspot_events_tier" not in keys
    subscribers = next(item for item in data["items"] if item["key"] == "list:new_subscribers")
    assert subscribers["action"] == "manual"
    assert "ecom_marketing_opt_in_at, which nothing fills here" in subscribers["manual"][0]["en"]
    assert data["counts"]["create"] == len([item for item in data["items"]
                                            if item["action"] == "create"])
    assert "list:new_subscribers" not in {item["key"] for item in data["items"]
                                          if item["action"] == "create"}


def test_plan_403_names_scopes(project: Path, hubspot: str) -> None:
    httpx.post(f"{hubspot}/_standin/faults",
               json={"status": 403, "count": 1, "path_prefix": "/crm/v3/lists",
                     "missing_scopes": ["crm.lists.read"]}, timeout=10)
    result = run_crm("plan", str(project), env=hubspot_env(hubspot))
    assert result.exit_code == 1
    assert "HTTP 403 MISSING_SCOPES" in result.stderr
    assert "lacks a scope. Add crm.lists.read to the private app" in result.stderr
    assert "crm.lists.write" not in result.stderr
    assert "Private apps" in result.stderr
    assert "check the CRM's status and the network" not in result.stderr


def test_plan_other_403_neutral(project: Path, hubspot: str) -> None:
    httpx.post(f"{hubspot}/_standin/faults",
               json={"status": 403, "count": 1, "path_prefix": "/crm/v3/lists"}, timeout=10)
    result = run_crm("plan", str(project), env=hubspot_env(hubspot))
    stderr = " ".join(result.stderr.split())
    assert result.exit_code == 1
    assert "HubSpot refused the call (403): Injected failure with HTTP 403" in stderr
    assert "A missing scope is one possible cause" in stderr
    assert "crm.lists.read, crm.lists.write" in stderr
    assert "lacks a scope" not in stderr
    assert "This call only reads the account" in stderr
    assert "allow this change" not in stderr


def test_plan_other_403_arabic_says_read(project: Path, hubspot: str) -> None:
    httpx.post(f"{hubspot}/_standin/faults",
               json={"status": 403, "count": 1, "path_prefix": "/crm/v3/lists"}, timeout=10)
    result = run_crm("plan", str(project), "--lang", "ar", env=hubspot_env(hubspot))
    stderr = " ".join(result.stderr.split())
    assert result.exit_code == 1
    assert "وهذا الطلب للقراءة فقط" in stderr
    assert "يسمحان بهذا التغيير" not in stderr
    assert "(Settings ثم Integrations ثم Private apps، ثم التطبيق، ثم Scopes)" in stderr


def test_apply_read_stage_403_says_read(project: Path, hubspot: str) -> None:
    httpx.post(f"{hubspot}/_standin/faults",
               json={"status": 403, "count": 1, "path_prefix": "/crm/v3/lists"}, timeout=10)
    result = run_crm("apply", str(project), "--yes", env=hubspot_env(hubspot))
    stderr = " ".join(result.stderr.split())
    assert result.exit_code == 1
    assert "GET " in stderr
    assert "This call only reads the account" in stderr
    assert "allow this change" not in stderr


@pytest.mark.parametrize("kind", ["read", "write"])
def test_other_403_fix_per_call_kind(kind: Literal["read", "write"]) -> None:
    error = CrmApiError("POST" if kind == "write" else "GET", "/crm/v3/lists", 403,
                        "This portal cannot do that")
    english = api_failure_fix("hubspot", error, "en", kind)
    arabic = api_failure_fix("hubspot", error, "ar", kind)
    assert ("allow this change" in english) == (kind == "write")
    assert ("This call only reads the account" in english) == (kind == "read")
    assert ("يسمحان بهذا التغيير" in arabic) == (kind == "write")
    assert ("وهذا الطلب للقراءة فقط" in arabic) == (kind == "read")
    assert "the call needs crm.lists.read, crm.lists.write on the private app" in english
    assert "(Settings → Integrations → Private apps, the app, Scopes)" in english


def test_standin_rejects_scopes_on_500(hubspot: str) -> None:
    response = httpx.post(f"{hubspot}/_standin/faults",
                          json={"status": 500, "count": 1, "missing_scopes": ["tickets"]},
                          timeout=10)
    assert response.status_code == 400
    assert "only with status 403" in response.json()["message"]


def test_plan_403_arabic_fix(project: Path, hubspot: str) -> None:
    httpx.post(f"{hubspot}/_standin/faults",
               json={"status": 403, "count": 1, "path_prefix": "/crm/v3/properties/deals",
                     "missing_scopes": ["crm.schemas.deals.read", "crm.schemas.deals.write"]},
               timeout=10)
    result = run_crm("plan", str(project), "--lang", "ar", env=hubspot_env(hubspot))
    assert result.exit_code == 1
    assert "تنقصه صلاحية (Scope)" in result.stderr
    assert "crm.schemas.deals.read, crm.schemas.deals.write" in result.stderr


def test_plan_400_keeps_generic_fix(project: Path, hubspot: str) -> None:
    httpx.post(f"{hubspot}/_standin/faults",
               json={"status": 400, "count": 1, "path_prefix": "/crm/v3/lists"}, timeout=10)
    result = run_crm("plan", str(project), env=hubspot_env(hubspot))
    assert result.exit_code == 1
    assert "check the CRM's status and the network" in result.stderr


def test_scopes_for_unknown_path() -> None:
    every = scopes_for_path("/account-info/v3/details")
    for scope in ("crm.schemas.contacts.write", "crm.lists.write", "crm.objects.deals.write",
                  "e-commerce", "tickets"):
        assert scope in every
    assert scopes_for_path("/crm/v3/pipelines/deals") == (
        "crm.objects.deals.read, crm.objects.deals.write")
    assert scopes_for_path("/crm/v3/properties/line_items") == "e-commerce"


def test_scopes_for_desired_keep_table_order() -> None:
    desired = {"properties": [{"object": "deals"}, {"object": "contacts"}],
               "lists": [{"name": "vip"}], "pipelines": []}
    assert scopes_for_desired(desired) == (
        "crm.schemas.contacts.read, crm.schemas.contacts.write, crm.schemas.deals.read, "
        "crm.schemas.deals.write, crm.lists.read, crm.lists.write")
    every = scopes_for_path("")
    assert every.startswith("crm.schemas.contacts.read, crm.schemas.contacts.write, ")
    assert every.endswith(", e-commerce, tickets")
    assert scopes_for_desired({}) == every
    assert scopes_for_desired({"properties": ["contacts", None]}) == every


def test_plan_empty_desired_state(project: Path, hubspot: str) -> None:
    (project / "crm/desired-state.yaml").write_text("# nothing here\n", "utf-8")
    result = run_crm("plan", str(project), env=hubspot_env(hubspot))
    assert result.exit_code == 2
    assert "the file is empty" in result.stderr
    assert "None is not of type" not in result.stderr
    assert "rabt new --answers" in result.stderr
    arabic = run_crm("plan", str(project), "--lang", "ar", env=hubspot_env(hubspot))
    assert arabic.exit_code == 2
    assert "الملف فارغ" in arabic.stderr


def test_plan_file_not_folder(project: Path, hubspot: str) -> None:
    result = run_crm("plan", str(project / "README.md"), env=hubspot_env(hubspot))
    assert result.exit_code == 2
    assert "README.md is a file, but rabt crm expects a project folder" in result.stderr
    assert (f"Cannot read the CRM desired state: {project / 'README.md'} is a file, not a "
            "project folder.") in result.stderr
    assert "README.md/crm/desired-state.yaml" not in result.stderr
    assert "not found" not in result.stderr
    assert str(project) in result.stderr
    arabic = run_crm("apply", str(project / "README.md"), "--yes", "--lang", "ar",
                     env=hubspot_env(hubspot))
    assert arabic.exit_code == 2
    assert "بينما يتوقع rabt crm مجلد مشروع" in arabic.stderr


def test_plan_list_desired_state(project: Path, hubspot: str) -> None:
    (project / "crm/desired-state.yaml").write_text("[]\n", "utf-8")
    result = run_crm("plan", str(project), env=hubspot_env(hubspot))
    stderr = " ".join(result.stderr.split())
    assert result.exit_code == 2
    assert "the file must contain a mapping" in stderr
    assert "but it contains a list" in stderr
    assert "is not of type" not in stderr
    assert "rabt new --answers" in stderr


def test_plan_without_answers_no_regenerate(project: Path, hubspot: str) -> None:
    (project / "crm/desired-state.yaml").write_text("[]\n", "utf-8")
    (project / ".rabt/answers.yaml").unlink()
    result = run_crm("plan", str(project), env=hubspot_env(hubspot))
    stderr = " ".join(result.stderr.split())
    assert result.exit_code == 2
    assert "the file must contain a mapping" in stderr
    assert "rabt new --answers" not in stderr
    assert "restore it from version control" in stderr
    arabic = run_crm("plan", str(project), "--lang", "ar", env=hubspot_env(hubspot))
    assert "يجب أن يحوي الملف قاموسًا (mapping)" in " ".join(arabic.stderr.split())


def test_missing_token_fix_names_scopes(project: Path, hubspot: str) -> None:
    result = run_crm("plan", str(project), env=hubspot_env(hubspot, HUBSPOT_ACCESS_TOKEN=None))
    stderr = " ".join(result.stderr.split())
    assert result.exit_code == 2
    desired = yaml.safe_load((project / "crm/desired-state.yaml").read_text("utf-8"))
    assert f"with the scopes {scopes_for_desired(desired)} (docs/connector-setup.md" in stderr
    assert "create a private app in HubSpot (Settings → Integrations → Private apps)" in stderr
    assert "crm.lists.write" in stderr
    assert "crm.schemas.contacts.write" in stderr


def test_missing_token_fix_without_guide(project: Path, hubspot: str) -> None:
    # API and iPaaS projects have no connector setup guide to point to.
    (project / "docs/connector-setup.md").unlink()
    result = run_crm("plan", str(project), env=hubspot_env(hubspot, HUBSPOT_ACCESS_TOKEN=None))
    stderr = " ".join(result.stderr.split())
    assert result.exit_code == 2
    desired = yaml.safe_load((project / "crm/desired-state.yaml").read_text("utf-8"))
    assert f"with the scopes {scopes_for_desired(desired)}, then run" in stderr
    assert "connector-setup" not in stderr
    arabic = run_crm("plan", str(project), "--lang", "ar",
                     env=hubspot_env(hubspot, HUBSPOT_ACCESS_TOKEN=None))
    assert "connector-setup" not in arabic.stderr
    assert "export HUBSPOT_ACCESS_TOKEN" in arabic.stderr
