"""The local-disk blob store: the default, embedded, nothing to start.

Theory of operation
-------------------
A blob lives at ``<root>/chunks/<2 hex>/<2 hex>/<64 hex id>`` (65,536 fan-out directories, so
no directory grows past a few thousand entries before a store holds hundreds of millions of
chunks). A write goes to ``<root>/tmp/`` first, is fsynced, renamed onto its name and the
directory is fsynced: a crash at any instant leaves either no file under the id or the whole
verified blob, never half of one. A leftover temporary file (a crash mid-write) is removed
when the store is next opened, once it is an hour old.

A blob's pages leave the page cache once it is fsynced (``POSIX_FADV_DONTNEED``): an upload
streams gigabytes of ciphertext that nobody reads back soon, and through the cache it would
push out the pages the node does read (RocksDB's files: the state, the blocks), and take
fresh memory for every chunk. Dropped, the next chunk's write reuses the pages the last one
freed. ``perf`` of a node during 256 MiB uploads on a VM: half its CPU was the kernel copying
the bytes into new page-cache pages (~1.1 s of system time an upload); with the pages dropped,
0.4-0.55 s (0.25-0.4 s once the node's allocator keeps freed memory too:
``citychain.sdk.keep_freed_memory``). Reads go through the cache as usual: a popular
dataset is read many times. The advice is only advice: a filesystem that refuses it loses
nothing.

``capacity_bytes`` is a quota on the blobs' bytes. It is counted once at the first write (a
walk of the tree) and kept up to date by this process; a blob that would pass it, or a disk
that runs out (``ENOSPC``/``EDQUOT``), is refused as ``store_full`` and its temporary file
removed, so nothing partial is left. One process writes a root (the node, which holds its
home's lock); several would each count only their own writes.

A blob that no longer hashes to its id on read is moved to ``<root>/quarantine/`` and
reported as ``chunk_corrupt``: the next upload of the same bytes stores it afresh.
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from citychain.blobs._store import (
    ChunkInfo,
    StoreUsage,
    check_hash_name,
    check_id,
    check_put,
    corrupt,
    parse_hex_id,
)
from citychain.errors import ErrorCode, InternalError, InvalidInput, NotFound, Unavailable

__all__ = ["LocalStore"]

#: A temporary file older than this when the store opens is a crash's leftover.
STALE_TMP_SECONDS = 3600
#: A full store counts its files again (another process may have deleted some) at most this
#: often.
RECOUNT_SECONDS = 10.0
_FULL = (errno.ENOSPC, errno.EDQUOT)
#: Whether this platform can drop a file's pages from the cache (not macOS or Windows).
_DROP_CACHE = hasattr(os, "posix_fadvise")


def _dirs(path: Path | str) -> list[str]:
    """The subdirectories of ``path``, sorted (missing: none)."""
    try:
        with os.scandir(path) as entries:
            return sorted(e.path for e in entries if e.is_dir())
    except FileNotFoundError:
        return []


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalStore:
    """Blobs as files under ``root`` (created if missing); see the module's docstring."""

    #: A stat answers ``has``: asked in turn (see :func:`citychain.blobs.stream.absent`).
    remote = False

    def __init__(
        self, root: Path | str, capacity_bytes: int | None = None, hash_name: str = "sha256"
    ) -> None:
        if capacity_bytes is not None and (
            not isinstance(capacity_bytes, int) or isinstance(capacity_bytes, bool)
        ):
            raise InvalidInput("capacity_bytes must be a whole number", ErrorCode.BAD_CONFIG)
        if capacity_bytes is not None and capacity_bytes < 1:
            raise InvalidInput("capacity_bytes must be 1 or more", ErrorCode.BAD_CONFIG)
        self._hash = check_hash_name(hash_name)
        self.hash_name = hash_name
        self.root = Path(root)
        self.capacity_bytes = capacity_bytes
        self._chunks_dir = self.root / "chunks"
        self._tmp = self.root / "tmp"
        try:
            self._chunks_dir.mkdir(parents=True, exist_ok=True)
            self._tmp.mkdir(exist_ok=True)
        except OSError as exc:
            raise InternalError(
                f"cannot create the blob store at {self.root}: {exc.strerror}"
            ) from None
        self._lock = threading.Lock()
        self._count: tuple[int, int] | None = None  # (blobs, bytes), once counted
        self._counted_at = 0.0  # time.monotonic() of that count
        self._reserved = 0  # bytes of puts under way (capacity only)
        self._dirty: set[Path] = set()  # directories with entries not yet synced
        self._clean_tmp()

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r}, capacity_bytes={self.capacity_bytes})"

    def _clean_tmp(self) -> None:
        cutoff = time.time() - STALE_TMP_SECONDS
        with os.scandir(self._tmp) as entries:
            for entry in entries:
                try:
                    if entry.stat().st_mtime < cutoff:
                        os.unlink(entry.path)
                except OSError:
                    pass  # gone already, or not ours to remove: harmless

    def _path(self, chunk_id: bytes) -> Path:
        h = chunk_id.hex()
        return self._chunks_dir / h[:2] / h[2:4] / h

    def _counted(self) -> tuple[int, int]:
        # Called with the lock held.
        if self._count is None:
            blobs = size = 0
            for info in self.ids():
                blobs += 1
                size += info.size
            self._count = (blobs, size)
            self._counted_at = time.monotonic()
        return self._count

    # -- the BlobStore interface -------------------------------------------------------------

    def put(self, chunk_id: bytes, data: bytes) -> bool:
        check_put(self._hash, self.hash_name, chunk_id, data)
        path = self._path(chunk_id)
        try:
            os.utime(path)  # already stored: only its age changes (GC grace)
            return False
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise InternalError(f"cannot touch {path}: {exc.strerror}") from None
        size = len(data)
        if self.capacity_bytes is not None:
            with self._lock:  # reserve the room, so concurrent puts cannot pass the quota
                used = self._counted()[1] + self._reserved
                if used + size > self.capacity_bytes and self._recount_due():
                    # Another process may have freed room since the count (`citychain data
                    # gc` on the node's home while it runs): count again before refusing.
                    self._count = None
                    used = self._counted()[1] + self._reserved
                if used + size > self.capacity_bytes:
                    raise self._full(f"{used} of {self.capacity_bytes} bytes used")
                self._reserved += size
        tmp = self._tmp / f"{chunk_id.hex()}.{uuid.uuid4().hex}"
        existed = False
        try:
            self._write(tmp, data)
            made = self._make_dirs(path.parent)
            with self._lock:
                existed = path.exists()
                os.replace(tmp, path)
                if self._count is not None and not existed:
                    self._count = (self._count[0] + 1, self._count[1] + size)
            # The directory entries are synced by sync(), once for many puts: one fsync of a
            # directory per chunk cost more than writing the chunk (py-spy of an upload).
            with self._lock:
                self._dirty.add(path.parent)
                self._dirty.update(d.parent for d in made)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            if exc.errno in _FULL:
                raise self._full(f"the disk is full ({exc.strerror})") from None
            raise InternalError(
                f"cannot store chunk {chunk_id.hex()} under {self.root}: {exc.strerror}"
            ) from None
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        finally:
            if self.capacity_bytes is not None:
                with self._lock:
                    self._reserved -= size
        return not existed

    def _recount_due(self) -> bool:
        # At most one recount per RECOUNT_SECONDS: a full store refusing many puts would
        # otherwise walk every file for each.
        return time.monotonic() - self._counted_at >= RECOUNT_SECONDS

    def sync(self) -> None:
        """fsync every directory a put has changed since the last sync (deepest first), so
        each chunk stored so far is found under its id after a crash."""
        with self._lock:
            dirty, self._dirty = self._dirty, set()
        try:
            for d in sorted(dirty, key=lambda p: len(p.parts), reverse=True):
                _fsync_dir(d)
        except OSError as exc:
            with self._lock:
                self._dirty |= dirty
            raise InternalError(
                f"cannot sync the blob store at {self.root}: {exc.strerror}"
            ) from None

    def _full(self, why: str) -> Unavailable:
        return Unavailable(
            f"the blob store at {self.root} is full: {why}; nothing was stored. Free space, "
            "collect garbage or raise [blobs] capacity",
            ErrorCode.STORE_FULL,
        )

    @staticmethod
    def _write(tmp: Path, data: bytes) -> None:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]
            os.fsync(fd)
            if _DROP_CACHE:  # see the module: the written pages are clean now
                with contextlib.suppress(OSError):
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)

    def _make_dirs(self, parent: Path) -> list[Path]:
        made = []
        for d in (parent.parent, parent):
            try:
                d.mkdir()
                made.append(d)
            except FileExistsError:
                pass
        return made

    def get(self, chunk_id: bytes) -> bytes:
        check_id(chunk_id)
        path = self._path(chunk_id)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise NotFound(
                f"chunk {chunk_id.hex()} is not in the blob store", ErrorCode.CHUNK_MISSING
            ) from None
        except OSError as exc:
            raise InternalError(f"cannot read {path}: {exc.strerror}") from None
        if self._hash(data) != chunk_id:
            self._quarantine(path, len(data))
            raise corrupt(chunk_id, str(path))
        return data

    def _quarantine(self, path: Path, size: int) -> None:
        target = self.root / "quarantine"
        try:
            target.mkdir(exist_ok=True)
            with self._lock:
                os.replace(path, target / f"{path.name}.{uuid.uuid4().hex}")
                if self._count is not None:
                    self._count = (self._count[0] - 1, self._count[1] - size)
        except OSError:
            pass  # reported as corrupt all the same; left in place

    def has(self, chunk_id: bytes) -> bool:
        check_id(chunk_id)
        return self._path(chunk_id).is_file()

    def touch(self, chunk_id: bytes) -> bool:
        """:meth:`has`, renewing the blob's age (GC's grace) when it is there: an upload that
        resumes, or a manifest that names it, is about to reference it."""
        check_id(chunk_id)
        try:
            os.utime(self._path(chunk_id))
        except FileNotFoundError:
            return False
        except OSError as exc:
            raise InternalError(f"cannot touch {self._path(chunk_id)}: {exc.strerror}") from None
        return True

    def delete(self, chunk_id: bytes) -> bool:
        check_id(chunk_id)
        path = self._path(chunk_id)
        with self._lock:
            try:
                size = path.stat().st_size
                path.unlink()
            except FileNotFoundError:
                return False
            except OSError as exc:
                raise InternalError(f"cannot delete {path}: {exc.strerror}") from None
            if self._count is not None:
                self._count = (self._count[0] - 1, self._count[1] - size)
        return True

    def ids(self) -> Iterator[ChunkInfo]:
        for top in _dirs(self._chunks_dir):
            for mid in _dirs(top):
                with os.scandir(mid) as entries:
                    found = [(e.name, e) for e in entries]
                for name, entry in found:
                    chunk_id = parse_hex_id(name)
                    if chunk_id is None:
                        continue
                    try:
                        st = entry.stat()
                    except FileNotFoundError:
                        continue  # deleted while listing
                    yield ChunkInfo(chunk_id, st.st_size, st.st_mtime)

    def usage(self) -> StoreUsage:
        with self._lock:
            blobs, size = self._counted()
        return StoreUsage(blobs, size, self.capacity_bytes)
