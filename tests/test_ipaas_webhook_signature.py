"""Zapier and Tray sheets: the steps after a store webhook check its signature first."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from generator.ipaas import n8n
from generator.ipaas.webhook_signature import CHECKS, PARSE_ONLY_CODE, signature_check
from generator.spec import build_desired_state
from tests.ipaas_cases import load_case
from tests.test_ipaas_projects import bake

# Test-only secrets, made up for these tests.
BODY_SECRET = "test-webhook-secret"
STANDARD_KEY = b"0123456789abcdef01234567"
STANDARD_SECRET = "whsec_" + base64.b64encode(STANDARD_KEY).decode()
BODY = '{"id": 820982911946154500, "email": "test@example.com", "note": "سلام"}'


def node() -> str:
    found = shutil.which("node")
    if found is None:
        reason = "Node.js is not installed, so the Code by Zapier script cannot run"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}. CI is set, so this test must run.")
        pytest.skip(reason)
    return found


def run_code(tmp_path: Path, code: str, input_data: dict[str, str]
             ) -> subprocess.CompletedProcess[str]:
    """Run ``code`` as Code by Zapier runs it: in an async function, with ``inputData``."""
    script = tmp_path / "step.js"
    script.write_text(
        f"const inputData = {json.dumps(input_data)};\n"
        f"(async () => {{\n{code}}})()\n"
        ".then((output) => console.log(JSON.stringify(output)))\n"
        ".catch((error) => { console.error(error.message); process.exit(1); });\n", "utf-8")
    return subprocess.run([node(), str(script)], capture_output=True, text=True, timeout=60,
                          check=False)


def run_tray_script(tmp_path: Path, code: str, variables: dict[str, str]
                    ) -> subprocess.CompletedProcess[str]:
    """Run ``code`` as Tray's Script connector does: call ``exports.step`` with the inputs.

    The file is a CommonJS module, whose ``exports`` object the script fills in.
    """
    script = tmp_path / "tray-step.cjs"
    script.write_text(
        f"{code}"
        f"try {{ console.log(JSON.stringify(exports.step({json.dumps(variables)}))); }}\n"
        "catch (error) { console.error(error.message); process.exit(1); }\n", "utf-8")
    return subprocess.run([node(), str(script)], capture_output=True, text=True, timeout=60,
                          check=False)


def body_signature(secret: str, body: str) -> str:
    digest = hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def standard_input(body: str, timestamp: int, key: bytes = STANDARD_KEY) -> dict[str, str]:
    signed = f"msg_1.{timestamp}.{body}".encode()
    digest = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return {"raw_body": body, "webhook_id": "msg_1", "webhook_timestamp": str(timestamp),
            "signature": f"v1,{digest}", "secret": STANDARD_SECRET}


@pytest.mark.parametrize("platform", ["shopify", "woocommerce"])
def test_body_hmac_check_parses_body(tmp_path: Path, platform: str) -> None:
    result = run_code(tmp_path, CHECKS[platform].code, {
        "raw_body": BODY, "signature": body_signature(BODY_SECRET, BODY),
        "secret": BODY_SECRET})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == json.loads(BODY)


@pytest.mark.parametrize("platform", ["shopify", "woocommerce"])
def test_body_hmac_check_rejects_wrong_secret(tmp_path: Path, platform: str) -> None:
    result = run_code(tmp_path, CHECKS[platform].code, {
        "raw_body": BODY, "signature": body_signature("another-secret", BODY),
        "secret": BODY_SECRET})
    assert result.returncode == 1
    assert "Invalid webhook signature" in result.stderr
    assert result.stdout == ""


def test_body_hmac_check_rejects_changed_body(tmp_path: Path) -> None:
    result = run_code(tmp_path, CHECKS["shopify"].code, {
        "raw_body": BODY.replace("test@", "other@"),
        "signature": body_signature(BODY_SECRET, BODY), "secret": BODY_SECRET})
    assert result.returncode == 1
    assert "Invalid webhook signature" in result.stderr


def test_body_hmac_check_rejects_empty_secret(tmp_path: Path) -> None:
    result = run_code(tmp_path, CHECKS["woocommerce"].code, {
        "raw_body": BODY, "signature": body_signature(BODY_SECRET, BODY), "secret": ""})
    assert result.returncode == 1
    assert 'Input Data "secret" is empty' in result.stderr


def test_standard_check_parses_body(tmp_path: Path) -> None:
    result = run_code(tmp_path, CHECKS["headless"].code, standard_input(BODY, int(time.time())))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == json.loads(BODY)


def test_standard_check_accepts_rotated_key(tmp_path: Path) -> None:
    data = standard_input(BODY, int(time.time()))
    data["signature"] = "v1,bm90LXRoaXMtb25l " + data["signature"]
    result = run_code(tmp_path, CHECKS["headless"].code, data)
    assert result.returncode == 0, result.stderr


def test_standard_check_rejects_old_timestamp(tmp_path: Path) -> None:
    result = run_code(tmp_path, CHECKS["headless"].code,
                      standard_input(BODY, int(time.time()) - 600))
    assert result.returncode == 1
    assert "Invalid webhook-timestamp" in result.stderr


def test_standard_check_rejects_wrong_key(tmp_path: Path) -> None:
    data = standard_input(BODY, int(time.time()), key=b"another-key-of-24-bytes!")
    result = run_code(tmp_path, CHECKS["headless"].code, data)
    assert result.returncode == 1
    assert "Invalid webhook signature" in result.stderr


def test_standard_check_rejects_plain_secret(tmp_path: Path) -> None:
    data = standard_input(BODY, int(time.time()))
    data["secret"] = "not-a-whsec-secret"
    result = run_code(tmp_path, CHECKS["headless"].code, data)
    assert result.returncode == 1
    assert "starts with whsec_" in result.stderr


def test_parse_only_code_parses_body(tmp_path: Path) -> None:
    result = run_code(tmp_path, PARSE_ONLY_CODE, {"raw_body": BODY})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == json.loads(BODY)


def test_signature_check_by_source() -> None:
    assert signature_check("shopify", "shopify") is CHECKS["shopify"]
    assert signature_check("woocommerce", "woocommerce") is CHECKS["woocommerce"]
    assert signature_check("storefront", "headless") is CHECKS["headless"]
    assert signature_check("storefront", "shopify") is None
    assert signature_check("support_inbox", "shopify") is None


def flow_rows(sheet: str, key: str) -> list[list[str]]:
    """Return the step rows of one flow's table in a Zapier sheet."""
    section = sheet.split(f"(`{key}`)", 1)[1].split("\n## ", 1)[0]
    return [[cell.strip() for cell in line.strip("|").split(" | ")]
            for line in section.splitlines() if line.startswith("| ") and line[2].isdigit()]


