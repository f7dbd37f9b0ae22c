"""Make routes around a contact write: a JSON body never carries an empty email or phone.

A Make JSON body is text with formulas filled in, so it cannot leave a key out when
its value is empty. The blueprints therefore route each record by the identity
values it carries, and each route sends a body built for that case. One route has
the email and the phone, one has no email key and one has no phone key. The order
flow adds a route for an order with neither email nor phone, which writes the deal
without a contact.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from generator.ipaas.flows import Step
from generator.ipaas.make_builder import WON_STAGE, Y_STEP, Builder, both_conditions
from generator.ipaas.make_records import upsert_modules

# The mapped value names of the contact's email and phone, as the spec's contact map names them.
EMAIL_VALUE = "email"
PHONE_VALUE = "phone"
# The router whose routes exclude each other: exactly one of them runs for a record.
CONTACT_ROUTER_NAME = "Route by the email and phone the record carries"


@dataclass(frozen=True)
class Variant:
    """One route of a record router: its filter and the modules it runs."""

    name: str
    conditions: list[list[dict[str, str]]]
    build: Callable[[int], list[dict[str, Any]]]


def is_set(formula: str) -> dict[str, str]:
    """Return the filter condition that passes when ``formula`` has a value."""
    return {"a": "{{" + formula + "}}", "o": "text:notequal", "b": ""}


def is_empty(formula: str) -> dict[str, str]:
    """Return the filter condition that passes when ``formula`` is empty."""
    return {"a": "{{" + formula + "}}", "o": "text:equal", "b": ""}


def variant_router(builder: Builder, name: str, variants: list[Variant],
                   y: int) -> list[dict[str, Any]]:
    """Return a router with one filtered route per variant.

    Every route starts from the mapped values known before the router, so an id that
    one route's upsert returns is never read on another route, where Make has no such
    module. A variant that builds no module gets no route.
    """
    # Make allows no filter on a router, so a filter still pending from an earlier
    # step joins each route's own conditions.
    pending, builder.pending_filter = builder.pending_filter, None
    router = builder.module("builtin:BasicRouter", None, name, y)
    start_x = builder.x
    saved = (dict(builder.values), set(builder.safe_values), set(builder.unquoted_values),
             builder.item_id)
    routes = []
    for index, variant in enumerate(variants):
        builder.values, builder.safe_values, builder.unquoted_values = (
            dict(saved[0]), set(saved[1]), set(saved[2]))
        builder.item_id = saved[3]
        builder.x = start_x
        builder.pending_filter = {"name": variant.name,
                                  "conditions": both_conditions(pending, variant.conditions)}
        flow = variant.build(y + index * Y_STEP)
        builder.pending_filter = None
        if flow:
            routes.append({"flow": flow})
    router["routes"] = routes
    return [router]


def phone_values(builder: Builder) -> frozenset[str]:
    """Return the names of every mapped value whose formula is the phone's.

    The contact map can write one phone to several fields, such as HubSpot's ``phone``
    and the unique ``ecom_phone_e164``. A body for a record without a phone leaves out
    every one of them.
    """
    phone = builder.values.get(PHONE_VALUE)
    if phone is None:
        return frozenset()
    return frozenset(name for name, formula in builder.values.items() if formula == phone)


def contact_router(builder: Builder, upsert: Step, rest: tuple[Step, ...], y: int,
                   later: Callable[[tuple[Step, ...], int], list[dict[str, Any]]],
                   ) -> list[dict[str, Any]] | None:
    """Return the router that writes the contact by what the record carries, then ``rest``.

    The routes, in order, are for a record with an email and a phone, and for one with
    a phone and no email, whose body has no email key. When later steps write other
    records, a route for neither skips the contact but still runs them, so the deal is
    written without a contact link. The last route is for an email and no phone, whose
    body has no phone key. Returns None when the contact map has no email or phone
    value to route on.
    """
    email, phone = builder.values.get(EMAIL_VALUE), builder.values.get(PHONE_VALUE)
    if email is None or phone is None:
        return None

    def with_contact(leave_out: frozenset[str]) -> Callable[[int], list[dict[str, Any]]]:
        def build(route_y: int) -> list[dict[str, Any]]:
            return [*upsert_modules(builder, upsert, route_y, leave_out), *later(rest, route_y)]
        return build

    variants = [
        *_by_stage(builder, Variant("Email and phone", [[is_set(email), is_set(phone)]],
                                    with_contact(frozenset())), with_contact),
        *_by_stage(builder, Variant("Phone only: the body has no email key",
                                    [[is_empty(email), is_set(phone)]],
                                    with_contact(frozenset({EMAIL_VALUE}))), with_contact,
                   frozenset({EMAIL_VALUE})),
    ]
    if any(step.kind == "upsert" for step in rest):
        variants.append(Variant("Neither email nor phone: no contact to write",
                                [[is_empty(email), is_empty(phone)]],
                                lambda route_y: later(rest, route_y)))
    # An empty phone is never sent: HubSpot rejects an empty value for the unique
    # phone property, and on Zoho it would clear a phone the contact already has.
    variants.extend(_by_stage(builder, Variant("Email only: the body has no phone key",
                                               [[is_set(email), is_empty(phone)]],
                                               with_contact(phone_values(builder))),
                              with_contact, phone_values(builder)))
    return variant_router(builder, CONTACT_ROUTER_NAME, variants, y)


def _by_stage(builder: Builder, variant: Variant,
              with_contact: Callable[[frozenset[str]], Callable[[int], list[dict[str, Any]]]],
              leave_out: frozenset[str] = frozenset()) -> list[Variant]:
    """Return ``variant`` split by whether the order is won, when the map has such values.

    A value written only from a won order (the latest order time) cannot be left empty
    in the body, because an empty value clears the CRM field. So an order in another
    stage takes a route whose body has no such key.
    """
    if not builder.won_only_values or builder.won_formula is None:
        return [variant]
    won = "{{" + builder.won_formula + "}}"
    paid = {"a": won, "o": "text:equal", "b": WON_STAGE}
    unpaid = {"a": won, "o": "text:notequal", "b": WON_STAGE}
    return [
        Variant(f"{variant.name}; won order",
                [[*group, paid] for group in variant.conditions], variant.build),
        Variant(f"{variant.name}; order not won: no latest order time",
                [[*group, unpaid] for group in variant.conditions],
                with_contact(leave_out | frozenset(builder.won_only_values))),
    ]
