"""``rabt validate`` checks the files only projects on one CRM get, such as the custom guide."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from generator.cli import main as rabt_main
from generator.validate import validate_project

GUIDES = ("docs/customer-database.md", "docs/customer-database.ar.md")


def bake(tmp_path: Path, *args: str) -> Path:
    result = CliRunner().invoke(rabt_main, ["new", "--no-input", "--output-dir", str(tmp_path),
                                            *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return next(path for path in tmp_path.iterdir() if path.is_dir())


@pytest.fixture(scope="module")
def custom_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bake(tmp_path_factory.mktemp("custom"), "--preset", "custom-erp")


def missing(project: Path) -> list[str]:
    return [problem.location for problem in validate_project(project).problems]


def test_custom_project_has_guides(custom_project: Path) -> None:
    for guide in GUIDES:
        assert (custom_project / guide).is_file()
    assert missing(custom_project) == []


@pytest.mark.parametrize("guide", GUIDES)
def test_missing_guide_reported(custom_project: Path, guide: str) -> None:
    text = (custom_project / guide).read_bytes()
    (custom_project / guide).unlink()
    try:
        assert missing(custom_project) == [guide]
    finally:
        (custom_project / guide).write_bytes(text)


def test_other_crm_needs_no_guide(tmp_path: Path) -> None:
    project = bake(tmp_path, "--preset", "headless-nextjs", "--set", "platform=shopify",
                   "--set", "path=api", "--set", "project_slug=shop-api")
    assert not (project / GUIDES[0]).exists()
    assert missing(project) == []
