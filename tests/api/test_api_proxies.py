"""Whose X-Forwarded-For and X-Forwarded-Proto the API believes: nobody's unless
``[api] trusted_proxies`` names the proxy. uvicorn's default believed them from 127.0.0.1,
so any process on the node's machine could pose as another client address (the per-address
limits) or as https."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from citychain.api.server import uvicorn_config
from citychain.errors import ConfigError
from citychain.node.config import ApiConfig, NodeConfig

FORGED = {"x-forwarded-for": "203.0.113.7", "x-forwarded-proto": "https"}


async def echo(scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
    """An ASGI app answering the client address and scheme the server gave it."""
    body = f"{scope['client'][0]} {scope['scheme']}".encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
    await send({"type": "http.response.body", "body": body})  # type: ignore[operator]


@contextmanager
def served(api: ApiConfig) -> Iterator[str]:
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn_config(echo, api))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)


def test_forwarded_headers_are_ignored_unless_the_proxy_is_trusted() -> None:
    with served(ApiConfig()) as url:
        assert httpx.get(url, headers=FORGED).text == "127.0.0.1 http"
    with served(ApiConfig(trusted_proxies="10.0.0.0/8")) as url:  # another proxy's network
        assert httpx.get(url, headers=FORGED).text == "127.0.0.1 http"
    with served(ApiConfig(trusted_proxies="10.0.0.0/8, 127.0.0.1")) as url:
        assert httpx.get(url, headers=FORGED).text == "203.0.113.7 https"


def test_a_trusted_proxy_that_is_no_address_is_refused_in_words(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "node.toml").write_text('[api]\ntrusted_proxies = "nginx.local"\n')
    with pytest.raises(ConfigError) as caught:
        NodeConfig.load(tmp_path)
    assert "[api] trusted_proxies: 'nginx.local' is no IP address or network" in str(caught.value)
