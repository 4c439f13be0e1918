"""Test helpers for citychain.state: an independent reference root, proof checks, tricky keys."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from tempfile import TemporaryDirectory

from citychain.proof.ics23 import (
    SMT_SPEC,
    CommitmentProof,
    decode_commitment_proof,
    encode_commitment_proof,
    is_valid_membership,
    is_valid_non_membership,
    verify_membership,
    verify_non_membership,
)
from citychain.state import StateDB, WriteSet
from citychain.store.kv import KVStore

EMPTY_ROOT = bytes(32)


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _bit(path: bytes, i: int) -> int:
    return (path[i // 8] >> (7 - i % 8)) & 1


def _subtree(leaves: list[tuple[bytes, bytes]], depth: int) -> bytes:
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0][1]
    left = [x for x in leaves if not _bit(x[0], depth)]
    right = [x for x in leaves if _bit(x[0], depth)]
    return sha(b"\x01" + _subtree(left, depth + 1) + _subtree(right, depth + 1))


def reference_root(model: Mapping[bytes, bytes]) -> bytes:
    """The compressed sparse Merkle root of ``model``, from scratch, the slow obvious way."""
    leaves = [(sha(k), sha(b"\x00" + sha(k) + sha(v))) for k, v in model.items()]
    return _subtree(leaves, 0)


def apply(model: dict[bytes, bytes], writes: WriteSet) -> None:
    for key, value in writes.items():
        if value is None:
            model.pop(key, None)
        else:
            model[key] = value


@contextmanager
def open_store(path: Path | None = None) -> Iterator[KVStore]:
    if path is not None:
        with KVStore(path, cache_bytes=8 << 20) as kv:
            yield kv
        return
    with TemporaryDirectory() as tmp, KVStore(Path(tmp), cache_bytes=8 << 20) as kv:
        yield kv


def commit_block(kv: KVStore, db: StateDB, writes: WriteSet) -> bytes:
    prepared = db.prepare(writes, db.version + 1)
    batch = kv.batch()
    db.commit(prepared, batch)
    kv.write(batch)
    db.committed(prepared)
    return prepared.root


def _roundtrip(proof: CommitmentProof) -> CommitmentProof:
    return decode_commitment_proof(encode_commitment_proof(proof))


def check_proof(
    db: StateDB, model: Mapping[bytes, bytes], key: bytes, version: int | None = None
) -> None:
    """``db.prove`` returns the model's value and a proof any ICS-23 verifier accepts (and
    rejects for a wrong value or the opposite claim)."""
    root = db.root if version is None else db.root_at(version)
    value, proof = db.prove(key, version)
    assert value == model.get(key)
    proof = _roundtrip(proof)
    if value is not None:
        verify_membership(SMT_SPEC, root, proof, key, value)
        assert not is_valid_membership(SMT_SPEC, root, proof, key, value + b"!")
        assert not is_valid_non_membership(SMT_SPEC, root, proof, key)
    elif model:
        verify_non_membership(SMT_SPEC, root, proof, key)
        assert not is_valid_membership(SMT_SPEC, root, proof, key, b"x")
        # The same neighbours do not prove the absence of a present key.
        assert not is_valid_non_membership(SMT_SPEC, root, proof, next(iter(model)))
    else:
        assert root == EMPTY_ROOT
        assert proof.nonexist is not None
        assert proof.nonexist.left is None and proof.nonexist.right is None


def _colliding_keys() -> tuple[list[bytes], list[bytes]]:
    """Keys whose hashes share long prefixes: a group of 5 sharing 16 bits, and a pair sharing
    24 bits (found by brute force, deterministically). They force pages deep in the tree and
    long chains of inner nodes with empty siblings."""
    by16: dict[bytes, list[bytes]] = {}
    by24: dict[bytes, list[bytes]] = {}
    group: list[bytes] = []
    pair: list[bytes] = []
    i = 0
    while not (group and pair):
        key = b"n%d" % i
        h = sha(key)
        g16 = by16.setdefault(h[:2], [])
        g16.append(key)
        if not group and len(g16) == 5:
            group = list(g16)
        g24 = by24.setdefault(h[:3], [])
        g24.append(key)
        if not pair and len(g24) == 2:
            pair = list(g24)
        i += 1
    return group, pair


DEEP_GROUP, DEEP_PAIR = _colliding_keys()

#: Keys with awkward bytes for the history encoding (0x00, 0xff, prefixes of each other).
AWKWARD_KEYS = [b"\x00", b"a", b"a\x00", b"a\x00\xff", b"a\x00\x01", b"a\xff", b"\xff\xff", b"ab"]
