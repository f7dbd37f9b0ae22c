"""n8n workflows imported into a real, throw-away n8n and checked with n8n's own node code.

For every iPaaS case, the workflow files go through ``n8n import:workflow`` into a fresh
PostgreSQL database on 127.0.0.1 and back out through ``n8n export:workflow``, and every
workflow must come back unchanged. ``scripts/check_n8n_workflows.js`` then loads each file
into n8n-workflow's ``Workflow`` class with the installed n8n-nodes-base and lists unknown
node types, parameter issues, missing credentials and connections to ports a node lacks.
The same checker also takes every generated node with no parameters and with each one
removed or emptied, and the required parameters it reports must be those that
``generator/ipaas/n8n_required.py`` finds.

n8n comes from ``scripts/install_n8n.sh`` (in ``RABT_N8N_HOME``, or the cache folder that
script uses). Without n8n, Node.js, ``psql`` or PostgreSQL the tests skip, or fail when the
``CI`` environment variable is set.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import pytest

from generator.ipaas import n8n, n8n_required
from generator.spec import build_desired_state
from tests.ipaas_cases import IPAAS_CASES, load_case

REPO = Path(__file__).resolve().parent.parent
CHECKER = REPO / "scripts" / "check_n8n_workflows.js"
CASE_IDS = [case[0] for case in IPAAS_CASES]
# The messages of n8n-workflow 2.8.0's getParameterIssues for a required parameter without a
# value and for a fixed collection with too few items.
REQUIRED_MESSAGE = re.compile(r'Parameter ".*" is required\.$'
                              r"|At least \d+ fields? (is|are) required\.$")
POSTGRES_HOST = "127.0.0.1"
POSTGRES_PORT = 5432
POSTGRES_USER = "postgres"
# On a new database, an n8n command first runs every migration, which took about 5 seconds
# on 2 shared cores. The limit leaves room for slower CI machines.
N8N_TIMEOUT_SECONDS = 180
# Node types of n8n-nodes-base 2.8.1 whose code calls the xlsx package, directly or through
# the Google Sheets helpers. install_n8n.sh pins xlsx to the npm registry's 0.18.5 instead
# of the 0.20.2 that n8n-nodes-base names by URL.
XLSX_NODE_TYPES = {f"n8n-nodes-base.{name}" for name in (
    "spreadsheetFile", "convertToFile", "extractFromFile", "googleSheets",
    "googleSheetsTrigger", "evaluation", "evaluationTrigger")}
LONG_CLIENT_NAME = ("مجموعة متاجر الواحة الخضراء للأزياء والعطور والهدايا والمستلزمات المنزلية "
                    "ومستحضرات التجميل في المنطقة الشرقية وجدة والرياض والمدينة المنورة")
LONG_SLUG = "alwaha-alkhadra-fashion-perfume-gifts-home-beauty-east-jeddah"


def unavailable(reason: str) -> NoReturn:
    """Skip the test, or fail it when CI is set, because ``reason`` keeps it from running."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason}, and CI is set")
    pytest.skip(reason)


def case_files(preset: str, values: dict[str, Any]) -> dict[str, bytes]:
    """Return the n8n workflow files of one set of answers, by file name."""
    answers, plan, spec = load_case(preset, values)
    files = n8n.files(answers, plan, spec, build_desired_state(spec, plan))
    return {Path(path).name: data for path, data in files.items()
            if path.startswith(f"{n8n.OUTPUT_DIR}/")}


def write_case(case: str, folder: Path) -> dict[str, dict[str, Any]]:
    """Write one iPaaS case's workflow files into ``folder``; return them parsed, by id."""
    _, preset, values = next(item for item in IPAAS_CASES if item[0] == case)
    return write_files(case_files(preset, values), folder)


def write_files(files: dict[str, bytes], folder: Path) -> dict[str, dict[str, Any]]:
    folder.mkdir(parents=True, exist_ok=True)
    workflows = {}
    for name, data in files.items():
        (folder / name).write_bytes(data)
        workflow = json.loads(data)
        workflows[workflow["id"]] = workflow
    return workflows


