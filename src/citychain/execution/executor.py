"""The executor: a block's transactions in, one receipt each and the block's writes out.

Theory of operation
-------------------
``execute_block`` first verifies the signatures of the block's transactions that this node
has not verified itself, in one :meth:`CryptoSuite.batch_verify` call (a thread pool). A
transaction this node's mempool verified at admission is remembered by hash
(:class:`~citychain.execution.verified.VerifiedTxs`, the whole encoded transaction with its
signatures) and not verified twice; one from a peer's proposal, block sync or replay is. So
every node verifies every signature it executes exactly once, and a verdict never rests on
the cache: a transaction missing from it is simply verified here. Then, for each transaction
in block order:

1. **Checks**, in this order; the first that fails gives a failed receipt with ``gas_used`` 0
   and *no state change at all* (not even the nonce):

   ==========================  ======================================================
   ``bad_signature``           the signature does not verify for ``sender``
   ``wrong_chain``             ``chain_id`` is not this chain's
   ``expired``                 ``expiry`` < the block height
   ``nonce_too_low``/``_gap``  ``nonce`` is not the sender's account nonce
   ``gas_limit_too_high``      ``gas_limit`` > ``GasSchedule.max_gas_per_tx``
   ``gas_limit_too_low``       ``gas_limit`` < the intrinsic cost (base + per byte)
   ``unknown_contract``        no such contract
   ``unknown_method``          no such method, or it is a query (queries are not sent in txs)
   ==========================  ======================================================

   (``bad_signature`` also covers an endorsement that does not verify.)

2. **Nonce.** A transaction that passed the checks advances its sender's nonce, whatever the
   call then does. So a signed transaction executes at most once, ever.

2b. **Access** (:mod:`citychain.execution.access`): unless the chain is in ``open`` identity
   mode, every signer must be a member in good standing (``not_member``, ``revoked``,
   ``frozen``), the contract must not be frozen (``frozen``), and the method's policy must be
   met by the signers' organisations (``policy_not_met``, naming the policy). A refusal here
   comes after the nonce advanced, so the transaction cannot be replayed; it charges the
   intrinsic gas and changes nothing else.

2c. **Admission check** of the method, if it declares one (``@method(check=...)``, see
   :mod:`citychain.execution.contract`): run by the runtime in a read-only context just before
   the method, its reads charged as the method's. A refusal there is a failed call (step 3).

The mempool runs the checks of step 1 from the gas limit on, the access checks and the
method's admission check on the committed state before it admits a transaction
(:meth:`Executor.check_admission`), with the same code, so it refuses with the code and
message the receipt would carry.

3. **Call.** The method runs with the intrinsic gas already charged and a private layer of
   writes (see :mod:`citychain.execution.context`). If it raises (a ``CitychainError`` gives
   its code and message; running out of gas gives ``out_of_gas``; any other exception gives
   ``contract_error`` with a generic message, and the traceback goes to the node's log, never
   to the receipt), its writes and events are discarded. **A failed transaction changes no
   contract state; only its sender's nonce advances.** The receipt carries the code, the
   message and the gas used (the whole limit after ``out_of_gas``).

   On success the writes join the block's pending writes, where later transactions of the
   same block see them, and the receipt has code ``ok``, the method's result and its events in
   emission order.

Node faults are not receipts: if reading the base state fails, or a contract raises
``InternalError``/``Unavailable`` (or Python runs out of memory), ``execute_block`` raises and
produces no result, so a node with a broken disk stops instead of disagreeing with the others.

Determinism: everything a receipt or a write depends on comes from the transactions, the
block context and the state, never from the clock, randomness or memory addresses; the
block's writes come out sorted by key, so the same block on the same state gives byte-identical
receipts and writes on every node.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

from citychain import codec
from citychain.crypto import CryptoSuite
from citychain.errors import (
    CitychainError,
    ConfigError,
    DecodeError,
    ErrorCode,
    ExecutionFailure,
    InternalError,
    InvalidInput,
    Unavailable,
)
from citychain.execution import access
from citychain.execution.context import (
    MAX_CALL_DEPTH,
    BlockContext,
    Context,
    _merge,
    _Pending,
    _plain,
    _TxFrame,
    private_args,
)
from citychain.execution.contract import Contract, ContractRegistry, MethodSpec
from citychain.execution.gas import GasSchedule
from citychain.execution.keys import ADDRESS_SIZE, account_nonce_key, decode_nonce, encode_nonce
from citychain.execution.runtime import Runtime
from citychain.execution.verified import VerifiedTxs
from citychain.stages import CLOCK
from citychain.state.interface import StateReader
from citychain.types import Receipt, Transaction
from citychain.types.tx import batch_verify_txs

log = logging.getLogger(__name__)

_OK = ErrorCode.OK.value
_MISSING: Any = object()
#: The caller and origin of queries without a caller, and of genesis hooks.
NO_ADDRESS = bytes(ADDRESS_SIZE)
_UNLIMITED = 2**63 - 1


class QueryAnswer(NamedTuple):
    """A query's result (:meth:`Executor.query_canonical`)."""

    value: Any
    #: The result's canonical bytes.
    encoded: bytes
    #: Gas the run used: the same query on the same state fails ``out_of_gas`` under any
    #: lower limit, and answers the same under any limit at least this.
    gas_used: int


