"""The monthly operations budget of an iPaaS project, per flow and per platform.

From the answers (monthly orders, SKUs, support agents) and the assumptions in
``generator/data/ipaas/plans.yaml`` it estimates how many runs each flow has a
month, and what those runs cost on each platform: Make counts operations (one per
module run), n8n Cloud counts executions (one per run) and Zapier counts tasks
(one per action step). Make's counts come from the generated blueprints and
Zapier's from the Zap steps of the build sheet, so the budget describes the files
the project ships. Every number is an estimate.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from generator.arabic_counts import arabic_count
from generator.ipaas import make
from generator.ipaas.flows import (
    ABANDONED_CHECK_EVERY_MINUTES,
    DEDUPE_TTL_DAYS,
    RECONCILE_EVERY_MINUTES,
    SLA_CHECK_EVERY_MINUTES,
    FlowSet,
    build_flows,
)
from generator.ipaas.make_consent import CONSENT_ROUTER_NAME
from generator.ipaas.make_contact import CONTACT_ROUTER_NAME
from generator.ipaas.make_outcomes import BATCH_CHECK_ROUTER_NAME, FAILED_ROUTE_NAME
from generator.ipaas.zapier_tasks import ZapTasks, zap_tasks
from generator.model import Answers, Bilingual, Plan
from generator.resources import load_data

DAYS_PER_MONTH = 30
MINUTES_PER_DAY = 24 * 60
POST_PURCHASE_FLOW = "post-purchase"
# The row of the order-sync runs that the reconciliation's replays start.
REPLAY_ROW = "order-sync-replays"
# The row of the scheduled first-response check of the support tickets.
SLA_CHECK_ROW = "ticket-sync-sla-check"
# The CRMs whose n8n ticket workflow has the scheduled first-response check.
SLA_CHECK_CRMS = frozenset({"hubspot", "zoho"})
# Flows whose webhook run waits hours or days on n8n, where Make splits off a runner.
WAITING_FLOWS = frozenset({"abandoned-checkout", POST_PURCHASE_FLOW})
# Upper bound for the break-even search, in orders a month.
MAX_BREAK_EVEN_ORDERS = 200_000
# Break-even volumes are rounded to this many orders a month.
BREAK_EVEN_STEP = 10
# The platforms that bill per unit, in the order the budget lists them; self-hosted n8n
# costs its server whatever the volume.
METERED_PLATFORMS = ("make", "n8n_cloud", "zapier")
# The Arabic formulas use the multiplication sign, the English ones an asterisk.
TIMES = "\N{MULTIPLICATION SIGN}"


@dataclass(frozen=True)
class FlowVolume:
    """Runs a month of one flow, and the records its iterators handle a month."""

    key: str
    runs: float
    runs_formula: Bilingual
    items: float = 0.0
    items_formula: Bilingual = field(default_factory=lambda: Bilingual("", ""))


@dataclass(frozen=True)
class ModuleCount:
    """Make modules that run once per scenario run, and once per iterated record.

    ``feeders`` are the iterators counted in ``per_run`` and ``item_feeders`` those
    counted in ``per_item``; Zapier bills neither.
    """

    per_run: int
    per_item: int
    trigger: int
    feeders: int
    item_feeders: int = 0


def _first_filter_name(flow: list[dict[str, Any]]) -> str:
    """Return the filter name on the first module of a route, looking into a leading router.

    Make takes no filter on a router, so the builder puts a route's filter on the
    first module of each of the router's own routes.
    """
    first = flow[0] if flow else {}
    if first.get("module") == "builtin:BasicRouter" and first.get("routes"):
        return _first_filter_name(first["routes"][0]["flow"])
    return str(first.get("filter", {}).get("name", ""))


def _failure_only(flow: list[dict[str, Any]]) -> bool:
    return _first_filter_name(flow).startswith(FAILED_ROUTE_NAME)


def _route_groups(router: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """Group a router's routes so that at most one route of each group runs.

    The contact router's routes exclude each other, and so do the routes of each
    channel on the consent router (one per case of email and phone). The batch-check
    router after a HubSpot batch request counts only the route that a run with every
    record written takes, because the failure route runs only on a 207 with errors.
    Every other router may run all its routes.
    """
    routes = list(router.get("routes", []))
    name = router["metadata"]["designer"].get("name")
    if name == CONTACT_ROUTER_NAME:
        return [routes]
    if name == BATCH_CHECK_ROUTER_NAME:
        written = [route for route in routes if not _failure_only(route["flow"])]
        return [written] if written else []
    if name != CONSENT_ROUTER_NAME:
        return [[route] for route in routes]
    groups: dict[str, list[dict[str, Any]]] = {}
    for route in routes:
        label = str(route["flow"][0].get("filter", {}).get("name", "")).split(",", 1)[0]
        groups.setdefault(label, []).append(route)
    return list(groups.values())


# Make modules that output one bundle per record found, so the modules after them run
# once per record, as after an iterator.
RECORD_SOURCES = frozenset({"builtin:BasicFeeder", "datastore:SearchRecord"})


def _count_modules(modules: list[dict[str, Any]], inside: bool = False) -> ModuleCount:
    per_run = per_item = feeders = item_feeders = trigger = 0
    for module in modules:
        name = module["module"]
        if name == "builtin:BasicRouter":
            # The budget counts the largest route of each group whose routes exclude each other.
            for group in _route_groups(module):
                sub = max((_count_modules(route["flow"], inside) for route in group),
                          key=lambda count: (count.per_run + count.per_item, count.per_item))
                per_run += sub.per_run
                per_item += sub.per_item
                feeders += sub.feeders
                item_feeders += sub.item_feeders
            continue
        if str(module.get("filter", {}).get("name", "")).startswith(FAILED_ROUTE_NAME):
            # The failure report after the last batch request runs only when records
            # failed, so a normal run skips it.
            continue
        if name == "gateway:CustomWebHook":
            trigger += 1
        feeder = name == "builtin:BasicFeeder"
        if inside:
            per_item += 1
            item_feeders += feeder
        else:
            per_run += 1
            feeders += feeder
        inside = inside or name in RECORD_SOURCES
    return ModuleCount(per_run=per_run, per_item=per_item, trigger=trigger, feeders=feeders,
                       item_feeders=item_feeders)


def _assumptions() -> dict[str, float]:
    values: dict[str, float] = load_data("ipaas/plans")["assumptions"]
    return values


def _orders_times(factor: float, note: Bilingual | None = None) -> Bilingual:
    """Return the formula ``orders * factor`` in both languages, with an optional note."""
    en = f"orders * {factor}"
    ar = f"الطلبات {TIMES} {factor}"
    if note is not None:
        en, ar = f"{en} {note.en}", f"{ar} {note.ar}"
    return Bilingual(en, ar)


def _daily_runs() -> Bilingual:
    return Bilingual(f"{DAYS_PER_MONTH} daily runs",
                     f"{arabic_count(DAYS_PER_MONTH, 'run')}، مرة كل يوم")


def store_runs(answers: Answers) -> int:
    """Return how many copies of a store poll run: one per Shopify or WooCommerce store.

    A headless or custom storefront is read through one API whatever the store count.
    """
    return answers.store_count if answers.platform in ("shopify", "woocommerce") else 1


def _per_store(formula: Bilingual, stores: int) -> Bilingual:
    """Return ``formula`` times the store count, unchanged for one store."""
    if stores == 1:
        return formula
    return Bilingual(f"{formula.en} * {stores} stores",
                     f"{formula.ar} {TIMES} {arabic_count(stores, 'store')}")


def _volumes(answers: Answers, flow_set: FlowSet) -> dict[str, FlowVolume]:
    """Return the monthly runs and iterated records of each flow but the error flow."""
    a = _assumptions()
    # monthly_orders is the total of all the client's stores, so the event-driven
    # flows need no store factor. A scheduled poll of the store runs once per store.
    orders = answers.monthly_orders
    stores = store_runs(answers)
    days = DAYS_PER_MONTH
    repeat = a["repeat_customer_share"]
    table = {
        "contact-sync": FlowVolume("contact-sync", orders * a["contact_events_per_order"],
                                   _orders_times(a["contact_events_per_order"])),
        "order-sync": FlowVolume(
            "order-sync", orders * a["order_events_per_order"],
            _orders_times(a["order_events_per_order"]),
            orders * a["order_events_per_order"] * a["line_items_per_order"],
            Bilingual(f"runs * {a['line_items_per_order']} line items",
                      f"مرات التشغيل {TIMES} {a['line_items_per_order']} (بنود الطلب)")),
        "product-sync": FlowVolume(
            "product-sync", answers.sku_count * a["product_updates_per_sku"],
            Bilingual(f"SKUs * {a['product_updates_per_sku']}",
                      f"عدد SKU {TIMES} {a['product_updates_per_sku']}")),
        "event-sync": FlowVolume("event-sync", orders * a["behaviour_events_per_order"],
                                 _orders_times(a["behaviour_events_per_order"])),
        "abandoned-checkout": FlowVolume(
            "abandoned-checkout", orders * a["checkout_events_per_order"],
            _orders_times(a["checkout_events_per_order"]),
            orders * a["abandoned_checkouts_per_order"],
            _orders_times(a["abandoned_checkouts_per_order"],
                          Bilingual("abandoned checkouts", "(سلال متروكة)"))),
        "post-purchase": _fulfilment_volume(answers, flow_set),
        "win-back": FlowVolume(
            "win-back", days, _daily_runs(), orders * (1 - repeat),
            _orders_times(round(1 - repeat, 2), Bilingual("(buyers who do not reorder)",
                                                          "(المشترون الذين لا يعيدون الشراء)"))),
        "consent-sync": FlowVolume("consent-sync", orders * a["consent_events_per_order"],
                                   _orders_times(a["consent_events_per_order"])),
        "ticket-sync": FlowVolume(
            "ticket-sync",
            answers.support_agents * a["tickets_per_agent"] * a["ticket_updates_per_ticket"],
            Bilingual(f"agents * {a['tickets_per_agent']} * {a['ticket_updates_per_ticket']}",
                      f"موظفو الدعم {TIMES} {a['tickets_per_agent']}"
                      f" {TIMES} {a['ticket_updates_per_ticket']}")),
        "reconciliation": FlowVolume(
            "reconciliation", reconcile_runs_per_day() * days * stores,
            _per_store(Bilingual(f"{reconcile_runs_per_day()} * {days} runs (every "
                                 f"{RECONCILE_EVERY_MINUTES} minutes)",
                                 f"{reconcile_runs_per_day()} {TIMES} {days} (تشغيل كل "
                                 f"{arabic_count(RECONCILE_EVERY_MINUTES, 'minute')})"),
                       stores),
            orders * a["order_events_per_order"],
            _orders_times(a["order_events_per_order"],
                          Bilingual("replayed changes", "(تغييرات يُعاد تمريرها)"))),
    }
    if flow_set.get("contact-sync").trigger.kind == "schedule":
        table["contact-sync"] = FlowVolume("contact-sync", days * stores,
                                           _per_store(_daily_runs(), stores),
                                           orders * a["contact_events_per_order"],
                                           _orders_times(a["contact_events_per_order"]))
    return {key: volume for key, volume in table.items() if key in flow_set.keys}


# Store topics that start the post-purchase flow on every order update, not only on a
# fulfilment. The flow's filter then drops the updates that do not fulfil the order.
ORDER_UPDATE_TOPICS = frozenset({"order.updated", "order_updated"})


def _fulfilment_volume(answers: Answers, flow_set: FlowSet) -> FlowVolume:
    """Return the post-purchase flow's webhook runs and the fulfilled orders it starts.

    Shopify sends the fulfilment topics about once per order. WooCommerce and
    headless stores send every order update to the flow, about one fewer than the
    order events per order. Each fulfilled order then starts the series once.
    """
    a = _assumptions()
    orders = answers.monthly_orders
    if set(flow_set.get("post-purchase").trigger.topics) & ORDER_UPDATE_TOPICS:
        factor = round(a["order_events_per_order"] - 1, 2)
        runs_formula = _orders_times(factor, Bilingual("(order updates)", "(تحديثات الطلبات)"))
    else:
        factor = a["fulfilment_events_per_order"]
        runs_formula = _orders_times(factor, Bilingual("(fulfilment events)",
                                                       "(أحداث اكتمال الطلب)"))
    return FlowVolume(
        "post-purchase", orders * factor, runs_formula, orders,
        Bilingual("orders (each fulfilled order is due once per step)",
                  "الطلبات (يحين موعد كل طلب مكتمل مرة واحدة في كل خطوة)"))


def _error_volume(rows: list[dict[str, Any]]) -> FlowVolume:
    """Return the error flow's runs: the failure rate applied to the runs shown above it."""
    rate = _assumptions()["failure_rate"]
    runs = sum(int(row["runs"]) for row in rows) * rate
    return FlowVolume("error-alert", runs,
                      Bilingual(f"runs above * {rate} failure rate",
                                f"مرات التشغيل أعلاه {TIMES} {rate} (نسبة الفشل)"))


