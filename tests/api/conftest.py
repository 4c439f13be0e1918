from __future__ import annotations

from collections.abc import Iterator

import pytest
from fake_node import FakeNode, TestClient, seeded_signer

from citychain.api import create_app
from citychain.crypto import Signer


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
def client(node: FakeNode) -> Iterator[TestClient]:
    with TestClient(create_app(node, max_body_bytes=64 * 1024, max_batch_txs=50)) as c:
        yield c
