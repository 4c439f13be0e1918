"""The contract context: the only way a contract sees the chain.

Theory of operation
-------------------
State is read through three layers, newest first::

    tx writes      this transaction's writes so far          (_TxFrame.writes)
    block writes   writes of the block's earlier transactions (_Pending.writes)
    base           the committed state the block runs on      (a StateReader)

A contract only ever touches the first layer. When its transaction succeeds, the executor
folds the tx writes into the block writes; when it fails, they (and its events) are dropped,
so a failed transaction leaves no trace in contract state. Nested calls share their
transaction's layer: a failing nested call fails the whole transaction even if the caller
catches the exception (the first failure is recorded on the frame and wins), so there is no
partial rollback to reason about.

Keys are namespaced: a contract's ``key`` is stored at ``c/<name>/<key>``, and a contract can
neither name nor iterate another contract's keys or the account keys (``a/...``).

``iter_prefix`` merges the pending layers with the base in ascending key order, the pending
value winning on equal keys and deletions hiding the base entry. The pending entries are taken
when ``iter_prefix`` is called; writes made while iterating are not seen by that iterator
(take a list first when a loop writes under the prefix it iterates). With ``after`` every
layer starts at the first key above ``prefix + after`` (the base by a seek), so a page costs
the items it reads, however deep into the prefix it starts.

A failure of the base state itself (a broken disk, a pruned version) is the node's fault, not
the transaction's: it is recorded on ``_Pending.fault`` and the executor aborts the whole block
with it instead of writing a receipt that other nodes would not write.

Gas is charged on every operation, before a write takes effect; going over the limit raises
``OUT_OF_GAS`` at that operation (see :mod:`citychain.execution.gas` for the costs).
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from citychain import codec
from citychain.crypto import CryptoSuite
from citychain.errors import (
    CitychainError,
    DecodeError,
    ErrorCode,
    ExecutionFailure,
    InternalError,
)
from citychain.execution.gas import GasSchedule
from citychain.execution.keys import MAX_CONTRACT_KEY
from citychain.state.interface import StateReader, key_after
from citychain.types import Event

log = logging.getLogger(__name__)

#: A transaction's call plus nested calls may be at most this deep (CALL_DEPTH beyond it).
MAX_CALL_DEPTH = 8
_MISSING: Any = object()
_SCALARS = frozenset({type(None), bool, int, bytes, str})


@dataclass(frozen=True, slots=True)
class BlockContext:
    """What a block tells its transactions about itself (all from the header: deterministic)."""

    chain_id: str
    height: int
    #: Milliseconds since the Unix epoch, from the header.
    time: int
    proposer: bytes
    #: False while the block is not made yet (admission checks): ``time`` is then the last
    #: committed block's time, a lower bound of this block's.
    time_exact: bool = True


def out_of_gas(limit: int) -> ExecutionFailure:
    """The failure of a run that reached its gas limit: one wording for a transaction, a
    query, and a kept query answer refused under a lower limit without running again."""
    return ExecutionFailure(
        f"out of gas: the gas limit of {limit} was reached", ErrorCode.OUT_OF_GAS
    )


def _plain(value: Any, encoded: bytes) -> Any:
    """``value`` as it decodes from ``encoded``: lists for tuples, canonical map order, and no
    reference shared with the code that produced it.

    ``encoded`` is always what :func:`codec.encode` just made of ``value`` (checked and
    canonical), so it is read back with :func:`codec.decode_trusted`: re-checking the canonical
    form of bytes we produced cost ~100 µs of a DID resolution's ~350 µs, for nothing."""
    return value if type(value) in _SCALARS else codec.decode_trusted(encoded)


