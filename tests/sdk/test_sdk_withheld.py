"""Private calls in public answers: a transaction whose method its contract declares private
(``private_methods``: a data request's purpose, the people a dataset version is about...) is
shown whole only to a signed read by its sender, an endorser or a member in good standing;
anyone else gets its hash, contract, method and Merkle leaf, and the block still checks
against its header.

Over the fake node (tests/api/fake_node.py) on a real socket, where token transfers play the
private call and ``members`` the accounts ``gov.member`` calls in good standing; the real
node's table of private calls and its event stream are tested in tests/e2e/test_e2e_data.py.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import httpx
import pytest
from sdk_helpers import FakeNode, seeded_signer, serving

from citychain.api import create_app
from citychain.crypto import Signer
from citychain.errors import CitychainError, ErrorCode, InvalidInput
from citychain.proof import merkle
from citychain.sdk import (
    AsyncClient,
    Client,
    SignedRequests,
    WithheldTx,
    _events,
    _parse,
    sign_request,
)
from citychain.sdk._events import signed_headers
from citychain.types import Transaction

CAROL = seeded_signer(102)  # a member in good standing
PRIVATE = ("token", "transfer")


@pytest.fixture
def node(alice: Signer) -> FakeNode:
    return FakeNode(
        genesis_balances={alice.address: 1_000},
        private_calls={PRIVATE},
        members={CAROL.address},
    )


@pytest.fixture
def url(node: FakeNode) -> Iterator[str]:
    with serving(create_app(node)) as u:
        yield u


@pytest.fixture
def sent(node: FakeNode, url: str, alice: Signer, bob: Signer) -> Transaction:
    """Alice's private call, committed in block 1."""
    tx = node.make_tx(alice, "transfer", {"to": bob.address, "amount": 7})
    with Client(url) as c:
        c.submit(tx)
    assert node.latest_height() == 1
    return tx


def _get(url: str, path: str, reader: Signer | None = None) -> httpx.Response:
    auth = SignedRequests(reader) if reader is not None else None
    with httpx.Client(base_url=url, auth=auth) as h:
        return h.get(path)


def test_an_unsigned_read_gets_only_the_hash_contract_method_and_leaf(
    url: str, sent: Transaction, bob: Signer
) -> None:
    body = _get(url, f"/v1/txs/{sent.hash.hex()}")
    assert body.status_code == 200
    d = body.json()
    assert d["status"] == "committed" and d["height"] == 1 and d["receipt"] is None
    assert d["tx"] == {
        "hash": sent.hash.hex(),
        "contract": "token",
        "method": "transfer",
        "leaf": merkle.leaf_hash(sent.encode()).hex(),
        "withheld": True,
    }
    block = _get(url, "/v1/blocks/1")
    assert block.json()["txs"] == [d["tx"]]
    for answer in (body, block):  # neither the sender's key, the arguments nor the events
        assert sent.sender.hex() not in answer.text
        assert bob.address.hex() not in answer.text
        assert "amount" not in answer.text


@pytest.mark.parametrize("who", ["sender", "member"])
def test_the_sender_and_a_member_read_it_whole(
    url: str, sent: Transaction, alice: Signer, who: str
) -> None:
    reader = alice if who == "sender" else CAROL
    d = _get(url, f"/v1/txs/{sent.hash.hex()}", reader).json()
    assert d["tx"] == sent.to_json()
    assert d["receipt"]["code"] == "ok"
    assert _get(url, "/v1/blocks/1", reader).json()["txs"] == [sent.to_json()]


def test_another_signed_reader_is_still_withheld(url: str, sent: Transaction, bob: Signer) -> None:
    """Bob is named in the call's arguments but neither signed it nor is a member."""
    d = _get(url, f"/v1/txs/{sent.hash.hex()}", bob).json()
    assert d["tx"]["withheld"] is True and d["receipt"] is None


def test_a_signature_that_does_not_verify_is_refused_not_ignored(
    url: str, sent: Transaction, alice: Signer
) -> None:
    request = httpx.Request("GET", f"{url}/v1/txs/{sent.hash.hex()}")
    sign_request(request, alice)
    request.headers["signature"] = request.headers["signature"].replace(":", ":AAAA", 1)
    with httpx.Client() as h:
        r = h.send(request)
    assert r.status_code == 401
    assert r.json()["code"] == "signature_invalid"


def test_public_calls_are_shown_to_anyone(url: str, node: FakeNode, alice: Signer) -> None:
    node.private_calls.clear()
    tx = node.make_tx(alice, "transfer", {"to": CAROL.address, "amount": 1})
    with Client(url) as c:
        c.submit(tx)
    assert _get(url, f"/v1/txs/{tx.hash.hex()}").json()["tx"] == tx.to_json()


