"""Algorithm 1, rule by rule: each test names the paper's lines it exercises.

Four validators A < B < C < D of power 1 (quorum 3, f+1 = 2); we are A unless said otherwise.
``Node`` plays the driver: it feeds our own votes and proposals back into the machine, as the
paper's processes receive their own broadcasts.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from citychain.consensus.machine import (
    Action,
    DecideAction,
    EquivocationAction,
    Input,
    Machine,
    ProposalInput,
    ProposeAction,
    ScheduleTimeout,
    Step,
    TimeoutInput,
    Timeouts,
    VoteAction,
    VoteInput,
)
from citychain.types import NIL, Validator, ValidatorSet, Vote, VoteType

A, B, C, D = (bytes([i]) * 32 for i in (1, 2, 3, 4))
OUTSIDER = b"\x99" * 32
VALS = ValidatorSet(Validator(k, 1) for k in (A, B, C, D))
V1, V2, V3 = (bytes([0x10 + i]) * 32 for i in (1, 2, 3))
NEW = b"\xee" * 32  # the block a driver builds when the machine asks for a new one
T = Timeouts(propose_ms=3000, prevote_ms=1000, precommit_ms=1000, delta_ms=500)
PV, PC = VoteType.PREVOTE, VoteType.PRECOMMIT
PROPOSE, PREVOTE, PRECOMMIT = Step.PROPOSE, Step.PREVOTE, Step.PRECOMMIT


def pv(who: bytes, r: int, v: bytes, h: int = 1) -> VoteInput:
    return VoteInput(Vote(PV, h, r, v, who, b"sig"))


def pc(who: bytes, r: int, v: bytes, h: int = 1) -> VoteInput:
    return VoteInput(Vote(PC, h, r, v, who, b"sig"))


def prop(r: int, v: bytes, vr: int = -1, valid: bool = True) -> ProposalInput:
    return ProposalInput(r, v, vr, valid)


def timeout(r: int, step: Step, h: int = 1) -> TimeoutInput:
    return TimeoutInput(h, r, step)


class Node:
    """A machine plus the part of a driver that feeds its own messages back."""

    def __init__(
        self,
        me: bytes | None = A,
        proposers: dict[int, bytes] | None = None,
        validators: ValidatorSet = VALS,
        start: bool = True,
    ) -> None:
        table = proposers or {}
        self.me = me
        self.m = Machine(1, validators, me, T, lambda r: table.get(r, B))
        self.log: list[Action] = []
        if start:
            self.start()

    def start(self) -> list[Action]:
        out = self._loop(self.m.start())
        self.log += out
        return out

    def feed(self, *inputs: Input) -> list[Action]:
        out: list[Action] = []
        for inp in inputs:
            out += self._loop(self.m.handle(inp))
        self.log += out
        return out

    def _loop(self, actions: list[Action]) -> list[Action]:
        out: list[Action] = []
        pending = list(actions)
        while pending:
            a = pending.pop(0)
            out.append(a)
            if isinstance(a, VoteAction):
                assert self.me is not None
                own = Vote(a.type, a.height, a.round, a.block_hash, self.me, b"own")
                pending += self.m.handle(VoteInput(own))
            elif isinstance(a, ProposeAction):
                v = a.value if a.value is not None else NEW
                pending += self.m.handle(ProposalInput(a.round, v, a.valid_round, True))
        return out

    def goto_round(self, r: int) -> list[Action]:
        """f+1 (C and D) precommit nil at round r: lines 55-56 take us there."""
        return self.feed(pc(C, r, NIL), pc(D, r, NIL))

    def lock_on(self, v: bytes, r: int) -> None:
        """Reach round r, get B's proposal of v and a polka for it: lines 22-24, 36-41."""
        if r > self.m.round:
            self.goto_round(r)
        self.feed(prop(r, v), pv(B, r, v), pv(C, r, v))
        assert self.m.status().locked_value == v and self.m.status().locked_round == r


