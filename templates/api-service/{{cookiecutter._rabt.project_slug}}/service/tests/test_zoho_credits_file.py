"""Zoho's credit budget in the state file: one budget for every process on the machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from intake_support import SHOPIFY_SECRET, STOREFRONT_SECRET, write_spec
from storesync.db import Database
from storesync.settings import Settings, load_settings
from storesync.standins.zoho_config import CREDIT_WINDOW_SECONDS
from storesync.zoho_credits import CreditsExhausted
from storesync.zoho_credits_file import SqliteCreditBudget
from zoho_support import ZohoClock

SERVICE_DIR = Path(__file__).resolve().parents[1]
# Each child process builds the Zoho client as the flusher does, spends one credit a
# call until its budget refuses or it has spent argv[2], and prints how many it spent.
CHILD = """
import json, sys
from storesync.settings import load_settings
from storesync.zoho_credits import CreditsExhausted
from storesync.zoho_flusher import zoho_client_for

client = zoho_client_for(load_settings(json.loads(sys.argv[1])), sleep=lambda seconds: None)
spent = 0
for _ in range(int(sys.argv[2])):
    try:
        client.budget.before_call(1)
    except CreditsExhausted:
        break
    client.budget.spend(1)
    spent += 1
client.close()
print(json.dumps({"spent": spent}))
"""
DAILY_LIMIT = 100
SPEND_PER_PROCESS = 80


def budget_on(path: Path, clock: ZohoClock, limit: int = DAILY_LIMIT) -> SqliteCreditBudget:
    return SqliteCreditBudget(Database(path), limit, clock=clock, sleep=clock.sleep, owned=True)


def test_two_processes_share_budget(tmp_path: Path) -> None:
    # No REDIS_URL: the processes share only the state file under DATA_DIR.
    values = {"DATA_DIR": str(tmp_path / "var"),
              "SPEC_DIR": str(write_spec(tmp_path / "spec", "shopify")),
              "SHOPIFY_WEBHOOK_SECRETS": SHOPIFY_SECRET,
              "STOREFRONT_WEBHOOK_SECRETS": STOREFRONT_SECRET, "STORE_ID": "test-store",
              "CRM_TARGET": "zoho", "ZOHO_ACCOUNTS_URL": "http://127.0.0.1:9",
              "ZOHO_CREDITS_PER_DAY": str(DAILY_LIMIT)}
    environ = {**os.environ, "PYTHONPATH": str(SERVICE_DIR / "src")}
    environ.pop("REDIS_URL", None)
    command = [sys.executable, "-c", CHILD, json.dumps(values), str(SPEND_PER_PROCESS)]
    children = [subprocess.Popen(command, env=environ, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for _ in range(2)]
    spent = []
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        spent.append(json.loads(out)["spent"])

    # Apart, the two would spend 160. Both can pass the check with the last credit,
    # so the total may exceed the budget by one call.
    assert DAILY_LIMIT <= sum(spent) <= DAILY_LIMIT + 1
    state = load_settings(values).state_path
    budget = SqliteCreditBudget(Database(state), DAILY_LIMIT, sleep=lambda seconds: None,
                                owned=True)
    assert budget.used() == sum(spent)
    assert budget.remaining() == 0
    with pytest.raises(CreditsExhausted):
        budget.before_call(1)
    budget.close()


def test_spend_seen_by_other_budget(tmp_path: Path) -> None:
    clock = ZohoClock()
    first = budget_on(tmp_path / "state.sqlite3", clock)
    second = budget_on(tmp_path / "state.sqlite3", clock)

    first.spend(30)
    clock.sleep(10)
    second.spend(10)

    assert first.used() == 40
    assert second.used() == 40
    assert second.remaining() == 60
    first.close()
    second.close()


def test_zoho_report_less_later_spends(tmp_path: Path) -> None:
    clock = ZohoClock()
    first = budget_on(tmp_path / "state.sqlite3", clock)
    second = budget_on(tmp_path / "state.sqlite3", clock)

    # Other apps of the org spent too, so Zoho reports fewer credits than the own count.
    first.spend(5, reported_remaining=50)
    clock.sleep(1)
    second.spend(10)

    assert second.used() == 15
    assert second.remaining() == 40
    assert first.remaining() == 40
    first.close()
    second.close()


def test_spends_leave_after_window(tmp_path: Path) -> None:
    clock = ZohoClock()
    budget = budget_on(tmp_path / "state.sqlite3", clock)
    budget.spend(60)
    clock.sleep(CREDIT_WINDOW_SECONDS / 2)
    budget.spend(30)

    clock.sleep(CREDIT_WINDOW_SECONDS / 2)

    assert budget.used() == 30
    assert budget.remaining() == 70
    budget.close()


def test_budget_survives_restart(tmp_path: Path) -> None:
    clock = ZohoClock()
    budget = budget_on(tmp_path / "state.sqlite3", clock)
    budget.spend(95)
    budget.close()

    restarted = budget_on(tmp_path / "state.sqlite3", clock)
    assert restarted.remaining() == 5
    with pytest.raises(CreditsExhausted, match="5 Zoho API credits are left of 100"):
        restarted.before_call(10)
    restarted.close()


def test_client_without_redis_uses_file(make_settings: Callable[..., Settings]) -> None:
    from storesync.zoho_flusher import zoho_client_for

    # The accounts server is only named; building the client calls nothing.
    settings = make_settings("shopify", CRM_TARGET="zoho",
                             ZOHO_ACCOUNTS_URL="http://127.0.0.1:9")
    client = zoho_client_for(settings)
    try:
        assert isinstance(client.budget, SqliteCreditBudget)
        assert client.budget.database.path == settings.state_path
    finally:
        client.close()
