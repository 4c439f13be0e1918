"""ICS-23 commitment proofs: data types, protobuf codec and a spec-driven verifier.

The types mirror ``cosmos.ics23.v1`` (proofs.proto) field for field, so proofs made here can be
encoded to the same protobuf bytes any ICS-23 verifier in any language accepts.

Theory of operation
-------------------
An :class:`ExistenceProof` is a recipe: hash the key and value with its :class:`LeafOp`, then
fold the result through each :class:`InnerOp` of ``path`` (``hash(prefix || child || suffix)``),
leaf upwards. If the result equals a trusted root, the key/value pair is committed under that
root. The recipe alone proves little, because prefixes and suffixes are free bytes: a forger can
move bytes between key, prefix and value (see the "maliability" vectors). A :class:`ProofSpec`
pins the shape of one kind of tree, and :func:`check_against_spec` refuses any proof outside it:

* the leaf op must use the spec's hash, prehash and length ops and start with its leaf prefix;
* every inner op must use the spec's hash, must *not* start with the leaf prefix (so a leaf
  can never be passed off as an inner node), and its prefix and suffix lengths must fit
  ``min/max_prefix_length`` plus a whole number of ``child_size`` sibling hashes;
* the path length must lie within ``min_depth`` and ``max_depth`` (128 when 0);
* for specs shaped like IAVL or Tendermint (compared as the reference does: hash ops, prefix
  lengths and child size), their extra inner-op rules apply too.

Non-membership is proved by the neighbours of the missing key: an existence proof of the key
just left of it and/or just right of it, both under the same root. Keys are compared bytewise,
after hashing them with the leaf's ``prehash_key`` when ``prehash_key_before_comparison`` is
set (SMT trees order leaves by key hash). Adjacency is read off the paths: the position of a
child inside an inner node follows from the lengths of the prefix and suffix (``child_order``
and ``child_size``), so after removing the common top of both paths, the first differing step
must put the left proof exactly one branch left of the right proof, every step below it on the
left must be right-most and every step on the right left-most. A sibling equal to the spec's
``empty_child`` is a placeholder (sparse trees), not a real neighbour, so it does not break
left-/right-mostness. With only one neighbour, that neighbour must be the extreme leaf.

This follows the reference algorithm of cosmos/ics23 (``go/proof.go``, ``go/ops.go``) step by
step, including its order of checks, so the same vectors pass and fail for the same reasons.
Where the reference would panic on hostile input (identical paths in a neighbour check, a
step that fits no branch), this module raises :class:`~citychain.errors.ProofError` instead.

Supported hash ops: SHA256, SHA512, SHA512_256, BLAKE2B_512, BLAKE2S_256, and RIPEMD160 and
BITCOIN when the local OpenSSL provides ripemd160. KECCAK256 (which is not SHA3-256) and
BLAKE3 have no implementation in the standard library and raise "unsupported hash op".

SM3 is citychain's extension (:attr:`HashOp.SM3` = 0x534D33, ASCII "SM3"; ICS-23 defines no
SM3): the state tree of an ``sm2-sm3`` chain is ``SmtSpec`` with every op SM3
(:data:`SMT_SPEC_SM3`, :func:`smt_spec`). It is computed by the OpenSSL behind :mod:`hashlib`
and encodes like any op (a varint in the same protobuf fields). Nothing accepts it by itself:
a proof passes only against a spec whose ops are SM3, so a verifier that holds a SHA-256
chain's spec refuses an SM3 proof at the first op ("hash op SM3 does not match spec").

Batch and compressed proofs are decoded far enough to be refused with a clear error.

Every function here is pure: no I/O, no clock, no randomness.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import IntEnum
from typing import TypeVar

from citychain.errors import DecodeError, ErrorCode, InvalidInput, ProofError
from citychain.proof._protobuf import Field, Writer, encode_varint, iter_fields

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "IAVL_SPEC",
    "MAX_PATH_LENGTH",
    "SMT_SPEC",
    "SMT_SPEC_SM3",
    "TENDERMINT_SPEC",
    "CommitmentProof",
    "ExistenceProof",
    "HashOp",
    "InnerOp",
    "InnerSpec",
    "LeafOp",
    "LengthOp",
    "NonExistenceProof",
    "ProofSpec",
    "apply_inner",
    "apply_leaf",
    "calculate_existence_root",
    "check_against_spec",
    "decode_commitment_proof",
    "decode_proof_spec",
    "do_hash",
    "encode_commitment_proof",
    "encode_proof_spec",
    "hash_op_named",
    "is_valid_membership",
    "is_valid_non_membership",
    "smt_spec",
    "verify_membership",
    "verify_non_membership",
]

#: Path length used when a spec's ``max_depth`` is 0 (as in the reference).
DEFAULT_MAX_DEPTH = 128
#: The decoder refuses longer paths (and longer ``child_order`` lists): a sparse Merkle tree over
#: 256-bit key hashes, the deepest tree ICS-23 describes, has at most 256 levels.
MAX_PATH_LENGTH = 256


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
    #: citychain's extension: SM3 (GB/T 32905), for the state trees of ``sm2-sm3`` chains.
    #: ICS-23 has no SM3; the value is ASCII "SM3" (0x534D33), far above upstream's 0..9 so a
    #: future upstream op cannot take it. Only citychain's verifiers know it (any other ICS-23
    #: verifier refuses the proof as an unknown hash op, which is the honest answer).
    SM3 = 0x534D33


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


def smt_spec(op: HashOp) -> ProofSpec:
    """ICS-23 ``SmtSpec`` with every hash (leaf, key and value prehash, inner) set to ``op``.

    ``smt_spec(HashOp.SHA256)`` is upstream's ``SmtSpec`` byte for byte; ``smt_spec(HashOp.SM3)``
    is the same tree shape over SM3, the spec of an ``sm2-sm3`` chain's state (citychain's
    extension, see :attr:`HashOp.SM3`). A proof is checked against the spec of the chain it
    claims to come from, and :func:`check_against_spec` refuses any op that differs from the
    spec's: an SM3 proof never passes for a SHA-256 chain, nor the reverse.
    """
    return ProofSpec(
        leaf_spec=LeafOp(
            hash=op,
            prehash_key=op,
            prehash_value=op,
            length=LengthOp.NO_PREFIX,
            prefix=b"\x00",
        ),
        inner_spec=InnerSpec(
            child_order=(0, 1),
            child_size=32,
            min_prefix_length=1,
            max_prefix_length=1,
            empty_child=bytes(32),
            hash=op,
        ),
        max_depth=256,
        prehash_key_before_comparison=True,
    )


#: The spec of citychain's state tree on a SHA-256 chain (``ed25519``): ICS-23 ``SmtSpec``
#: (sha256; leaf prefix 0x00 over the sha256 of key and of value; inner prefix 0x01; 32 zero
#: bytes for an empty child).
SMT_SPEC = smt_spec(HashOp.SHA256)
#: The same for an SM3 chain (``sm2-sm3``): every op :attr:`HashOp.SM3`.
SMT_SPEC_SM3 = smt_spec(HashOp.SM3)

#: ICS-23 ``IavlSpec``: Cosmos IAVL trees (sha256; leaf prefix starts 0x00 and carries the
#: node's height, size and version as zigzag varints; value pre-hashed; lengths as varints).
IAVL_SPEC = ProofSpec(
    leaf_spec=LeafOp(
        hash=HashOp.SHA256,
        prehash_key=HashOp.NO_HASH,
        prehash_value=HashOp.SHA256,
        length=LengthOp.VAR_PROTO,
        prefix=b"\x00",
    ),
    inner_spec=InnerSpec(
        child_order=(0, 1),
        child_size=33,  # a 32-byte hash with its length byte
        min_prefix_length=4,
        max_prefix_length=12,
        empty_child=b"",
        hash=HashOp.SHA256,
    ),
)

#: ICS-23 ``TendermintSpec``: Tendermint/CometBFT ``crypto/merkle`` simple trees (RFC 6962 style:
#: leaf prefix 0x00, inner prefix 0x01), with leaves that are length-prefixed key/value pairs.
TENDERMINT_SPEC = ProofSpec(
    leaf_spec=LeafOp(
        hash=HashOp.SHA256,
        prehash_key=HashOp.NO_HASH,
        prehash_value=HashOp.SHA256,
        length=LengthOp.VAR_PROTO,
        prefix=b"\x00",
    ),
    inner_spec=InnerSpec(
        child_order=(0, 1),
        child_size=32,
        min_prefix_length=1,
        max_prefix_length=1,
        empty_child=b"",
        hash=HashOp.SHA256,
    ),
)


# --------------------------------------------------------------------------------------------
# Errors with context
# --------------------------------------------------------------------------------------------


@contextmanager
def _context(where: str) -> Iterator[None]:
    """Prefix the message of a :class:`ProofError` raised inside with ``where``."""
    try:
        yield
    except ProofError as e:
        raise ProofError(f"{where}: {e.message}", e.code) from None


def _fail(message: str) -> ProofError:
    return ProofError(message, ErrorCode.BAD_PROOF)


def _name(op: int) -> str:
    """The enum name of a hash or length op value, for messages."""
    return op.name if isinstance(op, IntEnum) else str(op)


def _hex(data: bytes, limit: int = 32) -> str:
    """Hex of ``data`` for a message, shortened to ``limit`` bytes."""
    if len(data) <= limit:
        return data.hex() or "(empty)"
    return f"{data[:limit].hex()}... ({len(data)} bytes)"


# --------------------------------------------------------------------------------------------
# Hash and length operations
# --------------------------------------------------------------------------------------------


def _openssl(name: str, data: bytes) -> bytes:
    try:
        h = hashlib.new(name)
    except ValueError:
        # OpenSSL 3 moved ripemd160 to the legacy provider; some builds lack it.
        raise _fail(f"unsupported hash op: {name} is not available in this Python") from None
    h.update(data)
    return h.digest()


_HASHES: dict[int, Callable[[bytes], bytes]] = {
    HashOp.SHA256: lambda d: hashlib.sha256(d).digest(),
    HashOp.SHA512: lambda d: hashlib.sha512(d).digest(),
    HashOp.RIPEMD160: lambda d: _openssl("ripemd160", d),
    HashOp.BITCOIN: lambda d: _openssl("ripemd160", hashlib.sha256(d).digest()),
    HashOp.SHA512_256: lambda d: _openssl("sha512_256", d),
    HashOp.BLAKE2B_512: lambda d: hashlib.blake2b(d).digest(),
    HashOp.BLAKE2S_256: lambda d: hashlib.blake2s(d).digest(),
    HashOp.SM3: lambda d: _openssl("sm3", d),
}

#: The hash op of each chain hash by name (:attr:`citychain.crypto.CryptoSuite.hash_name`).
_OPS_BY_NAME = {"sha256": HashOp.SHA256, "sm3": HashOp.SM3}


def hash_op_named(name: str) -> HashOp:
    """The ICS-23 hash op of the chain hash called ``name`` (``"sha256"``, ``"sm3"``)."""
    try:
        return _OPS_BY_NAME[name]
    except KeyError:
        raise InvalidInput(
            f"no ICS-23 hash op for the hash {name!r}", ErrorCode.BAD_ARGUMENTS
        ) from None


def do_hash(op: HashOp, data: bytes) -> bytes:
    """Hash ``data`` with ``op``. ``NO_HASH`` is an error here (it means "no hash" elsewhere)."""
    fn = _HASHES.get(op)
    if fn is None:
        if op == HashOp.NO_HASH:
            raise _fail("hash op NO_HASH cannot compute a hash")
        raise _fail(f"unsupported hash op {_name(op)}")
    return fn(data)


def _hash_or_noop(op: HashOp, data: bytes) -> bytes:
    return data if op == HashOp.NO_HASH else do_hash(op, data)


def _do_length(op: LengthOp, data: bytes) -> bytes:
    n = len(data)
    if op == LengthOp.NO_PREFIX:
        return data
    if op == LengthOp.VAR_PROTO:
        return encode_varint(n) + data
    if op == LengthOp.REQUIRE_32_BYTES:
        if n != 32:
            raise _fail(f"length op REQUIRE_32_BYTES: data is {n} bytes, not 32")
        return data
    if op == LengthOp.REQUIRE_64_BYTES:
        if n != 64:
            raise _fail(f"length op REQUIRE_64_BYTES: data is {n} bytes, not 64")
        return data
    fixed = {
        LengthOp.FIXED32_BIG: (4, "big"),
        LengthOp.FIXED32_LITTLE: (4, "little"),
        LengthOp.FIXED64_BIG: (8, "big"),
        LengthOp.FIXED64_LITTLE: (8, "little"),
    }.get(op)
    if fixed is None:
        raise _fail(f"unsupported length op {_name(op)}")
    size, order = fixed
    if n >= 1 << (8 * size):
        raise _fail(f"length op {_name(op)}: {n} bytes do not fit the length prefix")
    return n.to_bytes(size, "big" if order == "big" else "little") + data


def apply_leaf(op: LeafOp, key: bytes, value: bytes) -> bytes:
    """``hash(prefix || length(prehash_key(key)) || length(prehash_value(value)))``."""
    if not key:
        raise _fail("leaf op needs a non-empty key")
    if not value:
        raise _fail("leaf op needs a non-empty value")
    with _context("prehash key"):
        pkey = _do_length(op.length, _hash_or_noop(op.prehash_key, key))
    with _context("prehash value"):
        pvalue = _do_length(op.length, _hash_or_noop(op.prehash_value, value))
    return do_hash(op.hash, op.prefix + pkey + pvalue)


def apply_inner(op: InnerOp, child: bytes) -> bytes:
    """``hash(prefix || child || suffix)``."""
    if not child:
        raise _fail("inner op needs a non-empty child hash")
    return do_hash(op.hash, op.prefix + child + op.suffix)


def _calculate(proof: ExistenceProof, spec: ProofSpec | None) -> bytes:
    if proof.leaf is None:
        raise _fail("existence proof has no leaf op")
    with _context("leaf"):
        result = apply_leaf(proof.leaf, proof.key, proof.value)
    child_size = spec.inner_spec.child_size if spec and spec.inner_spec else 0
    for i, step in enumerate(proof.path, 1):
        with _context(f"inner op {i}"):
            result = apply_inner(step, result)
        # A hash longer than a child slot could not have been a child in this tree.
        if child_size >= 32 and len(result) > child_size:
            raise _fail(
                f"inner op {i}: output of {len(result)} bytes is longer than the spec's "
                f"child_size {child_size}"
            )
    return result


def calculate_existence_root(proof: ExistenceProof) -> bytes:
    """The root ``proof`` leads to. Compare it with a trusted root; no spec is checked here."""
    return _calculate(proof, None)


# --------------------------------------------------------------------------------------------
# Checking a proof against a spec
# --------------------------------------------------------------------------------------------


def _same_shape(a: ProofSpec, b: ProofSpec) -> bool:
    """The reference's ``SpecEquals``: compares ops and sizes, not prefixes or depths."""
    if (a.leaf_spec is None) != (b.leaf_spec is None):
        return False
    if a.leaf_spec is not None and b.leaf_spec is not None:
        la, lb = a.leaf_spec, b.leaf_spec
        if (la.hash, la.prehash_key, la.prehash_value, la.length) != (
            lb.hash,
            lb.prehash_key,
            lb.prehash_value,
            lb.length,
        ):
            return False
    if (a.inner_spec is None) != (b.inner_spec is None):
        return False
    if a.inner_spec is not None and b.inner_spec is not None:
        ia, ib = a.inner_spec, b.inner_spec
        return (
            ia.hash == ib.hash
            and ia.min_prefix_length == ib.min_prefix_length
            and ia.max_prefix_length == ib.max_prefix_length
            and ia.child_size == ib.child_size
            and len(ia.child_order) == len(ib.child_order)
        )
    return True


