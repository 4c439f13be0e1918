"""Who proposes at (height, round): smooth weighted round-robin, as a pure function.

The algorithm is CometBFT's (spec/consensus/proposer-selection.md), without its rescaling:
every validator starts with priority 0; at each step every priority grows by the validator's
power, the highest priority is chosen (ties go to the smallest public key) and the chosen
validator's priority drops by the total power. Step ``n`` picks the proposer of every
(height, round) with ``(height - start_height) + round == n``, so round ``r`` of height ``h``
has the proposer of round 0 at height ``h + r``: the same as CometBFT, which advances the
priorities once per height and once more per extra round.

Over ``P`` consecutive steps (``P`` = the total power divided by the gcd of the powers) every
validator is chosen exactly ``power / gcd`` times and all priorities are back at 0, so the
schedule is periodic with period ``P`` and exactly fair in proportion to power over each period.
Dividing the powers by their gcd scales every priority by the same factor, so it does not
change any choice; it only makes the period shorter.

Differences from CometBFT, on purpose:

* **No priorities in the chain state.** The schedule is a function of the validator set, the
  height at which that set took effect (``start_height``) and (height, round). Nothing has to
  be stored, hashed or replayed to know the proposer, and every node computes the same answer.
* **A validator-set change restarts the schedule** at the height where the new set takes
  effect (all priorities back to 0). CometBFT instead carries priorities over, centres them,
  rescales them into a window of 2P and starts a new validator at -1.125P so that leaving and
  rejoining cannot jump the queue. Here the first proposer after a change is the most powerful
  validator (ties: smallest key); set changes are governance transactions, not something a
  validator can do on its own to get ahead. Fairness is exact within each period of each set.
* **No centring / rescaling.** With all priorities starting at 0 and no set changes, the sum
  of priorities stays 0 (centring is a no-op) and the integers stay within ``n * P``.

Cost. When ``P`` is at most ``TABLE_LIMIT`` the choices of one period are kept in a table,
filled lazily in step order (so creating a schedule is O(1) and each new step is O(n)). Larger
periods (exotic powers) are computed from a checkpoint of the priorities every
``CHECKPOINT_EVERY`` steps plus a cursor and a small LRU of answers: heights are asked for in
increasing order, so each new answer costs O(n), and a random access costs at most
``CHECKPOINT_EVERY`` steps once the checkpoints below it exist. (Iterating from step 0 for every
query, then caching, would make the n-th height cost O(n): quadratic over a chain's life.)
"""

from __future__ import annotations

from collections import OrderedDict
from math import gcd

from citychain.types import ValidatorSet

__all__ = ["CHECKPOINT_EVERY", "TABLE_LIMIT", "ProposerSchedule"]

#: Largest reduced total power whose whole period is kept as a table.
TABLE_LIMIT = 100_000
#: Steps between two stored priority vectors when the period is larger than ``TABLE_LIMIT``.
CHECKPOINT_EVERY = 4096
_LRU_SIZE = 1024


def _step(priorities: list[int], weights: tuple[int, ...], total: int) -> int:
    """One selection, in place: raise every priority, choose the highest, push it back."""
    best = 0
    for i, w in enumerate(weights):
        priorities[i] += w
        if priorities[i] > priorities[best]:  # strict: ties keep the smaller key (index)
            best = i
    priorities[best] -= total
    return best


class ProposerSchedule:
    """The proposer of every (height, round) for one validator set from ``start_height`` on."""

    __slots__ = (
        "_checkpoints",
        "_cursor_prio",
        "_cursor_step",
        "_keys",
        "_last_checkpoint",
        "_lru",
        "_period",
        "_prio",
        "_start",
        "_table",
        "_table_limit",
        "_weights",
    )

    def __init__(
        self, validators: ValidatorSet, start_height: int = 1, *, table_limit: int = TABLE_LIMIT
    ) -> None:
        if start_height < 0:
            raise ValueError("start_height must not be negative")
        powers = [v.power for v in validators.validators]
        divisor = 0
        for p in powers:
            divisor = gcd(divisor, p)
        self._keys: tuple[bytes, ...] = tuple(v.public_key for v in validators.validators)
        self._weights: tuple[int, ...] = tuple(p // divisor for p in powers)
        self._period: int = sum(self._weights)
        self._start = start_height
        self._table_limit = table_limit
        zeros = [0] * len(self._weights)
        # table mode: the choices of steps 0..len(table)-1 and the priorities after them
        self._table: list[int] = []
        self._prio: list[int] = list(zeros)
        # checkpoint mode: the priorities before step k*CHECKPOINT_EVERY, k = 0..last/EVERY
        self._checkpoints: dict[int, tuple[int, ...]] = {0: tuple(zeros)}
        self._last_checkpoint = 0
        self._cursor_step = 0  # the priorities in _cursor_prio are those before this step
        self._cursor_prio: list[int] = list(zeros)
        self._lru: OrderedDict[int, int] = OrderedDict()

    @property
    def start_height(self) -> int:
        return self._start

    @property
    def period(self) -> int:
        """The number of steps after which the schedule repeats."""
        return self._period

    def proposer(self, height: int, round_: int) -> bytes:
        """The public key of the proposer of ``round_`` at ``height``."""
        if height < self._start:
            raise ValueError(f"height {height} is before this schedule's start {self._start}")
        if round_ < 0:
            raise ValueError(f"round {round_} is negative")
        return self._keys[self.choice(height - self._start + round_)]

    def choice(self, step: int) -> int:
        """The index (in public-key order) of the validator chosen at ``step``."""
        n = step % self._period
        if self._period <= self._table_limit:
            while len(self._table) <= n:
                self._table.append(_step(self._prio, self._weights, self._period))
            return self._table[n]
        return self._far_choice(n)

    def _far_choice(self, n: int) -> int:
        cached = self._lru.get(n)
        if cached is not None:
            self._lru.move_to_end(n)
            return cached
        floor = min(n - n % CHECKPOINT_EVERY, self._last_checkpoint)
        if not floor <= self._cursor_step <= n:
            self._cursor_step = floor
            self._cursor_prio = list(self._checkpoints[floor])
        chosen = 0
        while self._cursor_step <= n:
            chosen = _step(self._cursor_prio, self._weights, self._period)
            self._cursor_step += 1
            if self._cursor_step % CHECKPOINT_EVERY == 0 and self._cursor_step not in (
                self._checkpoints
            ):
                self._checkpoints[self._cursor_step] = tuple(self._cursor_prio)
                self._last_checkpoint = max(self._last_checkpoint, self._cursor_step)
        self._lru[n] = chosen
        if len(self._lru) > _LRU_SIZE:
            self._lru.popitem(last=False)
        return chosen