@pytest.fixture(scope="module")
def n8n_home() -> Path:
    """Return the folder holding the pinned n8n, as scripts/install_n8n.sh installs it."""
    if shutil.which("node") is None:
        unavailable("node (Node.js) not found: n8n cannot run")
    version = n8n.catalogue()["n8n_version"]
    default = Path.home() / ".cache" / "rabt" / f"n8n-{version}"
    home = Path(os.environ.get("RABT_N8N_HOME") or default)
    manifest = home / "node_modules" / "n8n" / "package.json"
    if not manifest.is_file():
        unavailable(f"n8n {version} not found in {home}: run scripts/install_n8n.sh "
                    "or set RABT_N8N_HOME")
    found = json.loads(manifest.read_text(encoding="utf-8"))["version"]
    if found != version:
        unavailable(f"{home} holds n8n {found}, not the pinned {version}: "
                    "run scripts/install_n8n.sh")
    return home


def psql(database: str, sql: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["psql", "-h", POSTGRES_HOST, "-p", str(POSTGRES_PORT), "-U", POSTGRES_USER,
         "-d", database, "-v", "ON_ERROR_STOP=1", "-X", "-q", "-c", sql],
        capture_output=True, text=True, check=False, timeout=60,
        env={**os.environ, "PGCONNECT_TIMEOUT": "5"})


@pytest.fixture(scope="module")
def postgres() -> None:
    """Check that ``psql`` exists and PostgreSQL accepts connections on 127.0.0.1:5432."""
    if shutil.which("psql") is None:
        unavailable("psql not found: no throw-away database can be created for n8n")
    done = psql("postgres", "select 1")
    if done.returncode != 0:
        unavailable(f"PostgreSQL on {POSTGRES_HOST}:{POSTGRES_PORT} is not usable as "
                    f"{POSTGRES_USER}: {done.stderr.strip()}")


@contextmanager
def throwaway_database(label: str) -> Iterator[str]:
    """Create a PostgreSQL database with a unique name and drop it at the end."""
    name = f"rabt_n8n_{re.sub(r'[^a-z0-9]', '_', label)}_{uuid.uuid4().hex[:12]}"
    created = psql("postgres", f'create database "{name}"')
    assert created.returncode == 0, created.stderr
    try:
        yield name
    finally:
        dropped = psql("postgres", f'drop database if exists "{name}" with (force)')
        assert dropped.returncode == 0, dropped.stderr


class N8n:
    """The n8n command line against one database and one throw-away user folder."""

    def __init__(self, home: Path, database: str, user_folder: Path) -> None:
        self.command = home / "node_modules" / ".bin" / "n8n"
        # Nothing from the caller's n8n or database settings may leak in.
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("N8N_", "DB_"))}
        env.update({
            "DB_TYPE": "postgresdb", "DB_POSTGRESDB_HOST": POSTGRES_HOST,
            "DB_POSTGRESDB_PORT": str(POSTGRES_PORT), "DB_POSTGRESDB_DATABASE": database,
            "DB_POSTGRESDB_USER": POSTGRES_USER,
            "DB_POSTGRESDB_PASSWORD": os.environ.get("PGPASSWORD", ""),
            "N8N_USER_FOLDER": str(user_folder),
            # The CLI then sends nothing to n8n's telemetry or version servers.
            "N8N_DIAGNOSTICS_ENABLED": "false", "N8N_VERSION_NOTIFICATIONS_ENABLED": "false",
            "N8N_TEMPLATES_ENABLED": "false",
        })
        self.env = env

    def run(self, *arguments: str) -> str:
        """Run one n8n command; return its output, or fail the test with it."""
        done = subprocess.run([str(self.command), *arguments], capture_output=True, text=True,
                              check=False, env=self.env, timeout=N8N_TIMEOUT_SECONDS)
        output = done.stdout + done.stderr
        assert done.returncode == 0, f"n8n {arguments[0]} exited {done.returncode}:\n{output}"
        return output

    def export_all(self, output: Path) -> dict[str, dict[str, Any]]:
        """Export every workflow of the database; return them by id."""
        self.run("export:workflow", "--all", f"--output={output}")
        exported = json.loads(output.read_text(encoding="utf-8"))
        return {workflow["id"]: workflow for workflow in exported}


