"""Benchmark the CRM sync end to end: orders from the queue to the HubSpot stand-in.

Usage (from the service folder)::

    python bench/sync_bench.py --orders 20000 --rate-limit 190
    python bench/sync_bench.py --orders 20000 --rounds 2 --baseline /path/to/older/service
    python bench/sync_bench.py --orders 20000 --rounds 2 --worker-processes 1,2

``--baseline`` also measures another copy of the service folder (for example the
service before a change) with that copy's own bench script, alternating with this one
for ``--rounds`` rounds, so both see the same load on the machine. Each measurement
then runs in a child process of its own, and the output lists every run with the
machine's load average before and after it. ``--worker-processes 1,2`` does the same
for one and two worker processes of this service, which share the queue and the state
file as processes on one machine do.

Steps, as in production: the stand-in (``python -m storesync.standins.hubspot``, seeded
from ``../crm/desired-state.yaml``) starts in its own process on a free 127.0.0.1 port
with the given burst limit; ``python -m storesync worker`` (the queue consumer) and
``python -m storesync flusher`` each run in a process of their own, as ``run`` starts
them (``--worker-env SYNC_FLUSHER=thread`` puts the flusher back inside the worker).
Once the flusher has read the deal pipeline, this process puts N made-up orders in
the SQLite queue the way the intake does (one FULL commit per group), as fast as the
queue takes them. The clock runs from the first delivery queued to the moment every job has
finished and the outbox is empty, which is the last CRM write. The report gives:

* time ratio: the optimum (the fewest calls that full batches of 100 allow for the
  records written, sent at exactly the rate limit) divided by the end-to-end time;
  target >= 0.9;
* the share of calls answered 429; target <= 1 %;
* API calls per 1,000 orders against that batch minimum; target <= 1.1 times it;
* the 1-minute load average before and after the run, because other jobs on the
  machine slow the worker and the flusher;
* the resident memory of each worker and flusher process when the last record is
  written, and its peak (Linux only).

Every name, email and phone in the orders is made up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import yaml

SERVICE_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(SERVICE_DIR / "src"))

from storesync.db import Database  # noqa: E402
from storesync.dedupe import dedupe_key  # noqa: E402
from storesync.delivery import Delivery  # noqa: E402
from storesync.queue import DeliveryQueue, build_queue  # noqa: E402
from storesync.settings import Settings, load_settings  # noqa: E402
from storesync.sync_store import SyncStore  # noqa: E402

PROJECT_DIR = SERVICE_DIR.parent
WINDOW_SECONDS = 10.0
BATCH = 100
# Deliveries handed to the queue at once; its writer thread commits them in groups.
ENQUEUE_CHUNK = 500
POLL_SECONDS = 0.05
START_TIMEOUT_SECONDS = 60
# Settings of the machine running the bench must not reach the worker and flusher.
CLEARED_VARIABLES = ("HUBSPOT_ACCESS_TOKEN", "REDIS_URL", "WORKER_METRICS_PORT",
                     "SYNC_FLUSHER", "WORKER_QUEUE_SQLITE_SYNCHRONOUS")


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
    return sum(math.ceil(count / BATCH) for count in counts.values() if count)


def load_average() -> float:
    """Return the machine's 1-minute load average."""
    return round(os.getloadavg()[0], 2)


def run(args: argparse.Namespace) -> dict[str, Any]:
    load_before = load_average()
    port = free_port()
    standin = start_standin(port, args.rate_limit)
    try:
        with tempfile.TemporaryDirectory() as data_dir:
            result = measure(args, port, data_dir)
    finally:
        standin.terminate()
        standin.wait(10)
    return {**result, "load_average_before": load_before, "load_average_after": load_average()}


def child_arguments(args: argparse.Namespace) -> list[str]:
    """Return the options of one measurement, for a bench script in a child process."""
    options = ["--orders", str(args.orders), "--lines", str(args.lines),
               "--customers", str(args.customers), "--rate-limit", str(args.rate_limit),
               "--window-ms", str(args.window_ms), "--workers", str(args.workers),
               "--worker-processes", str(args.worker_processes[0]),
               "--log-level", args.log_level]
    for item in args.worker_env:
        options += ["--worker-env", item]
    return options


