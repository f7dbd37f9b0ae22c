"""Order and ticket statuses to pipeline stages, from the stage tables in mapping.yaml.

A stage table has ``stages`` (each with ``key`` and ``crm_value``) and ``rules``
(each with ``when`` and ``stage``). Rules are read top to bottom and the first rule
whose every ``when`` field matches wins. A ``when`` field matches when:

- its expected value is a list and the status field's value is in it (``null`` in
  the list matches a field that is null or absent);
- its expected value is "set" and the field has a value (Shopify ``cancelled_at``);
- otherwise, the field equals the expected value. The abandoned-cart timer marks
  the checkout it maps with ``"checkout": "abandoned"``, which no webhook body
  carries, to reach the ``{checkout: abandoned}`` rule.

Both transforms write ``{"key": <stage key>, "crm_value": <CRM value or None>}``.
``crm_value`` stays None until set-up stores the stage id the CRM generated
(HubSpot), so the engine writes ``crm_value`` when present and the key otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .result import TransformContext, Transformed

__all__ = ["DEFAULT_TICKET_STAGES", "match_stage", "status_to_stage", "ticket_status_to_stage"]

# The status field that the mapping's ``source`` names, per source family; the
# engine passes its value when the payload itself does not carry the field.
_PRIMARY_STATUS_FIELD = {
    "shopify": "financial_status",
    "woocommerce": "status",
    "storefront": "status",
}
_SET = "set"
_ABSENT = object()

# Used when mapping.yaml has no ``ticket_stages`` table, which it does not yet.
# NOTE: unconfirmed defaults. HubSpot's default support pipeline is taken to have
# the stage ids "1" (New), "2" (Waiting on contact), "3" (Waiting on us) and "4"
# (Closed), and Zoho Cases the Status values New, On Hold, Escalated and Closed.
# Accounts can change both, so add a ``ticket_stages`` table with the account's
# values to mapping.yaml.
DEFAULT_TICKET_STAGES: Mapping[str, Any] = {
    "rules": [
        {"when": {"status": ["open", "new", "reopened"]}, "stage": "open"},
        {"when": {"status": ["waiting", "pending", "on_hold", "on-hold"]}, "stage": "waiting"},
        {"when": {"status": ["resolved", "closed", "solved"]}, "stage": "resolved"},
    ],
    "crm_values": {
        "hubspot": {"open": "1", "waiting": "2", "resolved": "4"},
        "zoho": {"open": "New", "waiting": "On Hold", "resolved": "Closed"},
    },
}


def match_stage(rules: Sequence[Mapping[str, Any]], facts: Mapping[str, Any]) -> str | None:
    """Return the stage of the first rule whose ``when`` fields all match ``facts``.

    Args:
        rules: Rules in order, each ``{"when": {field: expected}, "stage": key}``.
        facts: Status field values by field name; a field may be absent.

    Returns:
        The stage key, or None when no rule matches.
    """
    for rule in rules:
        when = rule.get("when")
        if isinstance(when, Mapping) and all(
            _matches(expected, facts.get(field, _ABSENT)) for field, expected in when.items()
        ):
            stage = rule.get("stage")
            return str(stage) if stage is not None else None
    return None


def status_to_stage(value: Any, context: TransformContext) -> Transformed:
    """Transform ``status_to_stage``: find the deal stage for the order's status fields.

    The status fields are Shopify's ``financial_status``, ``fulfillment_status``
    and ``cancelled_at``, and ``status`` for WooCommerce and the storefront. They
    are read from the payload, or from its ``order`` object for storefront events.
    ``value`` replaces the primary status field when the payload lacks it.

    Args:
        value: The primary status field's value as the engine resolved it.
        context: The transform context; ``context.mapping["order_stages"]`` is
            the stage table, with ``rules`` either the platform's list (as in a
            generated mapping.yaml) or keyed by platform.

    Returns:
        ``{"key": ..., "crm_value": ...}``, or value None with "unknown_status"
        when no rule matches or the mapping has no stage table.
    """
    table = context.mapping.get("order_stages")
    if not isinstance(table, Mapping):
        return Transformed(value=None, raw=value, flags=("unknown_status",))

    rules = _platform_rules(table.get("rules"), context.platform)
    facts = _order_facts(rules, value, context)
    stage = match_stage(rules, facts)
    if stage is None:
        return Transformed(value=None, raw=value, flags=("unknown_status",))
    return Transformed(value={"key": stage, "crm_value": _crm_value(table, stage)}, raw=value)


def ticket_status_to_stage(value: Any, context: TransformContext) -> Transformed:
    """Transform ``ticket_status_to_stage``: find the ticket stage for an inbox status.

    The table is ``context.mapping["ticket_stages"]`` when present, in the shape of
    ``order_stages`` with rules on ``status``. Otherwise ``DEFAULT_TICKET_STAGES``
    gives the values for ``context.mapping["crm"]``, and for the custom database
    the CRM value is the stage key itself.

    Args:
        value: The inbox status, such as "open", "waiting" or "resolved".
        context: The transform context.

    Returns:
        ``{"key": ..., "crm_value": ...}``, or value None with "unknown_status".
    """
    status = _normalised_status(value)
    table = context.mapping.get("ticket_stages")
    if isinstance(table, Mapping):
        rules = _platform_rules(table.get("rules"), context.platform)
        stage = match_stage(rules, {"status": status})
        crm_value = _crm_value(table, stage) if stage is not None else None
    else:
        stage = match_stage(DEFAULT_TICKET_STAGES["rules"], {"status": status})
        crm = str(context.mapping.get("crm", "custom"))
        crm_value = DEFAULT_TICKET_STAGES["crm_values"].get(crm, {}).get(stage, stage)

    if stage is None:
        return Transformed(value=None, raw=value, flags=("unknown_status",))
    return Transformed(value={"key": stage, "crm_value": crm_value}, raw=value)


def _matches(expected: Any, actual: Any) -> bool:
    if isinstance(expected, list):
        return (None if actual is _ABSENT else actual) in expected
    if expected == _SET:
        return actual is not _ABSENT and actual not in (None, "")
    return bool(actual == expected)


def _platform_rules(rules: Any, platform: str) -> list[Mapping[str, Any]]:
    if isinstance(rules, Mapping):
        rules = rules.get(platform)
    if not isinstance(rules, list):
        return []
    return [rule for rule in rules
            if isinstance(rule, Mapping) and isinstance(rule.get("when"), Mapping)]


def _order_facts(
    rules: Sequence[Mapping[str, Any]], value: Any, context: TransformContext
) -> dict[str, Any]:
    payload = context.payload
    order = payload.get("order")
    holders = [payload, order] if isinstance(order, Mapping) else [payload]
    fields = {field for rule in rules for field in rule["when"]}

    facts: dict[str, Any] = {}
    for field in fields:
        holder = next((item for item in holders if field in item), None)
        if holder is not None:
            facts[field] = _normalised_status(holder[field], field, context.platform)
    primary = _PRIMARY_STATUS_FIELD.get(context.platform)
    if primary is not None and primary not in facts and value is not None:
        facts[primary] = _normalised_status(value, primary, context.platform)
    return facts


def _normalised_status(value: Any, field: str = "status", platform: str = "") -> Any:
    if not isinstance(value, str):
        return value
    status = value.strip().lower()
    # WooCommerce stores statuses as "wc-processing" and some plugins send that form.
    if platform == "woocommerce" and field == "status":
        status = status.removeprefix("wc-")
    # Shopify GraphQL and some apps send UNFULFILLED where the REST body has null.
    if platform == "shopify" and field == "fulfillment_status" and status == "unfulfilled":
        return None
    return status


def _crm_value(table: Mapping[str, Any], stage: str) -> Any:
    for entry in table.get("stages") or ():
        if isinstance(entry, Mapping) and entry.get("key") == stage:
            return entry.get("crm_value")
    return None
