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
import time
from pathlib import Path

import pytest
import uvicorn
from fake_node import FakeNode, TestClient
from prometheus_client import CollectorRegistry
from starlette.testclient import WebSocketDenialResponse

from citychain.api import create_app, limits
from citychain.api.limits import (
    ConnectionSlots,
    GuardedListener,
    Refusals,
    RequestLimits,
    SubscriberSlots,
    guarded_protocol,
    refusal_bytes,
)
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
        ("header_timeout_ms = 0", "header_timeout_ms must be 1 or more"),
        ("max_connections_per_address = 0", "max_connections_per_address must be 1 or more"),
        ("max_url_bytes = 20000", "max_url_bytes must be 256 to 8000"),
        ("max_header_bytes = 10", "max_header_bytes must be 1024 or more"),
        ("max_subscribers = 0", "max_subscribers must be 1 or more"),
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


def test_slow_requests_are_dropped_and_large_heads_refused(
    node: FakeNode, caplog: pytest.LogCaptureFixture
) -> None:
    registry = CollectorRegistry()
    refusals = Refusals(registry)

    async def run() -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        port = sock.getsockname()[1]
        listener = GuardedListener.adopt(sock, ConnectionSlots(8, 4), refusals)
        config = uvicorn.Config(
            create_app(node),
            log_level="warning",
            lifespan="off",
            http=guarded_protocol(RequestLimits(0.3, 0.3, 300, 2048), refusals),
            timeout_keep_alive=1,
        )
        server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve(sockets=[listener]))
        while not server.started:
            await asyncio.sleep(0.01)
        try:
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
        finally:
            server.should_exit = True
            await serving

    with caplog.at_level(logging.WARNING):
        asyncio.run(run())
    assert "unhandled error" not in caplog.text, caplog.text
    assert "API client 127.0.0.1 dropped: the request body did not arrive" in caplog.text
    expected = {"body_timeout": 1, "header_timeout": 2, "url_too_long": 1, "headers_too_large": 1}
    for reason, times in expected.items():
        got = registry.get_sample_value("citychain_api_refused_total", {"reason": reason})
        assert got == times, reason
