"""n8n workflows: every node checked against the catalogue of the pinned n8n release.

For every iPaaS case, each workflow is schema-valid; each node's type, typeVersion,
parameter names and option values exist in ``generator/data/ipaas/n8n-nodes.json``;
connections name existing nodes; every node is reachable from a trigger; no file
contains a secret; and the JavaScript of every Code node parses (``node --check``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from generator.ipaas import n8n, n8n_code
from generator.ipaas.flows import build_flows
from generator.ipaas.n8n_graph import TYPE_VERSIONS
from generator.resources import load_schema
from generator.spec import build_desired_state
from tests.ipaas_cases import IPAAS_CASES, load_case

REPO = Path(__file__).resolve().parent.parent
CASE_IDS = [case[0] for case in IPAAS_CASES]
TRIGGER_TYPES = {"n8n-nodes-base.executeWorkflowTrigger", "n8n-nodes-base.errorTrigger"}
# Operator operations of the filter parameter (If, Filter, Switch rules) that the
# workflows use, by operator type, as n8n-workflow 2.8.0's filter-parameter.js reads them.
FILTER_OPERATIONS = {"string": {"equals", "notEquals", "empty", "notEmpty"},
                     "boolean": {"true", "false"}}
SECRET_PATTERNS = [
    re.compile(r"pat-(na|eu)\d-[0-9a-f-]{20,}"),  # HubSpot private app token
    re.compile(r"shpat_[0-9a-f]{20,}"),  # Shopify Admin API access token
    re.compile(r"\b1000\.[0-9a-f]{20,}\.[0-9a-f]{20,}"),  # Zoho OAuth token
    re.compile(r"\bEAA[A-Za-z0-9]{30,}"),  # Meta (WhatsApp) access token
    re.compile(r"\bck_[0-9a-f]{30,}|\bcs_[0-9a-f]{30,}"),  # WooCommerce key and secret
    re.compile(r"Bearer [A-Za-z0-9._-]{20,}"),
]


@cache
def workflows(case: str) -> dict[str, dict[str, Any]]:
    """Return the n8n workflows of one iPaaS case, by file path."""
    _, preset, values = next(item for item in IPAAS_CASES if item[0] == case)
    answers, plan, spec = load_case(preset, values)
    files = n8n.files(answers, plan, spec, build_desired_state(spec, plan))
    return {path: json.loads(data) for path, data in files.items()
            if path.startswith("workflows/")}


def all_workflows() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for case in CASE_IDS:
        for path, workflow in workflows(case).items():
            yield case, path, workflow


def version_key(version: float) -> str:
    return str(version).removesuffix(".0")


def check_parameters(value: Any, spec: dict[str, Any], where: str) -> list[str]:
    """Return the parameters of ``value`` that the catalogue entry ``spec`` does not allow."""
    problems = []
    for name, given in value.items():
        entry = spec.get(name)
        if entry is None:
            problems.append(f"{where}.{name}: not a parameter of this node version")
            continue
        problems.extend(_check_entry(given, entry, f"{where}.{name}"))
    return problems


def _check_entry(given: Any, entry: dict[str, Any], where: str) -> list[str]:
    types = set(entry["types"])
    if isinstance(given, str) and given.startswith("="):
        return []  # an expression: n8n resolves it at run time
    problems: list[str] = []
    if types <= {"options", "multiOptions"} and not entry.get("dynamic"):
        for item in given if isinstance(given, list) else [given]:
            if item not in entry["values"]:
                problems.append(f"{where}: {item!r} is not one of {entry['values']}")
    if "collection" in types and isinstance(given, dict):
        problems.extend(check_parameters(given, entry["children"], where))
    if "resourceMapper" in types and isinstance(given, dict) and "mappingMode" in given:
        if given["mappingMode"] not in ("defineBelow", "autoMapInputData"):
            problems.append(f"{where}: mapping mode {given['mappingMode']!r}")
    elif "fixedCollection" in types and isinstance(given, dict):
        for group, content in given.items():
            if group not in entry["groups"]:
                problems.append(f"{where}.{group}: not a group of this collection")
                continue
            for item in content if isinstance(content, list) else [content]:
                problems.extend(check_parameters(item, entry["groups"][group], f"{where}.{group}"))
    if "filter" in types:
        problems.extend(_check_filter(given, entry, where))
    return problems


def filter_version(expression: Any, node_version: float) -> Any:
    """Evaluate n8n's '$nodeVersion >= X ? A : ...' filter version expression."""
    if not isinstance(expression, str):
        return expression
    for threshold, result in re.findall(r"\$nodeVersion\s*>=\s*([\d.]+)\s*\?\s*(\d+)", expression):
        if node_version >= float(threshold):
            return int(result)
    tail = re.search(r":\s*(\d+)\s*}}\s*$", expression)
    return int(tail.group(1)) if tail else None


