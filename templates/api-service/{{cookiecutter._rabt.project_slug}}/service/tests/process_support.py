"""The service's processes for the end-to-end proofs: ``python -m storesync intake``,
``worker`` and ``flusher`` started as real processes, with their logs kept for failure
messages.
"""

from __future__ import annotations

import itertools
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from intake_support import (
    encode_body,
    shopify_headers,
    storefront_headers,
    woocommerce_headers,
)
from storesync.settings import SERVICE_DIR
from sync_support import CrmStandin, Order

# Settings of the machine running the tests must not reach the service processes.
CLEARED_VARIABLES = ("HUBSPOT_ACCESS_TOKEN", "ZOHO_REFRESH_TOKEN", "ZOHO_CLIENT_ID",
                     "ZOHO_CLIENT_SECRET", "ZOHO_DC", "CRM_TARGET", "REDIS_URL",
                     "REDIS_KEY_PREFIX", "HOST", "PORT", "WORKER_METRICS_PORT", "LOG_LEVEL")
# How long a process may take to start on a busy shared machine.
START_TIMEOUT_SECONDS = 60


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def customer(number: int) -> dict[str, Any]:
    """Return a made-up customer with its own email and a phone in the 050 range."""
    return {"id": 7_300_000_000_000 + number, "email": f"crash.{number}@example.com",
            "phone": f"+96650{number:07d}", "first_name": "ريم", "last_name": "الاختبار"}


def signed_delivery(order: Order, source: str, delivery_id: str) -> tuple[bytes, dict[str, str]]:
    """Return the body and headers the store sends for ``order``; retries reuse both."""
    body = encode_body(order.body(source))
    topic = order.topic(source)
    if source == "shopify":
        return body, shopify_headers(body, topic=topic, event_id=delivery_id)
    if source == "woocommerce":
        return body, woocommerce_headers(body, topic=topic, delivery_id=delivery_id)
    return body, storefront_headers(body, message_id=delivery_id)


@dataclass
class Service:
    """The intake, worker and flusher processes of one test, started with the same settings.

    ``spawn`` starts further processes with settings of their own, such as a worker on
    another DATA_DIR; they are stopped with the others.
    """

    env: dict[str, str]
    port: int
    log_dir: Path
    standin: CrmStandin
    intake: subprocess.Popen[bytes] | None = None
    worker: subprocess.Popen[bytes] | None = None
    flusher: subprocess.Popen[bytes] | None = None
    others: list[subprocess.Popen[bytes]] = field(default_factory=list)
    starts: itertools.count[int] = field(default_factory=itertools.count)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _spawn(self, command: list[str],
               env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = (self.log_dir / f"{command[0]}-{next(self.starts)}.log").open("wb")
        try:
            return subprocess.Popen([sys.executable, "-m", "storesync", *command],
                                    env=env or self.env, cwd=SERVICE_DIR, stdout=log,
                                    stderr=subprocess.STDOUT)
        finally:
            log.close()

    def spawn(self, command: list[str], **settings: str) -> subprocess.Popen[bytes]:
        """Start ``python -m storesync <command>`` with ``settings`` over the common ones."""
        process = self._spawn(command, {**self.env, **settings})
        self.others.append(process)
        return process

    def start_worker(self) -> None:
        self.worker = self._spawn(["worker", "--workers", "2"])

    def start_flusher(self) -> None:
        self.flusher = self._spawn(["flusher"])

    def start_intake(self) -> None:
        self.intake = self._spawn(["intake", "--port", str(self.port)])
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            assert self.intake.poll() is None, self.logs()
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.05)
        pytest.fail(f"the intake did not start within {START_TIMEOUT_SECONDS} s\n{self.logs()}")

    def processes(self) -> list[subprocess.Popen[bytes]]:
        return [process for process in (self.intake, self.worker, self.flusher, *self.others)
                if process is not None]

    def stop(self) -> None:
        """Stop every process with SIGTERM, or SIGKILL when they do not stop in time."""
        for process in self.processes():
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.terminate()
        for process in self.processes():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def logs(self) -> str:
        """Return the tail of every process log, for failure messages."""
        parts = []
        for path in sorted(self.log_dir.glob("*.log")):
            text = path.read_text(encoding="utf-8", errors="replace")
            parts.append(f"--- {path.name}\n{text[-3000:]}")
        return "\n".join(parts)


