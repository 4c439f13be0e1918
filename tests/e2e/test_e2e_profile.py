"""``citychain bench profile`` against a real node: every stage of the path is seen, in
microseconds per committed transfer, and the node's /metrics carries the stage counters."""

from __future__ import annotations

import re

import httpx
import pytest
from nodeproc import NodeProcess, cli  # type: ignore[import-not-found]

from citychain.stages import STAGES

pytestmark = pytest.mark.slow


def test_bench_profile_prints_every_stage_of_the_path(node: NodeProcess) -> None:
    env = {"CITYCHAIN_HOME": str(node.home), "CITYCHAIN_PASSPHRASE": node.passphrase}
    r = cli(
        "bench", "profile", "--key", "alice", "--node", node.url,
        "--senders", "200", "--duration", "1", "--batch", "200", "--in-flight", "3",
        env=env, timeout=240,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr + r.stdout
    rows = {}
    for line in r.stdout.splitlines():
        m = re.match(r"(\w+)\s+([\d.]+)\s", line)
        if m and m.group(1) in STAGES:
            rows[m.group(1)] = float(m.group(2))
    assert set(rows) == set(STAGES), r.stdout
    # every stage did work for the load; signature checks and execution cost something
    assert all(v > 0 for v in rows.values()), rows
    assert re.search(r"^block path\s+[\d.]+", r.stdout, re.M)
    assert re.search(r"^bench transfers: [\d,]+ transfers/s \(ceiling", r.stdout, re.M)

    metrics = httpx.get(node.url + "/metrics").text
    for stage in STAGES:
        assert re.search(rf'citychain_stage_seconds_total{{stage="{stage}"}} [\d.e+-]+', metrics)
        m = re.search(rf'citychain_stage_txs_total{{stage="{stage}"}} ([\d.e+]+)', metrics)
        assert m and float(m.group(1)) >= 1000, stage


def test_bench_refuses_no_requests_in_flight(node: NodeProcess) -> None:
    env = {"CITYCHAIN_HOME": str(node.home), "CITYCHAIN_PASSPHRASE": node.passphrase}
    r = cli("bench", "transfers", "--key", "alice", "--node", node.url, "--in-flight", "0", env=env)
    assert r.returncode == 1 and "Traceback" not in r.stderr + r.stdout
    out = r.stderr + r.stdout
    assert "error [bad_arguments]: Invalid value for '--in-flight'" in out
    assert "greater than or equal to 1" in out
