"""One ``rabt crm`` run: the project's desired state, its state file and a connected adapter."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from generator.crm.desired import load_desired_state
from generator.crm.http import CallOptions, CrmApiError
from generator.crm.hubspot import forbidden_scopes
from generator.crm.hubspot_scopes import PRIVATE_APPS_MENU
from generator.crm.model import CrmPlan
from generator.crm.plan import CrmAdapter, build_plan, connect
from generator.crm.state import CrmState, load_state
from generator.errors import EXIT_FAILURE, Problem, RabtError
from generator.i18n import message
from generator.model import Lang

CRM_LABELS = {"hubspot": "HubSpot", "zoho": "Zoho CRM"}
# The connector path's setup guide. Its section 2 explains each HubSpot scope.
CONNECTOR_SETUP_GUIDE = "docs/connector-setup.md"


@dataclass
class CrmSession:
    """Everything a plan or apply run needs, read once."""

    project: Path
    desired: dict[str, Any]
    state: CrmState
    adapter: CrmAdapter
    lang: Lang

    def plan(self, prune: bool = False) -> CrmPlan:
        """Read the CRM and return the plan.

        Raises:
            RabtError: A CRM call failed (exit code 1).
            InputError: The CRM rejected the credentials (exit code 2).
        """
        with api_failures(self.desired["crm"], self.lang):
            return build_plan(self.project, self.desired, self.adapter, self.state,
                              prune=prune, lang=self.lang)


# The kind of the calls inside ``api_failures``. The plan stage of ``rabt crm plan`` and
# ``apply`` reads the CRM, and the apply stage writes to it.
CallKind = Literal["read", "write"]


@contextmanager
def api_failures(crm: str, lang: Lang, kind: CallKind = "read") -> Iterator[None]:
    """Turn a ``CrmApiError`` into a user-facing error with exit code 1."""
    try:
        yield
    except CrmApiError as error:
        raise RabtError(message("crm_api_failed", lang, crm=CRM_LABELS.get(crm, crm)), [
            Problem(f"{error.method} {error.base_url}{error.path}", str(error).split(": ", 1)[-1],
                    api_failure_fix(crm, error, lang, kind))], EXIT_FAILURE) from error


def api_failure_fix(crm: str, error: CrmApiError, lang: Lang, kind: CallKind = "read") -> str:
    """Return the fix for a failed call, and for a HubSpot 403 the scopes it may need.

    HubSpot rejects a token without a scope with the category ``MISSING_SCOPES`` and
    lists the scopes, which the fix names. Other 403s (a setting the account's plan or
    user cannot change, for example) get a neutral fix, worded for a read or a write by
    ``kind``, that names the call's scopes only as one possible cause.
    """
    if crm == "hubspot" and error.status == 403:
        missing, scopes = forbidden_scopes(error)
        menu = PRIVATE_APPS_MENU[lang]
        if missing:
            return message("crm_forbidden_fix_hubspot", lang, scopes=scopes, menu=menu)
        return message(f"crm_forbidden_{kind}_fix_hubspot", lang, text=error.text,
                       scopes=scopes, menu=menu)
    return message("crm_api_failed_fix", lang)


@contextmanager
def open_session(project: Path, environ: Mapping[str, str], lang: Lang = "en",
                 options: CallOptions | None = None) -> Iterator[CrmSession]:
    """Load the project's desired state and state file, and connect to its CRM.

    Raises:
        InputError: The desired state or state file is invalid, or a credential is
            missing or rejected (exit code 2).
        RabtError: The CRM could not be reached (exit code 1).
    """
    desired = load_desired_state(project, lang)
    state = load_state(project, desired["crm"], lang)
    with api_failures(desired["crm"], lang):
        adapter = connect(desired["crm"], environ, lang, options, desired,
                          setup_guide=(project / CONNECTOR_SETUP_GUIDE).is_file())
    try:
        yield CrmSession(project, desired, state, adapter, lang)
    finally:
        adapter.close()
