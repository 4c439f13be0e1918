"""`citychain tx ...`: sign a transaction with a stored key (and co-signers' keys), submit it,
wait for its receipt.

Waiting (:func:`send_tx`, shared by every command that submits: ``tx transfer``, ``tx mint``,
``tx send`` and the ``gov`` changes): once the node accepts the transaction its hash is
printed at once, before the wait for its block (on stdout, so stderr holds nothing but an
error line; not with ``--json``, whose stdout is one document). Ctrl-C during the wait
does not withdraw it: the command says that the transaction was accepted and may still be
committed, prints the exact command that looks it up, and exits with status 130 (128 +
SIGINT), without a traceback. Ctrl-C while the submission is
still in flight says the node may or may not have taken it, with the same command. A timeout
or a lost connection while waiting names the same command too.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from citychain.cli._client import make_client
from citychain.cli._keys_access import load_signer
from citychain.cli._output import (
    DEFAULT_NODE,
    HomeOpt,
    JsonOpt,
    NodeOpt,
    PassFileOpt,
    bad,
    command_name,
    console,
    err_console,
    handles_errors,
    json_output,
    parse_args_json,
    print_json,
    show_value,
)
from citychain.crypto import Signer
from citychain.errors import CitychainError
from citychain.sdk import DEFAULT_COMMIT_TIMEOUT, DEFAULT_GAS_LIMIT, error_from
from citychain.types import Receipt, Transaction
from citychain.types.address import call_args

tx_app = typer.Typer(help="Sign and submit transactions.", no_args_is_help=True)

KeyOpt = Annotated[
    str, typer.Option("--key", help="Name of a key in <home>/keys, or a key file's path.")
]
NoWaitOpt = Annotated[
    bool, typer.Option("--no-wait", help="Return once the node accepts it; do not wait.")
]
TimeoutOpt = Annotated[float, typer.Option("--timeout", help="Seconds to wait for the commit.")]
GasOpt = Annotated[int, typer.Option("--gas-limit", help="Most gas the call may use.")]
EndorseOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--endorse",
        metavar="KEYFILE",
        help="A co-signer's key (name in <home>/keys or a key file); repeat for several. "
        "Policies that need several organisations count the endorsers' organisations too.",
    ),
]


@dataclass(frozen=True, slots=True)
class Sent:
    """A submitted transaction; ``receipt`` is None when the command did not wait."""

    tx_hash: bytes
    receipt: Receipt | None = None
    height: int | None = None
    index: int | None = None


def load_endorsers(
    names: list[str] | None, sender: Signer, home: Path | None, passphrase_file: Path | None
) -> list[Signer]:
    """Unlock each ``--endorse`` key (a name in <home>/keys or a key file)."""
    out: list[Signer] = []
    for name in names or []:
        s = load_signer(name, home, passphrase_file=passphrase_file)
        if s.public_key == sender.public_key:
            raise bad(f"--endorse {name}: the sender's own key cannot endorse its transaction")
        if any(s.public_key == o.public_key for o in out):
            raise bad(f"--endorse {name}: this key is already an endorser")
        out.append(s)
    return out


def send_tx(
    *,
    contract: str,
    method: str,
    args: dict[str, Any],
    key: str,
    node: str,
    home: Path | None,
    passphrase_file: Path | None,
    no_wait: bool,
    timeout: float,
    gas_limit: int,
    endorse: list[str] | None = None,
) -> Sent:
    """Sign a call with KEY (and each ``--endorse`` key), submit it, wait for its receipt."""
    args = call_args(contract, method, args)  # addresses as hex become bytes, before signing
    signer = load_signer(key, home, passphrase_file=passphrase_file)
    endorsers = load_endorsers(endorse, signer, home, passphrase_file)
    with make_client(node) as client:
        chain_id = client.status().chain_id
        tx = Transaction.create(
            signer,
            chain_id=chain_id,
            nonce=client.account(signer.address).pending_nonce,
            contract=contract,
            method=method,
            args=args,
            gas_limit=gas_limit,
            endorsers=endorsers,
        )
        accepted = False
        try:
            tx_hash = client.submit(tx)
            accepted = True
            if no_wait:
                return Sent(tx_hash)
            if not json_output():
                console.print(
                    f"accepted transaction {tx_hash.hex()}; waiting for its block "
                    "(Ctrl-C stops the wait, not the transaction)"
                )
            try:
                with console.status(
                    "waiting for the transaction to be committed...", spinner="dots"
                ):
                    receipt = client.wait_for_commit(tx_hash, timeout, signer=signer)
                # Signed: a private call is shown whole to its sender (a public one either way).
                info = client.tx(tx_hash, signer=signer)
            except CitychainError as exc:  # a timeout, or the node gone while waiting
                raise _while_waiting(exc, tx_hash, node) from None
        except KeyboardInterrupt:
            raise _interrupted(tx.hash, node, accepted=accepted) from None
    return Sent(tx_hash, receipt, info.height, info.index)


def lookup_command(tx_hash: bytes, node: str) -> str:
    """The command, as the user can run it here, that shows ``tx_hash`` on ``node``."""
    node_arg = "" if node == DEFAULT_NODE else f" --node {shlex.quote(node)}"
    return f"{command_name()} query tx {tx_hash.hex()}{node_arg}"


def _while_waiting(exc: CitychainError, tx_hash: bytes, node: str) -> CitychainError:
    """``exc``, raised while waiting for an accepted transaction, naming how to look it up."""
    hint = f"look it up with `{lookup_command(tx_hash, node)}`"
    if tx_hash.hex() in exc.message:
        return type(exc)(f"{exc.message}; {hint}", exc.code)
    return type(exc)(
        f"{exc.message} (while waiting for transaction {tx_hash.hex()}, which the node "
        f"accepted and may still commit: {hint})",
        exc.code,
    )


def _interrupted(tx_hash: bytes, node: str, *, accepted: bool) -> typer.Exit:
    """Say what a Ctrl-C left behind; the exit status of an interrupted command (130)."""
    if accepted:
        what = "was accepted by the node and may still be committed"
    else:
        what = "was being submitted: the node may or may not have accepted it"
    err_console.print(
        f"interrupted: transaction {tx_hash.hex()} {what}; "
        f"look it up with `{escape(lookup_command(tx_hash, node))}`"
    )
    return typer.Exit(130)


def report(
    sent: Sent, as_json: bool, *, extra: dict[str, Any] | None = None, headline: str = ""
) -> None:
    """Print a sent transaction (``extra`` joins the JSON, ``headline`` follows the receipt
    when it succeeded); a committed failure raises its error (exit 1)."""
    receipt = sent.receipt
    if receipt is None:
        if as_json:
            print_json({"hash": sent.tx_hash, "status": "pending"})
        else:
            console.print(f"submitted [bold]{sent.tx_hash.hex()}[/] (pending; not waiting)")
        return
    if as_json:
        print_json(
            {
                "hash": sent.tx_hash,
                "status": "committed",
                "height": sent.height,
                "index": sent.index,
                "receipt": receipt.to_json(),
                **(extra or {}),
            }
        )
    else:
        print_receipt(receipt, sent.height)
        if receipt.ok and headline:
            console.print(headline)
    if not receipt.ok:
        raise error_from(
            receipt.code,
            f"{receipt.message} (transaction {sent.tx_hash.hex()} was committed in block "
            f"{sent.height} but failed, so its changes were rolled back)",
        )


def run_call(*, as_json: bool, **kwargs: Any) -> None:
    """Sign, submit and report one call (the body of ``tx send`` and of the services' own
    transaction commands, e.g. ``tx transfer``)."""
    report(send_tx(**kwargs), as_json)


def print_receipt(receipt: Receipt, height: int | None) -> None:
    mark = "[green]ok[/]" if receipt.ok else f"[red]failed[/] \\[{receipt.code}]"
    console.print(f"transaction [bold]{receipt.tx_hash.hex()}[/]")
    console.print(f"  {mark} in block {height}, gas used {receipt.gas_used}")
    if receipt.result is not None:
        console.print(f"  result {escape(show_value(receipt.result))}")
    if receipt.events:
        table = Table("event", "attributes", box=None, pad_edge=False)
        for e in receipt.events:
            attrs = ", ".join(f"{k}={show_value(v)}" for k, v in e.attributes.items())
            table.add_row(f"{e.contract}.{e.type}", escape(attrs))
        console.print(table)


@tx_app.command("send")
@handles_errors
def send(
    contract: Annotated[str, typer.Argument(help="Contract name, e.g. token.")],
    method: Annotated[str, typer.Argument(help="Method name, e.g. transfer.")],
    key: KeyOpt,
    args: Annotated[
        str | None,
        typer.Option(
            "--args",
            help='Arguments as a JSON object; bytes as {"hex": "..."} (an address of a '
            "system contract's method may also be plain hex).",
        ),
    ] = None,
    node: NodeOpt = DEFAULT_NODE,
    home: HomeOpt = None,
    passphrase_file: PassFileOpt = None,
    no_wait: NoWaitOpt = False,
    timeout: TimeoutOpt = DEFAULT_COMMIT_TIMEOUT,
    gas_limit: GasOpt = DEFAULT_GAS_LIMIT,
    endorse: EndorseOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Call any contract method: citychain tx send token transfer --args '{...}' --key alice

    With --endorse KEYFILE (repeatable) the transaction also carries those keys'
    co-signatures, for access policies that need approval from several organisations."""
    run_call(
        contract=contract,
        method=method,
        args=parse_args_json(args),
        key=key,
        node=node,
        home=home,
        passphrase_file=passphrase_file,
        no_wait=no_wait,
        timeout=timeout,
        gas_limit=gas_limit,
        endorse=endorse,
        as_json=as_json,
    )
