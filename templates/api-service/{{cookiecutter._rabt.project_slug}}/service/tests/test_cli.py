"""The command line: check-config, quarantine commands, and the intake as a real process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from intake_support import (
    SHOPIFY_SECRET,
    encode_body,
    sample_order,
    shopify_headers,
    write_spec,
)
from storesync.cli import main
from storesync.db import Database
from storesync.delivery import Delivery
from storesync.quarantine import Quarantine
from storesync.settings import load_settings

SERVICE_DIR = Path(__file__).resolve().parents[1]
MakeEnv = Callable[..., dict[str, str]]


@pytest.fixture
def env(tmp_path: Path) -> MakeEnv:
    def build(**values: str) -> dict[str, str]:
        base = {"DATA_DIR": str(tmp_path / "var"),
                "SPEC_DIR": str(write_spec(tmp_path / "spec", "shopify")),
                "SHOPIFY_WEBHOOK_SECRETS": SHOPIFY_SECRET}
        base.update(values)
        return base

    return build


def test_check_config_ok(env: MakeEnv) -> None:
    result = CliRunner().invoke(main, ["check-config"], env=env())
    assert result.exit_code == 0, result.output
    assert "Accepted platforms: shopify, storefront" in result.output
    assert "shopify: 1 webhook secret\n" in result.output
    assert "storefront: 1 webhook secret (sandbox placeholder)" in result.output
    assert SHOPIFY_SECRET not in result.output


@pytest.mark.parametrize(("target", "switch"), [("hubspot", "HUBSPOT_ACCESS_TOKEN"),
                                                ("zoho", "ZOHO_REFRESH_TOKEN")])
def test_check_config_names_sandbox_switch(env: MakeEnv, target: str, switch: str) -> None:
    result = CliRunner().invoke(main, ["check-config"], env=env(CRM_TARGET=target))
    assert result.exit_code == 0, result.output
    assert f"Mode: sandbox ({switch} not set)" in result.output


@pytest.mark.parametrize(("target", "name", "switch"), [
    ("hubspot", "HubSpot", "HUBSPOT_ACCESS_TOKEN"),
    ("zoho", "Zoho CRM", "ZOHO_REFRESH_TOKEN"),
])
def test_help_names_configured_crm(env: MakeEnv, target: str, name: str, switch: str) -> None:
    values = env(CRM_TARGET=target)

    def help_text(*args: str) -> str:
        result = CliRunner().invoke(main, [*args, "--help"], env=values)
        assert result.exit_code == 0, result.output
        assert "{crm}" not in result.output
        assert "{switch}" not in result.output
        return " ".join(result.output.split())

    assert f"Serve the local {name} stand-in" in help_text("standin")
    assert f"Write the outbox to {name} in batches" in help_text("flusher")
    assert f"Sandbox mode is on while {switch} is not set" in help_text("run")
    assert f"records {name} rejected" in help_text("dead-letters")
    assert f"{name}'s error" in help_text("dead-letters", "show")
    assert f"Write the outbox to {name}" in help_text()


def test_check_config_invalid_exits_2(env: MakeEnv) -> None:
    result = CliRunner().invoke(main, ["check-config"], env=env(PORT="eighty"))
    assert result.exit_code == 2
    assert "PORT: 'eighty' is not a whole number." in result.output
    assert "Traceback" not in result.output


def test_check_config_redis_down_exits_1(env: MakeEnv) -> None:
    result = CliRunner().invoke(main, ["check-config"], env=env(REDIS_URL="redis://127.0.0.1:1/0"))
    assert result.exit_code == 1
    assert "Error: Redis (REDIS_URL): ConnectionError" in result.output


def _quarantine_one(environ: dict[str, str]) -> int:
    settings = load_settings(environ)
    store = Quarantine(Database(settings.state_path))
    delivery = Delivery(delivery_id="evt-q", source="shopify", topic="orders/delete",
                        shop="test-store.myshopify.com", received_at="2026-03-03T18:10:00.000Z",
                        triggered_at=None, body='{"id": 1}')
    entry = store.add(delivery, "topic 'orders/delete' is not one this service maps for shopify")
    store.database.close()
    return entry


@pytest.mark.parametrize("target", ["hubspot", "zoho"])
def test_privacy_list_and_show_in_sandbox(env: MakeEnv, target: str,
                                          caplog: pytest.LogCaptureFixture) -> None:
    # Sandbox mode with no stand-in running: the CRM address is the real one, which
    # only a `privacy run` would need.
    environ = env(CRM_TARGET=target)

    with caplog.at_level("WARNING"):
        listed = CliRunner().invoke(main, ["privacy", "list"], env=environ)
        shown = CliRunner().invoke(main, ["privacy", "show", "7"], env=environ)

    assert listed.exit_code == 0, listed.output
    assert listed.output == "There are no privacy requests.\n"
    assert shown.exit_code == 2
    assert "no privacy request has id 7" in shown.output
    assert "sandbox mode" not in shown.output
    assert caplog.records == []


@pytest.mark.parametrize(("flusher_started", "expected", "absent"), [
    (True, "started by `run` beside this worker", "start `python -m storesync flusher`"),
    (False, "start `python -m storesync flusher` beside this worker", "started by `run`"),
])
def test_worker_flusher_log_line(env: MakeEnv, caplog: pytest.LogCaptureFixture,
                                 flusher_started: bool, expected: str, absent: str) -> None:
    from storesync.cli import log_flusher_process

    settings = load_settings(env(CRM_TARGET="hubspot", SYNC_FLUSHER="process"))

    with caplog.at_level("INFO", logger="storesync.worker"):
        log_flusher_process(settings, flusher_started)

    assert expected in caplog.text
    assert absent not in caplog.text


def test_quarantine_list_and_show(env: MakeEnv) -> None:
    environ = env()
    entry = _quarantine_one(environ)
    listed = CliRunner().invoke(main, ["quarantine", "list"], env=environ)
    assert listed.exit_code == 0, listed.output
    assert "orders/delete" in listed.output
    assert '{"id": 1}' not in listed.output
    shown = CliRunner().invoke(main, ["quarantine", "show", str(entry)], env=environ)
    assert shown.exit_code == 0, shown.output
    assert "reason: topic 'orders/delete' is not one this service maps" in shown.output
    assert shown.output.rstrip().endswith('{"id": 1}')


def test_quarantine_show_unknown_id(env: MakeEnv) -> None:
    result = CliRunner().invoke(main, ["quarantine", "show", "999"], env=env())
    assert result.exit_code == 2
    assert "no quarantine entry has id 999" in result.output


def test_quarantine_requeue(env: MakeEnv) -> None:
    from storesync.queue import build_huey

    environ = env()
    entry = _quarantine_one(environ)
    result = CliRunner().invoke(main, ["quarantine", "requeue", str(entry)], env=environ)
    assert result.exit_code == 0, result.output
    assert f"Entry {entry} (shopify orders/delete) is queued again." in result.output
    assert build_huey(load_settings(environ)).pending_count() == 1
    listed = CliRunner().invoke(main, ["quarantine", "list"], env=environ)
    assert "The quarantine is empty." in listed.output


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_intake_process_serves_and_stops(env: MakeEnv) -> None:
    port = _free_port()
    environ = {**os.environ, **env(PORT=str(port)),
               "PYTHONPATH": str(SERVICE_DIR / "src")}
    process = subprocess.Popen([sys.executable, "-m", "storesync", "intake"], env=environ,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                health = httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                assert time.monotonic() < deadline, "the intake did not start within 20 s"
                time.sleep(0.1)
        assert health.json() == {"status": "ok"}
        body = encode_body(sample_order())
        response = httpx.post(f"{base}/webhooks/shopify", content=body,
                              headers=shopify_headers(body), timeout=5)
        assert response.json()["status"] == "queued"
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)
    # Uvicorn shuts down cleanly, then raises SIGTERM again so the exit shows the signal.
    assert process.returncode in (0, -signal.SIGTERM)
    assert b'"message": "intake stopped"' in stderr
