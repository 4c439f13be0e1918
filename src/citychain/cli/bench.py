"""`citychain bench ...`: benchmarks an operator runs against their own deployment.

Each command ends with one line ``bench <name>: <value> <unit> (ceiling <value> <unit>,
ratio <r>)``; the ceiling is measured on the same machine in the same run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TimeRemainingColumn

from citychain.cli._output import fail, node_url
from citychain.crypto import Signer
from citychain.errors import CitychainError, ErrorCode
from citychain.sdk import Client

console = Console(emoji=False)
bench_app = typer.Typer(
    help="Benchmarks (each prints its figure beside a machine ceiling).", no_args_is_help=True
)

NodeOpt = Annotated[
    str,
    typer.Option("--node", envvar="CITYCHAIN_NODE", help="Node API URL.", callback=node_url),
]
NodesOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--also",
        help="Further node API URLs; load is spread round-robin over all nodes.",
        callback=lambda urls: [node_url(u) for u in urls or []],
    ),
]


KeyOpt = Annotated[
    str, typer.Option(help="Name or path of a key allowed to mint tokens (an issuer).")
]
HomeOpt = Annotated[Path | None, typer.Option(envvar="CITYCHAIN_HOME", help="Home holding keys/.")]
AdminOpt = Annotated[
    str,
    typer.Option(
        help="Name or path of an organisation admin key that registers the benchmark's "
        "accounts as members ('' on an open chain). Its organisation is asked of the node."
    ),
]
T = TypeVar("T")


def _load_run(
    node: str,
    key: str,
    home: Path | None,
    admin_key: str,
    run: Callable[[Signer, str, tuple[Signer, str] | None], Coroutine[Any, Any, T]],
) -> T:
    """Load the issuer (and admin) key, ask the node its chain id (and the admin's
    organisation), run the benchmark; errors in words."""
    from citychain.cli._keys_access import load_signer

    try:
        issuer = load_signer(key, home)
        with Client(node, timeout=10) as client:
            chain_id = client.status().chain_id
            admin: tuple[Signer, str] | None = None
            if admin_key:
                signer = load_signer(admin_key, home)
                # the gov service's helper, found through the registry (client.gov)
                member = client.gov.member(signer.address)
                if member is None:
                    raise CitychainError(
                        f"the admin key {admin_key} is not a member of any organisation on "
                        "this chain (pass --admin-key '' for an open chain)",
                        ErrorCode.NOT_MEMBER,
                    )
                admin = (signer, str(member.org))
        return asyncio.run(run(issuer, chain_id, admin))
    except CitychainError as exc:
        raise fail(exc) from None


def _log(message: str) -> None:
    console.print(f"[dim]{escape(message)}[/]")


@bench_app.command("transfers")
def transfers(
    key: KeyOpt,
    node: NodeOpt = "http://127.0.0.1:26657",
    senders: Annotated[int, typer.Option(help="Distinct sending accounts.")] = 2000,
    duration: Annotated[
        int, typer.Option(help="Seconds of load to prepare (at ~5,000 tx/s).")
    ] = 20,
    batch: Annotated[int, typer.Option(help="Transactions per API request.")] = 1000,
    in_flight: Annotated[
        int, typer.Option(min=1, help="API requests the client keeps in flight at once.")
    ] = 8,
    home: HomeOpt = None,
    also: NodesOpt = None,
    admin_key: AdminOpt = "org1-admin",
) -> None:
    """Committed token transfers per second through the API (ceiling: the suite's verifies/s)."""
    from citychain.bench import result_line
    from citychain.bench.transfers import run_transfers

    res = _load_run(
        node,
        key,
        home,
        admin_key,
        lambda issuer, chain_id, admin: run_transfers(
            [node, *(also or [])],
            issuer,
            admin=admin,
            chain_id=chain_id,
            senders=senders,
            per_sender=max(1, duration * 5000 // senders),
            batch=batch,
            concurrency=in_flight,
            log=_log,
        ),
    )
    console.print(
        f"committed {res.committed} of {res.submitted} transfers ({res.rejected} refused at "
        f"admission) in {res.seconds:.1f}s over blocks {res.first_height}..{res.last_height}"
    )
    print(result_line("transfers", res.rate, "transfers/s", res.ceiling, "verifications/s"))


@bench_app.command("profile")
def profile(
    key: KeyOpt,
    node: NodeOpt = "http://127.0.0.1:26657",
    senders: Annotated[int, typer.Option(help="Distinct sending accounts.")] = 2000,
    duration: Annotated[
        int, typer.Option(help="Seconds of load to prepare (at ~5,000 tx/s).")
    ] = 10,
    batch: Annotated[int, typer.Option(help="Transactions per API request.")] = 1000,
    in_flight: Annotated[
        int, typer.Option(min=1, help="API requests the client keeps in flight at once.")
    ] = 8,
    home: HomeOpt = None,
    also: NodesOpt = None,
    admin_key: AdminOpt = "org1-admin",
) -> None:
    """Microseconds per committed transfer in each stage of the path (admission, verify,
    mempool, proposal, execution, state root, commit), on each node (--also for a network)."""
    from citychain.bench import profile as prof
    from citychain.bench import result_line
    from citychain.bench.transfers import run_transfers

    urls = [node, *(also or [])]
    before: list[prof.Clock] = []

    async def snapshot() -> None:
        before.extend(prof.read_clock(u) for u in urls)

    res = _load_run(
        node,
        key,
        home,
        admin_key,
        lambda issuer, chain_id, admin: run_transfers(
            urls,
            issuer,
            admin=admin,
            chain_id=chain_id,
            senders=senders,
            per_sender=max(1, duration * 5000 // senders),
            batch=batch,
            concurrency=in_flight,
            log=_log,
            before_load=snapshot,
        ),
    )
    try:
        after = [prof.read_clock(u) for u in urls]
    except CitychainError as exc:
        raise fail(exc) from None
    profiles = [
        prof.profile(u, b, a, res.committed) for u, b, a in zip(urls, before, after, strict=True)
    ]
    print(prof.table(profiles, res.rate))  # plain: a wide table must not wrap
    print(result_line("transfers", res.rate, "transfers/s", res.ceiling, "verifications/s"))


@bench_app.command("latency")
def latency(
    key: KeyOpt,
    rate: Annotated[int, typer.Option(help="Offered transfers per second.")],
    node: NodeOpt = "http://127.0.0.1:26657",
    duration: Annotated[int, typer.Option(help="Seconds of offered load.")] = 30,
    senders: Annotated[int, typer.Option(help="Distinct sending accounts.")] = 500,
    home: HomeOpt = None,
    also: NodesOpt = None,
    admin_key: AdminOpt = "org1-admin",
) -> None:
    """Submit-to-commit latency p50/p99 at a fixed offered rate (ceiling: suite verifies/s)."""
    from citychain.bench import result_line
    from citychain.bench.latency import run_latency

    res = _load_run(
        node,
        key,
        home,
        admin_key,
        lambda issuer, chain_id, admin: run_latency(
            [node, *(also or [])],
            issuer,
            admin=admin,
            chain_id=chain_id,
            rate=rate,
            duration=duration,
            senders=senders,
            log=_log,
        ),
    )
    console.print(
        f"committed {res.committed} of {res.submitted} transfers offered at {res.offered_rate}/s "
        f"({res.committed_rate:,.0f}/s committed); latency p50 {res.p50_s:.2f} s, "
        f"p99 {res.p99_s:.2f} s, max {res.max_s:.2f} s"
    )
    print(
        result_line(
            "latency-rate", res.committed_rate, "transfers/s", res.ceiling, "verifications/s"
        )
    )
    print(f"bench latency-p99: {res.p99_s:.2f} s (p50 {res.p50_s:.2f} s)")


def _progress(bar: Progress) -> Callable[[str, int, int], None]:
    tasks: dict[str, TaskID] = {}

    def update(what: str, done: int, total: int) -> None:
        if what not in tasks:
            tasks[what] = bar.add_task(what, total=total)
        bar.update(tasks[what], completed=done, total=total)

    return update


def _bar() -> Progress:
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
    )


@bench_app.command("proofs")
def proofs(
    keys: Annotated[int, typer.Option(help="Keys in state.")] = 1_000_000,
    queries: Annotated[int, typer.Option(help="Proof queries to time.")] = 4_000,
    work_dir: Annotated[Path | None, typer.Option(help="Where to build the state.")] = None,
) -> None:
    """State queries with ICS-23 proof: queries/s and p50/p99 (ceiling: RocksDB point reads/s)."""
    from citychain.bench import result_line
    from citychain.bench.ceiling import rocksdb_point_reads_per_second
    from citychain.state.bench import run_proofs_bench

    ceiling = rocksdb_point_reads_per_second(work_dir)
    with _bar() as bar:
        res = run_proofs_bench(
            n_keys=keys, queries=queries, directory=work_dir, progress=_progress(bar)
        )
    console.print(
        f"{res.keys_in_state:,} keys: p50 {res.p50_ms:.3f} ms, p99 {res.p99_ms:.3f} ms over "
        f"{res.queries:,} queries; proof size {res.exist_bytes:.0f} B (present), "
        f"{res.nonexist_bytes:.0f} B (absent)"
    )
    print(result_line("proofs", res.queries_per_s, "proofs/s", ceiling, "point-reads/s"))
    print(f"bench proofs-p99: {res.p99_ms:.3f} ms (p50 {res.p50_ms:.3f} ms)")


@bench_app.command("disk")
def disk(
    keys: Annotated[int, typer.Option(help="Keys in state.")] = 1_000_000,
    blocks: Annotated[int, typer.Option(help="Blocks of updates after loading.")] = 100,
    retain: Annotated[int, typer.Option(help="State versions kept (pruning).")] = 10,
    work_dir: Annotated[Path | None, typer.Option(help="Where to build the state.")] = None,
) -> None:
    """Bytes on disk per live key after loading and updating, pruning on
    (ceiling: the logical bytes of each key's latest value, the least any store needs)."""
    from citychain.bench import result_line
    from citychain.state.bench import run_disk_bench

    with _bar() as bar:
        res = run_disk_bench(
            n_keys=keys,
            blocks=blocks,
            retain_versions=retain,
            directory=work_dir,
            progress=_progress(bar),
        )
    payload = res.logical_bytes_per_key.get("state_latest", 0.0)
    console.print(
        "logical bytes per key by column family: "
        + ", ".join(f"{k} {v:.1f}" for k, v in sorted(res.logical_bytes_per_key.items()))
    )
    print(result_line("disk", res.bytes_per_key, "bytes/key", payload, "payload-bytes/key"))


def register(app: typer.Typer) -> None:
    """Add the `bench` command group to the top-level app."""
    app.add_typer(bench_app, name="bench")
