// Tests of storefront-events.mjs; run with `node --test` in this folder (Node.js 20 or later).
// The intake here is a node:http server on 127.0.0.1 that records each request.

import assert from "node:assert/strict";
import { createServer } from "node:http";
import { after, before, beforeEach, describe, test } from "node:test";

import {
  BROWSER_EVENT_NAMES,
  EVENT_NAMES,
  StorefrontConfigError,
  StorefrontDeliveryError,
  buildEvent,
  decodeSecret,
  readConfig,
  sendEvent,
  signatureFor,
  signedHeaders,
} from "./storefront-events.mjs";

// Computed by the service's own verifier (storesync.signatures.standard_signature in
// Python), not by this module: key, id, timestamp and body in, signature out.
const VECTOR = {
  secret: "whsec_c3RvcmVmcm9udC12ZWN0b3Ita2V5LW5vdC1yZWFsLTAx",
  key: "storefront-vector-key-not-real-01",
  messageId: "msg_vector_1",
  timestamp: 1772560000,
  body: '{"event":"add_to_cart","event_id":"evt_vector_1","product":{"title":"عطر عود"}}',
  signature: "v1,3TjP//nS6vtBV36F6NzmTh4YwKKh4w9SY+pj6NmvI70=",
};
const NOW_MS = VECTOR.timestamp * 1000;

describe("signature", () => {
  test("matches the service's vector", () => {
    const key = decodeSecret(VECTOR.secret);
    assert.equal(key.toString("utf8"), VECTOR.key);
    const body = Buffer.from(VECTOR.body, "utf8");
    assert.equal(signatureFor(key, VECTOR.messageId, VECTOR.timestamp, body), VECTOR.signature);
  });

  test("headers carry id, timestamp and signature", () => {
    const key = decodeSecret(VECTOR.secret);
    const headers = signedHeaders(key, VECTOR.messageId, VECTOR.timestamp, Buffer.from(VECTOR.body));
    assert.equal(headers["webhook-id"], VECTOR.messageId);
    assert.equal(headers["webhook-timestamp"], "1772560000");
    assert.equal(headers["webhook-signature"], VECTOR.signature);
    assert.equal(headers["content-type"], "application/json");
  });

  test("differs for a changed body", () => {
    const key = decodeSecret(VECTOR.secret);
    const tampered = Buffer.from(VECTOR.body.replace("عود", "ورد"), "utf8");
    assert.notEqual(signatureFor(key, VECTOR.messageId, VECTOR.timestamp, tampered), VECTOR.signature);
  });
});

describe("secret", () => {
  const cases = [
    ["no prefix", "c3RvcmVmcm9udC12ZWN0b3Ita2V5LW5vdC1yZWFsLTAx", /does not start with "whsec_"/],
    ["not base64", "whsec_not base64!", /not valid base64/],
    ["too short", `whsec_${Buffer.from("short-key").toString("base64")}`, /decodes to 9 bytes/],
    ["too long", `whsec_${Buffer.alloc(65, 1).toString("base64")}`, /decodes to 65 bytes/],
  ];
  for (const [label, secret, message] of cases) {
    test(`rejected when ${label}`, () => {
      assert.throws(() => decodeSecret(secret), (error) => {
        assert.ok(error instanceof StorefrontConfigError);
        assert.match(error.message, message);
        assert.match(error.message, /STOREFRONT_WEBHOOK_SECRET/);
        assert.ok(!error.message.includes(secret.slice(6)), "the message must not contain the secret");
        return true;
      });
    });
  }
});

