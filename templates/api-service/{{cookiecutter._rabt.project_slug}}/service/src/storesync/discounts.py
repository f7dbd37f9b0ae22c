"""Discount codes for the playbooks, created in the store once per subject, even after a crash.

The playbook runner calls :meth:`StoreDiscounts.create_code` for the code of a subject
(an abandoned checkout, or ``win_back:<contact>``). The code is planned first: a random
code is written to ``playbook_discounts`` in the state file with the status
``planned``. Then it is created in the store (Shopify ``discountCodeBasicCreate``,
WooCommerce ``POST /coupons``), and only then marked ``created``. A fire that failed
anywhere on the way is tried again by the runner, and the retry finds the planned code
and creates that same code. When the store says the code already exists, the earlier
try created it before the crash, so it counts as created. Codes are random, never
derived from an id, so nobody can guess another customer's code.

Without store API credentials, or for a headless storefront with no store API, there is
no store to create codes in: :func:`build_issuer` returns an issuer whose
``create_code`` returns None, the playbooks mark the contact without a code, and the
worker logs that once when it starts.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from .db import Database
from .settings import Settings
from .store_api import StoreApiError, open_client
from .store_settings import store_api_platforms

log = logging.getLogger("storesync.discounts")

COMPONENT = "playbook_discounts"
SCHEMA_STEPS: tuple[str, ...] = (
    "CREATE TABLE playbook_discounts ("
    " subject_key TEXT PRIMARY KEY, code TEXT NOT NULL UNIQUE, contact_key TEXT NOT NULL,"
    " platform TEXT NOT NULL, expires_at REAL NOT NULL, status TEXT NOT NULL,"
    " store_id TEXT, planned_at REAL NOT NULL, created_at REAL)",
)
PLANNED = "planned"
CREATED = "created"
# Letters and digits a customer cannot mix up when typing (no 0/O, 1/I/L).
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
# 12 characters of 31 give about 59 bits: far beyond guessing a single-use code.
CODE_LENGTH = 12
CODE_PREFIX = "RABT-"
# The discount kinds of integration/playbooks.yaml this issuer can create.
KINDS = ("percentage",)
# Error codes with which each store reports that the code exists: Shopify's DiscountErrorCode in
# userErrors, WooCommerce's REST error code. NOTE: Shopify's enum lists both TAKEN and
# DUPLICATE; which one a taken code gets is not confirmed, so either counts.
ALREADY_EXISTS = {"shopify": frozenset({"TAKEN", "DUPLICATE"}),
                  "woocommerce": frozenset({"woocommerce_rest_coupon_code_already_exists"})}


class DiscountConfigError(ValueError):
    """The spec's ``discount`` block cannot be used; the message names the value and the fix."""


@dataclass(frozen=True)
class DiscountRule:
    """The spec's discount: its kind and size.

    Attributes:
        kind: ``percentage``.
        percent: Whole percent off, from 1 to 100.
    """

    kind: str
    percent: int


@dataclass(frozen=True)
class PlannedCode:
    """A row of ``playbook_discounts``."""

    code: str
    expires_at: float
    status: str


def load_rule(spec_dir: Path) -> DiscountRule | None:
    """Read ``discount`` of ``spec_dir/playbooks.yaml``; None when the spec has none.

    Raises:
        DiscountConfigError: the kind or percent is not one this service can create.
    """
    path = spec_dir / "playbooks.yaml"
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise DiscountConfigError(f"cannot read {path}: {error}. Set SPEC_DIR to the "
                                  "project's integration folder.") from error
    data = doc.get("discount") if isinstance(doc, dict) else None
    if not isinstance(data, dict):
        return None
    kind, percent = data.get("kind"), data.get("percent")
    if kind not in KINDS:
        raise DiscountConfigError(
            f"{path}: discount.kind is {kind!r}, but the service creates only "
            f"{', '.join(KINDS)} codes. Set discount.kind to percentage and regenerate with rabt.")
    if isinstance(percent, bool) or not isinstance(percent, int) or not 1 <= percent <= 100:
        raise DiscountConfigError(
            f"{path}: discount.percent is {percent!r}, but it must be a whole number from 1 "
            "to 100. Correct it in the spec and regenerate with rabt.")
    return DiscountRule(kind=str(kind), percent=percent)


def new_code() -> str:
    """Return a fresh random code such as ``RABT-7KQ2M9XWTR4P``."""
    return CODE_PREFIX + "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


