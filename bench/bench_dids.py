"""DID create (committed/s) and DID resolve (/s, p99) on a real single-validator node.

    .venv/bin/python bench/bench_dids.py [--dids N] [--rounds R] [--per-round M]
        [--senders S] [--seconds T] [--concurrency C] [--hot K] [--profile]

Starts a demo node (``citychain start --demo``, as ``tests/e2e/nodeproc.py`` does) from a
temporary home on a free port, registers ``S`` fresh accounts as members of ``org1`` (the
demo chain runs in registered-key identity mode) and mints each some tokens, then measures
on that node. Every DID is made by a real ``identity.create_did`` transaction, signed by its
sender, whose document is ``own_document`` of the sender's key (the ``citychain did create``
default: ``#key-1`` may authenticate, assert and invoke); the DID is derived from the
transaction's hash. Transactions are pre-signed (signing is not what is measured), posted as
CBOR batches of 1,000 on ``POST /v1/txs`` over 4 connections without waiting for receipts,
and counted committed from the node's ``citychain_txs_committed_total{result="ok"}``
(a refused or failed one is not counted, and the run stops if any is).
Each line is the house form ``bench <name>: <v> <unit> (ceiling <c> <unit>, ratio <r>)``,
medians over ``R`` rounds, the ceiling measured alternately with the figure, so a busy machine
hurts both alike:

* ``did-create`` (twice: before the state is filled, and with ``N`` DIDs on chain):
  ``M`` DIDs per round, from the first post until the last is committed. Ceiling: the same
  node's committed token transfers/s, ``M`` per round from the same senders, the same way
  (the cheapest transaction this chain commits). With ``--profile`` the node's stage clocks
  (``/metrics``, as ``citychain bench profile``) are read around the DID rounds and printed as
  microseconds per committed DID.
* Filling: after the first ``did-create`` rounds, the state is filled to ``N`` DIDs the same
  way (real transactions, batches of 1,000, at most ``--in-flight`` (20,000) in the mempool
  at once, the next ones signed while the node commits the last), and the fill's rate is
  printed. No shortcut: every DID on chain went through admission, a block and its commit.
* ``did-resolve``: ``GET /1.0/identifiers/{did}`` (the Universal Resolver driver interface,
  ``application/did-resolution``) of DIDs drawn at random from all ``N``, over ``C``
  keep-alive connections of a minimal HTTP/1.1 client (no httpx on the hot path), ``T``
  seconds per round; every answer must be 200. The resolution rounds begin once the node is
  idle (at most 3 minutes' wait, printed), so that no flush or compaction of what the
  creations wrote shares the two cores with them (in the runs of 2026-12-07 the node was idle
  within 2-5 s of a million creations: the wait is a guard, not what slowed first rounds;
  the warm-up below is). Ceiling: ``GET /v1/status`` on the same node with
  the same client. Before the first round, ``--warmup`` seconds (10) of the same draws warm
  the node's caches, and their rate is printed too: the first seconds after a fill or a
  restart read RocksDB's blocks of the DIDs' index from the OS, where a node that has served
  a while finds them in its block cache. No block commits during these rounds, so a DID
  drawn twice is answered from the node's query cache the second time: with a million DIDs
  that is rare (the 64 MiB cache holds some tens of thousands of answers, and the 10 s empty
  blocks of an idle chain empty it), with a small ``N`` (whose answers all fit in the cache)
  it is not, and the figure flatters.
* ``did-resolve-p99``: the 99th percentile latency of those resolutions, in ms, beside the
  p99 of ``GET /v1/status``. Here the ratio is resolve p99 / status p99 (lower is better).
* ``did-resolve-node-cpu`` (and ``-quickack-``, ``-hot-``): the node process's CPU time
  (``/proc``, all its threads) over the resolutions of those rounds, µs per resolution,
  beside the same per ``GET /v1/status``. The client shares the two cores and is itself
  written in Python, so the rate says what this client drew; this line says what a
  resolution costs the node (one core's worth is ~1,000,000 / it a second), which is what a
  change of the node moves. In the hot rounds it includes the trickle's blocks.
* ``did-resolve-hot`` and ``did-resolve-hot-p99``: the same, the DIDs drawn from ``K`` of
  them (``--hot``, 100 by default): a verifier's load, which resolves the issuers of the
  credentials it checks, a few DIDs again and again, while the chain keeps committing blocks
  (the node answers a DID resolved since its last block from its query cache, which every
  commit empties). To keep blocks coming, 50 transfers are posted every half second through
  these rounds and their ceiling's, and the blocks made are reported. (``GET /v1/status``
  goes through FastAPI's routing, which resolution skips, so this ratio can pass 1.)
* ``did-resolve-quickack`` and ``did-resolve-quickack-p99``: the same, the client setting
  ``TCP_QUICKACK`` around every request. Until dcac4bc the node's API sockets had no
  ``TCP_NODELAY`` (its listener was made with protocol 0, so asyncio did not set it), and an
  answer written as two segments waited ~40 ms for the client's delayed ACK; these lines
  showed what the node cost without that stall. Since the fix they match ``did-resolve``
  (kept as the check that it stays fixed).
* ``did-resolve-inproc``: after the node stops, the ``identity.resolve`` query run in this
  process on the node's own store (one thread, no HTTP), DIDs at random from all ``N``.
  Ceiling: RocksDB point reads/s of a fresh store (one thread) / 2, a resolution reading at
  least two state records (the DID's head and its latest version).

Each figure names the number of DIDs on chain when it was measured. The temporary home is
deleted at the end (``--keep`` leaves it, with the list of its DIDs, and prints where).
``--reuse DIR`` starts the node again on a home so kept and measures only the resolutions
(new senders are registered for the hot rounds' blocks): a change to the resolution path is
measured before and after, alternated, on one million-DID state filled once (~17 minutes a
fill), not one fill a run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import re
import shutil
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cbor2
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "e2e"))  # nodeproc: inside this repo

from nodeproc import NodeProcess  # type: ignore[import-not-found,unused-ignore]  # noqa: E402

from citychain.bench import profile as prof  # noqa: E402
from citychain.bench import result_line  # noqa: E402
from citychain.bench.ceiling import rocksdb_point_reads_per_second  # noqa: E402
from citychain.crypto import ED25519, Signer  # noqa: E402
from citychain.services.identity.cli import own_document  # noqa: E402
from citychain.services.identity.sdk._dids import DID_GAS_LIMIT  # noqa: E402
from citychain.services.identity.shapes import citychain_did  # noqa: E402
from citychain.stages import STAGES  # noqa: E402
from citychain.types import Transaction  # noqa: E402

BATCH = 1000
#: The DIDs a kept home holds, one a line, beside its node's home (--keep, --reuse).
DIDS_FILE = "dids.txt"
#: Idle connections are dropped after 2 s, before the node's 5 s keep-alive timeout closes
#: them: reusing one the node is closing fails a POST with ReadError (a fill waiting on the
#: mempool can leave a connection idle that long).
_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=2.0)
CONNECTIONS = 4
FILL_CHUNK = 50_000
_COMMITTED = re.compile(rb'^citychain_txs_committed_total\{result="(ok|failed)"\} (\S+)$', re.M)
_LENGTH = re.compile(rb"\r\ncontent-length: *(\d+)", re.I)


def say(what: str) -> None:
    print(f"  {what}", file=sys.stderr, flush=True)


@dataclass
class Sender:
    signer: Signer
    nonce: int
    document: dict[str, Any]


class Load:
    """Signs and posts transactions of the senders to the node, and follows their commits."""

    def __init__(self, url: str, chain_id: str, senders: list[Sender]) -> None:
        self.url = url
        self.chain_id = chain_id
        self.senders = senders
        self.sink = Signer.generate(ED25519).address
        self.dids: list[str] = []
        self.in_flight = 20_000
        self._next = 0

    def _sender(self) -> Sender:
        s = self.senders[self._next % len(self.senders)]
        self._next += 1
        return s

    def sign_creates(self, n: int) -> tuple[list[bytes], list[str]]:
        raws, dids = [], []
        for _ in range(n):
            s = self._sender()
            tx = Transaction.create(
                s.signer,
                chain_id=self.chain_id,
                nonce=s.nonce,
                contract="identity",
                method="create_did",
                args={"document": s.document},
                gas_limit=DID_GAS_LIMIT,
            )
            s.nonce += 1
            raws.append(tx.encode())
            dids.append(citychain_did(tx.hash[:16]))
        return raws, dids

    def sign_transfers(self, n: int) -> list[bytes]:
        raws = []
        for _ in range(n):
            s = self._sender()
            tx = Transaction.create(
                s.signer,
                chain_id=self.chain_id,
                nonce=s.nonce,
                contract="token",
                method="transfer",
                args={"to": self.sink, "amount": 1},
            )
            s.nonce += 1
            raws.append(tx.encode())
        return raws

    @staticmethod
    async def committed(client: httpx.AsyncClient) -> tuple[int, int]:
        """The node's committed transactions so far: (ok, failed)."""
        text = (await client.get("/metrics")).raise_for_status().content
        seen = {m.group(1): int(float(m.group(2))) for m in _COMMITTED.finditer(text)}
        return seen.get(b"ok", 0), seen.get(b"failed", 0)

    @staticmethod
    async def post(client: httpx.AsyncClient, raws: list[bytes]) -> None:
        """Post ``raws`` in batches over a few connections; every one must be admitted."""
        sem = asyncio.Semaphore(CONNECTIONS)

        async def send(part: list[bytes]) -> None:
            async with sem:
                resp = await client.post(
                    "/v1/txs",
                    content=cbor2.dumps(part),
                    headers={"content-type": "application/cbor"},
                )
                refused = [
                    r for r in resp.raise_for_status().json()["results"] if r["code"] != "ok"
                ]
                if refused:
                    raise SystemExit(f"{len(refused)} transactions refused, first: {refused[0]}")

        await asyncio.gather(*(send(raws[i : i + BATCH]) for i in range(0, len(raws), BATCH)))

    @staticmethod
    async def wait(client: httpx.AsyncClient, ok: int, failed: int, timeout: float = 600) -> int:
        """Wait until ``ok`` transactions are committed (counting from zero); ok so far."""
        deadline = time.monotonic() + timeout
        while True:
            now_ok, now_failed = await Load.committed(client)
            if now_failed > failed:
                raise SystemExit(f"{now_failed - failed} transactions failed in their blocks")
            if now_ok >= ok:
                return now_ok
            if time.monotonic() > deadline:
                raise SystemExit(f"only {now_ok} of {ok} transactions committed in {timeout} s")
            await asyncio.sleep(0.02)

    async def timed(self, raws: list[bytes]) -> float:
        """Post ``raws`` and wait for all; committed per second from first post to last."""
        async with httpx.AsyncClient(base_url=self.url, timeout=120, limits=_LIMITS) as client:
            ok, failed = await self.committed(client)
            t0 = time.perf_counter()
            await self.post(client, raws)
            await self.wait(client, ok + len(raws), failed)
            return len(raws) / (time.perf_counter() - t0)

    async def fill(self, n: int) -> float:
        """Create ``n`` more DIDs, keeping at most ``in_flight`` in the mempool; DIDs/s."""
        async with httpx.AsyncClient(base_url=self.url, timeout=120, limits=_LIMITS) as client:
            ok, failed = await self.committed(client)
            start, made, t0, last = ok, 0, time.perf_counter(), time.perf_counter()
            while made < n:
                k = min(FILL_CHUNK, self.in_flight, n - made)
                raws, dids = self.sign_creates(k)
                await self.wait(client, start + max(0, made + k - self.in_flight), failed)
                await self.post(client, raws)
                self.dids += dids
                made += k
                if time.perf_counter() - last > 30:
                    last = time.perf_counter()
                    done = (await self.committed(client))[0] - start
                    say(f"fill: {done:,} of {n:,} committed, {done / (last - t0):,.0f}/s")
            await self.wait(client, start + n, failed, timeout=1800)
            return n / (time.perf_counter() - t0)


