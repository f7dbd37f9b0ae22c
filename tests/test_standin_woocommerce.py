"""Tests for the WooCommerce REST API stand-in, served by a real uvicorn on 127.0.0.1."""

from __future__ import annotations

import ast
import base64
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from generator.standins import woocommerce
from generator.standins.woocommerce import WooStandinConfig, create_app
from tests.servers import serve

STANDINS = Path(woocommerce.__file__).parent
KEY, SECRET = "ck_test_not_real", "cs_test_not_real"
CUSTOMERS = "/wp-json/wc/v3/customers"
ORDERS = "/wp-json/wc/v3/orders"


class FakeClock:
    """A clock the tests move by hand."""

    def __init__(self) -> None:
        self.value = 1_780_000_000.0  # 2026-05-28T20:26:40Z

    def __call__(self) -> float:
        return self.value


def basic(key: str = KEY, secret: str = SECRET) -> dict[str, str]:
    token = base64.b64encode(f"{key}:{secret}".encode()).decode("ascii")
    return {"Authorization": f"Basic {token}"}


@contextmanager
def store(**settings: Any) -> Iterator[tuple[httpx.Client, woocommerce.WooState]]:
    app = create_app(WooStandinConfig(**settings))
    with serve(app) as base_url, httpx.Client(base_url=base_url, timeout=10,
                                              headers=basic()) as client:
        yield client, app.state.woocommerce


def customer(number: int, **changes: Any) -> dict[str, Any]:
    return {"id": number, "email": f"buyer{number}@example.com", "first_name": f"Name{number:03d}",
            "date_modified_gmt": f"2026-05-01T08:00:{number % 60:02d}", **changes}


def order(number: int, modified: str, **changes: Any) -> dict[str, Any]:
    return {"id": number, "customer_id": 0, "date_created_gmt": "2026-05-01T00:00:00",
            "date_modified_gmt": modified, **changes}


# -- authentication -----------------------------------------------------------------


def test_basic_auth_lists() -> None:
    with store() as (client, state):
        state.seed([customer(1)])
        response = client.get(CUSTOMERS)
    assert response.status_code == 200
    assert [item["id"] for item in response.json()] == [1]


def test_query_string_auth_lists() -> None:
    with store() as (client, state):
        state.seed([customer(1)])
        response = client.get(CUSTOMERS, headers={"Authorization": ""},
                              params={"consumer_key": KEY, "consumer_secret": SECRET})
    assert response.status_code == 200
    assert response.json()[0]["email"] == "buyer1@example.com"


@pytest.mark.parametrize(("headers", "code", "message"), [
    ({"Authorization": ""}, "woocommerce_rest_cannot_view", "Sorry, you cannot list resources."),
    (basic(key="ck_other"), "woocommerce_rest_authentication_error", "Consumer key is invalid."),
    (basic(secret="cs_other"), "woocommerce_rest_authentication_error",
     "Consumer secret is invalid."),
], ids=["none", "wrong-key", "wrong-secret"])
def test_auth_errors(headers: dict[str, str], code: str, message: str) -> None:
    with store() as (client, _):
        response = client.get(CUSTOMERS, headers=headers)
    assert response.status_code == 401
    assert response.json() == {"code": code, "message": message, "data": {"status": 401}}


def test_plain_http_ignores_keys() -> None:
    with store(https=False) as (client, _):
        response = client.get(CUSTOMERS)
    assert response.status_code == 401
    assert response.json()["code"] == "woocommerce_rest_cannot_view"


def test_read_key_cannot_write() -> None:
    with store(key_permissions="read") as (client, state):
        state.seed([customer(1)])
        response = client.put(f"{CUSTOMERS}/1", json={"first_name": "X"})
    assert response.status_code == 401
    assert response.json()["message"] == "The API key provided does not have write permissions."


# -- paging and parameters ----------------------------------------------------------


