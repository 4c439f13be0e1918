"""Starting a node where something is already in the way, and Ctrl-C while a command waits.

Real ``citychain`` processes throughout: a port is held by a listening socket of this test
(another program, to the node), a home by a running node. Each refusal must be the one line
``error [code]: message`` with exit status 1, and must leave nothing behind that a retry
would trip over.

Ctrl-C is made deterministic with a chain whose block interval is ten minutes: the node makes
its first block at once and the next one only ten minutes later, so a transaction accepted in
between is still pending when the test sends SIGINT (the test checks that it is).
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from nodeproc import NodeProcess, cli, free_port  # type: ignore[import-not-found]
from ports import free_base_port  # type: ignore[import-not-found]

from citychain.node.home import init_home
from citychain.node.testnet import generate_network
from citychain.sdk import Client
from citychain.types.genesis import ChainParams

pytestmark = pytest.mark.slow


@pytest.fixture
def held_port() -> Iterator[int]:
    """A loopback port another program listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield int(s.getsockname()[1])


def error_lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    assert "Traceback" not in proc.stderr + proc.stdout
    return proc.stderr.strip().splitlines()


# -- ports ------------------------------------------------------------------------------------


def test_api_port_in_use_is_one_line_and_a_demo_home_is_not_created(
    tmp_path: Path, held_port: int
) -> None:
    home = tmp_path / "node"
    proc = cli("start", "--demo", "--home", str(home), "--port", str(held_port))
    assert proc.returncode == 1, proc
    assert error_lines(proc) == [
        f"error [port_in_use]: the API port 127.0.0.1:{held_port} is in use by another "
        "program; choose another with --port or [api] port in node.toml"
    ]
    assert proc.stdout == ""
    assert not home.exists()  # checked before the demo home is made
    # The retry on a free port starts a node as if nothing had happened.
    node = NodeProcess(home)
    try:
        node.start(demo=True)
        assert node.height() >= 1
    finally:
        assert node.stop() == 0


def test_api_port_in_use_opens_no_database(tmp_path: Path, held_port: int) -> None:
    home = tmp_path / "node"
    assert cli("init", "--home", str(home)).returncode == 0
    before = sorted(p.relative_to(home) for p in home.rglob("*"))
    proc = cli("start", "--home", str(home), "--port", str(held_port))
    assert proc.returncode == 1, proc
    assert error_lines(proc) == [
        f"error [port_in_use]: the API port 127.0.0.1:{held_port} is in use by another "
        "program; choose another with --port or [api] port in node.toml"
    ]
    assert sorted(p.relative_to(home) for p in home.rglob("*")) == before  # nothing written


