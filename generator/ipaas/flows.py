"""The workflows of an iPaaS project as typed data, built from the spec and the plan.

One ``Flow`` per workflow: its trigger, its steps in order (branches carry their
own steps), the field map of each mapping step, the consent gate before each send,
the timings from ``playbooks.yaml`` and the CRM calls each step makes. The Make
blueprints, n8n workflows, Zapier and Tray build sheets and the operations budget
are all rendered from this one model, so they describe the same workflows.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

from generator.arabic_counts import Case, arabic_count
from generator.ipaas import crm_calls, sql_links
from generator.ipaas.crm_calls import CrmCall
from generator.model import Answers, Bilingual, Plan
from generator.spec import segments

StepKind = Literal["dedupe", "filter", "wait", "lookup", "map", "upsert", "associate", "branch",
                   "consent_gate", "discount", "send", "store", "alert"]
TriggerKind = Literal["webhook", "schedule", "error"]

# Days a processed event id stays in the dedupe store. Shopify retries a failed
# delivery 8 times over 4 hours and can deliver up to about a day late.
DEDUPE_TTL_DAYS = 7
# Minutes between reconciliation runs and the time of day (Asia/Riyadh) of the
# daily playbook runs, chosen outside the default quiet hours.
RECONCILE_EVERY_MINUTES = 60
ABANDONED_CHECK_EVERY_MINUTES = 15
DAILY_RUN_AT = "10:00"
DAILY_SYNC_AT = "03:00"
# Minutes between the checks of open tickets against their first-response target.
# A check every 15 minutes alerts on a silent ticket at most 15 minutes after its
# alert point, as long as the shortest default target (WhatsApp).
SLA_CHECK_EVERY_MINUTES = 15
TIMEZONE = "Asia/Riyadh"

# The header or body field that identifies one event, by platform. Shopify's
# X-Shopify-Event-Id is the same on duplicate deliveries; WooCommerce core never
# retries, so its delivery id is unique per event.
EVENT_ID = {
    "shopify": "header X-Shopify-Event-Id",
    "woocommerce": "header X-WC-Webhook-Delivery-ID",
    "headless": "body event_id",
    "custom": "body event_id",
}
WEBHOOK_TOPICS = {
    "shopify": {"contact": ("customers/create", "customers/update"),
                "order": ("orders/create", "orders/updated"),
                "product": ("products/create", "products/update"),
                "checkout": ("checkouts/create", "checkouts/update"),
                "consent": ("customers/update", "customers_marketing_consent/update",
                            "customers_email_marketing_consent/update")},
    "woocommerce": {"contact": ("customer.created", "customer.updated"),
                    "order": ("order.created", "order.updated"),
                    "product": ("product.created", "product.updated"),
                    "checkout": ("checkout_started",),
                    "consent": ("customer.updated",)},
    "storefront": {"contact": ("customer_updated",),
                   "order": ("purchase_completed", "order_updated"),
                   "product": ("product_updated",),
                   "checkout": ("checkout_started",),
                   "consent": ("consent_updated",)},
}
# Source paths of the checkout's fields in the body that starts the abandoned-checkout flow.
CHECKOUT_SOURCES = {
    "shopify": {"token": "token", "cart_token": "cart_token", "email": "email",
                "phone": "phone", "updated_at": "updated_at", "value": "total_price",
                "url": "abandoned_checkout_url"},
    "storefront": {"token": "cart.token", "cart_token": "cart.token", "email": "customer.email",
                   "phone": "customer.phone", "updated_at": "occurred_at", "value": "cart.value",
                   "url": "cart.url"},
}


@dataclass(frozen=True)
class Trigger:
    """The start of a flow: store webhook topics, a schedule, or a failed run elsewhere."""

    kind: TriggerKind
    source: str
    description: Bilingual
    topics: tuple[str, ...] = ()
    every_minutes: int | None = None
    daily_at: str | None = None


@dataclass(frozen=True)
class FieldRow:
    """One row of a field map: where a value comes from, where it goes and how it changes."""

    entity: str
    name: str
    source: str
    target: str
    transform: str
    description: Bilingual
    fallback_sources: tuple[str, ...] = ()
    unique: bool = False
    note: str | None = None
    # The note's Arabic twin, absent when the spec gives the note in English only.
    note_ar: str | None = None
    # The store values that mean consent is granted, for the consent_opt_in and
    # consent_opt_out transforms that turn a consent state into a CRM checkbox.
    granted_values: tuple[str, ...] = ()
    # True for a purchase roll-up (the latest order time): the row is written only
    # when the order's stage is a won stage, as the runtime counts purchases.
    won_only: bool = False


@dataclass(frozen=True)
class ConsentGate:
    """The consent check before a send on one channel, from ``consent.yaml``."""

    channel: str
    label: Bilingual
    source_field: str
    granted_values: tuple[str, ...]
    crm_status: str
    rule: Bilingual
    crm_field: str | None = None

    def crm_condition(self) -> tuple[str, str]:
        """Return ``(operator, value)`` that a CRM record's ``crm_field`` meets when granted.

        Zoho keeps an opt-out flag for email and opt-in flags for SMS and WhatsApp. A
        HubSpot contact carries the time of the consent, which is empty when none is recorded.
        """
        field_name = (self.crm_field or "").lower()
        if "opt_out" in field_name:
            return "equal", "false"
        if "opt_in" in field_name:
            return "equal", "true"
        return "notequal", ""


@dataclass(frozen=True)
class Route:
    """One path of a branch: the condition that selects it and the steps it runs."""

    key: str
    label: Bilingual
    condition: Mapping[str, Any]
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class Step:
    """One step of a flow. ``params`` is plain data; its keys depend on ``kind``."""

    key: str
    kind: StepKind
    title: Bilingual
    params: Mapping[str, Any] = field(default_factory=dict)
    fields: tuple[FieldRow, ...] = ()
    calls: tuple[CrmCall, ...] = ()
    gate: ConsentGate | None = None
    routes: tuple[Route, ...] = ()


@dataclass(frozen=True)
class Flow:
    """One workflow: an id that is also its file name, its trigger and its steps."""

    key: str
    title: Bilingual
    purpose: Bilingual
    module: str
    trigger: Trigger
    steps: tuple[Step, ...]
    dedupe_key: str | None = None
    playbook: str | None = None

    def walk(self) -> Iterator[Step]:
        """Yield every step, depth first, with the steps of each branch route in order."""
        yield from walk_steps(self.steps)

    def field_rows(self) -> tuple[FieldRow, ...]:
        """Return the field-map rows of every step."""
        return tuple(row for step in self.walk() for row in step.fields)

    def calls(self) -> tuple[CrmCall, ...]:
        """Return every call the flow's steps make, in step order."""
        return tuple(call for step in self.walk() for call in step.calls)

    def to_data(self) -> dict[str, Any]:
        """Return the flow as plain data (for templates and debugging)."""
        return asdict(self)


def walk_steps(steps: tuple[Step, ...]) -> Iterator[Step]:
    """Yield ``steps`` and the steps of their routes, depth first."""
    for step in steps:
        yield step
        for route in step.routes:
            yield from walk_steps(route.steps)