def test_paging_headers() -> None:
    with store() as (client, state):
        state.seed([customer(number) for number in range(1, 251)])
        first = client.get(CUSTOMERS, params={"per_page": "100", "orderby": "id"})
        last = client.get(CUSTOMERS, params={"per_page": "100", "orderby": "id", "page": "3"})
    assert first.headers["X-WP-Total"] == "250"
    assert first.headers["X-WP-TotalPages"] == "3"
    assert [item["id"] for item in first.json()][:2] == [1, 2]
    assert len(first.json()) == 100
    assert 'rel="next"' in first.headers["Link"]
    assert "page=2" in first.headers["Link"]
    assert [item["id"] for item in last.json()] == list(range(201, 251))
    assert 'rel="prev"' in last.headers["Link"]
    assert 'rel="next"' not in last.headers["Link"]


def test_default_page_is_10() -> None:
    with store() as (client, state):
        state.seed([customer(number) for number in range(1, 16)])
        response = client.get(CUSTOMERS)
    assert len(response.json()) == 10
    assert response.headers["X-WP-TotalPages"] == "2"


def test_per_page_over_100_rejected() -> None:
    with store() as (client, _):
        response = client.get(CUSTOMERS, params={"per_page": "101", "orderby": "email"})
    body = response.json()
    assert response.status_code == 400
    assert body["code"] == "rest_invalid_param"
    assert body["message"] == "Invalid parameter(s): per_page, orderby"
    assert body["data"]["status"] == 400
    assert body["data"]["params"]["per_page"] == \
        "per_page must be between 1 (inclusive) and 100 (inclusive)"


def test_customers_default_order_by_name() -> None:
    with store() as (client, state):
        state.seed([customer(1, first_name="Zaid"), customer(2, first_name="Amal")])
        names = [item["first_name"] for item in client.get(CUSTOMERS).json()]
        reverse = client.get(CUSTOMERS, params={"orderby": "id", "order": "desc"}).json()
    assert names == ["Amal", "Zaid"]
    assert [item["id"] for item in reverse] == [2, 1]


def test_customers_role_include_email() -> None:
    with store() as (client, state):
        state.seed([customer(1), customer(2, role="subscriber"), customer(3)])
        default = client.get(CUSTOMERS, params={"orderby": "id"}).json()
        every = client.get(CUSTOMERS, params={"orderby": "id", "role": "all"}).json()
        some = client.get(CUSTOMERS, params={"include": "3,2", "role": "all",
                                             "orderby": "include"}).json()
        by_email = client.get(CUSTOMERS, params={"email": "BUYER3@example.com"}).json()
    assert [item["id"] for item in default] == [1, 3]
    assert [item["id"] for item in every] == [1, 2, 3]
    assert [item["id"] for item in some] == [3, 2]
    assert [item["id"] for item in by_email] == [3]


def test_customers_ignore_modified_after() -> None:
    # WooCommerce's customers endpoint has no such filter; unknown parameters are ignored.
    with store() as (client, state):
        state.seed([customer(1), customer(2)])
        response = client.get(CUSTOMERS, params={"modified_after": "2030-01-01T00:00:00"})
    assert len(response.json()) == 2


def test_customer_shape_and_dates() -> None:
    with store(clock=FakeClock()) as (client, state):
        state.seed([{"id": 5, "email": "a@example.com"}])
        body = client.get(f"{CUSTOMERS}/5").json()
    assert body["date_modified_gmt"] == "2026-05-28T20:26:40"
    assert body["date_modified"] == "2026-05-28T23:26:40"  # Asia/Riyadh, UTC+3
    assert body["role"] == "customer"
    assert set(body["billing"]) >= {"first_name", "email", "phone", "city", "country"}
    assert "email" not in body["shipping"]


