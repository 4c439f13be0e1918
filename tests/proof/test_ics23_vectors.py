"""The cosmos/ics23 conformance vectors (tests/vectors/ics23, with licence and source).

The ``Test*Data.json`` files pin the building blocks (hash, leaf and inner ops, spec checks,
empty-branch detection); the ``iavl/``, ``tendermint/`` and ``smt/`` files hold real protobuf
proofs from the three tree kinds. Every valid proof must verify, re-encode to the same bytes,
and stop verifying when any part of it (root, key, value, a step, the spec) is changed.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from citychain.errors import DecodeError, ErrorCode, ProofError
from citychain.proof import ics23
from citychain.proof.ics23 import (
    IAVL_SPEC,
    SMT_SPEC,
    TENDERMINT_SPEC,
    CommitmentProof,
    ExistenceProof,
    HashOp,
    InnerOp,
    InnerSpec,
    LeafOp,
    LengthOp,
    NonExistenceProof,
    ProofSpec,
)

VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "ics23"
SPECS = {"iavl": IAVL_SPEC, "tendermint": TENDERMINT_SPEC, "smt": SMT_SPEC}
HAS_RIPEMD160 = "ripemd160" in hashlib.algorithms_available


def _load(name: str) -> Any:
    return json.loads((VECTORS / name).read_text())


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value) if value else b""


def _leaf(d: dict[str, Any]) -> LeafOp:
    return LeafOp(
        hash=HashOp(d.get("hash", 0)),
        prehash_key=HashOp(d.get("prehash_key", 0)),
        prehash_value=HashOp(d.get("prehash_value", 0)),
        length=LengthOp(d.get("length", 0)),
        prefix=_b64(d.get("prefix")),
    )


def _inner(d: dict[str, Any]) -> InnerOp:
    return InnerOp(
        hash=HashOp(d.get("hash", 0)), prefix=_b64(d.get("prefix")), suffix=_b64(d.get("suffix"))
    )


def _existence(d: dict[str, Any]) -> ExistenceProof:
    return ExistenceProof(
        key=_b64(d.get("key")),
        value=_b64(d.get("value")),
        leaf=_leaf(d["leaf"]) if d.get("leaf") is not None else None,
        path=tuple(_inner(s) for s in d.get("path") or ()),
    )


def _spec(d: dict[str, Any]) -> ProofSpec:
    inner = d.get("inner_spec")
    return ProofSpec(
        leaf_spec=_leaf(d["leaf_spec"]) if d.get("leaf_spec") is not None else None,
        inner_spec=InnerSpec(
            child_order=tuple(inner.get("child_order", ())),
            child_size=inner.get("child_size", 0),
            min_prefix_length=inner.get("min_prefix_length", 0),
            max_prefix_length=inner.get("max_prefix_length", 0),
            empty_child=_b64(inner.get("empty_child")),
            hash=HashOp(inner.get("hash", 0)),
        )
        if inner is not None
        else None,
        max_depth=d.get("max_depth", 0),
        min_depth=d.get("min_depth", 0),
        prehash_key_before_comparison=d.get("prehash_key_before_comparison", False),
    )


def _cases(name: str) -> list[Any]:
    data = _load(name)
    items = data.items() if isinstance(data, dict) else enumerate(data)
    return [pytest.param(case, id=str(key)) for key, case in items]


def _needs(op: HashOp) -> None:
    if op in (HashOp.RIPEMD160, HashOp.BITCOIN) and not HAS_RIPEMD160:
        pytest.skip("this Python's OpenSSL has no ripemd160")


# --- building blocks ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", _cases("TestDoHashData.json"))
def test_do_hash(case: dict[str, Any]) -> None:
    op = HashOp(case["HashOp"])
    _needs(op)
    preimage = (case.get("Preimage") or case.get("PreImage") or "").encode()
    assert ics23.do_hash(op, preimage).hex() == case["ExpectedHash"]


@pytest.mark.parametrize("op", [HashOp.KECCAK256, HashOp.BLAKE3, HashOp.NO_HASH])
def test_hash_ops_without_an_implementation_are_refused_clearly(op: HashOp) -> None:
    with pytest.raises(ProofError) as info:
        ics23.do_hash(op, b"food")
    assert info.value.code == ErrorCode.BAD_PROOF
    assert op.name in info.value.message


@pytest.mark.parametrize("case", _cases("TestLeafOpData.json"))
def test_leaf_op(case: dict[str, Any]) -> None:
    op = _leaf(case["Op"])
    key, value = _b64(case["Key"]), _b64(case["Value"])
    if case["IsErr"]:
        with pytest.raises(ProofError, match="non-empty"):
            ics23.apply_leaf(op, key, value)
    else:
        assert ics23.apply_leaf(op, key, value) == _b64(case["Expected"])


@pytest.mark.parametrize("case", _cases("TestInnerOpData.json"))
def test_inner_op(case: dict[str, Any]) -> None:
    op = _inner(case["Op"])
    if case["IsErr"]:
        with pytest.raises(ProofError, match="child"):
            ics23.apply_inner(op, _b64(case["Child"]))
    else:
        assert ics23.apply_inner(op, _b64(case["Child"])) == _b64(case["Expected"])


@pytest.mark.parametrize("case", _cases("TestExistenceProofData.json"))
def test_existence_proof_root(case: dict[str, Any]) -> None:
    proof = _existence(case["Proof"])
    if case["IsErr"]:
        with pytest.raises(ProofError, match="no leaf op"):
            ics23.calculate_existence_root(proof)
    else:
        assert ics23.calculate_existence_root(proof) == _b64(case["Expected"])


@pytest.mark.parametrize("case", _cases("TestCheckLeafData.json"))
def test_check_leaf(case: dict[str, Any]) -> None:
    # With an empty path, checking a proof against a spec checks exactly its leaf op.
    proof = ExistenceProof(key=b"k", value=b"v", leaf=_leaf(case["Leaf"]))
    spec = ProofSpec(leaf_spec=_leaf(case["Spec"]))
    if case["IsErr"]:
        with pytest.raises(ProofError, match=r"^bad_proof: leaf: "):
            ics23.check_against_spec(proof, spec)
    else:
        ics23.check_against_spec(proof, spec)


# The reference's error for each failing vector, and the words of ours that say the same.
CHECK_AGAINST_SPEC_REASONS = {
    "existence Proof needs defined LeafOp": "existence proof has no leaf op",
    "innerOps depth too short: 1": "path too short: 1 inner ops, spec min_depth is 2",
    "innerOps depth too long: 5": "path too long: 5 inner ops, spec max_depth is 4",
    "innerOps depth too long: 129": "path too long: 129 inner ops, spec max_depth is 128",
    "inner, unexpected HashOp: 2": "inner op 1: hash op SHA512 does not match spec (SHA256)",
    "inner, unexpected HashOp: 0": "inner op 1: hash op NO_HASH does not match spec (SHA256)",
    "leaf, unexpected PrehashValue: 0": "leaf: prehash_value op NO_HASH does not match spec",
    "inner, IAVL height (0) must be non-negative and greater than or equal to the layer "
    "number (3)": "inner op 3: IAVL height 0 must be non-negative and at least the layer number 3",
}


@pytest.mark.parametrize("case", _cases("TestCheckAgainstSpecData.json"))
def test_check_against_spec(case: dict[str, Any]) -> None:
    proof, spec = _existence(case["Proof"]), _spec(case["Spec"])
    if not case["Err"]:
        ics23.check_against_spec(proof, spec)
        return
    with pytest.raises(ProofError) as info:
        ics23.check_against_spec(proof, spec)
    assert CHECK_AGAINST_SPEC_REASONS[case["Err"]] in info.value.message


@pytest.mark.parametrize("case", _cases("TestEmptyBranchData.json"))
def test_empty_branch(case: dict[str, Any]) -> None:
    op, spec = _inner(case["Op"]), _spec(case["Spec"])
    assert spec.inner_spec is not None
    ics23._check_inner_op(op, spec, 1)
    assert ics23._left_branches_are_empty(spec.inner_spec, op) is case["IsLeft"]
    assert ics23._right_branches_are_empty(spec.inner_spec, op) is case["IsRight"]


# --- real proofs from IAVL, Tendermint and SMT trees ---------------------------------------------

PROOF_FILES = sorted(p.relative_to(VECTORS).as_posix() for p in VECTORS.glob("*/*.json"))


@dataclasses.dataclass(frozen=True)
class Vector:
    spec: ProofSpec
    raw: bytes
    proof: CommitmentProof
    root: bytes
    key: bytes
    value: bytes


def _vector(name: str) -> Vector:
    data = _load(name)
    raw = bytes.fromhex(data["proof"])
    return Vector(
        spec=SPECS[name.split("/")[0]],
        raw=raw,
        proof=ics23.decode_commitment_proof(raw),
        root=bytes.fromhex(data["root"]),
        key=bytes.fromhex(data["key"]),
        value=bytes.fromhex(data["value"]),
    )


def _flip(data: bytes, at: int = -1) -> bytes:
    out = bytearray(data)
    out[at] ^= 0x01
    return bytes(out)


def test_every_proof_file_is_covered() -> None:
    assert len(PROOF_FILES) == 18
    for kind in SPECS:
        for side in ("left", "middle", "right"):
            assert f"{kind}/exist_{side}.json" in PROOF_FILES
            assert f"{kind}/nonexist_{side}.json" in PROOF_FILES


@pytest.mark.parametrize("name", PROOF_FILES)
def test_proof_vector_verifies(name: str) -> None:
    v = _vector(name)
    if name.split("/")[1].startswith("exist"):
        assert v.proof.exist is not None
        assert ics23.calculate_existence_root(v.proof.exist) == v.root
        ics23.verify_membership(v.spec, v.root, v.proof, v.key, v.value)
        assert ics23.is_valid_membership(v.spec, v.root, v.proof, v.key, v.value)
    else:
        assert v.value == b""
        assert v.proof.nonexist is not None
        neighbour = v.proof.nonexist.left or v.proof.nonexist.right
        assert neighbour is not None
        assert ics23.calculate_existence_root(neighbour) == v.root
        ics23.verify_non_membership(v.spec, v.root, v.proof, v.key)
        assert ics23.is_valid_non_membership(v.spec, v.root, v.proof, v.key)


@pytest.mark.parametrize("name", PROOF_FILES)
def test_proof_vector_reencodes_to_the_same_bytes(name: str) -> None:
    v = _vector(name)
    assert ics23.encode_commitment_proof(v.proof) == v.raw


@pytest.mark.parametrize("name", [n for n in PROOF_FILES if "/exist_" in n])
def test_membership_fails_when_anything_changes(name: str) -> None:
    v = _vector(name)
    exist = v.proof.exist
    assert exist is not None

    def refused(
        match: str | None,
        *,
        spec: ProofSpec | None = None,
        root: bytes | None = None,
        proof: ExistenceProof | None = None,
        key: bytes | None = None,
        value: bytes | None = None,
    ) -> None:
        with pytest.raises(ProofError, match=match) as info:
            ics23.verify_membership(
                spec or v.spec,
                v.root if root is None else root,
                CommitmentProof(exist=proof or exist),
                v.key if key is None else key,
                v.value if value is None else value,
            )
        assert info.value.code == ErrorCode.BAD_PROOF
        assert not ics23.is_valid_membership(
            spec or v.spec,
            v.root if root is None else root,
            CommitmentProof(exist=proof or exist),
            v.key if key is None else key,
            v.value if value is None else value,
        )

    refused("root mismatch", root=_flip(v.root))
    refused("root mismatch", root=_flip(v.root, 0))
    refused("key mismatch", key=_flip(v.key))
    refused("value mismatch", value=_flip(v.value))
    refused("value mismatch", value=v.value + b"x")
    # A proof whose key and value were changed together no longer leads to the root.
    refused(
        "root mismatch",
        proof=dataclasses.replace(exist, value=_flip(v.value)),
        value=_flip(v.value),
    )
    refused("root mismatch", proof=dataclasses.replace(exist, key=_flip(v.key)), key=_flip(v.key))
    # Every step, and the leaf: change one byte of it.
    for i, step in enumerate(exist.path):
        if step.suffix:
            changed = dataclasses.replace(step, suffix=_flip(step.suffix))
        else:
            changed = dataclasses.replace(step, prefix=_flip(step.prefix))
        path = (*exist.path[:i], changed, *exist.path[i + 1 :])
        refused(None, proof=dataclasses.replace(exist, path=path))
    assert exist.leaf is not None
    refused(
        None,
        proof=dataclasses.replace(
            exist, leaf=dataclasses.replace(exist.leaf, prefix=_flip(exist.leaf.prefix))
        ),
    )
    # Dropping the top step, or adding one, breaks the proof too.
    refused(None, proof=dataclasses.replace(exist, path=exist.path[:-1]))
    refused(None, proof=dataclasses.replace(exist, path=exist.path + exist.path[-1:]))
    # The proof is only good under the spec of its own tree kind.
    for other in SPECS.values():
        if other is not v.spec:
            refused(None, spec=other)
    # And it is not a non-membership proof of anything.
    with pytest.raises(ProofError, match="non-membership needs a non-existence proof"):
        ics23.verify_non_membership(v.spec, v.root, v.proof, v.key)


def _with(proof: NonExistenceProof, side: str, neighbour: ExistenceProof) -> NonExistenceProof:
    if side == "left":
        return dataclasses.replace(proof, left=neighbour)
    return dataclasses.replace(proof, right=neighbour)


@pytest.mark.parametrize("name", [n for n in PROOF_FILES if "/nonexist_" in n])
def test_non_membership_fails_when_anything_changes(name: str) -> None:
    v = _vector(name)
    nonexist = v.proof.nonexist
    assert nonexist is not None

    def refused(
        match: str | None,
        proof: NonExistenceProof,
        *,
        key: bytes | None = None,
        root: bytes | None = None,
    ) -> None:
        with pytest.raises(ProofError, match=match):
            ics23.verify_non_membership(
                v.spec,
                v.root if root is None else root,
                CommitmentProof(nonexist=proof),
                v.key if key is None else key,
            )

    refused("root mismatch", nonexist, root=_flip(v.root))
    # The neighbours themselves exist, so the proof cannot show they are absent.
    if nonexist.left is not None:
        refused("not right of the left neighbour", nonexist, key=nonexist.left.key)
    if nonexist.right is not None:
        refused("not left of the right neighbour", nonexist, key=nonexist.right.key)
    # A neighbour whose value or a step was changed no longer leads to the root.
    for side in ("left", "right"):
        neighbour: ExistenceProof | None = getattr(nonexist, side)
        if neighbour is None:
            continue
        refused(
            f"{side} neighbour: root mismatch",
            _with(nonexist, side, dataclasses.replace(neighbour, value=_flip(neighbour.value))),
        )
        for i, step in enumerate(neighbour.path):
            changed = dataclasses.replace(
                step, prefix=_flip(step.prefix, 0 if len(step.prefix) == 1 else -1)
            )
            path = (*neighbour.path[:i], changed, *neighbour.path[i + 1 :])
            refused(
                f"{side} neighbour",
                _with(nonexist, side, dataclasses.replace(neighbour, path=path)),
            )
    # Dropping one neighbour of a middle key leaves a gap the other side does not close.
    if nonexist.left is not None and nonexist.right is not None:
        refused("is not the left-most leaf", dataclasses.replace(nonexist, left=None))
        refused("is not the right-most leaf", dataclasses.replace(nonexist, right=None))
        # Two copies of one leaf are not neighbours (the reference would panic on this).
        assert v.spec.inner_spec is not None
        left_path = nonexist.left.path
        assert not ics23._is_left_neighbor(v.spec.inner_spec, left_path, left_path)
        assert not ics23._is_left_neighbor(v.spec.inner_spec, left_path[1:], left_path)
        assert not ics23._is_left_neighbor(v.spec.inner_spec, (), left_path)
        # Swapped neighbours are refused.
        swapped = NonExistenceProof(left=nonexist.right, right=nonexist.left)
        refused(None, swapped)
    if nonexist.left is None and nonexist.right is None:
        pytest.fail("vector has no neighbour")
    # And it is not a membership proof.
    with pytest.raises(ProofError, match="membership needs an existence proof"):
        ics23.verify_membership(v.spec, v.root, v.proof, v.key, b"value")


def test_batch_and_compressed_proofs_are_refused_clearly() -> None:
    for tag, kind in ((b"\x1a", "batch"), (b"\x22", "compressed")):
        with pytest.raises(ProofError, match=f"{kind} proofs are not supported") as info:
            ics23.decode_commitment_proof(tag + b"\x00")
        assert info.value.code == ErrorCode.BAD_PROOF


def test_a_proof_with_two_kinds_set_is_malformed() -> None:
    raw = _vector("iavl/exist_left.json").raw
    with pytest.raises(DecodeError, match="more than one proof is set"):
        ics23.decode_commitment_proof(raw + b"\x12\x00")
