// @ts-check
/**
 * Storefront events for the storesync intake, signed with Standard Webhooks v1.
 *
 * The intake verifies POST /webhooks/storefront with three headers: `webhook-id`,
 * `webhook-timestamp` (Unix seconds) and `webhook-signature`, which carries
 * `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` keyed with the bytes of a
 * `whsec_<base64>` secret. It rejects a timestamp more than
 * STOREFRONT_TIMESTAMP_TOLERANCE_SECONDS (300 by default) away from its clock, and it
 * drops a second delivery with the same `webhook-id`, so retries here keep the id.
 *
 * This module runs on the server only (a Next.js route handler, a server action or
 * any Node.js 20+ code). The secret is read from the server's environment and must
 * never reach the browser. It uses node:crypto and the global fetch, nothing else.
 */

import { createHmac, randomUUID } from "node:crypto";

/** Environment variable with the full intake URL, ending in /webhooks/storefront. */
export const INTAKE_URL_VARIABLE = "STOREFRONT_INTAKE_URL";
/** Environment variable with the signing secret, one of the service's STOREFRONT_WEBHOOK_SECRETS. */
export const SECRET_VARIABLE = "STOREFRONT_WEBHOOK_SECRET";

export const SECRET_PREFIX = "whsec_";
// Standard Webhooks v1.0.0 symmetric secrets are 24 to 64 bytes, and the service checks the same range.
export const SECRET_MIN_BYTES = 24;
export const SECRET_MAX_BYTES = 64;
const SIGNATURE_VERSION = "v1";

/** Event names the intake maps for the storefront, as the `event` field of the body. */
export const EVENT_NAMES = Object.freeze([
  "page_view",
  "add_to_cart",
  "checkout_started",
  "purchase_completed",
  "order_updated",
  "return_requested",
  "customer_updated",
]);
/**
 * Events a browser may report through the example route. Orders, returns and customer
 * changes must come from the store's own server code, because anyone can call a route.
 */
export const BROWSER_EVENT_NAMES = Object.freeze(["page_view", "add_to_cart", "checkout_started"]);
/** Top-level fields of the storefront event contract, beside event, event_id and occurred_at. */
export const EVENT_FIELDS = Object.freeze(["customer", "consent", "attribution", "cart", "order", "product"]);

export const DEFAULT_TIMEOUT_MS = 5000;
export const DEFAULT_MAX_ATTEMPTS = 3;
export const DEFAULT_RETRY_DELAY_MS = 500;
// A Retry-After longer than this is cut, because the caller is waiting on a page request.
export const MAX_RETRY_AFTER_MS = 10000;

