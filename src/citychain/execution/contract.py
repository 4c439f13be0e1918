"""System contracts: the base class, the method decorators and the registry.

A system contract is a class with a unique ``name`` whose public entry points are marked::

    class Token(Contract):
        name = "token"

        @method                      # state-changing: runs only inside a transaction
        def transfer(self, ctx: Context, args: dict[str, Any]) -> None: ...

        @query                       # read-only: callable through the API without a transaction
        def balance(self, ctx: Context, args: dict[str, Any]) -> int: ...

        @query(private=True)         # read-only, not public: only a service's signed route
        def audit_trail(self, ctx: Context, args: dict[str, Any]) -> list[Any]: ...

Every entry point receives a :class:`~citychain.execution.Context` (its only view of the
chain) and the argument map, and returns a canonical value (see :mod:`citychain.codec`).
Instances must hold no mutable state of their own: everything lives in state through ``ctx``,
so one instance serves every block and every node computes the same thing.

Admission checks
----------------
A method may declare the refusals it can decide before any block, from the committed state
and the transaction alone::

    def _check_vote(self, ctx: Context, args: dict[str, Any]) -> Ballot: ...   # raises

    @method(check=_check_vote)
    def vote(self, ctx: Context, args: dict[str, Any], ballot: Ballot) -> None: ...

The check runs in a read-only context (no writes, no events) and returns what the method
needs. One definition serves two places, so they cannot disagree: at execution the runtime
runs the check, in the transaction's own frame (its reads cost gas as always), and hands its
value to the method; at admission the mempool runs the same check on the committed state
(:meth:`~citychain.execution.Executor.check_admission`) and refuses the transaction with the
code and message its receipt would have carried. A check must be deterministic and may depend
only on state, the transaction and the height; at admission ``ctx.time`` is only a lower bound
of the block's time (``ctx.time_exact`` is False), so a check may refuse for a time that has
passed (an expired certificate) but must not refuse for one that has not come yet.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast, overload

from citychain import registry as services_registry
from citychain.errors import ConfigError, ErrorCode, ExecutionFailure
from citychain.types.state_keys import contract_key

if TYPE_CHECKING:
    from citychain.execution.context import Context

F = TypeVar("F", bound=Callable[..., Any])
#: An admission check: ``check(self, ctx, args)`` returns what the method needs, or raises.
Check = Callable[[Any, "Context", dict[str, Any]], Any]
_KIND_ATTR = "__citychain_entry__"
_CHECK_ATTR = "__citychain_check__"
_PRIVATE_ATTR = "__citychain_private__"
_NAME_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")


@overload
def method(fn: F, /) -> F: ...


@overload
def method(*, check: Check) -> Callable[[F], F]: ...


def method(fn: F | None = None, /, *, check: Check | None = None) -> F | Callable[[F], F]:
    """Mark ``fn(self, ctx, args)`` as a state-changing entry point (callable by transactions).

    ``@method(check=c)`` declares an admission check (see the module docstring); the method is
    then ``fn(self, ctx, args, checked)``, where ``checked`` is what ``c(self, ctx, args)``
    returned."""

    def mark(f: F) -> F:
        cast(Any, f).__citychain_entry__ = False
        cast(Any, f).__citychain_check__ = check
        return f

    return mark if fn is None else mark(fn)


@overload
def query(fn: F, /) -> F: ...


@overload
def query(*, private: bool) -> Callable[[F], F]: ...


def query(fn: F | None = None, /, *, private: bool = False) -> F | Callable[[F], F]:
    """Mark ``fn(self, ctx, args)`` as a read-only entry point: writes and events are refused.

    ``@query(private=True)`` marks a query whose answer is not public (grants, audit trails,
    private records): the generic ``/v1/query`` routes refuse it (``not_authorized``, 403), and
    only a service's own route runs it, after checking the reader's signed request
    (:mod:`citychain.api._httpsig`) and passing ``private=True`` to the node's query. Inside a
    transaction, a contract may still call it like any other query."""

    def mark(f: F) -> F:
        cast(Any, f).__citychain_entry__ = True
        cast(Any, f).__citychain_private__ = private
        return f

    return mark if fn is None else mark(fn)


@dataclass(frozen=True, slots=True)
class MethodSpec:
    name: str
    read_only: bool
    #: ``fn(contract, ctx, args)``, or ``fn(contract, ctx, args, checked)`` with a ``check``.
    fn: Callable[..., Any]
    #: The admission check, run before ``fn`` at execution and alone at admission.
    check: Check | None = None
    #: A query whose answer is not public: served only through a service's signed route.
    private: bool = False


class Contract:
    """Base class of system contracts. Subclasses set ``name`` and decorate entry points."""

    name: ClassVar[str]
    #: Several versions of one contract may ship; governance chooses the enabled one.
    version: ClassVar[int] = 1
    entries: ClassVar[Mapping[str, MethodSpec]] = MappingProxyType({})
    #: Keys (relative to the contract's namespace) whose values are not public: the node's
    #: API serves no raw read or proof of them; the service answers them by signed routes.
    private_prefixes: ClassVar[tuple[bytes, ...]] = ()
    #: Methods whose calls are not public (their arguments, result and events say who asked
    #: what of whom): the node's API shows such a transaction whole only to its signers and
    #: to members in good standing, withholds it from anyone else, and streams its events
    #: only to subscriptions signed by those (:mod:`citychain.api._withhold`).
    private_methods: ClassVar[frozenset[str]] = frozenset()

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
                table[attr] = MethodSpec(
                    attr,
                    bool(kind),
                    value,
                    getattr(value, _CHECK_ATTR, None),
                    bool(getattr(value, _PRIVATE_ATTR, False)),
                )
        cls.entries = MappingProxyType(dict(sorted(table.items())))
        wrong = sorted(n for n in cls.private_methods if n not in table or table[n].read_only)
        if wrong:
            raise TypeError(f"{cls.__name__}.private_methods names no method: {', '.join(wrong)}")

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
    """The system contracts of a chain, by name and version. Fixed before the first block.

    A name may have several versions (``Contract.version``); the lowest is enabled at genesis
    and governance enables another (``gov`` proposal ``enable_contract``), recorded in state
    so every node switches at the same height."""

    __slots__ = ("_contracts",)

    def __init__(self) -> None:
        self._contracts: dict[str, dict[int, Contract]] = {}

    def register(self, contract: Contract) -> None:
        name = getattr(type(contract), "name", None)
        if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
            raise ConfigError(
                f"contract name {name!r} is invalid: use 1-64 lower-case letters, digits and "
                "'_', starting with a letter"
            )
        version = type(contract).version
        if type(version) is not int or version < 1:
            raise ConfigError(f"contract {name!r}: version must be a positive integer")
        versions = self._contracts.setdefault(name, {})
        if version in versions:
            raise ConfigError(f"a contract named {name!r} is already registered")
        versions[version] = contract

    def get(self, name: str, version: int | None = None) -> Contract:
        """The contract ``name`` (its lowest version unless ``version`` is given);
        ExecutionFailure (UNKNOWN_CONTRACT) if none."""
        versions = self._contracts.get(name)
        if versions is None:
            known = ", ".join(self.names()) or "none"
            raise ExecutionFailure(
                f"no contract named {name!r} (contracts: {known})", ErrorCode.UNKNOWN_CONTRACT
            )
        if version is None:
            return versions[min(versions)]
        contract = versions.get(version)
        if contract is None:
            raise ExecutionFailure(
                f"version {version} of contract {name!r} is enabled on chain but this node "
                f"only has versions {', '.join(map(str, sorted(versions)))}: upgrade the node",
                ErrorCode.UNKNOWN_CONTRACT,
            )
        return contract

    def find(self, name: str) -> Contract | None:
        versions = self._contracts.get(name)
        return versions[min(versions)] if versions else None

    def versions(self, name: str) -> list[int]:
        """The versions of ``name`` registered here, ascending (empty: none)."""
        return sorted(self._contracts.get(name, {}))

    def names(self) -> tuple[str, ...]:
        """Registered names in ascending order."""
        return tuple(sorted(self._contracts))

    def private_prefixes(self) -> tuple[bytes, ...]:
        """The full state keys under which some registered contract keeps private data
        (:attr:`Contract.private_prefixes`, in each contract's namespace)."""
        return tuple(
            contract_key(name, prefix)
            for name in self.names()
            for version in self._contracts[name].values()
            for prefix in type(version).private_prefixes
        )

    def private_calls(self) -> frozenset[tuple[str, str]]:
        """The ``(contract, method)`` pairs whose calls are not public, in any registered
        version (:attr:`Contract.private_methods`)."""
        return frozenset(
            (name, method)
            for name in self.names()
            for version in self._contracts[name].values()
            for method in type(version).private_methods
        )


def default_registry() -> ContractRegistry:
    """A registry holding the system contract of every registered platform service
    (:data:`citychain.registry.SERVICES`, each service's ``system_contract()``)."""
    registry = ContractRegistry()
    for service, module in services_registry.parts("contract"):
        make = getattr(module, "system_contract", None)
        if make is None:
            raise ConfigError(
                f"service {service.name!r}: its contract module has no system_contract()"
            )
        registry.register(make())
    return registry
