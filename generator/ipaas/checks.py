"""Cross-reference checks of n8n workflows and Make blueprints for ``rabt validate``.

The JSON schemas only check each file's shape. These checks add what the schemas
cannot. Every n8n connection must name a node of its workflow. Every node's type,
typeVersion, parameter names and option values must exist in the committed catalogue
of the pinned n8n release (``generator/data/ipaas/n8n-nodes.json``), and every
parameter that release requires for the node's settings must have a value
(``n8n_required``), and every key of a node's ``credentials`` must be a credential
type the node accepts in that release. Every Make module
id and version must be one listed in ``generator/data/ipaas/make-modules.yaml``.
No Make request and no n8n HTTP Request node may keep a ``<...>`` placeholder of the
flow model in its URL, query or body, because the CRM would receive it as text.
``n8n_structure`` and ``make_structure`` add the checks of how nodes and modules fit
together: unique names and ids, reachable nodes, credentials, expressions, mappings,
JSON bodies, function names and HTTP methods.
A file edited by hand, or one Rabt generated wrongly, then fails validation with the
node and the fix named, before anyone imports it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from generator.ipaas import make_structure, n8n, n8n_required, n8n_structure
from generator.ipaas.n8n_structure import ProjectFacts
from generator.resources import load_data

MAKE_MODULES_DATA = "ipaas/make-modules"
# The catalogue's parameter types whose values are a fixed list of options.
OPTION_TYPES = frozenset({"options", "multiOptions"})
# The platform's own expressions, {{ ... }} in Make and n8n, are left out before the
# placeholder search: a formula may compare with < and >. A closing }}} ends the
# expression at its last brace, as Make reads it.
EXPRESSION = re.compile(r"\{\{.*?\}\}(?!\})", re.S)
# A placeholder of the flow model, such as <deal_name> or <today - 7 days>.
PLACEHOLDER = re.compile(r"<[^<>\s\"'][^<>\"']*>")
HTTP_REQUEST_NODE = "n8n-nodes-base.httpRequest"
# HTTP Request's authentication settings and the parameter that names the credential
# type each one uses.
HTTP_CREDENTIAL_PARAMETERS = {"predefinedCredentialType": "nodeCredentialType",
                              "genericCredentialType": "genericAuthType"}
# The n8n HTTP Request parameters that go into the request, and their Make counterparts.
N8N_REQUEST_PARAMETERS = ("url", "jsonBody", "body", "jsonQuery", "bodyParameters",
                          "queryParameters")
MAKE_REQUEST_FIELDS = ("url", "jsonStringBodyContent", "queryParameters", "bodyParameters")


@dataclass(frozen=True)
class Finding:
    """One problem: a message name from the catalogue, its fix and their fields."""

    name: str
    fix: str
    fields: dict[str, Any] = field(default_factory=dict)


def _closest(value: str, choices: list[str]) -> str:
    """Return the choice nearest to ``value``, or the first few choices when none is near."""
    matches = difflib.get_close_matches(value, choices, n=1)
    if matches:
        return repr(matches[0])
    return ", ".join(repr(choice) for choice in sorted(choices)[:8])


def n8n_workflow_findings(workflow: Any, facts: ProjectFacts | None = None) -> Iterator[Finding]:
    """Yield every connection, node type, parameter and structure problem of one n8n workflow.

    Args:
        workflow: The parsed workflow file. Shapes the schema rejects are skipped
            here, because the schema check already reports them.
        facts: The credential names and workflow ids of the project, when its answers
            can be read; without them those two checks are skipped.
    """
    if not isinstance(workflow, dict):
        return
    nodes = [node for node in workflow.get("nodes", []) if isinstance(node, dict)]
    yield from _connection_findings(workflow.get("connections"), nodes)
    catalogue = n8n.catalogue()
    for found in n8n_structure.structure_findings(workflow, catalogue, facts or ProjectFacts()):
        yield Finding(found.name, found.fix, found.fields)
    for node in nodes:
        yield from _node_findings(node, catalogue)
        parameters = node.get("parameters")
        if node.get("type") == HTTP_REQUEST_NODE and isinstance(parameters, dict):
            for part in N8N_REQUEST_PARAMETERS:
                for placeholder in placeholders(parameters.get(part)):
                    yield Finding("ipaas_n8n_placeholder", "ipaas_placeholder_fix",
                                  {"node": node.get("name"), "part": part,
                                   "placeholder": placeholder})


def placeholders(value: Any) -> list[str]:
    """Return the ``<...>`` placeholders in the texts of ``value``, outside expressions."""
    if isinstance(value, str):
        return PLACEHOLDER.findall(EXPRESSION.sub("", value))
    if isinstance(value, dict):
        return [found for item in value.values() for found in placeholders(item)]
    if isinstance(value, list):
        return [found for item in value for found in placeholders(item)]
    return []


def _connection_findings(connections: Any, nodes: list[dict[str, Any]]) -> Iterator[Finding]:
    if not isinstance(connections, dict):
        return
    names = [str(node.get("name")) for node in nodes]
    for source, outputs in connections.items():
        if source not in names:
            yield Finding("ipaas_n8n_connection_source", "ipaas_n8n_connection_fix",
                          {"node": source, "closest": _closest(source, names)})
        for link in _links(outputs):
            target = link.get("node")
            if target not in names:
                yield Finding("ipaas_n8n_connection_target", "ipaas_n8n_connection_fix",
                              {"source": source, "node": target,
                               "closest": _closest(str(target), names)})


def _links(outputs: Any) -> Iterator[dict[str, Any]]:
    """Yield every link of one node's outputs, of every connection type (main, ai_tool, ...)."""
    if not isinstance(outputs, dict):
        return
    for output_list in outputs.values():
        for output in output_list if isinstance(output_list, list) else []:
            for link in output if isinstance(output, list) else []:
                if isinstance(link, dict):
                    yield link


