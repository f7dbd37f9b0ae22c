"""Every setting the service reads is documented in .env.example and the README, and the reverse."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from storesync import settings as settings_module
from storesync.settings import SERVICE_DIR, load_settings
from sync_support import SPEC_DIR

# A commented example line in .env.example: "# NAME=value".
ENV_EXAMPLE_LINE = re.compile(r"^#\s*([A-Z][A-Z0-9_]+)=", re.MULTILINE)
SETTING_NAME = re.compile(r"`([A-Z][A-Z0-9_]+)`")


def read_names(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> set[str]:
    """Return every variable name ``load_settings`` looks up."""
    names: set[str] = set()
    original = settings_module._Reader.text

    def recording(reader: settings_module._Reader, name: str) -> str | None:
        names.add(name)
        return original(reader, name)

    monkeypatch.setattr(settings_module._Reader, "text", recording)
    load_settings({"DATA_DIR": str(tmp_path / "var"), "SPEC_DIR": str(SPEC_DIR)})
    return names


def env_example_names() -> set[str]:
    text = (SERVICE_DIR / ".env.example").read_text(encoding="utf-8")
    return set(ENV_EXAMPLE_LINE.findall(text))


def readme_table_names(name: str) -> set[str]:
    """Return the variables in the first column of the settings table of a README."""
    text = (SERVICE_DIR / name).read_text(encoding="utf-8")
    heading = "## Settings" if name == "README.md" else "## الإعدادات"
    section = text.split(heading, 1)[1].split("\n## ", 1)[0]
    found: set[str] = set()
    for line in section.splitlines():
        cells = line.split("|")
        if line.startswith("|") and len(cells) > 2:
            found.update(SETTING_NAME.findall(cells[1]))
    return found


def test_env_example_lists_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    read = read_names(monkeypatch, tmp_path)
    documented = env_example_names()
    assert sorted(read - documented) == []
    assert sorted(documented - read) == []


@pytest.mark.parametrize("readme", ["README.md", "README.ar.md"])
def test_readme_table_lists_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                     readme: str) -> None:
    read = read_names(monkeypatch, tmp_path)
    documented = readme_table_names(readme)
    assert sorted(read - documented) == []
    assert sorted(documented - read) == []
