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

Published Status List Tokens. An SD-JWT VC verifier reads a list as an IETF Token Status
List: a JWT (``typ: statuslist+jwt``) whose ``status_list.lst`` packs each entry's status
from the low bits up (:mod:`..shapes._token_status`: a revocation list in 1 bit an entry, a
suspension list in 2, SUSPENDED being 0x02). The issuer signs it; the chain keeps the latest
under ``sj/<issuer id>/<name>`` once it has checked, as for the credential: a compact JWS
whose header says ``statuslist+jwt``, names an algorithm and a ``kid`` of the list's issuer
(``<issuer DID>#...``: how a verifier finds the key); whose ``sub`` is the list's id (what
each SD-JWT VC's ``status.status_list.uri`` names), whose ``iss``, if any, is the issuer,
with an integer ``iat`` (and ``exp`` after it, a positive ``ttl``, if given); whose ``bits``
is the purpose's and whose ``lst`` inflates to exactly the list's entries, every one VALID
or the purpose's status, the same bits the head's SHA-256 covers. The signature is checked
by the verifier (it needs the issuer's DID document as of now, which is not a block's
input); no fractional number is read.
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
    STATUS_TOKEN,
    citychain_id,
    encoded_list_bits,
    split_status_list_id,
    status_list_digest,
)
from citychain.services.identity.shapes._jose import jws_parts
from citychain.services.identity.shapes._token_status import (
    STATUS_LIST_JWT,
    TOKEN_STATUS_BITS,
    token_list_bytes,
    token_status_bitstring,
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


def token_key(list_id: str) -> bytes:
    return STATUS_TOKEN + _base(list_id)


def _not_json_number(text: str) -> Any:
    raise ValueError(f"a number {text[:20]!r}: a status list credential holds none")


#: Why a published form can be too large, and what to do. A list of 131,072 entries (the
#: default) always fits: even with random bits its credential is ~22 KB and a suspension
#: list's token ~26 KB.
_TOO_DENSE = (
    " (a list too dense to publish in one transaction is verified through the node's VC-API "
    "instead; lists of 131,072 entries, the default, always fit)"
)


def _refused(why: str) -> InvalidInput:
    return InvalidInput(f"argument 'credential': {why}", ErrorCode.INVALID_CREDENTIAL)


def published_bits_hash(raw: Any, head: dict[str, Any]) -> bytes:
    """Check ``raw`` as the published credential of the list ``head`` (see the module): the
    SHA-256 of the bits its ``encodedList`` holds, for the caller to compare with the list's;
    ``invalid_credential`` naming what is wrong."""
    if type(raw) is not bytes or not 0 < len(raw) <= MAX_STATUS_CREDENTIAL_BYTES:
        raise _refused(
            f"a status list credential is its JSON text, 1 to {MAX_STATUS_CREDENTIAL_BYTES} "
            f"bytes{_TOO_DENSE}"
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


def _no_fraction(text: str) -> Any:
    raise ValueError(f"a number with a fraction or exponent ({text[:20]!r}): times are integers")


def _token_refused(why: str) -> InvalidInput:
    return InvalidInput(f"argument 'token': {why}", ErrorCode.INVALID_CREDENTIAL)


def published_token_bits_hash(raw: Any, head: dict[str, Any]) -> bytes:
    """Check ``raw`` as the published Status List Token of the list ``head`` (see the
    module): the SHA-256 of the chain bits its ``lst`` holds, for the caller to compare with
    the list's; ``invalid_credential`` naming what is wrong."""
    if not isinstance(raw, str) or not 0 < len(raw) <= MAX_STATUS_CREDENTIAL_BYTES:
        raise _token_refused(
            f"a Status List Token is its compact JWS text, 1 to {MAX_STATUS_CREDENTIAL_BYTES} "
            f"characters{_TOO_DENSE}"
        )
    try:
        header, claims, _, signature = jws_parts(raw, parse_float=_no_fraction)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise _token_refused(f"not a compact JWS ({str(exc)[:80]})") from None
    issuer, list_id, purpose = head["issuer"], head["id"], head["purpose"]
    if header.get("typ") != STATUS_LIST_JWT:
        raise _token_refused(f"its header's typ is {header.get('typ')!r}, not {STATUS_LIST_JWT!r}")
    alg = header.get("alg")
    if not isinstance(alg, str) or not alg or alg.lower() == "none":
        raise _token_refused("its header names no signature algorithm")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid.startswith(issuer + "#"):
        raise _token_refused(
            f"its header's kid {str(kid)[:120]!r} is not a verification method of {issuer}"
        )
    if not signature:
        raise _token_refused("it is not signed: sign it with the issuer's key first")
    if claims.get("sub") != list_id:
        raise _token_refused(f"its sub is {str(claims.get('sub'))[:120]!r}, not {list_id!r}")
    if claims.get("iss", issuer) != issuer:
        raise _token_refused(f"its iss is {str(claims.get('iss'))[:120]!r}, not {issuer!r}")
    iat, exp, ttl = claims.get("iat"), claims.get("exp"), claims.get("ttl")
    if type(iat) is not int or iat < 0:
        raise _token_refused("its iat is not a NumericDate (whole seconds since 1970)")
    if exp is not None and (type(exp) is not int or exp <= iat):
        raise _token_refused("its exp is not a NumericDate after its iat")
    if ttl is not None and (type(ttl) is not int or ttl <= 0):
        raise _token_refused("its ttl is not a whole number of seconds above 0")
    status_list = claims.get("status_list")
    if not isinstance(status_list, dict):
        raise _token_refused("it has no status_list object")
    bits = status_list.get("bits")
    if bits != TOKEN_STATUS_BITS[purpose] or type(bits) is not int:
        raise _token_refused(
            f"its status_list.bits is {str(bits)[:20]}: a {purpose} list is published with "
            f"{TOKEN_STATUS_BITS[purpose]} bit(s) an entry"
        )
    want = head["size"] * bits // 8
    try:
        array = token_list_bytes(status_list.get("lst"), want)
        if len(array) != want:
            raise ValueError(f"short of the list's {head['size']} entries")
        return status_list_digest(token_status_bitstring(array, purpose))
    except ValueError as exc:
        raise _token_refused(f"its status_list.lst is {exc}") from None


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
