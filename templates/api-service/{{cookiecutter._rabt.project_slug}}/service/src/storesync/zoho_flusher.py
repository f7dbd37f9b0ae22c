"""The flusher for Zoho CRM: the HubSpot flusher's cycle, with Zoho's lookups and sales orders.

Batching, the batch window, retries with backoff, splitting of rejected batches,
dead letters and pauses are the flusher's own (:mod:`storesync.flusher`). What differs
for Zoho:

* links are lookup fields written with an update, such as a deal's ``Contact_Name``;
* an order's lines go in one sales order per order (:mod:`storesync.zoho_orders`),
  written once its deal and products have Zoho ids;
* line items are never written on their own, because Zoho has no module for them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx

from .db import Database
from .flusher import (
    LOOPBACK_NAMES,
    MAX_ROWS_PER_CYCLE,
    Flusher,
    FlushReport,
    SetupError,
    _Outcome,
)
from .hubspot import BATCH_LIMIT, AuthFailed, BatchRejected, CrmUnavailable, DailyLimitReached
from .record_keys import shop_of_key
from .shared_limits import zoho_limits
from .sync_store import OutboxRow, properties_of
from .zoho import ZohoClient, record_error
from .zoho_auth import ZohoTokens, accounts_url_for, token_cache_for
from .zoho_credits import CallSlots, CreditBudget, SlotPool, concurrency_limit, daily_credits
from .zoho_credits_file import SqliteCreditBudget
from .zoho_orders import OBJECT as SALES_ORDERS
from .zoho_orders import product_skus, zoho_record

log = logging.getLogger("storesync.flusher")

ZOHO_STAGES: tuple[tuple[str, ...], ...] = (
    ("contacts", "products", "tickets"),
    ("deals",),
    (SALES_ORDERS,),
)
# Sent in sandbox mode to the local stand-in, which accepts any client.
SANDBOX_CLIENT = "sandbox-client-not-real"


class ZohoFlusher(Flusher):
    """Writes the outbox to Zoho CRM; see :class:`storesync.flusher.Flusher`."""

    # A cleared field is sent as JSON null, because Zoho rejects an empty string in a
    # date, datetime, number or picklist field with INVALID_DATA.
    # NOTE: Zoho's update-records page (API v8) does not say how a field is cleared.
    # Null is assumed here, and the stand-in clears a field given null.
    cleared_value: Any = None
    crm_name = "Zoho CRM"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Create the flusher with Zoho's write stages."""
        super().__init__(*args, **kwargs)
        self.record_stages = ZOHO_STAGES
        product = properties_of(self.mapping, "product")
        self.product_name_field = product.get("title")
        self.product_sku_field = product.get("sku")

    def _properties(self, obj: str, row: OutboxRow,
                    product_ids: Mapping[str, str]) -> dict[str, Any]:
        """Return the fields to send; a product with no name is named by its SKU.

        Zoho requires ``Product_Name``. A product made from an order line takes the
        line's title, so only a line without a title, or a field map without the
        line's title, leaves the name empty.
        """
        properties = super()._properties(obj, row, product_ids)
        name, sku = self.product_name_field, self.product_sku_field
        if obj == "products" and name and sku and not properties.get(name) \
                and properties.get(sku):
            properties[name] = str(properties[sku])
        return properties

    def resolve_stages(self) -> None:
        """Find the deal pipeline among the Deals layout's pipelines, as the HubSpot flusher does.

        Raises:
            SetupError: the pipeline or a stage is missing, with the fix in Zoho's terms.
            HubSpotError: Zoho could not be asked (the flusher's error classes).
        """
        try:
            super().resolve_stages()
        except SetupError as error:
            label = ((self.mapping.get("order_stages") or {}).get("pipeline") or {}).get("name")
            raise SetupError(
                f"Zoho CRM has no deal pipeline {label or ''} with the stages of the field map "
                f"({error}). Create the pipeline and its stages from crm/desired-state.yaml "
                "(`rabt crm apply` lists the manual steps), or fill order_stages.pipeline."
                "crm_value in integration/mapping.yaml with the pipeline's display value."
            ) from error

    @staticmethod
    def _link_input(row: OutboxRow, from_ids: Mapping[str, str],
                    to_ids: Mapping[str, str]) -> dict[str, Any]:
        """Return a lookup write: the ``from`` record's lookup field takes the ``to`` id."""
        return {"from": {"id": from_ids[str(row.item.properties["from_key"])]},
                "to": {"id": to_ids[str(row.item.properties["to_key"])]},
                "lookup": str(row.item.properties["lookup"])}

    def _flush_records(self, obj: str, now: float, force: bool, report: FlushReport) -> None:
        if obj == SALES_ORDERS:
            self._flush_sales_orders(now, force, report)
        else:
            super()._flush_records(obj, now, force, report)

    def _flush_sales_orders(self, now: float, force: bool, report: FlushReport) -> None:
        rows = self.store.due(SALES_ORDERS, now, MAX_ROWS_PER_CYCLE)
        if not rows:
            return
        newest = self._newest_arrival(rows, now)

        keys = [row.item.key for row in rows]
        written = self.store.crm_ids(SALES_ORDERS, keys)
        deals = self.store.crm_ids("deals", keys)
        skus = {sku for row in rows for sku in product_skus(row.item.key, row.item.properties)}
        product_keys = self.store.product_keys_for_skus(sorted(skus))
        product_ids = self.store.crm_ids("products", list(product_keys.values()))
        ids_by_sku = {sku: product_ids[key] for sku, key in product_keys.items()
                      if key in product_ids}

        outcome = _Outcome()
        ready: list[tuple[OutboxRow, dict[str, Any]]] = []
        for row in rows:
            if row.item.key in written:
                # Written once; later line changes are not sent (see zoho_orders).
                outcome.synced.append((row, written[row.item.key]))
                continue
            missing = [sku for sku in product_skus(row.item.key, row.item.properties)
                       if sku not in ids_by_sku]
            if row.item.key not in deals or missing:
                # Not counted as an attempt, as links waiting for their ends are not: a
                # dead-lettered deal, once replayed, lets its sales order go out.
                what = "the deal" if row.item.key not in deals else f"{len(missing)} products"
                outcome.retried.append((row, now + max(self.batch_window_seconds, 1.0),
                                        f"waiting for the Zoho id of {what}", False))
                continue
            ready.append((row, zoho_record(row.item.properties, deals[row.item.key], ids_by_sku,
                                           shop_of_key(row.item.key))))
        if outcome.synced or outcome.retried:
            self._finish(SALES_ORDERS, outcome, report)

        for start in range(0, len(ready), BATCH_LIMIT):
            chunk = [row for row, _ in ready[start:start + BATCH_LIMIT]]
            if not self._ready(chunk, now, force, newest):
                report.waiting += len(chunk)
                continue
            records = [record for _, record in ready[start:start + BATCH_LIMIT]]
            self._submit(SALES_ORDERS, report, self._send_sales_orders, chunk, records, now,
                         report)

    def _send_sales_orders(self, chunk: list[OutboxRow], records: list[dict[str, Any]],
                           now: float, report: FlushReport) -> None:
        client = self.client
        assert isinstance(client, ZohoClient)
        try:
            entries = client.insert(SALES_ORDERS, records)
        except BatchRejected as error:
            if len(chunk) > 1:
                middle = len(chunk) // 2
                self._send_sales_orders(chunk[:middle], records[:middle], now, report)
                self._send_sales_orders(chunk[middle:], records[middle:], now, report)
                return
            self._finish(SALES_ORDERS, _Outcome(dead=[(chunk[0], error.status, str(error))]),
                         report)
            return
        except (DailyLimitReached, AuthFailed) as error:
            self._pause(error, now)
        except CrmUnavailable as error:
            self._finish(SALES_ORDERS, self._retry_all(chunk, error, now), report)
            return
        self._finish(SALES_ORDERS, _sales_order_outcome(chunk, records, entries), report)