@dataclass(frozen=True, slots=True)
class BlockResult:
    """One receipt per transaction (block order), the block's net writes sorted by key
    (None deletes), the sum of the receipts' gas, and whether any transaction wrote
    governance records (what the chain and the network must then re-read)."""

    receipts: tuple[Receipt, ...]
    writes: dict[bytes, bytes | None]
    gas_used: int
    governance_changed: bool = False


def _raise_fault(pending: _Pending, exc: BaseException | None) -> None:
    """Re-raise node faults: they abort the block instead of becoming a receipt."""
    if pending.fault is not None:
        raise pending.fault
    if isinstance(exc, InternalError | Unavailable | MemoryError):
        raise exc


def _refused(tx_hash: bytes, code: ErrorCode, message: str) -> Receipt:
    return Receipt(tx_hash, code.value, message, 0, None, (), checked=True)


def _call_failure(
    pending: _Pending, frame: _TxFrame, exc: Exception, tx: Transaction
) -> CitychainError:
    """The refusal a call of ``tx`` that raised ``exc`` ends with (the frame's first failure
    wins; a bug becomes ``contract_error`` and goes to the log). Node faults are re-raised.
    Call it from the ``except`` block (it logs the traceback being handled)."""
    _raise_fault(pending, exc)
    _raise_fault(pending, frame.failure)
    if not isinstance(exc, CitychainError):
        log.exception(
            "transaction %s: %s.%s raised an unexpected error",
            tx.hash.hex(),
            tx.contract,
            tx.method,
        )
    err = frame.failure or (exc if isinstance(exc, CitychainError) else None)
    if err is None:
        return ExecutionFailure(
            f"contract {tx.contract}.{tx.method} failed with an internal error",
            ErrorCode.CONTRACT_ERROR,
        )
    if err.code == ErrorCode.OK:
        return ExecutionFailure(err.message, ErrorCode.CONTRACT_ERROR)
    return err


def _verify_once(
    suite: CryptoSuite, txs: tuple[Transaction, ...], verified: VerifiedTxs | None
) -> list[bool]:
    """Whether each transaction's signatures verify, checking only those this node has not
    verified before (see the module docstring)."""
    if verified is None:
        return batch_verify_txs(suite, txs)
    known = verified.known(tx.hash for tx in txs)
    if all(known):
        return known
    fresh = iter(batch_verify_txs(suite, [tx for tx, k in zip(txs, known, strict=True) if not k]))
    return [True if k else next(fresh) for k in known]


