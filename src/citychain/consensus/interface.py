"""What the node asks of a consensus engine, whatever the algorithm."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from citychain.chain import PendingBlock
from citychain.types import Commit

#: Called on the event loop after each block is durably committed.
OnCommit = Callable[[PendingBlock, Commit], None]


@dataclass(frozen=True, slots=True)
class ConsensusStatus:
    """What an operator needs to see why the chain is (not) moving."""

    engine: str
    height: int  # the height being decided (last committed + 1)
    round: int
    step: str
    waiting_for: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EmptyBlocks:
    """When a height with nothing to commit makes its block (node.toml ``[consensus]``
    ``create_empty_blocks`` and ``empty_blocks_interval_ms``; CometBFT's
    ``create_empty_blocks`` and ``create_empty_blocks_interval``).

    ``create`` with ``interval_ms`` > 0 (the default): an idle height waits for transactions
    up to ``interval_ms``, then makes an empty block, so monitors still see the chain alive.
    ``create`` with 0: no waiting, a block every block interval. Not ``create``: an idle
    height waits for transactions as long as it takes (unlike CometBFT, where an interval
    still makes empty blocks then). The first block of a chain is never held back.
    """

    create: bool = True
    interval_ms: int = 10_000

    def __post_init__(self) -> None:
        if not isinstance(self.interval_ms, int) or self.interval_ms < 0:
            raise ValueError("empty_blocks_interval_ms must be a non-negative integer")

    @property
    def waits(self) -> bool:
        """True if an idle height waits for transactions at all."""
        return not self.create or self.interval_ms > 0

    def due_ms(self, idle_since_ms: int) -> int | None:
        """When a height idle since ``idle_since_ms`` makes its empty block (None: never)."""
        return idle_since_ms + self.interval_ms if self.create else None

    @staticmethod
    def describe_idle(now_ms: int, due_ms: int | None) -> str:
        """What an idle node waits for, in words (for ``waiting_for``)."""
        if due_ms is None:
            return "transactions (idle; empty blocks are off)"
        left_s = max(0, due_ms - now_ms + 999) // 1000
        return f"transactions (idle); next empty block in {left_s} s"


class ConsensusEngine(Protocol):
    async def run(self) -> None:
        """Decide blocks until :meth:`stop` is called."""
        ...

    def stop(self) -> None: ...

    def status(self) -> ConsensusStatus: ...

    def notify_txs(self) -> None:
        """The mempool has transactions a block could take now ("transactions available"):
        an engine holding back an idle height starts its block."""
        ...
