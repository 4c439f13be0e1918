"""The trusted-issuer registry: entries, their history, and the governance guard.

An entry says "DID ``issuer`` may issue credentials of type ``type``" and carries the name a
verifier shows (the issuer's organisation, never a person). Changes are methods of the
identity contract under a governance policy (see :func:`governed`); every change appends a
history entry, so whether an issuer was trusted at some past time can be read back.
"""

from __future__ import annotations

import re
from typing import Any

from citychain import codec
from citychain.errors import ErrorCode, InternalError, InvalidInput
from citychain.execution import Context
from citychain.services.identity.contract._dids import bad, refuse, require
from citychain.services.identity.shapes import (
    ISSUER,
    ISSUER_HISTORY,
    ISSUER_PERIODS,
    METHOD,
    NAME,
    split_did,
)

HISTORY_NEXT = b"tih_next"
#: A credential type: a term (``BusinessLicence``) or an absolute URL, no spaces.
_TYPE_RE = re.compile(r"[!-~]{1,256}")
#: The methods whose policies govern the registry.
GOVERNED = ("trust_issuer", "untrust_issuer")


def entry_key(issuer: str, ctype: str) -> bytes:
    return ISSUER + ctype.encode() + b"\0" + issuer.encode()


def periods_key(issuer: str, ctype: str) -> bytes:
    return ISSUER_PERIODS + ctype.encode() + b"\0" + issuer.encode()


def periods(ctx: Context, issuer: str, ctype: str) -> list[list[int]]:
    """The past periods ``[since, until)`` (ms) in which ``issuer`` was trusted for ``ctype``."""
    raw = ctx.get(periods_key(issuer, ctype))
    return [] if raw is None else list(codec.decode_trusted(raw))


def close_period(ctx: Context, entry: dict[str, Any]) -> None:
    """Keep the period that an untrust ends, so ``is_trusted(..., at=...)`` can answer for it."""
    past = periods(ctx, entry["issuer"], entry["type"])
    past.append([entry["since"], ctx.time])
    ctx.set(periods_key(entry["issuer"], entry["type"]), codec.encode(past))


def trusted_at(ctx: Context, issuer: str, ctype: str, at: int) -> bool:
    entry = get_entry(ctx, issuer, ctype)
    if entry is not None and entry["since"] <= at:
        return True
    return any(since <= at < until for since, until in periods(ctx, issuer, ctype))


def type_prefix(ctype: str) -> bytes:
    return ISSUER + ctype.encode() + b"\0"


def arg_type(args: dict[str, Any], name: str = "type") -> str:
    value = args.get(name)
    if type(value) is not str or not _TYPE_RE.fullmatch(value):
        raise bad(
            f"argument {name!r} must be a credential type: a term such as BusinessLicence or a "
            "URL, 1 to 256 printable ASCII characters without spaces"
        )
    return value


def arg_issuer(ctx: Context, args: dict[str, Any], name: str = "issuer") -> str:
    """A DID of any method; a ``did:citychain`` must be on chain and not deactivated."""
    value = args.get(name)
    try:
        method, _ = split_did(value)  # type: ignore[arg-type]
    except InvalidInput as exc:
        raise bad(f"argument {name!r}: {exc.message}") from None
    if method == METHOD:
        require(ctx, str(value))
    return str(value)


def arg_text(args: dict[str, Any], name: str, limit: int = 256) -> str:
    value = args.get(name)
    if type(value) is not str or not 0 < len(value) <= limit or not value.isprintable():
        raise bad(f"argument {name!r} must be 1 to {limit} printable characters")
    return value


def governed(ctx: Context, method: str) -> None:
    """Refuse (``policy_required``) unless a governance policy other than the default
    decides who may call ``identity.<method>``: the chain is not in ``open`` identity mode,
    and ``identity.<method>`` or ``identity.*`` has a policy, set in genesis or by a
    ``set_policy`` proposal. The executor has already checked the signers against it."""
    mode = ctx.call("gov", "config", {}).get("mode", "open")
    if mode == "open":
        raise refuse(
            ErrorCode.POLICY_REQUIRED,
            "trusted issuers change only under a governance policy, and this chain runs in "
            "'open' identity mode, where no policy is enforced",
        )
    target = f"{NAME}.{method}"
    pol = ctx.call("gov", "policy", {"target": target})
    if str(pol.get("target", "")).endswith("(default)"):
        raise refuse(
            ErrorCode.POLICY_REQUIRED,
            f"trusted issuers change only under a governance policy: set one for {target} "
            f"(or {NAME}.*) in genesis or by a set_policy proposal",
        )


def get_entry(ctx: Context, issuer: str, ctype: str) -> dict[str, Any] | None:
    raw = ctx.get(entry_key(issuer, ctype))
    if raw is None:
        return None
    try:
        value: dict[str, Any] = codec.decode_trusted(raw)
    except Exception:
        raise InternalError("identity state holds a malformed trusted-issuer entry") from None
    return value


def record(ctx: Context, action: str, entry: dict[str, Any], **extra: Any) -> int:
    """Append a history entry; its sequence number (1, 2, ...)."""
    raw = ctx.get(HISTORY_NEXT)
    seq = 1 if raw is None else int(codec.decode(raw))
    ctx.set(HISTORY_NEXT, codec.encode_trusted(seq + 1))
    item = {
        "seq": seq,
        "action": action,
        "issuer": entry["issuer"],
        "type": entry["type"],
        "name": entry["name"],
        "time": ctx.time,
        "height": ctx.height,
        "tx": ctx.tx_hash,
        "by": ctx.origin,
        **extra,
    }
    ctx.set(ISSUER_HISTORY + seq.to_bytes(8, "big"), codec.encode(item))
    return seq


def trust(ctx: Context, issuer: str, ctype: str, name: str) -> dict[str, Any]:
    if get_entry(ctx, issuer, ctype) is not None:
        raise refuse(ErrorCode.DUPLICATE, f"{issuer} is already trusted to issue {ctype}")
    return {
        "issuer": issuer,
        "type": ctype,
        "name": name,
        "since": ctx.time,
        "height": ctx.height,
        "tx": ctx.tx_hash,
    }


def history_after(ctx: Context, after: int, limit: int) -> list[dict[str, Any]]:
    raw = ctx.get(HISTORY_NEXT)
    end = 1 if raw is None else int(codec.decode(raw))
    out = []
    for seq in range(after + 1, min(end, after + 1 + limit)):
        value = ctx.get(ISSUER_HISTORY + seq.to_bytes(8, "big"))
        if value is None:
            raise InternalError(f"trusted-issuer history entry {seq} is missing")
        out.append(codec.decode(value))
    return out


def not_trusted(issuer: str, ctype: str) -> Exception:
    return refuse(
        ErrorCode.ISSUER_NOT_TRUSTED, f"{issuer} is not in the trusted-issuer registry for {ctype}"
    )
