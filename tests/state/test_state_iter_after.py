"""``iter_prefix(prefix, after=...)`` of the state against its own whole listing: at the latest
version (one seek in ``state_latest``) and at every older version (a seek into the escaped
history keys), for random blocks over keys with awkward bytes and a random start."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from state_testlib import AWKWARD_KEYS, apply, commit_block, open_store

from citychain.state import StateDB

KEYS = [*AWKWARD_KEYS, b"\x00\xff", b"a\x01", b"ab\x00", b"b"]
PREFIXES = [b"", b"a", b"a\x00", b"ab", b"\xff", b"\x00"]
VALUES = [b"v0", b"v1", b"\x00"]
writes_st = st.dictionaries(
    st.sampled_from(KEYS), st.one_of(st.none(), st.sampled_from(VALUES)), max_size=10
)


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
    blocks: list[dict[bytes, bytes | None]], starts: list[tuple[bytes, bytes]]
) -> None:
    with open_store() as kv:
        db = StateDB(kv, cache_nodes=64)
        model: dict[bytes, bytes] = {}
        snapshots = [dict(model)]
        for writes in blocks:
            commit_block(kv, db, writes)
            apply(model, writes)
            snapshots.append(dict(model))
        for prefix, after in starts:
            start = prefix + after
            whole = list(db.iter_prefix(prefix))
            assert whole == sorted((k, v) for k, v in model.items() if k.startswith(prefix))
            assert list(db.iter_prefix(prefix, after=after)) == _above(whole, start)
            assert list(kv.iter_prefix("state_latest", prefix, after=after)) == _above(whole, start)
            for version, snapshot in enumerate(snapshots):
                whole = list(db.iter_prefix_at(prefix, version))
                assert whole == sorted((k, v) for k, v in snapshot.items() if k.startswith(prefix))
                page = list(db.iter_prefix_at(prefix, version, after=after))
                assert page == _above(whole, start)
                assert list(db.reader_at(version).iter_prefix(prefix, after=after)) == page