@pytest.fixture
def n8n_cli(n8n_home: Path, postgres: None, tmp_path: Path,
            request: pytest.FixtureRequest) -> Iterator[N8n]:
    """Return the n8n command line on a fresh database that is dropped after the test."""
    with throwaway_database(request.node.name.lower()) as database:
        yield N8n(n8n_home, database, tmp_path / "n8n-user")


def node_summary(workflow: dict[str, Any]) -> dict[str, tuple[str, float]]:
    return {node["name"]: (node["type"], node["typeVersion"]) for node in workflow["nodes"]}


# ---------------------------------------------------------------------------
# Import and export


@pytest.mark.slow
@pytest.mark.parametrize("case", CASE_IDS)
def test_import_round_trip(case: str, n8n_cli: N8n, tmp_path: Path) -> None:
    # One run imports every file, so this also fails when files that share a tag
    # cannot be imported together.
    written = write_case(case, tmp_path / "workflows")
    output = n8n_cli.run("import:workflow", "--separate", f"--input={tmp_path / 'workflows'}")
    assert f"Successfully imported {len(written)} workflows" in output

    exported = n8n_cli.export_all(tmp_path / "exported.json")
    assert sorted(exported) == sorted(written)
    for workflow_id, original in written.items():
        back = exported[workflow_id]
        assert back["name"] == original["name"]
        assert node_summary(back) == node_summary(original)
        assert back["connections"] == original["connections"]
        assert back["nodes"] == original["nodes"]
        assert back["settings"] == original["settings"]
        assert [item["name"] for item in back["tags"]] == [item["name"] for item in
                                                           original["tags"]]
        assert back["active"] is False


@pytest.mark.slow
def test_reimport_updates_in_place(n8n_cli: N8n, tmp_path: Path) -> None:
    written = write_case("shopify-hubspot", tmp_path / "workflows")
    for _ in range(2):
        n8n_cli.run("import:workflow", "--separate", f"--input={tmp_path / 'workflows'}")

    exported = n8n_cli.export_all(tmp_path / "exported.json")
    tag_ids: dict[str, set[str]] = {}
    for workflow in exported.values():
        for item in workflow["tags"]:
            tag_ids.setdefault(item["name"], set()).add(item["id"])
    assert sorted(exported) == sorted(written)
    assert set(tag_ids) == {item["name"] for workflow in written.values()
                            for item in workflow["tags"]}
    assert {name: len(ids) for name, ids in tag_ids.items() if len(ids) > 1} == {}


@pytest.mark.slow
def test_import_long_names(n8n_cli: N8n, tmp_path: Path) -> None:
    # PostgreSQL enforces n8n's column sizes: 128 characters for a workflow name and 24
    # for a tag name. The answers allow a 200-character client name and a 63-character slug.
    files = case_files("shopify-growth", {"client_name": LONG_CLIENT_NAME,
                                          "project_slug": LONG_SLUG})
    written = write_files(files, tmp_path / "workflows")
    n8n_cli.run("import:workflow", "--separate", f"--input={tmp_path / 'workflows'}")

    exported = n8n_cli.export_all(tmp_path / "exported.json")
    assert {workflow["name"] for workflow in exported.values()} == {
        workflow["name"] for workflow in written.values()}


# ---------------------------------------------------------------------------
# n8n's own parameter checks


def checker(*arguments: str) -> subprocess.CompletedProcess[str]:
    """Run scripts/check_n8n_workflows.js with ``arguments``."""
    node = shutil.which("node")
    if node is None:
        unavailable("node (Node.js) not found: the workflow checker cannot run")
    return subprocess.run([node, str(CHECKER), *arguments], capture_output=True, text=True,
                          check=False, timeout=300)


def run_checker(home: Path, files: list[Path]) -> tuple[int, dict[str, Any]]:
    done = checker(str(home), *map(str, files))
    assert done.returncode in (0, 1), done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return done.returncode, report


