"""Measure the state store: block commits, proof queries, disk use (prints what
citychain.state.bench returns).

    .venv/bin/python bench/bench_state.py [commit|proofs|disk|all] [--keys N] [--quick]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time

from citychain.state.bench import run_commit_bench, run_disk_bench, run_proofs_bench


def _progress(stage: str, done: int, total: int) -> None:
    print(f"\r  {stage}: {done:,}/{total:,}", end="", file=sys.stderr, flush=True)
    if done >= total:
        print(file=sys.stderr)


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", nargs="?", default="all", choices=["commit", "proofs", "disk", "all"])
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--block-keys", type=int, nargs="*", default=[3_000, 10_000, 15_000])
    ap.add_argument("--blocks", type=int, default=100, help="update blocks of the disk bench")
    ap.add_argument("--cache-nodes", type=int, default=None)
    args = ap.parse_args()
    t0 = time.perf_counter()
    if args.what in ("commit", "all"):
        for bk in args.block_keys:
            r = run_commit_bench(
                n_keys=args.keys, block_keys=bk, cache_nodes=args.cache_nodes, progress=_progress
            )
            print(
                f"commit: {r.keys_in_state:,} keys in state, blocks of {r.block_keys:,} keys: "
                f"{r.updates_per_s:,.0f} updates/s prepare+commit "
                f"(prepare {r.prepare_updates_per_s:,.0f}/s, with synced write "
                f"{r.written_updates_per_s:,.0f}/s), {r.pages_per_block:,.0f} pages/block"
            )
    if args.what in ("proofs", "all"):
        p = run_proofs_bench(n_keys=args.keys, cache_nodes=args.cache_nodes, progress=_progress)
        print(
            f"proofs: {p.keys_in_state:,} keys, {p.queries:,} queries: p50 {p.p50_ms:.3f} ms, "
            f"p99 {p.p99_ms:.3f} ms, {p.queries_per_s:,.0f} proofs/s; protobuf size "
            f"{p.exist_bytes:,.0f} B (present), {p.nonexist_bytes:,.0f} B (absent)"
        )
    if args.what in ("disk", "all"):
        d = run_disk_bench(n_keys=args.keys, blocks=args.blocks, progress=_progress)
        logical = ", ".join(f"{cf} {b:,.0f}" for cf, b in d.logical_bytes_per_key.items())
        print(
            f"disk: {d.keys_in_state:,} keys, {d.blocks} blocks of {d.block_keys:,} updates, "
            f"retain {d.retain_versions}: {d.bytes_per_key:,.0f} B/key on disk after compaction; "
            f"logical B/key: {logical}; {d.updates_per_s:,.0f} updates/s during the blocks"
        )
    print(f"max RSS {_rss_mb():,.0f} MB, {time.perf_counter() - t0:,.0f} s")


if __name__ == "__main__":
    main()