def _node_findings(node: dict[str, Any], catalogue: dict[str, Any]) -> Iterator[Finding]:
    name = node.get("name")
    node_type = node.get("type")
    entry = catalogue["nodes"].get(node_type)
    if entry is None:
        yield Finding("ipaas_n8n_type", "ipaas_n8n_type_fix",
                      {"node": name, "type": node_type, "n8n": catalogue["n8n_version"],
                       "closest": _closest(str(node_type), list(catalogue["nodes"]))})
        return
    version = str(node.get("typeVersion")).removesuffix(".0")
    known = list(entry["versions"])
    if version not in entry["versions"]:
        yield Finding("ipaas_n8n_type_version", "ipaas_n8n_type_version_fix",
                      {"node": name, "type": node_type, "version": node.get("typeVersion"),
                       "n8n": catalogue["n8n_version"], "known": ", ".join(known)})
        return
    parameters = node.get("parameters")
    yield from _credential_findings(node, entry["versions"][version], catalogue, version)
    if isinstance(parameters, dict):
        context = {"node": name, "type": node_type, "version": version}
        allowed = entry["versions"][version]["parameters"]
        yield from _parameter_findings(parameters, allowed, "", context)
        for missing in n8n_required.missing_parameters(parameters, allowed):
            fields = {**context, "parameter": missing.path}
            if missing.minimum is None:
                yield Finding("ipaas_n8n_required", "ipaas_n8n_required_fix", fields)
            else:
                yield Finding("ipaas_n8n_min_items", "ipaas_n8n_required_fix",
                              {**fields, "minimum": missing.minimum, "count": missing.count})


def accepted_credentials(node: dict[str, Any], version: dict[str, Any],
                         catalogue: dict[str, Any]) -> list[str]:
    """Return the credential types that ``node`` can use at its catalogue ``version``.

    A node accepts the types its description lists. HTTP Request also accepts the
    one type its ``nodeCredentialType`` or ``genericAuthType`` parameter names, as
    its ``authentication`` setting selects, when the catalogue marks that type as
    usable by HTTP Request.
    """
    accepted = list(version["credentials"])
    parameters = node.get("parameters")
    if node.get("type") != HTTP_REQUEST_NODE or not isinstance(parameters, dict):
        return accepted
    selector = HTTP_CREDENTIAL_PARAMETERS.get(str(parameters.get("authentication")))
    chosen = parameters.get(selector) if selector else None
    known = catalogue["credentials"].get(chosen) if isinstance(chosen, str) else None
    if known is not None and known["http_request"] and chosen not in accepted:
        accepted.append(str(chosen))
    return accepted


