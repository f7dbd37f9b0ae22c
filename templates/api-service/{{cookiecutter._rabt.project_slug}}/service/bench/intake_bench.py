"""Benchmark the intake: throughput against a bare endpoint, and p99 latency at a fixed rate.

One uvicorn process serves the intake app with one extra route, ``POST /bare``, that
responds with 200 without reading anything. Both are measured on the same server, with the
same settings, in one run:

1. Throughput of ``/bare`` and of ``/webhooks/shopify`` (signature check, dedupe claim,
   durable enqueue), alternating for ``--rounds`` rounds; the ratio of the medians is
   reported (target: at least 0.6).
2. Latency of ``/webhooks/shopify`` at a fixed ``--rate`` (default 200 requests per
   second), sent open-loop so a slow response does not delay the next request; p50, p95
   and p99 are reported (target: p99 at most 50 ms).

Throughput uses wrk when it is installed (Debian package ``wrk``), else a small
asyncio HTTP/1.1 client; the fixed-rate run always uses that client. Every request
carries a new ``X-Shopify-Event-Id``, so none is a duplicate. Run from the service
folder:

    python bench/intake_bench.py            # SQLite queue in a temporary DATA_DIR
    python bench/intake_bench.py --redis redis://127.0.0.1:6379/0
    python bench/intake_bench.py --baseline /path/to/older/service

``--baseline`` starts a second server from another copy of the service folder (for
example the service before a change) and measures both in the same rounds, one after
the other, so both see the same load on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

SERVICE_DIR = Path(__file__).resolve().parents[1]
# A server process for --baseline imports storesync from the baseline's folder.
sys.path.insert(0, os.environ.get("BENCH_SERVICE_SRC", str(SERVICE_DIR / "src")))

from storesync.signatures import hmac_sha256_base64  # noqa: E402

SECRET = "bench-secret-not-real"
RATIO_TARGET = 0.6
P99_TARGET_MS = 50.0
BODY = json.dumps({
    "id": 820982911946154508, "name": "#1001", "email": "bench@example.com",
    "phone": "+966500000001", "currency": "SAR", "total_price": "149.50",
    "updated_at": "2026-03-03T21:10:00+03:00",
    "customer": {"id": 1, "first_name": "سارة", "last_name": "العتيبي"},
    "line_items": [{"id": 1, "sku": "OUD-ROYAL-50", "quantity": 1, "price": "149.50"}],
}, ensure_ascii=False, separators=(",", ":")).encode()
HEADERS = {
    "Content-Type": "application/json",
    "X-Shopify-Topic": "orders/create",
    "X-Shopify-Hmac-Sha256": hmac_sha256_base64(SECRET.encode(), BODY),
    "X-Shopify-Shop-Domain": "bench-store.myshopify.com",
}

WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = io.open(os.getenv("BENCH_BODY_FILE"), "rb"):read("*a")
counter = 0
prefix = os.getenv("BENCH_ID_PREFIX")
request = function()
  counter = counter + 1
  wrk.headers["X-Shopify-Event-Id"] = prefix .. counter
  return wrk.format(nil, nil, nil, nil)
end
"""


# --- The server under test ---------------------------------------------------------------


def serve(port: int) -> None:
    """Serve the intake app plus ``POST /bare`` on 127.0.0.1 (runs in the child process)."""
    import uvicorn
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from storesync.intake import create_app
    from storesync.logs import configure_logging
    from storesync.settings import load_settings

    async def bare(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    settings = load_settings(os.environ)
    configure_logging(settings.log_level)
    app = create_app(settings, handler=lambda delivery: "nothing_to_do")
    app.router.routes.append(Route("/bare", bare, methods=["POST"]))
    uvicorn.run(app, host="127.0.0.1", port=port, log_config=None, access_log=False)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(data_dir: Path, redis_url: str | None, log_level: str = "INFO",
                 synchronous: str = "FULL", service_dir: Path = SERVICE_DIR,
                 key_prefix: str = "bench") -> tuple[subprocess.Popen[bytes], str]:
    """Start the server process with a Shopify spec in ``data_dir``; return it and its URL.

    The server runs the ``storesync`` package of ``service_dir``, and names its Redis
    keys with ``key_prefix`` when ``redis_url`` is set.
    """
    spec_dir = data_dir / "spec"
    spec_dir.mkdir(parents=True)
    (spec_dir / "mapping.yaml").write_text("version: 1\nplatform: shopify\n", encoding="utf-8")
    port = _free_port()
    env = {**os.environ, "DATA_DIR": str(data_dir / "var"), "SPEC_DIR": str(spec_dir),
           "SHOPIFY_WEBHOOK_SECRETS": SECRET, "LOG_LEVEL": log_level,
           "QUEUE_SQLITE_SYNCHRONOUS": synchronous, "REDIS_KEY_PREFIX": key_prefix,
           "BENCH_SERVICE_SRC": str(service_dir / "src")}
    if redis_url:
        env["REDIS_URL"] = redis_url
    log_file = (data_dir / "server.log").open("wb")
    process = subprocess.Popen([sys.executable, __file__, "--serve", str(port)], env=env,
                               stdout=log_file, stderr=log_file)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"the server did not start; see {data_dir / 'server.log'}")


