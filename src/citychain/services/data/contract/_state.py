"""The data contract's records in state: reading, writing and paging them.

The layout is :mod:`citychain.services.data.shapes`' (so the SDK names the same keys for
proofs); this module adds what needs a :class:`~citychain.execution.Context`.
"""

from __future__ import annotations

from typing import Any

from citychain import codec
from citychain.errors import ErrorCode, ExecutionFailure, InternalError, NotFound
from citychain.execution import Context
from citychain.services.data import shapes as sh


def refuse(code: ErrorCode, message: str) -> ExecutionFailure:
    return ExecutionFailure(message, code)


def load(raw: bytes | None, what: str) -> Any:
    if raw is None:
        return None
    try:
        return codec.decode_trusted(raw)  # our own records, written canonical by this code
    except Exception:
        raise InternalError(f"data state holds a malformed {what}: {raw[:64].hex()}") from None


def get(ctx: Context, key: bytes, what: str) -> Any:
    return load(ctx.get(key), what)


def put(ctx: Context, key: bytes, value: Any) -> None:
    ctx.set(key, codec.encode(value))


def next_id(ctx: Context, name: bytes) -> int:
    """Take the next number (1, 2, ...) of sequence ``name``."""
    key = sh.NEXT + name
    raw = ctx.get(key)
    n = 1 if raw is None else int(load(raw, "counter"))
    ctx.set(key, codec.encode_trusted(n + 1))
    return n


def last_id(ctx: Context, name: bytes) -> int:
    raw = ctx.get(sh.NEXT + name)
    return 0 if raw is None else int(load(raw, "counter")) - 1


def head(ctx: Context, code: str) -> dict[str, Any] | None:
    value: dict[str, Any] | None = get(ctx, sh.head_key(code), "resource head")
    return value


def require_head(ctx: Context, code: str) -> dict[str, Any]:
    h = head(ctx, code)
    if h is None:
        raise NotFound(f"no data resource {code} in the catalogue", ErrorCode.RESOURCE_NOT_FOUND)
    return h


def revision(ctx: Context, code: str, n: int) -> dict[str, Any]:
    value: dict[str, Any] | None = get(ctx, sh.revision_key(code, n), "resource revision")
    if value is None:
        raise InternalError(f"revision {n} of resource {code} is missing from state")
    return value


def record(ctx: Context, h: dict[str, Any]) -> dict[str, Any]:
    """The current record of the resource whose head is ``h``."""
    rec: dict[str, Any] = revision(ctx, h["code"], h["revisions"])["record"]
    return rec


def version(ctx: Context, code: str, n: int) -> dict[str, Any] | None:
    value: dict[str, Any] | None = get(ctx, sh.version_key(code, n), "version")
    return value


def index_keys(rec: dict[str, Any]) -> list[bytes]:
    """The search index keys of a current record."""
    code = rec["code"].encode()
    keys = [sh.index_prefix("provider", rec["provider"]) + code]
    keys += [sh.index_prefix("theme", t) + code for t in rec["themes"]]
    keys += [sh.index_prefix("keyword", k) + code for k in rec["keywords"]]
    keys.append(sh.index_prefix("sharing", rec["sharing"]) + code)
    return keys


def grant(ctx: Context, gid: int) -> dict[str, Any] | None:
    value: dict[str, Any] | None = get(ctx, sh.grant_key(gid), "grant")
    return value


def request(ctx: Context, rid: int) -> dict[str, Any] | None:
    value: dict[str, Any] | None = get(ctx, sh.request_key(rid), "request")
    return value


def grant_state(g: dict[str, Any], now: int) -> str:
    """``active``, ``expired`` (its period ended before ``now``) or ``revoked``."""
    if g["state"] == "revoked":
        return "revoked"
    return "active" if now < g["until"] else "expired"


def grants_of(ctx: Context, code: str, grantee: bytes) -> list[dict[str, Any]]:
    prefix = sh.RESOURCE_GRANTS + code.encode() + b"\0" + grantee
    out = []
    for k, _ in list(ctx.iter_prefix(prefix)):
        g = grant(ctx, int.from_bytes(k[len(prefix) :], "big"))
        if g is not None:
            out.append(g)
    return out


def audit(ctx: Context, entry: dict[str, Any], subjects: list[bytes]) -> int:
    """Append an audit entry about ``entry["code"]`` (and each subject); its sequence."""
    seq = next_id(ctx, b"au")
    full = {
        "seq": seq,
        "time": ctx.time,
        "height": ctx.height,
        "tx": ctx.tx_hash,
        "by": ctx.origin,
        **entry,
    }
    put(ctx, sh.audit_key(seq), full)
    ctx.set(sh.RESOURCE_AUDIT + entry["code"].encode() + b"\0" + sh.u64(seq), b"\x01")
    for tag in subjects:
        ctx.set(sh.SUBJECT_AUDIT + tag + sh.u64(seq), b"\x01")
    return seq


def audit_entry(ctx: Context, seq: int) -> dict[str, Any] | None:
    value: dict[str, Any] | None = get(ctx, sh.audit_key(seq), "audit entry")
    return value


def ids_under(ctx: Context, prefix: bytes, after: int, limit: int) -> list[int]:
    """The ids of the keys ``prefix + u64(id)`` under ``prefix``, ascending, above ``after``:
    at most ``limit``, read from a seek to ``after``, so a page costs the same wherever it
    starts. Every key under ``prefix`` must be ``prefix`` and an 8-byte id."""
    out: list[int] = []
    for k, _ in ctx.iter_prefix(prefix, after=sh.u64(after)):
        out.append(int.from_bytes(k[-8:], "big"))
        if len(out) >= limit:
            break
    return out
