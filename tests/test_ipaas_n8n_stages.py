"""HubSpot pipeline and stage ids reach the n8n deal upsert from ``.rabt/crm-state.json``.

With a state file the deal is sent with the recorded ids. Without one, the deal
batch node fails the run with the pending flags instead of sending a stage key.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from generator import render
from generator.crm.state import CrmState, save_state
from generator.errors import InputError
from generator.ipaas import n8n
from generator.ipaas.crm_ids import load_crm_ids, with_stage_ids
from generator.spec import build_desired_state
from tests.ipaas_cases import load_case
from tests.test_ipaas_n8n_run import node_code, run_chain

PAYLOADS = Path(__file__).resolve().parent.parent / "generator" / "payloads"
MAP = "Map the order to the deal, with its stage"
BATCH = "Create or update the deal: batch"
STAGE_IDS = {"cart_abandoned": "1001", "awaiting_payment": "1002", "paid_processing": "1003",
             "fulfilled": "1004", "cancelled": "1005", "refunded": "1006"}


def recorded_state() -> CrmState:
    """Return a state as ``rabt crm apply`` records a created pipeline and its stages."""
    state = CrmState(crm="hubspot", clock=lambda: "2026-12-04T10:00:00+00:00")
    key = "pipeline:deals/e-commerce"
    state.record(key, "pipeline", "77001", owned=True, label="E-commerce")
    for stage, stage_id in STAGE_IDS.items():
        state.record(f"stage:e-commerce/{stage}", "stage", stage_id, owned=True, parent=key,
                     stage_key=stage)
    return state


def order_workflow(ids: dict[str, Any] | None) -> dict[str, Any]:
    answers, plan, spec = load_case("shopify-growth", {"store_count": 1})
    files = n8n.files(answers, plan, with_stage_ids(spec, ids), build_desired_state(spec, plan))
    data: dict[str, Any] = json.loads(files["workflows/n8n/order-sync.json"])
    return data


def order() -> dict[str, Any]:
    body: dict[str, Any] = json.loads((PAYLOADS / "shopify" / "orders-create-arabic.json")
                                      .read_text(encoding="utf-8"))
    return body


def deal_chain(data: dict[str, Any]) -> list[tuple[str, str | None, str | None]]:
    return [(MAP, node_code(data, MAP), None), (BATCH, node_code(data, BATCH), None)]


def test_state_ids_sent_with_deal(tmp_path: Path) -> None:
    save_state(tmp_path, recorded_state())
    ids = load_crm_ids(tmp_path, "hubspot")
    requests = run_chain(deal_chain(order_workflow(ids)), [order()])
    properties = requests[0]["body"]["inputs"][0]["properties"]
    assert properties["dealstage"] in set(STAGE_IDS.values())
    assert properties["pipeline"] == "77001"


def test_missing_ids_not_sent() -> None:
    with pytest.raises(AssertionError) as failure:
        run_chain(deal_chain(order_workflow(None)), [order()])
    assert "stage_id_pending" in str(failure.value)
    assert "pipeline_id_pending" in str(failure.value)
    assert "rabt crm apply" in str(failure.value)


def test_without_state_no_ids(tmp_path: Path) -> None:
    assert load_crm_ids(tmp_path, "hubspot") is None


def test_state_of_other_crm_rejected(tmp_path: Path) -> None:
    save_state(tmp_path, CrmState(crm="zoho"))
    with pytest.raises(InputError):
        load_crm_ids(tmp_path, "hubspot")


def test_invalid_state_rejected(tmp_path: Path) -> None:
    (tmp_path / ".rabt").mkdir()
    (tmp_path / ".rabt" / "crm-state.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(InputError):
        load_crm_ids(tmp_path, "hubspot")


def test_unmatched_pipeline_keeps_keys() -> None:
    _, _, spec = load_case("shopify-growth", {"store_count": 1})
    ids = {"pipelines": {"pipeline:deals/other": {"id": "9", "label": "Other",
                                                   "stages": {"lead": "1"}}}}
    stages = with_stage_ids(spec, ids)["mapping"]["order_stages"]
    assert stages["pipeline"]["crm_value"] is None
    assert {stage["crm_value"] for stage in stages["stages"]} == {None}


def test_spec_left_unchanged() -> None:
    _, _, spec = load_case("shopify-growth", {"store_count": 1})
    state = recorded_state()
    with_stage_ids(spec, state.ids())
    assert spec["mapping"]["order_stages"]["pipeline"]["crm_value"] is None


class Stop(Exception):
    """Raised by the stand-in renderer once it has the ids it was given."""


def test_render_reads_existing_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    answers, plan, _ = load_case("shopify-growth", {"store_count": 1})
    target = tmp_path / answers.project_slug
    save_state(target, recorded_state())
    (target / ".rabt" / "answers.yaml").write_text("{}\n", encoding="utf-8")
    seen: list[Any] = []

    def capture(staging: Path, answers: Any, plan: Any, crm_ids: Any = None) -> Path:
        seen.append(crm_ids)
        raise Stop

    monkeypatch.setattr(render, "_render_into", capture)
    with pytest.raises(Stop):
        render.render_project(answers, plan, tmp_path, overwrite=True)
    assert seen[0]["pipelines"]["pipeline:deals/e-commerce"]["id"] == "77001"
    assert seen[0]["pipelines"]["pipeline:deals/e-commerce"]["stages"] == STAGE_IDS


def test_regenerate_uses_state_ids(tmp_path: Path) -> None:
    answers, plan, _ = load_case("shopify-growth", {"store_count": 1})
    render.render_project(answers, plan, tmp_path)
    project = tmp_path / answers.project_slug
    save_state(project, recorded_state())
    render.render_project(answers, plan, tmp_path, overwrite=True)
    data = json.loads((project / "workflows/n8n/order-sync.json").read_text(encoding="utf-8"))
    requests = run_chain(deal_chain(data), [order()])
    properties = requests[0]["body"]["inputs"][0]["properties"]
    assert properties["pipeline"] == "77001"
    assert properties["dealstage"] in set(STAGE_IDS.values())
    assert (project / ".rabt" / "crm-state.json").is_file()


@pytest.mark.parametrize("lang", ["", ".ar"])
def test_guide_says_apply_then_regenerate(tmp_path: Path, lang: str) -> None:
    answers, plan, _ = load_case("shopify-growth", {"store_count": 1})
    render.render_project(answers, plan, tmp_path)
    guide = (tmp_path / answers.project_slug / f"workflows/n8n/README{lang}.md").read_text(
        encoding="utf-8")
    apply_at = guide.index("rabt crm apply .")
    regenerate_at = guide.index(
        "rabt new --answers .rabt/answers.yaml --no-input --overwrite --output-dir ..")
    assert apply_at < regenerate_at < guide.index("n8n import:workflow")
    assert "stage_id_pending" in guide
    assert "rabt_failed_items" in guide
