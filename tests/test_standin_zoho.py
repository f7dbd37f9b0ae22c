"""Tests for the Zoho CRM stand-in, served by a real uvicorn on 127.0.0.1 and driven by httpx."""

from __future__ import annotations

import ast
import asyncio
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from generator.standins import zoho
from generator.standins.zoho import ZohoStandinConfig, create_app, seed_from_desired_state
from tests.servers import serve
from tests.test_desired_state import state_for

STANDINS = Path(zoho.__file__).parent
CLIENT = {"grant_type": "refresh_token", "client_id": "1000.TESTCLIENT",
          "client_secret": "test-secret-not-real", "refresh_token": "1000.test-refresh-not-real"}


class FakeClock:
    """A clock the tests move by hand."""

    def __init__(self) -> None:
        self.value = 1_800_000_000.0

    def __call__(self) -> float:
        return self.value

    def advance(self, seconds: float) -> None:
        self.value += seconds


@contextmanager
def standin(seed: bool = True, **settings: Any) -> Iterator[tuple[httpx.Client, Starlette]]:
    """Start a (by default seeded) stand-in and yield an httpx client for it and the app."""
    app = create_app(ZohoStandinConfig(**settings))
    if seed:
        seed_from_desired_state(app, state_for("zoho", "shopify"))
    with serve(app) as base_url, httpx.Client(base_url=base_url, timeout=10) as client:
        yield client, app


def token(client: httpx.Client, **changes: str) -> str:
    response = client.post("/oauth/v2/token", params={**CLIENT, **changes})
    return str(response.json()["access_token"])


def auth(client: httpx.Client) -> dict[str, str]:
    return {"Authorization": f"Zoho-oauthtoken {token(client)}"}


def contact(number: int, **fields: Any) -> dict[str, Any]:
    return {"Last_Name": f"Test {number}", "Email": f"buyer{number}@example.com", **fields}


def deal(order_id: str, **fields: Any) -> dict[str, Any]:
    return {"Deal_Name": f"Order {order_id}", "Stage": "Awaiting Payment",
            "Pipeline": "E-commerce", "Shopify_Order_ID": order_id, **fields}


# -- Zoho Accounts ----------------------------------------------------------------


def test_token_refresh_shape() -> None:
    with standin(seed=False) as (client, _):
        response = client.post("/oauth/v2/token", params=CLIENT)
        body = response.json()
        assert response.status_code == 200
        assert body["token_type"] == "Bearer"
        assert body["expires_in"] == 3600
        assert body["api_domain"] == str(client.base_url).rstrip("/")
        assert body["access_token"].startswith("1000.")


def test_token_form_body_accepted() -> None:
    with standin(seed=False) as (client, _):
        response = client.post("/oauth/v2/token", data=CLIENT)
        assert "access_token" in response.json()


def test_token_expires_after_hour() -> None:
    clock = FakeClock()
    with standin(seed=False, clock=clock) as (client, _):
        headers = auth(client)
        clock.advance(3599)
        assert client.get("/crm/v8/settings/modules", headers=headers).status_code == 200
        clock.advance(1)
        response = client.get("/crm/v8/settings/modules", headers=headers)
        assert response.status_code == 401
        assert response.json() == {"code": "INVALID_TOKEN", "details": {},
                                   "message": "invalid oauth token", "status": "error"}


def test_token_refresh_counted() -> None:
    with standin(seed=False) as (client, _):
        token(client)
        token(client)
        assert client.get("/_standin/tokens").json() == {"refreshes": 2,
                                                        "live_access_tokens": 2}


def test_token_keeps_thirty_per_refresh_token() -> None:
    with standin(seed=False) as (client, _):
        first = token(client)
        for _ in range(30):
            token(client)
        response = client.get("/crm/v8/settings/modules",
                              headers={"Authorization": f"Zoho-oauthtoken {first}"})
        assert response.status_code == 401
        assert client.get("/_standin/tokens").json()["live_access_tokens"] == 30


def test_token_wrong_data_centre() -> None:
    issued = {"1000.sa-refresh-not-real": "sa", "1000.eu-refresh-not-real": "eu"}
    with standin(seed=False, refresh_tokens=issued) as (client, _):
        wrong = client.post("/oauth/v2/token",
                            params={**CLIENT, "refresh_token": "1000.eu-refresh-not-real"})
        unknown = client.post("/oauth/v2/token",
                              params={**CLIENT, "refresh_token": "1000.unknown-not-real"})
        right = client.post("/oauth/v2/token",
                            params={**CLIENT, "refresh_token": "1000.sa-refresh-not-real"})
        assert wrong.status_code == 200
        assert wrong.json() == {"error": "invalid_client"}
        assert unknown.json() == {"error": "invalid_code"}
        assert "access_token" in right.json()


@pytest.mark.parametrize(("changes", "error"), [
    ({"client_secret": "wrong-secret-not-real"}, "invalid_client"),
    ({"client_id": ""}, "invalid_client"),
    ({"refresh_token": ""}, "invalid_code"),
    ({"grant_type": "authorization_code"}, "unsupported_grant_type"),
])
def test_token_bad_request(changes: dict[str, str], error: str) -> None:
    clients = {CLIENT["client_id"]: CLIENT["client_secret"]}
    with standin(seed=False, clients=clients) as (client, _):
        response = client.post("/oauth/v2/token", params={**CLIENT, **changes})
        assert response.json() == {"error": error}