def _check_filter(given: Any, entry: dict[str, Any], where: str) -> list[str]:
    problems = []
    expected = filter_version(entry.get("filter_version"), _CURRENT_VERSION[0])
    if given["options"]["version"] != expected:
        problems.append(f"{where}: filter version {given['options']['version']} != {expected}")
    for condition in given["conditions"]:
        operator = condition["operator"]
        if operator["operation"] not in FILTER_OPERATIONS.get(operator["type"], set()):
            problems.append(f"{where}: operator {operator} is not one the tests know")
    return problems


_CURRENT_VERSION = [0.0]


def node_problems(node: dict[str, Any]) -> list[str]:
    """Return every way ``node`` departs from the catalogue."""
    catalogue = n8n.catalogue()
    entry = catalogue["nodes"].get(node["type"])
    if entry is None:
        return [f"{node['name']}: type {node['type']} is not in the catalogue"]
    version = entry["versions"].get(version_key(node["typeVersion"]))
    if version is None:
        known = list(entry["versions"])
        return [f"{node['name']}: typeVersion {node['typeVersion']} not in {known}"]
    _CURRENT_VERSION[0] = float(node["typeVersion"])
    problems = check_parameters(node["parameters"], version["parameters"], node["name"])
    for kind in node.get("credentials", {}):
        allowed = set(version["credentials"])
        parameters = node["parameters"]
        allowed |= {parameters.get("nodeCredentialType"), parameters.get("genericAuthType")}
        if kind not in allowed:
            problems.append(f"{node['name']}: credential type {kind} not in {sorted(allowed)}")
        if kind not in catalogue["credentials"]:
            problems.append(f"{node['name']}: credential type {kind} not in the catalogue")
        elif node["type"].endswith("httpRequest") and not catalogue["credentials"][kind][
                "http_request"]:
            problems.append(f"{node['name']}: HTTP Request cannot use {kind}")
    return problems


@pytest.mark.parametrize("case", CASE_IDS)
def test_nodes_match_catalogue(case: str) -> None:
    for path, workflow in workflows(case).items():
        for node in workflow["nodes"]:
            assert node_problems(node) == [], f"{path}"


@pytest.mark.parametrize("case", CASE_IDS)
def test_workflows_match_schema(case: str) -> None:
    validator = jsonschema.Draft202012Validator(load_schema("n8n-workflow"))
    for path, workflow in workflows(case).items():
        errors = [error.message for error in validator.iter_errors(workflow)]
        assert errors == [], path


@pytest.mark.parametrize("case", CASE_IDS)
def test_one_file_per_flow(case: str) -> None:
    _, preset, values = next(item for item in IPAAS_CASES if item[0] == case)
    answers, plan, spec = load_case(preset, values)
    keys = build_flows(answers, plan, spec).keys
    assert sorted(workflows(case)) == sorted(f"workflows/n8n/{key}.json" for key in keys)


def test_type_versions_in_catalogue() -> None:
    nodes = n8n.catalogue()["nodes"]
    for name, version in TYPE_VERSIONS.items():
        entry = nodes[f"n8n-nodes-base.{name}"]
        assert version_key(version) in entry["versions"], name


