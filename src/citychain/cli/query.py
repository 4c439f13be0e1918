"""`citychain query ...`: read balances, state (with proofs), contracts, transactions, blocks."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from citychain import codec
from citychain.cli._client import Trust, make_client, trust_from
from citychain.cli._keys_access import load_signer
from citychain.cli._output import (
    DEFAULT_NODE,
    HomeOpt,
    JsonOpt,
    NodeOpt,
    PassFileOpt,
    console,
    err_console,
    handles_errors,
    parse_address,
    parse_args_json,
    parse_hex,
    print_json,
    show_value,
)
from citychain.crypto import Signer
from citychain.errors import DecodeError
from citychain.sdk import VerifiedValue
from citychain.types import Event, Transaction, WithheldTx
from citychain.types.answers import event_message_json

query_app = typer.Typer(help="Read chain state, transactions and blocks.", no_args_is_help=True)

GenesisOpt = Annotated[
    Path | None,
    typer.Option(
        "--genesis",
        envvar="CITYCHAIN_GENESIS",
        help="Genesis file whose validator set proofs are checked against "
        "\\[default: <home>/config/genesis.json if present, else the node's own set].",
        show_default=False,
    ),
]
VerifyOpt = Annotated[
    bool,
    typer.Option("--verify/--no-verify", help="Check the ICS-23 proof and the signed header."),
]


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _decoded(value: bytes | None) -> Any:
    if value is None:
        return None
    try:
        return codec.decode(value)
    except DecodeError:
        return None


def verification_line(v: VerifiedValue, trust: Trust) -> str:
    if not v.verified:
        return "[yellow]not verified[/] (--no-verify)"
    return (
        f"[green]proof verified[/] against header {v.height} signed by "
        f"{v.signers}/{v.validators} validators (power {v.signed_power}/{v.total_power}); "
        f"validator set from {escape(trust.source)}"
    )


def proven_json(v: VerifiedValue, trust: Trust) -> dict[str, Any]:
    return {
        "key": v.key,
        "value": v.value,
        "decoded": _decoded(v.value),
        "exists": v.exists,
        "height": v.height,
        "block_hash": v.header.hash,
        "state_root": v.header.state_root,
        "verified": v.verified,
        "signers": v.signers,
        "validators": v.validators,
        "signed_power": v.signed_power,
        "total_power": v.total_power,
        "trusted_validators_from": trust.source if v.verified else None,
    }


@query_app.command("state")
@handles_errors
def state(
    key_hex: Annotated[str, typer.Argument(metavar="KEY_HEX", help="State key in hex.")],
    height: Annotated[
        int | None, typer.Option("--height", min=1, help="Block height (default: latest).")
    ] = None,
    node: NodeOpt = DEFAULT_NODE,
    verify: VerifyOpt = True,
    genesis: GenesisOpt = None,
    home: HomeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A raw state value with its proof checked against a header signed by the validators."""
    key = parse_hex(key_hex, "state key")
    trust = trust_from(genesis, home)
    with make_client(node, trust) as client:
        proven = client.get_state(key, height, verify=verify)
    if as_json:
        print_json(proven_json(proven, trust))
        return
    console.print(f"key    {key.hex()}")
    if proven.value is None:
        console.print(f"value  [bold]absent[/] at height {proven.height}")
    else:
        console.print(f"value  {proven.value.hex()}  ({len(proven.value)} bytes)")
        decoded = _decoded(proven.value)
        if decoded is not None:
            console.print(f"       = {escape(show_value(decoded))}  (canonical CBOR)")
    console.print(verification_line(proven, trust))


@query_app.command("contract")
@handles_errors
def contract(
    contract: Annotated[str, typer.Argument(help="Contract name, e.g. token.")],
    method: Annotated[str, typer.Argument(help="Query method, e.g. balance.")],
    args: Annotated[
        str | None,
        typer.Option("--args", help='Arguments as a JSON object; bytes as {"hex": "..."}.'),
    ] = None,
    node: NodeOpt = DEFAULT_NODE,
    as_json: JsonOpt = False,
) -> None:
    """Call a read-only contract method on the latest state (not proven)."""
    parsed = parse_args_json(args)
    with make_client(node) as client:
        result = client.query(contract, method, **parsed)
    if as_json:
        print_json({"contract": contract, "method": method, "result": result})
    else:
        console.print(escape(show_value(result)))


def _tx_table(tx: Transaction) -> Table:
    t = Table(box=None, show_header=False, pad_edge=False)
    t.add_row("call", f"{tx.contract}.{tx.method}")
    t.add_row("args", escape(show_value(tx.args)))
    t.add_row("sender", tx.sender.hex())
    t.add_row("nonce", str(tx.nonce))
    t.add_row("gas limit", str(tx.gas_limit))
    return t


ReaderOpt = Annotated[
    str | None,
    typer.Option(
        "--key",
        help="Sign the read with this key (a name in <home>/keys or a key file): a private "
        "call is shown whole to its sender or endorser and to members in good standing.",
    ),
]


def _reader(key: str | None, home: Path | None, passphrase_file: Path | None) -> Signer | None:
    return None if key is None else load_signer(key, home, passphrase_file=passphrase_file)


def _event_text(e: Event) -> str:
    """``contract.type k=v, ...`` of an event, escaped for rich."""
    attrs = ", ".join(f"{k}={show_value(v)}" for k, v in e.attributes.items())
    return f"{e.contract}.{e.type} {escape(attrs)}"


def _withheld_line(w: WithheldTx) -> str:
    return f"{w.contract}.{w.method} [dim](withheld: a private call; read it with --key)[/]"


