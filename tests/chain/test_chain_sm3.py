"""Chains of both suites in one process: each hashes with its own genesis' suite.

No process-wide "current hash" exists; these tests interleave an ``ed25519`` chain and an
``sm2-sm3`` chain block by block and check that each one's hashes are its own.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from test_chain import make_genesis, open_chain  # type: ignore[import-not-found]

from citychain import codec
from citychain.crypto import ED25519, SM2_SM3, Signer
from citychain.crypto.sm2 import sm3
from citychain.errors import InternalError
from citychain.proof import ics23
from citychain.services.token.shapes import balance_key
from citychain.types import Block, Commit, DuplicateVoteEvidence, Transaction, Vote, VoteType
from citychain.types.genesis import Genesis

CHAIN = "test-chain"  # the same chain id on both: only the suite tells them apart


def _keys(suite_name: str) -> dict[str, Signer]:
    suite = SM2_SM3 if suite_name == "sm2-sm3" else ED25519
    return {n: Signer(suite, bytes([i + 1]) * 32) for i, n in enumerate(["val", "alice", "bob"])}


def _genesis(suite_name: str) -> tuple[Genesis, dict[str, Signer]]:
    keys = _keys(suite_name)
    g = make_genesis(keys)
    return Genesis(
        g.chain_id, g.genesis_time, suite_name, g.validators, g.params, g.contracts
    ), keys


def _transfer(s: Signer, nonce: int, to: bytes) -> Transaction:
    return Transaction.create(
        s,
        chain_id=CHAIN,
        nonce=nonce,
        contract="token",
        method="transfer",
        args={"to": to, "amount": 1},
    )


def test_two_suites_in_one_process(tmp_path: Path) -> None:
    chains = {}
    for name in ("ed25519", "sm2-sm3"):
        g, keys = _genesis(name)
        leader = open_chain(tmp_path / f"{name}-l", g)
        follower = open_chain(tmp_path / f"{name}-f", g)
        chains[name] = (g, keys, leader, follower)
    for height in (1, 2):
        for name, (g, keys, leader, follower) in chains.items():
            h = sm3 if name == "sm2-sm3" else (lambda d: hashlib.sha256(d).digest())
            val, alice, bob = keys["val"], keys["alice"], keys["bob"]
            pending = leader.build_block(
                [_transfer(alice, height - 1, bob.address)],
                1_700_000_000_000 + height,
                val.public_key,
            )
            block = pending.block
            assert block.hash == h(block.header.encode())
            assert block.txs[0].hash == h(block.txs[0].encode())
            assert block.header.evidence_root == h(b"")
            assert block.header.validators_hash == leader.validators(height).hash
            commit = Commit.sign_single(val, CHAIN, block.header)
            leader.commit(pending, commit)
            # the follower decodes the block with its chain's hash and re-executes it
            data = block.encode()
            again = Block.decode(data, hash_new=follower.hash_new)
            assert again.hash == block.hash
            follower.commit(follower.check_block(again), commit)
            assert follower.state.root == leader.state.root == block.header.state_root
            if name == "sm2-sm3":
                # decoded without the chain's hash: refused before anything is computed
                with pytest.raises(InternalError, match="hash function"):
                    leader.check_block(Block.decode(data))
            # stored and read back with the same hash
            stored = leader.blocks.block(height)
            assert stored is not None and stored.hash == block.hash
            assert g.hash == h(codec.encode(g.to_json()))
    sm_root = chains["sm2-sm3"][2].state.root
    ed_root = chains["ed25519"][2].state.root
    assert sm_root != ed_root
    # state proofs name each chain's op
    for name, (_, keys, leader, _) in chains.items():
        value, proof = leader.state.prove(balance_key(keys["bob"].address))
        assert value is not None and proof.exist is not None
        op = ics23.HashOp.SM3 if name == "sm2-sm3" else ics23.HashOp.SHA256
        assert {p.hash for p in proof.exist.path} == {op}
        ics23.verify_membership(
            leader.state.spec, leader.state.root, proof, balance_key(keys["bob"].address), value
        )
    for _, _, leader, follower in chains.values():
        leader.close()
        follower.close()


def test_evidence_on_an_sm3_chain_is_hashed_with_sm3(tmp_path: Path) -> None:
    g, keys = _genesis("sm2-sm3")
    chain = open_chain(tmp_path / "db", g)
    val = keys["val"]
    pending = chain.build_block([], 1_700_000_000_100, val.public_key)
    chain.commit(pending, Commit.sign_single(val, CHAIN, pending.header))
    votes = []
    for block_hash in (b"a" * 32, b""):
        v = Vote(VoteType.PREVOTE, 1, 0, block_hash, val.public_key, b"")
        votes.append(Vote(v.type, 1, 0, block_hash, val.public_key, val.sign(v.sign_bytes(CHAIN))))
    ev = DuplicateVoteEvidence.of(CHAIN, votes[0], votes[1], hash_new=chain.hash_new)
    assert ev.hash == sm3(ev.encode())
    pending = chain.build_block([], 1_700_000_000_200, val.public_key, [ev])
    assert pending.header.evidence_root == sm3(b"\x00" + ev.encode())
    chain.commit(pending, Commit.sign_single(val, CHAIN, pending.header))
    assert chain.blocks.evidence_height(sm3(ev.encode())) == 2
    chain.close()
