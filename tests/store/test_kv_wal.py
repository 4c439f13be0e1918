"""Writes without the write-ahead log (``KVStore.write(wal=False)``), for what can be made
again (the services' off-chain indexes): read at once, kept by a clean close, lost by a
crash before their memtable is flushed; never a synced write."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from citychain.errors import InternalError
from citychain.store.kv import KVStore


def _write(kv: KVStore, key: bytes, *, wal: bool) -> None:
    batch = kv.batch()
    batch.put("indexes", key, b"v")
    kv.write(batch, sync=False, wal=wal)


def test_a_write_without_the_log_is_read_at_once_and_kept_by_a_clean_close(
    tmp_path: Path,
) -> None:
    kv = KVStore(tmp_path)
    _write(kv, b"k", wal=False)
    assert kv.get("indexes", b"k") == b"v"
    kv.close()
    kv = KVStore(tmp_path)
    try:
        assert kv.get("indexes", b"k") == b"v"
        with pytest.raises(InternalError, match="write-ahead log"):
            kv.write(kv.batch(), sync=True, wal=False)
    finally:
        kv.close()


def test_a_crash_loses_a_write_without_the_log_and_keeps_a_logged_one(tmp_path: Path) -> None:
    code = (
        "import os, sys;"
        "from citychain.store.kv import KVStore;"
        f"kv = KVStore({str(tmp_path)!r});"
        "b = kv.batch(); b.put('indexes', b'logged', b'v'); kv.write(b, sync=False);"
        "b = kv.batch(); b.put('indexes', b'unlogged', b'v'); kv.write(b, sync=False, wal=False);"
        "sys.stdout.flush(); os._exit(0)"  # no close: as a kill -9 leaves it
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    kv = KVStore(tmp_path)
    try:
        assert kv.get("indexes", b"logged") == b"v"
        assert kv.get("indexes", b"unlogged") is None
    finally:
        kv.close()