async def _setup(node: NodeProcess, senders: int) -> Load:
    admin, alice = node.signer("org1-admin"), node.signer("alice")
    async with httpx.AsyncClient(base_url=node.url, timeout=60, limits=_LIMITS) as client:
        chain_id = (await client.get("/v1/status")).json()["chain_id"]
        # From the accounts' committed nonces: a home kept by an earlier run (--reuse) has
        # used some already.
        first = [
            int((await client.get(f"/v1/accounts/{k.address.hex()}")).json()["nonce"])
            for k in (admin, alice)
        ]
        signers = [Signer.generate(ED25519) for _ in range(senders)]
        setup = []
        for n, s in enumerate(signers):
            member = {"public_key": s.public_key, "org": "org1", "roles": ["member"]}
            setup.append(
                Transaction.create(
                    admin,
                    chain_id=chain_id,
                    nonce=first[0] + n,
                    contract="gov",
                    method="register_member",
                    args=member,
                )
            )
            setup.append(
                Transaction.create(
                    alice,
                    chain_id=chain_id,
                    nonce=first[1] + n,
                    contract="token",
                    method="mint",
                    args={"to": s.address, "amount": 10**9},
                )
            )
        ok, failed = await Load.committed(client)
        for i in range(0, len(setup), 2 * 500):  # within the mempool's per-sender nonce window
            await Load.post(client, [t.encode() for t in setup[i : i + 1000]])
            await Load.wait(client, ok + min(i + 1000, len(setup)), failed)
    return Load(node.url, chain_id, [Sender(s, 0, own_document(s.public_key)) for s in signers])


