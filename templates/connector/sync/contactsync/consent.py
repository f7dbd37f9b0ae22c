"""SMS and WhatsApp consent checkboxes in Zoho CRM, from the store's order meta.

Zoho CRM has no built-in SMS or WhatsApp consent field, so ``rabt crm apply`` creates
the checkboxes that ``integration/consent.yaml`` names (``Ecom_SMS_Opt_In``,
``Ecom_WhatsApp_Opt_In``). WooCommerce core has no such consent either: a checkout
checkbox writes it as order meta under the key in ``source.field``
(``meta_data[_rabt_sms_opt_in]``). The sync sets a checkbox only from that meta and
never infers consent from anything else:

* a value whose meaning is ``granted`` checks the box, one meaning ``withdrawn``
  clears it;
* a ``not_granted`` value (the box left unticked at checkout) and an order without
  the key change nothing, so consent recorded in the CRM by other means stays;
* of several orders of one contact, the newest order that carries a granted or
  withdrawn value wins.

HubSpot keeps consent in its subscription types, which this sync does not write.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_META_FIELD = re.compile(r"meta_data\[(?P<key>[^\]]+)\]")
# Zoho's consent checkboxes end in _Opt_In; the email channel uses Zoho's own Email_Opt_Out.
_CHECKBOX_SUFFIX = "_Opt_In"


@dataclass(frozen=True)
class ConsentRule:
    """One order meta key and the Zoho checkbox it sets."""

    meta_key: str
    target: str
    # Meta value to checkbox value; values that mean not_granted are left out.
    states: Mapping[str, bool]


def consent_rules(consent: Mapping[str, Any], crm: str) -> list[ConsentRule]:
    """Return the order meta rules of ``integration/consent.yaml`` for the Zoho checkboxes."""
    if crm != "zoho":
        return []
    rules = []
    for channel in consent.get("channels") or []:
        if not isinstance(channel, Mapping):
            continue
        source = channel.get("source") or {}
        fields = (channel.get("target") or {}).get("fields") or []
        match = _META_FIELD.fullmatch(str(source.get("field") or ""))
        if match is None or not fields or not str(fields[0]).endswith(_CHECKBOX_SUFFIX):
            continue
        states = {str(state.get("value")): state.get("meaning") == "granted"
                  for state in source.get("states") or []
                  if isinstance(state, Mapping)
                  and state.get("meaning") in ("granted", "withdrawn")}
        rules.append(ConsentRule(match["key"], str(fields[0]), states))
    return rules


def order_consent(order: Mapping[str, Any], rules: list[ConsentRule]) -> dict[str, bool]:
    """Return the checkbox values the order's meta sets explicitly, by Zoho field."""
    meta = {str(item.get("key")): item.get("value") for item in order.get("meta_data") or []
            if isinstance(item, Mapping)}
    values = {}
    for rule in rules:
        value = meta.get(rule.meta_key)
        if value is not None and str(value) in rule.states:
            values[rule.target] = rule.states[str(value)]
    return values
