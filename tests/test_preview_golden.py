"""Every shipped sample through every project that reads it, against stored records.

The stored records were reviewed by hand when written. A change to the spec or the
transforms that changes any record fails here; after checking the new output, set
RABT_UPDATE_GOLDEN=1 and run this file again to store it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from generator.cli import main
from generator.preview import list_samples

GOLDEN = Path(__file__).parent / "golden" / "preview"
PRESETS = {
    "hubspot": "riyadh-perfume-hubspot",
    "zoho": "jeddah-fashion-zoho",
    "woo-zoho": "woo-startup",
    "custom": "custom-erp",
    "headless": "headless-nextjs",
}
# Projects that read each payload family: HubSpot, Zoho and the custom database.
PROJECTS_FOR = {
    "shopify": ("hubspot", "zoho"),
    "woocommerce": ("woo-zoho", "custom"),
    "storefront": ("headless", "custom", "zoho"),
}
CASES = [(sample.name, project) for sample in list_samples()
         for project in PROJECTS_FOR[sample.name.split("/")[0]]]


@pytest.fixture(scope="module")
def projects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folders = {}
    for key, preset in PRESETS.items():
        out = tmp_path_factory.mktemp(key)
        result = CliRunner().invoke(main, ["new", "--no-input", "--preset", preset,
                                           "--output-dir", str(out)])
        assert result.exit_code == 0, result.output
        [folders[key]] = [path for path in out.iterdir() if path.is_dir()]
    return folders


@pytest.mark.parametrize(("sample", "project"), CASES,
                         ids=[f"{project}-{sample}" for sample, project in CASES])
def test_sample_records_match_golden(projects: dict[str, Path], sample: str,
                                     project: str) -> None:
    result = CliRunner().invoke(main, ["preview", "--project", str(projects[project]),
                                       "--payload", sample, "--format", "json"])
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    golden = GOLDEN / project / f"{sample.replace('/', '--')}.json"
    if os.environ.get("RABT_UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(json.dumps(records, ensure_ascii=False, indent=2) + "\n",
                          encoding="utf-8")
    assert golden.is_file(), f"no stored records for {sample} on {project}"
    assert records == json.loads(golden.read_text(encoding="utf-8"))
