"""Garbage collection of the blobs no referenced manifest names.

Theory of operation: the caller (the data service, from the chain's state) names every
manifest still referenced. Those manifests and all their chunks are kept; every other blob is
deleted once it is older than ``grace_seconds``, so an upload in progress (whose manifest is
not yet written, or not yet registered on chain) keeps its chunks: each put, even of a chunk
already stored, renews the chunk's age, and so do the node's answer to an upload asking which
chunks it lacks (a resumed upload skips those) and its check of a manifest's chunks
(``touch``: on a local disk always, on S3 for a chunk older than the store's
``renew_after``, 10 minutes, which a grace period must exceed). A referenced manifest that
cannot be read stops the collection before anything is deleted (``chunk_missing``,
``chunk_corrupt``, ``backend_down``): without it, its chunks cannot be told from garbage.

The window left: a chunk listed as old garbage and reused by an upload in the instant between
the listing and its deletion. Run the collection when uploads are rare, or re-upload (which
stores a missing chunk again: the node refuses the manifest until then).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from citychain.blobs._store import BlobStore
from citychain.blobs.stream import read_manifest
from citychain.errors import ErrorCode, InvalidInput

__all__ = ["GcReport", "collect_garbage"]


@dataclass(frozen=True, slots=True)
class GcReport:
    """What one collection did (``dry_run``: would do)."""

    referenced_manifests: int
    #: Blobs kept because a referenced manifest is or names them.
    kept_referenced: int
    #: Unreferenced blobs kept because they are younger than the grace period.
    kept_young: int
    deleted: int
    deleted_bytes: int


def collect_garbage(
    store: BlobStore,
    referenced_manifest_ids: Iterable[bytes],
    grace_seconds: float,
    *,
    now: float | None = None,
    dry_run: bool = False,
) -> GcReport:
    """Delete every blob of ``store`` that no referenced manifest is or names, once older
    than ``grace_seconds``; see the module's docstring."""
    if grace_seconds < 0:
        raise InvalidInput("grace_seconds must be 0 or more", ErrorCode.BAD_ARGUMENTS)
    live: set[bytes] = set()
    manifests = 0
    for manifest_id in dict.fromkeys(referenced_manifest_ids):
        manifest = read_manifest(store, manifest_id)
        manifests += 1
        live.add(manifest_id)
        live.update(manifest.chunks)
    cutoff = (time.time() if now is None else now) - grace_seconds
    kept = young = deleted = deleted_bytes = 0
    for info in store.ids():
        if info.chunk_id in live:
            kept += 1
        elif info.modified >= cutoff:
            young += 1
        elif dry_run or store.delete(info.chunk_id):
            deleted += 1
            deleted_bytes += info.size
    return GcReport(manifests, kept, young, deleted, deleted_bytes)
