"""Simple binary Merkle trees over ordered lists (transactions, receipts, validators).

RFC 6962 hashing as in Tendermint's ``crypto/merkle``: leaf = H(0x00 || item),
inner = H(0x01 || left || right), empty list = H(""). The split point is the largest
power of two below the length, so the tree shape depends only on the length. This is the
ICS-23 ``TendermintSpec`` shape: inclusion proofs made here are ICS-23 existence proofs too.

H is the chain's hash, passed by the caller as a hashlib-style constructor ``new``
(``new(data).digest()``; :data:`citychain.crypto.HashNew`): SHA-256 (``hashlib.sha256``, the
default, for ``ed25519`` chains) or SM3 (for ``sm2-sm3`` chains). This module cannot import
the suites (``proof`` sits beside ``crypto``), so it takes the function, never a suite.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from citychain.errors import ErrorCode, ProofError
from citychain.proof._protobuf import encode_varint
from citychain.proof.ics23 import TENDERMINT_SPEC, ExistenceProof, HashOp, InnerOp, ProofSpec


class _Digest(Protocol):
    def digest(self) -> bytes: ...


#: A hashlib-style constructor (the same shape as :data:`citychain.crypto.HashNew`).
HashNew = Callable[[bytes], _Digest]

_SHA256: HashNew = hashlib.sha256

#: The root of an empty list on a SHA-256 chain; :func:`root` ``([], new)`` for another hash.
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(item: bytes, new: HashNew = _SHA256) -> bytes:
    return new(b"\x00" + item).digest()


def inner_hash(left: bytes, right: bytes, new: HashNew = _SHA256) -> bytes:
    return new(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """Largest power of two strictly less than n (n >= 2)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def _root_of_hashes(hashes: Sequence[bytes], new: HashNew) -> bytes:
    n = len(hashes)
    if n == 1:
        return hashes[0]
    k = _split(n)
    return inner_hash(_root_of_hashes(hashes[:k], new), _root_of_hashes(hashes[k:], new), new)


def root(items: Sequence[bytes], new: HashNew = _SHA256) -> bytes:
    """The Merkle root of ``items`` (each already encoded to bytes) under the hash ``new``."""
    if not items:
        return new(b"").digest()
    return _root_of_hashes([new(b"\x00" + i).digest() for i in items], new)


def root_of_leaves(leaves: Sequence[bytes], new: HashNew = _SHA256) -> bytes:
    """The Merkle root of a list given by its items' leaf hashes (:func:`leaf_hash`): what
    :func:`root` gives for the items themselves, for a reader shown some items only by hash."""
    if not leaves:
        return new(b"").digest()
    return _root_of_hashes(list(leaves), new)


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """Proof that the item at ``index`` of a list of ``total`` items is under a root.

    ``aunts`` are the sibling hashes from the leaf upwards.
    """

    index: int
    total: int
    aunts: tuple[bytes, ...]
    #: The tree's hash (not part of the proof's data: the verifier's chain decides it).
    new: HashNew = dataclasses.field(default=_SHA256, compare=False, repr=False, kw_only=True)

    def compute_root(self, item: bytes) -> bytes:
        if not 0 <= self.index < self.total:
            raise ProofError("index out of range", ErrorCode.BAD_PROOF)
        new = self.new
        return _compute(leaf_hash(item, new), self.index, self.total, list(self.aunts), new)

    def verify(self, root_hash: bytes, item: bytes) -> None:
        """Raise :class:`ProofError` unless ``item`` is at ``index`` under ``root_hash``."""
        if self.compute_root(item) != root_hash:
            raise ProofError("inclusion proof does not match the root", ErrorCode.BAD_PROOF)


def _compute(h: bytes, index: int, total: int, aunts: list[bytes], new: HashNew) -> bytes:
    if total == 1:
        if aunts:
            raise ProofError("too many aunts in inclusion proof", ErrorCode.BAD_PROOF)
        return h
    if not aunts:
        raise ProofError("too few aunts in inclusion proof", ErrorCode.BAD_PROOF)
    k = _split(total)
    if index < k:
        left = _compute(h, index, k, aunts[:-1], new)
        return inner_hash(left, aunts[-1], new)
    right = _compute(h, index - k, total - k, aunts[:-1], new)
    return inner_hash(aunts[-1], right, new)


