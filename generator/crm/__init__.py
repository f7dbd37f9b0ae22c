"""CRM set-up as code: compare a project's ``crm/desired-state.yaml`` with a live CRM and apply it.

``rabt crm plan`` reads the live account, diffs it against the desired state and
prints what would change; ``rabt crm apply`` makes those changes in dependency
order and records the ids the CRM returns in ``.rabt/crm-state.json``. HubSpot
(properties, groups, deal pipelines and stages, lists v3) and Zoho CRM (custom
fields, Deals stages) are supported; whatever an API cannot do is printed as a
numbered manual step.
"""

from generator.crm.apply import ApplyResult, apply_plan
from generator.crm.desired import load_desired_state
from generator.crm.model import Change, CrmPlan, PlanItem
from generator.crm.plan import build_plan, connect

__all__ = [
    "ApplyResult",
    "Change",
    "CrmPlan",
    "PlanItem",
    "apply_plan",
    "build_plan",
    "connect",
    "load_desired_state",
]
