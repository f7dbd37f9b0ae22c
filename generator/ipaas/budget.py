"""The monthly operations budget of an iPaaS project, per flow and per platform.

From the answers (monthly orders, SKUs, support agents) and the assumptions in
``generator/data/ipaas/plans.yaml`` it estimates how many runs each flow has a
month, and what those runs cost on each platform: Make counts operations (one per
module run), n8n Cloud counts executions (one per run) and Zapier counts tasks
(one per action step). Make's counts come from the generated blueprints, so the
budget describes the files the project ships. Every number is an estimate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from generator.ipaas import make
from generator.ipaas.flows import FlowSet, build_flows
from generator.model import Answers, Plan
from generator.resources import load_data

DAYS_PER_MONTH = 30
# Upper bound for the break-even search, in orders a month.
MAX_BREAK_EVEN_ORDERS = 200_000
BREAK_EVEN_STEP = 250


@dataclass(frozen=True)
class FlowVolume:
    """Runs a month of one flow, and the records its iterators handle a month."""

    key: str
    runs: float
    runs_formula: str
    items: float = 0.0
    items_formula: str = ""


@dataclass(frozen=True)
class ModuleCount:
    """Make modules that run once per scenario run, and once per iterated record."""

    per_run: int
    per_item: int
    trigger: int
    feeders: int


def _count_modules(modules: list[dict[str, Any]], inside: bool = False) -> ModuleCount:
    per_run = per_item = feeders = trigger = 0
    for module in modules:
        name = module["module"]
        if name == "builtin:BasicRouter":
            for route in module.get("routes", []):
                sub = _count_modules(route["flow"], inside)
                per_run += sub.per_run
                per_item += sub.per_item
                feeders += sub.feeders
            continue
        if name == "gateway:CustomWebHook":
            trigger += 1
        if name == "builtin:BasicFeeder":
            feeders += 1
            per_run += 1
            inside = True
            continue
        if inside:
            per_item += 1
        else:
            per_run += 1
    return ModuleCount(per_run=per_run, per_item=per_item, trigger=trigger, feeders=feeders)


def _assumptions() -> dict[str, float]:
    values: dict[str, float] = load_data("ipaas/plans")["assumptions"]
    return values


def _volumes(answers: Answers, flow_set: FlowSet) -> dict[str, FlowVolume]:
    """Return the monthly runs and iterated records of each flow, with their formulas."""
    a = _assumptions()
    orders = answers.monthly_orders
    days = DAYS_PER_MONTH
    repeat = a["repeat_customer_share"]
    table = {
        "contact-sync": FlowVolume("contact-sync", orders * a["contact_events_per_order"],
                                   f"orders * {a['contact_events_per_order']}"),
        "order-sync": FlowVolume("order-sync", orders * a["order_events_per_order"],
                                 f"orders * {a['order_events_per_order']}",
                                 orders * a["order_events_per_order"] * a["line_items_per_order"],
                                 f"runs * {a['line_items_per_order']} line items"),
        "product-sync": FlowVolume("product-sync", answers.sku_count * a["product_updates_per_sku"],
                                   f"SKUs * {a['product_updates_per_sku']}"),
        "event-sync": FlowVolume("event-sync", orders * a["behaviour_events_per_order"],
                                 f"orders * {a['behaviour_events_per_order']}"),
        "abandoned-checkout": FlowVolume(
            "abandoned-checkout", orders * a["checkout_events_per_order"],
            f"orders * {a['checkout_events_per_order']}",
            orders * a["abandoned_checkouts_per_order"],
            f"orders * {a['abandoned_checkouts_per_order']} abandoned checkouts"),
        "post-purchase": FlowVolume("post-purchase", days, f"{days} daily runs",
                                    orders, "orders (each buyer is due once per step)"),
        "win-back": FlowVolume("win-back", days, f"{days} daily runs",
                               orders * (1 - repeat),
                               f"orders * {round(1 - repeat, 2)} (buyers who do not reorder)"),
        "consent-sync": FlowVolume("consent-sync", orders * a["consent_events_per_order"],
                                   f"orders * {a['consent_events_per_order']}"),
        "ticket-sync": FlowVolume(
            "ticket-sync",
            answers.support_agents * a["tickets_per_agent"] * a["ticket_updates_per_ticket"],
            f"agents * {a['tickets_per_agent']} * {a['ticket_updates_per_ticket']}"),
        "reconciliation": FlowVolume("reconciliation", 24 * days, f"24 * {days} hourly runs",
                                     orders * a["order_events_per_order"],
                                     f"orders * {a['order_events_per_order']} replayed changes"),
    }
    if flow_set.get("contact-sync").trigger.kind == "schedule":
        table["contact-sync"] = FlowVolume("contact-sync", days, f"{days} daily runs",
                                           orders * a["contact_events_per_order"],
                                           f"orders * {a['contact_events_per_order']}")
    present = {key: volume for key, volume in table.items() if key in flow_set.keys}
    failures = sum(volume.runs for volume in present.values()) * a["failure_rate"]
    present["error-alert"] = FlowVolume("error-alert", failures,
                                        f"all runs * {a['failure_rate']} failure rate")
    return present


def _runner_volume(answers: Answers, volume: FlowVolume) -> FlowVolume:
    a = _assumptions()
    runs = a["scheduled_runs_per_day_runner"] * DAYS_PER_MONTH
    return FlowVolume(f"{volume.key}-runner", runs,
                      f"{int(a['scheduled_runs_per_day_runner'])} * {DAYS_PER_MONTH} runs",
                      volume.items, volume.items_formula)


def _platform_units(volume: FlowVolume, count: ModuleCount, scheduled: bool) -> dict[str, Any]:
    """Return the monthly units of one Make scenario on Make, n8n Cloud and Zapier."""
    make_units = volume.runs * count.per_run + volume.items * count.per_item
    zapier_per_run = count.per_run - count.trigger - count.feeders
    zapier_units = volume.runs * zapier_per_run + volume.items * count.per_item
    n8n_units = DAYS_PER_MONTH if scheduled and volume.runs <= DAYS_PER_MONTH else volume.runs
    return {
        "make": math.ceil(make_units), "zapier": math.ceil(zapier_units),
        "n8n_cloud": math.ceil(n8n_units),
        "make_formula": f"runs * {count.per_run}"
                        + (f" + records * {count.per_item}" if count.per_item else ""),
        "zapier_formula": f"runs * {zapier_per_run}"
                          + (f" + records * {count.per_item}" if count.per_item else ""),
    }


def flow_budget(answers: Answers, plan: Plan, spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Return one row per Make scenario with its runs, records and units on each platform."""
    flow_set = build_flows(answers, plan, spec)
    volumes = _volumes(answers, flow_set)
    rows = []
    for stem, blueprint in make.blueprints(flow_set).items():
        base = stem.removesuffix("-runner")
        volume = volumes[base]
        if stem.endswith("-runner"):
            volume = _runner_volume(answers, volume)
        elif base in {"abandoned-checkout"}:
            volume = FlowVolume(volume.key, volume.runs, volume.runs_formula)
        flow = flow_set.get(base)
        count = _count_modules(blueprint["flow"])
        scheduled = flow.trigger.kind == "schedule" or stem.endswith("-runner")
        units = _platform_units(volume, count, scheduled)
        if base == "abandoned-checkout" and stem.endswith("-runner"):
            units["n8n_cloud"] = 0  # on n8n the webhook execution waits; no runner exists
        rows.append({"key": stem, "title_en": flow.title.en, "title_ar": flow.title.ar,
                     "runs": math.ceil(volume.runs), "runs_formula": volume.runs_formula,
                     "records": math.ceil(volume.items), "records_formula": volume.items_formula,
                     **units})
    return rows


