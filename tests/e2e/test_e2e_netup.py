"""The README's first command, for real: `citychain net up --validators 4 --orgs 2` starts a
network of four validator processes in two organisations that connect over mutual TLS and
commit blocks signed by more than two thirds; `net status` shows it; `net down` stops it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from netproc import free_base_port  # type: ignore[import-not-found]

CLI = [sys.executable, "-m", "citychain.cli.main"]


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def status(d: Path) -> dict[str, Any]:
    r = cli("net", "status", "--dir", str(d), "--json")
    assert r.returncode == 0, r.stderr
    doc: dict[str, Any] = json.loads(r.stdout)
    return doc


@pytest.mark.slow
def test_net_up_starts_four_validators_of_two_organisations(tmp_path: Path) -> None:
    d = tmp_path / "net"
    base = free_base_port(4)
    up = cli(
        "net", "up", "--validators", "4", "--orgs", "2", "--dir", str(d), "--base-port", str(base)
    )
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        for i in range(4):
            assert f"http://127.0.0.1:{base + 10 * i + 1}" in up.stdout
        assert "org1" in up.stdout and "org2" in up.stdout
        deadline = time.monotonic() + 90
        doc: dict[str, Any] = {}
        while time.monotonic() < deadline:
            doc = status(d)
            nodes = doc["nodes"]
            if all(
                n["up"]
                and (n["height"] or 0) >= 3
                and n["peers"] == 3
                and (n["commit_signatures"] or 0) >= 3
                for n in nodes
            ):
                break
            time.sleep(1)
        else:
            pytest.fail(f"network did not come together: {json.dumps(doc, indent=1)}")
        assert doc["validators"] == 4
        consensus = [n["consensus"] for n in doc["nodes"]]
        assert all(c is not None and c["waiting_for"] for c in consensus)
        # The metrics the README lists are exported.
        metrics = httpx.get(f"http://127.0.0.1:{base + 1}/metrics", timeout=10).text
        for name in (
            "citychain_height",
            "citychain_consensus_rounds_per_height",
            "citychain_block_interval_seconds",
            "citychain_p2p_peers",
            "citychain_mempool_txs",
            "citychain_consensus_missing_votes",
            "citychain_evidence_committed",
            "citychain_evidence_pending",
        ):
            assert f"\n{name}" in metrics, name
        # The human table names every node and its organisation.
        table = cli("net", "status", "--dir", str(d))
        assert table.returncode == 0
        for i in range(4):
            assert f"node{i}" in table.stdout
    finally:
        down = cli("net", "down", "--dir", str(d), "--clean")
    assert down.returncode == 0, down.stdout + down.stderr
    assert not d.exists()
