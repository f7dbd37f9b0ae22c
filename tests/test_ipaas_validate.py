"""``rabt validate`` on iPaaS projects: n8n connections, node types, required parameters,
Make module ids and placeholders left in requests."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from generator.cli import main
from generator.ipaas import checks, n8n

N8N_FILE = "workflows/n8n/order-sync.json"
MAKE_FILE = "workflows/make/order-sync.blueprint.json"


def all_modules(flow: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return every module of a blueprint flow, with those on router routes."""
    found = []
    for module in flow:
        found.append(module)
        for route in module.get("routes", []):
            found.extend(all_modules(route["flow"]))
    return found


@pytest.fixture(scope="module")
def baked(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generate one shopify-growth project for every test of this module to copy."""
    output = tmp_path_factory.mktemp("baked")
    result = CliRunner().invoke(main, ["new", "--no-input", "--preset", "shopify-growth",
                                       "--output-dir", str(output)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return next(path for path in output.iterdir() if path.is_dir())


@pytest.fixture
def project(baked: Path, tmp_path: Path) -> Path:
    """Return a fresh copy of the baked project that a test may break."""
    return Path(shutil.copytree(baked, tmp_path / baked.name))


def edit_json(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data), encoding="utf-8")


def validate(project: Path, *options: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["validate", str(project), *options],
                                catch_exceptions=False)
    return result.exit_code, result.output


def node_named(workflow: dict[str, Any], node_type: str) -> dict[str, Any]:
    return next(node for node in workflow["nodes"] if node["type"] == node_type)


def test_clean_project_passes(project: Path) -> None:
    code, output = validate(project)
    assert code == 0, output


def test_connection_to_missing_node(project: Path) -> None:
    def change(workflow: dict[str, Any]) -> None:
        source = next(iter(workflow["connections"]))
        workflow["connections"][source]["main"][0].append(
            {"node": "Removed by hand", "type": "main", "index": 0})

    edit_json(project / N8N_FILE, change)
    code, output = validate(project)
    assert code == 3
    assert N8N_FILE in output
    assert "connects to node 'Removed by hand', which is not in this workflow" in output
    assert "connect to an existing node" in output


def test_connection_from_missing_node(project: Path) -> None:
    def change(workflow: dict[str, Any]) -> None:
        workflow["connections"]["Ghost"] = {"main": [[]]}

    edit_json(project / N8N_FILE, change)
    code, output = validate(project)
    assert code == 3
    assert "the connections start from node 'Ghost'" in output


def test_unknown_node_type(project: Path) -> None:
    def change(workflow: dict[str, Any]) -> None:
        node_named(workflow, "n8n-nodes-base.httpRequest")["type"] = "n8n-nodes-base.httpRequestt"

    edit_json(project / N8N_FILE, change)
    code, output = validate(project)
    assert code == 3
    assert "type 'n8n-nodes-base.httpRequestt' is not a node of n8n 2.8.4" in output
    assert "use a node type that n8n 2.8.4 has, such as 'n8n-nodes-base.httpRequest'" in output
    assert "rabt new --answers .rabt/answers.yaml --no-input --overwrite" in output
    assert "generator/" not in output


def test_unknown_node_type_arabic(project: Path) -> None:
    def change(workflow: dict[str, Any]) -> None:
        node_named(workflow, "n8n-nodes-base.httpRequest")["type"] = "n8n-nodes-base.httpRequestt"

    edit_json(project / N8N_FILE, change)
    code, output = validate(project, "--lang", "ar")
    assert code == 3
    assert "استخدم نوع عقدة موجودًا في n8n 2.8.4" in output
    assert "rabt new --answers .rabt/answers.yaml --no-input --overwrite" in output
    assert "generator/" not in output


def test_unknown_type_version(project: Path) -> None:
    def change(workflow: dict[str, Any]) -> None:
        node_named(workflow, "n8n-nodes-base.httpRequest")["typeVersion"] = 99

    edit_json(project / N8N_FILE, change)
    code, output = validate(project)
    assert code == 3
    assert "typeVersion 99 of n8n-nodes-base.httpRequest is not in n8n 2.8.4" in output
    assert "set typeVersion to one of: " in output


def test_unknown_parameter_name(project: Path) -> None:
    def change(workflow: dict[str, Any]) -> None:
        node = node_named(workflow, "n8n-nodes-base.httpRequest")
        node["parameters"]["urll"] = node["parameters"].pop("url")

    edit_json(project / N8N_FILE, change)
    code, output = validate(project)
    assert code == 3
    assert "'urll' is not a parameter of n8n-nodes-base.httpRequest" in output
    assert "this node has 'url'" in output


def test_missing_required_parameter(project: Path) -> None:
    names = []

    def change(workflow: dict[str, Any]) -> None:
        node = node_named(workflow, "n8n-nodes-base.httpRequest")
        del node["parameters"]["url"]
        names.append(node["name"])

    edit_json(project / N8N_FILE, change)
    code, output = validate(project)
    assert code == 3
    assert N8N_FILE in output
    assert f"node {names[0]!r}: 'url' is required by n8n-nodes-base.httpRequest version " \
           "4.2 for this node's settings, but it is missing or empty" in output
    assert "give 'url' a value or an expression" in output
    assert output.count("is required by") == 1


def test_empty_required_parameter_arabic(project: Path) -> None:
    names = []

    def change(workflow: dict[str, Any]) -> None:
        node = node_named(workflow, "n8n-nodes-base.httpRequest")
        node["parameters"]["url"] = ""
        names.append(node["name"])

    edit_json(project / N8N_FILE, change)
    code, output = validate(project, "--lang", "ar")
    assert code == 3
    assert N8N_FILE in output
    assert f"العقدة {names[0]!r}: المعامل 'url' مطلوب في n8n-nodes-base.httpRequest" in output
    assert "أعطِ المعامل 'url' قيمة أو تعبيرًا" in output


def test_unknown_option_value(project: Path) -> None:
    def change(workflow: dict[str, Any]) -> None:
        node_named(workflow, "n8n-nodes-base.httpRequest")["parameters"]["method"] = "FETCH"

    edit_json(project / N8N_FILE, change)
    code, output = validate(project)
    assert code == 3
    assert "'method' is 'FETCH', which is not an option" in output
    assert "'POST'" in output


def with_credentials(workflow: dict[str, Any], node_type: str) -> dict[str, Any]:
    return next(node for node in workflow["nodes"]
                if node["type"] == node_type and node.get("credentials"))


def test_misspelt_trigger_credential(project: Path) -> None:
    def change(workflow: dict[str, Any]) -> None:
        node = with_credentials(workflow, "n8n-nodes-base.shopifyTrigger")
        node["credentials"] = {"shopifyAccesTokenApi": node["credentials"].pop(
            "shopifyAccessTokenApi")}

    edit_json(project / N8N_FILE, change)
    code, output = validate(project)
    assert code == 3
    assert N8N_FILE in output
    assert ("credential type 'shopifyAccesTokenApi' is not accepted by "
            "n8n-nodes-base.shopifyTrigger version 1 in n8n 2.8.4") in output
    assert "'shopifyAccessTokenApi', 'shopifyApi', 'shopifyOAuth2Api'" in output
    assert "nearest: 'shopifyAccessTokenApi'" in output


def test_http_credential_not_selected(project: Path) -> None:
    def change(workflow: dict[str, Any]) -> None:
        node = with_credentials(workflow, "n8n-nodes-base.httpRequest")
        assert node["parameters"]["nodeCredentialType"] == "hubspotAppToken"
        node["credentials"] = {"zohoOAuth2Api": node["credentials"].pop("hubspotAppToken")}

    edit_json(project / N8N_FILE, change)
    code, output = validate(project)
    assert code == 3
    assert "credential type 'zohoOAuth2Api' is not accepted by n8n-nodes-base.httpRequest" in output
    assert "(it accepts: 'httpSslAuth', 'hubspotAppToken')" in output


def test_bad_credential_arabic(project: Path) -> None:
    def change(workflow: dict[str, Any]) -> None:
        node = with_credentials(workflow, "n8n-nodes-base.shopifyTrigger")
        node["credentials"] = {"shopify": node["credentials"].pop("shopifyAccessTokenApi")}

    edit_json(project / N8N_FILE, change)
    code, output = validate(project, "--lang", "ar")
    assert code == 3
    assert "نوع بيانات الاعتماد 'shopify' لا تقبله العقدة n8n-nodes-base.shopifyTrigger" in output


def test_accepted_credentials_follow_authentication() -> None:
    catalogue = n8n.catalogue()
    version = catalogue["nodes"]["n8n-nodes-base.httpRequest"]["versions"]["4.2"]
    generic = {"type": "n8n-nodes-base.httpRequest", "parameters": {
        "authentication": "genericCredentialType", "genericAuthType": "httpHeaderAuth",
        "nodeCredentialType": "hubspotAppToken"}}
    assert checks.accepted_credentials(generic, version, catalogue) == [
        "httpSslAuth", "httpHeaderAuth"]
    unknown = {"type": "n8n-nodes-base.httpRequest", "parameters": {
        "authentication": "predefinedCredentialType", "nodeCredentialType": "slackApi"}}
    assert checks.accepted_credentials(unknown, version, catalogue) == ["httpSslAuth"]
    none = {"type": "n8n-nodes-base.httpRequest", "parameters": {"authentication": "none",
                                                                 "genericAuthType": "smtp"}}
    assert checks.accepted_credentials(none, version, catalogue) == ["httpSslAuth"]


def test_unknown_make_module(project: Path) -> None:
    def change(blueprint: dict[str, Any]) -> None:
        module = next(item for item in all_modules(blueprint["flow"])
                      if item["module"] == "http:MakeRequest")
        module["module"] = "http:MakeRequestX"

    edit_json(project / MAKE_FILE, change)
    code, output = validate(project)
    assert code == 3
    assert MAKE_FILE in output
    assert "'http:MakeRequestX' is not a Make module id that Rabt has confirmed" in output
    assert "such as 'http:MakeRequest'" in output
    assert "rabt new --answers .rabt/answers.yaml --no-input --overwrite" in output
    assert "make-modules.yaml" not in output


def test_make_module_in_error_route(project: Path) -> None:
    def change(blueprint: dict[str, Any]) -> None:
        guarded = next(item for item in all_modules(blueprint["flow"])
                       if item.get("onerror"))
        guarded["onerror"][0]["module"] = "builtin:Nothing"

    edit_json(project / MAKE_FILE, change)
    code, output = validate(project)
    assert code == 3
    assert "'builtin:Nothing' is not a Make module id" in output


def test_make_module_version(project: Path) -> None:
    def change(blueprint: dict[str, Any]) -> None:
        module = next(item for item in all_modules(blueprint["flow"])
                      if item["module"] == "http:MakeRequest")
        module["version"] = 3

    edit_json(project / MAKE_FILE, change)
    code, output = validate(project)
    assert code == 3
    assert "http:MakeRequest has version 3, expected 4" in output


def test_make_placeholder_left_in_body(project: Path) -> None:
    def change(blueprint: dict[str, Any]) -> None:
        module = next(item for item in all_modules(blueprint["flow"])
                      if item["module"] == "http:MakeRequest"
                      and item["mapper"].get("jsonStringBodyContent"))
        module["mapper"]["jsonStringBodyContent"] = module["mapper"][
            "jsonStringBodyContent"].replace("{{", '"<deal_name>", "x": {{', 1)
        module["metadata"]["designer"]["name"] = "Edited request"

    edit_json(project / MAKE_FILE, change)
    code, output = validate(project)
    assert code == 3
    assert MAKE_FILE in output
    assert "(Edited request): the request's jsonStringBodyContent still holds the placeholder " \
           "<deal_name>" in output


def test_make_placeholder_left_in_url(project: Path) -> None:
    def change(blueprint: dict[str, Any]) -> None:
        module = next(item for item in all_modules(blueprint["flow"])
                      if item["module"] == "http:MakeRequest")
        module["mapper"]["url"] += "/<record_id>"

    edit_json(project / MAKE_FILE, change)
    code, output = validate(project)
    assert code == 3
    assert "the request's url still holds the placeholder <record_id>" in output


def test_n8n_placeholder_left_in_request(project: Path) -> None:
    names = []

    def change(workflow: dict[str, Any]) -> None:
        node = node_named(workflow, "n8n-nodes-base.httpRequest")
        node["parameters"]["url"] = "=https://api.hubapi.com/crm/v3/objects/<object>"
        names.append(node["name"])

    edit_json(project / N8N_FILE, change)
    code, output = validate(project)
    assert code == 3
    assert N8N_FILE in output
    assert f"node {names[0]!r}: the HTTP Request's url still holds the placeholder " \
           "<object>" in output


def test_placeholder_inside_expression_passes() -> None:
    assert checks.placeholders('={{ $json.a < 3 && $json.b > 1 }}/x') == []
    assert checks.placeholders('{"a": {{if(1.x = "<y>"; 1; 2)}}}') == []
    assert checks.placeholders({"q": [{"value": "<today - 7 days>"}]}) == ["<today - 7 days>"]


def test_findings_skip_bad_shapes() -> None:
    assert list(checks.n8n_workflow_findings([])) == []
    assert list(checks.n8n_workflow_findings({"nodes": "x", "connections": 1})) == []
    assert len(list(checks.make_blueprint_findings({"flow": [1, {"routes": ["x"]}]}))) == 1
    assert list(checks.make_blueprint_findings("text")) == []