@pytest.mark.parametrize("case", CASE_IDS)
def test_connections_name_nodes(case: str) -> None:
    for path, workflow in workflows(case).items():
        names = {node["name"] for node in workflow["nodes"]}
        assert len(names) == len(workflow["nodes"]), path
        for source, outputs in workflow["connections"].items():
            assert source in names, f"{path}: {source}"
            for output in outputs["main"]:
                for link in output:
                    assert link["node"] in names, f"{path}: {source} -> {link['node']}"


def is_trigger(node: dict[str, Any]) -> bool:
    entry = n8n.catalogue()["nodes"].get(node["type"], {})
    return bool(entry.get("trigger")) or node["type"] in TRIGGER_TYPES


@pytest.mark.parametrize("case", CASE_IDS)
def test_every_node_reachable(case: str) -> None:
    for path, workflow in workflows(case).items():
        seen = {node["name"] for node in workflow["nodes"] if is_trigger(node)}
        assert seen, f"{path} has no trigger"
        queue = list(seen)
        while queue:
            name = queue.pop()
            for output in workflow["connections"].get(name, {}).get("main", []):
                for link in output:
                    if link["node"] not in seen:
                        seen.add(link["node"])
                        queue.append(link["node"])
        unreachable = {node["name"] for node in workflow["nodes"]} - seen
        assert unreachable == set(), path


@pytest.mark.parametrize("case", CASE_IDS)
def test_error_workflow_named(case: str) -> None:
    files = workflows(case)
    error_id = files["workflows/n8n/error-alert.json"]["id"]
    for path, workflow in files.items():
        assert workflow["active"] is False
        if path.endswith("error-alert.json"):
            assert "errorWorkflow" not in workflow["settings"]
        else:
            assert workflow["settings"]["errorWorkflow"] == error_id, path


def test_error_workflow_alerts_with_link() -> None:
    workflow = workflows("shopify-hubspot")["workflows/n8n/error-alert.json"]
    types = [node["type"] for node in workflow["nodes"]]
    assert types[0] == "n8n-nodes-base.errorTrigger"
    assert "n8n-nodes-base.emailSend" in types
    code = "\n".join(node["parameters"].get("jsCode", "") for node in workflow["nodes"])
    assert "execution.url" in code
    assert "[email]" in code  # error messages are masked before they are mailed


@pytest.mark.parametrize("case", CASE_IDS)
def test_no_secrets_in_files(case: str) -> None:
    for path, workflow in workflows(case).items():
        text = json.dumps(workflow)
        for pattern in SECRET_PATTERNS:
            assert not pattern.search(text), f"{path}: {pattern.pattern}"
        for node in workflow["nodes"]:
            for reference in node.get("credentials", {}).values():
                assert reference["id"] is None, f"{path}: {node['name']}"
                assert set(reference) == {"id", "name"}


def test_credentials_named_by_project() -> None:
    names = {reference["name"] for _, _, workflow in all_workflows()
             for node in workflow["nodes"] for reference in node.get("credentials", {}).values()}
    assert "shopify-growth-hubspot" in names
    assert "jeddah-fashion-zoho" in names
    # shopify-growth has three stores, each with its own Shopify credential.
    assert "shopify-growth-shopify-store-1" in names


@pytest.mark.parametrize("case", CASE_IDS)
def test_webhook_nodes_have_ids(case: str) -> None:
    catalogue = n8n.catalogue()["nodes"]
    for path, workflow in workflows(case).items():
        for node in workflow["nodes"]:
            if catalogue[node["type"]]["webhook"]:
                assert "webhookId" in node, f"{path}: {node['name']}"


def test_ids_stable_across_runs() -> None:
    first = workflows("shopify-hubspot")
    answers, plan, spec = load_case("shopify-growth", {})
    again = n8n.files(answers, plan, spec, build_desired_state(spec, plan))
    assert again.pop("schemas/n8n-workflow.schema.json")
    for path, data in again.items():
        assert json.loads(data) == first[path], path


def test_workflow_id_shape() -> None:
    identifier = n8n.workflow_id("shopify-growth", "order-sync")
    assert re.fullmatch(r"[0-9A-Za-z]{16}", identifier)
    assert identifier != n8n.workflow_id("shopify-growth", "contact-sync")


