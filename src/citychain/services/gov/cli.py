"""`citychain gov ...`: on-chain governance from the command line.

Changes are transactions to the ``gov`` contract, signed here with ``--key`` (and any
``--endorse`` co-signers) and submitted like every other transaction: ``propose``, ``vote``,
``execute``, ``expire``, ``register-member``, ``remove-member``, ``define-role``, ``enroll``.
Reads go through the SDK's ``client.gov`` (:class:`citychain.sdk.Gov`; this module has no HTTP
client of its own): ``proposals``, ``show``, ``history``, ``orgs``, ``members``, ``member``,
``policies``, ``policy``, ``validators``, ``params``, ``config``. ``--json`` prints the same
JSON document as the node's ``/v1/gov/...`` route (built here from the SDK's typed values), or,
for a change, the committed receipt.

Proposal parameters (``gov propose KIND``) come from ``--params-json`` (a JSON object, byte
strings as ``{"hex": "..."}``, or ``@FILE``), then each ``--param NAME=VALUE``, then the
convenience flags of :data:`citychain.services.gov.shapes.FLAGS` (``--org-id``, ``--name``,
``--ca-cert FILE``, ``--admin HEXKEY``, ``--admin-key-file FILE``, ``--role``, ``--public-key``,
``--power``, ``--org``, ``--address``), each refused for a kind it does not apply to; a
parameter set twice is refused.
A VALUE is an integer (``5000``), bytes (``0x0a1b...``), ``true``/``false``/``null``, JSON
(starting with ``[``, ``{`` or ``"``), or else text; a dotted NAME nests
(``--param params.chain.block_max_txs=5000``). The parsing is the SDK's
(:func:`citychain.sdk.build_params`); which flag applies to which kind is declared once, with
each kind's params, in :mod:`citychain.services.gov.shapes`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Column, Table

from citychain.cli._client import make_client
from citychain.cli._keys_access import key_info
from citychain.cli._output import (
    DEFAULT_NODE,
    HomeOpt,
    JsonOpt,
    NodeOpt,
    PassFileOpt,
    bad,
    command_name,
    console,
    handles_errors,
    parse_address,
    parse_hex,
    print_json,
)
from citychain.cli.tx import (
    EndorseOpt,
    KeyOpt,
    NoWaitOpt,
    Sent,
    TimeoutOpt,
    report,
    send_tx,
)
from citychain.errors import CitychainError, NotFound
from citychain.sdk import DEFAULT_COMMIT_TIMEOUT, DEFAULT_TIMEOUT
from citychain.services.gov.sdk import GOV_GAS_LIMIT, Gov, build_params, parse_param_value
from citychain.services.gov.sdk._params import check_flags, read_text
from citychain.services.gov.shapes import (
    FLAGS,
    KIND_NAMES,
    GovValidators,
    HistoryEntry,
    MemberInfo,
    OrgInfo,
    PolicyInfo,
    ProposalInfo,
)
from citychain.types.tx import codec_to_json

gov_app = typer.Typer(
    help="On-chain governance: organisations, members, access policies and proposals.",
    no_args_is_help=True,
)

GasOpt = Annotated[int, typer.Option("--gas-limit", help="Most gas the call may use.")]
IdArg = Annotated[int, typer.Argument(min=1, metavar="ID", help="Proposal number.")]


class Status(StrEnum):
    open = "open"
    executed = "executed"
    expired = "expired"


# -- reading through the SDK ---------------------------------------------------------------------

__all__ = ["FLAGS", "build_params", "check_flags", "gov_app", "parse_param_value"]


@contextmanager
def _gov(node: str) -> Iterator[Gov]:
    """The SDK's governance reads of ``node`` (its errors are citychain.errors exceptions)."""
    with make_client(node, timeout=DEFAULT_TIMEOUT) as client:
        yield client.service(Gov)


def _height(node: str) -> int:
    with make_client(node, timeout=DEFAULT_TIMEOUT) as client:
        return client.status().height


# The JSON documents of ``--json``: the same as the node's /v1/gov routes answer (see
# citychain.api.models.gov_*_json), made from the SDK's typed values.


def _org_doc(o: OrgInfo) -> dict[str, Any]:
    return {
        "id": o.id,
        "name": o.name,
        "ca_cert": o.ca_cert,
        "ca_fp": o.ca_fp.hex(),
        "admins": [a.hex() for a in o.admins],
    }


