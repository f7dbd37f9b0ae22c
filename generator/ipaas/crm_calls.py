"""The HTTP or SQL calls a workflow step makes, built as data for each CRM and store.

Every call names its system, method, endpoint and body shape, so a Make blueprint,
an n8n workflow and a Zapier build sheet send the same request. Body values are
placeholders such as ``<email>`` that the platform's mapping fills in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

HUBSPOT_BASE_URL = "https://api.hubapi.com"
# Zoho returns the account's api_domain with each access token; the Saudi data
# centre is the default because it keeps CRM data in the Kingdom.
ZOHO_BASE_URL = "{api_domain}/crm/v8"
ZOHO_DEFAULT_API_DOMAIN = "https://www.zohoapis.sa"
# NOTE: the Graph API version is the project's choice; pin the version the
# WhatsApp Business account was tested with.
WHATSAPP_BASE_URL = "https://graph.facebook.com/{graph_api_version}"
SHOPIFY_BASE_URL = "https://{shop_domain}/admin/api/{api_version}"
WOOCOMMERCE_BASE_URL = "https://{store_domain}/wp-json/wc/v3"

# Records per write call: HubSpot batch endpoints take 100 inputs, Zoho insert,
# update and upsert take 100 records.
HUBSPOT_BATCH_LIMIT = 100
ZOHO_BATCH_LIMIT = 100
# The system field each Zoho module accepts in duplicate_check_fields besides its own
# unique custom fields; any other field (Mobile, for one) makes the upsert fail.
ZOHO_SYSTEM_DUPLICATE_FIELD = {"Contacts": "Email", "Leads": "Email", "Accounts": "Account_Name",
                               "Products": "Product_Name"}
HUBSPOT_SEARCH_PAGE_SIZE = 200
ZOHO_PAGE_SIZE = 200
WOOCOMMERCE_PAGE_SIZE = 100

# Mapping relation names to the CRM object each CRM uses for them.
HUBSPOT_OBJECTS = {"contact": "contacts", "order": "deals", "line_item": "line_items",
                   "product": "products", "ticket": "tickets"}


@dataclass(frozen=True)
class CrmCall:
    """One request a step sends: to the CRM, the store, WhatsApp or an alert hook.

    ``method`` is an HTTP method, or ``SQL`` for the client's own PostgreSQL database,
    where ``endpoint`` contains the statement. ``batch_limit`` is the most records one
    call takes, or None for a single-record call.
    """

    system: str
    action: str
    method: str
    base_url: str
    endpoint: str
    body: Any = None
    batch_limit: int | None = None
    note: str | None = None
    query: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """Return the full URL template, or the SQL statement for a database call."""
        return self.endpoint if self.method == "SQL" else self.base_url + self.endpoint


def _placeholders(targets: list[tuple[str, str]]) -> dict[str, str]:
    return {target: f"<{name}>" for name, target in targets}


def _column(target: str) -> str:
    return target.split(".", 1)[1] if "." in target else target


def upsert_call(crm: str, entity: str, obj: str, targets: list[tuple[str, str]],
                unique_target: str | None, duplicate_check: list[str] | None = None,
                keep_latest: tuple[str, ...] = (),
                identity: list[tuple[str, str]] | None = None) -> CrmCall:
    """Return the call that creates or updates records of ``obj`` by a unique key.

    Args:
        crm: ``hubspot``, ``zoho`` or ``custom`` (the client's PostgreSQL database).
        entity: the mapping entity (``contact``, ``order`` ...), for HubSpot's object name.
        obj: the CRM object from the mapping (``contacts``, ``Deals``, ``orders`` ...).
        targets: ``(field name, target)`` pairs written by the call.
        unique_target: the target that identifies a record, or None.
        duplicate_check: Zoho's duplicate_check_fields, in order; defaults to the unique target.
        keep_latest: the time targets that an update may only move forward (the mapping's
            ``keep_latest`` roll-ups). Only the PostgreSQL statements can keep them in the
            same statement, with ``GREATEST``.
        identity: for the client's database, the ``(field name, target)`` pairs that find
            an existing contact, in the identity match order (see ``contact_upsert_sql``).
    """
    if crm == "hubspot":
        return _hubspot_upsert(obj, targets, unique_target)
    if crm == "zoho":
        checks = duplicate_check or ([unique_target] if unique_target else [])
        return CrmCall(
            system="zoho", action=f"upsert {obj}", method="POST", base_url=ZOHO_BASE_URL,
            endpoint=f"/{obj.split('.')[0]}/upsert",
            body={"data": [_placeholders(targets)], "duplicate_check_fields": checks,
                  "trigger": ["workflow"]},
            batch_limit=ZOHO_BATCH_LIMIT)
    if identity:
        table = obj.split(".")[0]
        return CrmCall(system="postgres", action=f"upsert {table}", method="SQL", base_url="",
                       endpoint=contact_upsert_sql(table, targets, identity, keep_latest))
    return _postgres_upsert(obj, targets, unique_target, keep_latest)


def _hubspot_upsert(obj: str, targets: list[tuple[str, str]],
                    unique_target: str | None) -> CrmCall:
    if obj == "custom_behavioral_events":
        properties = {_column(target): f"<{name}>" for name, target in targets
                      if target.startswith("properties.")}
        body = {"eventName": "<fully qualified event name>", "email": "<customer_email>",
                "occurredAt": "<occurred_at>", "properties": properties}
        return CrmCall(system="hubspot", action="send behavioural event", method="POST",
                       base_url=HUBSPOT_BASE_URL, endpoint="/events/v3/send", body=body,
                       note="Custom behavioural events need an Enterprise subscription.")
    properties = _placeholders(targets)
    key = properties.get(unique_target or "", "<id>")
    return CrmCall(
        system="hubspot", action=f"upsert {obj}", method="POST", base_url=HUBSPOT_BASE_URL,
        endpoint=f"/crm/v3/objects/{obj}/batch/upsert",
        body={"inputs": [{"id": key, "idProperty": unique_target, "properties": properties}]},
        batch_limit=HUBSPOT_BATCH_LIMIT,
        note="A partial failure answers 207 Multi-Status with one result per input.")


def _postgres_upsert(obj: str, targets: list[tuple[str, str]],
                     unique_target: str | None, keep_latest: tuple[str, ...] = ()) -> CrmCall:
    table = obj.split(".")[0]
    columns = [_column(target) for _, target in targets]
    latest = {_column(target) for target in keep_latest}
    values = ", ".join(f"<{name}>" for name, _ in targets)
    statement = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({values})"
    if unique_target:
        key = _column(unique_target)
        # A field missing from the payload arrives as NULL and keeps the stored value.
        # GREATEST skips NULL as well, and an older time (an update of an old order)
        # never moves a keep_latest time back.
        updates = ", ".join(
            f"{column} = GREATEST({table}.{column}, EXCLUDED.{column})" if column in latest
            else f"{column} = COALESCE(EXCLUDED.{column}, {table}.{column})"
            for column in columns if column != key)
        statement += f" ON CONFLICT ({key}) DO UPDATE SET {updates}"
    return CrmCall(system="postgres", action=f"upsert {table}", method="SQL",
                   base_url="", endpoint=statement)


def contact_id_sql(table: str, identity: list[tuple[str, str]]) -> str:
    """Return the expression of the id of the contact that the first identity key finds.

    ``identity`` lists ``(field name, target)`` pairs in the match order (store customer
    id, then E.164 phone, then email). A key whose value is NULL finds no row, so a guest
    is found by phone or email. The expression is NULL when no key finds a contact.
    """
    lookups = [f"(SELECT id FROM {table} WHERE {_column(target)} = <{name}> ORDER BY id LIMIT 1)"
               for name, target in identity]
    return f"COALESCE({', '.join(lookups)})" if len(lookups) > 1 else lookups[0]


def contact_upsert_sql(table: str, targets: list[tuple[str, str]],
                       identity: list[tuple[str, str]],
                       keep_latest: tuple[str, ...] = ()) -> str:
    """Return the statement that updates the contact an identity key finds, or inserts one.

    ``ON CONFLICT`` cannot serve here, because it takes one unique key and a guest has
    no store customer id. A NULL value (a field missing from the payload) keeps the
    stored value. A found contact keeps its store customer id, so a second account
    with the same phone or email never takes over the first one's row. A phone or email
    that another contact already has is not copied, so the two contacts are not
    merged and the unique indexes of ``database/schema.sql`` are not violated. A
    ``keep_latest`` time only moves forward.
    """
    columns = [_column(target) for _, target in targets]
    latest = {_column(target) for target in keep_latest}
    names = {_column(target): name for name, target in targets}
    first_key = _column(identity[0][1])
    other_keys = {_column(target) for _, target in identity[1:]}
    updates = []
    for column in columns:
        value = f"<{names[column]}>"
        if column == first_key:
            updates.append(f"{column} = COALESCE({table}.{column}, {value})")
        elif column in other_keys:
            updates.append(
                f"{column} = CASE WHEN EXISTS (SELECT 1 FROM {table} AS other WHERE "
                f"other.{column} = {value} AND other.id != {table}.id) THEN {table}.{column} "
                f"ELSE COALESCE({value}, {table}.{column}) END")
        elif column in latest:
            updates.append(f"{column} = GREATEST({table}.{column}, {value})")
        else:
            updates.append(f"{column} = COALESCE({value}, {table}.{column})")
    values = ", ".join(f"<{name}>" for name, _ in targets)
    return (f"WITH found AS (SELECT {contact_id_sql(table, identity)} AS id), "
            f"updated AS (UPDATE {table} SET {', '.join(updates)} FROM found "
            f"WHERE {table}.id = found.id RETURNING {table}.id) "
            f"INSERT INTO {table} ({', '.join(columns)}) SELECT {values} FROM found "
            f"WHERE found.id IS NULL")


def contact_update_call(obj: str, targets: list[tuple[str, str]],
                        identity: list[tuple[str, str]]) -> CrmCall:
    """Return the ``UPDATE`` that writes ``targets`` on the contact an identity key finds.

    It never inserts, so a playbook mark or a stored discount code for a contact that is
    not in the client's database yet changes nothing. A NULL value keeps the stored one.
    """
    table = obj.split(".")[0]
    updates = ", ".join(f"{_column(target)} = COALESCE(<{name}>, {table}.{_column(target)})"
                        for name, target in targets)
    statement = (f"UPDATE {table} SET {updates} "
                 f"WHERE id = {contact_id_sql(table, identity)}")
    return CrmCall(system="postgres", action=f"update {table}", method="SQL", base_url="",
                   endpoint=statement)


def associate_call(crm: str, from_entity: str, to_entity: str, kind: str,
                   ref: Any) -> CrmCall:
    """Return the call that links two records, as the mapping's association names it.

    HubSpot links records through the associations v4 API with a HUBSPOT_DEFINED type
    id. Zoho links through a lookup field that the upsert body already carries, so its
    call only documents that field. The client's PostgreSQL database links through the
    ``UPDATE`` of ``sql_links.link_call``; its call here documents the foreign key only
    where no such statement can be built.
    """
    if crm == "hubspot" and kind == "association":
        source = HUBSPOT_OBJECTS[from_entity]
        target = HUBSPOT_OBJECTS[to_entity]
        return CrmCall(
            system="hubspot", action=f"associate {source} to {target}", method="POST",
            base_url=HUBSPOT_BASE_URL,
            endpoint=f"/crm/v4/associations/{source}/{target}/batch/create",
            body={"inputs": [{"from": {"id": f"<{from_entity} id>"},
                              "to": {"id": f"<{to_entity} id>"},
                              "types": [{"associationCategory": "HUBSPOT_DEFINED",
                                         "associationTypeId": ref}]}]},
            batch_limit=HUBSPOT_BATCH_LIMIT,
            note="HUBSPOT_DEFINED type ids come from SDK constants; read them from the "
                 "association labels API at set-up.")
    system = "postgres" if crm == "custom" else crm
    return CrmCall(system=system, action=f"link {from_entity} to {to_entity}", method="FIELD",
                   base_url="", endpoint=str(ref),
                   body={str(ref): f"<{to_entity} id>"},
                   note="Written in the upsert body of the record; no separate request.")


def search_call(crm: str, obj: str, filters: list[dict[str, Any]],
                properties: list[str] | None = None) -> CrmCall:
    """Return the call that reads records of ``obj`` matching every filter.

    Each filter is ``{"field", "op", "value"}`` with op ``eq``, ``gte``, ``lt`` or ``between``.
    HubSpot's search returns only a few default properties unless the body lists
    them, so ``properties`` names the ones the steps after the search read; Zoho's
    search returns every field of the record.
    """
    if crm == "hubspot":
        hubspot_ops = {"eq": "EQ", "gte": "GTE", "lt": "LT", "between": "BETWEEN"}
        body = {"filterGroups": [{"filters": [
            {"propertyName": item["field"], "operator": hubspot_ops[item["op"]],
             **({"value": item["value"][0], "highValue": item["value"][1]}
                if item["op"] == "between" else {"value": item["value"]})}
            for item in filters]}],
            "limit": HUBSPOT_SEARCH_PAGE_SIZE}
        if properties:
            body["properties"] = list(properties)
        return CrmCall(system="hubspot", action=f"search {obj}", method="POST",
                       base_url=HUBSPOT_BASE_URL, endpoint=f"/crm/v3/objects/{obj}/search",
                       body=body, batch_limit=HUBSPOT_SEARCH_PAGE_SIZE,
                       note="Search is eventually consistent and returns at most 10,000 "
                            "results per query; page with the after cursor.")
    if crm == "zoho":
        zoho_ops = {"eq": "equals", "gte": "greater_equal", "lt": "less_than",
                    "between": "between"}
        criteria = "and".join(
            f"({item['field']}:{zoho_ops[item['op']]}:"
            f"{','.join(item['value']) if item['op'] == 'between' else item['value']})"
            for item in filters)
        return CrmCall(system="zoho", action=f"search {obj}", method="GET",
                       base_url=ZOHO_BASE_URL, endpoint=f"/{obj}/search",
                       query={"criteria": f"({criteria})", "per_page": str(ZOHO_PAGE_SIZE)},
                       batch_limit=ZOHO_PAGE_SIZE)
    sql_ops = {"eq": "=", "gte": ">=", "lt": "<"}
    clauses = [f"{_column(item['field'])} BETWEEN {item['value'][0]} AND {item['value'][1]}"
               if item["op"] == "between"
               else f"{_column(item['field'])} {sql_ops[item['op']]} {item['value']}"
               for item in filters]
    return CrmCall(system="postgres", action=f"search {obj}", method="SQL", base_url="",
                   endpoint=f"SELECT * FROM {obj} WHERE {' AND '.join(clauses)}")


def whatsapp_template_call(template: str) -> CrmCall:
    """Return the WhatsApp Cloud API call that sends an approved template."""
    return CrmCall(
        system="whatsapp", action="send template", method="POST", base_url=WHATSAPP_BASE_URL,
        endpoint="/{phone_number_id}/messages",
        body={"messaging_product": "whatsapp", "to": "<phone without +>", "type": "template",
              "template": {"name": template, "language": {"code": "<ar or en>"},
                           "components": [{"type": "body", "parameters": [
                               {"type": "text", "text": "<first_name>"}]}]}},
        note="Outside the 24-hour service window only templates approved by Meta are "
             "delivered.")


def sms_call(template: str) -> CrmCall:
    """Return the call to the client's SMS provider; its API is the client's choice."""
    return CrmCall(
        system="sms", action="send SMS", method="POST", base_url="{sms_provider_url}",
        endpoint="", body={"to": "<phone>", "template": template, "text": "<message>"},
        note="The SMS provider is not chosen yet: replace this body with the provider's API.")


def alert_call() -> CrmCall:
    """Return the call that posts an alert to the team's incoming webhook."""
    return CrmCall(
        system="alert", action="post alert", method="POST", base_url="{alert_webhook_url}",
        endpoint="", body={"text": "<flow>: <step> failed with <error code> for <record ids>"},
        note="Any chat or email tool with an incoming webhook works; the message carries "
             "ids only, never names, phones or emails.")


def store_poll_call(platform: str, resource: str) -> CrmCall:
    """Return the call that reads a store's records changed since a cursor."""
    if platform == "shopify":
        # Oldest change first, so a cursor set to the newest updated_at read never
        # skips a change on a page not read yet. The n8n node pages with $after.
        query = (f"query ($after: String) {{ {resource}(first: 100, after: $after, "
                 f"sortKey: UPDATED_AT, query: \"updated_at:>'<cursor>'\") "
                 "{ edges { node { id legacyResourceId updatedAt } } "
                 "pageInfo { hasNextPage endCursor } } }")
        return CrmCall(system="shopify", action=f"read changed {resource}", method="POST",
                       base_url=SHOPIFY_BASE_URL, endpoint="/graphql.json",
                       body={"query": query, "variables": {"after": None}}, batch_limit=100,
                       note="Only the last 60 days of orders are readable without the "
                            "read_all_orders scope.")
    if platform == "woocommerce":
        return CrmCall(system="woocommerce", action=f"read changed {resource}", method="GET",
                       base_url=WOOCOMMERCE_BASE_URL, endpoint=f"/{resource}",
                       query={"modified_after": "<cursor>",
                              "per_page": str(WOOCOMMERCE_PAGE_SIZE), "page": "<page>"},
                       batch_limit=WOOCOMMERCE_PAGE_SIZE)
    return CrmCall(system="storefront", action=f"read changed {resource}", method="GET",
                   base_url="{storefront_api_url}", endpoint=f"/{resource}",
                   query={"updated_since": "<cursor>"},
                   note="The storefront's own API; its path and parameters are the "
                        "storefront team's choice.")


def discount_call(platform: str, percent: int, hours: int) -> CrmCall:
    """Return the call that creates a single-use discount code in the store."""
    if platform == "shopify":
        return CrmCall(
            system="shopify", action="create discount code", method="POST",
            base_url=SHOPIFY_BASE_URL, endpoint="/graphql.json",
            body={"query": "mutation discountCodeBasicCreate($basicCodeDiscount: "
                           "DiscountCodeBasicInput!) { discountCodeBasicCreate("
                           "basicCodeDiscount: $basicCodeDiscount) { codeDiscountNode { id } "
                           "userErrors { message } } }",
                  "variables": {"basicCodeDiscount": {
                      "code": "<code>", "usageLimit": 1, "endsAt": f"<now + {hours} h>",
                      "customerGets": {"value": {"percentage": percent / 100}}}}},
            note="The input field names of discountCodeBasicCreate are not confirmed; check "
                 "the Admin GraphQL reference of the pinned API version.")
    if platform == "woocommerce":
        return CrmCall(
            system="woocommerce", action="create coupon", method="POST",
            base_url=WOOCOMMERCE_BASE_URL, endpoint="/coupons",
            body={"code": "<code>", "discount_type": "percent", "amount": str(percent),
                  "usage_limit": 1, "date_expires": f"<now + {hours} h>"})
    return CrmCall(system="storefront", action="create discount code", method="POST",
                   base_url="{storefront_api_url}", endpoint="/discounts",
                   body={"code": "<code>", "percent": percent, "usage_limit": 1,
                         "expires_at": f"<now + {hours} h>"},
                   note="The storefront's own discount API; its path is the storefront "
                        "team's choice.")


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def consent_insert_call(channel: str, targets: list[tuple[str, str]],
                        identity: list[tuple[str, str]], states: dict[str, str]) -> CrmCall:
    """Return the statement that adds one channel's consent row to the client's database.

    The consents table keeps every change (the latest ``captured_at`` is the current
    state), so the statement inserts and never updates. Each column appears once.
    An unsubscribe on either side wins, as in the API service: an opt-in is left out
    when the contact already has a ``withdrawn`` row for the channel captured at the
    same time or later. An opt-in without a capture time is compared as of now.

    Args:
        channel: ``email``, ``sms`` or ``whatsapp``.
        targets: ``(field name, target)`` pairs such as ``("email_consent_state",
            "consents[email].state")``.
        identity: the contact's identity ``(field name, target)`` pairs in the match
            order, to find the contact's id; a guest is found by phone or email.
        states: the store's consent value (lower case) to the stored state
            (``granted``, ``withdrawn`` or ``not_granted``).
    """
    columns = ["contact_id", "channel"]
    values = ["id", _sql_text(channel)]
    state_sql = captured_sql = None
    for name, target in targets:
        column = _column(target)
        columns.append(column)
        if column == "state":
            cases = " ".join(f"WHEN {_sql_text(value)} THEN {_sql_text(state)}"
                             for value, state in states.items())
            state_sql = f"CASE lower(<{name}>) {cases} ELSE 'not_granted' END"
            values.append(state_sql)
        elif column.endswith("_at"):
            values.append(f"CAST(<{name}> AS timestamptz)")
            if column == "captured_at":
                captured_sql = values[-1]
        else:
            values.append(f"<{name}>")
    contacts = identity[0][1].split(".")[0]
    statement = (f"INSERT INTO consents ({', '.join(columns)}) SELECT {', '.join(values)} "
                 f"FROM {contacts} WHERE id = {contact_id_sql(contacts, identity)}")
    if state_sql is not None:
        statement += _opt_out_guard(channel, state_sql, captured_sql or "now()", contacts)
    return CrmCall(system="postgres", action=f"insert {channel} consent", method="SQL",
                   base_url="", endpoint=statement)


def _opt_out_guard(channel: str, state_sql: str, captured_sql: str, contacts: str) -> str:
    """Return the condition that drops an opt-in which a stored opt-out at or after it beats."""
    return (f" AND NOT ({state_sql} = 'granted' AND EXISTS (SELECT 1 FROM consents AS"
            f" opt_out WHERE opt_out.contact_id = {contacts}.id AND opt_out.channel ="
            f" {_sql_text(channel)} AND opt_out.state = 'withdrawn' AND opt_out.captured_at"
            f" >= COALESCE({captured_sql}, now())))")


def consent_write_call(crm: str, channel: str, fields: list[str]) -> CrmCall:
    """Return the call that records one channel's consent state in the CRM."""
    if crm == "hubspot":
        return CrmCall(
            system="hubspot", action=f"write {channel} subscription status", method="POST",
            base_url=HUBSPOT_BASE_URL,
            endpoint="/communication-preferences/v4/statuses/{subscriber_id}",
            body={"channel": channel.upper(), "statusState": "<consent status>",
                  "subscriptionId": "<subscription id>",
                  "legalBasis": "CONSENT_WITH_NOTICE",
                  "legalBasisExplanation": "<consent wording>"},
            note="The v4 path version is not confirmed against the live docs; the consent "
                 "record fields go in the contact upsert.")
    table = fields[0].split(".")[0] if fields and "." in fields[0] else "Contacts"
    return upsert_call(crm, "contact", table, [(name.split(".")[-1], name) for name in fields],
                       None)
