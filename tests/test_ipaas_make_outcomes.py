"""Make blueprints after the writes: batch results, dedupe timing, amounts, names, the cart runner.

``run`` walks a blueprint as Make would for one bundle. A module whose filter fails
ends its path, and a router runs each route in order. A module listed as failing
takes its error route (report, then Break), so nothing after it on the path runs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from generator.ipaas.make_outcomes import BATCH_CHECK_ROUTER_NAME
from generator.ipaas.make_schedule import QUIET_FILTER_NAME, quiet_formula
from tests.ipaas_cases import IPAAS_CASES
from tests.test_ipaas_make_iml import evaluate
from tests.test_ipaas_make_records import (
    Bundles,
    blueprints,
    blueprints_with_ids,
    body_of,
    modules,
    name_of,
    passes,
)

CRM_CASES = [case for case in IPAAS_CASES if case[0] != "shopify-postgres"]
ORDER = {"id": 5001, "name": "#1001", "total_price": "10.00", "email": "a@example.sa",
         "financial_status": "paid", "fulfillment_status": None, "refunds": [],
         "created_at": "2026-01-05T10:00:00+03:00",
         "customer": {"id": "77", "email": "a@example.sa", "phone": "0501234567",
                      "first_name": "Noura", "last_name": "Ali"},
         "line_items": []}
FAILED_BATCH = {"statusCode": 207, "data": {
    "status": "COMPLETE", "results": [], "numErrors": 1,
    "errors": [{"status": "error", "category": "VALIDATION_ERROR",
                "message": "Property values were not valid: a@example.sa"}]}}
WRITTEN_BATCH = {"statusCode": 200, "data": {"status": "COMPLETE", "results": [{"id": "901"}]}}


def run(flow: list[dict[str, Any]], bundles: Mapping[str, Any],
        failing: Collection[int] = ()) -> list[str]:
    """Return the names of the modules that run for one bundle, in order."""
    bundles = Bundles(bundles)
    ran: list[str] = []
    for module in flow:
        if "filter" in module and not passes(module["filter"], bundles):
            return ran
        ran.append(name_of(module))
        if module["module"] == "builtin:BasicRouter":
            for route in module["routes"]:
                ran.extend(run(route["flow"], bundles, failing))
            return ran
        if module["id"] in failing:
            return ran
    return ran


def subscribed(flow: list[dict[str, Any]], *channels: str) -> dict[str, Any]:
    """Return the outputs of a flow's HubSpot v4 status reads.

    The channels in ``channels`` read SUBSCRIBED; the others NOT_SUBSCRIBED.
    """
    found: dict[str, Any] = {}
    for module in modules(flow):
        match = re.fullmatch(r"Read the current (\w+) subscription status", name_of(module))
        if match is not None:
            status = "SUBSCRIBED" if match.group(1) in channels else "NOT_SUBSCRIBED"
            found[str(module["id"])] = {"data": {"results": [
                {"channel": match.group(1).upper(), "status": status}]}}
    return found


def module_named(blueprint: dict[str, Any], name: str) -> dict[str, Any]:
    return next(module for module in modules(blueprint["flow"]) if name_of(module) == name)


def first_route_ids(blueprint: dict[str, Any], *names: str) -> list[int]:
    """Return the ids of the named modules on the contact router's first route."""
    router = module_named(blueprint, "Route by the email and phone the record carries")
    found = {name_of(module): int(module["id"]) for module in modules(router["routes"][0]["flow"])}
    return [found[name] for name in names]


def test_batch_207_runs_report_not_rest() -> None:
    order_sync = blueprints_with_ids("shopify-growth")["order-sync"]
    contact, deal = first_route_ids(order_sync, "Create or update the contact",
                                    "Create or update the deal")
    bundles = {"1": ORDER, str(contact): FAILED_BATCH}
    ran = run(order_sync["flow"], bundles)
    assert "Report the failed records of Create or update the contact" in ran
    assert "Create or update the deal" not in ran
    assert "Remember the event (data store processed_events)" not in ran
    written = run(order_sync["flow"], {"1": ORDER, str(contact): WRITTEN_BATCH,
                                       str(deal): WRITTEN_BATCH})
    assert "Report the failed records of Create or update the contact" not in written
    assert "Create or update the deal" in written


