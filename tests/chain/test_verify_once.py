"""Every node verifies every signature it executes, exactly once (DESIGN.md; issue 14.1).

A transaction this node's mempool verified at admission is not verified again when its block
executes; one it never admitted (a peer's proposal, block sync, replay) is; and a verdict never
rests on the cache: a forged signature gives the same ``bad_signature`` receipt, and the same
header, on a node that admitted the genuine transaction and on one that admitted nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from test_chain import CHAIN, make_genesis, transfer  # type: ignore[import-not-found]

from citychain.chain import Chain, PendingBlock
from citychain.crypto import ED25519, CryptoSuite, Signer
from citychain.errors import ErrorCode, ProofError
from citychain.execution import VerifiedTxs, default_registry
from citychain.execution import executor as executor_module
from citychain.mempool import Mempool, MempoolConfig
from citychain.node.home import init_home
from citychain.node.replay import replay
from citychain.store.kv import KVStore
from citychain.types import Commit, Transaction


@pytest.fixture
def keys() -> dict[str, Signer]:
    return {n: Signer(ED25519, bytes([i + 1]) * 32) for i, n in enumerate(["val", "alice", "bob"])}


@pytest.fixture
def verified_at_execution(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many transactions each block's execution verified (one entry per block)."""
    counts: list[int] = []
    real = executor_module.batch_verify_txs

    def counting(suite: CryptoSuite, txs: Sequence[Transaction]) -> list[bool]:
        counts.append(len(txs))
        return real(suite, txs)

    monkeypatch.setattr(executor_module, "batch_verify_txs", counting)
    return counts


def node(path: Path, keys: dict[str, Signer]) -> tuple[Chain, Mempool]:
    chain = Chain(KVStore(path), make_genesis(keys), default_registry(), retain_versions=None)
    pool = Mempool(
        MempoolConfig(),
        chain.suite,
        CHAIN,
        lambda a: 0,
        lambda: chain.height,
        verified=chain.verified,
    )
    return chain, pool


def admit(pool: Mempool, txs: Sequence[Transaction]) -> None:
    results = pool.insert(pool.check([tx.encode() for tx in txs]))
    assert [r.code for r in results] == [ErrorCode.OK] * len(txs), results


def forged(tx: Transaction) -> Transaction:
    sig = bytearray(tx.signature)
    sig[5] ^= 0x40
    return tx.with_signature(bytes(sig))


def test_admitted_transactions_are_not_verified_again_and_others_are(
    tmp_path: Path, keys: dict[str, Signer], verified_at_execution: list[int]
) -> None:
    alice, bob, val = keys["alice"], keys["bob"], keys["val"]
    leader, pool = node(tmp_path / "leader", keys)
    follower, _ = node(tmp_path / "follower", keys)  # admitted nothing: a peer's proposal
    txs = [transfer(alice, n, bob.address, 1) for n in range(5)]
    admit(pool, txs)
    assert len(leader.verified) == 5

    pending = leader.build_block(pool.reap(100, 1 << 20, 1 << 40), 10, val.public_key)
    assert verified_at_execution == [], "the proposer verified these at admission"
    assert all(r.ok for r in pending.receipts)

    checked = follower.check_block(pending.block)
    assert verified_at_execution == [5], "a node that never admitted them verifies all five"
    commit = Commit.sign_single(val, CHAIN, pending.header)
    leader.commit(pending, commit)
    follower.commit(checked, commit)
    assert len(leader.verified) == 0, "committed transactions leave the cache"
    leader.close()
    follower.close()


def test_a_forged_signature_is_caught_whether_or_not_the_genuine_one_was_admitted(
    tmp_path: Path, keys: dict[str, Signer], verified_at_execution: list[int]
) -> None:
    alice, bob, val = keys["alice"], keys["bob"], keys["val"]
    genuine = transfer(alice, 0, bob.address, 7)
    fake = forged(genuine)
    assert fake.signing_bytes() == genuine.signing_bytes() and fake.hash != genuine.hash

    admitted, pool = node(tmp_path / "admitted", keys)
    admit(pool, [genuine])
    refused = pool.check([fake.encode()])[0]
    assert getattr(refused, "code", None) == ErrorCode.BAD_SIGNATURE
    assert admitted.verified.known([genuine.hash, fake.hash]) == [True, False]

    stranger, _ = node(tmp_path / "stranger", keys)
    # a (faulty) proposer's block holding the forged transfer, on both nodes
    a = admitted.build_block([fake], 10, val.public_key)
    assert verified_at_execution == [1]
    b = stranger.check_block(a.block)
    assert verified_at_execution == [1, 1]
    for pending in (a, b):
        (receipt,) = pending.receipts
        assert receipt.code == ErrorCode.BAD_SIGNATURE and receipt.gas_used == 0
    assert b.header == a.header  # both nodes agree on results and state
    admitted.close()
    stranger.close()


