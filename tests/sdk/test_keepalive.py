"""The SDK drops an idle connection before the node would: a request is never sent on a
connection the node is closing (a POST that meets that race fails with ReadError and is not
retried)."""

from __future__ import annotations

from citychain.node.config import ApiConfig
from citychain.sdk import AsyncClient, Client
from citychain.sdk._client import KEEPALIVE_EXPIRY_S


def test_the_clients_keep_alive_ends_before_the_nodes() -> None:
    assert 0 < KEEPALIVE_EXPIRY_S * 1000 <= ApiConfig().keepalive_timeout_ms / 2
    with Client("http://127.0.0.1:9") as client:
        pool = client._http._transport._pool  # type: ignore[attr-defined]
        assert pool._keepalive_expiry == KEEPALIVE_EXPIRY_S
    aclient = AsyncClient("http://127.0.0.1:9")
    assert aclient._http._transport._pool._keepalive_expiry == KEEPALIVE_EXPIRY_S  # type: ignore[attr-defined]