def code_nodes() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for case, path, workflow in all_workflows():
        for node in workflow["nodes"]:
            if node["type"] == "n8n-nodes-base.code":
                yield case, path, node


def node_binary() -> str | None:
    found = shutil.which("node")
    if found is None and os.environ.get("CI"):
        pytest.fail("node (Node.js) was not found, and CI is set")
    return found


def test_code_nodes_parse(tmp_path: Path) -> None:
    node = node_binary()
    if node is None:
        pytest.skip("node (Node.js) not found: the Code nodes' JavaScript cannot be parsed")
    sources = {}
    for case, path, code_node in code_nodes():
        # A Code node's code is the body of an async function: top-level return and await.
        sources[(code_node["parameters"]["jsCode"])] = f"{case}/{path}/{code_node['name']}"
    assert sources
    for index, (code, where) in enumerate(sources.items()):
        script = tmp_path / f"code-{index}.js"
        script.write_text(f"(async function () {{\n{code}\n}});\n", encoding="utf-8")
        done = subprocess.run([node, "--check", str(script)], capture_output=True, text=True,
                              check=False)
        assert done.returncode == 0, f"{where}: {done.stderr}"


def test_marketing_sends_follow_consent() -> None:
    for case, path, workflow in all_workflows():
        for node in workflow["nodes"]:
            name = node["name"]
            if not re.match(r"Send step \d+ by (whatsapp|sms|email)$", name):
                continue
            position = [item["name"] for item in workflow["nodes"]].index(name)
            earlier = [item["name"] for item in workflow["nodes"][:position]]
            channel = name.rsplit(" ", 1)[-1]
            assert any(item.startswith(f"Check {channel} consent") for item in earlier), \
                f"{case}/{path}: {name}"


def upstream(workflow: dict[str, Any], target: str) -> set[str]:
    parents: dict[str, set[str]] = {}
    for source, outputs in workflow["connections"].items():
        for output in outputs["main"]:
            for link in output:
                parents.setdefault(link["node"], set()).add(source)
    seen: set[str] = set()
    queue = [target]
    while queue:
        for parent in parents.get(queue.pop(), set()):
            if parent not in seen:
                seen.add(parent)
                queue.append(parent)
    return seen


def test_consent_gate_upstream_of_send() -> None:
    workflow = workflows("shopify-hubspot")["workflows/n8n/abandoned-checkout.json"]
    sends = [node["name"] for node in workflow["nodes"] if node["name"].startswith("Send step")
             and node["type"] == "n8n-nodes-base.httpRequest"]
    assert len(sends) == 2
    for send in sends:
        channel = re.search(r"by (\w+)", send).group(1)  # type: ignore[union-attr]
        gates = [name for name in upstream(workflow, send)
                 if name.startswith(f"Check {channel} consent")]
        assert gates, send


def test_store_trigger_topics() -> None:
    workflow = workflows("shopify-hubspot")["workflows/n8n/order-sync.json"]
    topics = {node["parameters"]["topic"] for node in workflow["nodes"]
              if node["type"] == "n8n-nodes-base.shopifyTrigger"}
    assert topics == {"orders/create", "orders/updated"}
    woo = workflows("woocommerce-zoho")["workflows/n8n/order-sync.json"]
    events = {node["parameters"]["event"] for node in woo["nodes"]
              if node["type"] == "n8n-nodes-base.wooCommerceTrigger"}
    assert events == {"order.created", "order.updated"}


def test_unsupported_topic_uses_webhook() -> None:
    workflow = workflows("shopify-hubspot")["workflows/n8n/consent-sync.json"]
    webhooks = [node for node in workflow["nodes"] if node["type"] == "n8n-nodes-base.webhook"]
    assert webhooks  # customers_marketing_consent/update is not a Shopify Trigger topic in 2.8.1
    code = "\n".join(node["parameters"].get("jsCode", "") for node in workflow["nodes"])
    assert "timingSafeEqual" in code


