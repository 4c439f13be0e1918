"""The consensus WAL: round trips, heights and segments, torn tails, corruption, a real kill -9."""

from __future__ import annotations

import logging
import os
import random
import signal
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from citychain.consensus import wal as wal_module
from citychain.consensus.wal import WAL, segment_name
from citychain.errors import ErrorCode, InternalError, InvalidInput, Unavailable

LOGGER = "citychain.consensus.wal"
PROPS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

records_st = st.lists(st.binary(max_size=300), min_size=1, max_size=12)


def frame_offsets(data: bytes) -> list[int]:
    """Start offset of every frame in a well-formed segment."""
    offsets, off = [], 0
    while off < len(data):
        offsets.append(off)
        (length,) = struct.unpack_from(">I", data, off)
        off += 8 + length
    assert off == len(data)
    return offsets


def segments(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob("wal-*.log"))


def filled(directory: Path, height: int, records: list[bytes]) -> Path:
    """A closed WAL in ``directory`` holding ``records`` for ``height``; its segment's path."""
    with WAL.open(directory) as wal:
        for r in records:
            wal.write(height, r)
    return directory / segment_name(height)


# --------------------------------------------------------------------------- round trips


def test_write_then_replay_round_trip(tmp_path: Path) -> None:
    records = [b"", b"proposal", bytes(range(256)) * 300, b"vote" * 10, b"\x00" * 70_000]
    wal = WAL.open(tmp_path)
    assert wal.last_end_height() == 0 and wal.records_for(1) == []
    for i, r in enumerate(records):
        (wal.write_sync if i % 2 else wal.write)(1, r)
    assert wal.records_for(1) == records  # visible before close (buffer handed to the OS)
    wal.close()
    wal.close()  # idempotent
    with WAL.open(tmp_path) as again:
        assert again.records_for(1) == records
        assert again.last_end_height() == 0


def test_reopening_continues_appending(tmp_path: Path) -> None:
    with WAL.open(tmp_path) as wal:
        wal.write_sync(3, b"a")
    with WAL.open(tmp_path) as wal:
        wal.write(3, b"b")
        with pytest.raises(InvalidInput) as exc:
            wal.write(4, b"c")  # the WAL is at height 3 until end_height(3)
        assert exc.value.code == ErrorCode.BAD_ARGUMENTS
    with WAL.open(tmp_path) as wal:
        assert wal.records_for(3) == [b"a", b"b"]
    assert segments(tmp_path) == [segment_name(3)]


def test_fresh_wal_starts_at_any_height(tmp_path: Path) -> None:
    with WAL.open(tmp_path) as wal:
        wal.write_sync(1000, b"x")
        assert wal.records_for(1000) == [b"x"] and wal.last_end_height() == 0


# --------------------------------------------------------------------------- heights


def test_end_height_separates_heights(tmp_path: Path) -> None:
    with WAL.open(tmp_path) as wal:
        wal.write(1, b"h1-a")
        wal.write(1, b"h1-b")
        wal.end_height(1)
        assert wal.last_end_height() == 1
        wal.write(2, b"h2-a")
        assert wal.records_for(2) == [b"h2-a"]
        assert wal.records_for(1) == [b"h1-a", b"h1-b"]
        with pytest.raises(InvalidInput) as exc:
            wal.write(1, b"late")
        assert exc.value.code == ErrorCode.BAD_ARGUMENTS
    with WAL.open(tmp_path) as wal:
        assert wal.last_end_height() == 1
        assert wal.records_for(2) == [b"h2-a"]
        wal.end_height(2)
    with WAL.open(tmp_path) as wal:
        assert wal.last_end_height() == 2 and wal.records_for(3) == []
        wal.write(3, b"h3")
        assert wal.records_for(3) == [b"h3"]


def test_old_segments_are_deleted(tmp_path: Path) -> None:
    with WAL.open(tmp_path, keep_heights=2) as wal:
        for h in range(1, 7):
            wal.write(h, b"r%d" % h)
            wal.end_height(h)
        assert segments(tmp_path) == [segment_name(h) for h in (5, 6, 7)]
        assert wal.records_for(4) == [] and wal.records_for(5) == [b"r5"]
    with WAL.open(tmp_path, keep_heights=1) as wal:
        assert wal.last_end_height() == 6
        wal.end_height(7)
        assert segments(tmp_path) == [segment_name(h) for h in (7, 8)]


