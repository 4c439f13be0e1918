"""The identity service's shapes: identifier syntax and key encoding, with no node needed.

Keys are written as W3C Controlled Identifiers ``Multikey`` values: ``publicKeyMultibase`` is
``z`` (base58btc) followed by the base58btc encoding of the multicodec prefix of the key type
(``0xed 0x01`` for an Ed25519 public key) and the raw key. A ``did:key`` is ``did:key:`` and
the same multibase string. On an ``sm2-sm3`` chain a ``did:citychain`` document may also hold
SM2 keys (multicodec ``sm2-pub``, ``0x86 0x24``, with the compressed point), the keys that
chain's transactions are signed with, so they can control the DID.

A ``did:citychain`` identifier is ``did:citychain:`` followed by base58btc of 16 bytes that
the contract derives when the DID is created (see ``docs/did-method.md``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from citychain.errors import DecodeError, ErrorCode, InvalidInput
from citychain.services.identity.shapes._base58 import b58decode, b58encode
from citychain.services.identity.shapes._token_status import inflate_bounded
from citychain.types.state_keys import contract_key

NAME = "identity"
METHOD = "citychain"
#: The multicodec prefix of an Ed25519 public key (varint 0xed).
ED25519_PUB = b"\xed\x01"
ED25519_KEY_SIZE = 32
#: The method-specific identifier of a did:citychain: base58btc of 16 bytes (21 or 22 chars).
ID_BYTES = 16
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_DID_RE = re.compile(r"did:([a-z0-9]+):([A-Za-z0-9._%-]+(?::[A-Za-z0-9._%-]+)*)")
_CITYCHAIN_RE = re.compile(rf"did:{METHOD}:([{_B58}]{{1,32}})")


def _bad(message: str) -> InvalidInput:
    return InvalidInput(message, ErrorCode.BAD_ARGUMENTS)


def multikey_encode(public_key: bytes) -> str:
    """The ``publicKeyMultibase`` of an Ed25519 public key."""
    if len(public_key) != ED25519_KEY_SIZE:
        raise _bad(f"an Ed25519 public key is {ED25519_KEY_SIZE} bytes, got {len(public_key)}")
    return "z" + b58encode(ED25519_PUB + public_key)


def _multibase_bytes(value: str) -> bytes:
    """The bytes of a base58btc ``publicKeyMultibase`` (``z...``); ``bad_arguments`` else."""
    if not isinstance(value, str) or not value.startswith("z"):
        raise _bad(f"publicKeyMultibase must start with 'z' (base58btc), got {str(value)[:20]!r}")
    try:
        return b58decode(value[1:])
    except ValueError:
        raise _bad("publicKeyMultibase is not valid base58btc") from None


def multikey_decode(value: str) -> bytes:
    """The Ed25519 public key of a ``publicKeyMultibase`` value; ``bad_arguments`` naming
    what is wrong (not base58btc, not an Ed25519 key, wrong length)."""
    raw = _multibase_bytes(value)
    if not raw.startswith(ED25519_PUB):
        raise _bad("publicKeyMultibase is not an Ed25519 key (multicodec 0xed01)")
    key = raw[len(ED25519_PUB) :]
    if len(key) != ED25519_KEY_SIZE:
        raise _bad(f"publicKeyMultibase holds {len(key)} key bytes, an Ed25519 key has 32")
    return key


#: The multicodec prefix of an SM2 public key (varint 0x1206, ``sm2-pub``: the compressed
#: point, 33 bytes).
SM2_PUB = b"\x86\x24"
SM2_KEY_SIZE = 65
# The SM2 recommended curve (GB/T 32918.5): y^2 = x^3 + a x + b over F_p, a = p - 3.
_SM2_P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
_SM2_B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93


def sm2_multikey_encode(public_key: bytes) -> str:
    """The ``publicKeyMultibase`` of an SM2 public key (65 bytes, ``04 || x || y``, as the
    ``sm2-sm3`` suite writes it): multicodec ``sm2-pub`` with the compressed point."""
    if len(public_key) != SM2_KEY_SIZE or public_key[0] != 4:
        raise _bad(f"an SM2 public key is {SM2_KEY_SIZE} bytes 04 || x || y")
    compressed = bytes([2 | public_key[-1] & 1]) + public_key[1:33]
    return "z" + b58encode(SM2_PUB + compressed)


def sm2_multikey_decode(value: str) -> bytes:
    """The SM2 public key (65 bytes, uncompressed) of an ``sm2-pub`` ``publicKeyMultibase``;
    ``bad_arguments`` unless it is a compressed point on the SM2 curve.

    The decompression is written out here (a square root modulo p, p = 3 mod 4): neither
    ``cryptography`` nor PyNaCl knows the SM2 curve, and the shapes stay free of the ctypes
    backend. A point is accepted only if the root squares back, so it is on the curve."""
    raw = _multibase_bytes(value)
    if not raw.startswith(SM2_PUB):
        raise _bad("publicKeyMultibase is not an SM2 key (multicodec 0x1206)")
    point = raw[len(SM2_PUB) :]
    if len(point) != 33 or point[0] not in (2, 3):
        raise _bad("an SM2 publicKeyMultibase holds a compressed point (33 bytes, 02 or 03 || x)")
    x = int.from_bytes(point[1:], "big")
    if x >= _SM2_P:
        raise _bad("the SM2 key's x is not below the field's prime")
    rhs = (pow(x, 3, _SM2_P) - 3 * x + _SM2_B) % _SM2_P
    y = pow(rhs, (_SM2_P + 1) // 4, _SM2_P)
    if y * y % _SM2_P != rhs:
        raise _bad("the SM2 key is not a point on the SM2 curve")
    if y & 1 != point[0] & 1:
        y = _SM2_P - y
    return b"\x04" + point[1:] + y.to_bytes(32, "big")


def method_key_encode(public_key: bytes) -> str:
    """The ``publicKeyMultibase`` of a key a DID document holds: Ed25519 (32 bytes) or, on an
    ``sm2-sm3`` chain, SM2 (65 bytes)."""
    if len(public_key) == SM2_KEY_SIZE:
        return sm2_multikey_encode(public_key)
    return multikey_encode(public_key)


def method_key_decode(value: str, *, sm2: bool = False) -> bytes:
    """The key of a DID document's ``publicKeyMultibase``: an Ed25519 key, or with ``sm2``
    (the chain's transactions are SM2-signed) an SM2 key too. Without ``sm2`` exactly
    :func:`multikey_decode`, refusals included."""
    if sm2 and isinstance(value, str) and value.startswith("z"):
        try:
            raw = b58decode(value[1:])
        except ValueError:
            raw = b""
        if raw.startswith(SM2_PUB):
            return sm2_multikey_decode(value)
    return multikey_decode(value)


def did_key(public_key: bytes) -> str:
    """The ``did:key`` of an Ed25519 public key."""
    return "did:key:" + multikey_encode(public_key)


def split_did(did: str) -> tuple[str, str]:
    """``(method, method-specific id)`` of a syntactically valid DID (DID Core §3.1);
    ``bad_arguments`` otherwise."""
    if not isinstance(did, str) or len(did) > 2048 or not _DID_RE.fullmatch(did):
        raise _bad(f"{str(did)[:80]!r} is not a DID (did:<method>:<method-specific-id>)")
    _, method, rest = did.split(":", 2)
    return method, rest


def citychain_id(did: str) -> bytes:
    """The 16 identifier bytes of a ``did:citychain``; ``bad_arguments`` if it is not one."""
    # Only short strings reach the cache: it must not hold megabytes of someone's junk.
    raw = _citychain_id(did) if type(did) is str and len(did) <= _MAX_DID_CHARS else b""
    if len(raw) != ID_BYTES:
        raise _bad(
            f"{str(did)[:80]!r} is not a did:{METHOD} (did:{METHOD}:<base58btc of 16 bytes>)"
        )
    return raw


#: Longer than any string the did:citychain pattern accepts (15 + at most 32 base58 digits).
_MAX_DID_CHARS = 64


@lru_cache(maxsize=4096)
def _citychain_id(did: str) -> bytes:
    # Cached: one resolution or transaction asks for the same DID's bytes several times
    # (argument check, head, version); a hit (~0.3 µs) is a tenth of the pattern match and
    # the decoding. A pure function of its argument, so the cache changes no result.
    m = _CITYCHAIN_RE.fullmatch(did)
    return b58decode(m.group(1)) if m else b""


@lru_cache(maxsize=4096)
def citychain_did(identifier: bytes) -> str:
    """The ``did:citychain`` of 16 identifier bytes."""
    # Cached: a create transaction derives its DID at admission and again in its block.
    if len(identifier) != ID_BYTES:
        raise _bad(f"a did:{METHOD} identifier is {ID_BYTES} bytes, got {len(identifier)}")
    return f"did:{METHOD}:" + b58encode(identifier)


# -- the contract's state layout (pure: for proof requests by the SDK and the API) -------------
#: Inside the contract's namespace ``c/identity/`` (see the contract's theory of operation)::
#:
#:     did/<16 id bytes>                        [versions, created ms, created height]
#:     dv/<16 id bytes><version, 4 bytes BE>    one version of a DID document
#:     ti/<credential type>\0<issuer DID>       a trusted-issuer entry
#:     tih/<seq, 8 bytes BE>                    the trusted-issuer history, oldest first
#:     tip/<credential type>\0<issuer DID>      past trust periods [[since, until], ...] (ms)
#:     sl/<16 id bytes>/<name>                  a status list's head (purpose, size, hash, ...)
#:     sc/<16 id bytes>/<name>/<chunk, 4 B BE>  1 KiB of its bitstring (absent: all zeros)
#:     sh/<16 id bytes>/<name>/<seq, 4 B BE>    one change of its bits
#:     ss/<16 id bytes>/<name>                  its latest status list credential, as the
#:                                              issuer signed and published it
#:     sj/<16 id bytes>/<name>                  its latest Status List Token (JWT), likewise
DID_HEAD = b"did/"
DID_VERSION = b"dv/"
ISSUER = b"ti/"
ISSUER_HISTORY = b"tih/"
ISSUER_PERIODS = b"tip/"
STATUS_LIST = b"sl/"
STATUS_CHUNK = b"sc/"
STATUS_HISTORY = b"sh/"
STATUS_CREDENTIAL = b"ss/"
STATUS_TOKEN = b"sj/"
#: Largest published status list credential (JSON bytes) or Status List Token (a compact
#: JWS): it travels in one transaction.
MAX_STATUS_CREDENTIAL_BYTES = 48 * 1024
#: Status lists: at least 131,072 entries (Bitstring Status List v1.0 §2.1), at most 2**20,
#: a whole number of 8,192-entry (1 KiB) chunks.
STATUS_CHUNK_BITS = 8192
MIN_STATUS_LIST_BITS = 131_072
MAX_STATUS_LIST_BITS = 1_048_576
STATUS_PURPOSES = ("revocation", "suspension")
_LIST_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def did_head_key(did: str) -> bytes:
    """The full state key of a ``did:citychain``'s head record (its version count)."""
    return contract_key(NAME, DID_HEAD + citychain_id(did))


def did_version_key(did: str, version: int) -> bytes:
    """The full state key of version ``version`` (1, 2, ...) of a ``did:citychain``."""
    if type(version) is not int or not 0 < version < 2**32:
        raise _bad(f"a DID version is an integer from 1 to 2**32 - 1, got {version!r}")
    return contract_key(NAME, DID_VERSION + citychain_id(did) + version.to_bytes(4, "big"))


def issuer_key(issuer_did: str, credential_type: str) -> bytes:
    """The full state key of the trusted-issuer entry of ``issuer_did`` for one type."""
    split_did(issuer_did)
    return contract_key(NAME, ISSUER + credential_type.encode() + b"\0" + issuer_did.encode())


def status_list_id(issuer_did: str, name: str) -> str:
    """The id of status list ``name`` of ``issuer_did``: the DID URL ``<did>/status/<name>``."""
    citychain_id(issuer_did)
    if not isinstance(name, str) or not _LIST_NAME_RE.fullmatch(name):
        raise _bad(
            f"a status list name is 1 to 64 letters, digits, '.', '_' or '-', starting with a "
            f"letter or digit; got {str(name)[:80]!r}"
        )
    return f"{issuer_did}/status/{name}"


def split_status_list_id(list_id: str) -> tuple[str, str]:
    """``(issuer DID, name)`` of a status list id; ``bad_arguments`` if it is not one."""
    did, sep, name = list_id.partition("/status/") if isinstance(list_id, str) else ("", "", "")
    if not sep:
        raise _bad(f"{str(list_id)[:80]!r} is not a status list id (<did:citychain>/status/<name>)")
    status_list_id(did, name)
    return did, name


def status_list_key(list_id: str) -> bytes:
    """The full state key of a status list's head (its purpose, size and current hash)."""
    did, name = split_status_list_id(list_id)
    return contract_key(NAME, STATUS_LIST + citychain_id(did) + b"/" + name.encode())


def status_chunk_key(list_id: str, index: int) -> bytes:
    """The full state key of the 1 KiB chunk holding entry ``index`` of a status list (an
    absent chunk is all zeros: prove it with a non-existence proof)."""
    did, name = split_status_list_id(list_id)
    chunk = (index // STATUS_CHUNK_BITS).to_bytes(4, "big")
    return contract_key(
        NAME, STATUS_CHUNK + citychain_id(did) + b"/" + name.encode() + b"/" + chunk
    )


def status_bit(bitstring: bytes, index: int) -> bool:
    """Entry ``index`` of a bitstring; index 0 is the left-most bit (the high bit of byte 0),
    as Bitstring Status List v1.0 §3.2 says."""
    return bool(bitstring[index >> 3] & (0x80 >> (index & 7)))


def encoded_list_bits(encoded: object, max_bytes: int) -> bytes:
    """The uncompressed bitstring a status list credential's ``encodedList`` holds: ``u`` +
    base64url of one GZIP member, inflated to at most ``max_bytes`` (a longer one is refused
    before it is inflated further). ``ValueError`` saying what is wrong. Deterministic (the
    chain checks published lists with it), and the SDK's verifier decodes with it too."""
    if not isinstance(encoded, str) or not encoded.startswith("u"):
        raise ValueError("not multibase base64url ('u...')")
    try:
        packed = base64.urlsafe_b64decode(encoded[1:] + "=" * (-len(encoded[1:]) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"not base64url ({exc})") from None
    return inflate_bounded(packed, "GZIP", max_bytes)


def status_list_digest(bitstring: bytes) -> bytes:
    """The hash the chain keeps of a status list: SHA-256 of the *uncompressed* bitstring (so
    it does not depend on how a gzip implementation compresses it)."""
    return hashlib.sha256(bitstring).digest()


# -- times (DID Core §7.3: XML Schema dateTime, UTC, no fractional seconds) ---------------------
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_XSD_RE = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?(?:Z|[+-][0-9]{2}:[0-9]{2})"
)


def xsd_datetime(ms: int) -> str:
    """A block time (ms since the epoch) as DID metadata writes it: ``2026-12-03T09:14:17Z``."""
    # time.gmtime is a pure function of its argument (UTC, no zone database, no clock), and
    # ~4x faster than datetime arithmetic: a resolution renders one or two of these.
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms // 1000))


def parse_xsd_datetime(text: str) -> int:
    """The last millisecond of the moment ``text`` names (an XML Schema dateTime with a zone),
    as ms since the epoch: ``...:17Z`` covers the whole of second 17, so resolving at a
    version's ``updated`` time finds that version. ``bad_arguments`` otherwise."""
    if not isinstance(text, str) or not _XSD_RE.fullmatch(text):
        raise _bad(f"{str(text)[:40]!r} is not a dateTime like 2026-12-03T09:14:17Z")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise _bad(f"{text!r} is not a valid date and time") from None
    whole = (moment - _EPOCH) // timedelta(milliseconds=1)
    return whole if "." in text else whole // 1000 * 1000 + 999


#: The ``@context`` of a DID document written by this service (did:key and did:citychain).
DID_CONTEXT = ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"]


def did_key_document(did: str) -> dict[str, object]:
    """The DID document of an Ed25519 ``did:key`` (the did:key method's read operation,
    with no chain): one Multikey method in every verification relationship but
    ``keyAgreement`` (which needs an X25519 key derived from it; not offered here).
    ``bad_arguments`` when ``did`` is not an Ed25519 did:key."""
    method, rest = split_did(did)
    if method != "key":
        raise _bad(f"{did[:80]!r} is not a did:key")
    multikey_decode(rest)  # an Ed25519 Multikey, or bad_arguments naming what is wrong
    vm_id = f"{did}#{rest}"
    return {
        "@context": list(DID_CONTEXT),
        "id": did,
        "verificationMethod": [
            {"id": vm_id, "type": "Multikey", "controller": did, "publicKeyMultibase": rest}
        ],
        "authentication": [vm_id],
        "assertionMethod": [vm_id],
        "capabilityInvocation": [vm_id],
        "capabilityDelegation": [vm_id],
    }


@dataclass(frozen=True, slots=True)
class DidHead:
    """A DID's head record (``did/<id>``): how many versions it has, when it was created."""

    versions: int
    created: int
    created_height: int

    @classmethod
    def from_value(cls, value: object) -> DidHead:
        """The head from its decoded state value ``[versions, created ms, height]``."""
        if (
            not isinstance(value, list)
            or len(value) != 3
            or not all(type(x) is int and x >= 0 for x in value)
        ):
            raise DecodeError(f"not a DID head record: {value!r:.80}", ErrorCode.MALFORMED)
        return cls(value[0], value[1], value[2])


@dataclass(frozen=True, slots=True)
class DidVersion:
    """One version of a DID document (``dv/<id><n>``): the record (None once deactivated),
    the operation that made it, its block time and height, transaction and signing key."""

    number: int
    record: dict[str, Any] | None
    op: str
    time: int
    height: int
    tx: bytes
    signer: bytes

    @property
    def deactivated(self) -> bool:
        return self.record is None

    @classmethod
    def from_value(cls, number: int, value: object) -> DidVersion:
        """The version from its decoded state value ``{"doc", "op", "t", "h", "tx", "by"}``."""
        fields = ("doc", "op", "t", "h", "tx", "by")
        if not isinstance(value, dict) or set(value) != set(fields):
            raise DecodeError(f"not a DID version record: {value!r:.80}", ErrorCode.MALFORMED)
        record, op, t, h, tx, by = (value[f] for f in fields)
        if not (
            (record is None or isinstance(record, dict))
            and type(op) is str
            and type(t) is int
            and type(h) is int
            and type(tx) is bytes
            and type(by) is bytes
        ):
            raise DecodeError(f"not a DID version record: {value!r:.80}", ErrorCode.MALFORMED)
        return cls(number, record, op, t, h, tx, by)
