"""HTTP modules of a Make blueprint: URLs, auth headers, error routes and the Zoho token.

Every CRM and store call goes through ``http:MakeRequest``. Each one gets an error
route that reports the failure to the error-alert scenario and retries through Break.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from generator.ipaas import make_iml
from generator.ipaas.crm_calls import ZOHO_DEFAULT_API_DOMAIN, CrmCall
from generator.ipaas.flows import Step
from generator.ipaas.make_builder import X_STEP, Y_STEP, Builder, fill, json_body

# Retries of a failed call before the run is stored as an incomplete execution:
# three attempts 15 minutes apart ride out HubSpot's ten-second limit and short outages.
# Body fields that identify one version of a store record, by platform: the dedupe
# key when the webhook did not pass the event id header ("Get request headers" off).
# A redelivery carries the same body, so it still gets the same key.
BODY_EVENT_KEY = {"shopify": ("id", "updated_at"), "woocommerce": ("id", "date_modified_gmt")}
BREAK_RETRY_COUNT = 3
BREAK_RETRY_INTERVAL_MINUTES = 15
# Values a user sets in the scenario editor after import; never a real secret.
PLACEHOLDERS = {
    "{api_domain}": ZOHO_DEFAULT_API_DOMAIN,
    "{shop_domain}": "your-store.myshopify.com",
    "{api_version}": "API-VERSION",
    "{store_domain}": "your-store.example",
    "{storefront_api_url}": "https://storefront.example/api",
    "{graph_api_version}": "GRAPH-API-VERSION",
    "{phone_number_id}": "PHONE-NUMBER-ID",
    "{sms_provider_url}": "https://sms-provider.example/send",
    "{alert_webhook_url}": "https://alerts.example/webhook",
    "{order_sync_webhook_url}": "https://hook.make.example/ORDER-SYNC-WEBHOOK",
    "{whatsapp_language}": "WHATSAPP-TEMPLATE-LANGUAGE",
}
# The WhatsApp template language sent while {whatsapp_language} is left as is: the
# same default as the n8n workflows' RABT_WHATSAPP_LANGUAGE.
DEFAULT_WHATSAPP_LANGUAGE = "ar"
AUTH_HEADERS = {
    "hubspot": ("Authorization", "Bearer HUBSPOT-PRIVATE-APP-TOKEN"),
    "zoho": ("Authorization", "Zoho-oauthtoken ZOHO-ACCESS-TOKEN"),
    "shopify": ("X-Shopify-Access-Token", "SHOPIFY-ADMIN-API-TOKEN"),
    "woocommerce": ("Authorization", "Basic WOOCOMMERCE-KEY-AND-SECRET"),
    "whatsapp": ("Authorization", "Bearer WHATSAPP-ACCESS-TOKEN"),
}
# Zoho access tokens last an hour. The blueprints cache the token, its expiry and the
# account's api_domain in the data store zoho_oauth, record "access-token". They
# refresh it when less than this margin is left, from the record "client" that the
# user enters once: client id, client secret, refresh token and accounts server.
ZOHO_TOKEN_STORE = "zoho_oauth"
ZOHO_TOKEN_KEY = "access-token"
ZOHO_CLIENT_KEY = "client"
ZOHO_REFRESH_MARGIN_MINUTES = 5
ERROR_HOOK_URL = "https://hook.make.example/ERROR-ALERT-WEBHOOK"
RUN_DATE_FORMAT = "YYYY-MM-DDTHH:mm:ssZ"


def _url(builder: Builder, call: CrmCall) -> str:
    url = call.url
    if call.system == "zoho" and builder.token_id is not None:
        domain = f'ifempty({builder.token_id}.api_domain; "{ZOHO_DEFAULT_API_DOMAIN}")'
        url = url.replace("{api_domain}", "{{" + domain + "}}")
    for placeholder, value in PLACEHOLDERS.items():
        url = url.replace(placeholder, value)
    return url


def _auth_headers(builder: Builder, call: CrmCall) -> list[dict[str, str]]:
    if call.system == "zoho" and builder.token_id is not None:
        return [{"name": "Authorization",
                 "value": "Zoho-oauthtoken {{" + f"{builder.token_id}.access_token" + "}}"}]
    if call.system in AUTH_HEADERS:
        header, value = AUTH_HEADERS[call.system]
        return [{"name": header, "value": value}]
    return []


def http_module(builder: Builder, call: CrmCall, name: str, y: int = 0) -> dict[str, Any]:
    mapper: dict[str, Any] = {
        "url": _url(builder, call), "method": call.method.lower(),
        "headers": _auth_headers(builder, call),
        "parseResponse": True,
        "queryParameters": [{"name": key,
                             "value": str(fill(value, builder.values))}
                            for key, value in call.query.items()],
    }
    if call.body is not None and call.method != "GET":
        mapper.update({"contentType": "json", "inputMethod": "jsonString",
                       "jsonStringBodyContent": json_body(call.body, builder.values,
                                                          builder.safe_values,
                                                          builder.unquoted_values,
                                                          builder.omitted_values)})
    module = builder.module("http:MakeRequest", mapper, name, y,
                            parameters={"authenticationType": "noAuth"})
    module["onerror"] = error_route(builder, name, y)
    if call.system == "hubspot" and "/batch/" in call.endpoint:
        builder.batch_requests[int(module["id"])] = (name, builder.record_ref)
    return module


# One piece of a dedupe key's field text: a formula (``True``) or literal text (``False``).
KeyPiece = tuple[bool, str]


def dedupe_pieces(builder: Builder, key: str) -> list[KeyPiece]:
    """Return the pieces of a delivery's dedupe key, from a flow's key such as ``header X``.

    Make's ``+`` adds numbers, so text is joined by writing formulas side by side in
    the field (``{{1.id}}-{{1.updated_at}}``), never with ``+``. A body key joins its
    fields with ``-``. A header key falls back to the body fields of ``BODY_EVENT_KEY``
    when the webhook did not pass the headers: each piece after the first is written
    only when the header is missing, so the key is the header alone when it is there.
    """
    source, key_field = key.split(" ", 1)
    trigger = builder.trigger_id
    if source == "header":
        header = make_iml.header_value(trigger, key_field)
        first, *rest = BODY_EVENT_KEY.get(builder.store, BODY_EVENT_KEY["shopify"])
        missing = f"ifempty({header}; emptystring) = emptystring"
        pieces: list[KeyPiece] = [(True, f"ifempty({header}; {trigger}.{first})")]
        for name in rest:
            pieces += [(True, f'if({missing}; "-"; emptystring)'),
                       (True, f"if({missing}; {trigger}.{name}; emptystring)")]
        return pieces
    names = [name.strip() for name in key_field.split(" + ")]
    pieces = [(True, f"{trigger}.{names[0]}")]
    for name in names[1:]:
        pieces += [(False, "-"), (True, f"{trigger}.{name}")]
    return pieces


def key_text(pieces: list[KeyPiece], json_safe: bool = False) -> str:
    """Return the field text of a key's pieces; ``json_safe`` escapes each value for JSON."""
    parts = []
    for formula, text in pieces:
        if not formula:
            parts.append(text)
        else:
            parts.append("{{" + (make_iml.json_text(text) if json_safe else text) + "}}")
    return "".join(parts)


