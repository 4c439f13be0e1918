"""``WS /v1/events``: filtered committed events, and a stream that ends says why."""

from __future__ import annotations

import time

import pytest
from fake_node import FakeNode, TestClient
from starlette.websockets import WebSocketDisconnect

from citychain.api import create_app
from citychain.api import models as m
from citychain.crypto import Signer

CBOR = {"content-type": "application/cbor"}


def _send(client: TestClient, node: FakeNode, signer: Signer, method: str, amount: int) -> str:
    tx = node.make_tx(signer, method, {"to": signer.address, "amount": amount})
    assert client.post("/v1/tx", content=tx.encode(), headers=CBOR).status_code == 202
    return tx.hash.hex()


def test_events_are_filtered_and_shaped(client: TestClient, node: FakeNode, alice: Signer) -> None:
    with client.websocket_connect("/v1/events?contract=token&type=mint") as ws:
        _send(client, node, alice, "transfer", 1)  # a transfer event: filtered out
        h = _send(client, node, alice, "mint", 2)
        msg = m.EventMessage.model_validate(ws.receive_json())
    assert msg.tx_hash == h
    assert msg.height == 2 and msg.tx_index == 0
    assert msg.event.type == "mint"
    assert msg.event.attributes == {
        "issuer": {"hex": alice.address.hex()},
        "to": {"hex": alice.address.hex()},
        "amount": 2,
    }


def test_unfiltered_stream_sees_every_event_in_order(
    client: TestClient, node: FakeNode, alice: Signer
) -> None:
    with client.websocket_connect("/v1/events") as ws:
        _send(client, node, alice, "transfer", 1)
        _send(client, node, alice, "mint", 2)
        types = [ws.receive_json()["event"]["type"] for _ in range(2)]
    assert types == ["transfer", "mint"]


def _wait_for(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


@pytest.mark.parametrize("query", ["", "?progress=true"])
def test_a_stream_closed_by_the_node_ends_with_its_reason(
    client: TestClient, node: FakeNode, query: str
) -> None:
    with client.websocket_connect("/v1/events" + query) as ws:
        _wait_for(lambda: len(node.streams) == 1)
        (stream,) = node.streams
        stream.loop.call_soon_threadsafe(
            stream.close, "subscriber fell more than 100 events behind"
        )
        closed = m.ClosedMessage.model_validate(ws.receive_json())
        assert closed.code == "unavailable"
        assert "fell more than 100 events behind" in closed.reason
        with pytest.raises(WebSocketDisconnect) as info:
            ws.receive_json()
    assert info.value.code == 1013


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ("?bogus=1", "unknown query parameter 'bogus'"),
        ("?contract=" + "c" * 65, "contract"),
        ("?from_height=0", "from_height must be a block height (1, 2, ...), got '0'"),
        ("?from_height=-1", "got '-1'"),
        ("?from_height=1e3", "got '1e3'"),
        ("?progress=yes", "progress must be true or false, got 'yes'"),
    ],
)
def test_bad_filters_are_refused_with_a_closed_message(
    client: TestClient, node: FakeNode, query: str, fragment: str
) -> None:
    with client.websocket_connect("/v1/events" + query) as ws:
        closed = ws.receive_json()
        assert closed["type"] == "closed" and closed["code"] == "bad_arguments"
        assert fragment in closed["reason"]
        with pytest.raises(WebSocketDisconnect) as info:
            ws.receive_json()
    assert info.value.code == 1008
    assert not node.streams


def test_too_many_subscribers_is_unavailable() -> None:
    node = FakeNode(max_subscribers=0)
    with TestClient(create_app(node)) as c, c.websocket_connect("/v1/events") as ws:
        assert ws.receive_json() == {
            "type": "closed",
            "code": "unavailable",
            "reason": "too many subscribers",
        }


def test_disconnecting_releases_the_subscription(client: TestClient, node: FakeNode) -> None:
    with client.websocket_connect("/v1/events"):
        _wait_for(lambda: len(node.streams) == 1)
        (stream,) = node.streams
    _wait_for(lambda: not node.streams)
    assert stream.closed_reason is not None


def test_a_stream_from_a_past_height_reads_back_then_goes_on_live(
    client: TestClient, node: FakeNode, alice: Signer
) -> None:
    _send(client, node, alice, "transfer", 1)  # each send commits a block here
    first = _send(client, node, alice, "transfer", 2)
    second = _send(client, node, alice, "mint", 3)
    h = len(node.blocks) - 1  # first's block
    with client.websocket_connect(f"/v1/events?contract=token&from_height={h}") as ws:
        got = [ws.receive_json() for _ in range(2)]
        third = _send(client, node, alice, "transfer", 4)
        got.append(ws.receive_json())
    assert [(g["height"], g["tx_hash"]) for g in got] == [
        (h, first), (h + 1, second), (h + 2, third)
    ]  # fmt: skip


def test_a_stream_from_beyond_the_next_block_is_refused_with_its_code(
    client: TestClient, node: FakeNode
) -> None:
    beyond = len(node.blocks) + 2
    with client.websocket_connect(f"/v1/events?from_height={beyond}") as ws:
        closed = ws.receive_json()
    assert closed["type"] == "closed" and closed["code"] == "height_not_committed"
    assert f"from_height {beyond} is not a committed height" in closed["reason"]


def test_a_progress_stream_says_how_far_it_got_between_rare_events(
    client: TestClient, node: FakeNode, alice: Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader of rare events (here mints) learns that the blocks of other events were
    passed, so after a restart it subscribes again from there, not from its last mint."""
    from citychain.api.routes import events as events_route

    monkeypatch.setattr(events_route, "PROGRESS_EVERY", 0.05)
    with client.websocket_connect("/v1/events?contract=token&type=mint&progress=true") as ws:
        _send(client, node, alice, "transfer", 1)  # no mint in this block
        passed = len(node.blocks)
        said = m.PositionMessage.model_validate(ws.receive_json())
        assert said.height == passed
        minted = _send(client, node, alice, "mint", 2)
        event = m.EventMessage.model_validate(ws.receive_json())
        assert (event.height, event.tx_hash) == (passed + 1, minted)
        _send(client, node, alice, "transfer", 3)
        assert ws.receive_json() == {"type": "position", "height": passed + 2}


def test_a_stream_says_nothing_of_its_position_unless_asked(
    client: TestClient, node: FakeNode, alice: Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from citychain.api.routes import events as events_route

    monkeypatch.setattr(events_route, "PROGRESS_EVERY", 0.01)
    with client.websocket_connect("/v1/events?contract=token&type=mint") as ws:
        _send(client, node, alice, "transfer", 1)
        time.sleep(0.2)  # five times the wait after which a progress stream speaks
        minted = _send(client, node, alice, "mint", 2)
        assert ws.receive_json()["tx_hash"] == minted  # the first message is the event
