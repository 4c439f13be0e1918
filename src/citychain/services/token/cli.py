"""The token's commands: ``tx transfer``, ``tx mint`` and ``query balance``.

They join the CLI's ``tx`` and ``query`` groups (:func:`install`), beside the generic
``tx send`` and ``query contract`` that reach any contract: a shell over the SDK, as every
command is (``tx`` signs and submits through :func:`citychain.cli.tx.run_call`; the balance is
read with its proof through ``Client.get_state``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated

import typer

from citychain.cli._client import make_client, trust_from
from citychain.cli._output import (
    DEFAULT_NODE,
    HomeOpt,
    JsonOpt,
    NodeOpt,
    PassFileOpt,
    console,
    handles_errors,
    parse_address,
    print_json,
)
from citychain.cli.query import GenesisOpt, VerifyOpt, proven_json, verification_line
from citychain.cli.tx import GasOpt, KeyOpt, NoWaitOpt, TimeoutOpt, run_call
from citychain.sdk import DEFAULT_COMMIT_TIMEOUT, DEFAULT_GAS_LIMIT
from citychain.services.token.shapes import NAME, balance_key

ToOpt = Annotated[str, typer.Option("--to", help="Recipient address (40 hex digits).")]
AmountOpt = Annotated[int, typer.Option("--amount", min=1, help="Amount in token units.")]


def install(app: typer.Typer, groups: Mapping[str, typer.Typer]) -> None:
    """Add the token's commands to the CLI's ``tx`` and ``query`` groups."""
    groups["tx"].command("transfer")(transfer)
    groups["tx"].command("mint")(mint)
    groups["query"].command("balance")(balance)


def _amount_command(method: str, doc: str) -> Callable[..., None]:
    """The command for ``token.<method>(to, amount)``: ``tx transfer`` and ``tx mint`` differ
    only in the method they call."""

    def command(
        to: ToOpt,
        amount: AmountOpt,
        key: KeyOpt,
        node: NodeOpt = DEFAULT_NODE,
        home: HomeOpt = None,
        passphrase_file: PassFileOpt = None,
        no_wait: NoWaitOpt = False,
        timeout: TimeoutOpt = DEFAULT_COMMIT_TIMEOUT,
        gas_limit: GasOpt = DEFAULT_GAS_LIMIT,
        as_json: JsonOpt = False,
    ) -> None:
        run_call(
            contract=NAME,
            method=method,
            args={"to": parse_address(to), "amount": amount},
            key=key,
            node=node,
            home=home,
            passphrase_file=passphrase_file,
            no_wait=no_wait,
            timeout=timeout,
            gas_limit=gas_limit,
            as_json=as_json,
        )

    command.__doc__ = doc
    command.__name__ = method
    return handles_errors(command)


transfer = _amount_command("transfer", "Send tokens from KEY's account to another address.")
mint = _amount_command("mint", "Create new tokens for an address (KEY must be a token issuer).")


@handles_errors
def balance(
    address: Annotated[str, typer.Argument(help="Account address (40 hex digits).")],
    node: NodeOpt = DEFAULT_NODE,
    verify: VerifyOpt = True,
    genesis: GenesisOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """An account's token balance, proven from state (or asked of the token contract with
    --no-verify)."""
    addr = parse_address(address)
    trust = trust_from(genesis, home)
    with make_client(node, trust) as client:
        proven = client.get_state(balance_key(addr), verify=verify)
    amount = proven.decode() or 0
    if as_json:
        print_json({"address": addr, "balance": amount, **proven_json(proven, trust)})
        return
    console.print(f"balance of {addr.hex()}: [bold]{amount}[/] at height {proven.height}")
    console.print(verification_line(proven, trust))
