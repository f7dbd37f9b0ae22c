"""Zoho access tokens: one refresh at a time across threads and processes, cached until near expiry.

Zoho hands out an access token for a refresh token at ``POST {accounts}/oauth/v2/token``
with ``grant_type=refresh_token``; the answer carries ``access_token``, ``expires_in``
(3,600 s) and ``api_domain``, the host every CRM call of that account goes to. Zoho
Accounts limits how many tokens one refresh token may get (about ten per ten minutes,
at most 30 live ones), so the service never refreshes per call. Every process shares
the token: in ``zoho-token.json`` in the data folder (mode 0600) under an exclusive lock
on ``zoho-token.lock`` there, or in Redis under a Redis lock when ``REDIS_URL`` is set.
When two processes find the token stale at once, one refreshes and the other reads its
result. The shared token carries a fingerprint of the accounts server, client id and
refresh token it was issued for. A token cached before a change of account or of
sandbox stand-in is discarded, so it is not sent to an ``api_domain`` that no longer
serves it.

Failures come back from Zoho Accounts with HTTP 200 and ``{"error": ...}``. A client id
the data centre does not know gives ``invalid_client``, and a refresh token issued by
another data centre gives ``invalid_code``, so both messages name ``ZOHO_DC``.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx
import redis

from . import logs
from .hubspot import AuthFailed, CrmUnavailable, SettingsRejected
from .runtime.zoho_regions import ZOHO_ACCOUNTS_BY_DC

log = logging.getLogger("storesync.zoho")

TOKEN_PATH = "/oauth/v2/token"
TOKEN_FILE_NAME = "zoho-token.json"
LOCK_FILE_NAME = "zoho-token.lock"
# Zoho's tokens live an hour. A token is replaced 5 minutes before it expires, so a
# call that starts just before that never carries a token that dies on the way.
REFRESH_MARGIN_SECONDS = 300
# How long the Redis refresh lock lives when its holder dies, and how long others wait
# for it: a refresh is one call with a 10-second timeout.
REDIS_LOCK_SECONDS = 30
DEFAULT_EXPIRES_IN_SECONDS = 3600
# Hosts where the API domain may use plain http: the local stand-in.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
WRONG_DC_ERRORS = frozenset({"invalid_client"})
REJECTED_TOKEN_ERRORS = frozenset({"invalid_code", "invalid_token"})
# Errors that stay until a setting changes. Other codes, such as the error for too many
# refreshes, may pass, so they pause and retry.
PERMANENT_ERRORS = WRONG_DC_ERRORS | REJECTED_TOKEN_ERRORS


class TokenRejected(AuthFailed):
    """Zoho Accounts rejected the client or the refresh token, for the reason in the message."""


class ZohoSettingsRejected(TokenRejected, SettingsRejected):
    """Zoho Accounts rejected ``ZOHO_DC``, the client or the refresh token for good.

    Raised for ``invalid_client``, a client the data centre does not know, and for a
    refresh token that another data centre issued or that was revoked. The message
    names the setting to change.
    """


@dataclass(frozen=True)
class AccessToken:
    """An access token, the API domain it works on and when it expires (epoch seconds).

    ``fingerprint`` names the accounts server, client and refresh token the token was
    issued for (:func:`token_fingerprint`); a cached token without the current one is
    not used.
    """

    value: str
    api_domain: str
    expires_at: float
    fingerprint: str = ""


def token_fingerprint(accounts_url: str, client_id: str, refresh_token: str) -> str:
    """Return a SHA-256 digest of the accounts server, client id and refresh token.

    The refresh token enters only as its own SHA-256 digest, and the result is one-way,
    so the fingerprint may be stored beside the access token.
    """
    secret_digest = hashlib.sha256(refresh_token.encode("utf-8")).hexdigest()
    source = json.dumps([accounts_url.rstrip("/"), client_id, secret_digest])
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def accounts_url_for(dc: str) -> str:
    """Return the accounts server of data centre ``dc`` (``com``, ``eu``, ``sa``, ...).

    Raises:
        ValueError: ``dc`` is not one of Zoho's data centres.
    """
    try:
        return ZOHO_ACCOUNTS_BY_DC[dc]
    except KeyError:
        raise ValueError(f"ZOHO_DC={dc!r} is not a Zoho data centre; use one of "
                         f"{', '.join(ZOHO_ACCOUNTS_BY_DC)}") from None


def token_error_message(code: str, dc: str, accounts_url: str) -> str:
    """Explain a Zoho Accounts ``error`` code; name the data centre when it is the likely cause."""
    if code in WRONG_DC_ERRORS:
        return (f"Zoho Accounts at {accounts_url} (ZOHO_DC={dc}) does not know this client "
                f"({code}). The client was most likely registered in another data centre: "
                "set ZOHO_DC to the data centre of the Zoho account (the domain its CRM opens "
                "on, such as zoho.sa or zoho.com), or check ZOHO_CLIENT_ID and "
                "ZOHO_CLIENT_SECRET.")
    if code in REJECTED_TOKEN_ERRORS:
        return (f"Zoho Accounts at {accounts_url} (ZOHO_DC={dc}) refused the refresh token "
                f"({code}). It was issued by another data centre, or revoked: check ZOHO_DC, "
                "or create a new refresh token with the offline access type and set "
                "ZOHO_REFRESH_TOKEN.")
    return (f"Zoho Accounts at {accounts_url} (ZOHO_DC={dc}) returned no access token "
            f"({code or 'no error code'}). Check ZOHO_CLIENT_ID, ZOHO_CLIENT_SECRET and "
            "ZOHO_REFRESH_TOKEN.")


def _api_domain(value: Any) -> str:
    """Check the ``api_domain`` Zoho returned: https, or http on this machine only."""
    url = httpx.URL(str(value or ""))
    if url.scheme == "https" or (url.scheme == "http" and url.host in LOOPBACK_HOSTS):
        return str(value).rstrip("/")
    raise TokenRejected(f"Zoho Accounts returned the API domain {value!r}, which is not an "
                        "https URL; the token is not used.", None)


class ZohoTokens:
    """Hands out Zoho access tokens; safe to share between threads.

    Args:
        client_id: ``ZOHO_CLIENT_ID``.
        client_secret: ``ZOHO_CLIENT_SECRET``.
        refresh_token: ``ZOHO_REFRESH_TOKEN``.
        dc: ``ZOHO_DC``, named in error messages.
        accounts_url: The accounts server to refresh at.
        cache: Where processes share the token and take turns to refresh it
            (:class:`FileTokenCache`, :class:`RedisTokenCache`); None keeps the token in
            this object only (tests, one-off commands).
        clock: Seconds since the epoch; tests inject their own.
    """

    def __init__(self, client_id: str, client_secret: str, refresh_token: str, *, dc: str,
                 accounts_url: str, cache: TokenCache | None = None,
                 timeout_seconds: float = 10.0,
                 transport: httpx.BaseTransport | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._form = {"grant_type": "refresh_token", "client_id": client_id,
                      "client_secret": client_secret, "refresh_token": refresh_token}
        self.dc = dc
        self.accounts_url = accounts_url.rstrip("/")
        self.fingerprint = token_fingerprint(self.accounts_url, client_id, refresh_token)
        self._cache = cache
        self._clock = clock
        self._http = httpx.Client(timeout=httpx.Timeout(timeout_seconds), transport=transport)
        self._lock = threading.Lock()
        self._token: AccessToken | None = None
        # The last token this object got from Zoho Accounts itself, not from the cache.
        self._issued: str | None = None
        self.refreshes = 0

    def close(self) -> None:
        """Close the HTTP connections."""
        self._http.close()

    def current(self) -> AccessToken:
        """Return a token valid for at least ``REFRESH_MARGIN_SECONDS``, refreshing it if needed.

        Raises:
            TokenRejected: Zoho rejected the client or the refresh token;
                :class:`ZohoSettingsRejected` when only a change of settings helps.
            CrmUnavailable: Zoho Accounts could not be reached or failed.
        """
        token = self._token
        if token is not None and self._fresh(token):
            return token
        with self._lock, self._shared_lock():
            # Another thread or process may have refreshed while this one waited.
            token = self._token if self._token and self._fresh(self._token) else self._read()
            if token is None or not self._fresh(token):
                token = self._refresh()
                self._write(token)
            self._token = token
            return token

    def reject(self, value: str) -> None:
        """Drop the token ``value`` after Zoho answered 401 INVALID_TOKEN to it.

        Only that token is dropped: when another thread already replaced it, the newer
        token stays, so a burst of 401s causes one refresh.
        """
        with self._lock, self._shared_lock():
            if self._token is not None and self._token.value == value:
                self._token = None
            stored = self._read()
            if stored is not None and stored.value == value:
                self._write(AccessToken(value, stored.api_domain, 0.0, self.fingerprint))

    def reject_unreachable(self, token: AccessToken) -> bool:
        """Drop ``token`` after its ``api_domain`` refused the connection; return whether it was.

        A token another process cached may name an API domain that is gone, such as a
        sandbox stand-in that was restarted. One this object got from Zoho Accounts
        names the current domain, so it is kept: refreshing it would not help, and
        Zoho Accounts allows only a few refreshes per refresh token in ten minutes.
        """
        if token.value == self._issued:
            return False
        log.warning("Zoho API domain refused the connection; refreshing the cached token",
                    extra={"resource": token.api_domain})
        self.reject(token.value)
        return True

    def _fresh(self, token: AccessToken) -> bool:
        return token.expires_at - REFRESH_MARGIN_SECONDS > self._clock()

    def _refresh(self) -> AccessToken:
        started = self._clock()
        try:
            response = self._http.post(f"{self.accounts_url}{TOKEN_PATH}", data=self._form)
        except httpx.HTTPError as error:
            raise CrmUnavailable(f"Zoho Accounts at {self.accounts_url} could not be reached: "
                                 f"{type(error).__name__}", None) from error
        if response.status_code >= 500 or response.status_code == 429:
            raise CrmUnavailable(f"Zoho Accounts returned {response.status_code} on the token "
                                 "refresh", response.status_code)
        try:
            data = response.json()
        except ValueError:
            data = {}
        if not isinstance(data, dict) or not data.get("access_token"):
            code = str(data.get("error") or "") if isinstance(data, dict) else ""
            rejected = ZohoSettingsRejected if code in PERMANENT_ERRORS else TokenRejected
            raise rejected(token_error_message(code, self.dc, self.accounts_url),
                                response.status_code, {"error": code})
        expires_in = data.get("expires_in")
        seconds = expires_in if isinstance(expires_in, int) and expires_in > 0 \
            else DEFAULT_EXPIRES_IN_SECONDS
        self.refreshes += 1
        logs.register_secret(str(data["access_token"]))
        log.info("Zoho access token refreshed", extra={"resource": self.accounts_url,
                                                       "expires_in": seconds})
        token = AccessToken(str(data["access_token"]), _api_domain(data.get("api_domain")),
                            started + seconds, self.fingerprint)
        self._issued = token.value
        return token

    @contextmanager
    def _shared_lock(self) -> Iterator[None]:
        if self._cache is None:
            yield
            return
        with self._cache.lock():
            yield

    def _read(self) -> AccessToken | None:
        """Return the shared token, or None when there is none or it is another account's."""
        token = None if self._cache is None else self._cache.read()
        if token is None or token.fingerprint == self.fingerprint:
            return token
        log.info("cached Zoho access token discarded: it was issued for another accounts "
                 "server, client id or refresh token", extra={"resource": self.accounts_url})
        return None

    def _write(self, token: AccessToken) -> None:
        if self._cache is not None:
            self._cache.write(token)


