"""Switches on 127.0.0.1 over real TLS: a mesh, delivery, oversize frames, reconnects, queues."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import Counter
from pathlib import Path

import pytest
from p2p_net import (
    FAST,
    Inbox,
    Pki,
    addr,
    eventually,
    free_ports,
    lines,
    make_switch,
    run,
    stop_all,
)

from citychain.errors import ErrorCode, InvalidInput
from citychain.p2p.config import Limits


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return Pki(tmp_path)


def test_three_nodes_two_orgs_mesh(pki: Pki, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="citychain.p2p")
    names = ["alpha", "bravo", "charlie"]
    orgs = {"alpha": "water", "bravo": "water", "charlie": "roads"}

    async def main() -> None:
        ports = dict(zip(names, free_ports(3), strict=True))
        switches = {
            n: make_switch(
                pki, n, orgs[n], port=ports[n], peers=[addr(p, ports[p]) for p in names if p != n]
            )
            for n in names
        }
        inboxes = {n: Inbox().attach(sw, 1, 7) for n, sw in switches.items()}
        events: list[tuple[str, str]] = []
        for n, sw in switches.items():
            sw.on_peer_connected = lambda peer, n=n: events.append((n, peer))
        try:
            await asyncio.gather(*(sw.start() for sw in switches.values()))
            await eventually(
                lambda: all(len(sw.connected()) == 2 for sw in switches.values()), what="mesh"
            )
            # Every node's view settles on one connection per pair (duplicates resolved).
            await asyncio.sleep(0.3)
            assert all(len(sw.connected()) == 2 for sw in switches.values())

            a, b, c = (switches[n] for n in names)
            assert a.send("bravo", 1, b"a->b on 1")
            assert a.send("charlie", 7, b"a->c on 7")
            assert b.broadcast(1, b"b to all on 1") == 2
            assert c.broadcast(7, b"c to all but a, on 7", exclude="alpha") == 1
            assert not a.send("nobody", 1, b"x")
            expected = {
                "alpha": [("bravo", 1, b"b to all on 1")],
                "bravo": [("alpha", 1, b"a->b on 1"), ("charlie", 7, b"c to all but a, on 7")],
                "charlie": [("alpha", 7, b"a->c on 7"), ("bravo", 1, b"b to all on 1")],
            }
            want = sum(len(v) for v in expected.values())
            await eventually(lambda: sum(len(i.got) for i in inboxes.values()) >= want)
            await asyncio.sleep(0.1)  # anything delivered twice would show up now
            for n in names:
                assert sorted(inboxes[n].got) == sorted(expected[n]), n

            info = {p.name: p for p in a.peers()}
            assert set(info) == {"bravo", "charlie"}
            assert info["charlie"].connected and info["charlie"].org_id == "roads"
            assert info["bravo"].org_id == "water"
            assert info["charlie"].address == f"127.0.0.1:{ports['charlie']}"
            assert info["bravo"].msgs_sent == 1 and info["charlie"].msgs_sent == 1
            assert info["bravo"].msgs_received == 1 and info["charlie"].msgs_received == 0
            assert info["bravo"].bytes_sent == len(b"a->b on 1") + 5
            assert info["bravo"].direction in {"in", "out"}
            assert info["bravo"].since_ms is not None and info["bravo"].dropped == 0
            # Both ends agree on which connection they kept.
            for x, y in ((a, b), (a, c), (b, c)):
                dx = {p.name: p.direction for p in x.peers()}[y_name := names[[a, b, c].index(y)]]
                dy = {p.name: p.direction for p in y.peers()}[names[[a, b, c].index(x)]]
                assert {dx, dy} == {"in", "out"}, (y_name, dx, dy)
            # Each node saw each peer connect once: duplicates never flap the peer.
            assert sorted(Counter(events).values()) == [1] * 6
        finally:
            await stop_all(*switches.values())

    run(main())
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text


def test_oversize_frame_disconnects_only_that_peer(
    pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="citychain.p2p")

    async def main() -> None:
        limits = Limits(
            max_message_bytes=1000,
            dial_backoff_min_ms=FAST.dial_backoff_min_ms,
            dial_backoff_max_ms=FAST.dial_backoff_max_ms,
        )
        big = Limits(
            max_message_bytes=100_000, dial_backoff_min_ms=5_000, dial_backoff_max_ms=5_000
        )
        hub = make_switch(pki, "hub", "water", limits=limits)
        inbox = Inbox().attach(hub, 1)

        def broken(peer: str, payload: bytes) -> None:
            raise RuntimeError("a consumer bug")

        hub.add_channel(2, broken)
        await hub.start()
        good = make_switch(pki, "good", "roads", peers=[addr("hub", hub)], limits=limits)
        bad = make_switch(pki, "bad", "roads", peers=[addr("hub", hub)], limits=big)
        reasons: list[tuple[str, str]] = []
        hub.on_peer_disconnected = lambda p, r: reasons.append((p, r))
        try:
            await good.start()
            await bad.start()
            # both ends: the hub may list a peer before that peer has finished its side
            await eventually(
                lambda: (
                    hub.connected() == ["bad", "good"]
                    and bad.connected() == ["hub"]
                    and good.connected() == ["hub"]
                )
            )
            assert bad.send("hub", 1, b"x" * 5000)
            await eventually(lambda: "bad" not in hub.connected(), what="bad dropped")
            # A handler that raises is logged; the connection carries on.
            assert good.send("hub", 2, b"makes the handler raise")
            assert good.send("hub", 1, b"still fine")
            await eventually(lambda: ("good", 1, b"still fine") in inbox.got)
            assert hub.connected() == ["good"]
            assert reasons and reasons[0][0] == "bad"
            assert "message of 5000 bytes exceeds limit 1000" in reasons[0][1]
        finally:
            await stop_all(hub, good, bad)

    run(main())
    hub_lines = lines(caplog, "hub", logging.WARNING)
    assert any(
        "refused peer bad at" in m and "message of 5000 bytes exceeds limit 1000" in m
        for m in hub_lines
    ), hub_lines
    bad_lines = lines(caplog, "bad", logging.WARNING)
    assert any(
        "peer hub at" in m and "refused us" in m and "exceeds limit 1000" in m for m in bad_lines
    ), bad_lines
    assert not lines(caplog, "good", logging.WARNING)
    assert "the handler of channel 2 failed on a frame from good" in lines(caplog, "hub")


def test_send_refuses_a_payload_over_our_own_limit(pki: Pki) -> None:
    sw = make_switch(pki, "solo", "water", limits=Limits(max_message_bytes=10))
    with pytest.raises(InvalidInput) as err:
        sw.send("x", 1, b"x" * 11)
    assert err.value.code is ErrorCode.TOO_LARGE
    with pytest.raises(InvalidInput, match="channel 0"):
        sw.broadcast(0, b"")
    sw.add_channel(3, lambda p, b: None)
    with pytest.raises(InvalidInput, match="already has a handler"):
        sw.add_channel(3, lambda p, b: None)


def test_peer_that_goes_away_is_reconnected(pki: Pki, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="citychain.p2p")

    async def main() -> None:
        (port_b,) = free_ports(1)
        files_b = pki.node("bravo", "roads")
        a = make_switch(pki, "alpha", "water", peers=[addr("bravo", port_b)])
        inbox_a = Inbox().attach(a, 1)
        b = make_switch(pki, "bravo", "roads", port=port_b, files=files_b)
        down: list[str] = []
        a.on_peer_disconnected = lambda p, r: down.append(r)
        await a.start()
        await b.start()
        try:
            await eventually(lambda: a.connected() == ["bravo"])
            await b.stop()
            await eventually(lambda: a.connected() == [], what="alpha notices")
            assert down == ["closed by the peer"]
            assert not a.send("bravo", 1, b"nobody home")
            await eventually(
                lambda: (a.peers()[0].last_error or "").startswith("no such peer"),
                what="dial failures recorded",
            )
            b = make_switch(pki, "bravo", "roads", port=port_b, files=files_b)
            inbox_b = Inbox().attach(b, 1)
            await b.start()
            await eventually(lambda: a.connected() == ["bravo"], what="redial")
            await eventually(lambda: b.connected() == ["alpha"])
            assert a.send("bravo", 1, b"welcome back")
            assert b.send("alpha", 1, b"thanks")
            await eventually(lambda: inbox_b.got == [("alpha", 1, b"welcome back")])
            await eventually(lambda: inbox_a.got == [("bravo", 1, b"thanks")])
        finally:
            await stop_all(a, b)

    run(main())
    said = lines(caplog, "alpha")
    assert any(
        m.startswith("cannot connect to peer bravo: no such peer — nothing listens at 127.0.0.1:")
        for m in said
    ), said
    assert any(m.startswith("disconnected from peer bravo at") for m in said)


def test_full_send_queue_returns_false(pki: Pki) -> None:
    async def main() -> None:
        # The receiver reads at 2 KiB/s, so the sender's TCP and TLS buffers fill up.
        slow = make_switch(
            pki, "slow", "water", limits=Limits(recv_bytes_per_s=2048, recv_msgs_per_s=10)
        )
        slow.add_channel(1, lambda p, b: None)
        await slow.start()
        fast = make_switch(
            pki,
            "fast",
            "roads",
            peers=[addr("slow", slow)],
            limits=Limits(send_queue=8, dial_backoff_min_ms=20),
        )
        try:
            await fast.start()
            await eventually(lambda: fast.connected() == ["slow"])
            payload = b"z" * 256 * 1024
            results = []
            for _ in range(200):
                results.append(fast.send("slow", 1, payload))
                assert fast.peers()[0].queued <= 8
                await asyncio.sleep(0)
            assert results[0] is True
            assert results.count(False) > 100
            info = fast.peers()[0]
            assert info.dropped == results.count(False)
            assert info.queued <= 8
            assert fast.connected() == ["slow"]  # throttled, not disconnected
        finally:
            await stop_all(fast, slow)

    run(main())


def test_stop_lets_queued_frames_leave_first(pki: Pki) -> None:
    """A node stopping right after accepting work still delivers what it queued."""

    async def main() -> None:
        pa, pb = free_ports(2)
        a = make_switch(pki, "alpha", "water", port=pa, peers=[addr("bravo", pb)])
        b = make_switch(pki, "bravo", "water", port=pb, peers=[addr("alpha", pa)])
        inbox = Inbox().attach(b, 1)
        try:
            await asyncio.gather(a.start(), b.start())
            await eventually(lambda: a.connected() == ["bravo"], what="connected")
            payload = b"x" * 60_000
            sent = sum(a.send("bravo", 1, payload) for _ in range(200))
            await a.stop()
            await eventually(lambda: len(inbox.got) == sent, what="all queued frames arrive")
        finally:
            await stop_all(a, b)

    run(main())


def test_a_connection_arriving_as_the_node_stops_is_closed(pki: Pki) -> None:
    """An inbound connection whose handshake had not begun when stop() came is closed too.

    stop() cancels the handshake task before its first step, when none of the handshake's
    ``finally`` clauses can run: the socket used to stay open until garbage collection (a
    ResourceWarning, and a peer left waiting).
    """

    async def main() -> None:
        node = make_switch(pki, "alpha", "water")
        await node.start()
        try:
            client, accepted = socket.socketpair()
            node._on_inbound(accepted, "test")  # what the listener does for a new connection
        finally:
            await node.stop()  # before the handshake task has run a step
        assert accepted.fileno() == -1  # closed
        client.setblocking(False)
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(5):
            assert await loop.sock_recv(client, 1) == b""  # the peer sees the close
        client.close()

    run(main())


def test_a_connection_accepted_just_before_the_node_stops_is_closed(pki: Pki) -> None:
    """A connection that reached the listener in the loop's last turn before stop() is
    closed, not left open (asyncio 3.11's own server once made its transport only after it
    closed and never closed the socket; the switch now accepts on its own listener, and
    stop() stops accepting before it closes it)."""

    async def main() -> None:
        node = make_switch(pki, "alpha", "water")
        await node.start()
        loop = asyncio.get_running_loop()
        client = socket.socket()
        try:
            client.connect(("127.0.0.1", node.listen_port))  # blocking: the loop stands still
            client.setblocking(False)
            await asyncio.sleep(0)  # this turn: this task, then the listener accepts
            await asyncio.sleep(0)  # the next: this task, then the accepted connection's
        finally:
            await node.stop()  # between the two
        try:
            async with asyncio.timeout(5):
                assert await loop.sock_recv(client, 1) == b""  # closed, not left open
        except ConnectionResetError:
            pass  # closed at once (an abort): as good
        finally:
            client.close()

    run(main())
