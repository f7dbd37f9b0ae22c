"""Benchmark the CRM sync: orders (with contacts and line items) written to the HubSpot stand-in.

Usage (from the service folder)::

    python bench/sync_bench.py --orders 20000 --rate-limit 190

Steps: the stand-in (``python -m storesync.standins.hubspot``, seeded from
``../crm/desired-state.yaml``) starts in its own process on a free 127.0.0.1 port with
the given burst limit. The worker then receives N made-up orders, timed on their own.
Last, the flusher runs until the outbox is empty, and that is the timed sync. The
report, measured in one run, gives:

* time ratio: the optimum (the fewest calls possible with full batches of 100, sent
  at exactly the rate limit) divided by the measured flush time; target >= 0.9;
* the share of calls answered 429; target <= 1 %;
* API calls per 1,000 orders against that batch minimum; target <= 1.1 times it.

Every name, email and phone in the orders is made up.
"""

from __future__ import annotations

import argparse
import json
import math
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

SERVICE_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(SERVICE_DIR / "src"))

from storesync.db import Database  # noqa: E402
from storesync.delivery import Delivery  # noqa: E402
from storesync.flusher import client_for, flusher_for  # noqa: E402
from storesync.settings import load_settings  # noqa: E402
from storesync.worker import build_context, handle_delivery  # noqa: E402

