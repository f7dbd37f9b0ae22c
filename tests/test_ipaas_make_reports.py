"""Make failure reports and module names: event and record ids, searches named as such."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from generator.ipaas.make_http import ERROR_HOOK_URL
from tests.ipaas_cases import IPAAS_CASES
from tests.test_ipaas_make import blueprints_for, modules

CRM_CASES = [case for case in IPAAS_CASES if case[0] != "shopify-postgres"]
RUN_TIME = 'toString("run " + formatDate(now; '


def reports(flow: list[dict[str, Any]], before: tuple[dict[str, Any], ...] = ()
            ) -> Iterator[tuple[dict[str, Any], tuple[dict[str, Any], ...]]]:
    """Yield each failure report with the modules that run before it on its path."""
    path = before
    for module in flow:
        if module["module"] == "http:MakeRequest" and module["mapper"]["url"] == ERROR_HOOK_URL:
            yield module, path
        yield from reports(module.get("onerror", []), (*path, module))
        for route in module.get("routes", []):
            yield from reports(route["flow"], (*path, module))
        path = (*path, module)


def report_field(report: dict[str, Any], name: str) -> str:
    """Return the start of the formula of one field of a report body, up to its first ``;``.

    The dedupe key of a store webhook reads the event id header first, so its formula
    starts with ``toString(ifempty(first(map(<trigger>.__IMTHEADERS__``.
    """
    body = report["mapper"]["jsonStringBodyContent"]
    match = re.search(rf'"{name}": "\{{\{{replace\(replace\(replace\(replace\(replace\('
                      r'(toString\((?:"run " \+ formatDate\(now; )?[^;)]*)', body)
    assert match is not None, body
    return match.group(1)


def event_id(report: dict[str, Any]) -> str:
    """Return the formula text of the report body's event id."""
    return report_field(report, "event_id")


def record_id(report: dict[str, Any]) -> str:
    """Return the formula text of the report body's record id."""
    return report_field(report, "record_id")


def module_read(formula: str) -> int:
    """Return the id of the module whose output a formula reads first."""
    match = re.search(r"(\d+)\.", formula)
    assert match is not None, formula
    return int(match.group(1))


@pytest.mark.parametrize(("case", "preset", "values"), CRM_CASES, ids=[c[0] for c in CRM_CASES])
def test_make_report_event_id_read_before(case: str, preset: str,
                                          values: dict[str, Any]) -> None:
    for stem, blueprint in blueprints_for(preset, values).items():
        instant = blueprint["metadata"]["instant"]
        found = list(reports(blueprint["flow"]))
        assert found, stem
        for report, before in found:
            for formula in (event_id(report), record_id(report)):
                if formula.startswith(RUN_TIME):
                    assert not instant, stem
                    continue
                module_id = module_read(formula)
                source = next((module for module in before if module["id"] == module_id), None)
                assert source is not None, f"{stem}: {formula} is not read before the report"
                if instant:
                    assert source["module"] == "gateway:CustomWebHook", stem
                else:
                    assert source["module"] in ("builtin:BasicFeeder",
                                                "datastore:SearchRecord"), f"{stem}: {formula}"


def test_make_report_headless_sends_event_id() -> None:
    blueprints = blueprints_for("headless-nextjs", {"path": "ipaas"})
    for stem in ("order-sync", "contact-sync", "abandoned-checkout"):
        for report, _ in reports(blueprints[stem]["flow"]):
            assert event_id(report) == "toString(1.event_id", stem
            assert record_id(report) == "toString(1.event_id", stem


# The start of the dedupe key formula of a Shopify or WooCommerce webhook scenario.
HEADER_KEY = "toString(ifempty(first(map(1.__IMTHEADERS__"


@pytest.mark.parametrize(("preset", "values", "header"), [
    ("shopify-growth", {}, "X-Shopify-Event-Id"),
    ("woo-startup", {"path": "ipaas"}, "X-WC-Webhook-Delivery-ID"),
], ids=["shopify", "woocommerce"])
def test_make_report_sends_dedupe_key(preset: str, values: dict[str, Any], header: str) -> None:
    blueprints = blueprints_for(preset, values)
    found = list(reports(blueprints["order-sync"]["flow"]))
    assert found
    for report, _ in found:
        body = report["mapper"]["jsonStringBodyContent"]
        # The event id is the key the scenario dedupes on, the record id the order's id.
        assert event_id(report) == HEADER_KEY
        assert f'"{header},{header.lower()}"' in body.split('"record_id"')[0]
        assert record_id(report) == "toString(1.id"


def test_make_report_storefront_sends_event_id() -> None:
    blueprints = blueprints_for("shopify-growth", {})
    for report, _ in reports(blueprints["event-sync"]["flow"]):
        assert event_id(report) == "toString(1.event_id"


def test_make_error_alert_passes_ids_on() -> None:
    blueprint = blueprints_for("shopify-growth", {})["error-alert"]
    for report, _ in reports(blueprint["flow"]):
        assert event_id(report) == "toString(1.event_id"
        assert record_id(report) == "toString(1.record_id"
    stores = [module for module in modules(blueprint["flow"])
              if module["module"] == "datastore:AddRecord"]
    assert [module["mapper"]["key"] for module in stores] == ["{{1.event_id}}"]
    assert stores[0]["mapper"]["data"]["record_id"] == "{{1.record_id}}"


def test_make_report_runner_names_record() -> None:
    blueprints = blueprints_for("shopify-growth", {})
    formulas = {event_id(report) for report, _ in
                reports(blueprints["post-purchase-runner"]["flow"])}
    assert formulas, "post-purchase-runner has no failure report"
    assert all(formula.endswith(".key") for formula in formulas), formulas
    runner = blueprints["abandoned-checkout-runner"]["flow"]
    formulas = {event_id(report) for report, _ in reports(runner)}
    assert any(formula.startswith(RUN_TIME) for formula in formulas), formulas
    assert any(formula.endswith(".id") for formula in formulas), formulas


def test_make_runner_search_named_for_search() -> None:
    runner = blueprints_for("shopify-growth", {})["abandoned-checkout-runner"]["flow"]
    names = [module["metadata"]["designer"]["name"] for module in modules(runner)
             if module["module"] == "http:MakeRequest"]
    assert "Find the contacts whose checkout fell due (the abandoned-cart delay)" in names
    assert not [name for name in names if name.startswith("Wait")]
