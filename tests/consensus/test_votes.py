"""The per-height vote keeper: every round kept, one first vote per step, per-sender tallies."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from citychain.consensus.votes import PARK_LIMIT, AddKind, VoteKeeper
from citychain.types import NIL, Validator, ValidatorSet, Vote, VoteType

A, B, C, D = (bytes([i]) * 32 for i in (1, 2, 3, 4))
V1, V2, V3 = (bytes([0x10 + i]) * 32 for i in (1, 2, 3))
PV, PC = VoteType.PREVOTE, VoteType.PRECOMMIT


def vset(*powers: int) -> ValidatorSet:
    return ValidatorSet(Validator(k, p) for k, p in zip((A, B, C, D), powers, strict=False))


def vote(who: bytes, round_: int, value: bytes, type_: VoteType = PV, height: int = 1) -> Vote:
    return Vote(type_, height, round_, value, who, b"sig-" + who[:1] + value[:1])


def test_counts_power_per_value_and_any() -> None:
    k = VoteKeeper(1, vset(1, 2, 3, 4))  # total 10, quorum 7
    assert k.add(vote(A, 0, V1)).added
    assert k.add(vote(B, 0, NIL)).added
    assert k.add(vote(C, 0, V1)).added
    assert k.power(0, PV, V1) == 4
    assert k.power(0, PV, NIL) == 2
    assert k.power_any(0, PV) == 6
    assert not k.has_quorum_any(0, PV)
    assert k.quorum_value(0, PV) is None
    assert k.add(vote(D, 0, V1)).added
    assert k.quorum_value(0, PV) == V1
    assert k.has_quorum_for(0, PV, V1)
    assert k.has_quorum_any(0, PV)
    assert k.power_any(0, PC) == 0  # precommits are tallied apart
    assert k.quorum_value(0, PC) is None


def test_nil_can_be_the_quorum_value() -> None:
    k = VoteKeeper(1, vset(1, 1, 1, 1))
    for who in (A, B, C):
        k.add(vote(who, 2, NIL, PC))
    assert k.quorum_value(2, PC) == NIL


def test_every_round_is_kept() -> None:
    """Pitfall 2: the prevotes of an earlier round stay available (line 28 needs them)."""
    k = VoteKeeper(1, vset(1, 1, 1, 1))
    for r in (0, 3, 7):
        for who in (A, B, C):
            k.add(vote(who, r, V1))
    assert k.rounds() == (0, 3, 7)
    assert all(k.quorum_value(r, PV) == V1 for r in (0, 3, 7))


def test_a_byte_identical_or_same_value_duplicate_is_ignored() -> None:
    k = VoteKeeper(1, vset(1, 1, 1, 1))
    first = vote(A, 0, V1)
    assert k.add(first).kind is AddKind.ADDED
    assert k.add(first).kind is AddKind.DUPLICATE
    # another signature over the same vote (e.g. a non-deterministic scheme): still the same vote
    again = Vote(PV, 1, 0, V1, A, b"other signature bytes")
    assert k.add(again).kind is AddKind.DUPLICATE
    assert k.power(0, PV, V1) == 1
    assert k.get(0, PV, A) is first


def test_equivocation_is_reported_once_and_not_counted_twice() -> None:
    k = VoteKeeper(1, vset(1, 1, 1, 1))
    a, b, c = vote(A, 0, V1), vote(A, 0, V2), vote(A, 0, NIL)
    assert k.add(a).added
    result = k.add(b)
    assert result.kind is AddKind.CONFLICT
    assert result.evidence == (a, b)
    assert k.add(b).kind is AddKind.DUPLICATE  # the same conflicting vote again: silent
    third = k.add(c)
    assert third.kind is AddKind.CONFLICT and third.evidence is None  # reported once per step
    # the sender counts once for "any" and for the round-skip rule, whatever it sent
    assert k.power_any(0, PV) == 1
    assert k.skip_power(0) == 1
    assert k.voted(0, PV) == {A: V1}
    assert k.get(0, PV, A) == a
    # V2 is backed by nobody else: the conflicting vote is not counted for it
    assert k.power(0, PV, V2) == 0
    # ... but a nil vote always is (nil needs no backing)
    assert k.power(0, PV, NIL) == 1
    # the precommit step of the same round is another step: not a conflict
    assert k.add(vote(A, 0, V2, PC)).added


def test_conflicting_vote_counts_for_a_backed_value() -> None:
    """The paper counts senders per value: the polka that one honest node saw (with the
    equivocator's vote for V1 in it) must be visible to an honest node that got the
    equivocator's V2 vote first, or a lock on V1 could never be justified to it."""
    k = VoteKeeper(1, vset(1, 1, 1, 1))
    k.add(vote(D, 0, V2))  # the equivocator's first vote, as this node received it
    k.add(vote(A, 0, V1))
    k.add(vote(B, 0, V1))
    assert k.quorum_value(0, PV) is None
    result = k.add(vote(D, 0, V1))  # its other vote: V1 is backed by A and B
    assert result.kind is AddKind.CONFLICT and result.evidence is not None
    assert k.quorum_value(0, PV) == V1
    assert k.power(0, PV, V1) == 3 and k.power(0, PV, V2) == 1
    assert k.power_any(0, PV) == 3  # three senders
    assert [v.validator for v in k.votes_for(0, PV, V1)] == [A, B, D]
    assert k.votes_for(0, PV, V1)[2].block_hash == V1


def test_a_parked_conflicting_vote_counts_once_its_value_is_backed() -> None:
    k = VoteKeeper(1, vset(1, 1, 1, 1))
    k.add(vote(D, 0, V2))
    k.add(vote(D, 0, V1))  # V1 has no backing yet: parked
    assert k.power(0, PV, V1) == 0
    k.add(vote(A, 0, V1))
    assert k.power(0, PV, V1) == 2
    k.add(vote(B, 0, V1))
    assert k.quorum_value(0, PV) == V1


def test_parking_is_bounded_per_validator_and_step() -> None:
    k = VoteKeeper(1, vset(1, 1, 1, 1))
    k.add(vote(D, 0, NIL))
    junk = [bytes([0x80 + i]) * 32 for i in range(PARK_LIMIT + 3)]
    for j in junk:
        assert k.add(vote(D, 0, j)).kind is AddKind.CONFLICT
    k.add(vote(A, 0, junk[0]))  # the oldest parked vote was dropped: it does not come back
    assert k.power(0, PV, junk[0]) == 1
    k.add(vote(B, 0, junk[-1]))  # the newest is still parked: it does
    assert k.power(0, PV, junk[-1]) == 2


def test_votes_for_and_voted_are_ordered_by_validator() -> None:
    k = VoteKeeper(1, vset(1, 1, 1, 1))
    for who in (D, B, A, C):
        k.add(vote(who, 1, V1 if who != C else NIL, PC))
    assert [v.validator for v in k.votes_for(1, PC, V1)] == [A, B, D]
    assert list(k.voted(1, PC)) == [A, B, C, D]
    assert k.voted(1, PC)[C] == NIL
    assert k.votes_for(5, PC, V1) == ()
    assert k.voted(5, PC) == {}


def test_skip_power_counts_distinct_senders_and_extra_ones() -> None:
    k = VoteKeeper(1, vset(1, 2, 3, 4))
    k.add(vote(A, 4, V1))
    k.add(vote(A, 4, V1, PC))  # same sender, another type: counted once
    k.add(vote(B, 4, NIL, PC))
    assert k.skip_power(4) == 3
    assert k.skip_power(4, also=(A, C, C)) == 6  # A already counted, C once
    assert k.skip_power(9) == 0
    assert k.skip_power(9, also=(D,)) == 4


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        (vote(A, 0, V1, height=2), "not for height"),
        (Vote(PV, 1, 0, V1, b"\x99" * 32, b""), "not from a validator"),
        (vote(A, -1, V1), "negative round"),
    ],
)
def test_refuses_votes_outside_its_height_or_set(bad: Vote, why: str) -> None:
    k = VoteKeeper(1, vset(1, 1, 1, 1))
    with pytest.raises(ValueError, match=why):
        k.add(bad)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([A, B, C, D]),
            st.integers(0, 2),
            st.sampled_from([PV, PC]),
            st.sampled_from([NIL, V1, V2, V3]),
        ),
        max_size=40,
    ),
    st.randoms(use_true_random=False),
)
def test_tallies_do_not_depend_on_arrival_order_without_equivocation(
    raw: list[tuple[bytes, int, VoteType, bytes]], rnd: random.Random
) -> None:
    """Without equivocation, any arrival order gives the same tallies; with it, the tallies
    never count a sender twice for one value and never exceed the total power."""
    votes = [vote(w, r, v, t) for w, r, t, v in raw]
    honest: dict[tuple[bytes, int, VoteType], Vote] = {}
    for v in votes:
        honest.setdefault((v.validator, v.round, v.type), v)
    clean = list(honest.values())
    shuffled = list(clean)
    rnd.shuffle(shuffled)
    vals = vset(1, 2, 3, 4)
    k1, k2, k3 = VoteKeeper(1, vals), VoteKeeper(1, vals), VoteKeeper(1, vals)
    for v in clean:
        assert k1.add(v).added
    for v in shuffled:
        assert k2.add(v).added
    for v in votes:
        k3.add(v)
    for r in range(3):
        for t in (PV, PC):
            assert k1.quorum_value(r, t) == k2.quorum_value(r, t)
            assert k1.power_any(r, t) == k2.power_any(r, t)
            assert k1.voted(r, t) == k2.voted(r, t)
            total = 0
            for value in (NIL, V1, V2, V3):
                assert k1.power(r, t, value) == k2.power(r, t, value)
                senders = [x.validator for x in k3.votes_for(r, t, value)]
                assert len(senders) == len(set(senders))
                assert k3.power(r, t, value) == sum(vals.power_of(s) for s in senders)
                total += k3.power(r, t, value)
            assert k3.power_any(r, t) <= vals.total_power
            assert total >= k3.power_any(r, t)
