"""Versions, pruning and restarts.

Pruning is checked exactly, white-box: after every block the stored pages are precisely the
pages reachable from the retained roots (nothing live deleted, nothing dead kept), and the
value history holds precisely what reads of retained versions need.
"""

from __future__ import annotations

import hashlib
import random
import struct
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from state_testlib import (
    DEEP_GROUP,
    apply,
    check_proof,
    commit_block,
    open_store,
    reference_root,
)

from citychain.state import StateDB
from citychain.state._db import _decode_entry, _esc, _root_key
from citychain.state._nodes import INNER, node_key, page_from_disk, slot_entry
from citychain.store.kv import KVStore

KEYS = [b"p%d" % i for i in range(60)] + DEEP_GROUP
VALUES = [b"x", b"y", b"z"]


def _reachable(kv: KVStore, version: int) -> set[bytes]:
    raw = kv.get("state_nodes", _root_key(version))
    assert raw is not None, f"root record of retained version {version} is missing"
    found: set[bytes] = set()

    def walk(entry: tuple[int, bytes, bytes, int], depth: int, prefix: int) -> None:
        if entry[0] != INNER:
            return
        nkey = node_key(entry[3], depth, prefix << (256 - 4 * depth))
        raw = kv.get("state_nodes", nkey)
        assert raw is not None, f"page {nkey.hex()} of version {version} was pruned"
        page = page_from_disk(raw, hashlib.sha256)
        assert page[32:64] == entry[1], "stored page does not hash to its parent's slot"
        found.add(nkey)
        for s in range(16):
            walk(slot_entry(page, s), depth + 1, (prefix << 4) | s)

    walk(_decode_entry(raw), 0, 0)
    return found


def _expected_history(
    snapshots: list[dict[bytes, bytes]], oldest: int
) -> set[tuple[bytes, int, bytes]]:
    """(key, version, value or b"" for a deletion) that reads of versions >= oldest need."""
    expected = set()
    keys = {k for snap in snapshots for k in snap}
    for key in keys:
        last_change = -1
        for version, snap in enumerate(snapshots):
            before = snapshots[version - 1].get(key) if version else None
            now = snap.get(key)
            if now != before:
                if version > oldest:
                    expected.add((key, version, now or b""))
                else:
                    last_change = version
        if last_change >= 0 and key in snapshots[oldest]:
            expected.add((key, last_change, snapshots[oldest][key]))
    return expected


def _stored_history(kv: KVStore) -> set[tuple[bytes, int, bytes]]:
    out = set()
    for hkey, value in kv.iterate("state_history"):
        enc, inv = hkey[:-8], struct.unpack(">Q", hkey[-8:])[0]
        key = enc[:-2].replace(b"\x00\xff", b"\x00")
        assert _esc(key) == enc
        out.add((key, 2**64 - 1 - inv, value))
    return out