def votes(actions: Sequence[Action]) -> list[tuple[VoteType, int, bytes]]:
    return [(a.type, a.round, a.block_hash) for a in actions if isinstance(a, VoteAction)]


def timeouts(actions: Sequence[Action]) -> list[tuple[int, Step, int]]:
    return [(a.round, a.step, a.duration_ms) for a in actions if isinstance(a, ScheduleTimeout)]


def decisions(actions: Sequence[Action]) -> list[DecideAction]:
    return [a for a in actions if isinstance(a, DecideAction)]


# -- lines 11-21: StartRound -----------------------------------------------------------------------


def test_lines_11_21_proposer_proposes_a_new_value() -> None:
    m = Machine(1, VALS, A, T, lambda r: A)
    assert m.start() == [ProposeAction(1, 0, -1, None)]
    assert (m.round, m.step) == (0, PROPOSE)
    with pytest.raises(RuntimeError):
        m.start()


def test_lines_11_21_others_schedule_timeout_propose() -> None:
    m = Machine(1, VALS, A, T, lambda r: B)
    assert m.start() == [ScheduleTimeout(1, 0, PROPOSE, 3000)]


def test_timeouts_grow_linearly_per_round() -> None:
    assert T.for_step(PROPOSE, 0) == 3000
    assert T.for_step(PREVOTE, 2) == 2000
    assert T.for_step(PRECOMMIT, 3) == 2500
    with pytest.raises(ValueError, match="no timeout"):
        T.for_step(Step.DECIDED, 0)
    with pytest.raises(ValueError, match="non-negative"):
        Timeouts(-1, 1, 1, 1)


def test_lines_15_16_proposer_reproposes_valid_value_in_a_later_round() -> None:
    n = Node(proposers={0: B, 1: A})
    n.lock_on(V1, 0)  # validValue = V1, validRound = 0 (lines 42-43)
    n.feed(pc(B, 0, NIL), pc(C, 0, NIL))  # 2f+1 precommits for anything: line 47
    out = n.feed(timeout(0, PRECOMMIT))  # lines 65-67: StartRound(1), and we propose
    assert out[0] == ProposeAction(1, 1, 0, V1)
    # we get our own proposal back and, locked on it, prevote it (line 29: lockedValue = v;
    # the polka of round 0 is in our log)
    assert votes(out) == [(PV, 1, V1)]


def test_lines_36_43_valid_value_is_updated_in_the_precommit_step_without_locking() -> None:
    n = Node()
    n.feed(timeout(0, PROPOSE))  # lines 57-60: prevote nil
    n.feed(pv(B, 0, V1), pv(C, 0, V1), pv(D, 0, V1))  # a polka for V1 we lack the proposal of
    assert n.m.step == PREVOTE  # line 36 needs the proposal
    out = n.feed(timeout(0, PREVOTE))  # lines 61-64
    assert votes(out) == [(PC, 0, NIL)]
    out = n.feed(prop(0, V1))  # line 36 with step = precommit: only lines 42-43
    assert votes(out) == []
    s = n.m.status()
    assert (s.valid_value, s.valid_round, s.locked_value, s.locked_round) == (V1, 0, None, -1)


# -- lines 22-27: a fresh proposal -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("locked", "proposal", "expected"),
    [
        (None, prop(0, V1), V1),  # line 24: valid, not locked
        (None, prop(0, V1, valid=False), NIL),  # line 26: not valid
        (V1, prop(1, V2), NIL),  # line 26: locked on another value
        (V1, prop(1, V1), V1),  # line 24: locked on this value
    ],
)
def test_lines_22_27_prevote_on_a_fresh_proposal(
    locked: bytes | None, proposal: ProposalInput, expected: bytes
) -> None:
    n = Node()
    if locked is not None:
        n.lock_on(locked, 0)
        n.goto_round(1)
    out = n.feed(proposal)
    assert votes(out) == [(PV, proposal.round, expected)]
    assert n.m.step == PREVOTE


