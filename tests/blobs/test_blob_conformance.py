"""One conformance suite for every blob-store backend: the local directory and an S3 bucket on
a real S3-compatible server (moto's, started by the session). Each test runs on both."""

from __future__ import annotations

import hashlib
import io
import time
from pathlib import Path

import pytest

from citychain.blobs import (
    BlobStore,
    LocalStore,
    collect_garbage,
    download,
    missing_chunks,
    put_manifest,
    read_manifest,
    upload,
)
from citychain.blobs.s3 import S3Store
from citychain.crypto.envelope import MIN_CHUNK_SIZE, new_data_key, seal_stream
from citychain.errors import CitychainError, ErrorCode

CTX = b"dataset:air-quality/v1"
CHUNK = MIN_CHUNK_SIZE


def blob(text: bytes) -> tuple[bytes, bytes]:
    return hashlib.sha256(text).digest(), text


def overwrite(store: BlobStore, chunk_id: bytes, data: bytes) -> None:
    """Change a stored blob behind the store's back (a disk or backend fault)."""
    if isinstance(store, LocalStore):
        h = chunk_id.hex()
        (store.root / "chunks" / h[:2] / h[2:4] / h).write_bytes(data)
    else:
        assert isinstance(store, S3Store)
        store._client.put_object(Bucket=store.bucket, Key=store._key(chunk_id), Body=data)


def raises(code: ErrorCode, fn, *args) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(CitychainError) as caught:
        fn(*args)
    assert caught.value.code is code, caught.value
    return caught.value.message


def test_put_get_has_delete(store: BlobStore) -> None:
    cid, data = blob(b"ciphertext one")
    assert not store.has(cid)
    assert store.put(cid, data) is True
    assert store.has(cid) and store.get(cid) == data
    assert store.put(cid, data) is False  # idempotent
    assert store.get(cid) == data
    assert store.delete(cid) is True
    assert not store.has(cid) and store.delete(cid) is False


def test_touch_answers_as_has_does(store: BlobStore) -> None:
    """``touch`` (what an upload's ask uses, renewing age where it can) answers as ``has``."""
    cid, data = blob(b"touched")
    assert store.touch(cid) is False
    store.put(cid, data)
    assert store.touch(cid) is True and store.get(cid) == data


def test_a_blob_offered_under_another_id_is_refused(store: BlobStore) -> None:
    cid, _ = blob(b"what the id names")
    message = raises(ErrorCode.CHUNK_ID_MISMATCH, store.put, cid, b"something else")
    assert cid.hex() in message
    assert not store.has(cid)
    raises(ErrorCode.BAD_ARGUMENTS, store.put, b"short", b"x")


def test_a_missing_blob_is_chunk_missing(store: BlobStore) -> None:
    cid, _ = blob(b"never stored")
    assert cid.hex() in raises(ErrorCode.CHUNK_MISSING, store.get, cid)


def test_a_blob_altered_in_storage_is_refused_on_read(store: BlobStore) -> None:
    cid, data = blob(b"original bytes")
    store.put(cid, data)
    overwrite(store, cid, b"flipped bytes!")
    assert cid.hex() in raises(ErrorCode.CHUNK_CORRUPT, store.get, cid)


def test_listing_and_usage(store: BlobStore) -> None:
    items = [blob(bytes([i]) * (i + 1)) for i in range(5)]
    before = time.time() - 5
    for cid, data in items:
        store.put(cid, data)
    listed = {info.chunk_id: info for info in store.ids()}
    assert set(listed) == {cid for cid, _ in items}
    assert all(listed[cid].size == len(data) for cid, data in items)
    assert all(info.modified >= before for info in listed.values())
    usage = store.usage()
    assert (usage.chunks, usage.bytes) == (5, sum(len(d) for _, d in items))
    store.delete(items[0][0])
    assert store.usage().chunks == 4


@pytest.mark.parametrize("size", [0, CHUNK - 1, 3 * CHUNK + 5])
def test_upload_and_download_a_version(store: BlobStore, size: int) -> None:
    data = bytes(i % 251 for i in range(size))
    key = new_data_key("aes-256-gcm")
    manifest = upload(io.BytesIO(data), store, key, CTX, chunk_size=CHUNK)
    assert store.has(manifest.id) and missing_chunks(store, manifest) == []
    assert read_manifest(store, manifest.id) == manifest
    out = io.BytesIO()
    assert download(manifest.id, store, key, CTX, out) == manifest
    assert out.getvalue() == data


def test_a_chunk_missing_from_the_store_is_named(store: BlobStore) -> None:
    key = new_data_key("aes-256-gcm")
    manifest = upload(io.BytesIO(b"q" * (3 * CHUNK)), store, key, CTX, chunk_size=CHUNK)
    store.delete(manifest.chunks[1])
    message = raises(ErrorCode.CHUNK_MISSING, download, manifest.id, store, key, CTX, io.BytesIO())
    assert f"chunk 1 of 3 ({manifest.chunks[1].hex()}) is missing" in message
    assert missing_chunks(store, manifest) == [1]
    raises(ErrorCode.CHUNK_MISSING, read_manifest, store, hashlib.sha256(b"no").digest())


def test_a_chunk_corrupted_in_the_store_stops_the_download(store: BlobStore) -> None:
    key = new_data_key("aes-256-gcm")
    manifest = upload(io.BytesIO(b"r" * (2 * CHUNK)), store, key, CTX, chunk_size=CHUNK)
    overwrite(store, manifest.chunks[0], b"garbage")
    raises(ErrorCode.CHUNK_CORRUPT, download, manifest.id, store, key, CTX, io.BytesIO())


