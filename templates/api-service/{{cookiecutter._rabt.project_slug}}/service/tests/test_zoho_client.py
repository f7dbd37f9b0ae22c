"""The Zoho client against the Zoho stand-in: upserts, per-record errors, tokens and credits."""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from conftest import redis_url_or_skip
from storesync import metrics
from storesync.hubspot import NOT_FOUND_CATEGORY, BatchRejected, DailyLimitReached
from storesync.standins.zoho import ZohoStandinConfig
from storesync.zoho import ApiDomainUnreachable, ZohoClient, mask_value
from storesync.zoho_auth import (
    REFRESH_MARGIN_SECONDS,
    TOKEN_FILE_NAME,
    AccessToken,
    FileTokenCache,
    RedisTokenCache,
    TokenCache,
    TokenRejected,
    ZohoTokens,
    token_fingerprint,
)
from storesync.zoho_credits import CallSlots, CreditBudget, CreditsExhausted
from zoho_support import (
    CLIENT_ID,
    CLIENT_SECRET,
    REFRESH_TOKEN,
    ZohoClock,
    ZohoStandin,
)

StartZoho = Callable[..., ZohoStandin]
MakeClient = Callable[..., ZohoClient]


def contact(email: str, customer_id: str, last_name: str = "Test") -> dict[str, object]:
    return {"id": email, "idProperty": "Email",
            "properties": {"Last_Name": last_name, "Ecom_Customer_ID": customer_id}}


def test_upsert_creates_then_updates_by_email(start_zoho: StartZoho,
                                              make_zoho_client: MakeClient) -> None:
    standin = start_zoho()
    client = make_zoho_client(standin)

    first = client.batch_upsert("contacts", [contact("sara.zoho@example.com", "c-1"),
                                             contact("huda.zoho@example.com", "c-2")])
    again = client.batch_upsert("contacts", [contact("sara.zoho@example.com", "c-1", "Renamed")])

    assert not first.errors
    assert not again.errors
    assert [item["properties"] for item in first.results] == [
        {"Email": "sara.zoho@example.com"}, {"Email": "huda.zoho@example.com"}]
    assert again.results[0]["id"] == first.results[0]["id"]
    stored = {record["Email"]: record for record in standin.records("Contacts")}
    assert len(stored) == 2
    assert stored["sara.zoho@example.com"]["Last_Name"] == "Renamed"


def test_record_errors_name_field_and_masked_value(start_zoho: StartZoho,
                                                   make_zoho_client: MakeClient) -> None:
    standin = start_zoho()
    client = make_zoho_client(standin)
    client.batch_upsert("contacts", [contact("sara.zoho@example.com", "c-1"),
                                     contact("huda.zoho@example.com", "c-2")])

    bad_email = {"id": "c-9", "idProperty": "Ecom_Customer_ID",
                 "properties": {"Last_Name": "Test", "Email": "not-an-email"}}
    result = client.batch_upsert("contacts", [contact("sara.zoho@example.com", "c-2")])
    invalid = client.batch_upsert("contacts", [bad_email])

    # Sara's record is matched by email, and the customer id c-2 belongs to Huda.
    assert result.status == 400
    assert not result.results
    duplicate = result.errors[0]
    assert duplicate["category"] == "DUPLICATE_DATA"
    assert duplicate["field"] == "Ecom_Customer_ID"
    assert "in Ecom_Customer_ID (value c*** (3 characters))" in duplicate["message"]
    assert duplicate["context"] == {"ids": ["sara.zoho@example.com"]}
    error = invalid.errors[0]
    assert (error["category"], error["field"]) == ("INVALID_DATA", "Email")
    assert "not-an-email" not in error["message"]
    assert "value n***" in error["message"]


def test_update_of_deleted_record_not_found(start_zoho: StartZoho,
                                                       make_zoho_client: MakeClient) -> None:
    client = make_zoho_client(start_zoho())

    result = client.batch_update("contacts", [{"id": "999999", "properties": {"Last_Name": "X"}}])

    assert result.errors[0]["category"] == NOT_FOUND_CATEGORY


def test_note_created_on_contact(start_zoho: StartZoho, make_zoho_client: MakeClient) -> None:
    standin = start_zoho()
    client = make_zoho_client(standin)
    result = client.batch_upsert("contacts", [contact("sara.zoho@example.com", "c-1")])
    contact_id = result.results[0]["id"]

    note_id = client.create_note({"Note_Title": "abandoned_cart:cart_reminder_1",
                                  "Note_Content": "Recovery link: https://example.com/r/1"},
                                 contact_id)

    [note] = standin.records("Notes")
    assert note["id"] == note_id
    assert note["Parent_Id"] == {"module": {"api_name": "Contacts",
                                            "id": note["Parent_Id"]["module"]["id"]},
                                 "id": contact_id}
    assert note["Note_Content"] == "Recovery link: https://example.com/r/1"