def _member_doc(m: MemberInfo) -> dict[str, Any]:
    return {
        "address": m.address.hex(),
        "org": m.org,
        "roles": list(m.roles),
        "public_key": m.public_key.hex(),
        "revoked": m.revoked,
        "serial": format(m.serial, "x") if m.serial else None,
        "ca_fp": m.ca_fp.hex() if m.ca_fp else None,
        "not_after": m.not_after or None,
    }


def _proposal_doc(p: ProposalInfo) -> dict[str, Any]:
    return {
        "id": p.id,
        "kind": p.kind,
        "params": codec_to_json(p.params),
        "proposer": p.proposer.hex(),
        "proposer_org": p.proposer_org,
        "created": p.created,
        "created_time": p.created_time,
        "deadline": p.deadline,
        "status": p.status,
        "votes": [
            {"voter": v.voter.hex(), "org": v.org, "approve": v.approve, "height": v.height}
            for v in p.votes
        ],
        "executed_height": p.executed_height or None,
        "result": codec_to_json(p.result),
        "policy": p.policy,
        "approving_orgs": list(p.approving_orgs),
        "passed": p.passed,
        "needs": p.needs,
    }


def _history_doc(entries: list[HistoryEntry], after: int) -> dict[str, Any]:
    return {
        "entries": [
            {
                "seq": e.seq,
                "height": e.height,
                "time": e.time,
                "tx": e.tx.hex(),
                "actor": e.actor.hex(),
                "action": e.action,
                "proposal": e.proposal or None,
                "detail": codec_to_json(e.detail),
            }
            for e in entries
        ],
        "next_after": entries[-1].seq if entries else after,
    }


def _policy_doc(p: PolicyInfo, target: str | None = None) -> dict[str, Any]:
    return {
        "target": target or p.target,
        "rule": p.rule,
        "orgs": list(p.orgs),
        "roles": list(p.roles),
        "description": p.describe,
    }


def _validators_doc(vs: GovValidators) -> dict[str, Any]:
    vals = [
        {"public_key": v.public_key.hex(), "power": v.power, "name": v.name, "org": v.org or None}
        for v in vs.validators
    ]
    return {
        "from_height": vs.from_height,
        "total_power": sum(v.power for v in vs.validators),
        "validators": vals,
    }


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _short(hex_text: str, keep: int = 12) -> str:
    return hex_text if len(hex_text) <= keep + 4 else f"{hex_text[:keep]}…"


def _addr_column(header: str) -> Column:
    """A column of full addresses, kept on one line (people copy them into commands)."""
    return Column(header, no_wrap=True, min_width=40)


def _fmt(value: Any, top: bool = True) -> str:
    """A JSON value from the API, for people: ``{"hex": ...}`` as 0x..., a map as k=v (nested
    maps in braces), a PEM certificate as a placeholder."""
    if isinstance(value, dict):
        if set(value) == {"hex"} and isinstance(value["hex"], str):
            return "0x" + value["hex"]
        inner = ", ".join(f"{k}={_fmt(v, False)}" for k, v in value.items())
        return inner if top else "{" + inner + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v, False) for v in value) + "]"
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, str) and "-----BEGIN" in value:
        return "<PEM certificate>"
    return str(value)


def _read_bytes(path: Path, what: str) -> bytes:
    try:
        return path.expanduser().read_bytes()
    except OSError as exc:
        raise bad(f"{what}: cannot read {path}: {exc}") from None


# -- changes ------------------------------------------------------------------------------------


def _send(
    method: str,
    args: dict[str, Any],
    *,
    key: str,
    node: str,
    home: Path | None,
    passphrase_file: Path | None,
    endorse: list[str] | None,
    no_wait: bool,
    timeout: float,
    gas_limit: int,
) -> Sent:
    return send_tx(
        contract="gov",
        method=method,
        args=args,
        key=key,
        node=node,
        home=home,
        passphrase_file=passphrase_file,
        no_wait=no_wait,
        timeout=timeout,
        gas_limit=gas_limit,
        endorse=endorse,
    )


def _event_attr(sent: Sent, event_type: str, name: str) -> Any:
    if sent.receipt is None:
        return None
    for e in sent.receipt.events:
        if e.contract == "gov" and e.type == event_type:
            return e.attributes.get(name)
    return None


def _standing_line(node: str, pid: int) -> str:
    """Where a proposal stands now, in one line (empty if the node cannot say)."""
    try:
        with _gov(node) as gov:
            p = gov.proposal(pid)
    except CitychainError:
        return ""
    if p.passed and p.status == "open":
        return (
            f"proposal {pid} has passed ({p.needs}): run "
            f"[bold]{escape(command_name())} gov execute {pid}[/] to apply it"
        )
    return f"proposal {pid} is {p.status}: {escape(p.needs)}"


