"""The API's view of a real (in-process) node: pruned and future heights answer with codes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from citychain.api.node_service import NodeServiceAdapter
from citychain.crypto import ED25519, Signer
from citychain.errors import ErrorCode, NotFound
from citychain.node import Node, NodeConfig
from citychain.node.config import StateSettings
from citychain.services.token.shapes import balance_key
from citychain.types import Commit, Validator
from citychain.types.genesis import Genesis


def test_state_proofs_at_pruned_and_future_heights(tmp_path: Path) -> None:
    val, alice = Signer(ED25519, b"\x01" * 32), Signer(ED25519, b"\x02" * 32)
    (tmp_path / "config").mkdir()
    Genesis(
        "svc",
        1,
        "ed25519",
        (Validator(val.public_key, 1, "v"),),
        contracts={"token": {"balances": {alice.address.hex(): 100}}},
    ).save(tmp_path / "config" / "genesis.json")
    node = Node(NodeConfig(home=tmp_path, state=StateSettings(retain_versions=2)), signer=val)
    try:
        for t in range(4):
            pending = node.chain.build_block([], 10 + t, val.public_key)
            node.chain.commit(pending, Commit.sign_single(val, "svc", pending.header))
        service = NodeServiceAdapter(node)
        key = balance_key(alice.address)
        latest = asyncio.run(service.state_proof(key, None))
        assert latest.height == 4 and latest.value is not None
        with pytest.raises(NotFound) as pruned:
            asyncio.run(service.state_proof(key, 1))
        assert pruned.value.code == ErrorCode.HEIGHT_PRUNED
        with pytest.raises(NotFound) as future:
            asyncio.run(service.state_proof(key, 9))
        assert future.value.code == ErrorCode.HEIGHT_NOT_COMMITTED
    finally:
        node.close()
