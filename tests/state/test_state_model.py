"""StateDB against a plain dict: random blocks of inserts, updates and deletes.

After every block the latest reads, the root (against a from-scratch reference) and ICS-23
proofs must match the model; at the end every retained version must still answer reads and
proofs as it did when it was the latest, and pruned versions must refuse.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from state_testlib import (
    AWKWARD_KEYS,
    DEEP_GROUP,
    DEEP_PAIR,
    apply,
    check_proof,
    commit_block,
    open_store,
    reference_root,
)

from citychain.errors import ErrorCode, NotFound
from citychain.state import StateDB

KEYS = [b"k%d" % i for i in range(40)] + DEEP_GROUP + DEEP_PAIR + AWKWARD_KEYS
ABSENT = [b"never%d" % i for i in range(4)]
# Few values, so values often return to old ones (and roots to old roots).
VALUES = [b"v0", b"v1", b"\x00", b"a much longer value " * 4]

writes_st = st.dictionaries(
    st.sampled_from(KEYS),
    st.one_of(st.none(), st.sampled_from(VALUES)),
    max_size=30,
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    genesis=writes_st,
    blocks=st.lists(writes_st, min_size=1, max_size=7),
    retain=st.sampled_from([None, 1, 2, 3]),
    # The latest values kept in memory: none, a few (evicted as blocks go), all.
    value_cache=st.sampled_from([0, 900, 1 << 20]),
)
def test_blocks_match_a_dict_model(
    genesis: dict[bytes, bytes | None],
    blocks: list[dict[bytes, bytes | None]],
    retain: int | None,
    value_cache: int,
) -> None:
    with open_store() as kv:
        db = StateDB(kv, retain_versions=retain, cache_nodes=64, value_cache_bytes=value_cache)
        model: dict[bytes, bytes] = {}
        batch = kv.batch()
        db.init_genesis(genesis, batch)
        kv.write(batch)
        apply(model, genesis)
        snapshots = [dict(model)]
        roots = [db.root]
        assert db.root == reference_root(model)
        for writes in blocks:
            root = commit_block(kv, db, writes)
            apply(model, writes)
            snapshots.append(dict(model))
            roots.append(root)
            assert db.root == root == reference_root(model)
            for key in KEYS + ABSENT:
                assert db.get(key) == model.get(key)
            assert list(db.iter_prefix(b"")) == sorted(model.items())
            assert list(db.iter_prefix(b"a\x00")) == sorted(
                (k, v) for k, v in model.items() if k.startswith(b"a\x00")
            )
            for key in KEYS[::3] + DEEP_GROUP + DEEP_PAIR + ABSENT[:1]:
                check_proof(db, model, key)

        latest = db.version
        oldest = 0 if retain is None else max(0, latest - retain + 1)
        assert db.oldest_version == oldest
        for version in range(oldest, latest + 1):
            snap = snapshots[version]
            assert db.root_at(version) == roots[version]
            reader = db.reader_at(version)
            for key in KEYS + ABSENT[:1]:
                assert db.get_at(key, version) == snap.get(key)
                assert reader.get(key) == snap.get(key)
            assert list(reader.iter_prefix(b"")) == sorted(snap.items())
            assert list(reader.iter_prefix(b"a")) == sorted(
                (k, v) for k, v in snap.items() if k.startswith(b"a")
            )
            for key in DEEP_GROUP + KEYS[::5] + ABSENT[:1]:
                check_proof(db, snap, key, version)
        for version in range(oldest):
            pruned_calls = [
                (db.root_at, (version,)),
                (db.reader_at, (version,)),
                (db.get_at, (KEYS[0], version)),
                (db.prove, (KEYS[0], version)),
            ]
            for call, args in pruned_calls:
                with pytest.raises(NotFound) as err:
                    call(*args)
                assert err.value.code is ErrorCode.HEIGHT_PRUNED
        with pytest.raises(NotFound) as err:
            db.get_at(KEYS[0], latest + 1)
        assert err.value.code is ErrorCode.HEIGHT_NOT_COMMITTED
