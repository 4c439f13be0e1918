"""The blob store as the data routes use it: which store, chunks in and out, and the gate
that keeps a version out of the catalogue until every chunk of it is stored.

Blob stores are blocking (a disk, boto3): every call here runs in a worker thread, so a slow
backend holds no event-loop time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, cast

from fastapi import Depends
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from citychain.blobs import BlobStore, missing_chunks, put_manifest, read_manifest
from citychain.blobs.stream import absent
from citychain.crypto.envelope import Manifest
from citychain.errors import ErrorCode, InvalidInput, NotFound, Unavailable
from citychain.types import Transaction

#: Most chunk ids one ``POST /v1/data/blobs/missing`` asks about.
MAX_ASK = 4096


async def _store(conn: HTTPConnection) -> BlobStore:
    store = getattr(conn.app.state, "blobs", None)
    if store is None:
        raise Unavailable(
            "this node serves no blob store (its API was started without one)",
            ErrorCode.UNAVAILABLE,
        )
    return cast(BlobStore, store)


StoreDep = Annotated[BlobStore, Depends(_store)]


async def put(store: BlobStore, chunk_id: bytes, data: bytes) -> bool:
    """Store a chunk (verified against its id); True when it was new."""
    return await run_in_threadpool(store.put, chunk_id, data)


async def missing(store: BlobStore, ids: list[bytes]) -> list[bytes]:
    def ask() -> list[bytes]:
        # Touched: an upload that resumes skips the chunks stored already, so their age
        # would not be renewed by a put, and GC's grace must count from now.
        return [ids[i] for i in absent(store, ids, touch=True)]

    return await run_in_threadpool(ask)


async def manifest_in(store: BlobStore, data: bytes) -> Manifest:
    """Store a manifest, refused (``chunk_missing``) until every chunk it names is stored."""
    return await run_in_threadpool(put_manifest, store, data)


async def manifest_of(store: BlobStore, manifest_id: bytes) -> Manifest:
    return await run_in_threadpool(read_manifest, store, manifest_id)


def chunks(store: BlobStore, manifest: Manifest) -> Iterator[bytes]:
    """The ciphertext chunks in order, each checked against its id as it is read (a sync
    iterator: Starlette runs it in a worker thread, one chunk in memory at a time)."""
    for chunk_id in manifest.chunks:
        yield store.get(chunk_id)


#: What to do about a version whose chunks this node lacks, said to a downloader.
ELSEWHERE = (
    "blobs are not copied between nodes: download from the node the version was uploaded "
    "to, or give the nodes one shared S3 store ([blobs] in node.toml)"
)


async def complete(
    store: BlobStore, manifest_id: bytes, then: str, *, chunks: bool = True
) -> Manifest:
    """The manifest ``manifest_id`` once the store holds it and (``chunks``) every chunk it
    names, else ``chunk_missing`` saying which is absent and ``then`` (what to do about it)."""
    try:
        manifest = await manifest_of(store, manifest_id)
    except NotFound:
        raise NotFound(
            f"manifest {manifest_id.hex()} is not in this node's blob store: {then}",
            ErrorCode.CHUNK_MISSING,
        ) from None
    absent = await run_in_threadpool(missing_chunks, store, manifest) if chunks else []
    if absent:
        raise NotFound(
            f"{len(absent)} of manifest {manifest_id.hex()}'s {len(manifest.chunks)} chunks "
            f"are not stored (the first is chunk {absent[0]}): {then}",
            ErrorCode.CHUNK_MISSING,
        )
    return manifest


async def version_gate(app: Any, tx: Transaction) -> None:
    """The admission gate of ``data.add_version`` (:mod:`citychain.api._gates`): the manifest
    it names is stored, every chunk of it is stored, and the hashes and sizes it declares are
    the manifest's. So a version appears in the catalogue only when it can be downloaded."""
    store = getattr(app.state, "blobs", None)
    if store is None:
        raise Unavailable(
            "this node has no blob store, so it cannot take a data version: submit it to a "
            "node that stores the version's chunks",
            ErrorCode.UNAVAILABLE,
        )
    args = tx.args
    manifest_id = args.get("manifest_id")
    if type(manifest_id) is not bytes:
        return  # malformed: the contract's own check refuses it with its code
    manifest = await complete(
        store,
        manifest_id,
        "upload the version's chunks and manifest first (PUT /v1/data/blobs/..., "
        "/v1/data/manifests/...); the version is not complete",
    )
    declared = {
        "plain_hash": manifest.plain_hash,
        "cipher_hash": manifest.cipher_hash,
        "plain_size": manifest.plain_size,
        "cipher_size": manifest.cipher_size,
        "cipher": manifest.cipher,
    }
    for name, value in declared.items():
        if args.get(name) != value:
            raise InvalidInput(
                f"add_version's {name} is not what manifest {manifest_id.hex()} records",
                ErrorCode.HASH_MISMATCH,
            )
