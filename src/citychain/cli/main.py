"""The `citychain` command: keys, transactions, queries, governance, status, node lifecycle,
benchmarks.

Every command prints errors as ``error [code]: message`` and exits 1, never a traceback
(``CITYCHAIN_DEBUG=1`` shows one). ``--json`` gives machine-readable output. The node URL
comes from ``--node`` or ``$CITYCHAIN_NODE``; keys and the trusted genesis from ``--home`` or
``$CITYCHAIN_HOME`` (default ``~/.citychain``).
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer
from rich.markup import escape

from citychain import __version__
from citychain.cli import bench, node
from citychain.cli._output import err_console
from citychain.cli.consensus import consensus, evidence
from citychain.cli.gov import gov_app
from citychain.cli.keys import keys_app
from citychain.cli.net import net_app
from citychain.cli.query import query_app
from citychain.cli.status import status
from citychain.cli.tx import tx_app

app = typer.Typer(
    name="citychain",
    help="citychain: a permissioned, BFT-final ledger for city public services.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"citychain {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """citychain: a permissioned, BFT-final ledger for city public services."""


app.add_typer(keys_app, name="keys")
app.add_typer(tx_app, name="tx")
app.add_typer(query_app, name="query")
app.add_typer(net_app, name="net")
app.add_typer(gov_app, name="gov")
app.command("status")(status)
app.command("consensus")(consensus)
app.command("evidence")(evidence)
node.register(app)
bench.register(app)


def main() -> None:
    """Entry point of the ``citychain`` script."""
    try:
        app()
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # a command without its own handler; never show a traceback
        if os.environ.get("CITYCHAIN_DEBUG"):
            raise
        err_console.print(
            f"[bold red]error[/] \\[internal]: unexpected {type(exc).__name__}: "
            f"{escape(str(exc))} (set CITYCHAIN_DEBUG=1 for details)"
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
