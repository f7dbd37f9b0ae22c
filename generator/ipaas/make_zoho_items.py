"""Zoho line items in a Make blueprint: one sales order with its Product_Details subform.

Zoho keeps an order's lines in the subform ``Product_Details`` of a ``Sales_Orders``
record, each row ``{"product": {"id": ...}, "quantity": ..., "list_price": ...}``.
The product lookup takes a Zoho product id, so each line's product is first upserted
by the product's unique field (the store's variant id, ``Ecom_Product_ID`` by default),
with its SKU in ``Product_Code``, which Zoho does not keep unique. An array aggregator
then collects one JSON row per line, and one request creates the sales order with
every row, linked to the deal.

Zoho enforces no unique value on a sales order, so the blueprint writes one sales
order per store order and remembers its id in the data store ``zoho_sales_orders``.

NOTE: a later change to an order's lines (an edit after the first orders/updated) is
not written to the sales order. Updating subform rows needs their Zoho row ids, which
the spec keeps in the integration's id table and these scenarios do not keep.
"""

from __future__ import annotations

from typing import Any

from generator.ipaas.crm_calls import ZOHO_BASE_URL, CrmCall
from generator.ipaas.flows import FieldRow, Step
from generator.ipaas.make_builder import Builder, iterated_list, record_values
from generator.ipaas.make_http import http_module

SALES_ORDER_STORE = "zoho_sales_orders"
PRODUCT_DETAILS = "product details"
PRODUCT_ID = "store_product_id"


def product_row(step: Step) -> FieldRow | None:
    """Return the line-item map row that reads the product's unique store id, if any."""
    return next((row for row in step.fields if row.name == PRODUCT_ID), None)


def product_call(key: FieldRow | None) -> CrmCall:
    """Return the Zoho upsert of one product, checked by the unique field ``key`` targets.

    Without ``key`` (no product entity in the mapping), the check falls back to
    Product_Code.
    """
    record = {"Unit_Price": "<unit_price>", "Product_Name": "<product name>",
              "Product_Code": "<sku>"}
    if key is not None:
        record[key.target] = f"<{PRODUCT_ID}>"
    # NOTE: Product_Code is not unique in the desired state, so a Zoho org set up from
    # it rejects the fallback check with INVALID_DATA.
    checks = [key.target] if key is not None else ["Product_Code"]
    return CrmCall(
        system="zoho", action="upsert Products", method="POST", base_url=ZOHO_BASE_URL,
        endpoint="/Products/upsert",
        # The unquoted number comes first, so the body never has three closing braces
        # in a row, which a parser of {{...}} can split either way.
        body={"data": [record], "duplicate_check_fields": checks, "trigger": []})


def _sales_order_call(builder: Builder) -> CrmCall:
    # The unquoted row list comes first, for the reason given in product_call.
    record: dict[str, Any] = {"Product_Details": f"<{PRODUCT_DETAILS}>", "Subject": "<deal_name>"}
    if "order id" in builder.values:
        record["Deal_Name"] = {"id": "<order id>"}
    if "contact id" in builder.values:
        record["Contact_Name"] = {"id": "<contact id>"}
    return CrmCall(system="zoho", action="create Sales_Orders", method="POST",
                   base_url=ZOHO_BASE_URL, endpoint="/Sales_Orders",
                   body={"data": [record], "trigger": ["workflow"]})


def _row_text(product: str, quantity: str, price: str) -> str:
    """Return one Product_Details row as Make text: numbers and the id are not escaped.

    A space keeps the row's closing brace apart from the formula's closing braces.
    """
    return ('{"product": {"id": "{{' + product + '}}"}, "quantity": {{' + quantity +
            '}}, "list_price": {{' + price + '}} }')


def sales_order_modules(builder: Builder, step: Step, y: int) -> list[dict[str, Any]]:
    """Return the modules that write an order's lines to one Zoho sales order.

    ``step`` is the line-item map step; its rows give the SKU, store product id, title,
    quantity and unit price of each line.
    """
    trigger = builder.trigger_id
    key = f"sales-order:{{{{{trigger}.id}}}}"
    exists = builder.module("datastore:ExistRecord", {"key": key},
                            f"Sales order written before? (data store {SALES_ORDER_STORE})", y)
    builder.pending_filter = {"name": "No sales order for this order yet", "conditions": [
        [{"a": "{{" + f"{exists['id']}.exist" + "}}", "o": "boolean:equal", "b": "false"}]]}
    source = iterated_list(step)
    feeder = builder.module("builtin:BasicFeeder",
                            {"array": "{{" + f"{trigger}.{source}" + "}}"}, f"Each of {source}", y)
    builder.item_id = int(feeder["id"])
    record_values(builder, step)
    builder.values["product name"] = f'ifempty({builder.values.get("title", "emptystring")}; ' \
                                     f'{builder.values["sku"]})'
    builder.unquoted_values.add("unit_price")
    builder.safe_values.add("unit_price")
    product = http_module(builder, product_call(product_row(step)),
                          "Create or update the product", y)
    product_id = f'get(first({product["id"]}.data.data); "details.id")'
    row = _row_text(product_id, builder.values["quantity"], builder.values["unit_price"])
    aggregate = builder.module("builtin:BasicAggregator", {"line": row},
                               "Collect the Product_Details rows", y,
                               parameters={"feeder": int(feeder["id"])})
    builder.item_id = None
    builder.values[PRODUCT_DETAILS] = f'"[" + join(map({aggregate["id"]}.array; "line"); ",") + "]"'
    builder.unquoted_values.add(PRODUCT_DETAILS)
    builder.safe_values.add(PRODUCT_DETAILS)
    order = http_module(builder, _sales_order_call(builder), "Create the sales order with its "
                        "lines", y)
    save = builder.module("datastore:AddRecord", {
        "key": key, "overwrite": False,
        "data": {"salesOrderId": "{{" + f'get(first({order["id"]}.data.data); "details.id")'
                 + "}}"}}, f"Remember the sales order (data store {SALES_ORDER_STORE})", y)
    return [exists, feeder, product, aggregate, order, save]