def test_batch_207_without_count_fails() -> None:
    order_sync = blueprints_with_ids("shopify-growth")["order-sync"]
    (contact,) = first_route_ids(order_sync, "Create or update the contact")
    ran = run(order_sync["flow"], {"1": ORDER, str(contact): {"statusCode": 207, "data": {}}})
    assert "Report the failed records of Create or update the contact" in ran
    assert "Create or update the deal" not in ran


def test_batch_report_counts_without_values() -> None:
    order_sync = blueprints_with_ids("shopify-growth")["order-sync"]
    (contact,) = first_route_ids(order_sync, "Create or update the contact")
    report = module_named(order_sync, "Report the failed records of Create or update the contact")
    assert report["mapper"]["url"] == "https://hook.make.example/ERROR-ALERT-WEBHOOK"
    # The webhook passed the delivery's event id header, which the report names.
    delivery = {**ORDER, "__IMTHEADERS__": [{"name": "x-shopify-event-id", "value": "evt-7"}]}
    body = body_of(report, {"1": delivery, str(contact): FAILED_BATCH})
    assert body == {"flow": "order-sync", "step": "Create or update the contact: failed records",
                    "error": "HubSpot returned 207: 1 record(s) failed (VALIDATION_ERROR)",
                    "event_id": "evt-7", "record_id": "5001"}


@pytest.mark.parametrize(("case", "preset", "values"), CRM_CASES, ids=[c[0] for c in CRM_CASES])
def test_every_hubspot_batch_checked(case: str, preset: str, values: dict[str, Any]) -> None:
    for stem, blueprint in blueprints(preset, json.dumps(values)).items():
        for flow in _flows(blueprint["flow"]):
            for index, module in enumerate(flow):
                url = str((module.get("mapper") or {}).get("url", ""))
                if "api.hubapi.com" not in url or "/batch/" not in url:
                    continue
                after = flow[index + 1] if index + 1 < len(flow) else None
                assert after is not None, f"{stem}: {name_of(module)}"
                assert name_of(after) in (BATCH_CHECK_ROUTER_NAME,
                                          f"Report the failed records of {name_of(module)}")


