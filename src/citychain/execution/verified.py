"""The transactions whose signatures this node has already verified, remembered by hash.

Theory of operation
-------------------
The design's invariant: **every node verifies every signature it executes, exactly once.** A
transaction reaches a node's execution by one of two roads:

* through this node's own mempool, which verified its signature (and endorsements) at
  admission (:meth:`citychain.mempool.Mempool.check`) and records its hash here; or
* any other way: in a peer's proposal, by block sync, by replay. Such a transaction was never
  verified by this node, its hash is not here, and the executor verifies it before it runs,
  batched on the thread pool with every other such transaction of the block.

The hash is the SHA-256 of the whole encoded transaction, *signature and endorsements
included* (:meth:`citychain.types.Transaction.hash`), so a hash here vouches for exactly those
bytes: the same body with another signature is another hash, and is verified. Correctness does
not depend on the cache: a hash missing from it (evicted, never admitted, a restarted node)
only costs one more verification. The cache is bounded (oldest hashes leave first) and a
transaction's hash is dropped once its block is committed, since a committed transaction can
never execute again (its nonce is spent).

Admission runs on the thread pool while blocks execute on the consensus path, so one lock
guards the table; each call takes it once per batch or block, never per transaction.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable


class VerifiedTxs:
    """A bounded, thread-safe set of transaction hashes this node verified itself."""

    def __init__(self, capacity: int = 200_000) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self.capacity = capacity
        self._lock = threading.Lock()
        # oldest first; OrderedDict pops its oldest in O(1), where a dict's first key after
        # many deletions from the front is found by scanning past them
        self._hashes: OrderedDict[bytes, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._hashes)

    def add(self, hashes: Iterable[bytes]) -> None:
        """Remember ``hashes`` as verified; the oldest beyond the capacity are forgotten."""
        with self._lock:
            table = self._hashes
            for h in hashes:
                table[h] = None
            while len(table) > self.capacity:
                table.popitem(last=False)

    def known(self, hashes: Iterable[bytes]) -> list[bool]:
        """For each hash, whether this node verified that transaction."""
        with self._lock:
            table = self._hashes
            return [h in table for h in hashes]

    def drop(self, hashes: Iterable[bytes]) -> None:
        """Forget ``hashes`` (their transactions were committed)."""
        with self._lock:
            for h in hashes:
                self._hashes.pop(h, None)