def _read_zigzag(data: bytes, pos: int, what: str) -> tuple[int, int]:
    """A signed (zigzag) varint, as Go's ``binary.ReadVarint`` reads it."""
    raw = 0
    for i in range(10):
        if pos >= len(data):
            reason = "prefix ends" if i == 0 else "varint is truncated"
            raise _fail(f"cannot read IAVL {what} varint: {reason}")
        byte = data[pos]
        pos += 1
        if i == 9 and byte > 1:
            break
        raw |= (byte & 0x7F) << (7 * i)
        if byte < 0x80:
            return (raw >> 1) ^ -(raw & 1), pos
    raise _fail(f"cannot read IAVL {what} varint: overflows 64 bits")


def _check_iavl_prefix(prefix: bytes, hash_op: HashOp, layer: int) -> None:
    """IAVL node prefixes: height, size, version as zigzag varints, then a length byte."""
    height, pos = _read_zigzag(prefix, 0, "height")
    if height < 0 or height < layer:
        raise _fail(
            f"IAVL height {height} must be non-negative and at least the layer number {layer}"
        )
    size, pos = _read_zigzag(prefix, pos, "size")
    if size < 0:
        raise _fail(f"IAVL size {size} must be non-negative")
    version, pos = _read_zigzag(prefix, pos, "version")
    if version < 0:
        raise _fail(f"IAVL version {version} must be non-negative")
    rest = len(prefix) - pos
    if layer == 0:
        if rest != 0:
            raise _fail(f"IAVL leaf prefix has {rest} bytes after height, size and version")
        if height != 0:
            raise _fail(f"IAVL leaf height must be 0, got {height}")
        if size != 1:
            raise _fail(f"IAVL leaf size must be 1, got {size}")
    else:
        # A left child is followed by its length byte only (1); a right child by the length
        # byte, the 32-byte left sibling and the right child's length byte (34).
        if rest not in (1, 34):
            raise _fail(f"IAVL inner prefix must end with 1 or 34 bytes, got {rest}")
        if hash_op != HashOp.SHA256:
            raise _fail(f"IAVL inner op hash must be SHA256, got {_name(hash_op)}")