@dataclass(frozen=True)
class FlowSet:
    """Every flow of a project, with the facts the platforms' files share."""

    crm: str
    platform: str
    flows: tuple[Flow, ...]
    consent_gates: Mapping[str, ConsentGate]
    quiet_hours: Mapping[str, Any]
    # The spec's field map, for the stage tables and value lists the platforms' files embed.
    mapping: Mapping[str, Any] = field(default_factory=dict)

    def get(self, key: str) -> Flow:
        """Return the flow with id ``key``.

        Raises:
            KeyError: no flow has that id.
        """
        for flow in self.flows:
            if flow.key == key:
                return flow
        raise KeyError(key)

    @property
    def keys(self) -> tuple[str, ...]:
        """Return the flow ids in build order."""
        return tuple(flow.key for flow in self.flows)


def _text(data: Mapping[str, str]) -> Bilingual:
    return Bilingual.from_data(dict(data))


def _store_kind(platform: str) -> str:
    return platform if platform in ("shopify", "woocommerce") else "storefront"


class _Context:
    """The spec documents and plan facts every flow builder reads."""

    def __init__(self, answers: Answers, plan: Plan, spec: Mapping[str, Mapping[str, Any]]):
        self.answers = answers
        self.plan = plan
        self.crm = plan.crm
        self.platform = plan.platform
        self.store = _store_kind(plan.platform)
        self.mapping = spec["mapping"]
        self.playbooks = spec["playbooks"]
        self.consent = spec["consent"]
        self.transforms = {item["name"]: _text(item["description"])
                           for item in self.mapping["transforms"]}
        self.entities = self.mapping["entities"]
        self.gates = _consent_gates(self.consent)

    def entity(self, key: str) -> Mapping[str, Any]:
        entity: Mapping[str, Any] = self.entities[key]
        return entity

    def enabled(self, key: str) -> bool:
        return key in self.entities and bool(self.entities[key].get("enabled"))

    def rows(self, entity: str,
             fields: list[Mapping[str, Any]] | None = None) -> tuple[FieldRow, ...]:
        items = fields if fields is not None else self.entity(entity)["fields"]
        return tuple(self.row(entity, item) for item in items)

    def row(self, entity: str, item: Mapping[str, Any]) -> FieldRow:
        unconfirmed = item.get("confidence") == "unconfirmed"
        return FieldRow(
            entity=entity, name=item["name"], source=item.get("source", ""),
            target=item["target"], transform=item.get("transform", "identity"),
            description=self.transforms.get(item.get("transform", "identity"),
                                            Bilingual("", "")),
            fallback_sources=tuple(item.get("fallback_sources", ())),
            unique=bool(item.get("unique", False)),
            note=item.get("note") if unconfirmed else None,
            note_ar=item.get("note_ar") if unconfirmed else None)

    def line_product_row(self) -> FieldRow | None:
        """Return the row that reads a line's store product id for the Zoho product upsert.

        Zoho links a line to a product by its Zoho id, so the workflows upsert each line's
        product first. Product_Code (the SKU) is not unique in Zoho, so the upsert checks
        the product's unique field, read from the line's variant id (the SKU's fallback).
        """
        if self.crm != "zoho" or not self.enabled("product"):
            return None
        unique = next((item for item in self.entity("product")["fields"] if item.get("unique")),
                      None)
        sku = next((item for item in self.entity("line_item")["fields"]
                    if item["name"] == "sku"), None)
        if unique is None or sku is None or not sku.get("fallback_sources"):
            return None
        return self.row("line_item", {
            "name": "store_product_id", "source": sku["fallback_sources"][0],
            "target": unique["target"], "transform": unique.get("transform", "identity")})

    def unique_target(self, entity: str) -> str | None:
        for item in self.entity(entity)["fields"]:
            if item.get("unique"):
                return str(item["target"])
        return None

    def upsert(self, entity: str, rows: tuple[FieldRow, ...]) -> CrmCall:
        checks = None
        if entity == "contact" and self.crm == "zoho":
            unique = {str(item["target"]) for item in self.entity(entity)["fields"]
                      if item.get("unique")}
            obj = str(self.entity(entity)["object"]).split(".")[0]
            unique.add(crm_calls.ZOHO_SYSTEM_DUPLICATE_FIELD.get(obj, ""))
            # Only unique or system duplicate-check fields: Zoho refuses the whole upsert
            # when a listed field (the plain Mobile field) is neither.
            checks = [item["target"] for item in self.mapping["identity"]["match_order"]
                      if item["target"] in unique]
        latest = tuple(str(item["target"]) for item in self.entity(entity).get("rollups", ())
                       if item["update"] == "keep_latest" and item["type"] == "datetime")
        identity = self.identity(rows) if entity == "contact" and self.crm == "custom" else None
        return crm_calls.upsert_call(self.crm, entity, self.entity(entity)["object"],
                                     [(row.name, row.target) for row in rows],
                                     self.unique_target(entity), checks, latest, identity)

    def identity(self, rows: tuple[FieldRow, ...] | None = None) -> list[tuple[str, str]]:
        """Return the contact's identity ``(field name, target)`` pairs in the match order.

        With ``rows``, only the keys those rows write.
        """
        fields = rows if rows is not None else self.rows("contact")
        targets = {row.target: row.name for row in fields}
        return [(targets[str(key["target"])], str(key["target"]))
                for key in self.mapping["identity"]["match_order"]
                if str(key["target"]) in targets]

    def topics(self, kind: str) -> tuple[str, ...]:
        return WEBHOOK_TOPICS[self.store][kind]


def _consent_gates(consent: Mapping[str, Any]) -> dict[str, ConsentGate]:
    gates = {}
    for channel in consent["channels"]:
        granted = tuple(state["value"] for state in channel["source"]["states"]
                        if state["meaning"] == "granted")
        gates[channel["channel"]] = ConsentGate(
            channel=channel["channel"], label=_text(channel["label"]),
            source_field=channel["source"]["field"], granted_values=granted,
            crm_status=channel["crm_status"], rule=_text(consent["check_before_send"]),
            crm_field=(channel["target"].get("fields") or [None])[0])
    return gates


def _step(key: str, kind: StepKind, en: str, ar: str, **extra: Any) -> Step:
    return Step(key=key, kind=kind, title=Bilingual(en, ar), **extra)


def _dedupe_step(ctx: _Context) -> Step:
    return _step("dedupe", "dedupe", "Skip an event already processed",
                 "تجاهل الحدث الذي عولج من قبل",
                 params={"key": EVENT_ID[ctx.platform], "store": "processed_events",
                         "ttl_days": DEDUPE_TTL_DAYS})


# WooCommerce billing fields that a customer body may leave empty; the runtime then
# reads the customer's own top-level field of the same name.
WOOCOMMERCE_CUSTOMER_FALLBACKS = ("email", "first_name", "last_name")


def _customer_paths(store: str, path: str) -> list[str]:
    """Return the paths in a customer webhook body that give the order-shaped ``path``.

    The contact map reads order bodies. The runtime's customer views (in
    ``generator/runtime/engine.py``) read a Shopify ``customers/*`` body as the order's
    ``customer`` object, and a WooCommerce ``customer.*`` body as an order whose
    ``customer_id`` is the body's ``id``. A path with no counterpart returns no path.
    """
    if store == "shopify":
        return [path.removeprefix("customer.")] if path.startswith("customer.") else []
    if store == "woocommerce":
        if path == "customer_id":
            return ["id"]
        section, _, name = path.partition(".")
        if section not in ("billing", "shipping"):
            return []
        if section == "billing" and name in WOOCOMMERCE_CUSTOMER_FALLBACKS:
            return [path, name]
        return [path]
    return [path]