@gov_app.command("propose")
@handles_errors
def propose(
    kind: Annotated[
        str,
        typer.Argument(
            help="add_org, update_org, remove_org, add_validator, remove_validator, "
            "set_validator_power, set_params, revoke, freeze, unfreeze, enable_contract or "
            "set_policy."
        ),
    ],
    key: KeyOpt,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            metavar="NAME=VALUE",
            help="A parameter; repeat for several. VALUE: integer, 0x-hex bytes, true/false/"
            'null, JSON ([...], {...}, "...") or text. A dotted NAME nests.',
        ),
    ] = None,
    params_json: Annotated[
        str | None,
        typer.Option(
            "--params-json",
            metavar="JSON",
            help='All parameters as a JSON object, bytes as {"hex": "..."}; @FILE reads a file.',
        ),
    ] = None,
    org_id: Annotated[
        str | None,
        typer.Option("--org-id", metavar="ID", help="add_org/update_org/remove_org: the id."),
    ] = None,
    name: Annotated[
        str | None,
        typer.Option("--name", help="add_org/update_org/add_validator: the display name."),
    ] = None,
    ca_cert: Annotated[
        Path | None,
        typer.Option("--ca-cert", metavar="FILE", help="add_org/update_org: the CA (PEM file)."),
    ] = None,
    gm_ca_cert: Annotated[
        Path | None,
        typer.Option(
            "--gm-ca-cert",
            metavar="FILE",
            help="add_org/update_org on an sm2-sm3 chain: the SM2 CA (PEM file).",
        ),
    ] = None,
    admin: Annotated[
        list[str] | None,
        typer.Option(
            "--admin", metavar="HEXKEY", help="add_org/update_org: an admin's public key; repeat."
        ),
    ] = None,
    admin_key_file: Annotated[
        list[Path] | None,
        typer.Option(
            "--admin-key-file",
            metavar="FILE",
            help="add_org/update_org: an admin's key file (only its public key is read); repeat.",
        ),
    ] = None,
    role: Annotated[
        list[str] | None,
        typer.Option("--role", metavar="NAME", help="add_org: a custom role to define; repeat."),
    ] = None,
    public_key: Annotated[
        str | None,
        typer.Option(
            "--public-key",
            metavar="HEX",
            help="add_validator, remove_validator, set_validator_power: the validator's key.",
        ),
    ] = None,
    power: Annotated[
        int | None,
        typer.Option("--power", min=1, help="add_validator/set_validator_power: voting power."),
    ] = None,
    org: Annotated[
        str | None,
        typer.Option("--org", help="add_validator: its organisation; revoke: with --param serial."),
    ] = None,
    address: Annotated[
        str | None,
        typer.Option("--address", help="revoke/freeze/unfreeze: the account (40 hex digits)."),
    ] = None,
    deadline: Annotated[
        int | None,
        typer.Option(
            "--deadline",
            min=1,
            metavar="H",
            help="Last height for votes and execution \\[default: now + the voting period].",
        ),
    ] = None,
    node: NodeOpt = DEFAULT_NODE,
    home: HomeOpt = None,
    passphrase_file: PassFileOpt = None,
    endorse: EndorseOpt = None,
    no_wait: NoWaitOpt = False,
    timeout: TimeoutOpt = DEFAULT_COMMIT_TIMEOUT,
    gas_limit: GasOpt = GOV_GAS_LIMIT,
    as_json: JsonOpt = False,
) -> None:
    """Propose a change; KEY's vote counts as yes. Prints the proposal's number.

    Parameters: --params-json, then each --param, then the convenience flags (each names
    the kinds it is for). Examples:

    citychain gov propose add_org --org-id org4 --name "Org 4" --ca-cert org4-ca.pem
    --admin-key-file keys/org4-admin.json --key org1-admin

    citychain gov propose set_params --param params.chain.block_max_txs=5000 --key org1-admin
    """
    if kind not in KIND_NAMES:
        raise bad(f"unknown proposal kind {kind!r} (kinds: {', '.join(KIND_NAMES)})")
    check_flags(
        kind,
        [
            flag
            for flag, v in (
                ("--org-id", org_id),
                ("--name", name),
                ("--ca-cert", ca_cert),
                ("--gm-ca-cert", gm_ca_cert),
                ("--admin", admin),
                ("--admin-key-file", admin_key_file),
                ("--role", role),
                ("--public-key", public_key),
                ("--power", power),
                ("--org", org),
                ("--address", address),
            )
            if v
        ],
    )
    flags: dict[str, Any] = {
        "--org-id": org_id,
        "--name": name,
        "--ca-cert": read_text(ca_cert, "--ca-cert") if ca_cert is not None else None,
        "--gm-ca-cert": read_text(gm_ca_cert, "--gm-ca-cert") if gm_ca_cert is not None else None,
        "--admin": [parse_hex(a, "--admin") for a in admin or []],
        "--admin-key-file": [key_info(f.expanduser()).public_key for f in admin_key_file or []],
        "--role": list(role or []),
        "--public-key": parse_hex(public_key, "--public-key") if public_key else None,
        "--power": power,
        "--org": org,
        "--address": parse_address(address) if address else None,
    }
    args: dict[str, Any] = {
        "kind": kind,
        "params": build_params(kind, params_json, param, flags),
    }
    if deadline is not None:
        args["deadline"] = deadline
    sent = _send(
        "propose",
        args,
        key=key,
        node=node,
        home=home,
        passphrase_file=passphrase_file,
        endorse=endorse,
        no_wait=no_wait,
        timeout=timeout,
        gas_limit=gas_limit,
    )
    pid = sent.receipt.result if sent.receipt is not None and sent.receipt.ok else None
    until = _event_attr(sent, "proposal_created", "deadline")
    report(
        sent,
        as_json,
        extra={"proposal": pid, "deadline": until},
        headline=(
            f"proposal [bold]{pid}[/] ({kind}) is open until height {until}; the other "
            f"organisations vote with [bold]{escape(command_name())} gov vote {pid}[/]"
        ),
    )


