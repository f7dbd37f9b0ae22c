"""Structure checks of one n8n workflow for ``rabt validate``: what n8n imports without
complaint but then runs wrongly or not at all.

- Node names and node ids must be unique: n8n keys connections by name, so a second
  node of the same name takes the first one's links.
- Every node must be reached from a trigger through the connections, otherwise it
  and the chain after it never run.
- A node must carry the credential that its settings require (n8n-nodes-base 2.8.1:
  the Shopify Trigger and Webhook pick it by ``authentication``, the HTTP Request by
  ``nodeCredentialType`` or ``genericAuthType``, and Postgres, Send Email and the
  WooCommerce Trigger always need theirs). Its name must be one the project's setup
  table lists, and ``settings.errorWorkflow`` must be a workflow of the project.
- Every ``{{`` of an expression parameter (a string that starts with ``=``) needs its
  ``}}``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

# A complete n8n expression; whatever is left of "{{" after removing these is unclosed.
EXPRESSION = re.compile(r"\{\{.*?\}\}", re.S)
HTTP_REQUEST_NODE = "n8n-nodes-base.httpRequest"
# Nodes whose one credential n8n-nodes-base 2.8.1 marks required whatever the settings.
ALWAYS_CREDENTIAL = {
    "n8n-nodes-base.postgres": "postgres",
    "n8n-nodes-base.emailSend": "smtp",
    "n8n-nodes-base.wooCommerceTrigger": "wooCommerceApi",
}
# Nodes whose credential follows their ``authentication`` value (n8n-nodes-base 2.8.1).
CREDENTIAL_BY_AUTHENTICATION = {
    "n8n-nodes-base.shopifyTrigger": {"apiKey": "shopifyApi",
                                      "accessToken": "shopifyAccessTokenApi",
                                      "oAuth2": "shopifyOAuth2Api"},
    "n8n-nodes-base.webhook": {"basicAuth": "httpBasicAuth", "headerAuth": "httpHeaderAuth",
                               "jwtAuth": "jwtAuth"},
}
# Parameters that contain code rather than an expression.
CODE_PARAMETERS = frozenset({"jsCode", "pythonCode"})


@dataclass(frozen=True)
class ProjectFacts:
    """Names and ids that the project's answers require the workflows to use.

    Attributes:
        credential_names: The credential names of the n8n README's setup table.
        workflow_ids: The ids of the project's n8n workflows.
        error_workflow_id: The id of the project's error-alert workflow.
        known: Whether the facts come from the project's answers; without them the
            credential name and error workflow checks are skipped.
    """

    credential_names: frozenset[str] = frozenset()
    workflow_ids: frozenset[str] = frozenset()
    error_workflow_id: str = ""
    known: bool = False


@dataclass(frozen=True)
class StructureFinding:
    """One problem: a message name from the catalogue, its fix and their fields."""

    name: str
    fix: str
    fields: dict[str, Any]


def structure_findings(workflow: dict[str, Any], catalogue: Mapping[str, Any],
                       facts: ProjectFacts) -> Iterator[StructureFinding]:
    """Yield duplicate, unreachable, credential, error workflow and expression problems."""
    nodes = [node for node in workflow.get("nodes", []) if isinstance(node, dict)]
    yield from _duplicates(nodes, "name", "ipaas_n8n_duplicate_name")
    yield from _duplicates(nodes, "id", "ipaas_n8n_duplicate_id")
    yield from _unreachable(nodes, workflow.get("connections"), catalogue)
    for node in nodes:
        yield from _credential_findings(node, facts)
        yield from _expression_findings(node)
    settings = workflow.get("settings")
    target = settings.get("errorWorkflow") if isinstance(settings, dict) else None
    if facts.known and isinstance(target, str) and target not in facts.workflow_ids:
        yield StructureFinding("ipaas_n8n_error_workflow", "ipaas_n8n_error_workflow_fix",
                               {"value": target, "expected": facts.error_workflow_id})


def _duplicates(nodes: list[dict[str, Any]], key: str, name: str) -> Iterator[StructureFinding]:
    seen: set[Any] = set()
    for node in nodes:
        value = node.get(key)
        if value is None:
            continue
        if value in seen:
            yield StructureFinding(name, f"{name}_fix",
                                   {"value": value, "node": node.get("name")})
        seen.add(value)


def _unreachable(nodes: list[dict[str, Any]], connections: Any,
                 catalogue: Mapping[str, Any]) -> Iterator[StructureFinding]:
    """Yield the first node of every chain that no trigger reaches."""
    if not isinstance(connections, dict):
        return
    targets: dict[str, list[str]] = {}
    for source, outputs in connections.items():
        for output_list in outputs.values() if isinstance(outputs, dict) else []:
            for output in output_list if isinstance(output_list, list) else []:
                for link in output if isinstance(output, list) else []:
                    if isinstance(link, dict) and isinstance(link.get("node"), str):
                        targets.setdefault(source, []).append(link["node"])
    names = [str(node.get("name")) for node in nodes]
    known_types = catalogue["nodes"]
    starts = [str(node.get("name")) for node in nodes
              if known_types.get(node.get("type"), {}).get("trigger")]
    if not starts:
        return  # no trigger at all: an unknown node type, which its own check reports
    reached = _reach(starts, targets)
    lost = [name for name in names if name not in reached]
    has_lost_source = {target for source in lost for target in targets.get(source, [])}
    heads = [name for name in lost if name not in has_lost_source] or lost[:1]
    for head in heads:
        after = len(_reach([head], targets) & set(lost)) - 1
        yield StructureFinding("ipaas_n8n_unreachable", "ipaas_n8n_unreachable_fix",
                               {"node": head, "after": after})


def _reach(starts: list[str], targets: dict[str, list[str]]) -> set[str]:
    reached = set(starts)
    queue = list(starts)
    while queue:
        for target in targets.get(queue.pop(), []):
            if target not in reached:
                reached.add(target)
                queue.append(target)
    return reached


def required_credential(node: dict[str, Any]) -> str | None:
    """Return the credential type that ``node``'s settings require, or None."""
    node_type = str(node.get("type"))
    stored = node.get("parameters")
    parameters: dict[str, Any] = stored if isinstance(stored, dict) else {}
    authentication = str(parameters.get("authentication"))
    if node_type in ALWAYS_CREDENTIAL:
        return ALWAYS_CREDENTIAL[node_type]
    if node_type in CREDENTIAL_BY_AUTHENTICATION:
        return CREDENTIAL_BY_AUTHENTICATION[node_type].get(authentication)
    if node_type == HTTP_REQUEST_NODE:
        if authentication == "predefinedCredentialType":
            return str(parameters.get("nodeCredentialType") or "") or None
        if authentication == "genericCredentialType":
            return str(parameters.get("genericAuthType") or "") or None
    return None