# --- Load generators -----------------------------------------------------------------------


_ids = itertools.count()


def wrk_throughput(url: str, path: str, seconds: int, connections: int, work_dir: Path,
                   prefix: str) -> tuple[float, int]:
    """Run wrk against ``path``; return requests per second and the count of non-2xx responses."""
    script = work_dir / "post.lua"
    script.write_text(WRK_SCRIPT, encoding="utf-8")
    body_file = work_dir / "body.json"
    body_file.write_bytes(BODY)
    header_args = [arg for name, value in HEADERS.items()
                   for arg in ("-H", f"{name}: {value}")]
    env = {**os.environ, "BENCH_BODY_FILE": str(body_file), "BENCH_ID_PREFIX": prefix}
    result = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(script), *header_args,
         url + path], env=env, capture_output=True, text=True, check=True)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", result.stdout)
    if rate is None:
        raise SystemExit(f"could not read wrk's output:\n{result.stdout}\n{result.stderr}")
    return float(rate.group(1)), int(errors.group(1)) if errors else 0


def _request_bytes(path: str, port: int) -> bytes:
    """Return one HTTP/1.1 request with a new event id (keep-alive, fixed Content-Length)."""
    headers = {**HEADERS, "Host": f"127.0.0.1:{port}", "Content-Length": str(len(BODY)),
               "X-Shopify-Event-Id": f"bench-raw-{next(_ids)}"}
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return f"POST {path} HTTP/1.1\r\n{head}\r\n".encode() + BODY


class RawConnection:
    """One keep-alive HTTP/1.1 connection, cheaper per request than a full client.

    A Python HTTP client spends about a millisecond of CPU per request, which on a small
    machine would measure the client instead of the server.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> RawConnection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def post(self, request: bytes) -> tuple[int, bytes]:
        """Send ``request`` and return the status code and body of the response."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = re.search(rb"(?i)content-length:\s*(\d+)", head)
        body = await self.reader.readexactly(int(length.group(1))) if length else b""
        return status, body

    def close(self) -> None:
        self.writer.close()


async def _raw_throughput(port: int, path: str, seconds: int,
                          connections: int) -> tuple[float, int]:
    pool = [await RawConnection.open(port) for _ in range(connections)]
    done = 0
    errors = 0
    deadline = time.monotonic() + seconds

    async def worker(connection: RawConnection) -> None:
        nonlocal done, errors
        while time.monotonic() < deadline:
            status, _ = await connection.post(_request_bytes(path, port))
            done += 1
            errors += not 200 <= status < 300

    started = time.monotonic()
    await asyncio.gather(*(worker(connection) for connection in pool))
    elapsed = time.monotonic() - started
    for connection in pool:
        connection.close()
    return done / elapsed, errors


async def _fixed_rate(port: int, rate: int, seconds: int) -> tuple[list[float], int]:
    """Send ``rate`` requests per second open-loop; return latencies in ms and the error count.

    Each request is due at a fixed time and waits for a free connection when all are
    busy. That wait counts in its latency, so a slow server cannot hide its delay by
    slowing the sender down.
    """
    idle: asyncio.Queue[RawConnection] = asyncio.Queue()
    opened = [await RawConnection.open(port) for _ in range(64)]
    for connection in opened:
        idle.put_nowait(connection)
    latencies: list[float] = []
    errors = 0

    async def one(due: float) -> None:
        nonlocal errors
        connection = await idle.get()
        status, body = await connection.post(_request_bytes("/webhooks/shopify", port))
        latencies.append(1000 * (time.monotonic() - due))
        errors += status != 200 or b'"queued"' not in body
        idle.put_nowait(connection)

    start = time.monotonic() + 0.2
    tasks = []
    for index in range(rate * seconds):
        due = start + index / rate
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        tasks.append(asyncio.create_task(one(due)))
    await asyncio.gather(*tasks)
    for connection in opened:
        connection.close()
    return latencies, errors


def percentile(values: list[float], share: float) -> float:
    """Return the ``share`` percentile (0 to 1) of ``values`` by the nearest-rank method."""
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


# --- The run ---------------------------------------------------------------------------------


