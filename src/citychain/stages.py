"""Where a node's time goes along the transaction path, stage by stage.

Theory of operation
-------------------
Each stage of the path a transaction takes through a node adds the time it spent and the
number of transactions it handled to one process-wide :data:`CLOCK`:

=====================  =========================================================================
stage                  what is timed (where)
=====================  =========================================================================
``admission``          decoding and the stateless checks of incoming transactions (size,
                       canonical form, chain, gas limit, public keys), signatures excluded
                       (``Mempool.check``)
``verify_admission``   their signatures (``Mempool.check``, batched on the thread pool)
``mempool``            admitting checked transactions against the committed state (nonce,
                       expiry, access, the method's admission check) and pooling them,
                       reaping a block, dropping committed ones
                       (``Mempool.insert``/``reap``/``update``)
``proposal``           building or checking a block around its execution: evidence, limits,
                       transaction root, header (``Chain.build_block``/``check_block``)
``verify_execution``   signatures checked again when a block executes (``Executor``)
``execution``          running the block's transactions: checks, nonces, contracts, receipts
                       (``Executor.execute_block``, signatures excluded)
``state_root``         applying the block's writes to the sparse Merkle tree and computing its
                       root (``State.prepare``)
``commit``             writing block, receipts, indexes and state in one synced batch
                       (``Chain.commit``)
=====================  =========================================================================

Stages nest: time spent in a stage entered inside another (execution inside proposal) counts
for the inner one only, so the stages' times add up to the path's time and none is counted
twice. A block that is built, then checked, counts its transactions at each stage that handles them,
so "microseconds per transaction" of a stage is ``seconds / transactions`` of that stage; the
node exports both as Prometheus counters (``citychain_stage_seconds_total{stage}``,
``citychain_stage_txs_total{stage}``) and ``bench/profile_path.py`` reads them before and after
a load to print the table.

The clock is observation only: nothing that computes state reads it (determinism: the state
never depends on time measured here). One lock guards the sums because admission runs on the
thread pool while blocks run on the event loop; a stage is entered once per batch or block,
never per transaction, so its cost (~1 µs) is lost in the noise of the work it times.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

STAGES: Final = (
    "admission",
    "verify_admission",
    "mempool",
    "proposal",
    "verify_execution",
    "execution",
    "state_root",
    "commit",
)


class StageClock:
    """Nanoseconds and transactions per stage of the transaction path (see the module)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ns = dict.fromkeys(STAGES, 0)
        self._txs = dict.fromkeys(STAGES, 0)
        # per thread: the time of inner stages of each open stage, innermost last
        self._open = threading.local()

    def add(self, stage: str, ns: int, txs: int) -> None:
        with self._lock:
            self._ns[stage] += ns
            self._txs[stage] += txs

    @contextmanager
    def measure(self, stage: str, txs: int) -> Iterator[None]:
        """Time the ``with`` body as ``stage`` having handled ``txs`` transactions, less the
        time of stages measured inside it."""
        stack: list[int] | None = getattr(self._open, "stack", None)
        if stack is None:
            stack = self._open.stack = []
        stack.append(0)
        start = time.perf_counter_ns()
        try:
            yield
        finally:
            elapsed = time.perf_counter_ns() - start
            inner = stack.pop()
            if stack:
                stack[-1] += elapsed
            self.add(stage, elapsed - inner, txs)

    def snapshot(self) -> dict[str, tuple[int, int]]:
        """``{stage: (nanoseconds, transactions)}`` so far, in path order."""
        with self._lock:
            return {s: (self._ns[s], self._txs[s]) for s in STAGES}


#: The node's one clock (a node is one process; tests that run several in-process share it).
CLOCK: Final = StageClock()
