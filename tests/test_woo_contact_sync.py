"""The daily contact sync of WooCommerce connector projects, run as the user runs it.

Each test bakes a project (the woo-startup preset on Zoho, and a HubSpot variant),
starts the WooCommerce stand-in and the CRM stand-in under real uvicorn servers on
127.0.0.1, and runs the baked ``sync/contact_sync.py`` as a subprocess with the
test's Python.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from click.testing import CliRunner
from starlette.applications import Starlette

from generator.cli import main as rabt_main
from generator.path_files import contact_sync_paths, wants_contact_sync
from generator.standins import hubspot, woocommerce, zoho
from generator.standins.woocommerce import WooStandinConfig
from tests.servers import serve

KEY, SECRET = "ck_test_not_real", "cs_test_not_real"
ZOHO_CLIENT = {"ZOHO_CLIENT_ID": "1000.TESTCLIENT", "ZOHO_CLIENT_SECRET": "test-secret-not-real",
               "ZOHO_REFRESH_TOKEN": "1000.test-refresh-not-real", "ZOHO_DC": "sa"}
# A fixed past time for the store's clock, so every change is older than the run's start.
STORE_EPOCH = 1_780_000_000.0
SYNC_TIMEOUT_SECONDS = 180


class FakeClock:
    """A store clock the tests move by hand."""

    def __init__(self) -> None:
        self.value = STORE_EPOCH

    def __call__(self) -> float:
        return self.value

    def advance(self, seconds: float) -> None:
        self.value += seconds


def bake(tmp_path: Path, *args: str) -> Path:
    result = CliRunner().invoke(rabt_main, ["new", "--no-input", "--output-dir", str(tmp_path),
                                            *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return next(path for path in tmp_path.iterdir() if path.is_dir())


@pytest.fixture(scope="module")
def zoho_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bake(tmp_path_factory.mktemp("zoho"), "--preset", "woo-startup")


@pytest.fixture(scope="module")
def hubspot_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bake(tmp_path_factory.mktemp("hubspot"), "--preset", "woo-startup",
                "--set", "crm=hubspot")


def customer(number: int, **changes: Any) -> dict[str, Any]:
    email = f"buyer{number}@example.com"
    phone = f"055{number:07d}"
    body: dict[str, Any] = {
        "id": number, "email": email, "first_name": "Sara", "last_name": f"Tester{number}",
        "username": f"buyer{number}", "date_created_gmt": "2026-05-01T08:00:00",
        "date_modified_gmt": "2026-05-01T08:00:00",
        "billing": {"first_name": "Sara", "last_name": f"Tester{number}", "email": email,
                    "phone": phone, "city": "Riyadh", "country": "SA"},
    }
    body["billing"].update(changes.pop("billing", {}))
    body.update(changes)
    return body


def guest_order(number: int, **billing: str) -> dict[str, Any]:
    return {"id": number, "customer_id": 0, "status": "processing", "total": "149.50",
            "date_created_gmt": "2026-05-02T09:00:00", "date_modified_gmt": "2026-05-02T09:00:00",
            "billing": {"country": "SA", **billing}}


ARABIC_CUSTOMER = customer(7, first_name="نورة", last_name="العتيبي", billing={
    "first_name": "نورة", "last_name": "العتيبي", "email": "noura@example.com",
    "phone": "٠٥٠١٢٣٤٥٦٧", "city": "جده"}, email="noura@example.com", username="noura")
PHONE_ONLY_GUEST = guest_order(501, first_name="عبد الرحمن", last_name="القحطاني",
                               phone="0561112233", city="الرياض")


@dataclass
class Stack:
    """The servers of one test and what the sync needs to reach them."""

    woo_url: str
    crm_url: str
    store: woocommerce.WooState
    crm_app: Starlette
    clock: FakeClock
    crm: str

    def env(self, **changes: str) -> dict[str, str]:
        env = {"PATH": os.environ.get("PATH", ""), "WOOCOMMERCE_URL": self.woo_url,
               "WOOCOMMERCE_CONSUMER_KEY": KEY, "WOOCOMMERCE_CONSUMER_SECRET": SECRET}
        if self.crm == "hubspot":
            env.update({"HUBSPOT_ACCESS_TOKEN": "test-token-not-real",
                        "HUBSPOT_BASE_URL": self.crm_url})
        else:
            env.update({**ZOHO_CLIENT, "ZOHO_ACCOUNTS_URL": self.crm_url})
        env.update(changes)
        return {name: value for name, value in env.items() if value != ""}

    def contacts(self) -> list[dict[str, Any]]:
        if self.crm == "hubspot":
            response = httpx.get(f"{self.crm_url}/_standin/records/contacts", timeout=10)
            return [item["properties"] for item in response.json()["results"]]
        response = httpx.get(f"{self.crm_url}/_standin/records/Contacts", timeout=10)
        return list(response.json()["records"])

    def fault(self, status: int, count: int, prefix: str) -> None:
        response = httpx.post(f"{self.crm_url}/_standin/faults", timeout=10,
                              json={"status": status, "count": count, "path_prefix": prefix})
        assert response.status_code == 201

    def upsert_calls(self) -> int:
        calls = httpx.get(f"{self.crm_url}/_standin/calls", timeout=10).json()["calls"]
        return sum(item["count"] for item in calls if item["path"].endswith("upsert"))


@contextmanager
def stack(project: Path, **zoho_settings: Any) -> Iterator[Stack]:
    desired = yaml.safe_load((project / "crm/desired-state.yaml").read_text(encoding="utf-8"))
    crm = desired["crm"]
    clock = FakeClock()
    store_app = woocommerce.create_app(WooStandinConfig(clock=clock))
    crm_app = (hubspot.create_seeded_app(desired) if crm == "hubspot"
               else zoho.create_seeded_app(desired, zoho.ZohoStandinConfig(**zoho_settings)))
    with serve(store_app) as woo_url, serve(crm_app) as crm_url:
        yield Stack(woo_url, crm_url, store_app.state.woocommerce, crm_app, clock, crm)


@dataclass
class Run:
    """One finished sync run: exit code and its JSON log lines."""

    code: int
    lines: list[dict[str, Any]]
    stderr: str

    def events(self, name: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line.get("event") == name]

    def one(self, name: str) -> dict[str, Any]:
        found = self.events(name)
        assert len(found) == 1, self.stderr
        return found[0]


def run_sync(project: Path, env: dict[str, str], state: Path, *args: str) -> Run:
    command = [sys.executable, str(project / "sync/contact_sync.py"), "--state", str(state),
               *args]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False,
                          timeout=SYNC_TIMEOUT_SECONDS)
    lines = []
    for raw in done.stderr.splitlines():
        if raw.startswith("{"):
            lines.append(json.loads(raw))
    return Run(done.returncode, lines, done.stderr)


# -- which projects get the sync --------------------------------------------------


def test_sync_shipped_for_woo_daily(zoho_project: Path, hubspot_project: Path) -> None:
    for project in (zoho_project, hubspot_project):
        assert (project / "sync/contact_sync.py").is_file()
        assert (project / "sync/contactsync/runtime/engine.py").is_file()
        assert (project / ".github/workflows/contact-sync.yml").is_file()
        example = (project / "sync/.env.example").read_text(encoding="utf-8")
        assert "WOOCOMMERCE_CONSUMER_SECRET=cs_placeholder_not_real" in example
    assert "ZOHO_REFRESH_TOKEN=" in (zoho_project / "sync/.env.example").read_text("utf-8")
    assert "HUBSPOT_ACCESS_TOKEN=" in (hubspot_project / "sync/.env.example").read_text("utf-8")


def test_sync_not_shipped_elsewhere(tmp_path: Path) -> None:
    shopify = bake(tmp_path / "shopify", "--preset", "woo-startup", "--set", "platform=shopify",
                   "--set", "path=connector")
    api = bake(tmp_path / "api", "--preset", "woo-startup", "--set", "path=api")
    for project in (shopify, api):
        assert not (project / "sync").exists()
        assert not (project / ".github/workflows/contact-sync.yml").exists()


def test_wants_contact_sync_table() -> None:
    assert wants_contact_sync("connector", "woocommerce", "zoho", "daily")
    assert not wants_contact_sync("connector", "woocommerce", "zoho", "realtime")
    assert not wants_contact_sync("connector", "shopify", "hubspot", "daily")
    assert not wants_contact_sync("api", "woocommerce", "hubspot", "daily")
    assert not wants_contact_sync("connector", "woocommerce", "custom", "daily")
    assert contact_sync_paths(None) == ()


def test_validate_flags_missing_sync(zoho_project: Path, tmp_path: Path) -> None:
    import shutil

    from generator.validate import validate_project

    copy = tmp_path / "copy"
    shutil.copytree(zoho_project, copy)
    assert not validate_project(copy).problems
    (copy / "sync/contact_sync.py").unlink()
    problems = [problem.location for problem in validate_project(copy).problems]
    assert any("sync/contact_sync.py" in location for location in problems)


def test_workflow_schedule_as_data(zoho_project: Path) -> None:
    workflow = yaml.safe_load((zoho_project / ".github/workflows/contact-sync.yml").read_text(
        encoding="utf-8"))
    assert workflow["on"]["schedule"] == [{"cron": "30 2 * * *"}]
    steps = workflow["jobs"]["sync"]["steps"]
    run_step = next(step for step in steps if step.get("run") == "python sync/contact_sync.py")
    assert run_step["env"]["ZOHO_REFRESH_TOKEN"] == "${{ secrets.ZOHO_REFRESH_TOKEN }}"
    assert run_step["env"]["WOOCOMMERCE_URL"] == "${{ secrets.WOOCOMMERCE_URL }}"


def test_baked_sync_passes_ruff(zoho_project: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--line-length", "100",
                           "--select", "E,F,W,I,UP,B", str(zoho_project / "sync")],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


# -- input errors -------------------------------------------------------------------


def test_missing_env_exits_2(zoho_project: Path, tmp_path: Path) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "WOOCOMMERCE_URL": "https://store.example.sa",
           "WOOCOMMERCE_CONSUMER_KEY": KEY}
    result = run_sync(zoho_project, env, tmp_path / "state.json", "--dry-run")
    assert result.code == 2
    failure = result.one("run_failed")
    assert "WOOCOMMERCE_CONSUMER_SECRET is missing" in failure["message"]
    assert failure["exit_code"] == 2
    assert "sync/.env.example" in failure["fix"]
    assert not (tmp_path / "state.json").exists()


def test_empty_env_called_empty(zoho_project: Path, tmp_path: Path) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "WOOCOMMERCE_URL": "https://store.example.sa",
           "WOOCOMMERCE_CONSUMER_KEY": KEY, "WOOCOMMERCE_CONSUMER_SECRET": " "}
    result = run_sync(zoho_project, env, tmp_path / "state.json", "--dry-run")
    assert result.code == 2
    message = result.one("run_failed")["message"]
    assert "WOOCOMMERCE_CONSUMER_SECRET is set but empty" in message
    assert "WOOCOMMERCE_CONSUMER_SECRET is missing" not in message


def test_plain_http_store_rejected(zoho_project: Path, tmp_path: Path) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "WOOCOMMERCE_URL": "http://store.example.sa",
           "WOOCOMMERCE_CONSUMER_KEY": KEY, "WOOCOMMERCE_CONSUMER_SECRET": SECRET}
    result = run_sync(zoho_project, env, tmp_path / "state.json", "--dry-run")
    assert result.code == 2
    assert "WOOCOMMERCE_URL uses http://" in result.one("run_failed")["message"]


def test_invalid_since_exits_2(zoho_project: Path, tmp_path: Path) -> None:
    with stack(zoho_project) as servers:
        result = run_sync(zoho_project, servers.env(), tmp_path / "state.json", "--dry-run",
                          "--since", "yesterday")
    assert result.code == 2
    assert "--since 'yesterday' is not a date" in result.one("run_failed")["message"]


def test_batch_size_over_100_exits_2(zoho_project: Path, tmp_path: Path) -> None:
    result = run_sync(zoho_project, {"PATH": os.environ.get("PATH", "")},
                      tmp_path / "state.json", "--batch-size", "101")
    assert result.code == 2
    assert "not a whole number from 1 to 100" in result.stderr


def test_wrong_store_secret_exits_2(zoho_project: Path, tmp_path: Path) -> None:
    with stack(zoho_project) as servers:
        servers.store.seed([customer(1)])
        result = run_sync(zoho_project, servers.env(WOOCOMMERCE_CONSUMER_SECRET="cs_wrong"),
                          tmp_path / "state.json")
    assert result.code == 2
    message = result.one("run_failed")["message"]
    assert "woocommerce_rest_authentication_error" in message
    assert "Consumer secret is invalid." in message


def test_wrong_zoho_token_exits_2(zoho_project: Path, tmp_path: Path) -> None:
    with stack(zoho_project, refresh_tokens={"1000.other-not-real": "sa"}) as servers:
        result = run_sync(zoho_project, servers.env(), tmp_path / "state.json")
    assert result.code == 2
    assert "Zoho Accounts rejected the refresh token: invalid_code" in \
        result.one("run_failed")["message"]


# -- Zoho ---------------------------------------------------------------------------


def test_zoho_first_run_syncs_all(zoho_project: Path, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with stack(zoho_project) as servers:
        servers.store.seed([customer(1), customer(2), ARABIC_CUSTOMER],
                           [PHONE_ONLY_GUEST, guest_order(502, email="buyer1@example.com")])
        result = run_sync(zoho_project, servers.env(), state)
        contacts = {item.get("Ecom_Customer_ID") or item["Mobile"]: item
                    for item in servers.contacts()}
    assert result.code == 0, result.stderr
    assert result.one("state_saved")["created"] == 4
    assert sorted(contacts) == ["+966561112233", "1", "2", "7"]
    assert contacts["7"]["First_Name"] == "نورة"
    assert contacts["7"]["Last_Name"] == "العتيبي"
    assert contacts["7"]["Mobile"] == "+966501234567"
    assert contacts["7"]["Mailing_City"] == "Jeddah"
    assert contacts["7"]["Ecom_City_Raw"] == "جده"
    guest = contacts["+966561112233"]
    assert guest["First_Name"] == "عبد الرحمن"
    assert guest["Last_Name"] == "القحطاني"
    assert "Email" not in guest or guest["Email"] in (None, "")
    saved = json.loads(state.read_text(encoding="utf-8"))
    assert saved["marks"]["customers"] == {"modified_gmt": "2026-05-01T08:00:00",
                                           "ids": [1, 2, 7]}
    assert saved["marks"]["orders"]["modified_gmt"] == "2026-05-02T09:00:00"
    assert saved["retry"] == []


def test_zoho_second_run_syncs_nothing(zoho_project: Path, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with stack(zoho_project) as servers:
        servers.store.seed([customer(1), ARABIC_CUSTOMER], [PHONE_ONLY_GUEST])
        first = run_sync(zoho_project, servers.env(), state)
        calls = servers.upsert_calls()
        second = run_sync(zoho_project, servers.env(), state)
        assert servers.upsert_calls() == calls
        assert len(servers.contacts()) == 3
    assert first.code == 0, first.stderr
    assert second.code == 0, second.stderr
    assert second.one("store_read")["contacts"] == 0
    assert second.events("batch_written") == []


def test_zoho_changed_customer_synced(zoho_project: Path, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with stack(zoho_project) as servers:
        servers.store.seed([customer(1), customer(2)])
        assert run_sync(zoho_project, servers.env(), state).code == 0
        servers.clock.value = 1_790_000_000.0
        servers.store.put_customer({"id": 2, "billing": {"city": "الدمام"}})
        result = run_sync(zoho_project, servers.env(), state)
        contacts = {item["Ecom_Customer_ID"]: item for item in servers.contacts()}
    assert result.code == 0, result.stderr
    assert result.one("store_read")["contacts"] == 1
    assert result.one("state_saved")["updated"] == 1
    assert contacts["2"]["Mailing_City"] == "Dammam"
    assert contacts["1"]["Mailing_City"] == "Riyadh"
    assert len(contacts) == 2


def test_zoho_phone_only_guest_not_duplicated(zoho_project: Path, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with stack(zoho_project) as servers:
        servers.store.seed([], [PHONE_ONLY_GUEST])
        assert run_sync(zoho_project, servers.env(), state).code == 0
        servers.clock.value = 1_790_000_000.0
        servers.store.put_order({"id": 501, "status": "completed"})
        result = run_sync(zoho_project, servers.env(), state)
        contacts = servers.contacts()
    assert result.code == 0, result.stderr
    assert result.one("state_saved")["updated"] == 1
    assert len(contacts) == 1


def test_zoho_record_failure_masked_and_retried(zoho_project: Path, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    long_name = "\u0646" * 120  # Arabic noon; Zoho's Last_Name accepts at most 80 characters
    with stack(zoho_project) as servers:
        servers.store.seed([customer(1), customer(2, last_name=long_name,
                                                   billing={"last_name": long_name})])
        failed = run_sync(zoho_project, servers.env(), state)
        saved = json.loads(state.read_text(encoding="utf-8"))
        servers.clock.value = 1_790_000_000.0
        servers.store.put_customer({"id": 3, "email": "late@example.com"})
        servers.store.put_customer({"id": 2, "last_name": "Short",
                                    "billing": {"last_name": "Short"}})
        retried = run_sync(zoho_project, servers.env(), state)
        contacts = {item["Ecom_Customer_ID"]: item for item in servers.contacts()}
    assert failed.code == 1
    problem = failed.one("contact_failed")
    assert problem["id"] == 2
    assert problem["code"] == "INVALID_DATA"
    assert "Last_Name" in problem["message"]
    assert problem["email"] == "b***@***.com"
    assert problem["phone"] == "+966*******02"
    assert saved["retry"] == [{"source": "customer", "id": 2, "runs": 1, "code": "INVALID_DATA",
                               "message": "invalid data (field Last_Name)",
                               "email": "b***@***.com", "phone": "+966*******02"}]
    assert retried.code == 0, retried.stderr
    assert contacts["2"]["Last_Name"] == "Short"
    assert "3" in contacts
    assert json.loads(state.read_text(encoding="utf-8"))["retry"] == []


def test_zoho_503_retried(zoho_project: Path, tmp_path: Path) -> None:
    with stack(zoho_project) as servers:
        servers.store.seed([customer(1)])
        servers.fault(503, 1, "/crm/v8/Contacts/upsert")
        result = run_sync(zoho_project, servers.env(), tmp_path / "state.json")
        contacts = servers.contacts()
    assert result.code == 0, result.stderr
    assert [line["status"] for line in result.events("retry")] == [503]
    assert len(contacts) == 1


def test_zoho_outage_keeps_contacts(zoho_project: Path, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with stack(zoho_project) as servers:
        servers.store.seed([customer(1), customer(2)])
        servers.fault(503, 5, "/crm/v8/Contacts/upsert")
        failed = run_sync(zoho_project, servers.env(), state)
        saved = json.loads(state.read_text(encoding="utf-8"))
        recovered = run_sync(zoho_project, servers.env(), state)
        contacts = servers.contacts()
    assert failed.code == 1
    assert failed.one("batch_failed")["contacts_kept"] == 2
    assert sorted(item["id"] for item in saved["retry"]) == [1, 2]
    assert recovered.code == 0, recovered.stderr
    assert len(contacts) == 2


def test_dry_run_writes_nothing(zoho_project: Path, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with stack(zoho_project) as servers:
        servers.store.seed([customer(1)], [PHONE_ONLY_GUEST])
        env = servers.env(ZOHO_CLIENT_ID="", ZOHO_CLIENT_SECRET="", ZOHO_REFRESH_TOKEN="")
        result = run_sync(zoho_project, env, state, "--dry-run")
        contacts = servers.contacts()
    assert result.code == 0, result.stderr
    planned = result.events("contact_would_write")
    assert sorted(line["id"] for line in planned) == [1, 501]
    guest = next(line for line in planned if line["id"] == 501)
    assert guest["properties"] == ["Ecom_City_Raw", "Ecom_First_Order_At", "Ecom_LTV_SAR",
                                   "Ecom_Last_Order_At", "Ecom_Orders_Count", "First_Name",
                                   "Last_Name", "Mailing_City", "Mobile"]
    assert guest["phone"] == "+966*******33"
    assert contacts == []
    assert not state.exists()


def test_since_reads_again(zoho_project: Path, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with stack(zoho_project) as servers:
        servers.store.seed([customer(1), customer(2, date_modified_gmt="2026-06-01T00:00:00")])
        assert run_sync(zoho_project, servers.env(), state).code == 0
        again = run_sync(zoho_project, servers.env(), state, "--since", "2026-05-15")
        everything = run_sync(zoho_project, servers.env(), state, "--since", "all")
    assert again.one("store_read")["contacts"] == 1
    assert everything.one("store_read")["contacts"] == 2


# -- HubSpot ------------------------------------------------------------------------


def test_hubspot_batches_of_100(hubspot_project: Path, tmp_path: Path) -> None:
    with stack(hubspot_project) as servers:
        servers.store.seed([customer(number) for number in range(1, 206)])
        result = run_sync(hubspot_project, servers.env(), tmp_path / "state.json")
        contacts = servers.contacts()
        calls = servers.upsert_calls()
    assert result.code == 0, result.stderr
    assert [line["size"] for line in result.events("batch_written")] == [100, 100, 5]
    assert calls == 3
    assert len(contacts) == 205
    # --workflows sets Zoho's upsert trigger. HubSpot has none, so nothing is logged.
    assert result.events("workflows") == []


def test_hubspot_phone_only_by_unique_phone(hubspot_project: Path, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with stack(hubspot_project) as servers:
        servers.store.seed([ARABIC_CUSTOMER], [PHONE_ONLY_GUEST])
        first = run_sync(hubspot_project, servers.env(), state)
        servers.clock.value = 1_790_000_000.0
        servers.store.put_order({"id": 501, "status": "completed"})
        second = run_sync(hubspot_project, servers.env(), state)
        contacts = {item.get("email") or item["ecom_phone_e164"]: item
                    for item in servers.contacts()}
    assert first.code == 0, first.stderr
    assert second.code == 0, second.stderr
    assert second.one("state_saved")["updated"] == 1
    assert sorted(contacts) == ["+966561112233", "noura@example.com"]
    assert contacts["noura@example.com"]["firstname"] == "نورة"
    assert contacts["+966561112233"]["lastname"] == "القحطاني"


def test_hubspot_429_and_503_retried(hubspot_project: Path, tmp_path: Path) -> None:
    with stack(hubspot_project) as servers:
        servers.store.seed([customer(1), customer(2)])
        servers.fault(429, 1, "/crm/v3/objects/contacts/batch/upsert")
        servers.fault(503, 1, "/crm/v3/objects/contacts/batch/upsert")
        result = run_sync(hubspot_project, servers.env(), tmp_path / "state.json")
        contacts = servers.contacts()
    assert result.code == 0, result.stderr
    assert [line["status"] for line in result.events("retry")] == [429, 503]
    assert len(contacts) == 2


def test_hubspot_conflict_reported_masked(hubspot_project: Path, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    clash = customer(2, billing={"phone": "0550000001"})  # customer 1's phone
    with stack(hubspot_project) as servers:
        servers.store.seed([customer(1)])
        assert run_sync(hubspot_project, servers.env(), state).code == 0
        servers.clock.value = 1_790_000_000.0
        servers.store.put_customer(clash)
        result = run_sync(hubspot_project, servers.env(), state)
    assert result.code == 1
    problem = result.one("contact_failed")
    assert problem["id"] == 2
    assert problem["code"] == "CONFLICT"
    assert problem["email"] == "b***@***.com"
    assert problem["phone"] == "+966*******01"
    saved = json.loads(state.read_text(encoding="utf-8"))
    assert [item["id"] for item in saved["retry"]] == [2]


# -- roll-ups -----------------------------------------------------------------------


def paid_order(number: int, customer_id: int, status: str, total: str, created: str,
               refunds: tuple[str, ...] = (), **billing: str) -> dict[str, Any]:
    return {"id": number, "customer_id": customer_id, "status": status, "total": total,
            "currency": "SAR", "date_created_gmt": created, "date_modified_gmt": created,
            "refunds": [{"id": number * 10 + index, "reason": "", "total": amount}
                        for index, amount in enumerate(refunds)],
            "billing": {"country": "SA", **billing}}


GUEST = {"first_name": "Huda", "last_name": "Guest", "email": "guest@example.com"}
PHONE_GUEST = {"first_name": "عبد الرحمن", "last_name": "القحطاني", "phone": "0561112233"}
# 120 paid orders of customer 3 make the paid-order read take two pages of 100.
BULK_ORDERS = [paid_order(1000 + index, 3, "completed", "10.00", "2026-04-01T10:00:00")
               for index in range(120)]
ROLLUP_ORDERS = [
    # Customer 1: two paid orders (one partly refunded), one cancelled, one refunded in
    # full without a status change, and a guest order placed with the account's email.
    paid_order(601, 1, "completed", "250.00", "2026-03-01T10:00:00"),
    paid_order(602, 1, "processing", "100.50", "2026-04-15T12:30:00", ("-20.25",)),
    paid_order(603, 1, "cancelled", "999.00", "2026-05-01T09:00:00"),
    paid_order(604, 1, "completed", "80.00", "2026-05-10T09:00:00", ("-80.00",)),
    paid_order(605, 0, "completed", "49.75", "2026-02-01T08:00:00",
               email="Buyer1@Example.com", first_name="Sara", last_name="Tester1"),
    # A guest with an email: two paid orders, one refunded and one pending.
    paid_order(610, 0, "processing", "300.00", "2026-03-05T09:00:00", **GUEST),
    paid_order(611, 0, "completed", "150.00", "2026-03-20T18:45:00", ("-50.00",), **GUEST),
    paid_order(612, 0, "refunded", "70.00", "2026-03-22T10:00:00", ("-70.00",), **GUEST),
    paid_order(613, 0, "pending", "500.00", "2026-03-25T10:00:00", **GUEST),
    # A guest with only a phone, written two ways.
    paid_order(614, 0, "processing", "149.50", "2026-05-02T09:00:00", **PHONE_GUEST),
    paid_order(615, 0, "completed", "200.00", "2026-01-10T07:00:00",
               **{**PHONE_GUEST, "phone": "+966 56 111 2233"}),
    *BULK_ORDERS,
]
# Worked out by hand from the orders above: (count, lifetime value, first, last).
EXPECTED_ROLLUPS = {
    "customer 1": (3, "380.00", "2026-02-01T08:00:00+00:00", "2026-04-15T12:30:00+00:00"),
    "customer 2": (0, "0.00", None, None),
    "customer 3": (120, "1200.00", "2026-04-01T10:00:00+00:00", "2026-04-01T10:00:00+00:00"),
    "email guest": (2, "400.00", "2026-03-05T09:00:00+00:00", "2026-03-20T18:45:00+00:00"),
    "phone guest": (2, "349.50", "2026-01-10T07:00:00+00:00", "2026-05-02T09:00:00+00:00"),
}
HUBSPOT_ROLLUPS = ("ecom_orders_count", "ecom_ltv_sar", "ecom_first_order_at",
                   "ecom_last_order_at")
ZOHO_ROLLUPS = ("Ecom_Orders_Count", "Ecom_LTV_SAR", "Ecom_First_Order_At", "Ecom_Last_Order_At")


def hubspot_rollups(contact: dict[str, Any]) -> tuple[Any, ...]:
    count, ltv, first, last = (contact.get(name) or None for name in HUBSPOT_ROLLUPS)
    return int(count), ltv, first, last


def zoho_rollups(contact: dict[str, Any]) -> tuple[Any, ...]:
    count, ltv, first, last = (contact.get(name) for name in ZOHO_ROLLUPS)
    return count, f"{ltv:.2f}", first, last


def seed_rollup_store(servers: Stack) -> None:
    servers.store.seed([customer(1), customer(2), customer(3)], ROLLUP_ORDERS)


def test_hubspot_rollups_from_paid_orders(hubspot_project: Path, tmp_path: Path) -> None:
    with stack(hubspot_project) as servers:
        seed_rollup_store(servers)
        result = run_sync(hubspot_project, servers.env(), tmp_path / "state.json")
        contacts = {item.get("email") or item["ecom_phone_e164"]: item
                    for item in servers.contacts()}
        calls = servers.upsert_calls()
    assert result.code == 0, result.stderr
    assert calls == 1
    keys = {"customer 1": "buyer1@example.com", "customer 2": "buyer2@example.com",
            "customer 3": "buyer3@example.com", "email guest": "guest@example.com",
            "phone guest": "+966561112233"}
    assert sorted(contacts) == sorted(keys.values())
    for name, key in keys.items():
        assert hubspot_rollups(contacts[key]) == EXPECTED_ROLLUPS[name], name
    read = result.one("rollups_read")
    assert read["paid_orders"] == 127
    assert read["refunded_in_full"] == 1
    assert read["contacts_with_orders"] == 4


def test_zoho_rollups_from_paid_orders(zoho_project: Path, tmp_path: Path) -> None:
    with stack(zoho_project) as servers:
        seed_rollup_store(servers)
        result = run_sync(zoho_project, servers.env(), tmp_path / "state.json")
        contacts = {item.get("Email") or item["Mobile"]: item for item in servers.contacts()}
    assert result.code == 0, result.stderr
    keys = {"customer 1": "buyer1@example.com", "customer 2": "buyer2@example.com",
            "customer 3": "buyer3@example.com", "email guest": "guest@example.com",
            "phone guest": "+966561112233"}
    assert sorted(contacts) == sorted(keys.values())
    for name, key in keys.items():
        assert zoho_rollups(contacts[key]) == EXPECTED_ROLLUPS[name], name
    assert isinstance(contacts["buyer1@example.com"]["Ecom_Orders_Count"], int)


def with_meta(order: dict[str, Any], **meta: str) -> dict[str, Any]:
    return {**order, "meta_data": [{"id": index + 1, "key": key, "value": value}
                                   for index, (key, value) in enumerate(meta.items())]}


@pytest.fixture(scope="module")
def zoho_consent_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bake(tmp_path_factory.mktemp("zoho-consent"), "--preset", "woo-startup",
                "--set", "consent_channels=email,sms,whatsapp")


def test_zoho_consent_from_order_meta(zoho_consent_project: Path, tmp_path: Path) -> None:
    orders = [
        # Customer 1 granted SMS, then withdrew it on a later order; WhatsApp was granted
        # on the first order and left unticked ("no") on the later one.
        with_meta(paid_order(801, 1, "completed", "50.00", "2026-03-01T10:00:00"),
                  _rabt_sms_opt_in="yes", _rabt_whatsapp_opt_in="yes"),
        with_meta(paid_order(802, 1, "completed", "60.00", "2026-04-01T10:00:00"),
                  _rabt_sms_opt_in="withdrawn", _rabt_whatsapp_opt_in="no"),
        # A guest who granted WhatsApp only, on an order refunded in full.
        with_meta(paid_order(803, 0, "completed", "70.00", "2026-03-05T09:00:00", ("-70.00",),
                             **GUEST), _rabt_whatsapp_opt_in="yes"),
        # Customer 2 ordered without any consent meta.
        paid_order(804, 2, "processing", "80.00", "2026-03-06T09:00:00"),
    ]
    with stack(zoho_consent_project) as servers:
        servers.store.seed([customer(1), customer(2)], orders)
        result = run_sync(zoho_consent_project, servers.env(), tmp_path / "state.json")
        contacts = {item["Email"]: item for item in servers.contacts()}
    assert result.code == 0, result.stderr
    buyer1, guest, buyer2 = (contacts[key] for key in (
        "buyer1@example.com", "guest@example.com", "buyer2@example.com"))
    assert buyer1.get("Ecom_SMS_Opt_In") is False
    assert buyer1.get("Ecom_WhatsApp_Opt_In") is True
    assert guest.get("Ecom_WhatsApp_Opt_In") is True
    assert "Ecom_SMS_Opt_In" not in guest
    assert "Ecom_SMS_Opt_In" not in buyer2
    assert "Ecom_WhatsApp_Opt_In" not in buyer2
    assert result.one("rollups_read")["contacts_with_order_consent"] == 2


def test_hubspot_cancelled_order_recomputed(hubspot_project: Path, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with stack(hubspot_project) as servers:
        servers.store.seed([customer(1)], [
            paid_order(701, 0, "processing", "300.00", "2026-03-05T09:00:00", **GUEST),
            paid_order(702, 0, "completed", "99.99", "2026-03-20T18:45:00", **GUEST),
            paid_order(703, 1, "processing", "50.00", "2026-04-01T10:00:00")])
        assert run_sync(hubspot_project, servers.env(), state).code == 0
        servers.clock.value = 1_790_000_000.0
        servers.store.put_order({"id": 702, "status": "cancelled"})
        servers.store.put_order({"id": 703, "status": "refunded",
                                 "refunds": [{"id": 1, "reason": "", "total": "-50.00"}]})
        result = run_sync(hubspot_project, servers.env(), state)
        contacts = {item["email"]: item for item in servers.contacts()}
    assert result.code == 0, result.stderr
    assert result.one("state_saved")["updated"] == 2
    assert hubspot_rollups(contacts["guest@example.com"]) == (
        1, "300.00", "2026-03-05T09:00:00+00:00", "2026-03-05T09:00:00+00:00")
    assert hubspot_rollups(contacts["buyer1@example.com"]) == (0, "0.00", None, None)


def test_order_in_other_currency_not_summed(zoho_project: Path, tmp_path: Path) -> None:
    dollars = paid_order(801, 1, "completed", "40.00", "2026-03-01T10:00:00")
    dollars["currency"] = "USD"
    with stack(zoho_project) as servers:
        servers.store.seed([customer(1)], [
            dollars, paid_order(802, 1, "completed", "60.00", "2026-03-02T10:00:00")])
        result = run_sync(zoho_project, servers.env(), tmp_path / "state.json")
        contacts = servers.contacts()
    assert result.code == 0, result.stderr
    assert zoho_rollups(contacts[0]) == (2, "60.00", "2026-03-01T10:00:00+00:00",
                                         "2026-03-02T10:00:00+00:00")
    assert result.one("orders_not_sar")["orders"] == 1


# -- personal data ------------------------------------------------------------------

RAW_VALUES = ("buyer1@example.com", "noura@example.com", "0550000001", "+966550000001",
              "+966561112233", "0561112233", "نورة", "العتيبي", "Tester1", "القحطاني")


def test_logs_hold_no_personal_data(hubspot_project: Path, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with stack(hubspot_project) as servers:
        servers.store.seed([customer(1), ARABIC_CUSTOMER, customer(2, billing={
            "phone": "0550000001"})], [PHONE_ONLY_GUEST])
        outputs = [run_sync(hubspot_project, servers.env(), state, "--dry-run").stderr,
                   run_sync(hubspot_project, servers.env(), state).stderr]
    text = "\n".join(outputs) + state.read_text(encoding="utf-8")
    for value in RAW_VALUES:
        assert value not in text
    assert re.search(r"\+966\*+\d\d", text)


# -- the run lock -------------------------------------------------------------------


def write_lock(state: Path, pid: int, started_at: float) -> Path:
    lock = state.with_name(state.name + ".lock")
    lock.write_text(json.dumps({"pid": pid, "host": socket.gethostname(),
                                "started_at": started_at}), encoding="utf-8")
    return lock


def finished_pid() -> int:
    """Return the id of a process that has exited."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    return int(done.stdout)


