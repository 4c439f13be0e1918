"""Simple Merkle trees and ICS-23 specs over SM3, citychain's extension op (``HashOp.SM3``).

The expected roots are computed by hand with :func:`citychain.crypto.sm2.sm3` (libcrypto by
ctypes), not with the ``hashlib`` SM3 the proof layer uses.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from citychain.crypto import SM2_SM3
from citychain.crypto.sm2 import sm3, sm3_new
from citychain.errors import DecodeError, ProofError
from citychain.proof import ics23, merkle
from citychain.proof.ics23 import HashOp

items_lists = st.lists(st.binary(max_size=24), min_size=1, max_size=33, unique=True)


def _root(items: list[bytes]) -> bytes:
    if not items:
        return sm3(b"")
    hs = [sm3(b"\x00" + i) for i in items]

    def up(h: list[bytes]) -> bytes:
        if len(h) == 1:
            return h[0]
        k = 1
        while k * 2 < len(h):
            k *= 2
        return sm3(b"\x01" + up(h[:k]) + up(h[k:]))

    return up(hs)


def test_the_sm3_op_is_citychains_extension_value() -> None:
    assert HashOp.SM3 == 0x534D33 == int.from_bytes(b"SM3", "big")
    assert ics23.hash_op_named("sm3") is HashOp.SM3
    assert ics23.hash_op_named("sha256") is HashOp.SHA256
    assert ics23.do_hash(HashOp.SM3, b"abc") == sm3(b"abc")
    # GB/T 32905 example 1
    assert sm3(b"abc").hex() == "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    assert SM2_SM3.hash_name == "sm3" and SM2_SM3.hash(b"abc") == sm3(b"abc")
    assert sm3_new(b"abc").digest() == sm3(b"abc")
    with pytest.raises(Exception, match="no ICS-23 hash op"):
        ics23.hash_op_named("md5")


def test_the_sm3_spec_differs_from_smt_spec_only_in_its_hash_ops() -> None:
    assert ics23.smt_spec(HashOp.SHA256) == ics23.SMT_SPEC
    leaf, inner = ics23.SMT_SPEC_SM3.leaf_spec, ics23.SMT_SPEC_SM3.inner_spec
    assert leaf is not None and inner is not None
    assert (leaf.hash, leaf.prehash_key, leaf.prehash_value, inner.hash) == (HashOp.SM3,) * 4
    # the spec travels in protobuf like any other
    encoded = ics23.encode_proof_spec(ics23.SMT_SPEC_SM3)
    assert ics23.decode_proof_spec(encoded) == ics23.SMT_SPEC_SM3
    assert ics23.encode_proof_spec(ics23.SMT_SPEC) != encoded


@settings(max_examples=120, deadline=None)
@given(items=items_lists, data=st.data())
def test_sm3_roots_and_inclusion_proofs(items: list[bytes], data: st.DataObject) -> None:
    root = merkle.root(items, sm3_new)
    assert root == _root(items)
    assert root != merkle.root(items)  # the SHA-256 tree of the same items
    index = data.draw(st.integers(0, len(items) - 1))
    proof = merkle.prove(items, index, sm3_new)
    proof.verify(root, items[index])
    flip = data.draw(st.integers(0, 8 * max(1, len(items[index])) - 1))
    bad = bytearray(items[index] or b"\x00")
    bad[flip // 8 % len(bad)] ^= 1 << (flip % 8)
    with pytest.raises(ProofError):
        proof.verify(root, bytes(bad))


@settings(max_examples=60, deadline=None)
@given(
    pairs=st.dictionaries(
        st.binary(min_size=1, max_size=16), st.binary(min_size=1, max_size=16), min_size=1
    ),
    data=st.data(),
)
def test_sm3_tendermint_proofs_verify_under_the_sm3_spec_only(
    pairs: dict[bytes, bytes], data: st.DataObject
) -> None:
    keys = sorted(pairs)
    items = [merkle.kv_item(k, pairs[k], HashOp.SM3) for k in keys]
    root = merkle.root(items, sm3_new)
    i = data.draw(st.integers(0, len(keys) - 1))
    exist = merkle.to_ics23(merkle.prove(items, i, sm3_new), keys[i], pairs[keys[i]], HashOp.SM3)
    proof = ics23.CommitmentProof(exist=exist)
    # through the protobuf codec and back: the SM3 op survives
    proof = ics23.decode_commitment_proof(ics23.encode_commitment_proof(proof))
    spec = merkle.tendermint_spec(HashOp.SM3)
    ics23.verify_membership(spec, root, proof, keys[i], pairs[keys[i]])
    with pytest.raises(ProofError, match="SM3"):
        ics23.verify_membership(ics23.TENDERMINT_SPEC, root, proof, keys[i], pairs[keys[i]])
    assert not ics23.is_valid_membership(spec, root, proof, keys[i], pairs[keys[i]] + b"x")


def test_an_unknown_op_is_still_refused_by_the_decoder() -> None:
    # SM3 is known; a neighbouring value is not.
    leaf = ics23.LeafOp(hash=HashOp.SM3, prefix=b"\x00")
    proof = ics23.CommitmentProof(exist=ics23.ExistenceProof(key=b"k", value=b"v", leaf=leaf))
    good = ics23.encode_commitment_proof(proof)
    assert ics23.decode_commitment_proof(good) == proof
    bad = good.replace(b"\xb3\x9a\xcd\x02", b"\xb4\x9a\xcd\x02")  # varint of 0x534D33, +1
    assert bad != good
    with pytest.raises(DecodeError, match="unknown HashOp"):
        ics23.decode_commitment_proof(bad)


def test_sha256_trees_are_unchanged() -> None:
    a, b = (hashlib.sha256(b"\x00" + x).digest() for x in (b"a", b"b"))
    assert merkle.root([b"a", b"b"]) == hashlib.sha256(b"\x01" + a + b).digest()
    assert merkle.root([]) == merkle.EMPTY_ROOT == hashlib.sha256(b"").digest()
    assert merkle.tendermint_spec() == ics23.TENDERMINT_SPEC
