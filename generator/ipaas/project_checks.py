"""What an iPaaS project's answers say its workflow files must be, for ``rabt validate``.

The same functions that write the files and the n8n README's setup tables give the
expected workflow and blueprint files, the credential names to create and the n8n
workflow ids, so a deleted file, a renamed credential or a foreign error workflow id
is found before anyone imports the workflows.
"""

from __future__ import annotations

from dataclasses import dataclass

from generator.ipaas import make, n8n
from generator.ipaas.flows import build_flows
from generator.ipaas.n8n_structure import ProjectFacts
from generator.model import Answers, Plan
from generator.spec import build_spec


@dataclass(frozen=True)
class Expected:
    """The workflow files of an iPaaS project and the facts its n8n workflows refer to."""

    files: tuple[str, ...]
    facts: ProjectFacts


def expected(answers: Answers, plan: Plan) -> Expected:
    """Return the n8n and Make files and the n8n facts of an iPaaS project's answers."""
    spec = build_spec(answers, plan)
    flows = build_flows(answers, plan, spec)
    files = [f"{n8n.OUTPUT_DIR}/{flow.key}.json" for flow in flows.flows]
    if plan.crm != "custom":  # make.files writes no blueprints for the client's own database
        files += [f"{make.MAKE_DIR}/{stem}.blueprint.json" for stem in make.blueprint_stems(flows)]
    setup = n8n.setup_context(answers, plan, spec)
    facts = ProjectFacts(
        credential_names=frozenset(str(item["name"]) for item in setup["credentials"]),
        workflow_ids=frozenset(n8n.workflow_id(answers.project_slug, flow.key)
                               for flow in flows.flows),
        error_workflow_id=n8n.workflow_id(answers.project_slug, n8n.ERROR_FLOW),
        known=True)
    return Expected(files=tuple(files), facts=facts)