const LOOPBACK_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]"]);
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * @typedef {"page_view" | "add_to_cart" | "checkout_started" | "purchase_completed"
 *   | "order_updated" | "return_requested" | "customer_updated"} EventName
 *
 * @typedef {object} Customer
 * @property {string} [id] The store's customer id.
 * @property {string} [email]
 * @property {string} [phone] Any Saudi form; the service writes E.164.
 * @property {string} [first_name]
 * @property {string} [last_name]
 * @property {string} [city]
 *
 * @typedef {object} ConsentEntry
 * @property {"granted" | "denied" | "unknown"} state
 * @property {string} [source] Where the customer gave or withdrew consent, such as checkout.
 * @property {string} [captured_at] ISO 8601 time with offset.
 * @property {string} [wording_version] Version of the consent text the customer saw.
 *
 * @typedef {object} Consent
 * @property {ConsentEntry} [email]
 * @property {ConsentEntry} [sms]
 * @property {ConsentEntry} [whatsapp]
 *
 * @typedef {object} Attribution
 * @property {string} [utm_source]
 * @property {string} [utm_medium]
 * @property {string} [utm_campaign]
 * @property {string} [utm_term]
 * @property {string} [referrer]
 * @property {string} [landing_page]
 *
 * @typedef {object} Cart
 * @property {string} [token] Stays the same from add to cart to purchase.
 * @property {string} [value] Decimal text in SAR, such as "225.00".
 * @property {string} [currency]
 * @property {string | null} [url] Link that restores the cart, for abandoned checkout messages.
 *
 * @typedef {object} Product
 * @property {string} [id]
 * @property {string} [sku]
 * @property {string} [title]
 * @property {string} [price]
 * @property {string} [category]
 * @property {string} [description]
 *
 * @typedef {object} LineItem
 * @property {string} id Unique across the store.
 * @property {string | null} [sku]
 * @property {string} [variant_id]
 * @property {string} [title] Includes the variant title, such as "عطر عود - 50 مل".
 * @property {number} [quantity]
 * @property {string} [unit_price]
 *
 * @typedef {object} Order
 * @property {string} id
 * @property {string} [number]
 * @property {string} [status]
 * @property {string} total Decimal text, such as "225.00".
 * @property {string} [currency]
 * @property {string} [created_at]
 * @property {string[]} [discount_codes]
 * @property {{amount: string}[]} [refunds]
 * @property {LineItem[]} [line_items]
 *
 * @typedef {object} EventFields
 * @property {Customer} [customer]
 * @property {Consent} [consent]
 * @property {Attribution} [attribution]
 * @property {Cart} [cart]
 * @property {Order} [order]
 * @property {Product} [product]
 *
 * @typedef {EventFields & {event: EventName, event_id: string, occurred_at: string}} StorefrontEvent
 *
 * @typedef {object} BuildOptions
 * @property {string} [eventId] Defaults to evt_ and a random UUID.
 * @property {Date} [occurredAt] Defaults to now.
 *
 * @typedef {object} IntakeConfig
 * @property {string} intakeUrl
 * @property {Buffer} key The HMAC key decoded from the whsec_ secret.
 *
 * @typedef {object} SendOptions
 * @property {IntakeConfig} [config] Defaults to readConfig(process.env).
 * @property {string} [messageId] The webhook-id; defaults to the event's event_id.
 * @property {number} [timeoutMs] Per attempt, including reading the response.
 * @property {number} [maxAttempts] Attempts in total, the first included.
 * @property {number} [retryDelayMs] Wait before the second attempt; doubles after each one.
 * @property {typeof fetch} [fetch]
 * @property {() => number} [now] Milliseconds since the Unix epoch.
 * @property {(ms: number) => Promise<void>} [sleep]
 * @property {() => number} [random] A number in [0, 1) for the retry jitter.
 *
 * @typedef {object} SendResult
 * @property {number} status The intake's HTTP status, 200 when stored.
 * @property {string} messageId
 * @property {number} attempts
 * @property {unknown} response The intake's JSON reply, such as {status: "queued", delivery_id}.
 */

/** A missing or invalid setting. The message names the variable and never contains the secret. */
export class StorefrontConfigError extends Error {
  name = "StorefrontConfigError";
}

/** A failed delivery: the intake did not store the event. `status` is null when no HTTP response came back. */
export class StorefrontDeliveryError extends Error {
  name = "StorefrontDeliveryError";

  /**
   * @param {string} message
   * @param {{status: number | null, attempts: number, messageId: string, retryable: boolean}} details
   */
  constructor(message, details) {
    super(message);
    this.status = details.status;
    this.attempts = details.attempts;
    this.messageId = details.messageId;
    this.retryable = details.retryable;
  }
}

/**
 * Decode a `whsec_<base64>` secret into its HMAC key.
 *
 * @param {string} secret
 * @returns {Buffer}
 * @throws {StorefrontConfigError} The prefix is missing, the rest is not base64, or the
 *   key is not 24 to 64 bytes.
 */
export function decodeSecret(secret) {
  if (!secret.startsWith(SECRET_PREFIX)) {
    throw new StorefrontConfigError(
      `${SECRET_VARIABLE} does not start with "${SECRET_PREFIX}"; copy the whole value, prefix included, ` +
        "from the service's STOREFRONT_WEBHOOK_SECRETS",
    );
  }
  const encoded = secret.slice(SECRET_PREFIX.length);
  // Buffer.from skips characters that are not base64, so check the text first.
  if (!BASE64.test(encoded)) {
    throw new StorefrontConfigError(`${SECRET_VARIABLE}: the part after "${SECRET_PREFIX}" is not valid base64`);
  }
  const key = Buffer.from(encoded, "base64");
  if (key.length < SECRET_MIN_BYTES || key.length > SECRET_MAX_BYTES) {
    throw new StorefrontConfigError(
      `${SECRET_VARIABLE} decodes to ${key.length} bytes; Standard Webhooks secrets are ` +
        `${SECRET_MIN_BYTES} to ${SECRET_MAX_BYTES} bytes; create one as storefront/README.md shows`,
    );
  }
  return key;
}

/**
 * Check an intake URL: http(s), and https unless it points at this machine.
 *
 * @param {string} text
 * @returns {string} The URL as given.
 */