def test_line_22_ignores_a_proposal_outside_the_propose_step() -> None:
    n = Node()
    n.feed(timeout(0, PROPOSE))
    assert votes(n.feed(prop(0, V1))) == []


def test_invalid_proposal_prevote_nil_and_never_decided() -> None:
    n = Node()
    out = n.feed(prop(0, V1, valid=False))
    assert votes(out) == [(PV, 0, NIL)]
    out = n.feed(pv(B, 0, V1), pv(C, 0, V1), pv(D, 0, V1))  # others (wrongly) like it
    assert votes(out) == []  # line 36 needs valid(v): no lock, no validValue
    out = n.feed(pc(B, 0, V1), pc(C, 0, V1), pc(D, 0, V1))
    assert decisions(out) == [] and n.m.decided is None  # line 50: valid(v) is required
    assert n.m.status().valid_value is None


def test_a_proposal_for_a_later_round_is_used_when_that_round_starts() -> None:
    n = Node()
    n.feed(prop(2, V2))  # stored, nothing happens yet (B alone is not f+1)
    assert n.m.round == 0
    out = n.goto_round(2)
    assert votes(out) == [(PV, 2, V2)]


# -- lines 28-33: a re-proposal with its proof of lock ---------------------------------------------


def test_lines_28_33_lock_yields_to_a_newer_polka() -> None:
    """lockedRound (0) <= vr (1): prevote the re-proposed value though locked on another."""
    n = Node()
    n.lock_on(V1, 0)
    n.feed(pv(B, 1, V2), pv(C, 1, V2), pv(D, 1, V2))  # a polka for V2 at round 1
    n.goto_round(2)
    out = n.feed(prop(2, V2, vr=1))
    assert votes(out) == [(PV, 2, V2)]


def test_lines_28_33_lock_prevents_prevoting_an_older_polka() -> None:
    """lockedRound (1) > vr (0) and lockedValue != v: prevote nil (line 32)."""
    n = Node()
    n.feed(pv(B, 0, V2), pv(C, 0, V2), pv(D, 0, V2))  # a polka for V2 at round 0
    n.lock_on(V1, 1)
    n.goto_round(2)
    out = n.feed(prop(2, V2, vr=0))
    assert votes(out) == [(PV, 2, NIL)]


def test_lines_28_33_locked_value_is_prevoted_whatever_vr() -> None:
    n = Node()
    n.lock_on(V1, 1)
    n.feed(pv(B, 0, V1), pv(C, 0, V1), pv(D, 0, V1))
    n.goto_round(2)
    assert votes(n.feed(prop(2, V1, vr=0))) == [(PV, 2, V1)]


def test_lines_28_33_invalid_value_with_a_polka_gets_nil() -> None:
    n = Node()
    n.feed(pv(B, 0, V2), pv(C, 0, V2), pv(D, 0, V2))
    n.goto_round(1)
    assert votes(n.feed(prop(1, V2, vr=0, valid=False))) == [(PV, 1, NIL)]


def test_lines_28_33_waits_for_the_polka_of_vr_even_if_it_arrives_later() -> None:
    """Pitfall 2: the prevotes of round vr may come after the proposal; keep both."""
    n = Node()
    n.goto_round(2)
    n.feed(pv(B, 1, V2), pv(C, 1, V2))
    assert votes(n.feed(prop(2, V2, vr=1))) == []  # only 2 of 4: no polka yet, keep waiting
    assert n.m.status().waiting_for == "prevotes of round 1 for the re-proposed block (round 2)"
    assert votes(n.feed(pv(D, 1, V2))) == [(PV, 2, V2)]


def test_lines_28_33_need_vr_below_the_round() -> None:
    n = Node()
    n.feed(pv(B, 0, V2), pv(C, 0, V2), pv(D, 0, V2))
    assert votes(n.feed(prop(0, V2, vr=0))) == []  # vr = round: neither line 22 nor 28
    out = n.feed(timeout(0, PROPOSE))  # lines 57-60: prevote nil ...
    # ... and line 36 matches any vr: the polka for the proposal's value locks it
    assert votes(out) == [(PV, 0, NIL), (PC, 0, V2)]


