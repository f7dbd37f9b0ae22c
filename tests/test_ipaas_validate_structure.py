"""``rabt validate`` on hand-broken iPaaS files: duplicate names and ids, unreachable
nodes, Code node syntax, credentials, the error workflow, unclosed expressions, Make
mappings, JSON bodies, IML functions, HTTP methods and missing workflow files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from generator.cli import main
from generator.ipaas import make, make_structure, n8n_code_check
from generator.ipaas.flows import build_flows
from tests.ipaas_cases import load_case
from tests.test_ipaas_validate import all_modules, edit_json, node_named, validate

N8N_FILE = "workflows/n8n/order-sync.json"
MAKE_FILE = "workflows/make/contact-sync.blueprint.json"


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


def request_module(blueprint: dict[str, Any]) -> dict[str, Any]:
    return next(module for module in all_modules(blueprint["flow"])
                if module["module"] == "http:MakeRequest"
                and module["mapper"].get("jsonStringBodyContent"))


def error_alert_id(project: Path) -> str:
    workflow = json.loads((project / "workflows/n8n/error-alert.json").read_text("utf-8"))
    return str(workflow["id"])


def test_duplicate_node_name(project: Path) -> None:
    def change(workflow: dict[str, Any]) -> None:
        node_named(workflow, "n8n-nodes-base.noOp")["name"] = "Store 1"

    edit_json(project / N8N_FILE, change)
    code, output = validate(project)
    assert code == 3
    assert f"{N8N_FILE}: node 'Store 1': the name is used by another node too" in output
    assert "rename one of the two nodes" in output


def test_duplicate_node_id(project: Path) -> None:
    def change(workflow: dict[str, Any]) -> None:
        workflow["nodes"][1]["id"] = workflow["nodes"][0]["id"]

    edit_json(project / N8N_FILE, change)
    code, output = validate(project)
    assert code == 3
    assert "node 'Shopify orders/updated (store 1)': id 'f37cf989-dff0-532d-9354-9b18fa892829' " \
           "is used by another node too" in output
    assert "give the node a new UUID as its id" in output


def test_code_node_syntax_error(project: Path) -> None:
    if shutil.which("node") is None:
        pytest.skip("node (Node.js) not found: Code nodes cannot be parsed")

    def change(workflow: dict[str, Any]) -> None:
        node_named(workflow, "n8n-nodes-base.code")["parameters"]["jsCode"] = \
            "return items.map(i=> {"

    edit_json(project / N8N_FILE, change)
    code, output = validate(project)
    assert code == 3
    assert f"{N8N_FILE}: Code node 'Store 1': the JavaScript does not parse " \
           "(line 1: Unexpected end of input)" in output
    assert "it runs as the body of an async function" in output
    assert output.count("does not parse") == 1


def test_code_check_skipped_without_node(project: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(n8n_code_check.shutil, "which", lambda name: None)
    code, output = validate(project)
    assert code == 0, output
    assert "Note: the JavaScript of " in output
    assert "n8n Code node(s) was not parsed, because node (Node.js) is not on PATH" in output


def test_unreachable_node(project: Path) -> None:
    def change(workflow: dict[str, Any]) -> None:
        del workflow["connections"]["Receive the payload"]

    edit_json(project / N8N_FILE, change)
    code, output = validate(project)
    assert code == 3
    assert f"{N8N_FILE}: node 'Skip an event already processed' is not reached from any " \
           "trigger, because no connection leads to it, so it and the " in output
    assert "node(s) after it never run" in output
    assert output.count("is not reached from any trigger") == 1


def test_credentials_removed(project: Path) -> None:
    names = []

    def change(workflow: dict[str, Any]) -> None:
        node = node_named(workflow, "n8n-nodes-base.httpRequest")
        del node["credentials"]
        names.append(node["name"])

    edit_json(project / N8N_FILE, change)
    code, output = validate(project)
    assert code == 3
    assert f"node {names[0]!r}: its settings need a credential of type hubspotAppToken, " \
           "but the node has none" in output
    assert "restore the node's \"credentials\" entry for hubspotAppToken" in output


def test_trigger_credentials_removed(project: Path) -> None:
    def change(workflow: dict[str, Any]) -> None:
        del node_named(workflow, "n8n-nodes-base.shopifyTrigger")["credentials"]

    edit_json(project / N8N_FILE, change)
    code, output = validate(project)
    assert code == 3
    assert "node 'Shopify orders/create (store 1)': its settings need a credential of type " \
           "shopifyAccessTokenApi" in output


def test_credential_name_not_in_setup_table(project: Path) -> None:
    def change(workflow: dict[str, Any]) -> None:
        node = node_named(workflow, "n8n-nodes-base.httpRequest")
        node["credentials"]["hubspotAppToken"]["name"] = "typo-cred"

    edit_json(project / N8N_FILE, change)
    code, output = validate(project)
    assert code == 3
    assert "credential name 'typo-cred' (hubspotAppToken) is not one the workflows README " \
           "tells you to create" in output
    assert "use one of the names in the README's credentials table: " in output
    assert "shopify-growth-hubspot" in output
    assert "shopify-growth-shopify-store-3" in output


def test_foreign_error_workflow(project: Path) -> None:
    def change(workflow: dict[str, Any]) -> None:
        workflow["settings"]["errorWorkflow"] = "AAAAAAAAAAAAAAAA"

    edit_json(project / N8N_FILE, change)
    code, output = validate(project)
    assert code == 3
    assert f"{N8N_FILE}: settings.errorWorkflow is 'AAAAAAAAAAAAAAAA', which is not a " \
           "workflow of this project, so no failure alert is sent" in output
    assert f"set it to the id of workflows/n8n/error-alert.json ({error_alert_id(project)})" \
        in output


def test_malformed_error_workflow_fix(project: Path) -> None:
    def change(workflow: dict[str, Any]) -> None:
        workflow["settings"]["errorWorkflow"] = "error-alert"

    edit_json(project / N8N_FILE, change)
    code, output = validate(project)
    assert code == 3
    assert "settings/errorWorkflow: " in output
    assert "set settings.errorWorkflow to the id of workflows/n8n/error-alert.json " \
           f"({error_alert_id(project)})" in output
    assert "use a value that schemas/" not in output


def test_active_workflow_fix(project: Path) -> None:
    def change(workflow: dict[str, Any]) -> None:
        workflow["active"] = True

    edit_json(project / N8N_FILE, change)
    code, output = validate(project)
    assert code == 3
    assert "set \"active\" to false" in output
    assert "use a value that schemas/" not in output


def test_unclosed_n8n_expression(project: Path) -> None:
    names = []

    def change(workflow: dict[str, Any]) -> None:
        node = node_named(workflow, "n8n-nodes-base.httpRequest")
        node["parameters"]["url"] = "=https://api.hubapi.com/crm/v3/{{ $json.object"
        names.append(node["name"])

    edit_json(project / N8N_FILE, change)
    code, output = validate(project)
    assert code == 3
    assert f"node {names[0]!r}: parameter 'url' opens an expression with {{{{ that never " \
           "closes with }}" in output
    assert "close the expression with }}" in output


def test_unclosed_n8n_expression_arabic(project: Path) -> None:
    def change(workflow: dict[str, Any]) -> None:
        node = node_named(workflow, "n8n-nodes-base.httpRequest")
        node["parameters"]["url"] = "=https://api.hubapi.com/crm/v3/{{ $json.object"

    edit_json(project / N8N_FILE, change)
    code, output = validate(project, "--lang", "ar")
    assert code == 3
    assert "يفتح المعامل 'url' تعبيرًا بالرمز {{ ولا يغلقه بالرمز }}" in output


def test_make_reference_to_missing_module(project: Path) -> None:
    def change(blueprint: dict[str, Any]) -> None:
        module = request_module(blueprint)
        module["mapper"]["url"] += "?source={{99.url}}"
        module["metadata"]["designer"]["name"] = "Edited request"

    edit_json(project / MAKE_FILE, change)
    code, output = validate(project)
    assert code == 3
    assert f"{MAKE_FILE}: module 4 (Edited request): mapper.url maps {{{{99.…}}}}, but this " \
           "blueprint has no module 99, so Make maps an empty value" in output
    assert "refer to a module of this blueprint" in output


def test_make_unbalanced_braces(project: Path) -> None:
    def change(blueprint: dict[str, Any]) -> None:
        request_module(blueprint)["mapper"]["url"] += "?id={{1.id"

    edit_json(project / MAKE_FILE, change)
    code, output = validate(project)
    assert code == 3
    assert "mapper.url has a {{ without its }}, or a }} without its {{" in output
    assert "pair every {{ with a }}" in output


def test_make_unclosed_braces_in_body(project: Path) -> None:
    def change(blueprint: dict[str, Any]) -> None:
        module = request_module(blueprint)
        module["mapper"]["jsonStringBodyContent"] = module["mapper"][
            "jsonStringBodyContent"].replace("}}", "}", 1)

    edit_json(project / MAKE_FILE, change)
    code, output = validate(project)
    assert code == 3
    assert "mapper.jsonStringBodyContent has a {{ without its }}" in output


def test_make_json_body_not_json(project: Path) -> None:
    def change(blueprint: dict[str, Any]) -> None:
        module = request_module(blueprint)
        module["mapper"]["jsonStringBodyContent"] = module["mapper"][
            "jsonStringBodyContent"].replace('{"inputs":', '{"inputs" ', 1)

    edit_json(project / MAKE_FILE, change)
    code, output = validate(project)
    assert code == 3
    assert "module 4 (Create or update the contact): the JSON body is not valid JSON even " \
           "with each {{…}} replaced by a value (Expecting ':' delimiter: line 1 column 12 " \
           "(char 11))" in output
    assert "fix the JSON at that position" in output


def test_make_unknown_function(project: Path) -> None:
    def change(blueprint: dict[str, Any]) -> None:
        module = request_module(blueprint)
        module["mapper"]["jsonStringBodyContent"] = module["mapper"][
            "jsonStringBodyContent"].replace("replace(", "replaec(", 1)

    edit_json(project / MAKE_FILE, change)
    code, output = validate(project)
    assert code == 3
    assert "mapper.jsonStringBodyContent calls replaec(), which is not a Make built-in " \
           "function that Rabt knows" in output
    assert output.count("which is not a Make built-in function") == 1


def test_make_duplicate_module_id(project: Path) -> None:
    def change(blueprint: dict[str, Any]) -> None:
        blueprint["flow"][1]["id"] = blueprint["flow"][0]["id"]

    edit_json(project / MAKE_FILE, change)
    code, output = validate(project)
    assert code == 3
    assert f"{MAKE_FILE}: module 1 (" in output
    assert "another module of this blueprint has the same id, so mappings such as {{1.x}} " \
           "are ambiguous" in output


def test_make_unknown_method(project: Path) -> None:
    def change(blueprint: dict[str, Any]) -> None:
        request_module(blueprint)["mapper"]["method"] = "postt"

    edit_json(project / MAKE_FILE, change)
    code, output = validate(project)
    assert code == 3
    assert "module 4 (Create or update the contact): HTTP method 'postt' is not one Make's " \
           "HTTP module sends" in output
    assert "use one of: GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS" in output


@pytest.mark.parametrize("relative", ["workflows/n8n/order-sync.json",
                                      "workflows/make/error-alert.blueprint.json",
                                      "workflows/make/post-purchase-runner.blueprint.json"])
def test_missing_workflow_file(project: Path, relative: str) -> None:
    (project / relative).unlink()
    code, output = validate(project)
    assert code == 3
    assert f"{relative}: is missing, but the project's answers call for this workflow and " \
           "the workflows README lists it" in output
    assert "rabt new --answers .rabt/answers.yaml --no-input --overwrite" in output


def test_make_functions_cover_generated_ones() -> None:
    assert {"replace", "ifempty", "formatDate", "switch", "stripHTML"} <= \
        make_structure.known_functions()
    assert "replaec" not in make_structure.known_functions()


def test_blueprint_stems_match_blueprints() -> None:
    answers, plan, spec = load_case("shopify-growth", {})
    flows = build_flows(answers, plan, spec)
    assert make.blueprint_stems(flows) == list(make.blueprints(flows))


@pytest.mark.parametrize(("body", "expected"), [
    ('{"a": {{1.x}}, "b": "{{1.y}}"}', {"a": 0, "b": ""}),
    ('{{toString(1.body)}}', 0),
    ('[{{1.x}}, {{1.y}}]', [0, 0]),
    ('{"a": 1, {{omitted(1.city)}} "b": 2}', {"a": 1, "b": 2}),
    ('{"a": 1 {{omitted(1.city)}} }', {"a": 1}),
    ('{ {{omitted(1.city)}} "b": 2}', {"b": 2}),
])
def test_json_body_formulas_replaced(body: str, expected: object) -> None:
    assert json.loads(make_structure._without_formulas(body)) == expected