def _flows(flow: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    found = [flow]
    for module in flow:
        for route in module.get("routes", []):
            found.extend(_flows(route["flow"]))
    return found


@pytest.mark.parametrize(("case", "preset", "values"), CRM_CASES, ids=[c[0] for c in CRM_CASES])
def test_no_filter_on_router(case: str, preset: str, values: dict[str, Any]) -> None:
    for stem, blueprint in blueprints(preset, json.dumps(values)).items():
        for module in modules(blueprint["flow"]):
            if module["module"] == "builtin:BasicRouter":
                assert "filter" not in module, f"{stem}: {name_of(module)}"


def order_blueprint(preset: str) -> dict[str, Any]:
    """Return the order flow, on HubSpot with the pipeline ids that rabt crm apply records."""
    if preset == "shopify-growth":
        return blueprints_with_ids(preset)["order-sync"]
    return blueprints(preset)["order-sync"]


@pytest.mark.parametrize("preset", ["shopify-growth", "jeddah-fashion-zoho"])
def test_event_remembered_after_writes(preset: str) -> None:
    order_sync = order_blueprint(preset)
    ran = run(order_sync["flow"], {"1": ORDER})
    assert ran[-1] == "Remember the event (data store processed_events)"
    assert ran.count("Remember the event (data store processed_events)") == 1
    writes = [index for index, name in enumerate(ran) if name.startswith("Create")]
    assert writes
    assert max(writes) < len(ran) - 1


@pytest.mark.parametrize("preset", ["shopify-growth", "jeddah-fashion-zoho"])
def test_failed_write_retried_not_dropped(preset: str) -> None:
    order_sync = order_blueprint(preset)
    (deal,) = first_route_ids(order_sync, "Create or update the deal")
    ran = run(order_sync["flow"], {"1": ORDER}, failing={deal})
    assert "Create or update the deal" in ran
    assert "Remember the event (data store processed_events)" not in ran
    check = next(module for module in modules(order_sync["flow"])
                 if module["module"] == "datastore:ExistRecord")
    # The key was not stored, so the redelivery's check finds nothing and the run goes on.
    retry = run(order_sync["flow"], {"1": ORDER, str(check["id"]): {"exist": False}})
    assert retry[-1] == "Remember the event (data store processed_events)"
    seen = run(order_sync["flow"], {"1": ORDER, str(check["id"]): {"exist": True}})
    assert "Create or update the deal" not in seen


def zoho_deal_body(order: dict[str, Any]) -> dict[str, Any]:
    deal = module_named(blueprints("jeddah-fashion-zoho")["order-sync"],
                        "Create or update the deal")
    record: dict[str, Any] = body_of(deal, Bundles({"1": order}))["data"][0]
    return record


def test_zoho_amounts_are_numbers() -> None:
    refunded = {**ORDER, "total_price": "1250.50",
                "refunds": [{"transactions": [{"amount": "100.25"}, {"amount": "50"}]}]}
    record = zoho_deal_body(refunded)
    assert record["Amount"] == 1250.5
    assert record["Ecom_Refunded_SAR"] == 150.25
    assert isinstance(record["Amount"], float)


def test_zoho_no_refund_is_zero() -> None:
    assert zoho_deal_body(ORDER)["Ecom_Refunded_SAR"] == 0


def test_hubspot_amount_stays_text() -> None:
    deal = module_named(blueprints_with_ids("shopify-growth")["order-sync"],
                        "Create or update the deal")
    properties = body_of(deal, Bundles({"1": ORDER}))["inputs"][0]["properties"]
    assert properties["amount"] == "10.00"


@pytest.mark.parametrize(("first", "last", "expected"), [
    ("Noura", "Ali", "Ali"), ("Noura", "", "Noura"), ("", "", "-"), (None, None, "-")])
def test_zoho_last_name_never_empty(first: str | None, last: str | None, expected: str) -> None:
    contact_sync = blueprints("jeddah-fashion-zoho")["contact-sync"]
    customer = {"id": 7, "email": "a@b.sa", "phone": "0501234567", "first_name": first,
                "last_name": last}
    for module in modules(contact_sync["flow"]):
        if name_of(module) == "Create or update the contact":
            record = body_of(module, Bundles({"1": customer}))["data"][0]
            assert record["Last_Name"] == expected


def test_whatsapp_reminder_repeats_code() -> None:
    runner = blueprints("shopify-growth")["abandoned-checkout-runner"]
    first_route, second_route = module_named(runner, "One route per due day")["routes"]
    discount = next(module for module in modules(first_route["flow"])
                    if name_of(module) == "Create the contact's single-use discount code")
    send = next(module for module in modules(second_route["flow"])
                if name_of(module) == "Send step 2 by whatsapp")
    item = {"id": "901", "properties": {"firstname": "Noura", "ecom_phone_e164": "+966501234567"}}
    first_feeder, second_feeder = first_route["flow"][3]["id"], second_route["flow"][3]["id"]
    issued = evaluate(discount["mapper"]["jsonStringBodyContent"].replace(
        f"{first_feeder}.", f"{second_feeder}."),
        Bundles({str(second_feeder): item, "now": datetime(2026, 12, 2, 10, 0, tzinfo=UTC)}))
    body = body_of(send, Bundles({str(second_feeder): item}))
    button = body["template"]["components"][-1]
    assert button["type"] == "button"
    assert button["sub_type"] == "copy_code"
    code = button["parameters"][0]["coupon_code"]
    assert code.startswith("RABT-")
    assert code in issued
    assert body["to"] == "966501234567"


QUIET_HOURS = {"timezone": "Asia/Riyadh", "windows": [
    {"name": "night", "days": ["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
     "start": "22:00", "end": "09:00"},
    {"name": "friday_prayer", "days": ["fri"], "start": "11:30", "end": "13:30"}]}


@pytest.mark.parametrize(("utc", "quiet"), [
    ("2026-12-04T09:00:00", True),    # Friday 12:00 in Riyadh: the prayer window
    ("2026-12-04T08:29:00", False),   # Friday 11:29
    ("2026-12-04T10:30:00", False),   # Friday 13:30: the window has ended
    ("2026-12-03T09:00:00", False),   # Thursday 12:00
    ("2026-12-01T20:00:00", True),    # Tuesday 23:00
    ("2026-12-02T05:59:00", True),    # Wednesday 08:59
    ("2026-12-02T06:00:00", False),   # Wednesday 09:00
    ("2026-12-02T18:59:00", False),   # Wednesday 21:59
])
def test_quiet_formula_matches_windows(utc: str, quiet: bool) -> None:
    now = datetime.fromisoformat(utc).replace(tzinfo=UTC)
    assert evaluate("{{" + quiet_formula(QUIET_HOURS) + "}}", {"now": now}) is quiet


def test_quiet_filter_crossing_window_one_day() -> None:
    hours = {"timezone": "Asia/Riyadh", "windows": [
        {"days": ["thu"], "start": "23:00", "end": "02:00"}]}
    thursday_night = datetime(2026, 12, 3, 20, 30, tzinfo=UTC)  # Thursday 23:30
    friday_early = datetime(2026, 12, 3, 22, 30, tzinfo=UTC)    # Friday 01:30
    saturday_early = datetime(2026, 12, 4, 22, 30, tzinfo=UTC)  # Saturday 01:30
    formula = "{{" + quiet_formula(hours) + "}}"
    assert evaluate(formula, {"now": thursday_night}) is True
    assert evaluate(formula, {"now": friday_early}) is True
    assert evaluate(formula, {"now": saturday_early}) is False


def cart_runner() -> dict[str, Any]:
    return blueprints("shopify-growth")["abandoned-checkout-runner"]


def test_runner_mark_held_in_quiet_hours() -> None:
    runner = cart_runner()
    read, save, router = runner["flow"]
    assert read["module"] == "datastore:GetRecord"
    assert read["mapper"]["key"] == "abandoned-checkout-runner"
    assert save["mapper"]["data"] == {"since": '{{formatDate(now; "YYYY-MM-DDTHH:mm:ssZ")}}'}
    assert save["filter"]["name"] == QUIET_FILTER_NAME
    night = datetime(2026, 12, 3, 23, 0, tzinfo=UTC)   # Friday 02:00 in Riyadh
    morning = datetime(2026, 12, 4, 6, 0, tzinfo=UTC)  # Friday 09:00
    assert run(runner["flow"], {"now": night}) == [name_of(read)]
    assert name_of(router) in run(runner["flow"], {"now": morning})


def window(search: dict[str, Any], bundles: Mapping[str, Any]) -> tuple[datetime, datetime]:
    body = body_of(search, Bundles(bundles))
    found = body["filterGroups"][0]["filters"][0]
    return (datetime.strptime(found["value"], "%Y-%m-%dT%H:%M:%S%z"),
            datetime.strptime(found["highValue"], "%Y-%m-%dT%H:%M:%S%z"))


def test_runner_window_spans_the_night() -> None:
    runner = cart_runner()
    read = runner["flow"][0]
    first_route = module_named(runner, "One route per due day")["routes"][0]["flow"]
    # The last run before the night window saved its mark at 21:45 on Thursday.
    mark = datetime(2026, 12, 3, 18, 45, tzinfo=UTC)
    morning = datetime(2026, 12, 4, 6, 0, tzinfo=UTC)  # Friday 09:00 in Riyadh
    start, end = window(first_route[1], {"now": morning, str(read["id"]): {
        "since": mark.strftime("%Y-%m-%dT%H:%M:%S%z")}})
    # A checkout at 23:30 on Thursday fell due at 01:30 and is found at 09:00.
    checkout = datetime(2026, 12, 3, 20, 30, tzinfo=UTC)
    assert start <= checkout <= end
    assert start == datetime(2026, 12, 3, 16, 45, tzinfo=UTC)
    assert end == datetime(2026, 12, 4, 4, 0, tzinfo=UTC)


def test_runner_first_window_one_interval() -> None:
    runner = cart_runner()
    first_route = module_named(runner, "One route per due day")["routes"][0]["flow"]
    now = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
    start, end = window(first_route[1], {"now": now})
    assert (end - start).total_seconds() == 15 * 60


def test_runner_sends_step_once() -> None:
    runner = cart_runner()
    second_route = module_named(runner, "One route per due day")["routes"][1]["flow"]
    feeder, check = second_route[3], second_route[4]
    assert check["module"] == "datastore:ExistRecord"
    item = {"id": "901", "properties": {"ecom_last_checkout_at": "2026-12-01T20:00:00+03:00",
                                        "ecom_last_order_at": "",
                                        "ecom_phone_e164": "+966501234567"}}
    assert evaluate(check["mapper"]["key"], {str(feeder["id"]): item}) == (
        "abandoned-checkout-runner:wait_2:901:2026-12-01T20:00:00+03:00")
    bundles = {str(feeder["id"]): item, "now": datetime(2026, 12, 2, 10, 0, tzinfo=UTC),
               **subscribed(second_route, "whatsapp")}
    ran = run(second_route, bundles)
    assert ran[-2:] == ["Send step 2 by whatsapp",
                        "Remember the step as sent (data store processed_events)"]
    sent = run(second_route, {**bundles, str(check["id"]): {"exist": True}})
    assert "Send step 2 by whatsapp" not in sent


TWO_LINES = {**ORDER, "line_items": [{"id": 11, "sku": "OUD-50"}, {"id": 12, "sku": "MSK-10"}]}
REMEMBER = "Remember the event (data store processed_events)"


def line_item_run(items_written: list[int]) -> list[str]:
    """Return the modules that run on the first contact route, given the items written."""
    order_sync = blueprints_with_ids("shopify-growth")["order-sync"]
    route = module_named(order_sync, "Route by the email and phone the record carries")[
        "routes"][0]["flow"]
    aggregate = next(module for module in modules(route)
                     if module["module"] == "builtin:BasicAggregator")
    feeder = next(module for module in modules(route) if name_of(module) == "Each of line_items")
    assert aggregate["parameters"] == {"feeder": feeder["id"]}
    assert aggregate["mapper"] == {"itemId": f"{{{{{feeder['id']}.id}}}}"}
    array = [{"itemId": str(item)} for item in items_written]
    return run(route, {"1": TWO_LINES, str(aggregate["id"]): {"array": array}})


def test_line_items_remembered_once_after_all() -> None:
    ran = line_item_run([11, 12])
    assert ran[-2:] == ["Collect the items written", REMEMBER]
    assert ran.count(REMEMBER) == 1


def test_failed_line_item_not_remembered() -> None:
    # Item 11's write failed and item 12's succeeded: the event is not marked processed.
    assert REMEMBER not in line_item_run([12])
    assert REMEMBER not in line_item_run([])


def test_remember_once_per_path_after_loop() -> None:
    order_sync = blueprints_with_ids("shopify-growth")["order-sync"]
    for route in module_named(order_sync, "Route by the email and phone the record carries")[
            "routes"]:
        names = [name_of(module) for module in modules(route["flow"])]
        if "Each of line_items" not in names:
            continue
        assert names.count(REMEMBER) == 1
        assert names.index("Each of line_items") < names.index("Collect the items written") \
            < names.index(REMEMBER)


def test_runner_remembers_per_contact() -> None:
    # The send-once check sits inside the loop over due contacts, so it needs no aggregator.
    runner = cart_runner()
    names = [module["module"] for module in modules(runner["flow"])]
    assert "builtin:BasicAggregator" not in names


def first_cart_route(preset: str = "shopify-growth") -> list[dict[str, Any]]:
    runner = blueprints(preset)["abandoned-checkout-runner"]
    flow: list[dict[str, Any]] = module_named(runner, "One route per due day")["routes"][0]["flow"]
    return flow


def saved_page(save: dict[str, Any], bundles: Mapping[str, Any]) -> dict[str, Any]:
    """Return the page record the save module writes; a missing value is Make's empty text."""
    data = save["mapper"]["data"].items()
    return {name: evaluate(value, Bundles(bundles)) or "" for name, value in data}


def test_runner_full_page_kept_for_next_run() -> None:
    read = cart_runner()["flow"][0]
    page, search, save = first_cart_route()[:3]
    assert save["mapper"]["key"] == page["mapper"]["key"] == "abandoned-checkout-runner:wait_delay"
    mark = {"since": "2026-12-02T09:45:00+0000"}
    now = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
    full = {"now": now, str(read["id"]): mark,
            str(search["id"]): {"data": {"results": [{"id": "1"}] * 200,
                                         "paging": {"next": {"after": "200"}}}}}
    kept = saved_page(save, full)
    assert kept == {"after": "200", "since": "2026-12-02T07:45:00+0000"}
    # The next run reads the next page of the same window, up to its own now.
    later = datetime(2026, 12, 2, 10, 15, tzinfo=UTC)
    bundles = Bundles({"now": later, str(read["id"]): {"since": "2026-12-02T10:00:00+0000"},
                       str(page["id"]): kept})
    body = body_of(search, bundles)
    assert body["after"] == "200"
    assert body["sorts"] == [{"propertyName": "ecom_last_checkout_at", "direction": "ASCENDING"}]
    start, end = window(search, bundles)
    assert start == datetime(2026, 12, 2, 7, 45, tzinfo=UTC)
    assert end == datetime(2026, 12, 2, 8, 15, tzinfo=UTC)


def test_runner_last_page_clears_record() -> None:
    page, search, save = first_cart_route()[:3]
    bundles = {"now": datetime(2026, 12, 2, 10, 0, tzinfo=UTC),
               str(page["id"]): {"after": "200", "since": "2026-12-02T07:45:00+0000"},
               str(search["id"]): {"data": {"results": [{"id": "1"}]}}}
    assert saved_page(save, bundles) == {"after": "", "since": ""}
    # Without a kept page the search starts at the first result.
    assert body_of(search, Bundles({"now": bundles["now"]}))["after"] == "0"


def test_zoho_runner_pages_by_number() -> None:
    page, search, save = first_cart_route("jeddah-fashion-zoho")[:3]
    query = {item["name"]: item["value"] for item in search["mapper"]["queryParameters"]}
    assert query["page"] == f"{{{{ifempty({page['id']}.after; 1)}}}}"
    now = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
    more = {"now": now, str(page["id"]): {"after": "2", "since": "2026-12-02T07:45:00+0000"},
            str(search["id"]): {"data": {"info": {"more_records": True}}}}
    assert saved_page(save, more) == {"after": 3.0, "since": "2026-12-02T07:45:00+0000"}
    first = {"now": now, str(search["id"]): {"data": {"info": {"more_records": True}}}}
    assert saved_page(save, first)["after"] == 2.0
    done = {"now": now, str(search["id"]): {"data": {"info": {"more_records": False}}}}
    assert saved_page(save, done) == {"after": "", "since": ""}


def test_headless_loop_reads_nested_items() -> None:
    order_sync = blueprints("headless-nextjs", json.dumps({"path": "ipaas"}))["order-sync"]
    feeders = [module for module in modules(order_sync["flow"])
               if module["module"] == "builtin:BasicFeeder"]
    assert feeders
    for feeder in feeders:
        assert feeder["mapper"]["array"] == "{{1.order.line_items}}"
    remember = [module for module in modules(order_sync["flow"]) if name_of(module) == REMEMBER
                and module.get("filter", {}).get("name") == "Every item written"]
    assert remember
    for module in remember:
        condition = module["filter"]["conditions"][0][0]
        assert 'join(map(1.order.line_items; "id"); ",")' in condition["a"]
