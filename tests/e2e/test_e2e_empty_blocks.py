"""Empty blocks as a setting, on real node processes: an idle chain makes one empty block per
``[consensus] empty_blocks_interval_ms`` instead of several a second, says so in its status, a
transaction sent to it commits at once (not at the next empty block), interval 0 makes blocks
without waiting as before, and a node killed while idle restarts idle and commits the next
transaction. Once with a single validator (``start --demo``, the solo engine) and once with
four (Tendermint over mutual TLS).

Blocks are counted over a few seconds with a 2 s interval; "at once" is checked with a 60 s
interval, against a deadline well below it.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from netproc import FAST_PARAMS, LocalNet  # type: ignore[import-not-found]
from nodeproc import NodeProcess  # type: ignore[import-not-found]

from citychain.crypto import Signer
from citychain.node.config import NodeConfig
from citychain.sdk import Client
from citychain.types.genesis import Genesis

pytestmark = pytest.mark.slow

#: The interval the counting parts use.
SHORT_MS = 2_000
#: Long enough that a transaction committing well within it did not wait for it.
LONG_MS = 60_000
#: A transaction to an idle chain must commit within this (a block interval, a round, and the
#: machine being busy), far below LONG_MS.
COMMIT_S = 20.0


def wait_until(what: str, cond: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.1)


def configure(home: Path, **consensus: Any) -> None:
    config = NodeConfig.load(home)
    changed = dataclasses.replace(config.consensus, **consensus)
    dataclasses.replace(config, consensus=changed).save()
    assert NodeConfig.load(home).consensus == changed


def get(url: str, path: str) -> Any:
    r = httpx.get(f"{url}{path}", timeout=10)
    r.raise_for_status()
    return r.json()


def height(url: str) -> int:
    return int(get(url, "/v1/status")["height"])


def block_times(url: str, first: int, last: int) -> list[int]:
    return [int(get(url, f"/v1/blocks/{h}")["header"]["time"]) for h in range(first, last + 1)]


def count_idle_blocks(url: str, watch_s: float) -> tuple[int, int]:
    """Heights before and after ``watch_s`` seconds with nothing sent."""
    h0 = height(url)
    time.sleep(watch_s)
    return h0, height(url)


def assert_one_per_interval(url: str, h0: int, h1: int, watch_s: float, interval_ms: int) -> None:
    assert 1 <= h1 - h0 <= watch_s * 1000 / interval_ms + 1, (h0, h1)
    times = block_times(url, h0, h1)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= interval_ms, gaps
    for h in range(h0 + 1, h1 + 1):
        assert get(url, f"/v1/blocks/{h}")["txs"] == [], f"block {h} is not empty"


def is_idle(url: str) -> bool:
    return "idle" in get(url, "/v1/consensus")["waiting_for"]


def assert_idle(url: str) -> str:
    words: str = get(url, "/v1/consensus")["waiting_for"]
    assert words.startswith("transactions (idle)"), words
    return words


def send_and_time(url: str, sender: Signer, to: bytes, genesis: Genesis) -> tuple[int, float]:
    """Send a transfer to an idle chain; the height it committed at and the seconds it took."""
    with Client(url, chain_id=genesis.chain_id, validators=genesis.validator_set) as c:
        started = time.monotonic()
        tx_hash = c.send(sender, "token", "transfer", {"to": to, "amount": 1}, wait=False)
        receipt = c.wait_for_commit(tx_hash, timeout=COMMIT_S)
        took = time.monotonic() - started
        assert receipt.ok, receipt
        info = c.tx(tx_hash)
        assert info.committed and info.height is not None
        return info.height, took


# -- one validator ---------------------------------------------------------------------------
def test_single_validator_idle_blocks_transactions_and_restart(tmp_path: Path) -> None:
    node = NodeProcess(tmp_path / "node")
    node.start()  # creates the demo home (default: one empty block per 10 s)
    try:
        wait_until("idle", lambda: is_idle(node.url), 10)
        assert "next empty block in " in assert_idle(node.url)
        assert node.stop() == 0
        configure(node.home, create_empty_blocks=True, empty_blocks_interval_ms=SHORT_MS)
        node.start()
        watch = 3.5 * SHORT_MS / 1000
        h0, h1 = count_idle_blocks(node.url, watch)
        assert_one_per_interval(node.url, h0, h1, watch, SHORT_MS)
        assert "next empty block in " in assert_idle(node.url)

        # A transaction does not wait for the empty block.
        assert node.stop() == 0
        configure(node.home, empty_blocks_interval_ms=LONG_MS)
        node.start()
        genesis = Genesis.load(node.home / "config" / "genesis.json")
        alice, bob = node.signer("alice"), node.signer("bob")
        wait_until("idle", lambda: is_idle(node.url), 10)
        idle_at = height(node.url)
        at, took = send_and_time(node.url, alice, bob.address, genesis)
        assert at == idle_at + 1, (idle_at, at)
        print(f"solo: a transaction to the idle chain committed in {took:.2f} s")

        # Killed while idle: back at the same height, idle, and the next transaction commits.
        wait_until("idle again", lambda: is_idle(node.url), 10)
        before = height(node.url)
        node.kill9()
        node.start()
        assert height(node.url) == before
        wait_until("idle after the restart", lambda: is_idle(node.url), 10)
        time.sleep(2)
        assert height(node.url) == before
        at, _ = send_and_time(node.url, alice, bob.address, genesis)
        assert at == before + 1

        # create_empty_blocks = false: no empty block, however long the wait; still at once.
        assert node.stop() == 0
        configure(node.home, create_empty_blocks=False, empty_blocks_interval_ms=SHORT_MS)
        node.start()
        wait_until("idle", lambda: is_idle(node.url), 10)
        assert get(node.url, "/v1/consensus")["waiting_for"] == (
            "transactions (idle; empty blocks are off)"
        )
        h0, h1 = count_idle_blocks(node.url, 2.5 * SHORT_MS / 1000)
        assert h1 == h0
        at, _ = send_and_time(node.url, alice, bob.address, genesis)
        assert at == h1 + 1
    finally:
        node.stop()


# -- four validators -------------------------------------------------------------------------
def test_four_validators_idle_blocks_transactions_interval_0_and_restart(tmp_path: Path) -> None:
    with LocalNet(
        tmp_path, validators=4, orgs=2, params=FAST_PARAMS, empty_blocks_interval_ms=SHORT_MS
    ) as net:
        net.start_all()
        net.wait_height(2, timeout=60)
        urls = [net.api(i) for i in range(net.size)]
        watch = 4.5 * SHORT_MS / 1000
        h0, h1 = count_idle_blocks(urls[0], watch)
        assert_one_per_interval(urls[0], h0, h1, watch, SHORT_MS)
        wait_until(
            "every node idle",
            lambda: all(
                get(u, "/v1/consensus")["waiting_for"].startswith("transactions (idle")
                for u in urls
            ),
            2 * SHORT_MS / 1000 + 10,
        )

        # Interval 0 with create_empty_blocks = true: blocks without waiting, as before the
        # setting: more blocks in a few seconds than one per SHORT_MS could make.
        net.stop_many(range(net.size))
        for i in range(net.size):
            net.configure(i, "consensus", create_empty_blocks=True, empty_blocks_interval_ms=0)
        net.start_all()
        net.wait_height(1, timeout=60)
        h0 = height(urls[0])
        watch = 2 * SHORT_MS / 1000
        time.sleep(watch)
        assert height(urls[0]) - h0 > watch * 1000 / SHORT_MS + 1
        assert "idle" not in get(urls[0], "/v1/consensus")["waiting_for"]

        # A long interval, every node killed (kill -9) while idle and restarted: the same
        # height, idle, no block by itself; a transaction sent to any one node commits on all
        # of them at once (its gossip wakes the others), not at the next empty block.
        net.stop_many(range(net.size))
        for i in range(net.size):
            net.configure(i, "consensus", empty_blocks_interval_ms=LONG_MS)
        net.start_all()
        wait_until(
            "every node idle",
            lambda: all(is_idle(u) for u in urls),
            30,
        )
        top = net.wait_height(0)
        idle_at = max(h for h in top.values() if h is not None)
        net.wait_height(idle_at, timeout=30)
        for i in range(net.size):
            net.kill(i)
        net.start_all()
        assert all(height(u) == idle_at for u in urls), net.heights()
        wait_until(
            "every node idle after the restart",
            lambda: all(is_idle(u) for u in urls),
            30,
        )
        time.sleep(2)
        assert all(height(u) == idle_at for u in urls), net.heights()

        genesis = Genesis.load(net.layout.genesis_file)
        alice, bob = net.signer("alice"), net.signer("bob")
        for sender, via in ((alice, 2), (bob, 1)):
            before = height(urls[via])
            at, took = send_and_time(urls[via], sender, alice.address, genesis)
            print(f"4 validators: a transaction to the idle chain committed in {took:.2f} s")
            assert at == before + 1
            net.wait_height(at, timeout=COMMIT_S)
            # Idle again afterwards.
            wait_until(
                "idle again",
                lambda: all(is_idle(u) for u in urls),
                30,
            )
            assert max(h for h in net.heights().values() if h is not None) == at
