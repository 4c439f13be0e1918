"""Event subscriptions over a real WebSocket (the API served by uvicorn on a local port)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from sdk_helpers import FakeNode

from citychain.crypto import Signer
from citychain.errors import ErrorCode, InvalidInput, Unavailable
from citychain.sdk import AsyncClient, Client, CommittedEvent


def _wait_for(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_subscribe_receives_filtered_events(
    served: str, node: FakeNode, alice: Signer, bob: Signer
) -> None:
    with Client(served) as c, c.subscribe(contract="token", type="transfer") as events:
        _wait_for(lambda: len(node.streams) == 1)
        c.send(alice, "token", "mint", {"to": alice.address, "amount": 1})  # filtered out
        receipt = c.send(alice, "token", "transfer", {"to": bob.address, "amount": 2})
        event = next(events)
    assert isinstance(event, CommittedEvent)
    assert event.tx_hash == receipt.tx_hash and event.height == 2 and event.tx_index == 0
    assert event.event.type == "transfer"
    assert event.event.attributes == {"from": alice.address, "to": bob.address, "amount": 2}
    _wait_for(lambda: not node.streams)  # closing the subscription released it on the node


def test_subscribe_from_a_height_resumes_without_a_gap(
    served: str, node: FakeNode, alice: Signer, bob: Signer
) -> None:
    """An indexer that stopped at a height subscribes again from it: the past blocks'
    events first, then the live ones, none missed and none twice."""
    with Client(served) as c:
        sent = [
            c.send(alice, "token", "transfer", {"to": bob.address, "amount": a}) for a in (1, 2)
        ]
        start = c.tx(sent[0].tx_hash).height
        assert start is not None
        with c.subscribe("token", "transfer", from_height=start) as events:
            past = [next(events), next(events)]
            sent.append(c.send(alice, "token", "transfer", {"to": bob.address, "amount": 3}))
            live = next(events)
    assert [e.tx_hash for e in [*past, live]] == [r.tx_hash for r in sent]
    assert [e.event.attributes["amount"] for e in [*past, live]] == [1, 2, 3]


def test_a_stream_the_node_ends_raises_its_reason(served: str, node: FakeNode) -> None:
    with Client(served) as c, c.subscribe() as events:
        _wait_for(lambda: len(node.streams) == 1)
        (stream,) = node.streams
        stream.loop.call_soon_threadsafe(
            stream.close, "subscriber fell more than 100 events behind"
        )
        with pytest.raises(Unavailable, match="fell more than 100 events behind") as info:
            next(events)
    assert info.value.code == ErrorCode.UNAVAILABLE


def test_bad_filters_raise_the_node_error(served: str) -> None:
    with (
        Client(served) as c,
        c.subscribe(contract="x" * 65) as events,
        pytest.raises(InvalidInput) as info,
    ):
        next(events)
    assert info.value.code == ErrorCode.BAD_ARGUMENTS


def test_no_node_is_unavailable() -> None:
    with (
        Client("http://127.0.0.1:9", timeout=2) as c,
        pytest.raises(Unavailable, match="cannot open"),
    ):
        c.subscribe()


def test_async_subscribe(served: str, node: FakeNode, alice: Signer) -> None:
    async def main() -> CommittedEvent:
        async with AsyncClient(served) as c, c.subscribe(type="mint") as events:
            while not node.streams:
                await asyncio.sleep(0.01)

            # Submit from another thread's client so this loop keeps reading.
            def mint() -> None:
                with Client(served) as other:
                    other.send(alice, "token", "mint", {"to": alice.address, "amount": 4})

            threading.Thread(target=mint).start()
            async for event in events:
                return event
        raise AssertionError("stream ended")

    event = asyncio.run(main())
    assert event.event.type == "mint" and event.event.attributes["amount"] == 4


def test_a_subscription_knows_how_far_it_got_without_a_matching_event(
    served: str, node: FakeNode, alice: Signer, bob: Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader of rare events notes ``position`` (here from another thread, while the
    iteration waits) and would go on from ``position + 1``: the blocks between its events
    are not read back again."""
    from citychain.api.routes import events as events_route

    monkeypatch.setattr(events_route, "PROGRESS_EVERY", 0.05)
    with Client(served) as c:
        start = c.status().height + 1
        with c.subscribe("token", "mint", from_height=start) as events:
            assert events.position == start - 1  # nothing received yet
            got: list[CommittedEvent] = []
            reader = threading.Thread(target=lambda: got.append(next(events)))
            reader.start()
            sent = c.send(alice, "token", "transfer", {"to": bob.address, "amount": 1})
            passed = c.tx(sent.tx_hash).height
            assert passed is not None and passed >= start
            _wait_for(lambda: events.position == passed)
            minted = c.send(alice, "token", "mint", {"to": alice.address, "amount": 2})
            reader.join(5)
            assert [e.tx_hash for e in got] == [minted.tx_hash]
            assert events.position == got[0].height - 1 == passed  # its block's others may follow
