"""`citychain net up | status | down`: a local network of several validators on this machine.

Theory of operation
-------------------
``net up`` generates a network in ``--dir`` (default ``.citychain-net``; see
:mod:`citychain.node.testnet` for what is in it) unless the directory already holds one, then
starts one ``citychain start --home <dir>/node<i>`` process per validator that is not already
running, records their pids in ``<dir>/pids.json`` at once (so ``net down`` can stop them even
if ``up`` fails half-way) and waits until every node it started answers ``GET /health``. A
node already running is left alone (not restarted: it keeps its pid, its state and what it is
doing) and shown as ``already running``; so a second ``net up`` starts what ``net down``, a
crash or ``add-org`` left stopped, and says which it started. It exits 0 only if every node
it started came up; otherwise it names each node that did not, why (exited with code N, or
no answer within ``--timeout``) and the end of its log, and leaves the others running for
inspection. Nodes run in their own session: closing the terminal does not stop them. The
commands it suggests are printed as they can be run from the same directory
(:func:`~citychain.cli._output.command_name`).

``net status`` asks every node's API, in parallel and with a short timeout, for its height and
latest block (``/v1/status``), consensus round, step and what it waits for
(``/v1/consensus``), peers connected of known (``/v1/net/peers``) and the signatures in the
commit of its latest block (``/v1/blocks/latest``); an endpoint the node does not have (404)
shows as ``n/a``. A node whose API does not answer is shown as ``down`` with the reason. Below
the table it says which validators the nodes see as offline or lagging (and by whom), and who
was merely late for a node's last commit. At narrow widths the least important columns are
left out (and said so), never a node name or a height cut. It
exits 0 whenever the network directory can be read, whatever the nodes' state (``--json``
gives each node's ``"up"`` for scripts), and 1 when there is no network in the directory.

``net down`` sends SIGTERM to every recorded node process, waits up to ``--timeout`` seconds,
then SIGKILLs what is left and deletes ``pids.json``; ``--clean`` also deletes the directory
(only if it holds a network). With nothing running it says so and exits 0.
"""

from __future__ import annotations

import json
import shlex
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.markup import escape

from citychain.cli._output import (
    Col,
    command_name,
    console,
    err_console,
    fitted_table,
    handles_errors,
)
from citychain.errors import ConfigError, Unavailable
from citychain.sdk import ProbeFailure, probe_node

if TYPE_CHECKING:
    from citychain.node.processes import ProcessRef
    from citychain.node.testnet import NetworkLayout

net_app = typer.Typer(
    help="A local network of several validators on this machine (development and tests).",
    no_args_is_help=True,
)

DEFAULT_DIR = Path(".citychain-net")
#: Defaults for a new network (options left out keep an existing network as it is).
DEFAULT_VALIDATORS = 4
DEFAULT_ORGS = 2
DEFAULT_BASE_PORT = 27000
DEFAULT_CHAIN_ID = "citychain-local"
#: Per-request timeout of `net status`.
PROBE_TIMEOUT = 2.0

DirOpt = Annotated[
    Path,
    typer.Option(
        "--dir",
        envvar="CITYCHAIN_NET_DIR",
        help="Directory of the local network.",
        show_default=True,
    ),
]


def _root(net_dir: Path) -> Path:
    return net_dir.expanduser().resolve()


def _dir_arg(root: Path) -> str:
    """`` --dir <root>`` unless ``root`` is the default directory here."""
    return "" if root == _root(DEFAULT_DIR) else f" --dir {shlex.quote(str(root))}"