# -- CRM authentication -------------------------------------------------------------


@pytest.mark.parametrize(("header", "code"), [
    (None, "AUTHENTICATION_FAILURE"),
    ("Bearer 1000.abc", "AUTHENTICATION_FAILURE"),
    ("Zoho-oauthtoken 1000.unknown", "INVALID_TOKEN"),
])
def test_crm_401_bodies(header: str | None, code: str) -> None:
    with standin(seed=False) as (client, _):
        headers = {"Authorization": header} if header else {}
        response = client.get("/crm/v8/Contacts/search", params={"email": "a@example.com"},
                              headers=headers)
        assert response.status_code == 401
        assert response.json()["code"] == code
        assert response.json()["status"] == "error"


def test_crm_scope_mismatch() -> None:
    with standin(seed=False, scopes=("ZohoCRM.settings.ALL",)) as (client, _):
        headers = auth(client)
        response = client.post("/crm/v8/Contacts", headers=headers,
                               json={"data": [contact(1)]})
        assert response.status_code == 401
        assert response.json()["code"] == "OAUTH_SCOPE_MISMATCH"
        assert client.get("/crm/v8/settings/modules", headers=headers).status_code == 200


def test_static_token_accepted() -> None:
    with standin(seed=False, static_access_tokens=frozenset({"test-token-not-real"})) as (
            client, _):
        response = client.get("/crm/v8/settings/modules",
                              headers={"Authorization": "Zoho-oauthtoken test-token-not-real"})
        assert response.status_code == 200


# -- records --------------------------------------------------------------------


def test_upsert_insert_then_update() -> None:
    with standin() as (client, _):
        headers = auth(client)
        body = {"data": [deal("1001")], "duplicate_check_fields": ["Shopify_Order_ID"],
                "trigger": []}
        first = client.post("/crm/v8/Deals/upsert", headers=headers, json=body)
        body["data"] = [deal("1001", Stage="Paid - Processing")]
        second = client.post("/crm/v8/Deals/upsert", headers=headers, json=body)
        inserted, updated = first.json()["data"][0], second.json()["data"][0]
        assert first.status_code == 200
        assert inserted["action"] == "insert"
        assert inserted["duplicate_field"] is None
        assert inserted["message"] == "record added"
        assert updated["action"] == "update"
        assert updated["duplicate_field"] == "Shopify_Order_ID"
        assert updated["details"]["id"] == inserted["details"]["id"]
        records = client.get("/_standin/records/Deals").json()["records"]
        assert [record["Stage"] for record in records] == ["Paid - Processing"]


def test_upsert_default_check_field() -> None:
    with standin() as (client, _):
        headers = auth(client)
        client.post("/crm/v8/Contacts/upsert", headers=headers, json={"data": [contact(1)]})
        again = client.post("/crm/v8/Contacts/upsert", headers=headers,
                            json={"data": [contact(1, First_Name="Sara")]})
        assert again.json()["data"][0]["duplicate_field"] == "Email"
        assert len(client.get("/_standin/records/Contacts").json()["records"]) == 1


def test_upsert_ignores_unlisted_system_field() -> None:
    with standin() as (client, _):
        headers = auth(client)
        body = {"data": [deal("1001")], "duplicate_check_fields": ["Shopify_Order_ID"]}
        client.post("/crm/v8/Deals/upsert", headers=headers, json=body)
        body["data"] = [deal("1002", Deal_Name="Order 1001")]
        second = client.post("/crm/v8/Deals/upsert", headers=headers, json=body)
        assert second.json()["data"][0]["action"] == "insert"


def test_upsert_rejects_plain_check_field() -> None:
    with standin() as (client, _):
        response = client.post("/crm/v8/Contacts/upsert", headers=auth(client), json={
            "data": [contact(1)], "duplicate_check_fields": ["First_Name"]})
        assert response.status_code == 400
        assert response.json()["details"]["api_name"] == "First_Name"


def test_write_limit_100_records() -> None:
    with standin() as (client, _):
        headers = auth(client)
        hundred = client.post("/crm/v8/Contacts", headers=headers,
                              json={"data": [contact(n) for n in range(100)]})
        over = client.post("/crm/v8/Contacts", headers=headers,
                           json={"data": [contact(n) for n in range(100, 201)]})
        assert hundred.status_code == 201
        assert len(hundred.json()["data"]) == 100
        assert over.status_code == 400
        assert over.json()["code"] == "LIMIT_EXCEEDED"
        assert over.json()["details"]["limit"] == 100
        assert len(client.get("/_standin/records/Contacts").json()["records"]) == 100


def test_insert_duplicate_unique_field() -> None:
    with standin() as (client, _):
        headers = auth(client)
        first = client.post("/crm/v8/Contacts", headers=headers,
                            json={"data": [contact(1, Ecom_Customer_ID="c-1")]})
        existing = first.json()["data"][0]["details"]["id"]
        mixed = client.post("/crm/v8/Contacts", headers=headers, json={"data": [
            contact(2, Ecom_Customer_ID="c-2"), contact(3, Ecom_Customer_ID="C-1")]})
        clash = mixed.json()["data"][1]
        assert mixed.status_code == 207
        assert mixed.json()["data"][0]["status"] == "success"
        assert clash["code"] == "DUPLICATE_DATA"
        assert clash["details"]["api_name"] == "Ecom_Customer_ID"
        assert clash["details"]["json_path"] == "$.data[1].Ecom_Customer_ID"
        assert clash["details"]["duplicate_record"]["id"] == existing
        assert clash["details"]["duplicate_record"]["module"]["api_name"] == "Contacts"