def test_orders_modified_after_exclusive() -> None:
    with store() as (client, state):
        state.seed([], [order(1, "2026-05-01T10:00:00"), order(2, "2026-05-01T10:00:01"),
                        order(3, "2026-05-01T10:00:02")])
        gmt = client.get(ORDERS, params={"modified_after": "2026-05-01T10:00:00",
                                         "dates_are_gmt": "true", "orderby": "id",
                                         "order": "asc"}).json()
        local = client.get(ORDERS, params={"modified_after": "2026-05-01T13:00:01",
                                           "orderby": "id", "order": "asc"}).json()
        bounded = client.get(ORDERS, params={"modified_after": "2026-05-01T09:00:00Z",
                                             "modified_before": "2026-05-01T10:00:02Z",
                                             "dates_are_gmt": "true"}).json()
    assert [item["id"] for item in gmt] == [2, 3]
    assert [item["id"] for item in local] == [3]
    assert sorted(item["id"] for item in bounded) == [1, 2]


def test_orders_status_and_customer() -> None:
    with store() as (client, state):
        state.seed([], [order(1, "2026-05-01T10:00:00", status="completed", customer_id=4),
                        order(2, "2026-05-01T10:00:00", status="trash"),
                        order(3, "2026-05-01T10:00:00", status="pending")])
        default = client.get(ORDERS).json()
        done = client.get(ORDERS, params={"status": "completed"}).json()
        mine = client.get(ORDERS, params={"customer": "4"}).json()
        bad = client.get(ORDERS, params={"status": "shipped"})
    assert sorted(item["id"] for item in default) == [1, 3]
    assert [item["id"] for item in done] == [1]
    assert [item["id"] for item in mine] == [1]
    assert bad.status_code == 400
    assert bad.json()["code"] == "rest_invalid_param"


# -- records ------------------------------------------------------------------------


def test_put_customer_touches_modified() -> None:
    clock = FakeClock()
    with store(clock=clock) as (client, state):
        state.seed([customer(1)])
        clock.value += 3600
        response = client.put(f"{CUSTOMERS}/1", json={"billing": {"city": "جدة"}})
        stored = state.customer(1)
    assert response.status_code == 200
    assert stored is not None
    assert stored["date_modified_gmt"] == "2026-05-28T21:26:40"
    assert stored["billing"]["city"] == "جدة"
    assert stored["email"] == "buyer1@example.com"


def test_create_customer_needs_email() -> None:
    with store() as (client, _):
        missing = client.post(CUSTOMERS, json={"first_name": "Sara"})
        created = client.post(CUSTOMERS, json={"email": "new@example.com"})
    assert missing.status_code == 400
    assert missing.json()["code"] == "rest_missing_callback_param"
    assert created.status_code == 201
    assert created.json()["id"] == 1


def test_unknown_ids_and_routes() -> None:
    with store() as (client, _):
        no_customer = client.get(f"{CUSTOMERS}/99")
        no_order = client.get(f"{ORDERS}/99")
        no_route = client.get("/wp-json/wc/v3/nothing")
    assert no_customer.status_code == 404
    assert no_customer.json()["code"] == "woocommerce_rest_invalid_id"
    assert no_order.json()["code"] == "woocommerce_rest_shop_order_invalid_id"
    assert no_route.status_code == 404
    assert no_route.json()["code"] == "rest_no_route"


# -- inspection and faults ----------------------------------------------------------


def test_fault_with_retry_after() -> None:
    with store() as (client, _):
        injected = client.post("/_standin/faults", json={"status": 429, "count": 1,
                                                         "retry_after": 2,
                                                         "path_prefix": ORDERS})
        first = client.get(ORDERS)
        second = client.get(ORDERS)
        customers = client.get(CUSTOMERS)
        calls = client.get("/_standin/calls").json()
    assert injected.status_code == 201
    assert first.status_code == 429
    assert first.headers["Retry-After"] == "2"
    assert first.json()["data"]["status"] == 429
    assert second.status_code == 200
    assert customers.status_code == 200
    assert {"method": "GET", "path": ORDERS, "status": 429, "count": 1} in calls["calls"]


def test_fault_request_checked() -> None:
    with store() as (client, _):
        response = client.post("/_standin/faults", json={"status": 200, "count": 1})
    assert response.status_code == 400


