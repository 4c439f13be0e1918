"""``client.token``: the token service from the SDK (balances, transfers, minting).

Reads go through the contract's queries (not proven; for a proven balance ask
``client.get_state(balance_key(address))``, :func:`~citychain.services.token.shapes.balance_key`).
Writes wait for their commit and raise :class:`~citychain.errors.ExecutionFailure` with the
receipt's code (e.g. ``insufficient_funds``, ``unauthorized``) when the contract refused, so
a helper that returns has taken effect. Addresses are 20 bytes or 40 hex digits; anything
else is refused with ``bad_arguments`` before anything is signed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from citychain.crypto import Signer
from citychain.sdk import _parse
from citychain.sdk._services import AsyncServiceClient, ServiceClient, committed
from citychain.services.token.shapes import NAME, balance_key
from citychain.types import Receipt
from citychain.types.address import to_address

#: Gas for a token transaction unless told otherwise.
TOKEN_GAS_LIMIT = 100_000


def _addresses(raw: Any) -> list[bytes]:
    def parse() -> list[bytes]:
        if not isinstance(raw, list) or any(type(a) is not bytes for a in raw):
            raise TypeError("expected a list of addresses")
        return list(raw)

    return _parse.parsed("token.issuers", parse)


class Token:
    """``client.token`` on a blocking :class:`~citychain.sdk.Client`."""

    def __init__(self, client: ServiceClient) -> None:
        self._client = client

    def _send(
        self,
        signer: Signer,
        method: str,
        args: dict[str, Any],
        endorsers: Sequence[Signer],
        timeout: float | None,
        gas_limit: int,
    ) -> Receipt:
        receipt = self._client._send_committed(
            signer, NAME, method, args, endorsers=endorsers, timeout=timeout, gas_limit=gas_limit
        )
        return committed(NAME, method, receipt)

    def balance(self, address: bytes | str) -> int:
        """``address``'s balance as the node's latest state says (not proven)."""
        raw = self._client.query(NAME, "balance", owner=to_address(address))
        return _parse.parsed("token.balance", lambda: _parse.integer(raw))

    def total_supply(self) -> int:
        raw = self._client.query(NAME, "total_supply")
        return _parse.parsed("token.total_supply", lambda: _parse.integer(raw))

    def issuers(self) -> list[bytes]:
        """The addresses that may mint, ascending."""
        return _addresses(self._client.query(NAME, "issuers"))

    def transfer(
        self,
        signer: Signer,
        to: bytes | str,
        amount: int,
        *,
        endorsers: Sequence[Signer] = (),
        timeout: float | None = None,
        gas_limit: int = TOKEN_GAS_LIMIT,
    ) -> Receipt:
        """Move ``amount`` from the signer's account to ``to``; the committed receipt."""
        args = {"to": to_address(to, "to"), "amount": amount}
        return self._send(signer, "transfer", args, endorsers, timeout, gas_limit)

    def mint(
        self,
        signer: Signer,
        to: bytes | str,
        amount: int,
        *,
        endorsers: Sequence[Signer] = (),
        timeout: float | None = None,
        gas_limit: int = TOKEN_GAS_LIMIT,
    ) -> Receipt:
        """Create ``amount`` new tokens for ``to`` (the signer must be an issuer)."""
        args = {"to": to_address(to, "to"), "amount": amount}
        return self._send(signer, "mint", args, endorsers, timeout, gas_limit)


class AsyncToken:
    """``client.token`` on an :class:`~citychain.sdk.AsyncClient`: :class:`Token`, awaited."""

    def __init__(self, client: AsyncServiceClient) -> None:
        self._client = client

    async def _send(
        self,
        signer: Signer,
        method: str,
        args: dict[str, Any],
        endorsers: Sequence[Signer],
        timeout: float | None,
        gas_limit: int,
    ) -> Receipt:
        receipt = await self._client._send_committed(
            signer, NAME, method, args, endorsers=endorsers, timeout=timeout, gas_limit=gas_limit
        )
        return committed(NAME, method, receipt)

    async def balance(self, address: bytes | str) -> int:
        raw = await self._client.query(NAME, "balance", owner=to_address(address))
        return _parse.parsed("token.balance", lambda: _parse.integer(raw))

    async def total_supply(self) -> int:
        raw = await self._client.query(NAME, "total_supply")
        return _parse.parsed("token.total_supply", lambda: _parse.integer(raw))

    async def issuers(self) -> list[bytes]:
        return _addresses(await self._client.query(NAME, "issuers"))

    async def transfer(
        self,
        signer: Signer,
        to: bytes | str,
        amount: int,
        *,
        endorsers: Sequence[Signer] = (),
        timeout: float | None = None,
        gas_limit: int = TOKEN_GAS_LIMIT,
    ) -> Receipt:
        args = {"to": to_address(to, "to"), "amount": amount}
        return await self._send(signer, "transfer", args, endorsers, timeout, gas_limit)

    async def mint(
        self,
        signer: Signer,
        to: bytes | str,
        amount: int,
        *,
        endorsers: Sequence[Signer] = (),
        timeout: float | None = None,
        gas_limit: int = TOKEN_GAS_LIMIT,
    ) -> Receipt:
        args = {"to": to_address(to, "to"), "amount": amount}
        return await self._send(signer, "mint", args, endorsers, timeout, gas_limit)


def bind(client: Any) -> Token:
    """The helper a :class:`~citychain.sdk.Client` carries as ``client.token``."""
    return Token(client)


def bind_async(client: Any) -> AsyncToken:
    """The helper an :class:`~citychain.sdk.AsyncClient` carries as ``client.token``."""
    return AsyncToken(client)


__all__ = ["AsyncToken", "Token", "balance_key", "bind", "bind_async"]