def test_p2p_port_in_use_is_one_line(tmp_path: Path) -> None:
    """A node of a network (as `citychain net up` starts it) whose p2p port is taken."""
    layout = generate_network(tmp_path / "net", validators=1, orgs=1, base_port=free_base_port(1))
    node = layout.nodes[0]
    before = sorted(p.relative_to(node.home) for p in node.home.rglob("*"))
    with socket.socket() as other:
        other.bind(("127.0.0.1", node.p2p_port))
        other.listen()
        proc = cli("start", "--home", str(node.home))
    assert proc.returncode == 1, proc
    assert error_lines(proc) == [
        f"error [port_in_use]: the p2p port 127.0.0.1:{node.p2p_port} is in use by another "
        "program; choose another with [p2p] listen_port in node.toml"
    ]
    assert sorted(p.relative_to(node.home) for p in node.home.rglob("*")) == before
    # The API port was released again: the node starts once the p2p port is free.
    with subprocess.Popen(
        [sys.executable, "-m", "citychain.cli.main", "start", "--home", str(node.home)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    ) as started:
        try:
            _wait_healthy(node.api_url, started)
        finally:
            started.terminate()
            assert started.wait(30) == 0


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"node exited with {proc.returncode}"
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not become healthy")


# -- a home in use ----------------------------------------------------------------------------


def test_second_node_on_a_home_names_the_running_one(node: NodeProcess) -> None:
    assert node.proc is not None
    pid_file = node.home / "node.pid"
    assert pid_file.read_text().strip() == str(node.proc.pid)
    proc = cli("start", "--home", str(node.home), "--port", str(free_port()))
    assert proc.returncode == 1, proc
    assert error_lines(proc) == [
        f"error [home_in_use]: a node is already running on this home (pid {node.proc.pid}): "
        f"{node.home.resolve()}; stop it first (Ctrl-C where it runs, or kill "
        f"{node.proc.pid}), or start this one with another --home"
    ]
    # The running node was not disturbed, and replay reads its store beside it.
    assert httpx.get(f"{node.url}/health", timeout=5).status_code == 200
    replay = cli("node", "replay", "--home", str(node.home))
    assert replay.returncode == 0, replay
    assert "replay ok" in replay.stdout
    # A clean stop removes the pid file.
    assert node.stop() == 0
    assert not pid_file.exists()


def test_locked_home_without_a_pid_file_is_refused_in_words(node: NodeProcess) -> None:
    (node.home / "node.pid").unlink()  # e.g. a node of a release that wrote none
    proc = cli("start", "--home", str(node.home), "--port", str(free_port()))
    assert proc.returncode == 1, proc
    assert error_lines(proc) == [
        "error [home_in_use]: another process holds this home's database "
        f"({node.home.resolve() / 'data' / 'LOCK'} is locked): a node is probably already "
        "running on this home; stop it first, or start this one with another --home"
    ]
    assert node.height() >= 1


def test_a_stale_pid_file_does_not_block_a_start(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path / "node")
    node.start()
    node.kill9()  # leaves its pid file behind
    assert node.proc is not None
    assert (node.home / "node.pid").read_text().strip() == str(node.proc.pid)
    node.start(demo=False)  # the recorded process is gone: not a node on this home
    try:
        assert node.height() >= 1
        assert (node.home / "node.pid").read_text().strip() == str(node.proc.pid)
    finally:
        assert node.stop() == 0


# -- Ctrl-C while a command waits for its block -----------------------------------------------

#: Runs the CLI like ``python -m citychain.cli.main`` with Python's own SIGINT handler, also
#: when this test runs where SIGINT is ignored (a background job), as a terminal would.
_WITH_SIGINT = (
    "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "runpy.run_module('citychain.cli.main', run_name='__main__', alter_sys=True)"
)


@contextlib.contextmanager
def _slow(home: Path) -> Iterator[NodeProcess]:
    """A node whose next block after the first comes ten minutes later."""
    init_home(home, params=ChainParams(block_interval_ms=600_000), kdf_level="interactive")
    node = NodeProcess(home)
    node.start(demo=False)
    try:
        deadline = time.monotonic() + 30
        while node.height() < 1:  # the first block is made at once; the next is far away
            assert time.monotonic() < deadline
            time.sleep(0.1)
        yield node
    finally:
        if node.proc is not None and node.proc.poll() is None:
            node.kill9()


@pytest.fixture(scope="module")
def slow_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    """A slow node the waiting tests share; none of them stops it."""
    with _slow(tmp_path_factory.mktemp("slow") / "node") as node:
        yield node


def _env(node: NodeProcess) -> dict[str, str]:
    return {
        **os.environ,
        "CITYCHAIN_PASSPHRASE": node.passphrase,
        "COLUMNS": "200",
        "NO_COLOR": "1",
    }


@pytest.mark.parametrize(
    "command",
    [
        ["tx", "transfer", "--key", "alice", "--to", "00" * 20, "--amount", "5"],
        [
            "gov",
            "propose",
            "set_params",
            "--param",
            "params.chain.block_max_txs=5000",
            "--key",
            "org1-admin",
        ],
    ],
    ids=["tx-transfer", "gov-propose"],
)
def test_ctrl_c_while_waiting_says_how_to_look_the_transaction_up(
    slow_node: NodeProcess, command: list[str]
) -> None:
    env = _env(slow_node)
    args = [*command, "--home", str(slow_node.home), "--node", slow_node.url]
    with subprocess.Popen(
        [sys.executable, "-c", _WITH_SIGINT, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    ) as proc:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # printed once the node accepted it, before waiting
        m = re.fullmatch(
            r"accepted transaction ([0-9a-f]{64}); waiting for its block "
            r"\(Ctrl-C stops the wait, not the transaction\)\n",
            first,
        )
        assert m, first + proc.stdout.read()
        tx_hash = m.group(1)
        status = httpx.get(f"{slow_node.url}/v1/txs/{tx_hash}", timeout=5).json()["status"]
        assert status == "pending"  # so the command is still waiting when Ctrl-C comes
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert "Traceback" not in out + err
    assert out == ""  # nothing after the accepted line: no receipt, no half a table
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    m = re.fullmatch(
        rf"interrupted: transaction {tx_hash} was accepted by the node and may still be "
        r"committed; look it up with `(.+)`",
        lines[0],
    )
    assert m, lines[0]
    lookup = m.group(1)
    assert lookup.endswith(f" query tx {tx_hash} --node {slow_node.url}")
    # The command runs as printed and finds the transaction, still pending.
    shown = subprocess.run(
        shlex.split(lookup), capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert shown.returncode == 0, shown
    assert f"transaction {tx_hash}: pending" in shown.stdout


def test_a_wait_that_times_out_names_the_lookup_and_json_stays_one_document(
    slow_node: NodeProcess,
) -> None:
    args = ["tx", "transfer", "--key", "bob", "--to", "00" * 20, "--amount", "1"]
    args += ["--home", str(slow_node.home), "--node", slow_node.url, "--timeout", "1"]
    r = cli(*args, "--json", env=_env(slow_node))
    assert r.returncode == 1, r
    assert r.stdout == ""  # --json: no accepted line, no partial document
    [line] = error_lines(r)
    m = re.fullmatch(
        r"error \[unavailable\]: transaction ([0-9a-f]{64}) was not committed within 1s "
        r"\(last status: pending\); it may still be committed later; look it up with `(.+)`",
        line,
    )
    assert m, line
    assert m.group(2).endswith(f" query tx {m.group(1)} --node {slow_node.url}")


def test_sigterm_does_not_wait_out_a_long_block_interval(tmp_path: Path) -> None:
    """Stopping a node that waits ten minutes for its next block must take seconds (the
    README: it finishes the block in flight, closes and exits 0). A node of its own: the
    shared one must stay up for the other tests, whatever order they run in."""
    with _slow(tmp_path / "node") as node, Client(node.url) as c:
        alice = node.signer("alice")
        c.send(alice, "token", "transfer", {"to": bytes(20), "amount": 1}, wait=False)
        deadline = time.monotonic() + 30
        while c.consensus()["step"] != "waiting for the block interval":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        started = time.monotonic()
        assert node.stop() == 0
        assert time.monotonic() - started < 10