def run_child(folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Run ``folder``'s own bench script once with this run's options; return its result.

    Raises:
        SystemExit: the script failed or printed no JSON result.
    """
    options = child_arguments(args)
    if folder != SERVICE_DIR:
        # An older copy's bench may not know the option, so it runs one worker process.
        position = options.index("--worker-processes")
        del options[position:position + 2]
    command = [sys.executable, str(folder / "bench" / "sync_bench.py"), *options]
    finished = subprocess.run(command, cwd=folder, capture_output=True, text=True, check=False)
    if finished.returncode != 0:
        raise SystemExit(f"the bench in {folder} failed with exit code {finished.returncode}:\n"
                         f"{finished.stderr[-2000:]}")
    try:
        result: dict[str, Any] = json.loads(finished.stdout)
    except json.JSONDecodeError as error:
        raise SystemExit(f"the bench in {folder} printed no JSON result ({error}):\n"
                         f"{finished.stdout[-2000:]}") from error
    return result


def run_rounds(args: argparse.Namespace) -> dict[str, Any]:
    """Measure each version in alternating order per round.

    The versions are this service with each count of ``--worker-processes``, and the
    baseline when given.
    """
    versions = [(f"service, {count} worker process{'es' if count > 1 else ''}", SERVICE_DIR,
                 count) for count in args.worker_processes]
    if len(versions) == 1:
        versions = [("service", SERVICE_DIR, args.worker_processes[0])]
    if args.baseline:
        versions.append(("baseline", args.baseline.resolve(), 1))
    runs = []
    for number in range(1, args.rounds + 1):
        # The second of a pair runs on a warmer machine, so the order alternates.
        order = versions if number % 2 else list(reversed(versions))
        for name, folder, count in order:
            # Read here, because an older bench script may not report the load.
            load_before = load_average()
            result = run_child(folder, argparse.Namespace(**{**vars(args),
                                                              "worker_processes": [count]}))
            result.update(load_average_before=load_before, load_average_after=load_average())
            runs.append({"round": number, "version": name, "folder": str(folder), **result})
            print(f"round {number} {name}: time ratio {result['time_ratio']}, load "
                  f"{load_before} to {result['load_average_after']}", file=sys.stderr)
    return {"runs": runs}


def start_command(command: list[str], environ: dict[str, str], log_path: Path
                  ) -> subprocess.Popen[bytes]:
    """Start ``python -m storesync COMMAND`` with ``environ`` added to a cleaned environment."""
    env = {key: value for key, value in os.environ.items() if key not in CLEARED_VARIABLES}
    env.update({**environ, "PYTHONPATH": str(SERVICE_DIR / "src")})
    with log_path.open("wb") as log:
        return subprocess.Popen([sys.executable, "-m", "storesync", *command], cwd=SERVICE_DIR,
                                env=env, stdout=log, stderr=log)


def cpu_seconds(process: subprocess.Popen[bytes]) -> float | None:
    """Return the CPU time a running child has used (user plus system), or None off Linux."""
    try:
        fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # utime and stime are the 14th and 15th fields of /proc/PID/stat, in clock ticks.
    return round((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), 1)


def memory_mib(process: subprocess.Popen[bytes]) -> dict[str, float] | None:
    """Return a running child's resident memory and its peak in MiB, or None off Linux."""
    try:
        status = Path(f"/proc/{process.pid}/status").read_text()
    except OSError:
        return None
    values = {}
    for line in status.splitlines():
        name, _, rest = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            # /proc reports both in kB.
            values[name] = round(int(rest.split()[0]) / 1024, 1)
    return {"rss_mib": values.get("VmRSS", 0.0), "peak_rss_mib": values.get("VmHWM", 0.0)}


def check_running(processes: dict[str, subprocess.Popen[bytes]]) -> None:
    """Stop the bench when the worker or the flusher has stopped."""
    for name, process in processes.items():
        if process.poll() is not None:
            raise SystemExit(f"the {name} stopped with exit code {process.returncode}")


def wait_for_pipelines(standin: str, processes: dict[str, subprocess.Popen[bytes]]) -> None:
    """Wait until the flusher has read the deal pipeline from the stand-in."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        check_running(processes)
        calls = httpx.get(f"{standin}/_standin/calls", timeout=10).json()["calls"]
        if any("pipelines" in str(call["path"]) and call["status"] == 200 for call in calls):
            return
        time.sleep(0.1)
    raise SystemExit(f"the flusher did not read the deal pipeline within "
                     f"{START_TIMEOUT_SECONDS} s")


async def enqueue_all(queue: DeliveryQueue, deliveries: list[Delivery]) -> None:
    """Queue every delivery once, as the intake does, a chunk of concurrent calls at a time."""
    for start in range(0, len(deliveries), ENQUEUE_CHUNK):
        chunk = deliveries[start:start + ENQUEUE_CHUNK]
        now = time.time()
        await asyncio.gather(*(queue.enqueue_once_async(
            delivery, dedupe_key(delivery.source, delivery.delivery_id), now)
            for delivery in chunk))


def make_deliveries(args: argparse.Namespace, platform: str) -> list[Delivery]:
    deliveries = []
    for number in range(1, args.orders + 1):
        topic, body = order_body(platform, number, args.customers, args.lines)
        deliveries.append(Delivery(f"bench-{number}", platform, topic, "bench-store",
                                   "2026-04-01T10:00:00Z", None, body))
    return deliveries


def written_records(standin: str) -> Counter[str]:
    """Count the records and associations the stand-in holds, per object."""
    counts: Counter[str] = Counter()
    for obj in ("contacts", "deals", "line_items", "products"):
        records = httpx.get(f"{standin}/_standin/records/{obj}", timeout=60).json()["results"]
        counts[obj] = len(records)
        if obj == "deals":
            for record in records:
                links = record.get("associations") or {}
                counts["assoc:deals:contacts"] += len(links.get("contacts") or [])
                counts["assoc:line_items:deals"] += len(links.get("line_items") or [])
    return counts


def batch_calls(standin: str) -> tuple[int, int]:
    """Return (batch calls, batch calls answered 429) the stand-in received."""
    calls = httpx.get(f"{standin}/_standin/calls", timeout=10).json()["calls"]
    batches = [call for call in calls if "batch" in str(call["path"])]
    return (sum(int(call["count"]) for call in batches),
            sum(int(call["count"]) for call in batches if call["status"] == 429))


def wait_until_synced(queue: DeliveryQueue, store: SyncStore, started: float,
                      processes: dict[str, subprocess.Popen[bytes]], standin: str
                      ) -> tuple[float, float, int]:
    """Wait until every job has finished and the outbox is empty.

    Returns:
        The seconds from ``started`` to the last job and to the empty outbox, and the
        batch calls the stand-in had received when the last job finished.
    """
    jobs_done: float | None = None
    calls_then = 0
    while True:
        check_running(processes)
        now = time.perf_counter()
        if jobs_done is None and queue.unfinished() == 0:
            jobs_done = now - started
            calls_then = batch_calls(standin)[0]
        if jobs_done is not None and store.pending_count() == 0:
            return jobs_done, now - started, calls_then
        time.sleep(POLL_SECONDS)


def measure(args: argparse.Namespace, port: int, data_dir: str) -> dict[str, Any]:
    standin = f"http://127.0.0.1:{port}"
    environ = {"DATA_DIR": data_dir, "SPEC_DIR": str(PROJECT_DIR / "integration"),
               "HUBSPOT_BASE_URL": standin, "HUBSPOT_RATE_LIMIT_PER_10S": str(args.rate_limit),
               "SYNC_BATCH_WINDOW_MS": str(args.window_ms), "LOG_LEVEL": args.log_level}
    settings: Settings = load_settings(environ)
    mapping = yaml.safe_load(settings.mapping_path.read_text(encoding="utf-8"))
    platform = {"headless": "storefront", "custom": "storefront"}.get(
        str(mapping.get("platform")), str(mapping.get("platform")))
    deliveries = make_deliveries(args, platform)
    queue = build_queue(settings)
    store = SyncStore(Database(settings.state_path))
    worker_environ = {**environ, **dict(item.split("=", 1) for item in args.worker_env)}
    worker_settings = load_settings(worker_environ)
    processes = {}
    for number in range(1, args.worker_processes[0] + 1):
        name = "worker" if number == 1 else f"worker {number}"
        processes[name] = start_command(["worker", "--workers", str(args.workers)],
                                        worker_environ, Path(data_dir) / f"worker{number}.log")
    if worker_settings.sync_flusher == "process":
        processes["flusher"] = start_command(["flusher"], worker_environ,
                                             Path(data_dir) / "flusher.log")
    try:
        wait_for_pipelines(standin, processes)
        started = time.perf_counter()
        asyncio.run(enqueue_all(queue, deliveries))
        queued_seconds = time.perf_counter() - started
        jobs_seconds, end_to_end_seconds, calls_when_jobs_finished = wait_until_synced(
            queue, store, started, processes, standin)
        cpu = {name: cpu_seconds(process) for name, process in processes.items()}
        memory = {name: memory_mib(process) for name, process in processes.items()}
    finally:
        for process in processes.values():
            process.send_signal(signal.SIGTERM)
        for process in processes.values():
            process.wait(60)
        queue.close()
    calls, rejected = batch_calls(standin)
    records = written_records(standin)
    fewest = minimum_calls(records)
    optimum_seconds = fewest / (args.rate_limit / WINDOW_SECONDS)
    return {
        "orders": args.orders, "lines_per_order": args.lines, "customers": args.customers,
        "rate_limit_per_10s": args.rate_limit, "workers": args.workers,
        "worker_processes": args.worker_processes[0],
        "worker_env": args.worker_env, "flusher": worker_settings.sync_flusher,
        "worker_queue_synchronous": worker_settings.worker_queue_sqlite_synchronous,
        "records": dict(records),
        "queued_seconds": round(queued_seconds, 1),
        "jobs_finished_seconds": round(jobs_seconds, 1),
        "orders_per_second_through_worker": round(args.orders / jobs_seconds),
        "calls_when_jobs_finished": calls_when_jobs_finished,
        "end_to_end_seconds": round(end_to_end_seconds, 1),
        "optimum_seconds": round(optimum_seconds, 1),
        "time_ratio": round(optimum_seconds / end_to_end_seconds, 3),
        "calls": calls, "minimum_calls": fewest,
        "calls_per_1000_orders": round(calls * 1000 / args.orders, 1),
        "minimum_calls_per_1000_orders": round(fewest * 1000 / args.orders, 1),
        "calls_ratio": round(calls / fewest, 3),
        "answered_429": rejected, "share_429": round(rejected / max(1, calls), 4),
        "cpu_seconds": cpu, "memory": memory,
        "dead_letters": store.dead_letter_count(),
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
    parser.add_argument("--workers", type=int, default=2,
                        help="worker threads of the queue consumer (the worker command's default)")
    parser.add_argument("--worker-processes", default="1", metavar="N[,N...]",
                        help="worker processes sharing the queue (default 1); a list such as "
                             "1,2 measures each count in the same rounds")
    parser.add_argument("--log-level", default="INFO", help="LOG_LEVEL of the worker process")
    parser.add_argument("--worker-env", action="append", default=[], metavar="NAME=VALUE",
                        help="a setting for the worker and flusher processes only, e.g. "
                             "WORKER_QUEUE_SQLITE_SYNCHRONOUS=FULL or SYNC_FLUSHER=thread; "
                             "repeatable")
    parser.add_argument("--rounds", type=int, default=1,
                        help="measurements of each version, alternating (default 1)")
    parser.add_argument("--baseline", type=Path, metavar="SERVICE_DIR",
                        help="also measure the service in this folder, with its own "
                             "bench/sync_bench.py, in the same rounds")
    args = parser.parse_args()
    args.customers = args.customers or max(1, args.orders * 2 // 3)
    raw_counts = args.worker_processes
    try:
        args.worker_processes = [int(part) for part in raw_counts.split(",")]
    except ValueError:
        args.worker_processes = [0]
    if min(args.worker_processes) < 1:
        parser.error(f"--worker-processes {raw_counts} is invalid; give counts of 1 or more "
                     "separated by commas, such as 1,2")
    if args.rounds < 1:
        parser.error(f"--rounds must be 1 or more, got {args.rounds}")
    if args.baseline and not (args.baseline / "bench" / "sync_bench.py").is_file():
        parser.error(f"--baseline {args.baseline} has no bench/sync_bench.py; give the "
                     "service folder of another copy of the project")
    if args.baseline or args.rounds > 1 or len(args.worker_processes) > 1:
        print(json.dumps(run_rounds(args), indent=2))
        return
    print(json.dumps(run(args), indent=2))


if __name__ == "__main__":
    main()
