"""Properties of the ICS-23 protobuf codec: it round-trips, and hostile bytes only ever raise
``DecodeError`` or ``ProofError`` (never IndexError, ValueError, RecursionError, ...)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from citychain.errors import DecodeError, ErrorCode, InvalidInput, ProofError
from citychain.proof import ics23
from citychain.proof._protobuf import encode_varint
from citychain.proof.ics23 import (
    IAVL_SPEC,
    MAX_PATH_LENGTH,
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
SAMPLE_FILES = ["iavl/exist_middle.json", "smt/nonexist_middle.json", "tendermint/exist_left.json"]

small_bytes = st.binary(max_size=40)
leaf_ops = st.builds(
    LeafOp,
    hash=st.sampled_from(HashOp),
    prehash_key=st.sampled_from(HashOp),
    prehash_value=st.sampled_from(HashOp),
    length=st.sampled_from(LengthOp),
    prefix=small_bytes,
)
inner_ops = st.builds(InnerOp, hash=st.sampled_from(HashOp), prefix=small_bytes, suffix=small_bytes)
existence_proofs = st.builds(
    ExistenceProof,
    key=small_bytes,
    value=small_bytes,
    leaf=st.none() | leaf_ops,
    path=st.lists(inner_ops, max_size=6).map(tuple),
)
nonexistence_proofs = st.builds(
    NonExistenceProof,
    key=small_bytes,
    left=st.none() | existence_proofs,
    right=st.none() | existence_proofs,
)
commitment_proofs = st.one_of(
    existence_proofs.map(lambda p: CommitmentProof(exist=p)),
    nonexistence_proofs.map(lambda p: CommitmentProof(nonexist=p)),
)
int32s = st.integers(min_value=-(2**31), max_value=2**31 - 1)
proof_specs = st.builds(
    ProofSpec,
    leaf_spec=st.none() | leaf_ops,
    inner_spec=st.none()
    | st.builds(
        InnerSpec,
        child_order=st.lists(int32s, max_size=5).map(tuple),
        child_size=int32s,
        min_prefix_length=int32s,
        max_prefix_length=int32s,
        empty_child=small_bytes,
        hash=st.sampled_from(HashOp),
    ),
    max_depth=int32s,
    min_depth=int32s,
    prehash_key_before_comparison=st.booleans(),
)


def _sample(name: str) -> tuple[ProofSpec, bytes, dict[str, str]]:
    data = json.loads((VECTORS / name).read_text())
    return SPECS[name.split("/")[0]], bytes.fromhex(data["proof"]), data


@settings(max_examples=300, deadline=None)
@given(commitment_proofs)
def test_commitment_proof_round_trips(proof: CommitmentProof) -> None:
    encoded = ics23.encode_commitment_proof(proof)
    assert ics23.decode_commitment_proof(encoded) == proof
    assert ics23.encode_commitment_proof(ics23.decode_commitment_proof(encoded)) == encoded


@settings(max_examples=200, deadline=None)
@given(proof_specs)
def test_proof_spec_round_trips(spec: ProofSpec) -> None:
    encoded = ics23.encode_proof_spec(spec)
    assert ics23.decode_proof_spec(encoded) == spec


@pytest.mark.parametrize("spec", [IAVL_SPEC, TENDERMINT_SPEC, SMT_SPEC], ids=SPECS)
def test_reference_specs_round_trip(spec: ProofSpec) -> None:
    assert ics23.decode_proof_spec(ics23.encode_proof_spec(spec)) == spec


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_only_raises_decode_or_proof_errors(data: bytes) -> None:
    try:
        proof = ics23.decode_commitment_proof(data)
    except (DecodeError, ProofError):
        return
    # Whatever decodes must be refused by a verifier cleanly, or verify.
    for spec in SPECS.values():
        ics23.is_valid_membership(spec, b"\x00" * 32, proof, b"k", b"v")
        ics23.is_valid_non_membership(spec, b"\x00" * 32, proof, b"k")
    assert ics23.decode_commitment_proof(ics23.encode_commitment_proof(proof)) == proof


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=120))
def test_garbage_specs_only_raise_decode_errors(data: bytes) -> None:
    try:
        spec = ics23.decode_proof_spec(data)
    except DecodeError:
        return
    assert ics23.decode_proof_spec(ics23.encode_proof_spec(spec)) == spec


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(SAMPLE_FILES),
    edits=st.lists(
        st.tuples(st.integers(min_value=0), st.integers(0, 255), st.sampled_from("xid")),
        min_size=1,
        max_size=4,
    ),
)
def test_mutated_real_proofs_are_refused_cleanly(
    name: str, edits: list[tuple[int, int, str]]
) -> None:
    spec, raw, data = _sample(name)
    original = ics23.decode_commitment_proof(raw)
    mutated = bytearray(raw)
    for pos, byte, how in edits:
        at = pos % (len(mutated) + 1)
        if how == "x" and at < len(mutated):
            mutated[at] ^= byte or 1
        elif how == "i":
            mutated.insert(at, byte)
        elif at < len(mutated):
            del mutated[at]
    try:
        proof = ics23.decode_commitment_proof(bytes(mutated))
    except (DecodeError, ProofError):
        return
    root, key = bytes.fromhex(data["root"]), bytes.fromhex(data["key"])
    if data["value"]:
        ok = ics23.is_valid_membership(spec, root, proof, key, bytes.fromhex(data["value"]))
        if ok:  # only possible if the mutation did not touch anything that is hashed
            assert proof.exist == original.exist
    else:
        ok = ics23.is_valid_non_membership(spec, root, proof, key)
        if ok:  # the nonexist ``key`` field is not hashed; the neighbours are
            assert proof.nonexist is not None and original.nonexist is not None
            assert proof.nonexist.left == original.nonexist.left
            assert proof.nonexist.right == original.nonexist.right


# --- specific hostile inputs, each with the error a person can act on ----------------------------


def _exist_bytes(body: bytes) -> bytes:
    return b"\x0a" + encode_varint(len(body)) + body


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "no exist or nonexist proof"),
        (b"\x0a", "truncated length of field 1"),
        (b"\x0a\x05ab", "field 1 claims 5 bytes but only 2 remain"),
        (b"\x0a\x80", "truncated length of field 1"),
        (b"\x08" + b"\xff" * 10 + b"\x01", "does not fit in 64 bits"),
        (b"\x08" + b"\x80" * 11, "does not fit in 64 bits"),
        (b"\x00\x00", "invalid field number 0"),
        (b"\x0b", "groups"),
        (b"\x0e", "invalid wire type 6"),
        (b"\x08\x01", "exist (field 1) must be length-delimited, got varint"),
        (_exist_bytes(b"\x0a\x01k\x0a\x01k"), "exist: key appears more than once"),
        (_exist_bytes(b"\x1a\x02\x08\x2a"), "exist: leaf: hash: unknown HashOp value 42"),
        (_exist_bytes(b"\x1a\x02\x20\x09"), "exist: leaf: length: unknown LengthOp value 9"),
        (_exist_bytes(b"\x22\x02\x12\x05"), "exist: path[0]: field 2 claims 5 bytes"),
        (_exist_bytes(b"\x22\x00" * (MAX_PATH_LENGTH + 1)), "more than 256 inner ops"),
    ],
)
def test_malformed_bytes_get_a_clear_decode_error(data: bytes, message: str) -> None:
    with pytest.raises(DecodeError) as info:
        ics23.decode_commitment_proof(data)
    assert message in info.value.message
    assert info.value.message.startswith("invalid ICS-23 commitment proof: ")
    assert info.value.code in (ErrorCode.MALFORMED, ErrorCode.TOO_LARGE)


def test_path_length_limit_is_inclusive() -> None:
    proof = ics23.decode_commitment_proof(_exist_bytes(b"\x22\x00" * MAX_PATH_LENGTH))
    assert proof.exist is not None and len(proof.exist.path) == MAX_PATH_LENGTH
    too_long = CommitmentProof(exist=ExistenceProof(path=(InnerOp(),) * (MAX_PATH_LENGTH + 1)))
    with pytest.raises(InvalidInput):
        ics23.encode_commitment_proof(too_long)


def test_unknown_fields_are_skipped() -> None:
    _, raw, _ = _sample("iavl/exist_middle.json")
    unknown = (
        b"\x28\x07"  # field 5, varint
        + b"\x32\x03abc"  # field 6, length-delimited
        + b"\x3d\x01\x02\x03\x04"  # field 7, fixed32
        + b"\x41"
        + bytes(8)  # field 8, fixed64
    )
    assert ics23.decode_commitment_proof(unknown + raw + unknown) == ics23.decode_commitment_proof(
        raw
    )


def test_child_order_accepts_packed_and_unpacked_forms() -> None:
    packed = ics23.encode_proof_spec(ProofSpec(inner_spec=InnerSpec(child_order=(0, 1))))
    assert packed == b"\x12\x04\x0a\x02\x00\x01"
    unpacked = b"\x12\x04\x08\x00\x08\x01"
    assert ics23.decode_proof_spec(unpacked) == ics23.decode_proof_spec(packed)


def test_negative_int32_uses_ten_byte_varints_like_protobuf() -> None:
    encoded = ics23.encode_proof_spec(ProofSpec(max_depth=-1))
    assert encoded == b"\x18" + b"\xff" * 9 + b"\x01"
    assert ics23.decode_proof_spec(encoded).max_depth == -1
    with pytest.raises(DecodeError, match="out of int32 range"):
        ics23.decode_proof_spec(b"\x18\x80\x80\x80\x80\x10")  # 2**32


def test_encoder_refuses_what_protobuf_cannot_say() -> None:
    with pytest.raises(InvalidInput, match="exactly one"):
        ics23.encode_commitment_proof(CommitmentProof())
    both = CommitmentProof(exist=ExistenceProof(), nonexist=NonExistenceProof())
    with pytest.raises(InvalidInput, match="exactly one"):
        ics23.encode_commitment_proof(both)
    with pytest.raises(ProofError, match="both exist and nonexist"):
        ics23.verify_membership(SMT_SPEC, b"", both, b"k", b"v")


def test_empty_sub_messages_keep_their_presence() -> None:
    proof = CommitmentProof(exist=ExistenceProof(leaf=LeafOp()))
    encoded = ics23.encode_commitment_proof(proof)
    assert encoded == b"\x0a\x02\x1a\x00"
    assert ics23.decode_commitment_proof(encoded) == proof
