"""The project's storefront helper (``storefront/storefront-events.mjs``) against a real intake.

Node.js runs a short script that builds, signs and posts events with the helper to
the intake served by uvicorn on 127.0.0.1. Only headless projects have ``storefront/``;
the tests skip elsewhere. They skip when ``node`` is missing, and fail then when CI
is set.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from conftest import RunningIntake
from intake_support import STOREFRONT_SECRET
from storesync.settings import Settings

HELPER = Path(__file__).resolve().parents[2] / "storefront" / "storefront-events.mjs"
NODE_TIMEOUT_SECONDS = 60

# Builds an event with Arabic text, sends it twice (the second is a resend after a lost
# reply), then posts a changed body under the first body's signature.
SCRIPT = """
const helper = await import(process.env.HELPER_URL);
const event = helper.buildEvent("add_to_cart", {
  customer: { email: "helper.test@example.com" },
  cart: { token: "cart-helper-1", value: "145.00", currency: "SAR" },
  product: { sku: "OUD-ROYAL-50", title: "عطر عود ملكي - 50 مل" },
}, { eventId: "evt_helper_1" });
const first = await helper.sendEvent(event, { maxAttempts: 1 });
const again = await helper.sendEvent(event, { maxAttempts: 1 });
const config = helper.readConfig();
const body = Buffer.from(JSON.stringify(event), "utf8");
const now = Math.floor(Date.now() / 1000);
const headers = helper.signedHeaders(config.key, "evt_helper_2", now, body);
const cheaper = { ...event, cart: { ...event.cart, value: "1.00" } };
const changed = Buffer.from(JSON.stringify(cheaper), "utf8");
const response = await fetch(config.intakeUrl, { method: "POST", headers, body: changed });
const tampered = { status: response.status, body: await response.json() };
console.log(JSON.stringify({ event, first, again, tampered }));
"""

Start = Callable[..., RunningIntake]
MakeSettings = Callable[..., Settings]


def node_or_skip() -> str:
    """Return the path of ``node``; skip the test when it is missing, or fail when CI is set."""
    node = shutil.which("node")
    if node is None:
        reason = "Node.js is not installed, so the storefront helper cannot run"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}. CI is set, so this test must run.")
        pytest.skip(reason)
    return node


def run_helper(base_url: str) -> dict[str, Any]:
    """Run the helper script against the intake at ``base_url`` and return its JSON output."""
    if not HELPER.is_file():
        pytest.skip("this project has no storefront/ folder: only headless projects get it")
    node = node_or_skip()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HELPER_URL": HELPER.as_uri(),
        "STOREFRONT_INTAKE_URL": f"{base_url}/webhooks/storefront",
        "STOREFRONT_WEBHOOK_SECRET": STOREFRONT_SECRET,
    }
    result = subprocess.run([node, "--input-type=module", "-e", SCRIPT], env=env,
                            capture_output=True, text=True, timeout=NODE_TIMEOUT_SECONDS,
                            check=False)
    assert result.returncode == 0, result.stderr
    output: dict[str, Any] = json.loads(result.stdout)
    return output


def test_helper_event_stored(make_settings: MakeSettings, start_intake: Start) -> None:
    intake = start_intake(make_settings("headless"))
    output = run_helper(intake.base_url)

    assert output["first"]["status"] == 200
    assert output["first"]["response"] == {"status": "queued", "delivery_id": "evt_helper_1"}
    assert output["again"]["response"] == {"status": "duplicate", "delivery_id": "evt_helper_1"}
    assert intake.depth() == 1

    queue = intake.services.queue.huey
    queue.execute(queue.dequeue())
    [delivery] = intake.handler.deliveries
    assert delivery.source == "storefront"
    assert delivery.topic == "add_to_cart"
    assert delivery.delivery_id == "evt_helper_1"
    assert delivery.shop == "test-store"
    assert json.loads(delivery.body) == output["event"]
    assert json.loads(delivery.body)["product"]["title"] == "عطر عود ملكي - 50 مل"


def test_helper_changed_body_rejected(make_settings: MakeSettings, start_intake: Start) -> None:
    intake = start_intake(make_settings("headless"))
    output = run_helper(intake.base_url)

    assert output["tampered"]["status"] == 401
    assert output["tampered"]["body"]["error"] == "invalid_signature"
    assert "matches a configured secret" in output["tampered"]["body"]["reason"]
    # Only the helper's own event is queued; the changed body left nothing behind.
    assert intake.depth() == 1