@gov_app.command("vote")
@handles_errors
def vote(
    proposal_id: IdArg,
    key: KeyOpt,
    no: Annotated[bool, typer.Option("--no", help="Vote no (the default is yes).")] = False,
    node: NodeOpt = DEFAULT_NODE,
    home: HomeOpt = None,
    passphrase_file: PassFileOpt = None,
    endorse: EndorseOpt = None,
    no_wait: NoWaitOpt = False,
    timeout: TimeoutOpt = DEFAULT_COMMIT_TIMEOUT,
    gas_limit: GasOpt = GOV_GAS_LIMIT,
    as_json: JsonOpt = False,
) -> None:
    """Vote on an open proposal (one vote per member; votes count per organisation)."""
    sent = _send(
        "vote",
        {"id": proposal_id, "approve": not no},
        key=key,
        node=node,
        home=home,
        passphrase_file=passphrase_file,
        endorse=endorse,
        no_wait=no_wait,
        timeout=timeout,
        gas_limit=gas_limit,
    )
    ok = sent.receipt is not None and sent.receipt.ok
    headline = f"voted {'no' if no else 'yes'} on proposal {proposal_id}"
    if ok and not as_json:
        standing = _standing_line(node, proposal_id)
        headline += f"\n{standing}" if standing else ""
    report(sent, as_json, headline=headline)


@gov_app.command("execute")
@handles_errors
def execute(
    proposal_id: IdArg,
    key: KeyOpt,
    node: NodeOpt = DEFAULT_NODE,
    home: HomeOpt = None,
    passphrase_file: PassFileOpt = None,
    endorse: EndorseOpt = None,
    no_wait: NoWaitOpt = False,
    timeout: TimeoutOpt = DEFAULT_COMMIT_TIMEOUT,
    gas_limit: GasOpt = GOV_GAS_LIMIT,
    as_json: JsonOpt = False,
) -> None:
    """Apply a proposal whose votes meet its kind's policy (any member may send this)."""
    sent = _send(
        "execute",
        {"id": proposal_id},
        key=key,
        node=node,
        home=home,
        passphrase_file=passphrase_file,
        endorse=endorse,
        no_wait=no_wait,
        timeout=timeout,
        gas_limit=gas_limit,
    )
    result = sent.receipt.result if sent.receipt is not None else None
    report(
        sent,
        as_json,
        headline=f"proposal [bold]{proposal_id}[/] executed: {escape(_fmt(result))}",
    )


