"""Settings of the service, read from environment variables and checked once at start.

Secrets come only from the environment. For local work the service also reads a
``.env`` file in the service folder when one exists. A variable set in the real
environment wins over the same name in ``.env``. Every invalid value is reported
with the variable's name, the problem and the fix, all at once, and a secret's value
is never repeated in a message.

Sandbox mode: while the CRM target's credential is not set (``HUBSPOT_ACCESS_TOKEN``,
or ``DATABASE_URL`` for the customer database), nothing is written to a real CRM. A
platform whose webhook secret is not set then uses a public placeholder secret
(``SANDBOX_SECRETS``), so the demo can sign its samples, and the service only listens
on a loopback address. ``CRM_TARGET`` defaults to the ``crm`` of the field map.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from . import logs
from .consent import CHANNELS as CONSENT_CHANNELS
from .consent import DEFAULT_LEGAL_BASIS, LEGAL_BASES
from .customdb.urls import database_url_problem
from .runtime.engine import accepted_platforms
from .signatures import decode_standard_secret, encode_standard_secret
from .store_settings import (
    DEFAULT_RECONCILE_FIRST_LOOKBACK_HOURS,
    DEFAULT_RECONCILE_INTERVAL_SECONDS,
    DEFAULT_RECONCILE_OVERLAP_SECONDS,
    DEFAULT_SHOPIFY_API_VERSION,
    DEFAULT_STORE_API_TIMEOUT_SECONDS,
    DEFAULT_SUBSCRIPTION_CHECK_INTERVAL_SECONDS,
    store_api_settings,
)
from .zoho_settings import (
    DEFAULT_ZOHO_AUTH_FAILURE_PAUSE_SECONDS,
    DEFAULT_ZOHO_CREDITS_PAUSE_SECONDS,
    DEFAULT_ZOHO_DC,
    DEFAULT_ZOHO_EDITION,
    DEFAULT_ZOHO_TIMEOUT_SECONDS,
    DEFAULT_ZOHO_USER_LICENCES,
    zoho_settings_from,
)

# src/storesync/settings.py → the service folder, where .env, var/ and scripts/ live.
SERVICE_DIR = Path(__file__).resolve().parents[2]
ENV_FILE_NAME = ".env"

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
# NOTE: no platform documents a maximum webhook body; 2 MiB is an estimate that
# covers a large order with a few hundred line items. Raise it if 413s appear.
DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024
MIN_MAX_BODY_BYTES = 1024
MAX_MAX_BODY_BYTES = 100 * 1024 * 1024
# Shopify retries for 4 hours and may deliver up to about a day late, so 72 hours
# covers every copy of a delivery with room to spare.
DEFAULT_DEDUP_WINDOW_HOURS = 72
MAX_DEDUP_WINDOW_HOURS = 24 * 30
# Standard Webhooks leaves the tolerance to the receiver. Five minutes is a common
# choice, not a figure from the spec.
DEFAULT_STOREFRONT_TIMESTAMP_TOLERANCE_SECONDS = 300
MAX_STOREFRONT_TIMESTAMP_TOLERANCE_SECONDS = 24 * 3600
DEFAULT_REDIS_KEY_PREFIX = "storesync"
# POST /pixel/shopify is public, so its body limit is far below MAX_BODY_BYTES.
# NOTE: 16 KiB is an estimate for one Web Pixels event without its ``context``; a
# checkout with many lines may need more.
DEFAULT_PIXEL_MAX_BODY_BYTES = 16 * 1024
MIN_PIXEL_MAX_BODY_BYTES = 1024
MAX_PIXEL_MAX_BODY_BYTES = 1024 * 1024
# The field map entity that Web Pixels events feed; the pixel endpoint is on only
# while it is enabled.
PIXEL_ENTITY = "event"
ORIGIN_PATTERN = re.compile(r"^https?://[^/\s?#]+$")
# SQLite's synchronous modes for the queue file in WAL mode. FULL syncs every commit
# to disk, so an acknowledged delivery survives a power loss; NORMAL syncs only at
# checkpoints, so it survives a crash of the process (kill -9) but not of the machine.
QUEUE_SYNCHRONOUS_MODES = ("FULL", "NORMAL")
DEFAULT_QUEUE_SQLITE_SYNCHRONOUS = "FULL"
# The worker's own connection to the queue file only takes jobs off the queue (and
# queues huey's retries). Every job stays in the inbox until it has finished, so a
# dequeue lost in a power cut only runs the job again; see storesync.queue.
DEFAULT_WORKER_QUEUE_SQLITE_SYNCHRONOUS = "NORMAL"
# The inbox puts a job back on the queue when it has not finished this long after it
# was queued. The grace must exceed the longest job plus huey's retry delays (3 retries
# 10 s apart), or a slow job runs twice, which the idempotent worker tolerates.
DEFAULT_INBOX_GRACE_SECONDS = 300
MAX_INBOX_GRACE_SECONDS = 86_400
# How often the worker looks for such jobs.
DEFAULT_INBOX_SCAN_INTERVAL_SECONDS = 60
MAX_INBOX_SCAN_INTERVAL_SECONDS = 3600
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
REDIS_KEY_PREFIX_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
ENV_NAME_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Values in .env.example start with this, so a copied example is caught at start.
PLACEHOLDER_PREFIX = "replace-with"

# Worker and CRM defaults (worker side); read in _worker_settings below.
CRM_TARGETS = ("hubspot", "zoho", "custom")
# The setting whose absence puts the service in sandbox mode, by CRM target; other
# targets use HUBSPOT_ACCESS_TOKEN.
SANDBOX_SWITCHES = {"custom": "DATABASE_URL", "zoho": "ZOHO_REFRESH_TOKEN"}
# The role BI tools log in with to read the customer database (CRM_TARGET=custom).
DEFAULT_CUSTOMDB_READONLY_ROLE = "storesync_bi"
POSTGRES_ROLE_PATTERN = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
DEFAULT_HUBSPOT_BASE_URL = "https://api.hubapi.com"
# HubSpot's burst limit per app in a rolling 10 seconds: 100 on Free and Starter, 190
# on Professional and Enterprise, 250 with the API limit increase (HubSpot's API usage
# guidelines page).
DEFAULT_HUBSPOT_RATE_LIMIT_PER_10S = 100
MAX_HUBSPOT_RATE_LIMIT_PER_10S = 1000
# NOTE: search has its own limit. An old HubSpot changelog gives 4 per second per token
# and current docs about 5 per second, so the value is a setting.
DEFAULT_HUBSPOT_SEARCH_RATE_PER_SECOND = 5
DEFAULT_HUBSPOT_TIMEOUT_SECONDS = 10
# How long a partly filled batch waits for more records before it is sent.
DEFAULT_SYNC_BATCH_WINDOW_MS = 500
MAX_SYNC_BATCH_WINDOW_MS = 60_000
DEFAULT_SYNC_MAX_ATTEMPTS = 8
# Places the HubSpot flusher can run: "process" is the `flusher` command beside the
# worker, with its own interpreter and so its own GIL; "thread" is a thread of the worker.
SYNC_FLUSHER_MODES = ("process", "thread")
DEFAULT_SYNC_FLUSHER = "process"
# /readyz/sync fails when records wait and the flusher's heartbeat is older than this. The
# flusher writes one every 5 s while it loops, but a loop waits out a call's 429 retries
# and timeouts too, so the limit leaves room for a few of those.
DEFAULT_FLUSHER_HEARTBEAT_MAX_AGE_SECONDS = 120
MIN_FLUSHER_HEARTBEAT_MAX_AGE_SECONDS = 15
MAX_FLUSHER_HEARTBEAT_MAX_AGE_SECONDS = 86_400
DEFAULT_SYNC_BACKOFF_BASE_SECONDS = 2
DEFAULT_SYNC_BACKOFF_MAX_SECONDS = 600
# NOTE: HubSpot resets the daily limit at midnight in the account's time zone, which
# the service does not know, so after a daily-limit 429 it probes again after this pause.
DEFAULT_HUBSPOT_DAILY_LIMIT_PAUSE_SECONDS = 900
MIN_HUBSPOT_DAILY_LIMIT_PAUSE_SECONDS = 60
MAX_HUBSPOT_DAILY_LIMIT_PAUSE_SECONDS = 86_400
# After a 401 or 403 the flusher waits this long before it tries the token again.
DEFAULT_HUBSPOT_AUTH_FAILURE_PAUSE_SECONDS = 60
MIN_HUBSPOT_AUTH_FAILURE_PAUSE_SECONDS = 5
MAX_HUBSPOT_AUTH_FAILURE_PAUSE_SECONDS = 3600

# Consent and privacy requests. HubSpot's subscription statuses are read this often; 0 stops it.
DEFAULT_CONSENT_CRM_PULL_SECONDS = 3600
MAX_CONSENT_CRM_PULL_SECONDS = 7 * 86_400
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")

SECRET_VARIABLES = {
    "shopify": "SHOPIFY_WEBHOOK_SECRETS",
    "woocommerce": "WOOCOMMERCE_WEBHOOK_SECRETS",
    "storefront": "STOREFRONT_WEBHOOK_SECRETS",
}
# Public placeholder secrets, used only in sandbox mode for a platform whose secret
# is not set. They are not secret: anyone can sign with them, which is why sandbox
# mode listens on loopback only.
SANDBOX_SECRETS = {
    "shopify": "sandbox-shopify-secret-not-real",
    "woocommerce": "sandbox-woocommerce-secret-not-real",
    "storefront": encode_standard_secret(b"sandbox-storefront-key-not-real"),
}


@dataclass(frozen=True)
class SettingProblem:
    """One invalid setting: the variable, what is wrong with its value, and how to fix it."""

    variable: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.variable}: {self.problem} Fix: {self.fix}"


class SettingsError(Exception):
    """One or more settings are invalid; ``problems`` lists each of them."""

    def __init__(self, problems: list[SettingProblem]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {problem}" for problem in problems)
        super().__init__(f"Invalid settings ({len(problems)}):\n{lines}")


@dataclass(frozen=True, kw_only=True)
class Settings:
    """Every setting of the service. Fields holding secrets are left out of ``repr``."""

    # Intake and common settings.
    shopify_webhook_secrets: tuple[bytes, ...] = field(default=(), repr=False)
    woocommerce_webhook_secrets: tuple[bytes, ...] = field(default=(), repr=False)
    storefront_webhook_secrets: tuple[bytes, ...] = field(default=(), repr=False)
    storefront_timestamp_tolerance_seconds: int = DEFAULT_STOREFRONT_TIMESTAMP_TOLERANCE_SECONDS
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    dedup_window_hours: int = DEFAULT_DEDUP_WINDOW_HOURS
    # A Redis URL may carry a password, so it is kept out of repr too.
    redis_url: str | None = field(default=None, repr=False)
    redis_key_prefix: str = DEFAULT_REDIS_KEY_PREFIX
    queue_sqlite_synchronous: str = DEFAULT_QUEUE_SQLITE_SYNCHRONOUS
    worker_queue_sqlite_synchronous: str = DEFAULT_WORKER_QUEUE_SQLITE_SYNCHRONOUS
    inbox_grace_seconds: int = DEFAULT_INBOX_GRACE_SECONDS
    inbox_scan_interval_seconds: int = DEFAULT_INBOX_SCAN_INTERVAL_SECONDS
    data_dir: Path = SERVICE_DIR / "var"
    spec_dir: Path = SERVICE_DIR.parent / "integration"
    desired_state_path: Path = SERVICE_DIR.parent / "crm" / "desired-state.yaml"
    store_id: str | None = None
    log_level: str = "INFO"
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    worker_metrics_port: int | None = None
    # Derived at load time.
    sandbox: bool = True
    sandbox_secret_platforms: tuple[str, ...] = ()
    accepted_platforms: tuple[str, ...] = ()
    # POST /pixel/shopify: on when Shopify is accepted and the event entity is enabled.
    pixel_enabled: bool = False
    pixel_max_body_bytes: int = DEFAULT_PIXEL_MAX_BODY_BYTES
    # Empty means any Origin is accepted and CORS responses allow "*".
    pixel_allowed_origins: tuple[str, ...] = ()

    # --- Worker and CRM settings (worker side): add fields below this line. ---
    crm_target: str = "hubspot"
    hubspot_access_token: str | None = field(default=None, repr=False)
    hubspot_base_url: str = DEFAULT_HUBSPOT_BASE_URL
    hubspot_rate_limit_per_10s: int = DEFAULT_HUBSPOT_RATE_LIMIT_PER_10S
    hubspot_search_rate_per_second: int = DEFAULT_HUBSPOT_SEARCH_RATE_PER_SECOND
    hubspot_timeout_seconds: int = DEFAULT_HUBSPOT_TIMEOUT_SECONDS
    sync_flusher: str = DEFAULT_SYNC_FLUSHER
    flusher_heartbeat_max_age_seconds: int = DEFAULT_FLUSHER_HEARTBEAT_MAX_AGE_SECONDS
    sync_batch_window_ms: int = DEFAULT_SYNC_BATCH_WINDOW_MS
    sync_max_attempts: int = DEFAULT_SYNC_MAX_ATTEMPTS
    sync_backoff_base_seconds: int = DEFAULT_SYNC_BACKOFF_BASE_SECONDS
    sync_backoff_max_seconds: int = DEFAULT_SYNC_BACKOFF_MAX_SECONDS
    hubspot_daily_limit_pause_seconds: int = DEFAULT_HUBSPOT_DAILY_LIMIT_PAUSE_SECONDS
    hubspot_auth_failure_pause_seconds: int = DEFAULT_HUBSPOT_AUTH_FAILURE_PAUSE_SECONDS
    # --- End of worker and CRM settings. ---

    # Custom database settings (CRM_TARGET=custom). The URL and the password are secrets.
    database_url: str | None = field(default=None, repr=False)
    customdb_readonly_role: str = DEFAULT_CUSTOMDB_READONLY_ROLE
    customdb_readonly_password: str | None = field(default=None, repr=False)
    # Playbook timers and the direct WhatsApp sender (storesync.playbook_config,
    # storesync.whatsapp): the raw values, checked here and read by those modules.
    # WHATSAPP_ACCESS_TOKEN is among them, so the field stays out of repr.
    playbook_environ: dict[str, str] = field(default_factory=dict, repr=False)

    # Store API jobs (storesync.store_settings): reconciliation, subscriptions, backfill.
    shopify_shop_domain: str | None = None
    shopify_admin_access_token: str | None = field(default=None, repr=False)
    shopify_api_version: str = DEFAULT_SHOPIFY_API_VERSION
    shopify_admin_url: str | None = None
    woocommerce_site_url: str | None = None
    woocommerce_consumer_key: str | None = field(default=None, repr=False)
    woocommerce_consumer_secret: str | None = field(default=None, repr=False)
    store_api_timeout_seconds: int = DEFAULT_STORE_API_TIMEOUT_SECONDS
    reconcile_interval_seconds: int = DEFAULT_RECONCILE_INTERVAL_SECONDS
    reconcile_overlap_seconds: int = DEFAULT_RECONCILE_OVERLAP_SECONDS
    reconcile_first_lookback_hours: int = DEFAULT_RECONCILE_FIRST_LOOKBACK_HOURS
    public_base_url: str | None = None
    subscription_check_interval_seconds: int = DEFAULT_SUBSCRIPTION_CHECK_INTERVAL_SECONDS

    # Zoho CRM settings (CRM_TARGET=zoho). The client secret and refresh token are secrets.
    zoho_dc: str = DEFAULT_ZOHO_DC
    zoho_client_id: str | None = field(default=None, repr=False)
    zoho_client_secret: str | None = field(default=None, repr=False)
    zoho_refresh_token: str | None = field(default=None, repr=False)
    zoho_accounts_url: str | None = None
    zoho_edition: str = DEFAULT_ZOHO_EDITION
    zoho_user_licences: int = DEFAULT_ZOHO_USER_LICENCES
    zoho_credits_per_day: int | None = None
    zoho_concurrency: int | None = None
    zoho_timeout_seconds: int = DEFAULT_ZOHO_TIMEOUT_SECONDS
    zoho_credits_pause_seconds: int = DEFAULT_ZOHO_CREDITS_PAUSE_SECONDS
    zoho_auth_failure_pause_seconds: int = DEFAULT_ZOHO_AUTH_FAILURE_PAUSE_SECONDS

    # Consent and privacy requests (storesync.consent, storesync.privacy_actions).
    consent_store_writeback: bool = False
    consent_crm_pull_seconds: int = DEFAULT_CONSENT_CRM_PULL_SECONDS
    # HubSpot subscription type id per channel, for resubscribing after a store opt-in.
    hubspot_subscription_ids: Mapping[str, int] = field(default_factory=dict)
    hubspot_resubscribe_legal_basis: str = DEFAULT_LEGAL_BASIS
    privacy_crm_delete: bool = False
    # None means DATA_DIR/privacy-exports.
    privacy_export_dir: Path | None = None

    @property
    def sandbox_switch(self) -> str:
        """The setting that, once set, takes the service out of sandbox mode."""
        return sandbox_switch(self.crm_target)

    @property
    def queue_path(self) -> Path:
        """The SQLite queue file, used when ``redis_url`` is not set."""
        return self.data_dir / "queue.sqlite3"

    @property
    def state_path(self) -> Path:
        """The SQLite state file: the quarantine and the worker's sync state."""
        return self.data_dir / "state.sqlite3"

    @property
    def mapping_path(self) -> Path:
        """The field map the worker maps with."""
        return self.spec_dir / "mapping.yaml"

    def webhook_secrets(self, source: str) -> tuple[bytes, ...]:
        """Return the accepted secrets (HMAC keys) of ``source``."""
        return {
            "shopify": self.shopify_webhook_secrets,
            "woocommerce": self.woocommerce_webhook_secrets,
            "storefront": self.storefront_webhook_secrets,
        }[source]


