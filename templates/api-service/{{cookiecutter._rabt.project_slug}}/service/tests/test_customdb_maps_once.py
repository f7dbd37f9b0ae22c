"""The custom database's worker step runs the mapping engine once per delivery."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from intake_support import encode_body
from storesync.customdb import deliveries
from storesync.db import Database
from storesync.delivery import Delivery
from storesync.runtime import engine
from storesync.settings import load_settings
from storesync.worker import JobOutcome, WorkerContext, build_context
from sync_support import SARA, SPEC_DIR, Order, family
from test_customdb_fixtures import require_custom_project


@pytest.fixture
def context(tmp_path: Path) -> Iterator[WorkerContext]:
    # On Zoho the order's lines become a sales order, so the custom step's line table
    # stays empty; the step itself only runs in projects on the client's database.
    require_custom_project()
    settings = load_settings({"DATA_DIR": str(tmp_path / "var"), "SPEC_DIR": str(SPEC_DIR),
                              "STORE_ID": "test-store"})
    database = Database(settings.state_path)
    yield build_context(settings, database)
    database.close()


@pytest.fixture
def engine_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Count the engine's map_payload calls made through the worker and the custom step."""
    calls: list[str] = []
    real = engine.map_payload

    def counting(mapping: Any, platform: str, topic: str, payload: Any) -> Any:
        calls.append(topic)
        return real(mapping, platform, topic, payload)

    monkeypatch.setattr("storesync.worker.map_payload", counting)
    monkeypatch.setattr("storesync.customdb.deliveries.map_payload", counting)
    return calls


def delivery_of(body: bytes, topic: str) -> Delivery:
    return Delivery(delivery_id="maps-once-1", source=family(), topic=topic, shop="test-store",
                    received_at="2026-03-03T18:10:00Z", triggered_at=None,
                    body=body.decode("utf-8"))


def test_order_mapped_once(context: WorkerContext, engine_calls: list[str]) -> None:
    order = Order(840001, SARA)
    source = family()
    delivery = delivery_of(encode_body(order.body(source)), order.topic(source))
    assert deliveries.handle_delivery(delivery, context) is JobOutcome.SYNCED_LATER
    assert engine_calls == [order.topic(source)]
    # The records the custom step keeps still come from that one mapping.
    with context.store.db.connection() as conn:
        links = conn.execute("SELECT line_key, order_key FROM customdb_line_orders").fetchall()
    assert len(links) == 1
    assert links[0][1].endswith("840001")


def test_unreadable_body_not_mapped(context: WorkerContext, engine_calls: list[str]) -> None:
    delivery = delivery_of(b"{not json", Order(840002, SARA).topic(family()))
    assert deliveries.handle_delivery(delivery, context) is JobOutcome.QUARANTINED
    assert engine_calls == []
