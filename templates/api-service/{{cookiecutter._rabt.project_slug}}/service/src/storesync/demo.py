"""The demo: post the sample webhooks, signed, to a running intake and print the CRM records.

``samples/index.json`` lists the deliveries in order, per platform: an order from a
customer with an Arabic name, a phone-only customer, a guest order, a refund, the same
delivery sent twice, and an older update that arrives after a newer one. Every name,
phone, email and id in the samples is made up.

The demo signs each body with the first webhook secret of its platform, which is the
public sandbox placeholder while no secret is set. It then waits until the worker's
outbox is empty and prints the contacts, deals and line items in the HubSpot stand-in,
or for ``CRM_TARGET=custom`` the rows in PostgreSQL (``storesync.customdb.demo``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from .db import Database
from .logs import mask_email, mask_phone
from .queue import build_huey, build_inbox
from .settings import SERVICE_DIR, Settings
from .signatures import hmac_sha256_base64, standard_signature
from .sync_store import SyncStore

SAMPLES_DIR = SERVICE_DIR / "samples"
INDEX_FILE = "index.json"
# The file `python -m storesync run` may leave with the sandbox stand-in's address.
STANDIN_URL_FILE = "standin-url"
DEMO_SHOP = "demo-store.myshopify.com"
DEMO_SITE = "https://demo-store.example.com/"
SHOWN_OBJECTS = ("contacts", "deals", "line_items")
# Properties printed per object, in this order; personal data is masked.
SHOWN_PROPERTIES = {
    "contacts": ("firstname", "lastname", "email", "phone", "city", "ecom_orders_count",
                 "ecom_ltv_sar", "ecom_first_source", "ecom_last_source"),
    "deals": ("dealname", "amount", "ecom_refunded_sar", "dealstage", "closedate"),
    "line_items": ("name", "hs_sku", "quantity", "price", "hs_product_id"),
}


class DemoError(Exception):
    """The demo cannot run: a sample is missing, or the intake or stand-in is unreachable."""


@dataclass(frozen=True)
class SampleDelivery:
    """One delivery of the demo, as listed in ``samples/index.json``."""

    platform: str
    file: str
    topic: str
    delivery_id: str
    note: str

    def body(self, samples_dir: Path) -> bytes:
        """Return the sample's bytes exactly as stored; they are signed as they are."""
        return (samples_dir / self.file).read_bytes()


