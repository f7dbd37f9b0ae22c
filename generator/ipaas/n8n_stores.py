"""Nodes that let one set of n8n workflows serve several shops of the same platform.

A Shopify Trigger or WooCommerce Trigger node is bound to one shop's credential, so a
workflow gets one trigger node per shop and topic. Each shop's triggers feed a Code
node that writes the shop onto the delivery (``rabt_store``, its number, and
``rabt_shop``, its domain as record keys write it), and all shops then share one
chain of nodes. A scheduled poll of the store gets one Schedule Trigger per shop, so
each run reads one shop with its own cursor.

A call to a store's API takes the credential and domain of the shop it is for: a
Switch node routes the run to that shop's HTTP Request node. A run not tied to one
shop (a CRM-driven schedule that creates a discount code) calls every shop in turn,
so the same code works in whichever store the customer buys.
"""

from __future__ import annotations

from collections.abc import Callable

from generator.ipaas import n8n_code
from generator.ipaas.flows import Flow
from generator.ipaas.n8n_graph import STORE_SYSTEMS, Graph

Heads = list[tuple[str, int]]
# The n8n environment variables that hold a shop's domain, by store system. With
# several shops, shop N's variable has the suffix ``_N``.
SHOP_VARIABLES = {"shopify": "RABT_SHOPIFY_SHOP", "woocommerce": "RABT_WOOCOMMERCE_DOMAIN"}
SHOPIFY_SECRET_VARIABLE = "RABT_SHOPIFY_WEBHOOK_SECRET"
RUN_NODE = "Run for one store"

# Lower-cases the domain and drops its scheme and trailing slash, and writes a port's
# colon as %3A, the same shop part the API service's record keys use, so keys stay
# the same after a move to the API path.
SHOP_PART = """const shopPart = (domain, fallback) => {
  let text = String(domain || '').trim().toLowerCase();
  for (const scheme of ['https://', 'http://']) {
    if (text.startsWith(scheme)) text = text.slice(scheme.length);
  }
  text = text.replace(/\\/+$/, '').replace(/:/g, '%3A');
  return text || fallback;
};
"""


def store_variable(name: str, store: int) -> str:
    """Return the name of shop ``store``'s copy of environment variable ``name``."""
    return f"{name}_{store}"


def polls_store(flow: Flow) -> bool:
    """Return whether a scheduled flow reads changes from the store with a cursor."""
    return any(step.params.get("cursor_store") and any(call.system in STORE_SYSTEMS
                                                       for call in step.calls)
               for step in flow.walk())


def tag_code(title: str, platform: str, store: int) -> str:
    """Return the code that writes shop ``store`` onto each item of a run."""
    variable = store_variable(SHOP_VARIABLES[platform], store)
    fallback = n8n_code.js(platform)
    return n8n_code.header(title) + SHOP_PART + f"""
const domain = $env.{variable};
if (!domain) {{
  throw new Error('{variable} is not set: set it to store {store}\\'s domain in n8n');
}}
return $input.all().map((item, index) => ({{
  json: {{ ...item.json, rabt_store: {store}, rabt_shop: shopPart(domain, {fallback}) }},
  pairedItem: {{ item: index }} }}));
"""


