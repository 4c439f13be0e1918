"""Soak run: an N-validator local network under load, with validators killed, restarted,
partitioned and paused at random (seeded), then checked for forks and lost transactions.

    .venv/bin/python bench/soak.py --validators 4 --duration 600 --seed 42
    .venv/bin/python bench/soak.py --validators 4 --cycles 50 --seed 7

The network is the one the end-to-end tests run (``tests/e2e/netproc.py``: real node processes
started as ``citychain net up`` starts them, every p2p link through the cutting proxy of
``tests/e2e/faultproxy.py``). A loader thread sends signed transfers from many accounts through
the SDK to a healthy node, recording every transaction a node accepted (202, ``ok``); an
observer thread records every transaction it sees committed. The chaos loop, driven by
``random.Random(seed)``, runs one fault at a time (so never more than ``f`` validators are
faulty and the network stays live): SIGKILL + restart of a validator (a *cycle*), a partition
that cuts one validator off from the others (healed after a moment), or SIGSTOP / SIGCONT.

At the end every fault is healed, every node started, the load stopped, and once all nodes
stand at the same height the checks run on every node: each block's hash, header (so state,
results and tx roots) and transaction list at every height are equal (else a *fork*); the full
receipts of a sample of transactions and the nonce of every sender at that height are equal; every
transaction seen committed (on any node, at any time) is in every node's chain (else *lost*).
Accepted transactions that were never committed are counted apart: a mempool that does not
survive ``kill -9`` may drop them (issue 15 part 4), which is not a loss of a committed one.

Prints ``bench soak: <cycles> cycles, <partitions> partitions, <pauses> pauses, <blocks>
blocks, <txs> committed txs, <forks> forks, <lost> lost, seed <seed>, <seconds> s`` and exits
1 on a fork, a loss or a failed check.
"""

from __future__ import annotations

import argparse
import random
import signal
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "e2e"))  # netproc, faultproxy: inside this repo

from netproc import FAST_PARAMS, LocalNet  # type: ignore[import-not-found,unused-ignore]  # noqa: E402

from citychain.crypto import ED25519, Signer  # noqa: E402
from citychain.sdk import Client  # noqa: E402
from citychain.types import Transaction  # noqa: E402
from citychain.types.state_keys import account_nonce_key  # noqa: E402

SENDERS = 24
PER_SENDER = 4  # transfers per sender per loader round


@dataclass
class Tally:
    cycles: int = 0
    partitions: int = 0
    pauses: int = 0
    accepted: set[str] = field(default_factory=set)
    committed: set[str] = field(default_factory=set)
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class Result:
    cycles: int
    partitions: int
    pauses: int
    blocks: int
    txs: int
    forks: int
    lost: int
    never_committed: int
    seed: int
    seconds: float
    failures: list[str]

    def line(self) -> str:
        return (
            f"bench soak: {self.cycles} cycles, {self.partitions} partitions, {self.pauses} "
            f"pauses, {self.blocks} blocks, {self.txs} committed txs, {self.forks} forks, "
            f"{self.lost} lost, seed {self.seed}, {self.seconds:.0f} s"
        )

    @property
    def ok(self) -> bool:
        return self.forks == 0 and self.lost == 0 and not self.failures


