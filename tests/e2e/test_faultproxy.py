"""The harness of the network tests: the fault-injecting proxy (against plain TCP echo
servers) and LocalNet (against a one-validator network of a real node process)."""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from faultproxy import FaultProxy  # type: ignore[import-not-found]
from netproc import LocalNet  # type: ignore[import-not-found]

TIMEOUT = 5.0


class _Echo(socketserver.BaseRequestHandler):
    """Greets with the server's name, then echoes every byte back."""

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.sendall(f"hello from {self.server.name}\n".encode())  # type: ignore[attr-defined]
        try:
            while data := sock.recv(65536):
                sock.sendall(data)
        except OSError:
            pass


class _EchoServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, name: str) -> None:
        super().__init__(("127.0.0.1", 0), _Echo)
        self.name = name


@pytest.fixture
def echoes() -> Iterator[dict[int, int]]:
    servers = [_EchoServer(f"node{i}") for i in range(3)]
    threads = [threading.Thread(target=s.serve_forever, args=(0.05,), daemon=True) for s in servers]
    for t in threads:
        t.start()
    try:
        yield {i: s.server_address[1] for i, s in enumerate(servers)}
    finally:
        for s in servers:
            s.shutdown()
            s.server_close()


@pytest.fixture
def proxy(echoes: dict[int, int]) -> Iterator[FaultProxy]:
    with FaultProxy(echoes) as p:
        yield p


