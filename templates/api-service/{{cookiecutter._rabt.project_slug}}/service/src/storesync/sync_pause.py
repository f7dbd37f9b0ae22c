"""The CRM pause as ``/readyz`` and ``/readyz/sync`` report it.

The flusher pauses every CRM call for a while when Zoho CRM's API credits of the
rolling 24 hours are used up (``credits``), when HubSpot's daily limit is reached
(``daily_limit``) or when the CRM rejects the token (``auth``). It shows the pause as
the gauge ``storesync_crm_paused_until_timestamp_seconds``, which reaches the web
process through the worker processes' metric snapshots (``storesync.metrics``). The
readiness endpoints read the same snapshots, so they see a pause of a flusher in any
process or, with Redis, on any machine, up to ``SNAPSHOT_INTERVAL_SECONDS`` late.

A pause never fails readiness: the intake still accepts and queues every delivery,
and the flusher resumes by itself when the pause ends. The body reports the state.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from .metrics import CRM_PAUSED_UNTIL_NAME

# Message per pause reason, with its cause and what ends it; ``{crm}`` is the CRM's name.
PAUSE_REASONS = {
    "credits": ("{crm}'s API credits of the rolling 24 hours are used up. Deliveries are "
                "still accepted and queued, and the flusher resumes by itself at `until`."),
    "daily_limit": ("{crm}'s daily API limit is reached. Deliveries are still accepted and "
                    "queued, and the flusher resumes by itself at `until`."),
    "auth": ("{crm} rejected the access token. Deliveries are still accepted and queued. "
             "Fix the token or the OAuth client settings; the flusher tries again at "
             "`until`."),
}
CRM_NAMES = {"hubspot": "HubSpot", "zoho": "Zoho CRM"}


def active_pauses(snapshots: Iterable[tuple[float, str]], now: float) -> dict[str, float]:
    """Return reason → paused-until time of the pauses that still run at ``now``.

    Args:
        snapshots: (time written, samples JSON) of every worker process, as
            ``storesync.metrics.SnapshotStore.read`` returns them.
        now: Seconds since the epoch.
    """
    found: dict[str, float] = {}
    for _, text in snapshots:
        for _name, labels, value in json.loads(text).get(CRM_PAUSED_UNTIL_NAME, []):
            reason = str(labels.get("reason", "unknown"))
            until = float(value)
            if until > now and until > found.get(reason, 0.0):
                found[reason] = until
    return found


def pause_status(snapshots: Iterable[tuple[float, str]], crm_target: str,
                 now: float) -> dict[str, Any]:
    """Return the ``crm_pause`` part of a readiness body.

    ``{"paused": false}`` while no pause runs. During a pause, the one that ends last
    is reported with its reason, its end as ISO 8601 UTC and in seconds from now, and a
    message. ``others`` lists the reasons of further pauses that run at the same time.
    """
    pauses = active_pauses(snapshots, now)
    if not pauses:
        return {"paused": False}
    reason, until = max(pauses.items(), key=lambda item: item[1])
    crm = CRM_NAMES.get(crm_target, crm_target)
    message = PAUSE_REASONS.get(reason, "{crm} calls are paused.").format(crm=crm)
    status: dict[str, Any] = {
        "paused": True, "reason": reason,
        "until": datetime.fromtimestamp(until, UTC).isoformat(timespec="seconds"),
        "seconds_left": int(until - now + 0.999), "message": message}
    others = sorted(name for name in pauses if name != reason)
    if others:
        status["others"] = others
    return status