def _check_tendermint_inner(op: InnerOp) -> None:
    if not op.prefix:
        raise _fail("Tendermint inner op prefix must not be empty")
    if op.suffix and op.prefix != b"\x01":
        raise _fail(f"Tendermint inner op with a suffix must have prefix 01, got {_hex(op.prefix)}")
    if not op.prefix.startswith(b"\x01"):
        raise _fail(f"Tendermint inner op prefix must begin with 01, got {_hex(op.prefix[:1])}")


def _check_leaf_op(leaf: LeafOp, spec: ProofSpec) -> None:
    ls = spec.leaf_spec
    if ls is None:
        raise _fail("spec has no leaf_spec")
    if _same_shape(spec, IAVL_SPEC):
        _check_iavl_prefix(leaf.prefix, leaf.hash, 0)
    for field, got, want in (
        ("hash", leaf.hash, ls.hash),
        ("prehash_key", leaf.prehash_key, ls.prehash_key),
        ("prehash_value", leaf.prehash_value, ls.prehash_value),
        ("length", leaf.length, ls.length),
    ):
        if got != want:
            raise _fail(f"{field} op {_name(got)} does not match spec ({_name(want)})")
    if not leaf.prefix.startswith(ls.prefix):
        raise _fail(
            f"leaf prefix does not match spec: {_hex(leaf.prefix)} does not start with "
            f"{_hex(ls.prefix)}"
        )