def _customer_view(ctx: _Context, rows: tuple[FieldRow, ...]) -> tuple[FieldRow, ...]:
    """Return ``rows`` with their sources read from a customer body instead of an order."""
    viewed = []
    for row in rows:
        paths = [found for path in (row.source, *row.fallback_sources)
                 for found in _customer_paths(ctx.store, path)]
        paths = list(dict.fromkeys(paths))
        if paths:
            viewed.append(replace(row, source=paths[0], fallback_sources=tuple(paths[1:])))
    return tuple(viewed)


def _contact_steps(ctx: _Context, extra: tuple[FieldRow, ...] = (),
                   customer_body: bool = False) -> tuple[Step, ...]:
    rows = ctx.rows("contact") + extra
    if customer_body:
        rows = _customer_view(ctx, rows)
    identity = [item["key"] for item in ctx.mapping["identity"]["match_order"]]
    return (
        _step("map_contact", "map", "Map the customer to the contact",
              "ربط بيانات العميل بحقول جهة الاتصال", fields=rows),
        _step("filter_contact", "filter", "Continue only with an email or a phone",
              "المتابعة فقط عند وجود بريد إلكتروني أو رقم جوال",
              params={"any_set": ["email", "phone"]}),
        _step("upsert_contact", "upsert", "Create or update the contact",
              "إنشاء جهة الاتصال أو تحديثها",
              params={"entity": "contact", "match_order": identity,
                      "rule": ctx.mapping["identity"]["upsert"]},
              calls=(ctx.upsert("contact", rows),)),
    )


def _contact_flow(ctx: _Context) -> Flow:
    daily = ctx.plan.contact_sync != "realtime"
    if daily:
        trigger = Trigger(kind="schedule", source="schedule", daily_at=DAILY_SYNC_AT,
                          description=Bilingual(
                              "Once a day, customers changed since the last run",
                              "مرة يوميًا، العملاء الذين تغيّرت بياناتهم منذ آخر تشغيل"))
        first: tuple[Step, ...] = (_step(
            "read_changed", "lookup", "Read customers changed since the cursor",
            "قراءة العملاء الذين تغيّروا منذ آخر مؤشر",
            params={"cursor_store": "sync_cursors", "cursor_key": "customers"},
            calls=(crm_calls.store_poll_call(ctx.platform, "customers"),)),)
    else:
        trigger = Trigger(kind="webhook", source=ctx.store, topics=ctx.topics("contact"),
                          description=_text({"en": ctx.entity("contact")["payload"],
                                             "ar": ctx.entity("contact")["payload"]}))
        first = (_dedupe_step(ctx),)
    return Flow(
        key="contact-sync", module="contacts", trigger=trigger,
        dedupe_key=None if daily else EVENT_ID[ctx.platform],
        title=Bilingual("Customer to contact", "من العميل إلى جهة الاتصال"),
        purpose=Bilingual(
            "Create or update the CRM contact for each new or changed customer, matched on "
            "the store id, then the phone in E.164, then the lowercased email.",
            "إنشاء جهة الاتصال في CRM أو تحديثها لكل عميل جديد أو متغيّر، بالمطابقة على معرّف "
            "المتجر ثم رقم الجوال بصيغة E.164 ثم البريد الإلكتروني بأحرف صغيرة."),
        steps=first + _contact_steps(ctx, customer_body=True))


def _stage_table(ctx: _Context) -> dict[str, Any]:
    stages = ctx.mapping["order_stages"]
    return {"field": stages["pipeline"]["field"], "pipeline": stages["pipeline"]["crm_value"],
            "rules": stages["rules"],
            "stages": {stage["key"]: stage["crm_value"] for stage in stages["stages"]}}


def _last_order_row(ctx: _Context) -> tuple[FieldRow, ...]:
    """Return the contact's last_order_at row, read from the order's close-date source.

    The row is written only from an order in a won stage (paid or fulfilled), because
    the spec keeps the time of the latest paid order and the runtime's roll-ups count
    only won orders.
    """
    # NOTE: only the PostgreSQL upsert keeps the later time (GREATEST). On HubSpot and
    # Zoho the n8n and Make writes do not read the stored time, so an update of an
    # older paid order still moves it back. The build sheets' field map asks for the
    # compare by hand (_paid_order_rule).
    rollups = {item["name"]: item for item in ctx.entity("contact")["rollups"]}
    close = [item for item in ctx.entity("order")["fields"] if item["name"] == "close_date"]
    if "last_order_at" not in rollups or not close:
        return ()
    row = ctx.row("contact", {"name": "last_order_at", "source": close[0]["source"],
                              "fallback_sources": close[0].get("fallback_sources", []),
                              "target": rollups["last_order_at"]["target"],
                              "transform": "iso_datetime"})
    return (replace(row, won_only=True, description=_paid_order_rule(ctx, row.description)),)


def _paid_order_rule(ctx: _Context, described: Bilingual) -> Bilingual:
    """Return ``described`` with the rule that only a won order, and a later time, is written."""
    won = [stage["label"] for stage in ctx.mapping["order_stages"]["stages"] if stage["won"]]
    names_en = ", ".join(label["en"] for label in won)
    names_ar = "، ".join(label["ar"] for label in won)
    if ctx.crm == "custom":
        later_en = " The database keeps the later of the stored and the new time."
        later_ar = " وتحتفظ قاعدة البيانات بالأحدث بين الوقت المخزّن والوقت الجديد."
    else:
        later_en = (" Write it only when it is later than the contact's stored value, so an "
                    "update of an older order never moves it back.")
        later_ar = (" ولا يُكتب إلا إذا كان أحدث من القيمة المخزّنة في جهة الاتصال، حتى لا "
                    "يعيده تحديث طلب أقدم إلى الوراء.")
    return Bilingual(
        f"{described.en} Written only when the order's stage is a won stage ({names_en}), "
        f"so a pending or cancelled order never sets it.{later_en}",
        f"{described.ar} ولا يُكتب إلا إذا كانت مرحلة الطلب مرحلة رابحة ({names_ar})، فلا "
        f"يضبطه طلب معلّق أو ملغى.{later_ar}")


def _line_items_path(rows: tuple[FieldRow, ...]) -> str:
    """Return the payload path of the order's line items, such as ``order.line_items[]``.

    The path comes from the field map's sources, because the stores nest the list
    differently: Shopify and WooCommerce at the top of the order body, a headless
    storefront's event under ``order``.
    """
    for row in rows:
        if "[]." in row.source:
            return row.source.split("[].", 1)[0] + "[]"
    raise ValueError("no line item field of the mapping reads a list item (a source with "
                     "'[].'); give each line item field its source in the order payload")


