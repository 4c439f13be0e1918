"""What only one backend can show: a local store that fills up (its quota, or the disk) and
keeps nothing partial, crash leftovers cleaned, corrupt files quarantined; an S3 backend that
is down failing in seconds; and ``open_store`` refusing a bad table precisely."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import socket
import time
from pathlib import Path

import pytest

from citychain.blobs import LocalStore, open_store, upload
from citychain.blobs.s3 import S3Store
from citychain.crypto.envelope import MIN_CHUNK_SIZE, new_data_key
from citychain.errors import CitychainError, ConfigError, ErrorCode, Unavailable
from pagecache import cached_pages, pages_can_be_dropped  # type: ignore[import-not-found]


def blob(text: bytes) -> tuple[bytes, bytes]:
    return hashlib.sha256(text).digest(), text


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def test_a_store_at_its_capacity_refuses_and_keeps_nothing_partial(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "b", capacity_bytes=3 * MIN_CHUNK_SIZE)
    key = new_data_key("aes-256-gcm")
    with pytest.raises(Unavailable) as full:
        upload(io.BytesIO(b"f" * (5 * MIN_CHUNK_SIZE)), store, key, b"c", chunk_size=MIN_CHUNK_SIZE)
    assert full.value.code is ErrorCode.STORE_FULL
    assert "is full" in full.value.message and "nothing was stored" in full.value.message
    usage = store.usage()
    assert usage.bytes <= 3 * MIN_CHUNK_SIZE and usage.capacity == 3 * MIN_CHUNK_SIZE
    # Whole chunks only, no temporary file, no manifest.
    assert all(p.stat().st_size == MIN_CHUNK_SIZE + 16 for p in files_under(tmp_path / "b"))
    assert not list((tmp_path / "b" / "tmp").iterdir())
    small, data = blob(b"still fits")
    assert store.put(small, data)


def test_room_freed_by_another_process_is_found_before_refusing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The node's store counts its bytes once and keeps the count; ``citychain data gc`` runs
    in another process on the same directory. A put that would pass the capacity counts
    again (at most every RECOUNT_SECONDS) rather than refusing on a stale count."""
    from citychain.blobs import local

    node = LocalStore(tmp_path / "b", capacity_bytes=2000)
    a, b, c = (blob(bytes([n]) * 900) for n in (1, 2, 3))
    assert node.put(*a) and node.put(*b)
    clock = [1000.0]
    monkeypatch.setattr(local.time, "monotonic", lambda: clock[0])
    node._counted_at = clock[0]  # just counted
    assert LocalStore(tmp_path / "b").delete(a[0])  # the gc, elsewhere
    with pytest.raises(Unavailable) as full:  # counted a moment ago: not again yet
        node.put(*c)
    assert full.value.code is ErrorCode.STORE_FULL
    clock[0] += local.RECOUNT_SECONDS
    assert node.put(*c)  # counted again: a's room is free
    assert node.usage().bytes == 1800


def test_an_upload_resumed_after_the_grace_keeps_the_chunks_it_skips(tmp_path: Path) -> None:
    """A resumed upload asks which chunks the node lacks and skips the rest, so no put renews
    their age: on a local disk the answer itself does (and the manifest's check), so GC,
    whose grace counts from a blob's age, keeps them until the version is anchored."""
    from citychain.blobs import collect_garbage, put_manifest
    from citychain.blobs.stream import absent
    from citychain.crypto.envelope import seal_stream

    store = LocalStore(tmp_path / "b")
    key = new_data_key("aes-256-gcm")
    sealed = seal_stream(
        io.BytesIO(b"r" * (3 * MIN_CHUNK_SIZE)), key, b"c", "aes-256-gcm", MIN_CHUNK_SIZE
    )
    chunks = list(sealed)
    for chunk_id, data in chunks[:2]:  # the first run, cut after two chunks, a day ago
        store.put(chunk_id, data)
        path = next((tmp_path / "b").rglob(chunk_id.hex()))
        os.utime(path, (time.time() - 86_400, time.time() - 86_400))
    ids = [chunk_id for chunk_id, _ in chunks]
    assert absent(store, ids) == [2]  # asked without touching: still a day old
    assert collect_garbage(store, [], 3600, dry_run=True).deleted == 2
    assert absent(store, ids, touch=True) == [2]  # the resumed upload's ask
    assert collect_garbage(store, [], 3600).deleted == 0
    store.put(*chunks[2])
    assert put_manifest(store, sealed.manifest.encode()) == sealed.manifest
    assert collect_garbage(store, [], 3600).kept_young == 4  # three chunks and the manifest


