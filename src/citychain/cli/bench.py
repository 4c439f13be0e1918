"""`citychain bench ...`: benchmarks an operator runs against their own deployment.

Each command ends with one line ``bench <name>: <value> <unit> (ceiling <value> <unit>,
ratio <r>)``; the ceiling is measured on the same machine in the same run.
"""

from __future__ import annotations

import asyncio

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from citychain.errors import CitychainError

console = Console()
bench_app = typer.Typer(
    help="Benchmarks (each prints its figure beside a machine ceiling).", no_args_is_help=True
)

NodeOpt = Annotated[str, typer.Option("--node", envvar="CITYCHAIN_NODE", help="Node API URL.")]


@bench_app.command("transfers")
def transfers(
    key: Annotated[
        str, typer.Option(help="Name or path of a key allowed to mint tokens (an issuer).")
    ],
    node: NodeOpt = "http://127.0.0.1:26657",
    senders: Annotated[int, typer.Option(help="Distinct sending accounts.")] = 2000,
    duration: Annotated[
        int, typer.Option(help="Seconds of load to prepare (at ~5,000 tx/s).")
    ] = 20,
    batch: Annotated[int, typer.Option(help="Transactions per API request.")] = 1000,
    home: Annotated[
        Path | None, typer.Option(envvar="CITYCHAIN_HOME", help="Home holding keys/.")
    ] = None,
) -> None:
    """Committed token transfers per second through the API (ceiling: Ed25519 verifies/s)."""
    import httpx

    from citychain.bench import result_line
    from citychain.bench.transfers import run_transfers
    from citychain.cli._keys_access import load_signer

    try:
        issuer = load_signer(key, home)
        chain_id = str(httpx.get(f"{node}/v1/status", timeout=10).json()["chain_id"])
        per_sender = max(1, duration * 5000 // senders)
        res = asyncio.run(
            run_transfers(
                node,
                issuer,
                chain_id=chain_id,
                senders=senders,
                per_sender=per_sender,
                batch=batch,
                log=lambda m: console.print(f"[dim]{m}[/]"),
            )
        )
    except CitychainError as exc:
        console.print(f"[bold red]error[/] [{exc.code.value}]: {exc.message}")
        raise typer.Exit(1) from None
    except httpx.HTTPError as exc:
        console.print(f"[bold red]error[/]: cannot reach {node}: {exc}")
        raise typer.Exit(1) from None
    console.print(
        f"committed {res.committed} of {res.submitted} transfers ({res.rejected} refused at "
        f"admission) in {res.seconds:.1f}s over blocks {res.first_height}..{res.last_height}"
    )
    print(result_line("transfers", res.rate, "transfers/s", res.ceiling, "verifications/s"))


@bench_app.command("proofs")
def proofs(
    keys: Annotated[int, typer.Option(help="Keys in state.")] = 1_000_000,
    queries: Annotated[int, typer.Option(help="Proof queries to time.")] = 20_000,
    work_dir: Annotated[
        Path | None, typer.Option(help="Where to build the temporary state.")
    ] = None,
) -> None:
    """State queries with ICS-23 proof: queries/s and p50/p99 latency (local RocksDB state)."""
    from citychain.bench import result_line
    from citychain.state.bench import run_proofs_bench

    res = run_proofs_bench(keys=keys, queries=queries, work_dir=work_dir, log=console.print)
    console.print(f"p50 {res.p50_ms:.3f} ms, p99 {res.p99_ms:.3f} ms over {res.queries} queries")
    print(result_line("proofs", res.per_second, "proofs/s", res.ceiling, res.ceiling_unit))


@bench_app.command("disk")
def disk(
    keys: Annotated[int, typer.Option(help="Keys in state.")] = 1_000_000,
    blocks: Annotated[int, typer.Option(help="Blocks of updates after loading.")] = 100,
    work_dir: Annotated[
        Path | None, typer.Option(help="Where to build the temporary state.")
    ] = None,
) -> None:
    """Bytes on disk per live key after loading and updating, pruning on."""
    from citychain.bench import result_line
    from citychain.state.bench import run_disk_bench

    res = run_disk_bench(keys=keys, blocks=blocks, work_dir=work_dir, log=console.print)
    print(result_line("disk", res.bytes_per_key, "bytes/key", res.ceiling, res.ceiling_unit))


def register(app: typer.Typer) -> None:
    """Add the `bench` command group to the top-level app."""
    app.add_typer(bench_app, name="bench")