async def _create_rounds(load: Load, rounds: int, per_round: int, profile: bool) -> None:
    n = len(load.dids)
    ours, ceil = [], []
    clocks: list[tuple[prof.Clock, prof.Clock]] = []
    for r in range(rounds):
        raws, dids = load.sign_creates(per_round)
        before = prof.read_clock(load.url)
        ours.append(await load.timed(raws))
        clocks.append((before, prof.read_clock(load.url)))
        load.dids += dids
        ceil.append(await load.timed(load.sign_transfers(per_round)))
        say(f"round {r + 1}: {ours[-1]:,.0f} DIDs/s, {ceil[-1]:,.0f} transfers/s")
    await _check_some(load)
    v, c = statistics.median(ours), statistics.median(ceil)
    if profile:
        per_tx = {
            s: statistics.median((a[s][0] - b[s][0]) * 1e6 / per_round for b, a in clocks)
            for s in STAGES
        }
        print(prof.table([prof.NodeProfile(load.url, per_tx)], v))
    print(result_line("did-create", v, f"DIDs/s with {n:,} DIDs", c, "transfers/s"))


async def _check_some(load: Load, k: int = 50) -> None:
    """A sample of the DIDs made resolves (200) on the node: they are really on chain."""
    async with httpx.AsyncClient(base_url=load.url, timeout=30, limits=_LIMITS) as client:
        for did in random.sample(load.dids, min(k, len(load.dids))):
            resp = await client.get(f"/1.0/identifiers/{did}")
            if resp.status_code != 200:
                raise SystemExit(f"{did} does not resolve: {resp.status_code} {resp.text[:200]}")


