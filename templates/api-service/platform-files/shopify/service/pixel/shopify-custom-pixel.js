// Shopify custom pixel: sends four Web Pixels standard events to this project's service.
//
// Paste this code into the Shopify admin under Settings > Customer events > Add custom
// pixel. Replace <your-service-host> below with the service's public HTTPS address first.
// Shopify runs custom pixels in a sandbox and provides the `analytics` object there, so
// this file has no imports and runs only inside Shopify.
//
// Consent: the pixel does not read consent itself; choose the customer privacy permission
// it needs when you add it in the admin. NOTE: Shopify's Web Pixels docs say the pixel
// manager loads an app pixel only with the visitor's permission for every setting it
// requires, and that custom pixels set theirs in the admin. That a custom pixel is held
// back the same way was not checked on a live store.

const PIXEL_ENDPOINT = "https://<your-service-host>/pixel/shopify";

// The events the service maps; it responds to other names with 202 "ignored".
const PIXEL_EVENT_NAMES = [
  "page_viewed",
  "product_added_to_cart",
  "checkout_started",
  "checkout_completed",
];

// The service responds with 413 to bodies over PIXEL_MAX_BODY_BYTES (16384 by default).
// Raise both values together.
const PIXEL_MAX_BODY_BYTES = 16384;

function sendPixelEvent(event) {
  // `context` (the page, the browser and the screen) is left out: the service does not
  // map it, and it would only make the body larger.
  const body = JSON.stringify({
    id: event.id,
    name: event.name,
    timestamp: event.timestamp,
    data: event.data,
  });
  // body.length counts UTF-16 code units, not bytes, so a body with Arabic text can still
  // pass this check and get 413 from the service.
  if (body.length > PIXEL_MAX_BODY_BYTES) {
    return;
  }
  // keepalive lets the request finish when the visitor leaves the page straight away.
  fetch(PIXEL_ENDPOINT, {
    method: "POST",
    keepalive: true,
    headers: { "Content-Type": "application/json" },
    body,
  }).catch(() => {
    // A lost behaviour event is not worth an error in the visitor's console.
  });
}

for (const name of PIXEL_EVENT_NAMES) {
  analytics.subscribe(name, sendPixelEvent);
}
