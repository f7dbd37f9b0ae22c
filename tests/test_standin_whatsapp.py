"""Tests for the WhatsApp Cloud API stand-in, served by a real uvicorn on 127.0.0.1."""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from generator.standins import whatsapp
from generator.standins.whatsapp import Template, WhatsAppStandinConfig, create_app
from tests.servers import serve

TOKEN = "standin-token-not-real"
PHONE_ID = "100000000000009"
PATH = f"/v21.0/{PHONE_ID}/messages"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class FakeClock:
    """A clock the tests move by hand."""

    def __init__(self) -> None:
        self.value = 1_780_000_000.0

    def __call__(self) -> float:
        return self.value


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def standin(clock: FakeClock) -> Iterator[tuple[str, Any]]:
    config = WhatsAppStandinConfig(
        access_token=TOKEN, phone_number_id=PHONE_ID, rate_limit=3,
        rate_limit_window_seconds=1.0, clock=clock,
        templates=(Template("cart_reminder", "ar", body_parameters=1),
                   Template("draft_offer", "ar", status="PENDING"),
                   Template("old_offer", "ar", status="PAUSED")))
    app = create_app(config)
    with serve(app) as url:
        yield url, app.state.whatsapp


def template(name: str = "cart_reminder", language: str = "ar",
             parameters: int = 1) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "language": {"code": language}}
    if parameters:
        body["components"] = [{"type": "body", "parameters": [
            {"type": "text", "text": f"value {number}"} for number in range(parameters)]}]
    return {"messaging_product": "whatsapp", "to": "966500000031", "type": "template",
            "template": body}


def send(url: str, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(url + PATH, json=body, headers=AUTH if headers is None else headers)


def error_code(response: httpx.Response) -> int:
    error = response.json()["error"]
    assert set(error) >= {"message", "type", "code", "error_data", "fbtrace_id"}
    assert error["error_data"]["messaging_product"] == "whatsapp"
    return int(error["code"])


def test_template_is_accepted_with_the_cloud_api_shape(standin: tuple[str, Any]) -> None:
    url, state = standin
    response = send(url, template())
    assert response.status_code == 200
    body = response.json()
    assert body["messaging_product"] == "whatsapp"
    assert body["contacts"] == [{"input": "966500000031", "wa_id": "966500000031"}]
    assert body["messages"][0]["id"].startswith("wamid.")
    assert [message["template"]["name"] for message in state.messages] == ["cart_reminder"]


@pytest.mark.parametrize(("body", "status", "code"), [
    (template("unknown"), 400, 132001),
    (template("cart_reminder", "en"), 400, 132001),
    (template("draft_offer", parameters=0), 400, 132001),
    (template("old_offer", parameters=0), 400, 132015),
    (template(parameters=2), 400, 132000),
    ({"messaging_product": "whatsapp", "type": "template"}, 400, 131008),
    ({"messaging_product": "sms", "to": "966500000031", "type": "template"}, 400, 100),
    ([1, 2], 400, 100),
])
def test_bad_messages_get_meta_errors(standin: tuple[str, Any], body: Any, status: int,
                                      code: int) -> None:
    url, state = standin
    response = send(url, body)
    assert (response.status_code, error_code(response)) == (status, code)
    assert state.messages == []


def test_token_and_phone_number_id_are_checked(standin: tuple[str, Any]) -> None:
    url, _ = standin
    response = send(url, template(), headers={"Authorization": "Bearer wrong"})
    assert (response.status_code, error_code(response)) == (401, 190)
    response = httpx.post(f"{url}/v21.0/999/messages", json=template(), headers=AUTH)
    assert (response.status_code, error_code(response)) == (400, 100)


def test_free_form_needs_an_open_service_window(standin: tuple[str, Any],
                                                clock: FakeClock) -> None:
    url, _ = standin
    text = {"messaging_product": "whatsapp", "to": "+966500000031", "type": "text",
            "text": {"body": "مرحبًا"}}
    assert error_code(send(url, text)) == 131047
    httpx.post(url + "/_standin/inbound", json={"from": "966500000031"})
    assert send(url, text).status_code == 200
    clock.value += 24 * 3600 + 1
    assert error_code(send(url, text)) == 131047


def test_throughput_limit(standin: tuple[str, Any], clock: FakeClock) -> None:
    url, _ = standin
    statuses = [send(url, template()).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert error_code(send(url, template())) == 130429
    clock.value += 1.0
    assert send(url, template()).status_code == 200


def test_reset_clears_messages(standin: tuple[str, Any]) -> None:
    url, state = standin
    send(url, template())
    httpx.post(url + "/_standin/reset")
    assert httpx.get(url + "/_standin/messages").json() == []
    assert state.messages == []


def test_bad_template_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert whatsapp.main(["--template", "cart_reminder"]) == 2
    assert "NAME:LANG:PARAMS" in capsys.readouterr().err


def test_imports_stay_portable() -> None:
    allowed = {"starlette", "uvicorn", *sys.stdlib_module_names}
    tree = ast.parse(Path(whatsapp.__file__).read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        else:
            continue
        for name in names:
            assert name.split(".")[0] in allowed, f"whatsapp.py imports {name}"
