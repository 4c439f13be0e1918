"""WAL replay on restart, a part of :class:`~citychain.consensus.tendermint.TendermintEngine`
(the "Write-ahead log" paragraph of its theory of operation).

The current height's records are fed again through the same path, so the machine regains its
locks and the votes it sent (pitfall 5). Actions the machine emits during replay are not
repeated if the WAL shows they were carried out (our vote or proposal is in a later record);
the others (a vote signed but not logged before a crash; a timeout) are carried out once replay
is done. What we had sent is sent again, and the current step's timeout is scheduled anew.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, TypeVar

from citychain import codec
from citychain.chain import Chain
from citychain.consensus import messages as m
from citychain.consensus._state import (
    _Event,
    _Height,
    _Proposal,
)
from citychain.consensus.machine import (
    Action,
    Input,
    ProposalInput,
    ProposeAction,
    ScheduleTimeout,
    Step,
    TimeoutInput,
    Timeouts,
    VoteAction,
    VoteInput,
)
from citychain.p2p import Switch
from citychain.types import (
    Block,
    Vote,
)

#: The engine's logger: its parts log under the one name.
log = logging.getLogger("citychain.consensus.tendermint")

T = TypeVar("T")


class _Replay:
    """WAL replay. State it keeps on the engine: whether replay is running (``_replaying``),
    the actions it defers, and which of our votes and proposals the WAL shows as sent."""

    _h: _Height | None
    _chain: Chain
    _switch: Switch
    _timeouts: Timeouts
    _replaying: bool
    _deferred: list[Action]
    _replay_own: tuple[set[bytes], set[int]]
    me: bytes | None

    if TYPE_CHECKING:

        def _post(self, ev: _Event, *, force: bool = False) -> None: ...

        async def _act(self, actions: list[Action]) -> None: ...

        async def _feed(self, inp: Input, *, log_it: bool = True) -> None: ...

        def _note_vote(self, h: _Height, vote: Vote, key: bytes | None = None) -> None: ...

        def _broadcast_proposal(self, ps: _Proposal) -> None: ...

    async def _replay(self, records: list[bytes]) -> None:
        h = self._h
        assert h is not None
        log.info("replaying %d WAL records of height %d", len(records), h.height)
        decoded = [codec.decode(r) for r in records]
        own_votes = {
            Vote.from_list(r[1]).sign_bytes(self._chain.chain_id)
            for r in decoded
            if r[0] == "vote" and r[2]
        }
        own_rounds = {r[1][2] for r in decoded if r[0] == "proposal" and r[4]}
        self._replaying = True
        self._deferred = []
        try:
            self._replay_own = (own_votes, own_rounds)
            await self._act(h.machine.start())
            for r in decoded:
                if r[0] == "vote":
                    vote = Vote.from_list(r[1])
                    self._note_vote(h, vote)
                    await self._feed(VoteInput(vote), log_it=False)
                elif r[0] == "proposal":
                    prop = m.Proposal.from_list(r[1])
                    block = Block.decode(r[2], hash_new=self._chain.hash_new)
                    parts: list[bytes | None] = list(m.split_parts(block.encode()))
                    ps = _Proposal(prop, parts, block, None, bool(r[3]), fed=True)
                    h.proposals[prop.round] = ps
                    await self._feed(
                        ProposalInput(prop.round, prop.block_hash, prop.pol_round, bool(r[3])),
                        log_it=False,
                    )
                elif r[0] == "timeout":
                    await self._feed(TimeoutInput(r[1], r[2], Step(r[3])), log_it=False)
        finally:
            self._replaying = False
        deferred, self._deferred = self._deferred, []
        if h.decided:
            self._post(_Event("next_height"), force=True)
            return
        await self._act(deferred)
        # Peers may have missed what we sent before the crash: send it again.
        for ps in h.proposals.values():
            if ps.proposal.proposer == self.me:
                self._broadcast_proposal(ps)
        for v in h.votes:
            if v.validator == self.me:
                self._switch.broadcast(m.CH_VOTES, m.encode(m.VoteMsg(v)))
        # Be sure the round moves on even if every timer was lost with the crash.
        st = h.machine.status()
        await self._act(
            [
                ScheduleTimeout(
                    h.height,
                    st.round,
                    Step(st.step),
                    self._timeouts.for_step(Step(st.step), st.round),
                )
            ]
            if st.step != Step.DECIDED
            else []
        )

    def _replay_keeps(self, a: Action) -> bool:
        """During replay: defer what the WAL does not show as done; drop what it does."""
        own_votes, own_rounds = self._replay_own
        if isinstance(a, VoteAction):
            sb = Vote(a.type, a.height, a.round, a.block_hash, b"", b"").sign_bytes(
                self._chain.chain_id
            )
            if sb not in own_votes:
                self._deferred.append(a)
            return False
        if isinstance(a, ProposeAction):
            if a.round not in own_rounds:
                self._deferred.append(a)
            return False
        if isinstance(a, ScheduleTimeout):
            self._deferred.append(a)
            return False
        return True  # decisions and evidence are carried out as they come