def _order_steps(ctx: _Context) -> tuple[Step, ...]:
    order_rows = ctx.rows("order")
    steps = [*_contact_steps(ctx, _last_order_row(ctx))]
    steps.append(_step("map_deal", "map", "Map the order to the deal, with its stage",
                       "ربط الطلب بالصفقة مع مرحلتها", fields=order_rows,
                       params={"stage_table": _stage_table(ctx)}))
    steps.append(_step("upsert_deal", "upsert", "Create or update the deal",
                       "إنشاء الصفقة أو تحديثها", params={"entity": "order"},
                       calls=(ctx.upsert("order", order_rows),)))
    steps.extend(_association_steps(ctx, "order"))
    if ctx.enabled("line_item"):
        item_rows = ctx.rows("line_item")
        product_row = ctx.line_product_row()
        lines = _line_items_path(item_rows)
        steps.append(_step("map_line_items", "map", "Map each line item, linked by SKU",
                           "ربط كل بند من بنود الطلب عبر SKU",
                           fields=item_rows + ((product_row,) if product_row else ()),
                           params={"iterate": lines}))
        steps.append(_step("upsert_line_items", "upsert", "Create or update the line items",
                           "إنشاء بنود الطلب أو تحديثها",
                           params={"entity": "line_item", "iterate": lines},
                           calls=(ctx.upsert("line_item", item_rows),)))
        steps.extend(_association_steps(ctx, "line_item"))
    if "playbooks" in ctx.plan.modules and _playbook(ctx, "abandoned_cart") is not None:
        steps.append(_step("store_checkout_order", "store",
                           "Remember the order's checkout token for the abandoned-cart check",
                           "حفظ رمز عملية الدفع للطلب لفحص السلال المتروكة",
                           params={"store": "checkout_orders", "key": "checkout_token",
                                   "value": "order id", "ttl_days": DEDUPE_TTL_DAYS}))
    return tuple(steps)


def _association_steps(ctx: _Context, entity: str) -> list[Step]:
    steps = []
    for link in ctx.entity(entity).get("associations", []):
        if link["kind"] == "property":
            continue
        steps.append(_step(
            f"link_{entity}_{link['to']}", "associate",
            f"Link the {entity.replace('_', ' ')} to its {link['to'].replace('_', ' ')}",
            f"ربط {ctx.entity(entity)['label']['ar']} ب{ctx.entity(link['to'])['label']['ar']}",
            params={"from": entity, "to": link["to"], "kind": link["kind"], "ref": link["ref"]},
            calls=(_link_call(ctx, entity, link),)))
    return steps


def _link_call(ctx: _Context, entity: str, link: Mapping[str, Any]) -> CrmCall:
    """Return the call that links ``entity`` to the record ``link`` names.

    The client's own database has no API that links records, so a foreign key is
    written by an ``UPDATE`` after the upsert (see ``sql_links``).
    """
    if ctx.crm == "custom" and link["kind"] == "foreign_key":
        call = sql_links.link_call(ctx.mapping, entity, str(link["to"]), str(link["ref"]))
        if call is not None:
            return call
    return crm_calls.associate_call(ctx.crm, entity, link["to"], link["kind"], link["ref"])


def _order_flow(ctx: _Context) -> Flow:
    return Flow(
        key="order-sync", module="orders", dedupe_key=EVENT_ID[ctx.platform],
        trigger=Trigger(kind="webhook", source=ctx.store, topics=ctx.topics("order"),
                        description=Bilingual(ctx.entity("order")["payload"],
                                              ctx.entity("order")["payload"])),
        title=Bilingual("Order to deal", "من الطلب إلى الصفقة"),
        purpose=Bilingual(
            "Every order becomes one deal, linked to its contact and line items; the deal "
            "stage follows the order status through the stage table.",
            "يصبح كل طلب صفقة واحدة مرتبطة بجهة الاتصال وبنود الطلب، وتتبع مرحلة الصفقة "
            "حالة الطلب وفق جدول المراحل."),
        steps=(_dedupe_step(ctx), *_order_steps(ctx)))


def _product_flow(ctx: _Context) -> Flow:
    rows = ctx.rows("product")
    product = ctx.entity("product")
    unique = ctx.unique_target("product") or "id"
    return Flow(
        key="product-sync", module="products", dedupe_key=EVENT_ID[ctx.platform],
        trigger=Trigger(kind="webhook", source=ctx.store, topics=ctx.topics("product"),
                        description=Bilingual(product["payload"], product["payload"])),
        title=Bilingual("Product to catalogue", "من المنتج إلى الكتالوج"),
        purpose=Bilingual(
            f"Keep one CRM product per variant, keyed by the store's product or variant id "
            f"({unique}), so line items link to it; the SKU is written as a property.",
            f"الاحتفاظ بمنتج واحد في CRM لكل متغيّر، مفتاحه معرّف المنتج أو المتغيّر في المتجر "
            f"({unique})، لتُربط به بنود الطلبات، ويُكتب SKU حقلًا من حقوله."),
        steps=(
            _dedupe_step(ctx),
            _step("map_product", "map", "Map the product", "ربط بيانات المنتج", fields=rows,
                  params={"first_sync_limit": product.get("sync_limit")}),
            _step("upsert_product", "upsert", "Create or update the product",
                  "إنشاء المنتج أو تحديثه", params={"entity": "product"},
                  calls=(ctx.upsert("product", rows),)),
        ))


def _event_flow(ctx: _Context) -> Flow:
    rows = ctx.rows("event")
    event = ctx.entity("event")
    return Flow(
        key="event-sync", module="events", dedupe_key="body event_id",
        trigger=Trigger(kind="webhook", source="storefront",
                        topics=("page_view", "add_to_cart", "checkout_started"),
                        description=Bilingual(event["payload"], event["payload"])),
        title=Bilingual("Behaviour events", "أحداث السلوك"),
        purpose=Bilingual(
            "Record the storefront's behaviour events that feed the segments and playbooks.",
            "تسجيل أحداث السلوك في واجهة المتجر التي تُبنى عليها الشرائح وخطط التشغيل."),
        steps=(
            _step("dedupe", "dedupe", "Skip an event already processed",
                  "تجاهل الحدث الذي عولج من قبل",
                  params={"key": "body event_id", "store": "processed_events",
                          "ttl_days": DEDUPE_TTL_DAYS}),
            _step("map_event", "map", "Map the event", "ربط بيانات الحدث", fields=rows),
            _step("upsert_event", "upsert", "Record the event", "تسجيل الحدث",
                  params={"entity": "event", "note": event.get("note")},
                  calls=(ctx.upsert("event", rows),)),
            # HubSpot links an event to its contact by the email it sends, and Zoho by a
            # lookup field in the same body. Only the client's database needs a step.
            *(_association_steps(ctx, "event") if ctx.crm == "custom" else ()),
        ))


def _playbook(ctx: _Context, key: str) -> Mapping[str, Any] | None:
    for playbook in ctx.playbooks["playbooks"]:
        if playbook["key"] == key and playbook.get("enabled") and playbook["steps"]:
            found: Mapping[str, Any] = playbook
            return found
    return None


