"""The SDK against the real API app over the fake node, through httpx transport injection."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from sdk_helpers import CHAIN_ID, URL, FakeNode, bridge

from citychain.api import create_app
from citychain.crypto import Signer
from citychain.errors import (
    CitychainError,
    DecodeError,
    ErrorCode,
    ExecutionFailure,
    InternalError,
    InvalidInput,
    NotFound,
    TxRejected,
    Unavailable,
)
from citychain.sdk import AsyncClient, Client, error_from


def test_status_and_learning_the_chain(client: Client, node: FakeNode) -> None:
    assert client.chain_id is None
    s = client.status()
    assert s.chain_id == CHAIN_ID == client.chain_id
    assert s.height == 0 and s.crypto_suite == "ed25519"
    assert s.validators.hash == node.validator_set.hash
    ok, details = client.health()
    assert ok and details["consensus"] == "fake"


def test_send_waits_for_the_receipt(client: Client, alice: Signer, bob: Signer) -> None:
    receipt = client.send(alice, "token", "transfer", {"to": bob.address, "amount": 40})
    assert receipt.ok and receipt.code == ErrorCode.OK
    assert receipt.events[0].attributes == {"from": alice.address, "to": bob.address, "amount": 40}
    assert client.balance(bob.address) == 40
    assert client.balance(alice.address.hex()) == 960
    assert client.account(alice.address).nonce == 1


def test_a_failed_call_is_a_receipt_not_an_exception(client: Client, bob: Signer) -> None:
    receipt = client.send(bob, "token", "transfer", {"to": bob.address, "amount": 5})
    assert not receipt.ok
    assert receipt.code == ErrorCode.INSUFFICIENT_FUNDS


def test_send_without_waiting_then_wait(client: Client, alice: Signer, bob: Signer) -> None:
    tx_hash = client.send(alice, "token", "mint", {"to": bob.address, "amount": 3}, wait=False)
    assert isinstance(tx_hash, bytes) and len(tx_hash) == 32
    receipt = client.wait_for_commit(tx_hash, timeout=5)
    assert receipt.tx_hash == tx_hash and receipt.ok
    info = client.tx(tx_hash)
    assert info.committed and info.height == 1 and info.index == 0
    assert info.tx.method == "mint" and info.tx.args == {"to": bob.address, "amount": 3}


def test_build_tx_counts_nonces_through_the_mempool(alice: Signer, bob: Signer) -> None:
    node = FakeNode(auto_commit=False, genesis_balances={alice.address: 10})
    with Client(URL, transport=bridge(create_app(node))) as c:
        first = c.build_tx(alice, "token", "transfer", {"to": bob.address, "amount": 1})
        c.submit(first)
        second = c.build_tx(alice, "token", "transfer", {"to": bob.address, "amount": 1})
        assert (first.nonce, second.nonce) == (0, 1)
        assert first.chain_id == CHAIN_ID
        assert c.tx(first.hash).status == "pending"
        with pytest.raises(Unavailable, match=r"not committed within 0\.2s") as info:
            c.wait_for_commit(first.hash, timeout=0.2)
        assert info.value.code == ErrorCode.UNAVAILABLE
        assert "last status: pending" in info.value.message
        node.commit_block()
        assert c.wait_for_commit(first.hash, timeout=2).ok


def test_submit_batch_results(client: Client, node: FakeNode, alice: Signer) -> None:
    good = node.make_tx(alice, "mint", {"to": alice.address, "amount": 1})
    results = client.submit_batch([good, b"junk", good.with_signature(bytes(64))])
    assert [r.code for r in results] == ["ok", "malformed", "bad_signature"]
    assert results[0].ok and results[0].tx_hash == good.hash
    assert results[1].tx_hash is None


def test_refusals_raise_with_the_node_code(client: Client, node: FakeNode, alice: Signer) -> None:
    tx = node.make_tx(alice, "mint", {"to": alice.address, "amount": 1})
    with pytest.raises(TxRejected) as info:
        client.submit(tx.with_signature(bytes(64)))
    assert info.value.code == ErrorCode.BAD_SIGNATURE
    client.submit(tx)
    with pytest.raises(TxRejected) as info:
        client.submit(tx)
    assert info.value.code == ErrorCode.DUPLICATE


def test_mempool_full_is_unavailable(alice: Signer) -> None:
    node = FakeNode(auto_commit=False, mempool_capacity=0)
    with Client(URL, transport=bridge(create_app(node))) as c, pytest.raises(Unavailable) as info:
        c.send(alice, "token", "mint", {"to": alice.address, "amount": 1})
    assert info.value.code == ErrorCode.MEMPOOL_FULL


def test_unknown_things_are_not_found(client: Client) -> None:
    with pytest.raises(NotFound) as info:
        client.tx(b"\x01" * 32)
    assert info.value.code == ErrorCode.NOT_FOUND
    with pytest.raises(NotFound) as info:
        client.block(5)
    assert info.value.code == ErrorCode.HEIGHT_NOT_COMMITTED


def test_bad_arguments_are_caught_before_the_network(client: Client) -> None:
    with pytest.raises(InvalidInput, match="must be 32 bytes"):
        client.tx(b"short")
    with pytest.raises(InvalidInput, match="must be hex digits"):
        client.account("not hex")


def test_blocks(client: Client, alice: Signer) -> None:
    client.send(alice, "token", "mint", {"to": alice.address, "amount": 1})
    client.send(alice, "token", "mint", {"to": alice.address, "amount": 2})
    latest = client.block()
    assert latest.height == 2
    first = client.block(1)
    assert latest.header.prev_hash == first.hash
    assert client.block_by_hash(latest.hash.hex()) == latest
    assert latest.commit.block_hash == latest.hash
    assert latest.block.txs[0].args["amount"] == 2


def test_query_round_trips_bytes_and_big_ints(client: Client, alice: Signer) -> None:
    value = {"b": b"\x00\xff", "n": 2**100, "l": [1, "x", {"k": b"\x01"}]}
    assert client.query("token", "echo", **value) == value
    assert client.query("token", "total_supply") == 1_000
    with pytest.raises(ExecutionFailure) as info:
        client.query("nosuch", "balance")
    assert info.value.code == ErrorCode.UNKNOWN_CONTRACT
    with pytest.raises(InvalidInput, match="floats"):
        client.query("token", "echo", x=1.5)


def test_the_client_refuses_a_node_of_another_chain(node: FakeNode, alice: Signer) -> None:
    with (
        Client(URL, chain_id="other-chain", transport=bridge(create_app(node))) as c,
        pytest.raises(CitychainError) as info,
    ):
        c.build_tx(alice, "token", "mint", {"to": alice.address, "amount": 1})
    assert info.value.code == ErrorCode.WRONG_CHAIN
    assert "fake-chain" in info.value.message


# -- answers that are not the API's --------------------------------------------------------------


def _client_answering(handler) -> Client:
    return Client(URL, transport=httpx.MockTransport(handler))


def test_network_failures_are_unavailable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(Unavailable, match=r"cannot reach node at http://node\.test"):
        _client_answering(refuse).status()

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(Unavailable, match="did not answer in time"):
        _client_answering(slow).status()


@pytest.mark.parametrize(
    ("status", "body", "exc", "fragment"),
    [
        (502, b"<html>Bad Gateway</html>", Unavailable, "HTTP 502"),
        (500, b"", InternalError, "HTTP 500"),
        (404, b"nope", NotFound, "HTTP 404"),
        (400, b'{"code": "brand_new_code", "message": "m"}', CitychainError, "brand_new_code"),
        (200, b"not json", DecodeError, "did not answer JSON"),
        (200, b'{"chain_id": 5}', DecodeError, "unexpected answer from the node: status"),
    ],
)
def test_foreign_answers_raise_citychain_errors(
    status: int, body: bytes, exc: type[Exception], fragment: str
) -> None:
    c = _client_answering(lambda request: httpx.Response(status, content=body))
    with pytest.raises(exc, match=fragment):
        c.status()


def test_error_codes_keep_their_class() -> None:
    assert isinstance(error_from("nonce_too_low", "m"), TxRejected)
    assert isinstance(error_from("height_pruned", "m"), NotFound)
    assert isinstance(error_from("mempool_full", "m"), Unavailable)
    assert isinstance(error_from("insufficient_funds", "m"), ExecutionFailure)
    e = error_from("bad_proof", "forged")
    assert e.code == ErrorCode.BAD_PROOF and e.message == "forged"


def test_a_tampered_block_answer_is_refused(node: FakeNode, alice: Signer) -> None:
    def swap_amount(request: httpx.Request, answer: httpx.Response) -> httpx.Response:
        if request.url.path.startswith("/v1/blocks/"):
            return httpx.Response(200, content=answer.content.replace(b'"amount":5', b'"amount":6'))
        return answer

    with Client(URL, transport=bridge(create_app(node), swap_amount)) as c:
        c.send(alice, "token", "mint", {"to": alice.address, "amount": 5})
        with pytest.raises(DecodeError, match="does not hash to its reported hash"):
            c.block(1)


# -- the asyncio client ----------------------------------------------------------------------------


def test_async_client(node: FakeNode, alice: Signer, bob: Signer) -> None:
    async def main() -> None:
        transport = httpx.ASGITransport(app=create_app(node))
        async with AsyncClient(URL, transport=transport) as c:
            receipt = await c.send(alice, "token", "transfer", {"to": bob.address, "amount": 7})
            assert receipt.ok
            assert await c.balance(bob.address) == 7
            latest = await c.block()
            assert latest.height == 1
            assert await c.block_by_hash(latest.hash) == latest
            assert (await c.health())[0] is True
            assert (await c.tx(receipt.tx_hash)).committed
            proven = await c.get_state(b"c/token/bal/" + bob.address)
            assert proven.verified and proven.decode() == 7
            results = await c.submit_batch([b"junk"])
            assert results[0].code == "malformed"

    asyncio.run(main())
