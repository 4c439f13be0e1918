"""Execution throughput: ``Executor.execute_block`` on N token transfers from distinct senders.

State is a plain dict (no store), so this measures execution alone: signature re-verification
(batched over the thread pool), checks, nonces, contract code, gas, receipts and the block's
sorted writes. Run: ``.venv/bin/python bench/bench_execution.py [N] [repeats]``.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from bisect import bisect_left
from collections.abc import Iterator, Sequence

from citychain.crypto import ED25519, Ed25519Suite, Signer, VerifyItem
from citychain.execution import BlockContext, Executor, default_registry
from citychain.types import Transaction

CHAIN = "bench"


class DictState:
    def __init__(self, data: dict[bytes, bytes]) -> None:
        self.data = data
        self.keys = sorted(data)

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(key)

    def iter_prefix(
        self, prefix: bytes, *, after: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        i = bisect_left(self.keys, prefix if after is None else prefix + after + b"\x00")
        while i < len(self.keys) and self.keys[i].startswith(prefix):
            yield self.keys[i], self.data[self.keys[i]]
            i += 1


class TrustingSuite(Ed25519Suite):
    """Ed25519 that skips verification: isolates execution from signature checks."""

    def batch_verify(self, items: Sequence[VerifyItem]) -> list[bool]:
        return [True] * len(items)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    signers = [Signer(ED25519, i.to_bytes(32, "big")) for i in range(1, n + 1)]
    sink = bytes(range(20))
    registry = default_registry()
    genesis_ctx = BlockContext(CHAIN, 0, 0, b"")
    balances = [[s.address, 1_000_000] for s in signers]
    writes = Executor(registry, ED25519).init_genesis(
        DictState({}), genesis_ctx, {"token": {"balances": balances}}
    )
    state = DictState({k: v for k, v in writes.items() if v is not None})
    txs = [
        Transaction.create(
            s,
            chain_id=CHAIN,
            nonce=0,
            contract="token",
            method="transfer",
            args={"to": sink, "amount": 7},
        )
        for s in signers
    ]
    ctx = BlockContext(CHAIN, 1, 1_000, b"")
    print(
        f"python {platform.python_version()}, {os.cpu_count()} cores, "
        f"{n} transfers from distinct senders, median of {repeats}"
    )
    for label, suite in (
        ("without signature checks", TrustingSuite()),
        ("with signature checks", ED25519),
    ):
        ex = Executor(registry, suite)
        runs, cpu = [], []
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            result = ex.execute_block(state, ctx, txs)
            runs.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            assert all(r.ok for r in result.receipts), result.receipts[0]
        med = statistics.median(runs)
        print(
            f"  {label:26s} {n / med:9,.0f} tx/s   ({med * 1000:.1f} ms per block, "
            f"{statistics.median(cpu) * 1e6 / n:.0f} us CPU per tx; "
            f"runs {', '.join(f'{r * 1000:.0f}' for r in runs)} ms)"
        )
    print(f"  gas per transfer: {result.receipts[0].gas_used}")


if __name__ == "__main__":
    main()