# -- add-org ------------------------------------------------------------------------------------
@net_app.command("add-org")
@handles_errors
def add_org(
    org_id: Annotated[str, typer.Argument(help="Id of the organisation that joins.")],
    name: Annotated[str | None, typer.Option(help="Its display name.")] = None,
    net_dir: DirOpt = DEFAULT_DIR,
    signer: Annotated[
        str,
        typer.Option(
            help='Where the new node\'s validator key lives: "file" or "pkcs11" (made inside a '
            "hardware security module; PIN from $CITYCHAIN_PKCS11_PIN; its certificate names "
            "the key, so peers require the module's signature on every connection)."
        ),
    ] = "file",
    pkcs11_module: Annotated[
        str, typer.Option(help="PKCS#11 module (shared library) for --signer pkcs11.")
    ] = "",
    pkcs11_token: Annotated[str, typer.Option(help="Token label for --signer pkcs11.")] = "",
    pkcs11_key: Annotated[
        str, typer.Option(help="Key label for --signer pkcs11 (made if the token lacks it).")
    ] = "citychain-validator",
) -> None:
    """Prepare a new organisation with one node (CA, admin key, node home); governance then
    admits it. Prints the commands that do so."""
    from citychain.cli.node import init_signer
    from citychain.crypto.pkcs11 import Pkcs11Signer
    from citychain.node.testnet import NetworkLayout, prepare_joining_org

    layout = NetworkLayout.load(_root(net_dir))
    validator, keys = init_signer(signer, pkcs11_module, pkcs11_token, pkcs11_key)
    try:
        layout, org, node = prepare_joining_org(
            layout, org_id, name, validator=validator, keys=keys
        )
    finally:
        if isinstance(validator, Pkcs11Signer):
            validator.close()  # log out of the token: the node opens it again at start
    first = layout.orgs[0].id
    console.print(
        f"[green]prepared[/] organisation [bold]{escape(org.id)}[/] with node "
        f"[bold]{node.name}[/] (API {node.api_url}). Its CA is {org.ca_cert_file}, its admin "
        f"key {org.admin_key_file}. Peers refuse the node until the chain admits {org.id}."
    )
    if validator is not None:
        console.print(
            f"its validator key is inside the PKCS#11 token {pkcs11_token!r} ({pkcs11_key!r}) "
            "and its certificate names it: peers require the module's signature on every "
            "connection (start the network with $CITYCHAIN_PKCS11_PIN set)"
        )
    console.print("next steps (each proposal needs the votes its policy asks for):")
    cmd, q = command_name(), shlex.quote
    steps = [
        f"{cmd} net up{_dir_arg(layout.root)}          # starts {node.name} too",
        f"{cmd} gov propose add_org --org-id {q(org.id)} --name {q(org.name)} "
        f"--ca-cert {q(str(org.ca_cert_file))} --admin-key-file {q(str(org.admin_key_file))} "
        + (f"--gm-ca-cert {q(str(org.gm_ca_cert_file))} " if org.gm_ca_cert_file.is_file() else "")
        + f"--key {q(first + '-admin')}",
        f"{cmd} gov vote <id> --key <another org>-admin ; {cmd} gov execute <id> ...",
        f"{cmd} gov propose add_validator --public-key {node.validator_public_key} "
        f"--power 10 --name {q(node.name)} --org {q(org.id)} --key {q(first + '-admin')}",
    ]
    for step in steps:
        console.print(f"  {step}", soft_wrap=True, markup=False)


