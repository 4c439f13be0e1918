"""Machine ceilings measured in the same run as a benchmark."""

from __future__ import annotations

import time

from citychain.crypto import ED25519, Signer, VerifyItem


def ed25519_verifications_per_second(seconds: float = 2.0) -> float:
    """Ed25519 verifications/s on all cores (the thread-pooled batch verifier)."""
    signers = [Signer.generate(ED25519) for _ in range(16)]
    items = []
    for i in range(4000):
        s = signers[i % 16]
        msg = i.to_bytes(8, "big") * 20
        items.append(VerifyItem(s.public_key, msg, s.sign(msg)))
    ED25519.batch_verify(items[:200])  # warm the pool
    done = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        ED25519.batch_verify(items)
        done += len(items)
    return done / (time.perf_counter() - start)