@query_app.command("tx")
@handles_errors
def tx(
    tx_hash: Annotated[str, typer.Argument(metavar="HASH", help="Transaction hash (64 hex).")],
    node: NodeOpt = DEFAULT_NODE,
    as_json: JsonOpt = False,
    key: ReaderOpt = None,
    home: HomeOpt = None,
    passphrase_file: PassFileOpt = None,
) -> None:
    """A transaction: pending, or committed with its receipt (a private call: only its
    contract and method, unless --key signs the read for its sender or a member)."""
    h = parse_hex(tx_hash, "transaction hash", 32)
    reader = _reader(key, home, passphrase_file)
    with make_client(node) as client:
        info = client.tx(h, signer=reader)
    if as_json:
        print_json(info.to_json())
        return
    console.print(f"transaction [bold]{info.tx_hash.hex()}[/]: {info.status}")
    if info.committed:
        console.print(f"  in block {info.height} at index {info.index}")
    tx = info.tx
    if tx is None:
        if info.withheld is None:  # the SDK answers NotFound for an unknown one: never here
            raise DecodeError(f"the node answered no transaction for {h.hex()}")
        console.print(f"  call {_withheld_line(info.withheld)}")
        return
    console.print(_tx_table(tx))
    r = info.receipt
    if r is not None:
        mark = "[green]ok[/]" if r.ok else f"[red]failed[/] \\[{r.code}] {escape(r.message)}"
        console.print(f"receipt {mark}, gas used {r.gas_used}")
        for e in r.events:
            console.print(f"  event {_event_text(e)}")


@query_app.command("block")
@handles_errors
def block(
    height: Annotated[
        int | None, typer.Argument(min=1, help="Block height (default: the latest).")
    ] = None,
    node: NodeOpt = DEFAULT_NODE,
    as_json: JsonOpt = False,
    key: ReaderOpt = None,
    home: HomeOpt = None,
    passphrase_file: PassFileOpt = None,
) -> None:
    """A committed block: header, transactions and the commit that finalised it (private
    calls only by contract and method, unless --key signs the read for a member)."""
    reader = _reader(key, home, passphrase_file)
    with make_client(node) as client:
        info = client.block(height, signer=reader)
    h = info.header
    if as_json:
        print_json(info.to_json())
        return
    t = Table(box=None, show_header=False, pad_edge=False)
    t.add_row("block", f"[bold]{h.height}[/]  {info.hash.hex()}")
    t.add_row("time", _when(h.time))
    t.add_row("previous", h.prev_hash.hex())
    t.add_row("state root", h.state_root.hex())
    t.add_row("proposer", h.proposer.hex())
    t.add_row("signatures", str(len(info.commit.signatures)))
    entries = info.entries()
    t.add_row("transactions", str(len(entries)))
    console.print(t)
    for i, x in enumerate(entries):
        call = _withheld_line(x) if isinstance(x, WithheldTx) else f"{x.contract}.{x.method}"
        console.print(f"  {i:>4}  {x.hash.hex()}  {call}")


@query_app.command("events")
@handles_errors
def events(
    contract: Annotated[
        str | None, typer.Option("--contract", help="Only this contract's events.")
    ] = None,
    event_type: Annotated[
        str | None, typer.Option("--type", help="Only events of this type.")
    ] = None,
    from_height: Annotated[
        int | None,
        typer.Option(
            "--from-height",
            min=1,
            help="Start at this committed block (its events and the later ones, read back, "
            "then the live ones) \\[default: the next block].",
            show_default=False,
        ),
    ] = None,
    count: Annotated[
        int | None,
        typer.Option("--count", min=1, help="Stop after this many events \\[default: follow]."),
    ] = None,
    node: NodeOpt = DEFAULT_NODE,
    as_json: JsonOpt = False,
    key: ReaderOpt = None,
    home: HomeOpt = None,
    passphrase_file: PassFileOpt = None,
) -> None:
    """Committed events as they happen, one a line (--json: one JSON object a line), until
    --count or Ctrl-C. A stream the node ends (this reader fell too far behind) ends with
    the node's error, which names the height to go on from with --from-height. Private
    calls' events only with --key (their sender, endorser, or a member). Stopped with
    Ctrl-C, it says on stderr the height to go on from: the chain's, when no event matched
    for a while."""
    reader = _reader(key, home, passphrase_file)
    seen = 0
    with (
        make_client(node) as client,
        client.subscribe(contract, event_type, from_height=from_height, signer=reader) as stream,
    ):
        try:
            for item in stream:
                if as_json:
                    typer.echo(json.dumps(event_message_json(item), ensure_ascii=False))
                else:
                    console.print(
                        f"block {item.height} tx {item.tx_index} {item.tx_hash.hex()[:16]}… "
                        f"{_event_text(item.event)}",
                        soft_wrap=True,
                    )
                seen += 1
                if count is not None and seen >= count:
                    return
        except KeyboardInterrupt:
            if stream.position is not None:
                err_console.print(
                    f"stopped: every matching event up to block {stream.position} was "
                    f"printed; go on with --from-height {stream.position + 1}"
                )
            raise


@query_app.command("account")
@handles_errors
def account(
    address: Annotated[str, typer.Argument(help="Account address (40 hex digits).")],
    node: NodeOpt = DEFAULT_NODE,
    as_json: JsonOpt = False,
) -> None:
    """An account's committed and next nonce."""
    with make_client(node) as client:
        a = client.account(parse_address(address))
    if as_json:
        print_json({"address": a.address, "nonce": a.nonce, "pending_nonce": a.pending_nonce})
    else:
        console.print(f"{a.address.hex()}: nonce {a.nonce}, next nonce {a.pending_nonce}")