class TokenCache(Protocol):
    """Where processes share the access token, and the lock they refresh it under."""

    def lock(self) -> AbstractContextManager[None]:
        """Return a context manager that holds the refresh lock across processes."""

    def read(self) -> AccessToken | None:
        """Return the shared token, or None when there is none or it cannot be read."""

    def write(self, token: AccessToken) -> None:
        """Store ``token`` for the other processes."""


class FileTokenCache:
    """The token in ``zoho-token.json`` (mode 0600) of a folder, locked with ``flock``."""

    def __init__(self, folder: Path) -> None:
        """Share the token through ``folder``, usually the data folder."""
        self.folder = folder

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold an exclusive lock on ``zoho-token.lock``; it ends when the process does."""
        self.folder.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.folder / LOCK_FILE_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)

    def read(self) -> AccessToken | None:
        """Return the stored token, or None."""
        try:
            text = (self.folder / TOKEN_FILE_NAME).read_text(encoding="utf-8")
        except OSError:
            return None
        return _token_from_json(text)

    def write(self, token: AccessToken) -> None:
        """Replace the stored token in one step, so a reader never sees half a file."""
        path = self.folder / TOKEN_FILE_NAME
        temporary = path.with_suffix(".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(_token_json(token))
        os.replace(temporary, path)


class RedisTokenCache:
    """The token in a Redis key that expires with it, refreshed under a Redis lock."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        """Share the token through ``client`` under keys that start with ``prefix``."""
        self.client = client
        self.key = f"{prefix}:zoho:token"
        self.lock_key = f"{prefix}:zoho:token-lock"

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the refresh lock; it expires after REDIS_LOCK_SECONDS if its holder dies."""
        with self.client.lock(self.lock_key, timeout=REDIS_LOCK_SECONDS,
                              blocking_timeout=REDIS_LOCK_SECONDS):
            yield

    def read(self) -> AccessToken | None:
        """Return the stored token, or None."""
        value = self.client.get(self.key)
        if value is None:
            return None
        return _token_from_json(value.decode("utf-8") if isinstance(value, bytes) else value)

    def write(self, token: AccessToken) -> None:
        """Store the token until it expires."""
        seconds = max(1, int(token.expires_at - time.time()))
        self.client.set(self.key, _token_json(token), ex=seconds)


def token_cache_for(settings: Any) -> TokenCache:
    """Return the token cache of the backend ``settings`` names: Redis, else the data folder."""
    if settings.redis_url:
        return RedisTokenCache(redis.Redis.from_url(settings.redis_url),
                               settings.redis_key_prefix)
    return FileTokenCache(settings.data_dir)


def _token_json(token: AccessToken) -> str:
    return json.dumps({"access_token": token.value, "api_domain": token.api_domain,
                       "expires_at": token.expires_at, "fingerprint": token.fingerprint})


def _token_from_json(text: str) -> AccessToken | None:
    """Read a stored token; one written before fingerprints existed gets an empty one."""
    try:
        data = json.loads(text)
        return AccessToken(str(data["access_token"]), str(data["api_domain"]),
                           float(data["expires_at"]), str(data.get("fingerprint") or ""))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
