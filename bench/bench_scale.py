"""Cost as the city's state grows: transfers/s, commit time per block and proof p99 with 1M and
10M accounts in state (issue 14.4).

    .venv/bin/python bench/bench_scale.py [--accounts 1000000 10000000] [--block 5000]
        [--blocks 20] [--rounds 3] [--proofs 2000] [--cache-pages P] [--keep-dir DIR]
        [--tree-blob-files] [--compressed-tree]

What runs is a node's block path in this process, on a real RocksDB state (``StateDB`` over
``KVStore``): for each block, ``Executor.execute_block`` (signature checks on the thread pool,
nonces, the token contract, receipts; with the governance cache the chain gives it, so the
access checks read the chain's configuration once, not once a transaction), then the state
tree's ``prepare`` (new root), ``commit`` and the synced batch write. No consensus and no
HTTP: those do not grow with the state; what does is the tree's depth, RocksDB's levels and
the page cache, and that is what this measures.

Each size has its own store, filled once; then the sizes' blocks run in phases,
interleaved (``--rounds`` of them: 1M, 10M, then 10M, 1M, then 1M, 10M), so that every size
meets the same minutes of the machine. This VM's speed drifts by a quarter and more between
minutes, and when all of one size's blocks ran ten minutes before all of the other's, the
same code read a loss of 11 % in one run and 41 % in the next (``bench/RESULTS.md``,
2026-12-07); each round's pair of phases also gives a loss of its own, printed beside the
overall one.

The state is filled directly, not through transactions (ten million transfers would take
hours through a node): every account gets its token balance and its nonce, under the keys and
in the encodings the token contract and the executor use (the balance key layout is read off
a real ``init_genesis``, not written here a second time). Accounts are ``blake2b(i)[:20]``,
so nothing of them is held in memory. After each fill the store is compacted and the tree's
page cache warmed, as ``bench proofs`` does, so the figures are of a node in steady state;
and, as a node does once it serves, what was built to start (the page cache's table among it)
is frozen out of the garbage collector's scans (``api.server.freeze_startup_heap``); and
the allocator keeps freed memory, as a node's does (``sdk.keep_freed_memory``;
``--default-allocator`` leaves glibc's defaults).
The state keeps the last :data:`RETAIN` versions, as a node does, and each block prunes what
the version ``RETAIN`` before it made stale. So :data:`WARMUP` blocks run unmeasured on each
store first: a fill's version replaces most of the tree at once; without them the first
measured blocks would prune nothing and the later ones would prune a fill. What
that pruning deleted is compacted before the measured blocks, as it would have been long
before on a node; the blocks then write on, and ``--blocks`` (20) is enough of them for
RocksDB to flush and compact what they wrote, on the same cores, as it keeps doing on a node
(five blocks right after a compaction, as earlier runs measured, saw little of it).
``--cache-pages`` is the node's ``[state] cache_pages``: with the default (131,072 pages) a
1M-account tree fits in memory and a 10M one does not, so run both sizes with the cache a
10M node would be given (``--cache-pages 1500000``, ~3 GiB) as well as with the default;
the commit line says how many tree pages each block read from disk, and how much CPU
RocksDB's own threads (flushes, compactions) took meanwhile on the same cores, and how long
the garbage collector's full collections held the block path. ``--tree-blob-files`` keeps the
tree's pages in RocksDB's blob files, as node.toml ``[state] tree_blob_files`` does (compare the
state on disk each run ends with); ``--compressed-tree`` compresses them with Snappy, as a node
did before 2026-12-08.

A phase is ``--blocks`` blocks of ``--block`` transfers, each from a distinct funded sender
to a random existing account (so the receivers' keys are spread over the whole tree); after
the phases, ``--proofs`` ICS-23 proofs of random accounts' balances at each size (each
verified). The ceiling (Ed25519 verifications/s on all cores: the block path verifies every
transfer once) is read between phases, each time with RocksDB idle, so no phase's blocks
meet the compactions another size's caused and no reading counts them as the machine's; a
phase's ceiling is the mean of the readings on either side of it, a size's the mean of its
phases'. Lines, in the house form:

* ``scale-transfers-<N>``: transfers/s through execute + prepare + commit + write;
* ``scale-commit-<N>``: ms per block of prepare + commit + write (the part that grows),
  then a block's parts: execution, the new root (``prepare``), filling the batch, the synced
  write, moving the caches on, and the tree pages and bytes each block writes;
* ``scale-proof-p99-<N>``: ms, p99 of proving one account's balance.

Then the loss from the smallest to the largest size, against the issue's bound (at most 20 %).
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from prometheus_client import CollectorRegistry

from citychain import codec
from citychain.api.server import freeze_startup_heap
from citychain.bench import result_line
from citychain.bench.ceiling import ed25519_verifications_per_second
from citychain.crypto import ED25519, Signer
from citychain.execution import BlockContext, Executor, access, default_registry
from citychain.proof.ics23 import SMT_SPEC, verify_membership
from citychain.sdk import keep_freed_memory
from citychain.state import DEFAULT_CACHE_PAGES, TREE_COLUMN_FAMILY
from citychain.state._db import StateDB
from citychain.store.kv import UNCOMPRESSED_COLUMN_FAMILIES, KVStore
from citychain.types import Transaction
from citychain.types.state_keys import account_nonce_key

CHAIN = "bench-scale"


def say(what: str) -> None:
    print(f"  {what}", file=sys.stderr, flush=True)


def account(i: int) -> bytes:
    return hashlib.blake2b(i.to_bytes(8, "big"), digest_size=20).digest()


class _Empty:
    def get(self, key: bytes) -> bytes | None:
        return None

    def iter_prefix(self, prefix: bytes, *, after: bytes | None = None):  # type: ignore[no-untyped-def]
        return iter(())


#: Versions the state keeps. A node keeps 10,000 by default (``[state] retain_versions``);
#: ten here put pruning into the measured blocks, as on a node that has run that long.
RETAIN = 10
#: Unmeasured blocks at each size: past them, every block prunes a block's stale pages, not
#: a fill's (see the module docstring).
WARMUP = RETAIN + 1


class _Commit:
    """One commit's parts: seconds of the new root (``prepare``), of filling the batch
    (``commit``, pruning included), of the synced write and of moving the caches on
    (``committed``); the tree pages it wrote and the bytes of its batch."""

    __slots__ = ("after", "fill", "nbytes", "pages", "prepare", "write")

    def __init__(self) -> None:
        self.prepare = self.fill = self.write = self.after = 0.0
        self.pages = self.nbytes = 0

    @property
    def seconds(self) -> float:
        return self.prepare + self.fill + self.write + self.after

    def add(self, other: _Commit) -> None:
        for name in self.__slots__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


def _commit(kv: KVStore, db: StateDB, writes: dict[bytes, bytes | None]) -> _Commit:
    """Commit one version: prepare + commit + the synced write, timed part by part."""
    c = _Commit()
    t0 = time.perf_counter()
    prepared = db.prepare(writes, db.version + 1)
    t1 = time.perf_counter()
    batch = kv.batch()
    db.commit(prepared, batch)
    c.nbytes = batch.size_in_bytes()  # the write consumes the batch
    t2 = time.perf_counter()
    kv.write(batch)
    t3 = time.perf_counter()
    db.committed(prepared)
    c.prepare, c.fill, c.write, c.after = t1 - t0, t2 - t1, t3 - t2, time.perf_counter() - t3
    c.pages = len(prepared.pages)
    return c


def _settle_rocksdb(limit_s: float = 180.0) -> float:
    """Wait until RocksDB's own threads are idle (less than 5 % of a core over a second) or
    ``limit_s`` passed; return the seconds waited. A ceiling taken while they compact would
    measure their share of the cores as the machine's."""
    start = time.monotonic()
    before = _rocksdb_cpu_s()
    while time.monotonic() - start < limit_s:
        time.sleep(1.0)
        now = _rocksdb_cpu_s()
        if now - before < 0.05:
            break
        before = now
    return time.monotonic() - start


