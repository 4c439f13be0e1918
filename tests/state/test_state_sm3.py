"""The state tree of an ``sm2-sm3`` chain: the same sparse Merkle tree, every hash SM3.

The reference root here is the slow obvious one (as in ``state_testlib``), over the SM3 of
:func:`citychain.crypto.sm2.sm3` (libcrypto through ctypes), not over the ``hashlib`` SM3 the
tree itself uses, so a wrong hash anywhere in the pages shows as a different root.
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from state_testlib import commit_block, open_store, reference_root

from citychain.crypto import ED25519, SM2_SM3
from citychain.crypto.sm2 import sm3
from citychain.errors import ProofError
from citychain.proof import ics23
from citychain.state import StateDB


def _bit(path: bytes, i: int) -> int:
    return (path[i // 8] >> (7 - i % 8)) & 1


def _subtree(leaves: list[tuple[bytes, bytes]], depth: int) -> bytes:
    if not leaves:
        return bytes(32)
    if len(leaves) == 1:
        return leaves[0][1]
    left = [x for x in leaves if not _bit(x[0], depth)]
    right = [x for x in leaves if _bit(x[0], depth)]
    return sm3(b"\x01" + _subtree(left, depth + 1) + _subtree(right, depth + 1))


def sm3_reference_root(model: Mapping[bytes, bytes]) -> bytes:
    leaves = [(sm3(k), sm3(b"\x00" + sm3(k) + sm3(v))) for k, v in model.items()]
    return _subtree(leaves, 0)


keys = st.binary(min_size=1, max_size=12)
values = st.binary(min_size=1, max_size=16)
blocks = st.lists(
    st.dictionaries(keys, st.one_of(st.none(), values), min_size=1, max_size=24),
    min_size=1,
    max_size=4,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(blocks=blocks, probes=st.lists(keys, max_size=6))
def test_sm3_roots_match_the_reference_and_proofs_verify_only_under_the_sm3_spec(
    blocks: list[dict[bytes, bytes | None]], probes: list[bytes]
) -> None:
    model: dict[bytes, bytes] = {}
    with open_store() as kv, open_store() as kv_sha:
        db = StateDB(kv, suite=SM2_SM3)
        same = StateDB(kv_sha, suite=ED25519)
        assert db.spec == ics23.SMT_SPEC_SM3 and same.spec == ics23.SMT_SPEC
        for writes in blocks:
            commit_block(kv, db, writes)
            commit_block(kv_sha, same, writes)
            for k, v in writes.items():
                if v is None:
                    model.pop(k, None)
                else:
                    model[k] = v
            assert db.root == sm3_reference_root(model)
            if model:
                assert db.root != same.root  # the same state, another hash
        for key in [*list(model)[:6], *probes]:
            value, proof = db.prove(key)
            assert value == model.get(key)
            if not model:
                continue  # the empty tree proves nothing (see StateDB.prove)
            if value is None:
                ics23.verify_non_membership(ics23.SMT_SPEC_SM3, db.root, proof, key)
                with pytest.raises(ProofError):
                    ics23.verify_non_membership(ics23.SMT_SPEC, db.root, proof, key)
            else:
                ics23.verify_membership(ics23.SMT_SPEC_SM3, db.root, proof, key, value)
                with pytest.raises(ProofError, match="SM3"):
                    ics23.verify_membership(ics23.SMT_SPEC, db.root, proof, key, value)
            # the proof's protobuf form carries the SM3 op and decodes to the same proof
            encoded = ics23.encode_commitment_proof(proof)
            assert ics23.decode_commitment_proof(encoded) == proof


def test_an_ed25519_tree_is_the_sha256_tree_it_always_was() -> None:
    # The root of two keys under upstream SmtSpec (sha256), as state_testlib computes it.
    model = {b"alice": b"\x01", b"bob": b"\x02\x03"}
    with open_store() as kv:
        db = StateDB(kv)
        commit_block(kv, db, dict(model))
        assert db.root == reference_root(model)
        assert db.spec == ics23.SMT_SPEC
        _, proof = db.prove(b"alice")
        assert proof.exist is not None
        assert {op.hash for op in proof.exist.path} <= {ics23.HashOp.SHA256}