class Soak:
    def __init__(self, net: LocalNet, rng: random.Random, chain_id: str) -> None:
        self.net = net
        self.rng = rng
        self.chain_id = chain_id
        self.tally = Tally()
        self.faulty: set[int] = set()  # nodes killed, paused or cut off right now
        self.stop = threading.Event()
        self.senders = [Signer.generate(ED25519) for _ in range(SENDERS)]
        self.sink = Signer.generate(ED25519).address
        self.f = (net.size - 1) // 3
        self.t0 = time.monotonic()
        self.verbose = False
        self.receipts = 500  # transactions whose full receipts are compared on every node
        self.never_committed = 0

    def say(self, what: str) -> None:
        if self.verbose:
            print(f"[{time.monotonic() - self.t0:7.1f}s] {what}", file=sys.stderr, flush=True)

    # -- setup ------------------------------------------------------------------------------
    def fund(self) -> None:
        self.net.register(self.senders)
        alice = self.net.signer("alice")
        with Client(self.net.api(0), timeout=10) as c:
            for s in self.senders:
                c.send(alice, "token", "mint", {"to": s.address, "amount": 10**12}, wait=False)
            c.send(alice, "token", "transfer", {"to": self.sink, "amount": 1})

    def healthy(self) -> list[int]:
        return [i for i in range(self.net.size) if i not in self.faulty]

    # -- load -------------------------------------------------------------------------------
    def load(self) -> None:
        lrng = random.Random(self.rng.random())
        while not self.stop.is_set():
            node = lrng.choice(self.healthy() or [0])
            try:
                with Client(self.net.api(node), timeout=5) as c:
                    for _ in range(20):
                        if self.stop.is_set() or node in self.faulty:
                            break
                        txs = []
                        for s in self.senders:
                            nonce = c.account(s.address).pending_nonce
                            txs += [
                                Transaction.create(
                                    s,
                                    chain_id=self.chain_id,
                                    nonce=nonce + k,
                                    contract="token",
                                    method="transfer",
                                    args={"to": self.sink, "amount": 1},
                                )
                                for k in range(PER_SENDER)
                            ]
                        results = c.submit_batch(txs)
                        ok = {r.tx_hash.hex() for r in results if r.ok and r.tx_hash is not None}
                        with self.tally.lock:
                            self.tally.accepted |= ok
                        time.sleep(0.15)  # keep the mempools near the chain
            except Exception:  # the node is being killed or cut off: try the next one
                time.sleep(0.1)

    def observe(self) -> None:
        seen: dict[int, int] = {}  # node -> last height read
        while not self.stop.is_set():
            for node in self.healthy():
                try:
                    with httpx.Client(base_url=self.net.api(node), timeout=2) as c:
                        top = int(c.get("/v1/status").json()["height"])
                        start = max(seen.get(node, 0) + 1, top - 30)
                        for h in range(start, top + 1):
                            b = c.get(f"/v1/blocks/{h}").json()
                            with self.tally.lock:
                                self.tally.committed |= {t["hash"] for t in b["txs"]}
                            seen[node] = h
                except (httpx.HTTPError, KeyError, ValueError):
                    pass
                if self.stop.is_set():
                    return
            time.sleep(0.2)

    # -- faults -----------------------------------------------------------------------------
    def wait_caught_up(self, i: int, timeout: float = 20.0) -> None:
        """Until node ``i`` stands within two blocks of the highest healthy node."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.stop.is_set():
            hs = self.net.heights()
            mine = hs.get(i)
            top = max((h for h in hs.values() if h is not None), default=0)
            if mine is not None and mine >= top - 2:
                return
            time.sleep(0.1)

    def kill_restart(self, i: int) -> None:
        self.faulty.add(i)
        try:
            self.net.kill(i)
            time.sleep(self.rng.uniform(0.0, 0.5))
            self.net.start(i, timeout=60)
            self.tally.cycles += 1
        finally:
            self.faulty.discard(i)
        self.wait_caught_up(i)

    def partition(self, i: int) -> None:
        assert self.net.proxy is not None
        self.faulty.add(i)
        try:
            self.net.proxy.isolate(i)
            time.sleep(self.rng.uniform(0.5, 2.0))
            self.net.proxy.heal()
            self.tally.partitions += 1
        finally:
            self.faulty.discard(i)
        self.wait_caught_up(i)

    def pause(self, i: int) -> None:
        p = self.net.procs[i]
        self.faulty.add(i)
        try:
            p.signal(signal.SIGSTOP)
            time.sleep(self.rng.uniform(0.3, 1.5))
            p.signal(signal.SIGCONT)
            self.tally.pauses += 1
        finally:
            self.faulty.discard(i)
        self.wait_caught_up(i)

    def chaos(self, until: float, cycles: int | None, partitions: int, pauses: int) -> None:
        """Faults one at a time until ``until`` (monotonic) or, with ``cycles``, until that
        many kill/restart cycles and at least ``partitions`` partitions and ``pauses``
        pauses (spread among them)."""
        t = self.tally
        while not self.stop.is_set():
            if cycles is not None:
                if t.cycles >= cycles and t.partitions >= partitions and t.pauses >= pauses:
                    return
            elif time.monotonic() >= until:
                return
            i = self.rng.randrange(self.net.size)
            roll = self.rng.random()
            if cycles is not None and t.cycles >= cycles:
                roll = 0.95 if t.partitions < partitions else 0.85
            self.say(f"fault {'kill' if roll < 0.8 else 'pause' if roll < 0.9 else 'cut'} node{i}")
            if roll < 0.8:
                self.kill_restart(i)
            elif roll < 0.9:
                self.pause(i)
            else:
                self.partition(i)

    # -- checks -----------------------------------------------------------------------------
    def settle(self, timeout: float = 120.0) -> int:
        """Every fault healed, every node up; the common height all nodes reached."""
        if self.net.proxy is not None:
            self.net.proxy.heal()
        for i in range(self.net.size):
            if self.net.running(i):
                self.net.procs[i].signal(signal.SIGCONT)
            else:
                self.net.start(i)
        deadline = time.monotonic() + timeout
        while True:
            hs = self.net.heights()
            if all(h is not None for h in hs.values()):
                top = max(h for h in hs.values() if h is not None)
                try:
                    self.net.wait_height(top, timeout=max(1.0, deadline - time.monotonic()))
                except AssertionError as e:
                    self.tally.failures.append(f"nodes did not converge: {e}")
                    return min(h for h in self.net.heights().values() if h is not None)
                # wait for a quiet moment: the same height everywhere
                time.sleep(1.0)
                hs2 = self.net.heights()
                if len(set(hs2.values())) == 1 or time.monotonic() >= deadline:
                    return min(h for h in hs2.values() if h is not None)
            elif time.monotonic() >= deadline:
                self.tally.failures.append(f"nodes not answering after settle: {hs}")
                return 0
            time.sleep(0.5)

    def check(self, height: int) -> tuple[int, int, int, int]:
        """(forks, lost, blocks, committed txs) over heights 1..``height`` on every node."""
        n = self.net.size
        clients = [httpx.Client(base_url=self.net.api(i), timeout=10) for i in range(n)]

        def get(node: int, path: str) -> Any:
            for attempt in range(5):
                try:
                    r = clients[node].get(path)
                    r.raise_for_status()
                    return r.json()
                except httpx.HTTPError:
                    if attempt == 4:
                        raise
                    time.sleep(0.5)
            raise AssertionError("unreachable")

        def block(node: int, h: int) -> tuple[str, str, tuple[str, ...]]:
            b = get(node, f"/v1/blocks/{h}")
            header = repr(sorted(b["header"].items()))
            return b["hash"], header, tuple(t["hash"] for t in b["txs"])

        def on_all(path: str) -> list[Any]:
            return [get(node, path) for node in range(n)]

        try:
            forks = 0
            chains: list[set[str]] = [set() for _ in range(n)]
            with ThreadPoolExecutor(n) as pool:
                for node, blocks in enumerate(
                    pool.map(lambda i: [block(i, h) for h in range(1, height + 1)], range(n))
                ):
                    for _, _, txs in blocks:
                        chains[node].update(txs)
                    if node == 0:
                        first = blocks
                    else:
                        for h, (mine, theirs) in enumerate(zip(blocks, first, strict=True), 1):
                            if mine != theirs:
                                forks += 1
                                if forks <= 5:
                                    self.tally.failures.append(
                                        f"fork at height {h}: node0 {theirs} node{node} {mine}"
                                    )
                everywhere = set.intersection(*chains)
                anywhere = set.union(*chains)
                with self.tally.lock:
                    seen = set(self.tally.committed)
                    accepted = set(self.tally.accepted)
                # seen committed during the run but in no chain up to ``height``: lost, unless
                # a node committed it above ``height`` after the load stopped
                missing_seen = set()
                for tx in seen - anywhere:
                    infos = on_all(f"/v1/txs/{tx}")
                    if not all(i["status"] == "committed" for i in infos):
                        missing_seen.add(tx)
                lost_set = (anywhere - everywhere) | missing_seen
                for tx in sorted(lost_set)[:10]:
                    where = [node for node in range(n) if tx in chains[node]]
                    self.tally.failures.append(f"lost: committed tx {tx} is only on nodes {where}")
                self.never_committed = len(accepted - anywhere - seen)
                # full receipts of a sample, and every sender's nonce, equal on every node
                sample = self.rng.sample(sorted(everywhere), min(self.receipts, len(everywhere)))
                for tx, infos in zip(
                    sample, pool.map(lambda tx: on_all(f"/v1/txs/{tx}"), sample), strict=True
                ):
                    answers = {repr(i["receipt"]) for i in infos}
                    if len(answers) != 1:
                        self.tally.failures.append(f"receipt of {tx} differs: {answers}")
                # Read at ``height``, not the latest: transactions still pooled when the load
                # stopped keep being committed, so the nodes' latest heights may differ again.
                for s in self.senders:
                    key = account_nonce_key(s.address).hex()
                    nonces = [a["value"] for a in on_all(f"/v1/state/{key}?height={height}")]
                    if len(set(nonces)) != 1:
                        self.tally.failures.append(
                            f"nonce of {s.address.hex()} at height {height} differs between "
                            f"nodes: {nonces}"
                        )
            return forks, len(lost_set), height, len(anywhere)
        finally:
            for c in clients:
                c.close()


def run(
    validators: int = 4,
    duration: float = 600.0,
    seed: int = 42,
    cycles: int | None = None,
    partitions: int = 0,
    pauses: int = 0,
    workdir: Path | None = None,
    out: Any = None,
    verbose: bool = False,
    receipts: int = 500,
) -> Result:
    """One soak run; see the module docstring. With ``cycles``, stop after that many
    kill/restart cycles and at least ``partitions`` partitions and ``pauses`` pauses."""
    out = out or sys.stdout
    rng = random.Random(seed)
    random.seed(seed)  # the port block and anything else drawing from the module's generator
    started = time.monotonic()
    tmp_ctx = tempfile.TemporaryDirectory(prefix="citychain-soak-") if workdir is None else None
    base = Path(tmp_ctx.name) if tmp_ctx is not None else workdir
    assert base is not None
    try:
        with LocalNet(
            base,
            validators=validators,
            proxy=True,
            params=FAST_PARAMS,
            accounts=("alice",),
            chain_id="citychain-soak",
        ) as net:
            net.start_all()
            with Client(net.api(0)) as c:
                chain_id = c.status().chain_id
            soak = Soak(net, rng, chain_id)
            soak.t0, soak.verbose, soak.receipts = started, verbose, receipts
            soak.say("network up")
            soak.fund()
            soak.say("senders registered and funded")
            threads = [
                threading.Thread(target=soak.load, daemon=True),
                threading.Thread(target=soak.observe, daemon=True),
            ]
            for th in threads:
                th.start()
            try:
                soak.chaos(started + duration, cycles, partitions, pauses)
            finally:
                soak.stop.set()
                for th in threads:
                    th.join(15)
            soak.say("chaos over; settling")
            height = soak.settle()
            soak.say(f"all nodes at height {height}; checking")
            forks, lost, blocks, txs = soak.check(height)
            soak.say("checked")
            t = soak.tally
            result = Result(
                t.cycles,
                t.partitions,
                t.pauses,
                blocks,
                txs,
                forks,
                lost,
                soak.never_committed,
                seed,
                time.monotonic() - started,
                t.failures,
            )
            print(result.line(), file=out)
            print(f"accepted but never committed: {result.never_committed}", file=out)
            for f in result.failures:
                print(f"  {f}", file=out)
            return result
    finally:
        if tmp_ctx is not None:
            tmp_ctx.cleanup()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--validators", type=int, default=4)
    ap.add_argument("--duration", type=float, default=600.0, help="seconds of chaos")
    ap.add_argument("--cycles", type=int, help="stop after this many kill/restart cycles")
    ap.add_argument("--partitions", type=int, default=0, help="with --cycles: at least these")
    ap.add_argument("--pauses", type=int, default=0, help="with --cycles: at least these")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("-v", "--verbose", action="store_true", help="each fault on stderr")
    ap.add_argument("--workdir", type=Path, help="keep the network here (default: a temp dir)")
    a = ap.parse_args(argv)
    if a.validators < 4:
        ap.error("--validators must be at least 4 (one fault at a time needs f >= 1)")
    result = run(
        a.validators,
        a.duration,
        a.seed,
        a.cycles,
        a.partitions,
        a.pauses,
        a.workdir,
        verbose=a.verbose,
    )
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
