"""The hashes of pure data on each suite: SHA-256 on ``ed25519`` chains (what they always
were), SM3 on ``sm2-sm3`` chains, decided by who decodes or builds, never by a global.

The SM3 here is :func:`citychain.crypto.sm2.sm3` (libcrypto by ctypes); the types are given
:data:`~citychain.crypto.sm2.sm3_new` (hashlib), so the two implementations check each other.
"""

from __future__ import annotations

import dataclasses
import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from citychain import codec
from citychain.crypto import ED25519, SM2_SM3, Signer
from citychain.crypto.sm2 import sm3, sm3_new
from citychain.types import (
    Block,
    DuplicateVoteEvidence,
    Header,
    Transaction,
    Validator,
    ValidatorSet,
    Vote,
    VoteType,
)
from citychain.types.block import evidence_root, tx_root

SM2_SIGNERS = [Signer(SM2_SM3, bytes([i + 1]) * 32) for i in range(2)]
ED_SIGNERS = [Signer(ED25519, bytes([i + 1]) * 32) for i in range(2)]
U64 = st.integers(0, 2**64 - 1)
names = st.text(min_size=1, max_size=24)
hashes = st.binary(min_size=32, max_size=32)
args = st.dictionaries(
    st.text(max_size=6), st.integers(0, 2**40) | st.binary(max_size=12), max_size=3
)


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


@st.composite
def transactions(draw: st.DrawFn, signers: list[Signer]) -> Transaction:
    return Transaction.create(
        draw(st.sampled_from(signers)),
        chain_id=draw(names),
        nonce=draw(U64),
        contract=draw(names),
        method=draw(names),
        args=draw(args),
        gas_limit=draw(U64),
    )


headers = st.builds(
    Header,
    chain_id=names,
    height=U64,
    time=U64,
    prev_hash=hashes,
    tx_root=hashes,
    results_root=hashes,
    state_root=hashes,
    validators_hash=hashes,
    proposer=st.binary(min_size=32, max_size=65),
    evidence_root=hashes,
)


@settings(max_examples=40, deadline=None)
@given(transactions(SM2_SIGNERS))
def test_an_sm2_transaction_hashes_with_sm3_through_every_path(tx: Transaction) -> None:
    wire = tx.encode()
    assert tx.hash == sm3(wire) != sha256(wire)  # Transaction.create: the signer's suite
    back = Transaction.decode(wire, hash_new=SM2_SM3.hash_new)
    assert back == tx and back.hash == sm3(wire)
    assert dataclasses.replace(back, nonce=back.nonce ^ 1).hash == sm3(
        dataclasses.replace(back, nonce=back.nonce ^ 1).encode()
    )  # replace() keeps the chain's hash
    assert back.verify_signature(SM2_SM3)


@settings(max_examples=60, deadline=None)
@given(transactions(ED_SIGNERS))
def test_an_ed25519_transaction_hashes_as_it_always_did(tx: Transaction) -> None:
    wire = tx.encode()
    assert tx.hash == sha256(wire)
    assert Transaction.decode(wire).hash == sha256(wire)
    assert Transaction.decode(wire, hash_new=ED25519.hash_new).hash == sha256(wire)


@settings(max_examples=80, deadline=None)
@given(headers)
def test_headers_hash_with_the_hash_they_are_decoded_with(h: Header) -> None:
    data = h.encode()
    assert h.hash == sha256(data)
    sm = Header.decode(data, hash_new=sm3_new)
    assert sm == h  # the same data: the hash function is not part of it
    assert sm.hash == sm3(data) != h.hash
    assert Header.decode(data).hash == sha256(data)


@settings(max_examples=25, deadline=None)
@given(st.lists(transactions(SM2_SIGNERS), max_size=4), headers)
def test_a_block_decoded_on_an_sm3_chain_hands_sm3_to_all_it_holds(
    txs: list[Transaction], h: Header
) -> None:
    header = dataclasses.replace(
        h, tx_root=tx_root(txs, sm3_new), evidence_root=evidence_root([], sm3_new)
    )
    block = Block(header, tuple(txs))
    back = Block.decode(block.encode(), hash_new=sm3_new)
    back.check_tx_root()
    assert back.hash == sm3(header.encode())
    assert [t.hash for t in back.txs] == [sm3(t.encode()) for t in txs]
    assert back.header.evidence_root == sm3(b"")
    # reused transactions are looked up by the chain's hash
    by_hash = {t.hash: t for t in txs}
    seen: list[bytes] = []

    def known(tx_hash: bytes) -> Transaction | None:
        seen.append(tx_hash)
        return by_hash.get(tx_hash)

    again = Block.decode(block.encode(), hash_new=sm3_new, known=known)
    assert seen == [sm3(t.encode()) for t in txs]
    assert all(a is b for a, b in zip(again.txs, txs, strict=True))


def test_validator_sets_and_evidence_follow_the_hash_they_are_given() -> None:
    vals = [Validator(s.public_key, 10, f"v{i}") for i, s in enumerate(SM2_SIGNERS)]
    ordered = sorted(vals, key=lambda v: v.public_key)
    leaves = [sm3(b"\x00" + v.encode()) for v in ordered]
    assert ValidatorSet(vals, hash_new=sm3_new).hash == sm3(b"\x01" + leaves[0] + leaves[1])
    sha_leaves = [sha256(b"\x00" + v.encode()) for v in ordered]
    assert ValidatorSet(vals).hash == sha256(b"\x01" + sha_leaves[0] + sha_leaves[1])
    s = SM2_SIGNERS[0]
    votes = [Vote(VoteType.PREVOTE, 3, 0, b, s.public_key, s.sign(b"x")) for b in (b"a" * 32, b"")]
    ev = DuplicateVoteEvidence.of("c", *votes, hash_new=sm3_new)
    assert ev.hash == sm3(ev.encode())
    raw = codec.decode(ev.encode())
    assert DuplicateVoteEvidence.from_list(raw, hash_new=sm3_new).hash == sm3(ev.encode())
    assert DuplicateVoteEvidence.from_list(raw).hash == sha256(ev.encode())