CASES: list[tuple[str, dict[str, Any], str, str]] = [
    ("shopify-growth", {}, "X-Shopify-Hmac-Sha256", "order-sync"),
    ("woo-startup", {"monthly_orders": 400}, "X-WC-Webhook-Signature", "order-sync"),
    ("headless-nextjs", {"path": "ipaas"}, "webhook-signature", "order-sync"),
]


@pytest.mark.parametrize(("preset", "values", "header", "flow"), CASES,
                         ids=[case[0] for case in CASES])
def test_zapier_sheet_checks_signature_first(tmp_path: Path, preset: str, values: dict[str, Any],
                                             header: str, flow: str) -> None:
    project = bake(tmp_path, preset, values)
    for name in ("zapier-build-sheet.md", "zapier-build-sheet.ar.md"):
        sheet = (project / "workflows" / name).read_text("utf-8")
        assert "'Invalid webhook signature" in sheet, name
        assert "throw new Error(problem);" in sheet, name
        first = flow_rows(sheet, flow)[0]
        assert first[0] == "1", name
        assert first[2] == "Code by Zapier", name
        assert f"`{header}`" in first[3], name
        assert "`raw_body`" in first[3], name
        assert "`secret`" in first[3], name


def test_zapier_sheet_pixel_events_parse_only(tmp_path: Path) -> None:
    project = bake(tmp_path, "shopify-growth", {})
    sheet = (project / "workflows/zapier-build-sheet.md").read_text("utf-8")
    first = flow_rows(sheet, "event-sync")[0]
    assert first[2] == "Code by Zapier"
    assert PARSE_ONLY_CODE.strip() in first[3]
    assert "X-Shopify-Hmac-Sha256" not in first[3]


@pytest.mark.parametrize("platform", ["shopify", "woocommerce"])
def test_tray_check_accepts_good_signature(tmp_path: Path, platform: str) -> None:
    result = run_tray_script(tmp_path, CHECKS[platform].tray_code, {
        "raw_body": BODY, "signature": body_signature(BODY_SECRET, BODY),
        "secret": BODY_SECRET})
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    assert output["valid"] is True
    assert output["body"] == json.loads(BODY)


@pytest.mark.parametrize("platform", ["shopify", "woocommerce"])
def test_tray_check_rejects_bad_signature(tmp_path: Path, platform: str) -> None:
    result = run_tray_script(tmp_path, CHECKS[platform].tray_code, {
        "raw_body": BODY, "signature": body_signature("another-secret", BODY),
        "secret": BODY_SECRET})
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    assert output["valid"] is False
    assert "body" not in output
    assert output["reason"].startswith("Invalid webhook signature")