def test_dedupe_before_mapping() -> None:
    workflow = workflows("shopify-hubspot")["workflows/n8n/order-sync.json"]
    dedupe = [node for node in workflow["nodes"]
              if node["name"] == "Skip an event already processed"]
    assert len(dedupe) == 1
    parameters = dedupe[0]["parameters"]
    assert parameters["operation"] == "rowNotExists"
    assert parameters["dataTableId"]["value"] == "rabt_processed_events"
    assert "Skip an event already processed" in upstream(workflow, "Map the order to the deal, "
                                                                   "with its stage")
    assert "Skip an event already processed" in upstream(
        workflow, "Skip an event already processed: claim row")


def test_dedupe_keys_purged_after_window() -> None:
    from generator.ipaas.flows import DEDUPE_TTL_DAYS

    workflow = workflows("shopify-hubspot")["workflows/n8n/reconciliation.json"]
    purge = next(node for node in workflow["nodes"]
                 if node["name"].startswith("Delete event keys older than"))
    condition = purge["parameters"]["filters"]["conditions"][0]
    assert purge["parameters"]["operation"] == "deleteRows"
    assert purge["parameters"]["dataTableId"]["value"] == "rabt_processed_events"
    assert condition["keyName"] == "createdAt"
    assert condition["condition"] == "lt"
    assert condition["keyValue"] == f"={{{{ $now.minus({{ days: {DEDUPE_TTL_DAYS} }}).toISO() }}}}"
    trigger = upstream(workflow, purge["name"])
    assert trigger == {"Every day at 03:30: purge old event keys"}


def test_no_count_bounded_dedupe() -> None:
    for _, path, workflow in all_workflows():
        types = {node["type"] for node in workflow["nodes"]}
        assert "n8n-nodes-base.removeDuplicates" not in types, path


def test_dedupe_row_code_keys() -> None:
    node = node_binary()
    if node is None:
        pytest.skip("node (Node.js) not found: the Code node cannot run")
    workflow = workflows("shopify-hubspot")["workflows/n8n/order-sync.json"]
    code = next(item for item in workflow["nodes"]
                if item["name"] == "Skip an event already processed: claim row")["parameters"][
        "jsCode"]
    items = [{"json": {"_event_id": "evt-1"}}, {"json": {"id": 5, "updated_at": "2026-01-01"}}]
    script = (f"const $input = {{ all: () => {json.dumps(items)} }};\n"
              "const $execution = { id: '42' };\n"
              f"(async () => {{ {code} }})().then((out) => "
              "process.stdout.write(JSON.stringify(out.map((item) => item.json.key))));")
    done = subprocess.run([node, "-e", script], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == ["evt-1", "5:2026-01-01"]


def test_batches_of_at_most_100() -> None:
    for _, _, workflow in all_workflows():
        for node in workflow["nodes"]:
            match = re.search(r'"limit": (\d+)', node["parameters"].get("jsCode", ""))
            if match and node["name"].endswith(": batch"):
                assert int(match.group(1)) <= 100


def test_zoho_uses_saudi_domain() -> None:
    workflow = workflows("shopify-zoho-support")["workflows/n8n/order-sync.json"]
    urls = [node["parameters"]["url"] for node in workflow["nodes"]
            if node["type"] == "n8n-nodes-base.httpRequest"]
    assert urls
    assert all("https://www.zohoapis.sa" in url for url in urls)


def test_zoho_credential_lacks_saudi_dc() -> None:
    # Why the Zoho calls use the generic OAuth2 credential.
    values = n8n.catalogue()["credentials"]["zohoOAuth2Api"]["field_values"]["accessTokenUrl"]
    assert "https://accounts.zoho.sa/oauth/v2/token" not in values


def test_whatsapp_node_lacks_copy_code() -> None:
    # Why WhatsApp templates go through HTTP Request.
    version = n8n.catalogue()["nodes"]["n8n-nodes-base.whatsApp"]
    entry = version["versions"][version_key(version["default_version"])]["parameters"]
    sub_types = entry["components"]["groups"]["component"]["sub_type"]["values"]
    assert "copy_code" not in sub_types


def test_zoho_node_lacks_cases() -> None:
    entry = n8n.catalogue()["nodes"]["n8n-nodes-base.zohoCrm"]["versions"]["1"]["parameters"]
    assert "case" not in entry["resource"]["values"]


def test_unknown_transform_rejected() -> None:
    from generator.ipaas.flows import FieldRow
    from generator.model import Bilingual

    row = FieldRow(entity="contact", name="x", source="x", target="x", transform="to_upper",
                   description=Bilingual("", ""))
    with pytest.raises(n8n_code.UnknownTransformError, match="to_upper"):
        n8n_code.map_code("Map", {"crm": "hubspot"}, [row], None, {})


# ---------------------------------------------------------------------------
# The JavaScript transforms give the same values as generator/runtime


PHONES = ["0501234567", "501234567", "+966501234567", "00966501234567", "966501234567",
          "+966 50 123 4567", "+966 0501234567", "٠٥٠١٢٣٤٥٦٧", "۰۵۰۱۲۳۴۵۶۷",
          "\u202a+966501234567\u202c", "0521234567", "0112345678", "8001234567", "920012345",
          "05799123", "abc0501234567", "", "0579912345"]
# Arabic-Indic digits with the Arabic decimal separator (U+066B) read as 123.45.
AMOUNTS = ["149.5", "149.505", "0.005", "-20.00", "\u0661\u0662\u0663\u066b\u0664\u0665",
           "1,234.50", "10", "abc", "0.004"]
CITIES = ["جده", "Jeddah", "Al-Khobar", "الرياض", "Riyadh, Saudi Arabia", "Springfield",
          "جدّة", "Ar Riyad"]


def run_transforms(calls: list[tuple[str, Any]]) -> list[Any]:
    node = node_binary()
    if node is None:
        pytest.skip("node (Node.js) not found: the JavaScript transforms cannot run")
    _, plan, spec = load_case("shopify-growth", {})
    constants = n8n_code.project_constants(plan.crm, plan.platform, spec["mapping"])
    script = (f"const RABT = {n8n_code.js(constants)};\n" + n8n_code.transforms_library() +
              f"\nconst CALLS = {n8n_code.js(calls)};\n"
              "process.stdout.write(JSON.stringify(CALLS.map(([name, value]) =>"
              " TRANSFORMS[name](value, { currency: 'SAR' }).value)));\n")
    done = subprocess.run([node, "-e", script], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout))


