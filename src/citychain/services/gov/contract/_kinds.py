"""Proposal kinds: what each one checks and what it changes when executed.

Each kind has a ``check`` (run when the proposal is created, so a malformed proposal is refused
at once, and again at execution, because the chain may have changed in between) and an
``apply`` that makes the change, emits its event and returns the detail for the history.

=====================  ========================================================================
kind                   params
=====================  ========================================================================
add_org                id, name, ca_cert (PEM), admins ([public key]), roles ([name], optional),
                       gm_ca_cert (PEM of the SM2 CA; required on an sm2-sm3 chain)
update_org             id, and any of name, ca_cert, admins, gm_ca_cert
remove_org             id (refused while the organisation still runs validators; its members
                       and roles go with it, except revoked keys, which stay on record)
add_validator          public_key, power, name, org      (in force two heights after execution)
remove_validator       public_key                        (in force two heights after execution)
set_validator_power    public_key, power                 (in force two heights after execution)
set_params             params: {"chain": {...}, "gas": {...}}  (in force from the next height)
revoke                 address (a member's key), or org and serial (a certificate)
freeze / unfreeze      address (an account) or contract (a contract's name)
enable_contract        contract, version (a version this release of citychain ships)
set_policy             target ("contract.method", "contract.*" or "gov:<kind>"), policy or None
=====================  ========================================================================
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from citychain import codec
from citychain.errors import ErrorCode
from citychain.execution import Context
from citychain.execution import access as acc
from citychain.execution.keys import ADDRESS_SIZE
from citychain.services.gov.contract._records import (
    bad,
    ca_fingerprint,
    define_role,
    gm_ca_fingerprint,
    merge_params,
    org_ids,
    params,
    put,
    reader,
    refuse,
    register,
    require_org,
    schedule_validators,
    validator_set,
    write_org,
)
from citychain.services.gov.shapes import KIND_NAMES, KIND_PARAMS, Shape
from citychain.types.policy import Policy, check_name

_TRUE = codec.encode(True)
MAX_POWER = 2**40


def _only(p: Any, kind: str, shape: int = 0) -> dict[str, Any]:
    """``p`` if it has the params of ``KIND_PARAMS[kind][shape]`` (the one declaration)."""
    s: Shape = KIND_PARAMS[kind][shape]
    required, optional = s.required, s.optional
    if not isinstance(p, dict):
        raise bad("proposal params must be a map")
    missing = [k for k in required if k not in p]
    if missing:
        raise bad(f"proposal params lack {', '.join(missing)}")
    extra = sorted(set(p) - set(required) - set(optional))
    if extra:
        raise bad(
            f"unknown proposal param(s) {', '.join(extra)} "
            f"(expected: {', '.join(required + optional)})"
        )
    return p


def _text(p: dict[str, Any], key: str, max_len: int = 256) -> str:
    v = p[key]
    if type(v) is not str or not 0 < len(v) <= max_len:
        raise bad(f"param {key!r} must be a text of 1 to {max_len} characters")
    return v


def _key(p: dict[str, Any], key: str) -> bytes:
    v = p[key]
    if type(v) is not bytes or not 0 < len(v) <= 128:
        raise bad(f"param {key!r} must be a public key (byte string)")
    return v


def _power(p: dict[str, Any]) -> int:
    v = p["power"]
    if type(v) is not int or not 0 < v <= MAX_POWER:
        raise bad(f"param 'power' must be an integer in 1..{MAX_POWER}")
    return v


def _admins(ctx: Context, p: dict[str, Any]) -> list[bytes]:
    admins = p["admins"]
    if not isinstance(admins, list) or not admins or not all(type(a) is bytes for a in admins):
        raise bad("param 'admins' must be a non-empty list of public keys")
    for a in admins:
        ctx.check_public_key(a)
    if len(set(admins)) != len(admins):
        raise bad("param 'admins' lists a key twice")
    return list(admins)


# -- organisations ------------------------------------------------------------------------------
def _check_add_org(ctx: Context, p: Any) -> None:
    p = _only(p, "add_org")
    check_name(p["id"], "organisation id")
    _text(p, "name")
    _text(p, "ca_cert", 16_384)
    _admins(ctx, p)
    if acc.organisation(reader(ctx), p["id"]) is not None:
        raise bad(f"organisation {p['id']!r} already exists")
    ca_fingerprint(p["ca_cert"], p["id"])
    if "gm_ca_cert" in p:
        gm_ca_fingerprint(ctx, _text(p, "gm_ca_cert", 16_384), p["id"])
    elif ctx.suite_name == "sm2-sm3":
        raise bad("add_org on an sm2-sm3 chain needs gm_ca_cert, the organisation's SM2 CA")
    for r in p.get("roles", []):
        check_name(r, "role")


def _apply_add_org(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    write_org(ctx, p["id"], p["name"], p["ca_cert"], p["admins"], p.get("gm_ca_cert", ""))
    for r in p.get("roles", []):
        define_role(ctx, p["id"], r)
    for a in p["admins"]:
        register(ctx, a, p["id"], ["admin"])
    ctx.emit("org_added", org=p["id"], name=p["name"])
    return {"org": p["id"], "name": p["name"], "admins": [a.hex() for a in p["admins"]]}


def _check_update_org(ctx: Context, p: Any) -> None:
    p = _only(p, "update_org")
    if len(p) == 1:
        raise bad("update_org needs at least one of name, ca_cert, admins, gm_ca_cert")
    require_org(ctx, p["id"])
    if "name" in p:
        _text(p, "name")
    if "ca_cert" in p:
        ca_fingerprint(_text(p, "ca_cert", 16_384), p["id"])
    if "gm_ca_cert" in p:
        gm_ca_fingerprint(ctx, _text(p, "gm_ca_cert", 16_384), p["id"])
    if "admins" in p:
        _admins(ctx, p)


def _apply_update_org(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    org = require_org(ctx, p["id"])
    admins = p.get("admins", org["admins"])
    write_org(
        ctx,
        p["id"],
        p.get("name", org["name"]),
        p.get("ca_cert", org["ca_cert"]),
        admins,
        p.get("gm_ca_cert", org.get("gm_ca_cert", "")),
    )
    changed = sorted(k for k in p if k != "id")
    if "admins" in p:
        for old in org["admins"]:
            if old not in admins:
                address = ctx.account_address(old)
                m = acc.member(reader(ctx), address)
                if m is None or m.revoked:  # a revoked key's record stays
                    continue
                rest = [r for r in m.roles if r != "admin"]
                if rest:  # it stays a member with its other roles
                    put(ctx, acc.member_key(address), {**m.to_value(), "roles": rest})
                else:
                    ctx.delete(acc.member_key(address))
        for a in admins:
            m = acc.member(reader(ctx), ctx.account_address(a))
            kept = list(m.roles) if m is not None and m.org == p["id"] else []
            register(ctx, a, p["id"], sorted({*kept, "admin"}))
    ctx.emit("org_updated", org=p["id"], changed=",".join(changed))
    return {"org": p["id"], "changed": changed}


def _check_remove_org(ctx: Context, p: Any) -> None:
    p = _only(p, "remove_org")
    require_org(ctx, p["id"])
    running = [v for v in validator_set(ctx)["validators"] if v[3] == p["id"]]
    if running:
        raise bad(
            f"organisation {p['id']!r} still runs {len(running)} validator(s); remove them first"
        )
    if len(org_ids(ctx)) <= 1:
        raise bad("the last organisation cannot be removed")


def _apply_remove_org(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    ctx.delete(acc.org_key(p["id"]))
    # Its members and roles go with it: were the id admitted again, the old keys (its old
    # admins included) must not come back with it. Revoked keys stay on record.
    for k, v in list(ctx.iter_prefix(acc.MEM)):
        m = acc.Member.from_value(codec.decode(v))
        if m.org == p["id"] and not m.revoked:
            ctx.delete(k)
    for k, _ in list(ctx.iter_prefix(acc.ROLE + p["id"].encode() + b"/")):
        ctx.delete(k)
    ctx.emit("org_removed", org=p["id"])
    return {"org": p["id"]}


# -- validators ---------------------------------------------------------------------------------
def _find(vals: list[list[Any]], public_key: bytes) -> int:
    for i, v in enumerate(vals):
        if v[0] == public_key:
            return i
    raise refuse(ErrorCode.NOT_FOUND, f"{public_key.hex()} is not a validator")


def _check_add_validator(ctx: Context, p: Any) -> None:
    p = _only(p, "add_validator")
    ctx.check_public_key(_key(p, "public_key"))
    _power(p)
    check_name(p["name"], "validator name")
    require_org(ctx, p["org"])
    if any(v[0] == p["public_key"] for v in validator_set(ctx)["validators"]):
        raise bad(f"{p['public_key'].hex()} is already a validator")


def _apply_add_validator(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    vals = list(validator_set(ctx)["validators"])
    vals.append([p["public_key"], p["power"], p["name"], p["org"]])
    start = schedule_validators(ctx, vals)
    ctx.emit(
        "validator_added",
        public_key=p["public_key"],
        power=p["power"],
        org=p["org"],
        from_height=start,
    )
    return {"public_key": p["public_key"].hex(), "power": p["power"], "from_height": start}


def _check_remove_validator(ctx: Context, p: Any) -> None:
    p = _only(p, "remove_validator")
    vals = validator_set(ctx)["validators"]
    _find(vals, _key(p, "public_key"))
    if len(vals) == 1:
        raise bad("the last validator cannot be removed")


def _apply_remove_validator(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    vals = list(validator_set(ctx)["validators"])
    del vals[_find(vals, p["public_key"])]
    start = schedule_validators(ctx, vals)
    ctx.emit("validator_removed", public_key=p["public_key"], from_height=start)
    return {"public_key": p["public_key"].hex(), "from_height": start}


def _check_set_power(ctx: Context, p: Any) -> None:
    p = _only(p, "set_validator_power")
    _find(validator_set(ctx)["validators"], _key(p, "public_key"))
    _power(p)


def _apply_set_power(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    vals = [list(v) for v in validator_set(ctx)["validators"]]
    i = _find(vals, p["public_key"])
    old = vals[i][1]
    vals[i][1] = p["power"]
    start = schedule_validators(ctx, vals)
    ctx.emit(
        "validator_power_changed",
        public_key=p["public_key"],
        power=p["power"],
        from_height=start,
    )
    return {
        "public_key": p["public_key"].hex(),
        "from": old,
        "to": p["power"],
        "from_height": start,
    }


# -- parameters ---------------------------------------------------------------------------------
def _check_set_params(ctx: Context, p: Any) -> None:
    p = _only(p, "set_params")
    merge_params(params(ctx), p["params"])


def _apply_set_params(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    current = params(ctx)
    new = merge_params(current, p["params"])
    put(ctx, acc.PARAMS, new)
    changes = {
        f"{section}.{k}": [current[section].get(k), v]
        for section in ("chain", "gas")
        for k, v in sorted(new[section].items())
        if current[section].get(k) != v
    }
    ctx.emit("params_changed", changed=",".join(changes), from_height=ctx.height + 1)
    return {"changes": changes, "from_height": ctx.height + 1}


# -- members ------------------------------------------------------------------------------------
def _check_revoke(ctx: Context, p: Any) -> None:
    if isinstance(p, dict) and "address" in p:
        p = _only(p, "revoke")
        m = acc.member(reader(ctx), _address(p))
        if m is None:
            raise refuse(ErrorCode.NOT_FOUND, f"{p['address'].hex()} is not a member")
        return
    p = _only(p, "revoke", 1)
    require_org(ctx, p["org"])
    if type(p["serial"]) is not int or not 0 < p["serial"] < 2**160:
        raise bad("param 'serial' must be a certificate serial number (positive integer)")


def _apply_revoke(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    if "address" in p:
        m = acc.member(reader(ctx), p["address"])
        assert m is not None  # checked
        put(ctx, acc.member_key(p["address"]), {**m.to_value(), "revoked": True})
        ctx.emit("key_revoked", address=p["address"], org=m.org)
        return {"address": p["address"].hex(), "org": m.org}
    put(ctx, acc.revoked_key(p["org"], p["serial"]), {"height": ctx.height})
    ctx.emit("certificate_revoked", org=p["org"], serial=p["serial"])
    return {"org": p["org"], "serial": format(p["serial"], "x")}


def _address(p: dict[str, Any]) -> bytes:
    v = p["address"]
    if type(v) is not bytes or len(v) != ADDRESS_SIZE:
        raise bad(f"param 'address' must be a {ADDRESS_SIZE}-byte address")
    return v


def _target(ctx: Context, p: Any) -> tuple[bytes, str]:
    # freeze and unfreeze take the same shapes (KIND_PARAMS)
    if isinstance(p, dict) and "contract" in p:
        p = _only(p, "freeze", 1)
        name = _text(p, "contract", 64)
        if name == acc.GOV:
            raise bad("the governance contract cannot be frozen")
        if not ctx.contract_versions(name):
            raise refuse(ErrorCode.UNKNOWN_CONTRACT, f"no system contract named {name!r}")
        return ctx.contract_address(name), f"contract {name}"
    p = _only(p, "freeze")
    return _address(p), f"account {p['address'].hex()}"


def _check_freeze(ctx: Context, p: Any) -> None:
    _target(ctx, p)


def _apply_freeze(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    address, what = _target(ctx, p)
    ctx.set(acc.frozen_key(address), _TRUE)
    ctx.emit("frozen", address=address, what=what)
    return {"address": address.hex(), "what": what}


def _apply_unfreeze(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    address, what = _target(ctx, p)
    if ctx.get(acc.frozen_key(address)) is None:
        raise refuse(ErrorCode.NOT_FOUND, f"{what} is not frozen")
    ctx.delete(acc.frozen_key(address))
    ctx.emit("unfrozen", address=address, what=what)
    return {"address": address.hex(), "what": what}


# -- contracts and policies ---------------------------------------------------------------------
def _check_enable(ctx: Context, p: Any) -> None:
    p = _only(p, "enable_contract")
    name = _text(p, "contract", 64)
    version = p["version"]
    if type(version) is not int or version < 1:
        raise bad("param 'version' must be a positive integer")
    known = ctx.contract_versions(name)
    if not known:
        raise refuse(ErrorCode.UNKNOWN_CONTRACT, f"no system contract named {name!r}")
    if version not in known:
        raise bad(
            f"this release has versions {', '.join(map(str, known))} of contract {name!r}, "
            f"not {version}; upgrade every node before enabling it"
        )


def _apply_enable(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    ctx.set(acc.sysver_key(p["contract"]), codec.encode(p["version"]))
    ctx.emit("contract_enabled", contract=p["contract"], version=p["version"])
    return {"contract": p["contract"], "version": p["version"]}


def _check_policy(ctx: Context, p: Any) -> None:
    p = _only(p, "set_policy")
    target = _text(p, "target", 130)
    if target.startswith("gov:"):
        if target[4:] not in KINDS:
            raise bad(f"no proposal kind {target[4:]!r} (kinds: {', '.join(KINDS)})")
        if p["policy"] is None:
            raise bad("a proposal kind always has a policy; give one")
    else:
        contract, _, method = target.partition(".")
        if not contract or not method:
            raise bad("target must be 'contract.method', 'contract.*' or 'gov:<kind>'")
        if not ctx.contract_versions(contract):
            raise refuse(ErrorCode.UNKNOWN_CONTRACT, f"no system contract named {contract!r}")
        known = ctx.contract_methods(contract)
        if method != "*" and method not in known:
            raise refuse(
                ErrorCode.UNKNOWN_METHOD,
                f"contract {contract!r} has no method {method!r} that transactions call "
                f"(methods: {', '.join(known) or 'none'})",
            )
    if p["policy"] is not None:
        policy = Policy.from_value(p["policy"])
        universe = policy.universe(org_ids(ctx))
        if not universe or policy.required(len(universe)) > len(universe):
            # A proposal kind (or method) nobody can ever pass would lock itself for good.
            raise bad(
                f"policy {policy.describe()} can never be met by the organisations on this "
                f"chain ({', '.join(org_ids(ctx))})"
            )


def policy_storage_key(target: str) -> bytes:
    if target.startswith("gov:"):
        return acc.kind_policy_key(target[4:])
    return acc.POL + target.encode()


def _apply_policy(ctx: Context, p: dict[str, Any]) -> dict[str, Any]:
    key = policy_storage_key(p["target"])
    if p["policy"] is None:
        ctx.delete(key)
        ctx.emit("policy_changed", target=p["target"], policy="default")
        return {"target": p["target"], "policy": None}
    pol = Policy.from_value(p["policy"])
    put(ctx, key, pol.to_value())
    ctx.emit("policy_changed", target=p["target"], policy=pol.describe())
    return {"target": p["target"], "policy": pol.describe()}


@dataclass(frozen=True, slots=True)
class Kind:
    check: Callable[[Context, Any], None]
    apply: Callable[[Context, dict[str, Any]], dict[str, Any]]


KINDS: dict[str, Kind] = {
    "add_org": Kind(_check_add_org, _apply_add_org),
    "update_org": Kind(_check_update_org, _apply_update_org),
    "remove_org": Kind(_check_remove_org, _apply_remove_org),
    "add_validator": Kind(_check_add_validator, _apply_add_validator),
    "remove_validator": Kind(_check_remove_validator, _apply_remove_validator),
    "set_validator_power": Kind(_check_set_power, _apply_set_power),
    "set_params": Kind(_check_set_params, _apply_set_params),
    "revoke": Kind(_check_revoke, _apply_revoke),
    "freeze": Kind(_check_freeze, _apply_freeze),
    "unfreeze": Kind(_check_freeze, _apply_unfreeze),
    "enable_contract": Kind(_check_enable, _apply_enable),
    "set_policy": Kind(_check_policy, _apply_policy),
}

# The kinds here are exactly those declared with their params in citychain.services.gov.shapes.
if tuple(KINDS) != KIND_NAMES:  # pragma: no cover - a programming error caught on import
    raise RuntimeError("KINDS and citychain.services.gov.shapes.KIND_PARAMS differ")

#: The policy of a proposal kind nobody configured: a majority of the organisations' admins.
DEFAULT_KIND_POLICY = Policy("MAJORITY", (), ("admin",))


def kind_policy(ctx: Context, kind: str) -> Policy:
    raw = acc.load(ctx.get(acc.kind_policy_key(kind)), "policy")
    return DEFAULT_KIND_POLICY if raw is None else Policy.from_value(raw)
