"""Four validators of two organisations as real processes (mutual TLS between them, RocksDB
under each): they commit under load, survive kill -9 of each node in turn, and a node that
was away for 200 blocks catches up by block sync and votes again.

What "no fork" and "nothing lost" mean here, checked the same way in every test:

* every node serves the same block (hash, so header, transactions, receipts root and state
  root) at every height up to a height all of them have reached;
* every block any node reported while the test ran (recorded by an :class:`Observer` per node,
  before any kill) is still that block on every node at the end;
* every transaction any node reported committed is in that block on every node, exactly once;
  its receipt is bound by the header's results root (so equal headers mean equal receipts),
  and looked up (``GET /v1/txs``: committed at the same height and index, equal receipts on
  every node) for a sample, plus, in the kill test, one receipt per block recorded when the
  block was first seen. A lookup decodes the whole block (~20 ms for a large one), which is
  why not every transaction is looked up on every node.

Load: a :class:`Load` thread keeps up to ``WINDOW`` transfers per sender in flight, spread
over the API of every node that is up. Transactions are deterministic (sender, nonce, amount
1 to one sink), so re-submitting a nonce after a crash lost it from every mempool re-sends the
very same transaction: a sender whose committed nonce stalls is rewound to it.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from netproc import FAST_PARAMS, LocalNet  # type: ignore[import-not-found]

from citychain.crypto import ED25519, Signer
from citychain.errors import CitychainError
from citychain.node.processes import log_tail
from citychain.sdk import Client
from citychain.services.token.shapes import balance_key
from citychain.types import Receipt, Transaction
from citychain.types.genesis import ChainParams

pytestmark = pytest.mark.slow

SENDERS = 8
#: Transfers per sender kept in flight (submitted, not yet committed).
WINDOW = 150
#: A sender whose committed nonce has not moved for this long is re-sent from it.
STALL_S = 4.0

#: The 200-block test: blocks as fast as the nodes go, a short wait for a missing proposer.
#: A height whose proposer is away takes timeout_propose + timeout_precommit (paper lines
#: 57-60, 47-48 and 65-67) plus the votes' round trips: a quarter of the heights here.
SPRINT_PARAMS = ChainParams(
    block_interval_ms=10,
    timeout_propose_ms=150,
    timeout_prevote_ms=100,
    timeout_precommit_ms=100,
    timeout_delta_ms=100,
)


# -- diagnostics ---------------------------------------------------------------------------------
def report(net: LocalNet, lines: int = 40) -> str:
    """Every node's height and the tail of its log."""
    parts = [f"heights: {net.heights()}"]
    for i in range(net.size):
        state = "running" if net.running(i) else "not running"
        parts.append(f"--- node{i} ({state}) ---\n{log_tail(net.log_file(i), lines)}")
    return "\n".join(parts)


@contextlib.contextmanager
def explained(net: LocalNet) -> Iterator[None]:
    """On failure, add every node's height and log tail to the error."""
    try:
        yield
    except Exception as exc:
        exc.add_note(report(net))
        raise


