"""Print a plan or an apply result as readable text (English or Arabic) or as JSON.

JSON shape of ``rabt crm plan --format json`` (version 1; keys are only added, never
renamed, within a version):

    {"kind": "rabt.crm.plan", "version": 1, "crm": "hubspot" | "zoho",
     "project": <folder name>, "endpoint": <API base URL>, "prune": bool,
     "account": {"status": "same" | "new" | "other" | "unknown",
                 "recorded": <id in the state file> | null, "live": <id> | null},
     "differs": bool,                 # true exactly when the command exits 4
     "counts": {"create": n, "update": n, "unchanged": n, "manual": n,
                "delete": n, "kept": n,  # items by action
                "manual_steps": n},      # len(manual_steps): an item can have several
     "items": [{"kind", "key", "name", "label": {"en", "ar"}, "container",
                "action", "changes": [{"field", "old", "new"}],
                "manual": [{"en", "ar"}], "drift": bool, "id", "owned", "parent"}],
     "manual_steps": [{"number": n, "key": <item or step key>, "text": {"en", "ar"}}]}

``rabt crm apply --format json`` prints ``{"kind": "rabt.crm.apply", "version": 1,
"status": "applied" | "nothing_to_do" | "failed", "done": [{"key", "action", "id"}],
"failed": null | {"key", "action", "error"}, "resume": null | <command that finishes
the run>, "ids": {"pipelines": {...}, "items": {<key>: {"kind", "id", "owned"}}},
"state_file": <path>, "plan": <the plan above>}``. ``ids.items`` lists every item the
state file records, so after a failure it shows what the run created before it stopped.

With ``--format json`` a failure before any of these documents is printed gives
``{"kind": "rabt.crm.error", "version": 1, "exit_code": n, "summary": <text>,
"problems": [{"location", "message", "fix"}]}`` on standard output, and the same
text on standard error.
"""

from __future__ import annotations

from typing import Any

from generator.crm.apply import ApplyResult
from generator.crm.compare import option_lines, show
from generator.crm.model import CrmPlan, PlanItem
from generator.crm.plan import FOREIGN_ACCOUNT
from generator.crm.state import CrmState
from generator.errors import RabtError
from generator.i18n import join_list, message
from generator.model import Lang

PLAN_KIND = "rabt.crm.plan"
APPLY_KIND = "rabt.crm.apply"
ERROR_KIND = "rabt.crm.error"
OUTPUT_VERSION = 1
_SIGNS = {"create": "+", "update": "~", "unchanged": "=", "manual": "!", "delete": "-",
          "kept": "·"}


def plan_data(plan: CrmPlan, endpoint: str) -> dict[str, Any]:
    """Return the plan as the documented JSON document."""
    return {
        "kind": PLAN_KIND,
        "version": OUTPUT_VERSION,
        "crm": plan.crm,
        "project": plan.project,
        "endpoint": endpoint,
        "prune": plan.prune,
        "account": plan.context.get("account"),
        "differs": plan.differs,
        "counts": {**plan.counts(), "manual_steps": len(plan.numbered_steps())},
        "items": [item.to_data() for item in plan.items],
        "manual_steps": [{"number": number, "key": key, "text": text.to_data()}
                         for number, (key, text) in enumerate(plan.numbered_steps(), 1)],
    }


def apply_data(plan: CrmPlan, endpoint: str, result: ApplyResult, state: CrmState,
               failed: dict[str, Any] | None = None,
               resume: str | None = None) -> dict[str, Any]:
    """Return an apply run as the documented JSON document.

    ``resume`` is the command that finishes a failed run, and null otherwise.
    """
    if failed:
        status = "failed"
    elif result.done:
        status = "applied"
    else:
        status = "nothing_to_do"
    return {
        "kind": APPLY_KIND,
        "version": OUTPUT_VERSION,
        "status": status,
        "done": [{"key": item.key, "action": item.action,
                  "id": state.item_id(item.key) or item.live_id} for item in result.done],
        "failed": failed,
        "resume": resume if failed else None,
        "ids": {**state.ids(), "items": {
            key: {"kind": entry.get("kind"), "id": entry.get("id"),
                  "owned": bool(entry.get("owned"))}
            for key, entry in sorted(state.items.items())}},
        "state_file": str(result.state_file) if result.state_file else None,
        "plan": plan_data(plan, endpoint),
    }


def _kind(kind: str, lang: Lang) -> str:
    return message(f"crm_kind_{kind}", lang)


