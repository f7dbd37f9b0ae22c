"""Zoho line items in an n8n workflow: one sales order per store order with its subform.

Zoho keeps an order's lines in the subform ``Product_Details`` of a ``Sales_Orders``
record, each row ``{"product": {"id": ...}, "quantity": ..., "list_price": ...}``, as
``make_zoho_items`` builds them for Make. The product lookup takes a Zoho product id,
so the products of the run's lines are upserted first. The upsert checks the product's
unique field (the store's variant id, ``Ecom_Product_ID`` by default) because Zoho does
not keep the SKU in ``Product_Code`` unique. Then one request per store order creates
the sales order with every row, linked to the deal.

Zoho enforces no unique value on a sales order, so the workflow writes one sales order
per store order and keeps its id in the data table ``rabt_zoho_sales_orders`` (the
Make scenarios use a data store of the same name).

NOTE: a later change to an order's lines is not written to the sales order, as in the
Make scenarios: updating subform rows needs their Zoho row ids, which are not kept.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from generator.ipaas import n8n_code
from generator.ipaas.crm_calls import ZOHO_BASE_URL, CrmCall
from generator.ipaas.flows import Step
from generator.ipaas.make_zoho_items import PRODUCT_ID, SALES_ORDER_STORE, product_call, product_row
from generator.ipaas.n8n_graph import Graph
from generator.ipaas.n8n_http import Heads, http_node
from generator.ipaas.n8n_tables import table_ref, upsert_parameters

# The largest number of records one Zoho upsert request takes.
ZOHO_BATCH_LIMIT = 100
TABLE = table_ref(SALES_ORDER_STORE)
PRODUCTS_TITLE = "Create or update the products"
ORDERS_TITLE = "Create the sales order with its lines"
KNOWN_TITLE = f"Sales order written before? ({TABLE['value']})"

PRODUCTS_CODE = """const lines = outputOf(SPEC.lines);
// Products by the value Zoho checks: the store product id, or the SKU without one.
const byKey = {};
for (const item of lines) {
  const record = item.json.record || {};
  const sku = record[SPEC.fields.sku];
  const key = record[SPEC.fields[SPEC.key]];
  if (isEmpty(sku) || isEmpty(key) || String(key) in byKey) continue;
  const price = Number(record[SPEC.fields.unit_price]);
  const product = { Unit_Price: Number.isFinite(price) ? price : 0,
    Product_Name: String(record[SPEC.fields.title] || sku), Product_Code: String(sku) };
  if (SPEC.key !== 'sku') product[SPEC.fields[SPEC.key]] = String(key);
  byKey[String(key)] = product;
}
const keys = Object.keys(byKey);
const output = [];
for (let start = 0; start < keys.length; start += SPEC.limit) {
  const part = keys.slice(start, start + SPEC.limit);
  output.push({ json: { body: { ...SPEC.body, data: part.map((key) => byKey[key]) },
    keys: part } });
}
return output;
"""

ORDER_KEYS_CODE = """const orders = [...new Set(outputOf(SPEC.lines)
  .map((item) => (item.json.refs || {}).order)
  .filter((order) => !isEmpty(order)).map(String))];
