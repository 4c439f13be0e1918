"""Authenticated state: a versioned sparse Merkle tree over RocksDB, with ICS-23 proofs.

``StateDB`` keeps the latest values for reads (the hot ones in memory too: ``_values``), a
history of values for reads at retained versions, and the tree in pages of sixteen (see
``_nodes`` and ``_smt`` for the theory, ``_db`` for the storage layout, versioning, pruning
and crash safety). Proofs verify under ``citychain.proof.ics23.SMT_SPEC``.
"""

from citychain.state._db import (
    DEFAULT_CACHE_PAGES,
    MAX_VERSION,
    TREE_COLUMN_FAMILY,
    PreparedState,
    StateDB,
)
from citychain.state._nodes import MAX_KEY_LEN
from citychain.state._values import DEFAULT_VALUE_CACHE_BYTES
from citychain.state.interface import StateReader, WriteSet

#: The root of the empty tree.
EMPTY_ROOT = bytes(32)

__all__ = [
    "DEFAULT_CACHE_PAGES",
    "DEFAULT_VALUE_CACHE_BYTES",
    "EMPTY_ROOT",
    "MAX_KEY_LEN",
    "MAX_VERSION",
    "TREE_COLUMN_FAMILY",
    "PreparedState",
    "StateDB",
    "StateReader",
    "WriteSet",
]
