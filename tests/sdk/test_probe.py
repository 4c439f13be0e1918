"""``probe_node`` (a short-timeout look at a node that does not raise, saying how a node that
cannot be read failed) and ``check_node_url`` (a node's URL as people give it)."""

from __future__ import annotations

import socket
from collections.abc import Callable

import httpx
import pytest
from sdk_helpers import URL, FakeNode, bridge

from citychain.api import create_app
from citychain.errors import (
    DecodeError,
    ErrorCode,
    InternalError,
    InvalidInput,
    NotFound,
    Unavailable,
)
from citychain.sdk import PROBE_TIMEOUT, check_node_url, probe_node

Handler = Callable[[httpx.Request], httpx.Response]


def _answering(handler: Handler) -> httpx.MockTransport:
    return httpx.MockTransport(handler)


def _node_except(node: FakeNode, path: str, handler: Handler) -> httpx.MockTransport:
    """The fake node's API, but ``path`` answered by ``handler``."""
    app = bridge(create_app(node))

    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path == path:
            return handler(request)
        return app.handle_request(request)

    return httpx.MockTransport(handle)


# -- a node that answers ------------------------------------------------------------------------
def test_a_node_that_answers_is_read_whole(node: FakeNode) -> None:
    node.commit_block()
    seen = probe_node(URL + "/", transport=bridge(create_app(node)))
    assert seen.up and seen.failure is None and seen.url == URL
    assert seen.status is not None and seen.status.height == 1
    assert seen.healthy is True
    assert seen.consensus is not None and seen.consensus["engine"] == "fake"
    assert isinstance(seen.peers, list)
    assert seen.latest_block is not None and seen.latest_block.height == 1
    assert seen.latest_block.hash == seen.status.latest_block_hash


def test_a_chain_without_blocks_has_no_latest_block(node: FakeNode) -> None:
    seen = probe_node(URL, transport=bridge(create_app(node)))
    assert seen.up and seen.status is not None and seen.status.height == 0
    assert seen.latest_block is None


def test_an_unhealthy_node_is_up_but_not_healthy(node: FakeNode) -> None:
    node.healthy = False
    seen = probe_node(URL, transport=bridge(create_app(node)))
    assert seen.up and seen.healthy is False


def test_each_request_has_the_short_timeout(node: FakeNode) -> None:
    app = bridge(create_app(node))
    timeouts = []

    def handle(request: httpx.Request) -> httpx.Response:
        timeouts.append(request.extensions["timeout"]["read"])
        return app.handle_request(request)

    node.commit_block()
    probe_node(URL, transport=httpx.MockTransport(handle))
    assert timeouts == [PROBE_TIMEOUT] * 5  # status, health, consensus, peers, latest block
    timeouts.clear()
    probe_node(URL, timeout=0.25, transport=httpx.MockTransport(handle))
    assert set(timeouts) == {0.25}


def test_a_read_after_the_status_that_fails_is_none(node: FakeNode) -> None:
    node.commit_block()

    def missing(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"code": "not_found", "message": "no such route"})

    def broken(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadError("reset", request=request)

    for path in ("/v1/consensus", "/v1/net/peers", "/v1/blocks/latest"):
        seen = probe_node(URL, transport=_node_except(node, path, missing))
        assert seen.up and seen.failure is None
        read = {
            "/v1/consensus": seen.consensus,
            "/v1/net/peers": seen.peers,
            "/v1/blocks/latest": seen.latest_block,
        }
        assert read[path] is None
        assert all(v is not None for p, v in read.items() if p != path)
    assert probe_node(URL, transport=_node_except(node, "/health", broken)).healthy is None
    assert probe_node(URL, transport=_node_except(node, "/health", missing)).healthy is False


# -- a node that cannot be read ------------------------------------------------------------------
def _failure_of(handler: Handler) -> tuple[str, type[Exception], int | None, str]:
    seen = probe_node(URL, transport=_answering(handler))
    assert not seen.up and seen.status is None and seen.failure is not None
    assert (seen.healthy, seen.consensus, seen.peers, seen.latest_block) == (None,) * 4
    f = seen.failure
    return f.kind, type(f.error), f.http_status, f.detail


def test_a_node_that_refuses_the_connection() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    assert _failure_of(refuse) == ("cannot_connect", Unavailable, None, "ConnectError")


def test_a_real_refused_connection() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    seen = probe_node(f"http://127.0.0.1:{port}")
    assert seen.failure is not None and seen.failure.kind == "cannot_connect"
    assert seen.failure.error.code == ErrorCode.UNAVAILABLE
    assert f"cannot reach node at http://127.0.0.1:{port}" in seen.failure.error.message


@pytest.mark.parametrize("timeout", [httpx.ReadTimeout, httpx.ConnectTimeout, httpx.PoolTimeout])
def test_a_node_that_does_not_answer_in_time(timeout: type[httpx.TimeoutException]) -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise timeout("timed out", request=request)

    assert _failure_of(slow) == ("timeout", Unavailable, None, timeout.__name__)


def test_a_connection_broken_mid_answer() -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError("peer closed", request=request)

    assert _failure_of(broken) == ("unexpected", Unavailable, None, "RemoteProtocolError")


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (httpx.Response(503, json={"code": "unavailable", "message": "busy"}), Unavailable),
        (httpx.Response(500, text="oops"), InternalError),
        (httpx.Response(301, headers={"location": "/elsewhere"}), InvalidInput),
    ],
)
def test_an_error_status(answer: httpx.Response, error: type[Exception]) -> None:
    status = answer.status_code
    assert _failure_of(lambda r: answer) == ("http_status", error, status, f"HTTP {status}")


def test_no_such_endpoint_or_not_a_node_answer_is_unexpected() -> None:
    assert _failure_of(lambda r: httpx.Response(404, text="not here")) == (
        "unexpected",
        NotFound,
        404,
        "NotFound",
    )
    for body in (b"<html>", b'{"height": 1}', b"[]"):
        kind, error, status, detail = _failure_of(lambda r, b=body: httpx.Response(200, content=b))
        assert (kind, error, status, detail) == ("unexpected", DecodeError, 200, "DecodeError")


# -- a node's URL --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:26657", "https://node.example/api", "http://[::1]:26657/"]
)
def test_a_node_url_is_taken_as_given(url: str) -> None:
    assert check_node_url(url) == url


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("notaurl", "'notaurl' is not the http:// or https:// URL of a node's API, e.g. http://"),
        ("ftp://x", "'ftp://x' is not the http:// or https:// URL of a node's API"),
        ("http://", "'http://' is not the http:// or https:// URL"),
        ("http://[::1", "'http://[::1' is not a URL ("),
    ],
)
def test_what_is_not_a_node_url_is_refused_in_words(url: str, words: str) -> None:
    with pytest.raises(InvalidInput) as info:
        check_node_url(url)
    assert info.value.code == ErrorCode.BAD_ARGUMENTS
    assert info.value.message.startswith(words)
