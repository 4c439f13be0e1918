"""Answers of read-only queries on the committed state, memoised until the next block.

Theory of operation
-------------------
A query (``Executor.query``) is a pure function of the committed state, the block context
(height, time, proposer of the last block), the contract, the method, the caller, whether it
was authorised as private and the arguments: the same inputs give the same answer, using the
same gas, by the rule every contract obeys (no clock, no randomness, no I/O). Between two
blocks only the arguments vary, and readers ask the same few things again and again (every
verifier resolves the same issuers' DIDs and reads the same status lists), so the chain keeps
each answer's canonical bytes under those inputs until its next commit, and a repeated query
costs a dictionary lookup and a decode instead of a run.

The chain empties the cache after every commit, once the block's state is visible
(``StateDB.committed``). Blocks commit on the execution thread while the API queries on the
event loop (and on worker threads for long queries), so an answer being computed while a
block commits might mix both states. Each run notes the cache's *generation* before it starts
and its answer is kept only if no commit emptied the cache meanwhile (as
:class:`~citychain.execution.access.GovCache` does): an answer that may have read the older
state is never kept, and one kept is of the state every later reader sees until the next
commit.

Only answers are kept, with the gas they used, not refusals. The gas limit is not part of the
key: an answer kept serves any limit at least the gas it used, and under a lower one the run
would stop with ``out_of_gas`` at that limit, which is what the chain then answers without
running it (the API tries a query on its event loop under a small limit and moves a heavier
one to a worker thread: a heavy query asked again is told at once to move). Each answer is
handed out as a fresh decode of its bytes, so a caller that edits what it got cannot change
what the next one gets.

Bounded: an answer over :data:`MAX_ANSWER_BYTES` is not kept, and when the kept bytes would
pass the budget the cache starts over (between blocks the hot answers come back at once).
"""

from __future__ import annotations

import threading
from typing import Any

from citychain import codec
from citychain.errors import DecodeError

#: The budget a node gives its cache unless node.toml ``[state] query_cache_mib`` says
#: otherwise.
DEFAULT_QUERY_CACHE_BYTES = 64 * 1024 * 1024
#: Largest answer kept (canonical bytes); bigger ones are computed each time.
MAX_ANSWER_BYTES = 256 * 1024
#: What a kept entry costs beyond its bytes (the key's tuple, the bytes objects' heads, the
#: value's tuple, the dict slot), for the budget: tracemalloc measured ~290 bytes in all for a
#: balance query and its answer, of which ~45 are the bytes themselves.
_ENTRY_OVERHEAD = 250

QueryKey = tuple[str, str, bool, bytes, bytes]


class QueryCache:
    """Canonical answers of queries on the committed state, kept until the next commit.

    ``max_bytes``: the budget of kept answers and their keys; 0 keeps nothing."""

    __slots__ = ("_bytes", "_gen", "_lock", "_values", "hits", "max_bytes", "misses")

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must not be negative, not {max_bytes}")
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._gen = 0
        self._values: dict[QueryKey, tuple[bytes, int]] = {}
        self._bytes = 0
        #: Answers served from the cache / computed (a node's metric).
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(
        contract: str, method: str, args: dict[str, Any], caller: bytes | None, private: bool
    ) -> QueryKey | None:
        """The key of a query, or None when it cannot be kept (arguments that are not
        canonical data, a caller that is not bytes: the executor refuses them with its own
        message)."""
        if caller is not None and type(caller) is not bytes:
            return None
        try:
            encoded = codec.encode(args)
        except DecodeError:
            return None
        return (contract, method, private, caller or b"", encoded)

    @property
    def generation(self) -> int:
        """Changes at every commit; take it before running a query, give it to :meth:`put`."""
        return self._gen

    def get(self, key: QueryKey) -> tuple[bytes, int] | None:
        """The answer's canonical bytes and the gas it used, if kept."""
        found = self._values.get(key)
        if found is None:
            self.misses += 1
        else:
            self.hits += 1
        return found

    def put(self, key: QueryKey, answer: bytes, gas_used: int, generation: int) -> None:
        """Keep ``answer`` (which used ``gas_used``) unless a commit happened since
        ``generation`` (or it is too big)."""
        if len(answer) > MAX_ANSWER_BYTES:
            return
        cost = len(answer) + len(key[4]) + len(key[0]) + len(key[1]) + _ENTRY_OVERHEAD
        with self._lock:
            if self._gen != generation or cost > self.max_bytes:
                return
            if self._bytes + cost > self.max_bytes:
                self._values = {}
                self._bytes = 0
            if key not in self._values:
                self._values[key] = (answer, gas_used)
                self._bytes += cost

    def invalidate(self) -> None:
        """Forget every answer: the committed state has changed."""
        with self._lock:
            self._gen += 1
            self._values = {}
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._values)

    @property
    def kept_bytes(self) -> int:
        """What the kept answers cost against ``max_bytes``."""
        return self._bytes
