"""Streaming a dataset version into and out of a blob store, sealed with
:mod:`citychain.crypto.envelope`.

Theory of operation: the manifest is written last. Chunks go in first, in order; only when
every one is stored is the manifest put, so a manifest present in a store means all of its
chunks are (:func:`put_manifest` holds an uploaded manifest to the same rule). An upload cut
halfway (the reader fails, the process dies, the store fills up) leaves chunks no manifest
names, which the garbage collector removes after its grace period; re-running it stores only
the chunks still missing (the others are the same ciphertext only if the same key and context
are used again, i.e. when resuming the same sealed version).
"""

from __future__ import annotations

from typing import IO

from citychain.blobs._store import BlobStore
from citychain.crypto.envelope import (
    DEFAULT_CHUNK_SIZE,
    Cipher,
    Manifest,
    open_stream,
    seal_stream,
)
from citychain.errors import ErrorCode, InvalidInput, NotFound

__all__ = ["download", "missing_chunks", "put_manifest", "read_manifest", "upload"]


def upload(
    reader: IO[bytes],
    store: BlobStore,
    key: bytes,
    context: bytes,
    cipher: Cipher = "aes-256-gcm",
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Manifest:
    """Seal ``reader`` chunk by chunk into ``store``, then store the manifest; return it.

    Memory: a few chunks. Errors from the reader or the store propagate, leaving no manifest.
    """
    sealed = seal_stream(reader, key, context, cipher, chunk_size)
    for chunk_id, ciphertext in sealed:
        store.put(chunk_id, ciphertext)
    manifest = sealed.manifest
    store.put(manifest.id, manifest.encode())
    return manifest


def read_manifest(store: BlobStore, manifest_id: bytes) -> Manifest:
    """The manifest stored under ``manifest_id`` (``chunk_missing`` if absent)."""
    try:
        data = store.get(manifest_id)
    except NotFound as exc:
        raise NotFound(f"manifest {manifest_id.hex()} is not in the blob store", exc.code) from None
    manifest = Manifest.decode(data)
    if manifest.id != manifest_id:
        raise InvalidInput(
            f"the blob {manifest_id.hex()} is not a manifest of that id (its cipher's hash, "
            f"{manifest.cipher}, gives {manifest.id.hex()})",
            ErrorCode.HASH_MISMATCH,
        )
    return manifest


def download(
    manifest_id: bytes, store: BlobStore, key: bytes, context: bytes, writer: IO[bytes]
) -> Manifest:
    """Write the plaintext of the version ``manifest_id`` names to ``writer``; return its
    manifest. Every check of :func:`~citychain.crypto.envelope.open_stream` applies; a chunk
    missing from the store is ``chunk_missing`` naming its index and id."""
    manifest = read_manifest(store, manifest_id)
    open_stream(manifest, store.get, key, context, writer)
    return manifest


def missing_chunks(store: BlobStore, manifest: Manifest) -> list[int]:
    """The indexes of ``manifest``'s chunks that ``store`` lacks (empty: it is complete)."""
    return [i for i, chunk_id in enumerate(manifest.chunks) if not store.has(chunk_id)]


def put_manifest(store: BlobStore, data: bytes) -> Manifest:
    """Store a manifest uploaded as bytes (the client sealed the data), but only once every
    chunk it names is stored: else ``chunk_missing`` naming the first absent chunk and
    nothing is stored. A manifest that is not canonical is refused as ``malformed``."""
    manifest = Manifest.decode(data)
    missing = missing_chunks(store, manifest)
    if missing:
        first = missing[0]
        raise NotFound(
            f"{len(missing)} of the manifest's {len(manifest.chunks)} chunks are not stored, "
            f"the first is chunk {first} ({manifest.chunks[first].hex()}): upload them first",
            ErrorCode.CHUNK_MISSING,
        )
    store.put(manifest.id, data)
    return manifest