def test_insert_same_deal_name_allowed() -> None:
    with standin() as (client, _):
        headers = auth(client)
        body = {"data": [deal("1", Deal_Name="Same"), deal("2", Deal_Name="Same")]}
        response = client.post("/crm/v8/Deals", headers=headers, json=body)
        assert response.status_code == 201


@pytest.mark.parametrize(("record", "field"), [
    (deal("1", Amount="199.00"), "Amount"),
    (deal("1", Stage="Shipped"), "Stage"),
    (deal("1", Pipeline="Standard"), "Stage"),
    (deal("1", Closing_Date="05/01/2027"), "Closing_Date"),
    (deal("1", Deal_Name="x" * 121), "Deal_Name"),
    (deal("1", Contact_Name={"id": "5725767999999999999"}), "Contact_Name"),
    (deal("1", Ecom_Order_Source="instagram"), "Ecom_Order_Source"),
])
def test_invalid_data_names_field(record: dict[str, Any], field: str) -> None:
    with standin() as (client, _):
        response = client.post("/crm/v8/Deals", headers=auth(client), json={"data": [record]})
        result = response.json()["data"][0]
        assert response.status_code == 400
        assert result["code"] == "INVALID_DATA"
        assert result["details"]["api_name"] == field


@pytest.mark.parametrize(("value", "valid"), [
    ("2027-05-01T10:00:00+03:00", True),
    ("2027-05-01T10:00:00", False),
    ("2027-05-01T10:00:00Z", False),
    ("2027-05-01", False),
])
def test_datetime_needs_offset(value: str, valid: bool) -> None:
    with standin() as (client, _):
        response = client.post("/crm/v8/Contacts", headers=auth(client),
                               json={"data": [contact(1, Ecom_Last_Order_At=value)]})
        assert (response.status_code == 201) is valid


def test_invalid_email_rejected() -> None:
    with standin() as (client, _):
        response = client.post("/crm/v8/Contacts", headers=auth(client),
                               json={"data": [contact(1, Email="not-an-email")]})
        assert response.json()["data"][0]["details"]["api_name"] == "Email"


@pytest.mark.parametrize(("module", "record", "missing"), [
    ("Contacts", {"First_Name": "Sara"}, "Last_Name"),
    ("Deals", {"Stage": "Qualification"}, "Deal_Name"),
    ("Deals", {"Deal_Name": "Order 1"}, "Stage"),
    ("Products", {"Product_Code": "SKU-1"}, "Product_Name"),
    ("Cases", {"Status": "New"}, "Subject"),
    ("Ecom_Events", {"Cart_Token": "t-1"}, "Name"),
])
def test_mandatory_field_missing(module: str, record: dict[str, Any], missing: str) -> None:
    with standin() as (client, _):
        response = client.post(f"/crm/v8/{module}", headers=auth(client),
                               json={"data": [record]})
        result = response.json()["data"][0]
        assert response.status_code == 400
        assert result["code"] == "MANDATORY_NOT_FOUND"
        assert result["details"]["api_name"] == missing


def test_layout_requires_closing_date() -> None:
    with standin() as (client, _):
        headers = auth(client)
        layout = client.get("/crm/v8/settings/layouts", headers=headers,
                            params={"module": "Deals"}).json()["layouts"][0]["id"]
        without = client.post("/crm/v8/Deals", headers=headers, json={"data": [deal("1")]})
        named = client.post("/crm/v8/Deals", headers=headers,
                            json={"data": [deal("2", Layout={"id": layout})]})
        assert without.status_code == 201
        assert named.json()["data"][0]["details"]["api_name"] == "Closing_Date"


def test_update_by_id() -> None:
    with standin() as (client, _):
        headers = auth(client)
        created = client.post("/crm/v8/Contacts", headers=headers, json={"data": [contact(1)]})
        record_id = created.json()["data"][0]["details"]["id"]
        updated = client.put("/crm/v8/Contacts", headers=headers,
                             json={"data": [{"id": record_id, "Mailing_City": "Jeddah"}]})
        blanked = client.put(f"/crm/v8/Contacts/{record_id}", headers=headers,
                             json={"data": [{"Last_Name": ""}]})
        unknown = client.put("/crm/v8/Contacts", headers=headers,
                             json={"data": [{"id": "5725767999999999999", "Phone": "1"}]})
        fetched = client.get(f"/crm/v8/Contacts/{record_id}", headers=headers)
        assert updated.json()["data"][0]["message"] == "record updated"
        assert blanked.json()["data"][0]["code"] == "MANDATORY_NOT_FOUND"
        assert unknown.json()["data"][0]["details"]["api_name"] == "id"
        assert fetched.json()["data"][0]["Mailing_City"] == "Jeddah"
        assert fetched.json()["data"][0]["Last_Name"] == "Test 1"


def test_lookup_stored_with_name() -> None:
    with standin() as (client, _):
        headers = auth(client)
        created = client.post("/crm/v8/Contacts", headers=headers, json={"data": [contact(1)]})
        contact_id = created.json()["data"][0]["details"]["id"]
        client.post("/crm/v8/Deals", headers=headers,
                    json={"data": [deal("1", Contact_Name={"id": contact_id})]})
        stored = client.get("/_standin/records/Deals").json()["records"][0]
        assert stored["Contact_Name"] == {"id": contact_id, "name": "Test 1"}


