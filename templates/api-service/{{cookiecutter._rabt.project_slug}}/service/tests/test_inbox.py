"""The inbox: a job taken off the queue by a worker that dies is queued again.

The crash is simulated deterministically: the test takes the job off huey's queue the
way the consumer does (``huey.dequeue()``) and never runs it, as if the worker had
been killed with SIGKILL at that moment. Both queue backends run every test.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from conftest import RunningIntake
from intake_support import encode_body, sample_order, shopify_headers
from storesync.queue import DeliveryQueue, build_queue, start_recovery
from storesync.settings import DEFAULT_INBOX_GRACE_SECONDS, Settings, SettingsError

Start = Callable[..., RunningIntake]
MakeSettings = Callable[..., Settings]
LATER = DEFAULT_INBOX_GRACE_SECONDS + 1


def _post_order(intake: RunningIntake, event_id: str) -> None:
    body = encode_body(sample_order())
    response = intake.post("shopify", body, shopify_headers(body, event_id=event_id))
    assert response.status_code == 200
    assert response.json()["status"] == "queued"


def _run_waiting_jobs(intake: RunningIntake) -> int:
    queue = intake.services.queue.huey
    ran = 0
    while (task := queue.dequeue()) is not None:
        queue.execute(task)
        ran += 1
    return ran


def test_killed_job_requeued_once(make_settings: MakeSettings, start_intake: Start,
                                  backend_env: dict[str, str]) -> None:
    intake = start_intake(make_settings("shopify", **backend_env))
    queue = intake.services.queue
    _post_order(intake, "evt-killed")
    _post_order(intake, "evt-finished")

    taken = queue.huey.dequeue()  # the worker takes the first job, then is killed
    assert taken is not None
    assert _run_waiting_jobs(intake) == 1
    assert queue.depth() == 0
    assert queue.unfinished() == 1

    assert queue.recover(time.time()) == 0  # still within the grace period
    assert queue.recover(time.time() + LATER) == 1
    assert _run_waiting_jobs(intake) == 1

    delivered = sorted(delivery.delivery_id for delivery in intake.handler.deliveries)
    assert delivered == ["evt-finished", "evt-killed"]
    assert queue.unfinished() == 0
    assert queue.recover(time.time() + 2 * LATER) == 0


def test_waiting_job_not_duplicated(make_settings: MakeSettings, start_intake: Start,
                                    backend_env: dict[str, str]) -> None:
    intake = start_intake(make_settings("shopify", **backend_env))
    queue = intake.services.queue
    _post_order(intake, "evt-waiting")

    assert queue.recover(time.time() + LATER) == 0
    assert queue.depth() == 1
    assert _run_waiting_jobs(intake) == 1
    assert queue.unfinished() == 0


def test_failed_job_leaves_inbox(make_settings: MakeSettings, start_intake: Start,
                                 backend_env: dict[str, str]) -> None:
    from intake_support import RecordingHandler

    handler = RecordingHandler(error=RuntimeError("state file locked"))
    intake = start_intake(make_settings("shopify", **backend_env), handler=handler)
    queue = intake.services.queue
    _post_order(intake, "evt-failing")

    task = queue.huey.dequeue()
    task.retries = 0  # the last attempt: the delivery goes to the quarantine
    queue.huey.execute(task)

    assert len(handler.deliveries) == 1
    assert queue.unfinished() == 0
    assert queue.recover(time.time() + LATER) == 0


def test_requeued_from_quarantine_tracked(make_settings: MakeSettings, start_intake: Start,
                                          backend_env: dict[str, str]) -> None:
    intake = start_intake(make_settings("shopify", **backend_env))
    queue = intake.services.queue
    _post_order(intake, "evt-requeued")
    delivery = queue.huey.dequeue()
    assert delivery is not None
    queue.huey.execute(delivery)
    replayed = intake.handler.deliveries[0]

    queue.enqueue(replayed)

    assert queue.unfinished() == 1
    assert _run_waiting_jobs(intake) == 1
    assert queue.unfinished() == 0


class _EmptyOutbox:
    def pending_count(self) -> int:
        return 0


def test_demo_waits_for_jobs() -> None:
    from storesync.demo import wait_for_sync

    unfinished = [2, 1, 0, 0]
    waited = wait_for_sync(_EmptyOutbox(), 30, sleep=lambda seconds: None,  # type: ignore[arg-type]
                           unfinished_jobs=lambda: unfinished.pop(0) if unfinished else 0)
    assert waited is True
    assert unfinished == []

    still_running = wait_for_sync(_EmptyOutbox(), 0.05, sleep=time.sleep,  # type: ignore[arg-type]
                                  unfinished_jobs=lambda: 1)
    assert still_running is False


def test_grace_setting_used(make_settings: MakeSettings, start_intake: Start,
                            backend_env: dict[str, str]) -> None:
    intake = start_intake(make_settings("shopify", INBOX_GRACE_SECONDS="5", **backend_env))
    queue = intake.services.queue
    _post_order(intake, "evt-short-grace")
    assert queue.huey.dequeue() is not None  # taken by a worker that is then killed

    assert queue.recover(time.time() + 4) == 0
    assert queue.recover(time.time() + 6) == 1


def test_scan_interval_setting_used(make_settings: MakeSettings,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make_settings("shopify", INBOX_SCAN_INTERVAL_SECONDS="1")
    scans: list[float] = []
    two_scans = threading.Event()

    def recover(self: DeliveryQueue, now: float | None = None,
                grace: float | None = None) -> int:
        scans.append(time.monotonic())
        if len(scans) >= 2:
            two_scans.set()
        return 0

    monkeypatch.setattr(DeliveryQueue, "recover", recover)
    queue = build_queue(settings, handler=lambda delivery: None)
    stop = start_recovery(queue)
    try:
        assert two_scans.wait(timeout=5)
    finally:
        stop()
        queue.close()
    assert 0.8 <= scans[1] - scans[0] < 3


@pytest.mark.parametrize(("variable", "value", "allowed"), [
    ("INBOX_GRACE_SECONDS", "0", "1 to 86400"),
    ("INBOX_GRACE_SECONDS", "90000", "1 to 86400"),
    ("INBOX_SCAN_INTERVAL_SECONDS", "0", "1 to 3600"),
    ("INBOX_SCAN_INTERVAL_SECONDS", "soon", "1 to 3600"),
])
def test_inbox_setting_rejected(make_settings: MakeSettings, variable: str, value: str,
                                allowed: str) -> None:
    with pytest.raises(SettingsError) as raised:
        make_settings("shopify", **{variable: value})
    problems = raised.value.problems
    assert [problem.variable for problem in problems] == [variable]
    assert allowed in problems[0].fix


def test_inbox_settings_read(make_settings: MakeSettings) -> None:
    settings = make_settings("shopify", INBOX_GRACE_SECONDS="20",
                             INBOX_SCAN_INTERVAL_SECONDS="2")
    assert settings.inbox_grace_seconds == 20
    assert settings.inbox_scan_interval_seconds == 2
    defaults = make_settings("shopify")
    assert defaults.inbox_grace_seconds == 300
    assert defaults.inbox_scan_interval_seconds == 60