def wait_for(what: str, cond: Any, timeout: float, every: float = 0.2) -> Any:
    """Poll ``cond()`` until it returns something truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(every)


# -- load ------------------------------------------------------------------------------------------
class Load(threading.Thread):
    """Transfers of 1 from each sender to ``sink``, up to ``WINDOW`` in flight per sender,
    over every node not in ``down``; ``total`` per sender, or until stopped."""

    def __init__(
        self,
        net: LocalNet,
        chain_id: str,
        senders: list[Signer],
        sink: bytes,
        total: int | None = None,
    ) -> None:
        super().__init__(daemon=True, name="load")
        self.net, self.chain_id, self.senders, self.sink, self.total = (
            net,
            chain_id,
            senders,
            sink,
            total,
        )
        self.down: set[int] = set()
        self.stop_flag = threading.Event()
        #: hash (hex) of every transaction some node admitted (code ok), with (sender, nonce).
        self.accepted: dict[str, tuple[int, int]] = {}
        #: refusals other than the expected ones, for the failure message.
        self.odd: list[str] = []
        self.committed = [0] * len(senders)
        self.rewinds = 0
        self.error: BaseException | None = None
        self._txs: dict[tuple[int, int], Transaction] = {}

    def tx(self, s: int, nonce: int) -> Transaction:
        key = (s, nonce)
        t = self._txs.get(key)
        if t is None:
            t = self._txs[key] = Transaction.create(
                self.senders[s],
                chain_id=self.chain_id,
                nonce=nonce,
                contract="token",
                method="transfer",
                args={"to": self.sink, "amount": 1},
            )
        return t

    @property
    def done(self) -> bool:
        return self.total is not None and all(c >= self.total for c in self.committed)

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # reported by the test, not as a thread warning
            self.error = exc

    def _run(self) -> None:
        clients = {i: Client(self.net.api(i), timeout=5) for i in range(self.net.size)}
        nxt = [0] * len(self.senders)
        moved = [time.monotonic()] * len(self.senders)
        turn = 0
        try:
            while not self.stop_flag.is_set() and not self.done:
                up = [i for i in range(self.net.size) if i not in self.down]
                if not up:
                    time.sleep(0.1)
                    continue
                turn += 1
                reader = clients[up[turn % len(up)]]
                batches: dict[int, list[tuple[int, Transaction]]] = {}
                try:
                    nonces = [reader.account(s.address).nonce for s in self.senders]
                except CitychainError:
                    time.sleep(0.1)
                    continue
                now = time.monotonic()
                for s, c in enumerate(nonces):
                    if c > self.committed[s]:
                        self.committed[s], moved[s] = c, now
                    c = self.committed[s]
                    if nxt[s] > c and now - moved[s] > STALL_S:
                        nxt[s], moved[s] = c, now  # lost from every mempool: send again
                        self.rewinds += 1
                    top = c + WINDOW if self.total is None else min(c + WINDOW, self.total)
                    start = max(nxt[s], c)
                    if start < top:
                        # a sender's transactions go to one node at a time, in nonce order
                        batches.setdefault(up[s % len(up)], []).extend(
                            (s, self.tx(s, n)) for n in range(start, top)
                        )
                        nxt[s] = top
                for node, txs in batches.items():
                    try:
                        results = clients[node].submit_batch([t for _, t in txs])
                    except CitychainError:
                        continue  # the node is down: the stall rule re-sends what it lost
                    for (s, t), r in zip(txs, results, strict=True):
                        if r.ok:
                            self.accepted[t.hash.hex()] = (s, t.nonce)
                        elif r.code not in ("duplicate", "nonce_too_low"):
                            self.odd.append(f"{r.code}: {r.message}")
                time.sleep(0.05)
        finally:
            for c in clients.values():
                c.close()


def fund_senders(net: LocalNet, count: int) -> tuple[str, list[Signer], bytes]:
    """``count`` new accounts minted 10^9 each by alice (the issuer); a new sink address."""
    alice = net.signer("alice")
    senders = [Signer.generate(ED25519) for _ in range(count)]
    sink = Signer.generate(ED25519).address
    net.register(senders)
    with Client(net.api(0)) as c:
        chain_id = c.status().chain_id
        mints = [
            Transaction.create(
                alice,
                chain_id=chain_id,
                nonce=n,
                contract="token",
                method="mint",
                args={"to": s.address, "amount": 10**9},
            )
            for n, s in enumerate(senders)
        ]
        results = c.submit_batch(mints)
        assert all(r.ok for r in results), results
        for t in mints:
            assert c.wait_for_commit(t.hash, timeout=30).ok
    return chain_id, senders, sink


# -- observing ---------------------------------------------------------------------------------
class Observer(threading.Thread):
    """Records every block node ``i`` reports: height -> (hash, state root, tx hashes), and
    the receipt (height, index, receipt) of the first transaction of each block."""

    def __init__(self, net: LocalNet, i: int) -> None:
        super().__init__(daemon=True, name=f"observer{i}")
        self.net, self.i = net, i
        self.blocks: dict[int, tuple[str, str, list[str]]] = {}
        self.receipts: dict[str, tuple[int, int, Receipt]] = {}
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()
        self.errors: list[str] = []

    def run(self) -> None:
        with Client(self.net.api(self.i), timeout=2) as c:
            while not self.stop_flag.is_set():
                try:
                    self._poll(c)
                except Exception as exc:  # the node is down, or answered oddly: both noted
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                    del self.errors[:-20]
                self.stop_flag.wait(0.1)

    def _poll(self, c: Client) -> None:
        top = c.status().height
        for h in range(max(self.blocks, default=0) + 1, top + 1):
            b = self.net.get(self.i, f"/v1/blocks/{h}", timeout=2)
            hashes = [t["hash"] for t in b["txs"]]
            if hashes:
                info = c.tx(hashes[0])
                if not (info.receipt is not None and info.height == h and info.index == 0):
                    raise ValueError(f"block {h} holds {hashes[0]}, but the node says {info}")
                with self.lock:
                    self.receipts[hashes[0]] = (h, 0, info.receipt)
            with self.lock:
                self.blocks[h] = (b["hash"], b["header"]["state_root"], hashes)

    def snapshot(self) -> tuple[dict[int, tuple[str, str, list[str]]], dict[str, Any]]:
        with self.lock:
            return dict(self.blocks), dict(self.receipts)


class EventTap(threading.Thread):
    """Every ``token.transfer`` event node ``i`` streams (WebSocket ``/v1/events``): a
    transaction's event is streamed once its ok receipt is committed. Subscribed on creation;
    ends after ``expect`` events."""

    def __init__(self, net: LocalNet, i: int, expect: int) -> None:
        super().__init__(daemon=True, name=f"events{i}")
        self.expect = expect
        #: tx hash (hex) -> every (height, index) an event of it came from
        self.seen: dict[str, list[tuple[int, int]]] = {}
        self.count = 0
        self.error: BaseException | None = None
        with Client(net.api(i)) as c:
            self._sub = c.subscribe("token", "transfer")

    def run(self) -> None:
        try:
            for ev in self._sub:
                self.seen.setdefault(ev.tx_hash.hex(), []).append((ev.height, ev.tx_index))
                self.count += 1
                if self.count >= self.expect:
                    break
        except BaseException as exc:  # reported by the test, not as a thread warning
            self.error = exc
        finally:
            self._sub.close()


def fetch_blocks(net: LocalNet, i: int, upto: int) -> list[dict[str, Any]]:
    """Blocks 1..upto of node ``i`` (index 0 is block 1)."""
    with httpx.Client(base_url=net.api(i), timeout=10) as c:
        out = []
        for h in range(1, upto + 1):
            r = c.get(f"/v1/blocks/{h}")
            r.raise_for_status()
            out.append(r.json())
        return out


def assert_same_chain(net: LocalNet) -> tuple[int, list[dict[str, Any]]]:
    """Every node has the same block at every height up to the lowest node's height; that
    height and the blocks (of node 0)."""
    top = min(h for h in net.heights().values() if h is not None)
    assert len([h for h in net.heights().values() if h is not None]) == net.size
    chains: list[list[dict[str, Any]]] = [[] for _ in range(net.size)]
    errors: list[BaseException] = []

    def fetch(i: int) -> None:
        try:
            chains[i] = fetch_blocks(net, i, top)
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=fetch, args=(i,)) for i in range(net.size)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    for h in range(top):
        hashes = {chains[i][h]["hash"] for i in range(net.size)}
        assert len(hashes) == 1, f"fork at height {h + 1}: {hashes}"
        roots = {chains[i][h]["header"]["state_root"] for i in range(net.size)}
        assert len(roots) == 1, f"state roots differ at height {h + 1}: {roots}"
        assert chains[0][h]["header"]["height"] == h + 1
        if h:
            assert chains[0][h]["header"]["prev_hash"] == chains[0][h - 1]["hash"]
    return top, chains[0]


def tx_places(blocks: list[dict[str, Any]]) -> dict[str, list[tuple[int, int]]]:
    """tx hash -> every (height, index) it appears at."""
    places: dict[str, list[tuple[int, int]]] = {}
    for b in blocks:
        for k, t in enumerate(b["txs"]):
            places.setdefault(t["hash"], []).append((b["height"], k))
    return places


def check_receipts(
    net: LocalNet, expected: dict[str, tuple[int, int, Receipt | None]]
) -> dict[str, Receipt]:
    """Every node reports each tx committed at the expected (height, index), with the same
    receipt (the expected one where given). One thread per node."""
    found: list[dict[str, Receipt]] = [{} for _ in range(net.size)]
    errors: list[str] = []

    def check(i: int) -> None:
        with Client(net.api(i), timeout=10) as c:
            for tx_hash, (height, index, receipt) in expected.items():
                info = c.tx(tx_hash)
                if not (info.committed and info.height == height and info.index == index):
                    errors.append(
                        f"node{i}: tx {tx_hash} is {info.status} at {info.height}/{info.index},"
                        f" expected {height}/{index}"
                    )
                    return
                assert info.receipt is not None
                if receipt is not None and info.receipt != receipt:
                    errors.append(f"node{i}: receipt of {tx_hash} changed: {info.receipt}")
                    return
                found[i][tx_hash] = info.receipt

    threads = [threading.Thread(target=check, args=(i,)) for i in range(net.size)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, "\n".join(errors)
    for i in range(1, net.size):
        assert found[i] == found[0], f"node{i} and node0 differ in receipts"
    return found[0]


# -- the tests -----------------------------------------------------------------------------------
@pytest.fixture
def net(tmp_path: Path) -> Iterator[LocalNet]:
    with LocalNet(tmp_path, validators=4, orgs=2, params=FAST_PARAMS) as n:
        n.start_all()
        yield n


def test_four_validators_of_two_orgs_commit_transfers_under_load(net: LocalNet) -> None:
    """3,200 transfers over the four APIs: every one admitted is committed exactly once, with
    an ok receipt and its event on every node; one chain everywhere; the same proven state."""
    per_sender = 400
    with explained(net):
        # Two organisations, every node connected to the three others over mutual TLS.
        orgs = {n.org for n in net.layout.nodes}
        assert orgs == {"org1", "org2"}
        for i in range(net.size):
            wait_for(
                f"node{i} connected to its 3 peers",
                lambda i=i: (
                    len([p for p in net.get(i, "/v1/net/peers")["peers"] if p["connected"]]) == 3
                ),
                30,
            )
        total = SENDERS * per_sender
        taps = [EventTap(net, i, total) for i in range(net.size)]
        for tap in taps:
            tap.start()
        chain_id, senders, sink = fund_senders(net, SENDERS)
        load = Load(net, chain_id, senders, sink, total=per_sender)
        started = time.monotonic()
        load.start()
        load.join(120)
        assert load.error is None, repr(load.error)
        assert not load.is_alive(), f"load not done in 120 s; committed nonces {load.committed}"
        elapsed = time.monotonic() - started
        print(f"{total} transfers committed in {elapsed:.1f} s ({total / elapsed:.0f}/s)")
        assert not load.odd, load.odd[:10]
        assert load.rewinds == 0, "no node failed, yet transactions were lost"
        expected = {load.tx(s, n).hash.hex() for s in range(SENDERS) for n in range(per_sender)}
        assert set(load.accepted) == expected

        # Every node reaches the height where the last transfer went in; same chain everywhere.
        target = max(h for h in net.heights().values() if h is not None)
        net.wait_height(target, timeout=30)
        _, blocks = assert_same_chain(net)
        places = tx_places(blocks)
        for tx_hash in expected:
            assert len(places.get(tx_hash, [])) == 1, f"{tx_hash} at {places.get(tx_hash)}"
        # Each one's receipt is committed on every node: ok, with its transfer event, which
        # every node streamed exactly once, from the transaction's place in the block.
        for i, tap in enumerate(taps):
            tap.join(30)
            assert tap.error is None, f"node{i}'s event stream: {tap.error!r}"
            assert tap.seen.keys() == expected, f"node{i} streamed {tap.count} of {total}"
            for tx_hash, where in tap.seen.items():
                assert where == places[tx_hash], f"node{i}: {tx_hash} events at {where}"
        # Whole receipts, equal on every node, for a sample (a lookup decodes its block).
        sample = random.Random(7).sample(sorted(expected), 150)
        receipts = check_receipts(net, {t: (*places[t][0], None) for t in sample})
        assert all(r.ok and r.events for r in receipts.values())
        # The same proven state everywhere: the sink got every transfer.
        for i in range(net.size):
            with Client(net.api(i)) as c:
                proven = c.get_state(balance_key(sink))
                assert proven.verified and proven.height >= target
                assert c.balance(sink) == total


def test_kill9_each_node_in_turn_under_load(net: LocalNet) -> None:
    """kill -9 each node in turn under load: three of four keep committing transfers; the
    node restarts at least where it was, rejoins; nothing any node reported is lost or forked."""
    rng = random.Random(20261205)
    with explained(net):
        chain_id, senders, sink = fund_senders(net, SENDERS)
        observers = [Observer(net, i) for i in range(net.size)]
        for o in observers:
            o.start()
        load = Load(net, chain_id, senders, sink)
        load.start()
        wait_for(
            "transfers committing, every node's blocks being recorded",
            lambda: sum(load.committed) > 500 and all(o.snapshot()[0] for o in observers),
            30,
        )
        reported: dict[int, tuple[str, str, list[str]]] = {}
        receipts: dict[str, tuple[int, int, Receipt]] = {}

        def note(blocks: dict[int, tuple[str, str, list[str]]], rs: dict[str, Any]) -> None:
            for h, b in blocks.items():
                assert reported.setdefault(h, b)[0] == b[0], f"two blocks reported at {h}"
            receipts.update(rs)

        try:
            for victim in range(net.size):
                others = [i for i in range(net.size) if i != victim]
                time.sleep(rng.uniform(0.5, 2.0))  # a random instant under load
                t0 = time.monotonic()
                net.kill(victim)
                load.down.add(victim)
                time.sleep(0.3)  # let the observers notice
                before, rs = observers[victim].snapshot()
                note(before, rs)
                assert before, f"node{victim} reported no block: {observers[victim].errors}"
                for o in observers:
                    note(*o.snapshot())

                # Three of four keep committing, transfers included.
                base = max(h for h in net.heights(others).values() if h is not None)
                committed = sum(load.committed)
                net.wait_height(base + 5, others, timeout=30)
                wait_for(
                    f"transfers committed while node{victim} is down",
                    lambda c=committed: sum(load.committed) > c + 100,
                    30,
                )

                net.start(victim)
                h = net.height(victim)
                assert h is not None and h >= max(before), (
                    f"node{victim} restarted at {h}, below the {max(before)} it reported"
                )
                target = max(h for h in net.heights(others).values() if h is not None)
                net.wait_height(target, [victim], timeout=60)
                # Back in the load once caught up: while it syncs, its mempool (rightly)
                # refuses nonces far ahead of the state it has.
                load.down.discard(victim)
                assert load.error is None, repr(load.error)
                print(
                    f"node{victim}: killed, 3 committed, back at {target} in "
                    f"{time.monotonic() - t0:.1f} s"
                )
        finally:
            load.stop_flag.set()
            load.join(10)
            for o in observers:
                o.stop_flag.set()
            for o in observers:
                o.join(10)
                note(*o.snapshot())
        assert load.error is None, repr(load.error)
        assert not load.odd, load.odd[:10]

        top, blocks = assert_same_chain(net)
        # Every block any node reported is the block every node has now.
        for h, (block_hash, state_root, hashes) in sorted(reported.items()):
            if h > top:
                continue
            b = blocks[h - 1]
            assert b["hash"] == block_hash, f"block {h} changed after a kill"
            assert b["header"]["state_root"] == state_root
            assert [t["hash"] for t in b["txs"]] == hashes
        places = tx_places(blocks)
        seen = {t: h for h, (_, _, hs) in reported.items() if h <= top for t in hs}
        assert len(seen) > 1000, f"only {len(seen)} transfers committed: too little load"
        for tx_hash, h in seen.items():
            assert [p[0] for p in places[tx_hash]] == [h], f"{tx_hash}: {places[tx_hash]}"
        # Receipts: the ones recorded as blocks were first seen, and a sample of the rest.
        sample = rng.sample(sorted(seen), 300)
        expected: dict[str, tuple[int, int, Receipt | None]] = {
            t: (*places[t][0], None) for t in sample
        }
        expected.update({t: r for t, r in receipts.items() if r[0] <= top})
        assert all(r.ok for r in check_receipts(net, expected).values())


def test_node_away_for_200_blocks_catches_up_by_block_sync_and_votes_again(
    tmp_path: Path,
) -> None:
    """A node stopped (SIGTERM) while the others commit 200 blocks fetches them by block
    sync, then its precommits are in the other nodes' commits again; one chain everywhere."""
    away = 3
    # Nothing is sent to this chain: it makes empty blocks as fast as it can (interval 0, no
    # waiting for transactions), so 200 blocks take seconds.
    with (
        LocalNet(
            tmp_path, validators=4, orgs=2, params=SPRINT_PARAMS, empty_blocks_interval_ms=0
        ) as net,
        explained(net),
    ):
        net.start_all()
        net.wait_height(3)
        assert net.stop(away) == 0, "SIGTERM must stop a node cleanly"
        stopped_at = max(h for h in net.heights().values() if h is not None)
        others = [i for i in range(net.size) if i != away]
        started = time.monotonic()
        net.wait_height(stopped_at + 200, others, timeout=120)
        print(f"200 blocks without node{away} in {time.monotonic() - started:.1f} s")

        started = time.monotonic()
        net.start(away)
        target = max(h for h in net.heights(others).values() if h is not None)
        net.wait_height(target, [away], timeout=60)
        caught_up = net.height(away)
        assert caught_up is not None
        print(f"node{away} caught up to {caught_up} in {time.monotonic() - started:.1f} s")
        sync = net.get(away, "/v1/consensus")["details"]["sync"]
        assert sync["synced_blocks"] >= 190, sync

        # It votes again: its precommit is in the commits the OTHER nodes stored for blocks
        # decided after it caught up (a commit holds the first 2/3+ precommits to arrive).
        me = net.layout.nodes[away].validator_public_key
        signed: set[int] = set()
        looked = dict.fromkeys(others, caught_up)

        def signed_again() -> bool:
            for i in others:
                top = net.height(i) or 0
                for h in range(looked[i] + 1, top + 1):
                    sigs = net.get(i, f"/v1/blocks/{h}")["commit"]["signatures"]
                    if any(s["validator"] == me for s in sigs):
                        signed.add(h)
                looked[i] = max(looked[i], top)
            return len(signed) >= 3

        started = time.monotonic()
        wait_for(f"node{away}'s signature in 3 commits after height {caught_up}", signed_again, 30)
        print(f"signed again at {sorted(signed)} after {time.monotonic() - started:.1f} s")
        net.wait_height(caught_up + 10, timeout=30)
        started = time.monotonic()
        assert_same_chain(net)
        print(f"chains compared in {time.monotonic() - started:.1f} s")
