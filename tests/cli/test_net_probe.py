"""What `citychain net status` reports of one node, read through the SDK's ``probe_node``: the
row of a node that answers, and the words for one that does not (refused, dead process, not
listening yet, no answer in time, an error status, not a node's answer)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fake_node import FakeNode

from citychain.cli import net
from citychain.sdk import NodeProbe, probe_node


@dataclass
class _Proc:
    """A recorded node process, alive or not (what net status needs of a ProcessRef)."""

    pid: int
    running: bool

    def alive(self) -> bool:
        return self.running


def _answering(
    monkeypatch: pytest.MonkeyPatch, handler: Callable[[httpx.Request], httpx.Response]
) -> None:
    def probe(url: str, *, timeout: float) -> NodeProbe:
        assert timeout == net.PROBE_TIMEOUT
        return probe_node(url, timeout=timeout, transport=httpx.MockTransport(handler))

    monkeypatch.setattr(net, "probe_node", probe)


def _reason(proc: Any = None) -> str | None:
    report = net._probe("node0", "org1", "http://node0.test", proc)
    assert not report.up and report.height is None
    return report.reason


def test_a_node_that_answers(served: str, node: FakeNode) -> None:
    node.commit_block()
    report = net._probe("node0", "org1", served, _Proc(42, True))
    assert report.up and report.reason is None
    assert (report.pid, report.process, report.healthy) == (42, "running", True)
    assert report.height == 1
    assert report.latest_block_hash == node.blocks[-1].block.hash.hex()
    assert report.consensus is not None and set(report.consensus) == set(net._CONSENSUS_FIELDS)
    assert report.validators is not None and report.last_commit is not None
    assert report.peers is not None and report.peers_known is not None
    assert report.peers <= report.peers_known
    assert report.commit_signatures == len(node.blocks[-1].commit.signatures)


def test_a_node_without_blocks_has_no_commit(served: str) -> None:
    report = net._probe("node0", "org1", served, None)
    assert report.up and report.height == 0 and report.commit_signatures is None


def test_why_a_node_is_down(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    _answering(monkeypatch, refuse)
    assert _reason() == "connection refused"
    assert _reason(_Proc(7, False)) == "its process is not running (connection refused)"
    assert _reason(_Proc(7, True)) == "API not listening yet"

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    _answering(monkeypatch, slow)
    assert _reason() == "no answer within 2 s"

    _answering(monkeypatch, lambda r: httpx.Response(503, json={"code": "x", "message": "y"}))
    assert _reason() == "/v1/status answered HTTP 503"
    _answering(monkeypatch, lambda r: httpx.Response(404))
    assert _reason() == "/v1/status: unexpected answer (NotFound)"
    _answering(monkeypatch, lambda r: httpx.Response(200, text="<html>"))
    assert _reason() == "/v1/status: unexpected answer (DecodeError)"
