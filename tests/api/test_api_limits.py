"""What any API client can hold (issue 15, part 1), in process: ``/v1/events`` subscriptions
capped in all and per address (a 503 saying why), the ``[api]`` limits refused in words when
they cannot work, and the descriptor budget refusing a start that leaves the API nothing.
The flood of half-sent requests against a real node is in tests/e2e/test_e2e_api_limits.py."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import socket
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fake_node import FakeNode, TestClient
from prometheus_client import CollectorRegistry
from starlette.responses import Response
from starlette.testclient import WebSocketDenialResponse

from citychain.api import create_app, limits
from citychain.api._kept import Kept, KeptAnswer, answer_of
from citychain.api.limits import (
    Acceptor,
    ConnectionSlots,
    GuardedListener,
    Refusals,
    RequestLimits,
    SubscriberSlots,
    guarded_protocol,
    refusal_bytes,
)
from citychain.api.server import _Server, event_loop
from citychain.errors import ConfigError, ErrorCode
from citychain.node.config import ApiConfig, NodeConfig


def _denied(client: TestClient) -> tuple[int, dict[str, str]]:
    with pytest.raises(WebSocketDenialResponse) as denied, client.websocket_connect("/v1/events"):
        pass
    return denied.value.status_code, denied.value.json()


def test_subscribers_are_capped_per_address_and_in_all(node: FakeNode) -> None:
    registry = CollectorRegistry()
    app = create_app(node)
    app.state.subscribers = SubscriberSlots(total=2, per_address=1, refusals=Refusals(registry))
    one = TestClient(app, client=("10.0.0.1", 1000))
    other = TestClient(app, client=("10.0.0.2", 1000))
    third = TestClient(app, client=("10.0.0.3", 1000))
    with one.websocket_connect("/v1/events"):
        status, body = _denied(one)
        assert status == 503
        assert body["code"] == "unavailable"
        assert "10.0.0.1 already holds 1 event subscriptions" in body["message"]
        with other.websocket_connect("/v1/events"):
            status, body = _denied(third)
            assert (status, body["code"]) == (503, "unavailable")
            assert "most event subscriptions (2)" in body["message"]
    # Closed subscriptions give their slots back.
    with third.websocket_connect("/v1/events"):
        pass
    assert app.state.subscribers.open == 0
    for reason, count in (("subscribers_per_address", 1), ("subscribers", 1)):
        got = registry.get_sample_value("citychain_api_refused_total", {"reason": reason})
        assert got == count, reason


def test_connection_slots_count_per_address_and_in_all() -> None:
    slots = ConnectionSlots(total=3, per_address=2)
    assert slots.take("a") is None and slots.take("a") is None
    assert slots.take("a") == "connections_per_address"
    assert slots.take("b") is None
    assert slots.take("c") == "connections"
    slots.give_back("a")
    assert slots.take("c") is None and slots.of("a") == 1


def test_a_refusal_is_a_whole_http_answer_with_code_and_message() -> None:
    raw = refusal_bytes(ErrorCode.UNAVAILABLE, "busy")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503 ") and b"connection: close" in head
    assert body == b'{"code":"unavailable","message":"busy"}'
    assert refusal_bytes(ErrorCode.TOO_LARGE, "long").startswith(b"HTTP/1.1 413 ")


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("header_timeout_ms = 0", "header_timeout_ms must be a whole number, 1 or more"),
        (
            "max_connections_per_address = 0",
            "max_connections_per_address must be a whole number, 1 or more",
        ),
        ("max_url_bytes = 20000", "max_url_bytes must be a whole number, 256 to 8,000 (a Web"),
        ('max_url_bytes = "8k"', "max_url_bytes must be a whole number, 256 to 8,000 (a Web"),
        ("max_header_bytes = 10", "max_header_bytes must be a whole number, 1,024 or more"),
        ("max_subscribers = 0", "max_subscribers must be a whole number, 1 or more"),
        ("port = 70000", "port must be a whole number, 0 to 65,535, got 70000"),
    ],
)
def test_unworkable_api_limits_are_refused_in_words(tmp_path: Path, line: str, words: str) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "node.toml").write_text(f"[api]\n{line}\n")
    with pytest.raises(ConfigError) as refused:
        NodeConfig.load(tmp_path)
    assert f"node.toml: [api] {words}" in refused.value.message


def test_api_limits_round_trip_through_node_toml(tmp_path: Path) -> None:
    config = NodeConfig(home=tmp_path, api=ApiConfig(header_timeout_ms=1234, max_subscribers=7))
    config.save()
    assert NodeConfig.load(tmp_path).api == config.api


def test_the_event_loop_is_chosen_in_node_toml_and_a_wrong_one_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "config").mkdir()
    toml = tmp_path / "config" / "node.toml"
    toml.write_text('[node]\nevent_loop = "asyncio"\n')
    assert NodeConfig.load(tmp_path).node.event_loop == "asyncio"
    assert event_loop("asyncio")[0] == "asyncio"
    toml.write_text('[node]\nevent_loop = "trio"\n')
    with pytest.raises(ConfigError) as refused:
        NodeConfig.load(tmp_path)
    assert "node.toml: [node] event_loop must be auto, uvloop or asyncio, got 'trio'" in (
        refused.value.message
    )
    # Where uvloop is missing, "auto" falls back to asyncio and "uvloop" refuses in words.
    monkeypatch.setitem(sys.modules, "uvloop", None)
    assert event_loop("auto")[0] == "asyncio"
    with pytest.raises(ConfigError) as missing:
        event_loop("uvloop")
    assert "uvloop is not installed" in missing.value.message


def test_descriptor_budget_keeps_the_reserve(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, int]] = []
    limit = [256, 4096]
    monkeypatch.setattr(resource, "getrlimit", lambda _which: tuple(limit))

    def setrlimit(_which: int, value: tuple[int, int]) -> None:
        calls.append(value)
        limit[0] = value[0]

    monkeypatch.setattr(resource, "setrlimit", setrlimit)
    monkeypatch.setattr(limits, "_open_descriptors", lambda: 50)
    cap, words = limits.descriptor_budget(ApiConfig(max_connections=10_000, fd_reserve=128))
    assert calls == [(4096, 4096)]  # the soft limit raised to the hard one
    assert cap == 4096 - 50 - 128
    assert "open-files limit 4096, 50 in use, 128 reserved" in words

    limit[:] = [200, 200]
    calls.clear()
    cap, _ = limits.descriptor_budget(ApiConfig(max_connections=20, fd_reserve=128))
    assert (cap, calls) == (20, [])
    with pytest.raises(ConfigError) as refused:
        limits.descriptor_budget(ApiConfig(fd_reserve=150))
    assert "only 0 are left for API clients" in refused.value.message
    assert "ulimit -n" in refused.value.message


# -- the request limits on a real uvicorn server --------------------------------------------
async def _exchange(port: int, payload: bytes, wait: float = 3.0) -> tuple[float, bytes]:
    """Send ``payload``; the seconds until the server closed and all it sent."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(payload)
    started = time.monotonic()
    got = await asyncio.wait_for(reader.read(), wait)
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()  # not left to be collected after its loop has ended
    return time.monotonic() - started, got