@gov_app.command("expire")
@handles_errors
def expire(
    proposal_id: IdArg,
    key: KeyOpt,
    node: NodeOpt = DEFAULT_NODE,
    home: HomeOpt = None,
    passphrase_file: PassFileOpt = None,
    endorse: EndorseOpt = None,
    no_wait: NoWaitOpt = False,
    timeout: TimeoutOpt = DEFAULT_COMMIT_TIMEOUT,
    gas_limit: GasOpt = GOV_GAS_LIMIT,
    as_json: JsonOpt = False,
) -> None:
    """Record that an open proposal passed its deadline (it changes nothing else)."""
    sent = _send(
        "expire",
        {"id": proposal_id},
        key=key,
        node=node,
        home=home,
        passphrase_file=passphrase_file,
        endorse=endorse,
        no_wait=no_wait,
        timeout=timeout,
        gas_limit=gas_limit,
    )
    report(sent, as_json, headline=f"proposal {proposal_id} is recorded as expired")


@gov_app.command("register-member")
@handles_errors
def register_member(
    org: Annotated[str, typer.Option("--org", help="The organisation (KEY must be its admin).")],
    roles: Annotated[
        str, typer.Option("--roles", metavar="R1,R2", help="Comma-separated roles, e.g. member.")
    ],
    public_key: Annotated[
        str, typer.Option("--public-key", metavar="HEX", help="The new member's public key.")
    ],
    key: KeyOpt,
    node: NodeOpt = DEFAULT_NODE,
    home: HomeOpt = None,
    passphrase_file: PassFileOpt = None,
    endorse: EndorseOpt = None,
    no_wait: NoWaitOpt = False,
    timeout: TimeoutOpt = DEFAULT_COMMIT_TIMEOUT,
    gas_limit: GasOpt = GOV_GAS_LIMIT,
    as_json: JsonOpt = False,
) -> None:
    """Register a member's key in your organisation (key identity mode). Prints its address."""
    role_list = [r.strip() for r in roles.split(",") if r.strip()]
    if not role_list:
        raise bad("--roles must name at least one role, e.g. --roles member")
    sent = _send(
        "register_member",
        {"public_key": parse_hex(public_key, "--public-key"), "org": org, "roles": role_list},
        key=key,
        node=node,
        home=home,
        passphrase_file=passphrase_file,
        endorse=endorse,
        no_wait=no_wait,
        timeout=timeout,
        gas_limit=gas_limit,
    )
    address = sent.receipt.result if sent.receipt is not None else None
    shown = address.hex() if isinstance(address, bytes) else "?"
    report(
        sent,
        as_json,
        extra={"address": address},
        headline=f"registered [bold]{shown}[/] in {escape(org)} as {', '.join(role_list)}",
    )


@gov_app.command("remove-member")
@handles_errors
def remove_member(
    address: Annotated[str, typer.Argument(help="The member's address (40 hex digits).")],
    key: KeyOpt,
    node: NodeOpt = DEFAULT_NODE,
    home: HomeOpt = None,
    passphrase_file: PassFileOpt = None,
    endorse: EndorseOpt = None,
    no_wait: NoWaitOpt = False,
    timeout: TimeoutOpt = DEFAULT_COMMIT_TIMEOUT,
    gas_limit: GasOpt = GOV_GAS_LIMIT,
    as_json: JsonOpt = False,
) -> None:
    """Remove a member of your organisation (KEY must be its admin)."""
    addr = parse_address(address)
    sent = _send(
        "remove_member",
        {"address": addr},
        key=key,
        node=node,
        home=home,
        passphrase_file=passphrase_file,
        endorse=endorse,
        no_wait=no_wait,
        timeout=timeout,
        gas_limit=gas_limit,
    )
    report(sent, as_json, headline=f"removed member {addr.hex()}")


@gov_app.command("define-role")
@handles_errors
def define_role(
    org: Annotated[str, typer.Argument(help="The organisation (KEY must be its admin).")],
    role: Annotated[str, typer.Argument(help="The new role's name.")],
    key: KeyOpt,
    node: NodeOpt = DEFAULT_NODE,
    home: HomeOpt = None,
    passphrase_file: PassFileOpt = None,
    endorse: EndorseOpt = None,
    no_wait: NoWaitOpt = False,
    timeout: TimeoutOpt = DEFAULT_COMMIT_TIMEOUT,
    gas_limit: GasOpt = GOV_GAS_LIMIT,
    as_json: JsonOpt = False,
) -> None:
    """Define a custom role of your organisation (beyond admin, auditor, member, validator)."""
    sent = _send(
        "define_role",
        {"org": org, "role": role},
        key=key,
        node=node,
        home=home,
        passphrase_file=passphrase_file,
        endorse=endorse,
        no_wait=no_wait,
        timeout=timeout,
        gas_limit=gas_limit,
    )
    report(sent, as_json, headline=f"organisation {escape(org)} has role {escape(role)}")


