"""``citychain bench profile``: microseconds per transaction, stage by stage, on each node.

Each node counts the time its transaction path spends per stage (:mod:`citychain.stages`) and
exports it on ``/metrics``. The profile reads every node's counters right before a transfer
load starts and again once every transfer is committed, and divides the difference by the
transactions committed in between: "microseconds per committed transaction" per stage, per
node. The stages are disjoint (an inner stage's time is not counted again in the outer one).
Admission (decoding, checks, signatures) runs for several requests at once on the thread pool,
so its wall times overlap one another and the block path; they are shown apart. The block
path (mempool bookkeeping, proposal, execution with its signature checks, state root, commit)
runs one block at a time: its sum against ``1e6 / rate`` ("wall per tx") shows how much of a
transaction's time is that path, and what is left is waiting (consensus rounds, the network,
idle time between blocks) or admission competing for the same cores.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

from citychain.bench import node_errors
from citychain.stages import STAGES

#: What each stage covers, in a phrase, for the printed table.
WHAT: dict[str, str] = {
    "admission": "decode + stateless checks",
    "verify_admission": "signatures at admission",
    "mempool": "nonce/access checks, pool, reap, drop",
    "proposal": "block limits, tx root, header",
    "verify_execution": "signatures again at execution",
    "execution": "checks, nonces, contracts, receipts",
    "state_root": "sparse Merkle tree writes + root",
    "commit": "block, receipts, indexes, state: one synced batch",
}

Clock = dict[str, tuple[float, float]]  # stage -> (seconds, transactions)


def read_clock(url: str) -> Clock:
    """A node's stage counters from its ``/metrics``."""
    with node_errors(url):
        text = httpx.get(url.rstrip("/") + "/metrics", timeout=10).raise_for_status().text
    seconds: dict[str, float] = {}
    txs: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name in ("citychain_stage_seconds", "citychain_stage_txs"):
            into = seconds if family.name == "citychain_stage_seconds" else txs
            for sample in family.samples:
                if sample.name.endswith("_total"):
                    into[sample.labels["stage"]] = float(sample.value)
    return {s: (seconds.get(s, 0.0), txs.get(s, 0.0)) for s in STAGES}


@dataclass(frozen=True, slots=True)
class NodeProfile:
    url: str
    #: stage -> microseconds per committed transaction
    per_tx: dict[str, float]

    @property
    def total(self) -> float:
        return sum(self.per_tx.values())


def profile(url: str, before: Clock, after: Clock, committed: int) -> NodeProfile:
    per_tx = {
        s: (after[s][0] - before[s][0]) * 1e6 / committed if committed else 0.0 for s in STAGES
    }
    return NodeProfile(url, per_tx)


#: Stages run for several API requests at once on the thread pool: their wall times overlap
#: each other and the block path, so they are not added to it.
CONCURRENT = ("admission", "verify_admission")
#: Stages of the block path (and the mempool's bookkeeping), one block or request at a time.
SERIAL = tuple(s for s in STAGES if s not in CONCURRENT)


def serial_total(p: NodeProfile) -> float:
    return sum(p.per_tx[s] for s in SERIAL)


def table(profiles: list[NodeProfile], rate: float) -> str:
    """The stage table: one column per node, microseconds per committed transaction."""
    names = [f"node{i}" for i in range(len(profiles))]
    head = f"{'stage':<18}" + "".join(f"{n:>10}" for n in names) + "  what"
    rule = "-" * len(head)
    lines = [head, rule]

    def row(s: str) -> None:
        cells = "".join(f"{p.per_tx[s]:>10.1f}" for p in profiles)
        lines.append(f"{s:<18}{cells}  {WHAT[s]}")

    for s in CONCURRENT:
        row(s)
    lines.append(f"{'':<18}" + " " * 10 * len(profiles) + "  (thread pool, overlapping requests)")
    lines.append(rule)
    for s in SERIAL:
        row(s)
    lines.append(
        f"{'block path':<18}"
        + "".join(f"{serial_total(p):>10.1f}" for p in profiles)
        + "  sum of the stages above: one block at a time"
    )
    wall = 1e6 / rate if rate else 0.0
    lines.append(f"{'wall per tx':<18}{wall:>10.1f}  1e6 / committed transfers per second")
    return "\n".join(lines)
