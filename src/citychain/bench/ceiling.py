"""Machine ceilings measured in the same run as a benchmark."""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path

from citychain.crypto import ED25519, CryptoSuite, Signer, VerifyItem


def verifications_per_second(suite: CryptoSuite = ED25519, seconds: float = 2.0) -> float:
    """``suite``'s signature verifications/s on all cores (the thread-pooled batch verifier):
    the ceiling of a transfer benchmark on a chain of that suite."""
    signers = [Signer.generate(suite) for _ in range(16)]
    n = 4000 if suite.name == ED25519.name else 800  # SM2 verifies ~10x slower
    items = []
    for i in range(n):
        s = signers[i % 16]
        msg = i.to_bytes(8, "big") * 20
        items.append(VerifyItem(s.public_key, msg, s.sign(msg)))
    suite.batch_verify(items[:200])  # warm the pool
    done = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        suite.batch_verify(items)
        done += len(items)
    return done / (time.perf_counter() - start)


def ed25519_verifications_per_second(seconds: float = 2.0) -> float:
    """Ed25519 verifications/s on all cores (the thread-pooled batch verifier)."""
    return verifications_per_second(ED25519, seconds)


def rocksdb_point_reads_per_second(work_dir: Path | None = None, keys: int = 200_000) -> float:
    """Random point reads/s of 32-byte keys from a fresh RocksDB store (one thread)."""
    from citychain.store.kv import KVStore

    rng = random.Random(7)  # noqa: S311 (a seeded workload, not secrets)
    with tempfile.TemporaryDirectory(dir=work_dir, prefix="citychain-ceiling-") as tmp:
        kv = KVStore(Path(tmp), column_families=("state_latest",))
        try:
            names = [rng.randbytes(32) for _ in range(keys)]
            for i in range(0, keys, 10_000):
                batch = kv.batch()
                for k in names[i : i + 10_000]:
                    batch.put("state_latest", k, k * 3)
                kv.write(batch)
            sample = rng.sample(names, min(keys, 50_000))
            start = time.perf_counter()
            for k in sample:
                kv.get("state_latest", k)
            return len(sample) / (time.perf_counter() - start)
        finally:
            kv.close()