# -- up -----------------------------------------------------------------------------------------
@net_app.command("up")
@handles_errors
def up(
    validators: Annotated[
        int | None,
        typer.Option(help=f"Validators of a new network. \\[default: {DEFAULT_VALIDATORS}]"),
    ] = None,
    orgs: Annotated[
        int | None,
        typer.Option(
            help=f"Organisations of a new network (validators are shared out round-robin). "
            f"\\[default: {DEFAULT_ORGS}]"
        ),
    ] = None,
    net_dir: DirOpt = DEFAULT_DIR,
    base_port: Annotated[
        int | None,
        typer.Option(
            help="First port of a new network: node i listens for peers on base + 10*i and "
            f"serves its API on base + 10*i + 1. \\[default: {DEFAULT_BASE_PORT}]"
        ),
    ] = None,
    chain_id: Annotated[
        str | None, typer.Option(help=f"Chain id of a new network. \\[default: {DEFAULT_CHAIN_ID}]")
    ] = None,
    fresh: Annotated[
        bool,
        typer.Option(help="Stop and delete the network in --dir first, and generate a new one."),
    ] = False,
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait for every node's API to answer.")
    ] = 60.0,
    identity_mode: Annotated[
        str | None,
        typer.Option(
            help="Identity mode of a new network: 'key' (members' keys registered by their "
            "organisation's admin), 'certificate' (members enrol with a certificate from "
            "their organisation's CA) or 'open' (no registry; development only). "
            "\\[default: key]"
        ),
    ] = None,
    crypto: Annotated[
        str | None,
        typer.Option(
            "--crypto",
            help="Crypto suite of a new network, written in its genesis: 'ed25519' or 'sm2' "
            "(sm2-sm3: SM2 signatures, SM3 for every hash of the chain). \\[default: ed25519]",
        ),
    ] = None,
) -> None:
    """Generate a local network (unless --dir holds one) and start every node in the background."""
    from citychain.cli.node import suite_named
    from citychain.node.processes import (
        busy_ports,
        spawn_node,
        stop_processes,
        wait_until_up,
        write_pids,
    )
    from citychain.node.testnet import NetworkLayout, generate_network

    suite = suite_named(crypto if crypto is not None else "ed25519")  # refused before any work
    root = _root(net_dir)
    if fresh and NetworkLayout.exists(root):
        old = NetworkLayout.load(root)
        _report_stopped(stop_processes(_known_processes(old)), old)
        shutil.rmtree(root)
        console.print(f"deleted the old network in {root}")

    new_options = {
        "--validators": validators,
        "--orgs": orgs,
        "--base-port": base_port,
        "--chain-id": chain_id,
        "--identity-mode": identity_mode,
        "--crypto": crypto,
    }
    if NetworkLayout.exists(root):
        layout = NetworkLayout.load(root)
        given = [name for name, value in new_options.items() if value is not None]
        console.print(
            f"using the network in {root}: chain [bold]{escape(layout.chain_id)}[/], "
            f"{_size(layout)}"
        )
        if given:
            console.print(
                f"[yellow]note:[/] {', '.join(given)} only shape a new network and were not "
                "applied; add --fresh to generate a new one"
            )
    else:
        with console.status(f"generating a network in {root}"):
            layout = generate_network(
                root,
                validators=validators if validators is not None else DEFAULT_VALIDATORS,
                orgs=orgs if orgs is not None else DEFAULT_ORGS,
                base_port=base_port if base_port is not None else DEFAULT_BASE_PORT,
                chain_id=chain_id if chain_id is not None else DEFAULT_CHAIN_ID,
                identity_mode=identity_mode if identity_mode is not None else "key",
                suite=suite,
            )
        console.print(
            f"[green]generated[/] chain [bold]{escape(layout.chain_id)}[/] in {root}: "
            f"{_size(layout)}"
        )

    running = {p.name: p for p in _known_processes(layout) if p.alive()}
    to_start = [n for n in layout.nodes if n.name not in running]
    if running:
        names = [n.name for n in layout.nodes if n.name in running]
        console.print(
            f"already running: {', '.join(names)} (left as they are)"
            if to_start
            else f"already running: {', '.join(names)}; nothing to start"
        )
    busy = busy_ports(to_start)
    if busy:
        raise ConfigError(
            f"ports already in use by another program: {', '.join(busy)}; stop it, or make a "
            "new network on other ports (--fresh --base-port N)"
        )
    started = {n.name: spawn_node(n) for n in to_start}
    write_pids(layout, [*running.values(), *started.values()])
    up_names: list[str] = []
    with console.status(f"starting {len(started)} node(s)") as status:

        def on_up(name: str) -> None:
            up_names.append(name)
            status.update(f"up: {', '.join(up_names)}; waiting for the others")

        failures = wait_until_up(layout, started, timeout=timeout, on_up=on_up)

    failed = {f.name for f in failures}
    procs = {**running, **started}
    rows = []
    for n in layout.nodes:
        state = "[red]did not come up[/]" if n.name in failed else "[green]started[/]"
        if n.name in running:
            state = "already running"
        rows.append(
            [
                escape(n.name),
                escape(n.org),
                n.api_url,
                str(n.p2p_port),
                str(procs[n.name].pid),
                state,
            ]
        )
    cols = [
        Col("node"),
        Col("org", keep=2),
        Col("API URL"),
        Col("p2p port", keep=1),
        Col("pid", keep=3),
        Col("state"),
    ]
    table, _ = fitted_table(
        cols,
        rows,
        width=console.width,
        title=f"local network {escape(layout.chain_id)}",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    console.print(table)
    for f in failures:
        err_console.print(f"[bold red]{f.name} did not come up[/]: {escape(f.reason)}")
        if f.log_tail:
            err_console.print(f"  last lines of {layout.node(f.name).log_file}:")
            for line in f.log_tail.splitlines():
                err_console.print(f"    {escape(line)}", soft_wrap=True)
    dir_arg, cmd = _dir_arg(root), command_name()
    if failures:
        others = (
            f"the others keep running: see `{cmd} net status{dir_arg}`, stop them with "
            f"`{cmd} net down{dir_arg}`"
            if len(failures) < len(layout.nodes)
            else f"see the logs above; start again with `{cmd} net up{dir_arg}`"
        )
        raise Unavailable(
            f"{len(failures)} of {len(layout.nodes)} node(s) did not come up "
            f"({', '.join(f.name for f in failures)}); {others}"
        )
    if started:
        console.print(f"started: {', '.join(n.name for n in layout.nodes if n.name in started)}")
    q = shlex.quote
    console.print("next:")
    console.print(f"  {cmd} net status{dir_arg}", markup=False)
    console.print(
        f"  CITYCHAIN_NODE={layout.nodes[0].api_url} CITYCHAIN_HOME={q(str(root))} "
        f"CITYCHAIN_PASSPHRASE=$(cat {q(str(layout.passphrase_file))}) {cmd} status",
        markup=False,
    )
    console.print(f"  {cmd} net down{dir_arg}", markup=False)


def _size(layout: NetworkLayout) -> str:
    v, o = len(layout.nodes), len(layout.orgs)
    return f"{v} validator{'s' * (v != 1)}, {o} organisation{'s' * (o != 1)}"


def _known_processes(layout: NetworkLayout) -> list[ProcessRef]:
    """Recorded node processes, plus any node of this network found running unrecorded."""
    from citychain.node.processes import find_node_processes, read_pids

    procs = {p.name: p for p in read_pids(layout)}
    for p in find_node_processes(layout):
        if p.name not in procs or not procs[p.name].alive():
            procs[p.name] = p
    return list(procs.values())


def _report_stopped(result: dict[str, str], layout: NetworkLayout) -> None:
    for n in layout.nodes:
        if n.name in result:
            console.print(f"  {n.name:<8} {result[n.name]}")


# -- status -------------------------------------------------------------------------------------
@dataclass(slots=True)
class NodeReport:
    name: str
    org: str
    api_url: str
    pid: int | None
    #: "running", "not running" or "not started" (no pid recorded).
    process: str
    up: bool = False
    #: Why the API is down or unusable, for people.
    reason: str | None = None
    healthy: bool | None = None
    height: int | None = None
    latest_block_hash: str | None = None
    #: ``/v1/consensus`` as the node answered it; ``None`` when it has no such endpoint.
    consensus: dict[str, Any] | None = None
    #: Peers connected, of ``peers_known`` (``/v1/net/peers``); ``None`` when not available.
    peers: int | None = None
    peers_known: int | None = None
    commit_signatures: int | None = None
    #: Each validator as this node sees it (``/v1/consensus`` details): name, state
    #: (``this node``, ``ok``, ``lagging``, ``offline``), height, last_commit, note, ...
    validators: list[dict[str, Any]] | None = None
    #: This node's last commit: height, round, and who signed, was late, nil or absent.
    last_commit: dict[str, Any] | None = None


_CONSENSUS_FIELDS = ("engine", "height", "round", "step", "waiting_for")


def _probe(node_name: str, org: str, api_url: str, proc: ProcessRef | None) -> NodeReport:
    alive = proc.alive() if proc is not None else False
    report = NodeReport(
        name=node_name,
        org=org,
        api_url=api_url,
        pid=proc.pid if proc is not None else None,
        process=("running" if alive else "not running") if proc is not None else "not started",
    )
    seen = probe_node(api_url, timeout=PROBE_TIMEOUT)
    if seen.status is None:
        assert seen.failure is not None
        report.reason = _down_reason(seen.failure, proc is not None, alive)
        return report
    report.up = True
    report.height = seen.status.height
    report.latest_block_hash = seen.status.latest_block_hash.hex()
    report.healthy = seen.healthy
    if seen.consensus is not None:  # the summary; `citychain consensus` shows the details
        raw = seen.consensus
        report.consensus = {k: raw.get(k) for k in _CONSENSUS_FIELDS}
        details = raw.get("details")
        if isinstance(details, dict):
            vals = details.get("validators")
            report.validators = vals if isinstance(vals, list) else None
            lc = details.get("last_commit")
            report.last_commit = lc if isinstance(lc, dict) else None
    if seen.peers is not None:
        report.peers_known = len(seen.peers)
        report.peers = sum(
            1 for p in seen.peers if not isinstance(p, dict) or p.get("connected", True)
        )
    if seen.latest_block is not None:
        report.commit_signatures = len(seen.latest_block.commit.signatures)
    return report


def _down_reason(failure: ProbeFailure, recorded: bool, alive: bool) -> str:
    """Why a node's API is down, for people (``recorded``: a pid of it is known)."""
    if failure.kind == "cannot_connect":
        if recorded and not alive:
            return "its process is not running (connection refused)"
        return "connection refused" if not alive else "API not listening yet"
    if failure.kind == "timeout":
        return f"no answer within {PROBE_TIMEOUT:g} s"
    if failure.kind == "http_status":
        return f"/v1/status answered HTTP {failure.http_status}"
    return f"/v1/status: unexpected answer ({failure.detail})"


def _consensus_cells(c: dict[str, Any] | None) -> tuple[str, str]:
    if c is None:
        return "n/a", "n/a"
    where = f"{c.get('height', '?')}/{c.get('round', '?')} {c.get('step', '?')}"
    waiting = c.get("waiting_for")
    if isinstance(waiting, list):
        waiting = ", ".join(map(str, waiting))
    return where, str(waiting) if waiting not in (None, "") else "-"


@net_app.command("status")
@handles_errors
def status(
    net_dir: DirOpt = DEFAULT_DIR,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Height, latest block, consensus step, peers and commit of every node of the network."""
    from citychain.node.testnet import NetworkLayout

    layout = NetworkLayout.load(_root(net_dir))
    procs = {p.name: p for p in _known_processes(layout)}
    with ThreadPoolExecutor(max_workers=min(16, len(layout.nodes))) as pool:
        reports = list(
            pool.map(lambda n: _probe(n.name, n.org, n.api_url, procs.get(n.name)), layout.nodes)
        )
    total = len(layout.nodes)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "dir": str(layout.root),
                    "chain_id": layout.chain_id,
                    "validators": total,
                    "nodes": [asdict(r) for r in reports],
                },
                indent=2,
            )
        )
        return
    render_status(reports, layout.chain_id, layout.root, console)


#: `net status` columns; at narrow widths the lowest ``keep`` goes first (never a node name or
#: a height). "waiting for" is the widest: when it goes, it becomes a line per node.
_STATUS_COLUMNS = [
    Col("node"),
    Col("org", keep=3),
    Col("pid", keep=2),
    Col("API", keep=7),
    Col("height", justify="right"),
    Col("block", keep=1),
    Col("h/r step", keep=6),
    Col("waiting for", keep=0),
    Col("peers", keep=5, justify="right"),
    Col("commit", keep=4, justify="right"),
]


def render_status(reports: list[NodeReport], chain_id: str, root: Path, out: Console) -> None:
    """The `net status` table and, below it, what the nodes say about the validators."""
    total = len(reports)
    rows: list[list[str]] = []
    waiting_lines: list[str] = []
    notes: list[str] = []
    for r in reports:
        pid = "-" if r.pid is None else str(r.pid)
        if r.process == "not running":
            pid += " [red]dead[/]"
        if not r.up:
            rows.append([escape(r.name), escape(r.org), pid, "[red]down[/]", *["-"] * 6])
            notes.append(f"[red]{escape(r.name)} down[/]: {escape(r.reason or 'no answer')}")
            continue
        where, waiting = _consensus_cells(r.consensus)
        rows.append(
            [
                escape(r.name),
                escape(r.org),
                pid,
                "[green]up[/]" if r.healthy is not False else "[yellow]unhealthy[/]",
                str(r.height),
                (r.latest_block_hash or "")[:8] if r.height else "-",
                escape(where),
                escape(waiting),
                "n/a" if r.peers is None else f"{r.peers}/{r.peers_known}",
                "-" if r.commit_signatures is None else f"{r.commit_signatures}/{total}",
            ]
        )
        if r.consensus is not None:
            waiting_lines.append(f"{escape(r.name)} waiting for: {escape(waiting)}")
    table, left_out = fitted_table(
        _STATUS_COLUMNS,
        rows,
        width=out.width,
        title=f"local network {escape(chain_id)} ({escape(str(root))})",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    out.print(table)
    if "waiting for" in left_out:
        for line in waiting_lines:
            out.print(line)
        left_out.remove("waiting for")
    for line in notes:
        out.print(line)
    for line in validators_lines(reports):
        out.print(line)
    down = sum(1 for r in reports if not r.up)
    if down:
        out.print(f"{down} of {total} node(s) down")
    if left_out:
        out.print(f"[dim](left out at this width: {', '.join(left_out)}; --json has all)[/]")


def validators_lines(reports: list[NodeReport]) -> list[str]:
    """Which validators the nodes that answered see as offline or lagging (and which nodes
    say so), and who was merely late for a node's last commit."""
    seen = [r for r in reports if r.up and r.validators is not None]
    if not seen:
        return []
    order: list[str] = []
    states: dict[tuple[str, str], list[str]] = {}
    heights: dict[str, list[int]] = {}
    for r in seen:
        for v in r.validators or []:
            name = str(v.get("name"))
            if name not in order:
                order.append(name)
            state = str(v.get("state"))
            if state in ("offline", "lagging"):
                states.setdefault((name, state), []).append(r.name)
            if state == "lagging" and isinstance(v.get("height"), int):
                heights.setdefault(name, []).append(v["height"])
    lines = []
    for name in order:
        for state, style in (("offline", "red"), ("lagging", "yellow")):
            by = states.get((name, state))
            if by:
                at = (
                    f" at height {min(heights[name])}"
                    if state == "lagging" and name in heights
                    else ""
                )
                lines.append(
                    f"[{style}]{escape(name)} {state}[/]{at} according to {escape(', '.join(by))}"
                )
    if not lines:
        who = "every node" if len(seen) == len(reports) else escape(", ".join(r.name for r in seen))
        lines.append(f"validators: all {len(order)} online and keeping up, as {who} sees it")
    late: dict[str, list[str]] = {}  # late validator -> the nodes whose last commit it missed
    for r in seen:
        for name in (r.last_commit or {}).get("late") or []:
            late.setdefault(str(name), []).append(r.name)
    if late:
        lines.append(
            "late for the last commit (precommit after the decision; fine): "
            + "; ".join(f"{escape(n)} at {escape(', '.join(at))}" for n, at in late.items())
        )
    return lines


# -- down ---------------------------------------------------------------------------------------
@net_app.command("down")
@handles_errors
def down(
    net_dir: DirOpt = DEFAULT_DIR,
    clean: Annotated[bool, typer.Option(help="Also delete the network directory.")] = False,
    timeout: Annotated[
        float, typer.Option(help="Seconds to wait after SIGTERM before SIGKILL.")
    ] = 10.0,
) -> None:
    """Stop every node of the local network (SIGTERM, then SIGKILL after --timeout)."""
    from citychain.node.processes import clear_pids, stop_processes
    from citychain.node.testnet import NetworkLayout

    root = _root(net_dir)
    if not NetworkLayout.exists(root):
        console.print(f"no network in {root}; nothing to stop")
        return
    layout = NetworkLayout.load(root)
    procs = _known_processes(layout)
    result = stop_processes(procs, grace=timeout)
    if any(v != "not running" for v in result.values()):
        console.print(f"stopping the network in {root}")
        _report_stopped(result, layout)
    else:
        console.print(f"no node of the network in {root} is running")
    clear_pids(layout)
    if clean:
        shutil.rmtree(root)
        console.print(f"deleted {root}")
