"""`bench transfers` whose deadline passes while it funds its senders says so, instead of
timing a load that never started and printing 0 transfers/s."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from citychain.bench.transfers import fund_senders
from citychain.crypto import Signer, get_suite
from citychain.errors import Unavailable


def test_a_deadline_passed_while_funding_is_said_in_words() -> None:
    issuer = Signer.generate(get_suite("ed25519"))

    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path == "/v1/txs":
            return httpx.Response(200, json={"results": [{"code": "ok"}] * 3})
        # A node that admits the mints and never commits them.
        return httpx.Response(200, json={"nonce": 7, "pending_nonce": 7})

    async def run() -> None:
        transport = httpx.MockTransport(answer)
        async with httpx.AsyncClient(base_url="http://node", transport=transport) as client:
            await fund_senders(
                client,
                issuer,
                chain_id="c",
                senders=3,
                batch=100,
                deadline=time.monotonic() + 0.2,
            )

    with pytest.raises(Unavailable) as caught:
        asyncio.run(run())
    assert caught.value.message == (
        "the benchmark's time ran out while its setup waited for funding mints (is the key an "
        "issuer?): 0 of 3 committed. The node commits them too slowly for the deadline: use "
        "fewer senders (--senders)"
    )