def test_note_on_unknown_contact_rejected(start_zoho: StartZoho,
                                          make_zoho_client: MakeClient) -> None:
    standin = start_zoho()
    client = make_zoho_client(standin)

    with pytest.raises(BatchRejected) as raised:
        client.create_note({"Note_Title": "t", "Note_Content": "Recovery link"},
                           "5725767999999999999")

    assert raised.value.status == 400
    assert str(raised.value).startswith("INVALID_DATA: invalid data in Parent_Id")
    assert standin.records("Notes") == []


def test_mask_value_hides_personal_data() -> None:
    assert mask_value("sara.zoho@example.com") == "s***@e***.com"
    assert mask_value("+966500000011") == "+9665*****011"
    assert mask_value(149.5) == "149.5"
    assert mask_value({"id": "42"}) == "id 42"
    assert mask_value(None) == "empty"


def test_invalid_token_refreshes_once_and_retries(start_zoho: StartZoho,
                                                  make_zoho_client: MakeClient) -> None:
    standin = start_zoho()
    client = make_zoho_client(standin)
    client.batch_upsert("contacts", [contact("sara.zoho@example.com", "c-1")])
    standin.http.post("/_standin/tokens/expire").raise_for_status()

    result = client.batch_upsert("contacts", [contact("huda.zoho@example.com", "c-2")])

    assert not result.errors
    assert standin.refreshes() == 2
    # With the field list read once before the first write.
    assert client.calls == 4


def test_token_refreshed_before_it_expires(start_zoho: StartZoho,
                                           make_zoho_client: MakeClient) -> None:
    standin = start_zoho()
    clock = ZohoClock()
    client = make_zoho_client(standin, clock=clock)
    client.batch_upsert("contacts", [contact("sara.zoho@example.com", "c-1")])
    clock.now += 3600 - REFRESH_MARGIN_SECONDS - 1
    client.batch_upsert("contacts", [contact("sara.zoho@example.com", "c-1")])
    assert standin.refreshes() == 1

    clock.now += 2
    client.batch_upsert("contacts", [contact("sara.zoho@example.com", "c-1")])

    assert standin.refreshes() == 2
    # With the field list read once before the first write.
    assert client.calls == 4


def test_wrong_data_centre_is_named(start_zoho: StartZoho, make_zoho_client: MakeClient) -> None:
    # The account is in the .com data centre, and ZOHO_DC is sa.
    standin = start_zoho(ZohoStandinConfig(data_centre="sa", refresh_tokens={
        REFRESH_TOKEN: "com"}))
    client = make_zoho_client(standin, dc="sa")

    with pytest.raises(TokenRejected) as raised:
        client.batch_upsert("contacts", [contact("sara.zoho@example.com", "c-1")])

    text = str(raised.value)
    assert "ZOHO_DC=sa" in text
    assert "another data centre" in text
    assert "invalid_client" in text
    assert REFRESH_TOKEN not in text
    assert CLIENT_SECRET not in text


def test_revoked_refresh_token_is_explained(start_zoho: StartZoho,
                                            make_zoho_client: MakeClient) -> None:
    standin = start_zoho(ZohoStandinConfig(refresh_tokens={"1000.another-token": "sa"}))
    client = make_zoho_client(standin)

    with pytest.raises(TokenRejected, match=r"invalid_code.*ZOHO_REFRESH_TOKEN"):
        client.batch_upsert("contacts", [contact("sara.zoho@example.com", "c-1")])