def test_tray_check_rejects_reserialized_body(tmp_path: Path) -> None:
    # A body parsed and written again loses the store's exact bytes.
    reserialized = json.dumps(json.loads(BODY), separators=(",", ":"))
    result = run_tray_script(tmp_path, CHECKS["shopify"].tray_code, {
        "raw_body": reserialized, "signature": body_signature(BODY_SECRET, BODY),
        "secret": BODY_SECRET})
    assert json.loads(result.stdout)["valid"] is False


def test_tray_check_stops_without_raw_body(tmp_path: Path) -> None:
    result = run_tray_script(tmp_path, CHECKS["shopify"].tray_code, {
        "raw_body": "", "signature": body_signature(BODY_SECRET, ""), "secret": BODY_SECRET})
    assert result.returncode == 1
    assert 'Input variable "raw_body" is empty' in result.stderr
    assert result.stdout == ""


def test_tray_check_stops_without_secret(tmp_path: Path) -> None:
    result = run_tray_script(tmp_path, CHECKS["woocommerce"].tray_code, {
        "raw_body": BODY, "signature": body_signature(BODY_SECRET, BODY), "secret": ""})
    assert result.returncode == 1
    assert 'Input variable "secret" is empty' in result.stderr


def test_tray_standard_check(tmp_path: Path) -> None:
    good = run_tray_script(tmp_path, CHECKS["headless"].tray_code,
                           standard_input(BODY, int(time.time())))
    assert good.returncode == 0, good.stderr
    assert json.loads(good.stdout) == {"valid": True, "body": json.loads(BODY)}
    stale = run_tray_script(tmp_path, CHECKS["headless"].tray_code,
                            standard_input(BODY, int(time.time()) - 600))
    assert json.loads(stale.stdout)["valid"] is False
    assert json.loads(stale.stdout)["reason"].startswith("Invalid webhook-timestamp")
    wrong_key = standard_input(BODY, int(time.time()), key=b"another-key-of-24-bytes!")
    forged = run_tray_script(tmp_path, CHECKS["headless"].tray_code, wrong_key)
    assert json.loads(forged.stdout)["valid"] is False


def test_tray_code_parses_with_node(tmp_path: Path) -> None:
    for name, check in CHECKS.items():
        script = tmp_path / f"{name}.js"
        script.write_text(check.tray_code, "utf-8")
        result = subprocess.run([node(), "--check", str(script)], capture_output=True,
                                text=True, timeout=60, check=False)
        assert result.returncode == 0, (name, result.stderr)
        assert check.tray_code.startswith("exports.step = function(input) {"), name


TRAY_SIGNATURE_TOOLS = ["Script", "Boolean Condition", "Trigger Event Reply",
                        "Trigger Event Reply"]


@pytest.mark.parametrize(("preset", "values", "header", "flow"), CASES,
                         ids=[case[0] for case in CASES])
def test_tray_sheet_checks_signature_first(tmp_path: Path, preset: str, values: dict[str, Any],
                                           header: str, flow: str) -> None:
    project = bake(tmp_path, preset, values)
    for name in ("tray-build-sheet.md", "tray-build-sheet.ar.md"):
        sheet = (project / "workflows" / name).read_text("utf-8")
        assert "exports.step = function(input) {" in sheet, name
        assert "return { valid: false, reason: problem };" in sheet, name
        assert "Await workflow and respond" in sheet, name
        rows = flow_rows(sheet, flow)
        assert [row[2] for row in rows[:4]] == TRAY_SIGNATURE_TOOLS, name
        assert [row[0] for row in rows[:4]] == ["1", "2", "3", "4"], name
        assert f"`{header.lower()}`" in rows[0][3], name
        assert "`raw_body`" in rows[0][3], name
        assert "`secret`" in rows[0][3], name
        assert "`valid`" in rows[1][3], name
        assert "`401`" in rows[2][3], name
        assert "`200`" in rows[3][3], name
        # No step before the check reads the body: the flow's own steps come after it.
        assert not any(row[2] == "Script" for row in rows[1:4]), name
        assert not any(row[2] == "Trigger Event Reply" for row in rows[4:]), name


@pytest.mark.parametrize("name", ["tray-build-sheet.md", "tray-build-sheet.ar.md"])
def test_tray_sheet_unsigned_flow(tmp_path: Path, name: str) -> None:
    project = bake(tmp_path, "shopify-growth", {})
    sheet = (project / "workflows" / name).read_text("utf-8")
    rows = flow_rows(sheet, "event-sync")
    assert rows[0][2] != "Trigger Event Reply"
    assert not any("x-shopify-hmac-sha256" in row[3] for row in rows)
    section = sheet.split("(`event-sync`)", 1)[1].split("\n## ", 1)[0]
    assert "Await workflow and respond" not in section
    assert ("public URL private" in section) or ("العنوان العام لتدفق العمل سريًا" in section)


