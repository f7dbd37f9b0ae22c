"""Starting a stand-in from an install without the test extras gives a clear message."""

from __future__ import annotations

import subprocess
import sys

import pytest

# Hides Starlette from the child interpreter, as on a plain install, then runs the module.
HIDE_AND_RUN = ("import runpy, sys; sys.modules['starlette'] = None; "
                "runpy.run_module(sys.argv[1], run_name='__main__')")


@pytest.mark.parametrize("module", ["hubspot", "zoho", "woocommerce", "shopify"])
def test_standin_without_starlette(module: str) -> None:
    done = subprocess.run([sys.executable, "-c", HIDE_AND_RUN, f"generator.standins.{module}",
                           "--port", "1"], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 2
    assert "'starlette'" in done.stderr
    assert "from the repository folder: pip install -e '.[test]'" in done.stderr
    assert "rabt[test]" not in done.stderr
    assert "Traceback" not in done.stderr