def test_seed_and_reset() -> None:
    with store() as (client, _):
        seeded = client.post("/_standin/seed", json={"customers": [customer(1)],
                                                     "orders": [order(9, "2026-05-01T00:00:00")]})
        client.put(f"{CUSTOMERS}/1", json={"first_name": "Changed"})
        client.post(CUSTOMERS, json={"email": "extra@example.com"})
        reset = client.post("/_standin/reset")
        after = client.get("/_standin/customers").json()["customers"]
        empty = client.post("/_standin/reset", json={"seed": False}).json()
        bad = client.post("/_standin/seed", json={"customers": "x"})
    assert seeded.json() == {"customers": 1, "orders": 1}
    assert reset.json() == {"status": "reset", "records": 2}
    assert [item["first_name"] for item in after] == ["Name001"]
    assert empty == {"status": "reset", "records": 0}
    assert bad.status_code == 400


# -- packaging ----------------------------------------------------------------------


def test_refuses_remote_host(capsys: pytest.CaptureFixture[str]) -> None:
    assert woocommerce.main(["--host", "0.0.0.0"]) == 2
    assert "not a loopback address" in capsys.readouterr().err


def test_bad_seed_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    seed = tmp_path / "store.json"
    seed.write_text("[1, 2]", encoding="utf-8")
    assert woocommerce.main(["--seed", str(seed)]) == 2
    assert "cannot seed from" in capsys.readouterr().err


def test_imports_stay_portable() -> None:
    allowed = {"starlette", "uvicorn", *sys.stdlib_module_names}
    for path in sorted(STANDINS.glob("woocommerce*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in allowed, f"{path.name} imports {name}"


# -- webhooks and coupons -----------------------------------------------------------

WEBHOOKS = "/wp-json/wc/v3/webhooks"
COUPONS = "/wp-json/wc/v3/coupons"


def test_webhook_create_list_reactivate() -> None:
    hook = {"topic": "order.updated", "delivery_url": "https://hooks.example.sa/webhooks/woo",
            "secret": "not-a-real-secret"}
    with store() as (client, _):
        created = client.post(WEBHOOKS, json=hook)
        number = created.json()["id"]
        paused = client.put(f"{WEBHOOKS}/{number}", json={"status": "disabled"})
        disabled = client.get(WEBHOOKS, params={"status": "disabled"}).json()
        active = client.put(f"{WEBHOOKS}/{number}", json={"status": "active"})
        listed = client.get(WEBHOOKS)

    assert created.status_code == 201
    assert created.json()["status"] == "active"
    assert created.json()["resource"] == "order"
    assert "secret" not in created.json()
    assert paused.json()["status"] == "disabled"
    assert [item["id"] for item in disabled] == [number]
    assert active.json()["status"] == "active"
    assert listed.headers["X-WP-Total"] == "1"


@pytest.mark.parametrize(("body", "code"), [
    ({"delivery_url": "https://hooks.example.sa/x"}, "rest_missing_callback_param"),
    ({"topic": "order.exploded", "delivery_url": "https://hooks.example.sa/x"},
     "woocommerce_rest_webhook_invalid_topic"),
    ({"topic": "order.created", "delivery_url": "ftp://hooks.example.sa/x"},
     "rest_invalid_param"),
])
def test_webhook_create_errors(body: dict[str, Any], code: str) -> None:
    with store() as (client, _):
        response = client.post(WEBHOOKS, json=body)

    assert response.status_code == 400
    assert response.json()["code"] == code


def test_coupon_single_use_and_unique() -> None:
    coupon = {"code": "BACK15", "discount_type": "fixed_cart", "amount": "15.00",
              "usage_limit": 1, "date_expires_gmt": "2026-05-03T00:00:00"}
    with store() as (client, _):
        created = client.post(COUPONS, json=coupon)
        again = client.post(COUPONS, json={**coupon, "code": "back15"})
        bad_type = client.post(COUPONS, json={**coupon, "code": "X", "discount_type": "free"})

    assert created.status_code == 201
    assert created.json()["code"] == "back15"
    assert created.json()["usage_limit"] == 1
    assert again.json()["code"] == "woocommerce_rest_coupon_code_already_exists"
    assert bad_type.status_code == 400