# --- Reading the environment ---------------------------------------------------------


def read_env_file(path: Path) -> dict[str, str]:
    """Read ``KEY=VALUE`` lines from a ``.env`` file.

    Blank lines and lines starting with ``#`` are skipped, ``export`` before a name is
    allowed, and a value may be wrapped in single or double quotes (taken literally).
    An unquoted value ends at `` #``. There is no variable expansion and no multi-line value.

    Raises:
        SettingsError: a line is not ``KEY=VALUE`` (the message names the line number).
    """
    values: dict[str, str] = {}
    problems: list[SettingProblem] = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        name, equals, value = line.partition("=")
        name = name.strip()
        if not equals or not ENV_NAME_PATTERN.match(name):
            problems.append(SettingProblem(
                f"{path.name} line {number}", "is not in the form NAME=value.",
                "write one setting per line as NAME=value, or start the line with # to "
                "make it a comment."))
            continue
        values[name] = _unquote(value.strip())
    if problems:
        raise SettingsError(problems)
    return values


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    comment = value.find(" #")
    return value[:comment].rstrip() if comment >= 0 else value


def merged_environment(environ: Mapping[str, str], env_file: Path | None) -> dict[str, str]:
    """Return ``env_file``'s values (when the file exists) overlaid by ``environ``."""
    values = read_env_file(env_file) if env_file is not None and env_file.is_file() else {}
    values.update(environ)
    return values


