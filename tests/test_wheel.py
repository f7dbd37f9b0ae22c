"""Build the wheel, install it in a fresh virtual environment and run ``rabt new`` from it.

This proves that templates, schemas, presets and data files ship inside the package.
It needs PyPI for the build backend and the dependencies.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    # A clean environment, so the fresh venv cannot see the repository on PYTHONPATH.
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=900, check=False)
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.mark.slow
def test_wheel_installs_and_generates(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(dist),
         str(REPO)], cwd=tmp_path)
    wheels = list(dist.glob("rabt-*.whl"))
    assert len(wheels) == 1

    environment = tmp_path / "venv"
    venv.create(environment, with_pip=True)
    python = environment / "bin" / "python"
    run([str(python), "-m", "pip", "install", "--quiet", str(wheels[0])], cwd=tmp_path)

    rabt = environment / "bin" / "rabt"
    work = tmp_path / "work"  # outside the repository, so nothing can be found there
    work.mkdir()
    run([str(rabt), "new", "--no-input", "--output-dir", "out"], cwd=work)
    project = work / "out" / "riyadh-perfume"
    assert (project / "docs/checklist.ics").is_file()
    assert (project / "integration/mapping.yaml").is_file()
    result = run([str(rabt), "validate", str(project)], cwd=work)
    assert "no problems found" in result.stdout
    presets = run([str(rabt), "presets"], cwd=work)
    assert len(presets.stdout.strip().splitlines()) == 1 + 7  # header and one line each
    located = run([str(python), "-c", "import generator.resources as r; print(r.templates_dir())"],
                  cwd=work)
    assert "_bundled" in located.stdout
    preview = run([str(rabt), "preview", "--project", str(project), "--payload",
                   "shopify/orders-create-arabic", "--format", "json"], cwd=work)
    assert "+9665" in preview.stdout  # the shipped sample and the runtime transforms ran
