"""The tree's root is a function of the final key/value set only; proofs at scale; bad input."""

from __future__ import annotations

import random

import pytest
from state_testlib import (
    DEEP_GROUP,
    DEEP_PAIR,
    EMPTY_ROOT,
    apply,
    check_proof,
    commit_block,
    open_store,
    reference_root,
)

from citychain.errors import ErrorCode, InvalidInput
from citychain.proof.ics23 import SMT_SPEC, is_valid_non_membership
from citychain.state import EMPTY_ROOT as STATE_EMPTY_ROOT
from citychain.state import StateDB


def _random_writes(rng: random.Random, n: int) -> dict[bytes, bytes | None]:
    return {b"key-%d" % rng.randrange(4 * n): rng.randbytes(rng.randint(1, 40)) for _ in range(n)}


def test_empty_store_is_version_zero_with_the_empty_root() -> None:
    with open_store() as kv:
        db = StateDB(kv)
        assert (db.version, db.root, db.root_at(0)) == (0, EMPTY_ROOT, EMPTY_ROOT)
        assert STATE_EMPTY_ROOT == EMPTY_ROOT
        assert db.get(b"a") is None
        assert list(db.iter_prefix(b"")) == []
        check_proof(db, {}, b"a")


def test_root_ignores_write_order_and_block_boundaries() -> None:
    rng = random.Random(1)
    writes = _random_writes(rng, 600) | {k: b"deep" for k in DEEP_GROUP + DEEP_PAIR}
    items = list(writes.items())
    roots = set()
    for attempt in range(3):
        rng.shuffle(items)
        with open_store() as kv:
            db = StateDB(kv)
            if attempt == 0:
                commit_block(kv, db, dict(items))
            else:  # the same final content, reached through several blocks
                for i in range(0, len(items), 97 * attempt):
                    commit_block(kv, db, dict(items[i : i + 97 * attempt]))
            roots.add(db.root)
    assert roots == {reference_root(writes)}  # type: ignore[arg-type]


def test_deleting_everything_gives_the_empty_root_and_drops_every_page() -> None:
    rng = random.Random(2)
    writes = _random_writes(rng, 800)
    with open_store() as kv:
        db = StateDB(kv, retain_versions=1)
        commit_block(kv, db, writes)
        assert db.root == reference_root(writes)  # type: ignore[arg-type]
        keys = list(writes)
        commit_block(kv, db, dict.fromkeys(keys[:400]))
        commit_block(kv, db, dict.fromkeys(keys[400:]))
        assert db.root == EMPTY_ROOT
        assert list(db.iter_prefix(b"")) == []
        pages = [k for k, _ in kv.iterate("state_nodes") if not k.startswith(b"\xff")]
        assert pages == []
        assert list(kv.iterate("state_history")) == []


def test_values_returning_to_old_ones_give_back_the_old_root() -> None:
    rng = random.Random(3)
    base = _random_writes(rng, 300)
    with open_store() as kv:
        db = StateDB(kv, retain_versions=2)
        first = commit_block(kv, db, base)
        changed = {k: b"other" for k in list(base)[:50]}
        changed[b"brand-new"] = b"x"
        second = commit_block(kv, db, changed)
        assert second != first
        undo: dict[bytes, bytes | None] = {k: base[k] for k in list(base)[:50]}
        undo[b"brand-new"] = None
        assert commit_block(kv, db, undo) == first
        # Writing the same values again changes nothing at all.
        assert commit_block(kv, db, dict(base)) == first
        model = {k: v for k, v in base.items() if v is not None}
        for key in [*list(base)[:60:3], b"brand-new"]:
            check_proof(db, model, key)
            check_proof(db, model, key, db.version - 1)


def test_many_keys_in_several_blocks_with_deletes_match_the_reference() -> None:
    rng = random.Random(4)
    model: dict[bytes, bytes] = {}
    with open_store() as kv:
        db = StateDB(kv, retain_versions=3, cache_nodes=1000)
        for _ in range(5):
            writes: dict[bytes, bytes | None] = dict(_random_writes(rng, 1500))
            for key in rng.sample(sorted(model), min(len(model), 300)):
                writes[key] = None
            commit_block(kv, db, writes)
            apply(model, writes)
            assert db.root == reference_root(model)
        present = rng.sample(sorted(model), 40)
        absent = [b"absent-%d" % i for i in range(40)]
        for key in present + absent:
            check_proof(db, model, key)
        assert list(db.iter_prefix(b"key-1")) == sorted(
            (k, v) for k, v in model.items() if k.startswith(b"key-1")
        )


def test_a_single_leaf_tree_proves_both_ways() -> None:
    with open_store() as kv:
        db = StateDB(kv)
        commit_block(kv, db, {b"only": b"one"})
        assert db.root == reference_root({b"only": b"one"})
        check_proof(db, {b"only": b"one"}, b"only")
        check_proof(db, {b"only": b"one"}, b"other")


def test_non_membership_proof_does_not_transfer_to_another_gap() -> None:
    rng = random.Random(5)
    writes = _random_writes(rng, 200)
    with open_store() as kv:
        db = StateDB(kv)
        commit_block(kv, db, writes)
        _, proof = db.prove(b"missing-1")
        others = [b"missing-%d" % i for i in range(2, 60)]
        # Some absent keys fall in the same gap, most do not; those must be refused.
        refused = [k for k in others if not is_valid_non_membership(SMT_SPEC, db.root, proof, k)]
        assert len(refused) > len(others) // 2


@pytest.mark.parametrize(
    "writes",
    [
        {b"": b"v"},
        {b"k": b""},
        {b"k": "text"},
        {"k": b"v"},
        {b"k" * 5000: b"v"},
        [(b"k", b"v")],
    ],
)
def test_bad_writes_are_refused(writes: object) -> None:
    with open_store() as kv:
        db = StateDB(kv)
        with pytest.raises(InvalidInput) as err:
            db.prepare(writes, 1)  # type: ignore[arg-type]
        assert err.value.code is ErrorCode.BAD_ARGUMENTS


def test_versions_must_follow_and_prepared_states_must_fit() -> None:
    with open_store() as kv:
        db = StateDB(kv)
        for wrong in (0, 2, -1):
            with pytest.raises(InvalidInput) as err:
                db.prepare({b"a": b"1"}, wrong) if wrong else db.prepare({b"a": b"1"}, 2)
            assert err.value.code is ErrorCode.BAD_ARGUMENTS
        first = db.prepare({b"a": b"1"}, 1)
        other = db.prepare({b"a": b"2"}, 1)  # a competing proposal for the same height
        commit_block(kv, db, {b"a": b"1"})
        assert db.root == first.root != other.root
        for late in (first, other):
            with pytest.raises(InvalidInput):
                db.commit(late, kv.batch())
        with pytest.raises(InvalidInput):
            db.init_genesis({b"g": b"1"}, kv.batch())
    with pytest.raises(InvalidInput):
        StateDB(kv, retain_versions=0)
