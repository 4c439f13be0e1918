"""The real :class:`~citychain.api.service.NodeService`: a thin adapter over a running
:class:`citychain.node.Node`.

The API layer sits above the node, so the adapter lives here and the node never imports the
web stack. Proofs run in a worker thread. A contract query runs first on the event loop
with a small gas budget (:data:`INLINE_QUERY_GAS`) and moves to a worker thread only if it
runs out of it: most queries are a few point reads (~150 µs for a DID resolution), and the
hand-off to a thread and back cost more than that (measured: ~300 µs of CPU per request in
GIL and wake-up traffic, a resolution over HTTP 1,100 → 1,800/s without it); the budget
keeps the loop, which also runs consensus, from being held by a long scan.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry

from citychain import __version__
from citychain.api.service import (
    AccountInfo,
    BlockInfo,
    CommittedEvent,
    NodeStatus,
    StateProof,
    SubmitResult,
    TxInfo,
    TxStatus,
)
from citychain.crypto import CryptoSuite
from citychain.errors import ErrorCode, ExecutionFailure, InvalidInput, NotFound
from citychain.node import Node, Subscription
from citychain.proof.ics23 import encode_commitment_proof
from citychain.types import DuplicateVoteEvidence, Transaction, ValidatorSet
from citychain.types.answers import TxFilter
from citychain.types.state_keys import CONTRACT_PREFIX


class _Stream:
    """An EventStream over a node subscription."""

    def __init__(self, sub: Subscription) -> None:
        self._sub = sub

    @property
    def closed_reason(self) -> str | None:
        return self._sub.closed_reason

    @property
    def position(self) -> int:
        return self._sub.position

    def __aiter__(self) -> AsyncIterator[CommittedEvent]:
        return self._sub.__aiter__()

    def close(self, reason: str) -> None:
        self._sub.close(reason)


#: Gas a contract query may spend on the event loop. ~50 point reads or ~4 KiB of result
#: (see GasSchedule): about 1-2 ms of work at most. A query that needs more is run again,
#: from the start, in a worker thread with the chain's whole ``max_gas_per_tx``.
INLINE_QUERY_GAS = 50_000


class NodeServiceAdapter:
    def __init__(self, node: Node) -> None:
        self.node = node
        #: State the API serves no raw read or proof of (Contract.private_prefixes).
        self._private = node.chain.executor.registry.private_prefixes()

    @property
    def chain_id(self) -> str:
        return self.node.chain_id

    @property
    def suite(self) -> CryptoSuite:
        return self.node.suite

    @property
    def metrics_registry(self) -> CollectorRegistry:
        return self.node.metrics_registry

    async def submit(self, raw_txs: Sequence[bytes]) -> Sequence[SubmitResult]:
        return await self.node.submit(raw_txs)  # the mempool's results are SubmitResults

    def tx(self, tx_hash: bytes) -> TxInfo:
        pooled = self.node.mempool.get(tx_hash)
        if pooled is not None:
            return TxInfo(TxStatus.PENDING, pooled)
        blocks = self.node.chain.blocks
        loc = blocks.tx_location(tx_hash)
        if loc is None or loc[0] > self.node.height:
            return TxInfo(TxStatus.UNKNOWN)
        height, index = loc
        tx = blocks.tx(height, index)
        receipt = blocks.receipt(height, index)
        if tx is None or receipt is None:
            return TxInfo(TxStatus.UNKNOWN)
        return TxInfo(TxStatus.COMMITTED, tx, height, index, receipt)

    def latest_height(self) -> int:
        return self.node.height

    def private_call(self, tx: Transaction) -> bool:
        return self.node.private_call(tx)

    def in_good_standing(self, address: bytes) -> bool:
        return self.node.chain.in_good_standing(address)

    def block(self, height: int) -> BlockInfo | None:
        if not 1 <= height <= self.node.height:
            return None
        blocks = self.node.chain.blocks
        block, commit = blocks.block(height), blocks.commit(height)
        if block is None or commit is None:
            return None
        return BlockInfo(block, commit)

    def block_by_hash(self, block_hash: bytes) -> BlockInfo | None:
        height = self.node.chain.blocks.height_of(block_hash)
        return self.block(height) if height is not None else None

    def status(self) -> NodeStatus:
        node = self.node
        header = node.chain.last_header()
        return NodeStatus(
            chain_id=node.chain_id,
            crypto_suite=node.suite.name,
            node_id=node.config.node.name,
            public_key=node.signer.public_key,
            height=node.height,
            latest_hash=header.hash if header else bytes(32),
            state_root=header.state_root if header else node.chain.genesis_state_root(),
            latest_time=header.time if header else node.genesis.genesis_time,
            mempool_txs=node.mempool.size,
            mempool_bytes=node.mempool.bytes,
            validators=node.chain.validators(),
            syncing=False,
            version=__version__,
            crypto_params=node.suite.params,
        )

    def _public(self, key: bytes) -> None:
        if key.startswith(self._private):
            owner = key[len(CONTRACT_PREFIX) :].split(b"/", 1)[0].decode(errors="replace")
            raise InvalidInput(
                f"state key {key[:80].hex()} holds private data of contract {owner!r} (grants, "
                "audit trails, wrapped keys...): the node serves no raw read or proof of it; "
                "its service answers signed, authorised reads",
                ErrorCode.NOT_AUTHORIZED,
            )

    def state_value(self, key: bytes) -> bytes | None:
        self._public(key)
        return self.node.state_value(key)

    def index_get(self, space: str, key: bytes) -> bytes | None:
        return self.node.index_get(space, key)

    def index_reader(self, space: str) -> Callable[[bytes], bytes | None]:
        return self.node.index_reader(space)

    def index_put(self, space: str, items: Sequence[tuple[bytes, bytes]]) -> None:
        self.node.index_put(space, items)

    async def state_proof(self, key: bytes, height: int | None) -> StateProof:
        self._public(key)
        latest = self.node.height
        h = latest if height is None else height
        if latest == 0 or h > latest or h < 1:
            raise NotFound(
                f"height {h} is not committed (latest is {latest})"
                if latest
                else "no block is committed yet",
                ErrorCode.HEIGHT_NOT_COMMITTED,
            )
        oldest = self.node.chain.state.oldest_version
        if h < oldest:
            raise NotFound(
                f"state at height {h} was pruned; the oldest retained height is {oldest}",
                ErrorCode.HEIGHT_PRUNED,
            )
        blocks = self.node.chain.blocks
        header, commit = blocks.header(h), blocks.commit(h)
        if header is None or commit is None:
            raise NotFound(f"block {h} is missing", ErrorCode.HEIGHT_NOT_COMMITTED)
        value, proof = await asyncio.to_thread(self.node.chain.state.prove, key, h)
        return StateProof(key, value, h, encode_commitment_proof(proof), header, commit)

    async def query(
        self,
        contract: str,
        method: str,
        args: Mapping[str, Any],
        *,
        private: bool = False,
        caller: bytes | None = None,
    ) -> Any:
        plain = dict(args)
        try:
            return self.node.query(
                contract, method, plain, private=private, caller=caller, gas_limit=INLINE_QUERY_GAS
            )
        except ExecutionFailure as exc:
            # A chain limit within the budget: the run on the loop had all of it already.
            whole = self.node.chain.executor.gas.max_gas_per_tx <= INLINE_QUERY_GAS
            if exc.code is not ErrorCode.OUT_OF_GAS or whole:
                raise
        return await asyncio.to_thread(
            functools.partial(self.node.query, private=private, caller=caller),
            contract,
            method,
            plain,
        )

    def query_inline(self, contract: str, method: str, args: Mapping[str, Any]) -> Any:
        return self.node.query(contract, method, dict(args), gas_limit=INLINE_QUERY_GAS)

    def account(self, address: bytes) -> AccountInfo:
        nonce = self.node.account_nonce(address)
        pending = max(nonce, self.node.mempool.pending_nonce(address))
        return AccountInfo(address, nonce, pending)

    def validators(self, height: int | None) -> ValidatorSet:
        latest = self.node.height
        if height is not None and height > latest + 1:
            raise NotFound(
                f"height {height} is beyond the next block ({latest + 1})",
                ErrorCode.HEIGHT_NOT_COMMITTED,
            )
        return self.node.chain.validators(height)

    def subscribe(
        self,
        contract: str | None,
        event_type: str | None,
        shows_private: TxFilter | None = None,
        from_height: int | None = None,
    ) -> _Stream:
        return _Stream(self.node.subscribe(contract, event_type, shows_private, from_height))

    def health(self) -> tuple[bool, dict[str, Any]]:
        return self.node.health()

    def consensus(self) -> dict[str, Any]:
        st = self.node.engine.status()
        return {
            "engine": st.engine,
            "height": st.height,
            "round": st.round,
            "step": st.step,
            "waiting_for": st.waiting_for,
            "details": st.details,
        }

    def peers(self) -> list[dict[str, Any]]:
        return self.node.peers()

    def evidence(self, limit: int) -> list[tuple[int, DuplicateVoteEvidence]]:
        return self.node.chain.blocks.committed_evidence(limit)

    def pending_evidence(self) -> list[DuplicateVoteEvidence]:
        return self.node.pending_evidence()
