"""Weighted round-robin proposer selection: deterministic, periodic, fair in proportion to power."""

from __future__ import annotations

from collections import Counter
from math import gcd

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from citychain.consensus.proposer import CHECKPOINT_EVERY, ProposerSchedule
from citychain.types import Validator, ValidatorSet


def keys(n: int) -> list[bytes]:
    return [bytes([0xA0 - i]) * 32 for i in range(n)]  # listed out of key order on purpose


def vset(powers: list[int]) -> ValidatorSet:
    return ValidatorSet(Validator(k, p) for k, p in zip(keys(len(powers)), powers, strict=True))


def naive(validators: ValidatorSet, steps: int) -> list[bytes]:
    """The textbook algorithm on the full powers, with a dict of priorities."""
    prio = {v.public_key: 0 for v in validators}
    total = validators.total_power
    out = []
    for _ in range(steps):
        for v in validators:
            prio[v.public_key] += v.power
        best = max(sorted(prio), key=lambda k: prio[k])  # max keeps the first (smallest) key
        prio[best] -= total
        out.append(best)
    return out


def test_the_cometbft_example() -> None:
    """proposer-selection.md "Stable Set": p1 with power 1, p2 with power 3."""
    p1, p2 = b"\x01" * 32, b"\x02" * 32
    s = ProposerSchedule(ValidatorSet([Validator(p1, 1), Validator(p2, 3)]))
    assert [s.proposer(h, 0) for h in range(1, 9)] == [p2, p1, p2, p2] * 2
    assert s.period == 4


def test_round_r_at_height_h_is_step_h_minus_start_plus_r() -> None:
    s = ProposerSchedule(vset([3, 1, 2]), start_height=10)
    for h in range(10, 20):
        for r in range(5):
            assert s.proposer(h, r) == s.proposer(h + r, 0)
    assert s.start_height == 10


def test_ties_go_to_the_smallest_key() -> None:
    s = ProposerSchedule(vset([5, 5, 5]))
    assert [s.proposer(h, 0) for h in (1, 2, 3)] == sorted(keys(3))


def test_gcd_does_not_change_the_schedule() -> None:
    a = ProposerSchedule(vset([2, 3, 7]))
    b = ProposerSchedule(vset([20, 30, 70]))
    assert a.period == b.period == 12
    assert [a.proposer(h, 0) for h in range(1, 40)] == [b.proposer(h, 0) for h in range(1, 40)]


def test_refuses_heights_before_its_start_and_negative_rounds() -> None:
    s = ProposerSchedule(vset([1, 1]), start_height=5)
    with pytest.raises(ValueError, match="before"):
        s.proposer(4, 0)
    with pytest.raises(ValueError, match="negative"):
        s.proposer(5, -1)


powers_st = st.lists(st.integers(1, 40), min_size=1, max_size=7)


@settings(max_examples=80, deadline=None)
@given(powers_st)
def test_fair_over_every_period_and_periodic(powers: list[int]) -> None:
    validators = vset(powers)
    s = ProposerSchedule(validators)
    g = 0
    for p in powers:
        g = gcd(g, p)
    period = sum(powers) // g
    assert s.period == period
    seq = [s.proposer(h, 0) for h in range(1, 3 * period + 1)]
    assert seq == naive(validators, 3 * period)  # the same as the textbook algorithm
    assert seq[:period] == seq[period : 2 * period] == seq[2 * period :]
    # every window of one period (not only the first) holds each validator power/gcd times
    for start in range(period):
        counts = Counter(seq[start : start + period])
        assert counts == {v.public_key: v.power // g for v in validators}


@settings(max_examples=40, deadline=None)
@given(powers_st, st.integers(0, 10_000), st.integers(0, 50))
def test_deterministic_across_instances_and_query_orders(
    powers: list[int], height: int, round_: int
) -> None:
    validators = vset(powers)
    fresh = ProposerSchedule(validators)
    warmed = ProposerSchedule(validators)
    for h in range(1, 60):
        warmed.proposer(h, 0)
    assert fresh.proposer(height + 1, round_) == warmed.proposer(height + 1, round_)


@settings(max_examples=10, deadline=None)
@given(st.lists(st.integers(1_000, 6_000), min_size=3, max_size=4), st.data())
def test_checkpoint_mode_matches_table_mode(powers: list[int], data: st.DataObject) -> None:
    """Large periods are computed from checkpoints; force that mode and compare."""
    validators = vset(powers)
    table = ProposerSchedule(validators)
    far = ProposerSchedule(validators, table_limit=0)
    period = table.period
    steps = data.draw(st.lists(st.integers(0, 2 * period + 10), min_size=1, max_size=25))
    edges = [0, CHECKPOINT_EVERY - 1, CHECKPOINT_EVERY, period - 1, period]
    for n in [*steps, *edges, *sorted(steps), *reversed(sorted(steps))]:
        assert far.choice(n) == table.choice(n % period)


def test_large_total_power_is_fine() -> None:
    """Powers whose reduced total is far over the table limit (a period of ~3 million steps)."""
    powers = [1_000_003, 999_983, 1_000_033, 7]
    validators = vset(powers)
    s = ProposerSchedule(validators)
    assert s.period == sum(powers)
    seq = [s.proposer(h, 0) for h in range(1, 2001)]
    assert seq == naive(validators, 2000)
    # far away heights are computed from checkpoints, and agree between instances
    t = ProposerSchedule(validators)
    assert s.proposer(20_000, 3) == t.proposer(20_003, 0)
    assert s.proposer(1_500, 0) == seq[1_499]  # going back in time works
    assert s.proposer(2_000, 0) == seq[1_999]


def test_checkpoints_in_random_access_order() -> None:
    validators = vset([4_099, 5_003, 6_007])  # coprime: a period of 15,109 steps
    table = ProposerSchedule(validators)
    far = ProposerSchedule(validators, table_limit=0)
    assert table.period == 15_109 > 3 * CHECKPOINT_EVERY
    order = [12_000, 5, 9_000, 4_096, 4_095, 15_108, 15_109, 30_000, 8_192, 1, 12_001, 100_000]
    for n in order:
        assert far.choice(n) == table.choice(n), n