@contextlib.asynccontextmanager
async def _serving(
    app: Any,
    request_limits: RequestLimits,
    refusals: Refusals,
    *,
    per_address: int,
    kept: Kept | None = None,
    **config: Any,
) -> AsyncIterator[tuple[int, GuardedListener, uvicorn.Server]]:
    """``app`` served by uvicorn with the node's guarded listener and protocol on a free
    port: (the port, the listener, the server); stopped at the end."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    port = sock.getsockname()[1]
    listener = GuardedListener.adopt(sock, ConnectionSlots(8, per_address), refusals)
    protocol = guarded_protocol(request_limits, refusals, kept)
    # The node's own server: it serves the guarded listener through an Acceptor.
    server = _Server(
        uvicorn.Config(app, log_level="warning", lifespan="off", http=protocol, **config)
    )
    serving = asyncio.create_task(server.serve(sockets=[listener]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield port, listener, server
    finally:
        server.should_exit = True
        await serving


async def _answers(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int, wait: float
) -> bytes:
    """All the server sent until its ``n``th ``200`` answer (each read within ``wait``
    seconds); the connection closed then."""
    got = b""
    while got.count(b"HTTP/1.1 200") < n:
        got += await asyncio.wait_for(reader.read(65536), wait)
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return got


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_the_connection_cap_holds_on_either_event_loop(node: FakeNode, loop: str) -> None:
    """uvloop's own server would accept in C, past the cap; the node's server accepts through
    the guarded listener on either loop: connections over an address's share are answered
    503 and closed at once, and each one let in gives its slot back when it ends (asyncio
    closes the socket, uvloop detaches it), so the address may connect again."""
    name, new_loop = event_loop(loop)
    assert name.split()[0] == loop
    app = create_app(node)

    async def run() -> None:
        async with _serving(
            app, RequestLimits(5.0, 5.0, 300, 2048), Refusals(CollectorRegistry()), per_address=3
        ) as (port, listener, server):
            assert isinstance(server.servers[0], Acceptor)
            assert type(asyncio.get_running_loop()).__module__.split(".")[0] == loop
            conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(5)]
            answers = []
            for reader, _writer in conns:
                try:
                    answers.append(await asyncio.wait_for(reader.read(), 0.5))
                except TimeoutError:
                    answers.append(None)  # still open: let in
            assert answers[:3] == [None, None, None], answers
            for got in answers[3:]:
                assert got is not None and got.startswith(b"HTTP/1.1 503 "), got
                assert b'"code":"unavailable"' in got and b"already holds 3" in got, got
            assert listener.slots.of("127.0.0.1") == 3
            for _reader, writer in conns:
                writer.close()
            deadline = time.monotonic() + 3
            while listener.slots.open:
                assert time.monotonic() < deadline, "slots not given back"
                await asyncio.sleep(0.02)
            # The address may hold its three again, and they serve.
            again = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
            for reader, writer in again:
                writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                got = await asyncio.wait_for(reader.read(), 3)
                assert got.startswith(b"HTTP/1.1 200 "), got
                writer.close()
            deadline = time.monotonic() + 3
            while listener.slots.open:
                assert time.monotonic() < deadline, "slots not given back"
                await asyncio.sleep(0.02)

    with asyncio.Runner(loop_factory=new_loop) as runner:
        runner.run(run())


def test_a_kept_alive_connection_is_closed_only_after_a_whole_idle_timeout(
    node: FakeNode,
) -> None:
    """One keep-alive timer runs per connection (not one per request): a connection asking
    again and again, for longer than the timeout in all, is never closed between its
    requests; one left idle is closed once the timeout has passed since its last answer,
    whether the app or the protocol itself (a kept answer) gave it."""
    app = create_app(node)
    app.state.kept.keep(
        (b"/v1/kept", None),
        node.latest_height(),
        answer_of(200, [(b"content-length", b"2")], b"{}"),
    )

    async def run() -> None:
        async with _serving(
            app,
            RequestLimits(5.0, 5.0, 300, 2048),
            Refusals(CollectorRegistry()),
            per_address=4,
            kept=app.state.kept,
            timeout_keep_alive=0.5,
        ) as (port, _listener, _server):
            for target in (b"/health", b"/v1/kept"):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                started = time.monotonic()
                for _ in range(6):  # 6 x 0.2 s: more than twice the timeout, never idle for it
                    writer.write(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
                    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
                    assert head.startswith(b"HTTP/1.1 200 "), head
                    length = int(head.split(b"content-length: ")[1].split(b"\r\n")[0])
                    await reader.readexactly(length)
                    await asyncio.sleep(0.2)
                assert time.monotonic() - started > 1.0
                idle = time.monotonic() - 0.2  # the last answer's end, about
                rest = await asyncio.wait_for(reader.read(), 3)
                assert rest == b""  # closed by the node, with nothing more sent
                took = time.monotonic() - idle
                assert 0.45 < took < 1.2, (target, took)
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()  # not left to be collected after the loop ends

    asyncio.run(run())


def test_slow_requests_are_dropped_and_large_heads_refused(
    node: FakeNode, caplog: pytest.LogCaptureFixture
) -> None:
    registry = CollectorRegistry()
    refusals = Refusals(registry)

    async def run() -> None:
        async with _serving(
            create_app(node),
            RequestLimits(0.3, 0.3, 300, 2048),
            refusals,
            per_address=4,
            timeout_keep_alive=1,
        ) as (port, listener, _server):
            # A body that never arrives.
            took, got = await _exchange(
                port,
                b"POST /v1/tx HTTP/1.1\r\nHost: x\r\nContent-Type: application/cbor\r\n"
                b"Content-Length: 100\r\n\r\nabc",
            )
            assert 0.25 < took < 1.5, took
            assert got.startswith(b"HTTP/1.1 503 "), got
            assert b"the request body did not arrive within 0.3 s" in got
            # A kept-alive connection whose next request never finishes its headers.
            took, got = await _exchange(
                port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\n"
            )
            assert got.startswith(b"HTTP/1.1 200 "), got
            assert got.endswith(
                b'"message":"no complete request line and headers within 0.3 s; connection closed"}'
            )
            assert took < 1.0, took  # the header timeout, not keep-alive's 1 s
            # A head trickled in a line at a time after a first request: each read leaves it
            # incomplete, and the timer its first byte started is never pushed back.
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            await reader.readuntil(b"}}")  # the first answer, whole
            started = time.monotonic()
            writer.write(b"GET /health HTTP/1.1\r\n")
            got = b""
            for i in range(12):  # a line every 0.1 s until the node answers
                with contextlib.suppress(TimeoutError):
                    got = await asyncio.wait_for(reader.read(4096), 0.1)
                if got:
                    break
                writer.write(b"X-%d: y\r\n" % i)
            took = time.monotonic() - started
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            assert b"no complete request line and headers within 0.3 s" in got, got
            assert 0.25 < took < 0.9, took
            # A request target or headers over the limits.
            _, got = await _exchange(port, b"GET /health?" + b"a" * 400 + b" HTTP/1.1\r\n\r\n")
            assert got.startswith(b"HTTP/1.1 413 ") and b'"code":"too_large"' in got, got
            many = b"".join(b"X-%d: y\r\n" % i for i in range(150))
            _, got = await _exchange(port, b"GET /health HTTP/1.1\r\n" + many + b"\r\n")
            assert got.startswith(b"HTTP/1.1 413 ") and b'"code":"too_large"' in got, got
            # Every socket gave its slot back.
            await asyncio.sleep(0.05)
            assert listener.slots.open == 0

    with caplog.at_level(logging.WARNING):
        asyncio.run(run())
    assert "unhandled error" not in caplog.text, caplog.text
    assert "API client 127.0.0.1 dropped: the request body did not arrive" in caplog.text
    expected = {"body_timeout": 1, "header_timeout": 2, "url_too_long": 1, "headers_too_large": 1}
    for reason, times in expected.items():
        got = registry.get_sample_value("citychain_api_refused_total", {"reason": reason})
        assert got == times, reason


# -- kept answers given by the HTTP protocol itself (citychain.api._kept) ----------------------
def test_a_request_the_protocol_leaves_to_the_app_reaches_it_whole() -> None:
    """The protocol begins a request's ASGI scope only once it knows the app answers it (a
    kept answer needs none): the app still gets every part of it, headers in order (a
    repeated one twice, names lowercased), method, path (percent-decoded) and raw path, query
    string, HTTP version, client, the app's state, an ``Expect: 100-continue`` body; and
    requests pipelined behind a kept answer or one another are each their own (one behind a
    request the app is answering is the app's too)."""
    seen: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        seen.append({**scope, "body": body})
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    kept = Kept(lambda: 1)
    kept.keep((b"/kept", None), 1, answer_of(200, [(b"content-length", b"1")], b"k"))

    async def run() -> list[bytes]:
        async with _serving(
            app, RequestLimits(2.0, 2.0, 300, 2048), Refusals(CollectorRegistry()),
            per_address=4, kept=kept,
        ) as (port, _listener, _server):  # fmt: skip
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(
                b"GET /kept HTTP/1.1\r\nHost: x\r\n\r\n"
                b"GET /a%20b/c?x=1&y=%20 HTTP/1.1\r\nHost: x\r\nX-Two: 1\r\nx-two: 2\r\n\r\n"
                b"GET /kept HTTP/1.1\r\nHost: x\r\n\r\n"
                b"POST /p HTTP/1.1\r\nHost: y\r\nExpect: 100-continue\r\n"
                b"Content-Length: 3\r\n\r\nabc"
            )
            got = await _answers(reader, writer, 4, 3)
            return got.split(b"HTTP/1.1 200")[1:]

    answers = asyncio.run(run())
    # the second /kept arrives while the app answers the request before it: the app's too
    assert [a.endswith(b"k") for a in answers] == [True, False, False, False]
    get, behind, post = seen
    assert (behind["path"], behind["headers"]) == ("/kept", [(b"host", b"x")])
    assert (get["method"], get["path"], get["raw_path"]) == ("GET", "/a b/c", b"/a%20b/c")
    assert get["query_string"] == b"x=1&y=%20" and get["http_version"] == "1.1"
    assert get["headers"] == [(b"host", b"x"), (b"x-two", b"1"), (b"x-two", b"2")]
    assert get["client"][0] == "127.0.0.1" and get["type"] == "http" and get["body"] == b""
    assert isinstance(get["state"], dict) and get["scheme"] == "http"
    assert (post["method"], post["path"], post["body"]) == ("POST", "/p", b"abc")
    assert (b"expect", b"100-continue") in post["headers"]


def test_a_body_in_many_reads_reaches_the_app_whole_in_order_and_as_bytes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The protocol keeps a body's pieces as they come (``_BodyPieces``) instead of uvicorn's
    bytearray: the app still gets bytes, every byte in order, whether it takes each piece as
    it comes (a 1 MiB body written in 64 KiB pieces, the reads apart), lets small pieces pile
    up while it sleeps (256 KiB in 4 KiB pieces: joined, reading paused at uvicorn's
    high-water mark, then resumed) or sleeps through 4 MiB written at once, and the next
    request on the connection starts with an empty body."""
    seen: list[tuple[bytes, set[type]]] = []
    held: list[limits._BodyPieces] = []

    class Counted(limits._BodyPieces):
        def __init__(self) -> None:
            super().__init__()
            held.append(self)

    monkeypatch.setattr(limits, "_BodyPieces", Counted)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        parts, kinds = [], set()
        if scope["path"] != "/piecewise":
            await asyncio.sleep(0.3)  # the pieces pile up meanwhile
        while True:
            message = await receive()
            kinds.add(type(message["body"]))
            parts.append(message["body"])
            if not message.get("more_body"):
                break
        seen.append((b"".join(parts), kinds))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    piecewise = bytes(range(256)) * 4096  # 1 MiB
    small = bytes(range(1, 256)) * 1028  # 257 KiB
    at_once = bytes(reversed(range(256))) * 16384  # 4 MiB

    async def trickle(writer: asyncio.StreamWriter, body: bytes, piece: int, pause: float) -> None:
        for at in range(0, len(body), piece):
            writer.write(body[at : at + piece])
            await writer.drain()
            await asyncio.sleep(pause)

    async def run() -> None:
        async with _serving(
            app, RequestLimits(5.0, 5.0, 300, 2048), Refusals(CollectorRegistry()),
            per_address=4,
        ) as (port, _listener, _server):  # fmt: skip
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"POST /piecewise HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                         % len(piecewise))  # fmt: skip
            await trickle(writer, piecewise, 65536, 0.002)
            writer.write(b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                         % len(small))  # fmt: skip
            await trickle(writer, small, 4096, 0.002)
            writer.write(b"POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                         % len(at_once) + at_once)  # fmt: skip
            writer.write(b"POST /empty HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
            await _answers(reader, writer, 4, 5)

    asyncio.run(run())
    assert [body for body, _ in seen] == [piecewise, small, at_once, b""]
    assert all(kinds == {bytes} for _, kinds in seen)
    # the pieces were held as they came (this uvicorn's bytearray was replaced), and small
    # ones piled up while the app slept
    assert held and max(len(h.pieces) for h in held) > 1


def test_body_pieces_give_a_lone_piece_uncopied_and_several_joined() -> None:
    pieces = limits._BodyPieces()
    assert (len(pieces), bytes(pieces)) == (0, b"")
    one = b"x" * 70000
    pieces.pieces.append(one)
    pieces.size += len(one)
    assert bytes(pieces) is one  # what uvicorn hands the app: the piece, not a copy
    pieces.pieces.append(b"yz")
    pieces.size += 2
    assert (len(pieces), bytes(pieces)) == (70002, one + b"yz")


def test_the_protocol_gives_kept_answers_and_leaves_the_rest_to_the_app(
    node: FakeNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plain GET of a kept answer is answered by the protocol, with no ASGI task: here at a
    path no route has (the app would say 404). Anything else goes to the app: HEAD,
    ``Connection: close``, HTTP/1.0, another ``Accept``, a request pipelined behind one being
    answered, and every request once the height moved."""
    height = [5]
    monkeypatch.setattr(node, "latest_height", lambda: height[0])
    registry = CollectorRegistry()
    refusals = Refusals(registry)
    app = create_app(node)
    kept = app.state.kept
    headers = [(b"content-length", b"5"), (b"content-type", b"text/plain"), (b"x-kept", b"1")]
    kept.keep((b"/kept/thing?a=1", None), 5, answer_of(200, headers, b"hello"))

    async def ask(payload: bytes) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(payload)
        got = b""
        with contextlib.suppress(TimeoutError):
            while True:
                chunk = await asyncio.wait_for(reader.read(65536), 0.3)
                if not chunk:
                    break
                got += chunk
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return got

    async def run() -> list[bytes]:
        nonlocal port
        get = b"GET /kept/thing?a=1 HTTP/1.1\r\nHost: x\r\n"
        async with _serving(
            app, RequestLimits(1.0, 1.0, 300, 2048), refusals, per_address=8, kept=kept
        ) as (port, listener, _server):
            answers = [
                await ask(get + b"\r\n" + get + b"\r\n"),  # two, pipelined: both kept
                await ask(get + b"Accept: */*\r\n\r\n"),
                await ask(b"HEAD /kept/thing?a=1 HTTP/1.1\r\nHost: x\r\n\r\n"),
                await ask(get + b"Connection: close\r\n\r\n"),
                await ask(b"GET /kept/thing?a=1 HTTP/1.0\r\n\r\n"),
                await ask(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n" + get + b"\r\n"),
            ]
            height[0] = 6
            answers.append(await ask(get + b"\r\n"))
            await asyncio.sleep(0.05)
            assert listener.slots.open == 0
            return answers

    port = 0
    kept_answers, other, head, close, old, behind, later = asyncio.run(run())
    parts = kept_answers.split(b"HTTP/1.1 ")[1:]
    assert len(parts) == 2 and parts[0] == parts[1]
    assert parts[0].startswith(b"200 OK\r\ndate: ") and b"\r\nserver: uvicorn\r\n" in parts[0]
    assert parts[0].endswith(
        b"content-length: 5\r\ncontent-type: text/plain\r\nx-kept: 1\r\n\r\nhello"
    )
    for answer in (other, head, close, old, later):  # other: another Accept
        assert answer.split(b"\r\n", 1)[0].split(b" ")[1] == b"404", answer[:200]
    first, second = behind.split(b"HTTP/1.1 ")[1:]
    assert first.startswith(b"200 ") and b'"ok"' in first  # /health, answered first
    assert second.startswith(b"404 ")  # pipelined behind it: the app's way, in order


def test_a_producer_makes_answers_the_protocol_writes_and_a_broken_one_falls_to_the_app(
    node: FakeNode, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A producer (citychain.api._kept) answers the targets under its prefix with no ASGI
    task; one that declines leaves them to the app, and one that raises is logged and the
    app answers (here 404: no route has these paths)."""
    monkeypatch.setattr(node, "latest_height", lambda: 5)
    app = create_app(node)
    kept = app.state.kept
    made: list[bytes] = []

    def produce(key: tuple[bytes, bytes | None]) -> KeptAnswer | None:
        made.append(key[0])
        if key[0].endswith(b"/no"):
            return None
        if key[0].endswith(b"/boom"):
            raise RuntimeError("producer on fire")
        answer = answer_of(200, [(b"content-length", b"4"), (b"content-type", b"x/y")], b"made")
        kept.keep(key, 5, answer)
        return answer

    kept.add_producer(b"/made/", produce)
    reached = [0]

    async def counted(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            reached[0] += 1
        await app(scope, receive, send)

    async def run() -> list[bytes]:
        async with _serving(
            counted, RequestLimits(1.0, 1.0, 300, 2048), Refusals(CollectorRegistry()),
            per_address=8, kept=kept,
        ) as (port, _listener, _server):  # fmt: skip
            out = []
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            for target in (b"/made/a", b"/made/a", b"/made/no", b"/made/boom", b"/other"):
                writer.write(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                out.append(head + await reader.readexactly(length))
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()  # not left to be collected after the loop ends
            return out

    a, again, declined, broken, other = asyncio.run(run())
    assert a.startswith(b"HTTP/1.1 200 OK\r\n") and a.endswith(b"\r\n\r\nmade") and again == a
    assert made == [b"/made/a", b"/made/no", b"/made/boom"]  # the second /made/a was kept
    for answer in (declined, broken, other):
        assert answer.startswith(b"HTTP/1.1 404 "), answer[:100]
    assert reached[0] == 3 and "producer on fire" in caplog.text


def test_a_client_that_does_not_read_kept_answers_holds_bounded_memory(node: FakeNode) -> None:
    """200 pipelined GETs of a 200 KiB kept answer, sent at once by a client that reads
    nothing for a while: the node stops writing answers ahead (its write buffer stays near
    one answer, not 40 MiB), and once the client reads, every answer arrives whole, in order."""
    monkey_height = 3
    node.latest_height = lambda: monkey_height  # type: ignore[method-assign]
    refusals = Refusals(CollectorRegistry())
    app = create_app(node)
    body = bytes(range(256)) * 800  # 204,800 bytes
    headers = [(b"content-length", str(len(body)).encode()), (b"content-type", b"x/y")]
    app.state.kept.keep((b"/big", None), 3, answer_of(200, headers, body))

    async def big() -> Response:  # the route's own way, as the identity route does
        hit = app.state.kept.get((b"/big", None))
        response = Response(hit.body, hit.status)
        response.raw_headers = list(hit.headers)
        return response

    app.add_api_route("/big", big, methods=["GET"])

    async def run() -> tuple[int, int]:
        async with _serving(
            app, RequestLimits(5.0, 5.0, 300, 2048), refusals, per_address=8, kept=app.state.kept
        ) as (port, _listener, server):
            reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**20)
            writer.transport.pause_reading()  # read nothing until told
            writer.write(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n" * 200)
            await asyncio.sleep(0.5)
            (conn,) = server.server_state.connections
            held = conn.transport.get_write_buffer_size()  # type: ignore[union-attr]
            writer.transport.resume_reading()
            answers = 0
            while answers < 200:
                await reader.readuntil(b"\r\n\r\n")
                assert await reader.readexactly(len(body)) == body
                answers += 1
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()  # not left to be collected after the loop ends
            return held, answers

    held, answers = asyncio.run(run())
    assert answers == 200
    assert held < 2 * len(body) + 65536, held


def test_kept_answers_live_for_their_height_and_a_late_older_one_empties_nothing() -> None:
    from citychain.api._kept import MAX_BODY

    latest = [5]
    kept = Kept(lambda: latest[0])
    one = [(b"content-length", b"1")]
    kept.keep((b"/a", None), 5, answer_of(200, one, b"x"))
    found = kept.get((b"/a", None))
    assert found is not None and found.line == b"HTTP/1.1 200 OK\r\n"
    assert found.head == b"content-length: 1\r\n\r\n" and found.body == b"x"
    kept.keep(
        (b"/b", None), 4, answer_of(200, one, b"y")
    )  # computed before the last block: dropped
    kept.keep((b"/c", None), 5, answer_of(200, one, b"z" * (MAX_BODY + 1)))  # too big to keep
    assert kept.get((b"/b", None)) is None and kept.get((b"/c", None)) is None
    assert kept.get((b"/a", None)) is found  # and neither emptied what was kept
    latest[0] = 6
    assert kept.get((b"/a", None)) is None  # a new block: nothing old is given