def _delete_redis_keys(url: str, prefix: str) -> None:
    """Delete the queue and dedupe keys the run left in Redis."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        for pattern in (f"{prefix}:*", f"huey.*{prefix}*"):
            for key in client.scan_iter(match=pattern):
                client.delete(key)
    finally:
        client.close()


def hardware() -> dict[str, Any]:
    """Describe the machine the numbers come from."""
    model = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        found = re.search(r"model name\s*:\s*(.+)", cpuinfo.read_text())
        model = found.group(1).strip() if found else model
    return {"cpu": model, "cpus": os.cpu_count(), "python": platform.python_version(),
            "system": platform.platform()}


def cpu_seconds(pid: int) -> float | None:
    """Return the CPU time (user + system) the process has used, or None off Linux."""
    stat = Path(f"/proc/{pid}/stat")
    if not stat.is_file():
        return None
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_mib(pid: int) -> dict[str, float] | None:
    """Return the resident and peak resident memory of the process in MiB, or None off Linux."""
    status = Path(f"/proc/{pid}/status")
    if not status.is_file():
        return None
    found = dict(re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB$", status.read_text(), re.MULTILINE))
    if len(found) != 2:
        return None
    return {"rss_mib": round(int(found["VmRSS"]) / 1024, 1),
            "peak_rss_mib": round(int(found["VmHWM"]) / 1024, 1)}


def port_of(url: str) -> int:
    """Return the port of a ``http://127.0.0.1:PORT`` URL."""
    return int(url.rsplit(":", 1)[1])


def throughput(args: argparse.Namespace, url: str, path: str, work_dir: Path,
               round_number: int) -> tuple[float, int]:
    if args.generator == "wrk":
        return wrk_throughput(url, path, args.seconds, args.connections, work_dir,
                              f"bench-wrk-{round_number}-")
    return asyncio.run(_raw_throughput(port_of(url), path, args.seconds, args.connections))


def measured(args: argparse.Namespace, url: str, path: str, work_dir: Path, round_number: int,
             pid: int) -> tuple[float, int, float | None]:
    """Run one throughput measurement; also return the server's CPU milliseconds per request."""
    before = cpu_seconds(pid)
    rate, errors = throughput(args, url, path, work_dir, round_number)
    after = cpu_seconds(pid)
    if before is None or after is None or rate == 0:
        return rate, errors, None
    return rate, errors, 1000 * (after - before) / (rate * args.seconds)


@dataclass
class Server:
    """One server under test and what was measured on it."""

    name: str
    process: subprocess.Popen[bytes]
    url: str
    rates: dict[str, list[float]] = field(default_factory=lambda: {"bare": [], "webhook": []})
    cpu: dict[str, list[float]] = field(default_factory=lambda: {"bare": [], "webhook": []})
    errors: int = 0

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def measure_rounds(args: argparse.Namespace, servers: list[Server], work_dir: Path) -> None:
    """Measure ``/bare`` and the webhook on every server, alternating, for ``args.rounds``."""
    for server in servers:
        throughput(args, server.url, "/bare", work_dir, 0)  # warm-up
    for round_number in range(1, args.rounds + 1):
        for server in servers:
            for name, path in (("bare", "/bare"), ("webhook", "/webhooks/shopify")):
                rate, failed, cpu_ms = measured(args, server.url, path, work_dir,
                                                round_number, server.process.pid)
                server.rates[name].append(rate)
                server.errors += failed
                if cpu_ms is not None:
                    server.cpu[name].append(cpu_ms)


def summary(args: argparse.Namespace, server: Server) -> dict[str, Any]:
    """Measure the server's latency at the fixed rate; return its figures."""
    latencies, latency_errors = asyncio.run(
        _fixed_rate(port_of(server.url), args.rate, args.latency_seconds))
    depth = re.search(r"^storesync_queue_depth ([\d.e+]+)$",
                      httpx.get(f"{server.url}/metrics").text, re.MULTILINE)
    bare, webhook = server.rates["bare"], server.rates["webhook"]
    return {
        "bare_rps": [round(value) for value in bare],
        "webhook_rps": [round(value) for value in webhook],
        "ratio": round(statistics.median(webhook) / statistics.median(bare), 3),
        "ratio_target": RATIO_TARGET,
        "server_cpu_ms_per_request": {name: round(statistics.median(values), 3)
                                      for name, values in server.cpu.items() if values},
        "non_2xx": server.errors,
        "rate_rps": args.rate,
        "latency_requests": len(latencies),
        "latency_not_queued": latency_errors,
        "p50_ms": round(percentile(latencies, 0.50), 2),
        "p95_ms": round(percentile(latencies, 0.95), 2),
        "p99_ms": round(percentile(latencies, 0.99), 2),
        "p99_target_ms": P99_TARGET_MS,
        "queue_depth_at_end": float(depth.group(1)) if depth else None,
        "server_memory": memory_mib(server.process.pid),
    }


