"""Contact roll-ups from the store's paid orders: count, lifetime value, first and last order.

``integration/mapping.yaml`` defines the roll-ups and which orders count:

* An order is paid when its status leads to a won stage in ``order_stages``. For
  WooCommerce these are ``processing`` and ``completed``, so a cancelled, failed or
  refunded order does not count.
* Its value is ``total`` minus every refund in ``refunds[]`` (WooCommerce lists them
  as negative amounts), so a partial refund lowers the lifetime value. An order
  refunded in full without a status change does not count either.
* The first and last order times are the ``date_created_gmt`` of the earliest and
  the latest paid order.

Orders of a registered customer are matched by ``customer_id``. A guest order
(``customer_id`` 0) is matched by its billing email, or by its phone when it has no
email, which are the keys ``collect.dedupe`` uses. A registered customer also gets
the guest orders placed with the account's email, because the CRM keeps one contact
for that email. Each run recomputes the values from every paid order, so a
cancelled or refunded order is taken out again.

For Zoho CRM the same pass sets the SMS and WhatsApp consent checkboxes from the
paid orders' meta, as ``consent.py`` describes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from .consent import ConsentRule, order_consent
from .crm import target_of
from .errors import InvalidInput
from .logs import JsonLog
from .runtime.money import HOME_CURRENCY, parse_amount, quantize_sar
from .store import Contact, StoreReader

# The roll-ups this module computes. The spec's other roll-ups (sources, carts,
# consent, playbook fields) need data that the store's order list does not have.
ORDER_ROLLUPS = ("orders_count", "ltv_sar", "first_order_at", "last_order_at")


@dataclass
class Totals:
    """The paid orders of one contact, added up."""

    count: int = 0
    net: Decimal = Decimal("0")
    first: datetime | None = None
    last: datetime | None = None
    # The newest explicit consent per Zoho checkbox: field -> (order time, value).
    consent: dict[str, tuple[datetime, bool]] = field(default_factory=dict)

    def note_consent(self, values: Mapping[str, bool], created: datetime | None) -> None:
        """Keep each checkbox value unless a newer order already set that checkbox."""
        moment = created or datetime.min
        for target, value in values.items():
            if target not in self.consent or self.consent[target][0] <= moment:
                self.consent[target] = (moment, value)

    def add(self, net: Decimal | None, created: datetime | None) -> None:
        """Count one paid order, whose ``net`` is None when it is in another currency."""
        self.count += 1
        if net is not None:
            self.net += net
        if created is not None:
            self.first = created if self.first is None else min(self.first, created)
            self.last = created if self.last is None else max(self.last, created)

    def merged(self, other: Totals) -> Totals:
        """Return the sum of both totals."""
        result = Totals(self.count, self.net, self.first, self.last)
        result.count += other.count
        result.net += other.net
        for moment in (other.first, other.last):
            if moment is not None:
                result.first = moment if result.first is None else min(result.first, moment)
                result.last = moment if result.last is None else max(result.last, moment)
        result.consent = dict(self.consent)
        for target, (moment, value) in other.consent.items():
            result.note_consent({target: value}, moment)
        return result


def rollup_targets(mapping: Mapping[str, Any]) -> dict[str, str]:
    """Return the CRM property of each order roll-up the mapping defines, by roll-up name."""
    entities = mapping.get("entities") or {}
    contact = entities.get("contact") if isinstance(entities, Mapping) else None
    rollups = contact.get("rollups") if isinstance(contact, Mapping) else None
    return {str(item["name"]): str(item["target"]) for item in rollups or []
            if isinstance(item, Mapping) and item.get("name") in ORDER_ROLLUPS
            and item.get("target")}


def paid_statuses(mapping: Mapping[str, Any]) -> tuple[str, ...]:
    """Return the order statuses whose stage is won in ``order_stages``, in rule order.

    Raises:
        InvalidInput: The mapping has order roll-ups but no status leads to a won stage.
    """
    table = mapping.get("order_stages") or {}
    won = {str(stage.get("key")) for stage in table.get("stages") or []
           if isinstance(stage, Mapping) and stage.get("won")}
    rules = table.get("rules") or []
    if isinstance(rules, Mapping):  # rules kept per platform
        rules = rules.get("woocommerce") or []
    statuses: list[str] = []
    for rule in rules:
        when = rule.get("when") if isinstance(rule, Mapping) else None
        if not isinstance(when, Mapping) or rule.get("stage") not in won:
            continue
        for status in when.get("status") or []:
            if str(status) not in statuses:
                statuses.append(str(status))
    if not statuses:
        raise InvalidInput("integration/mapping.yaml has no order status that leads to a won "
                           "stage, so no order counts as paid for the roll-ups",
                           "regenerate the project, or mark the paid stages won: true")
    return tuple(statuses)


def order_net(order: Mapping[str, Any]) -> Decimal | None:
    """Return the order's total minus its refunds, or None when it is not in SAR.

    A total that is not an amount counts as 0, so the order still counts once.
    """
    currency = str(order.get("currency") or HOME_CURRENCY).strip().upper()
    if currency != HOME_CURRENCY:
        return None
    total = parse_amount(order.get("total")) or Decimal("0")
    refunded = Decimal("0")
    for refund in order.get("refunds") or []:
        amount = parse_amount(refund.get("total")) if isinstance(refund, Mapping) else None
        if amount is not None:
            refunded += abs(amount)
    return total - refunded


def _created(order: Mapping[str, Any]) -> datetime | None:
    text = str(order.get("date_created_gmt") or "")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.replace(microsecond=0)


class RollupBook:
    """Paid orders added up per registered customer and per guest key."""

    def __init__(self, email_key: str | None, phone_key: str | None,
                 consent_rules: list[ConsentRule] | None = None) -> None:
        self.email_key = email_key
        self.phone_key = phone_key
        self.consent_rules = consent_rules or []
        self.by_customer: dict[int, Totals] = {}
        self.by_guest: dict[tuple[str, str], Totals] = {}
        self.orders = 0
        self.refunded_in_full = 0
        self.not_sar = 0

    def add(self, order: Mapping[str, Any], guest: Contact | None) -> None:
        """Count one paid order, with ``guest`` the mapped contact when it is a guest order.

        The consent in an order refunded in full still counts, because the customer
        gave it at checkout either way.
        """
        totals = self._totals_of(order, guest)
        if totals is not None:
            totals.note_consent(order_consent(order, self.consent_rules), _created(order))
        net = order_net(order)
        if net is None:
            self.not_sar += 1
        elif net <= 0 and order.get("refunds"):
            self.refunded_in_full += 1
            return
        self.orders += 1
        if totals is not None:
            totals.add(net, _created(order))

    def _totals_of(self, order: Mapping[str, Any], guest: Contact | None) -> Totals | None:
        customer_id = int(order.get("customer_id") or 0)
        if customer_id > 0:
            return self.by_customer.setdefault(customer_id, Totals())
        key = self._guest_key(guest)
        return self.by_guest.setdefault(key, Totals()) if key is not None else None

    def _guest_key(self, contact: Contact | None) -> tuple[str, str] | None:
        if contact is None:
            return None
        for name, key in (("email", self.email_key), ("phone", self.phone_key)):
            value = contact.properties.get(key) if key else None
            if value:
                return name, str(value).casefold()
        return None

    def totals(self, contact: Contact) -> Totals:
        """Return the paid orders of the contact as the CRM will store it."""
        if contact.source != "customer":
            key = self._guest_key(contact)
            return self.by_guest.get(key, Totals()) if key else Totals()
        totals = self.by_customer.get(contact.source_id, Totals())
        email = contact.properties.get(self.email_key) if self.email_key else None
        if email:
            totals = totals.merged(self.by_guest.get(("email", str(email).casefold()), Totals()))
        return totals


def read_paid_orders(reader: StoreReader, statuses: Iterable[str], book: RollupBook) -> None:
    """Page through every paid order of the store and add it to ``book``."""
    params = {"status": ",".join(statuses), "orderby": "id", "order": "asc",
              "dates_are_gmt": "true"}
    for page in reader.pages("orders", params):
        for order in page:
            guest = None
            if int(order.get("customer_id") or 0) <= 0:
                guest = reader.contact("order", order)
            book.add(order, guest)


def _iso(moment: datetime | None) -> str | None:
    # Zoho's datetime fields take yyyy-MM-ddTHH:mm:ss+HH:mm, and HubSpot gets the same
    # ISO 8601 form that the runtime's iso_datetime writes for deal dates.
    return moment.strftime("%Y-%m-%dT%H:%M:%S+00:00") if moment is not None else None


def rollup_values(totals: Totals, targets: Mapping[str, str], crm: str) -> dict[str, Any]:
    """Return the roll-up properties of one contact, typed for ``crm``.

    HubSpot takes every value as text and clears a property with an empty string.
    Zoho CRM wants numbers as JSON numbers and clears a field with null. A contact
    with no paid order gets a count and a value of 0 and empty dates, so an order
    cancelled since the last run is taken out.
    """
    ltv = quantize_sar(totals.net)
    values: dict[str, Any] = {
        "orders_count": totals.count,
        # A two-place amount below 10**15 reads back from float unchanged, and JSON
        # has no decimal type, so Zoho gets the same digits that HubSpot gets as text.
        "ltv_sar": float(ltv) if crm == "zoho" else ltv,
        "first_order_at": _iso(totals.first),
        "last_order_at": _iso(totals.last),
    }
    properties: dict[str, Any] = {}
    for name, target in targets.items():
        value = values[name]
        if crm == "hubspot":
            value = "" if value is None else str(value)
        properties[target] = value
    return properties


def add_rollups(reader: StoreReader, mapping: Mapping[str, Any], contacts: list[Contact],
                log: JsonLog, consent_rules: list[ConsentRule] | None = None) -> None:
    """Read the store's paid orders and add the order roll-ups and consent to each contact."""
    targets = rollup_targets(mapping)
    if not (targets or consent_rules) or not contacts:
        return
    book = RollupBook(target_of(mapping, "email"), target_of(mapping, "phone"), consent_rules)
    read_paid_orders(reader, paid_statuses(mapping), book)
    crm = str(mapping.get("crm"))
    with_orders = with_consent = 0
    for contact in contacts:
        totals = book.totals(contact)
        with_orders += totals.count > 0
        with_consent += bool(totals.consent)
        contact.properties.update(rollup_values(totals, targets, crm))
        contact.properties.update({target: value for target, (_, value) in totals.consent.items()})
    log.info("rollups_read", paid_orders=book.orders, refunded_in_full=book.refunded_in_full,
             not_sar=book.not_sar, contacts=len(contacts), contacts_with_orders=with_orders,
             contacts_with_order_consent=with_consent)
    if book.not_sar:
        log.warning("orders_not_sar", orders=book.not_sar,
                    reason="counted in orders_count and the dates, left out of ltv_sar")

