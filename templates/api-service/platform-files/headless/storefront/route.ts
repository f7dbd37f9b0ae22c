// Example Next.js App Router route handler: copy to app/api/storefront-events/route.ts.
// The browser posts {event, cart?, product?, attribution?} here; this handler adds the
// signed-in customer, signs the event on the server and posts it to the intake.
// The import path assumes storefront-events.mjs is in lib/storefront/ and the "@/"
// alias of create-next-app; adjust both to your app.

import {
  BROWSER_EVENT_NAMES,
  StorefrontDeliveryError,
  buildEvent,
  sendEvent,
  type Attribution,
  type Cart,
  type Customer,
  type EventName,
  type Product,
} from "@/lib/storefront/storefront-events.mjs";

// node:crypto is not available in the Edge runtime.
export const runtime = "nodejs";

// Browser input is untrusted: only these string fields are copied, each cut to this length.
const MAX_FIELD_LENGTH = 500;
const CART_KEYS = ["token", "value", "currency", "url"] as const;
const PRODUCT_KEYS = ["id", "sku", "title", "price", "category"] as const;
const ATTRIBUTION_KEYS = [
  "utm_source",
  "utm_medium",
  "utm_campaign",
  "utm_term",
  "referrer",
  "landing_page",
] as const;

export async function POST(request: Request): Promise<Response> {
  let payload: unknown;
  try {
    payload = await request.json();
  } catch {
    return Response.json({ error: "invalid_json" }, { status: 400 });
  }
  if (!isRecord(payload) || !BROWSER_EVENT_NAMES.includes(String(payload.event))) {
    return Response.json(
      { error: "unknown_event", allowed: BROWSER_EVENT_NAMES },
      { status: 400 },
    );
  }

  const event = buildEvent(payload.event as EventName, {
    customer: await customerFromSession(request),
    cart: pickStrings(payload.cart, CART_KEYS) as Cart | undefined,
    product: pickStrings(payload.product, PRODUCT_KEYS) as Product | undefined,
    attribution: pickStrings(payload.attribution, ATTRIBUTION_KEYS) as Attribution | undefined,
  });
  try {
    await sendEvent(event);
  } catch (error) {
    if (error instanceof StorefrontDeliveryError) {
      // The message names the event id and the intake's reason, never the secret or
      // the customer's details.
      console.error(error.message);
      return Response.json({ error: "not_recorded" }, { status: 502 });
    }
    throw error;
  }
  return new Response(null, { status: 204 });
}

// Replace with your session lookup (NextAuth, a cookie your API checks, ...). Return
// undefined for guests: the event is then stored without a contact.
async function customerFromSession(_request: Request): Promise<Customer | undefined> {
  return undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function pickStrings(
  value: unknown,
  keys: readonly string[],
): Record<string, string> | undefined {
  if (!isRecord(value)) return undefined;
  const picked: Record<string, string> = {};
  for (const key of keys) {
    const field = value[key];
    if (typeof field === "string" && field !== "") {
      picked[key] = field.slice(0, MAX_FIELD_LENGTH);
    }
  }
  return Object.keys(picked).length > 0 ? picked : undefined;
}
