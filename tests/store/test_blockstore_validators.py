"""The validator set in force at a height: the last one recorded from that height or below,
read from the store once and kept (every status call and block asks for it), and read again
only after a write that added one, even when a read came between the batch and its write."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from citychain.errors import InternalError
from citychain.store.blocks import BlockStore
from citychain.store.kv import KVStore
from citychain.types import Validator, ValidatorSet


def vset(n: int) -> ValidatorSet:
    return ValidatorSet([Validator(bytes([n, i]) * 16, i + 1, f"v{n}.{i}") for i in range(3)])


def test_a_new_set_is_seen_from_its_height_once_written(tmp_path: Path) -> None:
    with KVStore(tmp_path) as kv:
        blocks = BlockStore(kv)
        genesis = kv.batch()
        blocks.save_validators(genesis, 1, vset(1))
        kv.write(genesis)  # genesis: written without a block
        assert blocks.validators_at(1).hash == blocks.validators_at(50).hash == vset(1).hash
        with pytest.raises(InternalError, match="no validator set recorded for height 0"):
            blocks.validators_at(0)

        batch = kv.batch()
        blocks.save_validators(batch, 10, vset(2))  # a block's governance change
        assert blocks.validators_at(12).hash == vset(1).hash  # not written yet: read and kept
        kv.write(batch)
        blocks.committed(1)
        assert blocks.validators_at(12).hash == vset(2).hash
        assert blocks.validators_at(10).hash == vset(2).hash
        assert blocks.validators_at(9).hash == vset(1).hash
        # Another store over the same database reads the same.
        again = BlockStore(kv)
        assert [again.validators_at(h).hash for h in (1, 9, 10, 99)] == [
            vset(1).hash, vset(1).hash, vset(2).hash, vset(2).hash
        ]  # fmt: skip


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 40), st.integers(1, 9)), min_size=1, max_size=6))
def test_the_set_at_every_height_is_the_last_recorded_at_or_below_it(
    tmp_path_factory: pytest.TempPathFactory, saves: list[tuple[int, int]]
) -> None:
    model: dict[int, int] = {}
    with KVStore(tmp_path_factory.mktemp("kv")) as kv:
        blocks = BlockStore(kv)
        for step, (from_height, n) in enumerate(saves):
            batch = kv.batch()
            blocks.save_validators(batch, from_height, vset(n))
            kv.write(batch)
            blocks.committed(step + 1)
            model[from_height] = n
            for h in range(0, 45):
                below = [f for f in model if f <= h]
                if not below:
                    with pytest.raises(InternalError):
                        blocks.validators_at(h)
                else:
                    assert blocks.validators_at(h).hash == vset(model[max(below)]).hash
