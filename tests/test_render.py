"""Rendering details: text detection, overwrite behaviour, no staging folders left behind."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from binaryornot.check import is_binary
from click.testing import CliRunner

from generator.cli import main
from generator.render import CRM_STATE_FILE, LOCAL_FILES, _cookiecutter, list_files


def test_arabic_template_cut_at_512_bytes_is_rendered(tmp_path: Path) -> None:
    template = tmp_path / "template"
    folder = template / "{{cookiecutter._rabt.project_slug}}"
    folder.mkdir(parents=True)
    (template / "cookiecutter.json").write_text(
        json.dumps({"_rabt": {"project_slug": "x", "client_name": "y"}}), encoding="utf-8")
    # One ASCII byte, then two-byte Arabic letters: binaryornot's 512-byte read ends
    # half-way through a letter and its guess becomes "binary".
    page = folder / "page.md"
    page.write_text("#" + "ع" * 400 + "\n{{ cookiecutter._rabt.client_name }}\n",
                    encoding="utf-8")
    assert is_binary(str(page)), "precondition: binaryornot must misread this file"
    project = _cookiecutter(template, {"project_slug": "demo", "client_name": "Nour"},
                            tmp_path / "out")
    rendered = (project / "page.md").read_text(encoding="utf-8")
    assert rendered.endswith("\nNour\n")


def test_template_bytecode_not_copied(tmp_path: Path) -> None:
    template = tmp_path / "template"
    folder = template / "{{cookiecutter._rabt.project_slug}}"
    cache = folder / "pkg" / "__pycache__"
    cache.mkdir(parents=True)
    (template / "cookiecutter.json").write_text(
        json.dumps({"_rabt": {"project_slug": "x"}}), encoding="utf-8")
    (folder / "pkg" / "mod.py").write_text("VALUE = 1\n", encoding="utf-8")
    (cache / "mod.cpython-311.pyc").write_bytes(b"\x00\x01compiled")
    (folder / "pkg" / "old.pyc").write_bytes(b"\x00\x02compiled")
    project = _cookiecutter(template, {"project_slug": "demo"}, tmp_path / "out")
    names = sorted(path.relative_to(project).as_posix() for path in project.rglob("*"))
    assert names == ["pkg", "pkg/mod.py"]


def test_overwrite_keeps_git_folder(tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["new", "--no-input", "--output-dir", str(tmp_path)]
    assert runner.invoke(main, args).exit_code == 0
    project = tmp_path / "riyadh-perfume"
    (project / ".git").mkdir()
    (project / ".git" / "HEAD").write_text("ref: refs/heads/main\n", encoding="utf-8")
    (project / "scratch.txt").write_text("temporary", encoding="utf-8")
    assert runner.invoke(main, [*args, "--overwrite"]).exit_code == 0
    assert (project / ".git" / "HEAD").read_text(encoding="utf-8") == "ref: refs/heads/main\n"
    assert not (project / "scratch.txt").exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["riyadh-perfume"]


def test_overwrite_keeps_local_secrets_and_state(tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["new", "--no-input", "--output-dir", str(tmp_path), "--preset", "woo-startup"]
    assert runner.invoke(main, args).exit_code == 0
    project = tmp_path / "woo-startup"
    assert (project / "sync" / ".env.example").is_file()
    secrets = project / "sync" / ".env"
    secrets.write_text("WOOCOMMERCE_CONSUMER_SECRET=cs_placeholder_not_real\n", encoding="utf-8")
    secrets.chmod(0o600)
    state = project / "sync" / "state" / "contact-sync.json"
    state.parent.mkdir()
    state.write_text('{"high_water_mark": "2026-12-01T00:00:00Z"}', encoding="utf-8")
    crm_state = project / ".rabt" / "crm-state.json"
    crm_state.write_text('{"version": 1}', encoding="utf-8")
    crm_state.chmod(0o600)

    assert runner.invoke(main, [*args, "--overwrite"]).exit_code == 0

    assert secrets.read_text(encoding="utf-8").startswith("WOOCOMMERCE_CONSUMER_SECRET=")
    assert secrets.stat().st_mode & 0o777 == 0o600
    assert state.read_text(encoding="utf-8") == '{"high_water_mark": "2026-12-01T00:00:00Z"}'
    assert crm_state.read_text(encoding="utf-8") == '{"version": 1}'
    assert crm_state.stat().st_mode & 0o777 == 0o600
    assert (project / "sync" / ".env.example").is_file()


def _ignored(project: Path, paths: list[str]) -> set[str]:
    """Return the entries of ``paths`` that the .gitignore files of ``project`` ignore."""
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    result = subprocess.run(["git", "-C", str(project), "check-ignore", "--no-index", "--stdin"],
                            input="\n".join(paths), capture_output=True, text=True, check=False)
    assert result.returncode in (0, 1), result.stderr
    return set(result.stdout.splitlines())


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
@pytest.mark.parametrize("preset", ["riyadh-perfume-hubspot", "woo-startup", "shopify-growth",
                                    "custom-erp"])
def test_gitignore_keeps_local_files_out(tmp_path: Path, preset: str) -> None:
    args = ["new", "--no-input", "--output-dir", str(tmp_path), "--preset", preset]
    assert CliRunner().invoke(main, args).exit_code == 0
    project = next(tmp_path.iterdir())
    assert (project / ".gitignore").is_file()
    # A folder entry is checked through a file inside it, as git sees it once it exists.
    local_files = [entry if entry.endswith(".env") else f"{entry}/file" for entry in LOCAL_FILES]
    local_files += ["production.env", "service/staging.env", "__pycache__/x.pyc",
                    "sync/contactsync/__pycache__/crm.cpython-311.pyc"]
    assert _ignored(project, local_files) == set(local_files)
    tracked = [*list_files(project), CRM_STATE_FILE, ".env.example", "sync/.env.example"]
    assert _ignored(project, tracked) == set()


def test_overwrite_keeps_top_level_venv(tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["new", "--no-input", "--output-dir", str(tmp_path)]
    assert runner.invoke(main, args).exit_code == 0
    project = tmp_path / "riyadh-perfume"
    (project / ".venv").mkdir()
    (project / ".venv" / "pyvenv.cfg").write_text("home = /usr/bin\n", encoding="utf-8")
    (project / "NOTES.md").write_text("my notes", encoding="utf-8")
    assert runner.invoke(main, [*args, "--overwrite"]).exit_code == 0
    assert (project / ".venv" / "pyvenv.cfg").read_text(encoding="utf-8") == "home = /usr/bin\n"
    assert not (project / "NOTES.md").exists()


def test_failed_generation_leaves_nothing(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["new", "--no-input", "--output-dir", str(tmp_path),
                                       "--set", "start_date=2099-01-04"])
    assert result.exit_code == 2
    assert "start_date" in result.output
    assert list(tmp_path.iterdir()) == []


def test_overwrite_keeps_the_folder_itself(tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["new", "--no-input", "--output-dir", str(tmp_path)]
    assert runner.invoke(main, args).exit_code == 0
    project = tmp_path / "riyadh-perfume"
    inode = project.stat().st_ino
    assert runner.invoke(main, [*args, "--overwrite"]).exit_code == 0
    assert project.stat().st_ino == inode  # a shell inside the folder stays valid
    assert (project / ".rabt/answers.yaml").is_file()


def test_broken_pipe_is_quiet(tmp_path: Path) -> None:
    command = (f'"{sys.executable}" -m generator new --no-input --dry-run '
               f'--output-dir "{tmp_path}" | head -n 1; exit "${{PIPESTATUS[0]}}"')
    result = subprocess.run(["bash", "-c", command], capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.stdout.count("\n") == 1
    assert "Internal error" not in result.stderr
    assert "Traceback" not in result.stderr
