"""Tendermint consensus for one height, as a pure state machine: inputs in, actions out.

Theory of operation
===================

This is Algorithm 1 of "The latest gossip on BFT consensus" (Buchman, Kwon, Milosevic, 2018,
arXiv:1807.04938; the line numbers are those of the paper as rendered in Malachite's
``specs/consensus/pseudo-code.md``). It is implemented from the paper, not from CometBFT's
stale ``consensus.md``. One :class:`Machine` decides one height; the driver makes a new one
for the next height after a :class:`DecideAction` (which is how the paper's lines 52-54,
"h := h+1, reset, StartRound(0)", are done). The machine does no I/O, reads no clock, draws
no random numbers, uses no floats and never depends on the iteration order of a set: the same
inputs in the same order give the same actions, which is what WAL replay needs.

The paper's *message log* is the :class:`~citychain.consensus.votes.VoteKeeper` (the votes of
every round of the height, tallied per sender and value) plus the proposals of every round.
After each input is recorded, the upon-rules are evaluated over that log until none is
enabled (each firing changes the step or the round, decides, or sets a "first time" flag, so
this ends). The paper lets any enabled rule fire first; we fix one order (below), as
Malachite's driver does.

===============================  ============  ==============================================
handler                          paper lines   what it does
===============================  ============  ==============================================
``start`` / ``_start_round``     10, 11-21     round := r, step := propose; the proposer emits
                                               ProposeAction(validValue or a new block),
                                               everyone else schedules timeoutPropose(r)
``_rule_proposal`` (vr = -1)     22-27         proposal of this round, step = propose:
                                               prevote v if valid(v) and (not locked or
                                               locked on v), else nil; step := prevote
``_rule_proposal`` (vr >= 0)     28-33         ... and 2f+1 prevotes for v at vr < round
                                               (from any earlier round of the height):
                                               prevote v if valid(v) and (lockedRound <= vr
                                               or locked on v), else nil; step := prevote
``_rule_polka_any``              34-35         2f+1 prevotes for anything, step = prevote,
                                               first time: schedule timeoutPrevote(round)
``_rule_polka_value``            36-43         proposal v + 2f+1 prevotes for v, valid(v),
                                               step >= prevote, first time: if step = prevote
                                               lock v, precommit v, step := precommit; always
                                               validValue, validRound := v, round
``_rule_polka_nil``              44-46         2f+1 prevotes for nil, step = prevote:
                                               precommit nil; step := precommit
``_rule_precommit_any``          47-48         2f+1 precommits for anything, first time:
                                               schedule timeoutPrecommit(round)
``_rule_decide``                 49-54         proposal v of ANY round r + 2f+1 precommits
                                               for v at r, valid(v), not yet decided:
                                               decide (even if we never voted in r)
``_rule_skip_round``             55-56         f+1 power of distinct senders (votes, or the
                                               proposer of a proposal we hold) at r > round:
                                               StartRound(r)
``_on_timeout`` PROPOSE          57-60         same h, round, step = propose: prevote nil
``_on_timeout`` PREVOTE          61-64         same h, round, step = prevote: precommit nil
``_on_timeout`` PRECOMMIT        65-67         same h, round: StartRound(round + 1)
===============================  ============  ==============================================

Timeouts that do not match the current (height, round, step) are stale and ignored (lines 58,
62, 66; pitfall 10). "2f+1" means more than 2/3 of the voting power, "f+1" more than 1/3
(``3 * power > total``, CometBFT's "+1/3"): any set of that much power holds an honest node.

Rule priority (when several rules are enabled at once, the first in this list fires, then
the list is scanned again from the top):

1. lines 49-54, decide (lowest round first). A decision is final; nothing else matters.
2. lines 55-56, round skip (to the highest round with f+1 power). Skipping is always safe and
   re-synchronises rounds (pitfall 3); acting in a round we are about to leave is wasted work.
3. lines 22-33, the proposal rules (step = propose), proposals in the order they arrived.
4. lines 36-43, polka for a value (before the timeout rule 34, so a polka we can act on does
   not also schedule a useless prevote timeout).
5. lines 44-46, polka for nil.
6. lines 34-35, prevote timeout.
7. lines 47-48, precommit timeout.

Inputs (the driver's contract):

* :class:`ProposalInput` - a proposal of this height whose sender the driver checked is
  ``proposer(round)`` and whose block it fully received and re-executed (``valid``). Proposals
  of any round are kept: one for a later round is used when that round starts, one for an
  earlier round can still be decided (line 49). A proposer that equivocates may get several
  proposals into one round; all are kept (so that lines 36 and 49 can match the one the
  quorum voted for), lines 22/28 act on the first one that enables them. The driver should
  bound how many it passes per round (for instance, fetch a second block only once votes
  name it). A proposal with ``valid=False`` makes us prevote nil and is never locked on,
  remembered as validValue, or decided.
* :class:`VoteInput` - a vote whose signature verified. Votes of another height, or from a
  key outside the validator set, are ignored (the driver buffers next-height votes). Votes
  for far-ahead rounds are kept (the driver bounds rounds). A second, different vote from a
  validator for the same (round, type) produces an :class:`EquivocationAction` once; it never
  counts twice for the validator, but it does count toward *its own value* once an honest-
  looking first vote backs that value (see :mod:`citychain.consensus.votes` for why: without
  this one equivocator can hide a polka from an honest node and halt the height). So the
  driver must relay conflicting votes too, as it relays any vote new to it.
* :class:`TimeoutInput` - a timer the machine asked for with :class:`ScheduleTimeout` fired.

Outputs are actions for the driver, in the order they arose. Our own votes and proposals
are *not* put into the log by the machine: the driver signs them (through its double-sign
guard), broadcasts them, and feeds them back as inputs, as the paper's processes receive
their own broadcasts. A node that is not a validator (``me`` is None or not in the set)
runs the same rules but never emits ProposeAction or VoteAction; it still decides.

Inputs may be given before :meth:`Machine.start`: they are recorded (and equivocation is
reported) but no rule fires until the machine has started.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import TypeAlias

from citychain.consensus.votes import VoteKeeper
from citychain.types import NIL, ValidatorSet, Vote, VoteType

__all__ = [
    "Action",
    "DecideAction",
    "EquivocationAction",
    "Input",
    "Machine",
    "MachineStatus",
    "ProposalInput",
    "ProposeAction",
    "ScheduleTimeout",
    "Step",
    "TimeoutInput",
    "Timeouts",
    "VoteAction",
    "VoteInput",
]


class Step(IntEnum):
    PROPOSE = 1
    PREVOTE = 2
    PRECOMMIT = 3
    DECIDED = 4


@dataclass(frozen=True, slots=True)
class Timeouts:
    """timeoutX(r) = X + r * delta, in milliseconds (paper section 3)."""

    propose_ms: int
    prevote_ms: int
    precommit_ms: int
    delta_ms: int

    def __post_init__(self) -> None:
        for name in ("propose_ms", "prevote_ms", "precommit_ms", "delta_ms"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"timeout {name} must be a non-negative integer")

    def for_step(self, step: Step, round_: int) -> int:
        if step == Step.PROPOSE:
            base = self.propose_ms
        elif step == Step.PREVOTE:
            base = self.prevote_ms
        elif step == Step.PRECOMMIT:
            base = self.precommit_ms
        else:
            raise ValueError(f"no timeout for step {step.name}")
        return base + max(round_, 0) * self.delta_ms


# -- inputs ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProposalInput:
    """A complete proposal for this height from proposer(h, round), its block received."""

    round: int
    block_hash: bytes
    pol_round: int  # -1, or the proposer's validRound
    valid: bool  # the driver re-executed the block and it checks out: the paper's valid(v)


@dataclass(frozen=True, slots=True)
class VoteInput:
    vote: Vote


@dataclass(frozen=True, slots=True)
class TimeoutInput:
    height: int
    round: int
    step: Step


Input: TypeAlias = ProposalInput | VoteInput | TimeoutInput


# -- actions -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProposeAction:
    """We are proposer(h, r): broadcast PROPOSAL(h, r, v, valid_round).

    ``value`` is validValue's block hash, to re-propose the identical block (pitfall 9), or
    None for a new block (the paper's getValue()). The driver feeds the proposal back as a
    :class:`ProposalInput`.
    """

    height: int
    round: int
    valid_round: int
    value: bytes | None


@dataclass(frozen=True, slots=True)
class VoteAction:
    """Sign and broadcast this vote; the driver feeds it back as a :class:`VoteInput`."""

    type: VoteType
    height: int
    round: int
    block_hash: bytes


@dataclass(frozen=True, slots=True)
class ScheduleTimeout:
    height: int
    round: int
    step: Step
    duration_ms: int


@dataclass(frozen=True, slots=True)
class DecideAction:
    """decision[h] = block_hash; ``precommits`` (>2/3, sorted by validator) are its Commit."""

    height: int
    round: int
    block_hash: bytes
    precommits: tuple[Vote, ...]


@dataclass(frozen=True, slots=True)
class EquivocationAction:
    """Two different votes by one validator for one step (``vote_a`` is the counted one)."""

    vote_a: Vote
    vote_b: Vote


Action: TypeAlias = ProposeAction | VoteAction | ScheduleTimeout | DecideAction | EquivocationAction


@dataclass(frozen=True, slots=True)
class MachineStatus:
    """What an operator needs to see why this height is (not) moving."""

    height: int
    round: int
    step: Step
    locked_round: int
    locked_value: bytes | None
    valid_round: int
    valid_value: bytes | None
    proposal: bytes | None  # the (first) proposal of the current round
    proposer: bytes  # of the current round
    prevotes: dict[bytes, bytes]  # validator -> block hash (NIL = nil), current round
    precommits: dict[bytes, bytes]
    prevote_power: int
    precommit_power: int
    total_power: int
    quorum: int  # the least power that is more than 2/3
    waiting_for: str


def short_key(key: bytes) -> str:
    """How the machine names a validator in its words: a hex prefix."""
    return key.hex()[:8] + "…"


class Machine:
    """Algorithm 1 for one height. See the module docstring for the theory of operation."""

    def __init__(
        self,
        height: int,
        validators: ValidatorSet,
        me: bytes | None,
        timeouts: Timeouts,
        proposer: Callable[[int], bytes],
    ) -> None:
        self._height = height
        self._validators = validators
        self._me = me
        self._is_validator = me is not None and me in validators
        self._timeouts = timeouts
        self._proposer = proposer
        self._votes = VoteKeeper(height, validators)
        # round -> the distinct (block hash, pol_round) proposed in it, in arrival order
        self._proposals: dict[int, list[tuple[bytes, int]]] = {}
        # block hash -> valid(v), as the driver first reported it (valid() is deterministic)
        self._validity: dict[bytes, bool] = {}
        self._started = False
        self._round = 0
        self._step = Step.PROPOSE
        self._locked_value: bytes | None = None
        self._locked_round = -1
        self._valid_value: bytes | None = None
        self._valid_round = -1
        self._decided: bytes | None = None
        # the "for the first time" guards of the current round
        self._done_34 = False
        self._done_36 = False
        self._done_47 = False

    # -- read-only views -----------------------------------------------------------------------

    @property
    def height(self) -> int:
        return self._height

    @property
    def round(self) -> int:
        return self._round

    @property
    def step(self) -> Step:
        return self._step

    @property
    def decided(self) -> bytes | None:
        return self._decided

    @property
    def votes(self) -> VoteKeeper:
        """The message log's votes (for gossip catch-up and diagnostics; do not add to it)."""
        return self._votes

    @property
    def is_validator(self) -> bool:
        return self._is_validator

    # -- entry points --------------------------------------------------------------------------

    def start(self) -> list[Action]:
        """Line 10: upon start, StartRound(0)."""
        if self._started:
            raise RuntimeError(f"the machine of height {self._height} has already started")
        self._started = True
        out: list[Action] = []
        self._start_round(0, out)
        self._run_rules(out)
        return out

    def handle(self, inp: Input) -> list[Action]:
        """Record one input, then fire every upon-rule it enables, in priority order."""
        out: list[Action] = []
        if isinstance(inp, VoteInput):
            self._on_vote(inp.vote, out)
        elif isinstance(inp, ProposalInput):
            self._on_proposal(inp)
        elif isinstance(inp, TimeoutInput):
            self._on_timeout(inp, out)
        else:
            raise TypeError(f"not a consensus input: {inp!r}")
        if self._started:
            self._run_rules(out)
        return out

    # -- recording inputs ----------------------------------------------------------------------

    def _on_vote(self, vote: Vote, out: list[Action]) -> None:
        if vote.height != self._height or vote.round < 0 or vote.validator not in self._validators:
            return
        result = self._votes.add(vote)
        if result.evidence is not None:
            out.append(EquivocationAction(*result.evidence))

    def _on_proposal(self, p: ProposalInput) -> None:
        if p.round < 0 or p.pol_round < -1 or p.block_hash == NIL:
            return
        self._validity.setdefault(p.block_hash, p.valid)
        proposed = self._proposals.setdefault(p.round, [])
        if (p.block_hash, p.pol_round) not in proposed:
            proposed.append((p.block_hash, p.pol_round))

    def _on_timeout(self, t: TimeoutInput, out: list[Action]) -> None:
        if not self._started or self._step == Step.DECIDED:
            return
        if t.height != self._height or t.round != self._round:
            return  # stale (lines 58, 62, 66)
        if t.step == Step.PROPOSE and self._step == Step.PROPOSE:  # lines 57-60
            self._vote(VoteType.PREVOTE, NIL, out)
            self._step = Step.PREVOTE
        elif t.step == Step.PREVOTE and self._step == Step.PREVOTE:  # lines 61-64
            self._vote(VoteType.PRECOMMIT, NIL, out)
            self._step = Step.PRECOMMIT
        elif t.step == Step.PRECOMMIT:  # lines 65-67
            self._start_round(self._round + 1, out)

    # -- the algorithm -------------------------------------------------------------------------

    def _start_round(self, round_: int, out: list[Action]) -> None:
        """Lines 11-21."""
        self._round = round_
        self._step = Step.PROPOSE
        self._done_34 = self._done_36 = self._done_47 = False
        if self._is_validator and self._proposer(round_) == self._me:
            out.append(ProposeAction(self._height, round_, self._valid_round, self._valid_value))
        else:
            out.append(
                ScheduleTimeout(
                    self._height,
                    round_,
                    Step.PROPOSE,
                    self._timeouts.for_step(Step.PROPOSE, round_),
                )
            )

    def _run_rules(self, out: list[Action]) -> None:
        while self._step != Step.DECIDED:
            if self._rule_decide(out):
                return
            if self._rule_skip_round(out):
                continue
            if self._step == Step.PROPOSE and self._rule_proposal(out):
                continue
            if self._rule_polka_value(out):
                continue
            if self._rule_polka_nil(out):
                continue
            if self._rule_polka_any(out):
                continue
            if self._rule_precommit_any(out):
                continue
            return

    def _rule_decide(self, out: list[Action]) -> bool:
        """Lines 49-54: PROPOSAL(h, r, v, *) and 2f+1 PRECOMMIT(h, r, id(v)), any round r."""
        for r in sorted(self._proposals):
            for v, _ in self._proposals[r]:
                if not self._validity[v] or not self._votes.has_quorum_for(
                    r, VoteType.PRECOMMIT, v
                ):
                    continue
                self._decided = v
                self._step = Step.DECIDED
                precommits = self._votes.votes_for(r, VoteType.PRECOMMIT, v)
                out.append(DecideAction(self._height, r, v, precommits))
                return True
        return False

    def _rule_skip_round(self, out: list[Action]) -> bool:
        """Lines 55-56: f+1 messages of any type at a round r > round: StartRound(r)."""
        later = set(self._votes.rounds())
        later.update(self._proposals)
        for r in sorted((r for r in later if r > self._round), reverse=True):
            also = (self._proposer(r),) if r in self._proposals else ()
            if self._votes.skip_power(r, also) * 3 > self._validators.total_power:
                self._start_round(r, out)
                return True
        return False

    def _rule_proposal(self, out: list[Action]) -> bool:
        """Lines 22-27 (vr = -1) and 28-33 (2f+1 prevotes for v at 0 <= vr < round)."""
        for v, vr in self._proposals.get(self._round, ()):
            if vr == -1:  # line 22
                ok = self._validity[v] and (self._locked_round == -1 or self._locked_value == v)
            elif 0 <= vr < self._round and self._votes.has_quorum_for(vr, VoteType.PREVOTE, v):
                ok = self._validity[v] and (  # line 29
                    self._locked_round <= vr or self._locked_value == v
                )
            else:
                continue  # vr without its polka (yet): wait for prevotes or timeoutPropose
            self._vote(VoteType.PREVOTE, v if ok else NIL, out)  # lines 24/26, 30/32
            self._step = Step.PREVOTE  # lines 27, 33
            return True
        return False

    def _rule_polka_any(self, out: list[Action]) -> bool:
        """Lines 34-35."""
        if (
            self._done_34
            or self._step != Step.PREVOTE
            or not self._votes.has_quorum_any(self._round, VoteType.PREVOTE)
        ):
            return False
        self._done_34 = True
        out.append(self._timeout(Step.PREVOTE))
        return True

    def _rule_polka_value(self, out: list[Action]) -> bool:
        """Lines 36-43."""
        if self._done_36 or self._step < Step.PREVOTE:
            return False
        v = self._polka_proposal()
        if v is None:
            return False
        self._done_36 = True
        if self._step == Step.PREVOTE:  # lines 37-41
            self._locked_value, self._locked_round = v, self._round
            self._vote(VoteType.PRECOMMIT, v, out)
            self._step = Step.PRECOMMIT
        self._valid_value, self._valid_round = v, self._round  # lines 42-43
        return True

    def _rule_polka_nil(self, out: list[Action]) -> bool:
        """Lines 44-46."""
        if self._step != Step.PREVOTE or not self._votes.has_quorum_for(
            self._round, VoteType.PREVOTE, NIL
        ):
            return False
        self._vote(VoteType.PRECOMMIT, NIL, out)
        self._step = Step.PRECOMMIT
        return True

    def _rule_precommit_any(self, out: list[Action]) -> bool:
        """Lines 47-48."""
        if self._done_47 or not self._votes.has_quorum_any(self._round, VoteType.PRECOMMIT):
            return False
        self._done_47 = True
        out.append(self._timeout(Step.PRECOMMIT))
        return True

    # -- helpers -------------------------------------------------------------------------------

    def _polka_proposal(self) -> bytes | None:
        """A valid value proposed in this round with 2f+1 prevotes in it (line 36)."""
        for v, _ in self._proposals.get(self._round, ()):
            if self._validity[v] and self._votes.has_quorum_for(self._round, VoteType.PREVOTE, v):
                return v
        return None

    def _vote(self, type_: VoteType, block_hash: bytes, out: list[Action]) -> None:
        if self._is_validator:
            out.append(VoteAction(type_, self._height, self._round, block_hash))

    def _timeout(self, step: Step) -> ScheduleTimeout:
        return ScheduleTimeout(
            self._height, self._round, step, self._timeouts.for_step(step, self._round)
        )

    # -- diagnostics ---------------------------------------------------------------------------

    def status(self) -> MachineStatus:
        r = self._round
        proposals = self._proposals.get(r, [])
        proposer = self._proposer(r)
        prevote_power = self._votes.power_any(r, VoteType.PREVOTE)
        precommit_power = self._votes.power_any(r, VoteType.PRECOMMIT)
        return MachineStatus(
            height=self._height,
            round=r,
            step=self._step,
            locked_round=self._locked_round,
            locked_value=self._locked_value,
            valid_round=self._valid_round,
            valid_value=self._valid_value,
            proposal=proposals[0][0] if proposals else None,
            proposer=proposer,
            prevotes=self._votes.voted(r, VoteType.PREVOTE),
            precommits=self._votes.voted(r, VoteType.PRECOMMIT),
            prevote_power=prevote_power,
            precommit_power=precommit_power,
            total_power=self._validators.total_power,
            quorum=self._validators.quorum(),
            waiting_for=self._waiting_for(proposer, prevote_power, precommit_power),
        )

    def _waiting_for(self, proposer: bytes, prevote_power: int, precommit_power: int) -> str:
        r = self._round
        total, quorum = self._validators.total_power, self._validators.quorum()
        # Words for a person watching the chain: what would make this height move on.
        if self._step == Step.DECIDED:
            return f"the next height: block {self._height} is decided"
        if not self._started:
            return f"height {self._height} to start"
        if self._step == Step.PROPOSE:
            for _, vr in self._proposals.get(r, ()):
                if 0 <= vr < r:
                    return f"prevotes of round {vr} for the re-proposed block (round {r})"
            if self._is_validator and proposer == self._me:
                return f"this node's own proposal (round {r})"
            return f"proposal from {short_key(proposer)} (round {r})"
        if self._step == Step.PREVOTE:
            if self._votes.has_quorum_any(r, VoteType.PREVOTE):
                return (
                    f"the prevote timeout of round {r}: prevotes are split, neither a block nor "
                    f"nil has {quorum} of {total} power"
                )
            return f"prevotes: {prevote_power} of {total} power, need {quorum}"
        if self._votes.has_quorum_any(r, VoteType.PRECOMMIT):
            return (
                f"the precommit timeout of round {r}: precommits are split, no block has "
                f"{quorum} of {total} power; then round {r + 1}"
            )
        return f"precommits: {precommit_power} of {total} power, need {quorum}"
