"""Blocks applied to state and stored atomically: build, check, commit, reopen."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from citychain.chain import Chain
from citychain.crypto import ED25519, Signer
from citychain.errors import ConfigError, ErrorCode, ProofError
from citychain.execution import default_registry
from citychain.proof.ics23 import SMT_SPEC, verify_membership
from citychain.services.token.shapes import balance_key
from citychain.store.kv import KVStore
from citychain.types import (
    NIL,
    Block,
    Commit,
    DuplicateVoteEvidence,
    Transaction,
    Validator,
    Vote,
    VoteType,
    evidence_root,
)
from citychain.types.genesis import ChainParams, Genesis

CHAIN = "test-chain"


@pytest.fixture
def keys() -> dict[str, Signer]:
    return {n: Signer(ED25519, bytes([i + 1]) * 32) for i, n in enumerate(["val", "alice", "bob"])}


def make_genesis(keys: dict[str, Signer], chain_id: str = CHAIN) -> Genesis:
    return Genesis(
        chain_id=chain_id,
        genesis_time=1_700_000_000_000,
        crypto_suite="ed25519",
        validators=(Validator(keys["val"].public_key, 10, "val"),),
        params=ChainParams(block_max_txs=100),
        contracts={
            "token": {
                "issuers": [{"hex": keys["alice"].address.hex()}],
                "balances": {keys["alice"].address.hex(): 1000},
            }
        },
    )


def open_chain(path: Path, genesis: Genesis) -> Chain:
    return Chain(KVStore(path), genesis, default_registry(), retain_versions=None)


def transfer(s: Signer, nonce: int, to: bytes, amount: int) -> Transaction:
    return Transaction.create(
        s,
        chain_id=CHAIN,
        nonce=nonce,
        contract="token",
        method="transfer",
        args={"to": to, "amount": amount},
    )


def produce(chain: Chain, val: Signer, txs: list[Transaction], t: int) -> Block:
    pending = chain.build_block(txs, t, val.public_key)
    commit = Commit.sign_single(val, CHAIN, pending.header)
    chain.commit(pending, commit)
    return pending.block


def test_blocks_commit_and_survive_reopen(tmp_path: Path, keys: dict[str, Signer]) -> None:
    g = make_genesis(keys)
    chain = open_chain(tmp_path / "a", g)
    alice, bob, val = keys["alice"], keys["bob"], keys["val"]
    b1 = produce(
        chain, val, [transfer(alice, 0, bob.address, 10), transfer(alice, 1, bob.address, 5000)], 1
    )
    receipts = chain.blocks.receipts(1)
    assert [r.code for r in receipts] == ["ok", ErrorCode.INSUFFICIENT_FUNDS]
    assert chain.blocks.tx_location(b1.txs[1].hash) == (1, 1)
    root = chain.state.root
    assert b1.header.state_root == root
    chain.close()

    again = open_chain(tmp_path / "a", g)
    assert again.height == 1
    assert again.state.root == root
    assert again.blocks.block(1) == b1
    commit = again.blocks.commit(1)
    assert commit is not None
    commit.verify(ED25519, CHAIN, b1.header, again.validators(1))
    # the committed balance is provable against the header
    value, proof = again.state.prove(balance_key(bob.address), 1)
    assert value is not None
    verify_membership(SMT_SPEC, b1.header.state_root, proof, balance_key(bob.address), value)
    again.close()


def test_follower_accepts_only_the_exact_block(tmp_path: Path, keys: dict[str, Signer]) -> None:
    g = make_genesis(keys)
    leader = open_chain(tmp_path / "l", g)
    follower = open_chain(tmp_path / "f", g)
    alice, bob, val = keys["alice"], keys["bob"], keys["val"]
    pending = leader.build_block([transfer(alice, 0, bob.address, 7)], 5, val.public_key)
    good = pending.block
    for field, value in [
        ("state_root", b"\x01" * 32),
        ("results_root", b"\x02" * 32),
        ("prev_hash", b"\x03" * 32),
        ("height", 2),
        ("chain_id", "other"),
    ]:
        bad = Block(dataclasses.replace(good.header, **{field: value}), good.txs)
        with pytest.raises(ProofError):
            follower.check_block(bad)
    with pytest.raises(ProofError):  # transactions not matching tx_root
        follower.check_block(Block(good.header, ()))
    checked = follower.check_block(good)
    follower.commit(checked, Commit.sign_single(val, CHAIN, good.header))
    assert follower.state.root == good.header.state_root
    leader.close()
    follower.close()


def test_block_time_strictly_increases(tmp_path: Path, keys: dict[str, Signer]) -> None:
    chain = open_chain(tmp_path / "a", make_genesis(keys))
    b1 = produce(chain, keys["val"], [], 10**13)
    b2 = produce(chain, keys["val"], [], 5)  # a clock that went backwards
    assert b2.header.time > b1.header.time
    assert b2.header.prev_hash == b1.hash
    chain.close()


def test_data_dir_of_another_chain_is_refused(tmp_path: Path, keys: dict[str, Signer]) -> None:
    open_chain(tmp_path / "a", make_genesis(keys)).close()
    with pytest.raises(ConfigError, match="belongs to another chain"):
        open_chain(tmp_path / "a", make_genesis(keys, chain_id="other-chain"))


def test_oversized_block_is_refused(tmp_path: Path, keys: dict[str, Signer]) -> None:
    g = make_genesis(keys)
    follower = open_chain(tmp_path / "f", g)  # block_max_txs=100
    alice = keys["alice"]
    txs = tuple(transfer(alice, n, keys["bob"].address, 1) for n in range(101))
    from citychain.types import Header, tx_root

    header = Header(
        CHAIN,
        1,
        1,
        bytes(32),
        tx_root(txs),
        bytes(32),
        bytes(32),
        follower.validators(1).hash,
        keys["val"].public_key,
    )
    with pytest.raises(ProofError, match="exceed the limit"):
        follower.check_block(Block(header, txs))
    follower.close()


# -- evidence in blocks ---------------------------------------------------------------------
def _double_prevote(s: Signer, height: int) -> tuple[Vote, Vote]:
    out = []
    for block in (b"a" * 32, NIL):
        v = Vote(VoteType.PREVOTE, height, 0, block, s.public_key, b"")
        out.append(Vote(v.type, height, 0, block, s.public_key, s.sign(v.sign_bytes(CHAIN))))
    return out[0], out[1]


def test_evidence_is_committed_once_and_indexed(tmp_path: Path, keys: dict[str, Signer]) -> None:
    chain = open_chain(tmp_path / "db", make_genesis(keys))
    produce(chain, keys["val"], [], 1_700_000_000_100)
    ev = DuplicateVoteEvidence.of(CHAIN, *_double_prevote(keys["val"], 1))
    pending = chain.build_block([], 1_700_000_000_200, keys["val"].public_key, [ev])
    assert pending.block.evidence == (ev,)
    assert pending.header.evidence_root == evidence_root([ev])
    chain.commit(pending, Commit.sign_single(keys["val"], CHAIN, pending.header))
    assert chain.blocks.evidence_height(ev.hash) == 2
    assert chain.blocks.committed_evidence() == [(2, ev)]
    # A block that lists it again is refused by builders and checkers alike.
    with pytest.raises(ProofError, match="already committed"):
        chain.build_block([], 1_700_000_000_300, keys["val"].public_key, [ev])
    prev = chain.last_header()
    assert prev is not None
    header = dataclasses.replace(
        prev, height=3, time=prev.time + 1, prev_hash=prev.hash, evidence_root=evidence_root([ev])
    )
    with pytest.raises(ProofError, match="already committed"):
        chain.check_block(Block(header, (), (ev,)))


def test_evidence_of_a_non_validator_or_the_future_is_refused(
    tmp_path: Path, keys: dict[str, Signer]
) -> None:
    chain = open_chain(tmp_path / "db", make_genesis(keys))
    produce(chain, keys["val"], [], 1_700_000_000_100)
    stranger = DuplicateVoteEvidence.of(CHAIN, *_double_prevote(keys["alice"], 1))
    with pytest.raises(ProofError, match="not a validator"):
        chain.build_block([], 1_700_000_000_200, keys["val"].public_key, [stranger])
    future = DuplicateVoteEvidence.of(CHAIN, *_double_prevote(keys["val"], 2))
    with pytest.raises(ProofError, match="future"):
        chain.build_block([], 1_700_000_000_200, keys["val"].public_key, [future])
    ok = DuplicateVoteEvidence.of(CHAIN, *_double_prevote(keys["val"], 1))
    with pytest.raises(ProofError, match="twice"):
        chain.build_block([], 1_700_000_000_200, keys["val"].public_key, [ok, ok])


def test_a_block_whose_evidence_does_not_match_its_header_is_refused(
    tmp_path: Path, keys: dict[str, Signer]
) -> None:
    chain = open_chain(tmp_path / "db", make_genesis(keys))
    produce(chain, keys["val"], [], 1_700_000_000_100)
    pending = chain.build_block([], 1_700_000_000_200, keys["val"].public_key)
    ev = DuplicateVoteEvidence.of(CHAIN, *_double_prevote(keys["val"], 1))
    with pytest.raises(ProofError, match="evidence_root"):
        chain.check_block(Block(pending.header, (), (ev,)))
