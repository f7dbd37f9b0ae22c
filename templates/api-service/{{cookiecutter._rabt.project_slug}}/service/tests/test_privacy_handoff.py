"""Shopify privacy requests reach the worker through the queue, whatever its DATA_DIR.

On Kubernetes each intake pod has a volume of its own and the workers share another,
so the intake and the worker here use different DATA_DIRs on one Redis.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner

from conftest import RunningIntake, redis_url_or_skip
from intake_support import SAMPLE_EMAIL, encode_body, shopify_headers
from storesync.cli import main
from storesync.db import Database
from storesync.privacy import DONE, PrivacyRequest, PrivacyRequests
from storesync.privacy_runner import build_runner
from storesync.queue import build_queue
from storesync.settings import Settings
from storesync.state_home import claim_state_home

REDACT = {"shop_id": 954889, "shop_domain": "test-store.myshopify.com",
          "customer": {"id": 191167, "email": SAMPLE_EMAIL}, "orders_to_redact": [299938]}


def privacy_rows(path: Path) -> int:
    """Return how many privacy requests a state file contains (0 without the table)."""
    if not path.exists():
        return 0
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM privacy_requests").fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        conn.close()


@pytest.fixture
def redis_env() -> Iterator[dict[str, str]]:
    """Settings for the test Redis under a key prefix of this test, deleted afterwards."""
    url = redis_url_or_skip()
    prefix = f"storesync-test-{uuid.uuid4().hex[:12]}"
    yield {"REDIS_URL": url, "REDIS_KEY_PREFIX": prefix}
    client = redis.Redis.from_url(url)
    try:
        for pattern in (f"{prefix}:*", f"huey.*{prefix.replace('-', '')}*"):
            for key in client.scan_iter(match=pattern):
                client.delete(key)
    finally:
        client.close()


@pytest.mark.redis
def test_redact_reaches_worker_with_own_data_dir(
        tmp_path: Path, make_settings: Callable[..., Settings],
        start_intake: Callable[..., RunningIntake], redis_env: dict[str, str]) -> None:
    web = make_settings("shopify", DATA_DIR=str(tmp_path / "web"), **redis_env)
    worker = make_settings("shopify", DATA_DIR=str(tmp_path / "worker"), **redis_env)
    # The state-home rule binds workers and flushers only, so the intake's DATA_DIR may differ.
    assert claim_state_home(worker) is not None
    intake = start_intake(web)
    body = encode_body(REDACT)
    response = intake.post("shopify", body, shopify_headers(
        body, topic="customers/redact", event_id="evt-handoff"))
    assert response.status_code == 200
    assert response.json()["status"] == "privacy_pending"
    assert privacy_rows(web.state_path) == 0

    queue = build_queue(worker)
    try:
        task = queue.huey.dequeue()
        assert task is not None
        assert queue.huey.execute(task) == "privacy_stored"
        assert queue.unfinished() == 0
    finally:
        queue.close()
    runner = build_runner(worker, connect=False)
    try:
        assert runner.run_due() == 1
        [stored] = PrivacyRequests(runner.database).listing()
    finally:
        runner.database.close()

    assert stored.status == DONE
    assert stored.delivery_id == "evt-handoff"
    assert (stored.request.customer_id, stored.request.order_ids) == ("191167", ("299938",))
    assert privacy_rows(web.state_path) == 0
    for path in (tmp_path / "web").glob("*.sqlite3*"):
        assert SAMPLE_EMAIL.encode() not in path.read_bytes(), path


def test_privacy_job_on_sqlite_shares_state(
        make_settings: Callable[..., Settings],
        start_intake: Callable[..., RunningIntake]) -> None:
    settings = make_settings("shopify")
    intake = start_intake(settings)
    body = encode_body({"shop_id": 954889, "shop_domain": "test-store.myshopify.com"})
    intake.post("shopify", body, shopify_headers(body, topic="shop/redact", event_id="evt-s1"))
    queue = intake.services.queue.huey
    assert queue.execute(queue.dequeue()) == "privacy_stored"
    runner = build_runner(settings, Database(settings.state_path), connect=False)
    try:
        assert runner.run_due() == 1
        [stored] = PrivacyRequests(runner.database).listing()
    finally:
        runner.database.close()
    assert (stored.request.topic, stored.status) == ("shop/redact", DONE)


def test_hand_over_moves_kept_requests(
        tmp_path: Path, make_settings: Callable[..., Settings], redis_env: dict[str, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    web = make_settings("shopify", DATA_DIR=str(tmp_path / "web"), **redis_env)
    worker = make_settings("shopify", DATA_DIR=str(tmp_path / "worker"), **redis_env)
    # A request an earlier release kept in the intake's own state file.
    intake_requests = PrivacyRequests(Database(web.state_path))
    intake_requests.add(PrivacyRequest(topic="customers/redact", shop="test-store.myshopify.com",
                            customer_id="191167"), "evt-kept", "2027-01-15T08:00:00.000Z")
    for name, value in {"DATA_DIR": str(web.data_dir), "SPEC_DIR": str(web.spec_dir),
                        **redis_env}.items():
        monkeypatch.setenv(name, value)
    cli = CliRunner()

    before_worker = cli.invoke(main, ["privacy", "hand-over"])
    assert before_worker.exit_code == 2
    assert "start the workers first" in before_worker.output
    claim_state_home(worker)
    moved = cli.invoke(main, ["privacy", "hand-over"])
    assert moved.exit_code == 0, moved.output
    assert "Queued 1 privacy request(s) for the workers." in moved.output
    [local] = intake_requests.listing()
    assert (local.status, local.result) == (DONE, {"handed_over_to_queue": 1})
    intake_requests.database.close()

    queue = build_queue(worker)
    try:
        assert queue.huey.execute(queue.huey.dequeue()) == "privacy_stored"
    finally:
        queue.close()
    requests = PrivacyRequests(Database(worker.state_path))
    [stored] = requests.pending()
    requests.database.close()
    assert (stored.delivery_id, stored.request.customer_id) == ("evt-kept", "191167")
    assert stored.received_at == "2027-01-15T08:00:00.000Z"


def test_hand_over_refuses_workers_state_file(
        make_settings: Callable[..., Settings], redis_env: dict[str, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    worker = make_settings("shopify", **redis_env)
    claim_state_home(worker)
    for name, value in {"DATA_DIR": str(worker.data_dir), "SPEC_DIR": str(worker.spec_dir),
                        **redis_env}.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(main, ["privacy", "hand-over"])
    assert result.exit_code == 2
    assert "is the workers' state file" in result.output
