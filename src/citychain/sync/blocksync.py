"""Block sync: fetch committed blocks from peers that are ahead.

Theory of operation
-------------------
Every peer tells us its last committed height (a ``status`` answer, or the height in its
consensus round state). While some peer is ahead, :meth:`BlockSync.tick` keeps up to
``window`` requests in flight for the heights just above ours, each to a peer that has it,
re-asking another peer after :data:`REQUEST_TIMEOUT_MS`. Answers are kept until the chain
reaches them. This module does not trust them and does not apply them: the consensus engine
takes the block for its next height (:meth:`take`), checks the commit against the validator
set it has for that height (more than 2/3 of the power must have signed that exact header),
re-executes the block and compares every root with the header (``Chain.check_block``), and
only then commits it. A peer that served a bad block is reported through :meth:`refused`; its
answers are dropped and the height is asked of someone else.

A block is verified with the commit stored beside it (not the next block's last-commit as
in CometBFT): headers here do not carry the previous commit, so the stored commit is what a
light client checks too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from citychain.chain import Chain
from citychain.sync.messages import (
    BlockRequest,
    BlockResponse,
    NoBlock,
    StatusRequest,
    StatusResponse,
    SyncMessage,
    encode,
)
from citychain.types import Block, Commit

log = logging.getLogger(__name__)

REQUEST_TIMEOUT_MS = 5_000
#: A peer that served this many bad blocks is no longer asked.
MAX_STRIKES = 3


class BlockSync:
    def __init__(
        self,
        chain: Chain,
        send: Callable[[str, bytes], bool],
        *,
        window: int = 32,
    ) -> None:
        self._chain = chain
        self._send = send
        self._window = max(1, window)
        self.peer_heights: dict[str, int] = {}
        self._requested: dict[int, tuple[str, int]] = {}  # height -> (peer, sent at ms)
        self._received: dict[int, tuple[Block, Commit, str]] = {}
        self._strikes: dict[str, int] = {}
        self._rr = 0
        #: Called when the block for the next height has arrived.
        self.on_ready: Callable[[], None] | None = None
        self.synced_blocks = 0

    # -- what peers tell us ----------------------------------------------------------------
    def set_peer_height(self, peer: str, height: int) -> None:
        if height > self.peer_heights.get(peer, -1):
            self.peer_heights[peer] = height

    def peer_gone(self, peer: str) -> None:
        self.peer_heights.pop(peer, None)
        for h, (p, _) in list(self._requested.items()):
            if p == peer:
                del self._requested[h]

    @property
    def best_peer_height(self) -> int:
        return max(self.peer_heights.values(), default=0)

    @property
    def behind(self) -> bool:
        return self.best_peer_height > self._chain.height

    def status(self) -> dict[str, object]:
        return {
            "behind": self.behind,
            "best_peer_height": self.best_peer_height,
            "in_flight": len(self._requested),
            "buffered": len(self._received),
            "synced_blocks": self.synced_blocks,
        }

    # -- messages ----------------------------------------------------------------------------
    def on_message(self, peer: str, msg: SyncMessage, now_ms: int) -> None:
        if isinstance(msg, StatusRequest):
            self._send(peer, encode(StatusResponse(self._chain.height, 1)))
        elif isinstance(msg, StatusResponse):
            self.set_peer_height(peer, msg.height)
            self.tick(now_ms)
        elif isinstance(msg, BlockRequest):
            self._serve(peer, msg.height)
        elif isinstance(msg, BlockResponse):
            self._on_block(peer, msg.block, msg.commit)
            self.tick(now_ms)
        elif isinstance(msg, NoBlock):
            req = self._requested.get(msg.height)
            if req is not None and req[0] == peer:
                del self._requested[msg.height]
                # It told us a height it cannot serve: believe it is lower.
                self.peer_heights[peer] = min(self.peer_heights.get(peer, 0), msg.height - 1)

    def _serve(self, peer: str, height: int) -> None:
        chain = self._chain
        block = chain.blocks.block(height) if 0 < height <= chain.height else None
        commit = chain.blocks.commit(height) if block is not None else None
        if block is None or commit is None:
            self._send(peer, encode(NoBlock(height)))
            return
        self._send(peer, encode(BlockResponse(block, commit)))

    def _on_block(self, peer: str, block: Block, commit: Commit) -> None:
        h = block.height
        req = self._requested.get(h)
        if req is None or req[0] != peer:
            return  # not asked of this peer (late, or unsolicited): ignore
        del self._requested[h]
        if commit.height != h or commit.block_hash != block.hash:
            self.refused(h, peer, "its commit is for another block")
            return
        if h > self._chain.height:
            self._received[h] = (block, commit, peer)
            if h == self._chain.height + 1 and self.on_ready is not None:
                self.on_ready()

    # -- requests ----------------------------------------------------------------------------
    def tick(self, now_ms: int) -> None:
        """Ask for missing heights just above ours; re-ask timed-out requests elsewhere."""
        ours = self._chain.height
        for h in [h for h in self._received if h <= ours]:
            del self._received[h]
        for h, (_, at) in list(self._requested.items()):
            if h <= ours or now_ms - at > REQUEST_TIMEOUT_MS:
                del self._requested[h]
        top = min(ours + self._window, self.best_peer_height)
        for h in range(ours + 1, top + 1):
            if h in self._requested or h in self._received:
                continue
            peer = self._pick(h)
            if peer is None:
                break
            if self._send(peer, encode(BlockRequest(h))):
                self._requested[h] = (peer, now_ms)

    def _pick(self, height: int) -> str | None:
        able = sorted(
            p
            for p, ph in self.peer_heights.items()
            if ph >= height and self._strikes.get(p, 0) < MAX_STRIKES
        )
        if not able:
            return None
        self._rr += 1
        return able[self._rr % len(able)]

    def take(self, height: int) -> tuple[Block, Commit, str] | None:
        return self._received.pop(height, None)

    def refused(self, height: int, peer: str, why: str) -> None:
        self._strikes[peer] = self._strikes.get(peer, 0) + 1
        log.warning("block %d from peer %s refused: %s", height, peer, why)
        self._received.pop(height, None)

    def applied(self, height: int) -> None:
        self.synced_blocks += 1
        self._received.pop(height, None)

    def verify(self, block: Block, commit: Commit) -> None:
        """Raise unless ``commit`` proves ``block`` final under our validator set for it."""
        chain = self._chain
        commit.verify(chain.suite, chain.chain_id, block.header, chain.validators(block.height))