@pytest.fixture(scope="module")
def check_report(n8n_home: Path, tmp_path_factory: pytest.TempPathFactory
                 ) -> dict[str, list[dict[str, Any]]]:
    """Run the checker once over every case's files; return its results by case."""
    root = tmp_path_factory.mktemp("n8n-check")
    files = {}
    for case in CASE_IDS:
        write_case(case, root / case)
        files[case] = sorted((root / case).glob("*.json"))
    _, report = run_checker(n8n_home, [path for paths in files.values() for path in paths])
    assert report["n8n_version"] == n8n.catalogue()["n8n_version"]
    assert report["nodes_base_version"] == n8n.catalogue()["package_version"]
    by_file = {item["file"]: item for item in report["workflows"]}
    return {case: [by_file[str(path)] for path in paths] for case, paths in files.items()}


@pytest.mark.slow
@pytest.mark.parametrize("case", CASE_IDS)
def test_nodes_pass_n8n_checks(case: str, check_report: dict[str, list[dict[str, Any]]]
                               ) -> None:
    results = check_report[case]
    problems = [dict(problem, workflow=Path(item["file"]).name)
                for item in results for problem in item["problems"]]
    assert results
    assert problems == []


def first_node(workflow: dict[str, Any], kind: str) -> dict[str, Any]:
    node: dict[str, Any] = next(item for item in workflow["nodes"]
                                if item["type"] == f"n8n-nodes-base.{kind}")
    return node


@pytest.mark.slow
def test_checker_reports_faults(n8n_home: Path, tmp_path: Path) -> None:
    # One fault of each kind the checker reports, in a copy of a real workflow.
    workflow = json.loads(case_files("shopify-growth", {})["contact-sync.json"])
    trigger, request, code = (first_node(workflow, kind)
                              for kind in ("shopifyTrigger", "httpRequest", "code"))
    request["parameters"]["url"] = ""
    del trigger["credentials"]
    code["typeVersion"] = 9
    workflow["nodes"].append({**copy.deepcopy(code), "name": "Unknown node", "typeVersion": 2,
                              "id": str(uuid.uuid4()), "type": "n8n-nodes-base.noSuchNode"})
    # A trigger has no input, so nothing may connect to it: here its own next node does.
    next_node = workflow["connections"][trigger["name"]]["main"][0][0]["node"]
    workflow["connections"].setdefault(next_node, {"main": [[]]})["main"][0].append(
        {"node": trigger["name"], "type": "main", "index": 0})
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(workflow), encoding="utf-8")

    code_returned, report = run_checker(n8n_home, [path])
    found = {(problem["node"], problem["kind"], problem["parameter"])
             for problem in report["workflows"][0]["problems"]}
    assert code_returned == 1
    assert found == {(request["name"], "parameter", "url"),
                     (trigger["name"], "credential", "shopifyAccessTokenApi"),
                     (code["name"], "type", None),
                     ("Unknown node", "type", None),
                     (trigger["name"], "connection", None)}


@pytest.mark.slow
def test_checker_invalid_json(n8n_home: Path, tmp_path: Path) -> None:
    path = tmp_path / "cut.json"
    path.write_text('{"nodes": [', encoding="utf-8")
    done = checker(str(n8n_home), str(path))
    assert done.returncode == 2
    assert f"cannot read the workflow file {path}" in done.stderr


def one_gap_nodes() -> Iterator[dict[str, Any]]:
    """Yield each distinct generated node, then with no parameters, then with each of its
    parameters removed or emptied in turn."""
    seen = set()
    for case in CASE_IDS:
        _, preset, values = next(item for item in IPAAS_CASES if item[0] == case)
        for data in case_files(preset, values).values():
            for node in json.loads(data)["nodes"]:
                key = json.dumps([node["type"], node["typeVersion"], sorted(node["parameters"])])
                if key in seen:
                    continue
                seen.add(key)
                yield node
                yield {**node, "parameters": {}}
                for name in node["parameters"]:
                    removed = copy.deepcopy(node)
                    del removed["parameters"][name]
                    emptied = copy.deepcopy(node)
                    emptied["parameters"][name] = ""
                    yield removed
                    yield emptied


