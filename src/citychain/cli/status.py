"""`citychain status`: what the node is doing."""

from __future__ import annotations

from datetime import UTC, datetime

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


@handles_errors
def status(node: NodeOpt = DEFAULT_NODE, as_json: JsonOpt = False) -> None:
    """Chain, height, latest block, mempool and validators of a node."""
    with make_client(node) as client:
        s = client.status()
        ok, details = client.health()
    if as_json:
        print_json(
            {
                "chain_id": s.chain_id,
                "crypto_suite": s.crypto_suite,
                "node_id": s.node_id,
                "public_key": s.public_key,
                "height": s.height,
                "latest_block_hash": s.latest_block_hash,
                "latest_block_time": s.latest_block_time,
                "state_root": s.state_root,
                "mempool": {"txs": s.mempool_txs, "bytes": s.mempool_bytes},
                "validators": s.validators.to_json(),
                "validators_hash": s.validators.hash,
                "syncing": s.syncing,
                "version": s.version,
                "healthy": ok,
                "health": details,
            }
        )
        return
    when = datetime.fromtimestamp(s.latest_block_time / 1000, UTC)
    t = Table(box=None, show_header=False, pad_edge=False)
    t.add_column(no_wrap=True)
    t.add_column(overflow="fold")  # a narrow terminal folds a hash; nothing is cut
    t.add_row("node", f"{s.node_id}  ({node}, version {s.version})")
    t.add_row("chain", f"[bold]{s.chain_id}[/]  ({s.crypto_suite})")
    t.add_row("height", f"[bold]{s.height}[/]" + ("  [yellow]syncing[/]" if s.syncing else ""))
    t.add_row("latest block", f"{s.latest_block_hash.hex()}  {when:%Y-%m-%d %H:%M:%S} UTC")
    t.add_row("state root", s.state_root.hex())
    t.add_row("mempool", f"{s.mempool_txs} txs, {s.mempool_bytes} bytes")
    t.add_row(
        "validators",
        f"{len(s.validators)} (total power {s.validators.total_power}, "
        f"set {s.validators.hash.hex()[:16]}...)",
    )
    t.add_row("health", "[green]ok[/]" if ok else "[red]not ok[/]")
    console.print(t)
