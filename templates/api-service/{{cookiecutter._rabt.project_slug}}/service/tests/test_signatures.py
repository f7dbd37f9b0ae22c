"""Signature checks as pure functions: Shopify, WooCommerce and Standard Webhooks."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from intake_support import (
    SHOPIFY_ROTATED_SECRET,
    SHOPIFY_SECRET,
    STOREFRONT_KEY,
    STOREFRONT_SECRET,
    encode_body,
    hex_signature,
    sample_order,
    shopify_headers,
    storefront_headers,
    woocommerce_headers,
)
from storesync.signatures import (
    Verification,
    decode_standard_secret,
    encode_standard_secret,
    header_value,
    hmac_sha256_base64,
    standard_signature,
    verify_shopify,
    verify_standard_webhooks,
    verify_woocommerce,
)

SECRETS = (SHOPIFY_SECRET.encode(), SHOPIFY_ROTATED_SECRET.encode())
BODY = encode_body(sample_order())
NOW = 1_772_560_000


def test_hmac_matches_known_value() -> None:
    # Computed independently: base64(HMAC-SHA256(b"key", b"message")).
    expected = base64.b64encode(hmac.new(b"key", b"message", hashlib.sha256).digest()).decode()
    assert hmac_sha256_base64(b"key", b"message") == expected
    assert hmac_sha256_base64(b"key", b"message") == "bp7ym3X//Ft6uuUn1Y/a2y/kLnIZARl2kXNDBl9Y7Uo="


def test_shopify_first_secret() -> None:
    assert verify_shopify(BODY, shopify_headers(BODY), SECRETS).ok


def test_shopify_rotated_secret() -> None:
    headers = shopify_headers(BODY, secret=SHOPIFY_ROTATED_SECRET)
    assert verify_shopify(BODY, headers, SECRETS).ok


def test_shopify_hex_rejected() -> None:
    headers = shopify_headers(BODY)
    headers["X-Shopify-Hmac-Sha256"] = hex_signature(SHOPIFY_SECRET, BODY)
    result = verify_shopify(BODY, headers, SECRETS)
    assert not result.ok
    assert "does not match" in result.reason


def test_shopify_changed_byte_rejected() -> None:
    headers = shopify_headers(BODY)
    assert not verify_shopify(BODY.replace(b"149.50", b"149.51"), headers, SECRETS).ok


def test_shopify_missing_header() -> None:
    result = verify_shopify(BODY, {"X-Shopify-Topic": "orders/create"}, SECRETS)
    assert not result.ok
    assert result.reason == "missing X-Shopify-Hmac-Sha256 header"


def test_shopify_no_secrets() -> None:
    result = verify_shopify(BODY, shopify_headers(BODY), ())
    assert not result.ok
    assert "no webhook secret" in result.reason


def test_reason_holds_no_secret() -> None:
    result = verify_shopify(BODY, shopify_headers(BODY, secret="wrong-not-real"), SECRETS)
    assert SHOPIFY_SECRET not in result.reason
    assert hmac_sha256_base64(SECRETS[0], BODY) not in result.reason


@pytest.mark.parametrize("name", ["x-shopify-hmac-sha256", "X-SHOPIFY-HMAC-SHA256",
                                  "X-Shopify-Hmac-SHA256"])
def test_header_name_case(name: str) -> None:
    headers = {name: hmac_sha256_base64(SECRETS[0], BODY)}
    assert verify_shopify(BODY, headers, SECRETS).ok


def test_header_value_missing() -> None:
    assert header_value({"A": "1"}, "b") is None
    assert header_value({"A": "1"}, "a") == "1"


def test_woocommerce_signature() -> None:
    secret = b"test-woocommerce-secret-not-real"
    body = b'{"id":5101,"billing":{"city":"\\u062c\\u062f\\u0629"}}'
    headers = woocommerce_headers(body, secret=secret.decode())
    assert verify_woocommerce(body, headers, (secret,)).ok
    assert not verify_woocommerce(body, headers, (b"other-not-real",)).ok


def test_woocommerce_missing_header() -> None:
    result = verify_woocommerce(b"{}", {}, (b"test-secret-not-real",))
    assert result.reason == "missing X-WC-Webhook-Signature header"


# --- Standard Webhooks ------------------------------------------------------------------------


def _verify(body: bytes, headers: dict[str, str], now: float = NOW) -> Verification:
    return verify_standard_webhooks(body, headers, (STOREFRONT_KEY,), now=now,
                                    tolerance_seconds=300)


def test_standard_signature_format() -> None:
    entry = standard_signature(STOREFRONT_KEY, "msg_1", NOW, b"{}")
    version, _, encoded = entry.partition(",")
    assert version == "v1"
    signed = f"msg_1.{NOW}.".encode() + b"{}"
    expected = hmac.new(STOREFRONT_KEY, signed, hashlib.sha256).digest()
    assert base64.b64decode(encoded) == expected


def test_standard_valid() -> None:
    assert _verify(BODY, storefront_headers(BODY, timestamp=NOW)).ok


def test_standard_second_of_several_signatures() -> None:
    wrong = standard_signature(b"another-key-not-real-00000000", "msg_1", NOW, BODY)
    headers = storefront_headers(BODY, timestamp=NOW, extra_signatures=(wrong,))
    assert _verify(BODY, headers).ok


def test_standard_ed25519_entry_ignored() -> None:
    headers = storefront_headers(BODY, timestamp=NOW)
    headers["webhook-signature"] = "v1a," + headers["webhook-signature"].split(",", 1)[1]
    result = _verify(BODY, headers)
    assert not result.ok
    assert "no v1 entry" in result.reason


def test_standard_id_is_signed() -> None:
    headers = storefront_headers(BODY, timestamp=NOW)
    headers["webhook-id"] = "msg_2"
    assert not _verify(BODY, headers).ok


@pytest.mark.parametrize(("offset", "ok"), [(-300, True), (300, True), (-301, False),
                                            (301, False)])
def test_standard_tolerance_both_ways(offset: int, ok: bool) -> None:
    headers = storefront_headers(BODY, timestamp=NOW + offset)
    assert _verify(BODY, headers).ok is ok


def test_standard_timestamp_not_number() -> None:
    headers = storefront_headers(BODY, timestamp=NOW)
    headers["webhook-timestamp"] = "2026-03-03T18:00:00Z"
    result = _verify(BODY, headers)
    assert result.reason == "webhook-timestamp is not a Unix time in seconds"


@pytest.mark.parametrize("name", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_standard_missing_header(name: str) -> None:
    headers = storefront_headers(BODY, timestamp=NOW)
    del headers[name]
    assert _verify(BODY, headers).reason == f"missing {name} header"


def test_standard_secret_round_trip() -> None:
    assert decode_standard_secret(STOREFRONT_SECRET) == STOREFRONT_KEY
    assert encode_standard_secret(STOREFRONT_KEY) == STOREFRONT_SECRET


@pytest.mark.parametrize(("text", "words"), [
    ("c2VjcmV0LXdpdGhvdXQtcHJlZml4LTAwMDAwMDAw", "does not start with 'whsec_'"),
    ("whsec_not base64!", "is not valid base64"),
    ("whsec_" + base64.b64encode(b"short").decode(), "decodes to 5 bytes"),
    ("whsec_" + base64.b64encode(b"x" * 65).decode(), "decodes to 65 bytes"),
])
def test_standard_secret_invalid(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        decode_standard_secret(text)
