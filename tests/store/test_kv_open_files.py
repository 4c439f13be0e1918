"""The node's database keeps a bounded number of table files open.

RocksDB's own default keeps every table file open for as long as the database is: a store
that grows takes descriptors without bound, from the same open-files limit consensus, p2p and
the API share. ``max_open_files`` bounds them (node.toml ``[state] max_open_files``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from citychain.errors import InternalError
from citychain.store.kv import COLUMN_FAMILIES, MIN_DB_OPEN_FILES, KVStore

#: Flushes per column family: below RocksDB's level-0 compaction trigger (4), so every flush
#: stays its own table file.
FLUSHES = 3


def _open_tables(path: Path) -> int:
    """Descriptors of this process open on table files of the database at ``path``."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(path)) and target.endswith(".sst"):
            count += 1
    return count


def _fill_and_read(path: Path, max_open_files: int) -> tuple[int, int]:
    """Table files written, and the most open at once while every key of each is read."""
    kv = KVStore(path, max_open_files=max_open_files)
    try:
        for cf in COLUMN_FAMILIES:
            for f in range(FLUSHES):
                batch = kv.batch()
                batch.put(cf, f"key-{f}".encode(), b"v" * 100)
                kv.write(batch)
                kv.flush()
        tables = len(list(path.glob("*.sst")))
        most = 0
        for cf in COLUMN_FAMILIES:
            for f in range(FLUSHES):
                assert kv.get(cf, f"key-{f}".encode()) == b"v" * 100
                most = max(most, _open_tables(path))
        return tables, most
    finally:
        kv.close()


def test_a_bounded_store_keeps_fewer_table_files_open_than_it_has(tmp_path: Path) -> None:
    tables, most = _fill_and_read(tmp_path / "bounded", MIN_DB_OPEN_FILES)
    assert tables == len(COLUMN_FAMILIES) * FLUSHES == 27
    assert 0 < most <= MIN_DB_OPEN_FILES, most
    # The same store with room for every file keeps them all open: the bound is what limits.
    tables, most = _fill_and_read(tmp_path / "roomy", 512)
    assert most == tables == 27


def test_a_bound_too_small_for_rocksdb_itself_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InternalError, match="max_open_files must be 16 or more, got 15"):
        KVStore(tmp_path, max_open_files=MIN_DB_OPEN_FILES - 1)
