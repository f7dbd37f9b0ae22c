"""The workflows guide names exactly the workflow files that the project contains."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.test_ipaas_projects import bake

CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("shopify-hubspot", "shopify-growth", {}),
    ("woocommerce-zoho", "woo-startup", {"path": "ipaas"}),
    ("woocommerce-custom", "woo-startup", {"path": "ipaas", "crm": "custom"}),
    ("shopify-custom", "shopify-growth", {"path": "ipaas", "crm": "custom"}),
    ("headless-custom", "headless-nextjs", {"path": "ipaas", "crm": "custom"}),
]
# A code span or link target that is a path to a workflow, database or guide file. Files
# that a later command writes, such as .rabt/crm-state.json, are not matched.
PATH = re.compile(r"(?:`|\]\()((?:\.\./)?(?:n8n|make|workflows|database|docs)"
                  r"(?:/[\w.*-]+)+\.(?:json|md|sql))(?:`|\))")


def named_paths(guide: str) -> set[str]:
    return set(PATH.findall(guide))


def resolve(project: Path, name: str) -> list[Path]:
    """Return the files a path in the guide names: relative to the guide, or to the project."""
    base = project if name.startswith("workflows/") else project / "workflows"
    return sorted(base.glob(name)) if "*" in name else [(base / name).resolve()]


def generated_files(project: Path) -> set[Path]:
    files = set((project / "workflows").glob("n8n/*.json"))
    files |= set((project / "workflows").glob("make/*.blueprint.json"))
    files |= set(project.glob("database/*.sql"))
    return {path.resolve() for path in files}


@pytest.mark.parametrize(("case", "preset", "values"), CASES, ids=[case[0] for case in CASES])
def test_guide_lists_generated_files(tmp_path: Path, case: str, preset: str,
                                     values: dict[str, Any]) -> None:
    project = bake(tmp_path, preset, values)
    expected = generated_files(project)
    assert expected, case
    for name in ("README.md", "README.ar.md"):
        guide = (project / "workflows" / name).read_text("utf-8")
        listed: set[Path] = set()
        for path in named_paths(guide):
            found = resolve(project, path)
            assert found, (name, path)
            for file in found:
                assert file.is_file(), (name, path)
            if "*" not in path:
                listed.update(found)
        # Every workflow file the project has is named on its own, not only by a pattern.
        assert expected <= listed, (name, sorted(map(str, expected - listed)))


@pytest.mark.parametrize("name", ["README.md", "README.ar.md"])
def test_custom_guide_lists_no_blueprints(tmp_path: Path, name: str) -> None:
    project = bake(tmp_path, "woo-startup", {"path": "ipaas", "crm": "custom"})
    guide = (project / "workflows" / name).read_text("utf-8")
    assert not (project / "workflows/make").exists()
    assert ".blueprint.json" not in guide
    assert "`../database/schema.sql`" in guide
    assert "| Make |" not in guide
