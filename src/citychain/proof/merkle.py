"""Simple binary Merkle trees over ordered lists (transactions, receipts, validators).

RFC 6962 hashing as in Tendermint's ``crypto/merkle``: leaf = sha256(0x00 || item),
inner = sha256(0x01 || left || right), empty list = sha256(""). The split point is the largest
power of two below the length, so the tree shape depends only on the length. This is the
ICS-23 ``TendermintSpec`` shape: inclusion proofs made here are ICS-23 existence proofs too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from citychain.errors import ErrorCode, ProofError
from citychain.proof._protobuf import encode_varint
from citychain.proof.ics23 import TENDERMINT_SPEC, ExistenceProof, HashOp, InnerOp

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(item: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + item).digest()


def inner_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """Largest power of two strictly less than n (n >= 2)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def _root_of_hashes(hashes: Sequence[bytes]) -> bytes:
    n = len(hashes)
    if n == 1:
        return hashes[0]
    k = _split(n)
    return inner_hash(_root_of_hashes(hashes[:k]), _root_of_hashes(hashes[k:]))


def root(items: Sequence[bytes]) -> bytes:
    """The Merkle root of ``items`` (each already encoded to bytes)."""
    if not items:
        return EMPTY_ROOT
    return _root_of_hashes([leaf_hash(i) for i in items])


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """Proof that the item at ``index`` of a list of ``total`` items is under a root.

    ``aunts`` are the sibling hashes from the leaf upwards.
    """

    index: int
    total: int
    aunts: tuple[bytes, ...]

    def compute_root(self, item: bytes) -> bytes:
        if not 0 <= self.index < self.total:
            raise ProofError("index out of range", ErrorCode.BAD_PROOF)
        return _compute(leaf_hash(item), self.index, self.total, list(self.aunts))

    def verify(self, root_hash: bytes, item: bytes) -> None:
        """Raise :class:`ProofError` unless ``item`` is at ``index`` under ``root_hash``."""
        if self.compute_root(item) != root_hash:
            raise ProofError("inclusion proof does not match the root", ErrorCode.BAD_PROOF)


def _compute(h: bytes, index: int, total: int, aunts: list[bytes]) -> bytes:
    if total == 1:
        if aunts:
            raise ProofError("too many aunts in inclusion proof", ErrorCode.BAD_PROOF)
        return h
    if not aunts:
        raise ProofError("too few aunts in inclusion proof", ErrorCode.BAD_PROOF)
    k = _split(total)
    if index < k:
        left = _compute(h, index, k, aunts[:-1])
        return inner_hash(left, aunts[-1])
    right = _compute(h, index - k, total - k, aunts[:-1])
    return inner_hash(aunts[-1], right)


def prove(items: Sequence[bytes], index: int) -> InclusionProof:
    """An inclusion proof for ``items[index]``."""
    if not 0 <= index < len(items):
        raise IndexError(index)
    hashes = [leaf_hash(i) for i in items]
    aunts: list[bytes] = []
    _collect(hashes, index, aunts)
    return InclusionProof(index=index, total=len(items), aunts=tuple(aunts))


def _collect(hashes: Sequence[bytes], index: int, aunts: list[bytes]) -> None:
    # Appends sibling hashes from the leaf upwards.
    n = len(hashes)
    if n == 1:
        return
    k = _split(n)
    if index < k:
        _collect(hashes[:k], index, aunts)
        aunts.append(_root_of_hashes(hashes[k:]))
    else:
        _collect(hashes[k:], index - k, aunts)
        aunts.append(_root_of_hashes(hashes[:k]))


# --- As ICS-23 (additions; the hashing above is unchanged) ---------------------------------
#
# Tendermint's ``ProofsFromMap`` commits a map as a list of items, each the key/value pair
# ``uvarint(len(key)) || key || uvarint(32) || sha256(value)``, sorted by key. Then
# leaf_hash(item) is exactly the ICS-23 TendermintSpec leaf op applied to (key, value), and each
# aunt is an inner op with prefix 0x01 and the sibling as prefix tail or suffix. So a proof for
# such a list is an ICS-23 existence proof any verifier accepts under ``TENDERMINT_SPEC``.


def kv_item(key: bytes, value: bytes) -> bytes:
    """The list item that commits ``key = value`` the way ICS-23's TendermintSpec expects."""
    return (
        encode_varint(len(key))
        + key
        + encode_varint(hashlib.sha256().digest_size)
        + hashlib.sha256(value).digest()
    )


def _sides(index: int, total: int) -> list[bool]:
    """For each level from the leaf upwards: is the node on the path the left child?"""
    sides: list[bool] = []
    while total > 1:
        k = _split(total)
        if index < k:
            sides.append(True)
            total = k
        else:
            sides.append(False)
            index -= k
            total -= k
    sides.reverse()
    return sides


def to_ics23(proof: InclusionProof, key: bytes, value: bytes) -> ExistenceProof:
    """``proof`` (for the item ``kv_item(key, value)``) as an ICS-23 existence proof.

    It verifies under :data:`~citychain.proof.ics23.TENDERMINT_SPEC` against the same root.
    """
    if not 0 <= proof.index < proof.total:
        raise ProofError("index out of range", ErrorCode.BAD_PROOF)
    sides = _sides(proof.index, proof.total)
    if len(sides) != len(proof.aunts):
        raise ProofError(
            f"inclusion proof has {len(proof.aunts)} aunts, a tree of {proof.total} needs "
            f"{len(sides)}",
            ErrorCode.BAD_PROOF,
        )
    path = tuple(
        InnerOp(hash=HashOp.SHA256, prefix=b"\x01", suffix=aunt)
        if is_left
        else InnerOp(hash=HashOp.SHA256, prefix=b"\x01" + aunt)
        for is_left, aunt in zip(sides, proof.aunts, strict=True)
    )
    leaf = TENDERMINT_SPEC.leaf_spec
    assert leaf is not None
    return ExistenceProof(key=key, value=value, leaf=leaf, path=path)
