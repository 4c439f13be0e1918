"""The mempool against a simple model: a list in arrival order, scanned in full every time.

The model recomputes everything from scratch (admission codes, the round-robin reap, what an
update drops), so any drift in the pool's incremental indexes shows up as a difference.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from citychain.crypto import ED25519, Signer
from citychain.errors import ErrorCode
from citychain.mempool import MAX_REAP_MISFITS, Mempool, MempoolConfig
from citychain.types import Transaction

CHAIN = "model-chain"
SIGNERS = [Signer(ED25519, bytes([0x40 + i]) * 32) for i in range(4)]
ADDRESS = {s.public_key: s.address for s in SIGNERS}
WINDOW = 4
MAX_TXS = 8
MAX_BYTES = 1400


@dataclass
class Model:
    nonces: dict[bytes, int] = field(default_factory=dict)
    height: int = 0
    pool: list[tuple[bytes, Transaction]] = field(default_factory=list)  # arrival order

    def base(self, addr: bytes) -> int:
        return self.nonces.get(addr, 0)

    def admit(self, tx: Transaction) -> ErrorCode:
        addr = ADDRESS[tx.sender]
        base = self.base(addr)
        size = len(tx.encode())
        if any(h == tx.hash for h, _ in self.pool):
            return ErrorCode.DUPLICATE
        if tx.expiry <= self.height:
            return ErrorCode.EXPIRED
        if tx.nonce < base:
            return ErrorCode.NONCE_TOO_LOW
        if tx.nonce >= base + WINDOW:
            return ErrorCode.NONCE_GAP
        if any(t.sender == tx.sender and t.nonce == tx.nonce for _, t in self.pool):
            return ErrorCode.DUPLICATE
        if len(self.pool) >= MAX_TXS or self.bytes() + size > MAX_BYTES:
            return ErrorCode.MEMPOOL_FULL
        self.pool.append((tx.hash, tx))
        return ErrorCode.OK

    def bytes(self) -> int:
        return sum(len(t.encode()) for _, t in self.pool)

    def executable(self, signer: Signer) -> list[tuple[int, Transaction]]:
        """(arrival index, tx) of the consecutive nonces from the account nonce."""
        by_nonce = {
            t.nonce: (i, t) for i, (_, t) in enumerate(self.pool) if t.sender == signer.public_key
        }
        out = []
        n = self.base(signer.address)
        while n in by_nonce:
            out.append(by_nonce[n])
            n += 1
        return out

    def pending_nonce(self, signer: Signer) -> int:
        return self.base(signer.address) + len(self.executable(signer))

    def reap(self, max_txs: int, max_bytes: int, max_gas: int) -> list[Transaction]:
        chains = {s.public_key: self.executable(s) for s in SIGNERS}
        active = {k for k, c in chains.items() if c}
        out: list[Transaction] = []
        misfits = 0
        rnd = 0
        while active:
            order = sorted((chains[k][rnd][0], k) for k in active if len(chains[k]) > rnd)
            if not order:
                break
            for _, k in order:
                if len(out) >= max_txs or misfits >= MAX_REAP_MISFITS:
                    return out
                tx = chains[k][rnd][1]
                if len(tx.encode()) > max_bytes or tx.gas_limit > max_gas:
                    misfits += 1
                    active.discard(k)
                    continue
                out.append(tx)
                max_bytes -= len(tx.encode())
                max_gas -= tx.gas_limit
            rnd += 1
        return out

    def commit(self, block: list[Transaction]) -> None:
        for tx in block:
            self.nonces[ADDRESS[tx.sender]] = tx.nonce + 1
        self.height += 1
        done = {tx.hash for tx in block}
        self.pool = [
            (h, t)
            for h, t in self.pool
            if h not in done and t.nonce >= self.base(ADDRESS[t.sender]) and t.expiry > self.height
        ]


class MempoolMachine(RuleBasedStateMachine):
    @initialize()
    def setup(self) -> None:
        self.model = Model()
        self.pool = Mempool(
            MempoolConfig(
                max_txs=MAX_TXS, max_bytes=MAX_BYTES, nonce_window=WINDOW, max_gas_per_tx=10**6
            ),
            ED25519,
            CHAIN,
            lambda addr: self.model.nonces.get(addr, 0),
            lambda: self.model.height,
        )

    def make(self, who: int, offset: int, expiry_in: int, variant: int, gas: int) -> Transaction:
        signer = SIGNERS[who]
        return Transaction.create(
            signer,
            chain_id=CHAIN,
            nonce=max(0, self.model.base(signer.address) + offset),
            expiry=self.model.height + expiry_in,
            contract="token",
            method="transfer",
            args={"v": variant, "pad": b"p" * (variant * 40)},
            gas_limit=gas,
        )

    @rule(
        specs=st.lists(
            st.tuples(
                st.integers(0, len(SIGNERS) - 1),
                st.integers(-1, WINDOW),
                st.sampled_from([0, 1, 2, 3, 1000]),
                st.integers(0, 3),
                st.sampled_from([100, 5000, 20000]),
            ),
            min_size=1,
            max_size=5,
        )
    )
    def submit(self, specs: list[tuple[int, int, int, int, int]]) -> None:
        txs = [self.make(*spec) for spec in specs]
        results = self.pool.add([tx.encode() for tx in txs])
        expected = [self.model.admit(tx) for tx in txs]
        assert [r.code for r in results] == expected
        assert [r.tx_hash for r in results] == [tx.hash for tx in txs]

    @rule(who=st.integers(0, len(SIGNERS) - 1), count=st.integers(1, 3), variant=st.integers(0, 3))
    def submit_next(self, who: int, count: int, variant: int) -> None:
        """What a well-behaved client does: the next nonces after its pending ones."""
        signer = SIGNERS[who]
        start = self.pool.pending_nonce(signer.address)
        assert start == self.model.pending_nonce(signer)
        base = self.model.base(signer.address)
        txs = [self.make(who, start - base + i, 1000, variant, 100) for i in range(count)]
        results = self.pool.add([tx.encode() for tx in txs])
        assert [r.code for r in results] == [self.model.admit(tx) for tx in txs]

    @rule(
        max_txs=st.integers(0, 10),
        max_bytes=st.sampled_from([0, 300, 600, 10**9]),
        max_gas=st.sampled_from([0, 5000, 30000, 10**9]),
    )
    def reap(self, max_txs: int, max_bytes: int, max_gas: int) -> None:
        assert self.pool.reap(max_txs, max_bytes, max_gas) == self.model.reap(
            max_txs, max_bytes, max_gas
        )

    @rule(
        take=st.integers(0, 6),
        foreign=st.lists(st.integers(0, len(SIGNERS) - 1), max_size=2),
    )
    def commit_block(self, take: int, foreign: list[int]) -> None:
        block = self.pool.reap(take, 10**9, 10**9)
        # Transactions the pool never saw (built by another node) for some senders.
        used = {s.public_key: self.model.base(s.address) for s in SIGNERS}
        for tx in block:
            used[tx.sender] = tx.nonce + 1
        for who in foreign:
            signer = SIGNERS[who]
            tx = Transaction.create(
                signer,
                chain_id=CHAIN,
                nonce=used[signer.public_key],
                contract="token",
                method="transfer",
                args={"foreign": True},
            )
            used[signer.public_key] += 1
            block.append(tx)
        self.model.commit(block)
        self.pool.update(block, self.model.height)

    @invariant()
    def agrees_with_model(self) -> None:
        if not hasattr(self, "model"):
            return
        assert len(self.pool) == len(self.model.pool)
        assert self.pool.bytes == self.model.bytes()
        for h, tx in self.model.pool:
            assert h in self.pool and self.pool.get(h) == tx
        for s in SIGNERS:
            assert self.pool.pending_nonce(s.address) == self.model.pending_nonce(s)
        everything = (10**9, 10**9, 10**9)
        assert self.pool.reap(*everything) == self.model.reap(*everything)


MempoolMachine.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_mempool_against_model = MempoolMachine.TestCase
