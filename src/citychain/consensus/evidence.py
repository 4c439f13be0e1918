"""The evidence pool: misbehaviour seen but not yet committed.

Evidence enters from the local vote keeper (a validator's two different votes for one step)
or from peers. Each piece is verified against the validator set of its height before it is
kept, deduplicated by hash, bounded in number, dropped once a block commits it or once it is
older than the chain's ``evidence_max_age_blocks``. Proposers take pending evidence before
transactions (CometBFT gives evidence priority too).
"""

from __future__ import annotations

import logging
from collections import OrderedDict

from citychain.chain import Chain
from citychain.errors import CitychainError
from citychain.types import Block, DuplicateVoteEvidence

log = logging.getLogger(__name__)

#: Pending evidence kept at most (oldest dropped first).
MAX_PENDING = 1000


class EvidencePool:
    def __init__(self, chain: Chain) -> None:
        self._chain = chain
        self._pending: OrderedDict[bytes, DuplicateVoteEvidence] = OrderedDict()
        #: Evidence seen by this node since start (for metrics).
        self.seen_total = 0

    def add(self, ev: DuplicateVoteEvidence) -> bool:
        """Keep ``ev`` if it is new, valid and not committed; True if it was added."""
        if ev.hash in self._pending:
            return False
        if self._chain.blocks.evidence_height(ev.hash) is not None:
            return False
        if ev.height > self._chain.height + 1:
            return False  # cannot check the validator set of a height we do not know yet
        try:
            ev.verify(self._chain.suite, self._chain.chain_id, self._chain.validators(ev.height))
        except CitychainError as exc:
            log.warning("evidence refused: %s", exc.message)
            return False
        if len(self._pending) >= MAX_PENDING:
            self._pending.popitem(last=False)
        self._pending[ev.hash] = ev
        self.seen_total += 1
        log.warning(
            "evidence: validator %s signed two different %s at height %d round %d",
            ev.validator.hex()[:16],
            "prevotes" if ev.vote_a.type == 1 else "precommits",
            ev.height,
            ev.vote_a.round,
        )
        return True

    def pending(self, height: int, limit: int) -> list[DuplicateVoteEvidence]:
        """Evidence a block at ``height`` may include."""
        max_age = self._chain.params.evidence_max_age_blocks
        return [e for e in self._pending.values() if 0 < height - e.height <= max_age][:limit]

    def all_pending(self) -> list[DuplicateVoteEvidence]:
        return list(self._pending.values())

    def committed(self, block: Block) -> None:
        for ev in block.evidence:
            self._pending.pop(ev.hash, None)
        max_age = self._chain.params.evidence_max_age_blocks
        for h, ev in list(self._pending.items()):
            if block.height - ev.height > max_age:
                del self._pending[h]

    def __len__(self) -> int:
        return len(self._pending)