def test_end_height_is_idempotent_may_skip_and_never_goes_back(tmp_path: Path) -> None:
    with WAL.open(tmp_path) as wal:
        wal.end_height(5)  # fresh node whose blocks up to 5 came from elsewhere
        wal.end_height(5)
        assert wal.last_end_height() == 5
        wal.write(6, b"six")
        for bad in (4, 0, -1):
            with pytest.raises(InvalidInput) as exc:
                wal.end_height(bad)
            assert exc.value.code == ErrorCode.BAD_ARGUMENTS
        wal.end_height(9)  # blocks 6..9 stored by block sync
        assert wal.last_end_height() == 9
        wal.write(10, b"ten")
    with WAL.open(tmp_path) as wal:
        assert wal.last_end_height() == 9
        assert wal.records_for(10) == [b"ten"]
        assert wal.records_for(6) == []  # abandoned, and older than keep_heights: deleted
    assert segments(tmp_path) == [segment_name(9), segment_name(10)]


def test_directory_is_fsynced_when_segments_come_and_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[Path] = []
    real = wal_module._fsync_dir

    def fsync_dir(directory: Path) -> None:
        synced.append(directory)
        real(directory)

    monkeypatch.setattr(wal_module, "_fsync_dir", fsync_dir)
    with WAL.open(tmp_path, keep_heights=1) as wal:
        wal.write(1, b"a")  # creates segment 1
        assert synced == [tmp_path]
        wal.end_height(1)  # creates segment 2
        assert synced == [tmp_path] * 2
        wal.end_height(2)  # creates segment 3, deletes segment 1
        assert synced == [tmp_path] * 4
        assert segments(tmp_path) == [segment_name(2), segment_name(3)]


def test_oversize_record_refused(tmp_path: Path) -> None:
    with WAL.open(tmp_path, max_record_bytes=100) as wal:
        wal.write(1, b"x" * 100)
        with pytest.raises(InvalidInput) as exc:
            wal.write(1, b"x" * 101)
        assert exc.value.code == ErrorCode.TOO_LARGE
        assert "101 bytes" in exc.value.message
        assert wal.records_for(1) == [b"x" * 100]


@pytest.mark.parametrize(
    "kwargs", [{"max_record_bytes": 0}, {"max_record_bytes": 2**40}, {"keep_heights": 0}]
)
def test_bad_open_arguments(tmp_path: Path, kwargs: dict[str, int]) -> None:
    with pytest.raises(InvalidInput) as exc:
        WAL.open(tmp_path, **kwargs)
    assert exc.value.code == ErrorCode.BAD_ARGUMENTS


def test_bad_heights_refused(tmp_path: Path) -> None:
    with WAL.open(tmp_path) as wal:
        for bad in (0, -3, True, 2**63):
            with pytest.raises(InvalidInput):
                wal.write(bad, b"x")


def test_one_writer_at_a_time(tmp_path: Path) -> None:
    wal = WAL.open(tmp_path)
    with pytest.raises(Unavailable, match="another process"):
        WAL.open(tmp_path)
    wal.close()
    WAL.open(tmp_path).close()


def test_closed_wal_refuses_use(tmp_path: Path) -> None:
    wal = WAL.open(tmp_path)
    wal.close()
    with pytest.raises(InternalError, match="closed"):
        wal.write(1, b"x")


def test_failed_write_stops_the_wal_and_restart_recovers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wal = WAL.open(tmp_path)
    wal.write_sync(1, b"durable")
    real_write = os.write

    def half_then_enospc(fd: int, data: bytes | memoryview) -> int:
        if len(data) > 8:  # write part of the frame, then the disk is "full"
            monkeypatch.setattr(os, "write", _raise_enospc)
            return real_write(fd, bytes(data)[:5])
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", half_then_enospc)
    with pytest.raises(InternalError, match="restart the node"):
        wal.write_sync(1, b"lost record")
    monkeypatch.setattr(os, "write", real_write)
    with pytest.raises(InternalError, match="takes no more records"):
        wal.write(1, b"after")
    wal.close()
    with WAL.open(tmp_path) as again:  # the half frame is a torn tail
        assert again.records_for(1) == [b"durable"]


def _raise_enospc(fd: int, data: bytes | memoryview) -> int:
    raise OSError(28, "No space left on device")


# --------------------------------------------------------------------------- torn tails


