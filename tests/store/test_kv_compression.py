"""The state tree's column family is written without compression, every other with RocksDB's
Snappy; a database written under either setting opens and grows under the other (a node that
upgrades keeps its tables)."""

from __future__ import annotations

from pathlib import Path

import pytest

from citychain.store.kv import UNCOMPRESSED_COLUMN_FAMILIES, KVStore

TREE = "state_nodes"
OTHER = "state_latest"
#: Values Snappy shrinks to almost nothing: what a table file holds then says whether its
#: column family was compressed.
VALUES = {i.to_bytes(8, "big"): bytes(4096) for i in range(500)}
RAW_BYTES = sum(len(k) + len(v) for k, v in VALUES.items())


def _write(kv: KVStore, cf: str, values: dict[bytes, bytes]) -> None:
    batch = kv.batch()
    for key, value in values.items():
        batch.put(cf, key, value)
    kv.write(batch)
    kv.compact()  # flushes the memtable: the values are now in table files


def _table_bytes(path: Path, cf: str) -> int:
    with KVStore(path) as kv:
        _write(kv, cf, VALUES)
        return kv.approximate_size()


def test_the_tree_is_stored_uncompressed_and_the_rest_compressed(tmp_path: Path) -> None:
    assert TREE in UNCOMPRESSED_COLUMN_FAMILIES
    assert _table_bytes(tmp_path / "tree", TREE) >= RAW_BYTES
    assert _table_bytes(tmp_path / "other", OTHER) < RAW_BYTES // 10


@pytest.mark.parametrize("first_compressed", [True, False])
def test_a_database_written_one_way_opens_the_other(tmp_path: Path, first_compressed: bool) -> None:
    more = {b"more" + k: v for k, v in VALUES.items()}
    first = () if first_compressed else (TREE,)
    with KVStore(tmp_path, uncompressed_column_families=first) as kv:
        _write(kv, TREE, VALUES)
    with KVStore(tmp_path, uncompressed_column_families=(TREE,) if first_compressed else ()) as kv:
        assert {k: kv.get(TREE, k) for k in VALUES} == VALUES
        _write(kv, TREE, more)
        assert dict(kv.iterate(TREE)) == VALUES | more
