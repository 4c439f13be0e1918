"""The executor's runtime: contracts by name and version, gas costs, addresses, nested calls.

A :class:`~citychain.execution.context.Context` reaches it through the ``RuntimeView``
protocol; the executor owns one instance for its lifetime (it holds no chain state, only
caches of names that never change).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from citychain import codec
from citychain.crypto import CryptoSuite
from citychain.errors import CitychainError, DecodeError, ErrorCode, ExecutionFailure
from citychain.execution import access
from citychain.execution.context import Context, _contract_error, _plain, _TxFrame
from citychain.execution.contract import Contract, ContractRegistry, MethodSpec
from citychain.execution.gas import GasSchedule
from citychain.execution.keys import contract_address, contract_prefix

log = logging.getLogger(__name__)


class Runtime:
    """What contexts need from the executor: contracts, gas costs and addresses."""

    __slots__ = ("_addresses", "_prefixes", "_single", "gas", "max_depth", "registry", "suite")

    def __init__(
        self, registry: ContractRegistry, suite: CryptoSuite, gas: GasSchedule, max_depth: int
    ) -> None:
        self.registry = registry
        self.suite = suite
        self.gas = gas
        self.max_depth = max_depth
        self._addresses: dict[str, bytes] = {}
        self._prefixes: dict[str, bytes] = {}
        #: Contracts that ship in one version (the registry is fixed before the first block).
        self._single: dict[str, Contract] = {}

    def address_of(self, name: str) -> bytes:
        addr = self._addresses.get(name)
        if addr is None:
            addr = self._addresses[name] = contract_address(self.suite, name)
        return addr

    def prefix_of(self, name: str) -> bytes:
        prefix = self._prefixes.get(name)
        if prefix is None:
            prefix = self._prefixes[name] = contract_prefix(name)
        return prefix

    def versions(self, name: str) -> list[int]:
        return self.registry.versions(name)

    def methods(self, name: str) -> list[str]:
        found: set[str] = set()
        for version in self.registry.versions(name):
            entries = self.registry.get(name, version).entries
            found.update(m for m, spec in entries.items() if not spec.read_only)
        return sorted(found)

    def resolve(self, name: str, get: Callable[[bytes], bytes | None]) -> Contract:
        """The enabled version of contract ``name``; ``get`` reads a full state key. Only a
        contract that ships in several versions costs a state read."""
        single = self._single.get(name)
        if single is not None:
            return single
        if len(self.registry.versions(name)) <= 1:
            single = self._single[name] = self.registry.get(name)  # raises for an unknown name
            return single
        raw = get(self.prefix_of(access.GOV) + access.sysver_key(name))
        return self.registry.get(name, None if raw is None else int(codec.decode(raw)))

    def run(
        self,
        frame: _TxFrame,
        contract: Contract,
        spec: MethodSpec,
        caller: bytes,
        read_only: bool,
        depth: int,
        args: dict[str, Any],
    ) -> tuple[Any, bytes]:
        """Run one entry point (after its admission check, if it has one); returns its result
        and the result's canonical bytes."""
        ctx = Context(frame, self, contract.name, caller, read_only or spec.read_only, depth)
        if spec.check is None:
            result = spec.fn(contract, ctx, args)
        else:
            checked = self.check(frame, contract, spec, caller, depth, args)
            result = spec.fn(contract, ctx, args, checked)
        try:
            encoded = codec.encode(result)
        except DecodeError as exc:
            raise _contract_error(
                f"{contract.name}.{spec.name} returned a value that is not canonical data: "
                f"{exc.message}"
            ) from None
        ctx._charge(self.gas.return_byte * len(encoded))
        return result, encoded

    def check(
        self,
        frame: _TxFrame,
        contract: Contract,
        spec: MethodSpec,
        caller: bytes,
        depth: int,
        args: dict[str, Any],
    ) -> Any:
        """Run the admission check of ``spec`` in a read-only context on ``frame``; returns
        what it returns (for the method), or raises its refusal. The one place it runs, at
        execution and at admission alike."""
        assert spec.check is not None
        return spec.check(contract, Context(frame, self, contract.name, caller, True, depth), args)

    def nested(self, ctx: Context, contract: str, method: str, args: Mapping[str, Any]) -> Any:
        frame = ctx._f
        try:
            ctx._charge(self.gas.call)
            if ctx.depth >= self.max_depth:
                raise ExecutionFailure(
                    f"call to {contract}.{method} would exceed the call depth limit of "
                    f"{self.max_depth}",
                    ErrorCode.CALL_DEPTH,
                )
            target = self.resolve(contract, lambda k: frame.writes.get(k, frame.pending.get(k)))
            spec = target.lookup(method)
            if not isinstance(args, Mapping):
                raise _contract_error(f"arguments of a call to {contract}.{method} must be a map")
            try:
                encoded_args = codec.encode(dict(args))
            except DecodeError as exc:
                raise _contract_error(
                    f"arguments of a call to {contract}.{method} are not canonical data: "
                    f"{exc.message}"
                ) from None
            ctx._charge(self.gas.tx_byte * len(encoded_args))
            result, encoded = self.run(
                frame,
                target,
                spec,
                ctx.address,
                ctx.read_only,
                ctx.depth + 1,
                codec.decode(encoded_args),
            )
        except CitychainError as exc:
            frame.fail(exc)
            raise
        except MemoryError:
            raise
        except Exception:
            log.exception("contract %s.%s raised an unexpected error", contract, method)
            err = _contract_error(f"contract {contract}.{method} failed with an internal error")
            frame.fail(err)
            raise err from None
        return _plain(result, encoded)
