"""The README's first command, for real: `citychain net up --validators 4 --orgs 2` starts a
network of four validator processes in two organisations that connect over mutual TLS and
commit blocks signed by more than two thirds; `net status` shows it; `net down` stops it.

The network is run as a reader runs it after the README's install: ``.venv/bin/citychain``
from a working directory, with no ``citychain`` on PATH. One network serves the tests of this
module, in order: what ``net up`` prints (its ``next:`` hints run through a shell exactly as
printed), the diagnostics of a healthy network (no validator offline, however a commit was
cut), tables at 80 columns, then a stopped validator (offline by name) and a second ``net
up`` that starts only it. The ``net down`` hint stops the network at the end.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from ports import free_base_port  # type: ignore[import-not-found]

from citychain.crypto import Signer
from citychain.crypto.keystore import load_key
from citychain.sdk import Client
from citychain.services.identity.contract import to_json
from citychain.services.identity.shapes import did_head_key, did_version_key, multikey_encode
from citychain.types.genesis import Genesis

pytestmark = pytest.mark.slow

#: As the README runs it: the script of the venv under test, by a path relative to the cwd.
SCRIPT = ".venv/bin/citychain"
#: A network directory whose path needs quoting in a shell.
NET_DIR = "my net"


def _path_without_citychain() -> str:
    venv_bin = (Path(sys.prefix) / "bin").resolve()
    keep = []
    for p in os.environ.get("PATH", "").split(os.pathsep):
        if not p or Path(p).resolve() == venv_bin or (Path(p) / "citychain").exists():
            continue
        keep.append(p)
    return os.pathsep.join(keep)


@dataclass
class Net:
    work: Path  # the working directory every command runs in
    dir: Path
    base: int
    up: subprocess.CompletedProcess[str]
    env: dict[str, str]
    _alice: Signer | None = None

    def run(self, *args: str, columns: int = 200) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [SCRIPT, *args],
            cwd=self.work,
            env={**self.env, "COLUMNS": str(columns)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def shell(self, line: str, columns: int = 200) -> subprocess.CompletedProcess[str]:
        """``line`` through bash from the working directory, as a user pastes it."""
        return subprocess.run(
            ["bash", "-c", line],
            cwd=self.work,
            env={**self.env, "COLUMNS": str(columns)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def status(self) -> dict[str, Any]:
        r = self.run("net", "status", "--dir", NET_DIR, "--json")
        assert r.returncode == 0, r.stderr
        doc: dict[str, Any] = json.loads(r.stdout)
        return doc

    def api(self, i: int) -> str:
        return f"http://127.0.0.1:{self.base + 10 * i + 1}"

    def consensus(self, i: int) -> dict[str, Any]:
        r = httpx.get(f"{self.api(i)}/v1/consensus", timeout=10)
        r.raise_for_status()
        doc: dict[str, Any] = r.json()
        return doc

    def together(self) -> dict[str, Any]:
        """Wait until every node is up at height 3 or more with all 3 peers and a commit
        signed by 3 or more; the last ``net status --json``."""
        doc: dict[str, Any] = {}

        def check() -> bool:
            nonlocal doc
            doc = self.status()
            if all(
                n["up"]
                and (n["height"] or 0) >= 3
                and n["peers"] == 3
                and (n["commit_signatures"] or 0) >= 3
                for n in doc["nodes"]
            ):
                return True
            if all(n["up"] and n["peers"] == 3 for n in doc["nodes"]):
                self.nudge()
            return False

        wait_for("the network comes together", check)
        return doc

    def nudge(self) -> None:
        """Start a height now: a transfer from alice (not awaited). An idle network makes one
        empty block per 10 s; a test that needs commits need not wait for them. Always
        through node0, whose pool holds alice's last nudge, so each takes the next nonce."""
        if self._alice is None:
            passphrase = (self.dir / "passphrase").read_text().strip()
            self._alice = load_key(self.dir / "keys" / "alice.json", passphrase)
        with Client(self.api(0)) as c:
            c.send(self._alice, "token", "transfer", {"to": bytes(20), "amount": 1}, wait=False)

    def pids(self) -> dict[str, int]:
        doc = json.loads((self.dir / "pids.json").read_text())
        return {name: int(entry["pid"]) for name, entry in doc.items()}


def hints(out: str) -> list[str]:
    """The command lines ``net up`` printed under ``next:``."""
    lines = out.split("\nnext:\n", 1)[1].splitlines()
    return [ln.strip() for ln in lines if ln.startswith("  ") and ln.strip()]


def table_rows(out: str) -> list[str]:
    """The lines of a table that are a node's row (not the lines of words below a table)."""
    return [
        ln
        for ln in out.splitlines()
        if re.match(r"\s*node\d\s", ln) and "waiting for:" not in ln and " according to " not in ln
    ]


