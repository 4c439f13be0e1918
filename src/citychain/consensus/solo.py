"""A single validator that proposes, signs and commits every block itself.

Loop: wait until the mempool has transactions (or the empty-block heartbeat is due), keep the
configured interval since the previous block, reap at most the chain's block limits, execute
in a worker thread (the event loop keeps serving the API), sign the header with the
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
from citychain.consensus.interface import ConsensusStatus, OnCommit
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
        empty_block_interval_ms: int = 0,
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
        self._empty_ms = empty_block_interval_ms
        self._clock = clock
        self._wake = asyncio.Event()
        self._stopping = False
        self._step = "waiting for transactions"
        self.last_block_ms = 0

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` was called (a method, so checks after an await re-read it)."""
        return self._stopping

    def notify_txs(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    def status(self) -> ConsensusStatus:
        return ConsensusStatus(
            engine="solo",
            height=self._chain.height + 1,
            round=0,
            step=self._step,
            waiting_for="transactions" if self._step.startswith("waiting") else "execution",
            details={"mempool_txs": self._mempool.size},
        )

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        params = self._chain.params
        while not self._stopping:
            if self._mempool.size == 0:
                self._step = "waiting for transactions"
                self._wake.clear()
                timeout = self._empty_ms / 1000 if self._empty_ms else None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)
                if self.stopping:
                    break
            # Keep the block interval since the previous block.
            due = self.last_block_ms + params.block_interval_ms - self._clock()
            if due > 0:
                await asyncio.sleep(due / 1000)
            txs = self._mempool.reap(
                params.block_max_txs, params.block_max_bytes, params.block_max_gas
            )
            if not txs and not self._empty_ms:
                # Transactions pooled but none executable yet (nonce gaps): wait for more.
                self._wake.clear()
                await self._wake.wait()
                continue
            self._step = f"executing {len(txs)} transactions"
            pending = await loop.run_in_executor(
                None, self._chain.build_block, txs, self._clock(), self._signer.public_key
            )
            commit = Commit.sign_single(self._signer, self._chain.chain_id, pending.header)
            self._step = "committing"
            await loop.run_in_executor(None, self._chain.commit, pending, commit)
            self.last_block_ms = self._clock()
            self._on_commit(pending, commit)
        self._step = "stopped"