@gov_app.command("enroll")
@handles_errors
def enroll(
    cert: Annotated[
        Path,
        typer.Option(
            "--cert", metavar="FILE", help="Your certificate (PEM or DER), issued for KEY."
        ),
    ],
    key: KeyOpt,
    node: NodeOpt = DEFAULT_NODE,
    home: HomeOpt = None,
    passphrase_file: PassFileOpt = None,
    no_wait: NoWaitOpt = False,
    timeout: TimeoutOpt = DEFAULT_COMMIT_TIMEOUT,
    gas_limit: GasOpt = GOV_GAS_LIMIT,
    as_json: JsonOpt = False,
) -> None:
    """Become a member with a certificate your organisation's CA issued for KEY
    (certificate identity mode; the roles are the certificate's OU values)."""
    sent = _send(
        "enroll",
        {"cert": _read_bytes(cert, "--cert")},
        key=key,
        node=node,
        home=home,
        passphrase_file=passphrase_file,
        endorse=None,
        no_wait=no_wait,
        timeout=timeout,
        gas_limit=gas_limit,
    )
    address = sent.receipt.result if sent.receipt is not None else None
    shown = address.hex() if isinstance(address, bytes) else "?"
    report(sent, as_json, extra={"address": address}, headline=f"enrolled as [bold]{shown}[/]")


# -- reads --------------------------------------------------------------------------------------