def _send_steps(ctx: _Context, playbook: Mapping[str, Any], step: Mapping[str, Any],
                discount_done: bool) -> list[Step]:
    """Return the quiet-hours wait, consent gate, discount and send steps of one playbook step.

    The gate comes after the wait, so an unsubscribe during the wait stops the send.
    A gate stops only its own step: the steps from the gate to the send form one unit,
    and a contact who fails the gate goes on to the later steps of the playbook.
    """
    number, channel = step["step"], step["channel"]
    steps: list[Step] = []
    if step["kind"] == "marketing":
        steps.append(_step(f"quiet_hours_{number}", "wait", "Wait for the end of quiet hours",
                           "الانتظار حتى انتهاء فترة الهدوء",
                           params={"mode": "quiet_hours", **dict(ctx.playbooks["quiet_hours"])}))
    gate = ctx.gates.get(step["consent"])
    if gate is not None:
        steps.append(_step(f"consent_{number}", "consent_gate",
                           f"Check {channel} consent", f"التحقق من الموافقة على {gate.label.ar}",
                           params={"channel": channel, "on_missing": "skip and log",
                                   "until_step": f"send_{number}"}, gate=gate))
    if step.get("discount") and not discount_done:
        discount = ctx.playbooks["discount"]
        hours = playbook.get("discount_code", {}).get("expires_after_hours",
                                                      discount["expires_after_hours"])
        steps.append(_step(f"discount_{number}", "discount",
                           "Create the contact's single-use discount code",
                           "إنشاء رمز خصم لمرة واحدة لجهة الاتصال",
                           params={"percent": discount["percent"], "single_use": True,
                                   "expires_after_hours": hours},
                           calls=(crm_calls.discount_call(ctx.platform, discount["percent"],
                                                          hours),)))
    steps.append(_send_step(ctx, playbook, step))
    return steps


def _send_step(ctx: _Context, playbook: Mapping[str, Any], step: Mapping[str, Any]) -> Step:
    channel, template = step["channel"], step.get("template")
    via = {"email": "crm", "whatsapp": "whatsapp", "sms": "sms"}.get(channel, "crm")
    calls: tuple[CrmCall, ...] = ()
    if via == "whatsapp":
        calls = (crm_calls.whatsapp_template_call(str(template)),)
    elif via == "sms":
        calls = (crm_calls.sms_call(str(template)),)
    else:
        rollups = {item["name"]: item["target"] for item in ctx.entity("contact")["rollups"]}
        # The contact's unique key goes in the body, so Zoho's upsert finds the contact.
        marker = [("id", str(ctx.unique_target("contact"))),
                  ("playbook_step", rollups["playbook_step"])]
        if step.get("discount"):
            marker += [("discount_code", rollups["discount_code"]),
                       ("discount_expires_at", rollups["discount_expires_at"])]
        if ctx.crm == "custom":
            # An UPDATE of the contact found by id, phone or email: a guest has no
            # store customer id, and a mark must never add an empty contact.
            call = crm_calls.contact_update_call(str(ctx.entity("contact")["object"]),
                                                 marker[1:], ctx.identity())
        else:
            call = crm_calls.upsert_call(ctx.crm, "contact", ctx.entity("contact")["object"],
                                         marker, ctx.unique_target("contact"))
        calls = (replace(call, note=f"The CRM's own email workflow enrols the contact when "
                                    f"{rollups['playbook_step']} changes."),)
    return _step(f"send_{step['step']}", "send", f"Send step {step['step']} by {channel}",
                 f"إرسال الخطوة {step['step']} عبر {channel}",
                 params={"channel": channel, "via": via, "template": template,
                         "kind": step["kind"], "discount": bool(step.get("discount")),
                         "discount_from_step": playbook.get("discount_code", {}).get(
                             "issued_at_step") if step.get("discount") else None,
                         "template_category": step.get("template_category"),
                         "content": step["content"], "playbook": playbook["key"]},
                 calls=calls)


UNIT_MINUTES = {"minutes": 1, "hours": 60, "days": 1440}

# The arabic_counts noun of each delay unit.
DURATION_NOUNS = {"minutes": "minute", "hours": "hour", "days": "day"}


def arabic_duration(amount: Any, unit: str, case: Case = "oblique") -> str:
    """Write a delay such as 2 hours in Arabic, in ``case``.

    The case matters for two: a delay on its own after a colon is nominative
    (ساعتان), and one after a noun or preposition is oblique (مدة ساعتين، بعد يومين).
    """
    return arabic_count(amount, DURATION_NOUNS[unit], case)


def wait_text_ar(params: Mapping[str, Any], case: Case = "oblique") -> str:
    """Return a delay wait's Arabic length in ``case``, with its allowed range when it has one."""
    text = arabic_duration(params["amount"], str(params["unit"]), case)
    if params.get("min", params["amount"]) != params.get("max", params["amount"]):
        text += f" (المسموح من {params['min']} إلى {params['max']})"
    return text


def _delay_text(delay: Mapping[str, Any]) -> Bilingual:
    low, high = delay["min"], delay["max"]
    amount = int(delay["default"])
    # The text follows a colon on its own, so it is nominative.
    amount_ar = arabic_duration(amount, delay["unit"], "nominative")
    return Bilingual(f"{amount} {delay['unit']} (allowed {low} to {high})",
                     f"{amount_ar} (المسموح من {low} إلى {high})")


def _checkout_rows(ctx: _Context) -> tuple[FieldRow, ...]:
    sources = CHECKOUT_SOURCES["shopify" if ctx.platform == "shopify" else "storefront"]
    rollups = {item["name"]: item for item in ctx.entity("contact")["rollups"]}
    pairs = (("last_checkout_at", "updated_at", "iso_datetime"),
             ("last_cart_value_sar", "value", "money_sar"),
             ("last_cart_url", "url", "identity"))
    return tuple(ctx.row("contact", {"name": name, "source": sources[source],
                                     "target": rollups[name]["target"], "transform": transform})
                 for name, source, transform in pairs if name in rollups)


def _abandoned_flow(ctx: _Context, playbook: Mapping[str, Any]) -> Flow:
    sources = CHECKOUT_SOURCES["shopify" if ctx.platform == "shopify" else "storefront"]
    delay = playbook["delay"]
    recover = list(_contact_steps(ctx, _checkout_rows(ctx)))
    discount_done = False
    for step in playbook["steps"]:
        if step["offset"]["value"]:
            recover.append(_step(f"wait_{step['step']}", "wait", "Wait for the next step",
                                 "الانتظار حتى الخطوة التالية",
                                 params={"mode": "delay", "amount": step["offset"]["value"],
                                         "unit": step["offset"]["unit"],
                                         "due_after": _checkout_due_after(
                                             sources, delay, step["offset"])},
                                 calls=(_due_checkouts_call(ctx, delay, step["offset"]),)))
            recover.append(_order_check(sources, f"recheck_{step['step']}"))
        recover.extend(_send_steps(ctx, playbook, step, discount_done))
        discount_done = discount_done or bool(step.get("discount"))
    steps = (
        _dedupe_step(ctx),
        _step("filter_reachable", "filter", "Continue only with an email or a phone",
              "المتابعة فقط عند وجود بريد إلكتروني أو رقم جوال",
              params={"any_set": [sources["email"], sources["phone"]]}),
        _step("store_pending", "store", "Keep the latest state of the checkout",
              "حفظ أحدث حالة لعملية الدفع",
              params={"store": "pending_checkouts", "key": sources["token"],
                      "value": {"updated_at": sources["updated_at"]},
                      "ttl_days": DEDUPE_TTL_DAYS}),
        _step("wait_delay", "wait", "Wait the abandoned-cart delay", "انتظار مهلة السلة المتروكة",
              params={"mode": "delay", "amount": delay["default"], "unit": delay["unit"],
                      "min": delay["min"], "max": delay["max"],
                      "text": asdict(_delay_text(delay)),
                      "check_every_minutes": ABANDONED_CHECK_EVERY_MINUTES},
              calls=(_due_checkouts_call(ctx, delay),)),
        _step("latest_only", "filter", "Continue only if no newer update of the checkout came",
              "المتابعة فقط إذا لم يصل تحديث أحدث لعملية الدفع",
              params={"store": "pending_checkouts", "key": sources["token"],
                      "equals": sources["updated_at"]}),
        _order_check(sources, "check_order", tuple(recover)),
    )
    return Flow(
        key="abandoned-checkout", module="playbooks", playbook="abandoned_cart",
        dedupe_key=EVENT_ID[ctx.platform],
        trigger=Trigger(kind="webhook", source=ctx.store, topics=ctx.topics("checkout"),
                        description=Bilingual(playbook["trigger"].get("source", ""),
                                              playbook["trigger"]["text"]["ar"])),
        title=_text(playbook["name"]),
        purpose=_text(playbook["trigger"]["text"]),
        steps=steps)