def _rocksdb_cpu_s() -> float:
    """CPU seconds RocksDB's own threads (flushes, compactions) have used in this process:
    work that shares the cores with the block path without showing in its timings."""
    ticks = 0
    for task in Path("/proc/self/task").iterdir():
        try:
            if not (task / "comm").read_text().startswith("rocksdb:"):
                continue
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended meanwhile
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


class _Collections:
    """Seconds the garbage collector spends in full collections (``gc.callbacks``)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._started = 0.0
        gc.callbacks.append(self._on)

    def _on(self, phase: str, info: dict[str, int]) -> None:
        if info["generation"] != 2:
            return
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._started


def _balance_key_layout(ex: Executor) -> tuple[bytes, bytes]:
    """(prefix, value) of a balance as the token contract writes it: read off init_genesis."""
    probe = bytes([0xAB]) * 20
    writes = ex.init_genesis(
        _Empty(),  # type: ignore[arg-type]
        BlockContext(CHAIN, 0, 0, b""),
        {"token": {"balances": [[probe, 10**15]]}},
    )
    (key,) = [k for k in writes if k.endswith(probe)]
    return key[: -len(probe)], codec.encode(10**15)


class _Size:
    """One state size: its own store, filled once, and what its measured blocks gave."""

    def __init__(self, size: int, kv: KVStore, db: StateDB) -> None:
        self.size = size
        self.kv = kv
        self.db = db
        self.nonce = 0
        self.rates: list[float] = []
        self.commits: list[float] = []
        #: the median rate of each of its phases, in phase order
        self.phase_rates: list[float] = []
        self.ceilings: list[float] = []
        self.parts = _Commit()
        self.executing = 0.0
        self.blocks = 0
        self.reads = 0
        self.background = 0.0
        self.full_gc = 0.0


def _block(
    st: _Size,
    ex: Executor,
    senders: list[Signer],
    rng: random.Random,
    gov_cache: access.GovCache,
    collections: _Collections,
    measured: bool,
) -> float:
    """One block of transfers on ``st``'s state; its transfers/s (added to ``st`` if
    ``measured``)."""
    db, size = st.db, st.size
    txs = [
        Transaction.create(
            s,
            chain_id=CHAIN,
            nonce=st.nonce,
            contract="token",
            method="transfer",
            args={"to": account(rng.randrange(size)), "amount": 1},
        )
        for s in senders
    ]
    st.nonce += 1
    height = db.version + 1
    ctx = BlockContext(CHAIN, height, height * 1000, b"")
    t1 = time.perf_counter()
    reads_before = db.page_reads
    cpu_before = _rocksdb_cpu_s()
    gc_before = collections.seconds
    result = ex.execute_block(db, ctx, txs, gov_cache)
    bad = [r for r in result.receipts if not r.ok]
    if bad:
        raise SystemExit(f"a transfer failed: {bad[0]}")
    t_exec = time.perf_counter() - t1
    c = _commit(st.kv, db, dict(result.writes))
    total = time.perf_counter() - t1
    rate = len(txs) / total
    if measured:
        st.rates.append(rate)
        st.commits.append(c.seconds * 1000)
        st.parts.add(c)
        st.executing += t_exec
        st.blocks += 1
        st.reads += db.page_reads - reads_before
        st.background += _rocksdb_cpu_s() - cpu_before
        st.full_gc += collections.seconds - gc_before
    return rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--accounts", type=int, nargs="+", default=[1_000_000, 10_000_000])
    ap.add_argument("--block", type=int, default=5_000, help="transfers per block")
    ap.add_argument(
        "--blocks",
        type=int,
        default=20,
        help="measured blocks per phase (enough for RocksDB's compactions of what they write to "
        "run among them, as on a node that keeps writing)",
    )
    ap.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="phases of each size, interleaved (sizes ascending, then descending, ...), so "
        "that each size meets the same minutes of a machine whose speed drifts",
    )
    ap.add_argument("--proofs", type=int, default=2_000)
    ap.add_argument(
        "--fill-block",
        type=int,
        default=250_000,
        help="accounts per fill commit (larger: each tree page rewritten fewer times)",
    )
    ap.add_argument(
        "--cache-pages",
        type=int,
        default=DEFAULT_CACHE_PAGES,
        help="tree pages kept in memory at each size (node.toml [state] cache_pages; default "
        "the node's)",
    )
    ap.add_argument("--keep-dir", type=Path, default=None, help="where the states live (kept)")
    ap.add_argument(
        "--tree-blob-files",
        action="store_true",
        help="the tree's pages in RocksDB's blob files (node.toml [state] tree_blob_files)",
    )
    ap.add_argument(
        "--compressed-tree",
        action="store_true",
        help="the tree's pages compressed with Snappy, as every column family was before "
        "2026-12-08 (store/kv.py UNCOMPRESSED_COLUMN_FAMILIES)",
    )
    ap.add_argument(
        "--default-allocator",
        action="store_true",
        help="leave glibc's allocator as it is (a node keeps freed memory: keep_freed_memory)",
    )
    args = ap.parse_args()
    if not args.default_allocator:
        keep_freed_memory()  # as a node's process does at its start, before RocksDB opens
    sizes = sorted(set(args.accounts))
    work = args.keep_dir or Path(tempfile.mkdtemp(prefix="citychain-bench-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    rng = random.Random(14)
    ex = Executor(default_registry(), ED25519)
    prefix, balance = _balance_key_layout(ex)
    senders = [Signer(ED25519, (i + 1).to_bytes(32, "big")) for i in range(args.block)]
    blobs = (TREE_COLUMN_FAMILY,) if args.tree_blob_files else ()
    t_start = time.monotonic()
    states: list[_Size] = []
    try:
        for size in sizes:
            kv = KVStore(
                work / f"state-{size}",
                blob_column_families=blobs,
                uncompressed_column_families=()
                if args.compressed_tree
                else UNCOMPRESSED_COLUMN_FAMILIES,
            )
            states.append(
                _Size(size, kv, StateDB(kv, retain_versions=RETAIN, cache_nodes=args.cache_pages))
            )
        # As a node does once it serves: what it built to start (the page caches' tables
        # among it) is frozen out of the collector's full scans.
        freeze_startup_heap(CollectorRegistry())
        collections = _Collections()
        gov_cache = access.GovCache()  # as the chain's; nothing here writes governance records
        genesis = ex.init_genesis(
            _Empty(),  # type: ignore[arg-type]
            BlockContext(CHAIN, 0, 0, b""),
            {"token": {"balances": [[s.address, 10**15] for s in senders]}},
        )
        for st in states:
            kv, db, size = st.kv, st.db, st.size
            _commit(kv, db, dict(genesis))
            t0 = time.monotonic()
            filled = 0
            while filled < size:
                n = min(args.fill_block, size - filled)
                writes: dict[bytes, bytes | None] = {}
                for i in range(filled, filled + n):
                    a = account(i)
                    writes[prefix + a] = balance
                    writes[account_nonce_key(a)] = codec.encode(rng.randrange(1, 50))
                _commit(kv, db, writes)
                filled += n
                if filled % 1_000_000 < n or filled == size:
                    say(f"filled {filled:,} accounts ({time.monotonic() - t0:,.0f} s)")
            kv.compact()
            db.warm_cache()
            # Unmeasured: each prunes what a fill's version made stale (most of the tree).
            for _ in range(WARMUP):
                _block(st, ex, senders, rng, gov_cache, collections, measured=False)
            # Those were millions of deletions RocksDB would otherwise compact during the
            # measured blocks (~0.8 s of CPU a block at 10M): a node that has run this long
            # compacted them long ago.
            kv.compact()
            say(f"{size:,} accounts: filled, compacted, warmed ({time.monotonic() - t0:,.0f} s)")
        # Phases: every size's blocks in turn, the order reversed each round (1M, 10M, 10M,
        # 1M, 1M, 10M), each phase between two readings of the ceiling taken with RocksDB
        # idle (so no phase's blocks meet the compactions another size's blocks caused, and
        # no ceiling counts them as the machine's).
        order = [st for r in range(args.rounds) for st in (states if r % 2 == 0 else states[::-1])]
        settled = [_settle_rocksdb()]
        reading = ed25519_verifications_per_second()
        readings = [reading]
        for st in order:
            phase: list[float] = []
            for _ in range(args.blocks):
                phase.append(_block(st, ex, senders, rng, gov_cache, collections, measured=True))
            st.phase_rates.append(statistics.median(phase))
            settled.append(_settle_rocksdb())
            after = ed25519_verifications_per_second()
            readings.append(after)
            st.ceilings.append((reading + after) / 2)
            reading = after
        results: dict[int, tuple[float, float, float, float]] = {}
        for st in states:
            db, size, n = st.db, st.size, st.blocks
            lat = []
            version = db.version
            root = db.root
            for _ in range(args.proofs):
                key = prefix + account(rng.randrange(size))
                t1 = time.perf_counter()
                value, proof = db.prove(key, version)
                lat.append(time.perf_counter() - t1)
                assert value is not None
                verify_membership(SMT_SPEC, root, proof, key, value)  # raises if it fails
            lat.sort()
            p99 = lat[int(0.99 * (len(lat) - 1))] * 1000
            ceiling = statistics.mean(st.ceilings)
            results[size] = (
                statistics.median(st.rates),
                statistics.median(st.commits),
                p99,
                ceiling,
            )
            rate, commit_ms, _, _ = results[size]
            n_label = f"{size:,} accounts"
            print(
                result_line(
                    f"scale-transfers-{size}", rate, f"transfers/s with {n_label}",
                    ceiling, "verifications/s",
                ),
                flush=True,
            )  # fmt: skip
            print(
                f"bench scale-commit-{size}: {commit_ms:.1f} ms per block of {args.block:,} "
                f"transfers with {n_label} (prepare + commit + synced write; "
                f"{st.reads / n:,.0f} tree pages read from disk per block, "
                f"cache {args.cache_pages:,} pages; RocksDB's own threads "
                f"{st.background / n * 1000:,.0f} ms of CPU per block; full garbage "
                f"collections {st.full_gc / n * 1000:,.0f} ms per block)",
                flush=True,
            )
            parts = st.parts
            print(
                f"  a block's parts (means): execution {st.executing / n * 1000:,.0f} ms, new "
                f"root {parts.prepare / n * 1000:,.0f} ms, batch filled "
                f"{parts.fill / n * 1000:,.0f} ms, synced write "
                f"{parts.write / n * 1000:,.0f} ms, caches moved on "
                f"{parts.after / n * 1000:,.0f} ms; {parts.pages / n:,.0f} tree pages and "
                f"{parts.nbytes / n / 2**20:,.1f} MiB written",
                flush=True,
            )
            print(
                "  phases (median transfers/s): "
                + ", ".join(f"{r:,.0f}" for r in st.phase_rates)
                + f"; ceiling {ceiling:,.0f} verifications/s, the mean of its phases' "
                + ", ".join(f"{c:,.0f}" for c in st.ceilings),
                flush=True,
            )
            print(
                f"bench scale-proof-p99-{size}: {p99:.3f} ms with {n_label} "
                f"(p50 {lat[len(lat) // 2] * 1000:.3f} ms, {args.proofs:,} proofs, each verified)",
                flush=True,
            )
        print(
            "  ceiling readings between phases: "
            + ", ".join(f"{c:,.0f}" for c in readings)
            + f" (RocksDB idle after {', '.join(f'{s:.0f}' for s in settled)} s)",
            flush=True,
        )
        if len(states) > 1:
            lo_st, hi_st = states[0], states[-1]
            lo, hi = results[lo_st.size], results[hi_st.size]
            loss = 1 - (hi[0] / hi[3]) / (lo[0] / lo[3])
            # Both: on one machine the raw rates can be the steadier comparison.
            raw_loss = 1 - hi[0] / lo[0]
            # Each round's two phases ran in the same minutes: the loss of each pair.
            pairs = [1 - h / b for b, h in zip(lo_st.phase_rates, hi_st.phase_rates, strict=True)]
            print(
                f"scale: from {lo_st.size:,} to {hi_st.size:,} accounts the transfer ratio moves "
                f"{lo[0] / lo[3]:.4f} -> {hi[0] / hi[3]:.4f} ({loss:+.1%} loss; the raw rate "
                f"{lo[0]:,.0f} -> {hi[0]:,.0f}/s, {raw_loss:+.1%}; round by round "
                + ", ".join(f"{p:+.1%}" for p in pairs)
                + f"; the bound is 20 %); commit {lo[1]:.1f} -> {hi[1]:.1f} ms per block; proof "
                f"p99 {lo[2]:.3f} -> {hi[2]:.3f} ms"
            )
        size_mb = sum(f.stat().st_size for f in work.rglob("*") if f.is_file())
        say(
            f"states on disk {size_mb / 2**20:,.0f} MiB; {time.monotonic() - t_start:,.0f} s in all"
        )
    finally:
        for st in states:
            st.kv.close()
        if args.keep_dir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