def wait_for(what: str, cond: Any, timeout: float = 90, every: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = cond()
        if last:
            return last
        time.sleep(every)
    pytest.fail(f"{what}: not within {timeout} s (last: {last!r})")


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    work = tmp_path_factory.mktemp("netup")
    (work / ".venv").symlink_to(sys.prefix, target_is_directory=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYCHAIN_")}
    env.pop("VIRTUAL_ENV", None)
    env["PATH"] = _path_without_citychain()
    base = free_base_port(4)
    args = ["net", "up", "--validators", "4", "--orgs", "2", "--dir", NET_DIR]
    up = subprocess.run(
        [SCRIPT, *args, "--base-port", str(base)],
        cwd=work,
        env={**env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    n = Net(work, work / NET_DIR, base, up, env)
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        yield n
        # The last hint stops the network, as printed.
        [down_hint] = [h for h in hints(up.stdout) if " net down" in h]
        down = n.shell(down_hint)
        assert down.returncode == 0, down.stdout + down.stderr
        assert re.search(r"node0\s+stopped", down.stdout), down.stdout
    finally:
        clean = n.run("net", "down", "--dir", NET_DIR, "--clean")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert not n.dir.exists()


def test_net_up_starts_four_validators_of_two_organisations(net: Net) -> None:
    for i in range(4):
        assert net.api(i) in net.up.stdout
    assert "org1" in net.up.stdout and "org2" in net.up.stdout
    assert "started: node0, node1, node2, node3" in net.up.stdout
    doc = net.together()
    assert doc["validators"] == 4
    consensus = [n["consensus"] for n in doc["nodes"]]
    assert all(c is not None and c["waiting_for"] for c in consensus)
    # The metrics the README lists are exported.
    metrics = httpx.get(f"{net.api(0)}/metrics", timeout=10).text
    for name in (
        "citychain_height",
        "citychain_consensus_rounds_per_height",
        "citychain_block_interval_seconds",
        "citychain_p2p_peers",
        "citychain_mempool_txs",
        "citychain_consensus_missing_votes",
        "citychain_consensus_validators",
        "citychain_evidence_committed",
        "citychain_evidence_pending",
        "citychain_state_page_cache_pages",
        "citychain_state_page_cache_capacity",
        "citychain_state_page_reads_total",
        "citychain_gc_frozen_objects",
    ):
        assert f"\n{name}" in metrics, name
    frozen = re.search(r"\ncitychain_gc_frozen_objects (\S+)", metrics)
    assert frozen and float(frozen.group(1)) > 10_000  # the node froze what it built to start


def test_net_up_hints_run_as_printed_from_the_same_directory(net: Net) -> None:
    """No bare `citychain` (not on PATH after the README's install): the hints name the
    script as it was run, and quote the directory."""
    printed = hints(net.up.stdout)
    assert len(printed) == 3, net.up.stdout
    for line in printed:
        assert SCRIPT in line and not re.search(r"(^|\s)citychain ", line), line
    status_hint, node_hint, _ = printed
    r = net.shell(status_hint)
    assert r.returncode == 0, r.stdout + r.stderr
    assert all(f"node{i}" in r.stdout for i in range(4)), r.stdout
    r = net.shell(node_hint)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "citychain-local" in r.stdout and "health" in r.stdout, r.stdout


def test_a_healthy_network_reports_no_validator_offline_over_several_commits(net: Net) -> None:
    """A commit holds the first precommits past 2/3: a validator missing from it is late,
    not offline, and is said so."""
    net.together()
    heights: set[int] = set()
    late_seen = 0
    deadline = time.monotonic() + 120
    while len(heights) < 3 and time.monotonic() < deadline:
        net.nudge()
        for i in range(4):
            c = net.consensus(i)
            d = c["details"]
            states = {v["name"]: v["state"] for v in d["validators"]}
            assert states[f"node{i}"] == "this node"
            assert "offline" not in states.values(), (i, d["validators"])
            lc = d["last_commit"]
            if lc is None:
                continue
            heights.add(lc["height"])
            assert sorted(lc["signed"] + lc["late"] + lc["nil"] + lc["absent"]) == [
                f"node{j}" for j in range(4)
            ]
            assert len(lc["signed"]) >= 3, lc  # more than 2/3 of 4 equal powers
            late_seen += len(lc["late"])
            # The old field still names who is not in the stored commit.
            assert sorted(d["last_commit_missing"]) == sorted(lc["late"] + lc["nil"] + lc["absent"])
        time.sleep(0.7)
    assert len(heights) >= 3, heights
    r = net.run("net", "status", "--dir", NET_DIR)
    assert "validators: all 4 online and keeping up" in r.stdout, r.stdout
    if late_seen:  # a commit cut before the last precommit: that one is said to be late

        def late_said() -> bool:
            net.nudge()
            return "late for the last commit" in net.run("net", "status", "--dir", NET_DIR).stdout

        wait_for("net status names a validator late for a last commit", late_said)


def test_tables_at_80_columns_show_full_node_names_and_heights(net: Net) -> None:
    low = min(n["height"] for n in net.together()["nodes"])
    for args in (("net", "status", "--dir", NET_DIR), ("consensus", "--node", net.api(1))):
        r = net.run(*args, columns=80)
        assert r.returncode == 0, r.stderr
        assert "…" not in r.stdout, r.stdout
        rows = table_rows(r.stdout)
        assert max(map(len, rows)) <= 80, r.stdout  # longer lines of words wrap, rows fit
        for i in range(4):
            assert any(row.split()[0] == f"node{i}" for row in rows), r.stdout
    r = net.run("net", "status", "--dir", NET_DIR, columns=80)
    high = max(n["height"] for n in net.status()["nodes"])
    rows = [ln.split() for ln in table_rows(r.stdout)]
    assert len(rows) == 4, r.stdout
    for row in rows:  # each row shows its node's whole height
        assert any(t.isdigit() and low <= int(t) <= high for t in row), (row, low, high)
    wide = net.run("net", "status", "--dir", NET_DIR, columns=200)
    header = next(ln for ln in wide.stdout.splitlines() if ln.split()[:1] == ["node"])
    assert "waiting for" in header, wide.stdout  # a column when it fits
    r = net.run("status", "--node", net.api(2), columns=80)
    assert r.returncode == 0 and "…" not in r.stdout, r.stdout


def test_a_did_created_on_one_node_resolves_with_a_proof_on_another(net: Net) -> None:
    """Identity on the network: alice creates a did:citychain through node0; node2 resolves
    it over HTTP, and the SDK proves both of its state records against node2's signed
    header and the genesis validators, and they rebuild the document node2 served."""
    passphrase = (net.dir / "passphrase").read_text().strip()
    alice = load_key(net.dir / "keys" / "alice.json", passphrase)
    doc = {
        "verificationMethod": [
            {
                "id": "#key-1",
                "type": "Multikey",
                "publicKeyMultibase": multikey_encode(alice.public_key),
            }
        ],
        "assertionMethod": ["#key-1"],
        "capabilityInvocation": ["#key-1"],
    }
    with Client(net.api(0)) as c0:
        did = c0.send(alice, "identity", "create_did", {"document": doc}, timeout=60).result
    genesis = Genesis.load(net.dir / "node0" / "config" / "genesis.json")

    def served() -> dict[str, Any] | None:
        r = httpx.get(f"{net.api(2)}/1.0/identifiers/{did}", timeout=10)
        return r.json() if r.status_code == 200 else None

    result = wait_for("node2 resolves the DID", served, timeout=30)
    assert result["didDocument"]["id"] == did
    with Client(net.api(2), validators=genesis.validator_set) as c2:
        head = c2.get_state(did_head_key(did))  # proof + 2/3 of the validators' signatures
        version = c2.get_state(did_version_key(did, 1), height=head.height)
    assert head.verified and version.verified and head.exists
    record = version.decode()["doc"]
    assert to_json(record, did) == result["didDocument"]


def test_a_stopped_validator_is_offline_by_name_and_a_second_up_starts_only_it(net: Net) -> None:
    before = net.pids()
    os.kill(before["node3"], signal.SIGTERM)

    def seen_offline() -> list[dict[str, Any]] | None:
        net.nudge()  # a height node3 misses (or 10 s of its silence) makes it offline
        views = []
        for i in range(3):
            vals = {v["name"]: v for v in net.consensus(i)["details"]["validators"]}
            if vals["node3"]["state"] != "offline":
                return None
            views.append(vals)
        return views

    views = wait_for("node3 is reported offline by the others", seen_offline)
    for i, vals in enumerate(views):
        assert vals[f"node{i}"]["state"] == "this node"
        others = [v["state"] for n, v in vals.items() if n not in ("node3", f"node{i}")]
        assert "offline" not in others, vals
        assert vals["node3"]["connected"] is False and "not connected" in vals["node3"]["note"]
    r = net.run("net", "status", "--dir", NET_DIR, columns=80)
    assert "node3 offline according to node0, node1, node2" in r.stdout, r.stdout
    r = net.run("consensus", "--node", net.api(0), columns=80)
    assert "offline: node3" in r.stdout, r.stdout

    # The metric an operator alerts on says the same (set at each commit).
    def offline_metric() -> bool:
        net.nudge()
        metrics = httpx.get(f"{net.api(0)}/metrics", timeout=10).text
        return 'citychain_consensus_validators{state="offline"} 1.0' in metrics

    wait_for("node0's metrics count node3 offline", offline_metric)

    # A second `net up` leaves the running nodes alone and starts the stopped one.
    again = net.run("net", "up", "--dir", NET_DIR)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "already running: node0, node1, node2 (left as they are)" in again.stdout
    assert "started: node3" in again.stdout
    after = net.pids()
    assert {n: after[n] for n in ("node0", "node1", "node2")} == {
        n: before[n] for n in ("node0", "node1", "node2")
    }
    assert after["node3"] != before["node3"]

    def back() -> bool:
        net.nudge()
        vals = net.consensus(0)["details"]["validators"]
        return all(v["state"] in ("ok", "this node") for v in vals)

    wait_for("node3 is back", back)
