"""How a client finds the platform services' SDK helpers: from the service registry.

Each registered service whose folder has an ``sdk`` part (``bind(client)`` and
``bind_async(client)``, see :mod:`citychain.services`) becomes an attribute of every client,
named after the service: ``client.gov``, ``client.token``. The SDK imports no service
statically, so a new service reaches it through its own folder and the registry alone.

The names a service's SDK part exports (its ``__all__``, e.g. ``Gov``, ``build_params``) can
also be imported from :mod:`citychain.sdk` itself (see :func:`exported`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from functools import cache
from types import MappingProxyType, ModuleType
from typing import TYPE_CHECKING, Any, Protocol

from citychain import registry
from citychain.crypto import Signer
from citychain.errors import ConfigError, ErrorCode, ExecutionFailure
from citychain.sdk._errors import error_from
from citychain.types import Receipt

if TYPE_CHECKING:
    import httpx

    from citychain.sdk._types import VerifiedValue
    from citychain.types import NodeStatus


class ServiceClient(Protocol):
    """What a service's blocking helper needs of a :class:`~citychain.sdk.Client` (a
    protocol, so a service's SDK part does not import the client that carries it)."""

    def query(self, contract: str, method: str, /, **args: Any) -> Any: ...

    def _post_json(self, path: str, body: Any) -> Any: ...

    def status(self) -> NodeStatus: ...

    def get_state(
        self, key: bytes, height: int | None = None, *, verify: bool = True
    ) -> VerifiedValue: ...

    def _signed(
        self,
        signer: Signer | None,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        content: bytes | None = None,
        json: Any = None,
        expect: tuple[int, ...] = (200,),
        digest: bool = True,
    ) -> httpx.Response: ...

    def _signed_stream(
        self, signer: Signer | None, path: str, *, params: Mapping[str, str] | None = None
    ) -> AbstractContextManager[httpx.Response]: ...

    def _send_committed(
        self,
        signer: Signer,
        contract: str,
        method: str,
        args: Mapping[str, Any],
        *,
        endorsers: Sequence[Signer],
        timeout: float | None,
        gas_limit: int,
    ) -> Receipt: ...


class AsyncServiceClient(Protocol):
    """What a service's awaited helper needs of an :class:`~citychain.sdk.AsyncClient`."""

    async def query(self, contract: str, method: str, /, **args: Any) -> Any: ...

    async def _post_json(self, path: str, body: Any) -> Any: ...

    async def _signed(
        self,
        signer: Signer | None,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        content: bytes | None = None,
        json: Any = None,
        expect: tuple[int, ...] = (200,),
        digest: bool = True,
    ) -> httpx.Response: ...

    async def _send_committed(
        self,
        signer: Signer,
        contract: str,
        method: str,
        args: Mapping[str, Any],
        *,
        endorsers: Sequence[Signer],
        timeout: float | None,
        gas_limit: int,
    ) -> Receipt: ...


def committed(contract: str, method: str, receipt: Receipt) -> Receipt:
    """``receipt`` if the call succeeded, else :class:`ExecutionFailure` with the receipt's
    code (the transaction was committed; the contract refused it and changed nothing), whose
    message starts ``<contract>.<method> failed:``."""
    if receipt.code == ErrorCode.OK:
        return receipt
    message = f"{contract}.{method} failed: {receipt.message}"
    try:
        code = ErrorCode(receipt.code)
    except ValueError:
        raise error_from(receipt.code, message) from None
    raise ExecutionFailure(message, code)


#: Names a service's SDK module exports that are its wiring, not its API.
_WIRING = frozenset({"bind", "bind_async"})


@cache
def _sdk_parts() -> tuple[tuple[str, ModuleType], ...]:
    return tuple((service.name, module) for service, module in registry.parts("sdk"))


def attach_services(client: Any, *, asynchronous: bool) -> None:
    """Give ``client`` one helper per service with an SDK part, and ``client.services``."""
    helpers = {}
    for name, module in _sdk_parts():
        if hasattr(type(client), name):
            raise ConfigError(f"service {name!r} has the name of a client method; rename it")
        if not hasattr(module, "bind") or not hasattr(module, "bind_async"):
            raise ConfigError(
                f"service {name!r}: its sdk part {module.__name__} has no bind() and "
                "bind_async() (see citychain.services)"
            )
        helper = module.bind_async(client) if asynchronous else module.bind(client)
        helpers[name] = helper
        setattr(client, name, helper)
    client.services = MappingProxyType(helpers)


def exported(name: str) -> Any:
    """``name`` as exported by a service's SDK part; AttributeError if none exports it."""
    for _service, module in _sdk_parts():
        if name in getattr(module, "__all__", ()) and name not in _WIRING:
            return getattr(module, name)
    raise AttributeError(f"module 'citychain.sdk' has no attribute {name!r}")
