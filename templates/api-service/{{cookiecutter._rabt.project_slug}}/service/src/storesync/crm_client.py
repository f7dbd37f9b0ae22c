"""The interface the flusher uses of a CRM client, which HubSpot's and Zoho's clients provide.

Both raise the error classes of :mod:`storesync.hubspot` (``CrmUnavailable``,
``DailyLimitReached``, ``AuthFailed``, ``BatchRejected``), so the flusher's retry,
split, pause and dead-letter rules apply to either CRM unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from .hubspot import BatchResult


class CrmClient(Protocol):
    """Batch calls of up to 100 records with per-record results, and the deal pipelines."""

    calls: int

    def batch_upsert(self, obj: str, inputs: Sequence[Mapping[str, Any]]) -> BatchResult:
        """Create or update records matched by ``idProperty``; see the HubSpot client."""

    def batch_update(self, obj: str, inputs: Sequence[Mapping[str, Any]]) -> BatchResult:
        """Update records by their CRM ids."""

    def create_associations(self, from_obj: str, to_obj: str,
                            inputs: Sequence[Mapping[str, Any]]) -> BatchResult:
        """Link records: ``from`` and ``to`` ids, with the link's type or lookup field."""

    def pipelines(self, obj: str) -> list[dict[str, Any]]:
        """Return the pipelines of ``obj`` as ``{id, label, stages: [{id, label}]}``."""

    def close(self) -> None:
        """Close the HTTP connections."""
