"""The Make consent scenario: one route per channel whose consent state the body carries.

A body without a channel's state (a Shopify customers/update body has no WhatsApp
metafield) must leave that channel's CRM fields alone. A Make JSON body cannot drop a
key, so each channel gets its own routes. A route writes the identity fields and that
channel's consent fields. On HubSpot it then reads the channel's subscription status
and sets it, unless the store sent an opt-in and HubSpot records an opt-out.

HubSpot's subscription type ids differ per account. The user enters them once in the
data store ``rabt_settings``, record ``hubspot``, which the workflows README describes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from generator.ipaas import make_iml
from generator.ipaas.crm_calls import CrmCall
from generator.ipaas.flows import Step
from generator.ipaas.make_builder import Builder, source_ref
from generator.ipaas.make_contact import (
    EMAIL_VALUE,
    PHONE_VALUE,
    Variant,
    is_empty,
    is_set,
    phone_values,
    variant_router,
)
from generator.ipaas.make_http import http_module
from generator.ipaas.make_records import upsert_modules
from generator.ipaas.make_zoho_consent import zoho_consent_modules

SETTINGS_STORE = "rabt_settings"
# The consent router: per channel, one route for each case of email and phone the
# record carries, and at most one of them runs.
CONSENT_ROUTER_NAME = "One route per channel with a consent state"
HUBSPOT_SETTINGS_KEY = "hubspot"
# The explanation sent with a HubSpot status when the body carries no consent wording.
DEFAULT_LEGAL_EXPLANATION = "Consent given at the online store"


def subscription_field(channel: str) -> str:
    """Return the field of the HubSpot settings record that contains a channel's subscription id."""
    return f"{channel}_subscription_id"


def settings_module(builder: Builder, y: int) -> dict[str, Any]:
    """Return the module that reads the HubSpot settings record the user fills once."""
    return builder.module("datastore:GetRecord",
                          {"key": HUBSPOT_SETTINGS_KEY, "returnWrapped": False},
                          f"Read the HubSpot settings (data store {SETTINGS_STORE})", y)


def _granted(state: str, granted: list[str]) -> str:
    value = f"lower(trim(toString({state})))"
    return " or ".join(f"{value} = {make_iml.literal(str(item).lower())}"
                       for item in granted) or "false"


def _status_module(builder: Builder, call: CrmCall, channel: str, state: str,
                   granted: list[str], settings_id: int, y: int) -> dict[str, Any]:
    """Return the HubSpot status write of one channel, for the contact's email or phone.

    The email channel's subscriber is the email and the SMS and WhatsApp channels'
    subscriber is the phone in E.164, as in the n8n workflow.
    """
    subscriber = builder.values[EMAIL_VALUE if channel == "email" else PHONE_VALUE]
    builder.values.update({
        "consent status": f'if({_granted(state, granted)}; "SUBSCRIBED"; "NOT_SUBSCRIBED")',
        "subscription id": f"{settings_id}.{subscription_field(channel)}",
        "consent wording": builder.values.get(f"{channel}_consent_wording",
                                              make_iml.literal(DEFAULT_LEGAL_EXPLANATION)),
    })
    builder.safe_values.add("consent status")
    endpoint = call.endpoint.replace("{subscriber_id}", "{{" + subscriber + "}}")
    return http_module(builder, replace(call, endpoint=endpoint),
                       f"Set the {channel} subscription status", y)


def _status_read_module(builder: Builder, call: CrmCall, channel: str, state: str,
                        granted: list[str], y: int) -> dict[str, Any]:
    """Return the read of the contact's current status, and filter the write after it.

    An opt-out recorded on either side wins, so the filter lets an opt-in through
    only when HubSpot reports no NOT_SUBSCRIBED status on the channel: the store's
    opt-in never re-subscribes a contact who unsubscribed in HubSpot.
    """
    subscriber = builder.values[EMAIL_VALUE if channel == "email" else PHONE_VALUE]
    endpoint = call.endpoint.replace("{subscriber_id}", "{{" + subscriber + "}}")
    read = CrmCall(system="hubspot", action=f"read {channel} subscription status",
                   method="GET", base_url=call.base_url, endpoint=endpoint,
                   query={"channel": channel.upper()})
    module = http_module(builder, read, f"Read the current {channel} subscription status", y)
    # NOTE: the v4 status read is taken to return results[] of {channel, status}, where
    # NOT_SUBSCRIBED is an opt-out; the shape is not confirmed against the live docs.
    statuses = f'map({module["id"]}.data.results; "status"; "channel"; "{channel.upper()}")'
    opted_out = f'contains({statuses}; "NOT_SUBSCRIBED")'
    builder.require({
        "name": f"A store opt-in does not re-subscribe a {channel} opt-out made in HubSpot",
        "conditions": [[{"a": "{{if((" + _granted(state, granted) + ") and " + opted_out +
                         '; "skip"; "write")}}', "o": "text:equal", "b": "write"}]]})
    return module