# -- lines 34-48: prevotes and precommits of the current round -------------------------------------


def test_lines_34_35_prevote_timeout_is_scheduled_once() -> None:
    n = Node()
    n.feed(timeout(0, PROPOSE))
    assert timeouts(n.feed(pv(B, 0, V1))) == []
    assert timeouts(n.feed(pv(C, 0, V2))) == [(0, PREVOTE, 1000)]  # 3 of 4, mixed values
    assert timeouts(n.feed(pv(D, 0, V1))) == []  # for the first time only


def test_lines_36_41_polka_for_the_proposal_locks_and_precommits() -> None:
    n = Node()
    n.feed(prop(0, V1))
    out = n.feed(pv(B, 0, V1), pv(C, 0, V1))
    assert votes(out) == [(PC, 0, V1)]
    assert timeouts(out) == []  # line 36 fired before line 34 could: no useless timer
    s = n.m.status()
    assert (s.locked_value, s.locked_round, s.valid_value, s.valid_round) == (V1, 0, V1, 0)
    assert n.m.step == PRECOMMIT


def test_lines_44_46_precommit_nil_on_a_nil_polka() -> None:
    n = Node()
    n.feed(prop(0, V1, valid=False))  # we prevote nil
    out = n.feed(pv(B, 0, NIL), pv(C, 0, NIL))
    assert votes(out) == [(PC, 0, NIL)]
    assert n.m.step == PRECOMMIT


def test_lines_47_48_precommit_timeout_is_scheduled_once_in_any_step() -> None:
    n = Node()
    n.feed(pc(B, 0, V1), pc(C, 0, NIL))
    assert n.m.step == PROPOSE
    assert timeouts(n.feed(pc(D, 0, V2))) == [(0, PRECOMMIT, 1000)]
    out = n.feed(timeout(0, PROPOSE))  # we prevote nil; no second precommit timer
    assert timeouts(out) == []


# -- lines 49-54: decide ---------------------------------------------------------------------------


def test_lines_49_54_decide_in_a_round_we_did_not_take_part_in() -> None:
    n = Node()
    out = n.feed(pc(B, 3, V3), pc(C, 3, V3), pc(D, 3, V3))
    # f+1 at round 3 took us there (lines 55-56), but there is no proposal yet
    assert (n.m.round, n.m.decided) == (3, None)
    out = n.feed(prop(3, V3))
    assert decisions(out) == [
        DecideAction(
            1,
            3,
            V3,
            tuple(Vote(PC, 1, 3, V3, k, b"sig") for k in (B, C, D)),
        )
    ]
    assert votes(out) == []  # decided before the proposal rule could prevote
    assert n.m.step == Step.DECIDED and n.m.decided == V3
    assert n.m.status().waiting_for == "the next height: block 1 is decided"
    assert n.feed(timeout(3, PROPOSE), prop(4, V1), pv(B, 4, V1), pv(C, 4, V1)) == []


def test_lines_49_54_decide_has_priority_over_the_round_skip() -> None:
    """Both rules enabled at once (the inputs came before start): decide first."""
    n = Node(start=False)
    n.feed(prop(5, V2), pc(B, 5, V2), pc(C, 5, V2), pc(D, 5, V2))
    out = n.start()
    assert out[0] == ScheduleTimeout(1, 0, PROPOSE, 3000)  # StartRound(0)
    assert len(out) == 2  # no StartRound(5)
    assert [d.round for d in decisions(out)] == [5]
    assert n.m.round == 0


def test_lines_49_54_decide_on_a_past_round() -> None:
    n = Node()
    n.feed(prop(0, V1))
    n.goto_round(2)
    out = n.feed(pc(B, 0, V1), pc(C, 0, V1), pc(D, 0, V1))
    assert [d.round for d in decisions(out)] == [0]


