"""The demo on the customer database: samples through a real intake, rows from PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable

from intake_support import serve
from storesync.demo import run_demo, standin_url
from storesync.intake import create_app
from test_customdb_fixtures import (  # noqa: F401 (fixtures)
    CustomHarness,
    database_url_fixture,
    engine_fixture,
    make_custom_harness_fixture,
    migrated_fixture,
)

MakeHarness = Callable[..., CustomHarness]


def test_demo_prints_database_rows(make_custom_harness: MakeHarness) -> None:
    from storesync.customdb.deliveries import handle_delivery

    sync = make_custom_harness()
    settings = sync.context.settings
    app = create_app(settings, handler=lambda delivery: handle_delivery(delivery, sync.context))
    queue = app.state.services.queue.huey
    stop = threading.Event()

    def work() -> None:
        while not stop.is_set():
            task = queue.dequeue()
            if task is not None:
                queue.execute(task)
                continue
            sync.writer.write_once()
            stop.wait(0.05)

    lines: list[str] = []
    worker = threading.Thread(target=work, daemon=True)
    with serve(app) as intake_url:
        worker.start()
        try:
            counts = run_demo(settings, intake_url, standin_url(settings, None), lines.append,
                              30)
        finally:
            stop.set()
            worker.join(10)
    output = "\n".join(lines)
    stored = {table: len(sync.rows(f"SELECT 1 FROM {table}"))
              for table in ("contacts", "orders", "order_lines")}
    # Every platform's samples hold three orders (one refunded, updated late), each with
    # its own buyer; a repeated delivery and a stale update add no rows.
    assert counts == stored
    assert stored["orders"] == 3
    assert stored["contacts"] == 3
    assert "\norders (3):" in output
    assert "200  " in output
    # Emails and phones are masked.
    assert "@example.com" not in output
    assert "+966500000021" not in output
    assert "phone_e164=+9665*****021" in output
