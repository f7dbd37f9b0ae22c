"""`python -m storesync run` (what scripts/run.sh starts) end to end, in sandbox mode.

The test starts `run` as its own process with a free port and a temporary DATA_DIR,
and waits for `/readyz`. It runs the demo against it and reads the records from the
HubSpot stand-in that `run` started. In a Shopify or WooCommerce project `run` also
starts the store's API stand-in, and the store API jobs must be on. Then it stops `run`
with SIGTERM and checks that every process `run` started has stopped. A second test
stops `run` the way Ctrl-C in a terminal does, with SIGINT to its whole process group.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from storesync import cli
from storesync.cli import SHUTDOWN_GRACE_SECONDS
from storesync.settings import SERVICE_DIR
from sync_support import family, require_hubspot

START_TIMEOUT_SECONDS = 60
# `run` kills what has not stopped after its grace period; the rest is slack for a
# loaded machine.
STOP_TIMEOUT_SECONDS = SHUTDOWN_GRACE_SECONDS + 30
# Settings of the machine running the tests must not leak into the sandbox run.
CLEARED_VARIABLES = ("HUBSPOT_ACCESS_TOKEN", "HUBSPOT_BASE_URL", "REDIS_URL", "HOST", "PORT",
                     "SHOPIFY_WEBHOOK_SECRETS", "WOOCOMMERCE_WEBHOOK_SECRETS",
                     "STOREFRONT_WEBHOOK_SECRETS", "WORKER_METRICS_PORT", "SPEC_DIR",
                     "DESIRED_STATE_PATH", "DATA_DIR", "LOG_LEVEL", "SHOPIFY_SHOP_DOMAIN",
                     "SHOPIFY_ADMIN_ACCESS_TOKEN", "SHOPIFY_ADMIN_URL", "WOOCOMMERCE_SITE_URL",
                     "WOOCOMMERCE_CONSUMER_KEY", "WOOCOMMERCE_CONSUMER_SECRET")
STANDIN_AUTH = {"Authorization": "Bearer test-token-not-real"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def child_pids(parent: int) -> set[int]:
    """Return the ids of the processes whose parent is ``parent``, read from /proc."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while the folder was read
            continue
        if int(fields[1]) == parent:
            found.add(int(stat.parent.name))
    return found


