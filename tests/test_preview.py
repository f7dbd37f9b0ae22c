"""``rabt preview``: the exact CRM records each sample body gives, and the input errors."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from generator.cli import main
from generator.preview import SAMPLES_DIR, find_sample, list_samples, preview_payload

# One baked project per CRM and platform the samples need.
PRESETS = {
    "hubspot": "riyadh-perfume-hubspot",  # Shopify, HubSpot
    "zoho": "jeddah-fashion-zoho",  # Shopify, Zoho
    "woo_zoho": "woo-startup",  # WooCommerce, Zoho (no events module)
    "custom": "custom-erp",  # WooCommerce, the client's own database
    "headless": "headless-nextjs",  # storefront events, HubSpot
}
# Projects that read each payload family, for the test that runs every sample.
PROJECTS_FOR = {
    "shopify": ("hubspot", "zoho"),
    "woocommerce": ("woo_zoho", "custom"),
    "storefront": ("headless", "custom"),
}


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def projects(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folders = {}
    for key, preset in PRESETS.items():
        out = tmp_path_factory.mktemp(key)
        result = run("new", "--no-input", "--preset", preset, "--output-dir", str(out))
        assert result.exit_code == 0, result.output
        [folders[key]] = [path for path in out.iterdir() if path.is_dir()]
    return folders


def preview(project: Path, sample: str, *extra: str) -> dict[str, Any]:
    result = run("preview", "--project", str(project), "--payload", sample, "--format", "json",
                 *extra)
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def records(data: dict[str, Any], entity: str) -> list[dict[str, Any]]:
    return [record for record in data["records"] if record["entity"] == entity]


def only(data: dict[str, Any], entity: str) -> dict[str, Any]:
    [record] = records(data, entity)
    return record


# Problems every preview of a freshly made project has until set-up fills in CRM ids.
SETUP_NOTES = (
    "order: the CRM's stage ids are not filled yet",
    "The pipeline id is not filled yet",
    "order (Deals): lookups take Zoho record ids",
    "line_item (Sales_Orders.Product_Details): lookups take Zoho record ids",
    "event (Ecom_Events): lookups take Zoho record ids",
    "ticket (Cases): lookups take Zoho record ids",
)


def is_setup_note(text: str) -> bool:
    return text.startswith(SETUP_NOTES)


@pytest.mark.parametrize("sample", [sample.name for sample in list_samples()])
def test_every_sample_maps_without_problems(projects: dict[str, Path], sample: str) -> None:
    platform = sample.split("/")[0]
    # Tickets come from the support inbox, which headless-nextjs does not have.
    keys = ("hubspot", "zoho", "custom") if sample.startswith("storefront/ticket") else (
        PROJECTS_FOR[platform])
    for key in keys:
        data = preview(projects[key], sample)
        assert [text for text in data["problems"] if not is_setup_note(text)] == [], key
        assert data["records"], key
        for record in data["records"]:
            assert "" not in record["properties"].values()
            assert None not in record["properties"].values()


# --- Shopify ---------------------------------------------------------------------


def test_arabic_order_on_hubspot(projects: dict[str, Path]) -> None:
    data = preview(projects["hubspot"], "shopify/orders-create-arabic")
    assert data["platform"] == "shopify"
    assert data["topic"] == "orders/create"
    assert [record["entity"] for record in data["records"]] == ["contact", "order", "line_item"]
    contact = only(data, "contact")
    assert contact["object"] == "contacts"
    assert contact["properties"] == {
        "ecom_customer_id": "7100000000001",
        "email": "sara.test@example.com",
        "phone": "+966500000001",
        "ecom_phone_e164": "+966500000001",
        "firstname": "سارة",
        "lastname": "العتيبي",
        "city": "Jeddah",
        "ecom_city_raw": "جده",
    }
    assert list(contact["identity"].items()) == [
        ("ecom_customer_id", "7100000000001"), ("phone", "+966500000001"),
        ("email", "sara.test@example.com")]
    assert contact["flags"] == {}
    order = only(data, "order")
    assert order["object"] == "deals"
    assert order["properties"] == {
        "shopify_order_id": "5900000000001",
        "dealname": "Order #1001",
        "amount": "149.50",
        "ecom_refunded_sar": "0.00",
        "deal_currency_code": "SAR",
        "dealstage": "paid_processing",
        "closedate": "2026-03-01T14:05:00+03:00",
        "ecom_discount_codes": "RAMADAN10",
        # The client markets on Meta and Google only, so a Snapchat order counts as other.
        "ecom_order_source": "other",
    }
    assert order["identity"] == {"shopify_order_id": "5900000000001"}
    line = only(data, "line_item")
    assert line["object"] == "line_items"
    assert line["properties"] == {"ecom_line_item_id": "14000000000001",
                                  "hs_sku": "OUD-ROYAL-50", "name": "عطر عود ملكي - 50 مل",
                                  "quantity": 1, "price": "145.00"}


def test_arabic_order_on_zoho(projects: dict[str, Path]) -> None:
    data = preview(projects["zoho"], "shopify/orders-create-arabic")
    assert only(data, "contact")["properties"] == {
        "Ecom_Customer_ID": "7100000000001",
        "Email": "sara.test@example.com",
        "Mobile": "+966500000001",
        "First_Name": "سارة",
        "Last_Name": "العتيبي",
        "Mailing_City": "Jeddah",
        "Ecom_City_Raw": "جده",
    }
    order = only(data, "order")
    assert order["object"] == "Deals"
    assert order["properties"] == {
        "Shopify_Order_ID": "5900000000001",
        "Deal_Name": "Order #1001",
        "Amount": "149.50",
        "Ecom_Refunded_SAR": "0.00",
        "Currency": "SAR",
        "Stage": "Paid - Processing",
        "Closing_Date": "2026-03-01",
        "Ecom_Discount_Codes": "RAMADAN10",
        "Ecom_Order_Source": "snapchat",
    }
    line = only(data, "line_item")
    assert line["object"] == "Sales_Orders.Product_Details"
    assert line["properties"] == {"Product_Details[].product": "OUD-ROYAL-50",
                                  "Product_Details[].product_description":
                                      "عطر عود ملكي - 50 مل",
                                  "Product_Details[].quantity": 1,
                                  "Product_Details[].list_price": "145.00"}


def test_phone_only_customer_has_no_email(projects: dict[str, Path]) -> None:
    data = preview(projects["hubspot"], "shopify/orders-create-phone-only")
    contact = only(data, "contact")
    assert contact["properties"] == {
        "ecom_customer_id": "7100000000002",
        "phone": "+966500000002",
        "ecom_phone_e164": "+966500000002",
        "firstname": "نورة",
        "city": "Riyadh",
        "ecom_city_raw": "Riyadh",
    }
    assert "email" not in contact["properties"]
    assert contact["identity"] == {"ecom_customer_id": "7100000000002", "phone": "+966500000002"}
    assert contact["flags"] == {"email": ["missing"], "first_name": ["single_name"]}
    assert only(data, "order")["properties"]["dealstage"] == "awaiting_payment"


def test_phone_only_customer_on_zoho(projects: dict[str, Path]) -> None:
    contact = only(preview(projects["zoho"], "shopify/orders-create-phone-only"), "contact")
    assert contact["properties"] == {
        "Ecom_Customer_ID": "7100000000002",
        "Mobile": "+966500000002",
        "Last_Name": "نورة",
        "Mailing_City": "Riyadh",
        "Ecom_City_Raw": "Riyadh",
    }
    # Zoho rejects a contact without Last_Name, so a one-word name stays there.
    assert contact["flags"] == {"email": ["missing"], "last_name": ["single_name"]}


def test_sku_falls_back_to_variant_id(projects: dict[str, Path]) -> None:
    data = preview(projects["hubspot"], "shopify/orders-fulfilled-sku-fallback")
    lines = records(data, "line_item")
    assert [line["properties"] for line in lines] == [
        {"ecom_line_item_id": "14000000000003", "hs_sku": "44000000000003",
         "name": "Gift box - Large", "quantity": 1, "price": "60.00"},
        {"ecom_line_item_id": "14000000000004", "hs_sku": "44000000000004",
         "name": "Musk oil", "quantity": 3, "price": "25.50"},
    ]
    assert [line["flags"] for line in lines] == [
        {"sku": ["fallback:line_items[].variant_id"]},
        {"sku": ["fallback:line_items[].variant_id"]},
    ]
    order = only(data, "order")
    assert order["properties"]["dealstage"] == "fulfilled"
    assert order["properties"]["ecom_order_source"] == "meta"


def test_refund_updates_order(projects: dict[str, Path]) -> None:
    data = preview(projects["hubspot"], "shopify/refunds-create")
    assert data["records"] == [{
        "entity": "order",
        "object": "deals",
        "properties": {"shopify_order_id": "5900000000004"},
        "identity": {"shopify_order_id": "5900000000004"},
        "flags": {"refunded_amount": ["not_written", "this_refund_only"]},
        "not_sent": {"refunded_amount": "50.00"},
    }]


def test_partially_refunded_order(projects: dict[str, Path]) -> None:
    data = preview(projects["hubspot"], "shopify/orders-updated-partially-refunded")
    assert only(data, "order")["properties"] == {
        "shopify_order_id": "5900000000004",
        "dealname": "Order #1004",
        "amount": "200.00",
        "ecom_refunded_sar": "50.00",
        "deal_currency_code": "SAR",
        "dealstage": "fulfilled",
        "closedate": "2026-03-01T14:05:00+03:00",
        "ecom_order_source": "other",
    }
    assert len(records(data, "line_item")) == 2


def test_customer_update(projects: dict[str, Path]) -> None:
    data = preview(projects["hubspot"], "shopify/customers-update")
    assert [record["entity"] for record in data["records"]] == ["contact"]
    assert only(data, "contact")["properties"] == {
        "ecom_customer_id": "7100000000003",
        "email": "test.customer@example.com",
        "phone": "+966500000003",
        "ecom_phone_e164": "+966500000003",
        "firstname": "Test",
        "lastname": "Customer",
        "city": "Dammam",
        "ecom_city_raw": "Dammam",
    }


# --- WooCommerce -----------------------------------------------------------------


def test_woocommerce_order_on_zoho(projects: dict[str, Path]) -> None:
    data = preview(projects["woo_zoho"], "woocommerce/order-created")
    assert only(data, "contact")["properties"] == {
        "Ecom_Customer_ID": "12",
        "Email": "sara.woo@example.com",
        "Mobile": "+966500000004",
        "First_Name": "سارة",
        "Last_Name": "العتيبي",
        "Mailing_City": "Riyadh",
        "Ecom_City_Raw": "الرياض",
    }
    assert only(data, "order")["properties"] == {
        "External_Order_ID": "5101",
        "Deal_Name": "Order #5101",
        "Amount": "149.50",
        "Ecom_Refunded_SAR": "0.00",
        "Currency": "SAR",
        "Stage": "Paid - Processing",
        "Closing_Date": "2026-03-02",
        "Ecom_Discount_Codes": "ramadan10",
        "Ecom_Order_Source": "other",
    }
    line = only(data, "line_item")
    assert line["properties"] == {"Product_Details[].product": "210",
                                  "Product_Details[].product_description":
                                      "عطر عود ملكي - 50 مل",
                                  "Product_Details[].quantity": 2,
                                  "Product_Details[].list_price": "65.00"}
    assert line["flags"] == {"sku": ["fallback:line_items[].product_id", "pending_lookup"]}


def test_woocommerce_order_on_custom_database(projects: dict[str, Path]) -> None:
    data = preview(projects["custom"], "woocommerce/order-created")
    assert only(data, "contact")["properties"] == {
        "contacts.store_customer_id": "12",
        "contacts.email": "sara.woo@example.com",
        "contacts.phone_e164": "+966500000004",
        "contacts.first_name": "سارة",
        "contacts.last_name": "العتيبي",
        "contacts.city": "Riyadh",
        "contacts.city_raw": "الرياض",
    }
    order = only(data, "order")
    assert order["object"] == "orders"
    assert order["properties"] == {
        "orders.external_id": "5101",
        "orders.pipeline": "ecommerce",
        "orders.name": "Order #5101",
        "orders.total_sar": "149.50",
        "orders.refunded_sar": "0.00",
        "orders.currency": "SAR",
        "orders.stage": "paid_processing",
        "orders.ordered_at": "2026-03-02T10:14:30+00:00",
        "orders.discount_codes": "ramadan10",
        "orders.source_channel": "google",
    }
    assert only(data, "line_item")["properties"] == {
        "order_lines.store_line_item_id": "301",
        "order_lines.sku": "210",
        "order_lines.title": "عطر عود ملكي - 50 مل",
        "order_lines.quantity": 2,
        "order_lines.unit_price_sar": "65.00",
    }


def test_woocommerce_guest_order(projects: dict[str, Path]) -> None:
    data = preview(projects["woo_zoho"], "woocommerce/order-created-guest")
    contact = only(data, "contact")
    assert contact["properties"] == {
        "Email": "guest.buyer@example.com",
        "Mobile": "+966500000005",
        "First_Name": "Test",
        "Last_Name": "Customer",
        "Mailing_City": "Jeddah",
        "Ecom_City_Raw": "Jeddah",
    }
    assert contact["identity"] == {"Mobile": "+966500000005", "Email": "guest.buyer@example.com"}
    assert contact["flags"] == {"store_customer_id": ["guest"]}
    assert only(data, "order")["properties"]["Stage"] == "Awaiting Payment"
    assert only(data, "line_item")["properties"]["Product_Details[].product"] == "MUSK-OIL-12"


def test_woocommerce_refunded_order(projects: dict[str, Path]) -> None:
    data = preview(projects["custom"], "woocommerce/order-updated-refunded")
    assert only(data, "order")["properties"] == {
        "orders.external_id": "5103",
        "orders.pipeline": "ecommerce",
        "orders.name": "Order #5103",
        "orders.total_sar": "149.50",
        "orders.refunded_sar": "149.50",
        "orders.currency": "SAR",
        "orders.stage": "refunded",
        "orders.ordered_at": "2026-03-02T10:14:30+00:00",
        "orders.source_channel": "other",
    }


# --- Storefront ------------------------------------------------------------------


def test_storefront_add_to_cart(projects: dict[str, Path]) -> None:
    data = preview(projects["headless"], "storefront/add-to-cart")
    assert data["records"] == [{
        "entity": "event",
        "object": "custom_behavioral_events",
        "properties": {
            # The desired state's event name; the sync adds the pe<HubID>_ prefix.
            "eventName": "ecom_add_to_cart",
            "properties.event_id": "evt_test_0001",
            "occurredAt": "2026-03-03T21:10:00+03:00",
            "email": "sara.test@example.com",
            "properties.cart_token": "cart_test_0001",
            "properties.cart_value_sar": "145.00",
            "properties.sku": "OUD-ROYAL-50",
        },
        "identity": {"properties.event_id": "evt_test_0001"},
        "flags": {"event_key": ["needs_hub_id_prefix"]},
        "not_sent": {},
    }]


def test_storefront_checkout_started(projects: dict[str, Path]) -> None:
    event = only(preview(projects["headless"], "storefront/checkout-started"), "event")
    assert event["properties"] == {
        "eventName": "ecom_checkout_started",
        "properties.event_id": "evt_test_0002",
        "occurredAt": "2026-03-03T21:14:00+03:00",
        "email": "sara.test@example.com",
        "properties.cart_token": "cart_test_0001",
        "properties.cart_value_sar": "290.00",
    }


@pytest.mark.parametrize(("key", "expected"), [
    ("zoho", {"Ecom_Ticket_ID": "tkt_test_0001",
              "Subject": "الطلب لم يصل بعد", "Case_Origin": "WhatsApp", "Status": "New",
              "Priority": "HIGH", "Ecom_Opened_At": "2026-03-04T10:20:00+03:00",
              "Ecom_Order_ID": "5900000000001",
              "Ecom_Customer_Email": "sara.test@example.com",
              "Ecom_Customer_Phone": "+966500000006"}),
    ("hubspot", {"ecom_ticket_id": "tkt_test_0001",
                 "subject": "الطلب لم يصل بعد", "source_type": "CHAT", "hs_pipeline_stage": "1",
                 "hs_ticket_priority": "HIGH", "createdate": "2026-03-04T10:20:00+03:00",
                 "ecom_order_id": "5900000000001",
                 "ecom_customer_email": "sara.test@example.com",
                 "ecom_customer_phone": "+966500000006"}),
])
def test_ticket_on_shopify_projects(projects: dict[str, Path], key: str,
                                    expected: dict[str, str]) -> None:
    ticket = only(preview(projects[key], "storefront/ticket-created"), "ticket")
    body = ticket["properties"].pop("Description" if key == "zoho" else "content")
    assert body.startswith("طلبت عطر العود")
    assert ticket["properties"] == expected
    id_field = "Ecom_Ticket_ID" if key == "zoho" else "ecom_ticket_id"
    assert ticket["identity"] == {id_field: "tkt_test_0001"}  # an update finds the same case
    # A new ticket has no reply yet, so SLA times that need one are missing, nothing else.
    assert all(flags == ["missing"] for flags in ticket["flags"].values())


def test_ticket_without_support_module(projects: dict[str, Path]) -> None:
    data = preview(projects["woo_zoho"], "storefront/ticket-created")
    assert data["records"] == []
    assert [text for text in data["problems"] if text.startswith("ticket: not mapped.")]


def test_usd_order_keeps_sar_fields_empty(projects: dict[str, Path], tmp_path: Path) -> None:
    body = json.loads((SAMPLES_DIR / "shopify" / "orders-create-arabic.json").read_bytes())
    body["currency"] = "USD"
    path = tmp_path / "usd.json"
    path.write_text(json.dumps(body), encoding="utf-8")
    data = preview(projects["zoho"], str(path), "--platform", "shopify", "--topic",
                   "orders/create")
    order = only(data, "order")
    assert "Ecom_Refunded_SAR" not in order["properties"]
    assert order["not_sent"] == {"refunded_amount": "0.00"}
    assert "not_sar_not_written" in order["flags"]["refunded_amount"]
    assert ("order: the body is in USD, so Ecom_Refunded_SAR was left out: it is for SAR "
            "amounts, and converting needs an exchange rate the project does not have."
            ) in data["problems"]


def test_storefront_event_without_events_module(projects: dict[str, Path]) -> None:
    data = preview(projects["woo_zoho"], "storefront/add-to-cart")
    assert data["records"] == []
    assert data["problems"] == ["event: not mapped. Off: the plan has no events module."]


# --- Output and options ----------------------------------------------------------


def test_yaml_output_matches_json(projects: dict[str, Path]) -> None:
    args = ["preview", "--project", str(projects["hubspot"]), "--payload",
            "shopify/orders-create-arabic"]
    as_yaml = run(*args)
    assert as_yaml.exit_code == 0
    assert "سارة" in as_yaml.stdout  # Arabic is written as text, not escaped
    assert yaml.safe_load(as_yaml.stdout) == preview(projects["hubspot"],
                                                     "shopify/orders-create-arabic")


def test_explicit_options_override_sample(projects: dict[str, Path]) -> None:
    data = preview(projects["hubspot"], "shopify/orders-create-arabic", "--platform", "shopify",
                   "--topic", "orders/paid")
    assert data["topic"] == "orders/paid"
    assert only(data, "order")["properties"]["amount"] == "149.50"


def test_payload_from_file(projects: dict[str, Path], tmp_path: Path) -> None:
    body = tmp_path / "body.json"
    body.write_bytes((SAMPLES_DIR / "woocommerce" / "order-created-guest.json").read_bytes())
    data = preview(projects["custom"], str(body), "--platform", "woocommerce",
                   "--topic", "order.created")
    assert only(data, "contact")["properties"]["contacts.email"] == "guest.buyer@example.com"


def test_file_wins_over_sample_name(projects: dict[str, Path], tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "shopify").mkdir()
    (tmp_path / "shopify" / "refunds-create").write_text(
        json.dumps({"id": 1, "order_id": 77, "transactions": [{"amount": "1.00"}]}),
        encoding="utf-8")
    result = preview_payload(projects["hubspot"], "shopify/refunds-create", "shopify",
                             "refunds/create")
    assert result.records[0].properties == {"shopify_order_id": "77"}
    assert result.records[0].not_sent == {"refunded_amount": "1.00"}


def test_preview_makes_no_network_call(projects: dict[str, Path],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    def fail_on_network(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("preview opened a network socket")

    monkeypatch.setattr(socket, "socket", fail_on_network)
    monkeypatch.setattr(socket, "create_connection", fail_on_network)
    monkeypatch.setattr(socket, "getaddrinfo", fail_on_network)
    result = preview_payload(projects["hubspot"], "shopify/orders-create-arabic")
    assert len(result.records) == 3


def test_list_samples() -> None:
    result = run("preview", "--list-samples")
    assert result.exit_code == 0
    header, *lines = result.output.strip().splitlines()
    assert header.split() == ["NAME", "PLATFORM", "TOPIC", "DESCRIPTION"]
    assert [line.split()[0] for line in lines] == [sample.name for sample in list_samples()]
    arabic = next(line for line in lines if line.startswith("woocommerce/order-created-guest"))
    assert arabic.split()[1:3] == ["woocommerce", "order.created"]


def test_list_samples_as_json() -> None:
    result = run("preview", "--list-samples", "--format", "json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert [entry["name"] for entry in data] == [sample.name for sample in list_samples()]
    assert data[0] == {
        "name": "shopify/orders-create-arabic", "platform": "shopify", "topic": "orders/create",
        "description": list_samples()[0].description["en"]}


def test_list_samples_in_arabic() -> None:
    result = run("preview", "--list-samples", "--lang", "ar")
    assert result.exit_code == 0
    assert result.output.splitlines()[0].split() == ["الاسم", "المنصة", "الموضوع", "الوصف"]
    assert "طلب ضيف رقم 5102" in result.output


def test_help_has_example() -> None:
    result = run("preview", "--help")
    assert result.exit_code == 0
    assert "Example" in result.output
    assert "--payload shopify/orders-create-arabic" in result.output


def test_find_sample() -> None:
    sample = find_sample("shopify/orders-create-arabic.json")
    assert sample is not None
    assert (sample.platform, sample.topic) == ("shopify", "orders/create")
    assert find_sample("shopify/nope") is None
    assert find_sample("../messages") is None


# --- Sample files ----------------------------------------------------------------


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def phone_numbers(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "phone" and isinstance(item, str) and item:
                yield item
            else:
                yield from phone_numbers(item)
    elif isinstance(value, list):
        for item in value:
            yield from phone_numbers(item)


def test_index_lists_every_sample_file() -> None:
    files = sorted(str(path.relative_to(SAMPLES_DIR).with_suffix(""))
                   for path in SAMPLES_DIR.rglob("*.json"))
    assert sorted(sample.name for sample in list_samples()) == files
    for sample in list_samples():
        assert sample.path.parent.name == sample.platform
        assert set(sample.description) == {"en", "ar"}


@pytest.mark.parametrize("sample", [sample.name for sample in list_samples()])
def test_sample_is_made_up(sample: str) -> None:
    found = find_sample(sample)
    assert found is not None
    body = json.loads(found.path.read_bytes())
    assert isinstance(body, dict)
    assert not any(key.startswith("_") for key in body), "no keys beyond the platform's"
    texts = list(strings(body))
    emails = [match for text in texts for match in re.findall(r"[\w.+-]+@[\w.-]+", text)]
    assert all(email.lower().endswith("@example.com") for email in emails)
    phones = list(phone_numbers(body))
    for phone in phones:
        digits = re.sub(r"\D", "", phone.translate(str.maketrans("٠١٢٣٤٥٦٧٨٩", "0123456789")))
        assert re.fullmatch(r"(966)?0?50000000\d", digits), phone


def test_woocommerce_samples_escape_like_wordpress() -> None:
    text = (SAMPLES_DIR / "woocommerce" / "order-created.json").read_text(encoding="utf-8")
    assert "\\u0633\\u0627\\u0631\\u0629" in text  # سارة as PHP's json_encode writes it
    assert "https:\\/\\/" in text
    body = json.loads(text)
    assert body["billing"]["phone"] == "٠٥٠٠٠٠٠٠٠٤"
    assert isinstance(body["line_items"][0]["price"], int | float)
    assert isinstance(body["total"], str)


# --- Input errors ----------------------------------------------------------------


def preview_error(*args: str) -> Result:
    result = run("preview", *args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    return result


def test_bad_json(projects: dict[str, Path], tmp_path: Path) -> None:
    body = tmp_path / "body.json"
    body.write_text('{"id": 1,', encoding="utf-8")
    result = preview_error("--project", str(projects["hubspot"]), "--platform", "shopify",
                           "--topic", "orders/create", "--payload", str(body))
    assert "Cannot preview the webhook body." in result.output
    assert f"--payload: {body} is not valid JSON: Expecting property name" in result.output
    assert "fix: save the raw webhook body as the platform sent it" in result.output


def test_form_encoded_ping_is_not_json(projects: dict[str, Path], tmp_path: Path) -> None:
    body = tmp_path / "ping.txt"
    body.write_text("webhook_id=12", encoding="utf-8")
    result = preview_error("--project", str(projects["woo_zoho"]), "--platform", "woocommerce",
                           "--topic", "order.created", "--payload", str(body))
    assert "is not valid JSON" in result.output
    assert "form-encoded ping" in result.output


@pytest.mark.parametrize(("text", "kind"), [
    ('[{"id": 1}]', "array"), ("null", "null"), ('"order"', "string"), ("12", "number"),
])
def test_body_is_not_object(projects: dict[str, Path], tmp_path: Path, text: str,
                            kind: str) -> None:
    body = tmp_path / "bodies.json"
    body.write_text(text, encoding="utf-8")
    result = preview_error("--project", str(projects["hubspot"]), "--platform", "shopify",
                           "--topic", "orders/create", "--payload", str(body))
    assert f"--payload: the body is a JSON {kind}, but the body must be a JSON object" in (
        result.output)
    assert "NoneType" not in result.output
    assert "fix: pass the body of one webhook as it was sent, starting with {;" in result.output


def test_unknown_topic(projects: dict[str, Path]) -> None:
    result = preview_error("--project", str(projects["hubspot"]), "--topic", "orders/exploded",
                           "--payload", "shopify/orders-create-arabic")
    assert "--topic: unknown shopify topic orders/exploded" in result.output
    assert "fix: use one of: orders/create, orders/updated," in result.output


def test_unknown_topic_in_arabic(projects: dict[str, Path]) -> None:
    result = preview_error("--project", str(projects["hubspot"]), "--topic", "orders/exploded",
                           "--payload", "shopify/orders-create-arabic", "--lang", "ar")
    assert "تعذّرت معاينة محتوى الـ Webhook." in result.output
    assert "الموضوع orders/exploded غير معروف في shopify" in result.output
    assert "الحل: استخدم أحد الموضوعات" in result.output


def test_unknown_platform(projects: dict[str, Path]) -> None:
    result = preview_error("--project", str(projects["hubspot"]), "--platform", "magento",
                           "--topic", "orders/create", "--payload", "shopify/refunds-create")
    assert ("--platform: unknown platform magento; the payload families are shopify, "
            "woocommerce, storefront") in result.output


def test_platform_not_of_project(projects: dict[str, Path], tmp_path: Path) -> None:
    body = tmp_path / "order.json"
    body.write_text('{"id": 1}', encoding="utf-8")
    result = preview_error("--project", str(projects["hubspot"]), "--platform", "woocommerce",
                           "--topic", "order.created", "--payload", str(body))
    assert (f"--platform: the project {projects['hubspot']} is for shopify and maps shopify, "
            "storefront bodies, not woocommerce ones") in result.output
    assert "fix: use --platform shopify" in result.output


def test_sample_of_other_platform(projects: dict[str, Path]) -> None:
    result = preview_error("--project", str(projects["custom"]), "--platform", "woocommerce",
                           "--topic", "order.created", "--payload", "shopify/refunds-create")
    assert ("--payload: the sample shopify/refunds-create is a shopify body, but --platform is "
            "woocommerce") in result.output


def test_missing_project(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    result = preview_error("--project", str(missing), "--payload", "shopify/orders-create-arabic")
    assert (f"--project: {missing} has no integration/mapping.yaml, so it is not a project made "
            "by 'rabt new'") in result.output
    assert "fix: pass --project with the folder that 'rabt new' created" in result.output


def test_invalid_mapping_file(tmp_path: Path) -> None:
    mapping = tmp_path / "broken" / "integration" / "mapping.yaml"
    mapping.parent.mkdir(parents=True)
    mapping.write_text("entities: [unclosed\n", encoding="utf-8")
    result = preview_error("--project", str(tmp_path / "broken"), "--payload",
                           "shopify/orders-create-arabic")
    assert f"{mapping}: is not a valid field map:" in result.output
    mapping.write_text("platform: magento\nentities: {}\n", encoding="utf-8")
    result = preview_error("--project", str(tmp_path / "broken"), "--payload",
                           "shopify/orders-create-arabic")
    assert "it needs a known 'platform' and an 'entities' mapping" in result.output
    assert ("fix: from the project folder, regenerate it with 'rabt new --answers "
            ".rabt/answers.yaml --no-input --overwrite --output-dir ..'") in result.output


def test_unknown_sample(projects: dict[str, Path]) -> None:
    result = preview_error("--project", str(projects["hubspot"]), "--payload", "shopify/nope")
    assert "--payload: shopify/nope is neither a file nor the name of a shipped sample" in (
        result.output)
    assert "rabt preview --list-samples" in result.output
    # A sample name brings its own platform and topic, so their absence is not reported too.
    assert "no value given" not in result.output


def test_missing_options_listed_together(projects: dict[str, Path]) -> None:
    result = preview_error("--project", str(projects["hubspot"]))
    assert "--payload: no value given" in result.output
    assert "--platform: no value given" in result.output
    assert "--topic: no value given" in result.output


def test_file_needs_platform_and_topic(projects: dict[str, Path], tmp_path: Path) -> None:
    body = tmp_path / "body.json"
    body.write_text('{"id": 1}', encoding="utf-8")
    result = preview_error("--project", str(projects["hubspot"]), "--payload", str(body))
    assert "--platform: no value given" in result.output
    assert "--topic: no value given" in result.output


def test_unknown_format(projects: dict[str, Path]) -> None:
    result = preview_error("--project", str(projects["hubspot"]), "--payload",
                           "shopify/refunds-create", "--format", "xml")
    assert "Invalid value for '--format'" in result.output
