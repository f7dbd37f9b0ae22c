"""Files that only the projects of one integration path get, beside the templates' output.

The iPaaS path gets workflow files built as data from the spec. The API path gets
``generator/runtime`` and ``generator/standins`` copied verbatim into its service,
so the service maps payloads with the same code as ``rabt preview`` and its tests
run against the same CRM stand-ins as the generator's own tests.

A connector project for a WooCommerce store whose plan syncs contacts daily gets the
contact sync in ``sync/``. The package in ``templates/connector/sync`` and
``generator/runtime`` are copied verbatim. The ``.env.example`` for its CRM and the
GitHub Actions workflow that runs the sync on a schedule are built as data.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from generator.model import Answers, Plan
from generator.resources import load_data, templates_dir

PACKAGE_DIR = Path(__file__).resolve().parent

# The generated service's Python package, relative to the project.
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


# The customer database guide, copied into API projects whose CRM is the client's own
# database; its source is plain Markdown with no template markers.
CUSTOMDB_DOCS = ("customer-database.md", "customer-database.ar.md")


def customdb_doc_files(crm: str | None) -> dict[str, bytes]:
    """Return the customer database guide by project-relative path, for ``crm`` custom only."""
    if crm != "custom":
        return {}
    source = templates_dir() / "api-service" / "customdb-docs"
    return {f"docs/{name}": (source / name).read_bytes() for name in CUSTOMDB_DOCS}


def platform_files(platform: str | None) -> dict[str, bytes]:
    """Return the API service files that only projects on ``platform`` get, by project path.

    ``platform_files`` in ``generator/data/paths.yaml`` lists them per platform (the
    Shopify custom pixel for Shopify, the storefront signing helper for headless), and
    each file's source is
    ``templates/api-service/platform-files/<platform>/<project path>``, copied verbatim.
    """
    listed = load_data("paths")["paths"]["api"].get("platform_files") or {}
    if not platform or platform not in listed:
        return {}
    source = templates_dir() / "api-service" / "platform-files" / platform
    return {relative: (source / relative).read_bytes() for relative in listed[platform]}


# The contact sync's folder in the project and the runtime's place inside it.
SYNC_DIR = "sync"
SYNC_RUNTIME = f"{SYNC_DIR}/contactsync/runtime"
SYNC_SOURCE_SUFFIXES = (".py", ".txt", ".md")
SYNC_WORKFLOW = ".github/workflows/contact-sync.yml"
SYNC_CRMS = ("hubspot", "zoho")
# 02:30 UTC is 05:30 in Riyadh: the night's orders are in, and the team starts the
# day with current segments. GitHub runs scheduled workflows in UTC.
SYNC_CRON_UTC = "30 2 * * *"
SYNC_STATE_FILE = "sync/state/contact-sync.json"

# Variables of .env.example per CRM, with placeholders only: (name, value, comment).
_STORE_VARIABLES = [
    ("WOOCOMMERCE_URL", "https://store.example.sa", "the store's address, https only"),
    ("WOOCOMMERCE_CONSUMER_KEY", "ck_placeholder_not_real",
     "WooCommerce > Settings > Advanced > REST API, Read access"),
    ("WOOCOMMERCE_CONSUMER_SECRET", "cs_placeholder_not_real", "shown once with the key"),
    ("WOOCOMMERCE_AUTH", "header", "header (Basic auth) or query, for hosts that strip it"),
    ("WOOCOMMERCE_CUSTOMER_ROLE", "customer", "customer, subscriber or all"),
]
_CRM_VARIABLES = {
    "hubspot": [
        ("HUBSPOT_ACCESS_TOKEN", "pat-placeholder-not-real",
         "private app token with crm.objects.contacts.write"),
        ("HUBSPOT_BASE_URL", "https://api.hubapi.com", "change only for a test stand-in"),
        ("HUBSPOT_RATE_LIMIT_PER_10S", "100", "100 on Free and Starter, 190 on Pro and Enterprise"),
    ],
    "zoho": [
        ("ZOHO_CLIENT_ID", "1000.placeholder-not-real", "self client in the Zoho API console"),
        ("ZOHO_CLIENT_SECRET", "placeholder-not-real", "that client's secret"),
        ("ZOHO_REFRESH_TOKEN", "1000.placeholder-not-real",
         "refresh token with ZohoCRM.modules.contacts.ALL"),
        ("ZOHO_DC", "sa", "data centre: sa for zoho.sa, com, eu, in, ..."),
        ("ZOHO_CALLS_PER_MINUTE", "100", "client-side pace of CRM calls"),
    ],
}


def wants_contact_sync(path: str | None, platform: str | None, crm: str | None,
                       contact_sync: str | None) -> bool:
    """Return whether a project with this plan gets the daily contact sync in ``sync/``."""
    return (path == "connector" and platform == "woocommerce" and contact_sync == "daily"
            and crm in SYNC_CRMS)


def contact_sync_paths(plan: Mapping[str, Any] | None) -> tuple[str, ...]:
    """Return the files a project with this plan (``Plan.to_data()``) must have for the sync."""
    if plan is None or not wants_contact_sync(plan.get("path"), plan.get("platform"),
                                              plan.get("crm"), plan.get("contact_sync")):
        return ()
    return (f"{SYNC_DIR}/contact_sync.py", f"{SYNC_DIR}/requirements.txt",
            f"{SYNC_DIR}/.env.example", f"{SYNC_DIR}/contactsync/cli.py",
            f"{SYNC_RUNTIME}/engine.py", SYNC_WORKFLOW)


def _env_example(crm: str) -> bytes:
    lines = ["# Settings of the daily contact sync. Copy to sync/.env (never committed) or",
             "# set them in the scheduler; every value here is a placeholder.", ""]
    for name, value, comment in [*_STORE_VARIABLES, *_CRM_VARIABLES[crm]]:
        lines += [f"# {comment}", f"{name}={value}"]
    return ("\n".join(lines) + "\n").encode("utf-8")


def _sync_workflow(crm: str) -> dict[str, Any]:
    """Return the scheduled GitHub Actions workflow that runs the sync, as data."""
    names = [name for name, _, _ in [*_STORE_VARIABLES[:3], *_CRM_VARIABLES[crm][:1]]]
    if crm == "zoho":
        names += ["ZOHO_CLIENT_SECRET", "ZOHO_REFRESH_TOKEN", "ZOHO_DC"]
    # GitHub's own expression syntax, written as data and never rendered by Jinja.
    secrets = {name: "${{ secrets." + name + " }}" for name in names}
    cache = {"path": SYNC_STATE_FILE, "key": "contact-sync-state-${{ github.run_id }}"}
    return {
        "name": "contact-sync",
        "on": {"schedule": [{"cron": SYNC_CRON_UTC}], "workflow_dispatch": {}},
        "permissions": {"contents": "read"},
        # One run at a time: a second run waits instead of racing for the state.
        "concurrency": {"group": "contact-sync", "cancel-in-progress": False},
        "jobs": {"sync": {
            "runs-on": "ubuntu-latest",
            "timeout-minutes": 30,
            "steps": [
                {"uses": "actions/checkout@v4"},
                {"uses": "actions/setup-python@v5", "with": {"python-version": "3.11"}},
                {"name": "Install the sync's packages",
                 "run": "pip install -r sync/requirements.txt"},
                # The state (marks and retries) lives in the Actions cache between runs.
                {"name": "Restore the sync state", "uses": "actions/cache/restore@v4",
                 "with": {"path": SYNC_STATE_FILE, "key": cache["key"],
                          "restore-keys": "contact-sync-state-"}},
                {"name": "Sync contacts", "run": "python sync/contact_sync.py", "env": secrets},
                {"name": "Save the sync state", "if": "always()",
                 "uses": "actions/cache/save@v4", "with": cache},
            ],
        }},
    }


def contact_sync_files(crm: str) -> dict[str, bytes]:
    """Return the contact sync's files for a project on ``crm``, by project-relative path."""
    files: dict[str, bytes] = {}
    source = templates_dir() / "connector" / SYNC_DIR
    for path in sorted(source.rglob("*")):
        if path.is_file() and path.suffix in SYNC_SOURCE_SUFFIXES and \
                "__pycache__" not in path.parts:
            files[f"{SYNC_DIR}/{path.relative_to(source).as_posix()}"] = path.read_bytes()
    runtime = PACKAGE_DIR / "runtime"
    for path in sorted(runtime.rglob("*")):
        if path.is_file() and path.suffix in COPIED_PACKAGES["runtime"] and \
                "__pycache__" not in path.parts:
            files[f"{SYNC_RUNTIME}/{path.relative_to(runtime).as_posix()}"] = path.read_bytes()
    files[f"{SYNC_DIR}/.env.example"] = _env_example(crm)
    files[f"{SYNC_DIR}/.gitignore"] = (b"# Local settings and the run state stay out of git.\n"
                                       b".env\nstate/\n")
    files[SYNC_WORKFLOW] = yaml.safe_dump(_sync_workflow(crm), allow_unicode=True,
                                          sort_keys=False, width=100).encode("utf-8")
    return files


def path_data_files(answers: Answers, plan: Plan, spec: dict[str, dict[str, object]],
                    desired_state: dict[str, object],
                    crm_ids: dict[str, object] | None = None) -> dict[str, bytes]:
    """Return the files the project's path adds, by project-relative path.

    ``crm_ids`` is the ``ids`` section of an existing ``.rabt/crm-state.json``, which
    the iPaaS workflows use for the CRM's pipeline and stage ids.
    """
    if plan.path == "ipaas":
        from generator.ipaas import ipaas_files

        return ipaas_files(answers, plan, spec, desired_state, crm_ids)
    if plan.path == "api":
        return {**copied_package_files(), **customdb_doc_files(plan.crm),
                **platform_files(plan.platform)}
    if wants_contact_sync(plan.path, plan.platform, plan.crm, plan.contact_sync):
        return contact_sync_files(plan.crm)
    return {}