def test_sales_order_lines_need_products() -> None:
    with standin() as (client, _):
        headers = auth(client)
        product = client.post("/crm/v8/Products", headers=headers, json={"data": [
            {"Product_Name": "OUD-ROYAL-50"}]}).json()["data"][0]["details"]["id"]
        line = {"product": {"id": product}, "quantity": 2, "list_price": 60.0}
        response = client.post("/crm/v8/Sales_Orders", headers=headers, json={"data": [
            {"Subject": "Order #1", "Product_Details": [line]},
            {"Subject": "Order #2", "Product_Details": [line, {"product": {"id": "404"}}]},
            {"Subject": "Order #3", "Product_Details": [{**line, "quantity": 0}]}]})
        stored = client.get("/_standin/records/Sales_Orders").json()["records"]

    assert response.status_code == 207
    results = response.json()["data"]
    assert results[0]["status"] == "success"
    assert results[1]["details"] == {"api_name": "Product_Details",
                                     "json_path": "$.data[1].Product_Details[1].product"}
    assert results[2]["details"]["json_path"] == "$.data[2].Product_Details[0].quantity"
    rows = stored[0]["Product_Details"]
    assert rows[0]["product"] == {"id": product, "name": "OUD-ROYAL-50"}
    assert rows[0]["quantity"] == 2 and rows[0]["id"]


def test_unknown_module_rejected() -> None:
    with standin() as (client, _):
        response = client.post("/crm/v8/Orders", headers=auth(client),
                               json={"data": [contact(1)]})
        assert response.status_code == 400
        assert response.json()["code"] == "INVALID_MODULE"


def test_get_unknown_record_204() -> None:
    with standin() as (client, _):
        response = client.get("/crm/v8/Contacts/5725767999999999999", headers=auth(client))
        assert response.status_code == 204


def test_list_needs_fields_param() -> None:
    with standin() as (client, _):
        headers = auth(client)
        client.post("/crm/v8/Contacts", headers=headers,
                    json={"data": [contact(n) for n in range(3)]})
        missing = client.get("/crm/v8/Contacts", headers=headers)
        page = client.get("/crm/v8/Contacts", headers=headers,
                          params={"fields": "Email", "per_page": 2})
        assert missing.json()["code"] == "REQUIRED_PARAM_MISSING"
        assert page.json()["info"] == {"per_page": 2, "count": 2, "page": 1,
                                       "more_records": True}
        assert set(page.json()["data"][0]) == {"id", "Email"}


def test_list_by_ids() -> None:
    with standin() as (client, _):
        headers = auth(client)
        created = client.post("/crm/v8/Contacts", headers=headers,
                              json={"data": [contact(n) for n in range(3)]}).json()["data"]
        ids = [str(entry["details"]["id"]) for entry in created]
        listed = client.get("/crm/v8/Contacts", headers=headers, params={
            "fields": "Email,Email_Opt_Out", "ids": f"{ids[2]},5725767999999999999,{ids[0]}"})
        too_many = client.get("/crm/v8/Contacts", headers=headers, params={
            "fields": "Email", "ids": ",".join(str(n) for n in range(101))})
        assert listed.status_code == 200
        assert [row["id"] for row in listed.json()["data"]] == [ids[2], ids[0]]
        assert set(listed.json()["data"][0]) == {"id", "Email", "Email_Opt_Out"}
        assert too_many.status_code == 400


def test_delete_records_by_ids() -> None:
    with standin() as (client, _):
        headers = auth(client)
        created = client.post("/crm/v8/Contacts", headers=headers,
                              json={"data": [contact(n) for n in range(2)]}).json()["data"]
        ids = [str(entry["details"]["id"]) for entry in created]
        unknown = "5725767999999999999"
        mixed = client.delete("/crm/v8/Contacts", headers=headers,
                              params={"ids": f"{ids[0]},{unknown}"})
        missing = client.delete("/crm/v8/Contacts", headers=headers)
        assert mixed.status_code == 207
        results = mixed.json()["data"]
        assert results[0] == {"code": "SUCCESS", "details": {"id": ids[0]},
                              "message": "record deleted", "status": "success"}
        assert (results[1]["code"], results[1]["details"]) == ("INVALID_DATA", {"id": unknown})
        assert client.get(f"/crm/v8/Contacts/{ids[0]}", headers=headers).status_code == 204
        assert client.get(f"/crm/v8/Contacts/{ids[1]}", headers=headers).status_code == 200
        assert missing.json()["code"] == "REQUIRED_PARAM_MISSING"


# -- search ---------------------------------------------------------------------