def private_args(args: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``args`` that shares nothing mutable with the caller (a contract that edits
    its arguments must not edit the transaction they came from)."""
    for v in args.values():
        if type(v) not in _SCALARS:
            return {k: _copy(x) for k, x in args.items()}
    return dict(args)


def _copy(value: Any) -> Any:
    # A deep copy of canonical data (a decoded transaction's arguments: maps, arrays and
    # immutable scalars, at most codec.MAX_DEPTH deep), arrays as lists. By hand rather than
    # copy.deepcopy or a CBOR round trip: ~7 µs for a DID document against 24 and 31 µs, and
    # the round trip through codec.decode (which re-checked data already checked at decode)
    # was a third of the execution cost of create_did.
    t = type(value)
    if t is dict:
        return {k: _copy(v) for k, v in value.items()}
    if t is list or t is tuple:
        return [_copy(v) for v in value]
    return value


def _first(item: tuple[bytes, bytes | None]) -> bytes:
    return item[0]


class _Pending:
    """The writes of a block's committed-so-far transactions, over the base state."""

    __slots__ = ("_new", "_sorted", "base", "derived", "fault", "gov_dirty", "writes")

    def __init__(self, base: StateReader) -> None:
        self.base = base
        self.writes: dict[bytes, bytes | None] = {}
        #: Set by the executor once a transaction of the block wrote governance records
        #: (from then on the records of the committed state may be out of date).
        self.gov_dirty = False
        #: Values the executor derives from governance records (the organisation list),
        #: cleared by it whenever a transaction writes governance records.
        self.derived: dict[str, Any] = {}
        self._sorted: list[bytes] = []  # keys of ``writes`` in order, except those in _new
        self._new: list[bytes] = []
        #: The first failure of the base state (a node fault, never a transaction's).
        self.fault: InternalError | None = None

    def _fault(self, exc: Exception) -> InternalError:
        err = (
            exc if isinstance(exc, InternalError) else InternalError(f"state read failed: {exc!r}")
        )
        if self.fault is None:
            self.fault = err
        return err

    def get(self, key: bytes) -> bytes | None:
        value = self.writes.get(key, _MISSING)
        if value is not _MISSING:
            return value  # type: ignore[no-any-return]
        try:
            return self.base.get(key)
        except Exception as exc:
            raise self._fault(exc) from exc

    def base_items(
        self, prefix: bytes, after: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        """Base (key, value) under ``prefix``, ascending; above ``prefix + after`` if given
        (the base seeks there)."""
        try:
            yield from self.base.iter_prefix(prefix, after=after)
        except Exception as exc:
            raise self._fault(exc) from exc

    def put(self, key: bytes, value: bytes | None) -> None:
        if key not in self.writes:
            self._new.append(key)
        self.writes[key] = value

    def merge(self, tx_writes: dict[bytes, bytes | None]) -> None:
        writes, new = self.writes, self._new
        for key, value in tx_writes.items():
            if key not in writes:
                new.append(key)
            writes[key] = value

    def with_prefix(
        self, prefix: bytes, after: bytes | None = None
    ) -> list[tuple[bytes, bytes | None]]:
        """Pending (key, value-or-None) under ``prefix``, ascending; above ``prefix + after``
        if given."""
        keys = self._sorted
        if self._new:
            keys.extend(self._new)
            keys.sort()  # two sorted runs: Timsort merges them in linear time
            self._new.clear()
        writes = self.writes
        out: list[tuple[bytes, bytes | None]] = []
        start = prefix if after is None else key_after(prefix + after)
        i, n = bisect_left(keys, start), len(keys)
        while i < n and keys[i].startswith(prefix):
            out.append((keys[i], writes[keys[i]]))
            i += 1
        return out

    def sorted_writes(self) -> dict[bytes, bytes | None]:
        writes = self.writes
        return {k: writes[k] for k in sorted(writes)}


def _merge(
    base: Iterator[tuple[bytes, bytes]], pending: list[tuple[bytes, bytes | None]]
) -> Iterator[tuple[bytes, bytes]]:
    """Merge two ascending streams; ``pending`` wins on equal keys, None hides the key."""
    i, n = 0, len(pending)
    for key, value in base:
        while i < n and pending[i][0] < key:
            pkey, pvalue = pending[i]
            i += 1
            if pvalue is not None:
                yield pkey, pvalue
        if i < n and pending[i][0] == key:
            pvalue = pending[i][1]
            i += 1
            if pvalue is not None:
                yield key, pvalue
            continue
        yield key, value
    for pkey, pvalue in pending[i:]:
        if pvalue is not None:
            yield pkey, pvalue


class RuntimeView(Protocol):
    """What a :class:`Context` needs of the executor's runtime
    (:class:`citychain.execution.runtime.Runtime`): gas costs, the crypto suite, contract
    addresses and namespaces, the versions shipped, and nested calls. A protocol, so this
    module does not import the contract registry (which imports :class:`Context`)."""

    gas: GasSchedule
    suite: CryptoSuite

    def address_of(self, name: str) -> bytes: ...

    def prefix_of(self, name: str) -> bytes: ...

    def versions(self, name: str) -> list[int]: ...

    def methods(self, name: str) -> list[str]: ...

    def nested(self, ctx: Context, contract: str, method: str, args: Mapping[str, Any]) -> Any: ...


class _TxFrame:
    """What one transaction's calls share: its writes, events, gas and first failure."""

    __slots__ = (
        "block",
        "events",
        "failure",
        "gas_limit",
        "gas_used",
        "origin",
        "pending",
        "sender_public_key",
        "tx_hash",
        "writes",
    )

    def __init__(
        self,
        pending: _Pending,
        block: BlockContext,
        gas_limit: int,
        gas_used: int,
        origin: bytes,
        sender_public_key: bytes,
        tx_hash: bytes,
    ) -> None:
        self.pending = pending
        self.block = block
        self.gas_limit = gas_limit
        self.gas_used = gas_used
        self.origin = origin
        self.sender_public_key = sender_public_key
        self.tx_hash = tx_hash
        self.writes: dict[bytes, bytes | None] = {}
        self.events: list[Event] = []
        self.failure: CitychainError | None = None

    def fail(self, error: CitychainError) -> None:
        if self.failure is None:
            self.failure = error


def _contract_error(message: str) -> ExecutionFailure:
    return ExecutionFailure(message, ErrorCode.CONTRACT_ERROR)


class Context:
    """One call's view of the chain. Contracts receive it; they never construct it."""

    __slots__ = ("_f", "_prefix", "_rt", "address", "caller", "contract", "depth", "read_only")

    def __init__(
        self,
        frame: _TxFrame,
        runtime: RuntimeView,
        contract: str,
        caller: bytes,
        read_only: bool,
        depth: int,
    ) -> None:
        self._f = frame
        self._rt = runtime
        self._prefix = runtime.prefix_of(contract)
        #: This contract's name, and the address it acts as in nested calls.
        self.contract = contract
        self.address = runtime.address_of(contract)
        #: The immediate caller: the sender's address, or the calling contract's address.
        self.caller = caller
        #: True inside a query (or a call made from one): writes and events are refused.
        self.read_only = read_only
        #: 1 for the transaction's own call, 2 for a call it makes, and so on.
        self.depth = depth

    # -- who and when ------------------------------------------------------------------------
    @property
    def origin(self) -> bytes:
        """The address of the account that signed the transaction (the caller of depth 1)."""
        return self._f.origin

    @property
    def sender_public_key(self) -> bytes:
        """The public key that signed the transaction (empty in a query)."""
        return self._f.sender_public_key

    @property
    def tx_hash(self) -> bytes:
        """The hash of the transaction being executed (empty in queries and at genesis)."""
        return self._f.tx_hash

    def account_address(self, public_key: bytes) -> bytes:
        """The account address of ``public_key`` under the chain's crypto suite."""
        return self._rt.suite.address(public_key)

    def check_public_key(self, public_key: bytes) -> None:
        """Raise InvalidInput unless ``public_key`` is a valid key of the chain's suite."""
        self._rt.suite.check_public_key(public_key)

    @property
    def suite_name(self) -> str:
        """The name of the chain's crypto suite (``ed25519``, ``sm2-sm3``), for a contract
        whose rules depend on which keys the chain's transactions are signed with."""
        return self._rt.suite.name

    def contract_address(self, name: str) -> bytes:
        """The address contract ``name`` acts as (and is frozen by)."""
        return self._rt.address_of(name)

    def contract_versions(self, name: str) -> list[int]:
        """The versions of system contract ``name`` this release ships (empty: none)."""
        return self._rt.versions(name)

    def contract_methods(self, name: str) -> list[str]:
        """The transaction methods of system contract ``name`` in any version it ships."""
        return self._rt.methods(name)

    @property
    def height(self) -> int:
        return self._f.block.height

    @property
    def time(self) -> int:
        """The block time in milliseconds since the epoch, from the header (never the clock)."""
        return self._f.block.time

    @property
    def time_exact(self) -> bool:
        """False in an admission check, where :attr:`time` is only a lower bound of the time
        of the block the transaction will be in (see :mod:`citychain.execution.contract`)."""
        return self._f.block.time_exact

    @property
    def chain_id(self) -> str:
        return self._f.block.chain_id

    @property
    def gas_used(self) -> int:
        return self._f.gas_used

    @property
    def gas_left(self) -> int:
        return self._f.gas_limit - self._f.gas_used

    # -- gas -------------------------------------------------------------------------------
    def _charge(self, amount: int) -> None:
        f = self._f
        used = f.gas_used + amount
        if used > f.gas_limit:
            f.gas_used = f.gas_limit
            err = out_of_gas(f.gas_limit)
            f.fail(err)
            raise err
        f.gas_used = used

    def _check_key(self, key: bytes, what: str = "key") -> None:
        if type(key) is not bytes:
            raise _contract_error(
                f"contract {self.contract!r}: state {what}s must be bytes, got {type(key).__name__}"
            )
        if len(key) > MAX_CONTRACT_KEY:
            raise _contract_error(
                f"contract {self.contract!r}: state {what} of {len(key)} bytes exceeds "
                f"{MAX_CONTRACT_KEY}"
            )

    def _refuse_read_only(self, what: str) -> ExecutionFailure:
        return _contract_error(f"contract {self.contract!r} tried to {what} in a read-only call")

    # -- state -----------------------------------------------------------------------------
    def get(self, key: bytes) -> bytes | None:
        """The value of ``key`` in this contract's namespace, or None."""
        if type(key) is not bytes or len(key) > MAX_CONTRACT_KEY:
            self._check_key(key)
        f = self._f
        full = self._prefix + key
        value = f.writes.get(full, _MISSING)
        if value is _MISSING:
            value = f.pending.get(full)
        gas = self._rt.gas
        size = len(key) + (len(value) if value is not None else 0)
        self._charge(gas.read_base + gas.read_byte * size)
        return value  # type: ignore[no-any-return]

    def set(self, key: bytes, value: bytes) -> None:
        """Write ``value`` (non-empty bytes) at ``key`` in this contract's namespace."""
        if self.read_only:
            raise self._refuse_read_only("write state")
        if type(key) is not bytes or len(key) > MAX_CONTRACT_KEY:
            self._check_key(key)
        if type(value) is not bytes or not value:
            raise _contract_error(
                f"contract {self.contract!r}: state values must be non-empty bytes "
                "(use delete to remove a key)"
            )
        gas = self._rt.gas
        self._charge(gas.write_base + gas.write_byte * (len(key) + len(value)))
        self._f.writes[self._prefix + key] = value

    def delete(self, key: bytes) -> None:
        """Remove ``key`` from this contract's namespace (nothing happens if it is absent)."""
        if self.read_only:
            raise self._refuse_read_only("delete state")
        self._check_key(key)
        self._charge(self._rt.gas.delete)
        self._f.writes[self._prefix + key] = None

    def iter_prefix(
        self, prefix: bytes = b"", *, after: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes]]:
        """(key, value) pairs of this namespace whose key starts with ``prefix``, ascending;
        with ``after``, only those whose key is greater than ``prefix + after``.

        Keys come back without the namespace. Sees the transaction's and block's own pending
        writes as of this call; each item yielded is charged gas. ``after`` is where a page
        starts: the state seeks there, so the keys before it are neither read nor charged
        (``prefix + after`` may be at most as long as a key).
        """
        self._check_key(prefix, "prefix")
        f = self._f
        full = self._prefix + prefix
        if after is None:
            pending = f.pending.with_prefix(full)
            mine = [(k, v) for k, v in f.writes.items() if k.startswith(full)]
        else:
            if type(after) is not bytes:
                raise _contract_error(
                    f"contract {self.contract!r}: the start of an iteration ('after') must be "
                    f"bytes, got {type(after).__name__}"
                )
            self._check_key(prefix + after, "start key")
            pending = f.pending.with_prefix(full, after)
            start = key_after(full + after)
            mine = [(k, v) for k, v in f.writes.items() if k.startswith(full) and k >= start]
        if mine:
            merged = dict(pending)
            merged.update(mine)
            pending = sorted(merged.items(), key=_first)
        return self._charged(_merge(f.pending.base_items(full, after), pending))

    def _charged(self, items: Iterator[tuple[bytes, bytes]]) -> Iterator[tuple[bytes, bytes]]:
        strip = len(self._prefix)
        gas = self._rt.gas
        step, per_byte = gas.iter_step, gas.iter_byte
        for key, value in items:
            local = key[strip:]
            self._charge(step + per_byte * (len(local) + len(value)))
            yield local, value

    # -- events and calls ------------------------------------------------------------------
    def emit(self, event_type: str, /, **attributes: Any) -> None:
        """Record an event of this contract; kept only if the transaction succeeds."""
        if self.read_only:
            raise self._refuse_read_only("emit an event")
        if type(event_type) is not str or not 0 < len(event_type) <= 64:
            raise _contract_error(
                f"contract {self.contract!r}: an event type is a text string of 1-64 characters"
            )
        for v in attributes.values():
            if type(v) not in _SCALARS:
                try:
                    encoded = codec.encode(attributes)
                except DecodeError as exc:
                    raise _contract_error(
                        f"contract {self.contract!r}: event {event_type!r} has an attribute "
                        f"that is not canonical data: {exc.message}"
                    ) from None
                attributes = codec.decode(encoded)  # a copy: no reference to the caller's data
                break
        else:
            encoded = codec.encode_trusted(attributes)  # scalars only: nothing to check
        gas = self._rt.gas
        self._charge(gas.event_base + gas.event_byte * (len(event_type) + len(encoded)))
        self._f.events.append(Event(self.contract, event_type, attributes))

    def call(self, contract: str, method: str, args: Mapping[str, Any] | None = None) -> Any:
        """Call ``contract.method(args)`` as this contract (the callee's ``caller`` is
        ``self.address``). Arguments and result are copied as canonical data. A failure
        there fails the whole transaction."""
        return self._rt.nested(self, contract, method, {} if args is None else args)