def _plan_cost_usd(platform: Mapping[str, Any], units: int) -> dict[str, Any]:
    """Return the cheapest plan for ``units`` a month, with its monthly price in USD."""
    best: dict[str, Any] | None = None
    for entry in platform["plans"]:
        limit = entry["units"]
        price = float(entry["price_usd"])
        if limit is not None and units > limit:
            if not platform.get("extra_units_priced_at_plan_rate") or price == 0:
                continue
            price = price * units / limit
        if best is None or price < best["price_usd"]:
            best = {"plan": entry["name"], "price_usd": round(price, 2),
                    "confirmed": bool(entry["confirmed"]), "source": entry["source"],
                    "included": limit}
    if best is None:
        top = platform["plans"][-1]
        return {"plan": f"{top['name']} or a custom contract", "price_usd": None,
                "confirmed": bool(top["confirmed"]), "source": top["source"],
                "included": top["units"]}
    return best


def totals(rows: list[dict[str, Any]]) -> dict[str, int]:
    """Return the monthly units on each platform, summed over the flows."""
    return {name: sum(int(row[name]) for row in rows) for name in ("make", "n8n_cloud", "zapier")}


def recommendations(units: Mapping[str, int]) -> list[dict[str, Any]]:
    """Return the recommended plan and monthly cost per platform for these units."""
    data = load_data("ipaas/plans")
    rate = float(data["usd_to_sar"])
    result = []
    for name, platform in data["platforms"].items():
        used = units.get(name, 0) if name != "n8n_self_hosted" else units.get("n8n_cloud", 0)
        choice = _plan_cost_usd(platform, used)
        sar = None if choice["price_usd"] is None else round(choice["price_usd"] * rate)
        result.append({"platform": name, "unit": platform["unit"], "units": used,
                       "counting_en": platform["counting"]["en"],
                       "counting_ar": platform["counting"]["ar"],
                       **choice, "price_sar": sar})
    return result


