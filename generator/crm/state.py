"""``.rabt/crm-state.json``: the ids the CRM returned and what Rabt created, written as apply goes.

The file holds no secret and no customer data: item keys, CRM ids, whether Rabt
created the item, and the outcome of the last apply. It is rewritten atomically
after every successful call, so a run that fails halfway leaves a true record of
what was done. Only items recorded with ``owned: true`` may be deleted by
``--prune``. The ``ids`` section gives the pipeline and stage ids that the service
and the iPaaS workflows read.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from generator.errors import InputError, Problem
from generator.i18n import message, parse_error_text
from generator.model import Lang

STATE_FILE = ".rabt/crm-state.json"
STATE_VERSION = 1


def utc_now() -> str:
    """Return the current UTC time as ISO 8601 text with seconds."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


@dataclass
class CrmState:
    """What Rabt knows about the items it touched in one CRM account."""

    crm: str
    endpoint: str = ""
    # The CRM's own id of the account the items belong to: HubSpot's portal id or the
    # Zoho org id. Every HubSpot account shares one API host, so the endpoint alone
    # cannot tell two accounts apart.
    account: str = ""
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    last_apply: dict[str, Any] | None = None
    clock: Callable[[], str] = utc_now

    def record(self, key: str, kind: str, item_id: str | None, *, owned: bool,
               **extra: Any) -> None:
        """Record the id of item ``key``; an item once owned stays owned."""
        previous = self.items.get(key, {})
        entry = {**previous, "kind": kind, "id": item_id,
                 "owned": bool(previous.get("owned")) or owned, **extra}
        entry.setdefault("recorded_at", self.clock())
        entry["updated_at"] = self.clock()
        self.items[key] = entry

    def forget(self, key: str) -> None:
        """Drop item ``key`` (after prune deleted it)."""
        self.items.pop(key, None)

    def item_id(self, key: str) -> str | None:
        """Return the recorded id of item ``key``, if any."""
        value = self.items.get(key, {}).get("id")
        return str(value) if value is not None else None

    def owned(self, key: str) -> bool:
        """Return whether the state records item ``key`` as created by Rabt."""
        return bool(self.items.get(key, {}).get("owned"))

    def ids(self) -> dict[str, Any]:
        """Return the pipeline and stage ids by key, for the service and iPaaS workflows."""
        pipelines: dict[str, Any] = {}
        for key, entry in sorted(self.items.items()):
            if entry["kind"] == "pipeline":
                pipelines.setdefault(key, {"id": None, "label": None, "stages": {}})
                pipelines[key].update(id=entry["id"], label=entry.get("label"))
            elif entry["kind"] == "stage" and entry.get("parent"):
                parent = pipelines.setdefault(entry["parent"],
                                              {"id": None, "label": None, "stages": {}})
                parent["stages"][entry.get("stage_key", key)] = entry["id"]
        return {"pipelines": pipelines}

    def to_data(self) -> dict[str, Any]:
        """Return the JSON document of the state file."""
        return {
            "version": STATE_VERSION,
            "crm": self.crm,
            "endpoint": self.endpoint,
            "account": self.account or None,
            "ids": self.ids(),
            "items": dict(sorted(self.items.items())),
            "last_apply": self.last_apply,
        }


def state_path(project: Path) -> Path:
    """Return the state file of the project folder ``project``."""
    return project / STATE_FILE


def load_state(project: Path, crm: str, lang: Lang = "en") -> CrmState:
    """Read the project's state file, or return an empty state when there is none.

    Raises:
        InputError: The file does not parse, or it was written for another CRM.
    """
    path = state_path(project)
    if not path.is_file():
        return CrmState(crm=crm)
    summary = message("crm_state_invalid", lang, path=path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise InputError(summary, [Problem(str(path), parse_error_text(error, lang),
                                           message("crm_state_fix", lang))]) from error
    if not isinstance(data, dict) or not isinstance(data.get("items"), dict):
        raise InputError(summary, [Problem(str(path), message("crm_state_shape", lang),
                                           message("crm_state_fix", lang))])
    if data.get("crm") != crm:
        raise InputError(summary, [Problem(str(path), message(
            "crm_state_other_crm", lang, recorded=data.get("crm"), crm=crm),
            message("crm_state_fix", lang))])
    return CrmState(crm=crm, endpoint=str(data.get("endpoint") or ""),
                    account=str(data.get("account") or ""), items=dict(data["items"]),
                    last_apply=data.get("last_apply"))


def save_state(project: Path, state: CrmState) -> Path:
    """Write the state file atomically (a temporary file renamed over the old one)."""
    path = state_path(project)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(state.to_data(), ensure_ascii=False, indent=2) + "\n"
    handle, temporary = tempfile.mkstemp(prefix=".crm-state-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
