"""A database that cannot be opened is refused in one sentence naming its path, whatever
is in the way: a file where its directory should be, or a directory RocksDB cannot read."""

from __future__ import annotations

from pathlib import Path

import pytest

from citychain.errors import InternalError
from citychain.store.kv import KVStore


def test_a_file_in_the_place_of_the_database_is_named(tmp_path: Path) -> None:
    path = tmp_path / "data"
    path.write_bytes(b"not a database")
    with pytest.raises(InternalError, match=f"cannot open database at {path}: .*File exists"):
        KVStore(path)
    assert path.read_bytes() == b"not a database"  # nothing of it was touched


def test_a_damaged_database_is_named(tmp_path: Path) -> None:
    path = tmp_path / "data"
    KVStore(path).close()
    (path / "CURRENT").write_bytes(b"not a manifest name\n")
    with pytest.raises(InternalError, match=f"cannot open database at {path}: "):
        KVStore(path)
