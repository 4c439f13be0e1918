"""`citychain consensus` and `citychain evidence`: why the chain is (not) moving, and who
misbehaved."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table

from citychain.cli._client import make_client
from citychain.cli._output import (
    DEFAULT_NODE,
    Col,
    JsonOpt,
    NodeOpt,
    console,
    fitted_table,
    handles_errors,
    print_json,
)

#: How `consensus` words a validator's part in the last commit.
_COMMIT_WORDS = {
    "signed": "signed",
    "late": "late (fine)",
    "nil": "voted nil",
    "absent": "[red]absent[/]",
}
_STATE_STYLE = {"offline": "red", "lagging": "yellow", "ok": "green"}


def _short(block_hash: str | None) -> str:
    return "nil" if block_hash is None else block_hash[:8]


def _ago(ms: Any) -> str:
    if not isinstance(ms, int):
        return "-"
    return f"{ms / 1000:.1f} s" if ms < 10_000 else f"{ms // 1000} s"


def validators_table(details: dict[str, Any], width: int) -> tuple[Table, list[str]]:
    """Each validator: its state (offline, lagging, ok), height, part in the last commit and
    votes in this round. Falls back to the votes alone for a node without ``validators``."""
    prevotes: dict[str, str | None] = details.get("prevotes") or {}
    precommits: dict[str, str | None] = details.get("precommits") or {}

    def vote(d: dict[str, str | None], name: str) -> str:
        return _short(d[name]) if name in d else "[dim]-[/]"

    rows: list[list[str]] = []
    vals: list[dict[str, Any]] | None = details.get("validators")
    if vals is not None:
        cols = [
            Col("validator"),
            Col("state"),
            Col("height", justify="right"),
            Col("last commit", keep=4),
            Col("prevote", keep=2),
            Col("precommit", keep=3),
            Col("heard", keep=1, justify="right"),
        ]
        for v in vals:
            name = str(v.get("name"))
            state = str(v.get("state"))
            style = _STATE_STYLE.get(state)
            height = v.get("height")
            rows.append(
                [
                    escape(name),
                    f"[{style}]{state}[/]" if style else state,
                    "-" if height is None else str(height),
                    _COMMIT_WORDS.get(str(v.get("last_commit")), "-"),
                    vote(prevotes, name),
                    vote(precommits, name),
                    _ago(v.get("last_heard_ms_ago")),
                ]
            )
    else:  # a node without per-validator diagnostics
        cols = [Col("validator"), Col("prevote", keep=2), Col("precommit", keep=3)]
        names = sorted(
            set(prevotes) | set(precommits) | set(details.get("last_commit_missing", []))
        )
        rows = [[escape(n), vote(prevotes, n), vote(precommits, n)] for n in names]
    return fitted_table(
        cols,
        rows,
        width=width,
        title="validators as this node sees them",
        title_justify="left",
        box=None,
        pad_edge=False,
    )


def last_commit_words(details: dict[str, Any]) -> str:
    """The last commit in words: who signed, who was merely late, who is absent and why."""
    lc: dict[str, Any] | None = details.get("last_commit")
    if lc is None:  # no commit seen since start, or a node without these diagnostics
        missing = details.get("last_commit_missing") or []
        return (
            f"round {details.get('last_commit_round')}, not in the commit: "
            f"{', '.join(missing) or 'none'}"
        )
    total = sum(len(lc.get(k) or []) for k in ("signed", "late", "nil", "absent"))
    parts = [
        f"height {lc.get('height')}, round {lc.get('round')}: "
        f"signed by {len(lc.get('signed') or [])} of {total}"
    ]
    if lc.get("late"):
        parts.append(f"late (precommit after the decision; fine): {', '.join(lc['late'])}")
    if lc.get("nil"):
        parts.append(f"voted nil: {', '.join(lc['nil'])}")
    if lc.get("absent"):
        parts.append(f"absent: {', '.join(lc['absent'])}")
    return "; ".join(parts)


def validators_words(details: dict[str, Any]) -> str | None:
    """Offline and lagging validators in words ("all 4 online and keeping up" when none)."""
    vals: list[dict[str, Any]] | None = details.get("validators")
    if vals is None:
        return None
    off = [str(v.get("name")) for v in vals if v.get("state") == "offline"]
    lag = [str(v.get("name")) for v in vals if v.get("state") == "lagging"]
    if not off and not lag:
        return f"all {len(vals)} online and keeping up"
    parts = []
    if off:
        parts.append(f"[red]offline: {escape(', '.join(off))}[/]")
    if lag:
        parts.append(f"[yellow]lagging: {escape(', '.join(lag))}[/]")
    return "; ".join(parts)


@handles_errors
def consensus(node: NodeOpt = DEFAULT_NODE, as_json: JsonOpt = False) -> None:
    """Height, round and step; what the node is waiting for; each validator offline, lagging
    or fine, and who signed the last commit or was merely late for it."""
    with make_client(node) as client:
        c = client.consensus()
        peers = client.peers()
    if as_json:
        print_json({**c, "peers": peers})
        return
    d: dict[str, Any] = c.get("details", {})
    t = Table(box=None, show_header=False, pad_edge=False)
    t.add_column(no_wrap=True)
    t.add_column(overflow="fold")
    t.add_row("engine", str(c["engine"]))
    t.add_row("height/round", f"[bold]{c['height']}[/] / {c['round']}  step [bold]{c['step']}[/]")
    t.add_row("waiting for", f"[yellow]{escape(str(c['waiting_for']))}[/]")
    if "proposer" in d:
        prop = d.get("proposal")
        t.add_row(
            "proposer", f"{escape(str(d['proposer']))}  proposal {prop[:16] if prop else 'not yet'}"
        )
        t.add_row(
            "power",
            f"prevotes {d.get('prevote_power')}  precommits {d.get('precommit_power')}  "
            f"of {d.get('total_power')} (quorum {d.get('quorum_power')})",
        )
        t.add_row("locked / valid round", f"{d.get('locked_round')} / {d.get('valid_round')}")
        t.add_row("last commit", escape(last_commit_words(d)))
        words = validators_words(d)
        if words is not None:
            t.add_row("validators", words)
        sync = d.get("sync") or {}
        if sync.get("behind"):
            t.add_row("block sync", f"peers at height {sync.get('best_peer_height')}")
        t.add_row("evidence pending", str(d.get("evidence_pending", 0)))
    connected = [p for p in peers if p.get("connected")]
    t.add_row("peers", f"{len(connected)} connected of {len(peers)} known")
    for p in peers:
        if not p.get("connected") and p.get("last_error"):
            t.add_row(
                "", f"[red]{escape(str(p.get('name')))}: {escape(str(p.get('last_error')))}[/]"
            )
    console.print(t)
    if d.get("prevotes") is None and d.get("validators") is None:
        return
    table, left_out = validators_table(d, console.width)
    console.print(table)
    for v in d.get("validators") or []:
        if v.get("note"):
            console.print(f"  {escape(str(v.get('name')))}: {escape(str(v['note']))}")
    if left_out:
        console.print(f"[dim](left out at this width: {', '.join(left_out)}; or use --json)[/]")


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