def test_search_criteria_equals() -> None:
    with standin() as (client, _):
        headers = auth(client)
        client.post("/crm/v8/Contacts", headers=headers, json={"data": [
            contact(1, Phone="+966501234567"), contact(2, Phone="+966501234568")]})
        found = client.get("/crm/v8/Contacts/search", headers=headers,
                           params={"criteria": "(Email:equals:BUYER1@example.com)"})
        either = client.get("/crm/v8/Contacts/search", headers=headers, params={
            "criteria": "((Email:equals:buyer1@example.com)or(Phone:equals:+966501234568))"})
        by_phone = client.get("/crm/v8/Contacts/search", headers=headers,
                              params={"phone": "+966501234568"})
        none = client.get("/crm/v8/Contacts/search", headers=headers,
                          params={"criteria": "(Email:equals:nobody@example.com)"})
        assert [r["Last_Name"] for r in found.json()["data"]] == ["Test 1"]
        assert len(either.json()["data"]) == 2
        assert [r["Last_Name"] for r in by_phone.json()["data"]] == ["Test 2"]
        assert none.status_code == 204


@pytest.mark.parametrize("criteria", [
    "Email:equals:a@example.com",
    "(Email:like:a)",
    "(Unknown_Field:equals:a)",
    "((Email:equals:a)and(Phone:equals:b)or(Last_Name:equals:c))",
])
def test_search_invalid_criteria(criteria: str) -> None:
    with standin() as (client, _):
        response = client.get("/crm/v8/Contacts/search", headers=auth(client),
                              params={"criteria": criteria})
        assert response.status_code == 400
        assert response.json()["code"] == "INVALID_QUERY"


def test_search_index_delay() -> None:
    clock = FakeClock()
    with standin(clock=clock, search_index_delay_seconds=5) as (client, _):
        headers = auth(client)
        client.post("/crm/v8/Contacts", headers=headers, json={"data": [contact(1)]})
        params = {"email": "buyer1@example.com"}
        early = client.get("/crm/v8/Contacts/search", headers=headers, params=params)
        clock.advance(5)
        late = client.get("/crm/v8/Contacts/search", headers=headers, params=params)
        assert early.status_code == 204
        assert late.status_code == 200


# -- metadata -------------------------------------------------------------------


def test_modules_listed() -> None:
    with standin() as (client, _):
        body = client.get("/crm/v8/settings/modules", headers=auth(client)).json()
        names = {module["api_name"] for module in body["modules"]}
        assert {"Leads", "Contacts", "Accounts", "Deals", "Products", "Cases"} <= names
        assert "Ecom_Events" in names


def test_fields_metadata_after_seed() -> None:
    with standin() as (client, _):
        body = client.get("/crm/v8/settings/fields", headers=auth(client),
                          params={"module": "Contacts"}).json()
        fields = {item["api_name"]: item for item in body["fields"]}
        assert fields["Last_Name"]["system_mandatory"] is True
        assert fields["Last_Name"]["custom_field"] is False
        assert fields["Ecom_Customer_ID"]["custom_field"] is True
        assert fields["Ecom_Customer_ID"]["unique"] == {"case_sensitive": False}
        assert fields["Ecom_City_Raw"]["unique"] == {}
        assert fields["Ecom_LTV_SAR"]["json_type"] == "double"


def test_fields_need_module_param() -> None:
    with standin() as (client, _):
        headers = auth(client)
        missing = client.get("/crm/v8/settings/fields", headers=headers)
        unknown = client.get("/crm/v8/settings/fields", headers=headers,
                             params={"module": "Orders"})
        assert missing.json()["details"] == {"param_name": "module"}
        assert unknown.json()["code"] == "INVALID_MODULE"


def test_create_custom_fields() -> None:
    with standin(seed=False) as (client, _):
        headers = auth(client)
        response = client.post("/crm/v8/settings/fields", headers=headers,
                               params={"module": "Deals"}, json={"fields": [
                                   {"field_label": "Shopify Order ID", "data_type": "text",
                                    "length": 255, "unique": {"case_sensitive": False}},
                                   {"field_label": "Ecom Order Source", "data_type": "picklist",
                                    "pick_list_values": [
                                        {"display_value": "Meta", "actual_value": "meta"}]}]})
        fields = client.get("/crm/v8/settings/fields", headers=headers,
                            params={"module": "Deals"}).json()["fields"]
        created = {item["api_name"]: item for item in fields if item["custom_field"]}
        assert response.status_code == 201
        assert [item["message"] for item in response.json()["fields"]] == ["field created"] * 2
        assert created["Shopify_Order_ID"]["unique"] == {"case_sensitive": False}
        assert created["Ecom_Order_Source"]["pick_list_values"][0]["actual_value"] == "meta"


def test_delete_custom_field() -> None:
    with standin(seed=False) as (client, app):
        headers = auth(client)
        created = client.post("/crm/v8/settings/fields", headers=headers,
                              params={"module": "Contacts"}, json={"fields": [
                                  {"field_label": "Ecom Tier", "data_type": "text",
                                   "length": 100}]}).json()["fields"][0]["details"]["id"]
        client.post("/crm/v8/Contacts", headers=headers,
                    json={"data": [contact(1, Ecom_Tier="gold")]})
        deleted = client.delete(f"/crm/v8/settings/fields/{created}", headers=headers,
                                params={"module": "Contacts"})
        again = client.delete(f"/crm/v8/settings/fields/{created}", headers=headers,
                              params={"module": "Contacts"})
        last_name = app.state.zoho.modules["Contacts"].fields["Last_Name"].id
        system = client.delete(f"/crm/v8/settings/fields/{last_name}", headers=headers,
                               params={"module": "Contacts"})
        names = [item["api_name"] for item in client.get(
            "/crm/v8/settings/fields", headers=headers,
            params={"module": "Contacts"}).json()["fields"]]
        records = list(app.state.zoho.records["Contacts"].values())
    assert deleted.status_code == 200
    assert deleted.json() == {"fields": [{"code": "SUCCESS", "details": {"id": created},
                                          "message": "field deleted", "status": "success"}]}
    assert again.status_code == 400
    assert again.json()["fields"][0]["code"] == "INVALID_DATA"
    assert system.status_code == 400
    assert system.json()["fields"][0]["status"] == "error"
    assert "Ecom_Tier" not in names
    assert "Last_Name" in names
    assert "Ecom_Tier" not in records[0]