def test_torn_last_record_truncated_at_every_offset(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    records = [b"first", b"second" * 5, b"the last one, cut anywhere" * 2]
    path = filled(tmp_path, 7, records)
    data = path.read_bytes()
    start = frame_offsets(data)[-1]
    for cut in range(start, len(data)):
        path.write_bytes(data[:cut])
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger=LOGGER), WAL.open(tmp_path) as wal:
            assert wal.records_for(7) == records[:-1]
            wal.write_sync(7, b"after the crash")
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        if cut == start:
            assert warnings == []  # a clean end: nothing torn
        else:
            assert len(warnings) == 1
            assert str(path) in warnings[0] and f"byte offset {start}" in warnings[0]
        with WAL.open(tmp_path) as wal:
            assert wal.records_for(7) == [*records[:-1], b"after the crash"]


def test_checksum_mismatch_in_last_record_truncated(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = filled(tmp_path, 2, [b"a", b"b", b"c" * 40])
    data = bytearray(path.read_bytes())
    start = frame_offsets(bytes(data))[-1]
    data[-3] ^= 0x10
    path.write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING, logger=LOGGER), WAL.open(tmp_path) as wal:
        assert wal.records_for(2) == [b"a", b"b"]
    assert f"byte offset {start}" in caplog.text and "checksum" in caplog.text
    assert path.stat().st_size == start


