"""API service files that only projects on one store platform get: the Shopify pixel and the
headless storefront helper."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from generator.cli import main
from generator.path_files import platform_files
from generator.validate import validate_project

PIXEL = "service/pixel/shopify-custom-pixel.js"


def bake(output: Path, platform: str) -> Path:
    result = CliRunner().invoke(main, [
        "new", "--no-input", "--output-dir", str(output), "--preset", "headless-nextjs",
        "--set", f"platform={platform}", "--set", "path=api",
        "--set", f"project_slug={platform}-api"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return output / f"{platform}-api"


def test_pixel_only_for_shopify() -> None:
    assert list(platform_files("shopify")) == [PIXEL]
    assert platform_files("shopify")[PIXEL].startswith(b"//")
    assert platform_files("woocommerce") == {}
    assert PIXEL not in platform_files("headless")
    assert platform_files(None) == {}


def test_storefront_helper_only_for_headless() -> None:
    files = platform_files("headless")
    assert sorted(files) == ["storefront/README.ar.md", "storefront/README.md",
                             "storefront/route.ts", "storefront/storefront-events.mjs",
                             "storefront/storefront-events.test.mjs"]
    assert not any(name.startswith("storefront/") for name in platform_files("shopify"))


@pytest.mark.parametrize("platform", ["shopify", "woocommerce", "headless"])
def test_baked_pixel_follows_platform(tmp_path: Path, platform: str) -> None:
    project = bake(tmp_path, platform)
    assert (project / PIXEL).is_file() is (platform == "shopify")
    assert (project / "service" / "pixel").exists() is (platform == "shopify")
    readme = (project / "service" / "README.md").read_text(encoding="utf-8")
    assert ("shopify-custom-pixel.js" in readme) is (platform == "shopify")
    assert validate_project(project).problems == []


def test_missing_pixel_reported(tmp_path: Path) -> None:
    project = bake(tmp_path, "shopify")
    (project / PIXEL).unlink()
    problems = [str(problem) for problem in validate_project(project).problems]
    assert any("shopify-custom-pixel.js" in problem for problem in problems), problems