return orders.map((order) => ({ json: { key: `sales-order:${order}`, order } }));
"""

SALES_ORDERS_CODE = """// Ids the CRM gave the records of a node pair in this run, by their keys.
function ids(nodes) {
  const found = {};
  const batches = outputOf(nodes.batch);
  outputOf(nodes.http).forEach((response, index) => {
    const keys = (batches[index] || { json: {} }).json.keys || [];
    (response.json.data || []).forEach((result, position) => {
      const id = result && result.details ? result.details.id : null;
      if (id && keys[position] !== undefined) found[String(keys[position])] = id;
    });
  });
  return found;
}
const products = ids(SPEC.products);
const deals = ids(SPEC.deal);
const dealNames = {};
for (const item of outputOf(SPEC.deal.map || '')) {
  dealNames[String(item.json.key)] = (item.json.record || {})[SPEC.deal_name];
}
const written = new Set(outputOf(SPEC.known).map((item) => item.json.key).filter(Boolean));
const rows = {};
for (const item of outputOf(SPEC.lines)) {
  const record = item.json.record || {};
  const order = String((item.json.refs || {}).order ?? '');
  const product = products[String(record[SPEC.fields[SPEC.key]])];
  // A line whose product was not written has no product id to link.
  if (!order || !product) continue;
  const quantity = Number(record[SPEC.fields.quantity]);
  const price = Number(record[SPEC.fields.unit_price]);
  (rows[order] = rows[order] || []).push({ product: { id: product },
    quantity: Number.isFinite(quantity) ? quantity : 1,
    list_price: Number.isFinite(price) ? price : 0 });
}
const output = [];
for (const [order, lines] of Object.entries(rows)) {
  const key = `sales-order:${order}`;
  if (written.has(key)) continue;
  const salesOrder = { Product_Details: lines, Subject: String(dealNames[order] || order) };
  if (deals[order]) salesOrder.Deal_Name = { id: deals[order] };
  output.push({ json: { body: { data: [salesOrder], trigger: ['workflow'] }, key } });
}
return output;
"""

REMEMBER_CODE = """const batches = outputOf(SPEC.batch);
return outputOf(SPEC.http).flatMap((response, index) => {
  const result = (response.json.data || [])[0];
  const key = (batches[index] || { json: {} }).json.key;
  if (!key || !result || !result.details) return [];
  return [{ json: { key, value: String(result.details.id) } }];
});
"""


def _sales_order_call() -> CrmCall:
    return CrmCall(system="zoho", action="create Sales_Orders", method="POST",
                   base_url=ZOHO_BASE_URL, endpoint="/Sales_Orders",
                   body={"data": [{"Product_Details": "<product details>",
                                   "Subject": "<deal_name>"}], "trigger": ["workflow"]})


def _code(graph: Graph, title: str, spec: Mapping[str, Any], main: str) -> str:
    code = (n8n_code.header(title) + n8n_code.helpers_library() + n8n_code.OUTPUT_OF +
            f"const SPEC = {n8n_code.js(dict(spec))};\n" + main)
    return graph.add(title, "code", {"mode": "runOnceForAllItems", "language": "javaScript",
                                     "jsCode": code})


def _line_fields(step: Step) -> dict[str, str]:
    """Return the record key of each line value the sales order reads (by field name)."""
    targets = {row.name: row.target for row in step.fields}
    return {name: targets.get(name, "")
            for name in ("sku", PRODUCT_ID, "quantity", "unit_price", "title")}


def _deal_name_target(graph: Graph) -> str:
    fields = graph.project.spec["mapping"]["entities"].get("order", {}).get("fields", [])
    return next((str(item["target"]) for item in fields if item.get("transform") == "deal_name"),
                "Deal_Name")


def sales_order_nodes(graph: Graph, map_step: Step, heads: Heads) -> tuple[Heads, str, str]:
    """Add the nodes that write the mapped lines as one Zoho sales order per store order.

    Args:
        graph: The workflow being built.
        map_step: The line-item map step, whose rows name the SKU, store product id,
            quantity and price.
        heads: The outputs after the line-item map node.

    Returns:
        The heads after the last node, the products batch node and the sales order
        request node.
    """
    lines = heads[0][0]
    fields = _line_fields(map_step)
    call = product_call(product_row(map_step))
    key = PRODUCT_ID if fields[PRODUCT_ID] else "sku"
    products = _code(graph, f"{PRODUCTS_TITLE}: batch",
                     {"lines": lines, "fields": fields, "key": key, "limit": ZOHO_BATCH_LIMIT,
                      "body": {name: value for name, value in (call.body or {}).items()
                               if name != "data"}}, PRODUCTS_CODE)
    graph.chain(heads, products)
    products_http = http_node(graph, f"{PRODUCTS_TITLE}: request", call, body=True)
    graph.link(products, products_http)
    keys = _code(graph, f"{KNOWN_TITLE}: keys", {"lines": lines}, ORDER_KEYS_CODE)
    graph.link(products_http, keys)
    known = graph.add(KNOWN_TITLE, "dataTable", {
        "resource": "row", "operation": "get", "dataTableId": TABLE,
        "matchType": "allConditions",
        "filters": {"conditions": [{"keyName": "key", "condition": "eq",
                                    "keyValue": "={{ $json.key }}"}]},
        "returnAll": False, "limit": 1}, alwaysOutputData=True)
    graph.link(keys, known)
    deal = graph.entity_nodes.get("order", {})
    batch = _code(graph, f"{ORDERS_TITLE}: batch", {
        "lines": lines, "fields": fields, "key": key, "known": known,
        "deal_name": _deal_name_target(graph),
        "products": {"batch": products, "http": products_http},
        "deal": {"batch": deal.get("batch", ""), "http": deal.get("http", ""),
                 "map": deal.get("map", "")}}, SALES_ORDERS_CODE)
    graph.link(known, batch)
    request = http_node(graph, f"{ORDERS_TITLE}: request", _sales_order_call(), body=True)
    graph.link(batch, request)
    row = _code(graph, f"Remember the sales order ({TABLE['value']}): row",
                {"batch": batch, "http": request}, REMEMBER_CODE)
    graph.link(request, row)
    remember = graph.add(f"Remember the sales order ({TABLE['value']})", "dataTable",
                         upsert_parameters(SALES_ORDER_STORE))
    graph.link(row, remember)
    return [(remember, 0)], products, request
