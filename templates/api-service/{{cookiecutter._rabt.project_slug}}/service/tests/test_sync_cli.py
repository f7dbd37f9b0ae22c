"""The dead-letters commands and the demo, run against the stand-in and a real intake."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from intake_support import serve
from storesync.cli import main
from storesync.demo import load_samples, run_demo
from storesync.intake import create_app
from storesync.settings import load_settings
from storesync.worker import handle_delivery
from sync_support import DESIRED_STATE_PATH, SARA, SPEC_DIR, Order, SyncHarness

MakeHarness = Callable[..., SyncHarness]


@pytest.fixture
def dead_letter_env(make_harness: MakeHarness, monkeypatch: pytest.MonkeyPatch
                    ) -> Iterator[SyncHarness]:
    """A harness with one dead-lettered contact, and the environment the CLI reads."""
    sync = make_harness(SYNC_MAX_ATTEMPTS="1")
    sync.deliver_order(Order(830001, SARA))
    sync.standin.fault(503, 1, "/crm/v3/objects/contacts")
    sync.flush()
    for name, value in {"DATA_DIR": str(sync.settings.data_dir),
                        "SPEC_DIR": str(SPEC_DIR),
                        "HUBSPOT_BASE_URL": sync.settings.hubspot_base_url}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("HUBSPOT_ACCESS_TOKEN", raising=False)
    yield sync


def test_dead_letters_list(dead_letter_env: SyncHarness) -> None:
    result = CliRunner().invoke(main, ["dead-letters", "list"])
    assert result.exit_code == 0, result.output
    assert "contacts" in result.output
    assert "503" in result.output


def test_dead_letters_list_json(dead_letter_env: SyncHarness) -> None:
    result = CliRunner().invoke(main, ["dead-letters", "list", "--json"])
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert result.exit_code == 0
    assert [line["object"] for line in lines] == ["contacts"]
    assert "properties" not in lines[0]


def test_dead_letters_show_masks(dead_letter_env: SyncHarness) -> None:
    store = dead_letter_env.context.store
    contact = store.dead_letters()[0]
    result = CliRunner().invoke(main, ["dead-letters", "show", str(contact.id)])
    shown = json.loads(result.output)
    assert result.exit_code == 0
    assert shown["status"] == 503
    assert shown["event_id"] == contact.item.event_id
    assert shown["properties"]["email"] == "s***@e***.com"
    assert SARA["email"] not in result.output
    assert SARA["phone"] not in result.output
    revealed = CliRunner().invoke(main, ["dead-letters", "show", str(contact.id), "--reveal"])
    assert json.loads(revealed.output)["properties"]["email"] == SARA["email"]


def test_dead_letters_show_unknown(dead_letter_env: SyncHarness) -> None:
    result = CliRunner().invoke(main, ["dead-letters", "show", "999"])
    assert result.exit_code == 2
    assert "no dead letter has id 999" in result.output


def test_dead_letters_replay_syncs(dead_letter_env: SyncHarness) -> None:
    sync = dead_letter_env
    letter = sync.context.store.dead_letters()[0]
    result = CliRunner().invoke(main, ["dead-letters", "replay", str(letter.id)])
    assert result.exit_code == 0, result.output
    assert "back in the outbox" in result.output
    sync.flush(now=sync.context.store.clock() + 10)
    contact = sync.standin.records("contacts")
    assert len(contact) == 1
    assert contact[0]["associations"]["deals"]  # the link that waited for it was written
    again = CliRunner().invoke(main, ["dead-letters", "replay", str(letter.id)])
    assert again.exit_code == 2


@pytest.mark.parametrize("args", [["dead-letters", "replay"],
                                  ["dead-letters", "replay", "1", "--all"]])
def test_dead_letters_replay_usage(dead_letter_env: SyncHarness, args: list[str]) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert "give one dead letter id, or --all" in result.output


def test_dead_letters_replay_all(dead_letter_env: SyncHarness) -> None:
    result = CliRunner().invoke(main, ["dead-letters", "replay", "--all"])
    assert result.exit_code == 0
    assert "Replayed 1 dead letter." in result.output


def test_samples_cover_the_cases() -> None:
    for platform in ("shopify", "woocommerce", "storefront"):
        samples = load_samples((platform,))
        ids = [sample.delivery_id for sample in samples]
        notes = " ".join(sample.note for sample in samples)
        assert len(ids) > len(set(ids)), f"{platform}: no duplicate delivery"
        for case in ("phone-only", "guest", "refund", "duplicate", "stale"):
            assert case in notes, f"{platform}: no {case} sample"


def test_demo_prints_records(make_harness: MakeHarness, tmp_path: Path) -> None:
    sync = make_harness()
    settings = load_settings({"DATA_DIR": str(sync.settings.data_dir), "SPEC_DIR": str(SPEC_DIR),
                              "DESIRED_STATE_PATH": str(DESIRED_STATE_PATH),
                              "HUBSPOT_BASE_URL": sync.standin.url})
    app = create_app(settings, handler=lambda delivery: handle_delivery(delivery, sync.context))
    queue = app.state.services.queue.huey
    stop = threading.Event()

    def work() -> None:
        while not stop.is_set():
            task = queue.dequeue()
            if task is not None:
                queue.execute(task)
                continue
            sync.flusher.flush_once(force=True)
            stop.wait(0.05)

    lines: list[str] = []
    worker = threading.Thread(target=work, daemon=True)
    with serve(app) as intake_url:
        worker.start()
        try:
            counts = run_demo(settings, intake_url, sync.standin.url, lines.append, 30)
        finally:
            stop.set()
            worker.join(10)
    output = "\n".join(lines)
    assert counts["deals"] == 3
    assert counts["contacts"] == 3
    assert "200  " in output
    assert "reem.demo@example.com" not in output
    refunded = [record for record in sync.standin.records("deals")
                if record["properties"].get("ecom_refunded_sar") == "40.00"]
    assert len(refunded) == 1


def test_sandbox_restart_forgets_crm_ids(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    from storesync.cli import forget_sandbox_crm_ids
    from storesync.db import Database
    from storesync.sync_store import SyncStore

    settings = load_settings({"DATA_DIR": str(tmp_path / "var"), "SPEC_DIR": str(SPEC_DIR),
                              "DESIRED_STATE_PATH": str(DESIRED_STATE_PATH)})
    settings.data_dir.mkdir(parents=True)
    db = Database(settings.state_path)
    store = SyncStore(db)
    with db.transaction() as conn:
        conn.execute("INSERT INTO sync_crm_ids (object, key, crm_id) VALUES "
                     "('contacts', 'c1', '501'), ('deals', 'd1', '502')")
        store.save_product_sku(conn, "test-store:OUD-ROYAL-50", "test-store:sku:OUD-ROYAL-50")
        assert store.check_version(conn, "contacts:c1", 100.0, "delivery-1") == "newer"

    assert forget_sandbox_crm_ids(settings) == 2
    assert "the 2 CRM ids of the previous sandbox run were forgotten" in capsys.readouterr().out
    assert store.crm_ids("contacts", ["c1"]) == {}
    assert store.crm_ids("deals", ["d1"]) == {}
    assert store.product_keys_for_skus(["test-store:OUD-ROYAL-50"]) == {}
    with db.transaction() as conn:
        # The contact's next delivery counts as new, even with the same time.
        assert store.check_version(conn, "contacts:c1", 100.0, "delivery-2") == "newer"

    assert forget_sandbox_crm_ids(settings) == 0
    assert capsys.readouterr().out == ""
    db.close()
