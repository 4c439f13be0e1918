"""``[state] tree_blob_files``: a column family whose long values live in RocksDB's blob files
(BlobDB) reads as any other, and a database written either way opens the other way."""

from __future__ import annotations

from pathlib import Path

import pytest

from citychain.errors import InternalError
from citychain.store.kv import MIN_BLOB_BYTES, KVStore

CF = "state_nodes"


def _values() -> dict[bytes, bytes]:
    """Page-sized values, and short ones (a version's root record) that stay in the tree."""
    long = {i.to_bytes(8, "big"): bytes([i % 251]) * (MIN_BLOB_BYTES + i) for i in range(200)}
    short = {b"root" + i.to_bytes(4, "big"): bytes([i]) * 40 for i in range(20)}
    return long | short


def _write(kv: KVStore, values: dict[bytes, bytes]) -> None:
    batch = kv.batch()
    for key, value in values.items():
        batch.put(CF, key, value)
    kv.write(batch)
    kv.compact()  # flushes the memtable: the values are now in table and blob files


def _blob_files(path: Path) -> list[Path]:
    return sorted(path.glob("*.blob"))


def test_long_values_go_to_blob_files_and_read_back(tmp_path: Path) -> None:
    values = _values()
    with KVStore(tmp_path, blob_column_families=(CF,)) as kv:
        _write(kv, values)
        assert {k: kv.get(CF, k) for k in values} == values
        assert kv.multi_get(CF, list(values)) == list(values.values())
        assert dict(kv.iterate(CF)) == values
    assert _blob_files(tmp_path)


def test_without_the_option_no_blob_file_is_written(tmp_path: Path) -> None:
    with KVStore(tmp_path) as kv:
        _write(kv, _values())
    assert not _blob_files(tmp_path)


@pytest.mark.parametrize("first_with_blobs", [True, False])
def test_a_database_written_one_way_opens_the_other(tmp_path: Path, first_with_blobs: bool) -> None:
    values = _values()
    more = {b"more" + k: v for k, v in values.items()}
    blobs = (CF,)
    with KVStore(tmp_path, blob_column_families=blobs if first_with_blobs else ()) as kv:
        _write(kv, values)
    with KVStore(tmp_path, blob_column_families=() if first_with_blobs else blobs) as kv:
        assert {k: kv.get(CF, k) for k in values} == values
        _write(kv, more)
        assert dict(kv.iterate(CF)) == values | more
    assert _blob_files(tmp_path)


def test_blob_files_for_a_column_family_the_store_lacks_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InternalError, match="blob files asked for 'nodes'"):
        KVStore(tmp_path, blob_column_families=("nodes",))