def load_samples(platforms: tuple[str, ...], samples_dir: Path = SAMPLES_DIR
                 ) -> list[SampleDelivery]:
    """Return the demo deliveries for ``platforms``, in the order of the index.

    Raises:
        DemoError: the index is missing or malformed.
    """
    try:
        index = json.loads((samples_dir / INDEX_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DemoError(f"cannot read {samples_dir / INDEX_FILE}: {error}") from error
    steps = []
    for entry in index.get("deliveries", []):
        if entry.get("platform") in platforms:
            steps.append(SampleDelivery(entry["platform"], entry["file"], entry["topic"],
                                        entry["delivery_id"], entry.get("note", "")))
    return steps


def signed_headers(sample: SampleDelivery, body: bytes, settings: Settings,
                   now: float) -> dict[str, str]:
    """Return the platform's delivery headers for ``body``, signed with its first secret."""
    secrets = settings.webhook_secrets(sample.platform)
    if not secrets:
        raise DemoError(f"no webhook secret is set for {sample.platform}; set it, or unset "
                        "HUBSPOT_ACCESS_TOKEN to use the sandbox placeholder.")
    key = secrets[0]
    headers = {"Content-Type": "application/json"}
    if sample.platform == "shopify":
        headers.update({
            "X-Shopify-Topic": sample.topic,
            "X-Shopify-Hmac-Sha256": hmac_sha256_base64(key, body),
            "X-Shopify-Shop-Domain": DEMO_SHOP,
            "X-Shopify-Event-Id": sample.delivery_id,
            "X-Shopify-Webhook-Id": f"demo-{sample.delivery_id}",
            "X-Shopify-API-Version": "2025-10",
        })
    elif sample.platform == "woocommerce":
        resource, _, event = sample.topic.partition(".")
        headers.update({
            "X-WC-Webhook-Source": DEMO_SITE,
            "X-WC-Webhook-Topic": sample.topic,
            "X-WC-Webhook-Resource": resource,
            "X-WC-Webhook-Event": event,
            "X-WC-Webhook-Signature": hmac_sha256_base64(key, body),
            "X-WC-Webhook-ID": "1",
            "X-WC-Webhook-Delivery-ID": sample.delivery_id,
        })
    else:
        timestamp = int(now)
        headers.update({
            "webhook-id": sample.delivery_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": standard_signature(key, sample.delivery_id, timestamp, body),
        })
    return headers


def post_samples(client: httpx.Client, samples: list[SampleDelivery], settings: Settings,
                 echo: Callable[[str], None], samples_dir: Path = SAMPLES_DIR) -> int:
    """Post each sample to the intake; return how many the intake accepted.

    Raises:
        DemoError: the intake cannot be reached.
    """
    accepted = 0
    for sample in samples:
        body = sample.body(samples_dir)
        headers = signed_headers(sample, body, settings, time.time())
        try:
            response = client.post(f"/webhooks/{sample.platform}", content=body, headers=headers)
        except httpx.HTTPError as error:
            raise DemoError(f"cannot reach the intake at {client.base_url}: {error}. Start the "
                            "service first: bash scripts/run.sh") from error
        accepted += 1 if response.is_success else 0
        echo(f"  {response.status_code}  {sample.platform:<11} {sample.topic:<18} {sample.note}")
    return accepted


def wait_for_sync(store: SyncStore, timeout_seconds: float,
                  sleep: Callable[[float], None] = time.sleep,
                  unfinished_jobs: Callable[[], int] = lambda: 0) -> bool:
    """Wait until no job is unfinished and the outbox is empty, twice in a row.

    ``unfinished_jobs`` returns the inbox count, which covers jobs still queued or
    running. Returns False when ``timeout_seconds`` ran out.
    """
    deadline = time.monotonic() + timeout_seconds
    empty_checks = 0
    while time.monotonic() < deadline:
        idle = unfinished_jobs() == 0 and store.pending_count() == 0
        empty_checks = empty_checks + 1 if idle else 0
        if empty_checks >= 2:
            return True
        sleep(1.0)
    return False


def _shown(name: str, value: Any) -> str:
    if value is None or value == "":
        return "-"
    if name == "email":
        return mask_email(str(value))
    if name == "phone":
        return mask_phone(str(value))
    return str(value)


def print_records(client: httpx.Client, echo: Callable[[str], None]) -> dict[str, int]:
    """Print the stand-in's records of each shown object; return the count per object."""
    counts: dict[str, int] = {}
    for obj in SHOWN_OBJECTS:
        response = client.get(f"/_standin/records/{obj}")
        response.raise_for_status()
        records = response.json().get("results", [])
        counts[obj] = len(records)
        echo(f"\n{obj} ({len(records)}):")
        for record in records:
            properties: Mapping[str, Any] = record.get("properties", {})
            shown = ", ".join(f"{name}={_shown(name, properties.get(name))}"
                              for name in SHOWN_PROPERTIES[obj] if name in properties)
            links = ", ".join(f"{other}:{len(items)}" for other, items
                              in (record.get("associations") or {}).items())
            echo(f"  #{record.get('id')}  {shown}" + (f"  [linked {links}]" if links else ""))
    return counts


def standin_url(settings: Settings, given: str | None) -> str:
    """Return the stand-in's address: the option, the file `run` leaves, or HUBSPOT_BASE_URL.

    Raises:
        DemoError: none of them names a local stand-in.
    """
    if given:
        return given.rstrip("/")
    if settings.crm_target == "custom":
        return ""  # the demo reads the customer database instead
    left_by_run = settings.data_dir / STANDIN_URL_FILE
    if left_by_run.is_file():
        return left_by_run.read_text(encoding="utf-8").strip().rstrip("/")
    host = httpx.URL(settings.hubspot_base_url).host
    if host in ("127.0.0.1", "::1", "localhost"):
        return settings.hubspot_base_url.rstrip("/")
    raise DemoError("the demo prints the CRM stand-in's records, and no stand-in address "
                    "is known. Pass --standin-url http://127.0.0.1:PORT (the address "
                    "`bash scripts/run.sh` prints in sandbox mode).")


def run_demo(settings: Settings, intake_url: str, standin: str, echo: Callable[[str], None],
             timeout_seconds: float = 60.0) -> dict[str, int]:
    """Post the samples, wait for the sync, print the records; return the record counts.

    Raises:
        DemoError: a sample, the intake or the stand-in is missing.
    """
    # The first accepted platform is the store's own; the others feed only tickets or
    # events, which the samples do not cover.
    store_platform = settings.accepted_platforms[:1]
    samples = load_samples(store_platform)
    if not samples:
        raise DemoError(f"samples/{INDEX_FILE} has no delivery for "
                        f"{', '.join(store_platform) or 'this project'}.")
    echo(f"Posting {len(samples)} sample deliveries to {intake_url}:")
    with httpx.Client(base_url=intake_url, timeout=10) as intake:
        post_samples(intake, samples, settings, echo)
    store = SyncStore(Database(settings.state_path))
    inbox = build_inbox(settings, build_huey(settings))
    try:
        if not wait_for_sync(store, timeout_seconds, unfinished_jobs=inbox.count):
            echo(f"\n{inbox.count()} jobs are unfinished and the outbox has "
                 f"{store.pending_count()} records after {timeout_seconds:.0f} s; "
                 "is the worker running?")
    finally:
        inbox.close()
    if settings.crm_target == "custom":
        from .customdb.demo import print_rows

        return print_rows(settings, echo)
    with httpx.Client(base_url=standin, timeout=10) as crm:
        try:
            if settings.crm_target == "zoho":
                from .zoho_demo import print_records as print_zoho_records

                return print_zoho_records(crm, echo)
            return print_records(crm, echo)
        except httpx.HTTPError as error:
            raise DemoError(f"cannot read the stand-in at {standin}: {error}") from error
