"""A real node's chain with three DIDs for the resolution tests: ``did`` (live), ``gone``
(deactivated at the second block) and ``key`` (a did:key), all of one signer, ``alice``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from citychain.crypto import ED25519, Signer
from citychain.node import Node, NodeConfig
from citychain.services.identity.sdk._dids import DID_GAS_LIMIT
from citychain.services.identity.shapes import citychain_did, did_key, multikey_encode
from citychain.types import Commit, Transaction, Validator
from citychain.types.genesis import Genesis

#: The signer of every transaction of the world.
ALICE = Signer(ED25519, b"\x02" * 32)


def tx(nonce: int, method: str, args: dict[str, Any]) -> Transaction:
    """An ``identity`` call signed by :data:`ALICE`."""
    return Transaction.create(
        ALICE,
        chain_id="svc",
        nonce=nonce,
        contract="identity",
        method=method,
        args=args,
        gas_limit=DID_GAS_LIMIT,
    )


def counting_queries(world: World, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The queries the node is asked from now on (contract, method, arguments), as a list
    that grows."""
    asked: list[object] = []
    real = world.node.query

    def counting(*args: object, **kwargs: object) -> object:
        asked.append(args[:3])
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(world.node, "query", counting)
    return asked


class World:
    def __init__(self, tmp_path: Path) -> None:
        val, alice = Signer(ED25519, b"\x01" * 32), ALICE
        (tmp_path / "config").mkdir()
        Genesis("svc", 1, "ed25519", (Validator(val.public_key, 1, "v"),)).save(
            tmp_path / "config" / "genesis.json"
        )
        self.node = Node(NodeConfig(home=tmp_path), signer=val)
        mk = multikey_encode(alice.public_key)
        doc = {
            "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"],
            "verificationMethod": [{"id": "#key-1", "type": "Multikey", "publicKeyMultibase": mk}],
            "authentication": ["#key-1"],
            "capabilityInvocation": ["#key-1"],
        }

        made = [tx(0, "create_did", {"document": doc}), tx(1, "create_did", {"document": doc})]
        self.did, self.gone = (citychain_did(t.hash[:16]) for t in made)
        self._commit(made, 10_000)
        self._commit([tx(2, "deactivate_did", {"did": self.gone})], 20_000)
        self.key = did_key(alice.public_key)

    def _commit(self, txs: list[Transaction], time_ms: int) -> None:
        chain, val = self.node.chain, self.node.signer
        pending = chain.build_block(txs, time_ms, val.public_key)
        assert all(r.ok for r in pending.receipts), [r.error for r in pending.receipts]
        chain.commit(pending, Commit.sign_single(val, "svc", pending.header))
