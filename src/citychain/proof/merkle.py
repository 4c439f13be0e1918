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