def _credential_findings(node: dict[str, Any], version_entry: dict[str, Any],
                         catalogue: dict[str, Any], version: str) -> Iterator[Finding]:
    """Yield each key of the node's ``credentials`` that the node does not accept."""
    credentials = node.get("credentials")
    if not isinstance(credentials, dict):
        return
    accepted = accepted_credentials(node, version_entry, catalogue)
    for kind in credentials:
        if kind in accepted:
            continue
        choices = accepted or list(catalogue["credentials"])
        yield Finding("ipaas_n8n_credential", "ipaas_n8n_credential_fix",
                      {"node": node.get("name"), "type": node.get("type"), "version": version,
                       "credential": kind, "n8n": catalogue["n8n_version"],
                       "accepted": ", ".join(repr(item) for item in accepted) or "none",
                       "closest": _closest(kind, choices)})


def _parameter_findings(given: dict[str, Any], allowed: dict[str, Any], prefix: str,
                        context: dict[str, Any]) -> Iterator[Finding]:
    """Yield parameters of ``given`` that the catalogue entry ``allowed`` does not define."""
    for key, value in given.items():
        path = f"{prefix}{key}"
        entry = allowed.get(key)
        if entry is None:
            yield Finding("ipaas_n8n_parameter", "ipaas_n8n_parameter_fix",
                          {**context, "parameter": path,
                           "closest": _closest(key, list(allowed))})
            continue
        yield from _value_findings(value, entry, path, context)


def _value_findings(value: Any, entry: dict[str, Any], path: str,
                    context: dict[str, Any]) -> Iterator[Finding]:
    types = set(entry["types"])
    if isinstance(value, str) and value.startswith("="):
        return  # an expression, which n8n resolves at run time
    if types <= OPTION_TYPES and not entry.get("dynamic"):
        for item in value if isinstance(value, list) else [value]:
            if item not in entry["values"]:
                yield Finding("ipaas_n8n_option", "ipaas_n8n_option_fix",
                              {**context, "parameter": path, "value": item,
                               "allowed": ", ".join(repr(v) for v in entry["values"])})
    if "collection" in types and isinstance(value, dict):
        yield from _parameter_findings(value, entry["children"], f"{path}.", context)
    elif "fixedCollection" in types and isinstance(value, dict) and "resourceMapper" not in types:
        for group, content in value.items():
            if group not in entry["groups"]:
                yield Finding("ipaas_n8n_parameter", "ipaas_n8n_parameter_fix",
                              {**context, "parameter": f"{path}.{group}",
                               "closest": _closest(group, list(entry["groups"]))})
                continue
            for item in content if isinstance(content, list) else [content]:
                if isinstance(item, dict):
                    yield from _parameter_findings(item, entry["groups"][group],
                                                   f"{path}.{group}.", context)


def make_blueprint_findings(blueprint: Any) -> Iterator[Finding]:
    """Yield every module whose id or version Rabt has not confirmed, and placeholders left.

    Args:
        blueprint: The parsed blueprint file. Modules inside router routes and error
            handler routes are checked too.
    """
    if not isinstance(blueprint, dict):
        return
    confirmed: dict[str, Any] = load_data(MAKE_MODULES_DATA)["modules"]
    for module in make_structure.modules(blueprint.get("flow")):
        module_id = module.get("module")
        metadata = module.get("metadata")
        designer = metadata.get("designer") if isinstance(metadata, dict) else None
        label = designer.get("name", "") if isinstance(designer, dict) else ""
        context = {"id": module.get("id"), "label": label}
        if module_id not in confirmed:
            yield Finding("ipaas_make_module", "ipaas_make_module_fix",
                          {**context, "module": module_id,
                           "closest": _closest(str(module_id), list(confirmed))})
        elif module.get("version") != confirmed[module_id]["version"]:
            yield Finding("ipaas_make_version", "ipaas_make_version_fix",
                          {**context, "module": module_id, "version": module.get("version"),
                           "expected": confirmed[module_id]["version"]})
        mapper = module.get("mapper")
        if module_id == "http:MakeRequest" and isinstance(mapper, dict):
            for part in MAKE_REQUEST_FIELDS:
                for placeholder in placeholders(mapper.get(part)):
                    yield Finding("ipaas_make_placeholder", "ipaas_placeholder_fix",
                                  {**context, "part": part, "placeholder": placeholder})
    for name, fix, fields in make_structure.structure_findings(blueprint):
        yield Finding(name, fix, fields)
