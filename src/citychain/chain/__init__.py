"""The chain: blocks applied to state and stored, atomically (CometBFT's BlockExecutor)."""

from citychain.chain._chain import Chain as Chain
from citychain.chain._chain import PendingBlock as PendingBlock
from citychain.chain._chain import results_root as results_root
from citychain.chain._queries import QueryCache as QueryCache

__all__ = ["Chain", "PendingBlock", "QueryCache", "results_root"]
