"""Benchmarks of the state store: block commits, proof queries and disk use.

Each function builds its own state in a fresh temporary directory (inside ``directory`` when
given, and removed afterwards) with a token-transfer shape: every account has a balance key
and a nonce key, and a transfer writes the sender's and receiver's balances and the sender's
nonce. The functions return numbers; printing them is the caller's business
(``bench/bench_state.py``, ``citychain bench``). Nothing here is deterministic in time, only in
content (seeded generators). The initial bulk load is compacted before anything is measured.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from citychain.proof.ics23 import (
    SMT_SPEC,
    encode_commitment_proof,
    verify_membership,
    verify_non_membership,
)
from citychain.state._db import StateDB
from citychain.state.interface import WriteSet
from citychain.store.kv import KVStore

Progress = Callable[[str, int, int], None]

_BUILD_BLOCK = 50_000


def _balance_key(addr: bytes) -> bytes:
    return b"a/" + addr + b"/b"


def _nonce_key(addr: bytes) -> bytes:
    return b"a/" + addr + b"/n"


@contextmanager
def _store(directory: Path | None) -> Iterator[KVStore]:
    """A fresh store in a new temporary directory (inside ``directory`` if given), removed
    afterwards: pointing a bench at a node's data directory never touches the node's data."""
    with (
        tempfile.TemporaryDirectory(dir=directory, prefix="citychain-bench-state-") as tmp,
        KVStore(Path(tmp)) as kv,
    ):
        yield kv


def _commit(kv: KVStore, db: StateDB, writes: WriteSet) -> tuple[float, float, float]:
    """Commit one block; seconds spent in prepare, commit (filling the batch) and the write."""
    t0 = time.perf_counter()
    prepared = db.prepare(writes, db.version + 1)
    t1 = time.perf_counter()
    batch = kv.batch()
    db.commit(prepared, batch)
    t2 = time.perf_counter()
    kv.write(batch)
    db.committed(prepared)
    return t1 - t0, t2 - t1, time.perf_counter() - t2


def _build(
    kv: KVStore, db: StateDB, n_keys: int, rng: random.Random, progress: Progress | None
) -> list[bytes]:
    """Fill state with ``n_keys`` keys (``n_keys // 2`` accounts); the account addresses."""
    addrs = [rng.randbytes(20) for _ in range(max(1, n_keys // 2))]
    balance = (10**12).to_bytes(8, "big")
    for i in range(0, len(addrs), _BUILD_BLOCK // 2):
        writes: dict[bytes, bytes | None] = {}
        for addr in addrs[i : i + _BUILD_BLOCK // 2]:
            writes[_balance_key(addr)] = balance
            writes[_nonce_key(addr)] = b"\x00"
        _commit(kv, db, writes)
        if progress is not None:
            progress("build", min(n_keys, 2 * (i + _BUILD_BLOCK // 2)), n_keys)
    # Settle the bulk load and warm the page cache, so the figures are those of a node in
    # steady state rather than of RocksDB digesting a burst of writes in the background.
    kv.compact()
    db.warm_cache()
    return addrs


def _transfers(rng: random.Random, addrs: list[bytes], n_keys: int) -> dict[bytes, bytes | None]:
    """A block of transfers writing about ``n_keys`` distinct keys."""
    writes: dict[bytes, bytes | None] = {}
    target = min(n_keys, 2 * len(addrs))
    while len(writes) < target:
        sender = rng.choice(addrs)
        receiver = rng.choice(addrs)
        writes[_balance_key(sender)] = rng.randbytes(8)
        writes[_balance_key(receiver)] = rng.randbytes(8)
        writes[_nonce_key(sender)] = rng.randbytes(4)
    return writes


@dataclass(frozen=True, slots=True)
class CommitBench:
    keys_in_state: int
    block_keys: int
    blocks: int
    #: key updates per second through prepare + commit (what the node's block pipeline pays)
    updates_per_s: float
    #: the same, prepare alone
    prepare_updates_per_s: float
    #: the same, including the synced RocksDB write of the batch
    written_updates_per_s: float
    pages_per_block: float


def run_commit_bench(
    *,
    n_keys: int = 1_000_000,
    block_keys: int = 10_000,
    blocks: int = 20,
    warmup_blocks: int = 3,
    retain_versions: int | None = 10,
    cache_nodes: int | None = None,
    directory: Path | None = None,
    seed: int = 1,
    progress: Progress | None = None,
) -> CommitBench:
    """Key updates/s of transfer blocks on a state of ``n_keys`` keys."""
    rng = random.Random(seed)  # noqa: S311 (a seeded workload, not secrets)
    with _store(directory) as kv:
        db = (
            StateDB(kv, retain_versions=retain_versions)
            if cache_nodes is None
            else StateDB(kv, retain_versions=retain_versions, cache_nodes=cache_nodes)
        )
        addrs = _build(kv, db, n_keys, rng, progress)
        prep = comm = write = 0.0
        updates = 0
        for i in range(warmup_blocks + blocks):
            writes = _transfers(rng, addrs, block_keys)
            p, c, w = _commit(kv, db, writes)
            if i >= warmup_blocks:
                prep += p
                comm += c
                write += w
                updates += len(writes)
            if progress is not None:
                progress("blocks", i + 1, warmup_blocks + blocks)
        pages = _pages_per_block(kv, db)
    return CommitBench(
        keys_in_state=n_keys,
        block_keys=block_keys,
        blocks=blocks,
        updates_per_s=updates / (prep + comm),
        prepare_updates_per_s=updates / prep,
        written_updates_per_s=updates / (prep + comm + write),
        pages_per_block=pages,
    )


def _pages_per_block(kv: KVStore, db: StateDB) -> float:
    """Pages written by the latest version (its node keys start with be64(version))."""
    prefix = db.version.to_bytes(8, "big")
    return float(sum(1 for _ in kv.iter_prefix("state_nodes", prefix)))


@dataclass(frozen=True, slots=True)
class ProofsBench:
    keys_in_state: int
    queries: int
    p50_ms: float
    p99_ms: float
    queries_per_s: float
    #: mean size of the protobuf-encoded proofs, present and absent keys
    exist_bytes: float
    nonexist_bytes: float


def run_proofs_bench(
    *,
    n_keys: int = 1_000_000,
    queries: int = 4_000,
    directory: Path | None = None,
    cache_nodes: int | None = None,
    seed: int = 2,
    verify: bool = True,
    progress: Progress | None = None,
) -> ProofsBench:
    """Latency of :meth:`StateDB.prove` on a state of ``n_keys`` keys (half present keys,
    half absent ones). Proofs are verified after timing (when ``verify``)."""
    rng = random.Random(seed)  # noqa: S311 (a seeded workload, not secrets)
    with _store(directory) as kv:
        db = StateDB(kv) if cache_nodes is None else StateDB(kv, cache_nodes=cache_nodes)
        addrs = _build(kv, db, n_keys, rng, progress)
        keys = []
        for i in range(queries):
            if i % 2:
                keys.append(_balance_key(rng.choice(addrs)))
            else:
                keys.append(_balance_key(rng.randbytes(20)))
        times = []
        results = []
        start = time.perf_counter()
        for key in keys:
            t = time.perf_counter()
            results.append(db.prove(key))
            times.append(time.perf_counter() - t)
        total = time.perf_counter() - start
        sizes: dict[bool, list[int]] = {True: [], False: []}
        for key, (value, proof) in zip(keys, results, strict=True):
            sizes[value is not None].append(len(encode_commitment_proof(proof)))
            if verify:
                if value is None:
                    verify_non_membership(SMT_SPEC, db.root, proof, key)
                else:
                    verify_membership(SMT_SPEC, db.root, proof, key, value)
    times.sort()
    return ProofsBench(
        keys_in_state=n_keys,
        queries=queries,
        p50_ms=1000 * times[len(times) // 2],
        p99_ms=1000 * times[min(len(times) - 1, (99 * len(times)) // 100)],
        queries_per_s=queries / total,
        exist_bytes=statistics.fmean(sizes[True]) if sizes[True] else 0.0,
        nonexist_bytes=statistics.fmean(sizes[False]) if sizes[False] else 0.0,
    )


@dataclass(frozen=True, slots=True)
class DiskBench:
    keys_in_state: int
    blocks: int
    block_keys: int
    retain_versions: int | None
    #: live SST bytes after a full compaction, divided by the keys in state
    bytes_per_key: float
    #: logical bytes (keys + values of every record) per key, by column family
    logical_bytes_per_key: dict[str, float]
    #: key updates/s through prepare + commit during the update blocks
    updates_per_s: float


def run_disk_bench(
    *,
    n_keys: int = 1_000_000,
    blocks: int = 100,
    block_keys: int = 10_000,
    retain_versions: int | None = 10,
    directory: Path | None = None,
    seed: int = 3,
    progress: Progress | None = None,
) -> DiskBench:
    """Disk use per key after ``n_keys`` keys and ``blocks`` blocks of transfer updates."""
    rng = random.Random(seed)  # noqa: S311 (a seeded workload, not secrets)
    with _store(directory) as kv:
        db = StateDB(kv, retain_versions=retain_versions)
        addrs = _build(kv, db, n_keys, rng, progress)
        spent = 0.0
        updates = 0
        for i in range(blocks):
            writes = _transfers(rng, addrs, block_keys)
            p, c, _ = _commit(kv, db, writes)
            spent += p + c
            updates += len(writes)
            if progress is not None:
                progress("blocks", i + 1, blocks)
        kv.compact()
        size = kv.approximate_size()
        logical: dict[str, float] = {}
        for cf in ("state_latest", "state_history", "state_nodes", "state_stale"):
            total = sum(len(k) + len(v) for k, v in kv.iterate(cf))
            logical[cf] = total / n_keys
    return DiskBench(
        keys_in_state=n_keys,
        blocks=blocks,
        block_keys=block_keys,
        retain_versions=retain_versions,
        bytes_per_key=size / n_keys,
        logical_bytes_per_key=logical,
        updates_per_s=updates / spent if spent else 0.0,
    )
