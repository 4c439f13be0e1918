"""System contracts: the base class, the method decorators and the registry.

A system contract is a class with a unique ``name`` whose public entry points are marked::

    class Token(Contract):
        name = "token"

        @method                      # state-changing: runs only inside a transaction
        def transfer(self, ctx: Context, args: dict[str, Any]) -> None: ...

        @query                       # read-only: callable through the API without a transaction
        def balance(self, ctx: Context, args: dict[str, Any]) -> int: ...

Every entry point receives a :class:`~citychain.execution.Context` (its only view of the
chain) and the argument map, and returns a canonical value (see :mod:`citychain.codec`).
Instances must hold no mutable state of their own: everything lives in state through ``ctx``,
so one instance serves every block and every node computes the same thing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

from citychain.errors import ConfigError, ErrorCode, ExecutionFailure

if TYPE_CHECKING:
    from citychain.execution.context import Context

F = TypeVar("F", bound=Callable[..., Any])
_KIND_ATTR = "__citychain_entry__"
_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")


def method(fn: F) -> F:
    """Mark ``fn(self, ctx, args)`` as a state-changing entry point (callable by transactions)."""
    cast(Any, fn).__citychain_entry__ = False
    return fn


def query(fn: F) -> F:
    """Mark ``fn(self, ctx, args)`` as a read-only entry point: writes and events are refused."""
    cast(Any, fn).__citychain_entry__ = True
    return fn


@dataclass(frozen=True, slots=True)
class MethodSpec:
    name: str
    read_only: bool
    fn: Callable[[Any, Context, dict[str, Any]], Any]


class Contract:
    """Base class of system contracts. Subclasses set ``name`` and decorate entry points."""

    name: ClassVar[str]
    entries: ClassVar[Mapping[str, MethodSpec]] = MappingProxyType({})

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        table: dict[str, MethodSpec] = {}
        for klass in reversed(cls.__mro__):
            for attr, value in vars(klass).items():
                kind = getattr(value, _KIND_ATTR, None)
                if kind is None:
                    table.pop(attr, None)  # overridden without a decorator: no longer an entry
                    continue
                if not _NAME_RE.fullmatch(attr):
                    raise TypeError(
                        f"{cls.__name__}.{attr}: entry point names are lower-case letters, "
                        "digits and '_', starting with a letter"
                    )
                table[attr] = MethodSpec(attr, bool(kind), value)
        cls.entries = MappingProxyType(dict(sorted(table.items())))

    def genesis(self, ctx: Context, params: dict[str, Any]) -> None:
        """Initialise this contract's state from its genesis parameters (default: none)."""
        if params:
            raise ConfigError(f"contract {self.name!r} takes no genesis parameters")

    def lookup(self, method_name: str) -> MethodSpec:
        """The entry point ``method_name``; ExecutionFailure (UNKNOWN_METHOD) if none."""
        spec = self.entries.get(method_name)
        if spec is None:
            known = ", ".join(self.entries) or "none"
            raise ExecutionFailure(
                f"contract {self.name!r} has no method {method_name!r} (methods: {known})",
                ErrorCode.UNKNOWN_METHOD,
            )
        return spec


class ContractRegistry:
    """The system contracts of a chain, by name. Fixed before the first block executes."""

    __slots__ = ("_contracts",)

    def __init__(self) -> None:
        self._contracts: dict[str, Contract] = {}

    def register(self, contract: Contract) -> None:
        name = getattr(type(contract), "name", None)
        if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
            raise ConfigError(
                f"contract name {name!r} is invalid: use 1-64 lower-case letters, digits and "
                "'_', starting with a letter"
            )
        if name in self._contracts:
            raise ConfigError(f"a contract named {name!r} is already registered")
        self._contracts[name] = contract

    def get(self, name: str) -> Contract:
        """The contract ``name``; ExecutionFailure (UNKNOWN_CONTRACT) if none."""
        contract = self._contracts.get(name)
        if contract is None:
            known = ", ".join(self.names()) or "none"
            raise ExecutionFailure(
                f"no contract named {name!r} (contracts: {known})", ErrorCode.UNKNOWN_CONTRACT
            )
        return contract

    def find(self, name: str) -> Contract | None:
        return self._contracts.get(name)

    def names(self) -> tuple[str, ...]:
        """Registered names in ascending order."""
        return tuple(sorted(self._contracts))
