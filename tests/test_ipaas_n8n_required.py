"""Required n8n parameters: display conditions, defaults and empty values, as n8n 2.8.4 reads them.

Each case gives one node's parameters and the catalogue entry of its type version, and
states which required parameters n8n's editor would report as missing.
"""

from __future__ import annotations

from typing import Any

import pytest

from generator.ipaas import n8n, n8n_required
from tests.test_ipaas_n8n import CASE_IDS, workflows


def parameters_of(node_type: str, version: str) -> dict[str, Any]:
    entry: dict[str, Any] = n8n.catalogue()["nodes"][node_type]["versions"][version]
    return entry["parameters"]


def paths(given: dict[str, Any], allowed: dict[str, Any]) -> list[str]:
    return [item.path for item in n8n_required.missing_parameters(given, allowed)]


def missing(node_type: str, version: str, given: dict[str, Any]) -> list[str]:
    return paths(given, parameters_of(node_type, version))


HTTP = ("n8n-nodes-base.httpRequest", "4.2")
POSTGRES = ("n8n-nodes-base.postgres", "2.5")
LOCATOR = {"__rl": True, "mode": "list", "value": "orders"}


@pytest.mark.parametrize(("node", "given", "expected"), [
    (HTTP, {}, ["url"]),
    (HTTP, {"url": ""}, ["url"]),
    (HTTP, {"url": "https://example.com"}, []),
    (HTTP, {"url": "={{ $json.url }}"}, []),
    # The trigger's event has no default, so leaving it out is an error.
    (("n8n-nodes-base.wooCommerceTrigger", "1"), {}, ["event"]),
    (("n8n-nodes-base.wooCommerceTrigger", "1"), {"event": "order.created"}, []),
    # The default operation is insert, which needs a table.
    (POSTGRES, {}, ["table"]),
    (POSTGRES, {"table": LOCATOR}, []),
    (POSTGRES, {"table": {**LOCATOR, "value": ""}}, ["table"]),
    (POSTGRES, {"table": {**LOCATOR, "value": 7}}, []),
    # executeQuery hides the table and shows the query instead.
    (POSTGRES, {"operation": "executeQuery"}, ["query"]),
    (POSTGRES, {"operation": "executeQuery", "query": "SELECT 1"}, []),
    # A condition on an expression counts as shown, as n8n reads it.
    (POSTGRES, {"operation": "={{ $json.op }}", "table": LOCATOR}, ["query"]),
    # Wait: the date is required only when the node resumes at a given time.
    (("n8n-nodes-base.wait", "1.1"), {"resume": "timeInterval"}, []),
    (("n8n-nodes-base.wait", "1.1"), {"resume": "specificTime"}, ["dateTime"]),
    # The trigger's inputs need at least one item unless it passes all data through.
    (("n8n-nodes-base.executeWorkflowTrigger", "1.1"), {}, ["workflowInputs.values"]),
    (("n8n-nodes-base.executeWorkflowTrigger", "1.1"), {"inputSource": "passthrough"}, []),
    # Inside a fixed collection, each item the file sets is checked.
    (("n8n-nodes-base.executeWorkflowTrigger", "1.1"),
     {"inputSource": "workflowInputs",
      "workflowInputs": {"values": [{"name": "order_id"}, {"type": "number"}]}},
     ["workflowInputs.values[1].name"]),
])
def test_required_parameter_cases(node: tuple[str, str], given: dict[str, Any],
                                  expected: list[str]) -> None:
    assert missing(*node, given) == expected


def test_required_with_default_not_missing() -> None:
    # Version 1 requires dataPropertyName for string responses, and it defaults to "data".
    assert missing("n8n-nodes-base.httpRequest", "1",
                   {"url": "https://example.com", "responseFormat": "string"}) == []


def test_hide_condition_on_root_value() -> None:
    allowed = {
        "mode": {"definitions": [{"type": "options", "default": "a"}]},
        "key": {"definitions": [{"type": "string", "default": "", "required": True,
                                 "hide": {"mode": ["b"]}}]},
    }
    assert paths({}, allowed) == ["key"]
    assert paths({"mode": "b"}, allowed) == []


def test_condition_operators() -> None:
    allowed = {
        "limit": {"definitions": [{"type": "number", "default": 5}]},
        "note": {"definitions": [{"type": "string", "default": "", "required": True,
                                  "show": {"limit": [{"_cnd": {"gte": 10}}]}}]},
        "tags": {"definitions": [{"type": "multiOptions", "default": [], "required": True,
                                  "show": {"limit": [{"_cnd": {"not": 5}}]}}]},
    }
    assert paths({}, allowed) == []
    assert paths({"limit": 12}, allowed) == ["note", "tags"]
    assert paths({"limit": 12, "note": "x", "tags": ["a"]}, allowed) == []


def test_condition_cycle_ends() -> None:
    allowed = {
        "a": {"definitions": [{"type": "string", "default": "", "required": True,
                               "show": {"b": ["x"]}}]},
        "b": {"definitions": [{"type": "string", "default": "x", "show": {"a": ["y"]}}]},
    }
    assert paths({}, allowed) == []


def test_types_n8n_never_calls_empty() -> None:
    for kind in ("number", "boolean", "json", "credentialsSelect", "collection"):
        assert n8n_required.is_empty(kind, "") is False


def test_no_required_child_in_collection() -> None:
    """n8n looks a collection's children up beside it, so the check skips them."""
    def required_children(parameters: dict[str, Any]) -> list[str]:
        found = []
        for name, entry in parameters.items():
            for child_name, child in entry.get("children", {}).items():
                if any(item.get("required") for item in child["definitions"]):
                    found.append(f"{name}.{child_name}")
                found += required_children({child_name: child})
            for group in entry.get("groups", {}).values():
                found += required_children(group)
        return found

    for node_type, node in n8n.catalogue()["nodes"].items():
        if node_type in ("n8n-nodes-base.zohoCrm", "n8n-nodes-base.whatsApp"):
            continue  # not written into workflows
        for version, entry in node["versions"].items():
            assert required_children(entry["parameters"]) == [], f"{node_type}@{version}"


@pytest.mark.parametrize("case", CASE_IDS)
def test_generated_nodes_have_required(case: str) -> None:
    catalogue = n8n.catalogue()["nodes"]
    for path, workflow in workflows(case).items():
        for node in workflow["nodes"]:
            version = str(node["typeVersion"]).removesuffix(".0")
            allowed = catalogue[node["type"]]["versions"][version]["parameters"]
            found = paths(node["parameters"], allowed)
            assert found == [], f"{path}: {node['name']}"


def test_short_group_counts() -> None:
    found = list(n8n_required.missing_parameters(
        {"workflowInputs": {"values": []}},
        parameters_of("n8n-nodes-base.executeWorkflowTrigger", "1.1")))
    assert found == [n8n_required.Missing("workflowInputs.values", minimum=1, count=0)]


def test_stored_values_without_defaults() -> None:
    allowed = parameters_of(*POSTGRES)
    stored = list(n8n_required.missing_parameters({}, allowed, defaults=False))
    assert [item.path for item in stored] == ["schema", "table"]
    assert paths({}, allowed) == ["table"]
