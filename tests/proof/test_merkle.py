"""Simple Merkle trees (citychain.proof.merkle) and their ICS-23 form under TendermintSpec."""

from __future__ import annotations

import bisect
import dataclasses
import hashlib

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from citychain.errors import ErrorCode, ProofError
from citychain.proof import ics23, merkle
from citychain.proof.ics23 import TENDERMINT_SPEC, CommitmentProof, NonExistenceProof

items_lists = st.lists(st.binary(max_size=24), min_size=1, max_size=40, unique=True)


def test_root_of_empty_list_is_sha256_of_nothing() -> None:
    assert merkle.root([]) == hashlib.sha256(b"").digest()


def test_known_small_roots() -> None:
    # RFC 6962 shape: leaf = sha256(00 || x), inner = sha256(01 || l || r), split at 2^k < n.
    a, b, c = (hashlib.sha256(b"\x00" + x).digest() for x in (b"a", b"b", b"c"))
    ab = hashlib.sha256(b"\x01" + a + b).digest()
    assert merkle.root([b"a"]) == a
    assert merkle.root([b"a", b"b"]) == ab
    assert merkle.root([b"a", b"b", b"c"]) == hashlib.sha256(b"\x01" + ab + c).digest()


@settings(max_examples=150, deadline=None)
@given(items=items_lists, data=st.data())
def test_prove_then_verify_round_trips(items: list[bytes], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(items) - 1))
    root = merkle.root(items)
    proof = merkle.prove(items, index)
    assert proof.compute_root(items[index]) == root
    proof.verify(root, items[index])


@settings(max_examples=150, deadline=None)
@given(items=items_lists, data=st.data())
def test_changed_item_index_or_aunt_fails(items: list[bytes], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(items) - 1))
    root = merkle.root(items)
    proof = merkle.prove(items, index)

    with pytest.raises(ProofError) as info:
        proof.verify(root, items[index] + b"x")
    assert info.value.code == ErrorCode.BAD_PROOF

    other = data.draw(st.integers(-1, len(items)).filter(lambda i: i != index))
    with pytest.raises(ProofError):
        dataclasses.replace(proof, index=other).verify(root, items[index])

    if proof.aunts:
        k = data.draw(st.integers(0, len(proof.aunts) - 1))
        aunts = list(proof.aunts)
        aunts[k] = bytes([aunts[k][0] ^ 1]) + aunts[k][1:]
        with pytest.raises(ProofError):
            dataclasses.replace(proof, aunts=tuple(aunts)).verify(root, items[index])
        with pytest.raises(ProofError, match="aunts"):
            dataclasses.replace(proof, aunts=proof.aunts[:-1]).verify(root, items[index])
    with pytest.raises(ProofError, match="aunts"):
        dataclasses.replace(proof, aunts=(*proof.aunts, root)).verify(root, items[index])


# --- as ICS-23 existence / non-existence proofs ---------------------------------------------------

kv_maps = st.dictionaries(
    st.binary(min_size=1, max_size=12), st.binary(min_size=1, max_size=12), min_size=1, max_size=33
)


def _sorted_items(kv: dict[bytes, bytes]) -> tuple[list[bytes], list[bytes]]:
    keys = sorted(kv)
    return keys, [merkle.kv_item(k, kv[k]) for k in keys]


def test_kv_item_matches_the_tendermint_leaf_op() -> None:
    leaf = TENDERMINT_SPEC.leaf_spec
    assert leaf is not None
    item = merkle.kv_item(b"key", b"value")
    assert item == b"\x03key\x20" + hashlib.sha256(b"value").digest()
    assert merkle.leaf_hash(item) == ics23.apply_leaf(leaf, b"key", b"value")