def _check_inner_spec(inner: InnerSpec) -> None:
    if inner.child_size <= 0:
        raise _fail(f"invalid spec: child_size must be >= 1, got {inner.child_size}")
    if inner.min_prefix_length < 0 or inner.max_prefix_length < 0:
        raise _fail("invalid spec: prefix lengths must be non-negative")
    if inner.max_prefix_length >= inner.min_prefix_length + inner.child_size:
        raise _fail("invalid spec: max_prefix_length must be < min_prefix_length + child_size")
    n = len(inner.child_order)
    if n < 2 or n > MAX_PATH_LENGTH or sorted(inner.child_order) != list(range(n)):
        raise _fail(
            f"invalid spec: child_order must be a permutation of 0..n-1 with n >= 2, "
            f"got {list(inner.child_order)}"
        )


def _check_inner_op(op: InnerOp, spec: ProofSpec, layer: int) -> None:
    inner, leaf = spec.inner_spec, spec.leaf_spec
    if inner is None:
        raise _fail("spec has no inner_spec")
    if leaf is None:
        raise _fail("spec has no leaf_spec")
    _check_inner_spec(inner)
    if op.hash != inner.hash:
        raise _fail(f"hash op {_name(op.hash)} does not match spec ({_name(inner.hash)})")
    if _same_shape(spec, IAVL_SPEC):
        _check_iavl_prefix(op.prefix, op.hash, layer)
    if _same_shape(spec, TENDERMINT_SPEC):
        _check_tendermint_inner(op)
    if op.prefix.startswith(leaf.prefix):
        raise _fail(
            f"inner op prefix {_hex(op.prefix)} starts with the leaf prefix {_hex(leaf.prefix)}, "
            "so it could be a leaf"
        )
    if len(op.prefix) < inner.min_prefix_length:
        raise _fail(
            f"inner op prefix too short: {len(op.prefix)} bytes, spec minimum "
            f"{inner.min_prefix_length}"
        )
    max_left_children = (len(inner.child_order) - 1) * inner.child_size
    if len(op.prefix) > inner.max_prefix_length + max_left_children:
        raise _fail(
            f"inner op prefix too long: {len(op.prefix)} bytes, spec maximum "
            f"{inner.max_prefix_length + max_left_children}"
        )
    if len(op.suffix) % inner.child_size:
        raise _fail(
            f"inner op suffix of {len(op.suffix)} bytes is not a whole number of "
            f"{inner.child_size}-byte children"
        )


