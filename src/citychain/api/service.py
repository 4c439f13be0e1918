"""What the API asks of a node: the :class:`NodeService` protocol.

The API layer never reaches into the node's stores; it sees only this interface, which the
node implements (and which tests implement with an in-memory fake). Everything here is plain
data from :mod:`citychain.types`; nothing imports FastAPI, so a node can implement the
protocol without loading the web stack. The answers it returns (:class:`NodeStatus`,
:class:`TxInfo`, ...) are defined once in :mod:`citychain.types.answers`, shared with the SDK,
and re-exported here.

Contract for implementers
-------------------------
* **Threads.** Every method is called on the event loop that serves the API. The synchronous
  methods must be quick (a few key-value reads, no long computation). The two reads that may
  take longer are ``async`` (:meth:`NodeService.state_proof` walks a tree at an old version;
  :meth:`NodeService.query` runs contract code), so the node decides whether to move them to
  a worker thread.
* **Errors.** Refusals are :mod:`citychain.errors` exceptions with a precise code; the API
  turns them into HTTP answers by code (the table in :mod:`citychain.errors`): ``NotFound`` (404),
  ``HEIGHT_PRUNED`` (410), ``InvalidInput``/``ExecutionFailure`` (400), ``MEMPOOL_FULL``
  (429), ``Unavailable`` (503). Any other exception is logged as a bug and answered with a
  generic 500 that reveals nothing.
* **Heights.** Block heights start at 1; the state after block ``h`` is version ``h`` and its
  root is ``header(h).state_root``. "Latest" means the last committed height.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from citychain.crypto import CryptoSuite
from citychain.types import CommittedEvent, DuplicateVoteEvidence, Transaction, ValidatorSet

# The answers' shapes are defined once, in citychain.types.answers (the SDK returns them too).
from citychain.types.answers import (
    AccountInfo,
    BlockInfo,
    NodeStatus,
    StateProof,
    SubmitResult,
    TxFilter,
    TxInfo,
    TxStatus,
    WithheldTx,
)

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = [
    "AccountInfo",
    "BlockInfo",
    "CommittedEvent",
    "EventStream",
    "NodeService",
    "NodeStatus",
    "StateProof",
    "SubmitResult",
    "TxInfo",
    "TxStatus",
    "WithheldTx",
]


class EventStream(Protocol):
    """A subscription: committed events matching a filter, in commit order.

    The node buffers a bounded number of events per subscriber. A subscriber that falls
    further behind is closed (``closed_reason`` says why, with the height to subscribe again
    from) rather than growing memory; iteration then ends after the events buffered until
    then, so what a stream delivered has no gap. Iteration also ends after :meth:`close` or
    when the node stops.
    """

    @property
    def closed_reason(self) -> str | None:
        """Why the stream ended, once it has (None while it is open)."""
        ...

    @property
    def position(self) -> int:
        """The height up to which every matching event has been given to the reader: read
        between two events (or while the stream waits), a reader that handled each one may
        go on later from ``position + 1`` and miss nothing. It moves with every committed
        block, matching events or not, so a reader of rare events can note how far it got."""
        ...

    def __aiter__(self) -> AsyncIterator[CommittedEvent]: ...

    def close(self, reason: str) -> None:
        """Stop the subscription and free its buffer; idempotent."""
        ...


class NodeService(Protocol):
    """Everything the REST and WebSocket API needs from a node."""

    @property
    def chain_id(self) -> str: ...

    @property
    def suite(self) -> CryptoSuite: ...

    @property
    def metrics_registry(self) -> CollectorRegistry:
        """The registry ``GET /metrics`` exposes (Prometheus text format)."""
        ...

    async def submit(self, raw_txs: Sequence[bytes]) -> Sequence[SubmitResult]:
        """Admit transactions (wire bytes) to the mempool: one result per input, in order.

        A transaction's own problem is reported in its result, never raised. Raise
        ``Unavailable`` only when the node can take nothing right now (e.g. it is syncing).
        """
        ...

    def tx(self, tx_hash: bytes) -> TxInfo:
        """Where a transaction is. Never raises ``NotFound``: unknown is a status."""
        ...

    def latest_height(self) -> int:
        """The last committed height (0 before the first block)."""
        ...

    def private_call(self, tx: Transaction) -> bool:
        """Whether ``tx`` calls a method whose calls are not public (its contract's
        ``private_methods``): the API shows it whole only to its signers and to members in
        good standing, and streams its events only to subscriptions signed by those
        (:mod:`citychain.api._withhold`)."""
        ...

    def in_good_standing(self, address: bytes) -> bool:
        """Whether ``address`` is a member in good standing of an organisation at the latest
        committed state (``gov.member``); cheap to ask again (the event stream asks it for
        every private call it would send a subscriber)."""
        ...

    def block(self, height: int) -> BlockInfo | None:
        """The committed block at ``height`` (>= 1), or None if there is none."""
        ...

    def block_by_hash(self, block_hash: bytes) -> BlockInfo | None: ...

    def status(self) -> NodeStatus: ...

    async def state_proof(self, key: bytes, height: int | None) -> StateProof:
        """The value of ``key`` after block ``height`` (latest if None), with its proof.

        Raises ``NotFound`` with code ``HEIGHT_NOT_COMMITTED`` for a height above the latest
        (or when no block is committed yet), ``HEIGHT_PRUNED`` for a version no longer
        retained, and ``InvalidInput`` (``BAD_ARGUMENTS``) for a key the state cannot hold.
        An absent key is not an error: ``value`` is None with a non-existence proof.
        """
        ...

    async def query(
        self,
        contract: str,
        method: str,
        args: Mapping[str, Any],
        *,
        private: bool = False,
        caller: bytes | None = None,
    ) -> Any:
        """A read-only contract query on the latest committed state; the result is a
        canonical value (bytes, ints, strings, lists, maps). ``args`` are canonical values.
        Raises ``ExecutionFailure``/``InvalidInput`` with the contract's code (e.g.
        ``UNKNOWN_CONTRACT``, ``UNKNOWN_METHOD``, ``BAD_ARGUMENTS``).

        A private query (``@query(private=True)``) is refused (``NOT_AUTHORIZED``) unless
        ``private`` is True, which only a service route passes, after it checked the reader's
        signed request (:mod:`citychain.api._httpsig`). ``caller`` (a 20-byte address, e.g.
        the signer's) is what the contract sees as ``ctx.caller``; zero bytes when None."""
        ...

    def query_inline(self, contract: str, method: str, args: Mapping[str, Any]) -> Any:
        """A public :meth:`query` run here and now, on the event loop, within the small gas
        budget a query may use there; beyond it, ``ExecutionFailure`` (``OUT_OF_GAS``): ask
        :meth:`query` then, which may move it to a worker thread. For answers the HTTP
        protocol makes itself (:mod:`citychain.api._kept`)."""
        ...

    def state_value(self, key: bytes) -> bytes | None:
        """The latest committed value of a full state key (``contract_key``), or None; now,
        on the event loop (one point read). Raises ``InvalidInput`` (``NOT_AUTHORIZED``) for
        a contract's private state, of which the API serves no raw read."""
        ...

    def index_get(self, space: str, key: bytes) -> bytes | None:
        """An entry of a service's off-chain index (``space``: the service's name), or None.
        An index is derived from committed state and is no part of it: a service checks what
        it reads there against the state before using it (see ``Node.index_get``)."""
        ...

    def index_reader(self, space: str) -> Callable[[bytes], bytes | None]:
        """:meth:`index_get` of ``space`` as one function, bound once: for a service that
        reads its index on every request (a DID resolution given from it)."""
        ...

    def index_put(self, space: str, items: Sequence[tuple[bytes, bytes]]) -> None:
        """Write entries of a service's off-chain index (without the write-ahead log: an entry
        a crash loses is made again)."""
        ...

    def account(self, address: bytes) -> AccountInfo: ...

    def validators(self, height: int | None) -> ValidatorSet:
        """The validator set that signs block ``height`` (the next block if None).
        Raises ``NotFound`` (``HEIGHT_NOT_COMMITTED``) for a height beyond the next block."""
        ...

    def subscribe(
        self,
        contract: str | None,
        event_type: str | None,
        shows_private: TxFilter | None = None,
        from_height: int | None = None,
    ) -> EventStream:
        """A new subscription to committed events; None matches anything. The events of a
        private call (:meth:`private_call`) go to it only if ``shows_private`` picks the call
        (never when None). From the next block, or with ``from_height`` from that committed
        block on: each event exactly once, in commit order, the past blocks' read back first.
        May raise ``Unavailable`` when the node has too many subscribers, and ``NotFound``
        (``height_not_committed``) for a ``from_height`` beyond the next block."""
        ...

    def health(self) -> tuple[bool, dict[str, Any]]:
        """``(ok, details)``; ``details`` must be JSON-serialisable (str keys, plain values)."""
        ...

    def consensus(self) -> dict[str, Any]:
        """The consensus engine's state: ``engine, height, round, step, waiting_for`` and
        ``details`` (who voted, locks, peers, sync); JSON-serialisable."""
        ...

    def peers(self) -> list[dict[str, Any]]:
        """The node's p2p peers (empty for a single-validator chain); JSON-serialisable."""
        ...

    def evidence(self, limit: int) -> list[tuple[int, DuplicateVoteEvidence]]:
        """Committed evidence of misbehaviour, newest first, as (block height, evidence)."""
        ...

    def pending_evidence(self) -> list[DuplicateVoteEvidence]:
        """Evidence seen by this node and not yet committed."""
        ...
