"""Fixtures shared by the service's tests: settings in a temporary DATA_DIR, queue backends
(SQLite, and Redis on 127.0.0.1:6379 under a per-test key prefix) and a real uvicorn
server running the intake app on a free 127.0.0.1 port.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from intake_support import (
    SHOPIFY_ROTATED_SECRET,
    SHOPIFY_SECRET,
    STOREFRONT_SECRET,
    WOOCOMMERCE_SECRET,
    RecordingHandler,
    serve,
    write_spec,
)
from storesync.intake import Clock, IntakeServices, create_app
from storesync.settings import Settings, load_settings

# The worker side's fixtures (CRM stand-in, worker context).
pytest_plugins = ["sync_support", "store_support", "zoho_support"]

REDIS_URL = "redis://127.0.0.1:6379/0"


def redis_url_or_skip() -> str:
    """Return the test Redis URL; skip when Redis is down, or fail when CI is set."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as error:
        reason = (f"Redis is not answering on 127.0.0.1:6379 ({error}); start it with "
                  "redis-server --daemonize yes --bind 127.0.0.1 --port 6379")
        if os.environ.get("CI"):
            pytest.fail(f"{reason}. CI is set, so the Redis tests must run.")
        pytest.skip(reason)
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Return a factory of settings for a project on ``platform``, with test secrets."""

    def build(platform: str = "shopify", **environ: str) -> Settings:
        values = {
            "DATA_DIR": str(tmp_path / "var"),
            "SPEC_DIR": str(write_spec(tmp_path / f"spec-{platform}", platform)),
            "SHOPIFY_WEBHOOK_SECRETS": f"{SHOPIFY_SECRET},{SHOPIFY_ROTATED_SECRET}",
            "WOOCOMMERCE_WEBHOOK_SECRETS": WOOCOMMERCE_SECRET,
            "STOREFRONT_WEBHOOK_SECRETS": STOREFRONT_SECRET,
            "STORE_ID": "test-store",
        }
        values.update(environ)
        return load_settings(values)

    return build


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
def backend_env(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """Environment that selects the queue backend; Redis keys get a prefix of their own."""
    if request.param == "sqlite":
        yield {}
        return
    url = redis_url_or_skip()
    prefix = f"storesync-test-{uuid.uuid4().hex[:12]}"
    yield {"REDIS_URL": url, "REDIS_KEY_PREFIX": prefix}
    client = redis.Redis.from_url(url)
    try:
        # huey names its keys "huey.*.<prefix without punctuation>".
        plain = prefix.replace("-", "")
        for pattern in (f"{prefix}:*", f"huey.*{plain}*"):
            for key in client.scan_iter(match=pattern):
                client.delete(key)
    finally:
        client.close()


@dataclass
class RunningIntake:
    """An intake app served by uvicorn, with its stores and a client for it."""

    base_url: str
    services: IntakeServices
    handler: RecordingHandler
    client: httpx.Client

    def post(self, source: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        """POST ``body`` to the webhook endpoint of ``source``."""
        return self.client.post(f"/webhooks/{source}", content=body, headers=headers)

    def depth(self) -> int:
        """Return how many jobs wait in the queue."""
        return self.services.queue.depth()


@pytest.fixture
def start_intake() -> Iterator[Callable[..., RunningIntake]]:
    """Return a function that serves an intake app for ``settings`` until the test ends."""
    with ExitStack() as stack:

        def start(settings: Settings, *, clock: Clock | None = None,
                  handler: RecordingHandler | None = None, **stores: Any) -> RunningIntake:
            handler = handler or RecordingHandler()
            extra: dict[str, Any] = {"clock": clock} if clock is not None else {}
            app = create_app(settings, handler=handler, **extra, **stores)
            base_url = stack.enter_context(serve(app))
            client = stack.enter_context(httpx.Client(base_url=base_url, timeout=10))
            return RunningIntake(base_url, app.state.services, handler, client)

        yield start
