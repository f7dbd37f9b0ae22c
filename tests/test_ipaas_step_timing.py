"""Every playbook step falls due a fixed time after the trigger event, in n8n as in Make.

The spec counts each step's offset from the end of the playbook's delay, so quiet
hours that hold back one step must not move the next one. The n8n workflows wait for
each later step's due time, computed from the event time in the received payload.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from generator.ipaas import n8n
from generator.ipaas.flows import build_flows
from generator.spec import build_desired_state
from tests.ipaas_cases import load_case
from tests.test_ipaas_n8n_run import node_code, run_chain, workflow

# (flow, the wait before step 2, the event time field, the due time after the event)
CASES = [
    ("post-purchase", "updated_at", timedelta(days=7 + 2)),
    ("abandoned-checkout", "updated_at", timedelta(hours=2 + 20)),
]
WAIT = "Wait for the next step"


def resume_at(flow: str, payload: dict[str, Any]) -> datetime:
    data = workflow("shopify-growth", flow)
    steps: list[tuple[str, str | None, str | None]] = [
        ("Receive the payload", None, "(json) => json"),
        (f"{WAIT}: due time", node_code(data, f"{WAIT}: due time"), None),
    ]
    result = run_chain(steps, [payload])
    assert len(result) == 1
    return datetime.fromisoformat(result[0]["_resume_at"].replace("Z", "+00:00"))


@pytest.mark.parametrize(("flow", "field", "after"), CASES)
def test_n8n_step_waits_until_due(flow: str, field: str, after: timedelta) -> None:
    event = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    resume = resume_at(flow, {"id": 1, field: event.isoformat()})
    assert resume == event + after


@pytest.mark.parametrize(("flow", "field", "after"), CASES)
def test_n8n_overdue_step_resumes_now(flow: str, field: str, after: timedelta) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    event = before - after - timedelta(days=1)
    resume = resume_at(flow, {"id": 1, field: event.isoformat()})
    assert before <= resume <= datetime.now(UTC) + timedelta(seconds=1)


@pytest.mark.parametrize(("flow", "field", "after"), CASES)
def test_n8n_step_without_event_time(flow: str, field: str, after: timedelta) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    resume = resume_at(flow, {"id": 1})
    assert before <= resume <= datetime.now(UTC) + timedelta(seconds=1)


@pytest.mark.parametrize(("flow", "field", "after"), CASES)
def test_n8n_step_wait_is_specific_time(flow: str, field: str, after: timedelta) -> None:
    data = workflow("shopify-growth", flow)
    node = next(item for item in data["nodes"] if item["name"] == WAIT)
    assert node["parameters"] == {"resume": "specificTime",
                                  "dateTime": "={{ $json._resume_at }}"}
    outputs = data["connections"][f"{WAIT}: due time"]["main"]
    assert [link["node"] for output in outputs for link in output] == [WAIT]


def test_step_due_after_counts_from_event() -> None:
    answers, plan, spec = load_case("shopify-growth", {})
    flows = build_flows(answers, plan, spec)
    waits = {flow: [step.params for step in flows.get(flow).walk()
                    if step.key == "wait_2"] for flow in ("post-purchase", "abandoned-checkout")}
    assert waits["post-purchase"][0]["due_after"] == {
        "sources": ["updated_at"], "amount": 9, "unit": "days"}
    assert waits["post-purchase"][0]["amount"] == 2
    assert waits["abandoned-checkout"][0]["due_after"] == {
        "sources": ["updated_at"], "amount": 22 * 60, "unit": "minutes"}


def test_n8n_woocommerce_gmt_time_read_as_utc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Riyadh")
    answers, plan, spec = load_case("woo-startup", {
        "path": "ipaas", "consent_channels": ["email", "whatsapp"]})
    files = n8n.files(answers, plan, spec, build_desired_state(spec, plan))
    data = json.loads(files["workflows/n8n/post-purchase.json"])
    steps: list[tuple[str, str | None, str | None]] = [
        ("Receive the payload", None, "(json) => json"),
        (f"{WAIT}: due time", node_code(data, f"{WAIT}: due time"), None),
    ]
    event = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    payload = {"id": 1, "date_completed_gmt": event.strftime("%Y-%m-%dT%H:%M:%S")}
    result = run_chain(steps, [payload])
    resume = datetime.fromisoformat(result[0]["_resume_at"].replace("Z", "+00:00"))
    assert resume == event + timedelta(days=9)
