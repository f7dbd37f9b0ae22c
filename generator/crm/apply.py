"""Apply a plan: creates, updates and prune deletes in dependency order, recorded as they go.

The order is property groups → properties (Zoho: custom fields) → pipelines →
stages → lists, then deletes in the reverse order. After every successful call
the state file is rewritten, so when a call fails apply stops at once, and the
state file, the error and the printed resume command tell exactly what was done.
Running apply again re-reads the CRM and finishes the rest; a second complete
run finds nothing to change.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator.arabic_counts import arabic_count
from generator.crm.http import CrmApiError
from generator.crm.hubspot import forbidden_scopes
from generator.crm.hubspot_scopes import PRIVATE_APPS_MENU
from generator.crm.model import CrmPlan, PlanItem
from generator.crm.plan import FOREIGN_ACCOUNT, CrmAdapter
from generator.crm.state import STATE_FILE, CrmState, save_state, state_path
from generator.errors import EXIT_FAILURE, InputError, Problem, RabtError
from generator.i18n import join_list, message
from generator.model import Lang

# Kinds whose ids are worth keeping even when apply did not touch them.
_RECORDED_KINDS = frozenset({"pipeline", "stage", "list", "custom_field"})


@dataclass
class ApplyResult:
    """What one apply run did."""

    done: list[PlanItem] = field(default_factory=list)
    state_file: Path | None = None
    ids: dict[str, Any] = field(default_factory=dict)


class ApplyFailed(RabtError):
    """A CRM call failed halfway through apply (exit code 1)."""

    def __init__(self, summary: str, problems: list[Problem], result: ApplyResult,
                 failed: PlanItem, error: CrmApiError, resume: str) -> None:
        super().__init__(summary, problems, EXIT_FAILURE)
        self.result = result
        self.failed = failed
        self.error = error
        self.resume = resume


def resume_command(project: Path, prune: bool, lang: Lang = "en", *, yes: bool = False,
                   output_format: str = "text") -> str:
    """Return the command that finishes an apply that stopped, with the run's own options.

    It repeats ``--yes``, ``--prune``, ``--format json`` and a non-default ``--lang`` only
    when the run used them, and quotes the folder for a shell.
    """
    command = f"rabt crm apply {shlex.quote(str(project))}"
    if yes:
        command += " --yes"
    if prune:
        command += " --prune"
    if output_format != "text":
        command += f" --format {output_format}"
    if lang != "en":
        command += f" --lang {lang}"
    return command


def apply_plan(project: Path, plan: CrmPlan, adapter: CrmAdapter, state: CrmState, *,
               lang: Lang = "en", yes: bool = False, output_format: str = "text",
               on_done: Callable[[PlanItem], None] | None = None) -> ApplyResult:
    """Carry out ``plan`` against ``adapter`` and record every result in ``state``.

    Args:
        project: The project folder; the state file is ``.rabt/crm-state.json`` in it.
        plan: The plan from ``build_plan``, read just before.
        adapter: The connected CRM adapter the plan was built with.
        state: The state the plan was built with; updated and saved as apply goes.
        lang: Language of the failure message.
        yes: True when the run was started with ``--yes``, so the resume command repeats it.
        output_format: The run's ``--format``, which the resume command repeats when it is json.
        on_done: Called after each item succeeds, to print progress.

    Raises:
        ApplyFailed: A call failed; the state file records everything done before it.
        InputError: The state file belongs to another account, or the connected
            account could not be read (nothing is changed).
    """
    account = plan.context.get("account") or {}
    if account.get("status") in FOREIGN_ACCOUNT:
        raise other_account_error(project, account, lang)
    result = ApplyResult(state_file=state_path(project))
    state.endpoint = adapter.endpoint
    if account.get("live"):
        state.account = str(account["live"])
    state.last_apply = {"started_at": state.clock(), "status": "running", "prune": plan.prune}
    _record_unchanged(plan, state)
    save_state(project, state)
    for item in plan.pending:
        try:
            _apply_item(adapter, item, state)
        except CrmApiError as error:
            state.last_apply.update(status="failed", failed_item=item.key,
                                    error=str(error), finished_at=state.clock())
            save_state(project, state)
            command = resume_command(project, plan.prune, lang, yes=yes,
                                     output_format=output_format)
            raise _failure(plan, item, error, result, command, lang) from error
        save_state(project, state)
        result.done.append(item)
        if on_done is not None:
            on_done(item)
    state.last_apply.update(status="complete", finished_at=state.clock(),
                            changed=len(result.done))
    save_state(project, state)
    result.ids = state.ids()
    return result


def other_account_error(project: Path, account: dict[str, Any], lang: Lang) -> InputError:
    """Return the error that stops apply when the state file is not this account's."""
    path = state_path(project)
    aside = f"{STATE_FILE[:-len('.json')]}.{account.get('recorded')}.json"
    reason = ("crm_account_other" if account.get("status") == "other"
              else "crm_account_unknown")
    return InputError(message("crm_account_mismatch", lang), [
        Problem(str(path), message(reason, lang, recorded=account.get("recorded"),
                                   live=account.get("live")),
                message("crm_account_fix", lang, file=STATE_FILE, aside=aside))])


def _apply_item(adapter: CrmAdapter, item: PlanItem, state: CrmState) -> None:
    if item.action == "create":
        adapter.create(item, state)
    elif item.action == "update":
        adapter.update(item, state)
    elif item.action == "delete":
        adapter.delete(item, state)


def _record_unchanged(plan: CrmPlan, state: CrmState) -> None:
    """Record the ids of matched items, so the state lists every pipeline and stage id."""
    for item in plan.items:
        if item.action not in ("unchanged", "manual") or not item.live_id:
            continue
        if item.kind not in _RECORDED_KINDS or state.item_id(item.key) == item.live_id:
            continue
        extra: dict[str, Any] = {"name": item.name, "container": item.container}
        if item.kind == "stage":
            extra.update(parent=item.parent, stage_key=item.name,
                         pipeline_id=state.item_id(item.parent) if item.parent else None)
        if item.kind == "pipeline":
            extra["label"] = item.label.en
        state.record(item.key, item.kind, item.live_id, owned=False,
                     **{key: value for key, value in extra.items() if value is not None})


def _failure(plan: CrmPlan, item: PlanItem, error: CrmApiError, result: ApplyResult,
             command: str, lang: Lang) -> ApplyFailed:
    done = join_list([entry.key for entry in result.done], lang) or message("crm_nothing", lang)
    if plan.crm == "hubspot" and error.status == 403:
        missing, scopes = forbidden_scopes(error)
        name = ("crm_apply_forbidden_resume_fix" if missing
                else "crm_apply_forbidden_other_resume_fix")
        fix = message(name, lang, text=error.text, scopes=scopes, command=command,
                      menu=PRIVATE_APPS_MENU[lang])
    else:
        fix = message("crm_apply_resume_fix", lang, command=command)
    problems = [
        Problem(item.key, message("crm_apply_call_failed", lang,
                                  action=message(f"crm_operation_{item.action}", lang),
                                  error=str(error)), fix),
        Problem(str(result.state_file), message("crm_apply_done_before", lang,
                                                  count=len(result.done), items=done)),
    ]
    summary = message("crm_apply_failed", lang, done=len(result.done),
                      total=count_changes(len(plan.pending), lang))
    return ApplyFailed(summary, problems, result, item, error, command)


def count_changes(count: int, lang: Lang) -> str:
    """Write ``count`` with the noun "change" in the form ``lang`` needs after a number."""
    if lang == "ar":
        return arabic_count(count, "change")
    return f"{count} change" if count == 1 else f"{count} changes"