def prove(items: Sequence[bytes], index: int, new: HashNew = _SHA256) -> InclusionProof:
    """An inclusion proof for ``items[index]`` in the tree hashed with ``new``."""
    if not 0 <= index < len(items):
        raise IndexError(index)
    hashes = [leaf_hash(i, new) for i in items]
    aunts: list[bytes] = []
    _collect(hashes, index, aunts, new)
    return InclusionProof(index=index, total=len(items), aunts=tuple(aunts), new=new)


def _collect(hashes: Sequence[bytes], index: int, aunts: list[bytes], new: HashNew) -> None:
    # Appends sibling hashes from the leaf upwards.
    n = len(hashes)
    if n == 1:
        return
    k = _split(n)
    if index < k:
        _collect(hashes[:k], index, aunts, new)
        aunts.append(_root_of_hashes(hashes[k:], new))
    else:
        _collect(hashes[k:], index - k, aunts, new)
        aunts.append(_root_of_hashes(hashes[:k], new))


# --- As ICS-23 (additions; the hashing above is unchanged) ---------------------------------
#
# Tendermint's ``ProofsFromMap`` commits a map as a list of items, each the key/value pair
# ``uvarint(len(key)) || key || uvarint(32) || sha256(value)``, sorted by key. Then
# leaf_hash(item) is exactly the ICS-23 TendermintSpec leaf op applied to (key, value), and each
# aunt is an inner op with prefix 0x01 and the sibling as prefix tail or suffix. So a proof for
# such a list is an ICS-23 existence proof any verifier accepts under ``TENDERMINT_SPEC``.
# Under another hash op (SM3) every SHA-256 above becomes that op, in the tree and in the spec
# (:func:`tendermint_spec`).


def hash_new_of(op: HashOp) -> HashNew:
    """The hashlib-style constructor of a chain hash op (SHA256, or citychain's SM3)."""
    if op == HashOp.SHA256:
        return _SHA256
    if op == HashOp.SM3:
        return functools.partial(hashlib.new, "sm3")
    raise ProofError(f"{op!r} is not a chain hash", ErrorCode.BAD_PROOF)


def tendermint_spec(op: HashOp = HashOp.SHA256) -> ProofSpec:
    """``TENDERMINT_SPEC`` with its hash and value prehash set to ``op``."""
    leaf, inner = TENDERMINT_SPEC.leaf_spec, TENDERMINT_SPEC.inner_spec
    assert leaf is not None and inner is not None
    return dataclasses.replace(
        TENDERMINT_SPEC,
        leaf_spec=dataclasses.replace(leaf, hash=op, prehash_value=op),
        inner_spec=dataclasses.replace(inner, hash=op),
    )


def kv_item(key: bytes, value: bytes, op: HashOp = HashOp.SHA256) -> bytes:
    """The list item that commits ``key = value`` the way ICS-23's TendermintSpec expects."""
    digest = hash_new_of(op)(value).digest()
    return encode_varint(len(key)) + key + encode_varint(len(digest)) + digest


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


def to_ics23(
    proof: InclusionProof, key: bytes, value: bytes, op: HashOp = HashOp.SHA256
) -> ExistenceProof:
    """``proof`` (for the item ``kv_item(key, value, op)``, in a tree hashed with ``op``) as an
    ICS-23 existence proof.

    It verifies under :func:`tendermint_spec` ``(op)`` (for SHA256:
    :data:`~citychain.proof.ics23.TENDERMINT_SPEC`) against the same root.
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
        InnerOp(hash=op, prefix=b"\x01", suffix=aunt)
        if is_left
        else InnerOp(hash=op, prefix=b"\x01" + aunt)
        for is_left, aunt in zip(sides, proof.aunts, strict=True)
    )
    leaf = tendermint_spec(op).leaf_spec
    assert leaf is not None
    return ExistenceProof(key=key, value=value, leaf=leaf, path=path)
