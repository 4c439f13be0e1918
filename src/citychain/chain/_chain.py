"""Theory of operation: building, checking and committing blocks.

A block moves through three steps, and only the last one touches the disk:

1. **execute** (:meth:`Chain.build_block` for a proposer, :meth:`Chain.check_block` for
   everyone else and for replay): run the transactions on the committed state through the
   :class:`~citychain.execution.Executor`, giving one receipt per transaction and the block's
   net writes; hand the writes to :meth:`StateDB.prepare`, which computes the new state root
   without writing. The header commits to ``tx_root``, ``results_root`` (Merkle root of the
   receipts) and that ``state_root``. ``check_block`` recomputes all three and refuses a block
   whose header disagrees, so a node never stores a block it could not have produced itself.
2. **agree**: consensus (a single validator, or BFT) produces a :class:`Commit` over the header.
3. **commit** (:meth:`Chain.commit`): the block, its commit, the tx index, the receipts, the
   state nodes and values, and the new height all go into ONE RocksDB batch written with
   fsync. A kill -9 before the write leaves the previous height intact; after it, the whole
   block is there. In-memory views advance only after the write returns.

The state version equals the block height; version 0 is the genesis state.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from citychain import codec
from citychain.chain._queries import DEFAULT_QUERY_CACHE_BYTES, QueryCache
from citychain.crypto import CryptoSuite, HashNew
from citychain.errors import ConfigError, ErrorCode, InternalError, ProofError
from citychain.execution import (
    BlockContext,
    BlockResult,
    ContractRegistry,
    Executor,
    GasSchedule,
    VerifiedTxs,
    access,
    out_of_gas,
)
from citychain.proof import merkle
from citychain.stages import CLOCK
from citychain.state import (
    DEFAULT_CACHE_PAGES,
    DEFAULT_VALUE_CACHE_BYTES,
    TREE_COLUMN_FAMILY,
    PreparedState,
    StateDB,
)
from citychain.store.blocks import BlockStore
from citychain.store.kv import DEFAULT_BLOCK_CACHE_BYTES, DEFAULT_MAX_OPEN_FILES, KVStore
from citychain.types import (
    Block,
    Commit,
    DuplicateVoteEvidence,
    Header,
    Receipt,
    Transaction,
    Validator,
    ValidatorSet,
    evidence_root,
    tx_root,
)
from citychain.types.genesis import ChainParams, Genesis

log = logging.getLogger(__name__)


def results_root(
    receipts: tuple[Receipt, ...] | list[Receipt], hash_new: HashNew = hashlib.sha256
) -> bytes:
    return merkle.root([r.encode() for r in receipts], hash_new)


@dataclass(frozen=True, slots=True)
class PendingBlock:
    """An executed block whose effects are computed but not yet written."""

    block: Block
    result: BlockResult
    prepared: PreparedState

    @property
    def header(self) -> Header:
        return self.block.header

    @property
    def receipts(self) -> tuple[Receipt, ...]:
        return self.result.receipts


class Chain:
    """One chain's blocks and state on one node's disk."""

    def __init__(
        self,
        kv: KVStore,
        genesis: Genesis,
        registry: ContractRegistry,
        *,
        retain_versions: int | None = None,
        cache_pages: int = DEFAULT_CACHE_PAGES,
        query_cache_bytes: int = DEFAULT_QUERY_CACHE_BYTES,
        value_cache_bytes: int = DEFAULT_VALUE_CACHE_BYTES,
    ) -> None:
        self.kv = kv
        self.genesis = genesis
        self.chain_id = genesis.chain_id
        #: The chain's suite, from genesis: its signatures, and the hash of everything below
        #: (blocks, transactions, evidence, validator sets, the state tree, receipts' root).
        self.suite: CryptoSuite = genesis.suite
        #: The suite's hash as a hashlib-style constructor, for whatever this chain decodes.
        self.hash_new: HashNew = self.suite.hash_new
        self.params = genesis.params
        self.executor = Executor(
            registry, self.suite, GasSchedule(max_gas_per_tx=self.params.max_gas_per_tx)
        )
        self.blocks = BlockStore(kv, hash_new=self.hash_new)
        self.state = StateDB(
            kv,
            retain_versions=retain_versions,
            cache_nodes=cache_pages,
            suite=self.suite,
            value_cache_bytes=value_cache_bytes,
        )
        self._commit_lock = threading.Lock()
        #: Governance records of the committed state, for every transaction's access checks.
        self.gov_cache = access.GovCache()
        #: Answers of queries on the committed state, until the next commit (see _queries).
        self.queries = QueryCache(query_cache_bytes)
        #: Transactions whose signatures this node verified at admission (the mempool adds
        #: them), so execution does not verify them again; see execution.verified.
        self.verified = VerifiedTxs()
        self._admission_ctx: BlockContext | None = None
        self._init_or_check_genesis()
        self._load_params()

    def _load_params(self) -> None:
        """Chain parameters and gas costs as governance last set them (genesis until then)."""
        raw = self.state.get(access.PARAMS_KEY)
        if raw is None:
            return
        value = codec.decode(raw)
        chain = {**asdict(self.genesis.params), **value["chain"]}
        self.params = ChainParams(**chain)
        self.executor.set_gas(GasSchedule.from_dict(value["gas"]))

    # -- genesis ---------------------------------------------------------------------------
    def _init_or_check_genesis(self) -> None:
        stored = self.kv.get("meta", b"genesis_hash")
        if stored is not None:
            if stored != self.genesis.hash:
                raise ConfigError(
                    f"the data directory {self.kv.path} belongs to another chain: its genesis "
                    f"hash is {stored.hex()}, the genesis file's is {self.genesis.hash.hex()}"
                )
            return
        if self.blocks.height != 0 or self.state.version != 0 or self.state.root != bytes(32):
            raise InternalError("database has blocks or state but no genesis record")
        ctx = BlockContext(self.chain_id, 0, self.genesis.genesis_time, b"")
        writes = self.executor.init_genesis(self.state, ctx, self.genesis.contract_params())
        batch = self.kv.batch()
        root = self.state.init_genesis(writes, batch)
        self.blocks.save_validators(batch, 1, self.genesis.validator_set)
        batch.put("meta", b"genesis_hash", self.genesis.hash)
        batch.put("meta", b"genesis", codec.encode(self.genesis.to_json()))
        self.kv.write(batch)
        log.info("initialised genesis state of %s, root %s", self.chain_id, root.hex())

    # -- views -----------------------------------------------------------------------------
    @property
    def height(self) -> int:
        return self.blocks.height

    def last_header(self) -> Header | None:
        return self.blocks.header(self.height) if self.height else None

    def validators(self, height: int | None = None) -> ValidatorSet:
        return self.blocks.validators_at(self.height + 1 if height is None else height)

    def genesis_state_root(self) -> bytes:
        return self.state.root_at(0)

    # -- step 1: execute ---------------------------------------------------------------------
    def _execute(
        self, height: int, time_ms: int, proposer: bytes, txs: tuple[Transaction, ...]
    ) -> tuple[BlockResult, PreparedState]:
        ctx = BlockContext(self.chain_id, height, time_ms, proposer)
        result = self.executor.execute_block(
            self.state, ctx, txs, self.gov_cache, verified=self.verified
        )
        with CLOCK.measure("state_root", len(txs)):
            prepared = self.state.prepare(result.writes, height)
        return result, prepared

    def check_evidence(self, evidence: Sequence[DuplicateVoteEvidence], height: int) -> None:
        """Refuse evidence for a block at ``height`` unless each piece is valid, recent enough,
        not yet committed, and listed once (deterministic: depends only on stored data)."""
        p = self.params
        if len(evidence) > p.block_max_evidence:
            raise ProofError(
                f"{len(evidence)} pieces of evidence exceed the limit of {p.block_max_evidence}",
                ErrorCode.BAD_PROOF,
            )
        seen: set[bytes] = set()
        for ev in evidence:
            if ev.hash in seen:
                raise ProofError("the same evidence is listed twice", ErrorCode.BAD_PROOF)
            seen.add(ev.hash)
            if ev.height >= height:
                raise ProofError("evidence from the future", ErrorCode.BAD_PROOF)
            if height - ev.height > p.evidence_max_age_blocks:
                raise ProofError(
                    f"evidence from height {ev.height} is older than "
                    f"{p.evidence_max_age_blocks} blocks",
                    ErrorCode.BAD_PROOF,
                )
            if self.blocks.evidence_height(ev.hash) is not None:
                raise ProofError("evidence was already committed", ErrorCode.BAD_PROOF)
            ev.verify(self.suite, self.chain_id, self.validators(ev.height))

    def build_block(
        self,
        txs: list[Transaction] | tuple[Transaction, ...],
        time_ms: int,
        proposer: bytes,
        evidence: Sequence[DuplicateVoteEvidence] = (),
    ) -> PendingBlock:
        """Execute ``txs`` as the next block and build its header (nothing is written)."""
        with CLOCK.measure("proposal", len(txs)):
            return self._build_block(txs, time_ms, proposer, evidence)

    def _build_block(
        self,
        txs: list[Transaction] | tuple[Transaction, ...],
        time_ms: int,
        proposer: bytes,
        evidence: Sequence[DuplicateVoteEvidence],
    ) -> PendingBlock:
        height = self.height + 1
        evidence = tuple(evidence)
        self.check_evidence(evidence, height)
        prev = self.last_header()
        prev_time = prev.time if prev else self.genesis.genesis_time
        time_ms = max(time_ms, prev_time + 1)  # block time strictly increases
        txs = tuple(txs)
        result, prepared = self._execute(height, time_ms, proposer, txs)
        new = self.hash_new
        header = Header(
            chain_id=self.chain_id,
            height=height,
            time=time_ms,
            prev_hash=prev.hash if prev else bytes(32),
            tx_root=tx_root(txs, new),
            results_root=results_root(result.receipts, new),
            state_root=prepared.root,
            validators_hash=self.validators(height).hash,
            proposer=proposer,
            evidence_root=evidence_root(evidence, new),
            hash_new=new,
        )
        return PendingBlock(Block(header, txs, evidence), result, prepared)

    def check_block(self, block: Block) -> PendingBlock:
        """Re-execute someone else's block; refuse it unless its header matches exactly."""
        with CLOCK.measure("proposal", len(block.txs)):
            return self._check_block(block)

    def _check_block(self, block: Block) -> PendingBlock:
        h = block.header
        height = self.height + 1
        prev = self.last_header()

        def refuse(why: str) -> ProofError:
            return ProofError(f"block {h.height} refused: {why}", ErrorCode.BAD_PROOF)

        if h.chain_id != self.chain_id:
            raise refuse(f"chain id {h.chain_id!r} is not {self.chain_id!r}")
        if h.hash_new is not self.hash_new:
            # A decoder that was not handed this chain's hash (a programming error, not a
            # peer's): every hash and root of the block would be computed with another one.
            raise InternalError("block decoded without this chain's hash function")
        if h.height != height:
            raise refuse(f"expected height {height}")
        if h.prev_hash != (prev.hash if prev else bytes(32)):
            raise refuse("previous block hash does not match")
        if prev is not None and h.time <= prev.time:
            raise refuse("block time does not increase")
        if h.validators_hash != self.validators(height).hash:
            raise refuse("validator set hash does not match")
        p = self.params
        if len(block.txs) > p.block_max_txs:
            raise refuse(f"{len(block.txs)} transactions exceed the limit of {p.block_max_txs}")
        size = sum(len(tx.encode()) for tx in block.txs)
        if size > p.block_max_bytes:
            raise refuse(f"{size} bytes of transactions exceed the limit of {p.block_max_bytes}")
        gas = sum(tx.gas_limit for tx in block.txs)
        if gas > p.block_max_gas:
            raise refuse(f"gas limits add up to {gas}, over the block limit of {p.block_max_gas}")
        block.check_tx_root()
        try:
            self.check_evidence(block.evidence, height)
        except ProofError as exc:
            raise refuse(exc.message) from None
        result, prepared = self._execute(height, h.time, h.proposer, block.txs)
        if results_root(result.receipts, self.hash_new) != h.results_root:
            raise refuse("execution results differ from the header's results_root")
        if prepared.root != h.state_root:
            raise refuse(
                f"state root after execution {prepared.root.hex()} differs from the header's "
                f"{h.state_root.hex()}"
            )
        return PendingBlock(block, result, prepared)

    # -- step 3: commit ---------------------------------------------------------------------
    def commit(self, pending: PendingBlock, commit: Commit) -> None:
        """Write the block, its commit, receipts, indexes and state in one synced batch."""
        with self._commit_lock, CLOCK.measure("commit", len(pending.block.txs)):
            block = pending.block
            if commit.block_hash != block.hash or commit.height != block.height:
                raise InternalError("commit does not belong to this block")
            batch = self.kv.batch()
            self.blocks.save(batch, block, commit, pending.receipts)
            writes = pending.result.writes
            scheduled = writes.get(access.VALSET_KEY)
            if scheduled is not None:
                # Governance changed the validator set at this height: it is in force from
                # the height the contract wrote (this height + 2), in the same atomic batch.
                value = codec.decode(scheduled)
                self.blocks.save_validators(
                    batch,
                    value["from"],
                    ValidatorSet(
                        (Validator(bytes(v[0]), v[1], v[2]) for v in value["validators"]),
                        hash_new=self.hash_new,
                    ),
                )
            self.state.commit(pending.prepared, batch)
            self.kv.write(batch, sync=True)
            self.state.committed(pending.prepared)
            self.blocks.committed(block.height)
            self.queries.invalidate()  # after the write is visible: see _queries
            self.verified.drop(tx.hash for tx in block.txs)  # their nonces are spent
            if pending.result.governance_changed:
                self.gov_cache.invalidate()  # after the write is visible: see GovCache
            if access.PARAMS_KEY in writes:
                self._load_params()

    # -- governance views ------------------------------------------------------------------
    def governance_changed(self, pending: PendingBlock) -> bool:
        """Whether the block changed the organisations (and so the network's trust store)."""
        if not pending.result.governance_changed:  # the common case: no scan of the writes
            return False
        prefix = access.ORG_PREFIX
        return any(k.startswith(prefix) for k in pending.result.writes)

    def organisations(self) -> list[dict[str, Any]]:
        """The organisations on chain now (id, name, ca_cert, ...), ascending by id."""
        return [codec.decode(v) for _, v in self.state.iter_prefix(access.ORG_PREFIX)]

    def check_admission(self, tx: Transaction) -> None:
        """Refuse ``tx`` early if the committed state's access rules would refuse it
        (ExecutionFailure with the receipt's code); the mempool calls this on admission."""
        # One context per height, not per transaction (~1 % of a node's time under load).
        ctx = self._admission_ctx
        height = self.height
        if ctx is None or ctx.height != height + 1:
            prev = self.blocks.header(height) if height else None
            ctx = self._admission_ctx = BlockContext(
                self.chain_id,
                height + 1,
                prev.time if prev else self.genesis.genesis_time,
                b"",
            )
        self.executor.check_admission(self.state, ctx, tx, self.gov_cache)

    def context(self) -> BlockContext:
        """The block context of a query on the latest committed state: its height, and the
        time and proposer of its last block (genesis time before the first)."""
        prev = self.last_header()
        return BlockContext(
            self.chain_id,
            self.height,
            prev.time if prev else self.genesis.genesis_time,
            prev.proposer if prev else b"",
        )

    def query(
        self,
        contract: str,
        method: str,
        args: dict[str, Any],
        caller: bytes | None = None,
        *,
        private: bool = False,
        gas_limit: int | None = None,
    ) -> Any:
        """A read-only query on the latest committed state (``Executor.query``), answered from
        :attr:`queries` when the same query was answered since the last commit."""
        cache = self.queries
        generation = cache.generation
        key = QueryCache.key(contract, method, args, caller, private) if cache.max_bytes else None
        if key is not None:
            kept = cache.get(key)
            if kept is not None:
                encoded, gas_used = kept
                limit = self.executor.query_gas_limit(gas_limit)
                if gas_used > limit:  # what the run would stop with: see _queries
                    raise out_of_gas(limit)
                return codec.decode_trusted(encoded)
        answer = self.executor.query_canonical(
            self.state,
            self.context(),
            contract,
            method,
            args,
            caller,
            private=private,
            gas_limit=gas_limit,
        )
        if key is not None:
            cache.put(key, answer.encoded, answer.gas_used, generation)
        return answer.value

    def in_good_standing(self, address: bytes) -> bool:
        """Whether ``address`` is a member in good standing of an organisation at the latest
        committed state (``gov.member``). The API asks it of a signed read that meets a
        private call, and of an event subscriber for each private call it would be sent, so
        an account removed, revoked or frozen stops receiving them with the block that did
        it. Memoised in :attr:`gov_cache` (emptied after every block that writes governance
        records) until the block time passes the member's certificate's end."""
        ctx = self.context()
        key = (b"standing", address)
        memo: tuple[bool, int] | None = self.gov_cache.recall(key)
        if memo is not None and ctx.time <= memo[1]:
            return memo[0]
        generation = self.gov_cache.generation
        found = self.executor.query(self.state, ctx, access.GOV, "member", {"address": address})
        ok = isinstance(found, dict) and found.get("standing") == "ok"
        # A certificate's end takes good standing away without a governance write.
        until = int(found.get("not_after") or access.FOREVER) if ok else access.FOREVER
        self.gov_cache.remember(key, (ok, until), generation)
        return ok

    def close(self) -> None:
        self.kv.close()

    @classmethod
    def open(
        cls,
        data_dir: Path,
        genesis: Genesis,
        registry: ContractRegistry,
        *,
        retain_versions: int | None = None,
        cache_pages: int = DEFAULT_CACHE_PAGES,
        max_open_files: int = DEFAULT_MAX_OPEN_FILES,
        tree_blob_files: bool = False,
        query_cache_bytes: int = DEFAULT_QUERY_CACHE_BYTES,
        value_cache_bytes: int = DEFAULT_VALUE_CACHE_BYTES,
        block_cache_bytes: int = DEFAULT_BLOCK_CACHE_BYTES,
    ) -> Chain:
        blobs = (TREE_COLUMN_FAMILY,) if tree_blob_files else ()
        return cls(
            KVStore(
                data_dir,
                cache_bytes=block_cache_bytes,
                max_open_files=max_open_files,
                blob_column_families=blobs,
            ),
            genesis,
            registry,
            retain_versions=retain_versions,
            cache_pages=cache_pages,
            query_cache_bytes=query_cache_bytes,
            value_cache_bytes=value_cache_bytes,
        )