@pytest.mark.parametrize(("field", "code", "api_name"), [
    ({"data_type": "text"}, "MANDATORY_NOT_FOUND", "field_label"),
    ({"field_label": "Code", "data_type": "barcode"}, "INVALID_DATA", "data_type"),
    ({"field_label": "Code", "data_type": "text", "length": 300}, "DEPENDENT_MISMATCH",
     "length"),
    ({"field_label": "Last Name", "data_type": "text"}, "DUPLICATE_DATA", "field_label"),
    ({"field_label": "Code", "data_type": "text", "unique": True}, "INVALID_DATA", "unique"),
    ({"field_label": "Tier", "data_type": "picklist"}, "EXPECTED_DEPENDENT_FIELD_MISSING",
     "pick_list_values"),
    ({"field_label": "Total", "data_type": "currency"}, "DEPENDENT_FIELD_MISSING", "currency"),
    ({"field_label": "Order", "data_type": "lookup", "lookup": {"module": {
        "api_name": "Orders"}, "display_label": "Order"}}, "INVALID_DATA", "module"),
])
def test_create_field_rejected(field: dict[str, Any], code: str, api_name: str) -> None:
    with standin(seed=False) as (client, _):
        response = client.post("/crm/v8/settings/fields", headers=auth(client),
                               params={"module": "Contacts"}, json={"fields": [field]})
        result = response.json()["fields"][0]
        assert response.status_code == 400
        assert result["code"] == code
        assert result["details"]["api_name"] == api_name


def test_create_field_limits() -> None:
    with standin(seed=False, max_custom_fields=3) as (client, _):
        headers = auth(client)
        six = [{"field_label": f"Field {n}", "data_type": "text"} for n in range(6)]
        too_many = client.post("/crm/v8/settings/fields", headers=headers,
                               params={"module": "Contacts"}, json={"fields": six})
        unique = [{"field_label": f"Key {n}", "data_type": "text", "unique": {}}
                  for n in range(3)]
        mixed = client.post("/crm/v8/settings/fields", headers=headers,
                            params={"module": "Contacts"}, json={"fields": unique})
        over = client.post("/crm/v8/settings/fields", headers=headers,
                           params={"module": "Contacts"},
                           json={"fields": [{"field_label": "Extra", "data_type": "text"},
                                            {"field_label": "More", "data_type": "text"}]})
        assert too_many.json()["code"] == "LIMIT_EXCEEDED"
        assert mixed.status_code == 207
        assert [item["status"] for item in mixed.json()["fields"]] == [
            "success", "success", "error"]
        assert mixed.json()["fields"][2]["details"]["api_name"] == "unique"
        assert [item["status"] for item in over.json()["fields"]] == ["success", "error"]


def test_fields_on_missing_custom_module() -> None:
    with standin(seed=False) as (client, _):
        response = client.post("/crm/v8/settings/fields", headers=auth(client),
                               params={"module": "Ecom_Events"},
                               json={"fields": [{"field_label": "SKU", "data_type": "text"}]})
        assert response.status_code == 400
        assert response.json()["code"] == "INVALID_MODULE"


def test_standard_picklist_update_not_allowed() -> None:
    with standin() as (client, _):
        headers = auth(client)
        fields = client.get("/crm/v8/settings/fields", headers=headers,
                            params={"module": "Contacts"}).json()["fields"]
        ids = {item["api_name"]: item["id"] for item in fields}
        new_value = {"pick_list_values": [{"display_value": "Referral Partner",
                                           "actual_value": "referral_partner"}]}
        standard = client.patch(f"/crm/v8/settings/fields/{ids['Lead_Source']}",
                                headers=headers, params={"module": "Contacts"},
                                json={"fields": [new_value]})
        custom = client.patch(f"/crm/v8/settings/fields/{ids['Ecom_Last_Source']}",
                              headers=headers, params={"module": "Contacts"},
                              json={"fields": [new_value]})
        after = client.get(f"/crm/v8/settings/fields/{ids['Ecom_Last_Source']}",
                           headers=headers, params={"module": "Contacts"}).json()
        assert standard.status_code == 400
        assert standard.json()["fields"][0]["code"] == "NOT_ALLOWED"
        assert custom.status_code == 200
        values = [item["actual_value"] for item in after["fields"][0]["pick_list_values"]]
        assert values[-1] == "referral_partner"


def test_stages_and_pipelines() -> None:
    with standin() as (client, _):
        headers = auth(client)
        layout = client.get("/crm/v8/settings/layouts", headers=headers,
                            params={"module": "Deals"}).json()["layouts"][0]
        pipelines = client.get("/crm/v8/settings/pipeline", headers=headers,
                               params={"layout_id": layout["id"]}).json()["pipeline"]
        shop = next(item for item in pipelines if item["display_value"] == "E-commerce")
        assert [stage["display_value"] for stage in shop["maps"]] == [
            "Cart Abandoned", "Awaiting Payment", "Paid - Processing", "Fulfilled",
            "Cancelled", "Refunded"]
        assert shop["maps"][2]["forecast_type"] == "Closed Won"
        assert shop["maps"][2]["forecast_category"] == {"name": "Closed"}
        assert next(item for item in pipelines if item["default"])["display_value"] == "Standard"


