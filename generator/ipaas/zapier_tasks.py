"""Zapier tasks per run and per record, counted from the Zap steps the build sheet lists.

Zapier bills one task for each action step that runs successfully; the trigger,
Filter by Zapier and Paths by Zapier cost none. The budget reads the same rows
that the Zapier build sheet prints, so it bills exactly the Zaps the engineer
builds: one Zap per flow, with Delay by Zapier inside the run where Make needs a
scheduled runner.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from generator.ipaas.flows import Flow, walk_steps
from generator.ipaas.zapier_steps import FILTER, LOOPING, PATHS

# Steps that Zapier does not bill: Zapier's help names triggers, filters and paths.
# NOTE: whether Formatter, Delay, Looping and Storage steps are billed was not
# confirmed. They count one task each, so the estimate is an upper bound there.
FREE_TOOLS = frozenset({FILTER, PATHS})
# The step after which a waiting Zap handles only the flow's records: the checkouts
# still without an order, and the orders that were fulfilled.
NARROWS_AFTER = {"abandoned-checkout": "check_order", "post-purchase": "filter_fulfilled"}


@dataclass(frozen=True)
class ZapTasks:
    """Tasks of one Zap: per run of its trigger, and per record after the narrowing step."""

    per_run: int
    per_record: int


def _billed(actions: list[Mapping[str, Any]]) -> int:
    return sum(1 for action in actions if action["tool"] not in FREE_TOOLS)


def _route_rows(rows: list[dict[str, Any]], start: int, depth: int) -> tuple[
        dict[str, list[dict[str, Any]]], int]:
    """Return the rows of each path under the branch before ``start``, and the next index."""
    routes: dict[str, list[dict[str, Any]]] = {}
    index = start
    label = ""
    while index < len(rows) and rows[index]["depth"] > depth:
        if rows[index]["depth"] == depth + 1:
            label = rows[index]["path"]
        routes.setdefault(label, []).append(rows[index])
        index += 1
    return routes, index


def _count(rows: list[dict[str, Any]], depth: int, per_record: bool, narrows_after: str | None,
           exclusive: frozenset[str]) -> tuple[int, int]:
    """Return the tasks per run and per record of ``rows``, all at ``depth`` or deeper."""
    run = record = 0
    index = 0
    while index < len(rows):
        row = rows[index]
        index += 1
        for action in row["zapier"]:
            if action["tool"] in FREE_TOOLS:
                continue
            if per_record:
                record += 1
            else:
                run += 1
            # Looping by Zapier runs every later step of the Zap once per item.
            per_record = per_record or action["tool"] == LOOPING
        per_record = per_record or row["key"] == narrows_after
        if row["kind"] != "branch":
            continue
        routes, index = _route_rows(rows, index, depth)
        counts = [_count(route, depth + 1, per_record, narrows_after, exclusive)
                  for route in routes.values()]
        if not counts:
            continue
        if row["key"] in exclusive:
            # One path runs per record; the longer one is billed.
            longest = max(counts, key=lambda pair: (pair[1], pair[0]))
            run, record = run + longest[0], record + longest[1]
        else:
            run += sum(pair[0] for pair in counts)
            record += sum(pair[1] for pair in counts)
    return run, record


def zap_tasks(flow: Flow, sheet_flow: Mapping[str, Any]) -> ZapTasks:
    """Return the tasks of the Zap that the build sheet builds for ``flow``.

    ``sheet_flow`` is the flow's row from ``buildsheets.sheet_context``. A webhook
    Zap adds its signature Code step to every run. A branch whose paths exclude
    each other (an order exists, or none does) bills its longer path. Every other
    branch bills all its paths, because each path's rule can hold in the same run.
    """
    exclusive = frozenset(step.key for step in walk_steps(flow.steps)
                          if step.kind == "branch" and step.params.get("keys"))
    run, record = _count(list(sheet_flow["steps"]), 0, False, NARROWS_AFTER.get(flow.key),
                         exclusive)
    if sheet_flow.get("zapier_signature"):
        run += 1
    return ZapTasks(per_run=run, per_record=record)