@settings(max_examples=100, deadline=None)
@given(kv=kv_maps, data=st.data())
def test_inclusion_proof_is_an_ics23_existence_proof(
    kv: dict[bytes, bytes], data: st.DataObject
) -> None:
    keys, items = _sorted_items(kv)
    root = merkle.root(items)
    i = data.draw(st.integers(0, len(keys) - 1))
    exist = merkle.to_ics23(merkle.prove(items, i), keys[i], kv[keys[i]])
    assert ics23.calculate_existence_root(exist) == root
    proof = CommitmentProof(exist=exist)
    assert ics23.decode_commitment_proof(ics23.encode_commitment_proof(proof)) == proof
    ics23.verify_membership(TENDERMINT_SPEC, root, proof, keys[i], kv[keys[i]])
    with pytest.raises(ProofError, match="value mismatch"):
        ics23.verify_membership(TENDERMINT_SPEC, root, proof, keys[i], kv[keys[i]] + b"x")


@settings(max_examples=150, deadline=None)
@given(kv=kv_maps, missing=st.binary(min_size=1, max_size=12))
def test_neighbours_prove_non_membership_under_tendermint_spec(
    kv: dict[bytes, bytes], missing: bytes
) -> None:
    assume(missing not in kv)
    keys, items = _sorted_items(kv)
    root = merkle.root(items)

    def exist(i: int) -> ics23.ExistenceProof:
        return merkle.to_ics23(merkle.prove(items, i), keys[i], kv[keys[i]])

    j = bisect.bisect_left(keys, missing)  # keys[j - 1] < missing < keys[j]
    left = exist(j - 1) if j > 0 else None
    right = exist(j) if j < len(keys) else None
    proof = CommitmentProof(nonexist=NonExistenceProof(key=missing, left=left, right=right))
    ics23.verify_non_membership(TENDERMINT_SPEC, root, proof, missing)

    # Leaving out a neighbour, or using one that is not adjacent, is refused.
    if left is not None and right is not None:
        for partial in (NonExistenceProof(left=left), NonExistenceProof(right=right)):
            with pytest.raises(ProofError, match="most leaf"):
                ics23.verify_non_membership(
                    TENDERMINT_SPEC, root, CommitmentProof(nonexist=partial), missing
                )
    if j >= 2:
        skipping = NonExistenceProof(left=exist(j - 2), right=right)
        with pytest.raises(ProofError):
            ics23.verify_non_membership(
                TENDERMINT_SPEC, root, CommitmentProof(nonexist=skipping), missing
            )
    if j + 1 < len(keys):
        skipping = NonExistenceProof(left=left, right=exist(j + 1))
        with pytest.raises(ProofError):
            ics23.verify_non_membership(
                TENDERMINT_SPEC, root, CommitmentProof(nonexist=skipping), missing
            )


@settings(max_examples=100, deadline=None)
@given(kv=kv_maps, data=st.data())
def test_a_present_key_cannot_be_proven_absent(kv: dict[bytes, bytes], data: st.DataObject) -> None:
    keys, items = _sorted_items(kv)
    assume(len(keys) >= 3)
    root = merkle.root(items)
    i = data.draw(st.integers(1, len(keys) - 2))

    def exist(n: int) -> ics23.ExistenceProof:
        return merkle.to_ics23(merkle.prove(items, n), keys[n], kv[keys[n]])

    # The leaves around keys[i] are real, but they are not neighbours: keys[i] is between them.
    proof = CommitmentProof(nonexist=NonExistenceProof(left=exist(i - 1), right=exist(i + 1)))
    with pytest.raises(ProofError, match="not adjacent"):
        ics23.verify_non_membership(TENDERMINT_SPEC, root, proof, keys[i])


def test_to_ics23_refuses_a_malformed_inclusion_proof() -> None:
    items = [merkle.kv_item(b"a", b"1"), merkle.kv_item(b"b", b"2"), merkle.kv_item(b"c", b"3")]
    proof = merkle.prove(items, 1)
    with pytest.raises(ProofError, match="aunts"):
        merkle.to_ics23(dataclasses.replace(proof, aunts=proof.aunts[:1]), b"b", b"2")
    with pytest.raises(ProofError, match="index out of range"):
        merkle.to_ics23(dataclasses.replace(proof, index=3), b"b", b"2")