# --- Parsing single values -----------------------------------------------------------


class _Reader:
    """Reads typed values from the merged environment and collects problems."""

    def __init__(self, values: Mapping[str, str], service_dir: Path) -> None:
        self.values = values
        self.service_dir = service_dir
        self.problems: list[SettingProblem] = []

    def text(self, name: str) -> str | None:
        value = self.values.get(name, "").strip()
        return value or None

    def add(self, name: str, problem: str, fix: str) -> None:
        self.problems.append(SettingProblem(name, problem, fix))

    def integer(self, name: str, default: int, minimum: int, maximum: int,
                example: int | None = None) -> int:
        raw = self.text(name)
        if raw is None:
            return default
        fix = (f"set {name} to a whole number from {minimum} to {maximum}, "
               f"e.g. {name}={example if example is not None else default}.")
        try:
            value = int(raw.replace("_", ""))
        except ValueError:
            self.add(name, f"{raw!r} is not a whole number.", fix)
            return default
        if not minimum <= value <= maximum:
            self.add(name, f"{value} is outside the allowed range {minimum} to {maximum}.", fix)
            return default
        return value

    def path(self, name: str, default: Path) -> Path:
        raw = self.text(name)
        if raw is None:
            return default
        path = Path(raw).expanduser()
        return path if path.is_absolute() else (self.service_dir / path).resolve()

    def secrets(self, name: str, decode: Callable[[str], bytes]) -> tuple[bytes, ...]:
        raw = self.text(name)
        if raw is None:
            return ()
        keys: list[bytes] = []
        for position, item in enumerate((part.strip() for part in raw.split(",")), start=1):
            if not item:
                continue
            if PLACEHOLDER_PREFIX in item:
                self.add(name, f"secret {position} is still the placeholder from .env.example.",
                         f"set {name} to the real webhook secret, or remove the line to "
                         "use the sandbox placeholder while the service is in sandbox mode.")
                continue
            try:
                keys.append(decode(item))
            except ValueError as error:
                self.add(name, f"secret {position} {error}.",
                         "copy the secret exactly as the sender shows it, e.g. "
                         "whsec_ followed by base64 text; separate several secrets with commas.")
        return tuple(keys)


