"""Placeholder until the n8n files are built."""

from __future__ import annotations

from typing import Any

from generator.model import Answers, Plan


def files(answers: Answers, plan: Plan, spec: dict[str, dict[str, Any]],
          desired_state: dict[str, Any]) -> dict[str, bytes]:
    """Return this module's files by project-relative path."""
    return {}