def test_pipeline_create_rules() -> None:
    with standin(seed=False) as (client, _):
        headers = auth(client)
        layout = client.get("/crm/v8/settings/layouts", headers=headers,
                            params={"module": "Deals"}).json()["layouts"][0]["id"]
        stages = client.get("/crm/v8/settings/pipeline", headers=headers,
                            params={"layout_id": layout}).json()["pipeline"][0]["maps"]
        body = {"pipeline": [{"display_value": "Short", "maps": [
            {"id": stages[0]["id"], "sequence_number": 1}]}]}
        created = client.post("/crm/v8/settings/pipeline", headers=headers,
                              params={"layout_id": layout}, json=body)
        again = client.post("/crm/v8/settings/pipeline", headers=headers,
                            params={"layout_id": layout}, json=body)
        body["pipeline"][0] = {"display_value": "Shop", "maps": [{"id": "1", "sequence_number": 1}]}
        unknown = client.post("/crm/v8/settings/pipeline", headers=headers,
                              params={"layout_id": layout}, json=body)
        no_layout = client.get("/crm/v8/settings/pipeline", headers=headers)
        assert created.status_code == 201
        assert again.json()["pipeline"][0]["code"] == "DUPLICATE_DATA"
        assert unknown.json()["pipeline"][0]["message"] == "Invalid child option id"
        assert no_layout.json()["details"] == {"param_name": "layout_id"}


# -- credits, concurrency, faults ------------------------------------------------------


def test_credits_exhausted_and_restored() -> None:
    clock = FakeClock()
    with standin(seed=False, clock=clock, credits_per_day=5) as (client, _):
        headers = auth(client)
        batch = client.post("/crm/v8/Contacts", headers=headers,
                            json={"data": [contact(n) for n in range(25)]})
        single = client.get("/crm/v8/settings/modules", headers=headers)
        last = client.get("/crm/v8/settings/modules", headers=headers)
        over = client.get("/crm/v8/settings/modules", headers=headers)
        assert batch.headers["X-API-CREDITS-REMAINING"] == "2"
        assert single.headers["X-API-CREDITS-REMAINING"] == "1"
        assert last.headers["X-API-CREDITS-REMAINING"] == "0"
        assert over.status_code == 429
        assert over.json()["code"] == "TOO_MANY_REQUESTS"
        assert client.get("/_standin/credits").json()["credits_remaining"] == 0
        clock.advance(24 * 3600)
        later = client.get("/crm/v8/settings/modules", headers=auth(client))
        assert later.status_code == 200


def test_edition_sets_daily_credits() -> None:
    with standin(seed=False, edition="standard", user_licences=10) as (client, _):
        assert client.get("/_standin/credits").json()["credits_per_day"] == 52_500


def test_concurrency_limit() -> None:
    with standin(seed=False, concurrency_limit=2, latency_seconds=0.5) as (client, _):
        headers = auth(client)

        async def burst() -> list[int]:
            async with httpx.AsyncClient(base_url=client.base_url, timeout=10) as session:
                calls = [session.get("/crm/v8/settings/modules", headers=headers)
                         for _ in range(3)]
                return sorted(response.status_code for response in await asyncio.gather(*calls))

        assert asyncio.run(burst()) == [200, 200, 429]
        assert client.get("/_standin/credits").json()["in_flight"] == 0


def test_fault_by_count() -> None:
    with standin(seed=False) as (client, _):
        headers = auth(client)
        added = client.post("/_standin/faults", json={"status": 503, "count": 2,
                                                      "path_prefix": "/crm/"})
        assert added.status_code == 201
        statuses = [client.get("/crm/v8/settings/modules", headers=headers).status_code
                    for _ in range(3)]
        assert statuses == [503, 503, 200]
        assert "access_token" in client.post("/oauth/v2/token", params=CLIENT).json()
        calls = client.get("/_standin/calls").json()["calls"]
        modules = [item for item in calls if item["path"] == "/crm/v8/settings/modules"]
        assert {item["status"]: item["count"] for item in modules} == {503: 2, 200: 1}


def test_fault_by_seconds() -> None:
    clock = FakeClock()
    with standin(seed=False, clock=clock) as (client, _):
        headers = auth(client)
        client.post("/_standin/faults", json={"status": 429, "seconds": 10})
        during = client.get("/crm/v8/settings/modules", headers=headers)
        clock.advance(10)
        after = client.get("/crm/v8/settings/modules", headers=headers)
        assert during.status_code == 429
        assert during.json()["code"] == "TOO_MANY_REQUESTS"
        assert after.status_code == 200


@pytest.mark.parametrize("body", [{}, {"status": 503}, {"status": 200, "count": 1},
                                  {"status": 503, "count": 1, "seconds": 1}])
def test_fault_bad_request(body: dict[str, Any]) -> None:
    with standin(seed=False) as (client, _):
        assert client.post("/_standin/faults", json=body).status_code == 400