def check_against_spec(proof: ExistenceProof, spec: ProofSpec) -> None:
    """Raise :class:`ProofError` unless ``proof`` has the leaf, steps and depth ``spec`` allows."""
    if proof.leaf is None:
        raise _fail("existence proof has no leaf op")
    with _context("leaf"):
        _check_leaf_op(proof.leaf, spec)
    depth = len(proof.path)
    if spec.min_depth > 0 and depth < spec.min_depth:
        raise _fail(f"path too short: {depth} inner ops, spec min_depth is {spec.min_depth}")
    max_depth = spec.max_depth or DEFAULT_MAX_DEPTH
    if depth > max_depth:
        raise _fail(f"path too long: {depth} inner ops, spec max_depth is {max_depth}")
    for layer, step in enumerate(proof.path, 1):
        with _context(f"inner op {layer}"):
            _check_inner_op(step, spec, layer)


# --------------------------------------------------------------------------------------------
# Neighbours (non-existence)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Padding:
    min_prefix: int
    max_prefix: int
    suffix: int


def _position(order: Sequence[int], branch: int) -> int:
    """Where child ``branch`` (in key order) sits in the hash preimage."""
    for i, item in enumerate(order):
        if item == branch:
            return i
    raise _fail(f"branch {branch} not found in child_order {list(order)}")


def _padding(spec: InnerSpec, branch: int) -> _Padding:
    idx = _position(spec.child_order, branch)
    prefix = idx * spec.child_size
    return _Padding(
        min_prefix=prefix + spec.min_prefix_length,
        max_prefix=prefix + spec.max_prefix_length,
        suffix=(len(spec.child_order) - 1 - idx) * spec.child_size,
    )


def _has_padding(op: InnerOp, pad: _Padding) -> bool:
    return pad.min_prefix <= len(op.prefix) <= pad.max_prefix and len(op.suffix) == pad.suffix


def _order_from_padding(spec: InnerSpec, op: InnerOp) -> int:
    """Which branch the child of ``op`` is, read off the prefix and suffix lengths."""
    for branch in range(len(spec.child_order)):
        if _has_padding(op, _padding(spec, branch)):
            return branch
    raise _fail(
        f"inner op (prefix {len(op.prefix)} bytes, suffix {len(op.suffix)} bytes) fits no "
        "branch of the spec"
    )


def _left_branches_are_empty(spec: InnerSpec, op: InnerOp) -> bool:
    """All siblings left of this child are ``empty_child`` placeholders."""
    idx = _order_from_padding(spec, op)
    if idx == 0 or not spec.empty_child:
        return False
    size = spec.child_size
    start = len(op.prefix) - idx * size
    if start < 0:
        return False
    for i in range(idx):
        at = start + _position(spec.child_order, i) * size
        if op.prefix[at : at + size] != spec.empty_child:
            return False
    return True


def _right_branches_are_empty(spec: InnerSpec, op: InnerOp) -> bool:
    """All siblings right of this child are ``empty_child`` placeholders."""
    idx = _order_from_padding(spec, op)
    right = len(spec.child_order) - 1 - idx
    if right == 0 or not spec.empty_child:
        return False
    size = spec.child_size
    if len(op.suffix) != right * size:
        return False
    for i in range(right):
        at = _position(spec.child_order, i) * size
        if op.suffix[at : at + size] != spec.empty_child:
            return False
    return True


def _is_left_most(spec: InnerSpec, path: Sequence[InnerOp]) -> bool:
    pad = _padding(spec, 0)
    return all(_has_padding(s, pad) or _left_branches_are_empty(spec, s) for s in path)


def _is_right_most(spec: InnerSpec, path: Sequence[InnerOp]) -> bool:
    pad = _padding(spec, len(spec.child_order) - 1)
    return all(_has_padding(s, pad) or _right_branches_are_empty(spec, s) for s in path)


def _is_left_neighbor(spec: InnerSpec, left: Sequence[InnerOp], right: Sequence[InnerOp]) -> bool:
    """``right`` is the path of the leaf just after the leaf of ``left`` (paths leaf-upwards)."""
    lrest, rrest = list(left), list(right)
    if not lrest or not rrest:
        return False
    top_l, top_r = lrest.pop(), rrest.pop()
    # Strip the common top of both paths: the same steps from the same subtree up to the root.
    while top_l.prefix == top_r.prefix and top_l.suffix == top_r.suffix:
        if not lrest or not rrest:
            return False  # one path contains the other: not two different leaves
        top_l, top_r = lrest.pop(), rrest.pop()
    # The first divergent step must put left exactly one branch left of right ...
    if _order_from_padding(spec, top_l) + 1 != _order_from_padding(spec, top_r):
        return False
    # ... and below it, left must always go right-most and right left-most.
    return _is_right_most(spec, lrest) and _is_left_most(spec, rrest)


# --------------------------------------------------------------------------------------------
# Verification
# --------------------------------------------------------------------------------------------


