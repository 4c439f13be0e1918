"""`citychain consensus` and `citychain evidence`: why the chain is (not) moving, and who
misbehaved."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from citychain.cli._client import make_client
from citychain.cli._output import (
    DEFAULT_NODE,
    JsonOpt,
    NodeOpt,
    console,
    handles_errors,
    print_json,
)


def _votes_table(details: dict[str, Any]) -> Table:
    t = Table(title="votes of this round", box=None, pad_edge=False)
    t.add_column("validator")
    t.add_column("prevote")
    t.add_column("precommit")
    prevotes: dict[str, str | None] = details.get("prevotes", {})
    precommits: dict[str, str | None] = details.get("precommits", {})
    names = sorted(set(prevotes) | set(precommits) | set(details.get("last_commit_missing", [])))

    def show(d: dict[str, str | None], name: str) -> str:
        if name not in d:
            return "[dim]-[/]"
        v = d[name]
        return "nil" if v is None else v[:12]

    for name in names:
        t.add_row(name, show(prevotes, name), show(precommits, name))
    return t


@handles_errors
def consensus(node: NodeOpt = DEFAULT_NODE, as_json: JsonOpt = False) -> None:
    """Height, round and step; who has voted; what the node is waiting for."""
    with make_client(node) as client:
        c = client.consensus()
        peers = client.peers()
    if as_json:
        print_json({**c, "peers": peers})
        return
    d: dict[str, Any] = c.get("details", {})
    t = Table(box=None, show_header=False, pad_edge=False)
    t.add_row("engine", str(c["engine"]))
    t.add_row("height/round", f"[bold]{c['height']}[/] / {c['round']}  step [bold]{c['step']}[/]")
    t.add_row("waiting for", f"[yellow]{c['waiting_for']}[/]")
    if "proposer" in d:
        prop = d.get("proposal")
        t.add_row("proposer", f"{d['proposer']}  proposal {prop[:16] if prop else 'not yet'}")
        t.add_row(
            "power",
            f"prevotes {d.get('prevote_power')}  precommits {d.get('precommit_power')}  "
            f"of {d.get('total_power')} (quorum {d.get('quorum_power')})",
        )
        t.add_row("locked / valid round", f"{d.get('locked_round')} / {d.get('valid_round')}")
        missing = d.get("last_commit_missing") or []
        t.add_row(
            "last commit",
            f"round {d.get('last_commit_round')}, missing: {', '.join(missing) or 'none'}",
        )
        sync = d.get("sync") or {}
        if sync.get("behind"):
            t.add_row("block sync", f"peers at height {sync.get('best_peer_height')}")
        t.add_row("evidence pending", str(d.get("evidence_pending", 0)))
    connected = [p for p in peers if p.get("connected")]
    t.add_row("peers", f"{len(connected)} connected of {len(peers)} known")
    for p in peers:
        if not p.get("connected") and p.get("last_error"):
            t.add_row("", f"[red]{p.get('name')}: {p.get('last_error')}[/]")
    console.print(t)
    if d.get("prevotes") is not None:
        console.print(_votes_table(d))


@handles_errors
def evidence(node: NodeOpt = DEFAULT_NODE, as_json: JsonOpt = False) -> None:
    """Evidence of double signing: committed in blocks, and seen but pending."""
    with make_client(node) as client:
        info = client.evidence()
    if as_json:
        print_json(
            {
                "committed": [
                    {"committed_height": h, "evidence": e.to_json()} for h, e in info.committed
                ],
                "pending": [e.to_json() for e in info.pending],
            }
        )
        return
    if not info.committed and not info.pending:
        console.print("no evidence of misbehaviour")
        return
    t = Table(box=None, pad_edge=False)
    for col in ("status", "validator", "height/round", "vote", "block A", "block B"):
        t.add_column(col)
    rows = [(f"committed in {h}", e) for h, e in info.committed]
    rows += [("pending", e) for e in info.pending]
    for status, e in rows:
        a, b = e.vote_a, e.vote_b
        t.add_row(
            status,
            e.validator.hex()[:16],
            f"{e.height}/{a.round}",
            "prevote" if a.type == 1 else "precommit",
            a.block_hash.hex()[:12] or "nil",
            b.block_hash.hex()[:12] or "nil",
        )
    console.print(t)