def take_tokens_at_once(url: str, caches: list[TokenCache]) -> list[str]:
    """Ask two token sources (two processes) from two threads each at the same moment."""
    sources = [ZohoTokens(CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, dc="sa", accounts_url=url,
                          cache=cache) for cache in caches]
    start = threading.Barrier(4)
    values: list[str] = []

    def take(source: ZohoTokens) -> None:
        start.wait()
        values.append(source.current().value)

    threads = [threading.Thread(target=take, args=(source,)) for source in sources * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    for source in sources:
        source.close()
    return values


def test_one_refresh_for_two_processes(start_zoho: StartZoho, tmp_path: Path) -> None:
    standin = start_zoho()

    values = take_tokens_at_once(standin.url, [FileTokenCache(tmp_path / "var"),
                                               FileTokenCache(tmp_path / "var")])

    assert standin.refreshes() == 1
    assert len(values) == 4
    assert len(set(values)) == 1
    assert (tmp_path / "var" / "zoho-token.json").stat().st_mode & 0o777 == 0o600


@pytest.mark.redis
def test_one_refresh_through_redis(start_zoho: StartZoho) -> None:
    standin = start_zoho()
    client = redis.Redis.from_url(redis_url_or_skip())
    prefix = f"storesync-test-{uuid.uuid4().hex}"
    try:
        values = take_tokens_at_once(standin.url, [RedisTokenCache(client, prefix),
                                                   RedisTokenCache(client, prefix)])
        ttl = client.ttl(f"{prefix}:zoho:token")
    finally:
        client.delete(f"{prefix}:zoho:token", f"{prefix}:zoho:token-lock")
        client.close()

    assert standin.refreshes() == 1
    assert len(set(values)) == 1
    assert ttl > 0


def test_rejected_token_is_replaced_once(start_zoho: StartZoho, tmp_path: Path) -> None:
    standin = start_zoho()
    source = ZohoTokens(CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, dc="sa",
                        accounts_url=standin.url, cache=FileTokenCache(tmp_path))
    old = source.current().value
    source.reject(old)
    new = source.current().value
    # A second 401 for the old token, seen late by another thread, keeps the new one.
    source.reject(old)

    assert source.current().value == new != old
    assert standin.refreshes() == 2
    source.close()


def closed_loopback_url() -> str:
    """Return an http URL on 127.0.0.1 whose port nothing listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def cached_client(url: str, cache: TokenCache, clock: ZohoClock | None = None) -> ZohoClient:
    clock = clock or ZohoClock()
    tokens = ZohoTokens(CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, dc="sa", accounts_url=url,
                        cache=cache, clock=clock)
    return ZohoClient(tokens, CreditBudget(50_000, clock=clock, sleep=clock.sleep),
                      CallSlots(20), sleep=clock.sleep)


@pytest.mark.parametrize("fingerprint", [
    pytest.param(None, id="no-fingerprint"),
    pytest.param("another-accounts-server", id="another-accounts-server"),
    pytest.param("another-client", id="another-client"),
    pytest.param("another-refresh-token", id="another-refresh-token"),
])
def test_cached_token_of_another_account_discarded(start_zoho: StartZoho, tmp_path: Path,
                                                   fingerprint: str | None) -> None:
    standin = start_zoho()
    closed_url = closed_loopback_url()
    stored = {
        None: "",
        "another-accounts-server": token_fingerprint(closed_url, CLIENT_ID, REFRESH_TOKEN),
        "another-client": token_fingerprint(standin.url, "1000.OTHERCLIENT", REFRESH_TOKEN),
        "another-refresh-token": token_fingerprint(standin.url, CLIENT_ID, "1000.other"),
    }[fingerprint]
    cache = FileTokenCache(tmp_path)
    clock = ZohoClock()
    cache.write(AccessToken("1000.old-token-not-real", closed_url, clock.now + 3600, stored))
    source = ZohoTokens(CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, dc="sa",
                        accounts_url=standin.url, cache=cache, clock=clock)

    token = source.current()
    source.close()

    assert token.value != "1000.old-token-not-real"
    assert token.api_domain == standin.url
    assert standin.refreshes() == 1
    written = json.loads((tmp_path / TOKEN_FILE_NAME).read_text(encoding="utf-8"))
    assert written["fingerprint"] == token_fingerprint(standin.url, CLIENT_ID, REFRESH_TOKEN)
    assert written["api_domain"] == standin.url


@pytest.mark.redis
def test_redis_token_of_another_account_discarded(start_zoho: StartZoho) -> None:
    standin = start_zoho()
    client = redis.Redis.from_url(redis_url_or_skip())
    prefix = f"storesync-test-{uuid.uuid4().hex}"
    cache = RedisTokenCache(client, prefix)
    closed_url = closed_loopback_url()
    try:
        cache.write(AccessToken("1000.old-token-not-real", closed_url, ZohoClock().now + 3600,
                                token_fingerprint(closed_url, CLIENT_ID, REFRESH_TOKEN)))
        source = ZohoTokens(CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, dc="sa",
                            accounts_url=standin.url, cache=cache)
        token = source.current()
        source.close()
        stored = cache.read()
    finally:
        client.delete(f"{prefix}:zoho:token", f"{prefix}:zoho:token-lock")
        client.close()

    assert token.api_domain == standin.url
    assert standin.refreshes() == 1
    assert stored is not None
    assert stored.value == token.value


def test_token_file_keeps_no_secret(start_zoho: StartZoho, tmp_path: Path) -> None:
    standin = start_zoho()
    source = ZohoTokens(CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, dc="sa",
                        accounts_url=standin.url, cache=FileTokenCache(tmp_path))
    source.current()
    source.close()

    text = (tmp_path / TOKEN_FILE_NAME).read_text(encoding="utf-8")

    assert REFRESH_TOKEN not in text
    assert CLIENT_SECRET not in text
    assert json.loads(text)["fingerprint"]


def test_same_account_reuses_cached_token(start_zoho: StartZoho, tmp_path: Path) -> None:
    standin = start_zoho()
    first = ZohoTokens(CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, dc="sa",
                       accounts_url=standin.url, cache=FileTokenCache(tmp_path))
    value = first.current().value
    first.close()
    # A restart with the same settings.
    second = ZohoTokens(CLIENT_ID, CLIENT_SECRET, REFRESH_TOKEN, dc="sa",
                        accounts_url=standin.url, cache=FileTokenCache(tmp_path))

    assert second.current().value == value
    assert standin.refreshes() == 1
    second.close()


def test_unreachable_cached_domain_refreshes_once(start_zoho: StartZoho,
                                                  tmp_path: Path) -> None:
    standin = start_zoho()
    cache = FileTokenCache(tmp_path)
    clock = ZohoClock()
    # Same account, but its API domain is gone, as after a move of the org.
    cache.write(AccessToken("1000.old-token-not-real", closed_loopback_url(),
                            clock.now + 3600,
                            token_fingerprint(standin.url, CLIENT_ID, REFRESH_TOKEN)))
    client = cached_client(standin.url, cache, clock)

    result = client.batch_upsert("contacts", [contact("sara.zoho@example.com", "c-1")])
    client.close()

    assert not result.errors
    assert standin.refreshes() == 1
    assert len(standin.records("Contacts")) == 1
    stored = cache.read()
    assert stored is not None
    assert stored.api_domain == standin.url


def test_unreachable_fresh_domain_not_refreshed(start_zoho: StartZoho, tmp_path: Path) -> None:
    standin = start_zoho(ZohoStandinConfig(api_domain=closed_loopback_url()))
    client = cached_client(standin.url, FileTokenCache(tmp_path))

    with pytest.raises(ApiDomainUnreachable):
        client.batch_upsert("contacts", [contact("sara.zoho@example.com", "c-1")])
    client.close()

    # The token came from Zoho Accounts just now, so a second refresh would not help.
    assert standin.refreshes() == 1


def test_invalid_token_on_cached_token_refreshes(start_zoho: StartZoho,
                                                 tmp_path: Path) -> None:
    standin = start_zoho()
    cache = FileTokenCache(tmp_path)
    clock = ZohoClock()
    # A token of the same account that this stand-in never issued, as after its restart.
    cache.write(AccessToken("1000.unknown-token-not-real", standin.url, clock.now + 3600,
                            token_fingerprint(standin.url, CLIENT_ID, REFRESH_TOKEN)))
    client = cached_client(standin.url, cache, clock)

    result = client.batch_upsert("contacts", [contact("sara.zoho@example.com", "c-1")])
    client.close()

    assert not result.errors
    assert standin.refreshes() == 1


def test_credits_used_up_in_zoho_raise_the_daily_limit(start_zoho: StartZoho,
                                                      make_zoho_client: MakeClient) -> None:
    standin = start_zoho(ZohoStandinConfig(credits_per_day=25))
    client = make_zoho_client(standin)
    batch = [contact(f"buyer{number}@example.com", f"c-{number}") for number in range(100)]
    client.batch_upsert("contacts", batch)
    client.batch_upsert("contacts", batch)

    with pytest.raises(CreditsExhausted) as raised:
        client.batch_upsert("contacts", batch)

    assert isinstance(raised.value, DailyLimitReached)
    # Zoho's header says 4 are left (25 less 1 for the field list and two writes of 10), too
    # few for a write of 100 records.
    assert client.budget.remaining() == standin.state.credits_remaining() == 4
    assert metrics.ZOHO_CREDITS_REMAINING._value.get() == 4
    assert metrics.ZOHO_CREDITS_USED._value.get() == 21


def test_credit_header_lowers_the_budget(start_zoho: StartZoho,
                                         make_zoho_client: MakeClient) -> None:
    # Other apps of the org spent most of the credits already.
    standin = start_zoho(ZohoStandinConfig(credits_per_day=1000))
    standin.state.charge_credits(900)
    client = make_zoho_client(standin, daily_limit=1000)

    client.batch_upsert("contacts", [contact("sara.zoho@example.com", "c-1")])

    # 900 spent elsewhere, 1 for the field list and 1 for the upsert.
    assert client.budget.remaining() == standin.state.credits_remaining() == 98


def test_concurrency_429_is_retried(start_zoho: StartZoho, make_zoho_client: MakeClient) -> None:
    standin = start_zoho()
    clock = ZohoClock()
    client = make_zoho_client(standin, clock=clock)
    standin.fault(429, 2, "/crm/")

    result = client.batch_upsert("contacts", [contact("sara.zoho@example.com", "c-1")])

    assert not result.errors
    assert client.rate_limited_calls == 2
    assert len(clock.sleeps) == 2