def _verify_existence(
    proof: ExistenceProof, spec: ProofSpec, root: bytes, key: bytes, value: bytes
) -> None:
    check_against_spec(proof, spec)
    if key != proof.key:
        raise _fail(f"key mismatch: the proof is for key {_hex(proof.key)}, not {_hex(key)}")
    if value != proof.value:
        raise _fail("value mismatch: the proof commits to a different value for this key")
    calculated = _calculate(proof, spec)
    if calculated != root:
        raise _fail(f"root mismatch: the proof leads to {_hex(calculated)}, expected {_hex(root)}")


def _key_for_comparison(spec: ProofSpec, key: bytes) -> bytes:
    if not spec.prehash_key_before_comparison:
        return key
    if spec.leaf_spec is None:
        raise _fail("spec has no leaf_spec")
    return _hash_or_noop(spec.leaf_spec.prehash_key, key)


def _kind(proof: CommitmentProof) -> str:
    if proof.exist is not None and proof.nonexist is not None:
        raise _fail("commitment proof sets both exist and nonexist")
    if proof.exist is not None:
        return "an existence proof"
    if proof.nonexist is not None:
        return "a non-existence proof"
    raise _fail("commitment proof is empty")


def verify_membership(
    spec: ProofSpec, root: bytes, proof: CommitmentProof, key: bytes, value: bytes
) -> None:
    """Raise :class:`ProofError` unless ``proof`` shows ``key = value`` under ``root``."""
    kind = _kind(proof)
    if proof.exist is None:
        raise _fail(f"membership needs an existence proof, got {kind}")
    _verify_existence(proof.exist, spec, root, key, value)


def verify_non_membership(spec: ProofSpec, root: bytes, proof: CommitmentProof, key: bytes) -> None:
    """Raise :class:`ProofError` unless ``proof`` shows ``key`` is absent under ``root``.

    The proof's own ``key`` field is ignored, as in the reference: the neighbours prove a range.
    """
    kind = _kind(proof)
    nonexist = proof.nonexist
    if nonexist is None:
        raise _fail(f"non-membership needs a non-existence proof, got {kind}")
    left, right = nonexist.left, nonexist.right
    if left is not None:
        with _context("left neighbour"):
            _verify_existence(left, spec, root, left.key, left.value)
    if right is not None:
        with _context("right neighbour"):
            _verify_existence(right, spec, root, right.key, right.value)
    if left is None and right is None:
        raise _fail("non-existence proof has neither a left nor a right neighbour")
    ckey = _key_for_comparison(spec, key)
    if right is not None and not ckey < _key_for_comparison(spec, right.key):
        raise _fail("key is not left of the right neighbour")
    if left is not None and not ckey > _key_for_comparison(spec, left.key):
        raise _fail("key is not right of the left neighbour")
    inner = spec.inner_spec
    if inner is None:
        raise _fail("spec has no inner_spec")
    if left is None:
        assert right is not None
        if not _is_left_most(inner, right.path):
            raise _fail("left neighbour missing, and the right neighbour is not the left-most leaf")
    elif right is None:
        if not _is_right_most(inner, left.path):
            raise _fail(
                "right neighbour missing, and the left neighbour is not the right-most leaf"
            )
    elif not _is_left_neighbor(inner, left.path, right.path):
        raise _fail("left and right neighbours are not adjacent leaves")


def is_valid_membership(
    spec: ProofSpec, root: bytes, proof: CommitmentProof, key: bytes, value: bytes
) -> bool:
    """:func:`verify_membership` as a bool."""
    try:
        verify_membership(spec, root, proof, key, value)
    except ProofError:
        return False
    return True


def is_valid_non_membership(
    spec: ProofSpec, root: bytes, proof: CommitmentProof, key: bytes
) -> bool:
    """:func:`verify_non_membership` as a bool."""
    try:
        verify_non_membership(spec, root, proof, key)
    except ProofError:
        return False
    return True


# --------------------------------------------------------------------------------------------
# Protobuf codec (cosmos.ics23.v1), on the wire primitives of _protobuf
# --------------------------------------------------------------------------------------------

_E = TypeVar("_E", bound=IntEnum)
_T = TypeVar("_T")


def _decode_enum(cls: type[_E], field: Field, name: str) -> _E:
    raw = field.as_uint64(name)
    try:
        return cls(raw)
    except ValueError:
        raise DecodeError(
            f"{name}: unknown {cls.__name__} value {raw}", ErrorCode.MALFORMED
        ) from None


def _once(seen: set[int], field: Field, name: str) -> None:
    if field.number in seen:
        raise DecodeError(f"{name} appears more than once", ErrorCode.MALFORMED)
    seen.add(field.number)


def _nested(where: str, decode: Callable[[bytes], _T], data: bytes) -> _T:
    try:
        return decode(data)
    except DecodeError as e:
        raise DecodeError(f"{where}: {e.message}", e.code) from None


def _decode_leaf(data: bytes) -> LeafOp:
    hashes = [HashOp.NO_HASH, HashOp.NO_HASH, HashOp.NO_HASH]  # hash, prehash_key, prehash_value
    length = LengthOp.NO_PREFIX
    prefix = b""
    seen: set[int] = set()
    for f in iter_fields(data):
        if f.number in (1, 2, 3):
            name = ("hash", "prehash_key", "prehash_value")[f.number - 1]
            _once(seen, f, name)
            hashes[f.number - 1] = _decode_enum(HashOp, f, name)
        elif f.number == 4:
            _once(seen, f, "length")
            length = _decode_enum(LengthOp, f, "length")
        elif f.number == 5:
            _once(seen, f, "prefix")
            prefix = f.as_bytes("prefix")
    return LeafOp(
        hash=hashes[0],
        prehash_key=hashes[1],
        prehash_value=hashes[2],
        length=length,
        prefix=prefix,
    )