class StoreDiscounts:
    """Creates each subject's single-use code in one store, once (``DiscountIssuer``).

    Args:
        database: The worker's state file.
        platform: ``shopify`` or ``woocommerce``.
        rule: The spec's discount.
        open_store: Opens the store API client; the caller of each code closes it.
        clock: Seconds since the epoch; tests pass their own.
    """

    def __init__(self, database: Database, platform: str, rule: DiscountRule,
                 open_store: Callable[[], Any], clock: Callable[[], float] = time.time) -> None:
        self.database = database
        self.platform = platform
        self.rule = rule
        self.open_store = open_store
        self.clock = clock
        database.migrate(COMPONENT, SCHEMA_STEPS)

    def create_code(self, checkout_key: str, contact_key: str,
                    expires_at: float) -> tuple[str, float]:
        """Return the subject's code and its expiry, creating it in the store if needed.

        ``checkout_key`` is the subject: the checkout, or the playbook and contact.
        A retry returns the code planned by the first try, with that try's expiry.

        Raises:
            StoreApiError: the store refused the code for another reason, or failed.
        """
        planned = self._plan(checkout_key, contact_key, expires_at)
        if planned.status == CREATED:
            return planned.code, planned.expires_at
        self._mark_created(checkout_key, self._create_in_store(planned))
        return planned.code, planned.expires_at

    def status(self, subject_key: str) -> PlannedCode | None:
        """Return the subject's row, or None when no code was planned for it."""
        with self.database.reading() as conn:
            row = conn.execute("SELECT code, expires_at, status FROM playbook_discounts"
                               " WHERE subject_key = ?", (subject_key,)).fetchone()
        return PlannedCode(*row) if row else None

    def _plan(self, subject_key: str, contact_key: str, expires_at: float) -> PlannedCode:
        """Write a new code for the subject unless one is planned and still valid."""
        now = self.clock()
        with self.database.transaction() as conn:
            row = conn.execute("SELECT code, expires_at, status FROM playbook_discounts"
                               " WHERE subject_key = ?", (subject_key,)).fetchone()
            if row is not None and float(row[1]) > now:
                return PlannedCode(str(row[0]), float(row[1]), str(row[2]))
            # No code yet, or the planned one expired during a long outage: plan a new one.
            code = new_code()
            conn.execute(
                "INSERT INTO playbook_discounts (subject_key, code, contact_key, platform,"
                " expires_at, status, planned_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (subject_key) DO UPDATE SET code = excluded.code,"
                " expires_at = excluded.expires_at, status = excluded.status,"
                " planned_at = excluded.planned_at, store_id = NULL, created_at = NULL",
                (subject_key, code, contact_key, self.platform, expires_at, PLANNED, now))
        return PlannedCode(code, expires_at, PLANNED)

    def _mark_created(self, subject_key: str, store_id: str | None) -> None:
        with self.database.transaction() as conn:
            conn.execute("UPDATE playbook_discounts SET status = ?, store_id = ?, created_at = ?"
                         " WHERE subject_key = ?", (CREATED, store_id, self.clock(), subject_key))
        log.info("discount code created in the store", extra={"platform": self.platform})

    def _create_in_store(self, planned: PlannedCode) -> str | None:
        starts = datetime.fromtimestamp(self.clock(), UTC)
        ends = datetime.fromtimestamp(planned.expires_at, UTC)
        fraction = self.rule.percent / 100
        client = self.open_store()
        try:
            if self.platform == "shopify":
                created = client.create_discount_code(
                    planned.code, title=f"Rabt playbook {planned.code}", starts_at=starts,
                    ends_at=ends, percentage=fraction)
            else:
                created = client.create_coupon(planned.code, expires_at=ends,
                                               percentage=fraction)
        except StoreApiError as error:
            if not ALREADY_EXISTS[self.platform] & set(error.error_codes):
                raise
            # The try before a crash created it; the code is random, so it is ours.
            log.info("discount code was already in the store; counted as created",
                     extra={"platform": self.platform})
            return None
        finally:
            client.close()
        return str(created.store_id)


class NoStoreDiscounts:
    """The issuer when no store API can create codes: every step goes out without a code."""

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def create_code(self, checkout_key: str, contact_key: str,
                    expires_at: float) -> tuple[str, float] | None:
        """Return None: the playbooks mark the contact without a code."""
        return None


def build_issuer(settings: Settings, database: Database,
                 clock: Callable[[], float] = time.time) -> StoreDiscounts | NoStoreDiscounts:
    """Return the discount issuer of the worker from its settings and spec.

    The first accepted store platform with store API credentials creates the codes.
    Without one, the returned issuer gives no codes, and this is logged here, once.

    Raises:
        DiscountConfigError: the spec's ``discount`` block cannot be used.
    """
    rule = load_rule(settings.spec_dir)
    platforms = store_api_platforms(settings)
    if rule is None:
        reason = "the spec's playbooks.yaml has no discount block"
    elif not platforms and set(settings.accepted_platforms) & {"shopify", "woocommerce"}:
        reason = ("the store API credentials are not set (SHOPIFY_SHOP_DOMAIN and "
                  "SHOPIFY_ADMIN_ACCESS_TOKEN, or the WOOCOMMERCE_ ones)")
    elif not platforms:
        reason = "a headless storefront has no store API to create codes in"
    else:
        platform = platforms[0]
        return StoreDiscounts(database, platform, rule,
                              lambda: open_client(settings, platform), clock)
    log.warning("playbooks mark contacts without a discount code: %s", reason)
    return NoStoreDiscounts(reason)
