"""The post-purchase flow: it starts when an order is fulfilled, not from the latest order date.

The spec's playbook starts on ``order_fulfilled``, "An order reaches the fulfilled
stage", so the flow listens to the store's fulfilment event and keeps only orders
whose status the stage table puts in the fulfilled stage. Each order starts the
series once, because WooCommerce sends ``order.updated`` again on later changes.
The flow then waits the playbook's delay and sends each step through its consent gate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from generator.arabic_counts import arabic_count
from generator.ipaas import crm_calls
from generator.ipaas.flows import (
    EVENT_ID,
    FieldRow,
    Flow,
    Step,
    Trigger,
    _contact_properties,
    _contact_steps,
    _Context,
    _dedupe_step,
    _send_steps,
    _step,
    _text,
)
from generator.model import Bilingual

FULFILMENT_TOPICS = {"shopify": ("orders/fulfilled", "orders/partially_fulfilled"),
                     "woocommerce": ("order.updated",),
                     "storefront": ("order_updated",)}
# Paths of the fulfilment time in the order body, by store. Shopify's orders/fulfilled
# body is the order at that moment, so its update time is the fulfilment time.
FULFILLED_AT_SOURCES = {"shopify": ("updated_at",),
                        "woocommerce": ("date_completed_gmt", "date_modified_gmt"),
                        "storefront": ("occurred_at", "updated_at")}
# Days an order's id stays in the store that starts each series once. The period is
# longer than the longest series, so a late update cannot start it again.
SERIES_TTL_DAYS = 60
STARTED_STORE = "playbook_orders"


def fulfilled_conditions(ctx: _Context) -> list[dict[str, list[Any]]]:
    """Return the stage table's conditions that put an order in the fulfilled stage.

    Each condition maps a status field of the store's order body to its values, as
    in the spec's stage rules (Shopify's fulfillment_status, WooCommerce's status).
    """
    rules = ctx.mapping["order_stages"]["rules"]
    if isinstance(rules, Mapping):
        rules = rules.get(ctx.store, [])
    return [{str(name): list(values) for name, values in dict(rule["when"]).items()}
            for rule in rules if rule.get("stage") == "fulfilled"]


def _fulfilled_at_row(ctx: _Context) -> tuple[FieldRow, ...]:
    """Return the contact's last_fulfilled_at row when the spec keeps that rollup."""
    rollups = {item["name"]: item for item in ctx.entity("contact")["rollups"]}
    if "last_fulfilled_at" not in rollups:
        return ()
    first, *rest = FULFILLED_AT_SOURCES[ctx.store]
    return (ctx.row("contact", {"name": "last_fulfilled_at", "source": first,
                                "fallback_sources": rest,
                                "target": rollups["last_fulfilled_at"]["target"],
                                "transform": "iso_datetime"}),)


def _due_search(ctx: _Context, delay_days: int) -> crm_calls.CrmCall:
    """Return the CRM search that a scheduled runner uses in place of the long wait.

    It finds the contacts whose fulfilment time fell on the due day. Without a
    last_fulfilled_at rollup in the spec it reads the latest order time instead.
    """
    rollups = {item["name"]: item["target"] for item in ctx.entity("contact")["rollups"]}
    # Without a last_fulfilled_at contact property in the spec this search reads the
    # latest order time. The Make runner does not use it: it finds the due orders by
    # their fulfilment time in the data store playbook_orders (make_post_purchase).
    field = rollups.get("last_fulfilled_at", rollups["last_order_at"])
    window = [f"<today - {delay_days + 1} days>", f"<today - {delay_days} days>"]
    filters = [{"field": field, "op": "between", "value": window}]
    return crm_calls.search_call(ctx.crm, ctx.entity("contact")["object"], filters,
                                 _contact_properties(ctx))


def _due_after(ctx: _Context, amount: int, unit: str) -> dict[str, Any]:
    """Return when a step falls due: ``amount`` ``unit`` after the order's fulfilment."""
    return {"sources": list(FULFILLED_AT_SOURCES[ctx.store]), "amount": amount, "unit": unit}


def _series_steps(ctx: _Context, playbook: Mapping[str, Any]) -> list[Step]:
    """Return the wait for the playbook's delay, then each step's wait, gate and send."""
    delay = playbook["delay"]
    days = int(delay["default"])
    steps = [_step("wait_delay", "wait", f"Wait {days} days after fulfilment",
                   f"الانتظار {arabic_count(days, 'day')} بعد اكتمال الطلب",
                   params={"mode": "delay", "amount": days, "unit": delay["unit"],
                           "min": delay["min"], "max": delay["max"],
                           "text": {"en": f"{days} {delay['unit']}",
                                    "ar": arabic_count(days, "day")},
                           "counts_from": "fulfilment", "due_days": days},
                   calls=(_due_search(ctx, days),))]
    issued_at = playbook.get("discount_code", {}).get("issued_at_step")
    previous = 0
    for step in playbook["steps"]:
        # A step's offset counts from the end of the delay, that is from the
        # fulfilment plus the delay. ``amount`` is the gap to the step before, which the
        # build sheets' delay steps use. ``due_after`` lets n8n wait for the due time
        # itself, so quiet hours that held back the step before do not push this one.
        # The due search gives a runner the same day.
        offset = int(step["offset"]["value"])
        if offset > previous:
            steps.append(_step(f"wait_{step['step']}", "wait", "Wait for the next step",
                               "الانتظار حتى الخطوة التالية",
                               params={"mode": "delay", "amount": offset - previous,
                                       "unit": step["offset"]["unit"],
                                       "due_days": days + offset,
                                       "due_after": _due_after(ctx, days + offset,
                                                               delay["unit"])},
                               calls=(_due_search(ctx, days + offset),)))
            previous = offset
        done = issued_at is not None and step["step"] > issued_at
        steps.extend(_send_steps(ctx, playbook, step, done))
    return steps


def post_purchase_flow(ctx: _Context, playbook: Mapping[str, Any]) -> Flow:
    """Return the flow that starts the post-purchase series when an order is fulfilled."""
    conditions = fulfilled_conditions(ctx)
    steps = (
        _dedupe_step(ctx),
        _step("filter_fulfilled", "filter", "Continue only with a fulfilled order",
              "المتابعة فقط إذا اكتمل الطلب وشُحن",
              params={"fulfilled_when": conditions}),
        _step("filter_first_series", "filter", "Continue only if the order has not started "
              "the series", "المتابعة فقط إذا لم تبدأ السلسلة لهذا الطلب من قبل",
              params={"store": STARTED_STORE, "key": "id", "absent": True}),
        _step("store_started", "store", "Remember that the order started the series",
              "حفظ أن الطلب بدأ السلسلة",
              params={"store": STARTED_STORE, "key": "id", "ttl_days": SERIES_TTL_DAYS,
                      "fulfilled_at": list(FULFILLED_AT_SOURCES[ctx.store])}),
        *_contact_steps(ctx, _fulfilled_at_row(ctx)),
        *_series_steps(ctx, playbook),
    )
    return Flow(
        key="post-purchase", module="playbooks", playbook=playbook["key"],
        dedupe_key=EVENT_ID[ctx.platform],
        trigger=Trigger(kind="webhook", source=ctx.store,
                        topics=FULFILMENT_TOPICS[ctx.store],
                        description=Bilingual(playbook["trigger"]["text"]["en"],
                                              playbook["trigger"]["text"]["ar"])),
        title=_text(playbook["name"]), purpose=_text(playbook["goal"]), steps=steps)