def _decode_inner(data: bytes) -> InnerOp:
    hash_op = HashOp.NO_HASH
    prefix = suffix = b""
    seen: set[int] = set()
    for f in iter_fields(data):
        if f.number == 1:
            _once(seen, f, "hash")
            hash_op = _decode_enum(HashOp, f, "hash")
        elif f.number == 2:
            _once(seen, f, "prefix")
            prefix = f.as_bytes("prefix")
        elif f.number == 3:
            _once(seen, f, "suffix")
            suffix = f.as_bytes("suffix")
    return InnerOp(hash=hash_op, prefix=prefix, suffix=suffix)


def _decode_existence(data: bytes) -> ExistenceProof:
    key = value = b""
    leaf: LeafOp | None = None
    path: list[InnerOp] = []
    seen: set[int] = set()
    for f in iter_fields(data):
        if f.number == 1:
            _once(seen, f, "key")
            key = f.as_bytes("key")
        elif f.number == 2:
            _once(seen, f, "value")
            value = f.as_bytes("value")
        elif f.number == 3:
            _once(seen, f, "leaf")
            leaf = _nested("leaf", _decode_leaf, f.as_bytes("leaf"))
        elif f.number == 4:
            if len(path) >= MAX_PATH_LENGTH:
                raise DecodeError(
                    f"path has more than {MAX_PATH_LENGTH} inner ops", ErrorCode.TOO_LARGE
                )
            where = f"path[{len(path)}]"
            path.append(_nested(where, _decode_inner, f.as_bytes(where)))
    return ExistenceProof(key=key, value=value, leaf=leaf, path=tuple(path))


def _decode_nonexistence(data: bytes) -> NonExistenceProof:
    key = b""
    left: ExistenceProof | None = None
    right: ExistenceProof | None = None
    seen: set[int] = set()
    for f in iter_fields(data):
        if f.number == 1:
            _once(seen, f, "key")
            key = f.as_bytes("key")
        elif f.number == 2:
            _once(seen, f, "left")
            left = _nested("left", _decode_existence, f.as_bytes("left"))
        elif f.number == 3:
            _once(seen, f, "right")
            right = _nested("right", _decode_existence, f.as_bytes("right"))
    return NonExistenceProof(key=key, left=left, right=right)


_PROOF_KINDS = {1: "exist", 2: "nonexist", 3: "batch", 4: "compressed"}


def decode_commitment_proof(data: bytes) -> CommitmentProof:
    """Decode protobuf ``cosmos.ics23.v1.CommitmentProof`` bytes.

    Raises :class:`DecodeError` for malformed bytes (naming the field), and
    :class:`ProofError` for batch or compressed proofs, which are not supported.
    """
    data = bytes(data)
    try:
        kinds = [f for f in iter_fields(data) if f.number in _PROOF_KINDS]
        if not kinds:
            raise DecodeError("no exist or nonexist proof in it", ErrorCode.MALFORMED)
        if len(kinds) > 1:
            names = ", ".join(_PROOF_KINDS[f.number] for f in kinds)
            raise DecodeError(f"more than one proof is set ({names})", ErrorCode.MALFORMED)
        (f,) = kinds
        name = _PROOF_KINDS[f.number]
        body = f.as_bytes(name)
        if f.number == 1:
            return CommitmentProof(exist=_nested(name, _decode_existence, body))
        if f.number == 2:
            return CommitmentProof(nonexist=_nested(name, _decode_nonexistence, body))
    except DecodeError as e:
        raise DecodeError(f"invalid ICS-23 commitment proof: {e.message}", e.code) from None
    raise ProofError(
        f"ICS-23 {name} proofs are not supported; send a single exist or nonexist proof",
        ErrorCode.BAD_PROOF,
    )


def _decode_inner_spec(data: bytes) -> InnerSpec:
    order: list[int] = []
    sizes = [0, 0, 0]  # child_size, min_prefix_length, max_prefix_length
    empty_child = b""
    hash_op = HashOp.NO_HASH
    seen: set[int] = set()
    for f in iter_fields(data):
        if f.number == 1:
            order.extend(f.as_packed_int32("child_order", MAX_PATH_LENGTH))
            if len(order) > MAX_PATH_LENGTH:
                raise DecodeError(
                    f"child_order has more than {MAX_PATH_LENGTH} elements", ErrorCode.TOO_LARGE
                )
        elif f.number in (2, 3, 4):
            name = ("child_size", "min_prefix_length", "max_prefix_length")[f.number - 2]
            _once(seen, f, name)
            sizes[f.number - 2] = f.as_int32(name)
        elif f.number == 5:
            _once(seen, f, "empty_child")
            empty_child = f.as_bytes("empty_child")
        elif f.number == 6:
            _once(seen, f, "hash")
            hash_op = _decode_enum(HashOp, f, "hash")
    return InnerSpec(
        child_order=tuple(order),
        child_size=sizes[0],
        min_prefix_length=sizes[1],
        max_prefix_length=sizes[2],
        empty_child=empty_child,
        hash=hash_op,
    )


