"""Files that only the projects of one integration path get, beside the templates' output.

The iPaaS path gets workflow files built as data from the spec. The API path gets
``generator/runtime`` and ``generator/standins`` copied verbatim into its service,
so the service maps payloads with the same code as ``rabt preview`` and its tests
run against the same CRM stand-ins as the generator's own tests.
"""

from __future__ import annotations

from pathlib import Path

from generator.model import Answers, Plan

PACKAGE_DIR = Path(__file__).resolve().parent

# Where the generated service keeps its Python package, relative to the project.
SERVICE_PACKAGE = "service/src/storesync"

# Packages copied verbatim into the service, with the file suffixes they need.
COPIED_PACKAGES = {
    "runtime": (".py", ".yaml"),
    "standins": (".py", ".yaml", ".json"),
}


def copied_package_files() -> dict[str, bytes]:
    """Return the runtime and stand-in files of the service, by project-relative path."""
    files: dict[str, bytes] = {}
    for package, suffixes in COPIED_PACKAGES.items():
        source = PACKAGE_DIR / package
        for path in sorted(source.rglob("*")):
            if not path.is_file() or path.suffix not in suffixes or "__pycache__" in path.parts:
                continue
            relative = path.relative_to(source).as_posix()
            files[f"{SERVICE_PACKAGE}/{package}/{relative}"] = path.read_bytes()
    return files


def path_data_files(answers: Answers, plan: Plan, spec: dict[str, dict[str, object]],
                    desired_state: dict[str, object]) -> dict[str, bytes]:
    """Return the files the project's path adds, by project-relative path."""
    if plan.path == "ipaas":
        from generator.ipaas import ipaas_files

        return ipaas_files(answers, plan, spec, desired_state)
    if plan.path == "api":
        return copied_package_files()
    return {}