def _plain_secret(text: str) -> bytes:
    return text.encode("utf-8")


# --- Loading ---------------------------------------------------------------------------


def load_settings(environ: Mapping[str, str], *, env_file: Path | None = None,
                  service_dir: Path = SERVICE_DIR,
                  webhook_secrets_required: bool = True) -> Settings:
    """Read, check and return the settings.

    Args:
        environ: The environment, usually ``os.environ``; it wins over ``env_file``.
        env_file: A ``.env`` file to read first, when it exists (the CLI passes
            ``<service>/.env``; tests pass None).
        service_dir: The folder that relative paths are resolved against.
        webhook_secrets_required: False for commands that receive no webhooks (``db``,
            ``export``): a missing webhook secret is then no problem.

    Raises:
        SettingsError: one or more settings are invalid; all are listed.
    """
    reader = _Reader(merged_environment(environ, env_file), service_dir)
    target = _crm_target(reader)
    common = _common_settings(reader, target)
    spec_dir = common["spec_dir"]
    platforms = _accepted_platforms(reader, spec_dir)
    secrets = _webhook_secrets(reader, platforms, sandbox=common["sandbox"],
                               required=webhook_secrets_required)
    pixel = _pixel_settings(reader, platforms, spec_dir)
    worker = _worker_settings(reader, target)
    worker.update(_custom_database_settings(reader))
    worker.update(store_api_settings(reader))
    worker.update(_playbook_settings(reader, common["spec_dir"]))
    worker.update(_zoho_settings(reader, target))
    worker.update(_privacy_settings(reader, target))
    if reader.problems:
        raise SettingsError(reader.problems)
    settings = Settings(**common, **secrets, accepted_platforms=platforms, **pixel, **worker)
    for source in SECRET_VARIABLES:
        for key in settings.webhook_secrets(source):
            logs.register_secret(key)
    return settings


