"""An in-memory stand-in for the node, implementing ``citychain.api.NodeService``.

Test code only. It keeps real data: transactions are decoded and their signatures checked,
blocks get real headers and commits signed by real validator keys, and state proofs come from
a small sparse Merkle tree built here (compact: a subtree with one leaf is that leaf), so they
are genuine ICS-23 ``SMT_SPEC`` proofs an independent verifier accepts. Its one contract is a
toy token (``mint``/``transfer``, query ``balance``/``total_supply``).

Thread note: the API calls it on its event loop; tests may call ``commit_block`` from their
own thread (subscribers are then fed through the loop, thread-safely).
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
import warnings
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Gauge

from citychain import codec
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
from citychain.crypto import ED25519, CryptoSuite, Signer
from citychain.errors import (
    CitychainError,
    ErrorCode,
    ExecutionFailure,
    InvalidInput,
    NotFound,
    Unavailable,
)
from citychain.proof import ics23, merkle
from citychain.types import (
    Block,
    Commit,
    CommitSig,
    DuplicateVoteEvidence,
    Event,
    Header,
    Receipt,
    Transaction,
    Validator,
    ValidatorSet,
    VoteType,
    tx_root,
    vote_signing_bytes,
)

with warnings.catch_warnings():
    # starlette 0.46's TestClient touches an alias that anyio 4.16 deprecates, at import only.
    warnings.filterwarnings("ignore", "The anyio.abc.BlockingPortal alias", DeprecationWarning)
    from starlette.testclient import TestClient

__all__ = ["CHAIN_ID", "FakeNode", "TestClient", "balance_key", "seeded_signer", "serving"]

CHAIN_ID = "fake-chain"
GENESIS_TIME = 1_767_225_600_000
EMPTY = bytes(32)


def balance_key(address: bytes) -> bytes:
    return b"c/token/bal/" + address  # as citychain.services.token.contract lays it out


def nonce_key(address: bytes) -> bytes:
    return b"a/n/" + address


def seeded_signer(n: int) -> Signer:
    """Deterministic keys make failures reproducible."""
    return Signer(ED25519, hashlib.sha256(b"fake-node-key-%d" % n).digest())


# -- a compact sparse Merkle tree with ICS-23 proofs -------------------------------------------


def _bit(h: bytes, depth: int) -> int:
    return (h[depth // 8] >> (7 - depth % 8)) & 1


def _leaf(key: bytes, value: bytes) -> bytes:
    return hashlib.sha256(
        b"\x00" + hashlib.sha256(key).digest() + hashlib.sha256(value).digest()
    ).digest()


LEAF_OP = ics23.LeafOp(
    hash=ics23.HashOp.SHA256,
    prehash_key=ics23.HashOp.SHA256,
    prehash_value=ics23.HashOp.SHA256,
    length=ics23.LengthOp.NO_PREFIX,
    prefix=b"\x00",
)


class SparseMerkleTree:
    def __init__(self, items: Mapping[bytes, bytes]) -> None:
        self.items = sorted(
            ((hashlib.sha256(k).digest(), k, v) for k, v in items.items()), key=lambda t: t[0]
        )

    def _hash(self, items: list[tuple[bytes, bytes, bytes]], depth: int) -> bytes:
        if not items:
            return EMPTY
        if len(items) == 1:
            _, k, v = items[0]
            return _leaf(k, v)
        left = [t for t in items if _bit(t[0], depth) == 0]
        right = [t for t in items if _bit(t[0], depth) == 1]
        return hashlib.sha256(
            b"\x01" + self._hash(left, depth + 1) + self._hash(right, depth + 1)
        ).digest()

    @property
    def root(self) -> bytes:
        return self._hash(self.items, 0)

    def _existence(self, key: bytes) -> ics23.ExistenceProof:
        kh = hashlib.sha256(key).digest()
        items, depth, steps = self.items, 0, []
        value = next(v for h, k, v in items if k == key)
        while len(items) > 1:
            left = [t for t in items if _bit(t[0], depth) == 0]
            right = [t for t in items if _bit(t[0], depth) == 1]
            if _bit(kh, depth) == 0:
                steps.append(
                    ics23.InnerOp(ics23.HashOp.SHA256, b"\x01", self._hash(right, depth + 1))
                )
                items = left
            else:
                steps.append(
                    ics23.InnerOp(ics23.HashOp.SHA256, b"\x01" + self._hash(left, depth + 1), b"")
                )
                items = right
            depth += 1
        return ics23.ExistenceProof(key, value, LEAF_OP, tuple(reversed(steps)))

    def proof(self, key: bytes) -> bytes:
        if any(k == key for _, k, _ in self.items):
            return ics23.encode_commitment_proof(ics23.CommitmentProof(exist=self._existence(key)))
        kh = hashlib.sha256(key).digest()
        below = [k for h, k, _ in self.items if h < kh]
        above = [k for h, k, _ in self.items if h > kh]
        nonexist = ics23.NonExistenceProof(
            key,
            self._existence(below[-1]) if below else None,
            self._existence(above[0]) if above else None,
        )
        return ics23.encode_commitment_proof(ics23.CommitmentProof(nonexist=nonexist))


# -- subscriptions ------------------------------------------------------------------------------


class FakeStream:
    def __init__(
        self,
        node: FakeNode,
        contract: str | None,
        event_type: str | None,
        shows_private: Callable[[Transaction], bool] | None = None,
        backlog: list[CommittedEvent] | None = None,
    ) -> None:
        self.node = node
        self.contract = contract
        self.event_type = event_type
        self.shows_private = shows_private
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[CommittedEvent | None] = asyncio.Queue(node.queue_size)
        self.closed_reason: str | None = None
        #: The past blocks' events of a subscription from a height, given before the queue.
        self.backlog = backlog or []
        self._upto = len(node.blocks)  # the blocks the backlog covers
        self._given = self._upto if not self.backlog else self.backlog[0].height - 1
        self._replaying = bool(self.backlog)

    @property
    def position(self) -> int:
        if self.closed_reason is None and not self._replaying and self.queue.empty():
            return max(self._given, len(self.node.blocks))
        return self._given

    def matches(self, e: Event) -> bool:
        return (self.contract in (None, e.contract)) and (self.event_type in (None, e.type))

    def offer(self, item: CommittedEvent) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            self._offer(item)
        else:
            self.loop.call_soon_threadsafe(self._offer, item)

    def _offer(self, item: CommittedEvent) -> None:
        if self.closed_reason is not None:
            return
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.close(f"subscriber fell more than {self.node.queue_size} events behind")

    def close(self, reason: str) -> None:
        if self.closed_reason is None:
            self.closed_reason = reason
            self.node.streams.discard(self)
            if not self.queue.full():  # as the node: a full queue is read to its end
                self.queue.put_nowait(None)

    async def __aiter__(self) -> AsyncIterator[CommittedEvent]:
        try:
            for item in self.backlog:
                self._given = max(self._given, item.height - 1)
                yield item
            if self._replaying:
                self._given = max(self._given, self._upto)
                self._replaying = False
            while True:
                if self.closed_reason is not None and self.queue.empty():
                    return
                item = await self.queue.get()
                if item is None:
                    return
                self._given = max(self._given, item.height - 1)
                yield item
        finally:
            self.close("subscriber left")


# -- the node -------------------------------------------------------------------------------------


@dataclass
class _Stored:
    block: Block
    commit: Commit
    receipts: list[Receipt]
    state: dict[bytes, bytes]


@dataclass
class FakeNode:
    """A single-process chain with three validators; ``auto_commit`` makes each submit a block."""

    auto_commit: bool = True
    mempool_capacity: int = 1000
    queue_size: int = 100
    max_subscribers: int = 100
    healthy: bool = True
    genesis_balances: dict[bytes, int] = field(default_factory=dict)
    #: (contract, method) pairs whose calls are private (a contract's ``private_methods``).
    private_calls: set[tuple[str, str]] = field(default_factory=set)
    #: Addresses ``gov.member`` answers as members in good standing.
    members: set[bytes] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.validator_keys = [seeded_signer(i) for i in range(3)]
        self.validator_set = ValidatorSet(
            Validator(s.public_key, 10, f"v{i}") for i, s in enumerate(self.validator_keys)
        )
        #: Who signs the next commits (tests replace it to forge commits).
        self.commit_signers: list[Signer] = list(self.validator_keys)
        self.state: dict[bytes, bytes] = {
            balance_key(a): codec.encode(n) for a, n in self.genesis_balances.items()
        }
        self.state[b"c/token/supply"] = codec.encode(sum(self.genesis_balances.values()))
        self.blocks: list[_Stored] = []
        self.mempool: dict[bytes, Transaction] = {}
        self.pending_evidence_list: list[DuplicateVoteEvidence] = []
        self.streams: set[FakeStream] = set()
        self.pruned_below = 1
        self.submitted: list[list[bytes]] = []
        self.registry = CollectorRegistry()
        self.indexes: dict[tuple[str, bytes], bytes] = {}
        self.height_gauge = Gauge("fake_height", "height", registry=self.registry)

    # -- NodeService ------------------------------------------------------------------------
    @property
    def chain_id(self) -> str:
        return CHAIN_ID

    @property
    def suite(self) -> CryptoSuite:
        return ED25519

    @property
    def metrics_registry(self) -> CollectorRegistry:
        return self.registry

    async def submit(self, raw_txs: Sequence[bytes]) -> list[SubmitResult]:
        self.submitted.append(list(raw_txs))
        results = [self._admit(raw) for raw in raw_txs]
        if self.auto_commit and any(r.ok for r in results):
            self.commit_block()
        return results

    def _admit(self, raw: bytes) -> SubmitResult:
        try:
            tx = Transaction.decode(raw)
        except CitychainError as exc:
            return SubmitResult(None, exc.code, exc.message)
        h = tx.hash
        if tx.chain_id != CHAIN_ID:
            return SubmitResult(h, ErrorCode.WRONG_CHAIN, f"transaction is for {tx.chain_id!r}")
        if not tx.verify_signature(ED25519):
            return SubmitResult(h, ErrorCode.BAD_SIGNATURE, "signature does not verify")
        if h in self.mempool or self._location(h) is not None:
            return SubmitResult(h, ErrorCode.DUPLICATE, "already received")
        if tx.nonce < self._nonce(ED25519.address(tx.sender)):
            return SubmitResult(h, ErrorCode.NONCE_TOO_LOW, "nonce already used")
        if len(self.mempool) >= self.mempool_capacity:
            return SubmitResult(h, ErrorCode.MEMPOOL_FULL, "mempool is full")
        self.mempool[h] = tx
        return SubmitResult(h, ErrorCode.OK)

    def _location(self, h: bytes) -> tuple[int, int] | None:
        for stored in self.blocks:
            for i, tx in enumerate(stored.block.txs):
                if tx.hash == h:
                    return stored.block.height, i
        return None

    def tx(self, tx_hash: bytes) -> TxInfo:
        loc = self._location(tx_hash)
        if loc is not None:
            stored = self.blocks[loc[0] - 1]
            return TxInfo(
                TxStatus.COMMITTED,
                stored.block.txs[loc[1]],
                loc[0],
                loc[1],
                stored.receipts[loc[1]],
            )
        if tx_hash in self.mempool:
            return TxInfo(TxStatus.PENDING, self.mempool[tx_hash])
        return TxInfo(TxStatus.UNKNOWN)

    def latest_height(self) -> int:
        return len(self.blocks)

    def private_call(self, tx: Transaction) -> bool:
        return (tx.contract, tx.method) in self.private_calls

    def in_good_standing(self, address: bytes) -> bool:
        return address in self.members

    def block(self, height: int) -> BlockInfo | None:
        if 1 <= height <= len(self.blocks):
            s = self.blocks[height - 1]
            return BlockInfo(s.block, s.commit)
        return None

    def block_by_hash(self, block_hash: bytes) -> BlockInfo | None:
        for s in self.blocks:
            if s.block.hash == block_hash:
                return BlockInfo(s.block, s.commit)
        return None

    def status(self) -> NodeStatus:
        last = self.blocks[-1].block.header if self.blocks else None
        return NodeStatus(
            chain_id=CHAIN_ID,
            crypto_suite=ED25519.name,
            node_id="fake0",
            public_key=self.validator_keys[0].public_key,
            height=len(self.blocks),
            latest_hash=last.hash if last else EMPTY,
            state_root=SparseMerkleTree(self.state).root,
            latest_time=last.time if last else GENESIS_TIME,
            mempool_txs=len(self.mempool),
            mempool_bytes=sum(len(t.encode()) for t in self.mempool.values()),
            validators=self.validator_set,
            syncing=False,
            version="0.0.0-fake",
        )

    async def state_proof(self, key: bytes, height: int | None) -> StateProof:
        latest = len(self.blocks)
        if latest == 0:
            raise NotFound("no block is committed yet", ErrorCode.HEIGHT_NOT_COMMITTED)
        h = latest if height is None else height
        if h > latest:
            raise NotFound(
                f"height {h} is not committed (latest {latest})", ErrorCode.HEIGHT_NOT_COMMITTED
            )
        if h < self.pruned_below:
            raise NotFound(f"state at height {h} was pruned", ErrorCode.HEIGHT_PRUNED)
        stored = self.blocks[h - 1]
        tree = SparseMerkleTree(stored.state)
        return StateProof(
            key, stored.state.get(key), h, tree.proof(key), stored.block.header, stored.commit
        )

    async def query(self, contract: str, method: str, args: Mapping[str, Any]) -> Any:
        return self.query_inline(contract, method, args)

    def state_value(self, key: bytes) -> bytes | None:
        return self.state.get(key)

    def index_get(self, space: str, key: bytes) -> bytes | None:
        return self.indexes.get((space, key))

    def index_reader(self, space: str) -> Callable[[bytes], bytes | None]:
        return lambda key: self.indexes.get((space, key))

    def index_put(self, space: str, items: Sequence[tuple[bytes, bytes]]) -> None:
        self.indexes.update(((space, k), v) for k, v in items)

    def query_inline(self, contract: str, method: str, args: Mapping[str, Any]) -> Any:
        if (contract, method) == ("gov", "member"):
            address = args["address"]
            return {"address": address, "standing": "ok"} if address in self.members else None
        if contract != "token":
            raise InvalidInput(f"no contract {contract!r}", ErrorCode.UNKNOWN_CONTRACT)
        if method == "balance":
            address = args.get("owner")
            if not isinstance(address, bytes) or len(address) != 20:
                raise InvalidInput("owner must be a 20-byte address", ErrorCode.BAD_ARGUMENTS)
            raw = self.state.get(balance_key(address))
            return codec.decode(raw) if raw else 0
        if method == "total_supply":
            return codec.decode(self.state[b"c/token/supply"])
        if method == "echo":  # returns its arguments: exercises value round trips
            return dict(args)
        if method == "fail":
            raise ExecutionFailure("the contract refused", ErrorCode.CONTRACT_ERROR)
        raise InvalidInput(f"token has no query {method!r}", ErrorCode.UNKNOWN_METHOD)

    def _nonce(self, address: bytes) -> int:
        raw = self.state.get(nonce_key(address))
        return codec.decode(raw) if raw else 0

    def account(self, address: bytes) -> AccountInfo:
        nonce = self._nonce(address)
        pending = [t.nonce for t in self.mempool.values() if ED25519.address(t.sender) == address]
        return AccountInfo(address, nonce, max([nonce - 1, *pending]) + 1)

    def validators(self, height: int | None) -> ValidatorSet:
        if height is not None and height > len(self.blocks) + 1:
            raise NotFound(
                f"height {height} is beyond the next block", ErrorCode.HEIGHT_NOT_COMMITTED
            )
        return self.validator_set

    def subscribe(
        self,
        contract: str | None,
        event_type: str | None,
        shows_private: Callable[[Transaction], bool] | None = None,
        from_height: int | None = None,
    ) -> FakeStream:
        if len(self.streams) >= self.max_subscribers:
            raise Unavailable("too many subscribers")
        backlog: list[CommittedEvent] = []
        if from_height is not None:
            if not 1 <= from_height <= len(self.blocks) + 1:
                raise NotFound(
                    f"from_height {from_height} is not a committed height or the next one",
                    ErrorCode.HEIGHT_NOT_COMMITTED,
                )
            for stored in self.blocks[from_height - 1 :]:
                block = stored.block
                for i, (tx, receipt) in enumerate(zip(block.txs, stored.receipts, strict=True)):
                    private = self.private_call(tx)
                    for ev in receipt.events:
                        shows = shows_private
                        if (
                            contract in (None, ev.contract)
                            and event_type in (None, ev.type)
                            and (not private or (shows is not None and shows(tx)))
                        ):
                            backlog.append(CommittedEvent(block.height, tx.hash, i, ev))
        stream = FakeStream(self, contract, event_type, shows_private, backlog)
        self.streams.add(stream)
        return stream

    def health(self) -> tuple[bool, dict[str, Any]]:
        return self.healthy, {"height": len(self.blocks), "consensus": "fake"}

    def consensus(self) -> dict[str, Any]:
        names = [f"v{i}" for i in range(len(self.validator_keys))]
        return {
            "engine": "fake",
            "height": len(self.blocks) + 1,
            "round": 1,
            "step": "prevote",
            "waiting_for": "prevotes: 10 of 40 power, need 27",
            "details": {
                "proposer": names[0],
                "proposal": "ab" * 32,
                "locked_round": -1,
                "valid_round": -1,
                "prevotes": {names[0]: "ab" * 32},
                "precommits": {},
                "prevote_power": 10,
                "precommit_power": 0,
                "total_power": 40,
                "quorum_power": 27,
                "last_commit_round": 0,
                "last_commit_missing": names[1:],
                "last_commit": {
                    "height": len(self.blocks),
                    "round": 0,
                    "signed": names[:1],
                    "late": names[1:-1],
                    "nil": [],
                    "absent": names[-1:],
                },
                "validators": [  # the first is this node, the second late, the last offline
                    {
                        "name": n,
                        "public_key": k.public_key.hex(),
                        "power": 10,
                        "state": "this node" if i == 0 else "offline" if n == names[-1] else "ok",
                        "connected": None if i == 0 else n != names[-1],
                        "height": None if n == names[-1] else len(self.blocks),
                        "last_heard_ms_ago": None if i == 0 else 41_000 if n == names[-1] else 80,
                        "last_commit": "signed"
                        if i == 0
                        else "absent"
                        if n == names[-1]
                        else "late",
                        "note": "not connected; last vote heard at height 1, 41 s ago"
                        if n == names[-1]
                        else "",
                    }
                    for i, (n, k) in enumerate(zip(names, self.validator_keys, strict=True))
                ],
                "sync": {"behind": False},
                "evidence_pending": len(self.pending_evidence_list),
            },
        }

    def peers(self) -> list[dict[str, Any]]:
        return [{"name": "fake1", "org_id": "org1", "connected": True}]

    def evidence(self, limit: int) -> list[tuple[int, DuplicateVoteEvidence]]:
        found = [(b.block.height, e) for b in reversed(self.blocks) for e in b.block.evidence]
        return found[:limit]

    def pending_evidence(self) -> list[DuplicateVoteEvidence]:
        return list(self.pending_evidence_list)

    # -- making blocks ----------------------------------------------------------------------------
    def _execute(self, tx: Transaction, state: dict[bytes, bytes]) -> Receipt:
        sender = ED25519.address(tx.sender)
        nonce = codec.decode(state[nonce_key(sender)]) if nonce_key(sender) in state else 0
        if tx.nonce != nonce:
            return Receipt(tx.hash, ErrorCode.NONCE_GAP, "nonce out of order", 0, None, ())
        state[nonce_key(sender)] = codec.encode(nonce + 1)

        def fail(code: ErrorCode, message: str) -> Receipt:
            return Receipt(tx.hash, code, message, 10, None, ())

        if tx.contract != "token" or tx.method not in ("mint", "transfer"):
            return fail(ErrorCode.UNKNOWN_METHOD, f"no method {tx.contract}.{tx.method}")
        to, amount = tx.args.get("to"), tx.args.get("amount")
        if not isinstance(to, bytes) or not isinstance(amount, int) or amount <= 0:
            return fail(ErrorCode.BAD_ARGUMENTS, "need to: bytes and amount > 0")

        def bal(a: bytes) -> int:
            raw = state.get(balance_key(a))
            return int(codec.decode(raw)) if raw else 0

        if tx.method == "mint":
            supply = codec.decode(state[b"c/token/supply"])
            state[b"c/token/supply"] = codec.encode(supply + amount)
            state[balance_key(to)] = codec.encode(bal(to) + amount)
            ev = Event("token", "mint", {"issuer": sender, "to": to, "amount": amount})
        else:
            if bal(sender) < amount:
                return fail(ErrorCode.INSUFFICIENT_FUNDS, f"balance {bal(sender)} < {amount}")
            state[balance_key(sender)] = codec.encode(bal(sender) - amount)
            state[balance_key(to)] = codec.encode(bal(to) + amount)
            ev = Event("token", "transfer", {"from": sender, "to": to, "amount": amount})
        return Receipt(tx.hash, ErrorCode.OK, "", 10, amount, (ev,))

    def commit_block(self) -> Block:
        txs = tuple(self.mempool.values())
        self.mempool.clear()
        state = dict(self.state)
        receipts = [self._execute(tx, state) for tx in txs]
        height = len(self.blocks) + 1
        prev = self.blocks[-1].block.header.hash if self.blocks else EMPTY
        header = Header(
            chain_id=CHAIN_ID,
            height=height,
            time=GENESIS_TIME + 1000 * height,
            prev_hash=prev,
            tx_root=tx_root(txs),
            results_root=merkle.root([r.encode() for r in receipts]),
            state_root=SparseMerkleTree(state).root,
            validators_hash=self.validator_set.hash,
            proposer=self.validator_keys[0].public_key,
        )
        msg = vote_signing_bytes(CHAIN_ID, VoteType.PRECOMMIT, height, 0, header.hash)
        commit = Commit(
            height,
            0,
            header.hash,
            tuple(CommitSig(s.public_key, s.sign(msg)) for s in self.commit_signers),
        )
        block = Block(header, txs)
        self.blocks.append(_Stored(block, commit, receipts, state))
        self.state = state
        self.height_gauge.set(height)
        for i, (tx, receipt) in enumerate(zip(txs, receipts, strict=True)):
            private = self.private_call(tx)  # as the node: only to those who may read it
            for ev in receipt.events:
                item = CommittedEvent(height, tx.hash, i, ev)
                for stream in list(self.streams):
                    shows = stream.shows_private
                    if stream.matches(ev) and (not private or (shows is not None and shows(tx))):
                        stream.offer(item)
        return block

    def make_tx(
        self, signer: Signer, method: str, args: dict[str, Any], nonce: int | None = None
    ) -> Transaction:
        if nonce is None:
            nonce = self.account(signer.address).pending_nonce
        return Transaction.create(
            signer, chain_id=CHAIN_ID, nonce=nonce, contract="token", method=method, args=args
        )


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Serve an ASGI app on a free local port (uvicorn in a thread); yields its URL."""
    import uvicorn

    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        lifespan="off",
        ws="websockets-sansio",  # uvicorn's legacy websockets protocol warns on websockets 14+
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "test server did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