writes_st = st.dictionaries(
    st.sampled_from(KEYS), st.one_of(st.none(), st.sampled_from(VALUES)), max_size=25
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(blocks=st.lists(writes_st, min_size=1, max_size=10), retain=st.sampled_from([1, 2, 3]))
def test_pruning_is_exact(blocks: list[dict[bytes, bytes | None]], retain: int) -> None:
    with open_store() as kv:
        db = StateDB(kv, retain_versions=retain, cache_nodes=0)
        model: dict[bytes, bytes] = {}
        snapshots = [dict(model)]
        for writes in blocks:
            commit_block(kv, db, writes)
            apply(model, writes)
            snapshots.append(dict(model))
            oldest = max(0, db.version - retain + 1)
            assert db.oldest_version == oldest
            live: set[bytes] = set()
            for version in range(oldest, db.version + 1):
                live |= _reachable(kv, version)
            stored = {k for k, _ in kv.iterate("state_nodes") if not k.startswith(b"\xff")}
            assert stored == live
            roots = [k for k, _ in kv.iterate("state_nodes", b"\xffr", b"\xffs")]
            assert roots == [_root_key(v) for v in range(oldest, db.version + 1)]
            assert _stored_history(kv) == _expected_history(snapshots, oldest)
            stale_versions = [struct.unpack(">Q", k)[0] for k, _ in kv.iterate("state_stale")]
            assert all(oldest < v <= db.version for v in stale_versions)
        for version in range(oldest, db.version + 1):
            assert db.root_at(version) == reference_root(snapshots[version])
            for key in KEYS[::7] + DEEP_GROUP[:2]:
                check_proof(db, snapshots[version], key, version)


def test_disk_use_stays_bounded_with_pruning() -> None:
    rng = random.Random(7)
    keys = [b"acct-%d" % i for i in range(400)]
    with open_store() as kv:
        db = StateDB(kv, retain_versions=2)
        commit_block(kv, db, {k: b"0" for k in keys})
        counts = []
        for block in range(40):
            commit_block(kv, db, {k: rng.randbytes(8) for k in rng.sample(keys, 100)})
            if block in (9, 39):
                counts.append(
                    [sum(1 for _ in kv.iterate(cf)) for cf in ("state_nodes", "state_history")]
                )
        # Same live state size, same retention: record counts do not grow with history.
        (nodes10, hist10), (nodes40, hist40) = counts
        assert nodes40 <= nodes10 * 1.2
        assert hist40 <= hist10 * 1.2
        assert hist40 <= len(keys) + 2 * 100


def test_reopen_restores_version_root_values_and_history(tmp_path: Path) -> None:
    rng = random.Random(8)
    model: dict[bytes, bytes] = {}
    roots = []
    with open_store(tmp_path) as kv:
        db = StateDB(kv, retain_versions=3)
        batch = kv.batch()
        db.init_genesis({b"genesis": b"g"}, batch)
        kv.write(batch)
        apply(model, {b"genesis": b"g"})
        roots.append(db.root)
        for _ in range(4):
            writes = {b"k%d" % rng.randrange(50): rng.randbytes(4) for _ in range(20)}
            roots.append(commit_block(kv, db, writes))
            apply(model, writes)
        previous = dict(model)
        last = {b"k1": None, b"new": b"n"}
        commit_block(kv, db, last)
        apply(model, last)
        roots.append(db.root)
    with open_store(tmp_path) as kv:
        db = StateDB(kv, retain_versions=3)
        assert (db.version, db.root, db.oldest_version) == (5, roots[5], 3)
        assert [db.root_at(v) for v in (3, 4, 5)] == roots[3:]
        assert list(db.iter_prefix(b"")) == sorted(model.items())
        for key in [b"k1", b"new", b"genesis", b"k7"]:
            assert db.get_at(key, 4) == previous.get(key)
            check_proof(db, model, key)
            check_proof(db, previous, key, 4)
        commit_block(kv, db, {b"after": b"reopen"})
        assert db.root == reference_root(model | {b"after": b"reopen"})


def test_a_prepared_but_unwritten_block_leaves_no_trace(tmp_path: Path) -> None:
    with open_store(tmp_path) as kv:
        db = StateDB(kv, retain_versions=1)
        commit_block(kv, db, {b"a": b"1", b"b": b"2"})
        root = db.root
        prepared = db.prepare({b"a": None, b"c": b"3"}, 2)
        db.commit(prepared, kv.batch())  # the batch is never written: a crash before the write
        assert (db.version, db.root) == (1, root)
    with open_store(tmp_path) as kv:
        db = StateDB(kv, retain_versions=1)
        assert (db.version, db.root) == (1, root)
        assert (db.get(b"a"), db.get(b"c")) == (b"1", None)
        check_proof(db, {b"a": b"1", b"b": b"2"}, b"a")
        assert commit_block(kv, db, {b"a": None, b"c": b"3"}) == prepared.root


def test_warm_cache_loads_the_live_tree_top_down(tmp_path: Path) -> None:
    rng = random.Random(9)
    writes = {b"w%d" % i: rng.randbytes(6) for i in range(3000)}
    with open_store(tmp_path) as kv:
        db = StateDB(kv, retain_versions=1)
        commit_block(kv, db, writes)
        commit_block(kv, db, {k: b"changed" for k in list(writes)[:500]})
        live = {k for k, _ in kv.iterate("state_nodes") if not k.startswith(b"\xff")}
        assert live == _reachable(kv, db.version)
    with open_store(tmp_path) as kv:
        assert StateDB(kv, cache_nodes=5).warm_cache() == 5
        assert StateDB(kv, cache_nodes=0).warm_cache() == 0
        db = StateDB(kv)
        assert db.warm_cache() == len(live)
        model = writes | {k: b"changed" for k in list(writes)[:500]}
        for key in [b"w1", b"w2999", b"absent"]:
            check_proof(db, model, key)
