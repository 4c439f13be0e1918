"""The mempool: transactions admitted but not yet committed, and the choice of the next block.

Theory of operation
-------------------
Admission is split in two so the node's event loop never waits for signature checks:

* :meth:`Mempool.check` is *stateless* (it reads only the immutable config, suite and chain
  id), so it is safe to run in a worker thread. It decodes each transaction, checks size,
  chain id and gas limit, and verifies every signature of the batch in one
  :meth:`CryptoSuite.batch_verify` call (a thread pool; libsodium releases the GIL).
* :meth:`Mempool.insert` is *stateful* and must be called from one thread (the loop). It
  checks what depends on the chain: expiry against the last committed height, then the
  node's ``admit`` callback (what the next block would refuse on the committed state: the
  gas limit against the gas schedule, contract and method, the governance access checks and
  the method's own admission check, each with the code and message its receipt would carry;
  see :meth:`citychain.execution.Executor.check_admission`), the nonce against the sender's
  committed account nonce, duplicates, and capacity.

State, per sender address (``suite.address(tx.sender)``), in an ``_Account``:

* ``base``: the committed account nonce, read once through the ``account_nonce`` callback
  when the sender first gets a pooled transaction, and again in :meth:`update` after a block
  that contains one of its transactions. An account nonce changes only when one of the
  sender's own transactions is committed, so this cache is exact provided :meth:`update` is
  called after every committed block.
* ``txs``: pooled transactions by nonce, each in ``[base, base + nonce_window)``. Gaps are
  allowed: a transaction that arrives early waits until the gap fills.
* ``ready_end``: the first nonce at or above ``base`` that is not pooled, so the *executable*
  transactions are exactly the nonces ``base .. ready_end - 1``.

Refusal rules chosen here: a second transaction for a (sender, nonce) that is already pooled
is refused as ``duplicate`` rather than replacing the first. A permissioned chain has no fee
market, so replacement would only let a sender churn the network's gossip for free; a stuck
transaction leaves the pool when it is committed or reaches its ``expiry`` height. A full pool
refuses new transactions (``mempool_full``, an :class:`~citychain.errors.Unavailable`
condition) and never evicts what it already admitted.

Choosing a block (:meth:`Mempool.reap`) is round-robin across senders: round ``r`` takes the
``r``-th executable transaction of every sender that still has one, and within a round the
senders are ordered by when that transaction arrived. So one busy sender cannot starve the
others, and the choice is a pure function of arrival order. A *ready heap* keyed by the
arrival number of each sender's first executable transaction gives round 0 in order without
looking at senders that are not selected; later rounds sort only the senders selected in the
round before. Cost: O(selected * log n).

After a block, :meth:`Mempool.update` removes the committed transactions, re-reads the account
nonce of the senders that appear in the block (dropping their now-stale nonces), and drops
expired transactions using a heap ordered by expiry. Cost: O(block + expired) * log n. The
``admit`` verdicts are not re-checked: a block that changes what a pooled transaction relies
on (a second ``execute`` of a proposal the block executed) leaves it in the pool, and its own
block gives it a failed receipt, as it would a transaction from a peer's proposal.

Both heaps delete lazily (an entry is checked against the live state when it surfaces) and
are rebuilt when garbage outnumbers live entries, which keeps the amortised cost constant.

"Transactions available" (CometBFT's ``TxsAvailable``): :meth:`Mempool.has_executable` says
whether some sender has a transaction at its account nonce, i.e. whether :meth:`reap` would
return anything; a consensus engine that holds back empty blocks asks it when a height starts.
:attr:`Mempool.on_txs_available` is called at the end of an :meth:`insert` that made a
transaction executable, whoever submitted it (a client, or a peer's gossip), so a waiting
engine wakes at once. A transaction queued behind a nonce gap wakes nobody: no block could
take it yet.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from citychain.crypto import CryptoSuite
from citychain.errors import CitychainError, ConfigError, ErrorCode, InvalidInput, TxRejected
from citychain.execution.verified import VerifiedTxs
from citychain.stages import CLOCK
from citychain.types.answers import SubmitResult
from citychain.types.tx import Transaction, batch_verify_txs

#: Reap stops after this many senders whose next transaction did not fit the remaining
#: byte or gas budget, so a nearly full block never walks the whole pool looking for a fit.
MAX_REAP_MISFITS = 32

_Bytes = bytes  # the class below has a ``bytes`` property; annotations there use this alias


@dataclass(frozen=True, slots=True)
class MempoolConfig:
    """Limits of one node's mempool. Operator settings, not consensus rules, except
    ``max_tx_bytes`` and ``max_gas_per_tx``, which should equal the chain's parameters."""

    #: Most transactions held at once.
    max_txs: int = 100_000
    #: Most bytes (sum of the transactions' wire sizes) held at once.
    max_bytes: int = 256 * 1024 * 1024
    #: Largest transaction admitted, in wire bytes.
    max_tx_bytes: int = 64 * 1024
    #: Largest ``gas_limit`` a transaction may ask for.
    max_gas_per_tx: int = 50_000_000
    #: A sender may queue nonces ``account_nonce .. account_nonce + nonce_window - 1``.
    nonce_window: int = 64

    def __post_init__(self) -> None:
        for name in ("max_txs", "max_bytes", "max_tx_bytes", "max_gas_per_tx", "nonce_window"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"mempool {name} must be a positive integer, got {value!r}")


