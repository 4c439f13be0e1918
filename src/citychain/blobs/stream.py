"""Streaming a dataset version into and out of a blob store, sealed with
:mod:`citychain.crypto.envelope`.

Theory of operation: the manifest is written last. Chunks go in first, in order; only when
every one is stored is the manifest put, so a manifest present in a store means all of its
chunks are (:func:`put_manifest` holds an uploaded manifest to the same rule). An upload cut
halfway (the reader fails, the process dies, the store fills up) leaves chunks no manifest
names, which the garbage collector removes after its grace period; re-running it stores only
the chunks still missing (the others are the same ciphertext only if the same key and context
are used again, i.e. when resuming the same sealed version).

Both directions keep a few chunks in flight on worker threads (``in_flight``, 4 by default):
an upload seals chunk ``i + 1`` while chunk ``i`` is verified and written (or sent to S3),
a download fetches ahead of the chunk it decrypts. Hashing, AES and the disk and network
calls release the GIL, so this uses a second core and hides an object store's latency;
memory stays ``in_flight + 2`` chunks.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
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

__all__ = ["IN_FLIGHT", "download", "missing_chunks", "put_manifest", "read_manifest", "upload"]

#: Chunks kept in flight (being stored, or fetched ahead) by default.
IN_FLIGHT = 4


def _check_in_flight(in_flight: int) -> None:
    if not isinstance(in_flight, int) or not 1 <= in_flight <= 64:
        raise InvalidInput("in_flight must be 1..64", ErrorCode.BAD_ARGUMENTS)


def upload(
    reader: IO[bytes],
    store: BlobStore,
    key: bytes,
    context: bytes,
    cipher: Cipher = "aes-256-gcm",
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    *,
    in_flight: int = IN_FLIGHT,
) -> Manifest:
    """Seal ``reader`` chunk by chunk into ``store``, then store the manifest; return it.

    Memory: ``in_flight + 2`` chunks. The first error from the reader or the store propagates
    once the chunks in flight have settled, and no manifest is stored.
    """
    _check_in_flight(in_flight)
    sealed = seal_stream(reader, key, context, cipher, chunk_size)
    pending: deque[Future[bool]] = deque()
    # On an error the chunks already handed over are still stored (the pool finishes them
    # on exit), so a re-run finds them.
    with ThreadPoolExecutor(in_flight, thread_name_prefix="blob-put") as pool:
        for chunk_id, ciphertext in sealed:
            if len(pending) >= in_flight:
                pending.popleft().result()
            pending.append(pool.submit(store.put, chunk_id, ciphertext))
        while pending:
            pending.popleft().result()
    manifest = sealed.manifest
    store.sync()  # the chunks are listed durably before the manifest that names them
    store.put(manifest.id, manifest.encode())
    store.sync()
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


class _FetchAhead:
    """``fetch(chunk_id)`` for chunks asked in manifest order, fetching ``window`` ahead."""

    def __init__(
        self,
        chunks: tuple[bytes, ...],
        get: Callable[[bytes], bytes],
        pool: ThreadPoolExecutor,
        window: int,
    ) -> None:
        self._chunks, self._get, self._pool, self._window = chunks, get, pool, window
        self._next = 0  # the next index to submit
        self._pending: deque[tuple[bytes, Future[bytes]]] = deque()

    def __call__(self, chunk_id: bytes) -> bytes:
        while self._next < len(self._chunks) and len(self._pending) < self._window:
            ahead = self._chunks[self._next]
            self._pending.append((ahead, self._pool.submit(self._get, ahead)))
            self._next += 1
        if not self._pending or self._pending[0][0] != chunk_id:
            return self._get(chunk_id)  # asked out of order: not open_stream's way
        return self._pending.popleft()[1].result()

    def cancel(self) -> None:
        for _, future in self._pending:
            future.cancel()


def download(
    manifest_id: bytes,
    store: BlobStore,
    key: bytes,
    context: bytes,
    writer: IO[bytes],
    *,
    in_flight: int = IN_FLIGHT,
) -> Manifest:
    """Write the plaintext of the version ``manifest_id`` names to ``writer``; return its
    manifest. Every check of :func:`~citychain.crypto.envelope.open_stream` applies; a chunk
    missing from the store is ``chunk_missing`` naming its index and id. Memory:
    ``in_flight + 2`` chunks."""
    _check_in_flight(in_flight)
    manifest = read_manifest(store, manifest_id)
    with ThreadPoolExecutor(in_flight, thread_name_prefix="blob-get") as pool:
        fetch = _FetchAhead(manifest.chunks, store.get, pool, in_flight)
        try:
            # The store checks each chunk against its id as it reads it.
            open_stream(manifest, fetch, key, context, writer, fetch_verifies=True)
        finally:
            fetch.cancel()
    return manifest


#: ``has`` asked of a store at once: a remote store (S3) answers each in a round trip, so a
#: version of 250,000 chunks (1 TiB in 4 MiB) asked one by one would wait minutes at its gate
#: (a millisecond a round trip).
ASK_IN_FLIGHT = 8
#: Chunk ids handed to the threads at a time (bounded memory, whatever the manifest's size).
_ASK_BATCH = 1024


def absent(store: BlobStore, ids: Sequence[bytes], *, touch: bool = False) -> list[int]:
    """The indexes in ``ids`` of the chunks ``store`` lacks, asked :data:`ASK_IN_FLIGHT` at a
    time of a remote store (``store.remote``: S3); the first error of the store
    (``backend_down``...) is raised. A local disk answers each in microseconds: asked in
    turn, with no threads to start. ``touch``: asked with ``store.touch``, renewing the age
    of those it has where the store can, which an upload is about to reference (see
    :mod:`citychain.blobs.gc`)."""
    ask = store.touch if touch else store.has
    if len(ids) <= ASK_IN_FLIGHT or not store.remote:
        return [i for i, chunk_id in enumerate(ids) if not ask(chunk_id)]
    out: list[int] = []
    with ThreadPoolExecutor(ASK_IN_FLIGHT, thread_name_prefix="blob-has") as pool:
        for start in range(0, len(ids), _ASK_BATCH):
            batch = ids[start : start + _ASK_BATCH]
            have = pool.map(ask, batch)
            out.extend(start + i for i, found in enumerate(have) if not found)
    return out


def missing_chunks(store: BlobStore, manifest: Manifest, *, touch: bool = False) -> list[int]:
    """The indexes of ``manifest``'s chunks that ``store`` lacks (empty: it is complete);
    ``touch`` as for :func:`absent`."""
    return absent(store, manifest.chunks, touch=touch)


def put_manifest(store: BlobStore, data: bytes) -> Manifest:
    """Store a manifest uploaded as bytes (the client sealed the data), but only once every
    chunk it names is stored: else ``chunk_missing`` naming the first absent chunk and
    nothing is stored. A manifest that is not canonical is refused as ``malformed``."""
    manifest = Manifest.decode(data)
    # Touched: the chunks of an upload resumed after GC's grace are old, and about to be
    # referenced by this manifest and then by the chain.
    missing = missing_chunks(store, manifest, touch=True)
    if missing:
        first = missing[0]
        raise NotFound(
            f"{len(missing)} of the manifest's {len(manifest.chunks)} chunks are not stored, "
            f"the first is chunk {first} ({manifest.chunks[first].hex()}): upload them first",
            ErrorCode.CHUNK_MISSING,
        )
    store.sync()  # the chunks are listed durably before the manifest that names them
    store.put(manifest.id, data)
    store.sync()
    return manifest