def _playbook_settings(reader: _Reader, spec_dir: Path) -> dict[str, Any]:
    """Read and check the playbook timer and WhatsApp sender settings."""
    from .playbook_config import CART_DELAY_SETTING, cart_delay_of_spec, cart_delay_problem
    from .whatsapp import SETTINGS as WHATSAPP_SETTINGS
    from .whatsapp import WhatsAppSettingsError, load_whatsapp_settings

    values = {name: value for name in (CART_DELAY_SETTING, *WHATSAPP_SETTINGS)
              if (value := reader.text(name)) is not None}
    delay = cart_delay_of_spec(spec_dir)
    if CART_DELAY_SETTING in values and delay is not None:
        problem = cart_delay_problem(values[CART_DELAY_SETTING], delay)
        if problem is not None:
            reader.add(CART_DELAY_SETTING, *problem)
    try:
        load_whatsapp_settings(values)
    except WhatsAppSettingsError as error:
        for name, problem_text, fix in error.problems:
            reader.add(name, problem_text, fix)
    if "WHATSAPP_ACCESS_TOKEN" in values:
        logs.register_secret(values["WHATSAPP_ACCESS_TOKEN"].encode("utf-8"))
    return {"playbook_environ": values}


def crm_target_of(environ: Mapping[str, str], *, env_file: Path | None = None,
                  service_dir: Path = SERVICE_DIR) -> str:
    """Return the CRM target the settings select, without checking any other setting.

    An invalid ``CRM_TARGET`` gives the field map's CRM, as in ``load_settings``, which
    then reports it.
    """
    return _crm_target(_Reader(merged_environment(environ, env_file), service_dir))


def sandbox_switch(crm_target: str) -> str:
    """Return the setting whose absence puts a service on ``crm_target`` in sandbox mode."""
    return SANDBOX_SWITCHES.get(crm_target, "HUBSPOT_ACCESS_TOKEN")


def _common_settings(reader: _Reader, crm_target: str) -> dict[str, Any]:
    switch = sandbox_switch(crm_target)
    sandbox = reader.text(switch) is None
    host = reader.text("HOST") or DEFAULT_HOST
    if sandbox and host not in LOOPBACK_HOSTS:
        reader.add("HOST", f"{host!r} is not a loopback address, and the service is in sandbox "
                           f"mode ({switch} is not set), where webhook secrets may "
                           "be public placeholders.",
                   f"set HOST=127.0.0.1 for the sandbox, or set {switch} and the "
                   "webhook secrets to serve other hosts.")
    return {
        "storefront_timestamp_tolerance_seconds": reader.integer(
            "STOREFRONT_TIMESTAMP_TOLERANCE_SECONDS",
            DEFAULT_STOREFRONT_TIMESTAMP_TOLERANCE_SECONDS, 1,
            MAX_STOREFRONT_TIMESTAMP_TOLERANCE_SECONDS),
        "max_body_bytes": reader.integer("MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES,
                                         MIN_MAX_BODY_BYTES, MAX_MAX_BODY_BYTES),
        "dedup_window_hours": reader.integer("DEDUP_WINDOW_HOURS", DEFAULT_DEDUP_WINDOW_HOURS,
                                             1, MAX_DEDUP_WINDOW_HOURS),
        "redis_url": _redis_url(reader),
        "redis_key_prefix": _redis_key_prefix(reader),
        "queue_sqlite_synchronous": _queue_synchronous(reader, "QUEUE_SQLITE_SYNCHRONOUS",
                                                       DEFAULT_QUEUE_SQLITE_SYNCHRONOUS),
        "worker_queue_sqlite_synchronous": _queue_synchronous(
            reader, "WORKER_QUEUE_SQLITE_SYNCHRONOUS", DEFAULT_WORKER_QUEUE_SQLITE_SYNCHRONOUS),
        "inbox_grace_seconds": reader.integer("INBOX_GRACE_SECONDS", DEFAULT_INBOX_GRACE_SECONDS,
                                              1, MAX_INBOX_GRACE_SECONDS),
        "inbox_scan_interval_seconds": reader.integer(
            "INBOX_SCAN_INTERVAL_SECONDS", DEFAULT_INBOX_SCAN_INTERVAL_SECONDS, 1,
            MAX_INBOX_SCAN_INTERVAL_SECONDS),
        "data_dir": _data_dir(reader),
        "spec_dir": reader.path("SPEC_DIR", reader.service_dir.parent / "integration"),
        "desired_state_path": reader.path(
            "DESIRED_STATE_PATH", reader.service_dir.parent / "crm" / "desired-state.yaml"),
        "store_id": reader.text("STORE_ID"),
        "log_level": _log_level(reader),
        "host": host,
        "port": reader.integer("PORT", DEFAULT_PORT, 1, 65535),
        "worker_metrics_port": (reader.integer("WORKER_METRICS_PORT", 0, 1, 65535, example=9100)
                                if reader.text("WORKER_METRICS_PORT") else None),
        "sandbox": sandbox,
    }


def _redis_url(reader: _Reader) -> str | None:
    url = reader.text("REDIS_URL")
    if url is not None and not url.startswith(REDIS_SCHEMES):
        # The URL may carry a password, so the message does not repeat it.
        reader.add("REDIS_URL", "does not start with redis://, rediss:// or unix://.",
                   "set REDIS_URL=redis://127.0.0.1:6379/0, or remove it to use the SQLite "
                   "queue in DATA_DIR.")
        return None
    return url


def _redis_key_prefix(reader: _Reader) -> str:
    prefix = reader.text("REDIS_KEY_PREFIX") or DEFAULT_REDIS_KEY_PREFIX
    if not REDIS_KEY_PREFIX_PATTERN.match(prefix):
        reader.add("REDIS_KEY_PREFIX", f"{prefix!r} may only contain letters, digits and _ . : - "
                                       "(1 to 64 characters).",
                   f"set REDIS_KEY_PREFIX={DEFAULT_REDIS_KEY_PREFIX} or another short name.")
        return DEFAULT_REDIS_KEY_PREFIX
    return prefix