def test_s3_touch_renews_an_old_blobs_age_and_only_looks_at_a_fresh_one(
    s3_endpoint: str,
) -> None:
    """On S3 a HEAD does not renew an object's age: ``touch`` copies a blob older than
    ``renew_after`` onto itself, so the chunks a resumed upload skips outlive GC's grace,
    and leaves a younger one alone, so a fresh upload's chunks are not written twice."""
    from s3server import BUCKET, CREDENTIALS  # type: ignore[import-not-found]

    def open_s3(renew_after: float) -> S3Store:
        return S3Store(
            BUCKET, s3_endpoint, CREDENTIALS["access_key"], CREDENTIALS["secret_key"],
            prefix="renew/", renew_after=renew_after,
        )  # fmt: skip

    def modified(store: S3Store, chunk_id: bytes) -> float:
        (info,) = [i for i in store.ids() if i.chunk_id == chunk_id]
        return info.modified

    cid, data = blob(b"resumed")
    fresh, old = open_s3(3600), open_s3(0)
    assert fresh.touch(cid) is False and old.touch(cid) is False  # absent: nothing made
    assert fresh.put(cid, data)
    first = modified(fresh, cid)
    time.sleep(1.1)  # LastModified counts whole seconds
    assert fresh.touch(cid) is True
    assert modified(fresh, cid) == first  # younger than renew_after: only looked at
    assert old.touch(cid) is True
    renewed = modified(old, cid)
    assert renewed > first  # older: copied onto itself, its age restarts
    assert old.get(cid) == data
    from citychain.blobs import collect_garbage

    assert collect_garbage(fresh, [], 3600, now=renewed + 3599).deleted == 0
    assert collect_garbage(fresh, [], 3600, now=renewed + 3601).deleted == 1


def test_a_full_disk_is_store_full_and_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = LocalStore(tmp_path / "b")
    real_write = os.write

    def write(fd: int, data: bytes) -> int:
        if len(data) > 100:
            real_write(fd, bytes(data)[:50])  # half a chunk reaches the file, then no space
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write)
    cid, data = blob(b"x" * 1000)
    with pytest.raises(Unavailable) as full:
        store.put(cid, data)
    assert full.value.code is ErrorCode.STORE_FULL and "the disk is full" in full.value.message
    assert files_under(tmp_path / "b") == [] and not store.has(cid)


def test_a_crash_leftover_is_removed_and_a_corrupt_file_quarantined(tmp_path: Path) -> None:
    root = tmp_path / "b"
    store = LocalStore(root)
    stale, fresh = root / "tmp" / "stale", root / "tmp" / "fresh"
    stale.write_bytes(b"half a chunk")
    fresh.write_bytes(b"someone writing now")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    LocalStore(root)
    assert not stale.exists() and fresh.exists()
    cid, data = blob(b"will rot")
    store.put(cid, data)
    h = cid.hex()
    (root / "chunks" / h[:2] / h[2:4] / h).write_bytes(b"rotten")
    with pytest.raises(CitychainError) as bad:
        store.get(cid)
    assert bad.value.code is ErrorCode.CHUNK_CORRUPT
    assert not store.has(cid) and len(list((root / "quarantine").iterdir())) == 1
    assert store.put(cid, data) and store.get(cid) == data  # a re-upload heals it


def test_a_stored_chunk_leaves_the_page_cache(tmp_path: Path) -> None:
    # An upload's ciphertext must not push the node's state (RocksDB's files) out of memory.
    if not pages_can_be_dropped(tmp_path):
        pytest.skip(f"{tmp_path}'s filesystem keeps a file's pages in memory")
    store = LocalStore(tmp_path / "b")
    cid, data = blob(os.urandom(4 << 20))
    assert store.put(cid, data)
    h = cid.hex()
    stored = tmp_path / "b" / "chunks" / h[:2] / h[2:4] / h
    assert cached_pages(stored) == 0
    assert store.get(cid) == data  # read back from the disk, whole
    assert cached_pages(stored) == (4 << 20) // os.sysconf("SC_PAGE_SIZE")  # reads are cached