#: The mempool's name for :class:`~citychain.types.answers.SubmitResult`: what happened to one
#: submitted transaction, defined once for the mempool, the API and the SDK.
AddResult = SubmitResult


class _Entry:
    __slots__ = ("addr", "hash", "seq", "size", "tx")

    def __init__(self, tx: Transaction, tx_hash: bytes, addr: bytes, seq: int) -> None:
        self.tx = tx
        self.hash = tx_hash
        self.addr = addr
        self.seq = seq
        self.size = len(tx.encode())


@dataclass(slots=True)
class _Account:
    base: int
    ready_end: int
    txs: dict[int, _Entry] = field(default_factory=dict)

    def advance_ready(self) -> None:
        end = max(self.ready_end, self.base)
        while end in self.txs:
            end += 1
        self.ready_end = end

    def head(self) -> _Entry | None:
        return self.txs.get(self.base)


class Mempool:
    """Pending transactions of one node. See the module docstring for the theory."""

    def __init__(
        self,
        config: MempoolConfig,
        suite: CryptoSuite,
        chain_id: str,
        account_nonce: Callable[[_Bytes], int],
        height: Callable[[], int],
        admit: Callable[[Transaction], CitychainError | None] | None = None,
        verified: VerifiedTxs | None = None,
    ) -> None:
        self.config = config
        #: Where the hashes of transactions whose signatures verified here are remembered, so
        #: that executing them does not verify them again (execution.verified).
        self._verified = verified
        #: The chain's access checks on committed state (membership, freezes, policies), so a
        #: transaction the block would refuse is refused here, with the same code and words.
        self._admit = admit
        self._suite = suite
        self._chain_id = chain_id
        self._account_nonce = account_nonce
        self._height = height
        self._entries: dict[_Bytes, _Entry] = {}
        self._accounts: dict[_Bytes, _Account] = {}
        self._ready: list[tuple[int, _Bytes]] = []  # (arrival of head tx, sender address)
        self._expiry: list[tuple[int, int, _Bytes]] = []  # (expiry, arrival, tx hash)
        self._seq = 0
        self._bytes = 0
        #: Called at the end of an :meth:`insert` that made a transaction executable (see
        #: "transactions available" in the module docstring).
        self.on_txs_available: Callable[[], None] | None = None

    # -- reads ----------------------------------------------------------------------------
    @property
    def size(self) -> int:
        """Number of pooled transactions."""
        return len(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def bytes(self) -> int:
        """Sum of the pooled transactions' wire sizes."""
        return self._bytes

    def __contains__(self, tx_hash: object) -> bool:
        return tx_hash in self._entries

    def get(self, tx_hash: _Bytes) -> Transaction | None:
        entry = self._entries.get(tx_hash)
        return entry.tx if entry is not None else None

    def has_executable(self) -> bool:
        """True if some sender has a pooled transaction at its account nonce (one a block
        could take now). Drops the stale ready-heap entries it passes, as :meth:`reap` does."""
        ready = self._ready
        while ready:
            seq, addr = ready[0]
            acct = self._accounts.get(addr)
            head = acct.head() if acct is not None else None
            if head is not None and head.seq == seq:
                return True
            heapq.heappop(ready)
        return False

    def pending_nonce(self, address: _Bytes) -> int:
        """The nonce a client should use next: the account nonce plus the sender's
        consecutive pooled transactions."""
        acct = self._accounts.get(address)
        if acct is None:
            return self._account_nonce(address)
        return acct.ready_end

    # -- admission --------------------------------------------------------------------------
    def check(self, raw: Sequence[_Bytes]) -> list[Transaction | CitychainError]:
        """Stateless checks of wire-form transactions; safe to call from any thread.

        Each item becomes either the decoded :class:`Transaction` or the error refusing it
        (codes ``too_large``, ``malformed``, ``non_canonical``, ``wrong_chain``,
        ``gas_limit_too_high``, ``bad_public_key``, ``bad_signature``).
        """
        return self._check(raw)[0]

    def _check(
        self, raw: Sequence[_Bytes]
    ) -> tuple[list[Transaction | CitychainError], list[_Bytes | None]]:
        out: list[Transaction | CitychainError] = []
        hashes: list[_Bytes | None] = []
        items: list[Transaction] = []
        where: list[int] = []
        with CLOCK.measure("admission", len(raw)):
            for data in raw:
                result = self._check_one(data)
                if isinstance(result, Transaction):
                    hashes.append(result.hash)
                    where.append(len(out))
                    items.append(result)
                    out.append(result)
                else:
                    tx, err = result
                    hashes.append(tx.hash if tx is not None else None)
                    out.append(err)
        with CLOCK.measure("verify_admission", len(items)):
            verdicts = batch_verify_txs(self._suite, items)
        if self._verified is not None:
            self._verified.add(tx.hash for tx, ok in zip(items, verdicts, strict=True) if ok)
        for i, tx, valid in zip(where, items, verdicts, strict=True):
            if not valid:
                out[i] = TxRejected(
                    "the signature does not verify against the sender's public key"
                    if not tx.endorsements
                    else "the sender's signature or an endorsement does not verify",
                    ErrorCode.BAD_SIGNATURE,
                )
        return out, hashes

    def _check_one(self, data: object) -> Transaction | tuple[Transaction | None, CitychainError]:
        cfg = self.config
        if not isinstance(data, bytes):
            return None, TxRejected(
                f"a transaction is a byte string, got {type(data).__name__}", ErrorCode.MALFORMED
            )
        try:
            tx = Transaction.decode(data, max_size=cfg.max_tx_bytes, hash_new=self._suite.hash_new)
        except CitychainError as exc:
            return None, exc
        if tx.chain_id != self._chain_id:
            return tx, TxRejected(
                f"the transaction is for chain {tx.chain_id!r}; this node runs {self._chain_id!r}",
                ErrorCode.WRONG_CHAIN,
            )
        if tx.gas_limit > cfg.max_gas_per_tx:
            return tx, TxRejected(
                f"gas_limit {tx.gas_limit} exceeds the per-transaction maximum of "
                f"{cfg.max_gas_per_tx}",
                ErrorCode.GAS_LIMIT_TOO_HIGH,
            )
        try:
            for public_key in tx.signers():
                self._suite.check_public_key(public_key)
        except InvalidInput as exc:
            return tx, exc
        return tx

    def insert(self, checked: Sequence[Transaction | CitychainError]) -> list[SubmitResult]:
        """Admit the output of :meth:`check` against the current chain state. One result per
        item, in order. Not thread-safe: call it from the thread that calls :meth:`update`."""
        with CLOCK.measure("mempool", len(checked)):
            return self._insert(checked)

    def _insert(self, checked: Sequence[Transaction | CitychainError]) -> list[SubmitResult]:
        cfg = self.config
        height = self._height()
        bases: dict[_Bytes, int] = {}  # account nonces read during this call
        results: list[SubmitResult] = []
        available = False  # a transaction became executable ("transactions available")
        for item in checked:
            if isinstance(item, CitychainError):
                results.append(SubmitResult(None, item.code, item.message))
                continue
            tx = item
            tx_hash = tx.hash

            def refuse(code: ErrorCode, message: str, tx_hash: _Bytes = tx_hash) -> None:
                results.append(SubmitResult(tx_hash, code, message))

            if tx_hash in self._entries:
                refuse(ErrorCode.DUPLICATE, "the transaction is already in the mempool")
                continue
            if tx.expiry <= height:
                refuse(
                    ErrorCode.EXPIRED,
                    f"the transaction expired: its expiry height is {tx.expiry} and the chain "
                    f"is already at height {height}",
                )
                continue
            if self._admit is not None:
                denied = self._admit(tx)
                if denied is not None:
                    refuse(denied.code, denied.message)
                    continue
            addr = self._suite.address(tx.sender)
            acct = self._accounts.get(addr)
            if acct is not None:
                base = acct.base
            elif addr in bases:
                base = bases[addr]
            else:
                base = bases[addr] = self._account_nonce(addr)
            if tx.nonce < base:
                refuse(
                    ErrorCode.NONCE_TOO_LOW,
                    f"nonce {tx.nonce} is already used; the account's next nonce is {base}",
                )
                continue
            if tx.nonce >= base + cfg.nonce_window:
                refuse(
                    ErrorCode.NONCE_GAP,
                    f"nonce {tx.nonce} is too far ahead: the account's next nonce is {base} "
                    f"and the mempool queues at most {cfg.nonce_window} nonces ahead",
                )
                continue
            if acct is not None and tx.nonce in acct.txs:
                other = acct.txs[tx.nonce].hash.hex()
                refuse(
                    ErrorCode.DUPLICATE,
                    f"the sender already has transaction {other} with nonce {tx.nonce} in the "
                    "mempool; pooled transactions are not replaced",
                )
                continue
            size = len(tx.encode())
            if len(self._entries) >= cfg.max_txs:
                refuse(
                    ErrorCode.MEMPOOL_FULL,
                    f"the mempool is full: it holds {len(self._entries)} transactions, the "
                    f"limit is {cfg.max_txs}; try again later",
                )
                continue
            if self._bytes + size > cfg.max_bytes:
                refuse(
                    ErrorCode.MEMPOOL_FULL,
                    f"the mempool is full: it holds {self._bytes} bytes, the limit is "
                    f"{cfg.max_bytes} and this transaction is {size} bytes; try again later",
                )
                continue
            if acct is None:
                acct = self._accounts[addr] = _Account(base=base, ready_end=base)
            self._add(acct, tx, tx_hash, addr)
            available = available or tx.nonce == acct.base
            results.append(SubmitResult(tx_hash, ErrorCode.OK))
        if available and self.on_txs_available is not None:
            self.on_txs_available()
        return results

    def add(self, raw: Sequence[_Bytes]) -> list[SubmitResult]:
        """:meth:`check` then :meth:`insert`, in the calling thread (tests, tools)."""
        checked, hashes = self._check(raw)
        results = self.insert(checked)
        return [
            replace(r, tx_hash=h) if r.tx_hash is None and h is not None else r
            for r, h in zip(results, hashes, strict=True)
        ]

    def _add(self, acct: _Account, tx: Transaction, tx_hash: _Bytes, addr: _Bytes) -> None:
        self._seq += 1
        entry = _Entry(tx, tx_hash, addr, self._seq)
        self._entries[tx_hash] = entry
        self._bytes += entry.size
        acct.txs[tx.nonce] = entry
        if tx.nonce == acct.base:
            self._push_ready(entry.seq, addr)
        if tx.nonce == acct.ready_end:
            acct.advance_ready()
        heapq.heappush(self._expiry, (tx.expiry, entry.seq, tx_hash))
        if len(self._expiry) > 2 * len(self._entries) + 1024:
            self._expiry = [(e.tx.expiry, e.seq, e.hash) for e in self._entries.values()]
            heapq.heapify(self._expiry)

    def _push_ready(self, seq: int, addr: _Bytes) -> None:
        heapq.heappush(self._ready, (seq, addr))
        if len(self._ready) > 2 * len(self._accounts) + 1024:
            self._ready = []
            for a, acct in self._accounts.items():
                head = acct.head()
                if head is not None:
                    self._ready.append((head.seq, a))
            heapq.heapify(self._ready)

    def _remove(self, entry: _Entry) -> None:
        del self._entries[entry.hash]
        self._bytes -= entry.size
        acct = self._accounts[entry.addr]
        nonce = entry.tx.nonce
        del acct.txs[nonce]
        if not acct.txs:
            del self._accounts[entry.addr]
        elif acct.base <= nonce < acct.ready_end:
            acct.ready_end = nonce

    # -- block building ---------------------------------------------------------------------
    def reap(self, max_txs: int, max_bytes: int, max_gas: int) -> list[Transaction]:
        """Executable transactions for the next block, without removing them.

        Per sender: consecutive nonces from the account nonce. Across senders: round-robin,
        each round in arrival order. ``max_bytes`` bounds the sum of the transactions' wire
        sizes and ``max_gas`` the sum of their gas limits; a transaction that does not fit
        ends its sender's turn for this block (see :data:`MAX_REAP_MISFITS`).
        """
        with CLOCK.measure("mempool", 0):
            return self._reap(max_txs, max_bytes, max_gas)

    def _reap(self, max_txs: int, max_bytes: int, max_gas: int) -> list[Transaction]:
        out: list[Transaction] = []
        if max_txs <= 0:
            return out
        room_bytes, room_gas, misfits = max_bytes, max_gas, 0
        # Round 0: pop sender heads from the ready heap in arrival order, restore them after.
        taken: list[tuple[int, _Bytes]] = []
        seen: set[_Bytes] = set()
        following: list[tuple[int, _Bytes]] = []  # (arrival of next tx, sender) for round 1
        while self._ready and len(out) < max_txs and misfits < MAX_REAP_MISFITS:
            seq, addr = heapq.heappop(self._ready)
            acct = self._accounts.get(addr)
            if acct is None or addr in seen:
                continue  # stale or duplicate entry: dropped for good
            head = acct.head()
            if head is None or head.seq != seq:
                continue
            seen.add(addr)
            taken.append((seq, addr))
            if head.size > room_bytes or head.tx.gas_limit > room_gas:
                misfits += 1
                continue
            out.append(head.tx)
            room_bytes -= head.size
            room_gas -= head.tx.gas_limit
            if acct.base + 1 < acct.ready_end:
                following.append((acct.txs[acct.base + 1].seq, addr))
        for item in taken:
            heapq.heappush(self._ready, item)
        # Rounds 1, 2, ...: only senders that were served in the round before.
        rank = 1
        while following and len(out) < max_txs and misfits < MAX_REAP_MISFITS:
            following.sort()
            current, following = following, []
            for _, addr in current:
                if len(out) >= max_txs or misfits >= MAX_REAP_MISFITS:
                    break
                acct = self._accounts[addr]
                entry = acct.txs[acct.base + rank]
                if entry.size > room_bytes or entry.tx.gas_limit > room_gas:
                    misfits += 1
                    continue
                out.append(entry.tx)
                room_bytes -= entry.size
                room_gas -= entry.tx.gas_limit
                if acct.base + rank + 1 < acct.ready_end:
                    following.append((acct.txs[acct.base + rank + 1].seq, addr))
            rank += 1
        return out

    def update(self, committed: Sequence[Transaction], height: int) -> None:
        """After a block at ``height`` is committed: remove its transactions, drop pooled ones
        whose nonce is now used, and drop the ones that expire at ``height``."""
        with CLOCK.measure("mempool", 0):
            self._update(committed, height)

    def _update(self, committed: Sequence[Transaction], height: int) -> None:
        touched: dict[_Bytes, None] = {}  # ordered set: deterministic processing order
        for tx in committed:
            entry = self._entries.get(tx.hash)
            if entry is not None:
                touched[entry.addr] = None
                self._remove(entry)
            else:
                touched[self._suite.address(tx.sender)] = None
        for addr in touched:
            acct = self._accounts.get(addr)
            if acct is None:
                continue
            old_head = acct.head()
            base = self._account_nonce(addr)
            if base > acct.base:
                if base - acct.base <= len(acct.txs):
                    stale = [e for n in range(acct.base, base) if (e := acct.txs.get(n))]
                else:
                    stale = [e for n, e in acct.txs.items() if n < base]
                for entry in stale:
                    self._remove(entry)
                if addr not in self._accounts:
                    continue
            acct.base = base
            acct.ready_end = base
            acct.advance_ready()
            head = acct.head()
            if head is not None and head is not old_head:
                self._push_ready(head.seq, addr)
        expiry = self._expiry
        while expiry and expiry[0][0] <= height:
            _, seq, tx_hash = heapq.heappop(expiry)
            entry = self._entries.get(tx_hash)
            if entry is not None and entry.seq == seq:
                self._remove(entry)