def _runner_volume(volume: FlowVolume) -> FlowVolume:
    """Return the runs of a flow's Make runner, with the records of the flow.

    The workflows guide schedules the post-purchase runner once a day, because it
    finds the orders by their fulfilment day, and the abandoned-cart runner every
    ``ABANDONED_CHECK_EVERY_MINUTES`` around the clock: during the quiet hours the
    runner still runs and only delays its messages.
    """
    if volume.key == POST_PURCHASE_FLOW:
        return FlowVolume(f"{volume.key}-runner", DAYS_PER_MONTH, _daily_runs(),
                          volume.items, volume.items_formula)
    per_day = runner_runs_per_day()
    return FlowVolume(f"{volume.key}-runner", per_day * DAYS_PER_MONTH,
                      Bilingual(f"{per_day} * {DAYS_PER_MONTH} runs (every "
                                f"{ABANDONED_CHECK_EVERY_MINUTES} minutes)",
                                f"{per_day} {TIMES} {DAYS_PER_MONTH}"
                                f" (مرات التشغيل في اليوم {TIMES} أيام الشهر، بتشغيل كل "
                                f"{arabic_count(ABANDONED_CHECK_EVERY_MINUTES, 'minute')})"),
                      volume.items, volume.items_formula)


def runner_runs_per_day() -> int:
    """Return the abandoned-cart runner's runs a day, from the interval the guide schedules."""
    return MINUTES_PER_DAY // ABANDONED_CHECK_EVERY_MINUTES