def record_id(builder: Builder) -> str:
    """Return the formula of the id of the record that a failed run was writing.

    A webhook scenario reads it from its trigger body: the record's ``id`` on Shopify
    and WooCommerce, ``event_id`` on a headless storefront. A scheduled scenario has
    no trigger module, so it names the record it is processing, or the run's start
    time before it has one (a failed search).
    """
    if builder.instant:
        return f"{builder.trigger_id}.{builder.event_field}"
    if builder.record_ref is not None:
        return builder.record_ref
    return f'"run " + formatDate(now; "{RUN_DATE_FORMAT}")'


def event_id(builder: Builder) -> list[KeyPiece]:
    """Return the pieces of the id that a failure report names the failed event by.

    A webhook scenario with a dedupe key sends that key, the same value the
    scenario checks in ``processed_events``, so a failure can be matched to its
    delivery. A scheduled scenario gets no delivery, so it sends the record id.
    NOTE: Make lists an execution ID among its system variables, but its formula name
    is not confirmed in Make's help, so the record key is sent instead.
    """
    if builder.instant and builder.dedupe_key:
        return dedupe_pieces(builder, builder.dedupe_key)
    return [(True, record_id(builder))]


# Stands in the report body for the event id until the body is serialised.
EVENT_ID_MARK = "@@rabt-event-id@@"


def error_body(builder: Builder, step_name: str, error: str) -> str:
    """Return the JSON body of a failure report: flow, step, error, event id and record id."""
    body = json_body({"flow": builder.flow_key, "step": step_name, "error": "<error>",
                      "event_id": EVENT_ID_MARK, "record_id": "<record_id>"},
                     {"error": error, "record_id": record_id(builder)})
    return body.replace(EVENT_ID_MARK, key_text(event_id(builder), json_safe=True))