def test_zero_filled_tail_truncated(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = filled(tmp_path, 2, [b"a", b"b"])
    size = path.stat().st_size
    with open(path, "ab") as f:
        f.write(b"\x00" * 4096)  # size updated, data blocks never written (power cut)
    with caplog.at_level(logging.WARNING, logger=LOGGER), WAL.open(tmp_path) as wal:
        assert wal.records_for(2) == [b"a", b"b"]
    assert f"byte offset {size}" in caplog.text
    assert path.stat().st_size == size


@PROPS
@given(records_st, st.data())
def test_a_cut_anywhere_keeps_exactly_the_whole_frames_before_it(
    records: list[bytes], data: st.DataObject
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        path = filled(directory, 1, records)
        raw = path.read_bytes()
        cut = data.draw(st.integers(0, len(raw)), label="cut")
        path.write_bytes(raw[:cut])
        whole = sum(1 for off in [*frame_offsets(raw)[1:], len(raw)] if off <= cut)
        with WAL.open(directory) as wal:
            assert wal.records_for(1) == records[:whole]


@PROPS
@given(records_st, st.data())
def test_a_flipped_byte_is_never_replayed(records: list[bytes], data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        path = filled(directory, 1, records)
        raw = bytearray(path.read_bytes())
        pos = data.draw(st.integers(0, len(raw) - 1), label="pos")
        raw[pos] ^= data.draw(st.integers(1, 255), label="xor")
        path.write_bytes(bytes(raw))
        try:
            with WAL.open(directory) as wal:
                got = wal.records_for(1)
        except InternalError as exc:
            assert exc.code == ErrorCode.WAL_CORRUPT
        else:  # only a torn-looking tail may be dropped; nothing damaged comes back
            assert got == records[: len(got)] and len(got) < len(records)


# --------------------------------------------------------------------------- corruption


def test_corruption_in_the_middle_refused_with_a_precise_message(tmp_path: Path) -> None:
    path = filled(tmp_path, 4, [b"one", b"two", b"three", b"four"])
    data = bytearray(path.read_bytes())
    second = frame_offsets(bytes(data))[1]
    data[second + 9] ^= 0x01  # a payload byte of the second record
    path.write_bytes(bytes(data))
    with pytest.raises(InternalError) as exc:
        WAL.open(tmp_path)
    err = exc.value
    assert err.code == ErrorCode.WAL_CORRUPT
    assert str(path) in err.message and f"byte offset {second}" in err.message
    assert "checksum mismatch" in err.message
    assert f"truncate -s {second} {path}" in err.message
    assert path.read_bytes() == bytes(data)  # left untouched for the operator
    WAL.open(tmp_path / "other").close()  # the lock was released on the error path
    with pytest.raises(InternalError):
        WAL.open(tmp_path)


def test_impossible_length_in_the_middle_refused(tmp_path: Path) -> None:
    path = filled(tmp_path, 4, [b"one", b"two", b"three"])
    data = bytearray(path.read_bytes())
    data[0:4] = (0).to_bytes(4, "big")
    path.write_bytes(bytes(data))
    with pytest.raises(InternalError, match="impossible record length 0") as exc:
        WAL.open(tmp_path)
    assert exc.value.code == ErrorCode.WAL_CORRUPT


def test_damage_in_an_older_segment_is_corruption_even_at_its_end(tmp_path: Path) -> None:
    with WAL.open(tmp_path) as wal:
        wal.write(1, b"a")
        wal.end_height(1)
        wal.write(2, b"b")
    old = tmp_path / segment_name(1)
    data = bytearray(old.read_bytes())
    data[-1] ^= 0xFF  # the EndHeight marker, the last frame of a segment fsynced long ago
    old.write_bytes(bytes(data))
    with pytest.raises(InternalError) as exc:
        WAL.open(tmp_path)
    assert exc.value.code == ErrorCode.WAL_CORRUPT and str(old) in exc.value.message


def _frame(payload: bytes) -> bytes:
    return struct.pack(">II", len(payload), zlib.crc32(payload)) + payload


@pytest.mark.parametrize(
    ("tail", "reason"),
    [
        (_frame(b"\x07junk"), "unknown record kind 0x07"),
        (_frame(b"\x02" + (3).to_bytes(8, "big")), "EndHeight marker for 3 in the segment of 5"),
        (_frame(b"\x02\x05"), "EndHeight marker of 1 bytes"),
    ],
)
def test_well_checksummed_but_invalid_frames_are_corruption(
    tmp_path: Path, tail: bytes, reason: str
) -> None:
    path = filled(tmp_path, 5, [b"ok"])
    with open(path, "ab") as f:
        f.write(tail)
    with pytest.raises(InternalError, match=reason) as exc:
        WAL.open(tmp_path)
    assert exc.value.code == ErrorCode.WAL_CORRUPT


def test_record_after_end_height_marker_is_corruption(tmp_path: Path) -> None:
    with WAL.open(tmp_path) as wal:
        wal.write(1, b"a")
        wal.end_height(1)
    with open(tmp_path / segment_name(1), "ab") as f:
        f.write(_frame(b"\x01late"))
    with pytest.raises(InternalError, match=r"after the EndHeight\(1\) marker"):
        WAL.open(tmp_path)


# --------------------------------------------------------------------------- kill -9

CHILD = r"""
import sys
from pathlib import Path

from citychain.consensus.wal import WAL

PER_HEIGHT = 40


def record(h, i):
    size = 150_000 if i % 13 == 5 else (i * 7919) % 3000
    return b"%d:%d:" % (h, i) + bytes([i % 251]) * size


wal = WAL.open(Path(sys.argv[1]))
h = wal.last_end_height() + 1
i = len(wal.records_for(h))
out = sys.stdout
while True:
    wal.write_sync(h, record(h, i))
    out.write(f"W {h} {i}\n")
    out.flush()
    i += 1
    if i == PER_HEIGHT:
        wal.end_height(h)
        out.write(f"E {h}\n")
        out.flush()
        h, i = h + 1, 0
"""


def child_record(h: int, i: int) -> bytes:
    size = 150_000 if i % 13 == 5 else (i * 7919) % 3000
    return b"%d:%d:" % (h, i) + bytes([i % 251]) * size


@pytest.mark.slow
def test_sigkill_while_writing_loses_no_synced_record(tmp_path: Path) -> None:
    directory = tmp_path / "wal"
    rng = random.Random(20240611)
    acked_records: dict[int, int] = {}  # height -> records whose write_sync returned
    acked_end = 0
    for _ in range(5):
        with open(tmp_path / "child.err", "ab") as err:
            proc = subprocess.Popen(
                [sys.executable, "-c", CHILD, str(directory)], stdout=subprocess.PIPE, stderr=err
            )
        assert proc.stdout is not None
        try:
            for _ in range(rng.randint(15, 90)):
                line = proc.stdout.readline().decode()
                assert line, (tmp_path / "child.err").read_text()
                kind, *nums = line.split()
                if kind == "W":
                    h, i = map(int, nums)
                    acked_records[h] = max(acked_records.get(h, 0), i + 1)
                else:
                    acked_end = max(acked_end, int(nums[0]))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            proc.stdout.close()
        assert proc.returncode == -signal.SIGKILL

        with WAL.open(directory) as wal:
            last_end = wal.last_end_height()
            assert last_end >= acked_end
            current = last_end + 1
            got = wal.records_for(current)
            assert got == [child_record(current, i) for i in range(len(got))]
            assert len(got) >= acked_records.get(current, 0)
            for h in (last_end, last_end - 1):  # decided heights still kept: complete
                if h >= 1:
                    assert wal.records_for(h) == [child_record(h, i) for i in range(40)]