def test_the_sdk_checks_a_block_with_withheld_calls_against_its_header(
    url: str, sent: Transaction
) -> None:
    with Client(url) as c:
        info = c.block(1)
        assert info.withheld == ((0, WithheldTx.of(sent)),) and info.block.txs == ()
        assert info.entries() == [WithheldTx.of(sent)]
        whole = c.block(1, signer=CAROL)
        assert whole.withheld == () and whole.block.txs == (sent,)
    raw = _get(url, "/v1/blocks/1").json()
    assert _parse.block_info(raw).to_json() == raw  # what the SDK holds renders as it came
    raw["txs"][0]["leaf"] = "00" * 32  # a node lying about the leaf
    with pytest.raises(CitychainError, match="tx_root"):
        _parse.parsed("block", lambda: _parse.block_info(raw))


def test_send_reads_its_own_private_receipt_and_others_are_told_how(
    url: str, alice: Signer, bob: Signer
) -> None:
    with Client(url) as c:
        receipt = c.send(alice, "token", "transfer", {"to": bob.address, "amount": 3})
        assert receipt.ok
        info = c.tx(receipt.tx_hash)
        assert info.tx is None and info.withheld is not None and info.receipt is None
        with pytest.raises(InvalidInput) as refused:
            c.wait_for_commit(receipt.tx_hash, 5)
        assert refused.value.code == ErrorCode.NOT_AUTHORIZED
        assert "token.transfer" in refused.value.message and "signer=" in refused.value.message
        with pytest.raises(InvalidInput, match="is not its sender"):
            c.wait_for_commit(receipt.tx_hash, 5, signer=bob)
        assert c.wait_for_commit(receipt.tx_hash, 5, signer=alice) == receipt


def test_the_async_client_reads_private_calls_as_the_blocking_one(
    url: str, alice: Signer, bob: Signer
) -> None:
    async def run() -> None:
        async with AsyncClient(url) as c:
            receipt = await c.send(alice, "token", "transfer", {"to": bob.address, "amount": 4})
            assert receipt.ok
            info = await c.tx(receipt.tx_hash)
            assert info.tx is None and info.withheld is not None
            whole = await c.tx(receipt.tx_hash, signer=CAROL)
            assert whole.tx is not None and whole.tx.args["amount"] == 4
            block = await c.block(info.height)
            assert [w.hash for _, w in block.withheld] == [receipt.tx_hash]
            assert (await c.block(info.height, signer=alice)).withheld == ()
            with pytest.raises(InvalidInput, match="private call"):
                await c.wait_for_commit(receipt.tx_hash, 5)

    asyncio.run(run())


def test_events_of_a_private_call_go_only_to_subscribers_that_may_read_it(
    url: str, node: FakeNode, alice: Signer, bob: Signer
) -> None:
    with Client(url) as c, contextlib.ExitStack() as stack:
        anon, member, sender, other = (
            stack.enter_context(c.subscribe("token", signer=s)) for s in (None, CAROL, alice, bob)
        )
        private = node.make_tx(alice, "transfer", {"to": bob.address, "amount": 5})
        c.submit(private)
        node.private_calls.clear()
        public = node.make_tx(alice, "transfer", {"to": bob.address, "amount": 6})
        c.submit(public)
        assert next(member).tx_hash == private.hash and next(member).tx_hash == public.hash
        assert next(sender).tx_hash == private.hash
        assert next(anon).tx_hash == public.hash  # the private call's event never came
        assert next(other).tx_hash == public.hash


def test_a_subscribers_membership_is_asked_at_each_private_call_not_once(
    url: str, node: FakeNode, alice: Signer, bob: Signer
) -> None:
    """Governance removes Carol while her stream is open: the next private call between
    others does not reach her; Bob, admitted meanwhile, gets it without reconnecting."""
    with Client(url) as c, contextlib.ExitStack() as stack:
        carol, bobs = (stack.enter_context(c.subscribe("token", signer=s)) for s in (CAROL, bob))
        first = node.make_tx(alice, "transfer", {"to": CAROL.address, "amount": 1})
        c.submit(first)
        assert next(carol).tx_hash == first.hash
        node.members.discard(CAROL.address)
        node.members.add(bob.address)
        second = node.make_tx(alice, "transfer", {"to": CAROL.address, "amount": 2})
        c.submit(second)
        assert next(bobs).tx_hash == second.hash
        node.private_calls.clear()
        public = node.make_tx(alice, "transfer", {"to": CAROL.address, "amount": 3})
        c.submit(public)
        assert next(carol).tx_hash == public.hash  # the second private call never came
        assert next(bobs).tx_hash == public.hash


def test_a_subscription_whose_signature_does_not_verify_is_refused_with_the_reason(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def tampered(u: str, signer: Signer | None) -> dict[str, str]:
        headers = signed_headers(u, signer)
        headers["signature"] = headers["signature"].replace(":", ":AAAA", 1)
        return headers

    monkeypatch.setattr(_events, "signed_headers", tampered)
    with Client(url) as c, pytest.raises(CitychainError) as refused:
        c.subscribe("token", signer=CAROL)
    assert refused.value.code == ErrorCode.SIGNATURE_INVALID
    assert "cannot open event stream" in refused.value.message
