"""The JavaScript that checks a store webhook's signature in the build sheets and in n8n.

Each signing scheme has one check, written once as the JavaScript function
``signatureProblem``: it recomputes the sender's HMAC over the raw request body with
the webhook secret and compares it with the signature header in constant time. Two
wrappers run it where each platform runs code:

- Code by Zapier, right after Catch Raw Hook, which gives the body unparsed and the
  request headers (Zapier's help on Webhooks by Zapier). The step stops the Zap with an
  error when the signature does not match, and returns the parsed body.
- Tray's Script connector, whose script starts with ``exports.step = function(input)``
  and reads its input variables as ``input.NAME`` (Tray's Script connector page). The
  step returns ``valid`` and the parsed ``body``, so a Boolean Condition can respond to
  the store with 401 and end the run.
- n8n's Code node after the Webhook node of a headless storefront's events
  (:data:`N8N_STANDARD_WEBHOOKS_CHECK`). The Webhook node's ``rawBody`` option in
  n8n-nodes-base 2.8.4 keeps the body as the binary property that
  ``binaryPropertyName`` names (``data`` by default), which the node reads unchanged.

NOTE: the code assumes that the raw body is the exact text the store sent, decoded as
UTF-8, and that the platform's JavaScript runs on Node.js with its ``crypto`` module.
Neither platform's help states both, so the sheets tell the user to send one test
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

    # The request headers the check reads, each with the input variable name it gets.
    headers: tuple[tuple[str, str], ...]
    secret: Bilingual
    # The code of the Code by Zapier step and of the Tray Script step.
    code: str
    tray_code: str


# Each check defines signatureProblem(fields): it returns null when the signature
# matches, or the reason it does not, and throws when the step is set up wrongly.
# @INPUT@ and @INPUT_IN_SENTENCE@ are what the platform calls the step's input
# variables, at the start of a sentence and inside one.
_BODY_HMAC_CHECK = """\
// Check the store's signature: base64(HMAC-SHA256(webhook secret, raw body)).
const crypto = require('crypto');
function signatureProblem(fields) {
  if (!fields.secret) {
    throw new Error('@INPUT@ "secret" is empty: paste the webhook secret into it.');
  }
  if (!fields.raw_body) {
    throw new Error('@INPUT@ "raw_body" is empty: map the raw request body into it.');
  }
  const expected = Buffer.from(crypto.createHmac('sha256', fields.secret)
    .update(fields.raw_body, 'utf8').digest('base64'));
  const received = Buffer.from((fields.signature || '').trim());
  if (received.length !== expected.length || !crypto.timingSafeEqual(received, expected)) {
    return 'Invalid webhook signature: the event was not processed. ' +
      'Check that @INPUT_IN_SENTENCE@ "secret" is the secret the store signs with.';
  }
  return null;
}
"""

_STANDARD_WEBHOOKS_CHECK = """\
// Check a Standard Webhooks v1 signature over "{webhook-id}.{webhook-timestamp}.{body}".
const crypto = require('crypto');
const TOLERANCE_SECONDS = @TOLERANCE@;
function signatureProblem(fields) {
  const secret = fields.secret || '';
  if (!secret.startsWith('whsec_')) {
    throw new Error('@INPUT@ "secret" must be the storefront secret that starts with whsec_.');
  }
  if (!fields.raw_body) {
    throw new Error('@INPUT@ "raw_body" is empty: map the raw request body into it.');
  }
  const timestamp = Number(fields.webhook_timestamp);
  if (!Number.isInteger(timestamp) ||
      Math.abs(Date.now() / 1000 - timestamp) > TOLERANCE_SECONDS) {
    return 'Invalid webhook-timestamp: missing, or more than ' + TOLERANCE_SECONDS +
      ' seconds from now; the event was not processed.';
  }
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  const signed = fields.webhook_id + '.' + fields.webhook_timestamp + '.' + fields.raw_body;
  const expected = Buffer.from(
    'v1,' + crypto.createHmac('sha256', key).update(signed, 'utf8').digest('base64'));
  const matched = (fields.signature || '').split(' ').some((entry) => {
    const received = Buffer.from(entry.trim());
    return received.length === expected.length && crypto.timingSafeEqual(received, expected);
  });
  return matched ? null
    : 'Invalid webhook signature: no v1 entry matches; the event was not processed.';
}
""".replace("@TOLERANCE@", str(TIMESTAMP_TOLERANCE_SECONDS))

# Code by Zapier runs the code as the body of an async function with inputData.
_ZAPIER_RUN = """\
const problem = signatureProblem(inputData);
if (problem !== null) {
  throw new Error(problem);
}
return JSON.parse(inputData.raw_body);
"""

# Tray's script must start with exports.step, so the check goes inside it.
_TRAY_START = "exports.step = function(input) {\n"
_TRAY_RUN = """\
const problem = signatureProblem(input);
if (problem !== null) {
  return { valid: false, reason: problem };
}
return { valid: true, body: JSON.parse(input.raw_body) };
"""


def _zapier_code(check: str) -> str:
    return (check.replace("@INPUT_IN_SENTENCE@", "Input Data")
            .replace("@INPUT@", "Input Data") + _ZAPIER_RUN)


def _tray_code(check: str) -> str:
    body = (check.replace("@INPUT_IN_SENTENCE@", "the input variable")
            .replace("@INPUT@", "Input variable") + _TRAY_RUN)
    indented = "".join(f"  {line}" if line.strip() else line
                       for line in body.splitlines(keepends=True))
    return _TRAY_START + indented + "};\n"


def _check(headers: tuple[tuple[str, str], ...], secret: Bilingual, code: str) -> SignatureCheck:
    return SignatureCheck(headers=headers, secret=secret, code=_zapier_code(code),
                          tray_code=_tray_code(code))


CHECKS: dict[str, SignatureCheck] = {
    "shopify": _check(
        (("X-Shopify-Hmac-Sha256", "signature"),),
        Bilingual(
            "the key that signs the store's webhooks: the app's client secret, or for a "
            "subscription made in the Shopify admin the key shown under Settings, "
            "Notifications, Webhooks",
            "المفتاح الذي يوقّع Webhooks المتجر: السر client secret للتطبيق، أو للاشتراك "
            "المنشأ من لوحة إدارة Shopify المفتاحُ الظاهر في `Settings` ثم `Notifications` ثم "
            "`Webhooks`"),
        _BODY_HMAC_CHECK),
    "woocommerce": _check(
        (("X-WC-Webhook-Signature", "signature"),),
        Bilingual("the Secret field of the WooCommerce webhook",
                  "الحقل `Secret` في Webhook متجر WooCommerce"),
        _BODY_HMAC_CHECK),
    "headless": _check(
        (("webhook-id", "webhook_id"), ("webhook-timestamp", "webhook_timestamp"),
         ("webhook-signature", "signature")),
        Bilingual("the storefront's `whsec_` signing secret",
                  "سر التوقيع `whsec_` لدى واجهة المتجر"),
        _STANDARD_WEBHOOKS_CHECK),
}


# The start of the n8n Code node that reads a headless storefront's deliveries. It keeps
# in ``accepted`` the index of each item whose Standard Webhooks signature matches, and
# drops the others before any later node runs on them.
N8N_STANDARD_WEBHOOKS_CHECK = (
    "// This node needs NODE_FUNCTION_ALLOW_BUILTIN=crypto and RABT_STOREFRONT_WEBHOOK_SECRET.\n"
    + _STANDARD_WEBHOOKS_CHECK.replace("@INPUT_IN_SENTENCE@", "the n8n value")
    .replace("@INPUT@", "The n8n value") + """\
