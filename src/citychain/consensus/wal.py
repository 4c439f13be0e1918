"""The consensus write-ahead log (WAL): every consensus input, on disk before it is handled.

Theory of operation
-------------------
The Tendermint driver appends every input of the current height (a received proposal or
vote, an expired timeout, its own proposals and votes) with :meth:`WAL.write` *before*
handling it, and calls :meth:`WAL.flush_sync` (or uses :meth:`WAL.write_sync`) before any of
its own signed messages leave the node. After a crash it replays :meth:`WAL.records_for` of
the undecided height through the same code path, so it neither forgets its lock nor sends a
vote that contradicts one it already sent (research notes 1.5, pitfalls 5-6). When a height
is decided and its block is stored, :meth:`WAL.end_height` writes a durable EndHeight marker;
that marker is the "block stored" boundary of the restart handshake (pitfall 7).

Files. One segment per height, ``wal-<height, 12 digits>.log``, holding the records written
for that height and, once it is decided, an EndHeight marker as its last record. Truncating
old heights is deleting whole files (``keep_heights`` decided heights are kept next to the
current one); creating or deleting a segment is followed by an fsync of the directory so the
change survives a power cut. A ``wal.lock`` file is ``flock``-ed while a WAL is open: two
processes appending to one WAL would interleave their records.

Frames. Every record is ``[u32 length][u32 crc][payload]`` (big-endian), where ``payload`` is
one kind byte followed by the body: ``0x01`` + the caller's opaque bytes, or ``0x02`` + u64
height for the WAL-internal EndHeight marker. ``length`` counts the payload; ``crc`` is
:func:`zlib.crc32` (IEEE 802.3 polynomial) of the payload. Why not CRC-32C as in CometBFT:
zlib's CRC is in the standard library and runs in C, while CRC-32C needs a third-party
package; for what the checksum is for here (spotting a torn write or bit rot in a local file
that no other implementation reads) the two are equivalent: both catch every burst error of
up to 32 bits and all but ~2^-32 of the rest.

Durability. :meth:`WAL.write` is a buffered append: a kill -9 or power cut may lose it (fine
for a peer's message, which peers gossip again). :meth:`WAL.write_sync`,
:meth:`WAL.flush_sync`, :meth:`WAL.end_height` and :meth:`WAL.close` return only after the
data is on disk (``fdatasync``: appends update the size, which fdatasync does flush).
If the operating system refuses a write or a sync, the WAL stops taking data (the tail may
hold half a frame, and appending after it would turn a torn tail into corruption): restart
the node, and opening truncates the torn tail.

Recovery on open. A crash mid-write leaves a *torn tail* in the newest segment: a partial
frame, a last frame whose checksum does not match, or a run of zero bytes (file size updated,
data blocks not written). It is truncated, with a WARNING naming the file and offset. Any
other bad frame, with good data after it, or in an older segment (segments are fsynced before
the next one is started), is corruption: :meth:`WAL.open` raises :class:`InternalError` with
code ``wal_corrupt`` naming the file, the offset and what to do, and never silently drops
durable records. One case cannot be told apart from a torn write: a bit flip in the *length*
field of a frame in the newest segment that makes the frame end past the end of the file;
the records after it are then truncated as a torn tail. That loses at most records of the
undecided height, and the signer (:mod:`citychain.consensus.privval`) still refuses to sign
anything that contradicts what this node signed before.

Heights. A fresh WAL accepts its first record for any height (a node may start consensus at
height > 1 after state sync). After that, records are accepted only for the current height:
the height after the last EndHeight, or the height of the records already written. Heights
stored by block sync rather than decided here are marked with ``end_height(stored_height)``,
which may skip heights. The WAL is not thread-safe: one driver owns it.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Final

from citychain.consensus._durable import fsync_dir as _fsync_dir
from citychain.errors import ErrorCode, InternalError, InvalidInput, Unavailable

log = logging.getLogger(__name__)

#: No record is ever larger than this, whatever ``max_record_bytes`` says. Reading checks
#: against this fixed bound, so lowering ``max_record_bytes`` never makes old WALs unreadable.
HARD_MAX_RECORD_BYTES: Final = 256 * 1024 * 1024

_HEADER: Final = struct.Struct(">II")  # payload length, crc32 of the payload
_HEIGHT: Final = struct.Struct(">Q")
_KIND_DATA: Final = b"\x01"
_KIND_END_HEIGHT: Final = b"\x02"
_MAX_PAYLOAD: Final = HARD_MAX_RECORD_BYTES + 1
_SEGMENT_RE: Final = re.compile(r"^wal-(\d{12,})\.log$")
_LOCK_NAME: Final = "wal.lock"
_BUFFER_BYTES: Final = 64 * 1024  # buffered frames are handed to the OS beyond this
_MAX_HEIGHT: Final = 2**63 - 1


def segment_name(height: int) -> str:
    """The file name of the segment that holds the records of ``height``."""
    return f"wal-{height:012d}.log"


def _datasync(fd: int) -> None:
    sync = getattr(os, "fdatasync", os.fsync)  # macOS has no fdatasync
    sync(fd)


@dataclass(frozen=True, slots=True)
class _Defect:
    offset: int
    reason: str
    torn: bool  # could be what a crash mid-write leaves at the end of the newest segment


@dataclass(frozen=True, slots=True)
class _Segment:
    records: list[bytes]
    ended: bool  # its last record is EndHeight(its height)
    defect: _Defect | None  # the first bad frame; the frames before it are good


def _only_zeros(data: bytes, start: int) -> bool:
    return not data[start:].strip(b"\x00")


def _parse(data: bytes, height: int) -> _Segment:
    """Read the frames of one segment, stopping at the first bad one."""
    records: list[bytes] = []
    ended = False
    off, size = 0, len(data)

    def stop(reason: str, torn: bool) -> _Segment:
        return _Segment(records, ended, _Defect(off, reason, torn))

    while off < size:
        if size - off < _HEADER.size:
            return stop(f"a partial frame header ({size - off} of {_HEADER.size} bytes)", True)
        length, crc = _HEADER.unpack_from(data, off)
        end = off + _HEADER.size + length
        if length == 0 or length > _MAX_PAYLOAD:
            return stop(f"an impossible record length {length}", _only_zeros(data, off))
        if end > size:
            return stop(
                f"a record of {length} bytes cut off after {size - off - _HEADER.size}", True
            )
        payload = data[off + _HEADER.size : end]
        if zlib.crc32(payload) != crc:
            return stop("a checksum mismatch", end == size or _only_zeros(data, end))
        if ended:
            return stop(f"a record after the EndHeight({height}) marker", False)
        kind = payload[:1]
        if kind == _KIND_DATA:
            records.append(payload[1:])
        elif kind == _KIND_END_HEIGHT:
            body = payload[1:]
            if len(body) != _HEIGHT.size:
                return stop(f"an EndHeight marker of {len(body)} bytes instead of 8", False)
            marked = _HEIGHT.unpack(body)[0]
            if marked != height:
                return stop(f"an EndHeight marker for {marked} in the segment of {height}", False)
            ended = True
        else:
            return stop(f"an unknown record kind 0x{payload[0]:02x}", False)
        off = end
    return _Segment(records, ended, None)


def _corrupt(path: Path, size: int, defect: _Defect) -> InternalError:
    return InternalError(
        f"consensus WAL segment {path} is corrupt at byte offset {defect.offset}: "
        f"{defect.reason}, with {size - defect.offset} bytes from there to the end of the file. "
        "That is not what a crash mid-write leaves, so the node refuses to replay it (it could "
        "forget votes it has already sent). Stop the node and copy the WAL directory aside for "
        "analysis. Then restore it from a backup, or keep the records before the damage with "
        f"`truncate -s {defect.offset} {path}` and restart: the node re-joins the height, and "
        "its signer still refuses to sign anything contradicting what it signed before.",
        ErrorCode.WAL_CORRUPT,
    )


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InternalError(f"consensus WAL: cannot read {path}: {exc}") from exc


def _check_height(height: int, what: str) -> None:
    if type(height) is not int or not 1 <= height <= _MAX_HEIGHT:
        raise InvalidInput(
            f"{what}: height must be an integer from 1 to 2^63-1, got {height!r}",
            ErrorCode.BAD_ARGUMENTS,
        )


class WAL:
    """An open consensus write-ahead log in one directory. Open it with :meth:`WAL.open`."""

    def __init__(
        self,
        directory: Path,
        lock_fd: int,
        segments: list[int],
        last_end: int,
        max_record_bytes: int,
        keep_heights: int,
    ) -> None:
        """Internal: use :meth:`WAL.open`, which recovers the directory first."""
        self._dir = directory
        self._lock_fd: int | None = lock_fd
        self._segments = segments  # heights with a segment file, ascending
        self._last_end = last_end
        self._max_record_bytes = max_record_bytes
        self._keep_heights = keep_heights
        self._height: int | None = None  # the height the open segment belongs to
        self._fd: int | None = None  # the open segment, O_APPEND
        self._buf = bytearray()  # frames written but not yet handed to the OS
        self._unsynced = False  # frames handed to the OS but not yet fsynced
        self._broken: str | None = None

    # ----------------------------------------------------------------------------- opening

    @classmethod
    def open(
        cls, directory: Path, *, max_record_bytes: int = 8 * 1024 * 1024, keep_heights: int = 2
    ) -> WAL:
        """Open (creating if needed) the WAL in ``directory``, truncating a torn tail.

        Raises :class:`InternalError` (``wal_corrupt``) if a segment is damaged other than by
        a crash mid-write, and :class:`Unavailable` if another process has it open.
        """
        if not 1 <= max_record_bytes <= HARD_MAX_RECORD_BYTES:
            raise InvalidInput(
                f"max_record_bytes must be from 1 to {HARD_MAX_RECORD_BYTES}, "
                f"got {max_record_bytes}",
                ErrorCode.BAD_ARGUMENTS,
            )
        if keep_heights < 1:
            raise InvalidInput(
                "keep_heights must be at least 1 (the last EndHeight marker must be kept), "
                f"got {keep_heights}",
                ErrorCode.BAD_ARGUMENTS,
            )
        directory = Path(directory)
        try:
            if not directory.is_dir():
                directory.mkdir(parents=True)
                _fsync_dir(directory.parent)
            lock_fd = cls._lock(directory)
        except OSError as exc:
            raise InternalError(f"cannot open the consensus WAL in {directory}: {exc}") from exc
        try:
            wal = cls(directory, lock_fd, [], 0, max_record_bytes, keep_heights)
            wal._recover()
        except BaseException as exc:
            os.close(lock_fd)
            if isinstance(exc, OSError):
                raise InternalError(
                    f"cannot recover the consensus WAL in {directory}: {exc}"
                ) from exc
            raise
        return wal

    @staticmethod
    def _lock(directory: Path) -> int:
        fd = os.open(directory / _LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise Unavailable(
                f"the consensus WAL in {directory} is open in another process (or another WAL "
                "object): two writers would interleave their records. Stop the other node "
                "process that uses this home directory."
            ) from None
        return fd

    def _recover(self) -> None:
        heights = sorted(
            int(m.group(1)) for p in self._dir.iterdir() if (m := _SEGMENT_RE.match(p.name))
        )
        for i, height in enumerate(heights):
            path = self._path(height)
            data = _read(path)
            segment = _parse(data, height)
            defect = segment.defect
            if defect is not None:
                if i != len(heights) - 1 or not defect.torn:
                    raise _corrupt(path, len(data), defect)
                log.warning(
                    "consensus WAL: truncating the torn tail of %s at byte offset %d (%s; %d "
                    "bytes dropped). This is what a crash in the middle of a write leaves.",
                    path,
                    defect.offset,
                    defect.reason,
                    len(data) - defect.offset,
                )
                try:
                    with open(path, "r+b") as f:
                        f.truncate(defect.offset)
                        os.fsync(f.fileno())
                except OSError as exc:
                    raise InternalError(
                        f"consensus WAL: cannot truncate the torn tail of {path}: {exc}"
                    ) from exc
            if segment.ended:
                self._last_end = height
        self._segments = heights
        if heights:
            newest = heights[-1]
            self._start_segment(newest + 1 if newest == self._last_end else newest)

    # ----------------------------------------------------------------------------- writing

    def write(self, height: int, record: bytes) -> None:
        """Append ``record`` for ``height`` (buffered: durable after the next sync)."""
        self._check_usable()
        _check_height(height, "WAL.write")
        if len(record) > self._max_record_bytes:
            raise InvalidInput(
                f"WAL record of {len(record)} bytes exceeds the limit of "
                f"{self._max_record_bytes} bytes",
                ErrorCode.TOO_LARGE,
            )
        if self._height is None:  # a fresh WAL: the first record names the height
            self._start_segment(height)
        elif height != self._height:
            raise InvalidInput(
                f"WAL.write for height {height}, but the WAL is at height {self._height} "
                f"(last EndHeight: {self._last_end}); heights decided or stored meanwhile must "
                "be marked with end_height first",
                ErrorCode.BAD_ARGUMENTS,
            )
        self._append(_KIND_DATA, record)

    def write_sync(self, height: int, record: bytes) -> None:
        """Append ``record`` for ``height`` and return once it (and all before it) is durable."""
        self.write(height, record)
        self.flush_sync()

    def flush_sync(self) -> None:
        """Make every record written so far durable."""
        self._check_usable()
        self._drain()
        if self._fd is None or not self._unsynced:
            return
        try:
            _datasync(self._fd)
        except OSError as exc:
            raise self._fail("fsync", exc) from exc
        self._unsynced = False

    def end_height(self, height: int) -> None:
        """Durably mark ``height`` decided (its block stored); start the segment of height+1.

        Idempotent for the last marked height. ``height`` may skip ahead of the current height
        (heights stored by block sync); it may not go back below records already written.
        """
        self._check_usable()
        _check_height(height, "WAL.end_height")
        if height == self._last_end:
            return
        current = self._height
        if height < self._last_end or (current is not None and height < current):
            raise InvalidInput(
                f"WAL.end_height({height}) goes back: the WAL is at height {current} "
                f"(last EndHeight: {self._last_end})",
                ErrorCode.BAD_ARGUMENTS,
            )
        if current != height:
            self.flush_sync()  # an older segment must be complete before a newer one exists
            self._start_segment(height)
        self._append(_KIND_END_HEIGHT, _HEIGHT.pack(height))
        self.flush_sync()
        self._last_end = height
        self._start_segment(height + 1)
        self._prune()

    # ----------------------------------------------------------------------------- reading

    def last_end_height(self) -> int:
        """The highest height marked with :meth:`end_height`, or 0 if none."""
        return self._last_end

    def records_for(self, height: int) -> list[bytes]:
        """The records written for ``height`` (after EndHeight(height-1)), in write order.

        Empty if nothing was written for it or its segment has been deleted.
        """
        self._check_usable()
        if height not in self._segments:
            return []
        if height == self._height:
            self._drain()  # to the OS, so reading the file sees it
        path = self._path(height)
        data = _read(path)
        segment = _parse(data, height)
        if segment.defect is not None:
            raise _corrupt(path, len(data), segment.defect)
        return segment.records

    # ----------------------------------------------------------------------------- closing

    def close(self) -> None:
        """Make everything durable, close the files and release the lock. Idempotent."""
        if self._lock_fd is None:
            return
        try:
            if self._broken is None:
                self.flush_sync()
        finally:
            self._close_file()
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> WAL:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"WAL({str(self._dir)!r}, height={self._height}, last_end={self._last_end})"

    # ----------------------------------------------------------------------------- internals

    def _path(self, height: int) -> Path:
        return self._dir / segment_name(height)

    def _check_usable(self) -> None:
        if self._lock_fd is None:
            raise InternalError(f"the consensus WAL in {self._dir} is closed")
        if self._broken is not None:
            raise InternalError(self._broken)

    def _append(self, kind: bytes, body: bytes) -> None:
        buf = self._buf
        buf += _HEADER.pack(len(body) + 1, zlib.crc32(body, zlib.crc32(kind)))
        buf += kind
        buf += body
        if len(buf) >= _BUFFER_BYTES:
            self._drain()

    def _drain(self) -> None:
        """Hand the buffered frames to the OS (whole: a short write is continued)."""
        if not self._buf:
            return
        assert self._fd is not None
        pending, self._buf = self._buf, bytearray()
        written = 0
        try:
            with memoryview(pending) as view:
                while written < len(view):
                    written += os.write(self._fd, view[written:])
        except OSError as exc:
            raise self._fail("append to its segment", exc) from exc
        self._unsynced = True

    def _start_segment(self, height: int) -> None:
        """Make the segment of ``height`` the open one, creating its file if needed."""
        assert not self._buf and not self._unsynced, "sync before switching segments"
        self._close_file()
        path = self._path(height)
        created = not path.exists()
        try:
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            if created:
                _fsync_dir(self._dir)
        except OSError as exc:
            raise self._fail(f"create segment {path.name}", exc) from exc
        self._height = height
        if height not in self._segments:
            self._segments.append(height)
            self._segments.sort()

    def _prune(self) -> None:
        oldest_kept = self._last_end - self._keep_heights + 1
        doomed = [h for h in self._segments if h < oldest_kept]
        if not doomed:
            return
        try:
            for h in doomed:
                self._path(h).unlink(missing_ok=True)
                self._segments.remove(h)
            _fsync_dir(self._dir)
        except OSError as exc:  # harmless for correctness: retried at the next end_height
            log.warning("consensus WAL: could not delete old segments in %s: %s", self._dir, exc)

    def _close_file(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):  # close(2) errors: nothing left to do
                os.close(self._fd)
            self._fd = None

    def _fail(self, what: str, exc: OSError) -> InternalError:
        self._broken = (
            f"the consensus WAL in {self._dir} failed to {what} ({exc}) and takes no more "
            "records; restart the node (opening the WAL truncates a torn tail)"
        )
        self._buf.clear()  # never write the rest of a frame after a failed part of it
        self._close_file()
        return InternalError(self._broken)