def test_parse_only_code_fits_table_cell() -> None:
    # The sheets print the code inside a Markdown table row, where "|" ends the cell.
    assert "|" not in PARSE_ONLY_CODE


def headless_workflow(flow: str) -> dict[str, Any]:
    answers, plan, spec = load_case("headless-nextjs", {"path": "ipaas"})
    files = n8n.files(answers, plan, spec, build_desired_state(spec, plan))
    data: dict[str, Any] = json.loads(files[f"workflows/n8n/{flow}.json"])
    return data


def run_n8n_node(tmp_path: Path, code: str, deliveries: list[dict[str, Any]],
                 secret: str = STANDARD_SECRET) -> subprocess.CompletedProcess[str]:
    """Run a Code node as n8n does, with each delivery's raw body as binary ``data``."""
    script = tmp_path / "node.js"
    script.write_text(
        f"const deliveries = {json.dumps(deliveries)};\n"
        f"const $env = {{ RABT_STOREFRONT_WEBHOOK_SECRET: {json.dumps(secret)} }};\n"
        "const $input = { all: () => deliveries.map((delivery) => ({ json: {\n"
        "  headers: delivery.headers, body: JSON.parse(delivery.raw) } })) };\n"
        "const helpers = { getBinaryDataBuffer: async (index, name) => {\n"
        "  if (name !== 'data' || deliveries[index].raw === undefined) throw new Error('none');\n"
        "  return Buffer.from(deliveries[index].raw, 'utf8'); } };\n"
        "const run = new Function('$input', '$env', 'require',\n"
        f"  `return (async () => {{ ${{{json.dumps(code)}}} }}).call(this);`);\n"
        "run.call({ helpers }, $input, $env, require)\n"
        "  .then((items) => console.log(JSON.stringify(items)))\n"
        "  .catch((error) => { console.error(error.message); process.exit(1); });\n", "utf-8")
    return subprocess.run([node(), str(script)], capture_output=True, text=True, timeout=60,
                          check=False)


def storefront_delivery(body: str, timestamp: int, key: bytes = STANDARD_KEY,
                        message_id: str = "msg_1") -> dict[str, Any]:
    signed = standard_input(body, timestamp, key)
    return {"raw": body, "headers": {"webhook-id": message_id,
                                     "webhook-timestamp": signed["webhook_timestamp"],
                                     "webhook-signature": signed["signature"]}}


def test_n8n_storefront_webhook_raw_body() -> None:
    data = headless_workflow("order-sync")
    hooks = [node for node in data["nodes"] if node["type"] == "n8n-nodes-base.webhook"]
    assert hooks
    for hook in hooks:
        assert hook["parameters"]["options"] == {"rawBody": True}
        assert hook["parameters"]["authentication"] == "none"
        assert "credentials" not in hook
        first = data["connections"][hook["name"]]["main"][0][0]["node"]
        code = next(node for node in data["nodes"] if node["name"] == first)
        assert "signatureProblem" in code["parameters"]["jsCode"]


def test_n8n_storefront_signature_checked(tmp_path: Path) -> None:
    data = headless_workflow("order-sync")
    hook = next(node for node in data["nodes"] if node["type"] == "n8n-nodes-base.webhook")
    reader = data["connections"][hook["name"]]["main"][0][0]["node"]
    code = next(node for node in data["nodes"] if node["name"] == reader)["parameters"]["jsCode"]
    now = int(time.time())
    good = storefront_delivery(BODY, now)
    stale = storefront_delivery(BODY, now - 301)
    forged = storefront_delivery(BODY, now, key=b"another-key-of-24-bytes!")
    tampered = {**storefront_delivery(BODY, now), "raw": BODY.replace("820", "821")}
    result = run_n8n_node(tmp_path, code, [good, stale, forged, tampered])
    assert result.returncode == 0, result.stderr
    items = json.loads(result.stdout)
    assert len(items) == 1
    assert items[0]["pairedItem"] == {"item": 0}
    assert items[0]["json"]["email"] == "test@example.com"


def test_n8n_storefront_secret_missing(tmp_path: Path) -> None:
    data = headless_workflow("consent-sync")
    hook = next(node for node in data["nodes"] if node["type"] == "n8n-nodes-base.webhook")
    reader = data["connections"][hook["name"]]["main"][0][0]["node"]
    code = next(node for node in data["nodes"] if node["name"] == reader)["parameters"]["jsCode"]
    result = run_n8n_node(tmp_path, code, [storefront_delivery(BODY, int(time.time()))],
                          secret="")
    assert result.returncode == 1
    assert "RABT_STOREFRONT_WEBHOOK_SECRET must be set" in result.stderr
    no_raw = run_n8n_node(tmp_path, code, [{"headers": {}, "raw": None}])
    assert no_raw.returncode == 1
    assert "switch on its Raw Body option" in no_raw.stderr
