"""The S3-compatible blob store: how a city's data outgrows one machine.

Any server that speaks the S3 API (AWS S3, MinIO, Ceph RGW, SeaweedFS, cloud vendors' object
stores) holds the blobs under ``<prefix><64 hex id>`` in one bucket; the node holds nothing
but its configuration. Through boto3 (the reference S3 client; pinned in pyproject).

Theory of operation
-------------------
A dead backend must fail in seconds, not hang a request: connections time out after
``connect_timeout`` (2 s), reads after ``read_timeout`` (10 s), and a failed call is retried
once. Unreachable, timing out, 5xx answers, a missing bucket or refused credentials are
``backend_down`` (the API answers 503 and the operator reads which); an absent object is
``chunk_missing``; a backend out of space or quota (``507``, ``QuotaExceeded``, MinIO's
``XMinioStorageFull``) is ``store_full``. S3 writes a whole object or none, so an upload cut
halfway leaves no half chunk. Blobs are verified on read like the local store's.

Putting a blob that is already there copies it onto itself (a server-side copy, no data sent)
to refresh its age, so a garbage collection's grace protects a chunk that a running upload
reuses. :meth:`S3Store.touch` (a resumed upload's "which chunks do you lack", a manifest's
check) does the same for a blob older than ``renew_after`` (10 minutes), so the chunks a
resumed upload skips are renewed too; a younger one is only looked at, so a fresh upload's
chunks are not written twice. (Ages compare the node's clock with the server's
``LastModified``: keep them within minutes, and GC's grace above ``renew_after``.)
:meth:`S3Store.usage` lists the bucket (one request per 1,000 blobs): an operator's question,
not a hot path.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

from citychain.blobs._store import (
    ChunkInfo,
    StoreUsage,
    check_hash_name,
    check_id,
    check_put,
    corrupt,
    parse_hex_id,
)
from citychain.errors import CitychainError, ErrorCode, NotFound, Unavailable

__all__ = ["S3Store"]

_FULL_CODES = frozenset({"QuotaExceeded", "InsufficientStorage", "XMinioStorageFull"})
_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
#: A blob older than this (seconds) is renewed by :meth:`S3Store.touch`.
RENEW_AFTER_SECONDS = 600.0
_SESSION_LOCK = threading.Lock()
_SESSIONS: list[Any] = []


def _session(boto3: Any) -> Any:
    """One boto3 session for the process: its loaded service models make each later client
    cheap (~5 ms instead of ~100 ms). Called with ``_SESSION_LOCK`` held."""
    if not _SESSIONS:
        _SESSIONS.append(boto3.session.Session())
    return _SESSIONS[0]


class S3Store:
    """Blobs as objects in an S3-compatible bucket; see the module's docstring.

    ``endpoint_url`` None means AWS; ``access_key``/``secret_key`` None means boto3's usual
    credential chain (environment, profile, instance role).
    """

    #: Each call is a round trip: callers asking about many chunks ask several at once.
    remote = True

    def __init__(
        self,
        bucket: str,
        endpoint_url: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        region: str = "us-east-1",
        prefix: str = "",
        *,
        hash_name: str = "sha256",
        connect_timeout: float = 2.0,
        read_timeout: float = 10.0,
        renew_after: float = RENEW_AFTER_SECONDS,
    ) -> None:
        import boto3  # type: ignore[import-untyped]  # no stubs; the client is typed Any
        from botocore.config import Config  # type: ignore[import-untyped]

        self._hash = check_hash_name(hash_name)
        self.hash_name = hash_name
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.prefix = prefix
        self.renew_after = renew_after
        with _SESSION_LOCK:  # botocore sessions are not thread-safe; clients are
            self._client: Any = _session(boto3).client(
                "s3",
                endpoint_url=endpoint_url,
                aws_access_key_id=access_key,
                aws_secret_access_key=secret_key,
                region_name=region,
                config=Config(
                    connect_timeout=connect_timeout,
                    read_timeout=read_timeout,
                    retries={"max_attempts": 2, "mode": "standard"},
                    s3={"addressing_style": "path"},
                ),
            )

    def __repr__(self) -> str:
        return f"S3Store(bucket={self.bucket!r}, endpoint_url={self.endpoint_url!r})"

    def _key(self, chunk_id: bytes) -> str:
        return self.prefix + chunk_id.hex()

    def _where(self) -> str:
        return f"bucket {self.bucket!r} at {self.endpoint_url or 'AWS S3'}"

    def _error(self, exc: Exception, doing: str) -> CitychainError:
        """The citychain error for what boto3 raised while ``doing``."""
        from botocore.exceptions import ClientError  # type: ignore[import-untyped]

        if isinstance(exc, ClientError):
            err = exc.response.get("Error", {})
            code = str(err.get("Code", ""))
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            if code in _FULL_CODES or status == 507:
                return Unavailable(
                    f"the S3 backend ({self._where()}) is full while {doing}: {code}; "
                    "nothing was stored",
                    ErrorCode.STORE_FULL,
                )
            if code == "NoSuchBucket":
                why = "the bucket does not exist"
            elif status in (401, 403):
                why = f"it refused our credentials ({code})"
            else:
                why = f"it answered {status} {code}: {err.get('Message', '')}".rstrip(": ")
        else:
            why = f"it cannot be reached ({type(exc).__name__}: {exc})"
        return Unavailable(
            f"the S3 backend ({self._where()}) failed while {doing}: {why}",
            ErrorCode.BACKEND_DOWN,
        )

    @staticmethod
    def _missing(exc: Exception) -> bool:
        from botocore.exceptions import ClientError

        return (
            isinstance(exc, ClientError)
            and str(exc.response.get("Error", {}).get("Code", "")) in _MISSING_CODES
        )

    # -- the BlobStore interface -------------------------------------------------------------

    def put(self, chunk_id: bytes, data: bytes) -> bool:
        check_put(self._hash, self.hash_name, chunk_id, data)
        if self.has(chunk_id) and self._renew(chunk_id):
            return False
        try:
            self._client.put_object(Bucket=self.bucket, Key=self._key(chunk_id), Body=bytes(data))
        except Exception as exc:
            raise self._error(exc, f"storing chunk {chunk_id.hex()}") from None
        return True

    def get(self, chunk_id: bytes) -> bytes:
        check_id(chunk_id)
        try:
            answer = self._client.get_object(Bucket=self.bucket, Key=self._key(chunk_id))
            data: bytes = answer["Body"].read()
        except Exception as exc:
            if self._missing(exc):
                raise NotFound(
                    f"chunk {chunk_id.hex()} is not in the blob store ({self._where()})",
                    ErrorCode.CHUNK_MISSING,
                ) from None
            raise self._error(exc, f"reading chunk {chunk_id.hex()}") from None
        if self._hash(data) != chunk_id:
            raise corrupt(chunk_id, f"{self._where()}, key {self._key(chunk_id)}")
        return data

    def has(self, chunk_id: bytes) -> bool:
        return self._head(chunk_id) is not None

    def _head(self, chunk_id: bytes) -> dict[str, Any] | None:
        check_id(chunk_id)
        try:
            head: dict[str, Any] = self._client.head_object(
                Bucket=self.bucket, Key=self._key(chunk_id)
            )
        except Exception as exc:
            if self._missing(exc):
                return None
            raise self._error(exc, f"looking for chunk {chunk_id.hex()}") from None
        return head

    def touch(self, chunk_id: bytes) -> bool:
        """:meth:`has`, renewing the age of a blob older than ``renew_after`` (see the
        module's docstring and :mod:`citychain.blobs.gc`)."""
        head = self._head(chunk_id)
        if head is None:
            return False
        modified = head.get("LastModified")
        if modified is not None and time.time() - modified.timestamp() < self.renew_after:
            return True
        return self._renew(chunk_id)

    def _renew(self, chunk_id: bytes) -> bool:
        """Copy the blob onto itself (server-side: no data sent) so that its age restarts;
        False if it is gone."""
        key = self._key(chunk_id)
        try:
            self._client.copy_object(
                Bucket=self.bucket,
                Key=key,
                CopySource={"Bucket": self.bucket, "Key": key},
                MetadataDirective="REPLACE",
                Metadata={"citychain-blob": "1"},
            )
        except Exception as exc:  # every boto3 failure is translated
            if self._missing(exc):
                return False
            raise self._error(exc, f"refreshing chunk {chunk_id.hex()}") from None
        return True

    def sync(self) -> None:
        """Nothing to do: an S3 PUT is durable and listed when it is answered."""

    def delete(self, chunk_id: bytes) -> bool:
        if not self.has(chunk_id):
            return False
        try:
            self._client.delete_object(Bucket=self.bucket, Key=self._key(chunk_id))
        except Exception as exc:
            raise self._error(exc, f"deleting chunk {chunk_id.hex()}") from None
        return True

    def ids(self) -> Iterator[ChunkInfo]:
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix
        )
        try:
            for page in pages:
                for obj in page.get("Contents", ()):
                    chunk_id = parse_hex_id(obj["Key"][len(self.prefix) :])
                    if chunk_id is not None:
                        yield ChunkInfo(chunk_id, int(obj["Size"]), obj["LastModified"].timestamp())
        except CitychainError:
            raise
        except Exception as exc:
            raise self._error(exc, "listing the blobs") from None

    def usage(self) -> StoreUsage:
        blobs = size = 0
        for info in self.ids():
            blobs += 1
            size += info.size
        return StoreUsage(blobs, size, None)
