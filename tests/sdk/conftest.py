"""Fixtures: the API over the in-memory fake node (tests/api/fake_node.py), reached by the SDK
through httpx transport injection, or over a real socket for WebSockets."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sdk_helpers import URL, FakeNode, bridge, seeded_signer, serving

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
    """The API over ``node`` on a real local port; yields its URL."""
    with serving(create_app(node)) as url:
        yield url
