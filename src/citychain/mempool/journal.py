"""The mempool journal: what a node answered "accepted" to survives a crash.

Theory of operation
-------------------
A node answers ``202 accepted`` only after the transactions it accepted are on disk: the
journal is an append-only file of records, one per accepted transaction::

    length   4 bytes, big-endian, 1 .. MAX_RECORD
    crc32    4 bytes, big-endian, of the transaction bytes
    tx       ``length`` bytes: the transaction's wire bytes

:meth:`Journal.append` writes a batch of records and fsyncs once. The node calls it through a
group commit (:class:`GroupCommit`): every submission waiting at the same moment shares one
write and one fsync, so the cost per transaction falls as the load rises, and a submission
never waits for more than the fsync that was already running plus its own.

The journal records only what was *accepted*; nothing is written when a transaction leaves the
pool (committed, expired). At start the node reads the journal (:meth:`Journal.read`) and puts
every record back through admission, which drops what was committed or expired meanwhile, then
:meth:`Journal.rewrite` replaces the file by what stayed. While the node runs, the journal is
rewritten the same way when it has grown past twice what is still pooled (and past
``COMPACT_MIN_BYTES``): the rewrite goes to a temporary file that is fsynced and renamed over
the journal, and the directory is fsynced, so a crash at any instant leaves either the old or
the new file, both holding every transaction that is still pooled.

A crash in the middle of an append leaves a torn last record: :meth:`Journal.read` stops at the
first record whose length or checksum does not hold and cuts the file there, so the records
before it, whose ``202`` was answered after their fsync, are all kept. Record boundaries never
depend on the contents, so a corrupt record cannot make a later one be read as something else.

This module does file I/O only; what to admit is the mempool's business.
"""

from __future__ import annotations

import asyncio
import os
import struct
import zlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from citychain.errors import ConfigError

_HEAD = struct.Struct(">II")
#: The largest record accepted when reading (a transaction is at most 64 KiB by default;
#: this bounds what a corrupt length can make the reader allocate).
MAX_RECORD = 16 * 1024 * 1024
#: The journal is compacted only past this size, so a quiet node never rewrites it.
COMPACT_MIN_BYTES = 4 * 1024 * 1024


def encode_records(raws: Iterable[bytes]) -> bytes:
    """The journal bytes of ``raws``, in order."""
    return b"".join(_HEAD.pack(len(r), zlib.crc32(r)) + r for r in raws)


def decode_records(data: bytes) -> tuple[list[bytes], int]:
    """The records of ``data`` up to the first torn or corrupt one, and where that one
    starts (``len(data)`` when every record holds)."""
    out: list[bytes] = []
    pos = 0
    while pos + _HEAD.size <= len(data):
        length, crc = _HEAD.unpack_from(data, pos)
        end = pos + _HEAD.size + length
        if not 0 < length <= MAX_RECORD or end > len(data):
            return out, pos
        raw = data[pos + _HEAD.size : end]
        if zlib.crc32(raw) != crc:
            return out, pos
        out.append(raw)
        pos = end
    return out, pos


class Journal:
    """The journal file of one node (``<data_dir>/mempool.journal``). Not thread-safe: one
    writer at a time (the node's :class:`GroupCommit`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError as exc:
            raise ConfigError(f"cannot open the mempool journal {path}: {exc.strerror}") from None
        #: Bytes in the file now.
        self.size = os.fstat(self._fd).st_size

    def read(self) -> list[bytes]:
        """Every whole record, oldest first; a torn or corrupt tail is cut off the file."""
        with open(self.path, "rb") as f:
            data = f.read()
        raws, good = decode_records(data)
        if good < len(data):
            os.ftruncate(self._fd, good)
            os.fsync(self._fd)
        self.size = good
        return raws

    def append(self, raws: Sequence[bytes]) -> None:
        """Write ``raws`` and fsync: when this returns they survive a crash."""
        data = encode_records(raws)
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        os.fsync(self._fd)
        self.size += len(data)

    def rewrite(self, raws: Iterable[bytes]) -> None:
        """Replace the journal by ``raws``, atomically (temporary file, fsync, rename)."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        data = encode_records(raws)
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        os.close(self._fd)
        self._fd = os.open(self.path, os.O_RDWR | os.O_APPEND)
        self.size = len(data)

    def needs_compaction(self, live_bytes: int) -> bool:
        """True when the file holds much more than what is still pooled."""
        return self.size > max(COMPACT_MIN_BYTES, 2 * live_bytes)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class GroupCommit:
    """Appends to a :class:`Journal` from the event loop, sharing fsyncs between the
    submissions that wait at the same time. All journal I/O runs in one worker thread at a
    time, in the order it was asked for, so a rewrite never races an append.

    ``live_bytes`` says how many bytes are pooled (asked at every flush, so it must be cheap);
    ``live_raws`` gives the wire bytes of every transaction still pooled (asked on the event
    loop only just before a compaction).
    """

    def __init__(
        self,
        journal: Journal,
        live_bytes: Callable[[], int],
        live_raws: Callable[[], list[bytes]],
    ) -> None:
        self._journal = journal
        self._live_bytes = live_bytes
        self._live_raws = live_raws
        self._pending: list[bytes] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._task: asyncio.Task[None] | None = None

    async def append(self, raws: Sequence[bytes]) -> None:
        """Return once ``raws`` are on disk (an ``OSError`` from the disk is raised here)."""
        if not raws:
            return
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._pending.extend(raws)
        self._waiters.append(done)
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._flush())
        await done

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        while self._pending:
            batch, waiters = self._pending, self._waiters
            self._pending, self._waiters = [], []
            try:
                if self._journal.needs_compaction(self._live_bytes()):
                    # what is pooled now includes this batch, so the rewrite holds it too
                    live = self._live_raws()
                    await loop.run_in_executor(None, self._journal.rewrite, live)
                else:
                    await loop.run_in_executor(None, self._journal.append, batch)
            except OSError as exc:
                for w in waiters:
                    if not w.done():
                        w.set_exception(exc)
                continue
            for w in waiters:
                if not w.done():
                    w.set_result(None)

    async def drain(self) -> None:
        """Wait for the appends already asked for (at shutdown)."""
        if self._task is not None:
            await asyncio.shield(self._task)
