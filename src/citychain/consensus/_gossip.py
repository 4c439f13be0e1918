"""Gossip and catch-up, a part of :class:`~citychain.consensus.tendermint.TendermintEngine`
(the "Gossip" paragraph of its theory of operation).

On every step change and every ``GOSSIP_MS`` a node sends its :class:`~.messages.RoundState`
(height, round, step, which proposals and votes it holds). A peer at our height gets the votes
and proposals it lacks (the quorum-gossip property Tendermint's liveness rests on, pitfall 4);
a peer that is ahead makes us start block sync; a peer behind us syncs from us. Pending
evidence is gossiped again every ``EVIDENCE_REGOSSIP_TICKS`` periods until a block commits it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from citychain.consensus import messages as m
from citychain.consensus._state import (
    GOSSIP_MS,
    _Event,
    _Height,
    _Proposal,
)
from citychain.consensus.evidence import EvidencePool
from citychain.consensus.participation import Participation
from citychain.p2p import Switch
from citychain.sync import BlockSync

#: The engine's logger: its parts log under the one name.
log = logging.getLogger("citychain.consensus.tendermint")

T = TypeVar("T")


class _Gossip:
    """Round-state gossip and catch-up. State it reads from the engine: the height being
    decided, the switch, block sync, the evidence pool, participation and the clock."""

    _h: _Height | None
    _switch: Switch
    _clock: Callable[[], int]
    _stopping: bool
    sync: BlockSync
    evidence: EvidencePool
    participation: Participation

    if TYPE_CHECKING:

        def _post(self, ev: _Event, *, force: bool = False) -> None: ...

    async def _gossip_ticker(self) -> None:
        while not self._stopping:
            await asyncio.sleep(GOSSIP_MS / 1000)
            self._post(_Event("gossip"))

    def _gossip(self, *, evidence: bool = False) -> None:
        h = self._h
        if h is not None:
            self._switch.broadcast(m.CH_CONSENSUS, m.encode(self._round_state(h)))
        self.sync.tick(self._clock())
        if self.sync.behind:
            self._post(_Event("sync_ready"))
        if not evidence:
            return
        # Re-gossip pending evidence until a block commits it.
        for ev in self.evidence.all_pending()[:20]:
            self._switch.broadcast(m.CH_EVIDENCE, m.encode(m.EvidenceMsg(ev)))

    def _round_state(self, h: _Height) -> m.RoundState:
        index = {v.public_key: i for i, v in enumerate(h.validators)}
        masks: dict[tuple[int, int], int] = {}
        for v in h.votes:
            k = (v.round, int(v.type))
            masks[k] = masks.get(k, 0) | (1 << index[v.validator])
        rounds = sorted(r for r, ps in h.proposals.items() if ps.fed)[-8:]
        votes = sorted((r, t, mask) for (r, t), mask in masks.items())[-64:]
        return m.RoundState(
            h.height, h.machine.round, int(h.machine.step), tuple(rounds), tuple(votes)
        )

    def _on_round_state(self, peer: str, rs: m.RoundState) -> None:
        self.sync.set_peer_height(peer, rs.height - 1)
        self.participation.peer_height(peer, rs.height)
        h = self._h
        if h is None:
            return
        if rs.height > h.height:
            self.sync.tick(self._clock())
            return
        if rs.height < h.height:
            return
        # Same height: send what the peer lacks.
        index = {v.public_key: i for i, v in enumerate(h.validators)}
        have = {(r, t): mask for r, t, mask in rs.votes}
        top = max(rs.round, h.machine.round)
        for v in h.votes:
            if v.round > top:
                continue
            if not have.get((v.round, int(v.type)), 0) & (1 << index[v.validator]):
                self._switch.send(peer, m.CH_VOTES, m.encode(m.VoteMsg(v)))
        for r, ps in h.proposals.items():
            if ps.fed and ps.block is not None and r not in rs.proposals and r <= top:
                self._send_proposal_to(peer, ps)

    def _broadcast_proposal(self, ps: _Proposal) -> None:
        for p in self._switch.connected():
            self._send_proposal_to(p, ps)

    def _send_proposal_to(self, peer: str, ps: _Proposal) -> None:
        prop = ps.proposal
        self._switch.send(peer, m.CH_CONSENSUS, m.encode(prop))
        for i, part in enumerate(ps.parts):
            if part is None:
                return
            self._switch.send(
                peer, m.CH_CONSENSUS, m.encode(m.BlockPart(prop.height, prop.round, i, part))
            )
