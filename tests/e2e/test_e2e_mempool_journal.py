"""An accepted transaction survives kill -9: the node answers 202 only once it is journaled.

The transaction is sent with a nonce gap (the sender's next nonce plus one), so no block can
take it before the node is killed: after the restart it can only be in the mempool if the
journal kept it. Sending the missing nonce then commits both.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from nodeproc import NodeProcess  # type: ignore[import-not-found]

from citychain.sdk import Client

pytestmark = pytest.mark.slow


def test_a_transaction_answered_202_survives_kill9(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path / "node")
    node.start()
    try:
        alice, bob = node.signer("alice"), node.signer("bob")
        with Client(node.url) as client:
            nonce = client.account(alice.address).pending_nonce
            gapped = client.build_tx(
                alice, "token", "transfer", {"to": bob.address, "amount": 7}, nonce=nonce + 1
            )
            client.submit(gapped)  # 202: accepted, waiting for its nonce
            assert client.tx(gapped.hash).status == "pending"
        journal = node.home / "data" / "mempool.journal"
        assert journal.exists() and journal.stat().st_size > 0

        node.kill9()
        node.start(demo=False)
        with Client(node.url) as client:
            assert client.tx(gapped.hash).status == "pending"  # back from the journal
            before = client.balance(bob.address)
            first = client.send(alice, "token", "transfer", {"to": bob.address, "amount": 1})
            assert first.ok
            receipt = client.wait_for_commit(gapped.hash, timeout=30)
            assert receipt.ok
            assert client.balance(bob.address) == before + 8
    finally:
        node.stop()
