"""Workflow files for the iPaaS path, built as data from the integration spec.

Each module returns its files by project-relative path: n8n workflows, Make
blueprints, the Zapier and Tray build sheets and the operations budget.
"""

from __future__ import annotations

from typing import Any

from generator.model import Answers, Plan


def ipaas_files(answers: Answers, plan: Plan, spec: dict[str, dict[str, Any]],
                desired_state: dict[str, Any]) -> dict[str, bytes]:
    """Return every workflow, build sheet and budget file of an iPaaS project."""
    from generator.ipaas import budget, buildsheets, make, n8n

    files: dict[str, bytes] = {}
    for module in (n8n, make, buildsheets, budget):
        files.update(module.files(answers, plan, spec, desired_state))
    return files