def reconcile_runs_per_day() -> int:
    """Return the reconciliation's runs a day, from the interval every platform schedules."""
    return MINUTES_PER_DAY // RECONCILE_EVERY_MINUTES


def _whole(value: float) -> int:
    """Round an estimate up to a whole number, ignoring float noise such as 360.00000000000006."""
    return math.ceil(round(value, 6))


def _units_formula(per_run: int, per_item: int) -> Bilingual:
    en = f"runs * {per_run}"
    ar = f"مرات التشغيل {TIMES} {per_run}"
    if per_item:
        en += f" + records * {per_item}"
        ar += f" + السجلات {TIMES} {per_item}"
    return Bilingual(en, ar)


def _platform_units(runs: int, records: int, count: ModuleCount,
                    scheduled: bool) -> dict[str, Any]:
    """Return the monthly units of one Make scenario on Make and n8n Cloud.

    ``runs`` and ``records`` are the whole figures shown in the budget, so every
    unit count is their exact product with the module counts.
    """
    make_formula = _units_formula(count.per_run, count.per_item)
    return {
        "make": runs * count.per_run + records * count.per_item,
        "n8n_cloud": DAYS_PER_MONTH if scheduled and runs <= DAYS_PER_MONTH else runs,
        "make_formula": make_formula.en, "make_formula_ar": make_formula.ar,
    }


