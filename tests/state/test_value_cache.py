"""The latest values :meth:`StateDB.get` keeps in memory (``state/_values.py``): never older
than the store, bounded, and equal to what the store answers."""

from __future__ import annotations

import threading

import pytest
from state_testlib import commit_block, open_store

from citychain.errors import InvalidInput
from citychain.state import StateDB
from citychain.state._values import MAX_VALUE_BYTES, ValueCache


@pytest.mark.parametrize("new", [b"new", b"n" * (MAX_VALUE_BYTES + 1)])
def test_a_read_that_a_commit_overtakes_is_not_kept(new: bytes) -> None:
    # A reader (an admission check on another thread) reads the store, then a block commits
    # a new value before the reader can keep what it read: the cache must not keep the old
    # value, or every later read (execution included) would see it. Also when the new value
    # is one the cache does not keep (too large), so that no entry blocks the stale one.
    cache = ValueCache(1 << 20)
    store = {b"k": b"old"}
    reading, committed = threading.Event(), threading.Event()

    def slow_read(key: bytes) -> bytes | None:
        value = store.get(key)
        reading.set()
        committed.wait(5)
        return value

    seen: list[bytes | None] = []
    reader = threading.Thread(target=lambda: seen.append(cache.get(b"k", slow_read)))
    reader.start()
    assert reading.wait(5)
    store[b"k"] = new  # the block's batch on disk
    cache.committed([(b"k", new)])
    committed.set()
    reader.join(5)
    assert seen == [b"old"]  # what it read is what it got: as if just before the commit
    assert cache.get(b"k", store.get) == new
    if len(new) <= MAX_VALUE_BYTES:
        assert cache.get(b"k", lambda key: pytest.fail("read again")) == new


def test_absent_keys_and_deletions_are_kept_as_none() -> None:
    cache = ValueCache(1 << 20)
    reads: list[bytes] = []

    def read(key: bytes) -> bytes | None:
        reads.append(key)
        return None

    assert cache.get(b"a", read) is None and cache.get(b"a", read) is None
    assert reads == [b"a"]
    cache.committed([(b"a", b"1")])
    assert cache.get(b"a", read) == b"1"
    cache.committed([(b"a", None)])
    assert cache.get(b"a", read) is None and reads == [b"a"]


def test_the_bound_holds_and_large_values_are_not_kept() -> None:
    cache = ValueCache(4_000)
    for i in range(500):
        cache.committed([(b"key%d" % i, b"v" * 10)])
        assert cache.size_bytes <= 4_000
    assert 0 < len(cache) < 500
    assert cache.get(b"key499", lambda key: pytest.fail("evicted the newest")) == b"v" * 10
    big = ValueCache(1 << 30)
    big.committed([(b"doc", b"x" * (MAX_VALUE_BYTES + 1))])
    assert len(big) == 0 and big.get(b"doc", lambda key: b"from the store") == b"from the store"
    # A large value replacing a kept one drops the kept one.
    big.committed([(b"doc", b"small")])
    big.committed([(b"doc", b"x" * (MAX_VALUE_BYTES + 1))])
    assert big.get(b"doc", lambda key: b"from the store") == b"from the store"


def test_statedb_reads_follow_commits_from_other_threads() -> None:
    # Readers on two threads while blocks commit: once a block's commit returns, every read
    # gives its values; the cache and the store agree at the end.
    keys = [b"acct%d" % i for i in range(50)]
    with open_store() as kv:
        db = StateDB(kv, value_cache_bytes=1 << 20)
        batch = kv.batch()
        db.init_genesis({k: b"0" for k in keys}, batch)
        kv.write(batch)
        stop = threading.Event()

        def hammer() -> None:
            while not stop.is_set():
                for key in keys:
                    db.get(key)

        readers = [threading.Thread(target=hammer) for _ in range(2)]
        for t in readers:
            t.start()
        try:
            for height in range(1, 40):
                value = b"%d" % height
                commit_block(kv, db, {k: value for k in keys[height % 5 :: 5]})
                for key in keys[height % 5 :: 5]:
                    assert db.get(key) == value
        finally:
            stop.set()
            for t in readers:
                t.join(10)
        fresh = StateDB(kv, value_cache_bytes=0)
        for key in keys:
            assert db.get(key) == fresh.get(key) == kv.get("state_latest", key)


def test_a_negative_bound_is_refused() -> None:
    with open_store() as kv, pytest.raises(InvalidInput, match="value_cache_bytes"):
        StateDB(kv, value_cache_bytes=-1)
