#!/usr/bin/env python3
"""Rebuild generator/data/ipaas/n8n-nodes.json from the n8n-nodes-base package on npm.

The catalogue records, for each n8n node Rabt writes into workflows, the type versions
the pinned n8n release supports and, per version, its parameter names, option values and
credential types; and for each credential type, the fields a user fills in. The tests
check every generated node against it.

Usage:
    python scripts/refresh_n8n_nodes.py                  # the release pinned in the catalogue
    python scripts/refresh_n8n_nodes.py --n8n-version 2.8.4
    python scripts/refresh_n8n_nodes.py --check          # exit 1 if the catalogue is stale

Needs Node.js and npm. It downloads packages into a temporary folder only: the
n8n-nodes-base tarball (``npm pack``) and n8n-workflow with a few small libraries
that node descriptions use at load time (``npm install --ignore-scripts``).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
CATALOGUE = REPO / "generator/data/ipaas/n8n-nodes.json"
EXTRACTOR = Path(__file__).resolve().with_suffix(".js")
NPM_TIMEOUT_SECONDS = 600

# Nodes and credential types that generator/ipaas/n8n.py writes into workflows.
NODE_TYPES = (
    "n8n-nodes-base.code",
    "n8n-nodes-base.dataTable",
    "n8n-nodes-base.emailSend",
    "n8n-nodes-base.errorTrigger",
    "n8n-nodes-base.executeWorkflow",
    "n8n-nodes-base.executeWorkflowTrigger",
    "n8n-nodes-base.httpRequest",
    "n8n-nodes-base.noOp",
    "n8n-nodes-base.postgres",
    "n8n-nodes-base.removeDuplicates",
    "n8n-nodes-base.scheduleTrigger",
    "n8n-nodes-base.shopifyTrigger",
    "n8n-nodes-base.switch",
    "n8n-nodes-base.wait",
    "n8n-nodes-base.webhook",
    "n8n-nodes-base.wooCommerceTrigger",
    # Not written into workflows: kept so the tests can show why HTTP Request
    # replaces them (no copy-code button, no Cases resource).
    "n8n-nodes-base.whatsApp",
    "n8n-nodes-base.zohoCrm",
)
CREDENTIAL_TYPES = (
    "hubspotAppToken",
    "httpHeaderAuth",
    "oAuth2Api",
    "postgres",
    "shopifyAccessTokenApi",
    "smtp",
    "whatsAppApi",
    "wooCommerceApi",
    "zohoOAuth2Api",
)
# Libraries that node descriptions read while they are built (n8n-workflow for the
# base classes and constants, the others for option lists and dependency injection).
# Every other dependency of n8n-nodes-base is only used when a node runs.
LOADER_PACKAGES = ("n8n-workflow", "@n8n/di", "@n8n/config", "change-case", "moment-timezone",
                   "currency-codes", "uuid")


class RefreshError(Exception):
    """A step of the refresh failed; the message says which and what to do."""


def run(command: list[str], cwd: Path) -> str:
    """Run ``command`` in ``cwd`` and return its standard output."""
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False,
                              timeout=NPM_TIMEOUT_SECONDS)
    except FileNotFoundError as error:
        raise RefreshError(f"{command[0]} was not found; install Node.js and npm") from error
    except subprocess.TimeoutExpired as error:
        raise RefreshError(
            f"{' '.join(command)} timed out after {NPM_TIMEOUT_SECONDS} s") from error
    if done.returncode != 0:
        raise RefreshError(failure_message(command, done))
    return done.stdout


def failure_message(command: list[str], done: subprocess.CompletedProcess[str]) -> str:
    """Return the message of a failed command: the command, its exit code and its stderr.

    npm with ``--silent`` can fail without a word on stderr, so the message then states
    that stderr was empty and adds the end of stdout when there is any.
    """
    head = f"{' '.join(command)} failed with exit code {done.returncode}"
    stderr = done.stderr.strip()
    if stderr:
        return f"{head}:\n{stderr[-2000:]}"
    stdout = done.stdout.strip()
    if stdout:
        return f"{head} and wrote nothing to stderr; its stdout ends with:\n{stdout[-2000:]}"
    return (f"{head} and wrote nothing to stderr or stdout; run the command by hand "
            "without --silent to see why")


def npm_json(spec: str, field: str, cwd: Path) -> Any:
    """Return one field of ``npm view SPEC`` as parsed JSON."""
    text = run(["npm", "view", spec, field, "--json"], cwd).strip()
    if not text:
        raise RefreshError(f"npm view {spec} {field} returned nothing; check the version")
    return json.loads(text)


def unpack_nodes_base(version: str, work: Path) -> Path:
    """Download n8n-nodes-base ``version`` with npm pack and return the unpacked folder."""
    tarball_name = run(["npm", "pack", f"n8n-nodes-base@{version}", "--silent"], work).strip()
    tarball = work / tarball_name.splitlines()[-1]
    with tarfile.open(tarball) as archive:
        archive.extractall(work / "unpacked", filter="data")
    return work / "unpacked/package"


def install_loader(package_dir: Path, work: Path) -> Path:
    """Install the loader libraries at the versions the package pins; return node_modules."""
    dependencies = json.loads((package_dir / "package.json").read_text())["dependencies"]
    missing = [name for name in LOADER_PACKAGES if name not in dependencies]
    if missing:
        raise RefreshError(f"n8n-nodes-base no longer depends on {', '.join(missing)}; "
                           "update LOADER_PACKAGES in this script")
    loader = work / "loader"
    loader.mkdir()
    (loader / "package.json").write_text('{"name": "rabt-n8n-loader", "private": true}\n')
    specs = [f"{name}@{dependencies[name]}" for name in LOADER_PACKAGES]
    run(["npm", "install", "--ignore-scripts", "--no-audit", "--no-fund", *specs], loader)
    return loader / "node_modules"


def extract(package_dir: Path, node_modules: Path) -> dict[str, Any]:
    """Run the Node.js extractor over the chosen nodes and credential types."""
    names = [*NODE_TYPES, *(f"credential:{name}" for name in CREDENTIAL_TYPES)]
    command = ["node", str(EXTRACTOR), str(package_dir), *names]
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=False,
                              timeout=NPM_TIMEOUT_SECONDS,
                              env={"NODE_PATH": str(node_modules), "PATH": _path()})
    except FileNotFoundError as error:
        raise RefreshError("node was not found; install Node.js") from error
    if done.returncode != 0:
        raise RefreshError(f"the extractor failed. {failure_message(command, done)}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _path() -> str:
    node = shutil.which("node")
    return str(Path(node).parent) if node else ""


def build_catalogue(n8n_version: str) -> dict[str, Any]:
    """Download the n8n-nodes-base release that n8n ``n8n_version`` uses and describe it."""
    with tempfile.TemporaryDirectory(prefix="rabt-n8n-") as folder:
        work = Path(folder)
        (work / "package.json").write_text('{"name": "rabt-n8n-refresh", "private": true}\n')
        dependencies = npm_json(f"n8n@{n8n_version}", "dependencies", work)
        engines = npm_json(f"n8n@{n8n_version}", "engines", work)
        nodes_base_version = dependencies.get("n8n-nodes-base")
        if not nodes_base_version:
            raise RefreshError(f"n8n@{n8n_version} does not depend on n8n-nodes-base")
        package_dir = unpack_nodes_base(nodes_base_version, work)
        extracted = extract(package_dir, install_loader(package_dir, work))
    return {
        "n8n_version": n8n_version,
        "n8n_node_engines": engines.get("node", ""),
        "package": extracted["package"],
        "package_version": extracted["package_version"],
        "stubbed_modules": extracted["stubbed_modules"],
        "nodes": extracted["nodes"],
        "credentials": extracted["credentials"],
    }


def serialise(catalogue: dict[str, Any]) -> str:
    """Return the catalogue as the committed file's text: sorted keys, one value a line."""
    return json.dumps(catalogue, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def pinned_version() -> str:
    """Return the n8n release pinned by the committed catalogue."""
    version: str = json.loads(CATALOGUE.read_text(encoding="utf-8"))["n8n_version"]
    return version


def main(argv: list[str] | None = None) -> int:
    """Rebuild or check the catalogue; return the process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n8n-version", help="n8n release to describe (default: the pinned one)")
    parser.add_argument("--check", action="store_true",
                        help="compare with the committed catalogue instead of writing it")
    parser.add_argument("--output", type=Path, default=CATALOGUE,
                        help="file to write (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        version = args.n8n_version or pinned_version()
        text = serialise(build_catalogue(version))
    except (RefreshError, FileNotFoundError, KeyError) as error:
        print(f"refresh_n8n_nodes: {error}", file=sys.stderr)
        return 1
    if args.check:
        if CATALOGUE.read_text(encoding="utf-8") != text:
            print(f"{CATALOGUE.relative_to(REPO)} differs from n8n {version}; run "
                  "scripts/refresh_n8n_nodes.py and review the diff", file=sys.stderr)
            return 1
        print(f"{CATALOGUE.relative_to(REPO)} matches n8n {version}")
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output} for n8n {version} (n8n-nodes-base "
          f"{json.loads(text)['package_version']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
