"""Latest state values kept in memory, so that :meth:`StateDB.get` seldom reads the store.

Theory of operation
-------------------
Every transaction reads a few state values (its sender's nonce at admission and again at
execution, the balances it moves), and each read of RocksDB through rocksdict costs ~1.8 µs
of held GIL: ~4 % of one validator's time under a transfer load (py-spy). This cache answers
most of them from a dict.

What it holds: for some keys, the value of the latest committed version (None: the key is
absent). Two events put entries in:

* **a read that missed** (:meth:`get`): the value read from the store is kept, unless a
  commit ran meanwhile (the *generation* moved), since the read may then predate that commit.
* **a commit** (:meth:`committed`, called by ``StateDB.committed`` once the block's batch is
  on disk): every key the block changed gets its new value; the generation moves on.

Readers of other threads (admission checks) may run while a block commits. A read that
starts before :meth:`committed` and misses is never kept (the generation check, under the
lock that :meth:`committed` holds), so the cache never holds a value older than the store's;
between the batch's write and :meth:`committed` a reader may still see the previous
version's value, exactly as if it had read just before the write. The block path itself
reads only after ``committed`` returns, so execution always sees the latest version: this
cache cannot change a state root.

Bounded by bytes (keys, values and a per-entry overhead); the oldest entries go first
(insertion order, and a commit re-inserts what it changes). Nothing depends on what it holds.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable

#: An entry's cost besides its key and value: the dict slot and two object headers.
_ENTRY_OVERHEAD = 120

#: Values larger than this are read from the store each time (a DID document, a catalogue
#: entry): they would push out many balances and nonces.
MAX_VALUE_BYTES = 16 * 1024

#: Default bound of a node's cache (``StateDB(value_cache_bytes=...)``).
DEFAULT_VALUE_CACHE_BYTES = 64 * 1024 * 1024

_MISSING = object()


def _cost(key: bytes, value: bytes | None) -> int:
    return len(key) + (len(value) if value is not None else 0) + _ENTRY_OVERHEAD


class ValueCache:
    """The latest values of some state keys (see the module's theory of operation)."""

    def __init__(self, max_bytes: int = DEFAULT_VALUE_CACHE_BYTES) -> None:
        # Ordered: the oldest entry leaves in O(1). (A plain dict's first entry is found by
        # scanning past every slot deleted before it: 36 µs an eviction at 100,000 entries.)
        self._values: OrderedDict[bytes, bytes | None] = OrderedDict()
        self._bytes = 0
        self._max = max_bytes
        self._generation = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._values)

    @property
    def size_bytes(self) -> int:
        """What the entries cost, as counted against the bound."""
        return self._bytes

    def get(self, key: bytes, read: Callable[[bytes], bytes | None]) -> bytes | None:
        """The latest value of ``key``: from memory, else ``read(key)`` from the store."""
        value = self._values.get(key, _MISSING)
        if value is not _MISSING:
            return value  # type: ignore[return-value]
        generation = self._generation
        value = read(key)
        if self._max:
            with self._lock:
                if generation == self._generation and key not in self._values:
                    self._put(key, value)
        return value

    def committed(self, changes: Iterable[tuple[bytes, bytes | None]]) -> None:
        """A version is on disk: ``changes`` are its new values (None: deleted)."""
        if not self._max:  # off: nothing is kept, so nothing can be older than the store
            return
        with self._lock:
            self._generation += 1
            for key, value in changes:
                self._put(key, value)

    def _put(self, key: bytes, value: bytes | None) -> None:
        values = self._values
        old = values.pop(key, _MISSING)
        if old is not _MISSING:
            self._bytes -= _cost(key, old)  # type: ignore[arg-type]
        if value is not None and len(value) > MAX_VALUE_BYTES:
            return
        cost = _cost(key, value)
        if cost > self._max:
            return
        values[key] = value
        self._bytes += cost
        while self._bytes > self._max:
            oldest, gone = values.popitem(last=False)
            self._bytes -= _cost(oldest, gone)
