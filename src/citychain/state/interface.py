"""What the layers above see of state: a reader, and a set of writes.

State keys are raw bytes; the layout of the key space (who owns which prefix) is fixed by
``citychain.execution`` (contracts get ``c/<name>/...``, accounts ``a/...``). Values are raw
bytes (usually canonical CBOR). Iteration is in ascending byte order of keys.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Protocol, TypeAlias

# Where a page that starts ``after`` a key begins, for readers of the state that merge their
# own pending writes with it (the executor's context): the store's definition, not a copy.
from citychain.store.kv import key_after as key_after

#: Writes produced by executing a block: key -> new value, or None to delete the key.
WriteSet: TypeAlias = Mapping[bytes, bytes | None]


class StateReader(Protocol):
    """Read access to one version of state."""

    def get(self, key: bytes) -> bytes | None:
        """The value of ``key``, or None if it is absent."""
        ...

    def iter_prefix(
        self, prefix: bytes, *, after: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        """All (key, value) pairs whose key starts with ``prefix``, in ascending key order.

        With ``after``, only the pairs whose key is greater than ``prefix + after``, found by
        a seek rather than by reading past the ones before (a page's start)."""
        ...
