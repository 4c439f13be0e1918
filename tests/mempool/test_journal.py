"""The mempool journal: records survive, a torn tail is cut, appends share fsyncs."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from citychain.mempool import journal as jmod
from citychain.mempool.journal import GroupCommit, Journal, decode_records, encode_records

RECORDS = st.lists(st.binary(min_size=1, max_size=300), max_size=20)


@given(RECORDS)
def test_records_round_trip(raws: list[bytes]) -> None:
    data = encode_records(raws)
    assert decode_records(data) == (raws, len(data))


@given(RECORDS, st.data())
def test_a_torn_tail_keeps_every_whole_record_before_it(
    raws: list[bytes], data: st.DataObject
) -> None:
    full = encode_records(raws)
    cut = data.draw(st.integers(0, len(full)))
    got, good = decode_records(full[:cut])
    assert got == raws[: len(got)]  # a prefix, never anything else
    whole = max(k for k in range(len(raws) + 1) if len(encode_records(raws[:k])) <= cut)
    assert len(got) == whole  # every record that was whole before the cut
    assert good == len(encode_records(got)) <= cut


@given(st.lists(st.binary(min_size=1, max_size=100), min_size=1, max_size=10), st.data())
def test_a_flipped_bit_stops_the_reading_at_its_record(
    raws: list[bytes], data: st.DataObject
) -> None:
    full = bytearray(encode_records(raws))
    at = data.draw(st.integers(0, len(full) - 1))
    full[at] ^= 1 << data.draw(st.integers(0, 7))
    got, _ = decode_records(bytes(full))
    # every record read is one that was written, in order: corruption is never read as data
    assert got == raws[: len(got)]
    assert len(got) < len(raws)


def test_read_cuts_a_torn_tail_off_the_file(tmp_path: Path) -> None:
    path = tmp_path / "mempool.journal"
    j = Journal(path)
    j.append([b"one", b"two"])
    with open(path, "ab") as f:
        f.write(encode_records([b"three"])[:-1])  # a crash in the middle of an append
    j.close()
    j = Journal(path)
    assert j.read() == [b"one", b"two"]
    assert path.stat().st_size == len(encode_records([b"one", b"two"])) == j.size
    j.append([b"four"])
    j.close()
    assert Journal(path).read() == [b"one", b"two", b"four"]


def test_rewrite_replaces_the_file_atomically(tmp_path: Path) -> None:
    path = tmp_path / "mempool.journal"
    j = Journal(path)
    j.append([b"a", b"b", b"c"])
    j.rewrite([b"c"])
    j.append([b"d"])
    assert j.read() == [b"c", b"d"]
    assert not (tmp_path / "mempool.journal.tmp").exists()
    assert j.needs_compaction(0) is False  # small files are never compacted


def test_concurrent_appends_share_fsyncs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    j = Journal(tmp_path / "mempool.journal")
    fsyncs = []
    real = os.fsync
    monkeypatch.setattr(jmod.os, "fsync", lambda fd: (fsyncs.append(fd), real(fd))[1])
    group = GroupCommit(j, live_bytes=lambda: 0, live_raws=list)

    async def main() -> None:
        await asyncio.gather(*(group.append([bytes([i + 1]) * 10]) for i in range(100)))

    asyncio.run(main())
    assert sorted(j.read()) == sorted(bytes([i + 1]) * 10 for i in range(100))
    assert 1 <= len(fsyncs) < 100  # the first append's fsync, then the rest shared


def test_a_large_journal_is_compacted_to_what_is_pooled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jmod, "COMPACT_MIN_BYTES", 100)
    j = Journal(tmp_path / "mempool.journal")
    pooled: list[bytes] = []
    group = GroupCommit(j, live_bytes=lambda: sum(map(len, pooled)), live_raws=lambda: list(pooled))

    async def main() -> None:
        for i in range(30):
            raw = bytes([i + 1]) * 20
            pooled[:] = [raw]  # the one before was committed
            await group.append([raw])

    asyncio.run(main())
    kept = j.read()
    # compacted whenever it passed 100 bytes (four 28-byte records): never more than that
    assert kept[-1] == bytes([30]) * 20 and len(kept) <= 4
    assert j.size == 28 * len(kept)


def test_a_disk_error_reaches_the_waiting_submission(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    j = Journal(tmp_path / "mempool.journal")

    def broken(raws: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(j, "append", broken)
    group = GroupCommit(j, live_bytes=lambda: 0, live_raws=list)
    with pytest.raises(OSError, match="No space left"):
        asyncio.run(group.append([b"x"]))


# No deadline: each example fsyncs a file, and under the suite's load (two workers, nodes
# beside them) one fsync took 580 ms in a CI run: the disk's time, not the code's.
@settings(max_examples=20, deadline=None)
@given(RECORDS)
def test_what_was_appended_is_read_back(raws: list[bytes]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        j = Journal(Path(d) / "j")
        j.append(raws)
        j.close()
        assert Journal(Path(d) / "j").read() == raws