def test_expire_tokens_endpoint() -> None:
    with standin(seed=False) as (client, _):
        headers = auth(client)
        assert client.post("/_standin/tokens/expire").json() == {"expired": 1}
        response = client.get("/crm/v8/settings/modules", headers=headers)
        assert response.json()["code"] == "INVALID_TOKEN"


# -- seeding, reset, process --------------------------------------------------------


def test_reset_without_seed() -> None:
    with standin() as (client, _):
        response = client.post("/_standin/reset", json={"seed": False})
        fields = client.get("/crm/v8/settings/fields", headers=auth(client),
                            params={"module": "Deals"}).json()["fields"]
        assert response.json() == {"status": "reset", "seeded": False}
        assert not [item for item in fields if item["custom_field"]]


def test_reset_keeps_seed() -> None:
    with standin() as (client, _):
        headers = auth(client)
        client.post("/crm/v8/Deals", headers=headers, json={"data": [deal("1")]})
        reset = client.post("/_standin/reset")
        headers = auth(client)
        fields = client.get("/crm/v8/settings/fields", headers=headers,
                            params={"module": "Deals"}).json()["fields"]
        assert reset.json() == {"status": "reset", "seeded": True}
        assert client.get("/_standin/records/Deals").json()["records"] == []
        assert "Shopify_Order_ID" in {item["api_name"] for item in fields}
        assert client.get("/_standin/tokens").json()["refreshes"] == 1


def test_seed_enforces_unique_fields() -> None:
    app = create_app()
    state = seed_from_desired_state(app, state_for("zoho", "shopify"))
    assert state.modules["Deals"].unique_fields() == ["Shopify_Order_ID"]
    assert state.modules["Cases"].unique_fields() == ["Ecom_Ticket_ID"]
    assert state.modules["Ecom_Events"].custom is True


def test_seed_rejects_other_crm() -> None:
    with pytest.raises(ValueError, match="crm 'hubspot'"):
        seed_from_desired_state(create_app(), state_for("hubspot", "shopify"))


def test_config_rejects_unknown_edition() -> None:
    with pytest.raises(ValueError, match="edition 'gold'"):
        ZohoStandinConfig(edition="gold")


def test_unknown_path_body() -> None:
    with standin(seed=False) as (client, _):
        response = client.get("/nothing")
        assert response.status_code == 404
        assert response.json()["code"] == "INVALID_URL_PATTERN"


def test_main_refuses_remote_host(capsys: pytest.CaptureFixture[str]) -> None:
    assert zoho.main(["--host", "0.0.0.0", "--port", "1"]) == 2
    assert "--allow-remote" in capsys.readouterr().err


@pytest.mark.parametrize("text", ["crm: hubspot\n", "crm: [zoho\n", "- a list\n"])
def test_main_reports_bad_seed(text: str, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    seed = tmp_path / "desired-state.yaml"
    seed.write_text(text, encoding="utf-8")
    assert zoho.main(["--port", "1", "--seed", str(seed)]) == 2
    assert "cannot seed" in capsys.readouterr().err


def test_main_reports_missing_seed(tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert zoho.main(["--port", "1", "--seed", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml" in capsys.readouterr().err


def _imports(tree: ast.AST) -> tuple[set[str], set[str]]:
    """Return the modules imported at module level and inside functions."""
    top, nested = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = {node.module.split(".")[0]}
        else:
            continue
        (top if node.col_offset == 0 else nested).update(names)
    return top, nested


def test_imports_stdlib_and_starlette_only() -> None:
    allowed = set(sys.stdlib_module_names) | {"starlette"}
    for path in sorted(STANDINS.glob("zoho*.py")):
        top, nested = _imports(ast.parse(path.read_text(encoding="utf-8")))
        assert top <= allowed, f"{path.name} imports {sorted(top - allowed)}"
        # Starlette may sit inside the module-level guard that tells a user without it
        # to install rabt[test]; uvicorn and PyYAML only inside main().
        assert nested <= {"starlette", "uvicorn", "yaml"}, f"{path.name} imports {sorted(nested)}"


def test_main_refresh_token_option() -> None:
    args = zoho._parse_args(["--dc", "com", "--refresh-token", "1000.own-token",
                             "--refresh-token", "1000.saudi-token=sa"])
    app = create_app(zoho._config(args))
    with serve(app) as base_url, httpx.Client(base_url=base_url, timeout=10) as client:
        own = client.post("/oauth/v2/token", params={**CLIENT, "refresh_token": "1000.own-token"})
        other = client.post("/oauth/v2/token",
                            params={**CLIENT, "refresh_token": "1000.saudi-token"})
        unknown = client.post("/oauth/v2/token",
                              params={**CLIENT, "refresh_token": "1000.any-token"})
    assert own.status_code == 200
    assert "access_token" in own.json()
    assert other.json() == {"error": "invalid_client"}
    assert unknown.json() == {"error": "invalid_code"}


def test_main_accepts_any_token_by_default() -> None:
    assert zoho._config(zoho._parse_args(["--dc", "com"])).refresh_tokens is None


@pytest.mark.parametrize(("value", "expected"), [
    ("token=mars", "'mars' is not a Zoho data centre"),
    ("=sa", "has no token before '='"),
])
def test_main_rejects_bad_refresh_token(value: str, expected: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as raised:
        zoho._parse_args(["--refresh-token", value])
    assert raised.value.code == 2
    assert expected in capsys.readouterr().err