def dial(proxy: FaultProxy, i: int, j: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", proxy.port_for(i, j)), timeout=TIMEOUT)
    return s


def read_line(s: socket.socket) -> bytes:
    """A line, or what came before the connection was closed or reset (b"" for nothing)."""
    out = b""
    while not out.endswith(b"\n"):
        try:
            chunk = s.recv(1)
        except ConnectionResetError:
            break
        if not chunk:
            break
        out += chunk
    return out


def roundtrip(s: socket.socket, payload: bytes) -> bytes:
    s.sendall(payload)
    got = b""
    while len(got) < len(payload):
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    return got


def refused(proxy: FaultProxy, i: int, j: int) -> bool:
    """Whether a new connection on link i -> j is closed before a byte passes (it may be
    accepted and reset, or reset while still connecting)."""
    try:
        s = dial(proxy, i, j)
    except ConnectionError:
        return True
    with s:
        return read_line(s) == b""


def closed_by_peer(s: socket.socket) -> bool:
    """Whether the connection is (or is about to be) closed from the other side."""
    try:
        s.sendall(b"ping")
        return s.recv(100) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True


def test_forwards_each_link_to_its_target_both_ways(proxy: FaultProxy) -> None:
    ports = {proxy.port_for(i, j) for i in range(3) for j in range(3) if i != j}
    assert len(ports) == 6  # one listening port per directed link
    with dial(proxy, 0, 1) as a, dial(proxy, 2, 1) as b, dial(proxy, 1, 2) as c:
        assert read_line(a) == b"hello from node1\n"
        assert read_line(b) == b"hello from node1\n"
        assert read_line(c) == b"hello from node2\n"
        payload = bytes(range(256)) * 1000
        assert roundtrip(a, payload) == payload
    stats = proxy.stats()
    assert stats[(0, 1)].connections == 1
    assert stats[(0, 1)].bytes_forward == len(payload)
    assert stats[(0, 1)].bytes_back == len(payload) + len(b"hello from node1\n")
    assert proxy.bytes_forwarded(0, 1) == stats[(0, 1)].bytes_total
    assert proxy.bytes_forwarded(1, 0) == 0


def test_partition_cuts_open_connections_and_refuses_new_ones(proxy: FaultProxy) -> None:
    across = dial(proxy, 0, 2)
    within = dial(proxy, 0, 1)
    with across, within:
        assert read_line(across) == b"hello from node2\n"
        assert read_line(within) == b"hello from node1\n"
        proxy.partition([{0, 1}, {2}])
        assert proxy.is_cut(0, 2) and proxy.is_cut(2, 1) and not proxy.is_cut(0, 1)
        assert closed_by_peer(across)
        assert roundtrip(within, b"still here") == b"still here"
    for i, j in ((0, 2), (2, 0), (1, 2), (2, 1)):
        assert refused(proxy, i, j)
    stats = proxy.stats()
    assert stats[(0, 2)].cut == 1
    assert stats[(2, 0)].refused == 1
    assert stats[(0, 1)].cut == 0


def test_heal_lets_new_connections_through(proxy: FaultProxy) -> None:
    proxy.partition([{0}, {1, 2}])
    assert refused(proxy, 1, 0)
    proxy.heal()
    assert not proxy.is_cut(1, 0)
    with dial(proxy, 1, 0) as s:
        assert read_line(s) == b"hello from node0\n"
        assert roundtrip(s, b"back") == b"back"


def test_isolate_and_cut(proxy: FaultProxy) -> None:
    proxy.isolate(2)
    assert proxy.is_cut(0, 2) and proxy.is_cut(1, 2) and not proxy.is_cut(0, 1)
    proxy.heal()
    proxy.cut(0, 1)
    proxy.cut(1, 2)
    assert proxy.is_cut(1, 0) and proxy.is_cut(2, 1) and not proxy.is_cut(0, 2)
    with dial(proxy, 0, 2) as s:
        assert read_line(s) == b"hello from node2\n"


def test_unreachable_target_closes_the_client(echoes: dict[int, int]) -> None:
    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        nothing = spare.getsockname()[1]  # bound but not listening: connections refused
        with FaultProxy({0: echoes[0], 1: nothing}) as proxy:
            assert refused(proxy, 0, 1)
            assert proxy.stats()[(0, 1)].unreachable == 1


def test_bad_arguments_and_stop(echoes: dict[int, int]) -> None:
    with pytest.raises(ValueError, match="at least two nodes"):
        FaultProxy({0: echoes[0]})
    proxy = FaultProxy(echoes)
    with pytest.raises(RuntimeError, match="not started"):
        proxy.port_for(0, 1)
    proxy.start()
    port = proxy.port_for(0, 1)
    with pytest.raises(ValueError, match="no link 0 -> 0"):
        proxy.port_for(0, 0)
    with pytest.raises(ValueError, match="unknown node 7"):
        proxy.isolate(7)
    with pytest.raises(ValueError, match="two groups"):
        proxy.partition([{0, 1}, {1, 2}])
    open_conn = dial(proxy, 0, 1)
    with open_conn:
        assert read_line(open_conn) == b"hello from node1\n"
        proxy.stop()
        assert closed_by_peer(open_conn)
    proxy.stop()  # idempotent
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass


@pytest.mark.slow
def test_localnet_one_validator_lifecycle(tmp_path: Path) -> None:
    """Start, kill -9, restart and stop a real node through LocalNet (a one-validator
    network: it needs no peers to make blocks)."""
    with LocalNet(tmp_path, validators=1, orgs=1) as net:
        net.start_all()
        assert net.running(0)
        assert net.api(0).startswith("http://127.0.0.1:")
        assert net.heights()[0] is not None
        assert "API: http://127.0.0.1" in net.log(0)
        assert net.kill(0) == -9
        assert not net.running(0) and net.height(0) is None
        net.restart(0)
        assert net.running(0)
        h = net.height(0)
        assert h is not None
        assert net.stop(0) == 0
        assert (net.layout.root / "pids.json").is_file()
    assert not net.running(0)


def test_delay_holds_each_direction_back_and_keeps_order(echoes: dict[int, int]) -> None:
    # The WAN bench's stand-in for netem: 80 ms one way, so an echo through the proxy takes
    # at least 160 ms, and a stream of small writes comes back whole and in order.
    import time

    with FaultProxy(echoes, delay=0.08) as p:
        t0 = time.monotonic()
        with socket.create_connection(("127.0.0.1", p.port_for(0, 1)), timeout=TIMEOUT) as c:
            f = c.makefile("rb")
            assert f.readline() == b"hello from node1\n"
            greeted = time.monotonic() - t0
            sent = b"".join(f"{i:05d}".encode() for i in range(2000))
            t1 = time.monotonic()
            for i in range(0, len(sent), 100):
                c.sendall(sent[i : i + 100])
            got = f.read(len(sent))
            echoed = time.monotonic() - t1
        assert got == sent
    assert greeted >= 0.08  # the greeting came one way through the proxy
    assert echoed >= 0.16  # there and back
    assert echoed < 5.0


def test_delay_is_bounded(echoes: dict[int, int]) -> None:
    with pytest.raises(ValueError, match="delay"):
        FaultProxy(echoes, delay=-1)
    with pytest.raises(ValueError, match="delay"):
        FaultProxy(echoes, delay=60)
