"""Values converted to Zoho's field types before they are sent."""

from __future__ import annotations

from storesync.zoho_values import to_zoho

TYPES = {"Amount": "currency", "Ecom_Orders_Count": "integer", "Closing_Date": "date",
         "Ecom_Last_Order_At": "datetime", "Email": "email"}


def test_money_text_becomes_number() -> None:
    assert to_zoho({"Amount": "149.50"}, TYPES) == {"Amount": 149.5}


def test_whole_number_text_becomes_integer() -> None:
    assert to_zoho({"Ecom_Orders_Count": "3"}, TYPES) == {"Ecom_Orders_Count": 3}


def test_fraction_stays_for_integer_field() -> None:
    # Zoho then names the field in its INVALID_DATA error.
    assert to_zoho({"Ecom_Orders_Count": "2.5"}, TYPES) == {"Ecom_Orders_Count": "2.5"}


def test_utc_time_gets_offset() -> None:
    converted = to_zoho({"Ecom_Last_Order_At": "2026-03-01T11:05:00.123Z"}, TYPES)
    assert converted == {"Ecom_Last_Order_At": "2026-03-01T11:05:00+00:00"}


def test_date_in_datetime_field_is_riyadh_midnight() -> None:
    converted = to_zoho({"Ecom_Last_Order_At": "2026-03-01"}, TYPES)
    assert converted == {"Ecom_Last_Order_At": "2026-03-01T00:00:00+03:00"}


def test_time_in_date_field_keeps_the_date() -> None:
    converted = to_zoho({"Closing_Date": "2026-03-01T23:30:00+03:00"}, TYPES)
    assert converted == {"Closing_Date": "2026-03-01"}


def test_unknown_and_text_fields_unchanged() -> None:
    record = {"Email": "sara.zoho@example.com", "Custom_Field": "149.50", "Amount": None}
    assert to_zoho(record, TYPES) == record


def test_unreadable_value_sent_as_is() -> None:
    assert to_zoho({"Amount": "about 100"}, TYPES) == {"Amount": "about 100"}
    assert to_zoho({"Ecom_Last_Order_At": "yesterday"}, TYPES) == {
        "Ecom_Last_Order_At": "yesterday"}


def test_cleared_typed_value_becomes_null() -> None:
    record = {"Ecom_Last_Order_At": "", "Amount": "", "Ecom_Orders_Count": "",
              "Closing_Date": ""}
    assert to_zoho(record, TYPES) == dict.fromkeys(record)


def test_cleared_text_value_stays_empty() -> None:
    assert to_zoho({"Email": ""}, TYPES) == {"Email": ""}