# -- lines 55-56: round skip -----------------------------------------------------------------------


def test_lines_55_56_f_plus_1_at_a_higher_round_skips_there() -> None:
    n = Node()
    assert n.feed(pv(C, 4, V1)) == []  # 1 of 4 is not f+1
    out = n.feed(pc(D, 4, NIL))
    assert n.m.round == 4 and n.m.step == PROPOSE
    assert timeouts(out) == [(4, PROPOSE, 3000 + 4 * 500)]


def test_lines_55_56_a_proposal_counts_as_a_message_of_its_proposer() -> None:
    n = Node()
    n.feed(prop(3, V1))
    assert n.m.round == 0
    n.feed(pv(C, 3, V1))  # B (the proposer) and C
    assert n.m.round == 3


def test_lines_55_56_skip_to_the_highest_round_with_f_plus_1() -> None:
    n = Node()
    n.feed(pv(C, 2, NIL), pv(D, 7, NIL), pv(B, 2, NIL))
    assert n.m.round == 2
    n.feed(pc(B, 7, NIL))
    assert n.m.round == 7


def test_lines_55_56_votes_of_lower_rounds_do_not_move_us() -> None:
    n = Node()
    n.goto_round(3)
    n.feed(pv(B, 1, NIL), pv(C, 1, NIL), pv(D, 1, NIL))
    assert n.m.round == 3


# -- lines 57-67: timeouts -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "stale",
    [
        timeout(0, PROPOSE, h=2),  # another height
        timeout(1, PROPOSE),  # another round
        timeout(0, PREVOTE),  # another step
        timeout(0, PRECOMMIT, h=0),
    ],
)
def test_lines_57_67_stale_timeouts_are_ignored(stale: TimeoutInput) -> None:
    n = Node()
    assert n.feed(stale) == []
    assert (n.m.round, n.m.step) == (0, PROPOSE)


def test_lines_57_67_timeouts_in_their_own_round_and_step() -> None:
    n = Node()
    assert votes(n.feed(timeout(0, PROPOSE))) == [(PV, 0, NIL)]  # lines 57-60
    assert n.feed(timeout(0, PROPOSE)) == []  # step is prevote now: stale
    assert votes(n.feed(timeout(0, PREVOTE))) == [(PC, 0, NIL)]  # lines 61-64
    assert n.feed(timeout(0, PREVOTE)) == []
    out = n.feed(timeout(0, PRECOMMIT))  # lines 65-67, in any step
    assert (n.m.round, n.m.step) == (1, PROPOSE)
    assert timeouts(out) == [(1, PROPOSE, 3500)]
    assert n.feed(timeout(0, PRECOMMIT)) == []  # round 0 is gone


def test_timeout_precommit_moves_on_from_the_propose_step_too() -> None:
    n = Node()
    n.feed(timeout(0, PRECOMMIT))
    assert n.m.round == 1


# -- inputs the machine must ignore or report ------------------------------------------------------


def test_votes_of_other_heights_or_outsiders_are_ignored() -> None:
    n = Node()
    out = n.feed(
        pv(B, 0, V1, h=2),
        pv(C, 0, V1, h=2),
        pv(D, 0, V1, h=2),
        VoteInput(Vote(PV, 1, 4, V1, OUTSIDER, b"")),
    )
    assert out == []
    assert n.m.votes.power_any(0, PV) == 0 and n.m.round == 0


def test_equivocation_is_reported_once_and_the_second_vote_is_not_counted() -> None:
    n = Node()
    first, second = Vote(PV, 1, 0, V1, D, b"x"), Vote(PV, 1, 0, V2, D, b"y")
    assert n.feed(VoteInput(first)) == []
    assert n.feed(VoteInput(second)) == [EquivocationAction(first, second)]
    assert n.feed(VoteInput(second)) == []
    assert n.feed(VoteInput(Vote(PV, 1, 0, NIL, D, b"z"))) == []  # once per step
    assert n.m.status().prevotes == {D: V1}
    assert n.m.status().prevote_power == 1  # D counts once for "any"
    # V2 has no other backer: D's second vote does not count toward it
    assert n.m.votes.power(0, PV, V2) == 0
    n.feed(timeout(0, PROPOSE))
    n.feed(pv(B, 0, V1))  # A (nil), B (V1), D: three senders
    assert n.m.votes.has_quorum_any(0, PV)


