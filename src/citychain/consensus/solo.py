"""A single validator that proposes, signs and commits every block itself.

Loop: while the height is idle (no transaction a block could take), wait until the mempool
reports transactions available (:meth:`SoloEngine.notify_txs`) or the empty block is due, as
the Tendermint engine does (:class:`~citychain.consensus.interface.EmptyBlocks`: one empty
block per ``empty_blocks_interval_ms``, none with ``create_empty_blocks = false``, one every
block interval with ``true`` and 0; the first block of a chain is made at once). Then keep
``block_interval_ms`` from the previous height's start (its block's time), or go on at once
when that height took longer, as the Tendermint engine does: the interval paces blocks, it is
not added to a slow one. A restarted engine takes the previous height's start from the last
committed block's time, so a restart does not shorten the interval; a clock that has gone
back since makes it wait no longer than one interval. Reap at most the chain's block limits,
execute in a worker thread (the event loop keeps serving the API), sign the header with the
validator's precommit, commit in one synced batch, then tell the node.

The "commit" of a solo block is a :class:`Commit` holding one precommit signature, so the
block store, the API and light clients see the same shapes as under BFT.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from citychain.chain import Chain
from citychain.consensus.interface import ConsensusStatus, EmptyBlocks, OnCommit
from citychain.crypto import Signer
from citychain.errors import ConfigError
from citychain.mempool import Mempool
from citychain.types import Commit

log = logging.getLogger(__name__)


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class SoloEngine:
    def __init__(
        self,
        chain: Chain,
        mempool: Mempool,
        signer: Signer,
        on_commit: OnCommit,
        *,
        empty_blocks: EmptyBlocks | None = None,
        clock: Callable[[], int] = wall_clock_ms,
    ) -> None:
        validators = chain.validators()
        if len(validators) != 1 or signer.public_key not in validators:
            raise ConfigError(
                "single-validator mode needs a genesis with exactly one validator whose key is "
                "this node's key"
            )
        self._chain = chain
        self._mempool = mempool
        self._signer = signer
        self._on_commit = on_commit
        self._empty = empty_blocks if empty_blocks is not None else EmptyBlocks()
        self._clock = clock
        self._wake = asyncio.Event()
        self._stopping = False
        self._stopped = asyncio.Event()
        self._step = "starting"
        #: While idle: when the empty block is due (None: never).
        self._empty_due_ms: int | None = None
        self._idle = False
        #: When the last height started: its block's time (clock ms).
        self._started_ms = 0

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` was called (a method, so checks after an await re-read it)."""
        return self._stopping

    def notify_txs(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._stopped.set()
        self._wake.set()

    def status(self) -> ConsensusStatus:
        if self._idle:
            waiting = EmptyBlocks.describe_idle(self._clock(), self._empty_due_ms)
        elif self._step == "waiting for the block interval":
            waiting = "the block interval since the previous height started"
        else:
            waiting = "execution"
        return ConsensusStatus(
            engine="solo",
            height=self._chain.height + 1,
            round=0,
            step=self._step,
            waiting_for=waiting,
            details={"mempool_txs": self._mempool.size},
        )

    def _holds(self) -> bool:
        """True while the height is idle and waits for transactions."""
        return self._empty.waits and self._chain.height > 0 and not self._mempool.has_executable()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        params = self._chain.params
        last = self._chain.last_header()
        if last is not None:  # a restart: the interval runs from the last block's time
            self._started_ms = min(last.time, self._clock())
        while not self._stopping:
            if self._holds():
                if not self._idle:  # the height just became idle: its empty block is due
                    self._idle = True
                    self._empty_due_ms = self._empty.due_ms(self._clock())
                self._step = "idle"
                self._wake.clear()
                due_ms = self._empty_due_ms
                timeout = max(0, due_ms - self._clock()) / 1000 if due_ms is not None else None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)
                if self.stopping:
                    break
                if due_ms is None or self._clock() < due_ms:
                    continue  # woken: check again (a transaction behind a nonce gap waits)
            self._idle = False
            # Keep the block interval from the previous height's start (see the module).
            self._step = "waiting for the block interval"
            due = self._started_ms + params.block_interval_ms - self._clock()
            if due > 0:
                # Wait on the stop event, not a plain sleep, so SIGTERM never waits out a long
                # block interval.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopped.wait(), due / 1000)
                if self.stopping:
                    break
            self._started_ms = started = self._clock()
            txs = self._mempool.reap(
                params.block_max_txs, params.block_max_bytes, params.block_max_gas
            )
            self._step = f"executing {len(txs)} transactions"
            pending = await loop.run_in_executor(
                None, self._chain.build_block, txs, started, self._signer.public_key
            )
            commit = Commit.sign_single(self._signer, self._chain.chain_id, pending.header)
            self._step = "committing"
            await loop.run_in_executor(None, self._chain.commit, pending, commit)
            self._on_commit(pending, commit)
        self._step = "stopped"