const storefrontSecret = $env.RABT_STOREFRONT_WEBHOOK_SECRET || '';
if (!storefrontSecret.startsWith('whsec_')) {
  throw new Error('RABT_STOREFRONT_WEBHOOK_SECRET must be set in n8n to the storefront ' +
    'secret that starts with whsec_.');
}
const accepted = [];
for (const [index, item] of $input.all().entries()) {
  const headers = item.json.headers || {};
  let rawBody = '';
  try {
    rawBody = (await this.helpers.getBinaryDataBuffer(index, 'data')).toString('utf8');
  } catch (error) {
    throw new Error('The Webhook node kept no raw body: switch on its Raw Body option.');
  }
  const problem = rawBody ? signatureProblem({
    secret: storefrontSecret, raw_body: rawBody,
    webhook_id: String(headers['webhook-id'] || ''),
    webhook_timestamp: String(headers['webhook-timestamp'] || ''),
    signature: String(headers['webhook-signature'] || '') }) : 'empty body';
  if (problem === null) {
    accepted.push(index);
  }
}
""")


# The code of the step after a Catch Raw Hook whose sender's signature is not checked.
# It sits in a Markdown table cell, so it uses no "|".
PARSE_ONLY_CODE = "return JSON.parse(inputData.raw_body ? inputData.raw_body : '{}');\n"


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