export function checkIntakeUrl(text) {
  let url;
  try {
    url = new URL(text);
  } catch {
    throw new StorefrontConfigError(
      `${INTAKE_URL_VARIABLE} is not a URL: ${JSON.stringify(text)}; ` +
        "set it to the intake's address, such as https://sync.example.sa/webhooks/storefront",
    );
  }
  const loopback = LOOPBACK_HOSTS.has(url.hostname);
  // Events carry names, emails and phones, so they travel over TLS except on this machine.
  if (url.protocol !== "https:" && !(url.protocol === "http:" && loopback)) {
    throw new StorefrontConfigError(
      `${INTAKE_URL_VARIABLE} must use https (http only for localhost): ${JSON.stringify(text)}`,
    );
  }
  if (!url.pathname.endsWith("/webhooks/storefront")) {
    throw new StorefrontConfigError(
      `${INTAKE_URL_VARIABLE} must end in /webhooks/storefront, the intake's storefront endpoint: ` +
        JSON.stringify(text),
    );
  }
  return text;
}

/**
 * Read the intake URL and the secret from server-side environment variables.
 *
 * @param {Record<string, string | undefined>} [env] Defaults to process.env.
 * @returns {IntakeConfig}
 */
export function readConfig(env = process.env) {
  // Next.js inlines NEXT_PUBLIC_ variables into the browser bundle.
  if (env[`NEXT_PUBLIC_${SECRET_VARIABLE}`] !== undefined) {
    throw new StorefrontConfigError(
      `NEXT_PUBLIC_${SECRET_VARIABLE} is set, so Next.js would send the secret to every browser; ` +
        `remove it, rotate the secret and set ${SECRET_VARIABLE} without the prefix`,
    );
  }
  const intakeUrl = env[INTAKE_URL_VARIABLE];
  const secret = env[SECRET_VARIABLE];
  for (const [name, value] of [[INTAKE_URL_VARIABLE, intakeUrl], [SECRET_VARIABLE, secret]]) {
    if (!value) {
      throw new StorefrontConfigError(
        `${name} is not set; set it in the server's environment (see storefront/README.md)`,
      );
    }
  }
  return { intakeUrl: checkIntakeUrl(String(intakeUrl)), key: decodeSecret(String(secret)) };
}

/**
 * Build a storefront event body with its id and time.
 *
 * @param {EventName} name
 * @param {EventFields} [fields]
 * @param {BuildOptions} [options]
 * @returns {StorefrontEvent}
 */
export function buildEvent(name, fields = {}, options = {}) {
  if (!EVENT_NAMES.includes(name)) {
    throw new TypeError(
      `unknown storefront event ${JSON.stringify(name)}; the intake maps ${EVENT_NAMES.join(", ")}`,
    );
  }
  for (const key of Object.keys(fields)) {
    if (!EVENT_FIELDS.includes(key)) {
      throw new TypeError(
        `unknown event field ${JSON.stringify(key)}; the contract has ${EVENT_FIELDS.join(", ")}`,
      );
    }
  }
  return {
    event: name,
    event_id: options.eventId ?? `evt_${randomUUID()}`,
    occurred_at: (options.occurredAt ?? new Date()).toISOString(),
    ...fields,
  };
}

/**
 * Return one `v1,<base64>` entry of the `webhook-signature` header.
 *
 * @param {Buffer} key
 * @param {string} messageId
 * @param {number} timestamp Unix seconds.
 * @param {Uint8Array} body The exact bytes that are posted.
 */
export function signatureFor(key, messageId, timestamp, body) {
  const digest = createHmac("sha256", key)
    .update(`${messageId}.${timestamp}.`, "utf8")
    .update(body)
    .digest("base64");
  return `${SIGNATURE_VERSION},${digest}`;
}

/**
 * Return the request headers of one signed delivery.
 *
 * @param {Buffer} key
 * @param {string} messageId
 * @param {number} timestamp Unix seconds.
 * @param {Uint8Array} body
 * @returns {Record<string, string>}
 */
export function signedHeaders(key, messageId, timestamp, body) {
  return {
    "content-type": "application/json",
    "webhook-id": messageId,
    "webhook-timestamp": String(timestamp),
    "webhook-signature": signatureFor(key, messageId, timestamp, body),
  };
}

/**
 * Sign an event and post it to the intake, retrying network errors, timeouts, 429
 * and 5xx with the same webhook-id, so the intake stores it once.
 *
 * @param {StorefrontEvent} event
 * @param {SendOptions} [options]
 * @returns {Promise<SendResult>}
 * @throws {StorefrontDeliveryError} Every attempt failed, or the intake rejected the
 *   event with a status that a retry cannot change (401, 404, 413, a redirect).
 */
