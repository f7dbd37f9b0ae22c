"""Option checks of the benchmark scripts, which run without starting any server."""

from __future__ import annotations

import subprocess
import sys

from storesync.settings import SERVICE_DIR


def test_intake_bench_rejects_two_redis_queues() -> None:
    result = subprocess.run(
        [sys.executable, str(SERVICE_DIR / "bench" / "intake_bench.py"),
         "--redis", "redis://127.0.0.1:6379/0", "--compare-redis", "redis://127.0.0.1:6379/0"],
        capture_output=True, text=True, timeout=60, cwd=SERVICE_DIR)
    assert result.returncode == 2
    assert "--compare-redis measures a Redis queue beside the SQLite one" in result.stderr
    assert "leave out --redis" in result.stderr
