"""Workflow files for the iPaaS path, built as data from the integration spec.

Each module returns its files by project-relative path: n8n workflows, Make
blueprints, the Zapier and Tray build sheets and the operations budget.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from generator.model import Answers, Plan


def ipaas_files(answers: Answers, plan: Plan, spec: dict[str, dict[str, Any]],
                desired_state: dict[str, Any],
                crm_ids: Mapping[str, Any] | None = None) -> dict[str, bytes]:
    """Return every workflow, build sheet and budget file of an iPaaS project.

    ``crm_ids`` is the ``ids`` section of the project's CRM state, when it has one:
    the workflows then send the recorded pipeline and stage ids.
    """
    from generator.ipaas import budget, buildsheets, make, n8n, schema_sql
    from generator.ipaas.crm_ids import with_stage_ids

    spec = with_stage_ids(spec, crm_ids)
    files: dict[str, bytes] = {}
    for module in (n8n, make, buildsheets, budget, schema_sql):
        files.update(module.files(answers, plan, spec, desired_state))
    return files