@gov_app.command("proposals")
@handles_errors
def proposals(
    status: Annotated[
        Status | None, typer.Option("--status", help="Only proposals in this state.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=200, help="At most this many.")] = 50,
    node: NodeOpt = DEFAULT_NODE,
    as_json: JsonOpt = False,
) -> None:
    """Proposals, newest first."""
    with _gov(node) as gov:
        found = gov.proposals(status.value if status else None, limit)
    doc = {"proposals": [_proposal_doc(p) for p in found]}
    if as_json:
        print_json(doc)
        return
    if not doc["proposals"]:
        console.print("no proposals" + (f" {status.value}" if status else ""))
        return
    t = Table("id", "kind", "status", "proposer", "deadline", "approved by", "needs / result")
    for p in doc["proposals"]:
        outcome = _fmt(p["result"]) if p["status"] == "executed" else p["needs"]
        t.add_row(
            str(p["id"]),
            p["kind"],
            _status_markup(p["status"], p["passed"]),
            p["proposer_org"],
            str(p["deadline"]),
            ", ".join(p["approving_orgs"]) or "-",
            escape(outcome),
        )
    console.print(t)


def _status_markup(status: str, passed: bool) -> str:
    if status == "open":
        return "[green]open, passed[/]" if passed else "open"
    return "[bold]executed[/]" if status == "executed" else "[dim]expired[/]"


@gov_app.command("show")
@handles_errors
def show(
    proposal_id: IdArg,
    node: NodeOpt = DEFAULT_NODE,
    as_json: JsonOpt = False,
) -> None:
    """One proposal: parameters, votes, approving organisations, what it still needs."""
    with _gov(node) as gov:
        p = _proposal_doc(gov.proposal(proposal_id))
    if as_json:
        print_json(p)
        return
    height = _height(node)
    status = p["status"]
    t = Table(box=None, show_header=False, pad_edge=False)
    t.add_row("proposal", f"[bold]{p['id']}[/]  {p['kind']}  ({_status_markup(status, False)})")
    t.add_row(
        "proposed",
        f"by {p['proposer']} ({p['proposer_org']}) at height {p['created']}, "
        f"{_when(p['created_time'])} UTC",
    )
    if status == "open":
        left = p["deadline"] - height
        t.add_row(
            "deadline",
            f"height {p['deadline']} (the chain is at height {height}: {left} blocks left "
            "to vote and execute)",
        )
    else:
        t.add_row("deadline", f"height {p['deadline']}")
    t.add_row("policy", f"gov:{p['kind']}: {escape(p['policy'])}")
    for name, value in p["params"].items() if isinstance(p["params"], dict) else ():
        t.add_row(f"  {name}", escape(_fmt(value, False)))
    console.print(t)
    if p["votes"]:
        votes = Table(_addr_column("voter"), "org", "vote", "height", box=None, pad_edge=False)
        for v in p["votes"]:
            mark = "[green]yes[/]" if v["approve"] else "[red]no[/]"
            votes.add_row(v["voter"], v["org"], mark, str(v["height"]))
        console.print(votes)
    console.print(f"approved by  {', '.join(p['approving_orgs']) or 'none'}")
    if status == "executed":
        console.print(
            f"[bold]executed[/] at height {p['executed_height']}: {escape(_fmt(p['result']))}"
        )
    elif status == "expired":
        console.print(f"[dim]expired[/]: the deadline (height {p['deadline']}) has passed")
    elif p["passed"]:
        console.print(
            f"[green]passed[/] ({escape(p['needs'])}): run "
            f"[bold]{escape(command_name())} gov execute {p['id']}[/] to apply it"
        )
    else:
        console.print(f"still open: {escape(p['needs'])}")


@gov_app.command("history")
@handles_errors
def history(
    proposal: Annotated[
        int | None, typer.Option("--proposal", min=1, metavar="ID", help="Only this proposal.")
    ] = None,
    after: Annotated[
        int, typer.Option("--after", min=0, metavar="N", help="Entries after sequence N.")
    ] = 0,
    limit: Annotated[
        int, typer.Option("--limit", min=1, max=200, metavar="N", help="At most N entries.")
    ] = 100,
    node: NodeOpt = DEFAULT_NODE,
    as_json: JsonOpt = False,
) -> None:
    """The governance history, oldest first: who did what, when, and what changed."""
    with _gov(node) as gov:
        doc = _history_doc(gov.history(after, limit, proposal), after)
    if as_json:
        print_json(doc)
        return
    entries = doc["entries"]
    if not entries:
        console.print("no governance history" + (" after that" if after else ""))
        return
    t = Table("seq", "height", "time (UTC)", "actor", "action", "proposal", "what changed")
    for e in entries:
        t.add_row(
            str(e["seq"]),
            str(e["height"]),
            _when(e["time"]),
            _short(e["actor"]),
            e["action"],
            str(e["proposal"] or "-"),
            escape(_fmt(e["detail"])),
        )
    console.print(t)
    if len(entries) == limit:
        console.print(f"more may follow: --after {doc['next_after']}")


@gov_app.command("config")
@handles_errors
def config(node: NodeOpt = DEFAULT_NODE, as_json: JsonOpt = False) -> None:
    """The chain's identity mode and default voting period."""
    with _gov(node) as gov:
        cfg = gov.config()
    doc = {"mode": cfg.get("mode", "open"), "voting_period": cfg.get("voting_period")}
    if as_json:
        print_json(doc)
        return
    console.print(f"identity mode  [bold]{doc['mode']}[/]")
    console.print(f"voting period  {doc['voting_period']} blocks")


@gov_app.command("orgs")
@handles_errors
def orgs(node: NodeOpt = DEFAULT_NODE, as_json: JsonOpt = False) -> None:
    """The member organisations."""
    with _gov(node) as gov:
        doc = {"orgs": [_org_doc(o) for o in gov.orgs()]}
    if as_json:
        print_json(doc)
        return
    t = Table("id", "name", "admins", "CA fingerprint (sha256)")
    for o in doc["orgs"]:
        t.add_row(
            o["id"],
            escape(o["name"]),
            "\n".join(_short(a, 16) for a in o["admins"]),
            _short(o["ca_fp"], 16),
        )
    console.print(t)


def _member_rows(t: Table, m: dict[str, Any]) -> None:
    t.add_row("address", f"[bold]{m['address']}[/]")
    t.add_row("organisation", m["org"])
    t.add_row("roles", ", ".join(m["roles"]))
    t.add_row("public key", m["public_key"])
    if m["serial"] is not None:
        t.add_row("certificate", f"serial {m['serial']}, CA {_short(m['ca_fp'] or '', 16)}")
        t.add_row("expires", f"{_when(m['not_after'])} UTC" if m["not_after"] else "-")


@gov_app.command("members")
@handles_errors
def members(
    org: Annotated[str, typer.Argument(help="Organisation id.")],
    node: NodeOpt = DEFAULT_NODE,
    as_json: JsonOpt = False,
) -> None:
    """An organisation's registered members."""
    with _gov(node) as gov:
        gov.org(org)  # NotFound for an organisation there is not
        doc: dict[str, Any] = {"org": org, "members": [_member_doc(m) for m in gov.members(org)]}
    if as_json:
        print_json(doc)
        return
    t = Table(_addr_column("address"), "roles", "public key", "note")
    for m in doc["members"]:
        note = "[red]revoked[/]" if m["revoked"] else ""
        if m["serial"] is not None:
            note = (note + " " if note else "") + f"cert {m['serial']}"
        t.add_row(m["address"], ", ".join(m["roles"]), _short(m["public_key"], 16), note)
    console.print(f"members of [bold]{escape(doc['org'])}[/]")
    console.print(t)


@gov_app.command("member")
@handles_errors
def member(
    address: Annotated[str, typer.Argument(help="Account address (40 hex digits).")],
    node: NodeOpt = DEFAULT_NODE,
    as_json: JsonOpt = False,
) -> None:
    """One member: organisation, roles, credential and whether it may act now."""
    addr = parse_address(address)
    with _gov(node) as gov:
        found = gov.member(addr)
    if found is None:
        raise NotFound(f"account {addr.hex()} is not a member of any organisation")
    doc = {
        **_member_doc(found),
        "in_good_standing": found.standing == "ok",
        "standing": found.standing,
    }
    if as_json:
        print_json(doc)
        return
    t = Table(box=None, show_header=False, pad_edge=False)
    _member_rows(t, doc)
    standing = "[green]ok[/]" if doc["in_good_standing"] else f"[red]{escape(doc['standing'])}[/]"
    t.add_row("standing", standing)
    console.print(t)


@gov_app.command("policies")
@handles_errors
def policies(node: NodeOpt = DEFAULT_NODE, as_json: JsonOpt = False) -> None:
    """The configured access policies (methods and proposal kinds)."""
    with _gov(node) as gov:
        doc: dict[str, Any] = {"policies": [_policy_doc(p) for p in gov.policies()]}
    if as_json:
        print_json(doc)
        return
    t = Table("target", "rule", "organisations", "roles")
    for p in doc["policies"]:
        t.add_row(
            p["target"], p["rule"], ", ".join(p["orgs"]) or "all", ", ".join(p["roles"]) or "any"
        )
    console.print(t)
    console.print(
        "[dim]without a policy a method is open to any member, and a proposal kind needs a "
        "MAJORITY of the organisations' admins[/]"
    )


@gov_app.command("policy")
@handles_errors
def policy(
    target: Annotated[
        str, typer.Argument(help="contract.method (e.g. token.mint) or gov:<kind> (gov:add_org).")
    ],
    node: NodeOpt = DEFAULT_NODE,
    as_json: JsonOpt = False,
) -> None:
    """The policy in force for a method or a proposal kind."""
    with _gov(node) as gov:
        in_force, source = gov.policy(target), gov.policy_source(target)
    doc = {**_policy_doc(in_force, target), "source": source}
    if as_json:
        print_json(doc)
        return
    source = f"set as {doc['source']}" if doc["source"] else "the built-in default"
    console.print(f"[bold]{escape(doc['target'])}[/]: {escape(doc['description'])}  ({source})")


@gov_app.command("validators")
@handles_errors
def validators(node: NodeOpt = DEFAULT_NODE, as_json: JsonOpt = False) -> None:
    """The validator set governance last decided, with each validator's organisation."""
    with _gov(node) as gov:
        doc = _validators_doc(gov.validators())
    if as_json:
        print_json(doc)
        return
    console.print(
        f"validator set from height {doc['from_height']}, total power {doc['total_power']}"
    )
    t = Table("name", "org", "power", "public key")
    for v in doc["validators"]:
        t.add_row(escape(v["name"]), v["org"] or "-", str(v["power"]), v["public_key"])
    console.print(t)


@gov_app.command("params")
@handles_errors
def params(node: NodeOpt = DEFAULT_NODE, as_json: JsonOpt = False) -> None:
    """Chain parameters and the gas schedule (changed by set_params proposals)."""
    with _gov(node) as gov:
        p = gov.params()
    doc = {"chain": dict(p["chain"]), "gas": dict(p["gas"])}
    if as_json:
        print_json(doc)
        return
    t = Table("parameter", "value")
    for section in ("chain", "gas"):
        for name, value in sorted(doc[section].items()):
            t.add_row(f"{section}.{name}", str(value))
    console.print(t)


def install(app: typer.Typer, groups: Mapping[str, typer.Typer]) -> None:
    """Add ``citychain gov ...`` to the CLI (see :mod:`citychain.registry`)."""
    app.add_typer(gov_app, name="gov")
