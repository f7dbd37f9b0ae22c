"""Webhook signature checks for Shopify, WooCommerce and Standard Webhooks (the storefront).

Every check runs on the raw request bytes, before any parsing. Parsing and
re-serialising JSON changes the bytes (``\\/`` escapes, ``\\uXXXX`` for Arabic, key
order, spaces), and so does Unicode normalisation, so the signature would no longer
match. Digests are compared with :func:`hmac.compare_digest`, and every configured
secret is tried, so a rotated secret and the old one both work during the switch.

Header names are matched case-insensitively: HTTP/2 and many proxies lower-case them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

SHOPIFY_SIGNATURE_HEADER = "X-Shopify-Hmac-Sha256"
WOOCOMMERCE_SIGNATURE_HEADER = "X-WC-Webhook-Signature"
STANDARD_ID_HEADER = "webhook-id"
STANDARD_TIMESTAMP_HEADER = "webhook-timestamp"
STANDARD_SIGNATURE_HEADER = "webhook-signature"
STANDARD_SECRET_PREFIX = "whsec_"
# Standard Webhooks v1.0.0 specifies symmetric secrets of at least 24 random bytes and
# gives 512 bits (64 bytes) as the maximum.
STANDARD_SECRET_MIN_BYTES = 24
STANDARD_SECRET_MAX_BYTES = 64
# The scheme tag of an HMAC-SHA256 entry in `webhook-signature`; `v1a` entries are
# Ed25519, which this service does not verify.
STANDARD_HMAC_VERSION = "v1"


@dataclass(frozen=True)
class Verification:
    """The result of one signature check; ``reason`` explains a failure and contains no secret."""

    ok: bool
    reason: str = ""


VERIFIED = Verification(ok=True)


def header_value(headers: Mapping[str, str], name: str) -> str | None:
    """Return the value of header ``name``, matched case-insensitively, or None."""
    wanted = name.lower()
    # Most servers hand over lower-case names (ASGI requires it), so try that first.
    value = headers.get(wanted)
    if value is not None:
        return value
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def hmac_sha256_base64(key: bytes, message: bytes) -> str:
    """Return base64(HMAC-SHA256(key, message)), the form Shopify and WooCommerce send."""
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def _matches_any(expected_for: Sequence[str], received: str) -> bool:
    # Compare against every secret without stopping early, so the time taken does
    # not tell which secret matched.
    received_bytes = received.encode("utf-8", "replace")
    matched = False
    for expected in expected_for:
        if hmac.compare_digest(expected.encode("ascii"), received_bytes):
            matched = True
    return matched


def _verify_body_hmac(body: bytes, headers: Mapping[str, str], secrets: Sequence[bytes],
                      header: str) -> Verification:
    received = header_value(headers, header)
    if received is None or not received.strip():
        return Verification(False, f"missing {header} header")
    if not secrets:
        return Verification(False, "no webhook secret is configured for this platform")
    expected = [hmac_sha256_base64(secret, body) for secret in secrets]
    if not _matches_any(expected, received.strip()):
        return Verification(False, f"{header} does not match the body with any configured secret")
    return VERIFIED


def verify_shopify(body: bytes, headers: Mapping[str, str],
                   secrets: Sequence[bytes]) -> Verification:
    """Check ``X-Shopify-Hmac-Sha256``: base64(HMAC-SHA256(app secret, raw body)).

    Subscriptions created in the Shopify admin are signed with the key shown there,
    not with the app's client secret, so both may have to be configured.
    """
    return _verify_body_hmac(body, headers, secrets, SHOPIFY_SIGNATURE_HEADER)


def verify_woocommerce(body: bytes, headers: Mapping[str, str],
                       secrets: Sequence[bytes]) -> Verification:
    """Check ``X-WC-Webhook-Signature``: base64(HMAC-SHA256(webhook secret, raw body)).

    WooCommerce lets a site change the hash with the ``woocommerce_webhook_hash_algorithm``
    filter; only the default SHA-256 is accepted here.
    """
    return _verify_body_hmac(body, headers, secrets, WOOCOMMERCE_SIGNATURE_HEADER)


def decode_standard_secret(text: str) -> bytes:
    """Return the HMAC key of a Standard Webhooks secret written as ``whsec_<base64>``.

    Raises:
        ValueError: the prefix is missing, the rest is not base64, or the key is not
            24 to 64 bytes long. The message never contains the secret.
    """
    if not text.startswith(STANDARD_SECRET_PREFIX):
        raise ValueError(f"does not start with {STANDARD_SECRET_PREFIX!r}")
    encoded = text[len(STANDARD_SECRET_PREFIX):]
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"the part after {STANDARD_SECRET_PREFIX!r} is not valid base64") from None
    if not STANDARD_SECRET_MIN_BYTES <= len(key) <= STANDARD_SECRET_MAX_BYTES:
        raise ValueError(f"decodes to {len(key)} bytes; Standard Webhooks secrets are "
                         f"{STANDARD_SECRET_MIN_BYTES} to {STANDARD_SECRET_MAX_BYTES} bytes")
    return key


def encode_standard_secret(key: bytes) -> str:
    """Return ``key`` written as a ``whsec_`` secret (the inverse of ``decode_standard_secret``)."""
    return STANDARD_SECRET_PREFIX + base64.b64encode(key).decode("ascii")


def standard_signature(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """Return one ``v1,<base64>`` entry for the ``webhook-signature`` header."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    return f"{STANDARD_HMAC_VERSION},{hmac_sha256_base64(key, signed)}"


