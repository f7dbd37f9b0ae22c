"""Serve an ASGI app under a real uvicorn server on 127.0.0.1 for the length of a test.

Usage::

    with serve(create_app()) as base_url:
        httpx.get(f"{base_url}/_standin/health")

The server binds a free port chosen by the operating system, runs in a daemon
thread and is stopped when the ``with`` block ends, so tests never share a port.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

LOOPBACK_HOST = "127.0.0.1"
START_TIMEOUT_SECONDS = 10.0
STOP_TIMEOUT_SECONDS = 10.0


@contextmanager
def serve(app: Any, host: str = LOOPBACK_HOST) -> Iterator[str]:
    """Run ``app`` under uvicorn on a free port of ``host`` and yield its base URL.

    Args:
        app: Any ASGI application.
        host: A loopback address to bind; 127.0.0.1 unless a test needs ``::1``.

    Yields:
        The base URL without a trailing slash, such as ``http://127.0.0.1:50123``.

    Raises:
        RuntimeError: The server did not start within ``START_TIMEOUT_SECONDS``.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        _wait_until_started(server, thread)
        url_host = f"[{host}]" if family == socket.AF_INET6 else host
        yield f"http://{url_host}:{port}"
    finally:
        server.should_exit = True
        thread.join(STOP_TIMEOUT_SECONDS)
        sock.close()


def _wait_until_started(server: uvicorn.Server, thread: threading.Thread) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn exited before it started serving; read its log above")
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"uvicorn did not start within {START_TIMEOUT_SECONDS} seconds")
        time.sleep(0.01)
