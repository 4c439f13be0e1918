"""The off-chain blob store: encrypted, content-addressed chunks for the data directory.

Theory of operation
-------------------
The chain records what a dataset version *is* (its manifest id, the hashes of its plaintext
and ciphertext, its sizes); the bytes live here, off chain. A blob is kept under the hash of
its bytes (SHA-256, or SM3 on a GM chain), so whoever reads it checks it, and the same bytes
are stored once. Blobs are only ciphertext chunks and manifests, sealed by
:mod:`citychain.crypto.envelope` (usually on the client, before upload): a store never holds a
key or a byte of plaintext.

* :class:`BlobStore` is the interface; :class:`LocalStore` (``blobs.local``: a directory, the
  default) and ``blobs.s3.S3Store`` (any S3-compatible server, boto3 loaded only when used)
  implement it, and :func:`open_store` builds one from the node's ``[blobs]`` settings.
* :func:`upload` / :func:`download` stream a version in and out in bounded memory; the
  manifest is written last, so a manifest present means its chunks are
  (:func:`put_manifest` enforces the same for a manifest uploaded by a client).
* :func:`collect_garbage` removes what no referenced manifest names, after a grace period.

Every failure is a :mod:`citychain.errors` code: ``chunk_missing`` (404),
``chunk_id_mismatch`` (400), ``chunk_corrupt`` (500), ``store_full`` and ``backend_down``
(503), and the envelope's ``chunk_tampered``, ``hash_mismatch``, ``key_unwrap_failed``.
"""

from citychain.blobs._store import BlobStore, ChunkInfo, StoreUsage
from citychain.blobs.config import BACKENDS, config_problem, open_store
from citychain.blobs.gc import GcReport, collect_garbage
from citychain.blobs.local import LocalStore
from citychain.blobs.stream import (
    download,
    missing_chunks,
    put_manifest,
    read_manifest,
    upload,
)

__all__ = [
    "BACKENDS",
    "BlobStore",
    "ChunkInfo",
    "GcReport",
    "LocalStore",
    "StoreUsage",
    "collect_garbage",
    "config_problem",
    "download",
    "missing_chunks",
    "open_store",
    "put_manifest",
    "read_manifest",
    "upload",
]