def test_an_equivocator_cannot_hide_a_polka_from_an_honest_node() -> None:
    """D sends V2 to us first and V1 to the others, who lock on V1 in round 0 with D's vote.
    When one of them re-proposes V1 with vr = 0, we must see that polka (line 28) or the
    height halts: honest B and C will prevote nothing else, and A, B, C are the only quorum
    without D. Found by the Twins simulation."""
    n = Node()
    n.feed(timeout(0, PROPOSE))  # we missed round 0's proposal: prevote nil
    n.feed(pv(D, 0, V2), pv(B, 0, V1), pv(C, 0, V1))
    assert n.m.votes.quorum_value(0, PV) is None
    out = n.feed(pv(D, 0, V1))  # D's other vote, gossiped on by B and C
    assert [type(a) for a in out] == [EquivocationAction]
    assert n.m.votes.quorum_value(0, PV) == V1
    n.goto_round(1)
    assert votes(n.feed(prop(1, V1, vr=0))) == [(PV, 1, V1)]


def test_a_malformed_proposal_is_ignored() -> None:
    n = Node()
    assert n.feed(prop(-1, V1), prop(0, NIL), prop(0, V1, vr=-2)) == []
    assert n.m.status().proposal is None


def test_an_equivocating_proposer_first_proposal_is_prevoted_and_both_can_be_decided() -> None:
    n = Node()
    assert votes(n.feed(prop(0, V1), prop(0, V2))) == [(PV, 0, V1)]
    out = n.feed(pc(B, 0, V2), pc(C, 0, V2), pc(D, 0, V2))
    assert [d.block_hash for d in decisions(out)] == [V2]


# -- who we are ------------------------------------------------------------------------------------


@pytest.mark.parametrize("me", [None, OUTSIDER])
def test_a_non_validator_never_proposes_or_votes_but_decides(me: bytes | None) -> None:
    n = Node(me=me, proposers={0: OUTSIDER, 1: OUTSIDER})
    assert n.log == [ScheduleTimeout(1, 0, PROPOSE, 3000)]
    out = n.feed(prop(0, V1), pv(B, 0, V1), pv(C, 0, V1), pv(D, 0, V1), timeout(0, PREVOTE))
    assert votes(out) == [] and not n.m.is_validator
    out = n.feed(timeout(0, PRECOMMIT), pc(B, 0, V1), pc(C, 0, V1), pc(D, 0, V1))
    assert not any(isinstance(a, ProposeAction | VoteAction) for a in n.log)
    assert [d.block_hash for d in decisions(out)] == [V1]


def test_inputs_before_start_are_recorded_and_acted_on_at_start() -> None:
    n = Node(start=False)
    assert n.feed(prop(0, V1), pc(B, 0, V1), pc(C, 0, V1), pc(D, 0, V1)) == []
    assert n.m.status().waiting_for == "height 1 to start"
    assert [type(a) for a in n.start()] == [ScheduleTimeout, DecideAction]