@dataclass(frozen=True)
class _ChannelRoute:
    """Facts of one channel's routes: its state, granted values and status write."""

    channel: str
    state: str
    granted: list[str]
    leave_out: frozenset[str]
    status: CrmCall | None
    settings_id: int

    def build(self, builder: Builder, contact_step: Step, with_email: bool, with_phone: bool,
              y: int) -> list[dict[str, Any]]:
        """Return the contact upsert of this channel's fields, then its HubSpot status write."""
        leave_out = self.leave_out if with_email else self.leave_out | {EMAIL_VALUE}
        if not with_phone:
            leave_out |= phone_values(builder)
        if builder.crm == "zoho":
            return zoho_consent_modules(builder, contact_step, y, leave_out)
        found = upsert_modules(builder, contact_step, y, leave_out)
        if self.status is None or (self.channel == "email" and not with_email) or (
                self.channel != "email" and not with_phone):
            return found
        found.append(_status_read_module(builder, self.status, self.channel, self.state,
                                         self.granted, y))
        found.append(_status_module(builder, self.status, self.channel, self.state,
                                    self.granted, self.settings_id, y))
        return found


def _identity_cases(email: str | None,
                    phone: str | None) -> list[tuple[str, list[dict[str, str]], bool, bool]]:
    """Return each case of email and phone a record may carry, with its filter conditions.

    Each case is its label, its conditions and whether the body has an email and a
    phone. A body never carries an empty email or phone, so each case gets its route.
    """
    emails = [("with an email", [is_set(email)], True),
              ("no email", [is_empty(email)], False)] if email else [("", [], True)]
    phones = [("a phone", [is_set(phone)], True),
              ("no phone", [is_empty(phone)], False)] if phone else [("", [], True)]
    cases = []
    for email_label, email_conditions, has_email in emails:
        for phone_label, phone_conditions, has_phone in phones:
            label = ", ".join(part for part in (email_label, phone_label) if part)
            cases.append((label, [*email_conditions, *phone_conditions], has_email, has_phone))
    return cases


def consent_modules(builder: Builder, step: Step, y: int) -> list[dict[str, Any]]:
    """Return the consent scenario's writes: per channel, with and without an email."""
    channels: dict[str, dict[str, Any]] = dict(step.params["channels"])
    upsert, *writes = step.calls
    statuses = {str(call.body["channel"]).lower(): call for call in writes}
    modules = []
    settings_id = 0
    if statuses:
        settings = settings_module(builder, y)
        settings_id = int(settings["id"])
        modules.append(settings)
    email = builder.values.get(EMAIL_VALUE)
    contact_step = replace(step, calls=(upsert,))
    variants = []
    for channel, facts in channels.items():
        state = source_ref(builder, str(facts["source"]))
        route = _ChannelRoute(
            channel=channel, state=state, granted=list(facts["granted"]),
            leave_out=frozenset(name for name in builder.values for other in channels
                                if other != channel and name.startswith(f"{other}_consent_")),
            status=statuses.get(channel), settings_id=settings_id)
        for case, conditions, has_email, has_phone in _identity_cases(
                email, builder.values.get(PHONE_VALUE)):
            name = f"{facts['label']} state sent" + (f", {case}" if case else "")
            variants.append(Variant(name, [[is_set(state), *conditions]],
                                    partial(route.build, builder, contact_step, has_email,
                                            has_phone)))
    modules.extend(variant_router(builder, CONSENT_ROUTER_NAME, variants, y))
    return modules
