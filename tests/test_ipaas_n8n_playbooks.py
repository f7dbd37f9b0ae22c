"""Playbook workflows in n8n: each consent gate guards only its own send.

A gate comes after the quiet-hours wait, so an unsubscribe during the wait is seen,
and a contact the gate drops still reaches the later steps of the playbook.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.test_ipaas_n8n_run import linked, workflow

PRESETS = ["shopify-growth", "jeddah-fashion-zoho"]


def descendants(data: dict[str, Any], start: str) -> set[str]:
    found: set[str] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        for output in data["connections"].get(name, {}).get("main", []):
            for link in output:
                if link["node"] not in found:
                    found.add(link["node"])
                    todo.append(link["node"])
    return found


def position(data: dict[str, Any], name: str) -> list[int]:
    node = next(item for item in data["nodes"] if item["name"] == name)
    result: list[int] = node["position"]
    return result


@pytest.mark.parametrize("preset", PRESETS)
def test_gate_follows_quiet_hours(preset: str) -> None:
    data = workflow(preset, "abandoned-checkout")
    assert linked(data, "Wait for the end of quiet hours", "Check email consent: request")
    assert linked(data, "Wait for the end of quiet hours (2)",
                  "Check whatsapp consent: request")


@pytest.mark.parametrize("preset", PRESETS)
def test_failed_gate_reaches_next_step(preset: str) -> None:
    data = workflow(preset, "abandoned-checkout")
    after_gate = descendants(data, "Check email consent")
    assert "Send step 1 by email: continue" in after_gate
    assert "Wait for the next step" not in after_gate
    assert "Check whatsapp consent" not in after_gate
    assert linked(data, "Wait for the end of quiet hours", "Wait for the next step")


@pytest.mark.parametrize("preset", PRESETS)
def test_gated_send_runs_first(preset: str) -> None:
    data = workflow(preset, "abandoned-checkout")
    # n8n's v1 order runs the child with the smaller y first; the send must not wait
    # behind the next step's Wait node.
    assert position(data, "Check email consent: request")[1] < \
        position(data, "Wait for the next step")[1]


@pytest.mark.parametrize("flow", ["post-purchase", "win-back"])
def test_scheduled_gate_after_wait(flow: str) -> None:
    data = workflow("shopify-growth", flow)
    gates = [node["name"] for node in data["nodes"]
             if node["name"].startswith("Check ") and node["name"].endswith(": request")]
    assert gates
    for gate in gates:
        sources = [name for name, links in data["connections"].items()
                   if any(link["node"] == gate for output in links["main"] for link in output)]
        assert len(sources) == 1
        assert sources[0].startswith("Wait for the end of quiet hours"), sources
