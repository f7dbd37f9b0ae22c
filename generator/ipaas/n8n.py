"""n8n workflows, one importable JSON file per flow of the project's flow model.

Each flow of ``generator.ipaas.flows`` becomes ``workflows/n8n/<flow>.json`` in the
shape ``n8n import:workflow`` reads: nodes with their type, typeVersion, position and
parameters, connections keyed by node name, settings that name the error workflow,
``active: false`` and tags. Node types, type versions, parameter names and option
values are those of the n8n release pinned in ``generator/data/ipaas/n8n-nodes.json``
(see docs/n8n.md); the tests check every node against that catalogue.

Built-in nodes carry what they can: the Shopify and WooCommerce triggers, Webhook
(headless storefronts), Schedule Trigger, Error Trigger, Execute Workflow with its
trigger, Wait, Switch, No Operation, Data Table, Send Email and, when the CRM is the
client's own database, Postgres. CRM and WhatsApp calls go through HTTP Request,
because the built-in HubSpot and Zoho CRM nodes write one record per call (the spec
batches up to 100), the Zoho CRM node has no Cases resource, and the WhatsApp node has
no copy-code button. Field mapping,
phone numbers, money, the stage table and consent decisions run in Code nodes whose
JavaScript is generated from the spec's data (``n8n-transforms.js`` holds the code).
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from generator.ipaas import n8n_steps
from generator.ipaas.flows import DEDUPE_TTL_DAYS, Flow, FlowSet, build_flows
from generator.ipaas.n8n_graph import Graph, Project
from generator.model import Answers, Plan
from generator.resources import schemas_dir

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "ipaas"
CATALOGUE_FILE = DATA_DIR / "n8n-nodes.json"
OUTPUT_DIR = "workflows/n8n"
SCHEMA_NAME = "n8n-workflow"
ERROR_FLOW = "error-alert"
# The scheduled workflow that also deletes event keys older than the dedupe window.
PURGE_FLOW = "reconciliation"
# n8n workflow ids are 16 characters from this alphabet (its generateNanoId).
ID_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
ID_LENGTH = 16
# Namespace for the node ids and webhook ids, so that a regenerated project keeps
# the same ids and a re-import updates the workflows in place.
ID_NAMESPACE = uuid.UUID("5b1d7f64-51a4-4c55-9d3c-7a8e3c2f0a11")
# Column sizes in n8n 2.8's database (workflow_entity.name, tag_entity.name), in characters.
# PostgreSQL rejects a longer value, so `n8n import:workflow` fails there.
WORKFLOW_NAME_MAX_LENGTH = 128
TAG_NAME_MAX_LENGTH = 24


@cache
def catalogue() -> dict[str, Any]:
    """Return the committed node catalogue of the pinned n8n release."""
    data: dict[str, Any] = json.loads(CATALOGUE_FILE.read_text(encoding="utf-8"))
    return data


def _stable_id(key: str) -> str:
    digest = hashlib.sha256(key.encode()).digest()
    return "".join(ID_ALPHABET[byte % len(ID_ALPHABET)] for byte in digest[:ID_LENGTH])


def workflow_id(slug: str, flow_key: str) -> str:
    """Return the stable n8n workflow id of one flow of one project."""
    return _stable_id(f"{slug}/{flow_key}")


def tag(name: str) -> dict[str, str]:
    """Return an n8n tag with a stable id and a name of at most 24 characters.

    n8n 2.8's import reads the database's tags once per run and creates every tag it did
    not find there, so files that share a new tag would insert its name twice and the
    whole import would fail. With an id, the second save updates the row the first created.
    A longer name keeps its start and gets four hex digits of its hash, to stay distinct.
    """
    if len(name) > TAG_NAME_MAX_LENGTH:
        suffix = hashlib.sha256(name.encode()).hexdigest()[:4]
        name = f"{name[:TAG_NAME_MAX_LENGTH - len(suffix) - 1]}-{suffix}"
    return {"id": _stable_id(f"tag/{name}"), "name": name}


def workflow_name(client_name: str, title: str) -> str:
    """Return "<client>: <title>", shortening the client name to fit 128 characters."""
    room = WORKFLOW_NAME_MAX_LENGTH - len(title) - len(": ")
    if len(client_name) > room:
        client_name = client_name[:room - 1].rstrip() + "\u2026"
    return f"{client_name}: {title}"


def build_workflow(project: Project, flow: Flow) -> dict[str, Any]:
    """Return the n8n workflow of ``flow`` as plain data, ready to serialise."""
    graph = Graph(project, flow)
    heads = n8n_steps.trigger_nodes(graph, flow.trigger)
    heads = n8n_steps.emit_steps(graph, flow.steps, heads)
    n8n_steps.clear_failed_nodes(graph)
    n8n_steps.scheduled_sla_nodes(graph)
    if flow.key == PURGE_FLOW:
        n8n_steps.purge_nodes(graph, "processed_events", DEDUPE_TTL_DAYS)
    if flow.key == ERROR_FLOW:
        n8n_steps.release_nodes(graph, "processed_events")
    settings: dict[str, Any] = {
        "executionOrder": "v1", "timezone": project.timezone,
        # Failed runs keep their data so they can be retried from the Executions list.
        "saveDataErrorExecution": "all", "saveDataSuccessExecution": "none",
        "saveManualExecutions": True, "callerPolicy": "workflowsFromSameOwner"}
    if flow.key != ERROR_FLOW:
        settings["errorWorkflow"] = workflow_id(project.slug, ERROR_FLOW)
    return {
        "id": workflow_id(project.slug, flow.key),
        "name": workflow_name(project.client_name, flow.title.en),
        "nodes": graph.nodes,
        "connections": graph.connections,
        "active": False,
        "settings": settings,
        "pinData": {},
        "meta": {"templateCredsSetupCompleted": False, "generatedBy": "rabt"},
        "tags": [tag("rabt"), tag(project.slug), tag(flow.module)],
    }


def _project(answers: Answers, plan: Plan, flows: FlowSet,
             spec: Mapping[str, Mapping[str, Any]]) -> Project:
    targets = frozenset(str(step.params["flow"]) for flow in flows.flows for step in flow.walk()
                        if step.kind == "send" and step.params.get("flow"))
    return Project(slug=answers.project_slug, client_name=answers.client_name, crm=plan.crm,
                   platform=plan.platform, flows=flows, spec=spec,
                   workflow_ids={flow.key: workflow_id(answers.project_slug, flow.key)
                                 for flow in flows.flows},
                   catalogue=catalogue(), replay_targets=targets,
                   namespace=uuid.uuid5(ID_NAMESPACE, answers.project_slug),
                   store_count=answers.store_count)


def serialise(workflow: Mapping[str, Any]) -> bytes:
    """Return the workflow file's bytes: UTF-8 JSON with Arabic kept readable."""
    return (json.dumps(workflow, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


def files(answers: Answers, plan: Plan, spec: dict[str, dict[str, Any]],
          desired_state: dict[str, Any]) -> dict[str, bytes]:
    """Return one workflow file per flow and the workflow schema, by project-relative path."""
    flows = build_flows(answers, plan, spec)
    project = _project(answers, plan, flows, spec)
    output = {f"schemas/{SCHEMA_NAME}.schema.json":
              (schemas_dir() / f"{SCHEMA_NAME}.schema.json").read_bytes()}
    output.update({f"{OUTPUT_DIR}/{flow.key}.json": serialise(build_workflow(project, flow))
                   for flow in flows.flows})
    return output


# ---------------------------------------------------------------------------
# Set-up facts for the workflows README

ENV_PATTERN = re.compile(r"\$env(?:\.|\[`)(RABT_[A-Z0-9_]+)")
# A shop's own copy of a variable, such as RABT_SHOPIFY_SHOP_2 for store 2.
STORE_SUFFIX = re.compile(r"^(RABT_[A-Z_]+)_([0-9]+)$")
# What each environment variable holds, for the README's table.
ENV_MEANINGS: dict[str, dict[str, str]] = {
    "RABT_SHOPIFY_SHOP": {"en": "the shop's domain, such as example.myshopify.com",
                          "ar": "نطاق المتجر، مثل example.myshopify.com"},
    "RABT_SHOPIFY_API_VERSION": {"en": "the Shopify Admin API version the app uses",
                                 "ar": "إصدار Shopify Admin API الذي يستخدمه التطبيق"},
    "RABT_SHOPIFY_WEBHOOK_SECRET": {
        "en": "the app's secret, to verify webhooks that reach a Webhook node",
        "ar": "السر الخاص بالتطبيق، للتحقق من إشعارات Webhook التي تصل إلى عقدة Webhook"},
    "RABT_STOREFRONT_WEBHOOK_SECRET": {
        "en": "the storefront's Standard Webhooks signing secret, which starts with whsec_",
        "ar": "سر التوقيع Standard Webhooks لدى واجهة المتجر، ويبدأ بـ whsec_"},
    "RABT_WOOCOMMERCE_DOMAIN": {"en": "the store's domain, such as shop.example.sa",
                                "ar": "نطاق المتجر، مثل shop.example.sa"},
    "RABT_ZOHO_API_DOMAIN": {"en": "the api_domain of the Zoho account's data centre",
                             "ar": "قيمة api_domain لمركز بيانات حساب Zoho"},
    "RABT_WHATSAPP_PHONE_NUMBER_ID": {"en": "the WhatsApp Business phone number id",
                                      "ar": "معرّف رقم هاتف WhatsApp Business"},
    "RABT_WHATSAPP_GRAPH_VERSION": {"en": "the Graph API version, such as v21.0",
                                    "ar": "إصدار Graph API، مثل v21.0"},
    "RABT_WHATSAPP_LANGUAGE": {"en": "the language code of the approved templates",
                               "ar": "رمز لغة القوالب المعتمدة"},
    "RABT_SMS_URL": {"en": "the SMS provider's send URL",
                     "ar": "رابط الإرسال لدى مزوّد الرسائل النصية"},
    "RABT_STOREFRONT_API_URL": {"en": "the storefront's own API base URL",
                                "ar": "الرابط الأساسي لواجهة API الخاصة بواجهة المتجر"},
    "RABT_ALERT_FROM": {"en": "the sender address of failure alerts",
                        "ar": "عنوان المرسل لتنبيهات الأخطاء"},
    "RABT_ALERT_TO": {"en": "the team address that gets failure alerts",
                      "ar": "عنوان الفريق الذي تصله تنبيهات الأخطاء"},
    "RABT_HUBSPOT_EVENT_PREFIX": {"en": "the prefix of custom event names, pe<Hub ID>_",
                                  "ar": "بادئة أسماء الأحداث المخصصة، pe<Hub ID>_"},
    "RABT_HUBSPOT_SUBSCRIPTION_EMAIL": {"en": "the id of the marketing email subscription type",
                                        "ar": "معرّف نوع الاشتراك في رسائل البريد التسويقية"},
    "RABT_HUBSPOT_SUBSCRIPTION_SMS": {"en": "the id of the SMS subscription type",
                                      "ar": "معرّف نوع الاشتراك في الرسائل النصية"},
    "RABT_HUBSPOT_SUBSCRIPTION_WHATSAPP": {"en": "the id of the WhatsApp subscription type",
                                           "ar": "معرّف نوع الاشتراك في واتساب"},
}


def _meaning(name: str) -> dict[str, str]:
    """Return what variable ``name`` holds, naming the shop for a shop's own copy."""
    match = STORE_SUFFIX.match(name)
    if match is None:
        return ENV_MEANINGS.get(name, {"en": "", "ar": ""})
    base = ENV_MEANINGS.get(match.group(1), {"en": "", "ar": ""})
    store = match.group(2)
    return {"en": f"store {store}: {base['en']}", "ar": f"المتجر {store}: {base['ar']}"}


def _credentials(workflows: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    kinds = catalogue()["credentials"]
    for path, workflow in workflows.items():
        for node in workflow["nodes"]:
            for kind, reference in node.get("credentials", {}).items():
                entry = found.setdefault(reference["name"], {
                    "name": reference["name"], "type": kind,
                    "display_name": kinds.get(kind, {}).get("display_name", kind),
                    "fields": kinds.get(kind, {}).get("fields", []), "flows": []})
                flow = Path(path).stem
                if flow not in entry["flows"]:
                    entry["flows"].append(flow)
    return sorted(found.values(), key=lambda item: str(item["name"]))


def _webhooks(workflows: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    hooks = []
    for path, workflow in workflows.items():
        for node in workflow["nodes"]:
            if node["type"] == "n8n-nodes-base.webhook":
                hooks.append({"flow": Path(path).stem, "node": node["name"],
                              "path": node["parameters"]["path"], "registered_by": "you"})
            elif node["type"] in ("n8n-nodes-base.shopifyTrigger",
                                  "n8n-nodes-base.wooCommerceTrigger"):
                hooks.append({"flow": Path(path).stem, "node": node["name"],
                              "path": f"{node['webhookId']}/webhook", "registered_by": "n8n"})
    return hooks


def setup_context(answers: Answers, plan: Plan,
                  spec: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Return what the n8n README lists: files, credentials, variables, tables and webhooks."""
    flows = build_flows(answers, plan, dict(spec))
    project = _project(answers, plan, flows, spec)
    workflows = {f"{OUTPUT_DIR}/{flow.key}.json": build_workflow(project, flow)
                 for flow in flows.flows}
    text = json.dumps(workflows)
    tables = sorted({node["parameters"]["dataTableId"]["value"]
                     for workflow in workflows.values() for node in workflow["nodes"]
                     if node["type"] == "n8n-nodes-base.dataTable"})
    variables = sorted(set(ENV_PATTERN.findall(text)))
    data = catalogue()
    return {
        "n8n_version": data["n8n_version"], "package_version": data["package_version"],
        "node_engines": data["n8n_node_engines"],
        "files": [{"file": Path(path).name, "name": workflow["name"]}
                  for path, workflow in workflows.items()],
        "credentials": _credentials(workflows),
        "variables": [{"name": name, **_meaning(name)} for name in variables],
        "tables": tables,
        "webhooks": _webhooks(workflows),
        "signed_webhooks": any(name.startswith("RABT_SHOPIFY_WEBHOOK_SECRET")
                               for name in variables),
        "signed_storefront": "RABT_STOREFRONT_WEBHOOK_SECRET" in variables,
        "store_count": project.store_count if project.multi_store else 1,
        "zoho": plan.crm == "zoho",
        "hubspot": plan.crm == "hubspot",
        "tickets": any(flow.key == "ticket-sync" for flow in flows.flows),
    }
