"""n8n Code nodes run in order with ``node`` on made-up items, with stub HTTP responses.

A chain of a workflow's nodes runs in one Node.js process: each Code node's code is
the body of an async function with ``$input``, ``$()``, ``$env`` and ``$workflow``
set as n8n sets them, and each HTTP Request node is replaced by a stub response.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from functools import cache
from typing import Any

import pytest

from generator.ipaas import n8n
from generator.spec import build_desired_state
from tests.ipaas_cases import load_case

RUNNER = """
const STEPS = %s;
const outputs = {};
let items = %s;
(async () => {
  for (const step of STEPS) {
    if (step.stub !== undefined) {
      items = items.map((item) => ({ json: step.stub(item.json) }));
    } else {
      const $input = { all: () => items, first: () => items[0] };
      const $ = (name) => ({ all: () => {
        if (!(name in outputs)) throw new Error(name);
        return outputs[name];
      } });
      const $env = { RABT_WHATSAPP_LANGUAGE: 'ar' };
      const $workflow = { id: 'wf-test' };
      const run = new Function('$input', '$', '$env', '$workflow',
        `return (async () => {\\n${step.code}\\n})();`);
      items = await run($input, $, $env, $workflow);
    }
    outputs[step.name] = items;
  }
  process.stdout.write(JSON.stringify(items.map((item) => item.json)));
})().catch((error) => { console.error(error); process.exit(1); });
"""


@cache
def workflow(preset: str, flow: str) -> dict[str, Any]:
    answers, plan, spec = load_case(preset, {})
    files = n8n.files(answers, plan, spec, build_desired_state(spec, plan))
    data: dict[str, Any] = json.loads(files[f"workflows/n8n/{flow}.json"])
    return data


def node_code(data: dict[str, Any], name: str) -> str:
    node = next(item for item in data["nodes"] if item["name"] == name)
    code: str = node["parameters"]["jsCode"]
    return code


def run_chain(steps: list[tuple[str, str | None, str | None]], items: list[Any]) -> Any:
    """Run ``(name, code, stub)`` steps on ``items``; a stub is a JavaScript function."""
    node = shutil.which("node")
    if node is None:
        if os.environ.get("CI"):
            pytest.fail("node (Node.js) was not found, and CI is set")
        pytest.skip("node (Node.js) not found: the Code nodes cannot run")
    parts = []
    for name, code, stub in steps:
        if stub is not None:
            parts.append(f"{{ name: {json.dumps(name)}, stub: {stub} }}")
        else:
            parts.append(f"{{ name: {json.dumps(name)}, code: {json.dumps(code)} }}")
    script = RUNNER % ("[" + ",\n".join(parts) + "]",
                       json.dumps([{"json": item} for item in items], ensure_ascii=False))
    done = subprocess.run([node, "-e", script], capture_output=True, text=True, check=False,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def linked(data: dict[str, Any], source: str, target: str) -> bool:
    outputs = data["connections"].get(source, {}).get("main", [])
    return any(link["node"] == target for output in outputs for link in output)


SEARCH = "Find the customers whose latest order is 52 days old"
GATE = "Check whatsapp consent"
SEND = "Send step 2 by whatsapp"


def whatsapp_chain(data: dict[str, Any], subscribed: str) -> list[tuple[str, str | None,
                                                                       str | None]]:
    stub = ("() => ({ results: [{ channel: 'WHATSAPP', statusState: "
            f"{json.dumps(subscribed)} }}] }})")
    return [
        (f"{SEARCH}: results", node_code(data, f"{SEARCH}: results"), None),
        (f"{GATE}: request", node_code(data, f"{GATE}: request"), None),
        (f"{GATE}: read", None, stub),
        (GATE, node_code(data, GATE), None),
        (f"{SEND}: message", node_code(data, f"{SEND}: message"), None),
    ]


def search_answer() -> dict[str, Any]:
    return {"results": [{"id": "501", "properties": {
        "email": "noura@example.sa", "firstname": "نورة", "lastname": "عبد الله",
        "ecom_phone_e164": "+966501234567", "phone": "+966501234567",
        "ecom_customer_id": "77", "ecom_last_order_at": "2026-11-25T10:00:00+03:00"}}]}


def test_win_back_search_asks_properties() -> None:
    data = workflow("shopify-growth", "win-back")
    code = node_code(data, f"{SEARCH}: request")
    assert '"properties": [' in code
    for name in ("email", "firstname", "ecom_phone_e164", "ecom_customer_id"):
        assert f'"{name}"' in code, name


def test_win_back_nodes_linked() -> None:
    data = workflow("shopify-growth", "win-back")
    assert linked(data, SEARCH, f"{SEARCH}: results")
    assert linked(data, f"{SEARCH}: results", "Wait for the end of quiet hours: resume time (2)")
    assert linked(data, "Wait for the end of quiet hours (2)", f"{GATE}: request")
    assert linked(data, f"{GATE}: read", GATE)
    assert linked(data, f"{SEND}: message", SEND)


def test_win_back_consenting_contact_sent() -> None:
    data = workflow("shopify-growth", "win-back")
    sent = run_chain(whatsapp_chain(data, "SUBSCRIBED"), [search_answer()])
    assert len(sent) == 1
    body = sent[0]["body"]
    assert body["to"] == "966501234567"
    assert body["template"]["components"][0]["parameters"][0]["text"] == "نورة"


def test_win_back_without_consent_dropped() -> None:
    data = workflow("shopify-growth", "win-back")
    sent = run_chain(whatsapp_chain(data, "NOT_SUBSCRIBED"), [search_answer()])
    assert sent == []


def test_zoho_win_back_consenting_sent() -> None:
    data = workflow("jeddah-fashion-zoho", "win-back")
    record = {"id": "9001", "Email": "noura@example.sa", "First_Name": "نورة",
              "Last_Name": "عبد الله", "Mobile": "+966501234567", "Ecom_Customer_ID": "77",
              "Ecom_WhatsApp_Opt_In": True}
    stub = "() => ({ data: [{ Ecom_WhatsApp_Opt_In: true }] })"
    steps = whatsapp_chain(data, "SUBSCRIBED")
    steps[2] = (f"{GATE}: read", None, stub)
    sent = run_chain(steps, [{"data": [record]}])
    assert len(sent) == 1
    assert sent[0]["body"]["to"] == "966501234567"
