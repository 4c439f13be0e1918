"""A node: the chain, the mempool and a consensus engine wired together, plus what the API
reads (status, subscriptions, metrics).

Threads: everything runs on one asyncio event loop except (a) signature checks of submitted
batches and (b) block execution and the commit write, which run in worker threads so the
loop keeps answering the API. Mempool mutations happen only on the loop.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from citychain import __version__
from citychain.chain import Chain, PendingBlock, QueryCache
from citychain.consensus import ConsensusEngine, SoloEngine
from citychain.consensus.interface import EmptyBlocks
from citychain.consensus.messages import CH_MEMPOOL, MAX_TX_BATCH, TxBatch
from citychain.consensus.messages import decode as decode_message
from citychain.consensus.messages import encode as encode_message
from citychain.consensus.privval import PrivValidator
from citychain.consensus.tendermint import TendermintEngine
from citychain.consensus.wal import WAL
from citychain.crypto import Signer
from citychain.errors import (
    CitychainError,
    ConfigError,
    ErrorCode,
    ExecutionFailure,
    InternalError,
    NotFound,
)
from citychain.execution import default_registry
from citychain.execution.keys import account_nonce
from citychain.mempool import Mempool, MempoolConfig
from citychain.mempool.journal import GroupCommit, Journal
from citychain.node.config import NodeConfig
from citychain.node.home import home_in_use, is_lock_error, running_pid
from citychain.node.keys import load_validator_key as load_validator_key
from citychain.node.keys import read_passphrase
from citychain.node.private_data import PRIVATE_MAX_OPEN_FILES, PrivateData
from citychain.p2p import Limits, Switch, parse_peer_list
from citychain.stages import CLOCK
from citychain.state import StateDB
from citychain.types import Commit, CommittedEvent, DuplicateVoteEvidence, Event, Transaction
from citychain.types.answers import SubmitResult, TxFilter
from citychain.types.genesis import Genesis

log = logging.getLogger(__name__)

#: The column family of the services' off-chain indexes (:meth:`Node.index_get`).
INDEX_CF = "indexes"


def _index_key(space: str, key: bytes) -> bytes:
    if not space or "/" in space:
        raise ValueError(f"an index space is a non-empty name without '/', not {space!r}")
    return space.encode() + b"/" + key


#: Events buffered per subscriber before it is dropped as too slow.
SUBSCRIBER_QUEUE = 10_000


class Subscription:
    """A bounded stream of committed events matching a filter, optionally replayed from a
    past height first.

    Theory of operation: the subscription takes the node's live events (:meth:`offer`, called
    by the node's commit callback on the loop) into a bounded queue from the moment it is
    made. Blocks up to :attr:`Node.streamed_height` at that moment have had their events
    offered already; with ``replay`` (heights ``from_height..streamed_height``) the reader
    first gets their events read back from the block store's receipts, a block at a time,
    then the queue. So a reader sees each event of ``from_height`` onwards exactly once, in
    commit order. A reader that falls more than :data:`SUBSCRIBER_QUEUE` events behind (the
    queue is full when a live event comes) is closed, but still reads everything the queue
    held when it was closed: what a closed stream delivered is always a gap-free prefix, so a
    client resumes from the height of the last event it got (``from_height``) and loses
    nothing.
    """

    def __init__(
        self,
        node: Node,
        contract: str | None,
        event_type: str | None,
        shows_private: TxFilter | None = None,
        replay: range | None = None,
    ) -> None:
        self._node = node
        self.contract = contract
        self.event_type = event_type
        #: Which private calls' events this subscriber gets (None: none of them).
        self.shows_private = shows_private
        self.queue: asyncio.Queue[CommittedEvent | None] = asyncio.Queue(SUBSCRIBER_QUEUE)
        self.closed_reason: str | None = None
        #: Heights whose events are read from the block store before the queue (None once
        #: they have been).
        self.replay = replay
        #: Closed because it fell behind: the reader still gets the replay and the queue.
        self._behind = False
        #: Every event of the blocks up to this height has been given to the reader.
        self._given = replay.start - 1 if replay is not None else node.streamed_height

    @property
    def position(self) -> int:
        """The height up to which every matching event has been given to the reader (see
        ``EventStream.position``): once the read-back is done and the queue is empty, every
        block the node has streamed, since a block's events are all offered at once (not
        after the stream closed: what came after was never offered to it)."""
        if self.closed_reason is None and self.replay is None and self.queue.empty():
            return max(self._given, self._node.streamed_height)
        return self._given

    def matches(self, event: Event) -> bool:
        return (self.contract is None or event.contract == self.contract) and (
            self.event_type is None or event.type == self.event_type
        )

    def offer(self, item: CommittedEvent) -> None:
        if self.closed_reason is not None:
            return
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self._behind = True
            self.close(
                f"subscriber fell more than {SUBSCRIBER_QUEUE} events behind; subscribe again "
                f"from height {item.height} to resume without a gap"
            )

    def close(self, reason: str) -> None:
        if self.closed_reason is None:
            self.closed_reason = reason
            self._node._subscriptions.discard(self)
            if not self.queue.full():
                # Wakes a reader waiting on the empty queue. A full queue keeps every event
                # (none is dropped for the marker): its reader is not waiting, and ends when it
                # finds the queue empty and the stream closed.
                self.queue.put_nowait(None)

    async def __aiter__(self) -> AsyncIterator[CommittedEvent]:
        try:
            if self.replay is not None:
                async for past in self._node._replayed(self, self.replay):
                    if self.closed_reason is not None and not self._behind:
                        return  # closed by its reader or the node: nothing more
                    self._given = max(self._given, past.height - 1)
                    yield past
                self._given = self.replay.stop - 1
                self.replay = None
            queue = self.queue
            while True:
                if self.closed_reason is not None and queue.empty():
                    return
                item = await queue.get()
                if item is None:
                    return
                self._given = max(self._given, item.height - 1)
                yield item
        finally:
            self.close("subscriber left")


class Node:
    def __init__(
        self,
        config: NodeConfig,
        *,
        signer: Signer | None = None,
        tendermint: Callable[..., TendermintEngine] = TendermintEngine,
    ) -> None:
        """Open the home's database and wire the node. A failure part-way closes what was
        opened (the database is never left open), and a database locked by another process
        is refused as ``home_in_use``, naming that node's pid when its pid file does.

        ``tendermint`` makes the consensus engine of a networked node (called with
        :class:`TendermintEngine`'s arguments); tests give a misbehaving subclass here
        (``tests/e2e/byzantine.py``), never a config file."""
        self._tendermint = tendermint
        try:
            self._wire(config, signer)
        except BaseException as exc:
            self._close_opened()
            if "chain" not in self.__dict__ and is_lock_error(exc):
                raise home_in_use(config.home, running_pid(config.home)) from None
            raise

    def _close_opened(self) -> None:
        wal, chain = self.__dict__.get("_wal"), self.__dict__.get("chain")
        if wal is not None:
            wal.close()
        if (journal := self.__dict__.get("_journal")) is not None:
            journal.close()
        if (private := self.__dict__.get("private")) is not None:
            private.close()
        if chain is not None:
            chain.close()
        if self.__dict__.get("_own_signer") and (key := self.__dict__.get("signer")) is not None:
            key.close()

    def _wire(self, config: NodeConfig, signer: Signer | None) -> None:
        self.config = config
        self.genesis = Genesis.load(config.genesis_file)
        # A key the node loaded is the node's to release (a PKCS#11 session); one it was
        # given stays its caller's.
        self._own_signer = signer is None
        self.signer = signer if signer is not None else load_validator_key(config)
        retain = config.state.retain_versions or None
        self.chain = Chain.open(
            config.data_dir,
            self.genesis,
            default_registry(),
            retain_versions=retain,
            cache_pages=config.state.cache_pages,
            max_open_files=config.state.max_open_files,
            tree_blob_files=config.state.tree_blob_files,
            query_cache_bytes=config.state.query_cache_mib * 1024 * 1024,
            value_cache_bytes=config.state.value_cache_mib * 1024 * 1024,
            block_cache_bytes=config.state.block_cache_mib * 1024 * 1024,
        )
        self.chain_id = self.chain.chain_id
        self.suite = self.chain.suite
        # The key signs votes and blocks under the chain's suite parameters (the SM2 ID its
        # genesis names), whatever instance the keystore or HSM loaded it with.
        self.signer = self.signer.under(self.suite)
        params = self.genesis.params
        self.mempool = Mempool(
            MempoolConfig(
                max_txs=config.mempool.max_txs,
                max_bytes=config.mempool.max_bytes,
                max_tx_bytes=params.max_tx_bytes,
                max_gas_per_tx=params.max_gas_per_tx,
                nonce_window=config.mempool.nonce_window,
            ),
            self.suite,
            self.chain_id,
            account_nonce=self.account_nonce,
            height=lambda: self.chain.height,
            admit=self._admit,
            verified=self.chain.verified,
        )
        self._journal: Journal | None = None
        self._journaled: dict[bytes, bytes] = {}  # tx hash -> wire bytes, while pooled
        if config.mempool.persist:
            self._open_journal(config.data_dir / "mempool.journal")
        self.switch: Switch | None = None
        self.engine: ConsensusEngine
        self._tx_outbox: list[bytes] = []
        self._tx_flush: asyncio.TimerHandle | None = None
        self._wal: WAL | None = None
        if config.p2p.org_id:
            self.engine = self._bft_engine()
        elif len(self.chain.validators()) > 1:
            raise ConfigError(
                f"{config.config_file}: this chain has {len(self.chain.validators())} "
                "validators, so its nodes talk over the network: set [p2p] org_id (and the "
                "TLS certificate files) in node.toml"
            )
        else:
            self.engine = SoloEngine(
                self.chain,
                self.mempool,
                self.signer,
                self._on_commit,
                empty_blocks=self._empty_blocks(),
            )
        # "Transactions available" (a client's or a peer's): an idle height starts its block.
        self.mempool.on_txs_available = self.engine.notify_txs
        self._subscriptions: set[Subscription] = set()
        self._streamed_height = self.chain.height
        #: Calls whose events go only to subscribers that may read them, and which the API
        #: withholds from other readers (contracts' private_methods): :meth:`private_call`.
        self._private_calls = self.chain.executor.registry.private_calls()
        self._commit_waiters: dict[bytes, list[asyncio.Future[None]]] = {}
        self._setup_metrics()
        # Private collections' values: a store of their own, pushed to listed orgs' peers only.
        # A node's organisation: its [p2p] org_id; a lone validator (solo engine, no p2p) is
        # its genesis organisation's, so a single-node city chain holds private values too.
        own_org = config.p2p.org_id or dict(self.genesis.validator_orgs).get(
            self.signer.public_key, ""
        )
        self.private = PrivateData(
            config.data_dir / "private",
            org_id=own_org,
            hash_new=self.chain.hash_new,
            query=self.query,
            height=lambda: self.chain.height,
            registry=self.metrics_registry,
            ack_timeout=config.p2p.private_ack_timeout_ms / 1000,
        )
        self._attach_private()
        self.private.on_commit(self.chain.height)  # purges due while the node was down
        self._running = False

    def _attach_private(self) -> None:
        if self.switch is not None:
            self.private.attach(self.switch)

    def _open_journal(self, path: Path) -> None:
        """Put the transactions accepted before a crash or stop back into the mempool (see
        :mod:`citychain.mempool.journal`); what was committed or expired meanwhile drops out."""
        journal = self._journal = Journal(path)
        raws = journal.read()
        kept = []
        if raws:
            results = self.mempool.insert(self.mempool.check(raws))
            for raw, r in zip(raws, results, strict=True):
                if r.ok and r.tx_hash is not None:
                    kept.append(raw)
                    self._journaled[r.tx_hash] = raw
            log.info(
                "mempool: %d transaction(s) back from the journal, %d dropped "
                "(committed, expired or no longer admissible)",
                len(kept),
                len(raws) - len(kept),
            )
        journal.rewrite(kept)
        self._group = GroupCommit(
            journal,
            live_bytes=lambda: self.mempool.bytes,
            live_raws=self._live_journaled,
        )

    def _live_journaled(self) -> list[bytes]:
        """The journaled transactions still pooled (asked only when the journal compacts)."""
        self._journaled = {h: raw for h, raw in self._journaled.items() if h in self.mempool}
        return list(self._journaled.values())

    def _bft_engine(self) -> TendermintEngine:
        """Tendermint over mutual-TLS p2p: the mode of any node with [p2p] org_id set."""
        cfg = self.config
        p2p = cfg.p2p
        for name, path in (("cert_file", p2p.cert_file), ("tls_key_file", p2p.tls_key_file)):
            if not cfg.path(path).exists():
                raise ConfigError(f"{cfg.config_file}: [p2p] {name} {cfg.path(path)} not found")
        self.switch = Switch(
            chain_id=self.chain_id,
            genesis_hash=self.genesis.hash,
            crypto_suite=self.suite.name,
            node_name=cfg.node.name,
            org_id=p2p.org_id,
            cert_file=cfg.path(p2p.cert_file),
            key_file=cfg.path(p2p.tls_key_file),
            key_passphrase=read_passphrase(cfg),
            ca_pems=self._trusted_cas(),
            listen_host=p2p.listen_host,
            listen_port=p2p.listen_port,
            peers=parse_peer_list(p2p.persistent_peers),
            limits=Limits(
                max_message_bytes=p2p.max_message_bytes,
                send_queue=p2p.send_queue,
                recv_bytes_per_s=p2p.recv_bytes_per_s,
                recv_msgs_per_s=p2p.recv_msgs_per_s,
            ),
            # Signs the node-key proof when the certificate names the validator key, so a
            # copy of the TLS key file alone cannot connect as this node.
            node_signer=self.signer,
            **self._gm_transport(),
        )
        # Every node keeps a signer: one that is not a validator yet signs from the height
        # governance adds it (the engine checks membership at every height).
        privval = PrivValidator(self.signer, cfg.path(cfg.consensus.privval_state_file))
        self._wal = WAL.open(cfg.path(cfg.consensus.wal_dir))
        engine = self._tendermint(
            self.chain,
            self.mempool,
            privval,
            self.switch,
            self._wal,
            self._on_commit,
            sync_window=cfg.consensus.sync_window,
            empty_blocks=self._empty_blocks(),
        )
        self.switch.add_channel(CH_MEMPOOL, self._on_peer_txs)
        self.switch.on_peer_connected = engine.peer_connected
        self.switch.on_peer_disconnected = lambda peer, why: engine.peer_disconnected(peer)
        return engine

    def _empty_blocks(self) -> EmptyBlocks:
        c = self.config.consensus
        return EmptyBlocks(c.create_empty_blocks, c.empty_blocks_interval_ms)

    def _gm_transport(self) -> dict[str, Any]:
        """On an ``sm2-sm3`` chain, the switch's SM2 arguments: this node's SM2 certificate
        (``[p2p] gm_cert_file``) and each organisation's SM2 CA; nothing elsewhere."""
        if self.suite.name != "sm2-sm3":
            return {}
        cfg = self.config
        path = cfg.path(cfg.p2p.gm_cert_file)
        try:
            pem = path.read_bytes()
        except OSError as exc:
            raise ConfigError(
                f"{cfg.config_file}: [p2p] gm_cert_file {path}: {exc.strerror or exc}; on an "
                "sm2-sm3 chain the node's SM2 certificate authenticates it to its peers"
            ) from None
        return {"gm_cert_pem": pem, "gm_ca_pems": self._trusted_gm_cas()}

    def _trusted_gm_cas(self) -> dict[str, bytes]:
        """Organisation id -> its SM2 CA (PEM), as the chain lists them (genesis before
        governance has a registry), plus this node's own organisation's (``[p2p]
        gm_ca_cert_file``) while it waits to be admitted."""
        cfg, p2p = self.config, self.config.p2p
        orgs = self._listed_cas("gm_ca_cert")
        if p2p.org_id not in orgs and p2p.gm_ca_cert_file:
            path = cfg.path(p2p.gm_ca_cert_file)
            try:
                orgs[p2p.org_id] = path.read_bytes()
            except OSError as exc:
                raise ConfigError(
                    f"{cfg.config_file}: [p2p] gm_ca_cert_file {path}: {exc}"
                ) from None
        return orgs

    def _listed_cas(self, field: str) -> dict[str, bytes]:
        """Organisation id -> its ``field`` (``ca_cert``, ``gm_ca_cert``) as PEM, from the
        chain's registry, or from genesis on an open-mode chain, which has no registry."""
        on_chain = self.chain.organisations()
        if on_chain:
            return {o["id"]: o[field].encode() for o in on_chain if o.get(field)}
        listed = ((o.id, getattr(o, field)) for o in self.genesis.organisations)
        return {oid: pem.encode() for oid, pem in listed if pem}

    def _trusted_cas(self) -> list[bytes]:
        """The CA certificates of the organisations on chain now, plus this node's own
        organisation's CA (``[p2p] ca_cert_file``) while that organisation waits to be
        admitted: it must reach the network to sync up to the block that admits it."""
        cfg, p2p = self.config, self.config.p2p
        orgs = self._listed_cas("ca_cert")
        if p2p.org_id not in orgs:
            if not p2p.ca_cert_file:
                raise ConfigError(
                    f"{cfg.config_file}: [p2p] org_id {p2p.org_id!r} is not an organisation of "
                    f"this chain (known: {sorted(orgs)}). A node of an organisation that is "
                    "waiting to be admitted sets [p2p] ca_cert_file to its organisation's CA"
                )
            path = cfg.path(p2p.ca_cert_file)
            try:
                own = path.read_bytes()
            except OSError as exc:
                raise ConfigError(f"{cfg.config_file}: [p2p] ca_cert_file {path}: {exc}") from None
            log.warning(
                "organisation %s is not on this chain yet: trusting its CA from %s until "
                "governance admits it (other nodes refuse this node until then)",
                p2p.org_id,
                path,
            )
            orgs[p2p.org_id] = own
        return [orgs[k] for k in sorted(orgs)]

    def _admit(self, tx: Transaction) -> CitychainError | None:
        try:
            self.chain.check_admission(tx)
        except ExecutionFailure as exc:
            return exc
        return None

    # -- transaction gossip ------------------------------------------------------------------
    def _gossip_txs(self, raw: Sequence[bytes]) -> None:
        if self.switch is None or not raw:
            return
        self._tx_outbox.extend(raw)
        if self._tx_flush is None:
            loop = asyncio.get_running_loop()
            self._tx_flush = loop.call_later(0.02, self._flush_txs)

    def _flush_txs(self) -> None:
        self._tx_flush = None
        out, self._tx_outbox = self._tx_outbox, []
        assert self.switch is not None
        for i in range(0, len(out), MAX_TX_BATCH):
            batch = TxBatch(tuple(out[i : i + MAX_TX_BATCH]))
            self.switch.broadcast(CH_MEMPOOL, encode_message(batch))

    def _on_peer_txs(self, peer: str, data: bytes) -> None:
        try:
            msg = decode_message(
                data, max_size=self.config.p2p.max_message_bytes, hash_new=self.chain.hash_new
            )
        except CitychainError as exc:
            log.info("dropped a malformed transaction batch from %s: %s", peer, exc.message)
            return
        if isinstance(msg, TxBatch):
            new = self.chain.hash_new  # mempool ids are the chain's transaction hashes
            fresh = [t for t in msg.txs if new(t).digest() not in self.mempool]
            if fresh:
                asyncio.get_running_loop().create_task(self._admit_peer_txs(fresh))

    async def _admit_peer_txs(self, raw: list[bytes]) -> None:
        loop = asyncio.get_running_loop()
        checked = await loop.run_in_executor(None, self.mempool.check, raw)
        self.mempool.insert(checked)
        self.m_mempool.set(self.mempool.size)
        self.m_mempool_bytes.set(self.mempool.bytes)

    # -- metrics -------------------------------------------------------------------------------
    def _setup_metrics(self) -> None:
        r = self.metrics_registry = CollectorRegistry()
        self.m_height = Gauge("citychain_height", "Last committed block height", registry=r)
        self.m_txs = Counter(
            "citychain_txs_committed", "Transactions committed", ["result"], registry=r
        )
        self.m_admitted = Counter(
            "citychain_txs_submitted",
            "Transactions submitted, by admission code",
            ["code"],
            registry=r,
        )
        self.m_mempool = Gauge("citychain_mempool_txs", "Transactions in the mempool", registry=r)
        self.m_mempool_bytes = Gauge(
            "citychain_mempool_bytes", "Bytes of transactions in the mempool", registry=r
        )
        self.m_block_txs = Histogram(
            "citychain_block_txs",
            "Transactions per block",
            buckets=(0, 1, 10, 100, 500, 1000, 2500, 5000, 10000),
            registry=r,
        )
        self.m_interval = Histogram(
            "citychain_block_interval_seconds",
            "Time between consecutive blocks",
            buckets=(0.1, 0.2, 0.5, 1, 2, 5, 10, 30),
            registry=r,
        )
        self.m_subs = Gauge("citychain_event_subscribers", "Open event subscriptions", registry=r)
        self.m_rounds = Histogram(
            "citychain_consensus_rounds_per_height",
            "Rounds a height needed before its decision (0 = decided in the first round)",
            buckets=(0, 1, 2, 3, 5, 10),
            registry=r,
        )
        self.m_missing = Gauge(
            "citychain_consensus_missing_votes",
            "Validators whose precommit is not in the last stored commit (a commit keeps only "
            "the first precommits past 2/3, so a merely late validator counts here too)",
            registry=r,
        )
        self.m_validators = Gauge(
            "citychain_consensus_validators",
            "Validators of the current set by what this node sees: ok, offline or lagging "
            "(the node itself is not counted)",
            ["state"],
            registry=r,
        )
        self.m_peers = Gauge("citychain_p2p_peers", "Connected peers", registry=r)
        self.m_evidence = Counter(
            "citychain_evidence_committed", "Evidence of misbehaviour committed", registry=r
        )
        self.m_evidence_pending = Gauge(
            "citychain_evidence_pending", "Evidence seen, not yet committed", registry=r
        )
        r.register(_StageCollector())
        r.register(_StateCacheCollector(self.chain.state))
        r.register(_QueryCacheCollector(self.chain.queries))
        self.m_height.set(self.chain.height)

    # -- reads used by the mempool and API --------------------------------------------------
    def account_nonce(self, address: bytes) -> int:
        return account_nonce(self.chain.state, address)

    @property
    def height(self) -> int:
        return self.chain.height

    @property
    def database_files(self) -> int:
        """The most table files the node's databases keep open (``[state] max_open_files``
        for the chain's, a fixed bound for the private values')."""
        return self.config.state.max_open_files + PRIVATE_MAX_OPEN_FILES

    def query(
        self,
        contract: str,
        method: str,
        args: dict[str, Any],
        *,
        private: bool = False,
        caller: bytes | None = None,
        gas_limit: int | None = None,
    ) -> Any:
        """A read-only query on the latest committed state (see ``Executor.query``: a private
        query needs ``private=True``; ``caller`` is who the contract sees as ``ctx.caller``;
        ``gas_limit`` lowers the chain's ``max_gas_per_tx`` for this query). An answer given
        since the last commit is given again from the chain's cache (``Chain.query``)."""
        return self.chain.query(
            contract, method, args, caller, private=private, gas_limit=gas_limit
        )

    def state_value(self, key: bytes) -> bytes | None:
        """The latest committed value of a full state key (``None`` when absent)."""
        return self.chain.state.get(key)

    # -- services' off-chain indexes -----------------------------------------------------------
    # Derived from committed state by a service (for instance the identity service's rendered
    # resolutions), never part of it: no block writes them, no root covers them, and a service
    # must be able to do without any entry (it checks an entry against the state it reads).
    # Written without the write-ahead log: an entry lost in a crash is only made again.
    def index_get(self, space: str, key: bytes) -> bytes | None:
        """The entry ``key`` of the service index ``space``, or None."""
        return self.chain.kv.get(INDEX_CF, _index_key(space, key))

    def index_reader(self, space: str) -> Callable[[bytes], bytes | None]:
        """:meth:`index_get` of ``space``, bound once: the column family's own read, the
        space's prefix made once, instead of the general path's four calls and checks for
        every read (a DID resolution given from the identity index reads one entry)."""
        prefix = _index_key(space, b"")
        read = self.chain.kv.reader(INDEX_CF)
        return lambda key: read(prefix + key)

    def index_put(self, space: str, items: Sequence[tuple[bytes, bytes]]) -> None:
        """Write entries of the service index ``space`` (one batch, without the WAL)."""
        batch = self.chain.kv.batch()
        for key, value in items:
            batch.put(INDEX_CF, _index_key(space, key), value)
        self.chain.kv.write(batch, sync=False, wal=False)

    # -- submission ----------------------------------------------------------------------------
    async def submit(self, raw_txs: Sequence[bytes]) -> list[SubmitResult]:
        loop = asyncio.get_running_loop()
        checked = await loop.run_in_executor(None, self.mempool.check, list(raw_txs))
        results = self.mempool.insert(checked)
        accepted = []
        # One counter update per admission code, not per transaction (``labels`` looks the
        # child up under a lock: ~1.5 % of a node's time under load, py-spy).
        for code, n in collections.Counter(r.code for r in results).items():
            self.m_admitted.labels(code).inc(n)
        for raw, r in zip(raw_txs, results, strict=True):
            if r.ok:
                accepted.append(raw)
                if self._journal is not None and r.tx_hash is not None:
                    self._journaled[r.tx_hash] = raw
        self._gossip_txs(accepted)
        self.m_mempool.set(self.mempool.size)
        self.m_mempool_bytes.set(self.mempool.bytes)
        if self._journal is not None and accepted:
            # "accepted" is answered only once the transactions are on disk
            try:
                await self._group.append(accepted)
            except OSError as exc:
                raise InternalError(
                    f"{len(accepted)} transaction(s) were accepted into the mempool but could "
                    f"not be written to its journal ({exc.strerror}); they may be lost if "
                    "this node stops before they are committed"
                ) from None
        return results

    # -- commits -------------------------------------------------------------------------------
    def _on_commit(self, pending: PendingBlock, commit: Commit) -> None:
        block = pending.block
        self.mempool.update(block.txs, block.height)
        if self._journaled:
            for tx in block.txs:
                self._journaled.pop(tx.hash, None)
        if self.switch is not None and self.chain.governance_changed(pending):
            try:
                self.switch.set_trusted_cas(self._trusted_cas())
                if self.suite.name == "sm2-sm3":
                    self.switch.set_trusted_gm_cas(self._trusted_gm_cas())
            except ConfigError as exc:
                log.error(
                    "could not follow the organisation change of block %d: %s",
                    block.height,
                    exc.message,
                )
        prev_ms = getattr(self, "_last_block_ms", None)
        self._last_block_ms = block.header.time
        if prev_ms is not None:
            self.m_interval.observe((block.header.time - prev_ms) / 1000)
        self.m_height.set(block.height)
        self.m_block_txs.observe(len(block.txs))
        self.m_rounds.observe(commit.round)
        self.m_evidence.inc(len(block.evidence))
        if isinstance(self.engine, TendermintEngine):
            self.m_missing.set(len(self.chain.validators(block.height)) - len(commit.signatures))
            seen = [v["state"] for v in self.engine.validator_states()]
            for state in ("ok", "offline", "lagging"):
                self.m_validators.labels(state).set(seen.count(state))
            self.m_evidence_pending.set(len(self.engine.evidence))
        if self.switch is not None:
            self.m_peers.set(len(self.switch.connected()))
        ok = sum(1 for r in pending.receipts if r.ok)
        self.m_txs.labels("ok").inc(ok)
        self.m_txs.labels("failed").inc(len(block.txs) - ok)
        self.m_mempool.set(self.mempool.size)
        self.m_mempool_bytes.set(self.mempool.bytes)
        self.private.on_commit(block.height, pending.receipts)
        self._streamed_height = block.height
        if self._subscriptions:
            subs = list(self._subscriptions)
            for i, (tx, receipt) in enumerate(zip(block.txs, pending.receipts, strict=True)):
                if not receipt.events:
                    continue
                private = self.private_call(tx)
                for ev in receipt.events:
                    item = None  # made for the first subscriber it goes to
                    for sub in subs:
                        if sub.matches(ev) and (
                            not private or (sub.shows_private is not None and sub.shows_private(tx))
                        ):
                            if item is None:
                                item = CommittedEvent(block.height, tx.hash, i, ev)
                            sub.offer(item)
        self.m_subs.set(len(self._subscriptions))

    def private_call(self, tx: Transaction) -> bool:
        """Whether ``tx`` calls a method its contract declares private (``private_methods``)."""
        return (tx.contract, tx.method) in self._private_calls

    def subscribe(
        self,
        contract: str | None = None,
        event_type: str | None = None,
        shows_private: TxFilter | None = None,
        from_height: int | None = None,
    ) -> Subscription:
        """Committed events matching the filter; of a private call only those
        ``shows_private`` picks (none when None). From the next block, or with
        ``from_height`` from that block on (the blocks already committed read back from the
        store first; see :class:`Subscription`). Raises NotFound (``height_not_committed``)
        for a ``from_height`` beyond the next block."""
        replay = None
        if from_height is not None:
            last = self.streamed_height
            if not 1 <= from_height <= last + 1:
                raise NotFound(
                    f"from_height {from_height} is not a committed height or the next one: "
                    f"this node's last block is {last}",
                    ErrorCode.HEIGHT_NOT_COMMITTED,
                )
            if from_height <= last:
                replay = range(from_height, last + 1)
        sub = Subscription(self, contract, event_type, shows_private, replay)
        self._subscriptions.add(sub)
        self.m_subs.set(len(self._subscriptions))
        return sub

    @property
    def streamed_height(self) -> int:
        """The last block whose events went to the subscribers (its commit callback ran)."""
        return self._streamed_height

    async def _replayed(self, sub: Subscription, heights: range) -> AsyncIterator[CommittedEvent]:
        """The committed events of ``heights`` that ``sub`` takes, read back from the block
        store: a block's receipts at a time, decoded in a worker thread (a block of thousands
        of transactions would hold the loop), filtered on the loop as :meth:`_on_commit`
        filters live ones (a private call's events only if ``sub.shows_private`` picks it)."""
        blocks = self.chain.blocks
        private = {contract for contract, _ in self._private_calls}
        for height in heights:
            receipts = await asyncio.to_thread(blocks.receipts, height)
            for i, receipt in enumerate(receipts):
                tx: Transaction | None = None
                for ev in receipt.events:
                    if not sub.matches(ev):
                        continue
                    if ev.contract in private:
                        if tx is None:
                            tx = blocks.tx(height, i)
                        if tx is None or (
                            self.private_call(tx)
                            and (sub.shows_private is None or not sub.shows_private(tx))
                        ):
                            continue
                    yield CommittedEvent(height, receipt.tx_hash, i, ev)

    # -- lifecycle -----------------------------------------------------------------------------
    async def run(self) -> None:
        self._running = True
        try:
            if self.switch is not None:
                await self.switch.start()
            await self.engine.run()
        finally:
            if self.switch is not None:
                await self.switch.stop()
            self._running = False

    def stop(self) -> None:
        # Transactions accepted in the last few milliseconds still go to the peers.
        if self._tx_flush is not None:
            self._tx_flush.cancel()
            self._flush_txs()
        self.engine.stop()
        for sub in list(self._subscriptions):
            sub.close("node stopping")

    def close(self) -> None:
        if self._wal is not None:
            self._wal.close()
        if self._journal is not None:
            self._journal.close()
        self.private.close()
        self.chain.close()
        if self._own_signer:
            self.signer.close()

    def peers(self) -> list[dict[str, Any]]:
        if self.switch is None:
            return []
        return [
            {
                "name": p.name,
                "org_id": p.org_id,
                "address": p.address,
                "direction": p.direction,
                "connected": p.connected,
                "since_ms": p.since_ms,
                "msgs_sent": p.msgs_sent,
                "bytes_sent": p.bytes_sent,
                "msgs_received": p.msgs_received,
                "bytes_received": p.bytes_received,
                "dropped": p.dropped,
                "queued": p.queued,
                "last_error": p.last_error,
            }
            for p in self.switch.peers()
        ]

    def pending_evidence(self) -> list[DuplicateVoteEvidence]:
        if isinstance(self.engine, TendermintEngine):
            return self.engine.evidence.all_pending()
        return []

    def health(self) -> tuple[bool, dict[str, Any]]:
        details: dict[str, Any] = {
            "height": self.chain.height,
            "consensus": self.engine.status().step,
            "mempool_txs": self.mempool.size,
            "version": __version__,
        }
        return True, details

    @classmethod
    def from_home(cls, home: Path) -> Node:
        return cls(NodeConfig.load(home))


class _StateCacheCollector(Collector):
    """The state tree's page cache, read at each scrape: how full it is, and how many pages
    blocks and proofs had to read from disk (``[state] cache_pages`` sizes it)."""

    def __init__(self, state: StateDB) -> None:
        self._state = state

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        st = self._state
        yield GaugeMetricFamily(
            "citychain_state_page_cache_pages",
            "State tree pages held in memory now",
            value=st.cached_pages,
        )
        yield GaugeMetricFamily(
            "citychain_state_page_cache_capacity",
            "Most state tree pages held in memory (node.toml [state] cache_pages)",
            value=st.cache_capacity,
        )
        yield CounterMetricFamily(
            "citychain_state_page_reads",
            "State tree pages read from disk because the cache did not hold them",
            value=st.page_reads,
        )


class _QueryCacheCollector(Collector):
    """The chain's cache of query answers (:mod:`citychain.chain._queries`), read at each
    scrape: answers given from it and computed, and what it holds against its budget."""

    def __init__(self, cache: QueryCache) -> None:
        self._cache = cache

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        c = self._cache
        answers = CounterMetricFamily(
            "citychain_query_answers",
            "Query answers given from the cache of the current block (hit) or computed (miss)",
            labels=["cache"],
        )
        answers.add_metric(["hit"], c.hits)
        answers.add_metric(["miss"], c.misses)
        yield answers
        yield GaugeMetricFamily(
            "citychain_query_cache_bytes",
            "Bytes the cached query answers take against node.toml [state] query_cache_mib",
            value=c.kept_bytes,
        )


class _StageCollector(Collector):
    """The transaction path's time by stage (:mod:`citychain.stages`), read at each scrape:
    ``bench/profile_path.py`` divides seconds by transactions for microseconds per tx."""

    def collect(self) -> Iterator[CounterMetricFamily]:
        seconds = CounterMetricFamily(
            "citychain_stage_seconds",
            "Time spent in each stage of the transaction path (citychain.stages)",
            labels=["stage"],
        )
        txs = CounterMetricFamily(
            "citychain_stage_txs",
            "Transactions handled by each stage of the transaction path",
            labels=["stage"],
        )
        for stage, (ns, count) in CLOCK.snapshot().items():
            seconds.add_metric([stage], ns / 1e9)
            txs.add_metric([stage], count)
        yield seconds
        yield txs