def n8n_required_issues(problems: list[dict[str, Any]]) -> list[str]:
    """Return the parameters n8n reports as required and missing, or short of items."""
    return sorted({problem["parameter"] for problem in problems
                   if problem["kind"] == "parameter"
                   and REQUIRED_MESSAGE.match(problem["message"])})


def rabt_required_issues(node: dict[str, Any], defaults: bool) -> set[str]:
    """Return the parameters ``n8n_required`` reports for ``node``, named as n8n names them."""
    version = str(node["typeVersion"]).removesuffix(".0")
    allowed = n8n.catalogue()["nodes"][node["type"]]["versions"][version]["parameters"]
    names = set()
    for missing in n8n_required.missing_parameters(node["parameters"], allowed, defaults):
        parts = missing.path.split(".")
        # n8n keys a missing value by its own name, and a short group by its collection.
        name = parts[-2] if missing.minimum is not None else parts[-1]
        names.add(name.split("[")[0])
    return names


@pytest.mark.slow
def test_required_matches_n8n(n8n_home: Path, tmp_path: Path) -> None:
    # The checker reports what n8n finds on the stored values and with defaults filled in.
    nodes = list(one_gap_nodes())
    paths = []
    for index, node in enumerate(nodes):
        path = tmp_path / f"node-{index}.json"
        path.write_text(json.dumps({"name": f"node {index}", "nodes": [node],
                                    "connections": {}}), encoding="utf-8")
        paths.append(path)

    _, report = run_checker(n8n_home, paths)
    by_file = {item["file"]: item["problems"] for item in report["workflows"]}
    differences = []
    for node, path in zip(nodes, paths, strict=True):
        expected = sorted(rabt_required_issues(node, defaults=True)
                          | rabt_required_issues(node, defaults=False))
        found = n8n_required_issues(by_file[str(path)])
        if expected != found:
            differences.append((node["name"], sorted(node["parameters"]), expected, found))
    assert len(nodes) > 200
    assert any(n8n_required_issues(problems) for problems in by_file.values())
    assert differences == []


# ---------------------------------------------------------------------------
# Checks that need no n8n


def test_checker_usage_error() -> None:
    done = checker()
    assert done.returncode == 2
    assert done.stderr.startswith("usage: node check_n8n_workflows.js N8N_HOME FILE...")


def test_checker_missing_install(tmp_path: Path) -> None:
    done = checker(str(tmp_path), str(tmp_path / "order-sync.json"))
    assert done.returncode == 2
    assert f"package.json not found in {tmp_path}" in done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize("case", CASE_IDS)
def test_no_xlsx_node_types(case: str) -> None:
    _, preset, values = next(item for item in IPAAS_CASES if item[0] == case)
    types = {node["type"] for data in case_files(preset, values).values()
             for node in json.loads(data)["nodes"]}
    assert types & XLSX_NODE_TYPES == set()


def test_workflow_name_fits_column() -> None:
    name = n8n.workflow_name(LONG_CLIENT_NAME, "Abandoned cart recovery")
    assert len(name) == n8n.WORKFLOW_NAME_MAX_LENGTH
    assert name.endswith("\u2026: Abandoned cart recovery")


def test_workflow_name_short_kept() -> None:
    assert n8n.workflow_name("Souq", "Order sync") == "Souq: Order sync"


def test_tag_name_fits_column() -> None:
    tag = n8n.tag(LONG_SLUG)
    assert len(tag["name"]) == n8n.TAG_NAME_MAX_LENGTH
    assert tag["name"].startswith(LONG_SLUG[:19])
    assert tag["name"] != n8n.tag(LONG_SLUG[:-1] + "x")["name"]


def test_tag_ids_stable() -> None:
    assert n8n.tag("rabt") == n8n.tag("rabt")
    assert n8n.tag("rabt")["id"] != n8n.tag("orders")["id"]
    assert re.fullmatch(r"[0-9A-Za-z]{16}", n8n.tag("rabt")["id"])
