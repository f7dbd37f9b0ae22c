"""The CRM pause in readiness bodies, read from the worker processes' metric snapshots."""

from __future__ import annotations

import json

from storesync.metrics import CRM_PAUSED_UNTIL_NAME
from storesync.sync_pause import active_pauses, pause_status

NOW = 1_900_000_000.0


def snapshot(*pauses: tuple[str, float]) -> str:
    """Return one process's snapshot JSON with the given (reason, paused-until) samples."""
    samples = [[CRM_PAUSED_UNTIL_NAME, {"reason": reason}, until] for reason, until in pauses]
    return json.dumps({CRM_PAUSED_UNTIL_NAME: samples, "storesync_dead_letters": []})


def test_no_pause_when_times_passed() -> None:
    snapshots = [(NOW, snapshot(("credits", NOW - 1), ("auth", NOW)))]
    assert active_pauses(snapshots, NOW) == {}
    assert pause_status(snapshots, "zoho", NOW) == {"paused": False}


def test_no_pause_without_samples() -> None:
    assert pause_status([(NOW, json.dumps({}))], "zoho", NOW) == {"paused": False}
    assert pause_status([], "hubspot", NOW) == {"paused": False}


def test_latest_process_time_wins() -> None:
    # An idle process keeps an older pause time; the flusher's later one counts.
    snapshots = [(NOW, snapshot(("credits", NOW + 30))), (NOW - 5, snapshot(("credits", NOW + 90)))]
    assert active_pauses(snapshots, NOW) == {"credits": NOW + 90}


def test_pause_ending_last_reported() -> None:
    snapshots = [(NOW, snapshot(("auth", NOW + 10), ("daily_limit", NOW + 3600)))]

    status = pause_status(snapshots, "hubspot", NOW)

    assert status["paused"] is True
    assert status["reason"] == "daily_limit"
    assert status["until"] == "2030-03-17T18:46:40+00:00"
    assert status["seconds_left"] == 3600
    assert status["message"].startswith("HubSpot's daily API limit is reached.")
    assert status["others"] == ["auth"]


def test_auth_pause_names_fix() -> None:
    status = pause_status([(NOW, snapshot(("auth", NOW + 0.5)))], "zoho", NOW)
    assert status["seconds_left"] == 1
    assert status["message"].startswith("Zoho CRM rejected the access token.")
    assert "Fix the token or the OAuth client settings" in status["message"]