def _key_prefix(name: str) -> str:
    return f"bench{os.getpid()}{name}"


def run(args: argparse.Namespace) -> dict[str, Any]:
    work_dir = Path(tempfile.mkdtemp(prefix="intake-bench-"))
    # Each server: its service folder and the Redis URL of its queue (None: SQLite).
    folders: dict[str, tuple[Path, str | None]] = {"service": (SERVICE_DIR, args.redis)}
    if args.baseline:
        folders["baseline"] = (args.baseline.resolve(), args.redis)
    if args.compare_redis:
        folders["redis"] = (SERVICE_DIR, args.compare_redis)
    servers: list[Server] = []
    try:
        for name, (folder, redis_url) in folders.items():
            process, url = start_server(work_dir / name, redis_url, args.log_level,
                                        args.synchronous, folder, _key_prefix(name))
            servers.append(Server(name, process, url))
        measure_rounds(args, servers, work_dir)
        results = {server.name: summary(args, server) for server in servers}
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(work_dir, ignore_errors=True)
        for name, (_, redis_url) in folders.items():
            if redis_url:
                _delete_redis_keys(redis_url, _key_prefix(name))
    output = {
        "hardware": hardware(),
        "queue": "redis" if args.redis else "sqlite",
        "queue_sqlite_synchronous": None if args.redis else args.synchronous,
        "log_level": args.log_level,
        "load_generator": args.generator,
        "connections": args.connections,
        "seconds_per_measurement": args.seconds,
        **results.pop("service"),
    }
    if "baseline" in results:
        output["baseline"] = {"folder": str(folders["baseline"][0]), **results["baseline"]}
    if "redis" in results:
        redis_result = results["redis"]
        output["redis"] = {
            # Medians of the same rounds, so both queues shared the machine's other load.
            "webhook_rps_vs_sqlite": round(
                statistics.median(redis_result["webhook_rps"])
                / statistics.median(output["webhook_rps"]), 3),
            **redis_result,
        }
    return output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="Seconds per throughput run.")
    parser.add_argument("--rounds", type=int, default=2, help="Alternating rounds per endpoint.")
    parser.add_argument("--connections", type=int, default=32, help="Concurrent connections.")
    parser.add_argument("--rate", type=int, default=200, help="Requests per second for latency.")
    parser.add_argument("--latency-seconds", type=int, default=15,
                        help="Seconds of fixed-rate load for the latency run.")
    parser.add_argument("--generator", choices=["wrk", "python"],
                        default="wrk" if shutil.which("wrk") else "python",
                        help="Throughput load generator (default: wrk when installed).")
    parser.add_argument("--redis", metavar="URL", help="Use this Redis for the queue.")
    parser.add_argument("--compare-redis", metavar="URL",
                        help="Also measure this service on a Redis queue at URL, in the same "
                             "rounds as the SQLite one.")
    parser.add_argument("--baseline", type=Path, metavar="SERVICE_DIR",
                        help="Also measure the service in this folder, in the same rounds.")
    parser.add_argument("--synchronous", choices=["FULL", "NORMAL"], default="FULL",
                        help="QUEUE_SQLITE_SYNCHRONOUS of the server (default FULL, the "
                             "service's default).")
    parser.add_argument("--log-level", default="INFO",
                        help="LOG_LEVEL of the server; at INFO it writes one line per delivery.")
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.redis and args.compare_redis:
        parser.error("--compare-redis measures a Redis queue beside the SQLite one; "
                     "leave out --redis")
    if args.serve:
        serve(args.serve)
        return
    result = run(args)
    print(json.dumps(result, indent=2, ensure_ascii=False))
    print(f"throughput ratio {result['ratio']} (target >= {RATIO_TARGET}): "
          f"{'met' if result['ratio'] >= RATIO_TARGET else 'missed'}")
    print(f"p99 at {args.rate} rps {result['p99_ms']} ms (target <= {P99_TARGET_MS}): "
          f"{'met' if result['p99_ms'] <= P99_TARGET_MS else 'missed'}")
    if "baseline" in result:
        baseline = result["baseline"]
        print(f"baseline: throughput ratio {baseline['ratio']}, p99 {baseline['p99_ms']} ms")
    if "redis" in result:
        on_redis = result["redis"]
        print(f"redis queue: throughput ratio {on_redis['ratio']}, p99 {on_redis['p99_ms']} ms, "
              f"webhook rate {on_redis['webhook_rps_vs_sqlite']} x the SQLite queue's")


if __name__ == "__main__":
    main()