def python_values(name: str, values: list[Any]) -> list[Any]:
    from generator.runtime.result import TransformContext
    from generator.runtime.transforms import TRANSFORMS

    _, _, spec = load_case("shopify-growth", {})
    context = TransformContext(mapping=spec["mapping"], platform="shopify", payload={
        "currency": "SAR"})
    return [TRANSFORMS[name](value, context).value for value in values]


def test_phone_matches_runtime() -> None:
    javascript = run_transforms([("phone_e164_sa", phone) for phone in PHONES])
    assert javascript == python_values("phone_e164_sa", PHONES)


def test_money_matches_runtime() -> None:
    javascript = run_transforms([("money_sar", amount) for amount in AMOUNTS])
    assert javascript == python_values("money_sar", AMOUNTS)


def test_city_matches_runtime() -> None:
    javascript = run_transforms([("city_canonical", city) for city in CITIES])
    # The engine writes the English name of a found city and the input otherwise.
    written = [value["en"] if isinstance(value, dict) else value
               for value in python_values("city_canonical", CITIES)]
    assert javascript == written


# ---------------------------------------------------------------------------
# The catalogue against the npm package


@pytest.mark.slow
def test_catalogue_matches_npm() -> None:
    if shutil.which("npm") is None:
        if os.environ.get("CI"):
            pytest.fail("npm was not found, and CI is set")
        pytest.skip("npm not found: the catalogue cannot be derived again")
    version = n8n.catalogue()["n8n_version"]
    probe = subprocess.run(["npm", "view", f"n8n@{version}", "version"], capture_output=True,
                           text=True, check=False, timeout=120)
    if probe.returncode != 0:
        if os.environ.get("CI"):
            pytest.fail(f"the npm registry did not answer: {probe.stderr.strip()[-300:]}")
        pytest.skip("the npm registry is not reachable")
    done = subprocess.run([sys.executable, str(REPO / "scripts/refresh_n8n_nodes.py"), "--check"],
                          capture_output=True, text=True, check=False, timeout=1200)
    assert done.returncode == 0, done.stderr