def running(pid: int) -> bool:
    """Return whether ``pid`` is a live process (a zombie counts as stopped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def expected_children() -> int:
    """Return how many processes `run` starts in sandbox mode in this project.

    The CRM stand-in, the worker, the flusher and the intake, and for a Shopify or
    WooCommerce store also the store's API stand-in.
    """
    return 5 if family() in ("shopify", "woocommerce") else 4


def wait_ready(url: str, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"run stopped at start with exit code {process.returncode}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"/readyz of {url} did not answer 200 within {START_TIMEOUT_SECONDS} s")


def stopped(process: subprocess.Popen[str], log_path: Path) -> int:
    """Wait for ``process`` to stop and return its exit code.

    If it does not stop in time, fail with the end of its log and the state of each
    process it started, so that a slow stop can be distinguished from a hung one.
    """
    try:
        return process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        states = {pid: ("running" if running(pid) else "stopped")
                  for pid in child_pids(process.pid)}
        log = log_path.read_text(encoding="utf-8", errors="replace")[-3000:]
        pytest.fail(f"run did not stop within {STOP_TIMEOUT_SECONDS} s; its processes: "
                    f"{states}; the end of its log:\n{log}")


def test_stop_signal_sets_event() -> None:
    # An exception raised from a signal handler can land inside Popen.poll while it
    # holds its lock, and `run` then waits for that child for ever.
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        for signum in saved:
            requested = cli._stop_requests()
            os.kill(os.getpid(), signum)
            assert requested.wait(5)
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


@pytest.fixture
def run_env(tmp_path: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in CLEARED_VARIABLES}
    env.update({"PYTHONPATH": str(SERVICE_DIR / "src"), "DATA_DIR": str(tmp_path / "var"),
                "PORT": str(free_port()), "LOG_LEVEL": "WARNING"})
    return env


@pytest.fixture
def started(run_env: dict[str, str], tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    if not Path("/proc").is_dir():
        pytest.skip("the test finds child processes through /proc, which this system lacks")
    require_hubspot()
    log = (tmp_path / "run.log").open("w")
    process = subprocess.Popen([sys.executable, "-m", "storesync", "run", "--workers", "2"],
                               cwd=SERVICE_DIR, env=run_env, stdout=log, stderr=log, text=True)
    try:
        yield process
    finally:
        if process.poll() is None:
            for pid in child_pids(process.pid):
                os.kill(pid, signal.SIGKILL)
            process.kill()
            process.wait()
        log.close()


def contacts_of(standin: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{standin}/_standin/records/contacts", timeout=10)
    response.raise_for_status()
    results: list[dict[str, Any]] = response.json()["results"]
    return results


def test_run_demo_then_sigterm(started: subprocess.Popen[str], run_env: dict[str, str],
                               tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{run_env['PORT']}"
    wait_ready(url, started)
    standin = (Path(run_env["DATA_DIR"]) / "standin-url").read_text(encoding="utf-8").strip()
    demo = subprocess.run([sys.executable, "-m", "storesync", "demo", "--timeout", "90"],
                          cwd=SERVICE_DIR, env=run_env, capture_output=True, text=True,
                          timeout=180, check=False)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "The outbox still has" not in demo.stdout

    contacts = [record["properties"] for record in contacts_of(standin)]
    arabic = [person for person in contacts if "ريم" in (person.get("firstname") or "")]
    assert len(arabic) == 1
    phone_only = [person for person in contacts
                  if person.get("ecom_phone_e164") and not person.get("email")]
    assert len(phone_only) == 1
    phone = phone_only[0]["ecom_phone_e164"]
    by_phone = httpx.get(f"{standin}/crm/v3/objects/contacts/{phone}",
                         params={"idProperty": "ecom_phone_e164",
                                 "properties": "ecom_phone_e164"}, headers=STANDIN_AUTH)
    assert by_phone.status_code == 200
    assert by_phone.json()["properties"]["ecom_phone_e164"] == phone
    deals = httpx.get(f"{standin}/_standin/records/deals", timeout=10).json()["results"]
    refunded = [deal for deal in deals
                if deal["properties"].get("ecom_refunded_sar") == "40.00"]
    assert len(refunded) == 1

    if family() in ("shopify", "woocommerce"):
        readiness = httpx.get(f"{url}/readyz", timeout=10).json()
        assert readiness["store_jobs"][family()].startswith("reconciliation on")

    children = child_pids(started.pid)
    assert len(children) == expected_children()
    started.send_signal(signal.SIGTERM)
    assert stopped(started, tmp_path / "run.log") == 0
    assert [pid for pid in children if running(pid)] == []
    assert not (Path(run_env["DATA_DIR"]) / "standin-url").exists()


def test_run_ctrl_c_stops_every_process(run_env: dict[str, str], tmp_path: Path) -> None:
    if not Path("/proc").is_dir():
        pytest.skip("the test finds child processes through /proc, which this system lacks")
    require_hubspot()
    with (tmp_path / "run.log").open("w") as log:
        # At INFO, so the worker's line about the flusher process is logged.
        process = subprocess.Popen([sys.executable, "-m", "storesync", "run"], cwd=SERVICE_DIR,
                                   env={**run_env, "LOG_LEVEL": "INFO"}, stdout=log,
                                   stderr=log, text=True, start_new_session=True)
    children: set[int] = set()
    try:
        wait_ready(f"http://127.0.0.1:{run_env['PORT']}", process)
        children = child_pids(process.pid)
        commands = {" ".join(Path(f"/proc/{pid}/cmdline").read_text().split("\0")[1:4])
                    for pid in children}
        assert "-m storesync flusher" in commands
        if family() in ("shopify", "woocommerce"):
            assert f"-m storesync.standins.{family()} --port" in commands
        assert len(children) == expected_children()
        # A terminal sends SIGINT to every process of the foreground group.
        os.killpg(process.pid, signal.SIGINT)
        assert stopped(process, tmp_path / "run.log") == 0
        assert [pid for pid in children if running(pid)] == []
        log_text = (tmp_path / "run.log").read_text(encoding="utf-8")
        assert "started by `run` beside this worker" in log_text
        assert "start `python -m storesync flusher`" not in log_text
    finally:
        if process.poll() is None:
            for pid in children:
                if running(pid):
                    os.kill(pid, signal.SIGKILL)
            process.kill()
            process.wait()