describe("config", () => {
  const url = "https://sync.example.sa/webhooks/storefront";

  test("read from the environment", () => {
    const config = readConfig({ STOREFRONT_INTAKE_URL: url, STOREFRONT_WEBHOOK_SECRET: VECTOR.secret });
    assert.equal(config.intakeUrl, url);
    assert.equal(config.key.toString("utf8"), VECTOR.key);
  });

  test("missing variables named", () => {
    assert.throws(() => readConfig({ STOREFRONT_WEBHOOK_SECRET: VECTOR.secret }), /STOREFRONT_INTAKE_URL is not set/);
    assert.throws(() => readConfig({ STOREFRONT_INTAKE_URL: url }), /STOREFRONT_WEBHOOK_SECRET is not set/);
  });

  test("public secret rejected", () => {
    const env = { STOREFRONT_INTAKE_URL: url, NEXT_PUBLIC_STOREFRONT_WEBHOOK_SECRET: VECTOR.secret };
    assert.throws(() => readConfig(env), /NEXT_PUBLIC_STOREFRONT_WEBHOOK_SECRET is set/);
  });

  const badUrls = [
    ["http://sync.example.sa/webhooks/storefront", /must use https/],
    ["ftp://127.0.0.1/webhooks/storefront", /must use https/],
    ["https://sync.example.sa/webhooks/shopify", /must end in \/webhooks\/storefront/],
    ["sync.example.sa", /is not a URL/],
  ];
  for (const [bad, message] of badUrls) {
    test(`intake URL ${bad} rejected`, () => {
      const env = { STOREFRONT_INTAKE_URL: bad, STOREFRONT_WEBHOOK_SECRET: VECTOR.secret };
      assert.throws(() => readConfig(env), message);
    });
  }

  test("plain http allowed on loopback", () => {
    for (const local of ["http://127.0.0.1:8000/webhooks/storefront", "http://[::1]:8000/webhooks/storefront"]) {
      const config = readConfig({ STOREFRONT_INTAKE_URL: local, STOREFRONT_WEBHOOK_SECRET: VECTOR.secret });
      assert.equal(config.intakeUrl, local);
    }
  });
});

describe("buildEvent", () => {
  test("sets id and time", () => {
    const event = buildEvent("add_to_cart", { cart: { token: "cart-1", value: "120.00" } }, {
      eventId: "evt_1",
      occurredAt: new Date(NOW_MS),
    });
    assert.deepEqual(event, {
      event: "add_to_cart",
      event_id: "evt_1",
      occurred_at: "2026-03-03T17:46:40.000Z",
      cart: { token: "cart-1", value: "120.00" },
    });
  });

  test("random ids differ", () => {
    const first = buildEvent("page_view").event_id;
    const second = buildEvent("page_view").event_id;
    assert.match(first, /^evt_[0-9a-f-]{36}$/);
    assert.notEqual(first, second);
  });

  test("unknown name rejected", () => {
    assert.throws(() => buildEvent(/** @type {any} */ ("checkout_completed")), /unknown storefront event "checkout_completed"/);
  });

  test("unknown field rejected", () => {
    assert.throws(() => buildEvent("page_view", /** @type {any} */ ({ custmer: {} })), /unknown event field "custmer"/);
  });

  test("browser events are a subset", () => {
    for (const name of BROWSER_EVENT_NAMES) {
      assert.ok(EVENT_NAMES.includes(name), name);
    }
    assert.ok(!BROWSER_EVENT_NAMES.includes("purchase_completed"));
  });
});

