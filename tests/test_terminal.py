"""Drive ``rabt new`` through a real pseudo-terminal, answering with arrow keys and Enter."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from pathlib import Path

import pytest
import yaml

pexpect = pytest.importorskip("pexpect")

DOWN = "\x1b[B"
SPACE = " "
ENTER = "\r"
CLEAR_LINE = "\x15"  # Ctrl-U: delete the pre-filled default before typing
# Generous so that a slow CI machine does not fail the test, because generation runs
# cookiecutter and can take many seconds.
PROMPT_TIMEOUT_SECONDS = 60
FINISH_TIMEOUT_SECONDS = 300


def rabt_command() -> list[str] | None:
    """Find the installed ``rabt`` script, preferring the one beside this interpreter."""
    beside = Path(sys.executable).with_name("rabt")
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    on_path = shutil.which("rabt")
    if on_path:
        return [on_path]
    if importlib.util.find_spec("generator.__main__") is not None:
        return [sys.executable, "-m", "generator"]
    return None


@pytest.mark.slow
def test_interactive_new_project(tmp_path: Path) -> None:
    command = rabt_command()
    if command is None:
        pytest.skip("the rabt command is not installed: run 'pip install -e .' first")
    arguments = [*command[1:], "new", "--output-dir", str(tmp_path),
                 "--set", "client_name=Test Store", "--set", "start_date=2027-01-10"]
    child = pexpect.spawn(command[0], arguments, cwd=str(tmp_path), encoding="utf-8",
                          dimensions=(40, 120), env={**os.environ, "TERM": "xterm"},
                          timeout=PROMPT_TIMEOUT_SECONDS)

    def answer(label: str, keys: str) -> None:
        child.expect_exact(label)
        child.send(keys)

    answer("Project slug", ENTER)
    answer("Store platform", DOWN + ENTER)
    answer("Orders per month", CLEAR_LINE + "abc" + ENTER)
    child.expect_exact("'abc' is text, expected a whole number")
    child.send(CLEAR_LINE + "1200" + ENTER)
    answer("Number of stores", CLEAR_LINE + "2" + ENTER)
    answer("Expected growth", DOWN + ENTER)
    answer("Products (SKUs) in the catalogue", ENTER)
    answer("Choose 'undecided'", DOWN * 3 + ENTER)
    answer("What does the team mostly do?", DOWN + ENTER)
    answer("ERP or BI systems to connect", SPACE + ENTER)
    answer("Must the ERP/BI link be deep", "n")
    answer("Support channels", SPACE + ENTER)
    answer("Support agents", ENTER)
    answer("Marketing channels in use", DOWN * 2 + SPACE + ENTER)
    answer("Channels that need marketing consent", ENTER)
    answer("Main business goal", DOWN + ENTER)
    answer("Force an integration path?", ENTER)
    child.expect(pexpect.EOF, timeout=FINISH_TIMEOUT_SECONDS)
    child.close()

    assert child.exitstatus == 0, child.before
    saved = yaml.safe_load((tmp_path / "test-store/.rabt/answers.yaml").read_text("utf-8"))
    assert saved["client_name"] == "Test Store"
    assert saved["project_slug"] == "test-store"
    assert saved["platform"] == "woocommerce"
    assert saved["monthly_orders"] == 1200
    assert saved["store_count"] == 2
    assert saved["growth"] == "fast"
    assert saved["sku_count"] == 0
    assert saved["crm"] == "undecided"
    assert saved["team_focus"] == "sales_support"
    assert saved["erp_bi"] == ["odoo"]
    assert saved["deep_erp_link"] is False
    assert saved["support_channels"] == ["whatsapp", "email"]
    assert saved["support_agents"] == 2
    assert saved["marketing_channels"] == ["meta", "google", "tiktok"]
    assert saved["consent_channels"] == ["email", "whatsapp"]
    assert saved["goal"] == "average_order_value"
    assert str(saved["start_date"]) == "2027-01-10"
    assert saved["path"] is None
