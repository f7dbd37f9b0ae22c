"""``rabt crm apply`` against the HubSpot and Zoho stand-ins under uvicorn on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from click.testing import CliRunner

from generator.cli import apply_question, main
from generator.crm import apply as crm_apply
from generator.crm.apply import ApplyFailed, apply_plan, resume_command
from generator.crm.http import CallOptions
from generator.crm.model import PlanItem
from generator.crm.session import open_session
from generator.standins.hubspot import HubSpotStandinConfig
from generator.standins.hubspot import create_app as create_hubspot
from generator.standins.zoho import create_app as create_zoho
from generator.standins.zoho_config import ZohoStandinConfig
from generator.standins.zoho_seed import apply_desired_state
from generator.standins.zoho_settings import create_fields
from generator.standins.zoho_state import Fault
from tests.crm_support import (
    copy_project,
    edit_desired,
    hubspot_call,
    hubspot_env,
    json_output,
    make_project,
    read_state,
    run_crm,
)
from tests.servers import serve
from tests.test_standin_zoho import FakeClock

NO_LIMIT = HubSpotStandinConfig(rate_limit_per_10s=0, retry_after_seconds=1)


@pytest.fixture(scope="module")
def hubspot_generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project("riyadh-perfume-hubspot", tmp_path_factory.mktemp("hubspot"))


@pytest.fixture(scope="module")
def zoho_generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project("support-heavy", tmp_path_factory.mktemp("zoho"))


@pytest.fixture()
def project(hubspot_generated: Path, tmp_path: Path) -> Path:
    # Keep the slug as the folder name, so regenerating writes over this copy.
    return copy_project(hubspot_generated, tmp_path / hubspot_generated.name)


@pytest.fixture()
def hubspot() -> Iterator[str]:
    with serve(create_hubspot(NO_LIMIT)) as base_url:
        yield base_url


def calls(base_url: str) -> dict[tuple[str, str, int], int]:
    summary = httpx.get(f"{base_url}/_standin/calls", timeout=10).json()
    return {(entry["method"], entry["path"], entry["status"]): entry["count"]
            for entry in summary["calls"]}


def writes(base_url: str) -> int:
    return sum(count for (method, _, _), count in calls(base_url).items() if method != "GET")


def to_create(project: Path, env: dict[str, str | None]) -> int:
    counts = json_output(run_crm("plan", str(project), "--format", "json", env=env))["counts"]
    return int(counts["create"])


def test_apply_then_plan_clean(project: Path, hubspot: str) -> None:
    env = hubspot_env(hubspot)
    total = to_create(project, env)
    result = run_crm("apply", str(project), "--yes", env=env)
    assert result.exit_code == 0
    assert f"Changes applied: {total}." in result.stdout
    assert run_crm("plan", str(project), env=env).exit_code == 0


# The contact properties that the connector's playbook workflows read, with their types.
WORKFLOW_PROPERTIES = {"ecom_vip_since": "date", "ecom_last_review_at": "datetime",
                       "ecom_last_referral_at": "datetime"}


def test_apply_creates_workflow_properties(project: Path, hubspot: str) -> None:
    env = hubspot_env(hubspot)
    plan = json_output(run_crm("plan", str(project), "--format", "json", env=env))
    actions = {item["key"]: item["action"] for item in plan["items"]}
    for name in WORKFLOW_PROPERTIES:
        assert actions[f"property:contacts/{name}"] == "create", name
    assert run_crm("apply", str(project), "--yes", env=env).exit_code == 0
    for name, kind in WORKFLOW_PROPERTIES.items():
        live = hubspot_call(hubspot, "GET", f"/crm/v3/properties/contacts/{name}")
        assert live["type"] == kind, name
        assert live["fieldType"] == "date", name
        assert live["groupName"] == "ecommerce", name
        assert read_state(project)["items"][f"property:contacts/{name}"]["owned"] is True


def test_second_apply_changes_nothing(project: Path, hubspot: str) -> None:
    env = hubspot_env(hubspot)
    assert run_crm("apply", str(project), "--yes", env=env).exit_code == 0
    before = writes(hubspot)
    result = run_crm("apply", str(project), "--yes", env=env)
    assert result.exit_code == 0
    assert "Changes applied: 0." in result.stdout
    assert writes(hubspot) == before


def test_apply_records_pipeline_ids(project: Path, hubspot: str) -> None:
    env = hubspot_env(hubspot)
    result = run_crm("apply", str(project), "--yes", env=env)
    state = read_state(project)
    pipeline = state["ids"]["pipelines"]["pipeline:deals/e_commerce"]
    live = hubspot_call(hubspot, "GET", f"/crm/v3/pipelines/deals/{pipeline['id']}")
    assert live["label"] == "E-commerce"
    live_stages = {stage["label"]: stage["id"] for stage in live["stages"]}
    assert pipeline["stages"]["cart_abandoned"] == live_stages["Cart abandoned"]
    assert pipeline["stages"]["refunded"] == live_stages["Refunded / returned"]
    assert f"cart_abandoned: {live_stages['Cart abandoned']}" in result.stdout
    assert state["items"]["property:contacts/ecom_ltv_sar"]["owned"] is True
    assert state["last_apply"]["status"] == "complete"


def test_state_file_has_no_token(project: Path, hubspot: str) -> None:
    run_crm("apply", str(project), "--yes", env=hubspot_env(hubspot))
    text = (project / ".rabt/crm-state.json").read_text("utf-8")
    assert "test-token-not-real" not in text


def test_apply_fixes_changed_label(project: Path, hubspot: str) -> None:
    env = hubspot_env(hubspot)
    run_crm("apply", str(project), "--yes", env=env)
    hubspot_call(hubspot, "PATCH", "/crm/v3/properties/contacts/ecom_ltv_sar",
                 {"label": "LTV edited by hand"})
    result = run_crm("apply", str(project), "--yes", env=env)
    assert result.exit_code == 0
    assert "Changes applied: 1." in result.stdout
    live = hubspot_call(hubspot, "GET", "/crm/v3/properties/contacts/ecom_ltv_sar")
    assert live["label"] == "Lifetime value (SAR)"


def test_apply_stops_on_failure_and_resumes(project: Path, hubspot: str) -> None:
    env = hubspot_env(hubspot)
    with open_session(project, env) as session:
        plan = session.plan()
        total = len(plan.pending)
        # The plan has read the lists; the next call under /crm/v3/lists creates one.
        httpx.post(f"{hubspot}/_standin/faults",
                   json={"status": 400, "count": 1, "path_prefix": "/crm/v3/lists"},
                   timeout=10)
        with pytest.raises(ApplyFailed) as raised:
            apply_plan(project, plan, session.adapter, session.state, yes=True)
    message = raised.value.render()
    assert raised.value.exit_code == 1
    # Three lists are left: a connector project gets no "New subscribers" list.
    assert f"Apply stopped after {total - 3} of {total} changes" in message
    assert "HTTP 400" in message
    assert f"rabt crm apply {project} --yes" in message
    state = read_state(project)
    assert state["last_apply"]["status"] == "failed"
    assert state["last_apply"]["failed_item"] == "list:vip"
    assert state["items"]["property:contacts/ecom_ltv_sar"]["owned"] is True
    assert "list:vip" not in state["items"]
    resumed = run_crm("apply", str(project), "--yes", env=env)
    assert resumed.exit_code == 0
    assert "Changes applied: 3." in resumed.stdout
    assert run_crm("plan", str(project), env=env).exit_code == 0


def test_resume_repeats_json_format(project: Path, hubspot: str,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    original = crm_apply._apply_item

    def fail_first_list(adapter: Any, item: PlanItem, state: Any) -> None:
        # The plan reads lists too, so the fault is armed only when apply creates one.
        if item.kind == "list":
            httpx.post(f"{hubspot}/_standin/faults", timeout=10,
                       json={"status": 400, "count": 1, "path_prefix": "/crm/v3/lists"})
        original(adapter, item, state)

    monkeypatch.setattr(crm_apply, "_apply_item", fail_first_list)
    result = run_crm("apply", str(project), "--yes", "--format", "json",
                     env=hubspot_env(hubspot))
    assert result.exit_code == 1
    assert f"rabt crm apply {project} --yes --format json" in result.output
    assert "--prune" not in result.output
    data = json_output(result)
    assert data["status"] == "failed"
    assert data["resume"] == f"rabt crm apply {project} --yes --format json"
    # The properties created before the failure are listed with their ids.
    created = data["ids"]["items"]["property:contacts/ecom_ltv_sar"]
    assert created == {"kind": "property", "id": "ecom_ltv_sar", "owned": True}
    assert "list:vip" not in data["ids"]["items"]
    assert "pipelines" in data["ids"]


def test_resume_command_options() -> None:
    folder = Path("clients/dar al qahwa")
    assert resume_command(folder, False) == "rabt crm apply 'clients/dar al qahwa'"
    assert resume_command(folder, True, "ar", yes=True, output_format="json") == (
        "rabt crm apply 'clients/dar al qahwa' --yes --prune --format json --lang ar")


def test_apply_leaves_fixed_fields_manual(project: Path, hubspot: str) -> None:
    hubspot_call(hubspot, "POST", "/crm/v3/properties/contacts/groups",
                 {"name": "ecommerce", "label": "E-commerce"})
    hubspot_call(hubspot, "POST", "/crm/v3/properties/contacts",
                 {"name": "ecom_ltv_sar", "label": "Lifetime value (SAR)", "type": "string",
                  "fieldType": "text", "groupName": "ecommerce", "hasUniqueValue": True})
    hubspot_call(hubspot, "POST", "/crm/v3/properties/deals",
                 {"name": "shopify_order_id", "label": "Store order ID", "type": "bool",
                  "fieldType": "booleancheckbox", "groupName": "dealinformation"})
    result = run_crm("apply", str(project), "--yes", env=hubspot_env(hubspot))
    assert result.exit_code == 0  # the type and uniqueness differences are manual steps
    assert "ecom_ltv_sar: hasUniqueValue is true in HubSpot" in result.stdout
    assert "contacts.ecom_ltv_sar: type is " in result.stdout


def test_apply_waits_out_429(project: Path, hubspot: str) -> None:
    httpx.post(f"{hubspot}/_standin/faults",
               json={"status": 429, "count": 2, "path_prefix": "/crm/v3/properties"},
               timeout=10)
    result = run_crm("apply", str(project), "--yes", env=hubspot_env(hubspot))
    assert result.exit_code == 0
    rejected = sum(count for (_, _, status), count in calls(hubspot).items() if status == 429)
    assert rejected == 2
    assert run_crm("plan", str(project), env=hubspot_env(hubspot)).exit_code == 0


def test_apply_needs_yes_without_terminal(project: Path, hubspot: str) -> None:
    result = run_crm("apply", str(project), env=hubspot_env(hubspot))
    assert result.exit_code == 2
    assert "--yes" in result.stderr
    assert writes(hubspot) == 0


def test_apply_json_shape(project: Path, hubspot: str) -> None:
    total = to_create(project, hubspot_env(hubspot))
    result = run_crm("apply", str(project), "--yes", "--format", "json",
                     env=hubspot_env(hubspot))
    data = json_output(result)
    assert set(data) == {"kind", "version", "status", "done", "failed", "resume", "ids",
                         "state_file", "plan"}
    assert data["resume"] is None
    assert data["kind"] == "rabt.crm.apply"
    assert data["status"] == "applied"
    assert data["failed"] is None
    assert len(data["done"]) == total
    assert data["done"][0] == {"key": "group:contacts/ecommerce", "action": "create",
                               "id": "ecommerce"}
    assert data["plan"]["kind"] == "rabt.crm.plan"


def test_prune_deletes_only_owned(project: Path, hubspot: str) -> None:
    env = hubspot_env(hubspot)
    run_crm("apply", str(project), "--yes", env=env)
    hubspot_call(hubspot, "POST", "/crm/v3/properties/contacts",
                 {"name": "ecom_made_by_hand", "label": "Made by hand", "type": "string",
                  "fieldType": "text", "groupName": "ecommerce"})

    def drop(data: dict[str, Any]) -> None:
        data["properties"] = [prop for prop in data["properties"]
                              if prop["name"] != "ecom_city_raw"]
        data["lists"] = [entry for entry in data["lists"] if entry["key"] != "vip"]

    edit_desired(project, drop)
    kept = run_crm("plan", str(project), env=env)
    assert kept.exit_code == 0
    assert "· kept property contacts/ecom_city_raw" in kept.stdout
    pruned = run_crm("apply", str(project), "--yes", "--prune", env=env)
    assert pruned.exit_code == 0
    assert "Changes applied: 2." in pruned.stdout
    names = {prop["name"] for prop in hubspot_call(
        hubspot, "GET", "/crm/v3/properties/contacts")["results"]}
    assert "ecom_city_raw" not in names
    assert "ecom_made_by_hand" in names
    assert "list:vip" not in read_state(project)["items"]


def test_regenerate_keeps_state_file(project: Path, hubspot: str) -> None:
    run_crm("apply", str(project), "--yes", env=hubspot_env(hubspot))
    before = (project / ".rabt/crm-state.json").read_text("utf-8")
    regenerate = ["new", "--answers", str(project / ".rabt/answers.yaml"), "--no-input",
                  "--overwrite", "--output-dir", str(project.parent)]
    assert CliRunner().invoke(main, regenerate, catch_exceptions=False).exit_code == 0
    assert sorted(path.name for path in project.parent.iterdir()) == [project.name]
    assert (project / ".rabt/crm-state.json").read_text("utf-8") == before


ZOHO_DC = "sa"


def zoho_env(base_url: str, **extra: str | None) -> dict[str, str | None]:
    return {"ZOHO_CLIENT_ID": "test-client-not-real", "ZOHO_CLIENT_SECRET":
            "test-secret-not-real", "ZOHO_REFRESH_TOKEN": "test-refresh-not-real",
            "ZOHO_DC": ZOHO_DC, "ZOHO_ACCOUNTS_URL": base_url, **extra}


@pytest.fixture()
def zoho_project(zoho_generated: Path, tmp_path: Path) -> Path:
    return copy_project(zoho_generated, tmp_path / "zoho-project")


def test_zoho_creates_custom_fields(zoho_project: Path) -> None:
    with serve(create_zoho()) as base_url:
        env = zoho_env(base_url)
        result = run_crm("apply", str(zoho_project), "--yes", env=env)
        assert result.exit_code == 0, result.output
        fields = httpx.get(f"{base_url}/crm/v8/settings/fields", params={"module": "Deals"},
                           headers={"Authorization": "Zoho-oauthtoken unused"}, timeout=10)
        plan = json_output(run_crm("plan", str(zoho_project), "--format", "json", env=env))
    created = {item["key"]: item["action"] for item in plan["items"]}
    assert created["field:Deals/Shopify_Order_ID"] == "unchanged"
    assert created["field:Contacts/Ecom_LTV_SAR"] == "unchanged"
    for name in ("Ecom_VIP_Since", "Ecom_Last_Review_At", "Ecom_Last_Referral_At"):
        assert created[f"field:Contacts/{name}"] == "unchanged", name
        assert read_state(zoho_project)["items"][f"field:Contacts/{name}"]["owned"] is True
    assert fields.status_code == 401  # a person needs a token too
    state = read_state(zoho_project)
    assert state["items"]["field:Deals/Shopify_Order_ID"]["owned"] is True


def test_zoho_prune_deletes_only_owned(zoho_project: Path) -> None:
    app = create_zoho()
    zoho = app.state.zoho
    with serve(app) as base_url:
        env = zoho_env(base_url)
        assert run_crm("apply", str(zoho_project), "--yes", env=env).exit_code == 0
        status, _ = create_fields(zoho, zoho.modules["Contacts"], {"fields": [
            {"field_label": "Made By Hand", "data_type": "text", "length": 100}]})
        assert status == 201

        def drop(data: dict[str, Any]) -> None:
            contacts = next(entry for entry in data["modules"]
                            if entry["module"] == "Contacts")
            contacts["fields"] = [item for item in contacts["fields"]
                                  if item["api_name"] != "Ecom_City_Raw"]

        edit_desired(zoho_project, drop)
        pruned = run_crm("apply", str(zoho_project), "--yes", "--prune", env=env)
        assert pruned.exit_code == 0, pruned.output
        assert "Changes applied: 1." in pruned.stdout
        names = set(zoho.modules["Contacts"].fields)
    assert "Ecom_City_Raw" not in names
    assert {"Made_By_Hand", "Ecom_Customer_ID", "Last_Name"} <= names
    assert "field:Contacts/Ecom_City_Raw" not in read_state(zoho_project)["items"]


def test_zoho_stage_differences_are_manual(zoho_project: Path) -> None:
    with serve(create_zoho()) as base_url:
        plan = json_output(run_crm("plan", str(zoho_project), "--format", "json",
                                   env=zoho_env(base_url)))
    stage = next(item for item in plan["items"] if item["key"] == "picklist:Deals/Stage")
    assert stage["action"] == "manual"
    assert stage["drift"] is True
    texts = [text["en"] for text in stage["manual"]]
    assert any("Add the stage Cart Abandoned to the Stage picklist of Deals" in text
               for text in texts)
    assert plan["differs"] is True


def test_zoho_missing_module_is_manual(tmp_path: Path, zoho_project: Path) -> None:
    # On the iPaaS path the workflows write Ecom_Events; a connector project leaves it out.
    ipaas_project = make_project("support-heavy", tmp_path / "ipaas", "path=ipaas")
    with serve(create_zoho()) as base_url:
        plan = json_output(run_crm("plan", str(ipaas_project), "--format", "json",
                                   env=zoho_env(base_url)))
        connector = json_output(run_crm("plan", str(zoho_project), "--format", "json",
                                        env=zoho_env(base_url)))
    assert not [item for item in connector["items"] if item["container"] == "Ecom_Events"]
    events = [item for item in plan["items"] if item["container"] == "Ecom_Events"]
    assert events
    assert all(item["action"] == "manual" for item in events)
    assert "does not exist" in events[0]["manual"][0]["en"]


def test_zoho_missing_variables(zoho_project: Path) -> None:
    result = run_crm("plan", str(zoho_project),
                     env=zoho_env("http://127.0.0.1:9", ZOHO_REFRESH_TOKEN=None, ZOHO_DC=None))
    assert result.exit_code == 2
    assert "ZOHO_REFRESH_TOKEN" in result.stderr
    assert "ZOHO_DC" in result.stderr


def test_zoho_unknown_dc(zoho_project: Path) -> None:
    result = run_crm("plan", str(zoho_project), env=zoho_env("http://127.0.0.1:9",
                                                             ZOHO_DC="mars"))
    assert result.exit_code == 2
    assert "mars is not a Zoho data centre" in result.stderr


def test_zoho_wrong_data_centre(zoho_project: Path) -> None:
    config = ZohoStandinConfig(data_centre="sa",
                               refresh_tokens={"test-refresh-not-real": "com"})
    with serve(create_zoho(config)) as base_url:
        result = run_crm("plan", str(zoho_project), env=zoho_env(base_url))
    assert result.exit_code == 2
    assert "Zoho returned invalid_client: the client id is not known" in result.stderr
    assert "another data centre" in result.stderr
    assert "ZOHO_DC" in result.stderr


def test_zoho_arabic_plan(zoho_project: Path) -> None:
    with serve(create_zoho()) as base_url:
        result = run_crm("plan", str(zoho_project), "--lang", "ar", env=zoho_env(base_url))
    assert result.exit_code == 4
    assert "+ إنشاء حقل مخصص Deals/Shopify_Order_ID" in result.stdout
    assert "أضف المرحلة Cart Abandoned" in result.stdout
    assert "يساوي 0 أو يكون فارغًا، أي جهات الاتصال التي انضمت حديثًا" in result.stdout
    assert "يساوي 0 أو فارغ،" not in result.stdout


def test_apply_keeps_hand_added_option(project: Path, hubspot: str) -> None:
    env = hubspot_env(hubspot)
    run_crm("apply", str(project), "--yes", env=env)
    path = "/crm/v3/properties/contacts/ecom_last_source"
    options = hubspot_call(hubspot, "GET", path)["options"]
    added = {"label": "Snapchat (manual)", "value": "snap_manual", "displayOrder": len(options)}
    hubspot_call(hubspot, "PATCH", path, {"options": [*options, added]})
    plan = run_crm("plan", str(project), env=env)
    assert plan.exit_code == 4
    assert "snap_manual" in plan.stdout
    assert "Rabt keeps them" in plan.stdout
    result = run_crm("apply", str(project), "--yes", env=env)
    assert result.exit_code == 0
    live = [option["value"] for option in hubspot_call(hubspot, "GET", path)["options"]]
    assert live == [option["value"] for option in options] + ["snap_manual"]


def test_apply_shows_each_option_change(project: Path, hubspot: str) -> None:
    env = hubspot_env(hubspot)
    run_crm("apply", str(project), "--yes", env=env)
    path = "/crm/v3/properties/contacts/ecom_last_source"
    options = hubspot_call(hubspot, "GET", path)["options"]
    hubspot_call(hubspot, "PATCH", path, {"options": options[:-1]})
    result = run_crm("plan", str(project), env=env)
    assert result.exit_code == 4
    removed = options[-1]
    assert f"+ {removed['value']} (\"{removed['label']}\")" in result.stdout
    assert "…" not in result.stdout


def test_apply_leaves_foreign_description(project: Path, hubspot: str) -> None:
    hubspot_call(hubspot, "POST", "/crm/v3/properties/contacts/groups",
                 {"name": "ecommerce", "label": "E-commerce"})
    hubspot_call(hubspot, "POST", "/crm/v3/properties/contacts",
                 {"name": "ecom_city_raw", "label": "City (raw)", "type": "string",
                  "fieldType": "text", "groupName": "contactinformation",
                  "description": "Written by our team"})
    result = run_crm("apply", str(project), "--yes", env=hubspot_env(hubspot))
    assert result.exit_code == 0
    live = hubspot_call(hubspot, "GET", "/crm/v3/properties/contacts/ecom_city_raw")
    assert live["description"] == "Written by our team"
    assert live["groupName"] == "contactinformation"
    assert "leaves its groupName as it is" in result.stdout
    assert "leaves its description as it is" in result.stdout


def test_apply_text_has_no_plan_exit_code(project: Path, hubspot: str) -> None:
    env = hubspot_env(hubspot)
    total = to_create(project, env)
    result = run_crm("apply", str(project), "--yes", env=env)
    assert "exit code 4" not in result.stdout
    assert f"Changes to apply: {total}." in result.stdout


def test_apply_json_error_document(project: Path, hubspot: str) -> None:
    result = run_crm("apply", str(project), "--format", "json", env=hubspot_env(hubspot))
    assert result.exit_code == 2
    data = json_output(result)
    assert data["kind"] == "rabt.crm.error"
    assert data["exit_code"] == 2
    assert data["problems"][0]["location"] == "--yes"
    assert "--yes" in result.stderr


def test_unreachable_crm_names_base_url(project: Path) -> None:
    with serve(create_hubspot(NO_LIMIT)) as base_url:
        pass  # the port is closed again: nothing listens there now
    result = run_crm("plan", str(project), "--format", "json", env=hubspot_env(base_url))
    assert result.exit_code == 1
    data = json_output(result)
    assert data["problems"][0]["location"].startswith(f"GET {base_url}/")


def test_prune_skips_other_account_state(project: Path) -> None:
    first = HubSpotStandinConfig(rate_limit_per_10s=0, portal_id=1111111)
    with serve(create_hubspot(first)) as base_url:
        assert run_crm("apply", str(project), "--yes", env=hubspot_env(base_url)).exit_code == 0
    assert read_state(project)["account"] == "1111111"
    edit_desired(project, lambda data: data.update(properties=[
        prop for prop in data["properties"] if prop["name"] != "ecom_city_raw"]))
    second = HubSpotStandinConfig(rate_limit_per_10s=0, portal_id=2222222)
    with serve(create_hubspot(second)) as base_url:
        env = hubspot_env(base_url)
        # The other account has a property of the same name that Rabt did not create there.
        hubspot_call(base_url, "POST", "/crm/v3/properties/contacts",
                     {"name": "ecom_city_raw", "label": "City", "type": "string",
                      "fieldType": "text", "groupName": "contactinformation"})
        plan = run_crm("plan", str(project), "--prune", env=env)
        assert "the file records account 1111111, but the credentials reach account 2222222" \
            in plan.stdout
        assert "mv .rabt/crm-state.json .rabt/crm-state.1111111.json" in plan.stdout
        data = json_output(run_crm("plan", str(project), "--prune", "--format", "json", env=env))
        assert data["account"] == {"status": "other", "recorded": "1111111", "live": "2222222"}
        assert data["counts"]["delete"] == 0
        assert all(not item["owned"] for item in data["items"])
        pruned = run_crm("apply", str(project), "--yes", "--prune", env=env)
        assert pruned.exit_code == 2
        assert writes(base_url) == 1  # the property this test made by hand
        names = {prop["name"] for prop in hubspot_call(
            base_url, "GET", "/crm/v3/properties/contacts")["results"]}
        assert "ecom_city_raw" in names
    assert read_state(project)["account"] == "1111111"


def test_zoho_state_tied_to_org(zoho_project: Path) -> None:
    with serve(create_zoho(ZohoStandinConfig(org_id="5000000000001"))) as base_url:
        assert run_crm("apply", str(zoho_project), "--yes",
                       env=zoho_env(base_url)).exit_code == 0
    assert read_state(zoho_project)["account"] == "5000000000001"
    with serve(create_zoho(ZohoStandinConfig(org_id="6000000000001"))) as base_url:
        plan = json_output(run_crm("plan", str(zoho_project), "--prune", "--format", "json",
                                   env=zoho_env(base_url)))
    assert plan["account"]["status"] == "other"
    assert plan["counts"]["delete"] == 0


def test_apply_skips_lost_create_retry(project: Path, hubspot: str) -> None:
    env = hubspot_env(hubspot)
    created_list: dict[str, Any] = {}
    with open_session(project, env, options=CallOptions(sleep=lambda _: None)) as session:
        plan = session.plan()
        first = next(item for item in plan.pending if item.kind == "list")
        before = plan.pending[plan.pending.index(first) - 1]

        def lose_next_answer(item: PlanItem) -> None:
            if item is not before:
                return
            # The create reaches HubSpot but its response is lost: the list exists,
            # yet the call that made it comes back with a 503.
            response = hubspot_call(hubspot, "POST", "/crm/v3/lists", first.payload)
            created_list.update(response["list"])
            httpx.post(f"{hubspot}/_standin/faults", timeout=10,
                       json={"status": 503, "count": 1, "path_prefix": "/crm/v3/lists"})

        apply_plan(project, plan, session.adapter, session.state, on_done=lose_next_answer)
    lists = hubspot_call(hubspot, "POST", "/crm/v3/lists/search", {"query": first.name})
    assert [entry["name"] for entry in lists["lists"]].count(first.name) == 1
    entry = read_state(project)["items"][first.key]
    assert entry["id"] == str(created_list["listId"])
    assert entry["owned"] is True
    assert calls(hubspot)[("POST", "/crm/v3/lists", 503)] == 1


@pytest.mark.parametrize(("count", "lang", "question"), [
    (1, "en", "Apply this change to the CRM?"),
    (3, "en", "Apply these 3 changes to the CRM?"),
    (1, "ar", "هل تطبّق هذا التغيير على نظام CRM؟"),
    (2, "ar", "هل تطبّق تغييرين على نظام CRM؟"),
    (5, "ar", "هل تطبّق 5 تغييرات على نظام CRM؟"),
    (12, "ar", "هل تطبّق 12 تغييرًا على نظام CRM؟"),
])
def test_apply_question_counts(count: int, lang: str, question: str) -> None:
    assert apply_question(count, lang) == question  # type: ignore[arg-type]


def test_zoho_unreadable_org_blocks_prune(zoho_project: Path) -> None:
    with serve(create_zoho(ZohoStandinConfig(org_id="5000000000001"))) as base_url:
        assert run_crm("apply", str(zoho_project), "--yes",
                       env=zoho_env(base_url)).exit_code == 0
    no_org_scope = ZohoStandinConfig(org_id="5000000000001",
                                     scopes=("ZohoCRM.modules.ALL", "ZohoCRM.settings.ALL"))
    with serve(create_zoho(no_org_scope)) as base_url:
        env = zoho_env(base_url)
        plan = json_output(run_crm("plan", str(zoho_project), "--prune", "--format", "json",
                                   env=env))
        pruned = run_crm("apply", str(zoho_project), "--yes", "--prune", env=env)
    assert plan["account"] == {"status": "unknown", "recorded": "5000000000001", "live": None}
    assert plan["counts"]["delete"] == 0
    assert pruned.exit_code == 2
    assert "Zoho needs the scope ZohoCRM.org.READ" in pruned.stderr


def zoho_plan(project: Path, env: dict[str, str | None]) -> tuple[int, dict[str, Any]]:
    result = run_crm("plan", str(project), "--format", "json", env=env)
    return result.exit_code, json_output(result)


def test_zoho_empty_org_to_clean_plan(zoho_project: Path) -> None:
    app = create_zoho()
    zoho = app.state.zoho
    desired = yaml.safe_load((zoho_project / "crm/desired-state.yaml").read_text("utf-8"))
    with serve(app) as base_url:
        env = zoho_env(base_url)
        first_code, first = zoho_plan(zoho_project, env)
        applied = run_crm("apply", str(zoho_project), "--yes", env=env)
        after_code, after = zoho_plan(zoho_project, env)
        # A person adds the Stage and Lead Source values and the pipeline in Setup.
        apply_desired_state(zoho, desired)
        done_code, done = zoho_plan(zoho_project, env)
        text = run_crm("plan", str(zoho_project), env=env)

    custom_fields = [item for item in first["items"] if item["kind"] == "custom_field"]
    assert first_code == 4
    assert custom_fields
    assert {item["action"] for item in custom_fields} == {"create"}
    assert first["counts"]["create"] == len(custom_fields)
    assert applied.exit_code == 0, applied.output
    assert f"Changes applied: {len(custom_fields)}." in applied.stdout

    assert after["counts"]["create"] == 0
    assert after["counts"]["update"] == 0
    # Zoho's Stage values are read and still missing: drift that only a person can fix.
    assert after_code == 4
    drifting = {item["key"] for item in after["items"] if item["drift"]}
    assert "picklist:Deals/Stage" in drifting
    assert all(item["action"] == "manual" for item in after["items"] if item["drift"])

    assert done_code == 0
    assert done["differs"] is False
    views = [item for item in done["items"] if item["kind"] == "view"]
    assert views
    assert all(item["action"] == "manual" and item["drift"] is False for item in views)
    assert text.exit_code == 0
    assert "The CRM matches the desired state in everything Rabt can read (exit code 0)." \
        in text.stdout


def test_zoho_label_changed_by_hand(zoho_project: Path) -> None:
    app = create_zoho()
    zoho = app.state.zoho
    with serve(app) as base_url:
        env = zoho_env(base_url)
        assert run_crm("apply", str(zoho_project), "--yes", env=env).exit_code == 0
        field = zoho.modules["Contacts"].fields["Ecom_LTV_SAR"]
        desired_label = field.field_label
        field.field_label = "Renamed By Hand"
        code, plan = zoho_plan(zoho_project, env)
        fixed = run_crm("apply", str(zoho_project), "--yes", env=env)
        label_after = zoho.modules["Contacts"].fields["Ecom_LTV_SAR"].field_label
    item = next(entry for entry in plan["items"] if entry["key"] == "field:Contacts/Ecom_LTV_SAR")
    assert code == 4
    assert item["action"] == "update"
    assert item["drift"] is True
    assert item["changes"] == [{"field": "field_label", "old": "Renamed By Hand",
                                "new": desired_label}]
    assert fixed.exit_code == 0, fixed.output
    assert "Changes applied: 1." in fixed.stdout
    assert label_after == desired_label


def test_zoho_apply_stops_and_resumes(zoho_project: Path) -> None:
    app = create_zoho()
    zoho = app.state.zoho
    with serve(app) as base_url:
        env = zoho_env(base_url)
        with open_session(zoho_project, env, lang="ar") as session:
            plan = session.plan()
            total = len(plan.pending)
            first_deals = next(index for index, item in enumerate(plan.pending)
                               if item.container == "Deals")
            before = plan.pending[first_deals - 1]

            def fail_next_create(item: PlanItem) -> None:
                # The first field created on Deals fails with a 400, which is not retried.
                if item is before:
                    zoho.add_fault(Fault(400, 1, None, "/crm/v8/settings/fields"))

            with pytest.raises(ApplyFailed) as raised:
                apply_plan(zoho_project, plan, session.adapter, session.state, lang="ar",
                           on_done=fail_next_create)
        state = read_state(zoho_project)
        resumed = run_crm("apply", str(zoho_project), "--yes", env=env)
        code, _ = zoho_plan(zoho_project, env)
    message = raised.value.render()
    assert raised.value.exit_code == 1
    assert raised.value.failed.key == plan.pending[first_deals].key
    assert "HTTP 400" in message
    # The run was not started with --yes, so the resume command leaves it out too.
    assert f"rabt crm apply {zoho_project} --lang ar" in message
    assert "--yes" not in message
    assert state["last_apply"]["status"] == "failed"
    assert state["last_apply"]["failed_item"] == plan.pending[first_deals].key
    assert plan.pending[first_deals - 1].key in state["items"]
    assert plan.pending[first_deals].key not in state["items"]
    assert resumed.exit_code == 0, resumed.output
    assert f"Changes applied: {total - first_deals}." in resumed.stdout
    assert code == 4  # only the Stage values a person adds are left


def test_zoho_outage_bounds_calls(zoho_project: Path) -> None:
    clock = FakeClock()
    app = create_zoho(ZohoStandinConfig(clock=clock))
    zoho = app.state.zoho
    options = CallOptions(sleep=clock.advance)
    with serve(app) as base_url, \
            open_session(zoho_project, zoho_env(base_url), options=options) as session:
        plan = session.plan()
        # Every settings call fails with 503 for the next hour.
        zoho.add_fault(Fault(503, None, clock() + 3600, "/crm/v8/settings"))
        zoho.calls.clear()
        with pytest.raises(ApplyFailed) as raised:
            apply_plan(zoho_project, plan, session.adapter, session.state)
        counted = dict(zoho.calls)
    posts = sum(count for (method, _, status), count in counted.items()
                if method == "POST" and status == 503)
    lookups = sum(count for (method, _, status), count in counted.items()
                  if method == "GET" and status == 503)
    assert raised.value.error.status == 503
    assert posts == options.retry.max_attempts
    assert lookups == options.retry.max_attempts - 1
    assert posts + lookups <= options.retry.max_attempts * 2


def test_zoho_unread_pipeline_no_drift(zoho_project: Path) -> None:
    with serve(create_zoho(ZohoStandinConfig(pipelines_enabled=False))) as base_url:
        _, plan = zoho_plan(zoho_project, zoho_env(base_url))
    pipeline = next(item for item in plan["items"] if item["kind"] == "pipeline")
    assert pipeline["action"] == "manual"
    assert pipeline["drift"] is False
    assert "could not read the Deals pipelines" in pipeline["manual"][0]["en"]


def test_hubspot_manual_steps_exit_zero(project: Path, hubspot: str) -> None:
    env = hubspot_env(hubspot)
    assert run_crm("apply", str(project), "--yes", env=env).exit_code == 0
    result = run_crm("plan", str(project), env=env)
    plan = json_output(run_crm("plan", str(project), "--format", "json", env=env))
    assert result.exit_code == 0
    assert plan["manual_steps"]
    assert "The CRM matches the desired state in everything Rabt can read (exit code 0)." \
        in result.stdout


def test_hubspot_readable_manual_drift(project: Path, hubspot: str) -> None:
    hubspot_call(hubspot, "POST", "/crm/v3/properties/contacts/groups",
                 {"name": "ecommerce", "label": "E-commerce"})
    hubspot_call(hubspot, "POST", "/crm/v3/properties/contacts",
                 {"name": "ecom_ltv_sar", "label": "Lifetime value (SAR)", "type": "string",
                  "fieldType": "text", "groupName": "ecommerce"})
    env = hubspot_env(hubspot)
    assert run_crm("apply", str(project), "--yes", env=env).exit_code == 0
    result = run_crm("plan", str(project), "--format", "json", env=env)
    item = next(entry for entry in json_output(result)["items"]
                if entry["key"] == "property:contacts/ecom_ltv_sar")
    assert result.exit_code == 4
    assert item["action"] == "manual"
    assert item["drift"] is True


def test_apply_403_names_scopes(project: Path, hubspot: str) -> None:
    env = hubspot_env(hubspot)
    with open_session(project, env) as session:
        plan = session.plan()
        httpx.post(f"{hubspot}/_standin/faults",
                   json={"status": 403, "count": 1, "path_prefix": "/crm/v3/lists",
                         "missing_scopes": ["crm.lists.write"]},
                   timeout=10)
        with pytest.raises(ApplyFailed) as raised:
            apply_plan(project, plan, session.adapter, session.state, yes=True)
    message = raised.value.render()
    assert raised.value.exit_code == 1
    assert "HTTP 403" in message
    assert "add crm.lists.write to the private app" in message.lower()
    assert f"rabt crm apply {project} --yes" in message


def test_apply_other_403_neutral(project: Path, hubspot: str) -> None:
    env = hubspot_env(hubspot)
    with open_session(project, env) as session:
        plan = session.plan()
        httpx.post(f"{hubspot}/_standin/faults",
                   json={"status": 403, "count": 1, "path_prefix": "/crm/v3/lists"},
                   timeout=10)
        with pytest.raises(ApplyFailed) as raised:
            apply_plan(project, plan, session.adapter, session.state, yes=True)
    message = raised.value.render()
    assert "HubSpot refused the call (403): Injected failure with HTTP 403" in message
    assert "A missing scope is one possible cause" in message
    assert "crm.lists.read, crm.lists.write" in message
    assert "lacks a scope" not in message
    assert "allow this change" in message
    assert "only reads" not in message
    assert f"rabt crm apply {project} --yes" in message
