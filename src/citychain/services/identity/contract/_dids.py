"""DIDs in state: heads and versions, who controls a DID, and resolution at a version or time.

Every write of a DID appends a version; nothing is ever overwritten, so any past version
can be read back (and proven) as it was.
"""

from __future__ import annotations

from typing import Any

from citychain import codec
from citychain.errors import ErrorCode, ExecutionFailure, InternalError, InvalidInput, NotFound
from citychain.execution import Context
from citychain.services.identity.shapes import (
    DID_HEAD,
    DID_VERSION,
    METHOD,
    DidHead,
    DidVersion,
    citychain_id,
    multikey_decode,
    multikey_encode,
    split_did,
)
from citychain.services.identity.shapes import _document as doc

#: The largest number of versions one DID may have (4-byte version numbers).
MAX_VERSIONS = 2**32 - 1


#: The records of a DID in state (defined with the layout, so the SDK reads them too).
Head = DidHead
Version = DidVersion


def refuse(code: ErrorCode, message: str) -> ExecutionFailure:
    return ExecutionFailure(message, code)


def bad(message: str) -> InvalidInput:
    return InvalidInput(message, ErrorCode.BAD_ARGUMENTS)


def _load(raw: bytes, what: str) -> Any:
    try:
        return codec.decode_trusted(raw)
    except Exception:
        raise InternalError(f"identity state holds a malformed {what}: {raw[:64].hex()}") from None


def arg_did(args: dict[str, Any], name: str = "did") -> str:
    """A ``did:citychain`` argument (``bad_arguments`` naming the argument otherwise)."""
    value = args.get(name)
    if value is None:
        raise bad(f"missing argument {name!r}")
    try:
        citychain_id(value)
    except InvalidInput as exc:
        raise bad(f"argument {name!r}: {exc.message}") from None
    return str(value)


def head(ctx: Context, did: str) -> Head | None:
    raw = ctx.get(DID_HEAD + citychain_id(did))
    if raw is None:
        return None
    return Head.from_value(_load(raw, "DID head"))


def version(ctx: Context, did: str, number: int) -> Version:
    raw = ctx.get(DID_VERSION + citychain_id(did) + number.to_bytes(4, "big"))
    if raw is None:
        raise InternalError(f"version {number} of {did} is missing from state")
    return Version.from_value(number, _load(raw, "DID version"))


def require(ctx: Context, did: str, *, live: bool = True) -> tuple[Head, Version]:
    """The head and latest version of ``did``: ``did_not_found`` if it was never created,
    ``did_deactivated`` if ``live`` and it was deactivated."""
    h = head(ctx, did)
    if h is None:
        raise NotFound(f"{did} is not on this chain", ErrorCode.DID_NOT_FOUND)
    latest = version(ctx, did, h.versions)
    if live and latest.deactivated:
        raise refuse(
            ErrorCode.DID_DEACTIVATED,
            f"{did} was deactivated at height {latest.height} (version {latest.number}); "
            "it can no longer change or act",
        )
    return h, latest


def append(ctx: Context, did: str, h: Head | None, record: dict[str, Any] | None, op: str) -> int:
    """Write the next version of ``did`` (the first when ``h`` is None); its number."""
    ident = citychain_id(did)
    n = 1 if h is None else h.versions + 1
    if n > MAX_VERSIONS:
        raise refuse(ErrorCode.TOO_LARGE, f"{did} has {MAX_VERSIONS} versions, the most it may")
    created, created_height = (ctx.time, ctx.height) if h is None else (h.created, h.created_height)
    ctx.set(DID_HEAD + ident, codec.encode_trusted([n, created, created_height]))
    value = {
        "doc": record,
        "op": op,
        "t": ctx.time,
        "h": ctx.height,
        "tx": ctx.tx_hash,
        "by": ctx.sender_public_key,
    }
    ctx.set(DID_VERSION + ident + n.to_bytes(4, "big"), codec.encode(value))
    return n


def check_controllers(ctx: Context, record: dict[str, Any], did: str) -> None:
    """Every ``did:citychain`` controller the record names exists and is not deactivated."""
    for c in record.get("ctl", []):
        if c == did or split_did(c)[0] != METHOD:
            continue
        try:
            citychain_id(c)
        except InvalidInput:
            raise doc.bad("controller", f"{c[:80]!r} is not a valid did:{METHOD}") from None
        require(ctx, c)


def _controller_keys(
    ctx: Context, c: str, did: str, record: dict[str, Any]
) -> tuple[list[bytes], str]:
    """The keys controller ``c`` acts with, and a note when it has none."""
    if c == did:
        return doc.invocation_keys(record), ""
    method = split_did(c)[0]
    if method == "key":
        try:
            return [multikey_decode(c[len("did:key:") :])], ""
        except InvalidInput:
            return [], f"controller {c[:80]} is not an Ed25519 did:key"
    if method != METHOD:
        return [], f"controller {c[:80]} (did:{method}) cannot be resolved on this chain"
    h = head(ctx, c)
    if h is None:
        return [], f"controller {c} is not on this chain"
    latest = version(ctx, c, h.versions)
    if latest.deactivated:
        return [], f"controller {c} is deactivated"
    return doc.invocation_keys(latest.record), ""


def authorize(
    ctx: Context, did: str, record: dict[str, Any], *, history: Head | None = None
) -> None:
    """Refuse unless the transaction's signing key is in ``capabilityInvocation`` of one of
    the DID's controllers (``record`` is the DID's current document). With ``history``, a
    key that controlled the DID in an earlier version is told apart (``key_rotated``)."""
    signer = ctx.sender_public_key
    notes = []
    for c in doc.controllers(record, did):
        keys, note = _controller_keys(ctx, c, did, record)
        if signer in keys:
            return
        if note:
            notes.append(note)
    who = multikey_encode(signer) if len(signer) == 32 else signer.hex()
    if history is not None:
        for n in range(history.versions - 1, 0, -1):
            old = version(ctx, did, n)
            if signer in doc.invocation_keys(old.record):
                raise refuse(
                    ErrorCode.KEY_ROTATED,
                    f"key {who} controlled {did} until version {n}; version {n + 1} "
                    f"(height {version(ctx, did, n + 1).height}) rotated it away",
                )
    listed = ", ".join(doc.controllers(record, did))
    extra = f" ({'; '.join(notes)})" if notes else ""
    raise refuse(
        ErrorCode.NOT_CONTROLLER,
        f"the signing key {who} is not in capabilityInvocation of {did}'s controller(s) "
        f"{listed}{extra}",
    )


def at_time(ctx: Context, did: str, h: Head, when: int) -> int:
    """The number of the last version made at or before ``when`` (ms); 0 if none."""
    lo, hi = 0, h.versions  # invariant: version lo (0: none) is at or before; hi+1 after
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if version(ctx, did, mid).time <= when:
            lo = mid
        else:
            hi = mid - 1
    return lo
