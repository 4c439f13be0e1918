"""Proposals and block-part assembly, a part of
:class:`~citychain.consensus.tendermint.TendermintEngine` (the "proposal" input of its theory
of operation).

Ours: the block (the valid value the machine names, else a new one from the mempool and the
pending evidence) is split into parts whose hashes are in the signed proposal, logged with
``write_sync`` and only then sent and fed. A peer's: for our height, from ``proposer(h, r)``,
signature valid; its parts are checked against those hashes, and once all are in the block is
decoded and re-executed (``Chain.check_block``: valid(v) of the paper) off the event loop, and
``ProposalInput(valid=...)`` is logged and fed.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from citychain.chain import Chain, PendingBlock
from citychain.consensus import messages as m
from citychain.consensus._state import (
    MAX_ROUND_AHEAD,
    _Height,
    _Proposal,
)
from citychain.consensus.evidence import EvidencePool
from citychain.consensus.machine import (
    Input,
    ProposalInput,
    ProposeAction,
)
from citychain.consensus.privval import SignStep
from citychain.consensus.proposer import ProposerSchedule
from citychain.errors import CitychainError, DoubleSignRefused
from citychain.mempool import Mempool
from citychain.types import (
    Block,
    ValidatorSet,
)

#: The engine's logger: its parts log under the one name.
log = logging.getLogger("citychain.consensus.tendermint")

T = TypeVar("T")


class _Proposals:
    """Our proposals and peers' proposals and block parts. State it reads from the engine:
    the height being decided (its ``proposals``), the chain, mempool, evidence pool, clock,
    our key, and the buffer of early proposals; it writes the WAL and feeds the machine
    through the engine."""

    _h: _Height | None
    _chain: Chain
    _mempool: Mempool
    _clock: Callable[[], int]
    _future_proposals: list[tuple[str, m.Message]]
    me: bytes | None
    evidence: EvidencePool
    bad_msgs: int

    if TYPE_CHECKING:

        async def _run(self, fn: Callable[..., T], *args: Any) -> T: ...

        def _sign(self, height: int, round_: int, step: SignStep, sign_bytes: bytes) -> bytes: ...

        def _wal_write(self, record: list[Any], *, sync: bool = False) -> None: ...

        async def _feed(self, inp: Input, *, log_it: bool = True) -> None: ...

        async def _begin(self, h: _Height) -> None: ...

        def _proposer_schedule(self, validators: ValidatorSet) -> ProposerSchedule: ...

        def _broadcast_proposal(self, ps: _Proposal) -> None: ...

        def _send_proposal_to(self, peer: str, ps: _Proposal) -> None: ...
    # == our own messages =====================================================================

    async def _propose(self, a: ProposeAction) -> None:
        h = self._h
        if h is None or self.me is None or a.height != h.height:
            return
        pending: PendingBlock | None = None
        if a.value is not None:
            pending = self._pending_for(a.value)
            if pending is None:
                ps = self._proposal_for(a.value)
                if ps is not None and ps.block is not None:
                    pending = await self._run(self._chain.check_block, ps.block)
        if pending is None:
            pending = await self._build_block(h)
        await self._before_proposal(h, a)
        if self._h is not h or h.decided:
            return
        try:
            await self._send_proposal(h, a.round, a.valid_round, pending)
        except DoubleSignRefused as exc:
            log.error("not proposing: %s", exc.message)
            return

    async def _before_proposal(self, h: _Height, a: ProposeAction) -> None:
        """Called once the block to propose is at hand, before it is signed and sent (nothing
        here; a test subclass misbehaves here)."""

    async def _build_block(self, h: _Height) -> PendingBlock:
        p = self._chain.params
        txs = self._mempool.reap(p.block_max_txs, p.block_max_bytes, p.block_max_gas)
        evidence = self.evidence.pending(h.height, p.block_max_evidence)
        try:
            return await self._run(
                self._chain.build_block, txs, self._clock(), self.me or b"", evidence
            )
        except CitychainError as exc:
            log.warning("evidence left out of the block: %s", exc.message)
            return await self._run(self._chain.build_block, txs, self._clock(), self.me or b"")

    async def _send_proposal(
        self, h: _Height, round_: int, pol_round: int, pending: PendingBlock, *, feed: bool = True
    ) -> _Proposal:
        data = pending.block.encode()
        parts = m.split_parts(data)
        unsigned = m.Proposal(
            h.height,
            round_,
            pol_round,
            pending.block.hash,
            tuple(m.part_hash(p, self._chain.hash_new) for p in parts),
            self.me or b"",
        )
        sig = self._sign(
            h.height, round_, SignStep.PROPOSAL, unsigned.sign_bytes(self._chain.chain_id)
        )
        prop = m.Proposal(
            unsigned.height,
            unsigned.round,
            unsigned.pol_round,
            unsigned.block_hash,
            unsigned.part_hashes,
            unsigned.proposer,
            sig,
        )
        ps = _Proposal(prop, list(parts), pending.block, pending, True)
        if not feed:
            return ps
        self._wal_write(["proposal", prop.to_list(), data, True, True], sync=True)
        h.proposals[round_] = ps
        ps.fed = True
        self._send_own_proposal(ps)
        await self._feed(ProposalInput(round_, prop.block_hash, pol_round, True), log_it=False)
        return ps

    def _send_own_proposal(self, ps: _Proposal) -> None:
        """Send our proposal and its parts, once it is in the WAL: to every peer."""
        self._broadcast_proposal(ps)

    def _pending_for(self, block_hash: bytes) -> PendingBlock | None:
        ps = self._proposal_for(block_hash)
        return ps.pending if ps is not None else None

    def _proposal_for(self, block_hash: bytes) -> _Proposal | None:
        h = self._h
        if h is None:
            return None
        for ps in h.proposals.values():
            if ps.proposal.block_hash == block_hash and ps.block is not None:
                return ps
        return None

    # == messages from peers ==================================================================

    async def _on_proposal(self, peer: str, prop: m.Proposal) -> None:
        h = self._h
        assert h is not None
        if prop.height != h.height or h.decided:
            if h.height < prop.height <= h.height + 1 and len(self._future_proposals) < 64:
                self._future_proposals.append((peer, prop))
            return
        if prop.round in h.proposals or prop.round > h.machine.round + MAX_ROUND_AHEAD:
            return
        expected = self._proposer_schedule(h.validators).proposer(h.height, prop.round)
        if prop.proposer != expected:
            self.bad_msgs += 1
            log.info("dropped a proposal from %s: not the proposer of round %d", peer, prop.round)
            return
        try:
            prop.verify(self._chain.suite, self._chain.chain_id)
        except CitychainError:
            self.bad_msgs += 1
            return
        h.proposals[prop.round] = _Proposal(prop, [None] * len(prop.part_hashes))
        await self._begin(h)  # the proposer did not wait: neither do we

    async def _on_part(self, peer: str, part: m.BlockPart) -> None:
        h = self._h
        assert h is not None
        if part.height != h.height or h.decided:
            if h.height < part.height <= h.height + 1 and len(self._future_proposals) < 4096:
                self._future_proposals.append((peer, part))
            return
        ps = h.proposals.get(part.round)
        if ps is None or ps.fed or part.index >= len(ps.parts) or ps.parts[part.index] is not None:
            return
        if m.part_hash(part.data, self._chain.hash_new) != ps.proposal.part_hashes[part.index]:
            self.bad_msgs += 1
            log.info("dropped block part %d from %s: hash mismatch", part.index, peer)
            return
        ps.parts[part.index] = part.data
        if ps.complete:
            await self._validate(h, ps)

    async def _validate(self, h: _Height, ps: _Proposal) -> None:
        prop = ps.proposal
        data = b"".join(p for p in ps.parts if p is not None)
        valid = False
        try:
            # Decoding thousands of transactions is work: off the event loop, like execution;
            # those already in our mempool (most, under load) are reused, not decoded again.
            block = await self._run(
                functools.partial(
                    Block.decode,
                    data,
                    max_size=len(data),
                    known=self._mempool.get,
                    hash_new=self._chain.hash_new,
                )
            )
            if block.hash != prop.block_hash:
                raise ValueError("the block does not hash to the proposal's block hash")
            ps.block = block
            ps.pending = await self._run(self._chain.check_block, block)
            valid = True
        except (CitychainError, ValueError) as exc:
            log.warning(
                "proposal %d/%d from %s is invalid: %s",
                prop.height,
                prop.round,
                prop.proposer.hex()[:12],
                exc.message if isinstance(exc, CitychainError) else exc,
            )
            if ps.block is None:
                return  # undecodable: not even a value to vote nil about
        if self._h is not h or h.decided or ps.fed:
            return
        ps.valid = valid
        ps.fed = True
        self._wal_write(["proposal", prop.to_list(), data, valid, False])
        await self._feed(ProposalInput(prop.round, prop.block_hash, prop.pol_round, valid))
