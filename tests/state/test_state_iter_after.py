"""``iter_prefix(prefix, after=...)`` of the state against its own whole listing: at the latest
version (one seek in ``state_latest``) and at every older version (a seek into the escaped
history keys), for random blocks over keys with awkward bytes and a random start."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from state_testlib import AWKWARD_KEYS, apply

from citychain.state import StateDB
from citychain.store.kv import KVStore

KEYS = [*AWKWARD_KEYS, b"\x00\xff", b"a\x01", b"ab\x00", b"b"]
PREFIXES = [b"", b"a", b"a\x00", b"ab", b"\xff", b"\x00"]
VALUES = [b"v0", b"v1", b"\x00"]
writes_st = st.dictionaries(
    st.sampled_from(KEYS), st.one_of(st.none(), st.sampled_from(VALUES)), max_size=10
)


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[KVStore, StateDB]]:
    """One store for every example: each writes under a namespace of its own, so the others'
    keys (and their history) are neighbours its listings must leave out."""
    with KVStore(tmp_path_factory.mktemp("state-after"), cache_bytes=8 << 20) as kv:
        yield kv, StateDB(kv, cache_nodes=64)


_names = itertools.count()


def _above(items: list[tuple[bytes, bytes]], start: bytes) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in items if k > start]


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    blocks=st.lists(writes_st, min_size=1, max_size=5),
    starts=st.lists(
        st.tuples(
            st.sampled_from(PREFIXES), st.one_of(st.sampled_from(KEYS), st.binary(max_size=3))
        ),
        min_size=1,
        max_size=6,
    ),
)
def test_a_start_skips_exactly_the_keys_up_to_it_at_every_version(
    state: tuple[KVStore, StateDB],
    blocks: list[dict[bytes, bytes | None]],
    starts: list[tuple[bytes, bytes]],
) -> None:
    kv, db = state
    ns = b"s%05d/" % next(_names)
    model: dict[bytes, bytes] = {}
    snapshots = {db.version: dict(model)}
    for writes in blocks:
        mine = {ns + k: v for k, v in writes.items()}
        prepared = db.prepare(mine, db.version + 1)
        batch = kv.batch()
        db.commit(prepared, batch)
        kv.write(batch, sync=False)
        db.committed(prepared)
        apply(model, mine)
        snapshots[db.version] = dict(model)
    for prefix, after in starts:
        prefix = ns + prefix
        start = prefix + after
        whole = list(db.iter_prefix(prefix))
        assert whole == sorted((k, v) for k, v in model.items() if k.startswith(prefix))
        assert list(db.iter_prefix(prefix, after=after)) == _above(whole, start)
        assert list(kv.iter_prefix("state_latest", prefix, after=after)) == _above(whole, start)
        for version, snapshot in snapshots.items():
            whole = list(db.iter_prefix_at(prefix, version))
            assert whole == sorted((k, v) for k, v in snapshot.items() if k.startswith(prefix))
            page = list(db.iter_prefix_at(prefix, version, after=after))
            assert page == _above(whole, start)
            assert list(db.reader_at(version).iter_prefix(prefix, after=after)) == page
