"""Transactions waiting for a block: admission checks, per-sender nonce order, fair reaping.

See :mod:`citychain.mempool._pool` for the theory of operation.
"""

from citychain.mempool._pool import MAX_REAP_MISFITS as MAX_REAP_MISFITS
from citychain.mempool._pool import AddResult as AddResult
from citychain.mempool._pool import Mempool as Mempool
from citychain.mempool._pool import MempoolConfig as MempoolConfig

__all__ = ["MAX_REAP_MISFITS", "AddResult", "Mempool", "MempoolConfig"]