async def _http_round(
    port: int, pick: Callable[[], str], seconds: float, connections: int, quickack: bool
) -> tuple[float, list[float]]:
    """Requests/s and latencies (s) of GETs of ``pick()`` over keep-alive connections. With
    ``quickack`` the client acknowledges every segment at once (``TCP_QUICKACK``)."""
    lat: list[float] = []
    deadline = time.perf_counter() + seconds

    async def one() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        sock = writer.get_extra_info("socket")
        try:
            while time.perf_counter() < deadline:
                req = f"GET {pick()} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n".encode()
                t0 = time.perf_counter()
                if quickack:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
                writer.write(req)
                head = await reader.readuntil(b"\r\n\r\n")
                if quickack:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
                m = _LENGTH.search(head)
                await reader.readexactly(int(m.group(1)) if m else 0)
                lat.append(time.perf_counter() - t0)
                if head[9:12] != b"200":
                    raise SystemExit(f"GET {req[4:80]!r} answered {head[:200]!r}")
        finally:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(connections)))
    return len(lat) / (time.perf_counter() - t0), lat


def _cpu_seconds(pid: int) -> float:
    """CPU seconds the process ``pid`` has used, all its threads (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _p99(lat: list[float]) -> float:
    return statistics.quantiles(lat, n=100)[98] * 1000


async def _trickle(load: Load, stop: asyncio.Event, per_tick: int = 50, tick: float = 0.5) -> int:
    """Post ``per_tick`` transfers every ``tick`` seconds until ``stop``: blocks keep committing
    (as on a city's chain), each emptying the node's query cache. Returns the blocks made."""
    async with httpx.AsyncClient(base_url=load.url, timeout=120, limits=_LIMITS) as client:
        first = await _height(client)
        while not stop.is_set():
            await load.post(client, load.sign_transfers(per_tick))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), tick)
        return await _height(client) - first


async def _height(client: httpx.AsyncClient) -> int:
    return int((await client.get("/v1/status")).raise_for_status().json()["height"])


async def _resolve_rounds(
    load: Load,
    node: NodeProcess,
    rounds: int,
    seconds: float,
    conns: int,
    quickack: bool,
    hot: int = 0,
    warmup: float = 1.0,
) -> None:
    rng = random.Random(11)
    dids = rng.sample(load.dids, hot) if hot else load.dids

    def did() -> str:
        return f"/1.0/identifiers/{dids[rng.randrange(len(dids))]}"

    def status() -> str:
        return "/v1/status"

    port, pid = node.port, node.proc.pid
    rate, lat = await _http_round(port, did, warmup, conns, quickack)
    say(f"warm-up: {rate:,.0f} resolutions/s over {warmup:g} s, p99 {_p99(lat):.2f} ms")
    ours, ceil, ours_p99, ceil_p99, ours_cpu, ceil_cpu = [], [], [], [], [], []
    stop = asyncio.Event()
    blocks = asyncio.create_task(_trickle(load, stop)) if hot else None
    for r in range(rounds):
        cpu = _cpu_seconds(pid)
        rate, lat = await _http_round(port, did, seconds, conns, quickack)
        ours_cpu.append((_cpu_seconds(pid) - cpu) / len(lat) * 1e6)
        ours.append(rate)
        ours_p99.append(_p99(lat))
        cpu = _cpu_seconds(pid)
        rate, lat = await _http_round(port, status, seconds, conns, quickack)
        ceil_cpu.append((_cpu_seconds(pid) - cpu) / len(lat) * 1e6)
        ceil.append(rate)
        ceil_p99.append(_p99(lat))
        say(
            f"round {r + 1}{' (quick ack)' if quickack else ''}{f' ({hot} DIDs)' if hot else ''}"
            f": resolve {ours[-1]:,.0f}/s p99 {ours_p99[-1]:.2f} ms, status {ceil[-1]:,.0f}/s "
            f"p99 {ceil_p99[-1]:.2f} ms; node CPU {ours_cpu[-1]:.0f} and {ceil_cpu[-1]:.0f} µs a "
            "request"
        )
    if blocks is not None:
        stop.set()
        made = await blocks
        say(f"{made} blocks committed during the {hot}-DID rounds ({2 * rounds * seconds:.0f} s)")
    n = len(load.dids)
    name = "did-resolve-hot" if hot else "did-resolve-quickack" if quickack else "did-resolve"
    v, c = statistics.median(ours), statistics.median(ceil)
    unit = f"resolutions/s of {hot} of {n:,} DIDs" if hot else f"resolutions/s with {n:,} DIDs"
    print(result_line(name, v, unit, c, "GET /v1/status/s"))
    v, c = statistics.median(ours_p99), statistics.median(ceil_p99)
    print(
        f"bench {name}-p99: {v:.2f} ms with {n:,} DIDs, {conns} connections "
        f"(ceiling {c:.2f} ms GET /v1/status p99, ratio {v / c:.3f})"
    )
    v, c = statistics.median(ours_cpu), statistics.median(ceil_cpu)
    print(
        f"bench {name}-node-cpu: {v:.1f} µs of the node's CPU a resolution "
        f"(ceiling {c:.1f} µs a GET /v1/status, ratio {v / c:.3f})"
    )


def _resolve_inproc(home: Path, dids: list[str], seconds: float, rounds: int) -> None:
    """The ``identity.resolve`` query in this process on the stopped node's store."""
    from citychain.chain import Chain
    from citychain.execution import BlockContext, default_registry
    from citychain.node.config import NodeConfig
    from citychain.store.kv import KVStore
    from citychain.types.genesis import Genesis

    config = NodeConfig.load(home)
    genesis = Genesis.load(config.genesis_file)
    chain = Chain(KVStore(config.data_dir), genesis, default_registry())
    try:
        header = chain.last_header()
        assert header is not None
        ctx = BlockContext(chain.chain_id, chain.height, header.time, header.proposer)
        rng = random.Random(12)
        ours, ceil, p99s = [], [], []
        for _ in range(rounds):
            lat = []
            t_end = time.perf_counter() + seconds
            while time.perf_counter() < t_end:
                did = dids[rng.randrange(len(dids))]
                t0 = time.perf_counter()
                chain.executor.query(chain.state, ctx, "identity", "resolve", {"did": did})
                lat.append(time.perf_counter() - t0)
            ours.append(len(lat) / sum(lat))
            p99s.append(_p99(lat))
            ceil.append(rocksdb_point_reads_per_second(work_dir=home.parent) / 2)
        v, c = statistics.median(ours), statistics.median(ceil)
        say(f"in-process resolve p99 {statistics.median(p99s):.3f} ms")
        print(
            result_line(
                "did-resolve-inproc", v, f"resolutions/s with {len(dids):,} DIDs", c,
                "RocksDB point reads/s / 2",
            )
        )  # fmt: skip
    finally:
        chain.close()


async def _run(node: NodeProcess, args: argparse.Namespace, kept: list[str]) -> Load:
    t0 = time.monotonic()
    load = await _setup(node, args.senders)
    load.in_flight = args.in_flight
    say(f"{args.senders} senders registered and funded in {time.monotonic() - t0:.0f} s")
    if kept:  # --reuse: the DIDs are on chain already; measure resolutions only
        load.dids = kept
        say(f"{len(kept):,} DIDs on chain from the kept home")
        return await _resolves(node, load, args)
    await _create_rounds(load, args.rounds, args.per_round, args.profile)
    more = args.dids - len(load.dids) - args.rounds * args.per_round
    if more > 0:
        t0 = time.monotonic()
        rate = await load.fill(more)
        say(f"filled {more:,} DIDs at {rate:,.0f} committed/s in {time.monotonic() - t0:,.0f} s")
        print(f"fill: {len(load.dids):,} DIDs on chain, the fill at {rate:,.0f} DIDs/s")
    await _create_rounds(load, args.rounds, args.per_round, args.profile)
    return await _resolves(node, load, args)


async def _settle(pid: int, limit_s: float = 180.0) -> tuple[float, float]:
    """Wait until the node is idle (below 5 % of a core for 2 s running), at most ``limit_s``:
    RocksDB may still be flushing or compacting what the creations wrote, on the cores the
    resolutions are measured on. Returns the seconds waited and the node's CPU seconds
    meanwhile."""
    t0, cpu0, quiet = time.monotonic(), _cpu_seconds(pid), 0
    while quiet < 2 and time.monotonic() - t0 < limit_s:
        cpu = _cpu_seconds(pid)
        await asyncio.sleep(1.0)
        quiet = quiet + 1 if _cpu_seconds(pid) - cpu < 0.05 else 0
    return time.monotonic() - t0, _cpu_seconds(pid) - cpu0


async def _resolves(node: NodeProcess, load: Load, args: argparse.Namespace) -> Load:
    assert node.proc is not None
    waited, cpu = await _settle(node.proc.pid)
    say(f"node idle after {waited:.0f} s, {cpu:.1f} s of its CPU meanwhile")
    # The long warm-up before the first rounds only: the rounds after them find the caches warm.
    for quickack in (False, True):
        await _resolve_rounds(
            load, node, args.rounds, args.seconds, args.concurrency, quickack,
            warmup=args.warmup if not quickack else 1.0,
        )  # fmt: skip
    if args.hot:
        await _resolve_rounds(
            load, node, args.rounds, args.seconds, args.concurrency, False, args.hot
        )
    return load


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dids", type=int, default=1_000_000, help="DIDs on chain for resolve")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--per-round", type=int, default=20_000, help="DIDs per create round")
    ap.add_argument("--senders", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=5.0, help="seconds per resolve round")
    ap.add_argument("--concurrency", type=int, default=8, help="resolver connections")
    ap.add_argument(
        "--warmup", type=float, default=10.0, help="seconds of resolutions before the rounds"
    )
    ap.add_argument("--hot", type=int, default=100, help="DIDs of the hot rounds (0: none)")
    ap.add_argument("--in-flight", type=int, default=20_000, help="most DIDs pooled in the fill")
    ap.add_argument("--profile", action="store_true", help="stage table of the DID rounds")
    ap.add_argument("--keep", action="store_true", help="keep the node's home")
    ap.add_argument(
        "--reuse",
        type=Path,
        help="a directory an earlier --keep run left: measure resolutions on its DIDs (no fill)",
    )
    args = ap.parse_args()

    kept: list[str] = []
    if args.reuse is not None:
        listed = args.reuse / DIDS_FILE
        if not listed.is_file():
            raise SystemExit(f"{args.reuse} holds no {DIDS_FILE}: not a home kept by --keep")
        kept = listed.read_text().split()
        tmp = args.reuse
    else:
        tmp = Path(tempfile.mkdtemp(prefix="citychain-bench-dids-"))
    node = NodeProcess(tmp / "node")
    t0 = time.monotonic()
    try:
        node.start()
        say(f"node {node.url}, home {node.home}")
        load = asyncio.run(_run(node, args, kept))
        if args.keep and not kept:
            (tmp / DIDS_FILE).write_text("\n".join(load.dids))
        node.stop()
        _resolve_inproc(node.home, load.dids, args.seconds, args.rounds)
        size = sum(f.stat().st_size for f in (node.home / "data").rglob("*") if f.is_file())
        print(f"{len(load.dids):,} DIDs on chain, data {size / 2**20:,.0f} MiB, "
              f"{time.monotonic() - t0:,.0f} s in all")  # fmt: skip
    finally:
        node.stop()
        if args.keep or args.reuse is not None:
            say(f"kept {tmp} (measure its DIDs again with --reuse {tmp})")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
