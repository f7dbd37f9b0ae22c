"""The Code by Zapier step that checks a store webhook's signature and parses its body.

Catch Raw Hook gives the request body unparsed and includes the request headers
(Zapier's help on Webhooks by Zapier). The step after it recomputes the store's
HMAC over that raw body with the webhook secret and stops the Zap with an error when
the signature does not match. It returns the parsed JSON, so later steps map the
body's fields from this step's output.

NOTE: the code assumes that Raw Body is the exact text the store sent, decoded as
UTF-8, and that Code by Zapier's JavaScript runs on Node.js with its ``crypto``
module. Neither is stated in Zapier's help: the sheet tells the user to send one test
event with a good and one with a wrong secret before go-live.
"""

from __future__ import annotations

from dataclasses import dataclass

from generator.model import Bilingual

# How far a Standard Webhooks timestamp may be from now, either way, as in the API
# path's default (STOREFRONT_TIMESTAMP_TOLERANCE_SECONDS).
TIMESTAMP_TOLERANCE_SECONDS = 300


@dataclass(frozen=True)
class SignatureCheck:
    """The signing scheme of one platform's webhooks, and the code that checks it."""

    # The request headers the check reads, each with the Input Data name it gets.
    headers: tuple[tuple[str, str], ...]
    secret: Bilingual
    code: str


_BODY_HMAC_CODE = """\
// Check the store's signature: base64(HMAC-SHA256(webhook secret, raw body)).
const crypto = require('crypto');
const body = inputData.raw_body || '';
if (!inputData.secret) {
  throw new Error('Input Data "secret" is empty: paste the webhook secret into it.');
}
const expected = Buffer.from(
  crypto.createHmac('sha256', inputData.secret).update(body, 'utf8').digest('base64'));
const received = Buffer.from((inputData.signature || '').trim());
if (received.length !== expected.length || !crypto.timingSafeEqual(received, expected)) {
  throw new Error('Invalid webhook signature: the event was not processed. ' +
                  'Check that Input Data "secret" is the secret the store signs with.');
}
return JSON.parse(body);
"""

_STANDARD_WEBHOOKS_CODE = """\
// Check a Standard Webhooks v1 signature over "{webhook-id}.{webhook-timestamp}.{body}".
const crypto = require('crypto');
const TOLERANCE_SECONDS = @TOLERANCE@;
const body = inputData.raw_body || '';
const secret = inputData.secret || '';
if (!secret.startsWith('whsec_')) {
  throw new Error('Input Data "secret" must be the storefront secret that starts with whsec_.');
}
const timestamp = Number(inputData.webhook_timestamp);
if (!Number.isInteger(timestamp) ||
    Math.abs(Date.now() / 1000 - timestamp) > TOLERANCE_SECONDS) {
  throw new Error('Invalid webhook-timestamp: missing, or more than ' + TOLERANCE_SECONDS +
                  ' seconds from now; the event was not processed.');
}
const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
const signed = inputData.webhook_id + '.' + inputData.webhook_timestamp + '.' + body;
const expected = Buffer.from(
  'v1,' + crypto.createHmac('sha256', key).update(signed, 'utf8').digest('base64'));
const matched = (inputData.signature || '').split(' ').some((entry) => {
  const received = Buffer.from(entry.trim());
  return received.length === expected.length && crypto.timingSafeEqual(received, expected);
});
if (!matched) {
  throw new Error('Invalid webhook signature: no v1 entry matches; the event was not processed.');
}
return JSON.parse(body);
""".replace("@TOLERANCE@", str(TIMESTAMP_TOLERANCE_SECONDS))

CHECKS: dict[str, SignatureCheck] = {
    "shopify": SignatureCheck(
        headers=(("X-Shopify-Hmac-Sha256", "signature"),),
        secret=Bilingual(
            "the key that signs the store's webhooks: the app's client secret, or for a "
            "subscription made in the Shopify admin the key shown under Settings, "
            "Notifications, Webhooks",
            "المفتاح الذي يوقّع Webhooks المتجر: السر client secret للتطبيق، أو للاشتراك "
            "المنشأ من لوحة إدارة Shopify المفتاحُ الظاهر في `Settings` ثم `Notifications` ثم "
            "`Webhooks`"),
        code=_BODY_HMAC_CODE),
    "woocommerce": SignatureCheck(
        headers=(("X-WC-Webhook-Signature", "signature"),),
        secret=Bilingual("the Secret field of the WooCommerce webhook",
                         "الحقل `Secret` في Webhook متجر WooCommerce"),
        code=_BODY_HMAC_CODE),
    "headless": SignatureCheck(
        headers=(("webhook-id", "webhook_id"), ("webhook-timestamp", "webhook_timestamp"),
                 ("webhook-signature", "signature")),
        secret=Bilingual("the storefront's `whsec_` signing secret",
                         "سر التوقيع `whsec_` لدى واجهة المتجر"),
        code=_STANDARD_WEBHOOKS_CODE),
}


# The code of the step after a Catch Raw Hook whose sender's signature is not checked.
PARSE_ONLY_CODE = "return JSON.parse(inputData.raw_body || '{}');\n"


def signature_check(source: str, platform: str) -> SignatureCheck | None:
    """Return the signature check of a webhook from ``source``, or None when none applies.

    The store platforms sign their webhooks. Storefront events are signed with
    Standard Webhooks only on a headless store, whose server sends them. On Shopify
    and WooCommerce they come from the shopper's browser, which cannot keep a secret,
    and a support inbox signs in its own way.
    """
    if source in ("shopify", "woocommerce"):
        return CHECKS[source]
    if source == "storefront" and platform == "headless":
        return CHECKS["headless"]
    return None
