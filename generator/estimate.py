"""Effort and set-up cost ranges per path, read from ``data/paths.yaml``.

The figures are planning estimates in working days and SAR, not quotes.
"""

from __future__ import annotations

from generator.model import Bilingual, Estimate
from generator.resources import load_data


def estimate_for(path: str, crm: str) -> Estimate:
    """Return the estimate for ``path``, with the path's and the CRM's subscription notes."""
    data = load_data("paths")
    entry = data["paths"][path]
    path_note = entry["subscription"]
    crm_note = data["crm_subscription"][crm]
    days_min, days_max = entry["days"]
    sar_min, sar_max = entry["setup_sar"]
    return Estimate(
        path=path,
        days_min=days_min,
        days_max=days_max,
        setup_sar_min=sar_min,
        setup_sar_max=sar_max,
        subscription=Bilingual(
            en=f"{path_note['en']} {crm_note['en']}",
            ar=f"{path_note['ar']} {crm_note['ar']}",
        ),
    )