def _item_line(item: PlanItem, lang: Lang) -> str:
    verb = message(f"crm_action_{item.action}", lang)
    where = f"{item.container}/{item.name}" if item.container else item.name
    label = item.label.get(lang)
    suffix = f"  ({label})" if label and label != item.name else ""
    return f"  {_SIGNS[item.action]} {verb} {_kind(item.kind, lang)} {where}{suffix}"


def format_plan(plan: CrmPlan, endpoint: str, lang: Lang = "en", *,
                for_apply: bool = False) -> str:
    """Render the plan as text: one line per change, unchanged items counted, steps numbered.

    With ``for_apply`` the last line counts the changes apply is about to make instead
    of naming ``rabt crm plan``'s exit code.
    """
    lines = [message("crm_plan_header", lang, crm=plan.crm, project=plan.project,
                     endpoint=endpoint), ""]
    lines += _account_notice(plan, lang)
    unchanged: dict[str, int] = {}
    for item in plan.items:
        if item.action == "unchanged":
            unchanged[item.kind] = unchanged.get(item.kind, 0) + 1
            continue
        if item.action == "manual" and not item.drift:
            continue  # listed with the numbered steps below
        lines.append(_item_line(item, lang))
        for change in item.changes:
            if change.field == "options":
                lines.append(f"      {message('crm_change_options', lang)}")
                lines += [f"        {line}"
                          for line in option_lines(change.old, change.new, lang)]
            else:
                lines.append(f"      {change.field}: {show(change.old)} → {show(change.new)}")
        if item.action == "kept":
            lines.append(f"      {message('crm_kept_hint', lang)}")
    if unchanged:
        counts = join_list([f"{_kind(kind, lang)} {count}" for kind, count in unchanged.items()],
                           lang)
        lines.append(f"  = {message('crm_unchanged_summary', lang, counts=counts)}")
    steps = plan.numbered_steps()
    if steps:
        lines += ["", message("crm_manual_header", lang)]
        lines += [f"  {number}. {text.get(lang)}" for number, (_, text) in enumerate(steps, 1)]
    totals = plan.counts()
    lines += ["", message("crm_plan_summary", lang, create=totals["create"],
                          update=totals["update"], unchanged=totals["unchanged"],
                          delete=totals["delete"], manual=len(steps))]
    if for_apply:
        lines.append(message("crm_apply_pending", lang, count=len(plan.pending)))
    elif plan.differs:
        lines.append(message("crm_plan_differs", lang))
    else:
        lines.append(message("crm_plan_clean_unchecked" if steps else "crm_plan_clean", lang))
    return "\n".join(lines)


def _account_notice(plan: CrmPlan, lang: Lang) -> list[str]:
    """Say why the state file is ignored when it records another account."""
    account = plan.context.get("account") or {}
    if account.get("status") not in FOREIGN_ACCOUNT:
        return []
    reason = "crm_account_other" if account["status"] == "other" else "crm_account_unknown"
    aside = f".rabt/crm-state.{account.get('recorded')}.json"
    return [message("crm_account_mismatch", lang),
            "  " + message(reason, lang, recorded=account.get("recorded"),
                           live=account.get("live")),
            "  " + message("crm_account_fix", lang, file=".rabt/crm-state.json", aside=aside),
            ""]


def format_done(item: PlanItem, state: CrmState, lang: Lang = "en") -> str:
    """Render one finished apply step, with the id the CRM returned."""
    item_id = state.item_id(item.key) or item.live_id
    id_text = f"  id={item_id}" if item_id and item.action != "delete" else ""
    return f"{_item_line(item, lang)}{id_text}"


def format_ids(state: CrmState, lang: Lang = "en") -> list[str]:
    """Render the pipeline and stage ids recorded in the state."""
    pipelines = state.ids()["pipelines"]
    if not pipelines:
        return []
    lines = [message("crm_ids_header", lang)]
    for key, pipeline in pipelines.items():
        lines.append(f"  {key}: {pipeline['id']}")
        lines += [f"    {stage}: {stage_id}" for stage, stage_id in pipeline["stages"].items()]
    return lines


def error_data(error: RabtError) -> dict[str, Any]:
    """Return a failed ``rabt crm`` run as the documented JSON error document."""
    return {
        "kind": ERROR_KIND,
        "version": OUTPUT_VERSION,
        "exit_code": error.exit_code,
        "summary": error.summary,
        "problems": [{"location": problem.location, "message": problem.message,
                      "fix": problem.fix} for problem in error.problems],
    }
