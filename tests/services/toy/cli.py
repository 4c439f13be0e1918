"""``citychain toy read ADDRESS``: a shell over ``client.toy``."""

from __future__ import annotations

from collections.abc import Mapping

import typer

from citychain.cli._client import make_client
from citychain.cli._output import DEFAULT_NODE, NodeOpt, console, handles_errors

toy_app = typer.Typer(help="Notes (a toy service).", no_args_is_help=True)


@toy_app.command("read")
@handles_errors
def read(address: str, node: NodeOpt = DEFAULT_NODE) -> None:
    """Print ADDRESS's note."""
    with make_client(node) as client:
        console.print(f"note: {client.toy.read(address)}")


def install(app: typer.Typer, groups: Mapping[str, typer.Typer]) -> None:
    app.add_typer(toy_app, name="toy")