def _credential_findings(node: dict[str, Any], facts: ProjectFacts) -> Iterator[StructureFinding]:
    credentials = node.get("credentials")
    credentials = credentials if isinstance(credentials, dict) else {}
    kind = required_credential(node)
    if kind is not None and kind not in credentials:
        yield StructureFinding("ipaas_n8n_credential_missing", "ipaas_n8n_credential_missing_fix",
                               {"node": node.get("name"), "kind": kind})
    if not facts.known:
        return
    for kind, reference in credentials.items():
        name = reference.get("name") if isinstance(reference, dict) else None
        if name not in facts.credential_names:
            yield StructureFinding(
                "ipaas_n8n_credential_name", "ipaas_n8n_credential_name_fix",
                {"node": node.get("name"), "kind": kind, "value": name,
                 "known": ", ".join(sorted(facts.credential_names))})


def _expression_findings(node: dict[str, Any]) -> Iterator[StructureFinding]:
    parameters = node.get("parameters")
    for path, text in _expression_strings(parameters if isinstance(parameters, dict) else {}, ""):
        if "{{" in EXPRESSION.sub("", text):
            yield StructureFinding("ipaas_n8n_unclosed_expression",
                                   "ipaas_n8n_unclosed_expression_fix",
                                   {"node": node.get("name"), "parameter": path})


def _expression_strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        if value.startswith("="):
            yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            if key not in CODE_PARAMETERS:
                yield from _expression_strings(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _expression_strings(item, f"{path}[{index}]")