def _checkout_due_after(sources: Mapping[str, str], delay: Mapping[str, Any],
                        offset: Mapping[str, Any]) -> dict[str, Any]:
    """Return when a cart step falls due: the delay plus its offset after the checkout.

    The first step's offset is 0 and every later one counts from the same point, so
    quiet hours that held back one step do not move the next.
    """
    minutes = (int(delay["default"]) * UNIT_MINUTES[delay["unit"]]
               + int(offset["value"]) * UNIT_MINUTES[offset["unit"]])
    return {"sources": [sources["updated_at"]], "amount": minutes, "unit": "minutes"}


def _due_checkouts_call(ctx: _Context, delay: Mapping[str, Any],
                        offset: Mapping[str, Any] | None = None) -> CrmCall:
    """Return the CRM search a scheduled runner uses in place of a long wait.

    Platforms that cannot wait hours inside one run (Make) find the contacts whose
    latest checkout fell due in the last check interval instead. A later step's
    ``offset`` (its playbook offset) moves the window back by that much, so each step
    is due its own time after the checkout.
    """
    rollups = {item["name"]: item["target"] for item in ctx.entity("contact")["rollups"]}
    age = f"now - {delay['default']} {delay['unit']}"
    if offset is not None and offset["value"]:
        age += f" - {offset['value']} {offset['unit']}"
    due = f"<{age}>"
    since = f"<{age} - {ABANDONED_CHECK_EVERY_MINUTES} minutes>"
    filters = [{"field": rollups["last_checkout_at"], "op": "between", "value": [since, due]}]
    return crm_calls.search_call(ctx.crm, ctx.entity("contact")["object"], filters,
                                 _contact_properties(ctx))


def _order_check(sources: Mapping[str, str], key: str,
                 recover: tuple[Step, ...] = ()) -> Step:
    ordered = Route(key="ordered", label=Bilingual("An order exists: stop", "يوجد طلب: توقف"),
                    condition={"found": True},
                    steps=(_step(f"{key}_forget", "store", "Forget the pending checkout",
                                 "حذف عملية الدفع المعلّقة",
                                 params={"store": "pending_checkouts", "key": sources["token"],
                                         "delete": True}),))
    abandoned = Route(key="abandoned", label=Bilingual("No order: continue",
                                                       "لا يوجد طلب: متابعة"),
                      condition={"found": False}, steps=recover)
    return _step(key, "branch", "Look for an order with the checkout or cart token",
                 "البحث عن طلب يحمل رمز عملية الدفع أو السلة",
                 params={"store": "checkout_orders",
                         "keys": [sources["token"], sources["cart_token"]]},
                 routes=(ordered, abandoned))


def _scheduled_flow(ctx: _Context, playbook: Mapping[str, Any], key: str) -> Flow:
    """Return a daily flow that finds the records due for each step of ``playbook``."""
    routes = []
    delay_days = int(playbook["delay"]["default"])
    for step in playbook["steps"]:
        offset = int(step["offset"]["value"])
        due = delay_days + offset
        lookup = _due_lookup(ctx, playbook["key"], due)
        # A playbook issues one code at its first discount step; later steps repeat it.
        issued_at = playbook.get("discount_code", {}).get("issued_at_step", step["step"])
        body = (lookup, *_send_steps(ctx, playbook, step, step["step"] > issued_at))
        routes.append(Route(key=f"step-{step['step']}",
                            label=Bilingual(f"Step {step['step']}: day {due}",
                                            f"الخطوة {step['step']}: اليوم {due}"),
                            condition={"always": True}, steps=body))
    return Flow(
        key=key, module="playbooks", playbook=playbook["key"],
        trigger=Trigger(kind="schedule", source="schedule", daily_at=DAILY_RUN_AT,
                        description=Bilingual(f"Every day at {DAILY_RUN_AT} ({TIMEZONE})",
                                              f"يوميًا الساعة {DAILY_RUN_AT} بتوقيت الرياض")),
        title=_text(playbook["name"]), purpose=_text(playbook["goal"]),
        steps=(_step("by_step", "branch", "One route per playbook step",
                     "مسار لكل خطوة من خطوات الخطة", routes=tuple(routes)),))


def _due_lookup(ctx: _Context, playbook: str, due_days: int) -> Step:
    window = [f"<today - {due_days + 1} days>", f"<today - {due_days} days>"]
    rollups = {item["name"]: item["target"] for item in ctx.entity("contact")["rollups"]}
    # The window on last_order_at alone selects the customers. The iPaaS flows never
    # compute orders_count, so a condition on it would match no contact.
    filters = [{"field": rollups["last_order_at"], "op": "between", "value": window}]
    obj = ctx.entity("contact")["object"]
    days_ar = arabic_count(due_days, "day")
    text = Bilingual(f"Find the customers whose latest order is {due_days} days old",
                     f"البحث عن العملاء الذين مضى على أحدث طلب لهم {days_ar}")
    params: dict[str, Any] = {"object": obj, "filters": filters, "iterate": True,
                              "counts_from": "last_order_at"}
    return Step(key=f"find_due_{due_days}", kind="lookup", title=text, params=params,
                calls=(crm_calls.search_call(ctx.crm, obj, filters, _contact_properties(ctx)),))


def _contact_properties(ctx: _Context) -> list[str]:
    """Return the contact fields the consent checks and sends read from a found contact."""
    names = [str(item["target"]) for item in ctx.entity("contact")["fields"]]
    names += [str(item["target"]) for item in ctx.entity("contact")["rollups"]]
    for channel in ctx.consent["channels"]:
        names += [str(name) for name in channel["target"].get("fields", [])]
    return list(dict.fromkeys(name for name in names if "." not in name))