def lying_block(chain: Chain, fake: Transaction, t: int, proposer: Signer) -> PendingBlock:
    """A block whose header records ``fake``'s forged signature as valid: what a node that
    skipped verifying it (a bug, or a proposer that lies) would propose and sign."""
    chain.verified.add([fake.hash])  # as if verified: execution then takes it as signed
    pending = chain.build_block([fake], t, proposer.public_key)
    (receipt,) = pending.receipts
    assert receipt.ok, receipt  # the lie: a forged transfer executed
    return pending


def test_a_proposal_recording_a_forged_signature_as_valid_is_refused(
    tmp_path: Path, keys: dict[str, Signer]
) -> None:
    """Issue 14: a block holding a bad signature is refused by every honest node, whether or
    not it ever admitted that transaction's genuine twin. (An honest proposer's block with a
    forged transaction is valid: its header records the ``bad_signature`` receipt, above.)"""
    alice, bob, val = keys["alice"], keys["bob"], keys["val"]
    genuine = transfer(alice, 0, bob.address, 7)
    fake = forged(genuine)
    liar, _ = node(tmp_path / "liar", keys)
    proposal = lying_block(liar, fake, 10, val).block

    admitted, pool = node(tmp_path / "admitted", keys)
    admit(pool, [genuine])
    stranger, _ = node(tmp_path / "stranger", keys)
    for honest in (admitted, stranger):
        with pytest.raises(ProofError, match="execution results differ from the header"):
            honest.check_block(proposal)
        assert honest.height == 0 and honest.verified.known([fake.hash]) == [False]
    for c in (liar, admitted, stranger):
        c.close()


def test_replay_refuses_a_stored_block_recording_a_forged_signature_as_valid(
    tmp_path: Path,
) -> None:
    """``citychain node replay`` re-executes every stored block, verifying each signature
    itself: a block committed by a node that skipped a verification does not replay."""
    made = init_home(tmp_path / "home", kdf_level="interactive")
    genesis, val = made.genesis, made.validator
    alice, bob = made.accounts["alice"], made.accounts["bob"]
    chain = Chain(KVStore(made.config.data_dir), genesis, default_registry())
    genuine = Transaction.create(
        alice,
        chain_id=genesis.chain_id,
        nonce=0,
        contract="token",
        method="transfer",
        args={"to": bob.address, "amount": 7},
    )
    pending = lying_block(chain, forged(genuine), genesis.genesis_time + 1_000, val)
    chain.commit(pending, Commit.sign_single(val, genesis.chain_id, pending.header))
    chain.close()
    with pytest.raises(
        ProofError,
        match="replay diverged: block 1 refused: execution results differ from the header",
    ):
        replay(tmp_path / "home")


class VerifiedTxsModel(RuleBasedStateMachine):
    """VerifiedTxs against a plain list: bounded, oldest out first, drop forgets."""

    def __init__(self) -> None:
        super().__init__()
        self.cache = VerifiedTxs(capacity=8)
        self.model: list[bytes] = []

    @rule(hashes=st.lists(st.binary(min_size=1, max_size=2), max_size=6))
    def add(self, hashes: list[bytes]) -> None:
        self.cache.add(hashes)
        for h in hashes:
            if h not in self.model:
                self.model.append(h)
        del self.model[: max(0, len(self.model) - 8)]

    @rule(hashes=st.lists(st.binary(min_size=1, max_size=2), max_size=4))
    def drop(self, hashes: list[bytes]) -> None:
        self.cache.drop(hashes)
        self.model = [h for h in self.model if h not in hashes]

    @rule(hashes=st.lists(st.binary(min_size=1, max_size=2), max_size=6))
    def known(self, hashes: list[bytes]) -> None:
        assert self.cache.known(hashes) == [h in self.model for h in hashes]

    @invariant()
    def bounded(self) -> None:
        assert len(self.cache) == len(self.model) <= 8


TestVerifiedTxs = VerifiedTxsModel.TestCase
TestVerifiedTxs.settings = settings(max_examples=100, stateful_step_count=30, deadline=None)