class _CutReader(io.RawIOBase):
    """A source that fails after ``limit`` bytes: a client gone, a disk error."""

    def __init__(self, data: bytes, limit: int) -> None:
        self.data, self.limit, self.pos = data, limit, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buf: memoryview) -> int:  # type: ignore[override]
        if self.pos >= self.limit:
            raise OSError("connection reset by peer")
        n = min(len(buf), self.limit - self.pos, len(self.data) - self.pos)
        buf[:n] = self.data[self.pos : self.pos + n]
        self.pos += n
        return n


def test_an_upload_cut_halfway_leaves_no_manifest_and_resumes(store: BlobStore) -> None:
    data = bytes(range(256)) * (5 * CHUNK // 256)
    key = new_data_key("aes-256-gcm")
    with pytest.raises(OSError, match="connection reset"):
        upload(_CutReader(data, 2 * CHUNK + 10), store, key, CTX, chunk_size=CHUNK)
    sealed = seal_stream(io.BytesIO(data), key, CTX, "aes-256-gcm", CHUNK)
    ids = [cid for cid, _ in sealed]
    stored = {info.chunk_id for info in store.ids()}
    # Chunk 1 was read whole, but the read-ahead that would tell whether it is the last failed.
    assert stored == {ids[0]}  # the chunks sealed before the cut, and no manifest
    # Resumed with the same key and context: the stored chunks are the same, only the rest go in.
    manifest = upload(io.BytesIO(data), store, key, CTX, chunk_size=CHUNK)
    assert manifest == sealed.manifest
    out = io.BytesIO()
    download(manifest.id, store, key, CTX, out)
    assert out.getvalue() == data


def test_an_uploaded_manifest_waits_for_its_chunks(store: BlobStore) -> None:
    key = new_data_key("aes-256-gcm")
    sealed = seal_stream(io.BytesIO(b"s" * (3 * CHUNK)), key, CTX, "aes-256-gcm", CHUNK)
    chunks = list(sealed)
    manifest = sealed.manifest
    for cid, ct in chunks[:2]:
        store.put(cid, ct)
    message = raises(ErrorCode.CHUNK_MISSING, put_manifest, store, manifest.encode())
    assert "1 of the manifest's 3 chunks are not stored, the first is chunk 2" in message
    assert not store.has(manifest.id)
    store.put(*chunks[2])
    assert put_manifest(store, manifest.encode()) == manifest and store.has(manifest.id)
    raises(ErrorCode.MALFORMED, put_manifest, store, b"\xa0")


def test_absent_chunks_are_found_in_order_across_batches(
    store: BlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the version gate and a download's check ask: which of many chunks the store
    lacks, asked several at a time and a batch at a time, in the manifest's order."""
    from citychain.blobs import stream

    monkeypatch.setattr(stream, "_ASK_BATCH", 7)
    ids = []
    for n in range(40):
        data = b"chunk %d" % n
        chunk_id = hashlib.sha256(data).digest()
        ids.append(chunk_id)
        if n % 3:
            store.put(chunk_id, data)
    assert stream.absent(store, ids) == [n for n in range(40) if n % 3 == 0]
    assert stream.absent(store, ids[1:3]) == []


def test_garbage_collection_keeps_referenced_and_young_blobs(store: BlobStore) -> None:
    key = new_data_key("aes-256-gcm")
    kept = upload(io.BytesIO(b"k" * (2 * CHUNK + 1)), store, key, CTX, chunk_size=CHUNK)
    dropped = upload(io.BytesIO(b"d" * (2 * CHUNK)), store, key, b"other", chunk_size=CHUNK)
    orphan, data = blob(b"an upload cut halfway")
    store.put(orphan, data)
    total = 3 + 1 + 2 + 1 + 1
    # Everything is young: nothing goes.
    report = collect_garbage(store, [kept.id], grace_seconds=3600)
    assert (report.kept_referenced, report.kept_young, report.deleted) == (4, 4, 0)
    assert store.usage().chunks == total
    dry = collect_garbage(store, [kept.id], grace_seconds=0, now=time.time() + 10, dry_run=True)
    assert dry.deleted == 4 and store.usage().chunks == total
    report = collect_garbage(store, [kept.id], grace_seconds=0, now=time.time() + 10)
    assert (report.referenced_manifests, report.kept_referenced, report.deleted) == (1, 4, 4)
    assert report.deleted_bytes == sum(len(c) for c in [data]) + 2 * (CHUNK + 16) + len(
        dropped.encode()
    )
    remaining = {info.chunk_id for info in store.ids()}
    assert remaining == {kept.id, *kept.chunks}
    out = io.BytesIO()
    download(kept.id, store, key, CTX, out)
    assert out.getvalue() == b"k" * (2 * CHUNK + 1)


def test_garbage_collection_stops_when_a_referenced_manifest_is_missing(
    store: BlobStore,
) -> None:
    cid, data = blob(b"old, unreferenced")
    store.put(cid, data)
    lost = hashlib.sha256(b"a manifest that is gone").digest()
    with pytest.raises(CitychainError) as caught:
        collect_garbage(store, [lost], 0, now=time.time() + 10)
    assert caught.value.code is ErrorCode.CHUNK_MISSING and lost.hex() in caught.value.message
    assert store.has(cid)  # nothing deleted


def test_a_reput_blob_is_young_again(store: BlobStore, tmp_path: Path) -> None:
    cid, data = blob(b"reused by a running upload")
    store.put(cid, data)
    first = next(i.modified for i in store.ids() if i.chunk_id == cid)
    time.sleep(1.05 if isinstance(store, S3Store) else 0.02)  # S3 times are whole seconds
    store.put(cid, data)
    again = next(i.modified for i in store.ids() if i.chunk_id == cid)
    assert again > first