def _ticket_flow(ctx: _Context) -> Flow:
    ticket = ctx.entity("ticket")
    rows = ctx.rows("ticket")
    sla = ticket.get("sla", {})
    return Flow(
        key="ticket-sync", module="support", dedupe_key="body ticket.id + ticket.updated_at",
        trigger=Trigger(kind="webhook", source="support_inbox",
                        topics=("ticket.created", "ticket.updated"),
                        description=Bilingual(ticket["payload"], ticket["payload"])),
        title=Bilingual("Support ticket", "تذكرة الدعم"),
        purpose=Bilingual(
            "Link each ticket to its contact and order, and alert the team lead before the "
            "first-response target of its channel passes.",
            "ربط كل تذكرة بجهة الاتصال والطلب، وتنبيه قائد الفريق قبل انقضاء مهلة الرد الأول "
            "المحددة لقناتها."),
        steps=(
            _step("dedupe", "dedupe", "Skip an update already processed",
                  "تجاهل التحديث الذي عولج من قبل",
                  params={"key": "body ticket.id + ticket.updated_at",
                          "store": "processed_events", "ttl_days": DEDUPE_TTL_DAYS}),
            _step("map_ticket", "map", "Map the ticket", "ربط بيانات التذكرة", fields=rows),
            _step("upsert_ticket", "upsert", "Create or update the ticket",
                  "إنشاء التذكرة أو تحديثها", params={"entity": "ticket"},
                  calls=(ctx.upsert("ticket", rows),)),
            # On HubSpot and Zoho a link needs the linked record's CRM id, and a ticket
            # comes from the support inbox, so each output first finds the contact and
            # the deal by the keys the ticket carries (n8n_ticket, make_ticket, sheet_links).
            *_association_steps(ctx, "ticket"),
            _sla_branch(ctx, sla, ticket.get("sla", {}).get("rule")),
        ))


# The ticket fields the first-response check reads, by their name in the field map.
# The status finds the open tickets and the closed ones whose alert marker can go.
SLA_FIELDS = ("opened_at", "channel", "first_reply_at", "store_ticket_id", "subject", "status")
# NOTE: the contact's lifetime value decides VIP, as the VIP segment does. The
# field name is the spec's rollup; a ticket with no found contact is not VIP.
VIP_ROLLUP = "ltv_sar"


def _sla_fields(ctx: _Context) -> dict[str, dict[str, str]]:
    """Return the record target and payload source of each ticket field the check reads."""
    fields = {str(item["name"]): item for item in ctx.entity("ticket")["fields"]}
    return {name: {"target": str(fields[name]["target"]), "source": str(fields[name]["source"])}
            for name in SLA_FIELDS if name in fields}


def _vip_rule(ctx: _Context) -> dict[str, Any] | None:
    """Return the contact field and the lifetime value in SAR from which a contact is VIP."""
    rollup = next((item for item in ctx.entity("contact").get("rollups", [])
                   if item["name"] == VIP_ROLLUP), None)
    if rollup is None:
        return None
    threshold = segments.vip_threshold(ctx.answers.monthly_orders)["threshold_sar"]
    return {"field": str(rollup["target"]), "threshold_sar": threshold}


def _sla_branch(ctx: _Context, sla: Mapping[str, Any],
                rule: Mapping[str, str] | None) -> Step:
    alert = _step("sla_alert", "alert", "Alert the team lead", "تنبيه قائد الفريق",
                  params={"to": "team lead", "reason": "sla"},
                  calls=(crm_calls.alert_call(),))
    late = Route(key="late", label=Bilingual("No reply and the alert point has passed",
                                             "لا رد وقد تجاوزت التذكرة نقطة التنبيه"),
                 condition={"first_reply_at": "empty",
                            "business_minutes_open_gte_percent": sla.get("alert_at_percent")},
                 steps=(alert,))
    return _step("sla_check", "branch", "Check the first-response target",
                 "التحقق من مهلة الرد الأول",
                 params={"targets": sla.get("targets", []),
                         "business_hours": sla.get("business_hours"),
                         "alert_at_percent": sla.get("alert_at_percent"),
                         "vip_percent_of_target": sla.get("vip_percent_of_target"),
                         "every_minutes": SLA_CHECK_EVERY_MINUTES,
                         "fields": _sla_fields(ctx), "vip": _vip_rule(ctx),
                         "rule": dict(rule) if rule else None},
                 routes=(late,))


# The role of a consent target field by a word in its column name. The time, source
# and wording fields read the channel's extra source field whose path contains that word.
CONSENT_ROLES = {"wording": "wording", "source": "source", "_at": "at"}


def _consent_source(channel: Mapping[str, Any], target: str) -> tuple[str, str] | None:
    """Return ``(role, source path)`` of one consent target field, or None without a source.

    The state, opt-in or opt-out field reads the channel's state field.
    """
    column = target.rsplit(".", 1)[-1].lower()
    for suffix, role in CONSENT_ROLES.items():
        if column.endswith(suffix) if suffix == "_at" else suffix in column:
            word = "_at" if role == "at" else role
            extra = [str(path) for path in channel["source"].get("extra_fields", [])
                     if word in str(path).lower()]
            return (role, extra[0]) if extra else None
    return "state", str(channel["source"]["field"])


def _consent_rows(ctx: _Context, channel: Mapping[str, Any]) -> list[FieldRow]:
    """Return one field row per consent target of ``channel``, each with its own source.

    The custom database keeps one consents row per channel, so its targets name the
    channel (``consents[email].state``) to stay distinct in the mapped record.
    """
    rows = []
    name = channel["channel"]
    for target in channel["target"].get("fields", []):
        found = _consent_source(channel, target)
        if found is None:
            continue
        role, source = found
        if ctx.store == "shopify":
            # The consent topics send the customer itself, not an order with a customer.
            source = source.removeprefix("customer.")
        written = target
        if ctx.crm == "custom":
            table, _, column = target.partition(".")
            written = f"{table}[{name}].{column}"
        row = ctx.row("contact", {"name": f"{name}_consent_{role}", "source": source,
                                  "target": written, "transform": _consent_transform(target)})
        if row.transform != "identity":
            row = replace(row, granted_values=ctx.gates[name].granted_values)
        rows.append(row)
    return rows


def _consent_transform(target: str) -> str:
    """Return the transform of a consent target: a checkbox gets a boolean, others the value.

    Zoho's Email_Opt_Out is true when the contact is opted out, so it is true unless
    the store's state is a granted one. An opt-in checkbox is true only when granted.
    """
    column = target.rsplit(".", 1)[-1].lower()
    if column.endswith("opt_out"):
        return "consent_opt_out"
    if column.endswith("opt_in"):
        return "consent_opt_in"
    return "identity"


# Customer-body paths and the paths Shopify's consent-only topics send in their place:
# customers_marketing_consent/update and customers_email_marketing_consent/update carry
# customer_id and email_address, not the customer's id and email. The first path
# found wins, so one flow reads customers/update bodies and the consent topics alike.
SHOPIFY_CONSENT_PATHS = {"id": ("customer_id", "id"), "email": ("email_address", "email")}


def _consent_topic_view(ctx: _Context, rows: tuple[FieldRow, ...]) -> tuple[FieldRow, ...]:
    """Return identity ``rows`` that also read the paths of Shopify's consent-only topics."""
    if ctx.store != "shopify":
        return rows
    viewed = []
    for row in rows:
        paths = [found for path in (row.source, *row.fallback_sources)
                 for found in SHOPIFY_CONSENT_PATHS.get(path, (path,))]
        paths = list(dict.fromkeys(paths))
        viewed.append(replace(row, source=paths[0], fallback_sources=tuple(paths[1:])))
    return tuple(viewed)


def _consent_channels(ctx: _Context) -> dict[str, dict[str, Any]]:
    """Return each channel's label, state path in the consent body and granted values."""
    channels = {}
    for name, gate in ctx.gates.items():
        source = gate.source_field
        if ctx.store == "shopify":
            source = source.removeprefix("customer.")
        channels[name] = {"label": gate.label.en, "source": source,
                          "granted": list(gate.granted_values)}
    return channels


