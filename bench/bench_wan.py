"""Validators in different cities: 4 validators whose every link has a one-way delay.

    .venv/bin/python bench/bench_wan.py [--delay-ms 30] [--seconds 20] [--senders 1000]
        [--rate R] [--no-baseline]

The issue asks for network namespaces and ``tc netem``; this machine's kernel has no
``sch_netem`` (``tc qdisc add ... netem`` answers "Specified qdisc kind is unknown" and there
is no module to load), so the delay is made in user space instead: every p2p connection
between the nodes runs through ``tests/e2e/faultproxy.py`` (the proxy of the partition tests),
which holds each chunk back ``--delay-ms`` before passing it on, in order, each way. TLS
passes through it untouched. What it does not model: loss, jitter and bandwidth limits; and
the proxy runs in this process, so its forwarding shares a core with the load generator.
Nothing is left behind: the proxy and the four node processes end with the script.

For each network (first without delay, as the baseline of the same run, unless
``--no-baseline``; then with the delay):

1. Four validators of two organisations (``LocalNet``: real processes, mutual TLS, the chain
   in registered-key identity mode), 1,000 senders registered and funded.
2. ``wan-transfers``: committed transfers/s at saturation (``run_transfers``: pre-signed
   transfers posted in batches over all four nodes, until every one is committed).
3. ``wan-latency``: submit-to-commit latency p50/p99 at half that rate and at a light 50/s
   (or at each ``--rate``), for
   ``--seconds`` (``run_latency``: batches every 100 ms, round-robin over the nodes; a
   transaction counts when node 0 serves the block that holds it, polled every 50 ms).

Lines in the house form, each beside the ceiling measured in the same run (Ed25519
verifications/s on both cores, as ``bench transfers``). The expected latency floor is also
printed: a transfer waits for the next height (a block interval, 200 ms), and a height under
BFT takes a proposal, a prevote and a precommit, three one-way delays, plus execution.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "e2e"))  # netproc, faultproxy: inside this repo

from netproc import LocalNet  # type: ignore[import-not-found,unused-ignore]  # noqa: E402

from citychain.bench import result_line  # noqa: E402
from citychain.bench.latency import run_latency  # noqa: E402
from citychain.bench.transfers import run_transfers  # noqa: E402
from citychain.crypto import Signer  # noqa: E402

#: The second offered rate by default: light enough that no queue forms anywhere, so the
#: latency is the protocol's own (block interval, three one-way delays, execution).
LIGHT_LOAD = 50


def say(what: str) -> None:
    print(f"  {what}", flush=True)


def _network(tmp: Path, delay_ms: int, args: argparse.Namespace) -> None:
    label = f"{delay_ms} ms" if delay_ms else "no delay"
    with LocalNet(
        tmp / f"net-{delay_ms}", validators=4, orgs=2, proxy=True, delay=delay_ms / 1000
    ) as net:
        net.start_all(timeout=120)
        net.wait_height(3, timeout=120)
        urls = [net.api(i) for i in range(4)]
        issuer = net.signer("alice")
        admin = (net.signer("org1-admin"), "org1")
        chain_id = net.get(0, "/v1/status")["chain_id"]
        say(f"{label}: 4 validators up at height {net.height(0)}")
        tr = asyncio.run(
            run_transfers(
                urls,
                issuer,
                chain_id=chain_id,
                senders=args.senders,
                per_sender=args.per_sender,
                log=say,
                admin=admin,
            )
        )
        say(f"{label}: {tr.committed:,} transfers in {tr.seconds:.1f} s ({tr.rate:,.0f}/s)")
        print(
            result_line(
                f"wan-transfers-{delay_ms}ms",
                tr.rate,
                f"transfers/s, 4 validators, {label} per link",
                tr.ceiling,
                "verifications/s",
            ),
            flush=True,
        )
        for rate in args.rate or [max(10, int(tr.rate / 2)), LIGHT_LOAD]:
            _latency(net, urls, issuer, admin, chain_id, rate, delay_ms, label, args)
        if net.proxy is not None:
            total = sum(s.bytes_total for s in net.proxy.stats().values())
            say(f"{label}: {total / 2**20:,.1f} MiB crossed the links")
        for i in range(4):
            print(f"{label}, node {i}: {_rounds(urls[i])}", flush=True)


def _rounds(url: str) -> str:
    """How the node's heights were decided: in round 0 or later (a later round means a
    timeout fired), from its ``citychain_consensus_rounds_per_height`` histogram."""
    text = httpx.get(f"{url}/metrics", timeout=10).raise_for_status().text
    first = heights = 0
    for family in text_string_to_metric_families(text):
        if family.name != "citychain_consensus_rounds_per_height":
            continue
        for sample in family.samples:
            if sample.name.endswith("_bucket") and float(sample.labels["le"]) == 0:
                first = int(sample.value)
            elif sample.name.endswith("_count"):
                heights = int(sample.value)
    return (
        f"{first} of {heights} heights decided in round 0 ({heights - first} needed a later round)"
    )


def _latency(
    net: LocalNet,
    urls: list[str],
    issuer: Signer,
    admin: tuple[Signer, str],
    chain_id: str,
    rate: int,
    delay_ms: int,
    label: str,
    args: argparse.Namespace,
) -> None:
    t0 = time.monotonic()
    lat = asyncio.run(
        run_latency(
            urls,
            issuer,
            chain_id=chain_id,
            rate=rate,
            duration=args.seconds,
            senders=args.senders,
            log=say,
            admin=admin,
        )
    )
    say(
        f"{label}: offered {rate}/s, committed {lat.committed:,} of {lat.submitted:,}; "
        f"p50 {lat.p50_s * 1000:.0f} ms, p99 {lat.p99_s * 1000:.0f} ms, "
        f"max {lat.max_s * 1000:.0f} ms; heights {net.heights()}; "
        f"{time.monotonic() - t0:.0f} s"
    )
    print(
        result_line(
            f"wan-latency-rate-{delay_ms}ms",
            lat.committed_rate,
            f"transfers/s offered {rate}/s, {label} per link",
            lat.ceiling,
            "verifications/s",
        )
    )
    floor = 200 + 3 * delay_ms
    print(
        f"bench wan-latency-{delay_ms}ms: p50 {lat.p50_s * 1000:.0f} ms, "
        f"p99 {lat.p99_s * 1000:.0f} ms at {rate}/s offered "
        f"(floor ~{floor} ms: a 200 ms block interval + 3 x {delay_ms} ms one-way, "
        "plus execution and 50 ms polling)",
        flush=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--delay-ms", type=int, default=30, help="one-way delay of every link")
    ap.add_argument("--seconds", type=int, default=20, help="seconds of offered load")
    ap.add_argument("--senders", type=int, default=1000)
    ap.add_argument("--per-sender", type=int, default=20, help="transfers each, saturation")
    ap.add_argument(
        "--rate",
        type=int,
        action="append",
        help="an offered rate for the latency lines (repeat for several; default: half of max)",
    )
    ap.add_argument("--no-baseline", action="store_true", help="skip the network without delay")
    args = ap.parse_args()
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="citychain-bench-wan-") as tmp:
        for delay in ([] if args.no_baseline else [0]) + [args.delay_ms]:
            _network(Path(tmp), delay, args)
    say(f"{time.monotonic() - t0:.0f} s in all")


if __name__ == "__main__":
    main()