def error_route(builder: Builder, step_name: str, y: int) -> list[dict[str, Any]]:
    """Report the failure to the error-alert scenario, then retry through Break."""
    x = builder.x
    report = {
        "id": builder.next_id, "module": "http:MakeRequest", "version": 4,
        "parameters": {"authenticationType": "noAuth"},
        "mapper": {"url": ERROR_HOOK_URL, "method": "post", "headers": [],
                   "contentType": "json", "parseResponse": False, "queryParameters": [],
                   "inputMethod": "jsonString",
                   "jsonStringBodyContent": error_body(builder, step_name, "error.message")},
        "metadata": {"designer": {"x": x, "y": y + Y_STEP, "name": "Report the failure"}},
    }
    retry = {
        "id": builder.next_id + 1, "module": "builtin:Break", "version": 1, "parameters": {},
        "mapper": {"retry": True, "count": BREAK_RETRY_COUNT,
                   "interval": BREAK_RETRY_INTERVAL_MINUTES},
        "metadata": {"designer": {"x": x + X_STEP, "y": y + Y_STEP,
                                  "name": "Retry later"}},
    }
    builder.next_id += 2
    return [report, retry]


def calls_zoho(steps: tuple[Step, ...]) -> bool:
    return any(call.system == "zoho" for step in steps for call in _walk_calls(step))


def _walk_calls(step: Step) -> list[CrmCall]:
    calls = list(step.calls)
    for route in step.routes:
        for inner in route.steps:
            calls.extend(_walk_calls(inner))
    return calls


def token_router(builder: Builder, y: int,
                  build_rest: Callable[[], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Return the modules that refresh the cached Zoho token when it expires, then run the rest.

    The first route runs only when the token is missing or expires within the margin.
    It reads the client record, requests a new token from the accounts server and
    caches it. The second route, which Make runs after the first, reads the current token
    and continues with the flow's own modules.
    """
    store = f"(data store {ZOHO_TOKEN_STORE})"
    cached = builder.module("datastore:GetRecord",
                            {"key": ZOHO_TOKEN_KEY, "returnWrapped": False},
                            f"Read the cached Zoho token {store}", y)
    router = builder.module("builtin:BasicRouter", None, "Refresh the Zoho token if it expires",
                            y)
    start_x = builder.x
    margin = f"{{{{addMinutes(now; {ZOHO_REFRESH_MARGIN_MINUTES})}}}}"
    builder.pending_filter = {"name": "Token missing or about to expire", "conditions": [
        [{"a": "{{" + f"{cached['id']}.access_token" + "}}", "o": "text:equal", "b": ""}],
        [{"a": "{{" + f"{cached['id']}.expires_at" + "}}", "o": "date:less", "b": margin}]]}
    client = builder.module("datastore:GetRecord",
                            {"key": ZOHO_CLIENT_KEY, "returnWrapped": False},
                            f"Read the Zoho client and refresh token {store}", y + Y_STEP)
    refresh = CrmCall(system="zoho_accounts", action="refresh the access token", method="POST",
                      base_url="{{" + f"{client['id']}.accounts_server" + "}}",
                      endpoint="/oauth/v2/token", query={
                          "grant_type": "refresh_token",
                          "client_id": "{{" + f"{client['id']}.client_id" + "}}",
                          "client_secret": "{{" + f"{client['id']}.client_secret" + "}}",
                          "refresh_token": "{{" + f"{client['id']}.refresh_token" + "}}"})
    request = http_module(builder, refresh, "Ask Zoho for a new access token", y + Y_STEP)
    token = f"{request['id']}.data"
    save = builder.module("datastore:AddRecord", {
        "key": ZOHO_TOKEN_KEY, "overwrite": True,
        "data": {"access_token": "{{" + f"{token}.access_token" + "}}",
                 "expires_at": "{{" + f"addSeconds(now; {token}.expires_in)" + "}}",
                 "api_domain": "{{" + f"{token}.api_domain" + "}}"}},
        f"Cache the new token {store}", y + Y_STEP)
    builder.x = start_x
    current = builder.module("datastore:GetRecord",
                             {"key": ZOHO_TOKEN_KEY, "returnWrapped": False},
                             f"Read the current Zoho token {store}", y)
    builder.token_id = int(current["id"])
    router["routes"] = [{"flow": [client, request, save]}, {"flow": [current, *build_rest()]}]
    return [cached, router]
