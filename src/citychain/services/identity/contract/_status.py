"""Status lists anchored on chain: the bitstring in 1 KiB chunks, its hash, every change.

A list of ``size`` entries is ``size / 8192`` chunks of 1,024 bytes under
``sc/<issuer id>/<name>/<chunk>``; a chunk with no bit set is not stored (a new list costs
one head record, and a list with few revocations a few chunks). The head keeps the purpose,
size, SHA-256 of the whole uncompressed bitstring and the number of changes; each change
keeps the indexes it set and cleared under ``sh/<issuer id>/<name>/<seq>``.

Why chunks rather than the compressed list or one key per set bit: gzip output is not
guaranteed identical across zlib versions, so a compressed list in state could split the
chain; one key per set bit makes the hash a walk over every set bit. A chunk is read and
written whole, a status query reads one chunk, and an offline proof of one entry carries
1 KiB. The hash is recomputed at each change from the chunks (16 reads for 131,072 entries).

Published status list credentials. A verifier outside the chain reads a list as a
``BitstringStatusListCredential`` signed by its issuer, which the chain cannot make (it holds
no issuer's key). So the issuer signs it and publishes it in a transaction (with a change, or
alone), and the chain keeps the latest one under ``ss/<issuer id>/<name>``, with the change
number it shows. What the chain checks, deterministically, before keeping it: it is a JSON
object naming this list as its ``id`` and the list's issuer as its issuer, of type
``BitstringStatusListCredential``, whose subject has the list's purpose and an
``encodedList`` that inflates to exactly the list's bits (the SHA-256 the head keeps), and
that has a ``proof``. The proof itself is checked by whoever relies on it, as Bitstring
Status List's validation asks (canonicalising JSON-LD inside a block would put a JSON-LD
processor in consensus; the transaction is already signed by a controller of the issuer).
The bytes are kept as the issuer wrote them: the gzip inside is the issuer's output, never
computed by a node. Inflating is deterministic, and bounded by the list's size.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from citychain import codec
from citychain.errors import ErrorCode, InternalError, InvalidInput
from citychain.execution import Context
from citychain.services.identity.shapes import (
    MAX_STATUS_CREDENTIAL_BYTES,
    MAX_STATUS_LIST_BITS,
    MIN_STATUS_LIST_BITS,
    STATUS_CHUNK,
    STATUS_CHUNK_BITS,
    STATUS_CREDENTIAL,
    STATUS_HISTORY,
    STATUS_LIST,
    citychain_id,
    encoded_list_bits,
    split_status_list_id,
    status_list_digest,
)

CHUNK_BYTES = STATUS_CHUNK_BITS // 8
_ZERO = bytes(CHUNK_BYTES)
#: Most entries one change may set and clear together.
MAX_CHANGE = 10_000


def _base(list_id: str) -> bytes:
    did, name = split_status_list_id(list_id)
    return citychain_id(did) + b"/" + name.encode()


def head_key(list_id: str) -> bytes:
    return STATUS_LIST + _base(list_id)


def chunk_key(list_id: str, chunk: int) -> bytes:
    return STATUS_CHUNK + _base(list_id) + b"/" + chunk.to_bytes(4, "big")


def change_key(list_id: str, seq: int) -> bytes:
    return STATUS_HISTORY + _base(list_id) + b"/" + seq.to_bytes(4, "big")


def credential_key(list_id: str) -> bytes:
    return STATUS_CREDENTIAL + _base(list_id)


def _not_json_number(text: str) -> Any:
    raise ValueError(f"a number {text[:20]!r}: a status list credential holds none")


def _refused(why: str) -> InvalidInput:
    return InvalidInput(f"argument 'credential': {why}", ErrorCode.INVALID_CREDENTIAL)


def published_bits_hash(raw: Any, head: dict[str, Any]) -> bytes:
    """Check ``raw`` as the published credential of the list ``head`` (see the module): the
    SHA-256 of the bits its ``encodedList`` holds, for the caller to compare with the list's;
    ``invalid_credential`` naming what is wrong."""
    if type(raw) is not bytes or not 0 < len(raw) <= MAX_STATUS_CREDENTIAL_BYTES:
        raise _refused(
            f"a status list credential is its JSON text, 1 to {MAX_STATUS_CREDENTIAL_BYTES} "
            "bytes (a list too dense to publish in one transaction is verified through the "
            "node's VC-API instead)"
        )
    try:
        vc = json.loads(raw.decode(), parse_float=_not_json_number, parse_constant=_not_json_number)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _refused(f"not JSON text ({str(exc)[:80]})") from None
    if not isinstance(vc, dict):
        raise _refused("not a JSON object")
    if vc.get("id") != head["id"]:
        raise _refused(f"its id is {str(vc.get('id'))[:120]!r}, not {head['id']!r}")
    types = vc.get("type")
    if not isinstance(types, list) or "BitstringStatusListCredential" not in types:
        raise _refused("its type does not include BitstringStatusListCredential")
    issuer = vc.get("issuer")
    issuer = issuer.get("id") if isinstance(issuer, dict) else issuer
    if issuer != head["issuer"]:
        raise _refused(f"its issuer is {str(issuer)[:120]!r}, not {head['issuer']!r}")
    subject = vc.get("credentialSubject")
    if not isinstance(subject, dict) or subject.get("type") != "BitstringStatusList":
        raise _refused("its credentialSubject is not a BitstringStatusList")
    if subject.get("statusPurpose") != head["purpose"]:
        raise _refused(
            f"its statusPurpose is {str(subject.get('statusPurpose'))[:40]!r}, the list's is "
            f"{head['purpose']!r}"
        )
    if not isinstance(vc.get("proof"), (dict, list)):
        raise _refused("it has no proof: sign it with the issuer's key first")
    want = head["size"] // 8
    try:
        bits = encoded_list_bits(subject.get("encodedList"), want)
    except ValueError as exc:
        raise _refused(f"encodedList is {exc}") from None
    if len(bits) != want:
        raise _refused(f"encodedList does not hold exactly the list's {head['size']} entries")
    return status_list_digest(bits)


def get_head(ctx: Context, list_id: str) -> dict[str, Any] | None:
    raw = ctx.get(head_key(list_id))
    if raw is None:
        return None
    try:
        value: dict[str, Any] = codec.decode_trusted(raw)
    except Exception:
        raise InternalError(f"identity state holds a malformed status list {list_id}") from None
    return value


def chunk(ctx: Context, list_id: str, n: int) -> bytes:
    raw = ctx.get(chunk_key(list_id, n))
    return _ZERO if raw is None else raw


def bit(data: bytes, offset: int) -> bool:
    return bool(data[offset >> 3] & (0x80 >> (offset & 7)))


def empty_hash(size: int) -> bytes:
    return hashlib.sha256(bytes(size // 8)).digest()


def apply(ctx: Context, list_id: str, size: int, to_set: list[int], to_clear: list[int]) -> bytes:
    """Set and clear the given entries; the new hash of the whole bitstring."""
    changes: dict[int, list[tuple[int, bool]]] = {}
    for index, value in [*((i, True) for i in to_set), *((i, False) for i in to_clear)]:
        changes.setdefault(index // STATUS_CHUNK_BITS, []).append(
            (index % STATUS_CHUNK_BITS, value)
        )
    for n in sorted(changes):
        data = bytearray(chunk(ctx, list_id, n))
        for offset, value in changes[n]:
            mask = 0x80 >> (offset & 7)
            if value:
                data[offset >> 3] |= mask
            else:
                data[offset >> 3] &= ~mask & 0xFF
        if any(data):
            ctx.set(chunk_key(list_id, n), bytes(data))
        else:
            ctx.delete(chunk_key(list_id, n))
    return digest(ctx, list_id, size)


def digest(ctx: Context, list_id: str, size: int) -> bytes:
    h = hashlib.sha256()
    for n in range(size // STATUS_CHUNK_BITS):
        h.update(chunk(ctx, list_id, n))
    return h.digest()


def bitstring(ctx: Context, list_id: str, size: int) -> bytes:
    return b"".join(chunk(ctx, list_id, n) for n in range(size // STATUS_CHUNK_BITS))


def as_of(
    ctx: Context, list_id: str, head: dict[str, Any], index: int, now: bool, at: int
) -> tuple[bool, bytes, int]:
    """Entry ``index`` (``now`` at present), the bitstring's hash and the number of changes
    as they were at time ``at`` (ms): walk the changes made after ``at`` back to the first,
    whose prior value of the entry is the one at ``at``. Reads one record per later change."""
    value, seq = now, int(head["changes"])
    while seq > 0:
        raw = ctx.get(change_key(list_id, seq))
        if raw is None:
            raise InternalError(f"change {seq} of status list {list_id} is missing")
        change = codec.decode_trusted(raw)
        if change["time"] <= at:
            return value, change["hash"], seq
        if index in change["set"]:
            value = False
        elif index in change["clear"]:
            value = True
        seq -= 1
    return value, empty_hash(int(head["size"])), 0


def check_size(size: int) -> bool:
    return MIN_STATUS_LIST_BITS <= size <= MAX_STATUS_LIST_BITS and size % STATUS_CHUNK_BITS == 0


def changes_after(ctx: Context, list_id: str, after: int, limit: int, end: int) -> list[Any]:
    out = []
    for seq in range(after + 1, min(end, after + limit) + 1):
        raw = ctx.get(change_key(list_id, seq))
        if raw is None:
            raise InternalError(f"change {seq} of status list {list_id} is missing")
        out.append(codec.decode(raw))
    return out
