"""Settings and fixed facts of the HubSpot stand-in: object types, default properties, pipelines.

The facts come from HubSpot's CRM API guides (objects, properties, pipelines,
associations v4) and the API usage guidelines page for the rate limits. Values
marked NOTE are taken from secondary sources and can be overridden in the config.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

# Rate limits from the API usage guidelines: 100 requests per rolling 10 s on
# Free and Starter, 190 on Professional and Enterprise; 250,000 requests a day on Free.
DEFAULT_RATE_LIMIT_PER_10S = 100
RATE_WINDOW_SECONDS = 10.0
DEFAULT_DAILY_LIMIT = 250_000
# NOTE: an old changelog gives 4 search requests per second per token, and current
# docs give about 5 per second per account. The limit is configurable for that reason.
DEFAULT_SEARCH_RATE_PER_SECOND = 5
SEARCH_WINDOW_SECONDS = 1.0

BATCH_INPUT_LIMIT = 100
SEARCH_PAGE_LIMIT = 200
SEARCH_MAX_FILTER_GROUPS = 5
SEARCH_MAX_FILTERS_PER_GROUP = 10
SEARCH_MAX_FILTERS_TOTAL = 25
# NOTE: HubSpot documents 1,000 ids for a v4 association batch read; the batch create
# limit is taken to be the CRM's usual 100 inputs.
ASSOCIATION_CREATE_LIMIT = 100
ASSOCIATION_READ_LIMIT = 1000
MAX_UNIQUE_PROPERTIES_PER_OBJECT = 10


@dataclass
class HubSpotStandinConfig:
    """Settings of one stand-in app.

    Attributes:
        rate_limit_per_10s: Requests allowed per token in a rolling 10-second window;
            0 turns the limit off.
        search_rate_per_second: Search requests allowed per token per second; 0 turns it off.
        daily_limit: Requests allowed per token per UTC day; 0 turns it off.
        accepted_tokens: Bearer tokens the stand-in accepts; None accepts any non-empty token.
        indexing_delay_seconds: Seconds before a write shows in search results.
        clock: Seconds since the epoch; tests inject a fake clock to step time.
        latency_seconds: Delay added to every HubSpot API call.
        retry_after_seconds: When set, 429 responses carry ``Retry-After`` with this value.
        search_sends_rate_headers: Whether search responses carry the rate-limit headers.
        portal_id: Account id returned by ``/account-info/v3/details`` and used in
            event names (``pe<portal_id>_<name>``).
    """

    rate_limit_per_10s: int = DEFAULT_RATE_LIMIT_PER_10S
    search_rate_per_second: int = DEFAULT_SEARCH_RATE_PER_SECOND
    daily_limit: int = DEFAULT_DAILY_LIMIT
    accepted_tokens: frozenset[str] | None = None
    indexing_delay_seconds: float = 0.0
    clock: Callable[[], float] = time.time
    latency_seconds: float = 0.0
    # NOTE: no public page confirms whether HubSpot sends Retry-After on a 429, so the
    # header is off by default and clients must not depend on it.
    retry_after_seconds: int | None = None
    # NOTE: a secondary source reports that search responses carry no
    # X-HubSpot-RateLimit-* headers. That is unconfirmed, so it is configurable.
    search_sends_rate_headers: bool = False
    portal_id: int = 1234567


# Object names and their type ids, from the CRM object guides.
OBJECT_TYPE_IDS = {
    "contacts": "0-1",
    "companies": "0-2",
    "deals": "0-3",
    "tickets": "0-5",
    "products": "0-7",
    "line_items": "0-8",
    # Notes are activities: a private app with the contacts write scope creates them,
    # and a note associated with a contact shows on the contact's timeline.
    "notes": "0-46",
}
# Singular forms HubSpot accepts in paths, such as /crm/v3/objects/contact.
OBJECT_ALIASES = {
    "contact": "contacts",
    "company": "companies",
    "deal": "deals",
    "ticket": "tickets",
    "product": "products",
    "line_item": "line_items",
    "note": "notes",
    **{type_id: name for name, type_id in OBJECT_TYPE_IDS.items()},
}
# The word HubSpot uses in conflict and not-found messages, such as "Contact already exists".
OBJECT_LABELS = {
    "contacts": "Contact",
    "companies": "Company",
    "deals": "Deal",
    "tickets": "Ticket",
    "products": "Product",
    "line_items": "Line item",
    "notes": "Note",
}
# Upper-case names used in batch read errors ("Could not get some CONTACT objects").
OBJECT_ERROR_NAMES = {
    "contacts": "CONTACT",
    "companies": "COMPANY",
    "deals": "DEAL",
    "tickets": "TICKET",
    "products": "PRODUCT",
    "line_items": "LINE_ITEM",
    "notes": "NOTE",
}

# NOTE: the default group names follow HubSpot's property settings pages (secondary).
DEFAULT_GROUPS = {
    "contacts": ("contactinformation", "Contact information"),
    "companies": ("companyinformation", "Company information"),
    "deals": ("dealinformation", "Deal information"),
    "tickets": ("ticketinformation", "Ticket information"),
    "products": ("productinformation", "Product information"),
    "line_items": ("lineiteminformation", "Line item information"),
    # NOTE: the notes group name is assumed; no call of the service reads it.
    "notes": ("noteinformation", "Note information"),
}

# (name, type, fieldType) of the default properties the spec and the service use.
_STRING = ("string", "text")
_NUMBER = ("number", "number")
_DATETIME = ("datetime", "date")
_ENUM = ("enumeration", "select")
DEFAULT_PROPERTIES: dict[str, dict[str, tuple[str, str]]] = {
    "contacts": {
        "email": _STRING, "firstname": _STRING, "lastname": _STRING,
        "phone": ("string", "phonenumber"), "mobilephone": ("string", "phonenumber"),
        "city": _STRING, "country": _STRING, "lifecyclestage": _ENUM,
        "hs_analytics_source": _ENUM, "hs_latest_source": _ENUM,
    },
    "companies": {"name": _STRING, "domain": _STRING, "city": _STRING, "phone": _STRING},
    "deals": {
        "dealname": _STRING, "amount": _NUMBER, "deal_currency_code": _ENUM,
        "pipeline": _ENUM, "dealstage": _ENUM, "closedate": _DATETIME,
    },
    "line_items": {
        "name": _STRING, "quantity": _NUMBER, "price": _NUMBER, "hs_product_id": _NUMBER,
        "hs_sku": _STRING, "amount": _NUMBER, "description": ("string", "textarea"),
    },
    "products": {
        "name": _STRING, "price": _NUMBER, "hs_sku": _STRING,
        "description": ("string", "textarea"),
    },
    "tickets": {
        "subject": _STRING, "content": ("string", "textarea"), "hs_pipeline": _ENUM,
        "hs_pipeline_stage": _ENUM, "hs_ticket_priority": _ENUM, "source_type": _ENUM,
    },
    # hs_timestamp places the note on the timeline and is required; the body is HTML.
    "notes": {"hs_timestamp": _DATETIME, "hs_note_body": ("string", "html")},
}
# Read-only properties every object has; HubSpot sets them and rejects writes to them.
SYSTEM_PROPERTIES: dict[str, tuple[str, str]] = {
    "hs_object_id": _NUMBER,
    "createdate": _DATETIME,
    "lastmodifieddate": _DATETIME,
    "hs_lastmodifieddate": _DATETIME,
}
# Properties returned by a read that names no properties.
DEFAULT_READ_PROPERTIES = {
    "contacts": ("email", "firstname", "lastname"),
    "companies": ("name", "domain"),
    "deals": ("dealname", "amount", "pipeline", "dealstage", "closedate"),
    "line_items": ("name", "quantity", "price"),
    "products": ("name", "price", "description"),
    "tickets": ("subject", "content", "hs_pipeline", "hs_pipeline_stage"),
    "notes": ("hs_timestamp", "hs_note_body"),
}
# Option lists of default enumeration properties (values only; labels are derived).
DEFAULT_OPTIONS = {
    ("contacts", "lifecyclestage"): (
        "subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead",
        "opportunity", "customer", "evangelist", "other",
    ),
    ("contacts", "hs_analytics_source"): (
        "ORGANIC_SEARCH", "PAID_SEARCH", "EMAIL_MARKETING", "SOCIAL_MEDIA", "REFERRALS",
        "OTHER_CAMPAIGNS", "DIRECT_TRAFFIC", "OFFLINE", "PAID_SOCIAL",
    ),
    ("contacts", "hs_latest_source"): (
        "ORGANIC_SEARCH", "PAID_SEARCH", "EMAIL_MARKETING", "SOCIAL_MEDIA", "REFERRALS",
        "OTHER_CAMPAIGNS", "DIRECT_TRAFFIC", "OFFLINE", "PAID_SOCIAL",
    ),
    ("tickets", "hs_ticket_priority"): ("LOW", "MEDIUM", "HIGH", "URGENT"),
    ("tickets", "source_type"): ("CHAT", "EMAIL", "FORM", "PHONE"),
}
# Enumerations whose options live elsewhere (pipelines, currencies), not in the property.
EXTERNAL_OPTION_PROPERTIES = {
    ("deals", "pipeline"), ("deals", "dealstage"), ("deals", "deal_currency_code"),
    ("tickets", "hs_pipeline"), ("tickets", "hs_pipeline_stage"),
}

# HUBSPOT_DEFINED association type ids by (from, to). NOTE: these come from public
# SDK constant files (secondary), the same values in several of them.
ASSOCIATION_TYPES = {
    ("contacts", "companies"): 279,
    ("companies", "contacts"): 280,
    ("deals", "contacts"): 3,
    ("contacts", "deals"): 4,
    ("deals", "companies"): 5,
    ("companies", "deals"): 6,
    ("deals", "line_items"): 19,
    ("line_items", "deals"): 20,
    ("contacts", "tickets"): 15,
    ("tickets", "contacts"): 16,
    ("deals", "tickets"): 27,
    ("tickets", "deals"): 28,
    ("contacts", "notes"): 201,
    ("notes", "contacts"): 202,
}
# Properties a create must give, by object (the notes guide marks hs_timestamp required).
REQUIRED_ON_CREATE = {"notes": ("hs_timestamp",)}
# Primary company labels, accepted beside the unlabeled types above.
PRIMARY_ASSOCIATION_TYPES = {("contacts", "companies"): 1, ("companies", "contacts"): 2}


def deal_stage(stage_id: str, label: str, order: int, probability: str) -> dict[str, object]:
    """Return a deal stage as the pipelines API stores it, before timestamps are added."""
    closed = stage_id in ("closedwon", "closedlost")
    return {
        "id": stage_id,
        "label": label,
        "displayOrder": order,
        "metadata": {"probability": probability, "isClosed": "true" if closed else "false"},
    }


# NOTE: the default pipelines of a new account are taken from HubSpot code samples
# (secondary): deals "default" with these stage ids, tickets "0" with stages 1-4.
DEFAULT_PIPELINES: dict[str, list[dict[str, object]]] = {
    "deals": [{
        "id": "default",
        "label": "Sales Pipeline",
        "displayOrder": 0,
        "stages": [
            deal_stage("appointmentscheduled", "Appointment Scheduled", 0, "0.2"),
            deal_stage("qualifiedtobuy", "Qualified To Buy", 1, "0.4"),
            deal_stage("presentationscheduled", "Presentation Scheduled", 2, "0.6"),
            deal_stage("decisionmakerboughtin", "Decision Maker Bought-In", 3, "0.8"),
            deal_stage("contractsent", "Contract Sent", 4, "0.9"),
            deal_stage("closedwon", "Closed Won", 5, "1.0"),
            deal_stage("closedlost", "Closed Lost", 6, "0.0"),
        ],
    }],
    "tickets": [{
        "id": "0",
        "label": "Support Pipeline",
        "displayOrder": 0,
        "stages": [
            {"id": "1", "label": "New", "displayOrder": 0, "metadata": {"ticketState": "OPEN"}},
            {"id": "2", "label": "Waiting on contact", "displayOrder": 1,
             "metadata": {"ticketState": "OPEN"}},
            {"id": "3", "label": "Waiting on us", "displayOrder": 2,
             "metadata": {"ticketState": "OPEN"}},
            {"id": "4", "label": "Closed", "displayOrder": 3,
             "metadata": {"ticketState": "CLOSED"}},
        ],
    }],
}
# The properties that store the pipeline and the stage of a record, per object with pipelines.
PIPELINE_PROPERTIES = {
    "deals": ("pipeline", "dealstage"),
    "tickets": ("hs_pipeline", "hs_pipeline_stage"),
}