def _queue_synchronous(reader: _Reader, name: str, default: str) -> str:
    mode = (reader.text(name) or default).upper()
    if mode not in QUEUE_SYNCHRONOUS_MODES:
        reader.add(name, f"{mode!r} is not a synchronous mode this service allows.",
                   f"set {name}=FULL (survives a power loss) or NORMAL (survives a crash of "
                   f"the process only), or remove it for {default}.")
        return default
    return mode


def _data_dir(reader: _Reader) -> Path:
    data_dir = reader.path("DATA_DIR", reader.service_dir / "var")
    if data_dir.exists() and not data_dir.is_dir():
        reader.add("DATA_DIR", f"{str(data_dir)!r} is a file, not a folder.",
                   "set DATA_DIR to a folder the service may write, e.g. DATA_DIR=var.")
    return data_dir


def _log_level(reader: _Reader) -> str:
    level = (reader.text("LOG_LEVEL") or "INFO").upper()
    if level not in LOG_LEVELS:
        reader.add("LOG_LEVEL", f"{level!r} is not a log level.",
                   f"set LOG_LEVEL to one of {', '.join(LOG_LEVELS)}.")
        return "INFO"
    return level


def _accepted_platforms(reader: _Reader, spec_dir: Path) -> tuple[str, ...]:
    mapping_path = spec_dir / "mapping.yaml"
    fix = ("set SPEC_DIR to the project's integration folder (default ../integration), "
           "or regenerate the project with rabt.")
    try:
        mapping = yaml.safe_load(mapping_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        reader.add("SPEC_DIR", f"{str(mapping_path)!r} does not exist.", fix)
        return ()
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        reader.add("SPEC_DIR", f"{str(mapping_path)!r} cannot be read: {error}", fix)
        return ()
    platforms = accepted_platforms(mapping) if isinstance(mapping, dict) else ()
    if not platforms:
        reader.add("SPEC_DIR", f"{str(mapping_path)!r} names no store platform this service "
                               "can receive webhooks from.", fix)
    return platforms


def _pixel_settings(reader: _Reader, platforms: tuple[str, ...],
                    spec_dir: Path) -> dict[str, Any]:
    """Return the fields of ``POST /pixel/shopify``, adding problems to ``reader``."""
    origins: list[str] = []
    for item in (reader.text("PIXEL_ALLOWED_ORIGINS") or "").split(","):
        origin = item.strip().rstrip("/")
        if not origin:
            continue
        if not ORIGIN_PATTERN.match(origin):
            reader.add("PIXEL_ALLOWED_ORIGINS", f"{origin!r} is not an origin.",
                       "list origins as scheme and host with no path, separated by commas, "
                       "e.g. PIXEL_ALLOWED_ORIGINS=https://example-store.myshopify.com, or "
                       "remove the setting to accept any origin.")
            continue
        origins.append(origin.lower())
    return {
        "pixel_enabled": "shopify" in platforms and _pixel_entity_enabled(spec_dir),
        "pixel_max_body_bytes": reader.integer(
            "PIXEL_MAX_BODY_BYTES", DEFAULT_PIXEL_MAX_BODY_BYTES, MIN_PIXEL_MAX_BODY_BYTES,
            MAX_PIXEL_MAX_BODY_BYTES),
        "pixel_allowed_origins": tuple(origins),
    }


def _pixel_entity_enabled(spec_dir: Path) -> bool:
    """Return whether the field map has the event entity enabled.

    A missing or unreadable field map is reported by ``_accepted_platforms``.
    """
    try:
        mapping = yaml.safe_load((spec_dir / "mapping.yaml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return False
    entities = mapping.get("entities") if isinstance(mapping, dict) else None
    entity = entities.get(PIXEL_ENTITY) if isinstance(entities, dict) else None
    return isinstance(entity, dict) and bool(entity.get("enabled", True))


def _webhook_secrets(reader: _Reader, platforms: tuple[str, ...], *,
                     sandbox: bool, required: bool = True) -> dict[str, Any]:
    found: dict[str, Any] = {}
    placeholders: list[str] = []
    for source, variable in SECRET_VARIABLES.items():
        decode = decode_standard_secret if source == "storefront" else _plain_secret
        keys = reader.secrets(variable, decode)
        if not keys and source in platforms and reader.text(variable) is None:
            if sandbox:
                keys = (decode(SANDBOX_SECRETS[source]),)
                placeholders.append(source)
            elif required:
                reader.add(variable, f"is not set, and this project receives {source} webhooks.",
                           f"set {variable} to the webhook secret {_secret_source(source)}; "
                           "separate several secrets with commas while rotating.")
        found[f"{source}_webhook_secrets"] = keys
    found["sandbox_secret_platforms"] = tuple(placeholders)
    return found


def _secret_source(source: str) -> str:
    return {
        "shopify": ("shown in the app's settings (the client secret), plus the key shown under "
                    "Settings > Notifications > Webhooks for subscriptions made in the admin"),
        "woocommerce": "entered in WooCommerce > Settings > Advanced > Webhooks",
        "storefront": "that the storefront signs with (whsec_ followed by base64)",
    }[source]


# --- Worker and CRM settings (worker side): read them in this function. -----------------


def _field_map_crm(reader: _Reader) -> str | None:
    """Return the ``crm`` of the field map in SPEC_DIR, or None when it cannot be read.

    A missing or unreadable field map is reported by ``_accepted_platforms``.
    """
    path = reader.path("SPEC_DIR", reader.service_dir.parent / "integration") / "mapping.yaml"
    try:
        mapping = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    crm = mapping.get("crm") if isinstance(mapping, dict) else None
    return str(crm).lower() if crm else None


def _crm_target(reader: _Reader) -> str:
    """Return CRM_TARGET, by default the field map's ``crm`` (hubspot when it has none).

    A CRM_TARGET that names another CRM than the field map is accepted here; the
    worker and ``run`` stop on it with the fix.
    """
    crm = _field_map_crm(reader)
    default = crm if crm in CRM_TARGETS else "hubspot"
    target = (reader.text("CRM_TARGET") or default).lower()
    if target not in CRM_TARGETS:
        reader.add("CRM_TARGET", f"{target!r} is not a CRM target.",
                   f"set CRM_TARGET to one of {', '.join(CRM_TARGETS)}, or remove it to follow "
                   f"the field map (crm: {crm or 'not set'}).")
        target = default
    return target


def _worker_settings(reader: _Reader, target: str) -> dict[str, Any]:
    """Return the worker and CRM fields of :class:`Settings`, adding problems to ``reader``."""
    token = reader.text("HUBSPOT_ACCESS_TOKEN")
    if token is not None:
        logs.register_secret(token)
        if PLACEHOLDER_PREFIX in token:
            reader.add("HUBSPOT_ACCESS_TOKEN", "is still the placeholder from .env.example.",
                       "set it to the private app's access token, or remove it to run the "
                       "sandbox against the local HubSpot stand-in.")
    base_url = (reader.text("HUBSPOT_BASE_URL") or DEFAULT_HUBSPOT_BASE_URL).rstrip("/")
    if not base_url.startswith(("https://", "http://")):
        reader.add("HUBSPOT_BASE_URL", f"{base_url!r} does not start with https:// or http://.",
                   f"set HUBSPOT_BASE_URL={DEFAULT_HUBSPOT_BASE_URL}, or remove it.")
        base_url = DEFAULT_HUBSPOT_BASE_URL
    backoff_base = reader.integer("SYNC_BACKOFF_BASE_SECONDS", DEFAULT_SYNC_BACKOFF_BASE_SECONDS,
                                  1, 3600)
    backoff_max = reader.integer("SYNC_BACKOFF_MAX_SECONDS", DEFAULT_SYNC_BACKOFF_MAX_SECONDS,
                                 1, 86_400)
    if backoff_max < backoff_base:
        reader.add("SYNC_BACKOFF_MAX_SECONDS", f"{backoff_max} is below "
                   f"SYNC_BACKOFF_BASE_SECONDS ({backoff_base}).",
                   "set SYNC_BACKOFF_MAX_SECONDS to at least SYNC_BACKOFF_BASE_SECONDS.")
    return {
        "crm_target": target,
        "hubspot_access_token": token,
        "hubspot_base_url": base_url,
        "hubspot_rate_limit_per_10s": reader.integer(
            "HUBSPOT_RATE_LIMIT_PER_10S", DEFAULT_HUBSPOT_RATE_LIMIT_PER_10S, 2,
            MAX_HUBSPOT_RATE_LIMIT_PER_10S, example=190),
        "hubspot_search_rate_per_second": reader.integer(
            "HUBSPOT_SEARCH_RATE_PER_SECOND", DEFAULT_HUBSPOT_SEARCH_RATE_PER_SECOND, 1, 100),
        "hubspot_timeout_seconds": reader.integer(
            "HUBSPOT_TIMEOUT_SECONDS", DEFAULT_HUBSPOT_TIMEOUT_SECONDS, 1, 300),
        "sync_flusher": _sync_flusher(reader),
        "flusher_heartbeat_max_age_seconds": reader.integer(
            "FLUSHER_HEARTBEAT_MAX_AGE_SECONDS", DEFAULT_FLUSHER_HEARTBEAT_MAX_AGE_SECONDS,
            MIN_FLUSHER_HEARTBEAT_MAX_AGE_SECONDS, MAX_FLUSHER_HEARTBEAT_MAX_AGE_SECONDS),
        "sync_batch_window_ms": reader.integer(
            "SYNC_BATCH_WINDOW_MS", DEFAULT_SYNC_BATCH_WINDOW_MS, 0, MAX_SYNC_BATCH_WINDOW_MS),
        "sync_max_attempts": reader.integer("SYNC_MAX_ATTEMPTS", DEFAULT_SYNC_MAX_ATTEMPTS, 1, 100),
        "sync_backoff_base_seconds": backoff_base,
        "sync_backoff_max_seconds": backoff_max,
        "hubspot_daily_limit_pause_seconds": reader.integer(
            "HUBSPOT_DAILY_LIMIT_PAUSE_SECONDS", DEFAULT_HUBSPOT_DAILY_LIMIT_PAUSE_SECONDS,
            MIN_HUBSPOT_DAILY_LIMIT_PAUSE_SECONDS, MAX_HUBSPOT_DAILY_LIMIT_PAUSE_SECONDS),
        "hubspot_auth_failure_pause_seconds": reader.integer(
            "HUBSPOT_AUTH_FAILURE_PAUSE_SECONDS", DEFAULT_HUBSPOT_AUTH_FAILURE_PAUSE_SECONDS,
            MIN_HUBSPOT_AUTH_FAILURE_PAUSE_SECONDS, MAX_HUBSPOT_AUTH_FAILURE_PAUSE_SECONDS),
    }


def _sync_flusher(reader: _Reader) -> str:
    mode = (reader.text("SYNC_FLUSHER") or DEFAULT_SYNC_FLUSHER).lower()
    if mode not in SYNC_FLUSHER_MODES:
        reader.add("SYNC_FLUSHER", f"{mode!r} is not a place the flusher can run.",
                   "set SYNC_FLUSHER=process (run `python -m storesync flusher` beside the "
                   "worker) or thread (the worker runs it), or remove it for process.")
        return DEFAULT_SYNC_FLUSHER
    return mode


# --- End of worker and CRM settings. ------------------------------------------------------


# --- Custom database settings (CRM_TARGET=custom). -------------------------------------


def _custom_database_settings(reader: _Reader) -> dict[str, Any]:
    """Return the custom database fields of :class:`Settings`, adding problems to ``reader``.

    ``DATABASE_URL`` is optional here, because the commands that use the database
    report a missing URL with the fix, and projects on HubSpot never need it.
    """
    url = reader.text("DATABASE_URL")
    if url is not None:
        # The URL may carry a password, so the message shows it masked.
        problem = database_url_problem(url)
        if problem is not None:
            reader.add("DATABASE_URL", *problem)
            url = None
        else:
            password = urlsplit(url).password
            if password:
                logs.register_secret(password)
            if PLACEHOLDER_PREFIX in url:
                reader.add("DATABASE_URL", "still holds the placeholder from .env.example.",
                           "set the real user, password, host and database name.")
                url = None
    role = reader.text("CUSTOMDB_READONLY_ROLE") or DEFAULT_CUSTOMDB_READONLY_ROLE
    if not POSTGRES_ROLE_PATTERN.match(role):
        reader.add("CUSTOMDB_READONLY_ROLE", f"{role!r} is not a plain PostgreSQL role name.",
                   "use lower-case letters, digits and _ (up to 63 characters), e.g. "
                   f"CUSTOMDB_READONLY_ROLE={DEFAULT_CUSTOMDB_READONLY_ROLE}.")
        role = DEFAULT_CUSTOMDB_READONLY_ROLE
    password = reader.text("CUSTOMDB_READONLY_PASSWORD")
    if password is not None:
        logs.register_secret(password)
        if PLACEHOLDER_PREFIX in password:
            reader.add("CUSTOMDB_READONLY_PASSWORD", "is still the placeholder from .env.example.",
                       "set it to a new random password for the BI role, or remove it.")
            password = None
    return {"database_url": url, "customdb_readonly_role": role,
            "customdb_readonly_password": password}


def _zoho_settings(reader: _Reader, crm_target: str) -> dict[str, Any]:
    """Return the Zoho fields of :class:`Settings`; see :mod:`storesync.zoho_settings`."""
    return zoho_settings_from(reader, crm_target)


# --- Consent and privacy settings. ---------------------------------------------------------


def _switch(reader: _Reader, name: str) -> bool:
    raw = reader.text(name)
    if raw is None or raw.lower() in FALSE_WORDS:
        return False
    if raw.lower() in TRUE_WORDS:
        return True
    reader.add(name, f"{raw!r} is not on or off.",
               f"set {name}=true or {name}=false, or remove it for false.")
    return False


def _privacy_settings(reader: _Reader, crm_target: str) -> dict[str, Any]:
    """Return the consent and privacy fields of :class:`Settings`, adding problems to ``reader``."""
    export_dir = None
    if reader.text("PRIVACY_EXPORT_DIR") is not None:
        export_dir = reader.path("PRIVACY_EXPORT_DIR", reader.service_dir)
        if export_dir.exists() and not export_dir.is_dir():
            reader.add("PRIVACY_EXPORT_DIR", f"{str(export_dir)!r} is a file, not a folder.",
                       "set PRIVACY_EXPORT_DIR to a folder, or remove it for "
                       "DATA_DIR/privacy-exports.")
            export_dir = None
    return {
        "consent_store_writeback": _switch(reader, "CONSENT_STORE_WRITEBACK"),
        "consent_crm_pull_seconds": reader.integer(
            "CONSENT_CRM_PULL_SECONDS", DEFAULT_CONSENT_CRM_PULL_SECONDS, 0,
            MAX_CONSENT_CRM_PULL_SECONDS),
        "hubspot_subscription_ids": _subscription_ids(reader),
        "hubspot_resubscribe_legal_basis": _legal_basis(reader),
        "privacy_crm_delete": _privacy_crm_delete(reader, crm_target),
        "privacy_export_dir": export_dir,
    }


def _subscription_ids(reader: _Reader) -> dict[str, int]:
    """Read HUBSPOT_SUBSCRIPTION_IDS, ``channel=id`` pairs separated by commas."""
    name = "HUBSPOT_SUBSCRIPTION_IDS"
    raw = reader.text(name) or ""
    found: dict[str, int] = {}
    for part in filter(None, (piece.strip() for piece in raw.split(","))):
        channel, _, number = (piece.strip() for piece in part.partition("="))
        channel = channel.lower()
        if channel not in CONSENT_CHANNELS or not number.isdigit() or int(number) == 0:
            reader.add(name, f"{raw!r} has {part!r}, which is not a channel and a "
                       "subscription type id.",
                       f"set {name} to channel=id pairs separated by commas, with the "
                       "channel email, sms or whatsapp and the id HubSpot lists for the "
                       "subscription type, e.g. email=12345,whatsapp=67890.")
        elif channel in found:
            reader.add(name, f"{raw!r} names the {channel} channel twice.",
                       f"keep one subscription type id per channel in {name}.")
        else:
            found[channel] = int(number)
    return found


def _legal_basis(reader: _Reader) -> str:
    """Read HUBSPOT_RESUBSCRIBE_LEGAL_BASIS, one of HubSpot's legal bases."""
    name = "HUBSPOT_RESUBSCRIBE_LEGAL_BASIS"
    raw = reader.text(name)
    if raw is None:
        return DEFAULT_LEGAL_BASIS
    if raw.upper() not in LEGAL_BASES:
        reader.add(name, f"{raw!r} is not a HubSpot legal basis.",
                   f"set {name} to one of {', '.join(LEGAL_BASES)}, or remove it for "
                   f"{DEFAULT_LEGAL_BASIS}.")
        return DEFAULT_LEGAL_BASIS
    return raw.upper()


def _privacy_crm_delete(reader: _Reader, crm_target: str) -> bool:
    """Read PRIVACY_CRM_DELETE, which only a CRM with a delete call can honour."""
    on = _switch(reader, "PRIVACY_CRM_DELETE")
    if on and crm_target == "custom":
        reader.add("PRIVACY_CRM_DELETE", "is on, but CRM_TARGET is custom: the customer "
                   "database is no CRM the service can ask to delete a contact, and a "
                   "redaction always deletes the customer's rows there.",
                   "remove PRIVACY_CRM_DELETE or set it to false.")
        return False
    return on
