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


class ConsensusEngine(Protocol):
    async def run(self) -> None:
        """Decide blocks until :meth:`stop` is called."""
        ...

    def stop(self) -> None: ...

    def status(self) -> ConsensusStatus: ...

    def notify_txs(self) -> None:
        """The mempool gained transactions (an engine may propose sooner)."""
        ...
