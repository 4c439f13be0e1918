"""The state the Tendermint engine keeps for the height being decided, the events of its one
loop, and its limits (see :mod:`citychain.consensus.tendermint`, "Theory of operation").

Shared by the engine's parts: :mod:`._proposals` (proposal and block-part assembly),
:mod:`._gossip` (gossip and catch-up), :mod:`._replay` (WAL replay) and
:mod:`.tendermint` (the loop, votes and the decision).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from citychain.chain import Chain, PendingBlock
from citychain.consensus import messages as m
from citychain.consensus.machine import Machine, Timeouts
from citychain.types import Block, ValidatorSet, Vote

#: Round-state gossip period, and how often block sync re-checks.
GOSSIP_MS = 1000
#: Pending evidence is gossiped again every this many gossip periods (CometBFT: 10 s).
EVIDENCE_REGOSSIP_TICKS = 10
#: Inputs queued for the consensus loop; beyond this, peer messages are dropped (votes and
#: proposals are caught up through round-state gossip).
INBOX = 20_000
#: Rounds ahead of ours we keep proposals and votes for.
MAX_ROUND_AHEAD = 50
#: Votes buffered for future heights.
MAX_FUTURE_VOTES = 2_000
#: Largest message a peer may send us per channel.
MAX_CONSENSUS_MSG = m.PART_SIZE + 64 * 1024
MAX_VOTE_MSG = 1024
MAX_SYNC_MSG = 64 * 1024 * 1024


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class _Proposal:
    """A proposal of the current height and its block, as far as received."""

    proposal: m.Proposal
    parts: list[bytes | None]
    block: Block | None = None
    pending: PendingBlock | None = None
    valid: bool | None = None
    fed: bool = False

    @property
    def complete(self) -> bool:
        return all(p is not None for p in self.parts)


@dataclass
class _Height:
    """Everything kept for the height being decided."""

    height: int
    validators: ValidatorSet
    machine: Machine
    proposals: dict[int, _Proposal] = field(default_factory=dict)
    votes_seen: set[bytes] = field(default_factory=set)
    votes: list[Vote] = field(default_factory=list)
    decided: bool = False
    started_ms: int = 0
    #: Round 0 held back while nothing waits to be committed ("Idle heights").
    idle: bool = False
    #: When an idle height makes its empty block (our clock, ms); None: never.
    empty_due_ms: int | None = None
    wake_posted: bool = False


@dataclass(frozen=True)
class _Event:
    kind: str  # "msg", "timeout", "sync_ready", "gossip", "next_height", "wake", "stop"
    peer: str = ""
    payload: Any = None


def _timeouts(chain: Chain) -> Timeouts:
    p = chain.params
    return Timeouts(
        propose_ms=p.timeout_propose_ms,
        prevote_ms=p.timeout_prevote_ms,
        precommit_ms=p.timeout_precommit_ms,
        delta_ms=p.timeout_delta_ms,
    )
