"""Block sync between two real chains (RocksDB), messages passed in memory: a node behind
fetches, verifies and applies committed blocks; bad answers are refused and re-asked."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from citychain.chain import Chain
from citychain.crypto import ED25519, Signer
from citychain.errors import CitychainError, ProofError
from citychain.execution import default_registry
from citychain.store.kv import KVStore
from citychain.sync import BlockSync
from citychain.sync import messages as sm
from citychain.types import Commit, CommitSig, Transaction, Validator
from citychain.types.genesis import Genesis

CHAIN = "sync-chain"
VALS = [Signer(ED25519, bytes([i + 1]) * 32) for i in range(4)]


def genesis() -> Genesis:
    return Genesis(
        chain_id=CHAIN,
        genesis_time=1_700_000_000_000,
        crypto_suite="ed25519",
        validators=tuple(Validator(v.public_key, 10, f"v{i}") for i, v in enumerate(VALS)),
    )


def commit_of(chain: Chain, signers: list[Signer], height: int) -> Commit:
    header = chain.blocks.header(height)
    assert header is not None
    sigs = [Commit.sign_single(s, CHAIN, header).signatures[0] for s in signers]
    return Commit(height, 0, header.hash, tuple(sorted(sigs, key=lambda c: c.validator)))


def grow(chain: Chain, n: int) -> None:
    for i in range(n):
        pending = chain.build_block([], 1_700_000_001_000 + i, VALS[0].public_key)
        header = pending.header
        sigs = tuple(Commit.sign_single(s, CHAIN, header).signatures[0] for s in VALS[:3])
        chain.commit(pending, Commit(header.height, 0, header.hash, sigs))


class Wire:
    """Delivers messages between two BlockSyncs, optionally tampering with blocks."""

    def __init__(self) -> None:
        self.syncs: dict[str, BlockSync] = {}
        self.tamper: bool = False
        self.sent: list[tuple[str, bytes]] = []
        self.queue: list[tuple[str, str, bytes]] = []

    def sender(self, me: str) -> object:
        def send(peer: str, data: bytes) -> bool:
            self.sent.append((peer, data))
            self.queue.append((me, peer, data))
            return True

        return send

    def pump(self) -> None:
        while self.queue:
            me, peer, data = self.queue.pop(0)
            msg = sm.decode(data, 1 << 26)
            if self.tamper and isinstance(msg, sm.BlockResponse):
                c = msg.commit
                forged = CommitSig(c.signatures[0].validator, b"\1" * 64)
                msg = sm.BlockResponse(
                    msg.block, dataclasses.replace(c, signatures=(forged, *c.signatures[1:]))
                )
            self.syncs[peer].on_message(me, msg, 0)


def apply_ready(chain: Chain, sync: BlockSync) -> int:
    applied = 0
    while (got := sync.take(chain.height + 1)) is not None:
        block, commit, peer = got
        try:  # as the engine applies a synced block (ConsensusEngine._apply_synced)
            sync.verify(block, commit)
            pending = chain.check_block(block)
        except CitychainError as exc:
            sync.refused(block.height, peer, exc.message)
            continue
        chain.commit(pending, commit)
        sync.applied(block.height)
        applied += 1
    return applied


def assert_refused_and_struck(wire: Wire, ahead: Chain, behind: Chain, height: int) -> None:
    """``behind`` asks ``ahead`` (at ``height``) three times, applies nothing, and stops asking."""
    wire.syncs["a"] = BlockSync(ahead, wire.sender("a"))  # type: ignore[arg-type]
    sb = wire.syncs["b"] = BlockSync(behind, wire.sender("b"))  # type: ignore[arg-type]
    sb.set_peer_height("a", height)
    for _ in range(3):
        sb.tick(0)
        wire.pump()
        assert apply_ready(behind, sb) == 0
        sb.tick(10_000)  # time out the requests, ask again
    assert behind.height == 0
    assert sb._strikes["a"] >= 3  # no longer asked


def test_a_node_behind_catches_up_block_by_block(tmp_path: Path) -> None:
    ahead = Chain(KVStore(tmp_path / "a"), genesis(), default_registry())
    behind = Chain(KVStore(tmp_path / "b"), genesis(), default_registry())
    grow(ahead, 40)
    wire = Wire()
    wire.syncs["a"] = BlockSync(ahead, wire.sender("a"), window=8)  # type: ignore[arg-type]
    sb = wire.syncs["b"] = BlockSync(behind, wire.sender("b"), window=8)  # type: ignore[arg-type]
    sb.on_message("a", sm.StatusRequest(), 0)  # b answers a: harmless
    wire.syncs["a"].on_message("b", sm.StatusRequest(), 0)  # a tells b its height
    wire.queue = [q for q in wire.queue if q[1] == "b"]  # deliver only a's answer now
    wire.pump()
    assert sb.behind and sb.best_peer_height == 40
    while behind.height < 40:
        sb.tick(0)
        wire.pump()
        assert apply_ready(behind, sb) > 0
    assert not sb.behind
    assert behind.last_header() == ahead.last_header()
    assert behind.blocks.commit(40) == ahead.blocks.commit(40)
    # The window bounds what is asked at once.
    asks = [d for p, d in wire.sent if isinstance(sm.decode(d, 1 << 26), sm.BlockRequest)]
    assert len(asks) == 40


def test_a_forged_commit_is_refused_and_the_peer_is_struck(tmp_path: Path) -> None:
    ahead = Chain(KVStore(tmp_path / "a"), genesis(), default_registry())
    behind = Chain(KVStore(tmp_path / "b"), genesis(), default_registry())
    grow(ahead, 3)
    wire = Wire()
    wire.tamper = True
    assert_refused_and_struck(wire, ahead, behind, 3)


def test_a_block_recording_a_forged_signature_as_valid_is_refused_and_the_peer_is_struck(
    tmp_path: Path,
) -> None:
    """Issue 14: a synced block is executed with every signature verified by the node that
    applies it; one whose header records a forged signature as valid (proposed by a node
    that skipped the check, and signed by a faulty supermajority: its commit verifies) is
    refused and its peer struck, and the node stays where it was."""
    alice, bob = Signer(ED25519, b"\xa1" * 32), Signer(ED25519, b"\xb0" * 32)
    funded = dataclasses.replace(
        genesis(), contracts={"token": {"balances": {alice.address.hex(): 1000}}}
    )
    ahead = Chain(KVStore(tmp_path / "a"), funded, default_registry())
    behind = Chain(KVStore(tmp_path / "b"), funded, default_registry())
    genuine = Transaction.create(
        alice,
        chain_id=CHAIN,
        nonce=0,
        contract="token",
        method="transfer",
        args={"to": bob.address, "amount": 7},
    )
    sig = bytearray(genuine.signature)
    sig[5] ^= 0x40
    fake = genuine.with_signature(bytes(sig))
    ahead.verified.add([fake.hash])  # a node that never verified it
    pending = ahead.build_block([fake], 1_700_000_001_000, VALS[0].public_key)
    assert pending.receipts[0].ok  # the lie: a forged transfer executed
    header = pending.header
    sigs = tuple(Commit.sign_single(s, CHAIN, header).signatures[0] for s in VALS[:3])
    ahead.commit(pending, Commit(header.height, 0, header.hash, sigs))

    assert_refused_and_struck(Wire(), ahead, behind, 1)


def test_too_few_signatures_are_not_enough(tmp_path: Path) -> None:
    ahead = Chain(KVStore(tmp_path / "a"), genesis(), default_registry())
    grow(ahead, 1)
    block = ahead.blocks.block(1)
    assert block is not None
    weak = commit_of(ahead, VALS[:2], 1)  # 20 of 40: not more than 2/3
    sync = BlockSync(ahead, lambda p, d: True)
    with pytest.raises(ProofError, match="needs more than 2/3"):
        sync.verify(block, weak)


def test_unknown_heights_get_no_block(tmp_path: Path) -> None:
    chain = Chain(KVStore(tmp_path / "a"), genesis(), default_registry())
    grow(chain, 2)
    got: list[bytes] = []
    sync = BlockSync(chain, lambda p, d: got.append(d) or True)
    sync.on_message("x", sm.BlockRequest(7), 0)
    sync.on_message("x", sm.BlockRequest(2), 0)
    assert isinstance(sm.decode(got[0], 1 << 20), sm.NoBlock)
    answer = sm.decode(got[1], 1 << 26)
    assert isinstance(answer, sm.BlockResponse) and answer.block.height == 2


def test_a_synced_block_reuses_the_transactions_the_mempool_holds(tmp_path: Path) -> None:
    """Issue 14: a node a few heights behind already holds most of a served block's
    transactions in its mempool; they are reused, not decoded again (the same objects), and
    the rest decoded as ever."""
    chain = Chain(KVStore(tmp_path / "a"), genesis(), default_registry())
    sender = VALS[1]
    txs = [
        Transaction.create(sender, chain_id=CHAIN, nonce=n, contract="token", method="transfer",
                           args={"to": VALS[2].address, "amount": 1})
        for n in range(4)
    ]  # fmt: skip
    pending = chain.build_block(txs, 1_700_000_001_000, VALS[0].public_key)
    header = pending.header
    sigs = tuple(Commit.sign_single(s, CHAIN, header).signatures[0] for s in VALS[:3])
    chain.commit(pending, Commit(header.height, 0, header.hash, sigs))
    block, commit = chain.blocks.block(1), chain.blocks.commit(1)
    assert block is not None and commit is not None
    data = sm.encode(sm.BlockResponse(block, commit))
    held = {t.hash: t for t in txs[:3]}  # the mempool's, txs[3] never seen
    got = sm.decode(data, 1 << 26, known=held.get)
    assert isinstance(got, sm.BlockResponse) and got.block.hash == block.hash
    assert [t is held.get(t.hash) for t in got.block.txs] == [True, True, True, False]
    assert got.block.txs[3] == txs[3]
