"""``client.toy``: write and read notes."""

from __future__ import annotations

from typing import Any

from citychain.services.toy.shapes import NAME

from citychain.crypto import Signer
from citychain.sdk._services import ServiceClient, committed
from citychain.types import Receipt
from citychain.types.address import to_address


class ToyHelper:
    def __init__(self, client: ServiceClient) -> None:
        self._client = client

    def write(self, signer: Signer, text: str) -> Receipt:
        receipt = self._client._send_committed(
            signer, NAME, "write", {"text": text}, endorsers=(), timeout=None, gas_limit=100_000
        )
        return committed(NAME, "write", receipt)

    def read(self, owner: bytes | str) -> Any:
        return self._client.query(NAME, "read", owner=to_address(owner, "owner"))


def bind(client: Any) -> ToyHelper:
    return ToyHelper(client)


def bind_async(client: Any) -> Any:
    return None  # the toy has no awaited helper


__all__ = ["ToyHelper", "bind", "bind_async"]