def _zapier_units(runs: int, records: int, tasks: ZapTasks | None,
                  records_shown: bool) -> dict[str, Any]:
    """Return the Zapier tasks of one row from the tasks of its flow's Zap.

    A runner row gets no tasks (``tasks`` is None): its Zap waits with Delay by
    Zapier inside the webhook's run, so its steps are billed on the webhook row.
    There the records are the runner's, which the row itself does not show.
    """
    if tasks is None:
        return {"zapier": 0, "zapier_formula": "no Zap (the webhook's Zap waits)",
                "zapier_formula_ar": "لا Zap له (ينتظر Zap الذي يبدأه Webhook داخل تشغيله)"}
    formula = _units_formula(tasks.per_run, 0)
    if tasks.per_record:
        what = Bilingual("records", "السجلات") if records_shown else \
            Bilingual(f"{records:,} records", f"{records:,} سجلًا")
        formula = Bilingual(f"{formula.en} + {what.en} * {tasks.per_record}",
                            f"{formula.ar} + {what.ar} {TIMES} {tasks.per_record}")
    return {"zapier": runs * tasks.per_run + records * tasks.per_record,
            "zapier_formula": formula.en, "zapier_formula_ar": formula.ar}


def _budget_row(stem: str, blueprint: Mapping[str, Any], volume: FlowVolume,
                flow_set: FlowSet, zaps: Mapping[str, ZapTasks]) -> dict[str, Any]:
    """Return the budget row of one Make scenario, with its runs, records and units."""
    base = stem.removesuffix("-runner")
    records_all = _whole(volume.items)
    if stem.endswith("-runner"):
        volume = _runner_volume(volume)
    elif base in WAITING_FLOWS:
        # The webhook half only stores the checkout or the order; its runner handles
        # the records.
        volume = FlowVolume(volume.key, volume.runs, volume.runs_formula)
    flow = flow_set.get(base)
    runs, records = _whole(volume.runs), _whole(volume.items)
    scheduled = flow.trigger.kind == "schedule" or stem.endswith("-runner")
    units = _platform_units(runs, records, _count_modules(blueprint["flow"]), scheduled)
    runner = stem.endswith("-runner")
    units.update(_zapier_units(runs, records_all, None if runner else zaps[base],
                               records_shown=records == records_all))
    if base in WAITING_FLOWS and runner:
        units["n8n_cloud"] = 0  # on n8n the webhook execution waits; no runner exists
    return {"key": stem, "title_en": flow.title.en, "title_ar": flow.title.ar,
            "runs": runs, "runs_formula": volume.runs_formula.en,
            "runs_formula_ar": volume.runs_formula.ar,
            "records": records, "records_formula": volume.items_formula.en,
            "records_formula_ar": volume.items_formula.ar, **units}


def _replay_volume(volumes: Mapping[str, FlowVolume]) -> FlowVolume:
    """Return the order-sync runs that the reconciliation's replays start.

    The reconciliation posts every changed order it reads to the order flow's
    webhook, and each post runs the whole order flow again (the upserts by store id
    make it harmless). So the replays are the reconciliation's records, each with
    the line items of an order.
    """
    replays = volumes["reconciliation"].items
    lines = _assumptions()["line_items_per_order"]
    return FlowVolume(
        "order-sync", replays,
        Bilingual("orders replayed by the reconciliation",
                  "الطلبات التي تعيد المطابقة الدورية إرسالها"),
        replays * lines,
        Bilingual(f"runs * {lines} line items", f"مرات التشغيل {TIMES} {lines} (بنود الطلب)"))


def _zap_tasks(flow_set: FlowSet) -> dict[str, ZapTasks]:
    """Return the tasks of each flow's Zap, from the rows the Zapier build sheet prints."""
    from generator.ipaas import buildsheets

    sheets = {row["key"]: row for row in buildsheets.sheet_context(flow_set)}
    return {flow.key: zap_tasks(flow, sheets[flow.key]) for flow in flow_set.flows}