def _check_timestamp(raw: str, now: float, tolerance_seconds: int) -> Verification:
    try:
        timestamp = int(raw.strip())
    except ValueError:
        return Verification(False, f"{STANDARD_TIMESTAMP_HEADER} is not a Unix time in seconds")
    # Both directions: an old timestamp is a possible replay, and one in the future
    # would stay valid for longer than the tolerance.
    if timestamp < now - tolerance_seconds:
        return Verification(False, f"{STANDARD_TIMESTAMP_HEADER} is older than "
                                   f"{tolerance_seconds} seconds")
    if timestamp > now + tolerance_seconds:
        return Verification(False, f"{STANDARD_TIMESTAMP_HEADER} is more than "
                                   f"{tolerance_seconds} seconds in the future")
    return VERIFIED


def verify_standard_webhooks(body: bytes, headers: Mapping[str, str], keys: Sequence[bytes], *,
                             now: float, tolerance_seconds: int) -> Verification:
    """Check a Standard Webhooks v1 signature over ``{webhook-id}.{webhook-timestamp}.{body}``.

    ``webhook-signature`` is a space-separated list of ``v1,<base64>`` entries (senders
    rotating a key sign with both); one entry matching one of ``keys`` is enough.

    Args:
        body: The raw request body.
        headers: The request headers, any case.
        keys: HMAC keys, decoded from their ``whsec_`` form.
        now: The current Unix time in seconds.
        tolerance_seconds: How far ``webhook-timestamp`` may be from ``now``, either way.
    """
    values = {}
    for name in (STANDARD_ID_HEADER, STANDARD_TIMESTAMP_HEADER, STANDARD_SIGNATURE_HEADER):
        value = header_value(headers, name)
        if value is None or not value.strip():
            return Verification(False, f"missing {name} header")
        values[name] = value.strip()
    timing = _check_timestamp(values[STANDARD_TIMESTAMP_HEADER], now, tolerance_seconds)
    if not timing.ok:
        return timing
    if not keys:
        return Verification(False, "no webhook secret is configured for the storefront")
    timestamp = int(values[STANDARD_TIMESTAMP_HEADER])
    expected = [standard_signature(key, values[STANDARD_ID_HEADER], timestamp, body)
                for key in keys]
    entries = [entry for entry in values[STANDARD_SIGNATURE_HEADER].split(" ")
               if entry.startswith(STANDARD_HMAC_VERSION + ",")]
    matched = False
    for entry in entries:
        if _matches_any(expected, entry):
            matched = True
    if not matched:
        return Verification(False, f"no {STANDARD_HMAC_VERSION} entry of "
                                   f"{STANDARD_SIGNATURE_HEADER} matches a configured secret")
    return VERIFIED