def _sales_order_outcome(chunk: Sequence[OutboxRow], records: Sequence[Mapping[str, Any]],
                         entries: Sequence[Mapping[str, Any]]) -> _Outcome:
    outcome = _Outcome()
    for row, record, entry in zip(chunk, records, entries, strict=True):
        if entry.get("status") == "success":
            outcome.synced.append((row, str(entry["details"]["id"])))
        else:
            error = record_error(entry, record)
            outcome.dead.append((row, None, f"{error['category']}: {error['message']}"))
    return outcome


def zoho_client_for(settings: Any, transport: httpx.BaseTransport | None = None, *,
                    clock: Callable[[], float] = time.time,
                    sleep: Callable[[float], None] = time.sleep) -> ZohoClient:
    """Create the Zoho client the settings describe; its token is shared through Redis or files.

    ``clock`` and ``sleep`` drive the token expiry and the credit budget; tests inject them.

    Raises:
        SetupError: sandbox mode (no refresh token) with an accounts server that is not
            a loopback stand-in, which would send made-up credentials to Zoho.
    """
    accounts_url = settings.zoho_accounts_url or accounts_url_for(settings.zoho_dc)
    refresh_token = settings.zoho_refresh_token
    client_id, client_secret = settings.zoho_client_id, settings.zoho_client_secret
    if refresh_token is None:
        if httpx.URL(accounts_url).host not in LOOPBACK_NAMES:
            raise SetupError(
                f"ZOHO_REFRESH_TOKEN is not set (sandbox mode), but the accounts server is "
                f"{accounts_url}, not a local stand-in. Start the service with `python -m "
                "storesync run`, which starts the stand-in, or set "
                "ZOHO_ACCOUNTS_URL=http://127.0.0.1:PORT of `python -m storesync standin`.")
        refresh_token = client_id = client_secret = SANDBOX_CLIENT
    tokens = ZohoTokens(client_id or "", client_secret or "", refresh_token, dc=settings.zoho_dc,
                        accounts_url=accounts_url, cache=token_cache_for(settings),
                        timeout_seconds=float(settings.zoho_timeout_seconds),
                        transport=transport, clock=clock)
    daily_limit = daily_credits(settings.zoho_edition, settings.zoho_user_licences,
                                settings.zoho_credits_per_day)
    concurrency = concurrency_limit(settings.zoho_edition, settings.zoho_concurrency)
    budget: CreditBudget
    slots: SlotPool
    if settings.redis_url:
        # Every process of the deployment spends from one budget and one set of slots.
        budget, slots = zoho_limits(settings, daily_limit, concurrency, clock=clock,
                                    sleep=sleep)
    else:
        # Every process on this machine spends from one budget in the state file.
        # NOTE: the call slots stay per process without Redis, so two processes can have
        # twice ZOHO_CONCURRENCY calls in flight, and Zoho rejects the excess with 429.
        budget = SqliteCreditBudget(Database(settings.state_path, synchronous="NORMAL"),
                                    daily_limit, clock=clock, sleep=sleep, owned=True)
        slots = CallSlots(concurrency)
    return ZohoClient(tokens, budget, slots, timeout_seconds=float(settings.zoho_timeout_seconds),
                      transport=transport, sleep=sleep)