def test_weighted_power_and_status_words() -> None:
    vals = ValidatorSet([Validator(A, 1), Validator(B, 2), Validator(C, 3), Validator(D, 4)])
    n = Node(validators=vals, proposers={0: C})
    s = n.m.status()
    assert (s.total_power, s.quorum, s.proposer) == (10, 7, C)
    assert s.waiting_for == f"proposal from {C.hex()[:8]}… (round 0)"
    n.feed(prop(0, V1))
    n.feed(pv(B, 0, V1))
    s = n.m.status()
    assert s.proposal == V1 and s.prevotes == {A: V1, B: V1}
    assert s.waiting_for == "prevotes: 3 of 10 power, need 7"
    n.feed(pv(C, 0, V2), pv(D, 0, NIL))  # 10 of 10, no value has 7: timer
    assert n.m.status().waiting_for == (
        "the prevote timeout of round 0: prevotes are split, neither a block nor nil has 7 of 10 "
        "power"
    )
    n.feed(timeout(0, PREVOTE))
    assert n.m.status().waiting_for == "precommits: 1 of 10 power, need 7"
    n.feed(pc(D, 0, NIL), pc(C, 0, NIL))
    assert n.m.status().precommit_power == 8
    assert n.m.status().waiting_for == (
        "the precommit timeout of round 0: precommits are split, no block has 7 of 10 power; "
        "then round 1"
    )
    assert Node(proposers={0: A}, start=False).m.status().waiting_for == "height 1 to start"
    own = Machine(1, VALS, A, T, lambda r: A)
    own.start()
    assert own.status().waiting_for == "this node's own proposal (round 0)"
    # D alone holds more than 1/3: its single vote at round 5 is f+1
    n.feed(pv(D, 5, NIL))
    assert n.m.round == 5


# -- properties of one machine under arbitrary inputs ----------------------------------------------

KEYS = (A, B, C, D)
inputs_st = st.lists(
    st.one_of(
        st.builds(
            lambda t, w, r, v: VoteInput(Vote(t, 1, r, v, w, b"")),
            st.sampled_from([PV, PC]),
            st.sampled_from([B, C, D]),
            st.integers(0, 3),
            st.sampled_from([NIL, V1, V2]),
        ),
        st.builds(
            prop, st.integers(0, 3), st.sampled_from([V1, V2]), st.integers(-1, 2), st.booleans()
        ),
        st.builds(timeout, st.integers(0, 3), st.sampled_from([PROPOSE, PREVOTE, PRECOMMIT])),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(inputs_st)
@example(  # found by a CI run: a block re-proposed at round 1, its first verdict valid
    [pc(w, 1, V1) for w in (B, C, D)] + [prop(0, V1, -1, True), prop(1, V1, -1, False)]
)
def test_machine_invariants_under_arbitrary_inputs(inputs: list[Input]) -> None:
    """Never two different votes for one (round, type); round, lock round and (within a round)
    step never go back; at most one decision, backed by 2f+1 precommits and a valid proposal;
    the same inputs give the same actions."""
    n = Node(proposers={1: A, 3: A})
    replay = Node(proposers={1: A, 3: A})
    sent: dict[tuple[VoteType, int], bytes] = {}
    last = (n.m.round, n.m.step, n.m.status().locked_round)
    # valid(v) is a function of the block: the machine keeps the first verdict the driver
    # gave for a hash. The inputs may give one hash both verdicts (a real driver cannot), so
    # a decision at r needs a proposal of its block at r and that block's first verdict.
    first: dict[bytes, bool] = {}
    for i in inputs:
        if isinstance(i, ProposalInput):
            first.setdefault(i.block_hash, i.valid)
    valid = {
        (i.round, i.block_hash)
        for i in inputs
        if isinstance(i, ProposalInput) and first[i.block_hash]
    }
    valid |= {(r, NEW) for r in (1, 3)}  # what we propose ourselves (Node feeds it back)
    for inp in inputs:
        out = n.feed(inp)
        assert out == replay.feed(inp)
        for a in out:
            if isinstance(a, VoteAction):
                assert sent.setdefault((a.type, a.round), a.block_hash) == a.block_hash
            if isinstance(a, DecideAction):
                assert (a.round, a.block_hash) in valid
                assert VALS.has_quorum(len(a.precommits))
        now = (n.m.round, n.m.step, n.m.status().locked_round)
        assert now[0] >= last[0] and now[2] >= last[2]
        if now[0] == last[0]:
            assert now[1] >= last[1]
        last = now
    assert len(decisions(n.log)) <= 1
