"""The benchmark functions run end to end on a small state and report sane numbers.

(Speed is never asserted; the proofs bench verifies every proof it times.)
"""

from __future__ import annotations

from citychain.state.bench import run_commit_bench, run_disk_bench, run_proofs_bench


def test_commit_bench_reports_positive_rates() -> None:
    r = run_commit_bench(n_keys=2_000, block_keys=300, blocks=2, warmup_blocks=1)
    assert r.updates_per_s > 0 and r.prepare_updates_per_s >= r.updates_per_s
    assert r.written_updates_per_s <= r.updates_per_s
    assert r.pages_per_block > 0


def test_proofs_bench_verifies_what_it_times() -> None:
    r = run_proofs_bench(n_keys=2_000, queries=50)
    assert 0 < r.p50_ms <= r.p99_ms
    assert r.exist_bytes > 0 and r.nonexist_bytes > r.exist_bytes


def test_disk_bench_counts_every_state_family() -> None:
    r = run_disk_bench(n_keys=2_000, blocks=3, block_keys=300, retain_versions=2)
    assert r.bytes_per_key > 0
    assert set(r.logical_bytes_per_key) == {
        "state_latest",
        "state_history",
        "state_nodes",
        "state_stale",
    }
    assert r.logical_bytes_per_key["state_latest"] > 0
