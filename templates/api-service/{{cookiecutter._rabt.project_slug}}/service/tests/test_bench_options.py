"""Option checks of the sync benchmark, `bench/sync_bench.py`."""

from __future__ import annotations

import subprocess
import sys

import pytest

from storesync.settings import SERVICE_DIR


@pytest.mark.parametrize("value", ["0", "1,x", "2,-1", ""])
def test_worker_processes_invalid(value: str) -> None:
    finished = subprocess.run([sys.executable, "bench/sync_bench.py", "--worker-processes", value],
                              cwd=SERVICE_DIR, capture_output=True, text=True, timeout=60,
                              check=False)
    assert finished.returncode == 2
    assert f"--worker-processes {value} is invalid" in finished.stderr
    assert "such as 1,2" in finished.stderr
