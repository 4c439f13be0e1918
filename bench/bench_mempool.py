"""Mempool throughput: add (check + insert), reap and update of signed transfers.

    .venv/bin/python bench/bench_mempool.py [--txs 20000] [--senders 2000] [--block 5000]
        [--background 0]

Transactions are signed before timing starts (signing is the client's cost). ``check`` is
what the node runs in a worker thread (decode + one batch signature verification); ``insert``,
``reap`` and ``update`` run on the event loop, so their sum is the loop's share. With
``--background N`` the pool already holds N transactions that are not executable (nonce gaps),
to show that reap and update do not scan the whole pool.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

from citychain.crypto import ED25519, Signer
from citychain.mempool import Mempool, MempoolConfig
from citychain.types import Transaction

CHAIN = "bench"


def signed(senders: list[Signer], per_sender: int, first_nonce: int = 0) -> list[bytes]:
    out = []
    for n in range(first_nonce, first_nonce + per_sender):
        for s in senders:  # interleaved, as many clients would submit
            tx = Transaction.create(
                s,
                chain_id=CHAIN,
                nonce=n,
                contract="token",
                method="transfer",
                args={"to": b"\x07" * 20, "amount": 1},
            )
            out.append(tx.encode())
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--txs", type=int, default=20_000)
    ap.add_argument("--senders", type=int, default=2_000)
    ap.add_argument("--block", type=int, default=5_000, help="transactions per block")
    ap.add_argument("--batch", type=int, default=500, help="transactions per submission")
    ap.add_argument("--background", type=int, default=0, help="non-executable txs pre-pooled")
    args = ap.parse_args()

    senders = [Signer(ED25519, i.to_bytes(32, "big")) for i in range(1, args.senders + 1)]
    raw = signed(senders, args.txs // args.senders)
    nonces: dict[bytes, int] = {}
    height = [0]
    pool = Mempool(
        MempoolConfig(max_txs=args.txs + args.background + 1, nonce_window=1024),
        ED25519,
        CHAIN,
        lambda addr: nonces.get(addr, 0),
        lambda: height[0],
    )
    if args.background:
        idle = [Signer(ED25519, (10**6 + i).to_bytes(32, "big")) for i in range(args.background)]
        # Nonce 1 with nonce 0 missing: pooled, never executable.
        res = pool.add(signed(idle, 1, first_nonce=1))
        assert all(r.ok for r in res)

    t_check = t_insert = t_reap = t_update = 0.0
    for i in range(0, len(raw), args.batch):
        t0 = time.perf_counter()
        checked = pool.check(raw[i : i + args.batch])
        t1 = time.perf_counter()
        results = pool.insert(checked)
        t2 = time.perf_counter()
        t_check += t1 - t0
        t_insert += t2 - t1
        assert all(r.ok for r in results), [r for r in results if not r.ok][:3]

    blocks = 0
    committed = 0
    while True:
        t0 = time.perf_counter()
        block = pool.reap(args.block, 1 << 40, 1 << 60)
        t1 = time.perf_counter()
        t_reap += t1 - t0
        if not block:
            break
        for tx in block:
            nonces[ED25519.address(tx.sender)] = tx.nonce + 1
        height[0] += 1
        t1 = time.perf_counter()
        pool.update(block, height[0])
        t_update += time.perf_counter() - t1
        blocks += 1
        committed += len(block)
    assert committed == len(raw) and len(pool) == args.background

    n = len(raw)

    def row(name: str, secs: float) -> None:
        print(
            f"{name:<26}{secs * 1000:>10.1f} ms{n / secs:>12,.0f} tx/s{secs / n * 1e6:>9.1f} us/tx"
        )

    print(
        f"mempool bench: {n} transfers, {args.senders} senders, blocks of {args.block}, "
        f"batches of {args.batch}, {args.background} background txs; "
        f"python {platform.python_version()}, {os.cpu_count()} cpus"
    )
    row("check (decode+verify)", t_check)
    row("insert", t_insert)
    row("reap", t_reap)
    row("update", t_update)
    row("loop share (ins+reap+upd)", t_insert + t_reap + t_update)
    row("total", t_check + t_insert + t_reap + t_update)
    print(f"{blocks} blocks")


if __name__ == "__main__":
    main()