def run_script(calls: str, preset: str = "shopify-growth",
               values: dict[str, Any] | None = None) -> list[Any]:
    """Run ``calls`` (JavaScript giving a list) after the transforms of one project."""
    node = node_binary()
    if node is None:
        pytest.skip("node (Node.js) not found: the JavaScript transforms cannot run")
    _, plan, spec = load_case(preset, values or {})
    constants = n8n_code.project_constants(plan.crm, plan.platform, spec["mapping"])
    script = (f"const RABT = {n8n_code.js(constants)};\n" + n8n_code.transforms_library() +
              f"\nprocess.stdout.write(JSON.stringify({calls}));\n")
    done = subprocess.run([node, "-e", script], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout))


# (first name field, last name field) as the store sends them.
NAMES = [("محمد عبد الله", None), ("عبد الله محمد", None), ("عبد الرحمن", None),
         ("عبد الرحمن الشهري", None), ("نورة", None), (None, "نورة"),
         ("Ahmed bin Salem Al Saud", None),
         ("Al Pacino", None), ("أبو بكر الصديق", None), ("Abdul Rahman Khan", None),
         ("سارة", "آل سعود"), ("  Fatima   Al  Zahra ", None), (None, "Layla Ali"), (None, None),
         ("\u200fمحمد\u200f القحطاني", None)]


def python_names(first: Any, last: Any, last_required: bool) -> list[Any]:
    from generator.runtime.names import split_name
    from generator.runtime.result import TransformContext

    context = TransformContext(mapping={}, platform="shopify", payload={})
    value = split_name({"first_name": first, "last_name": last}, context).value
    given, family = value["first"], value["last"]
    if given is None and family is not None and not last_required:
        given, family = family, None
    return [given, family]


@pytest.mark.parametrize("last_required", [False, True])
def test_split_name_matches_runtime(last_required: bool) -> None:
    calls = ("[" + ", ".join(f"splitNames({n8n_code.js(first)}, {n8n_code.js(last)}, "
                             f"{n8n_code.js(last_required)})" for first, last in NAMES) + "]")
    javascript = run_script(calls)
    expected = [python_names(first, last, last_required) for first, last in NAMES]
    for pair, got, want in zip(NAMES, javascript, expected, strict=True):
        assert got == want, pair


# (value the field map reads, payload), per platform.
CHANNEL_CASES: dict[str, list[tuple[Any, dict[str, Any]]]] = {
    "shopify": [
        ("/?utm_source=snapchat&utm_medium=paid", {"landing_site": "/?utm_source=snapchat"}),
        ("/products/oud?utm_source=ig_story", {}),
        ("/?utm_source=tiktok", {}),
        ("/?utm_source=google&gclid=abc", {}),
        ("/?gclid=abc", {}),
        ("/?fbclid=xyz", {}),
        ("/?utm_source=newsletter", {}),
        ("https://l.facebook.com/", {"referring_site": "https://l.facebook.com/"}),
        (None, {"referring_site": "https://www.google.com.sa/search?q=oud"}),
        (None, {"referring_site": "https://www.youtube.com/watch"}),
        ("web", {"source_name": "web"}),
        ("pos", {"source_name": "pos"}),
        (None, {"source_name": "shopify_draft_order", "landing_site": "/?utm_source=google"}),
        (None, {}),
        ("/?utm_source=Snap", {}),
    ],
    "woocommerce": [
        (None, {"meta_data": [{"key": "_wc_order_attribution_utm_source", "value": "tiktok"}]}),
        (None, {"meta_data": [{"key": "_wc_order_attribution_referrer",
                               "value": "https://www.instagram.com/"}]}),
        (None, {"created_via": "admin"}),
        (None, {"meta_data": [{"key": "_wc_order_attribution_source_type", "value": "admin"}]}),
        (None, {"meta_data": [{"key": "_wc_order_attribution_session_entry",
                               "value": "https://shop.example.sa/?ttclid=1"}]}),
    ],
}
PLATFORM_CASES = {"shopify": ("shopify-growth", {}),
                  "woocommerce": ("woo-startup", {"monthly_orders": 400})}


