"""Fixtures: the API over the in-memory fake node (tests/api/fake_node.py), reached by the SDK
through httpx transport injection, or over a real socket for WebSockets."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from sdk_helpers import URL, FakeNode, bridge, seeded_signer

from citychain.api import create_app
from citychain.crypto import Signer
from citychain.sdk import Client


@pytest.fixture
def alice() -> Signer:
    return seeded_signer(100)


@pytest.fixture
def bob() -> Signer:
    return seeded_signer(101)


@pytest.fixture
def node(alice: Signer) -> FakeNode:
    return FakeNode(genesis_balances={alice.address: 1_000})


@pytest.fixture
def client(node: FakeNode) -> Iterator[Client]:
    with Client(URL, transport=bridge(create_app(node))) as c:
        yield c


@pytest.fixture
def served(node: FakeNode) -> Iterator[str]:
    """The API over ``node`` on a real local port (uvicorn in a thread); yields its URL."""
    import uvicorn

    config = uvicorn.Config(
        create_app(node),
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="off",
        ws="websockets-sansio",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "test server did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