describe("sendEvent", () => {
  /** @type {import("node:http").Server} */
  let server;
  let baseUrl = "";
  /** @type {{headers: import("node:http").IncomingHttpHeaders, body: string}[]} */
  let requests = [];
  /** @type {((request: import("node:http").IncomingMessage, response: import("node:http").ServerResponse) => void)[]} */
  let replies = [];

  before(async () => {
    server = createServer((request, response) => {
      const chunks = [];
      request.on("data", (chunk) => chunks.push(chunk));
      request.on("end", () => {
        requests.push({ headers: request.headers, body: Buffer.concat(chunks).toString("utf8") });
        const reply = replies.shift() ?? stored;
        reply(request, response);
      });
    });
    await new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(undefined)));
    const address = /** @type {import("node:net").AddressInfo} */ (server.address());
    baseUrl = `http://127.0.0.1:${address.port}`;
  });

  after(() => {
    server.closeAllConnections();
    server.close();
  });

  beforeEach(() => {
    requests = [];
    replies = [];
  });

  function stored(request, response) {
    response.writeHead(200, { "content-type": "application/json" });
    response.end(JSON.stringify({ status: "queued", delivery_id: request.headers["webhook-id"] }));
  }

  function status(code, body, headers = {}) {
    return (_request, response) => {
      response.writeHead(code, { "content-type": "application/json", ...headers });
      response.end(JSON.stringify(body));
    };
  }

  function options(extra = {}) {
    const sleeps = [];
    return {
      sleeps,
      config: { intakeUrl: `${baseUrl}/webhooks/storefront`, key: decodeSecret(VECTOR.secret) },
      now: () => NOW_MS,
      random: () => 0,
      sleep: async (ms) => {
        sleeps.push(ms);
      },
      ...extra,
    };
  }

  const event = () => buildEvent("checkout_started", { cart: { token: "cart-7", value: "95.00" } }, {
    eventId: "evt_send_1",
    occurredAt: new Date(NOW_MS),
  });

  test("posts the signed bytes once", async () => {
    const result = await sendEvent(event(), options());
    assert.equal(result.status, 200);
    assert.equal(result.attempts, 1);
    assert.equal(result.messageId, "evt_send_1");
    assert.deepEqual(result.response, { status: "queued", delivery_id: "evt_send_1" });
    assert.equal(requests.length, 1);
    const [request] = requests;
    assert.equal(request.headers["webhook-id"], "evt_send_1");
    assert.equal(request.headers["webhook-timestamp"], String(VECTOR.timestamp));
    const expected = signatureFor(decodeSecret(VECTOR.secret), "evt_send_1", VECTOR.timestamp, Buffer.from(request.body, "utf8"));
    assert.equal(request.headers["webhook-signature"], expected);
    assert.deepEqual(JSON.parse(request.body), event());
  });

  test("retries 503 with the same id", async () => {
    replies = [status(503, { error: "queue_unavailable" })];
    const opts = options();
    const result = await sendEvent(event(), opts);
    assert.equal(result.attempts, 2);
    assert.deepEqual(requests.map((request) => request.headers["webhook-id"]), ["evt_send_1", "evt_send_1"]);
    assert.equal(requests[0].body, requests[1].body);
    assert.deepEqual(opts.sleeps, [500]);
  });

  test("retries a dropped connection", async () => {
    replies = [(request) => request.socket.destroy()];
    const result = await sendEvent(event(), options());
    assert.equal(result.attempts, 2);
    assert.equal(requests.length, 2);
  });

  test("retries a timeout", async () => {
    replies = [(_request, response) => setTimeout(() => stored(_request, response), 400)];
    const result = await sendEvent(event(), options({ timeoutMs: 100 }));
    assert.equal(result.attempts, 2);
  });

  test("honours Retry-After on 429", async () => {
    replies = [status(429, { error: "slow_down" }, { "retry-after": "2" })];
    const opts = options();
    await sendEvent(event(), opts);
    assert.deepEqual(opts.sleeps, [2000]);
  });

  test("backs off exponentially, then fails", async () => {
    replies = [status(502, {}), status(502, {}), status(502, {})];
    const opts = options({ random: () => 0.5 });
    await assert.rejects(sendEvent(event(), opts), (error) => {
      assert.ok(error instanceof StorefrontDeliveryError);
      assert.equal(error.status, 502);
      assert.equal(error.attempts, 3);
      assert.equal(error.retryable, true);
      assert.match(error.message, /not stored after 3 attempts: HTTP 502/);
      return true;
    });
    assert.deepEqual(opts.sleeps, [750, 1250]);
    assert.equal(requests.length, 3);
  });

  test("401 not retried", async () => {
    replies = [status(401, { error: "invalid_signature", reason: "no v1 entry of webhook-signature matches a configured secret" })];
    const opts = options();
    await assert.rejects(sendEvent(event(), opts), (error) => {
      assert.ok(error instanceof StorefrontDeliveryError);
      assert.equal(error.status, 401);
      assert.equal(error.attempts, 1);
      assert.equal(error.retryable, false);
      assert.match(error.message, /no v1 entry of webhook-signature matches/);
      assert.match(error.message, /check that STOREFRONT_WEBHOOK_SECRET is one of/);
      return true;
    });
    assert.equal(requests.length, 1);
    assert.deepEqual(opts.sleeps, []);
  });

  test("redirect not followed", async () => {
    replies = [status(308, {}, { location: `${baseUrl}/elsewhere` })];
    await assert.rejects(sendEvent(event(), options()), /redirects, so set it to the final address/);
    assert.equal(requests.length, 1);
  });

  test("config read from the environment by default", async () => {
    const saved = { ...process.env };
    process.env.STOREFRONT_INTAKE_URL = `${baseUrl}/webhooks/storefront`;
    process.env.STOREFRONT_WEBHOOK_SECRET = VECTOR.secret;
    try {
      const { config: _unused, ...rest } = options();
      const result = await sendEvent(event(), rest);
      assert.equal(result.status, 200);
    } finally {
      process.env = saved;
    }
  });
});
