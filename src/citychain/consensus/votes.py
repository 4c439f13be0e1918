"""The vote keeper of one height: every prevote and precommit of every round, and their tallies.

Why every round (pitfall 2 of the consensus research notes): the proposal rule of lines 28-33
of the paper needs the 2f+1 prevotes of an *earlier* round ``vr``, the decision rule of lines
49-54 accepts 2f+1 precommits of *any* round, and the round-skip rule of lines 55-56 looks at
*later* rounds. A keeper that forgot old rounds would halt exactly like Malachite#850.

Counting. The paper counts, for "2f+1 <PREVOTE, h, r, id(v)>", the power of the *senders* of
such messages, and for "2f+1 <PREVOTE, h, r, *>" the power of the senders of any prevote. So:

* the **first** vote of a validator for a step (round, type) is its counted vote: it is what
  :meth:`voted` and :meth:`get` show, and the validator's power counts once toward the step's
  any-value tally (:meth:`power_any`) and toward :meth:`skip_power`;
* a later vote with the **same** block hash is a duplicate and is ignored (votes are told apart
  by what they say, never by their signature bytes: pitfall 11);
* a later vote with a **different** block hash (nil counts as a value) is equivocation. The first
  time it happens for a (validator, round, type), the pair ``(first, this)`` is returned as
  evidence. The conflicting vote is *also counted toward its own value* once that value is
  *backed*: nil, or a value that another validator's first vote names. Until then it is parked
  (at most ``PARK_LIMIT`` per validator and step, oldest dropped).

Why conflicting votes must count (a deviation from "store one vote and drop the rest"): with
one equivocator, honest node A may receive its prevote for v first and see a polka for v (and
lock on v), while honest node B received its prevote for w first and, if the v-vote were
dropped, could never see that polka. Then B refuses A's re-proposal of v (line 28 needs the
polka) while A refuses every other value (its lock): with the honest power only just above 2/3,
the height halts forever. The simulator's Twins runs (tests/consensus/test_machine_sim.py) hit
exactly this. Tendermint's liveness assumes that a quorum one correct node saw reaches every
correct node *including the Byzantine votes in it* (malachite#103/#309; CometBFT adds
conflicting votes for a block a peer claims +2/3 for). Counting per value restores the paper's
semantics; safety is unaffected, as the paper's proofs already let Byzantine senders send
anything.

Why this stays bounded (pitfall 4: Byzantine spam). Honest validators only vote for nil or a
value whose proposal they hold, so every value a quorum can form on is backed by an honest
first vote. Counted votes per (validator, step) are at most 1 + the number of distinct first
votes of others, that is at most n + 1; parked ones at most ``PARK_LIMIT``. A Byzantine can
push its own conflicting vote out of the parking before it is backed; the gossip layer's
quorum catch-up (re-sending the votes of a +2/3 set, as CometBFT's VoteSetMaj23 does) then
delivers it again once the value is backed.

Powers are integers; "quorum" is more than two thirds of the total
(:meth:`ValidatorSet.has_quorum`). Nothing here depends on the iteration order of a set.
The keeper trusts its caller for signatures: it only checks that a vote is for its height and
from a member of its validator set, and raises :class:`ValueError` otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import Enum

from citychain.types import NIL, ValidatorSet, Vote, VoteType

__all__ = ["PARK_LIMIT", "AddKind", "AddResult", "VoteKeeper"]

#: Conflicting votes for not-yet-backed values kept per (validator, round, type).
PARK_LIMIT = 2


class AddKind(Enum):
    ADDED = "added"  # the validator's first vote for this step: counted
    DUPLICATE = "duplicate"  # a vote for a value this validator already has a vote for: ignored
    CONFLICT = "conflict"  # another value than the validator's first vote for this step


@dataclass(frozen=True, slots=True)
class AddResult:
    kind: AddKind
    #: For the first conflict of a (validator, round, type): (its first vote, this vote).
    evidence: tuple[Vote, Vote] | None = None

    @property
    def added(self) -> bool:
        return self.kind is AddKind.ADDED


class _StepVotes:
    """The votes of one (round, type)."""

    __slots__ = ("conflicting", "first", "parked", "power_any", "value_power", "voters")

    def __init__(self) -> None:
        self.first: dict[bytes, Vote] = {}  # validator -> its first vote
        self.conflicting: dict[tuple[bytes, bytes], Vote] = {}  # (validator, value) -> counted
        self.parked: dict[bytes, list[Vote]] = {}  # validator -> conflicting, value not backed
        self.value_power: dict[bytes, int] = {}  # value -> power of its distinct senders
        self.voters: dict[bytes, list[bytes]] = {}  # value -> its senders (first or conflicting)
        self.power_any = 0


class VoteKeeper:
    """All votes of one height, with the paper's per-sender tallies."""

    __slots__ = ("_conflicts", "_height", "_sender_power", "_senders", "_steps", "_validators")

    def __init__(self, height: int, validators: ValidatorSet) -> None:
        self._height = height
        self._validators = validators
        self._steps: dict[tuple[int, VoteType], _StepVotes] = {}
        # round -> validators that sent any vote in it (membership tests only, never iterated)
        self._senders: dict[int, set[bytes]] = {}
        self._sender_power: dict[int, int] = {}
        # (validator, round, type) already reported as equivocating
        self._conflicts: set[tuple[bytes, int, VoteType]] = set()

    @property
    def height(self) -> int:
        return self._height

    @property
    def validators(self) -> ValidatorSet:
        return self._validators

    # -- adding ------------------------------------------------------------------------------

    def add(self, vote: Vote) -> AddResult:
        """Record ``vote``; see the module docstring for duplicates and conflicts."""
        if vote.height != self._height:
            raise ValueError(f"{vote.describe()} is not for height {self._height}")
        if vote.validator not in self._validators:
            raise ValueError(f"{vote.describe()} is not from a validator of this height")
        if vote.round < 0:
            raise ValueError(f"{vote.describe()} has a negative round")
        step = self._steps.setdefault((vote.round, vote.type), _StepVotes())
        who, value = vote.validator, vote.block_hash
        first = step.first.get(who)
        if first is None:
            step.first[who] = vote
            power = self._validators.power_of(who)
            step.power_any += power
            self._count(step, who, value)
            senders = self._senders.setdefault(vote.round, set())
            if who not in senders:
                senders.add(who)
                self._sender_power[vote.round] = self._sender_power.get(vote.round, 0) + power
            self._unpark(step, value, who)
            return AddResult(AddKind.ADDED)
        if value == first.block_hash or (who, value) in step.conflicting:
            return AddResult(AddKind.DUPLICATE)
        parked = step.parked.setdefault(who, [])
        if any(p.block_hash == value for p in parked):
            return AddResult(AddKind.DUPLICATE)
        if self._backed(step, value, who):
            step.conflicting[(who, value)] = vote
            self._count(step, who, value)
        else:
            parked.append(vote)
            if len(parked) > PARK_LIMIT:
                del parked[0]
        key = (who, vote.round, vote.type)
        if key in self._conflicts:
            return AddResult(AddKind.CONFLICT)
        self._conflicts.add(key)
        return AddResult(AddKind.CONFLICT, (first, vote))

    def _count(self, step: _StepVotes, who: bytes, value: bytes) -> None:
        step.value_power[value] = step.value_power.get(value, 0) + self._validators.power_of(who)
        step.voters.setdefault(value, []).append(who)

    @staticmethod
    def _backed(step: _StepVotes, value: bytes, who: bytes) -> bool:
        """Nil, or a value that a validator other than ``who`` voted for first."""
        return value == NIL or any(
            k != who and step.first[k].block_hash == value for k in step.voters.get(value, ())
        )

    def _unpark(self, step: _StepVotes, value: bytes, backer: bytes) -> None:
        """``backer``'s first vote backs ``value``: count the parked votes for it."""
        for who in sorted(step.parked):
            if who == backer:
                continue
            kept = []
            for p in step.parked[who]:
                if p.block_hash == value:
                    step.conflicting[(who, value)] = p
                    self._count(step, who, value)
                else:
                    kept.append(p)
            step.parked[who] = kept

    # -- queries -----------------------------------------------------------------------------

    def get(self, round_: int, type_: VoteType, validator: bytes) -> Vote | None:
        """The first vote of ``validator`` for this step, if any."""
        step = self._steps.get((round_, type_))
        return step.first.get(validator) if step else None

    def power(self, round_: int, type_: VoteType, block_hash: bytes) -> int:
        """The power of the distinct senders of counted votes for ``block_hash`` (NIL = nil)."""
        step = self._steps.get((round_, type_))
        return step.value_power.get(block_hash, 0) if step else 0

    def power_any(self, round_: int, type_: VoteType) -> int:
        """The power of the distinct senders of votes of this step, whatever their value."""
        step = self._steps.get((round_, type_))
        return step.power_any if step else 0

    def has_quorum_for(self, round_: int, type_: VoteType, block_hash: bytes) -> bool:
        """2f+1 ``type_`` votes for ``block_hash`` at ``round_``."""
        return self._validators.has_quorum(self.power(round_, type_, block_hash))

    def quorum_value(self, round_: int, type_: VoteType) -> bytes | None:
        """The value (a block hash, or NIL) with more than 2/3 of the power, if there is one.

        While equivocators hold less than 1/3 of the power there is at most one: two sets of
        more than 2/3 overlap in more than 1/3. Beyond that (outside the fault model) the
        value that reached it first is returned.
        """
        step = self._steps.get((round_, type_))
        if step is None:
            return None
        for value, power in step.value_power.items():
            if self._validators.has_quorum(power):
                return value
        return None

    def has_quorum_any(self, round_: int, type_: VoteType) -> bool:
        """2f+1 ``type_`` votes at ``round_`` for anything (the paper's ``*``)."""
        return self._validators.has_quorum(self.power_any(round_, type_))

    def votes_for(self, round_: int, type_: VoteType, block_hash: bytes) -> tuple[Vote, ...]:
        """The counted votes for ``block_hash``, one per validator, ordered by validator key."""
        step = self._steps.get((round_, type_))
        if step is None:
            return ()
        found: list[Vote] = []
        for who in sorted(step.voters.get(block_hash, ())):
            first = step.first[who]
            found.append(
                first if first.block_hash == block_hash else step.conflicting[(who, block_hash)]
            )
        return tuple(found)

    def voted(self, round_: int, type_: VoteType) -> dict[bytes, bytes]:
        """Validator -> block hash (NIL for nil) of each first vote, ordered by validator."""
        step = self._steps.get((round_, type_))
        if step is None:
            return {}
        return {k: step.first[k].block_hash for k in sorted(step.first)}

    def skip_power(self, round_: int, also: Iterable[bytes] = ()) -> int:
        """The power of the distinct validators that sent any vote at ``round_``.

        ``also`` names more senders to count once each (the machine passes the proposer of a
        proposal it holds for that round: lines 55-56 count messages of any type).
        """
        senders = self._senders.get(round_, set())
        power = self._sender_power.get(round_, 0)
        extra: list[bytes] = []
        for k in also:
            if k not in senders and k not in extra:
                extra.append(k)
                power += self._validators.power_of(k)
        return power

    def rounds(self) -> tuple[int, ...]:
        """The rounds with at least one vote, ascending."""
        return tuple(sorted(self._senders))
