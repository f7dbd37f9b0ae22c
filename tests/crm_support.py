"""Shared set-up of the ``rabt crm`` tests: generated projects and the CLI against stand-ins."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import httpx
import yaml
from click.testing import CliRunner, Result

from generator.cli import main

TOKEN = "test-token-not-real"


def make_project(preset: str, output: Path, *answers: str) -> Path:
    """Generate the project of ``preset`` under ``output`` and return its folder.

    ``answers`` are ``KEY=VALUE`` pairs passed with ``--set``.
    """
    extra = [part for answer in answers for part in ("--set", answer)]
    result = CliRunner().invoke(main, ["new", "--preset", preset, "--no-input",
                                       "--output-dir", str(output), *extra],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return next(path for path in output.iterdir() if path.is_dir())


def copy_project(source: Path, target: Path) -> Path:
    """Copy a generated project, so each test starts from a clean one."""
    shutil.copytree(source, target)
    return target


def hubspot_env(base_url: str, **extra: str | None) -> dict[str, str | None]:
    """Return the environment for ``rabt crm`` against the HubSpot stand-in."""
    return {"HUBSPOT_ACCESS_TOKEN": TOKEN, "HUBSPOT_BASE_URL": base_url,
            "HUBSPOT_RATE_LIMIT_PER_10S": "250", **extra}


def run_crm(*args: str, env: dict[str, str | None], stdin: str | None = None) -> Result:
    """Run ``rabt crm ...`` through click's runner (stdin is not a terminal there)."""
    return CliRunner().invoke(main, ["crm", *args], env=env, input=stdin,
                              catch_exceptions=False)


def json_output(result: Result) -> dict[str, Any]:
    """Parse the JSON document a command printed on standard output."""
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def read_state(project: Path) -> dict[str, Any]:
    """Read the project's ``.rabt/crm-state.json``."""
    data: dict[str, Any] = json.loads((project / ".rabt/crm-state.json").read_text("utf-8"))
    return data


def edit_desired(project: Path, change: Any) -> None:
    """Rewrite ``crm/desired-state.yaml`` after ``change(data)`` edits it in place."""
    path = project / "crm/desired-state.yaml"
    data = yaml.safe_load(path.read_text("utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), "utf-8")


def hubspot_call(base_url: str, method: str, path: str, body: Any = None) -> Any:
    """Call the HubSpot stand-in directly, as a person editing the account would."""
    response = httpx.request(method, f"{base_url}{path}", json=body,
                             headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    assert response.status_code < 300, response.text
    return response.json() if response.content else None