PROJECT_DIR = SERVICE_DIR.parent
WINDOW_SECONDS = 10.0
BATCH = 100


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_standin(port: int, rate_limit: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "storesync.standins.hubspot", "--port", str(port),
               "--rate-limit", str(rate_limit),
               "--seed", str(PROJECT_DIR / "crm" / "desired-state.yaml")]
    process = subprocess.Popen(command, cwd=SERVICE_DIR / "src", stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the stand-in did not start within 20 seconds")


def order_body(platform: str, number: int, customers: int, lines: int) -> tuple[str, str]:
    """Return (topic, JSON body) of made-up order ``number`` in ``platform``'s shape."""
    customer = number % customers
    email = f"bench{customer}@example.com"
    phone = f"+9665{customer % 100_000_000:08d}"
    items = [(number * 10 + line, f"SKU-{(number + line) % 500}", "49.50")
             for line in range(1, lines + 1)]
    updated = f"2026-04-01T{number % 24:02d}:{number % 60:02d}:00+03:00"
    total = f"{49.5 * lines:.2f}"
    if platform == "woocommerce":
        body: dict[str, Any] = {
            "id": number, "number": str(number), "status": "processing", "currency": "SAR",
            "total": total, "date_created_gmt": "2026-04-01T07:00:00",
            "date_modified_gmt": updated[:19], "customer_id": 100 + customer,
            "billing": {"first_name": "عميل", "last_name": str(customer), "email": email,
                        "phone": phone, "city": "Riyadh"},
            "line_items": [{"id": item, "name": "منتج", "product_id": 1, "variation_id": 0,
                            "sku": sku, "quantity": 1, "price": float(price)}
                           for item, sku, price in items]}
        return "order.updated", json.dumps(body, ensure_ascii=False)
    if platform == "storefront":
        body = {"event": "order_updated", "event_id": f"evt_{number}", "occurred_at": updated,
                "customer": {"id": f"cus_{customer}", "email": email, "phone": phone,
                             "first_name": "عميل", "last_name": str(customer)},
                "order": {"id": f"ord_{number}", "number": str(number), "status": "paid",
                          "total": total, "currency": "SAR", "created_at": updated,
                          "line_items": [{"id": f"li_{item}", "sku": sku, "title": "منتج",
                                          "quantity": 1, "unit_price": price}
                                         for item, sku, price in items]}}
        return "order_updated", json.dumps(body, ensure_ascii=False)
    body = {"id": 6_000_000_000 + number, "name": f"#{number}", "email": email,
            "currency": "SAR", "total_price": total, "financial_status": "paid",
            "fulfillment_status": None, "processed_at": updated, "updated_at": updated,
            "customer": {"id": 7_000_000_000 + customer, "email": email, "phone": phone,
                         "first_name": "عميل", "last_name": str(customer)},
            "line_items": [{"id": item, "sku": sku, "quantity": 1, "price": price,
                            "name": "منتج", "title": "منتج"} for item, sku, price in items]}
    return "orders/updated", json.dumps(body, ensure_ascii=False)


def minimum_calls(counts: Counter[str]) -> int:
    """Return the fewest batch calls that can write ``counts`` records per object."""
    return sum(math.ceil(count / BATCH) for count in counts.values())


def run(args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    standin = start_standin(port, args.rate_limit)
    try:
        with tempfile.TemporaryDirectory() as data_dir:
            return measure(args, port, data_dir)
    finally:
        standin.terminate()
        standin.wait(10)


def measure(args: argparse.Namespace, port: int, data_dir: str) -> dict[str, Any]:
    settings = load_settings({
        "DATA_DIR": data_dir, "SPEC_DIR": str(PROJECT_DIR / "integration"),
        "HUBSPOT_BASE_URL": f"http://127.0.0.1:{port}",
        "HUBSPOT_RATE_LIMIT_PER_10S": str(args.rate_limit),
        "SYNC_BATCH_WINDOW_MS": str(args.window_ms)})
    context = build_context(settings, Database(settings.state_path))

    platform = {"headless": "storefront", "custom": "storefront"}.get(
        str(context.mapping.get("platform")), str(context.mapping.get("platform")))
    started = time.perf_counter()
    for number in range(1, args.orders + 1):
        topic, body = order_body(platform, number, args.customers, args.lines)
        handle_delivery(Delivery(f"bench-{number}", platform, topic, "bench-store",
                                 "2026-04-01T10:00:00Z", None, body), context)
    enqueue_seconds = time.perf_counter() - started

    pending = Counter({obj: context.store.pending_count(obj)
                       for obj in context.store.pending_objects()})
    client = client_for(settings)
    flusher = flusher_for(settings, context.store, context.mapping, client)
    flusher.resolve_stages()
    setup_calls = client.calls
    started = time.perf_counter()
    while context.store.pending_count() > 0:
        report = flusher.flush_once()
        if report.calls == 0:
            time.sleep(0.01)
    flush_seconds = time.perf_counter() - started
    calls = client.calls - setup_calls
    client.close()

    fewest = minimum_calls(pending)
    optimum_seconds = fewest / (args.rate_limit / WINDOW_SECONDS)
    standin_calls = httpx.get(f"http://127.0.0.1:{port}/_standin/calls").json()
    rejected = sum(call["count"] for call in standin_calls["calls"] if call["status"] == 429)
    return {
        "orders": args.orders, "lines_per_order": args.lines, "customers": args.customers,
        "rate_limit_per_10s": args.rate_limit, "records": dict(pending),
        "enqueue_seconds": round(enqueue_seconds, 1),
        "orders_enqueued_per_second": round(args.orders / enqueue_seconds),
        "flush_seconds": round(flush_seconds, 1), "optimum_seconds": round(optimum_seconds, 1),
        "time_ratio": round(optimum_seconds / flush_seconds, 3),
        "calls": calls, "minimum_calls": fewest,
        "calls_per_1000_orders": round(calls * 1000 / args.orders, 1),
        "minimum_calls_per_1000_orders": round(fewest * 1000 / args.orders, 1),
        "calls_ratio": round(calls / fewest, 3),
        "answered_429": rejected, "share_429": round(rejected / max(1, calls), 4),
        "dead_letters": context.store.dead_letter_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=20_000, help="orders to sync")
    parser.add_argument("--lines", type=int, default=2, help="line items per order")
    parser.add_argument("--customers", type=int, default=0,
                        help="distinct customers (default: two thirds of the orders)")
    parser.add_argument("--rate-limit", type=int, default=190,
                        help="burst limit per 10 s of the stand-in and the client")
    parser.add_argument("--window-ms", type=int, default=500, help="SYNC_BATCH_WINDOW_MS")
    args = parser.parse_args()
    args.customers = args.customers or max(1, args.orders * 2 // 3)
    print(json.dumps(run(args), indent=2))


if __name__ == "__main__":
    main()
