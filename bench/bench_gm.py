"""GM benchmark figures in one run: transfers/s of a single validator and of a 4-validator
network on the ``sm2-sm3`` suite beside the same on Ed25519, each beside its ceiling, and SM2
verify/s beside ``openssl speed sm2``.

    PYTHONPATH=src .venv/bin/python bench/bench_gm.py [--quick]

What runs, in this order (the suites alternate, so a busy machine hurts both alike):

1. single validator, Ed25519, then sm2-sm3: ``citychain init [--crypto sm2]`` (the library's
   ``init_home``) and ``citychain start`` as a child process, the same node as the earlier
   ``bench transfers`` figures on ``start --demo`` (solo engine);
2. four validators of two organisations, Ed25519, then sm2-sm3: the network ``citychain net up
   [--crypto sm2]`` makes (``generate_network``, default parameters), four node processes
   with mutual TLS, load spread round-robin over the four APIs (``--also``);
3. SM2 verify/s on one thread beside ``openssl speed sm2`` (3 rounds alternating the two;
   medians). ``openssl speed`` counts user CPU time, so the suite's rate is counted per second
   of this thread's CPU time too (and per wall second beside it): on a shared machine a
   wall-clock rate compares our share of a core with openssl's whole core.

Each transfer figure is :func:`citychain.bench.transfers.run_transfers`, what ``citychain
bench transfers`` runs: its ceiling is the suite's signature verifications/s on all cores,
measured in the same run just before the load. The load sizes differ per suite and network so
that each takes roughly the same ten-odd seconds (SM2 verifies about 10x slower than Ed25519
here). The machine's load average is printed beside each figure: the machine is shared.
Every node runs in a temporary directory, deleted at the end; nothing listens afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from bench_sm2 import MSG, cpu_rate, openssl_speed  # this directory (run as a script)

from citychain.bench.transfers import TransfersResult, run_transfers
from citychain.crypto import ED25519, SM2_SM3, CryptoSuite, Signer
from citychain.crypto.keystore import load_key
from citychain.node.home import init_home
from citychain.node.processes import ProcessRef, spawn_node, stop_processes, wait_until_up
from citychain.node.testnet import PORT_STRIDE, NetNode, generate_network
from citychain.sdk import Client


@dataclass(frozen=True, slots=True)
class Load:
    """How many senders, and transfers each, for one configuration."""

    senders: int
    per_sender: int


#: Sizes for ~10-15 s of load each on a shared 2-core VM (Ed25519 single ~6,000/s, 4 validators
#: ~900/s; SM2 about a sixth of those).
LOADS = {
    ("ed25519", 1): Load(2000, 30),
    ("sm2-sm3", 1): Load(1000, 10),
    ("ed25519", 4): Load(1000, 10),
    ("sm2-sm3", 4): Load(500, 5),
}
QUICK = {k: Load(max(100, v.senders // 4), max(2, v.per_sender // 2)) for k, v in LOADS.items()}


def _free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_base(nodes: int) -> int:
    """A base port whose p2p and API ports for ``nodes`` nodes are free now."""
    for _ in range(200):
        base = random.randrange(20000, 32000 - PORT_STRIDE * nodes, PORT_STRIDE)
        if all(_free(base + PORT_STRIDE * i + k) for i in range(nodes) for k in (0, 1)):
            return base
    raise SystemExit("no free block of ports between 20000 and 32000")


def load_avg() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def transfers(urls: list[str], keys: Path, passphrase: str, load: Load) -> TransfersResult:
    """``run_transfers`` as ``citychain bench transfers --key alice`` runs it (the admin key
    org1-admin registers the senders first: the chain is in registered-key identity mode)."""
    issuer = load_key(keys / "alice.json", passphrase)
    admin = load_key(keys / "org1-admin.json", passphrase)
    with Client(urls[0], timeout=10) as c:
        chain_id = c.status().chain_id
        member = c.gov.member(admin.address)
        assert member is not None, "org1-admin is not a member"
    return asyncio.run(
        run_transfers(
            urls,
            issuer,
            chain_id=chain_id,
            senders=load.senders,
            per_sender=load.per_sender,
            admin=(admin, str(member.org)),
            log=lambda m: print(f"    {m}", flush=True),
        )
    )


def _wait_health(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the node exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the node did not come up:\n{log.read_text()[-3000:]}")


def single_validator(suite: CryptoSuite, work: Path, load: Load) -> TransfersResult:
    home = work / f"single-{suite.name}"
    port = free_base(1) + 1
    init_home(
        home, chain_id=f"bench-{suite.name}", api_port=port, suite=suite, kdf_level="interactive"
    )
    passphrase = (home / "config" / "passphrase").read_text().strip()
    log = home / "node.log"
    url = f"http://127.0.0.1:{port}"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "citychain.cli.main", "start", "--home", str(home)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_health(url, proc, log)
        return transfers([url], home / "keys", passphrase, load)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def four_validators(suite: CryptoSuite, work: Path, load: Load) -> TransfersResult:
    layout = generate_network(
        work / f"net-{suite.name}",
        validators=4,
        orgs=2,
        chain_id=f"bench-net-{suite.name}",
        base_port=free_base(4),
        suite=suite,
    )
    procs: dict[str, ProcessRef] = {}
    try:
        nodes: tuple[NetNode, ...] = layout.nodes
        for n in nodes:
            procs[n.name] = spawn_node(n)
        failed = wait_until_up(layout, procs, timeout=90)
        if failed:
            raise SystemExit("\n".join(f"{f.name}: {f.reason}\n{f.log_tail}" for f in failed))
        urls = [n.api_url for n in nodes]
        # every node connected to its three peers before the load
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            peers = [httpx.get(f"{u}/v1/net/peers", timeout=5).json()["peers"] for u in urls]
            if all(sum(p["connected"] for p in ps) == 3 for ps in peers):
                break
            time.sleep(0.5)
        return transfers(urls, layout.keys_dir, layout.passphrase, load)
    finally:
        stop_processes(procs.values(), grace=20.0)


def sm2_vs_openssl(seconds: float, rounds: int) -> tuple[float, float, float]:
    """Medians of the suite's single-thread SM2 verify/s per CPU second and per wall second,
    and ``openssl speed sm2``'s verify/s.

    ``openssl speed`` counts user CPU time unless given ``-elapsed``, so on a busy machine its
    figure stays what one core does while ours, counted in wall time, drops with our share of
    the cores: the ratio compares our rate per CPU second (``time.thread_time``) with it. The
    wall-time rate is printed beside it."""
    signer = Signer.generate(SM2_SM3)
    pub, sig = signer.public_key, signer.sign(MSG)
    assert SM2_SM3.verify(pub, MSG, sig)
    cpu, wall, ceil = [], [], []
    for i in range(rounds):
        c, w = cpu_rate(lambda: SM2_SM3.verify(pub, MSG, sig), seconds)
        cpu.append(c)
        wall.append(w)
        ceil.append(openssl_speed(seconds)[1])
        print(
            f"  round {i + 1}: suite {c:,.0f} verifies per CPU second ({w:,.0f} per wall "
            f"second), openssl speed {ceil[-1]:,.0f}"
        )
    return statistics.median(cpu), statistics.median(wall), statistics.median(ceil)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--quick", action="store_true", help="smaller loads (a smoke run)")
    ap.add_argument("--seconds", type=float, default=2.0, help="per SM2/openssl round")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    loads = QUICK if args.quick else LOADS
    print(f"bench_gm: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, {os.cpu_count()} cores")
    results: dict[tuple[str, int], tuple[TransfersResult, str, str]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-gm-") as tmp:
        work = Path(tmp)
        for validators in (1, 4):
            for suite in (ED25519, SM2_SM3):
                load = loads[(suite.name, validators)]
                print(
                    f"{suite.name}, {validators} validator(s): {load.senders} senders x "
                    f"{load.per_sender} transfers (load average {load_avg()})",
                    flush=True,
                )
                before = load_avg()
                run = single_validator if validators == 1 else four_validators
                res = run(suite, work, load)
                results[(suite.name, validators)] = (res, before, load_avg())
                print(
                    f"bench transfers-{suite.name}-{validators}v: {res.rate:,.0f} transfers/s "
                    f"(ceiling {res.ceiling:,.0f} {suite.name} verifications/s, ratio "
                    f"{res.rate / res.ceiling:.3f}); {res.committed} of {res.submitted} "
                    f"committed ({res.rejected} refused) in {res.seconds:.1f} s, "
                    f"{res.blocks} blocks",
                    flush=True,
                )
    print(f"SM2 verify, one thread, beside openssl speed sm2 (load average {load_avg()})")
    v, wall, c = sm2_vs_openssl(args.seconds, args.rounds)
    print(f"bench sm2-verify: {v:,.0f} verifies/s (ceiling {c:,.0f} verifies/s, ratio {v / c:.2f})")
    print(f"  (per wall second: {wall:,.0f} verifies/s, ratio {wall / c:.2f})")

    print(
        "\n| network | suite | transfers/s | ceiling (verifications/s, all cores) | ratio "
        "| committed | seconds | load avg before → after |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for (name, validators), (res, before, after) in sorted(
        results.items(), key=lambda kv: (kv[0][1], kv[0][0])
    ):
        print(
            f"| {validators} validator{'s' if validators > 1 else ''} | {name} | "
            f"{res.rate:,.0f} | {res.ceiling:,.0f} | {res.rate / res.ceiling:.3f} | "
            f"{res.committed:,} | {res.seconds:.1f} | {before} → {after} |"
        )
    for validators in (1, 4):
        ed, gm = results[("ed25519", validators)][0], results[("sm2-sm3", validators)][0]
        print(
            f"{validators} validator(s): sm2-sm3 at {gm.rate / ed.rate:.2f}x Ed25519's rate; "
            f"ratios to ceiling {gm.rate / gm.ceiling:.3f} vs {ed.rate / ed.ceiling:.3f}"
        )
    print(f"SM2 verify {v:,.0f}/s vs openssl speed sm2 {c:,.0f}/s: {v / c:.0%} (target >= 80 %)")


if __name__ == "__main__":
    main()