def test_live_lock_exits_3(zoho_project: Path, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    lock = write_lock(state, os.getpid(), time.time())
    with stack(zoho_project) as servers:
        result = run_sync(zoho_project, servers.env(), state)
        assert servers.upsert_calls() == 0
    assert result.code == 3, result.stderr
    failed = result.one("run_failed")
    assert "holds the lock" in failed["message"]
    assert f"process {os.getpid()}" in failed["message"]
    assert lock.exists()


def test_crashed_run_lock_taken_over(zoho_project: Path, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    lock = write_lock(state, finished_pid(), time.time())
    with stack(zoho_project) as servers:
        servers.store.seed([customer(1)], [])
        result = run_sync(zoho_project, servers.env(), state)
    assert result.code == 0, result.stderr
    assert result.one("lock_taken_over")["host"] == socket.gethostname()
    assert not lock.exists()


def test_old_lock_taken_over(zoho_project: Path, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    write_lock(state, os.getpid(), time.time() - 7 * 3600)
    with stack(zoho_project) as servers:
        servers.store.seed([customer(1)], [])
        result = run_sync(zoho_project, servers.env(), state)
    assert result.code == 0, result.stderr
    assert result.one("lock_taken_over")["pid"] == os.getpid()


def test_pid_only_lock_taken_over(zoho_project: Path, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.with_name(state.name + ".lock").write_text(f"{finished_pid()}\n", encoding="utf-8")
    with stack(zoho_project) as servers:
        result = run_sync(zoho_project, servers.env(), state)
    assert result.code == 0, result.stderr


def test_zoho_workflows_on_incremental_runs(zoho_project: Path, tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with stack(zoho_project) as servers:
        triggers = servers.crm_app.state.zoho.triggers
        servers.store.seed([customer(1), customer(2)])
        first = run_sync(zoho_project, servers.env(), state)
        assert first.code == 0, first.stderr
        assert first.one("workflows")["on"] is False
        assert triggers == [[]]
        servers.clock.value = 1_790_000_000.0
        servers.store.put_customer({"id": 2, "billing": {"city": "الدمام"}})
        second = run_sync(zoho_project, servers.env(), state)
        assert second.code == 0, second.stderr
        assert triggers == [[], ["workflow"]]
        servers.store.put_customer({"id": 1, "billing": {"city": "جدة"}})
        muted = run_sync(zoho_project, servers.env(), state, "--workflows", "off")
        assert muted.code == 0, muted.stderr
        assert triggers[-1] == []
        loud = run_sync(zoho_project, servers.env(), state, "--since", "all",
                        "--workflows", "on")
        assert loud.code == 0, loud.stderr
        assert triggers[-1] == ["workflow"]


def test_help_without_requirements_names_pip(zoho_project: Path) -> None:
    script = zoho_project / "sync/contact_sync.py"
    hide = ("import runpy, sys; sys.modules['yaml'] = None; sys.modules['httpx'] = None; "
            "sys.argv = [sys.argv[1], '--help']; runpy.run_path(sys.argv[0], "
            "run_name='__main__')")
    done = subprocess.run([sys.executable, "-c", hide, str(script)], capture_output=True,
                          text=True, check=False, timeout=SYNC_TIMEOUT_SECONDS)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "python -m pip install -r" in done.stderr
    assert str(zoho_project / "sync/requirements.txt") in done.stderr