class Executor:
    """Runs transactions against system contracts. Holds no state between calls."""

    __slots__ = ("_rt",)

    def __init__(
        self,
        registry: ContractRegistry,
        suite: CryptoSuite,
        gas: GasSchedule | None = None,
        *,
        max_call_depth: int = MAX_CALL_DEPTH,
    ) -> None:
        if max_call_depth < 1:
            raise ConfigError("max_call_depth must be at least 1")
        self._rt = Runtime(registry, suite, gas or GasSchedule(), max_call_depth)

    @property
    def registry(self) -> ContractRegistry:
        return self._rt.registry

    @property
    def gas(self) -> GasSchedule:
        return self._rt.gas

    def set_gas(self, gas: GasSchedule) -> None:
        """Use new gas costs from the next block on (a governance parameter change)."""
        self._rt.gas = gas

    # -- blocks ----------------------------------------------------------------------------
    def execute_block(
        self,
        state: StateReader,
        ctx: BlockContext,
        txs: Sequence[Transaction],
        gov_cache: access.GovCache | None = None,
        verified: VerifiedTxs | None = None,
    ) -> BlockResult:
        """Execute ``txs`` in order on ``state`` (which is only read). ``gov_cache`` memoises
        governance records of ``state``; pass one only when ``state`` is the committed state
        it belongs to. ``verified`` holds the hashes of transactions whose signatures this
        node already verified (at admission); the others are verified here."""
        txs = tuple(txs)
        with CLOCK.measure("execution", len(txs)):
            with CLOCK.measure("verify_execution", len(txs)):
                valid = _verify_once(self._rt.suite, txs, verified)
            pending = _Pending(state)
            receipts = tuple(
                self._execute_tx(pending, ctx, tx, ok, gov_cache)
                for tx, ok in zip(txs, valid, strict=True)
            )
            writes = pending.sorted_writes()
        return BlockResult(
            receipts,
            writes,
            sum(r.gas_used for r in receipts),
            pending.gov_dirty,
        )

    def _execute_tx(
        self,
        pending: _Pending,
        ctx: BlockContext,
        tx: Transaction,
        signature_ok: bool,
        gov_cache: access.GovCache | None = None,
    ) -> Receipt:
        rt = self._rt
        tx_hash = tx.hash
        if not signature_ok:
            return _refused(
                tx_hash, ErrorCode.BAD_SIGNATURE, "the signature does not verify for the sender"
            )
        if tx.chain_id != ctx.chain_id:
            return _refused(
                tx_hash,
                ErrorCode.WRONG_CHAIN,
                f"the transaction is for chain {tx.chain_id!r}; this chain is {ctx.chain_id!r}",
            )
        if tx.expiry < ctx.height:
            return _refused(
                tx_hash,
                ErrorCode.EXPIRED,
                f"the transaction expired after height {tx.expiry}; this block is {ctx.height}",
            )
        sender = rt.suite.address(tx.sender)
        nonce_key = account_nonce_key(sender)
        nonce = decode_nonce(pending.get(nonce_key))
        if tx.nonce != nonce:
            if tx.nonce < nonce:
                return _refused(
                    tx_hash,
                    ErrorCode.NONCE_TOO_LOW,
                    f"nonce {tx.nonce} is already used; the account's next nonce is {nonce}",
                )
            return _refused(
                tx_hash,
                ErrorCode.NONCE_GAP,
                f"nonce {tx.nonce} is ahead of the account's next nonce {nonce}; "
                "earlier transactions are missing",
            )
        try:
            contract, spec, intrinsic = self._call_target(pending, tx)
        except ExecutionFailure as exc:
            return _refused(tx_hash, exc.code, exc.message)

        pending.put(nonce_key, encode_nonce(nonce + 1))
        try:
            self._check_access(pending, ctx, tx, sender, gov_cache)
        except ExecutionFailure as exc:
            _raise_fault(pending, None)
            return Receipt(tx_hash, exc.code.value, exc.message, intrinsic, None, (), checked=True)
        frame = _TxFrame(pending, ctx, tx.gas_limit, intrinsic, sender, tx.sender, tx_hash)
        try:
            result, encoded = rt.run(frame, contract, spec, sender, False, 1, private_args(tx.args))
            if frame.failure is not None:
                raise frame.failure  # a nested failure the contract caught: still fatal
        except Exception as exc:
            err = _call_failure(pending, frame, exc, tx)
            return Receipt(
                tx_hash, err.code.value, err.message, frame.gas_used, None, (), checked=True
            )
        _raise_fault(pending, None)  # the contract may have caught it
        pending.merge(frame.writes)
        gov_prefix = rt.prefix_of(access.GOV)
        if any(k.startswith(gov_prefix) for k in frame.writes):
            pending.gov_dirty = True
            pending.derived.clear()
        return Receipt(
            tx_hash,
            _OK,
            "",
            frame.gas_used,
            _plain(result, encoded),
            tuple(frame.events),
            checked=True,
        )

    def _call_target(self, pending: _Pending, tx: Transaction) -> tuple[Contract, MethodSpec, int]:
        """The checks of ``tx`` before its nonce advances that depend on the gas schedule and
        the contracts: its contract, method and intrinsic gas; or ExecutionFailure."""
        rt = self._rt
        gas = rt.gas
        if tx.gas_limit > gas.max_gas_per_tx:
            raise ExecutionFailure(
                f"gas limit {tx.gas_limit} is above the maximum of {gas.max_gas_per_tx}",
                ErrorCode.GAS_LIMIT_TOO_HIGH,
            )
        intrinsic = gas.intrinsic(len(tx.encode()))
        if tx.gas_limit < intrinsic:
            raise ExecutionFailure(
                f"gas limit {tx.gas_limit} is below this transaction's intrinsic cost "
                f"of {intrinsic}",
                ErrorCode.GAS_LIMIT_TOO_LOW,
            )
        contract = rt.resolve(tx.contract, pending.get)
        spec = contract.lookup(tx.method)
        if spec.read_only:
            raise ExecutionFailure(
                f"{tx.contract}.{tx.method} is a query; call it through the query API",
                ErrorCode.UNKNOWN_METHOD,
            )
        return contract, spec, intrinsic

    def _check_access(
        self,
        pending: _Pending,
        ctx: BlockContext,
        tx: Transaction,
        sender: bytes | None,
        cache: access.GovCache | None,
    ) -> None:
        """The access checks of ``tx`` (``sender``: its sender's address, computed here when
        None, which a remembered answer spares)."""
        rt = self._rt
        # Until a transaction of this block changes governance records, the committed
        # records decide, and so does a remembered answer for the same signers and method
        # (keyed by public keys: one key, one address).
        use_cache = cache is not None and not pending.gov_dirty
        if use_cache:
            assert cache is not None
            if tx.endorsements:
                decision_key: tuple[Any, ...] = (
                    b"access",
                    tx.sender,
                    *(pk for pk, _ in tx.endorsements),
                    tx.contract,
                    tx.method,
                )
            else:
                decision_key = (b"access", tx.sender, tx.contract, tx.method)
            valid_until = cache.recall(decision_key)
            if valid_until is not None and ctx.time <= valid_until:
                return
            generation = cache.generation
        if sender is None:
            sender = rt.suite.address(tx.sender)
        signers = [sender] + [rt.suite.address(pk) for pk, _ in tx.endorsements]
        gov_prefix = rt.prefix_of(access.GOV)
        writes = pending.writes

        def get(key: bytes) -> bytes | None:
            full = gov_prefix + key
            value = writes.get(full, _MISSING)
            if value is not _MISSING:  # written by an earlier transaction of this block
                return value  # type: ignore[no-any-return]
            if not use_cache:
                return pending.get(full)
            assert cache is not None
            return cache.read(full, lambda: pending.get(full))  # type: ignore[no-any-return]

        def list_orgs() -> list[str]:
            prefix = gov_prefix + access.ORG

            def merged() -> list[str]:
                items = _merge(pending.base_items(prefix), pending.with_prefix(prefix))
                return [k[len(prefix) :].decode() for k, _ in items]

            if use_cache:
                assert cache is not None
                return cache.read(prefix, merged)  # type: ignore[no-any-return]
            orgs: list[str] | None = pending.derived.get("orgs")
            if orgs is None:  # this block changed governance records: the merged view
                orgs = pending.derived["orgs"] = merged()
            return orgs

        valid_until = access.check_access(
            get,
            list_orgs,
            contract=tx.contract,
            method=tx.method,
            contract_address=rt.address_of(tx.contract),
            signers=signers,
            block_time=ctx.time,
        )
        if use_cache:
            assert cache is not None
            cache.remember(decision_key, valid_until, generation)

    def check_admission(
        self,
        state: StateReader,
        ctx: BlockContext,
        tx: Transaction,
        cache: access.GovCache | None = None,
    ) -> None:
        """What :meth:`execute_block` would refuse of ``tx`` in the block ``ctx`` on ``state``
        alone (the mempool's early refusal): the gas limit against the gas schedule, the
        contract and method, the access checks, and the method's admission check, if it
        declares one (:mod:`citychain.execution.contract`). Raises ExecutionFailure with the
        code and message the receipt would carry. ``ctx.time`` is taken as a lower bound of
        the block's time. ``cache`` memoises governance records of ``state`` (the committed
        state only). Signature, chain id, expiry and nonce are the mempool's own checks.

        A node commits blocks on another thread, so the records a check reads may come from
        two neighbouring heights; the verdict is then early or late by one block, never
        binding: the block runs the same checks again on its own state."""
        pending = _Pending(state)
        contract, spec, intrinsic = self._call_target(pending, tx)
        self._check_access(pending, ctx, tx, None, cache)
        _raise_fault(pending, None)
        if spec.check is None:  # token transfers: nothing more to read
            return
        sender = self._rt.suite.address(tx.sender)
        block = replace(ctx, time_exact=False) if ctx.time_exact else ctx
        frame = _TxFrame(pending, block, tx.gas_limit, intrinsic, sender, tx.sender, tx.hash)
        try:
            self._rt.check(frame, contract, spec, sender, 1, private_args(tx.args))
            if frame.failure is not None:
                raise frame.failure  # a nested failure the check caught: still fatal
        except Exception as exc:
            err = _call_failure(pending, frame, exc, tx)
            raise ExecutionFailure(err.message, err.code) from None
        _raise_fault(pending, None)

    # -- genesis ---------------------------------------------------------------------------
    def init_genesis(
        self,
        state: StateReader,
        ctx: BlockContext,
        contracts_params: Mapping[str, Mapping[str, Any]],
    ) -> dict[bytes, bytes | None]:
        """Run every registered contract's ``genesis`` hook, in name order, with its params
        (``{}`` when absent); returns the writes sorted by key. Raises ConfigError."""
        rt = self._rt
        names = rt.registry.names()
        unknown = sorted(set(contracts_params) - set(names))
        if unknown:
            raise ConfigError(
                f"genesis has parameters for unknown contract(s) {', '.join(unknown)} "
                f"(contracts: {', '.join(names) or 'none'})"
            )
        pending = _Pending(state)
        for name in names:
            params = contracts_params.get(name, {})
            if not isinstance(params, Mapping):
                raise ConfigError(f"genesis parameters of contract {name!r} must be a map")
            contract = rt.registry.get(name)
            frame = _TxFrame(pending, ctx, _UNLIMITED, 0, NO_ADDRESS, b"", b"")
            gctx = Context(frame, rt, name, NO_ADDRESS, False, 1)
            try:
                contract.genesis(gctx, dict(params))
                if frame.failure is not None:
                    raise frame.failure
            except (ConfigError, InternalError):
                raise
            except CitychainError as exc:
                raise ConfigError(f"genesis of contract {name!r}: {exc.message}") from exc
            except Exception as exc:
                raise ConfigError(f"genesis of contract {name!r} failed: {exc!r}") from exc
            pending.merge(frame.writes)
        return pending.sorted_writes()

    # -- queries ---------------------------------------------------------------------------
    def query(
        self,
        state: StateReader,
        ctx: BlockContext,
        contract: str,
        method: str,
        args: Mapping[str, Any],
        caller: bytes | None = None,
        *,
        private: bool = False,
        gas_limit: int | None = None,
    ) -> Any:
        """Run the read-only entry point ``contract.method`` on ``state``; returns its result.

        Only ``@query`` methods are callable; writes and events are refused. ``caller`` (and
        ``origin``) is 20 zero bytes when not given. Gas is limited to ``max_gas_per_tx``, or
        to ``gas_limit`` when that is lower (``out_of_gas`` beyond it).
        A private query (``@query(private=True)``) runs only when ``private`` is True: the caller
        says it has authorised the reader (a service route that checked a signed request);
        otherwise it is refused with ``not_authorized``.
        Raises ExecutionFailure / InvalidInput with the contract's code.
        """
        return self.query_canonical(
            state, ctx, contract, method, args, caller, private=private, gas_limit=gas_limit
        ).value

    def query_gas_limit(self, gas_limit: int | None) -> int:
        """The gas a query may use: the chain's ``max_gas_per_tx``, or ``gas_limit`` when
        that is lower."""
        most = self._rt.gas.max_gas_per_tx
        return most if gas_limit is None else min(gas_limit, most)

    def query_canonical(
        self,
        state: StateReader,
        ctx: BlockContext,
        contract: str,
        method: str,
        args: Mapping[str, Any],
        caller: bytes | None = None,
        *,
        private: bool = False,
        gas_limit: int | None = None,
    ) -> QueryAnswer:
        """:meth:`query`, with its result's canonical encoding (which the run makes anyway)
        and the gas it used: what a cache of answers keeps, to hand out a fresh copy each
        time and to know which gas limits the same query would run out of."""
        rt = self._rt
        pending = _Pending(state)
        target = rt.resolve(contract, pending.get)
        spec = target.lookup(method)
        if not spec.read_only:
            raise ExecutionFailure(
                f"{contract}.{method} changes state; send it in a transaction",
                ErrorCode.UNKNOWN_METHOD,
            )
        if spec.private and not private:
            raise InvalidInput(
                f"{contract}.{method} is a private query: it is not answered by the generic "
                "query routes; read it through its service's route with a request signed by an "
                "authorised account (RFC 9421 HTTP Message Signatures)",
                ErrorCode.NOT_AUTHORIZED,
            )
        if caller is None:
            caller = NO_ADDRESS
        elif type(caller) is not bytes or len(caller) != ADDRESS_SIZE:
            raise InvalidInput(
                f"caller must be a {ADDRESS_SIZE}-byte address", ErrorCode.BAD_ARGUMENTS
            )
        if not isinstance(args, Mapping):
            raise InvalidInput("query arguments must be a map", ErrorCode.BAD_ARGUMENTS)
        try:
            # A copy as canonical data: encode() checks every type and writes canonical
            # bytes, so reading them back needs no canonical re-check (as _plain).
            call_args = codec.decode_trusted(codec.encode(dict(args)))
        except DecodeError as exc:
            raise InvalidInput(
                f"query arguments are not canonical data: {exc.message}", ErrorCode.BAD_ARGUMENTS
            ) from None
        frame = _TxFrame(pending, ctx, self.query_gas_limit(gas_limit), 0, caller, b"", b"")
        try:
            result, encoded = rt.run(frame, target, spec, caller, True, 1, call_args)
            _raise_fault(pending, frame.failure)
            if frame.failure is not None:
                raise frame.failure
        except CitychainError as exc:
            _raise_fault(pending, exc)
            if frame.failure is not None and frame.failure is not exc:
                raise frame.failure from None
            raise
        except Exception as exc:
            _raise_fault(pending, exc)
            if frame.failure is not None:
                raise frame.failure from None
            log.exception("query %s.%s raised an unexpected error", contract, method)
            raise ExecutionFailure(
                f"contract {contract}.{method} failed with an internal error",
                ErrorCode.CONTRACT_ERROR,
            ) from None
        return QueryAnswer(_plain(result, encoded), encoded, frame.gas_used)
