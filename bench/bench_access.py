"""Access checks: what governance costs each transaction, on a real chain (RocksDB).

A chain in registered-key identity mode with N members (genesis) runs the checks of
``Chain.check_admission`` for one transfer from each member: first with nothing remembered
(every governance record read from the store), then again (records and answers remembered,
as between blocks that change no governance record). Then one block of the N transfers is
executed in key mode and in open mode, so the difference is the checks' share of execution.
The ceiling is this machine's Ed25519 verifications per second on one core, measured in the
same run (a transfer costs at least one). Run: ``.venv/bin/python bench/bench_access.py [N]``.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from citychain.bench import result_line
from citychain.chain import Chain
from citychain.crypto import ED25519, Signer
from citychain.execution import default_registry
from citychain.p2p.certs import generate_org_ca
from citychain.types import Transaction, Validator
from citychain.types.genesis import Genesis, Governance, Member, Organisation

CHAIN = "bench-access"


def ed25519_one_core(seconds: float = 1.0) -> float:
    s = Signer(ED25519, bytes(range(32)))
    msg = b"x" * 200
    sig = s.sign(msg)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for _ in range(200):
            ED25519.verify(s.public_key, msg, sig)
        n += 200
    return n / (time.perf_counter() - t0)


def chain(path: Path, mode: str, members: list[Signer], admin: Signer, ca: str) -> Chain:
    validator = Signer(ED25519, bytes([7]) * 32)
    genesis = Genesis(
        chain_id=CHAIN,
        genesis_time=1_700_000_000_000,
        crypto_suite="ed25519",
        validators=(Validator(validator.public_key, 10, "v"),),
        contracts={"token": {"balances": [[m.address, 10**9] for m in members]}},
        organisations=(
            Organisation(
                "org1",
                "Org 1",
                ca,
                admins=(admin.public_key,),
                members=tuple(Member(m.public_key, ("member",)) for m in members),
            ),
        ),
        governance=Governance(mode),
        validator_orgs=((validator.public_key, "org1"),),
    )
    return Chain.open(path, genesis, default_registry())


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    members = [Signer(ED25519, i.to_bytes(32, "big")) for i in range(1, n + 1)]
    admin = Signer(ED25519, bytes([9]) * 32)
    ca = generate_org_ca("org1", "Org 1")[0].decode()
    sink = bytes(range(20))
    txs = [
        Transaction.create(
            m,
            chain_id=CHAIN,
            nonce=0,
            contract="token",
            method="transfer",
            args={"to": sink, "amount": 1},
        )
        for m in members
    ]
    # as a node holds them: decoded from the wire, so their encoding (and hash) is known
    txs = [Transaction.decode(tx.encode()) for tx in txs]
    ceiling = ed25519_one_core()
    print(f"python {platform.python_version()}, {os.cpu_count()} cores, {n} members")
    with tempfile.TemporaryDirectory() as tmp:
        key = chain(Path(tmp) / "key", "key", members, admin, ca)
        for label in ("nothing remembered", "remembered"):
            t0 = time.perf_counter()
            for tx in txs:
                key.check_admission(tx)
            took = time.perf_counter() - t0
            print(f"  admission checks, {label:18s} {n / took:10,.0f}/s ({took / n * 1e6:.1f} us)")
        rate = n / took
        times = {}
        for mode in ("key", "open"):
            c = key if mode == "key" else chain(Path(tmp) / "open", "open", members, admin, ca)
            t0 = time.perf_counter()
            pending = c.build_block(txs, 1_700_000_001_000, bytes(32))
            times[mode] = time.perf_counter() - t0
            assert all(r.ok for r in pending.receipts), pending.receipts[0]
            print(f"  block of {n} transfers, {mode:4s} mode  {n / times[mode]:10,.0f} tx/s")
        share = (times["key"] - times["open"]) / times["key"]
        print(f"  access checks' share of block execution: {share:.1%}")
        key.close()
    print(result_line("access", rate, "checks/s", ceiling, "verifications/s (one core)"))


if __name__ == "__main__":
    main()