def flow_budget(answers: Answers, plan: Plan, spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Return one row per Make scenario with its runs, records and units on each platform.

    Runs and records are rounded up once, and every unit count is computed from
    those whole figures. The order flow's runs started by reconciliation replays
    get their own row after the reconciliation. The error flow comes last because
    its runs are the failure rate applied to the runs of all the other rows.
    """
    flow_set = build_flows(answers, plan, spec)
    volumes = _volumes(answers, flow_set)
    blueprints = make.blueprints(flow_set)
    zaps = _zap_tasks(flow_set)
    rows = [_budget_row(stem, blueprint, volumes[stem.removesuffix("-runner")], flow_set, zaps)
            for stem, blueprint in blueprints.items()
            if stem not in ("error-alert", make.SLA_CHECK_STEM)]
    replay = _budget_row("order-sync", blueprints["order-sync"], _replay_volume(volumes),
                         flow_set, zaps)
    rows.append({**replay, "key": REPLAY_ROW,
                 "title_en": f"{replay['title_en']}, reconciliation replays",
                 "title_ar": f"{replay['title_ar']}، إعادة الإرسال من المطابقة الدورية"})
    sla_check = _sla_check_row(plan.crm, flow_set, blueprints)
    if sla_check is not None:
        index = next(index for index, row in enumerate(rows) if row["key"] == "ticket-sync")
        rows.insert(index + 1, sla_check)
    if "error-alert" in blueprints:
        rows.append(_budget_row("error-alert", blueprints["error-alert"],
                                _error_volume(rows), flow_set, zaps))
    return rows


def sla_check_runs_per_day() -> int:
    """Return the first-response check's runs a day, from the interval the workflows schedule."""
    return MINUTES_PER_DAY // SLA_CHECK_EVERY_MINUTES


def _sla_check_row(crm: str, flow_set: FlowSet,
                   blueprints: Mapping[str, Mapping[str, Any]]) -> dict[str, Any] | None:
    """Return the row of the scheduled first-response check, or None without one.

    The check reads the open tickets from the CRM, not from a store, so one schedule
    serves all the client's stores. n8n runs it in the ticket workflow on HubSpot
    and Zoho, and Make as a scenario of its own when the project has its blueprint.
    The Zapier build sheet has no such Zap, so it bills no tasks.
    """
    if "ticket-sync" not in flow_set.keys or not any(
            step.key == "sla_check" for step in flow_set.get("ticket-sync").walk()):
        return None
    blueprint = blueprints.get(make.SLA_CHECK_STEM)
    if crm not in SLA_CHECK_CRMS and blueprint is None:
        return None
    per_day = sla_check_runs_per_day()
    runs = per_day * DAYS_PER_MONTH
    count = _count_modules(blueprint["flow"]) if blueprint is not None else None
    make_formula = _units_formula(count.per_run, 0) if count is not None else \
        Bilingual("no scenario", "لا سيناريو له")
    flow = flow_set.get("ticket-sync")
    return {
        "key": SLA_CHECK_ROW, "title_en": f"{flow.title.en}, first-response check",
        "title_ar": f"{flow.title.ar}، فحص مهلة الرد الأول",
        "runs": runs,
        "runs_formula": f"{per_day} * {DAYS_PER_MONTH} runs (every "
                        f"{SLA_CHECK_EVERY_MINUTES} minutes)",
        "runs_formula_ar": f"{per_day} {TIMES} {DAYS_PER_MONTH} (تشغيل كل "
                           f"{arabic_count(SLA_CHECK_EVERY_MINUTES, 'minute')})",
        # NOTE: the few overdue tickets a run finds add modules per ticket on Make; the
        # estimate leaves them out.
        "records": 0, "records_formula": "", "records_formula_ar": "",
        "make": runs * count.per_run if count is not None else 0,
        "make_formula": make_formula.en, "make_formula_ar": make_formula.ar,
        "n8n_cloud": runs if crm in SLA_CHECK_CRMS else 0,
        "zapier": 0, "zapier_formula": "no Zap (the build sheet has no scheduled check)",
        "zapier_formula_ar": "لا Zap له (لا يتضمن دليل البناء فحصًا مجدولًا)",
    }


def _plan_cost_usd(platform: Mapping[str, Any], units: int) -> dict[str, Any]:
    """Return the cheapest listed plan whose included volume covers ``units``, with its price.

    Extra units bought on top of a smaller plan are not priced in. Above the largest
    listed plan, the platform's ``overage`` prices extra units on top of that plan,
    at ``price_factor`` times its rate per unit and up to ``max_share`` times its
    own units (Make's automatic extra operations stop at the plan's own volume,
    Zapier's Zaps at three times the plan's limit). Beyond that, or without an
    ``overage`` price, ``beyond_listed`` is true and the price is None, because the
    data records no price for larger tiers.
    """
    covering = [entry for entry in platform["plans"]
                if entry["units"] is None or units <= entry["units"]]
    if covering:
        entry = min(covering, key=lambda item: (float(item["price_usd"]), item["units"] or 0))
        return {"plan": entry["name"], "plan_ar": entry.get("name_ar", entry["name"]),
                "price_usd": round(float(entry["price_usd"]), 2),
                "confirmed": bool(entry["confirmed"]), "source": entry["source"],
                "source_ar": entry["source_ar"], "included": entry["units"],
                "beyond_listed": False, "extra_units": 0}
    top = max(platform["plans"], key=lambda item: (item["units"], float(item["price_usd"])))
    top_price = float(top["price_usd"])
    overage = platform.get("overage") or {}
    limit = priced_limit(platform)
    if "price_factor" in overage and limit is not None and units <= limit:
        extra = units - int(top["units"])
        extra_usd = extra * top_price / int(top["units"]) * float(overage["price_factor"])
        return {"plan": top["name"], "plan_ar": top.get("name_ar", top["name"]),
                "price_usd": round(top_price + extra_usd, 2),
                "confirmed": bool(top["confirmed"]) and bool(overage["confirmed"]),
                "source": top["source"], "source_ar": top["source_ar"],
                "included": top["units"], "beyond_listed": False, "extra_units": extra,
                "extra_usd": round(extra_usd, 2), "extra_factor": overage["price_factor"]}
    return {"plan": None, "plan_ar": None, "price_usd": None,
            "confirmed": bool(top["confirmed"]), "source": top["source"],
            "source_ar": top["source_ar"], "included": None, "beyond_listed": True,
            "extra_units": 0, "largest_plan": top["name"], "largest_units": top["units"],
            "largest_price_usd": top_price, "priced_limit": limit}


def priced_limit(platform: Mapping[str, Any]) -> int | None:
    """Return the most units a month a priced plan covers, extra units included.

    None means no limit: a plan without included units (self-hosted n8n) covers
    every volume.
    """
    if any(entry["units"] is None for entry in platform["plans"]):
        return None
    top = max(int(entry["units"]) for entry in platform["plans"])
    overage = platform.get("overage") or {}
    if "price_factor" not in overage:
        return top
    return top + int(top * float(overage["max_share"]))


def upkeep_sar(platform: str) -> dict[str, float]:
    """Return the monthly upkeep added to a platform's price: hours, rate and SAR.

    Only self-hosted n8n gets upkeep: someone runs its server, backups and
    upgrades, as the API path's monthly cost already counts for its own service.
    """
    upkeep = load_data("ipaas/plans")["upkeep"]
    hours = float(upkeep["n8n_self_hosted_hours"]) if platform == "n8n_self_hosted" else 0.0
    rate = float(upkeep["rate_sar_per_hour"])
    return {"hours": hours, "rate_sar": rate, "sar": hours * rate}


def _monthly_sar(platform: str, price_usd: float | None) -> float | None:
    """Return a platform's monthly cost in SAR: the plan's price plus any upkeep."""
    if price_usd is None:
        return None
    rate = float(load_data("ipaas/plans")["usd_to_sar"])
    return price_usd * rate + upkeep_sar(platform)["sar"]


def totals(rows: list[dict[str, Any]]) -> dict[str, int]:
    """Return the monthly units on each platform, summed over the flows."""
    return {name: sum(int(row[name]) for row in rows) for name in METERED_PLATFORMS}


def horizon_costs() -> dict[str, float]:
    """Return the set-up costs, the API path's running cost and the horizon they are compared over.

    Set-up is the middle of each path's range in ``paths.yaml``, the same range the
    decision record quotes.
    """
    data = load_data("ipaas/plans")
    paths = load_data("paths")["paths"]
    months = int(data["api_path"]["horizon_months"])
    api_setup = sum(paths["api"]["setup_sar"]) / 2
    api_monthly = float(data["api_path"]["monthly_run_sar"])
    return {"months": months, "api_setup": api_setup, "api_monthly": api_monthly,
            "api_total": api_setup + months * api_monthly,
            "ipaas_setup": sum(paths["ipaas"]["setup_sar"]) / 2}


def ipaas_total(monthly_sar: float, costs: Mapping[str, float]) -> float:
    """Return the iPaaS path's cost over the horizon: set-up plus the monthly plan."""
    return costs["ipaas_setup"] + costs["months"] * monthly_sar


def recommendations(units: Mapping[str, int]) -> list[dict[str, Any]]:
    """Return the recommended plan, monthly cost and cost over the horizon per platform."""
    data = load_data("ipaas/plans")
    rate = float(data["usd_to_sar"])
    costs = horizon_costs()
    result = []
    for name, platform in data["platforms"].items():
        used = units.get(name, 0) if name != "n8n_self_hosted" else units.get("n8n_cloud", 0)
        choice = _plan_cost_usd(platform, used)
        upkeep = upkeep_sar(name)
        plan_sar = None if choice["price_usd"] is None else round(choice["price_usd"] * rate)
        sar = None if plan_sar is None else round(plan_sar + upkeep["sar"])
        extra: dict[str, Any] = {"plan_sar": plan_sar, "upkeep_hours": upkeep["hours"],
                                 "upkeep_rate_sar": round(upkeep["rate_sar"]),
                                 "upkeep_sar": round(upkeep["sar"]),
                                 "larger_tiers": platform.get("larger_tiers"),
                                 "overage": platform.get("overage"),
                                 "horizon_total_sar": None if sar is None
                                 else round(ipaas_total(sar, costs))}
        if choice["beyond_listed"]:
            # A larger tier costs at least as much as the largest listed one. So the
            # API path is surely cheaper over the horizon when its total is below the
            # iPaaS total at that price. Otherwise the comparison needs the real price.
            extra["largest_price_sar"] = round(choice["largest_price_usd"] * rate)
            extra["api_cheaper"] = costs["api_total"] < ipaas_total(extra["largest_price_sar"],
                                                                   costs)
        result.append({"platform": name, "unit": platform["unit"], "units": used,
                       "data_location": platform["data_location"],
                       "counting_en": platform["counting"]["en"],
                       "counting_ar": platform["counting"]["ar"],
                       **choice, "price_sar": sar, **extra})
    return result


def keep_in_kingdom(crm: str) -> bool:
    """Return whether the decision keeps the CRM's data in the Kingdom.

    ``residency.kingdom_crms`` in ``plans.yaml`` lists those CRMs.
    """
    return crm in load_data("ipaas/plans")["residency"]["kingdom_crms"]


def overall_recommendation(plans: list[dict[str, Any]], in_kingdom: bool = False) -> dict[str, Any]:
    """Return the one plan the budget recommends, and why.

    The cheapest hosted plan listed that covers the estimate wins. When no hosted
    plan listed covers it, self-hosted n8n does: it has no execution limit, so its
    server is the only cost. When ``in_kingdom`` is true, only a platform whose data
    stays in the Kingdom is recommended, whatever the hosted plans cost: that is
    self-hosted n8n on a server in the Kingdom. ``api_cheaper`` is true when the API
    path costs less than the recommended plan over the horizon.
    """
    costs = horizon_costs()
    hosted = [plan for plan in plans
              if plan["platform"] != "n8n_self_hosted" and plan["price_sar"] is not None]
    reason = "cheapest_hosted"
    if in_kingdom:
        hosted = [plan for plan in hosted if plan["data_location"]["in_kingdom"]]
    if hosted:
        choice = min(hosted, key=lambda plan: (plan["price_sar"], plan["platform"]))
    else:
        choice = next(plan for plan in plans if plan["platform"] == "n8n_self_hosted")
        reason = "residency" if in_kingdom else "no_hosted_fits"
    total = ipaas_total(choice["price_sar"], costs)
    # A platform above its largest plan listed may still be cheaper on a tier the
    # data does not list: the document names it, so the jump to a dearer platform
    # is explained rather than hidden.
    unlisted = [plan["platform"] for plan in plans
                if plan["beyond_listed"] and plan["largest_price_sar"] < choice["price_sar"]
                and not in_kingdom]
    return {"platform": choice["platform"], "plan": choice["plan"],
            "plan_ar": choice["plan_ar"], "price_sar": choice["price_sar"],
            "confirmed": choice["confirmed"], "reason": reason, "unlisted_cheaper": unlisted,
            "horizon_total_sar": round(total), "api_total_sar": round(costs["api_total"]),
            "api_cheaper": costs["api_total"] < total}


def break_even(answers: Answers, plan: Plan, spec: Mapping[str, Any],
               platform: str, units: int | None = None) -> dict[str, int | None]:
    """Return the monthly orders from which the API path costs less over the horizon.

    Both sides add set-up (the midpoint of ``paths.yaml``'s range) to the monthly
    running cost over ``api_path.horizon_months``: the iPaaS subscription (and, for
    self-hosted n8n, its server and upkeep) on ``platform`` against the API
    service's hosting and upkeep. Units grow linearly with the orders, so both
    volumes are solved on that line: only volumes that a priced plan in
    ``plans.yaml`` covers, extra units included, are compared, because the data
    records no price for larger tiers.

    ``units`` are the project's own units on ``platform``: when a priced plan
    covers them, ``priced_up_to`` is never below the project's volume.

    Returns:
        ``orders``: the first volume, rounded up to ``BREAK_EVEN_STEP``, at which
        the API path costs less, or None when it never does in the range
        compared. ``priced_up_to``: None when priced plans cover every volume up
        to ``MAX_BREAK_EVEN_ORDERS``, else the largest volume they cover, rounded
        down to ``BREAK_EVEN_STEP`` (0 when not even one order fits).
        ``listed_up_to``: where the largest plan listed ends without extra units,
        when extra units are priced above it; else None.
    """
    data = load_data("ipaas/plans")
    costs = horizon_costs()
    platform_data = data["platforms"][platform]
    line = {"fixed": 0.0, "per_order": 0.0} if platform == "n8n_self_hosted" else \
        _units_per_order(answers, plan, spec, platform)

    def units_at(orders: int) -> int:
        return math.ceil(round(line["fixed"] + line["per_order"] * orders, 6))

    limit = priced_limit(platform_data)
    last = MAX_BREAK_EVEN_ORDERS
    if limit is not None and units_at(MAX_BREAK_EVEN_ORDERS) > limit:
        last = _last_within(units_at, limit)
    # The monthly price never falls as the units grow, so the first volume whose
    # total reaches the API path's is found by bisection.
    def api_cheaper_at(orders: int) -> bool:
        price = _plan_cost_usd(platform_data, units_at(orders))["price_usd"]
        monthly = _monthly_sar(platform, price)
        return monthly is not None and ipaas_total(monthly, costs) >= costs["api_total"]

    if last >= 1 and api_cheaper_at(last):
        low, high = 1, last
        while low < high:
            middle = (low + high) // 2
            if api_cheaper_at(middle):
                high = middle
            else:
                low = middle + 1
        return {"orders": math.ceil(low / BREAK_EVEN_STEP) * BREAK_EVEN_STEP,
                "priced_up_to": None, "listed_up_to": None}
    if last == MAX_BREAK_EVEN_ORDERS:
        return {"orders": None, "priced_up_to": None, "listed_up_to": None}
    # Where the largest plan listed ends without extra units, when extra units are priced.
    listed_limit = max(int(entry["units"]) for entry in platform_data["plans"])
    listed = None
    if listed_limit != limit:
        listed = _round_down(_last_within(units_at, listed_limit), answers,
                             units is not None and units <= listed_limit)
    covered = units is not None and limit is not None and units <= limit
    return {"orders": None, "priced_up_to": _round_down(last, answers, covered),
            "listed_up_to": listed}


def _round_down(orders: int, answers: Answers, covered: bool) -> int:
    """Round a volume where plans end down to ``BREAK_EVEN_STEP`` orders.

    When the project's own units fit, the result is never below its volume, so the
    document does not say a plan ends below the volume it recommends that plan for.
    """
    rounded = orders // BREAK_EVEN_STEP * BREAK_EVEN_STEP or orders
    return max(rounded, answers.monthly_orders) if covered else rounded


def _last_within(units_at: Callable[[int], int], limit: int) -> int:
    """Return the largest order volume whose units stay within ``limit`` (0 when none)."""
    low, high = 0, MAX_BREAK_EVEN_ORDERS
    if units_at(0) > limit:
        return 0
    while low < high:
        middle = (low + high + 1) // 2
        if units_at(middle) <= limit:
            low = middle
        else:
            high = middle - 1
    return low


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

    # No Make blueprints ship for the client's own database, so Make is not priced.
    make_offered = plan.crm != "custom"
    offered = [name for name in METERED_PLATFORMS if make_offered or name != "make"]
    plans = [choice for choice in recommendations(units)
             if make_offered or choice["platform"] != "make"]
    costs = horizon_costs()

    return {
        "flows": buildsheets.sheet_context(build_flows(answers, plan, spec)),
        "dedupe_ttl_days": DEDUPE_TTL_DAYS,
        "make": buildsheets.make_context(plan, build_flows(answers, plan, spec)),
        "n8n": n8n.setup_context(answers, plan, spec),
        "budget": {
            "rows": rows, "totals": units, "make_offered": make_offered,
            "plans": plans, "in_kingdom": keep_in_kingdom(plan.crm),
            "overall": overall_recommendation(plans, keep_in_kingdom(plan.crm)),
            "horizon": {"months": int(costs["months"]), "api_setup_sar": round(costs["api_setup"]),
                        "api_total_sar": round(costs["api_total"]),
                        "ipaas_setup_sar": round(costs["ipaas_setup"]),
                        # The monthly cost, server and upkeep, above which self-hosted
                        # n8n costs more than the API path over the horizon.
                        "self_hosted_limit_sar": math.floor(
                            (costs["api_total"] - costs["ipaas_setup"]) / costs["months"])},
            "assumptions": data["assumptions"], "checked_on": data["checked_on"],
            "upkeep": data["upkeep"],
            "usd_to_sar": data["usd_to_sar"], "api": data["api_path"],
            "break_even": {name: break_even(answers, plan, spec, name,
                                            units.get(name, 0) if name in units else None)
                           for name in [*offered, "n8n_self_hosted"]},
            "break_even_max_orders": MAX_BREAK_EVEN_ORDERS, "break_even_step": BREAK_EVEN_STEP,
            "monthly_orders": answers.monthly_orders, "store_count": store_runs(answers),
            "replay_row": REPLAY_ROW,
        },
    }


def files(answers: Answers, plan: Plan, spec: dict[str, dict[str, Any]],
          desired_state: dict[str, Any]) -> dict[str, bytes]:
    """Return no data files: the budget documents are templates fed by ``ipaas_context``."""
    return {}
