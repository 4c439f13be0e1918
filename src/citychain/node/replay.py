"""Replay: re-execute every committed block from genesis into a fresh state.

Determinism check and disaster-recovery tool (`citychain node replay`). The node's block store
is opened read-only (the node may keep running); a fresh chain in a temporary directory
executes each block exactly as a follower would (:meth:`Chain.check_block`), which refuses the
first block whose results root or state root differ from the recorded header.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from citychain.chain import Chain
from citychain.errors import ProofError
from citychain.execution import default_registry
from citychain.node.config import NodeConfig
from citychain.store.blocks import BlockStore
from citychain.store.kv import KVStore
from citychain.types.genesis import Genesis


@dataclass(frozen=True, slots=True)
class ReplayReport:
    height: int
    state_root: bytes
    transactions: int


def replay(
    home: Path,
    *,
    progress: Callable[[int, int], None] | None = None,
    work_dir: Path | None = None,
) -> ReplayReport:
    """Re-execute blocks 1..H of the node at ``home``; raise ProofError at a divergence."""
    config = NodeConfig.load(home)
    genesis = Genesis.load(config.genesis_file)
    source = KVStore(config.data_dir, read_only=True)
    try:
        blocks = BlockStore(source, hash_new=genesis.suite.hash_new)
        target = blocks.height
        with tempfile.TemporaryDirectory(dir=work_dir, prefix="citychain-replay-") as tmp:
            fresh = Chain(KVStore(Path(tmp)), genesis, default_registry(), retain_versions=2)
            try:
                txs = 0
                for block, commit in blocks.iter_blocks():
                    try:
                        pending = fresh.check_block(block)
                    except ProofError as exc:
                        raise ProofError(f"replay diverged: {exc.message}", exc.code) from None
                    fresh.commit(pending, commit)
                    txs += len(block.txs)
                    if progress is not None:
                        progress(block.height, target)
                return ReplayReport(fresh.height, fresh.state.root, txs)
            finally:
                fresh.close()
    finally:
        source.close()
