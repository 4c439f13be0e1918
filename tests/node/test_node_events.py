"""A real node's event subscriptions: from a past height with no gap and no repeat, and a
subscriber that falls behind keeps every event before the one that did not fit."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from node_world import token_genesis

from citychain.crypto import ED25519, Signer
from citychain.errors import ErrorCode, NotFound
from citychain.node import Node, NodeConfig
from citychain.node import node as node_module
from citychain.types import Commit, CommittedEvent, Transaction

VAL, ALICE = Signer(ED25519, b"\x01" * 32), Signer(ED25519, b"\x02" * 32)
BOB = Signer(ED25519, b"\x03" * 32).address


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    val, alice = token_genesis(tmp_path)
    assert (val, alice) == (VAL, ALICE)
    node = Node(NodeConfig(home=tmp_path), signer=VAL)
    try:
        yield node
    finally:
        node.close()


def _commit(node: Node, amounts: list[int]) -> None:
    """A block of transfers from alice, one an amount, committed as consensus does (the
    chain's commit, then the node's commit callback, which feeds the subscribers)."""
    chain = node.chain
    nonce = node.account_nonce(ALICE.address)
    txs = [
        Transaction.create(
            ALICE,
            chain_id="svc",
            nonce=nonce + i,
            contract="token",
            method="transfer",
            args={"to": BOB, "amount": a},
        )
        for i, a in enumerate(amounts)
    ]
    pending = chain.build_block(txs, 1_000 * (chain.height + 1), VAL.public_key)
    assert all(r.ok for r in pending.receipts), [r.error for r in pending.receipts]
    commit = Commit.sign_single(VAL, "svc", pending.header)
    chain.commit(pending, commit)
    node._on_commit(pending, commit)


def _seen(items: list[CommittedEvent]) -> list[tuple[int, int]]:
    return [(e.height, e.event.attributes["amount"]) for e in items]


async def _take(stream: node_module.Subscription, n: int) -> list[CommittedEvent]:
    got: list[CommittedEvent] = []
    async for item in stream:
        got.append(item)
        if len(got) == n:
            break
    return got


def test_a_subscription_from_a_past_height_gets_each_event_once_in_order(node: Node) -> None:
    async def run() -> None:
        for b in range(3):
            _commit(node, [10 * b + 1, 10 * b + 2])
        stream = node.subscribe("token", "transfer", from_height=2)
        _commit(node, [7])  # committed after the subscription: comes live, after the past
        got = await _take(stream, 5)
        assert _seen(got) == [(2, 11), (2, 12), (3, 21), (3, 22), (4, 7)]
        assert [e.tx_index for e in got] == [0, 1, 0, 1, 0]
        stream.close("done")
        assert not node._subscriptions
        # From the next block: nothing read back; from a later one: refused with its code.
        nxt = node.subscribe("token", None, from_height=node.chain.height + 1)
        assert nxt.replay is None
        nxt.close("done")
        for bad in (0, node.chain.height + 2):
            with pytest.raises(NotFound, match="not a committed height") as info:
                node.subscribe(None, None, from_height=bad)
            assert info.value.code == ErrorCode.HEIGHT_NOT_COMMITTED

    asyncio.run(run())


def test_a_subscriber_that_falls_behind_keeps_every_event_before_and_resumes(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(node_module, "SUBSCRIBER_QUEUE", 3)

    async def run() -> None:
        _commit(node, [1])
        stream = node.subscribe("token", "transfer")
        _commit(node, [2, 3, 4, 5, 6])  # the fourth event does not fit: the stream closes
        assert stream.closed_reason is not None
        assert "subscribe again from height 2" in stream.closed_reason
        got = [item async for item in stream]
        assert _seen(got) == [(2, 2), (2, 3), (2, 4)]  # none dropped to close it
        assert stream.position == 1  # block 2 was not given whole
        again = node.subscribe("token", "transfer", from_height=2)
        _commit(node, [7])
        rest = await _take(again, 6)
        assert _seen(rest) == [(2, 2), (2, 3), (2, 4), (2, 5), (2, 6), (3, 7)]

    asyncio.run(run())


def test_events_read_back_follow_the_private_call_rule(
    node: Node, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A private call's events, read back from the store, go only to a subscription whose
    ``shows_private`` picks the call, as live ones do (here transfers made private)."""

    async def run() -> None:
        _commit(node, [1, 2])
        monkeypatch.setattr(node, "_private_calls", frozenset({("token", "transfer")}))
        plain = node.subscribe("token", None, from_height=1)
        signed = node.subscribe("token", None, lambda tx: tx.args["amount"] == 2, from_height=1)
        _commit(node, [3, 2])
        assert _seen(await asyncio.wait_for(_take(signed, 2), 10)) == [(1, 2), (2, 2)]
        got: list[CommittedEvent] = []

        async def read_plain() -> None:
            async for item in plain:
                got.append(item)

        with pytest.raises(TimeoutError):
            await asyncio.wait_for(read_plain(), 0.5)
        assert got == []

    asyncio.run(run())


def test_a_streams_position_moves_with_every_block_matching_or_not(node: Node) -> None:
    """A reader of rare events notes how far it got: ``position`` is the height up to which
    every matching event was given, blocks without one included; while blocks are read back,
    the last one read back whole."""

    async def run() -> None:
        _commit(node, [1])
        rare = node.subscribe("identity", None)  # no block here has an identity event
        assert rare.position == 1
        _commit(node, [2])
        _commit(node, [3])
        assert rare.position == 3
        back = node.subscribe("token", None, from_height=1)
        assert back.position == 0
        events = back.__aiter__()  # one reader, event by event
        seen = [await anext(events) for _ in range(2)]  # blocks 1 and 2, read back
        assert _seen(seen) == [(1, 1), (2, 2)] and back.position == 1
        seen = [await anext(events)]
        assert _seen(seen) == [(3, 3)] and back.position == 2  # block 3 is still being read
        _commit(node, [4])  # comes live, after the read-back
        seen = [await anext(events)]
        assert _seen(seen) == [(4, 4)] and back.position == 4  # all given, the queue empty
        rare.close("done")
        back.close("done")

    asyncio.run(run())
