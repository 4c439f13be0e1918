"""The governance contract's records: organisations, members, the validator set, chain
parameters and the history log, read and written through a contract :class:`Context`.

The key layout is :mod:`citychain.execution.access` (shared with the executor's checks).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from citychain import codec
from citychain.crypto.member_certs import check_org_ca
from citychain.errors import ConfigError, ErrorCode, ExecutionFailure, InvalidInput
from citychain.execution import Context
from citychain.execution import access as acc
from citychain.execution.gas import GasSchedule
from citychain.types.genesis import ChainParams
from citychain.types.policy import check_name

HIST = b"hist/"
HIST_NEXT = b"hist_next"
#: ``histp/<proposal 8 bytes>/<seq 8 bytes>``: the history entries of one proposal.
HIST_BY_PROPOSAL = b"histp/"
PROP = b"prop/"
PROP_NEXT = b"prop_next"
#: Most validators a set may hold.
MAX_VALIDATORS = 150
_TRUE = codec.encode(True)


def bad(message: str) -> InvalidInput:
    return InvalidInput(message, ErrorCode.BAD_ARGUMENTS)


def refuse(code: ErrorCode, message: str) -> ExecutionFailure:
    return ExecutionFailure(message, code)


def put(ctx: Context, key: bytes, value: Any) -> None:
    ctx.set(key, codec.encode(value))


def get(ctx: Context, key: bytes, what: str) -> Any:
    return acc.load(ctx.get(key), what)


def reader(ctx: Context) -> acc.Reader:
    return ctx.get


def u64(n: int) -> bytes:
    return n.to_bytes(8, "big")


# -- organisations ------------------------------------------------------------------------------
def ca_fingerprint(pem: str, org_id: str) -> bytes:
    """Check that ``pem`` is a CA certificate of organisation ``org_id``; its sha256."""
    try:
        return check_org_ca(pem.encode(), org_id)
    except InvalidInput as exc:
        raise bad(f"organisation {org_id!r}: {exc.message}") from None


def gm_ca_fingerprint(ctx: Context, pem: str, org_id: str) -> bytes:
    """Check that ``pem`` is the SM2 CA of organisation ``org_id`` on an ``sm2-sm3`` chain
    (an SM2 certificate, a CA, ``O=<org_id>``); its sha256. Its self-signature is not checked
    here: a trust anchor is trusted because governance put it here, not because it signed
    itself."""
    if ctx.suite_name != "sm2-sm3":
        raise InvalidInput(
            f"organisation {org_id!r}: a gm_ca_cert (SM2 CA) belongs to an sm2-sm3 chain, "
            f"this one runs {ctx.suite_name}",
            ErrorCode.WRONG_SUITE,
        )
    from citychain.crypto.sm2_certs import parse_sm2_cert

    try:
        ca = parse_sm2_cert(pem.encode())
    except InvalidInput as exc:
        raise InvalidInput(
            f"organisation {org_id!r}: gm_ca_cert: {exc.message}", exc.code
        ) from None
    if not ca.is_ca:
        raise bad(f"organisation {org_id!r}: gm_ca_cert is not a CA certificate")
    if ca.subject_o != org_id:
        raise bad(f"organisation {org_id!r}: gm_ca_cert is the CA of organisation {ca.subject_o!r}")
    return ca.fingerprint


def org_ids(ctx: Context) -> list[str]:
    return [k[len(acc.ORG) :].decode() for k, _ in ctx.iter_prefix(acc.ORG)]


def require_org(ctx: Context, org_id: str) -> dict[str, Any]:
    org = acc.organisation(reader(ctx), check_name(org_id, "organisation id"))
    if org is None:
        raise refuse(ErrorCode.NOT_FOUND, f"no organisation {org_id!r} on this chain")
    return org


def write_org(
    ctx: Context, org_id: str, name: str, ca_cert: str, admins: list[bytes], gm_ca_cert: str = ""
) -> dict[str, Any]:
    """The organisation's record; on an ``sm2-sm3`` chain it must name its SM2 CA
    (``gm_ca_cert``), which authenticates its nodes and members there."""
    record = {
        "id": org_id,
        "name": name,
        "ca_cert": ca_cert,
        "ca_fp": ca_fingerprint(ca_cert, org_id),
        "admins": sorted(admins),
    }
    if gm_ca_cert:
        record["gm_ca_cert"] = gm_ca_cert
        record["gm_ca_fp"] = gm_ca_fingerprint(ctx, gm_ca_cert, org_id)
    elif ctx.suite_name == "sm2-sm3":
        raise bad(
            f"organisation {org_id!r} needs a gm_ca_cert (its SM2 CA) on an sm2-sm3 chain: "
            "its nodes and members are certified by SM2 certificates there"
        )
    put(ctx, acc.org_key(org_id), record)
    return record


def check_new_role(role: Any) -> str:
    """``role`` if an organisation may define it (a valid name, not a built-in role)."""
    check_name(role, "role")
    if role in acc.BUILTIN_ROLES:
        raise bad(f"{role!r} is a built-in role; every organisation has it")
    return str(role)


def define_role(ctx: Context, org_id: str, role: str) -> None:
    ctx.set(acc.role_key(org_id, check_new_role(role)), _TRUE)


def check_roles(ctx: Context, org_id: str, roles: list[Any]) -> list[str]:
    if not isinstance(roles, list) or not roles:
        raise bad("'roles' must be a non-empty list of role names")
    out = []
    for r in roles:
        check_name(r, "role")
        if r not in acc.BUILTIN_ROLES and ctx.get(acc.role_key(org_id, r)) is None:
            raise bad(
                f"organisation {org_id!r} has no role {r!r} (built-in: "
                f"{', '.join(acc.BUILTIN_ROLES)}; define custom roles with gov.define_role)"
            )
        out.append(r)
    return sorted(set(out))


def register(ctx: Context, public_key: bytes, org_id: str, roles: list[str], **cert: Any) -> bytes:
    """Write the member record of ``public_key`` (:func:`check_register`, then
    :func:`write_member`); its address."""
    address = check_register(ctx, public_key, org_id)
    write_member(ctx, address, public_key, org_id, roles, **cert)
    return address


def check_register(ctx: Context, public_key: Any, org_id: str) -> bytes:
    """The address of ``public_key`` if it may become a member of ``org_id``: a valid key,
    not revoked, not a member of another organisation. Writes nothing."""
    if type(public_key) is not bytes:
        raise bad("a public key is a byte string")
    try:
        ctx.check_public_key(public_key)
    except InvalidInput as exc:
        raise bad(exc.message) from None
    address = ctx.account_address(public_key)
    existing = acc.member(reader(ctx), address)
    if existing is not None and existing.revoked:
        # Revocation is governance's decision: registering or enrolling the key again must
        # not quietly undo it.
        raise refuse(
            ErrorCode.REVOKED,
            f"the key of account {address.hex()} was revoked by governance; it cannot be "
            "registered again",
        )
    if existing is not None and existing.org != org_id:
        raise bad(f"account {address.hex()} is already a member of organisation {existing.org!r}")
    return address


def write_member(
    ctx: Context, address: bytes, public_key: bytes, org_id: str, roles: list[str], **cert: Any
) -> None:
    """Write the member record at ``address`` (checked by :func:`check_register`)."""
    member = acc.Member(
        org_id,
        tuple(roles),
        public_key,
        cert.get("serial", 0),
        cert.get("ca_fp", b""),
        cert.get("not_after", 0),
        False,
    )
    put(ctx, acc.member_key(address), member.to_value())


# -- validators ---------------------------------------------------------------------------------
def validator_set(ctx: Context) -> dict[str, Any]:
    """``{"from": height, "validators": [[public_key, power, name, org], ...]}`` (latest)."""
    raw = get(ctx, acc.VALSET, "validator set")
    if raw is None:
        raise refuse(ErrorCode.INTERNAL, "the governance state has no validator set")
    return raw  # type: ignore[no-any-return]


def schedule_validators(ctx: Context, validators: list[list[Any]]) -> int:
    """Make ``validators`` the set from two heights after this block; that height."""
    if not validators:
        raise bad("the validator set cannot become empty")
    if len(validators) > MAX_VALIDATORS:
        raise bad(f"a validator set holds at most {MAX_VALIDATORS} validators")
    validators = sorted(validators, key=lambda v: bytes(v[0]))
    start = ctx.height + 2
    put(ctx, acc.VALSET, {"from": start, "validators": validators})
    return start


# -- parameters ---------------------------------------------------------------------------------
def params(ctx: Context) -> dict[str, Any]:
    raw = get(ctx, acc.PARAMS, "chain parameters")
    if raw is None:
        return {"chain": asdict(ChainParams()), "gas": GasSchedule().to_dict()}
    return raw  # type: ignore[no-any-return]


def merge_params(current: dict[str, Any], change: Any) -> dict[str, Any]:
    """``current`` with ``change`` ({"chain": {...}, "gas": {...}}) applied; checked."""
    if not isinstance(change, dict) or not change or set(change) - {"chain", "gas"}:
        raise bad("'params' must be a map with 'chain' and/or 'gas' maps of changes")
    chain = dict(current["chain"])
    gas = dict(current["gas"])
    for section, target in (("chain", chain), ("gas", gas)):
        updates = change.get(section, {})
        if not isinstance(updates, dict):
            raise bad(f"params.{section} must be a map")
        target.update(updates)
    if (
        "max_gas_per_tx" in change.get("gas", {})
        and gas["max_gas_per_tx"] != chain["max_gas_per_tx"]
    ):
        # It would be overwritten below: refuse instead of executing a change that is ignored.
        raise bad("params.gas.max_gas_per_tx follows params.chain.max_gas_per_tx; change that one")
    try:
        ChainParams.from_json(chain, "params.chain")
        GasSchedule.from_dict(gas)
    except ConfigError as exc:
        raise bad(exc.message) from None
    if gas["max_gas_per_tx"] != chain["max_gas_per_tx"]:
        gas["max_gas_per_tx"] = chain["max_gas_per_tx"]
    return {"chain": chain, "gas": gas}


# -- history ------------------------------------------------------------------------------------
def record(ctx: Context, action: str, proposal: int = 0, **detail: Any) -> int:
    """Append one entry to the governance history; its sequence number."""
    raw = ctx.get(HIST_NEXT)
    seq = 1 if raw is None else int(codec.decode(raw))
    entry = {
        "seq": seq,
        "height": ctx.height,
        "time": ctx.time,
        "tx": ctx.tx_hash,
        "actor": ctx.origin,
        "action": action,
        "proposal": proposal,
        "detail": detail,
    }
    put(ctx, HIST + u64(seq), entry)
    ctx.set(HIST_NEXT, codec.encode(seq + 1))
    if proposal:
        ctx.set(HIST_BY_PROPOSAL + u64(proposal) + b"/" + u64(seq), _TRUE)
    return seq