def test_an_sm3_store_checks_ids_with_sm3(tmp_path: Path) -> None:
    from citychain.crypto.sm2 import sm3

    store = LocalStore(tmp_path / "b", hash_name="sm3")
    data = b"gm chain ciphertext"
    assert store.put(sm3(data), data)
    with pytest.raises(CitychainError) as bad:
        store.put(hashlib.sha256(data).digest(), data)
    assert bad.value.code is ErrorCode.CHUNK_ID_MISMATCH and "(sm3)" in bad.value.message


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_an_s3_backend_that_is_down_fails_fast_and_clearly() -> None:
    store = S3Store("b", f"http://127.0.0.1:{_closed_port()}", "k", "s")
    cid, data = blob(b"nowhere to go")
    for call in (lambda: store.put(cid, data), lambda: store.get(cid), lambda: list(store.ids())):
        started = time.monotonic()
        with pytest.raises(Unavailable) as down:
            call()
        assert time.monotonic() - started < 5
        assert down.value.code is ErrorCode.BACKEND_DOWN
        assert "cannot be reached" in down.value.message and "127.0.0.1" in down.value.message


def test_an_s3_bucket_that_does_not_exist_is_named(s3_endpoint: str) -> None:
    store = S3Store("no-such-bucket", s3_endpoint, "testing", "testing")
    with pytest.raises(Unavailable) as down:
        store.get(blob(b"x")[0])
    assert down.value.code is ErrorCode.BACKEND_DOWN
    assert "the bucket does not exist" in down.value.message


def test_open_store_builds_each_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    local = open_store({"backend": "local", "path": "blobs", "capacity": 10}, base=tmp_path)
    assert isinstance(local, LocalStore)
    assert local.root == tmp_path / "blobs" and local.capacity_bytes == 10
    monkeypatch.setenv("CITY_SECRET", "s3cret")
    s3 = open_store(
        {
            "backend": "s3",
            "bucket": "b",
            "endpoint": "http://127.0.0.1:9",
            "access_key": "k",
            "secret_key_env": "CITY_SECRET",
            "prefix": "p/",
        },
        hash_name="sm3",
    )
    assert isinstance(s3, S3Store) and s3.hash_name == "sm3" and s3.prefix == "p/"


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ({"backend": "ftp"}, 'backend must be "local" or "s3"'),
        ({"backend": "local"}, "path must name"),
        ({"backend": "local", "path": "x", "bucket": "b"}, "bucket is not a setting of the local"),
        ({"backend": "local", "path": "x", "capacity": "1GB"}, "capacity must be a whole number"),
        ({"backend": "s3"}, "bucket must be set"),
        ({"backend": "s3", "bucket": "b", "secret_key": "s"}, "give access_key with secret_key"),
        (
            {
                "backend": "s3",
                "bucket": "b",
                "access_key": "k",
                "secret_key_env": "NOT_SET_ANYWHERE",
            },
            "secret_key_env names NOT_SET_ANYWHERE, which is not set",
        ),
        ({"backend": "s3", "bucket": 5}, "bucket must be a text"),
    ],
)
def test_open_store_refuses_a_bad_table(config: dict[str, object], words: str) -> None:
    with pytest.raises(ConfigError) as refused:
        open_store(config)
    assert refused.value.code is ErrorCode.BAD_CONFIG and words in refused.value.message


def test_a_gm_chain_seals_with_sm4_into_an_sm3_store(tmp_path: Path) -> None:
    from citychain.blobs import download

    store = LocalStore(tmp_path / "b", hash_name="sm3")
    key = new_data_key("sm4-gcm")
    data = b"gm" * 1500
    manifest = upload(io.BytesIO(data), store, key, b"v1", "sm4-gcm", MIN_CHUNK_SIZE)
    out = io.BytesIO()
    download(manifest.id, store, key, b"v1", out)
    assert out.getvalue() == data
    with pytest.raises(CitychainError) as bad:  # SHA-256 ids do not go into an SM3 store
        upload(io.BytesIO(data), store, new_data_key("aes-256-gcm"), b"v1")
    assert bad.value.code is ErrorCode.CHUNK_ID_MISMATCH


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("XMinioStorageFull", 507, ErrorCode.STORE_FULL),
        ("QuotaExceeded", 403, ErrorCode.STORE_FULL),
        ("InvalidAccessKeyId", 403, ErrorCode.BACKEND_DOWN),
        ("SlowDown", 503, ErrorCode.BACKEND_DOWN),
    ],
)
def test_s3_answers_map_to_codes(code: str, status: int, expected: ErrorCode) -> None:
    from botocore.exceptions import ClientError  # type: ignore[import-untyped]

    store = S3Store("b", "http://127.0.0.1:9", "k", "s")
    answer = {
        "Error": {"Code": code, "Message": "m"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    err = store._error(ClientError(answer, "PutObject"), "storing chunk x")
    assert err.code is expected
    if code == "InvalidAccessKeyId":
        assert "refused our credentials" in err.message