export async function sendEvent(event, options = {}) {
  const config = options.config ?? readConfig();
  const messageId = options.messageId ?? event.event_id;
  const maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  const random = options.random ?? Math.random;
  const baseDelay = options.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS;
  // The same text on every attempt. JSON.stringify escapes lone surrogates, so the text
  // has exactly one UTF-8 form: the bytes signed are the bytes fetch sends.
  const body = JSON.stringify(event);

  for (let attempt = 1; ; attempt += 1) {
    const outcome = await postOnce(config, messageId, body, Math.floor(now() / 1000), options);
    if (outcome.ok) {
      return { status: outcome.status, messageId, attempts: attempt, response: outcome.response };
    }
    if (!outcome.retryable || attempt >= maxAttempts) {
      const tries = attempt === 1 ? "1 attempt" : `${attempt} attempts`;
      throw new StorefrontDeliveryError(`storefront event ${messageId} not stored after ${tries}: ${outcome.reason}`, {
        status: outcome.status,
        attempts: attempt,
        messageId,
        retryable: outcome.retryable,
      });
    }
    // Exponential backoff with up to one base delay of jitter, unless the intake named a wait.
    const backoff = baseDelay * 2 ** (attempt - 1) + Math.floor(random() * baseDelay);
    await sleep(outcome.retryAfterMs ?? backoff);
  }
}

/**
 * @typedef {{ok: true, status: number, response: unknown}
 *   | {ok: false, status: number | null, retryable: boolean, reason: string, retryAfterMs?: number}} Outcome
 */

/**
 * Make one signed POST and classify the result.
 *
 * @param {IntakeConfig} config
 * @param {string} messageId
 * @param {string} body JSON text, sent as UTF-8.
 * @param {number} timestamp
 * @param {SendOptions} options
 * @returns {Promise<Outcome>}
 */
async function postOnce(config, messageId, body, timestamp, options) {
  const fetcher = options.fetch ?? fetch;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  let status = 0;
  let text = "";
  /** @type {string | null} */
  let retryAfter = null;

  try {
    const response = await fetcher(config.intakeUrl, {
      method: "POST",
      headers: signedHeaders(config.key, messageId, timestamp, Buffer.from(body, "utf8")),
      body,
      // A redirect would turn the POST into a GET without the body.
      redirect: "manual",
      signal: AbortSignal.timeout(timeoutMs),
    });
    status = response.status;
    retryAfter = response.headers.get("retry-after");
    text = await response.text();
  } catch (error) {
    // Network errors and timeouts, also while the reply is read: the intake may have
    // stored the event, and the retry's same webhook-id makes that harmless.
    const timedOut = error instanceof Error && error.name === "TimeoutError";
    const reason = timedOut ? `timed out after ${timeoutMs} ms` : `request failed: ${describe(error)}`;
    return { ok: false, status: status || null, retryable: true, reason };
  }

  const response = parseJson(text);
  if (status >= 200 && status < 300) {
    return { ok: true, status, response };
  }

  const detail = intakeReason(response) ?? `HTTP ${status}`;
  if (status === 429 || status >= 500) {
    return { ok: false, status, retryable: true, reason: detail, retryAfterMs: retryAfterMs(retryAfter) };
  }
  // Other 4xx and 3xx replies would repeat on a retry, so they fail at once with a fix.
  return { ok: false, status, retryable: false, reason: `${detail}${fixFor(status)}` };
}

/** @param {number} status */
function fixFor(status) {
  if (status === 401) {
    return `; check that ${SECRET_VARIABLE} is one of the service's STOREFRONT_WEBHOOK_SECRETS and that this server's clock is right`;
  }
  if (status === 404) {
    return `; check ${INTAKE_URL_VARIABLE} and that the service accepts storefront events`;
  }
  if (status >= 300 && status < 400) {
    return `; ${INTAKE_URL_VARIABLE} redirects, so set it to the final address`;
  }
  return "";
}

/** @param {unknown} error */
function describe(error) {
  if (error instanceof Error) {
    // fetch reports "fetch failed" and puts the socket error in `cause`.
    const cause = /** @type {{cause?: unknown}} */ (error).cause;
    return cause instanceof Error ? `${error.message} (${cause.message})` : error.message;
  }
  return String(error);
}

/** @param {string} text */
function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** @param {unknown} response */
function intakeReason(response) {
  if (response && typeof response === "object") {
    const { reason, message, error } = /** @type {Record<string, unknown>} */ (response);
    for (const value of [reason, message, error]) {
      if (typeof value === "string") return value;
    }
  }
  return null;
}

/**
 * Read a Retry-After header given in seconds; an HTTP date or a bad value is ignored.
 *
 * @param {string | null | undefined} value
 */
function retryAfterMs(value) {
  if (!value || !/^\d+$/.test(value.trim())) return undefined;
  return Math.min(Number(value.trim()) * 1000, MAX_RETRY_AFTER_MS);
}