def break_even_orders(answers: Answers, plan: Plan, spec: Mapping[str, Any],
                      platform: str) -> int | None:
    """Return the monthly orders from which the API path costs less over the horizon.

    Both sides add set-up (the midpoint of ``paths.yaml``'s range) to the monthly
    running cost over ``api_path.horizon_months``: the iPaaS subscription on
    ``platform`` against the API service's hosting and upkeep. None means the
    iPaaS path stays cheaper up to ``MAX_BREAK_EVEN_ORDERS``.
    """
    data = load_data("ipaas/plans")
    paths = load_data("paths")["paths"]
    months = int(data["api_path"]["horizon_months"])
    api_total = sum(paths["api"]["setup_sar"]) / 2 + months * data["api_path"]["monthly_run_sar"]
    ipaas_setup = sum(paths["ipaas"]["setup_sar"]) / 2
    per_order = _units_per_order(answers, plan, spec, platform)
    fixed = per_order["fixed"]
    for orders in range(BREAK_EVEN_STEP, MAX_BREAK_EVEN_ORDERS + 1, BREAK_EVEN_STEP):
        units = math.ceil(fixed + per_order["per_order"] * orders)
        choice = _plan_cost_usd(data["platforms"][platform], units)
        if choice["price_usd"] is None:
            return orders
        monthly_sar = choice["price_usd"] * float(data["usd_to_sar"])
        if ipaas_setup + months * monthly_sar >= api_total:
            return orders
    return None


def _units_per_order(answers: Answers, plan: Plan, spec: Mapping[str, Any],
                     platform: str) -> dict[str, float]:
    """Fit units = fixed + per_order * orders from two order volumes (the budget is linear)."""
    low = totals(flow_budget(_with_orders(answers, 1000), plan, spec))[platform]
    high = totals(flow_budget(_with_orders(answers, 2000), plan, spec))[platform]
    per_order = (high - low) / 1000
    return {"fixed": low - per_order * 1000, "per_order": per_order}


def _with_orders(answers: Answers, orders: int) -> Answers:
    from dataclasses import replace

    return replace(answers, monthly_orders=orders)


def ipaas_context(answers: Answers, plan: Plan, spec: Mapping[str, Any]) -> dict[str, Any]:
    """Return the template context of the iPaaS documents: flows, sheets and budget."""
    from generator.ipaas import buildsheets

    rows = flow_budget(answers, plan, spec)
    units = totals(rows)
    data = load_data("ipaas/plans")
    from generator.ipaas import n8n

    return {
        "flows": buildsheets.sheet_context(build_flows(answers, plan, spec)),
        "make": buildsheets.make_context(plan, build_flows(answers, plan, spec)),
        "n8n": n8n.setup_context(answers, plan, spec),
        "budget": {
            "rows": rows, "totals": units, "plans": recommendations(units),
            "assumptions": data["assumptions"], "checked_on": data["checked_on"],
            "usd_to_sar": data["usd_to_sar"], "api": data["api_path"],
            "break_even": {name: break_even_orders(answers, plan, spec, name)
                           for name in ("make", "zapier")},
            "monthly_orders": answers.monthly_orders,
        },
    }


def files(answers: Answers, plan: Plan, spec: dict[str, dict[str, Any]],
          desired_state: dict[str, Any]) -> dict[str, bytes]:
    """Return no data files: the budget documents are templates fed by ``ipaas_context``."""
    return {}