def multi_store_unwrap_code(title: str, source: str, store_count: int) -> str:
    """Return the code that reads a webhook delivery from any of ``store_count`` shops.

    The shop comes from the X-Shopify-Shop-Domain header (Shopify) or the
    X-WC-Webhook-Source header (WooCommerce) and must be one of the configured shops.
    A Shopify delivery must carry a valid signature made with that shop's own app
    secret. Each kept item gets the shop's number and domain, as the shop markers write.
    """
    shopify = source == "shopify"
    variable = SHOP_VARIABLES["shopify" if shopify else "woocommerce"]
    rows = []
    for store in range(1, store_count + 1):
        secret = f"$env.{SHOPIFY_SECRET_VARIABLE}_{store}" if shopify else "null"
        rows.append(f"  [{store}, $env.{variable}_{store}, {secret}],")
    header_name = "x-shopify-shop-domain" if shopify else "x-wc-webhook-source"
    signature = """
  // Shopify signs the raw body: base64(HMAC-SHA256(the shop's app secret, raw body)).
  if (!secret) {
    throw new Error(`RABT_SHOPIFY_WEBHOOK_SECRET_${store} is missing: ` +
      `set it to store ${store}'s app secret in n8n`);
  }
  const raw = await this.helpers.getBinaryDataBuffer(index, 'data');
  const expected = crypto.createHmac('sha256', secret).update(raw).digest();
  const sent = Buffer.from(String(headers['x-shopify-hmac-sha256'] || ''), 'base64');
  if (sent.length !== expected.length || !crypto.timingSafeEqual(sent, expected)) continue;
""" if shopify else ""
    main = f"""{"// This node needs NODE_FUNCTION_ALLOW_BUILTIN=crypto." if shopify else
              "// The Webhook node checked the shared header (Header Auth credential)."}
{"const crypto = require('crypto');" if shopify else ""}
// [store number, domain, webhook secret] of each shop, from the n8n environment.
const STORES = [
{chr(10).join(rows)}
];
const byShop = new Map(STORES.filter(([, domain]) => domain)
  .map(([store, domain, secret]) => [shopPart(domain, ''), {{ store, secret }}]));
const output = [];
for (const [index, item] of $input.all().entries()) {{
  const headers = item.json.headers || {{}};
  const shop = shopPart(headers[{n8n_code.js(header_name)}], '');
  const found = byShop.get(shop);
  // A delivery from a shop that is not configured is dropped, not written to the CRM.
  if (!found) continue;
  const {{ store, secret }} = found;
{signature}  const body = item.json.body && typeof item.json.body === 'object'
    ? item.json.body : {{}};
  const eventId = headers['x-shopify-event-id'] || headers['x-wc-webhook-delivery-id'] ||
    body.event_id || null;
  output.push({{ json: {{ ...body, _event_id: eventId, rabt_store: store, rabt_shop: shop }},
    pairedItem: {{ item: index }} }});
}}
return output;
"""
    return n8n_code.header(title) + SHOP_PART + main


def _tag_node(graph: Graph, store: int) -> str:
    project = graph.project
    title = f"Store {store}"
    return graph.add(title, "code", {
        "mode": "runOnceForAllItems", "language": "javaScript",
        "jsCode": tag_code(f"Mark the run as store {store}'s", project.platform, store)})


def store_triggers(graph: Graph, add_trigger: Callable[[str, int], str],
                   topics: tuple[str, ...]) -> Heads:
    """Add every shop's trigger nodes of ``topics`` and return the heads of the shop markers.

    ``add_trigger(topic, store)`` adds one trigger node and returns its name.
    """
    heads: Heads = []
    for store in range(1, graph.project.store_count + 1):
        triggers: list[str] = []
        for topic in topics:
            if triggers or heads:
                graph.new_row(0)
            triggers.append(add_trigger(topic, store))
        graph.column = 1
        tag = _tag_node(graph, store)
        for name in triggers:
            graph.link(name, tag)
        heads.append((tag, 0))
    return heads


def schedule_triggers(graph: Graph, add_schedule: Callable[[str], str]) -> str:
    """Add one Schedule Trigger and shop marker per shop; return the node they all feed."""
    heads: Heads = []
    for store in range(1, graph.project.store_count + 1):
        if heads:
            graph.new_row(0)
        schedule = add_schedule(f" (store {store})")
        tag = _tag_node(graph, store)
        graph.link(schedule, tag)
        heads.append((tag, 0))
    graph.row = 0
    run = graph.add(RUN_NODE, "noOp", {})
    graph.link_all(heads, run)
    graph.store_node = run
    return run


def store_of_run(graph: Graph) -> str:
    """Return the JavaScript expression of the run's shop number (``graph.store_node`` set)."""
    return f"$({n8n_code.js(graph.store_node)}).first().json.rabt_store"


def shop_of_run(graph: Graph) -> str:
    """Return the JavaScript expression of the run's shop domain (``graph.store_node`` set)."""
    return f"$({n8n_code.js(graph.store_node)}).first().json.rabt_shop"


def store_of_run_code(graph: Graph) -> str:
    """Return the JavaScript expression of the run's shop fields, for a Code node."""
    return (f"(({{ rabt_store, rabt_shop }}) => ({{ rabt_store, rabt_shop }}))"
            f"($({n8n_code.js(graph.store_node)}).first().json)")

