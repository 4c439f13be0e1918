"""`citychain init`, `citychain start`, `citychain node replay`: node lifecycle commands."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from citychain.cli._keys_access import read_passphrase
from citychain.cli._output import fail
from citychain.errors import CitychainError

console = Console(stderr=False)
err_console = Console(stderr=True)

DEFAULT_HOME = Path(os.environ.get("CITYCHAIN_NODE_HOME", ".citychain/node"))

HomeOpt = Annotated[
    Path,
    typer.Option(
        "--home", help="Node home directory (config, keys, data).", envvar="CITYCHAIN_NODE_HOME"
    ),
]


_fail = fail  # errors print as everywhere else: code and message, markup escaped


def init(
    home: HomeOpt = DEFAULT_HOME,
    chain_id: Annotated[
        str, typer.Option(help="Chain id written into genesis.")
    ] = "citychain-demo",
    passphrase_file: Annotated[
        Path | None,
        typer.Option(
            help="File holding the passphrase that encrypts the keys (else one is generated)."
        ),
    ] = None,
    insecure_plaintext_key: Annotated[
        bool, typer.Option(help="DEV ONLY: store keys unencrypted (a warning is logged at start).")
    ] = False,
    port: Annotated[int, typer.Option(help="API port.")] = 26657,
) -> None:
    """Create a node home: validator key, demo accounts (alice, bob), genesis and config."""
    from citychain.node.home import init_home

    try:
        passphrase = read_passphrase(passphrase_file, "") if passphrase_file else None
        result = init_home(
            home,
            chain_id=chain_id,
            passphrase=passphrase,
            plaintext_key=insecure_plaintext_key,
            api_port=port,
        )
    except CitychainError as exc:
        raise _fail(exc) from None
    console.print(f"[green]initialised[/] {home} for chain [bold]{chain_id}[/]")
    console.print(f"  validator  {result.validator.public_key.hex()}")
    for name, s in result.accounts.items():
        console.print(
            f"  account    {name:<6} {s.address.hex()}  (key: {home / 'keys' / name}.json)"
        )
    if result.passphrase_file:
        console.print(f"  passphrase {result.passphrase_file} (mode 0600)")
    if insecure_plaintext_key:
        console.print("[bold yellow]warning:[/] keys are stored in plaintext (dev only)")


def start(
    home: HomeOpt = DEFAULT_HOME,
    demo: Annotated[
        bool,
        typer.Option(
            help="Initialise the home first if it is empty (single validator, demo accounts)."
        ),
    ] = False,
    port: Annotated[int | None, typer.Option(help="Override the API port.")] = None,
    host: Annotated[str | None, typer.Option(help="Override the API listen address.")] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error")] = "info",
) -> None:
    """Start a node and its REST/WebSocket API (stop with Ctrl-C)."""
    from citychain.api.server import run_node
    from citychain.node.home import init_home

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    def create_demo() -> None:
        init_home(home, kdf_level="interactive")
        console.print(f"[green]initialised a demo node[/] in {home}")

    try:
        # The demo home is created only once the home and ports are known to be free.
        run_node(
            home,
            host=host,
            port=port,
            announce=console.print,
            create=create_demo if demo else None,
        )
    except CitychainError as exc:
        raise _fail(exc) from None
    except KeyboardInterrupt:
        pass


node_app = typer.Typer(help="Node maintenance.", no_args_is_help=True)


@node_app.command("replay")
def replay_cmd(home: HomeOpt = DEFAULT_HOME) -> None:
    """Re-execute every block from genesis into a fresh state and check every state root."""
    from citychain.node.replay import replay

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("replaying blocks", total=None)

        def progress(height: int, target: int) -> None:
            bar.update(task, completed=height, total=target)

        try:
            report = replay(home, progress=progress)
        except CitychainError as exc:
            raise _fail(exc) from None
    console.print(
        f"[green]replay ok[/]: {report.height} blocks, {report.transactions} transactions, "
        f"every state root reproduced; final state root {report.state_root.hex()}"
    )


def register(app: typer.Typer) -> None:
    """Add the node lifecycle commands to the top-level app."""
    app.command("init")(init)
    app.command("start")(start)
    app.add_typer(node_app, name="node")