@pytest.mark.parametrize("platform", sorted(CHANNEL_CASES))
def test_utm_channel_matches_runtime(platform: str) -> None:
    from generator.runtime.result import TransformContext
    from generator.runtime.transforms import TRANSFORMS

    preset, values = PLATFORM_CASES[platform]
    cases = CHANNEL_CASES[platform]
    calls = ("[" + ", ".join(f"utmChannel({n8n_code.js(value)}, {n8n_code.js(payload)})"
                             for value, payload in cases) + "]")
    javascript = run_script(calls, preset, values)
    _, _, spec = load_case(preset, values)
    for (value, payload), got in zip(cases, javascript, strict=True):
        context = TransformContext(mapping=spec["mapping"], platform=platform, payload=payload)
        want = TRANSFORMS["utm_channel"](value, context)
        assert got["value"] == want.value, (value, payload)
        assert got["flags"] == list(want.flags), (value, payload)


# The third tag of each workflow: the part of the integration it belongs to.
FLOW_TAGS = {"contact-sync": "contacts", "order-sync": "orders", "product-sync": "products",
             "event-sync": "events", "abandoned-checkout": "playbooks",
             "post-purchase": "playbooks", "win-back": "playbooks", "consent-sync": "consent",
             "ticket-sync": "support", "reconciliation": "orders", "error-alert": "alerts"}


def test_workflow_tags_name_their_part() -> None:
    for case, path, workflow in all_workflows():
        flow = path.rsplit("/", 1)[-1].removesuffix(".json")
        names = [tag["name"] for tag in workflow["tags"]]
        assert names[0] == "rabt", (case, path)
        assert names[2:] == [FLOW_TAGS[flow]], (case, path, names)


# Built-in nodes by the name the n8n module's docstring gives them.
DOCUMENTED_NODES = {
    "Remove Duplicates": "n8n-nodes-base.removeDuplicates", "Filter": "n8n-nodes-base.filter",
    "If": "n8n-nodes-base.if", "Switch": "n8n-nodes-base.switch",
    "Wait": "n8n-nodes-base.wait", "Data Table": "n8n-nodes-base.dataTable",
    "Send Email": "n8n-nodes-base.emailSend", "Schedule Trigger": "n8n-nodes-base.scheduleTrigger",
    "Error Trigger": "n8n-nodes-base.errorTrigger",
    "Execute Workflow": "n8n-nodes-base.executeWorkflow",
    "No Operation": "n8n-nodes-base.noOp", "Webhook": "n8n-nodes-base.webhook",
    "Postgres": "n8n-nodes-base.postgres",
}


def test_module_docstring_names_used_nodes() -> None:
    used = {node["type"] for _, _, workflow in all_workflows() for node in workflow["nodes"]}
    text = " ".join(str(n8n.__doc__).split())
    for name, node_type in DOCUMENTED_NODES.items():
        named = re.search(rf"\b{name}\b", text) is not None
        assert named == (node_type in used), name


def load_refresh_script() -> Any:
    """Import scripts/refresh_n8n_nodes.py, which is not a package module."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "refresh_n8n_nodes", REPO / "scripts/refresh_n8n_nodes.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("code", "expected"), [
    ("import sys; sys.exit(3)", "wrote nothing to stderr or stdout"),
    ("import sys; print('npm ERR! 404'); sys.exit(3)", "its stdout ends with:\nnpm ERR! 404"),
    ("import sys; sys.stderr.write('E404 Not Found'); sys.exit(3)", "exit code 3:\nE404 Not Found"),
], ids=["silent", "stdout-only", "stderr"])
def test_refresh_failure_names_command(tmp_path: Path, code: str, expected: str) -> None:
    script = load_refresh_script()
    command = [sys.executable, "-c", code]
    with pytest.raises(script.RefreshError) as raised:
        script.run(command, tmp_path)
    message = str(raised.value)
    assert message.startswith(f"{' '.join(command)} failed with exit code 3")
    assert expected in message
