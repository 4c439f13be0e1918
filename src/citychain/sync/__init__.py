"""Catching up: fetching committed blocks from peers (block sync)."""

from citychain.sync.blocksync import BlockSync as BlockSync

__all__ = ["BlockSync"]
