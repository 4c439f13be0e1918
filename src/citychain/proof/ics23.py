"""ICS-23 commitment proofs: data types (this part), protobuf codec and a spec-driven verifier.

The types mirror ``cosmos.ics23.v1`` (proofs.proto) field for field, so proofs made here can be
encoded to the same protobuf bytes any ICS-23 verifier in any language accepts.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class HashOp(IntEnum):
    NO_HASH = 0
    SHA256 = 1
    SHA512 = 2
    KECCAK256 = 3
    RIPEMD160 = 4
    BITCOIN = 5  # ripemd160(sha256(x))
    SHA512_256 = 6
    BLAKE2B_512 = 7
    BLAKE2S_256 = 8
    BLAKE3 = 9


class LengthOp(IntEnum):
    NO_PREFIX = 0
    VAR_PROTO = 1
    VAR_RLP = 2
    FIXED32_BIG = 3
    FIXED32_LITTLE = 4
    FIXED64_BIG = 5
    FIXED64_LITTLE = 6
    REQUIRE_32_BYTES = 7
    REQUIRE_64_BYTES = 8


@dataclass(frozen=True, slots=True)
class LeafOp:
    hash: HashOp = HashOp.NO_HASH
    prehash_key: HashOp = HashOp.NO_HASH
    prehash_value: HashOp = HashOp.NO_HASH
    length: LengthOp = LengthOp.NO_PREFIX
    prefix: bytes = b""


@dataclass(frozen=True, slots=True)
class InnerOp:
    hash: HashOp = HashOp.NO_HASH
    prefix: bytes = b""
    suffix: bytes = b""


@dataclass(frozen=True, slots=True)
class ExistenceProof:
    key: bytes = b""
    value: bytes = b""
    leaf: LeafOp | None = None
    path: tuple[InnerOp, ...] = ()


@dataclass(frozen=True, slots=True)
class NonExistenceProof:
    key: bytes = b""
    left: ExistenceProof | None = None
    right: ExistenceProof | None = None


@dataclass(frozen=True, slots=True)
class InnerSpec:
    child_order: tuple[int, ...] = ()
    child_size: int = 0
    min_prefix_length: int = 0
    max_prefix_length: int = 0
    empty_child: bytes = b""
    hash: HashOp = HashOp.NO_HASH


@dataclass(frozen=True, slots=True)
class ProofSpec:
    leaf_spec: LeafOp | None = None
    inner_spec: InnerSpec | None = None
    max_depth: int = 0
    min_depth: int = 0
    prehash_key_before_comparison: bool = False


@dataclass(frozen=True, slots=True)
class CommitmentProof:
    """Exactly one of ``exist`` and ``nonexist`` is set (batch proofs are not used here)."""

    exist: ExistenceProof | None = None
    nonexist: NonExistenceProof | None = None


#: The spec of citychain's state tree: ICS-23 ``SmtSpec`` (sha256; leaf prefix 0x00 over the
#: sha256 of key and of value; inner prefix 0x01; 32 zero bytes for an empty child).
SMT_SPEC = ProofSpec(
    leaf_spec=LeafOp(
        hash=HashOp.SHA256,
        prehash_key=HashOp.SHA256,
        prehash_value=HashOp.SHA256,
        length=LengthOp.NO_PREFIX,
        prefix=b"\x00",
    ),
    inner_spec=InnerSpec(
        child_order=(0, 1),
        child_size=32,
        min_prefix_length=1,
        max_prefix_length=1,
        empty_child=bytes(32),
        hash=HashOp.SHA256,
    ),
    max_depth=256,
    prehash_key_before_comparison=True,
)