def decode_proof_spec(data: bytes) -> ProofSpec:
    """Decode protobuf ``cosmos.ics23.v1.ProofSpec`` bytes (as carried in IBC client states)."""
    data = bytes(data)
    leaf_spec: LeafOp | None = None
    inner_spec: InnerSpec | None = None
    depths = [0, 0]  # max_depth, min_depth
    prehash = False
    seen: set[int] = set()
    try:
        for f in iter_fields(data):
            if f.number == 1:
                _once(seen, f, "leaf_spec")
                leaf_spec = _nested("leaf_spec", _decode_leaf, f.as_bytes("leaf_spec"))
            elif f.number == 2:
                _once(seen, f, "inner_spec")
                inner_spec = _nested("inner_spec", _decode_inner_spec, f.as_bytes("inner_spec"))
            elif f.number in (3, 4):
                name = ("max_depth", "min_depth")[f.number - 3]
                _once(seen, f, name)
                depths[f.number - 3] = f.as_int32(name)
            elif f.number == 5:
                _once(seen, f, "prehash_key_before_comparison")
                prehash = f.as_bool("prehash_key_before_comparison")
    except DecodeError as e:
        raise DecodeError(f"invalid ICS-23 proof spec: {e.message}", e.code) from None
    return ProofSpec(
        leaf_spec=leaf_spec,
        inner_spec=inner_spec,
        max_depth=depths[0],
        min_depth=depths[1],
        prehash_key_before_comparison=prehash,
    )


def _enum_value(cls: type[IntEnum], value: int, name: str) -> int:
    try:
        return int(cls(value))
    except ValueError:
        raise InvalidInput(
            f"cannot encode {name}: unknown {cls.__name__} value {value}", ErrorCode.BAD_ARGUMENTS
        ) from None


def _encode_leaf(op: LeafOp) -> bytes:
    w = Writer()
    w.uint64_field(1, _enum_value(HashOp, op.hash, "hash"))
    w.uint64_field(2, _enum_value(HashOp, op.prehash_key, "prehash_key"))
    w.uint64_field(3, _enum_value(HashOp, op.prehash_value, "prehash_value"))
    w.uint64_field(4, _enum_value(LengthOp, op.length, "length"))
    w.bytes_field(5, op.prefix)
    return w.getvalue()


def _encode_inner(op: InnerOp) -> bytes:
    w = Writer()
    w.uint64_field(1, _enum_value(HashOp, op.hash, "hash"))
    w.bytes_field(2, op.prefix)
    w.bytes_field(3, op.suffix)
    return w.getvalue()


def _encode_existence(proof: ExistenceProof) -> bytes:
    if len(proof.path) > MAX_PATH_LENGTH:
        raise InvalidInput(
            f"cannot encode a path of {len(proof.path)} inner ops (limit {MAX_PATH_LENGTH})",
            ErrorCode.TOO_LARGE,
        )
    w = Writer()
    w.bytes_field(1, proof.key)
    w.bytes_field(2, proof.value)
    if proof.leaf is not None:
        w.message_field(3, _encode_leaf(proof.leaf))
    for step in proof.path:
        w.message_field(4, _encode_inner(step))
    return w.getvalue()


def _encode_nonexistence(proof: NonExistenceProof) -> bytes:
    w = Writer()
    w.bytes_field(1, proof.key)
    if proof.left is not None:
        w.message_field(2, _encode_existence(proof.left))
    if proof.right is not None:
        w.message_field(3, _encode_existence(proof.right))
    return w.getvalue()


def encode_commitment_proof(proof: CommitmentProof) -> bytes:
    """Protobuf bytes of ``proof``, as the Go and Rust reference implementations write them.

    Raises :class:`~citychain.errors.InvalidInput` unless exactly one of ``exist`` and
    ``nonexist`` is set, or if a value cannot be represented.
    """
    w = Writer()
    if proof.exist is not None and proof.nonexist is None:
        w.message_field(1, _encode_existence(proof.exist))
    elif proof.nonexist is not None and proof.exist is None:
        w.message_field(2, _encode_nonexistence(proof.nonexist))
    else:
        raise InvalidInput(
            "a commitment proof must set exactly one of exist and nonexist",
            ErrorCode.BAD_ARGUMENTS,
        )
    return w.getvalue()


def encode_proof_spec(spec: ProofSpec) -> bytes:
    """Protobuf bytes of ``spec``."""
    w = Writer()
    try:
        if spec.leaf_spec is not None:
            w.message_field(1, _encode_leaf(spec.leaf_spec))
        if spec.inner_spec is not None:
            inner = spec.inner_spec
            iw = Writer()
            iw.packed_int32_field(1, inner.child_order)
            iw.int32_field(2, inner.child_size)
            iw.int32_field(3, inner.min_prefix_length)
            iw.int32_field(4, inner.max_prefix_length)
            iw.bytes_field(5, inner.empty_child)
            iw.uint64_field(6, _enum_value(HashOp, inner.hash, "hash"))
            w.message_field(2, iw.getvalue())
        w.int32_field(3, spec.max_depth)
        w.int32_field(4, spec.min_depth)
        w.bool_field(5, spec.prehash_key_before_comparison)
    except ValueError as e:
        raise InvalidInput(f"cannot encode proof spec: {e}", ErrorCode.BAD_ARGUMENTS) from None
    return w.getvalue()
