"""The blob store interface: what every backend does, and the checks they share."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from citychain.crypto.sm2 import sm3_new
from citychain.errors import CitychainError, ErrorCode, InternalError, InvalidInput

#: The hashes chunk ids are made with: the chain suite's (``CryptoSuite.hash_name``).
HASHES: dict[str, Callable[[bytes], bytes]] = {
    "sha256": lambda data: hashlib.sha256(data).digest(),
    "sm3": lambda data: sm3_new(data).digest(),
}
ID_SIZE = 32


@dataclass(frozen=True, slots=True)
class ChunkInfo:
    """One stored blob (chunk or manifest) as a listing shows it."""

    chunk_id: bytes
    size: int
    #: When it was last written or re-put, in seconds since the epoch (for the GC's grace).
    modified: float


@dataclass(frozen=True, slots=True)
class StoreUsage:
    """What a store holds: blobs, their bytes, and its capacity (None: no limit of its own)."""

    chunks: int
    bytes: int
    capacity: int | None


@runtime_checkable
class BlobStore(Protocol):
    """A content-addressed store of ciphertext: a blob is kept under the hash of its bytes.

    Every backend verifies on the way in and on the way out, so a blob is never served under
    an id it does not hash to. Errors: ``chunk_id_mismatch`` (put: the bytes do not hash to
    the id), ``chunk_missing`` (get: not stored), ``chunk_corrupt`` (get: stored bytes altered
    by the disk or backend), ``store_full``, ``backend_down``; a malformed id is
    ``bad_arguments``.
    """

    #: The hash chunk ids are made with: ``"sha256"`` or ``"sm3"``.
    hash_name: str
    #: Whether every call is a network round trip (S3): asked about many chunks, callers
    #: then ask several at once (:func:`citychain.blobs.stream.absent`).
    remote: bool

    def put(self, chunk_id: bytes, data: bytes) -> bool:
        """Store ``data`` under ``chunk_id`` (its hash); True if it was new. Putting a blob
        already there changes nothing but its age (so a GC's grace protects it again).
        The bytes are durable when it returns; that the blob is *listed* under its id may
        wait for :meth:`sync` (a local directory entry), so call it before relying on a
        set of puts (a manifest is stored only after its chunks are synced)."""
        ...

    def sync(self) -> None:
        """Make every put so far durable under its id (a no-op where puts already are)."""
        ...

    def get(self, chunk_id: bytes) -> bytes:
        """The blob's bytes, checked against its id."""
        ...

    def has(self, chunk_id: bytes) -> bool:
        """Whether the blob is stored (not read, not verified)."""
        ...

    def touch(self, chunk_id: bytes) -> bool:
        """:meth:`has`, also renewing the blob's age (GC's grace): a local disk always (a
        utime), S3 once the blob is older than its ``renew_after`` (a server-side copy)."""
        ...

    def delete(self, chunk_id: bytes) -> bool:
        """Remove the blob; True if it was there."""
        ...

    def ids(self) -> Iterator[ChunkInfo]:
        """Every stored blob, in no particular order."""
        ...

    def usage(self) -> StoreUsage:
        """How many blobs and bytes are stored, and the capacity."""
        ...


def check_hash_name(hash_name: str) -> Callable[[bytes], bytes]:
    try:
        return HASHES[hash_name]
    except KeyError:
        raise InvalidInput(
            f"unknown chunk hash {hash_name!r} (known: {', '.join(sorted(HASHES))})",
            ErrorCode.BAD_CONFIG,
        ) from None


def check_id(chunk_id: bytes) -> None:
    if not isinstance(chunk_id, bytes) or len(chunk_id) != ID_SIZE:
        raise InvalidInput(f"a chunk id is {ID_SIZE} bytes", ErrorCode.BAD_ARGUMENTS)


def check_put(
    hash_: Callable[[bytes], bytes], hash_name: str, chunk_id: bytes, data: bytes
) -> None:
    """Refuse (``chunk_id_mismatch``) bytes that do not hash to the id they are offered under."""
    check_id(chunk_id)
    if not isinstance(data, bytes | bytearray | memoryview):
        raise InvalidInput("a chunk's data is bytes", ErrorCode.BAD_ARGUMENTS)
    if hash_(bytes(data)) != chunk_id:
        raise InvalidInput(
            f"the {len(data)} bytes offered as chunk {chunk_id.hex()} do not hash ({hash_name}) "
            "to that id",
            ErrorCode.CHUNK_ID_MISMATCH,
        )


def corrupt(chunk_id: bytes, where: str) -> CitychainError:
    return InternalError(
        f"the stored chunk {chunk_id.hex()} ({where}) no longer hashes to its id: the disk or "
        "the storage backend altered it; upload it again or restore it from a replica",
        ErrorCode.CHUNK_CORRUPT,
    )


def parse_hex_id(text: str) -> bytes | None:
    """The id of a 64-hex-digit name, or None for any other name (lowercase only)."""
    if len(text) != 2 * ID_SIZE or text.lower() != text:
        return None
    try:
        return bytes.fromhex(text)
    except ValueError:
        return None
