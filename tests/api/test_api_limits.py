"""What any API client can hold (issue 15, part 1), in process: ``/v1/events`` subscriptions
capped in all and per address (a 503 saying why), the ``[api]`` limits refused in words when
they cannot work, and the descriptor budget refusing a start that leaves the API nothing.
The flood of half-sent requests against a real node is in tests/e2e/test_e2e_api_limits.py."""

from __future__ import annotations

import resource
from pathlib import Path

import pytest
from fake_node import FakeNode, TestClient
from prometheus_client import CollectorRegistry
from starlette.testclient import WebSocketDenialResponse

from citychain.api import create_app, limits
from citychain.api.limits import ConnectionSlots, Refusals, SubscriberSlots, refusal_bytes
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