def _consent_flow(ctx: _Context) -> Flow:
    rows = []
    for channel in ctx.consent["channels"]:
        rows.extend(_consent_rows(ctx, channel))
    # The consent topics send customer bodies, so the identity fields read them as such.
    identity = _consent_topic_view(ctx, _customer_view(ctx, tuple(
        row for row in ctx.rows("contact")
        if row.name in {item["key"] for item in ctx.mapping["identity"]["match_order"]}
        or row.unique)))
    if ctx.crm == "custom":
        calls = [ctx.upsert("contact", identity)]
        calls.extend(crm_calls.consent_insert_call(
            channel["channel"], [(row.name, row.target) for row in rows
                                 if row.name.startswith(f"{channel['channel']}_consent_")],
            ctx.identity(identity),
            {str(state["value"]).lower(): str(state["meaning"])
             for state in channel["source"]["states"]}) for channel in ctx.consent["channels"])
    else:
        calls = [ctx.upsert("contact", identity + tuple(rows))]
    if ctx.crm == "hubspot":
        calls.extend(crm_calls.consent_write_call("hubspot", channel["channel"], [])
                     for channel in ctx.consent["channels"])
    return Flow(
        key="consent-sync", module="consent", dedupe_key=EVENT_ID[ctx.platform],
        trigger=Trigger(kind="webhook", source=ctx.store, topics=ctx.topics("consent"),
                        description=_text(ctx.consent["opt_in_capture"])),
        title=Bilingual("Consent and unsubscribes", "الموافقات وإلغاء الاشتراك"),
        purpose=_text(ctx.consent["unsubscribe"]["text"]),
        steps=(
            _dedupe_step(ctx),
            _step("map_consent", "map", "Map each channel's consent state",
                  "ربط حالة الموافقة لكل قناة", fields=identity + tuple(rows),
                  params={"states": {name: {"granted": list(gate.granted_values)}
                                     for name, gate in ctx.gates.items()}}),
            _step("upsert_consent", "upsert", "Write the consent record to the CRM",
                  "كتابة سجل الموافقة في CRM",
                  params={"entity": "contact", "two_way": ctx.consent["two_way"],
                          "channels": _consent_channels(ctx)},
                  calls=tuple(calls)),
        ))


def _reconcile_flow(ctx: _Context) -> Flow:
    return Flow(
        key="reconciliation", module="orders",
        trigger=Trigger(kind="schedule", source="schedule", every_minutes=RECONCILE_EVERY_MINUTES,
                        description=Bilingual(
                            f"Every {RECONCILE_EVERY_MINUTES} minutes",
                            f"كل {arabic_count(RECONCILE_EVERY_MINUTES, 'minute')}")),
        title=Bilingual("Reconciliation", "المطابقة الدورية"),
        purpose=Bilingual(
            "Re-read the orders changed since the last run and pass each one to the order "
            "flow, to repair webhooks that never arrived.",
            "إعادة قراءة الطلبات التي تغيّرت منذ آخر تشغيل وتمرير كل منها إلى تدفق الطلبات، "
            "لتعويض إشعارات Webhook التي لم تصل."),
        steps=(
            _step("read_changed", "lookup", "Read orders changed since the cursor",
                  "قراءة الطلبات التي تغيّرت منذ آخر مؤشر",
                  params={"cursor_store": "sync_cursors", "cursor_key": "orders",
                          "iterate": True, "replay_store": "failed_items",
                          "replay_flow": "order-sync"},
                  calls=(crm_calls.store_poll_call(ctx.platform, "orders"),)),
            _step("replay_order", "send", "Send each order to the order flow",
                  "إرسال كل طلب إلى تدفق الطلبات",
                  params={"channel": "flow", "via": "webhook", "flow": "order-sync"},
                  calls=(CrmCall(system="flow", action="replay order", method="POST",
                                 base_url="{order_sync_webhook_url}", endpoint="",
                                 body={"order": "<order>"},
                                 note="The order flow's own webhook address; the order's "
                                      "upsert by its store id makes a replay harmless."),)),
            _step("save_cursor", "store", "Save the newest updated_at as the cursor",
                  "حفظ أحدث قيمة updated_at مؤشرًا",
                  params={"store": "sync_cursors", "key": "orders", "value": "max updated_at"}),
        ))


def _error_flow() -> Flow:
    return Flow(
        key="error-alert", module="alerts",
        trigger=Trigger(kind="error", source="platform",
                        description=Bilingual("A run of any flow fails after its retries",
                                              "فشل تشغيل أي تدفق بعد استنفاد إعادة المحاولة")),
        title=Bilingual("Failures and alerts", "الأخطاء والتنبيهات"),
        purpose=Bilingual(
            "Keep each failed item for replay and alert the team with ids only, never names, "
            "phones or emails.",
            "حفظ كل عنصر فشل لإعادة تشغيله لاحقًا، وتنبيه الفريق بالمعرّفات فقط دون أسماء أو "
            "أرقام جوال أو عناوين بريد."),
        steps=(
            _step("map_failure", "map", "Collect the flow, step, error code and record ids",
                  "جمع اسم التدفق والخطوة ورمز الخطأ ومعرّفات السجلات",
                  params={"keep": ["flow", "step", "error code", "event id", "record ids"],
                          "drop": ["names", "phones", "emails", "addresses"]}),
            _step("store_failure", "store", "Keep the failed item for replay",
                  "حفظ العنصر الفاشل لإعادة تشغيله",
                  params={"store": "failed_items", "key": "execution.id", "value": "payload"}),
            _step("alert_team", "alert", "Alert the team", "تنبيه الفريق",
                  params={"to": "integration team"}, calls=(crm_calls.alert_call(),)),
        ))


def build_flows(answers: Answers, plan: Plan, spec: Mapping[str, Mapping[str, Any]]) -> FlowSet:
    """Build every workflow of the project from its answers, plan and integration spec.

    The flows follow the plan's modules: products, events and support tickets appear
    only when their module is on, and the playbook flows only for enabled playbooks
    with at least one step.
    """
    ctx = _Context(answers, plan, spec)
    flows = [_contact_flow(ctx), _order_flow(ctx)]
    if "products" in plan.modules and ctx.enabled("product"):
        flows.append(_product_flow(ctx))
    if "events" in plan.modules and ctx.enabled("event"):
        flows.append(_event_flow(ctx))
    if "playbooks" in plan.modules:
        cart = _playbook(ctx, "abandoned_cart")
        if cart is not None:
            flows.append(_abandoned_flow(ctx, cart))
        # Imported here because post_purchase builds on this module's helpers.
        from generator.ipaas.post_purchase import post_purchase_flow

        playbook = _playbook(ctx, "post_purchase")
        if playbook is not None:
            flows.append(post_purchase_flow(ctx, playbook))
        playbook = _playbook(ctx, "win_back")
        if playbook is not None:
            flows.append(_scheduled_flow(ctx, playbook, "win-back"))
    if "consent" in plan.modules and ctx.consent["channels"]:
        flows.append(_consent_flow(ctx))
    if "support" in plan.modules and ctx.enabled("ticket"):
        flows.append(_ticket_flow(ctx))
    flows.append(_reconcile_flow(ctx))
    flows.append(_error_flow())
    return FlowSet(crm=plan.crm, platform=plan.platform, flows=tuple(flows),
                   consent_gates=ctx.gates, quiet_hours=ctx.playbooks["quiet_hours"],
                   mapping=ctx.mapping)
