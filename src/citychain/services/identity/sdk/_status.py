"""Bitstring Status List v1.0: the list, its credential, credential entries, and an index
allocator that gives nothing away.

A list is a bitstring of at least 131,072 entries (16 KiB); index 0 is the left-most bit
(the most significant bit of the first byte). ``encodedList`` is ``u`` (multibase
base64url, no padding) of the GZIP-compressed bitstring. GZIP is written with mtime 0 so the
same bits always encode to the same string (what the chain anchors is a hash of the bits).

Index allocation (:class:`IndexAllocator`). A status entry is published inside every
credential, so its index must not tell anyone *when* the credential was issued (sequential
indexes do: index 40,001 came after index 40,000) nor *to whom* (indexes drawn per person or
per office would cluster). The issuer keeps a secret key and a counter; the n-th credential
gets ``P_key(n)``, where ``P_key`` is a keyed pseudo-random permutation of ``[0, size)`` (a
4-round Feistel network over HMAC-SHA-256, cycle-walked onto the exact size). Without the key
the indexes look uniformly random and independent of the order of issuance; being a
permutation, they never collide, so unlike random draws there is no set of used indexes to
keep or to leak, and a batch is reproducible after a crash from (key, counter) alone. The
chain sees only the list's bits, never which credential an index belongs to.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from citychain.errors import ErrorCode, InvalidInput
from citychain.services.identity.sdk._vc import build_credential
from citychain.services.identity.shapes import MIN_STATUS_LIST_BITS, encoded_list_bits

PURPOSES = ("revocation", "suspension")


def _bad(message: str) -> InvalidInput:
    return InvalidInput(message, ErrorCode.BAD_ARGUMENTS)


class StatusList:
    """A bitstring of ``size`` one-bit entries (a multiple of 8, at least 131,072)."""

    __slots__ = ("_bits", "size")

    def __init__(self, size: int = MIN_STATUS_LIST_BITS, bits: bytes | None = None) -> None:
        if type(size) is not int or size < MIN_STATUS_LIST_BITS or size % 8:
            raise _bad(
                f"a status list has at least {MIN_STATUS_LIST_BITS} entries, a multiple "
                f"of 8; got {size!r}"
            )
        if bits is not None and len(bits) * 8 != size:
            raise _bad(f"{len(bits)} bytes do not hold {size} entries")
        self.size = size
        self._bits = bytearray(bits) if bits is not None else bytearray(size // 8)

    def _check(self, index: int) -> None:
        if type(index) is not int or not 0 <= index < self.size:
            raise _bad(f"status list index must be 0..{self.size - 1}, got {index!r}")

    def get(self, index: int) -> bool:
        self._check(index)
        return bool(self._bits[index >> 3] & (0x80 >> (index & 7)))

    def set(self, index: int, value: bool = True) -> None:
        self._check(index)
        if value:
            self._bits[index >> 3] |= 0x80 >> (index & 7)
        else:
            self._bits[index >> 3] &= ~(0x80 >> (index & 7)) & 0xFF

    @property
    def bits(self) -> bytes:
        return bytes(self._bits)

    def encode(self) -> str:
        """``encodedList``: ``u`` + base64url(GZIP(bits)), no padding, deterministic."""
        packed = gzip.compress(bytes(self._bits), compresslevel=9, mtime=0)
        return "u" + base64.urlsafe_b64encode(packed).rstrip(b"=").decode()

    @classmethod
    def decode(cls, encoded: str, *, max_size: int = 1 << 26) -> StatusList:
        """The list an ``encodedList`` holds; ``invalid_credential`` for a malformed one or one
        shorter than 131,072 entries (the spec's STATUS_LIST_LENGTH_ERROR)."""
        try:
            bits = encoded_list_bits(encoded, max_size // 8)  # the chain's own decoder
        except ValueError as e:
            raise InvalidInput(
                f"encodedList is malformed: {e}", ErrorCode.INVALID_CREDENTIAL
            ) from None
        if len(bits) * 8 < MIN_STATUS_LIST_BITS:
            raise InvalidInput(
                f"the status list has {len(bits) * 8} entries, fewer than {MIN_STATUS_LIST_BITS}",
                ErrorCode.INVALID_CREDENTIAL,
            )
        return cls(len(bits) * 8, bits)

    def digest(self) -> bytes:
        """SHA-256 of the bits: what a chain anchors for this list."""
        return hashlib.sha256(self._bits).digest()


def status_entry(list_credential: str, index: int, purpose: str = "revocation") -> dict[str, Any]:
    """A ``credentialStatus`` entry (``BitstringStatusListEntry``) pointing at bit ``index`` of
    the status list credential at ``list_credential``."""
    if purpose not in PURPOSES:
        raise _bad(f"statusPurpose must be one of {PURPOSES}, got {purpose!r}")
    if type(index) is not int or index < 0:
        raise _bad(f"a status list index is a non-negative integer, got {index!r}")
    return {
        "id": f"{list_credential}#{index}",
        "type": "BitstringStatusListEntry",
        "statusPurpose": purpose,
        "statusListIndex": str(index),
        "statusListCredential": list_credential,
    }


def status_list_credential(
    list_credential: str,
    issuer: str,
    status_list: StatusList,
    purpose: str = "revocation",
    **kwargs: Any,
) -> dict[str, Any]:
    """The unsecured ``BitstringStatusListCredential`` publishing ``status_list``; sign it
    with :func:`issue_credential`. ``kwargs`` go to :func:`build_credential` (validity)."""
    if purpose not in PURPOSES:
        raise _bad(f"statusPurpose must be one of {PURPOSES}, got {purpose!r}")
    return build_credential(
        issuer=issuer,
        id=list_credential,
        types=["BitstringStatusListCredential"],
        subject={
            "id": f"{list_credential}#list",
            "type": "BitstringStatusList",
            "statusPurpose": purpose,
            "encodedList": status_list.encode(),
        },
        **kwargs,
    )


#: Most digits of a ``statusListIndex`` (lists hold at most 2**20 entries).
_INDEX_DIGITS = 12


def status_entries(credential: Any) -> list[tuple[str, int, str | None]]:
    """``(list id, index, purpose)`` of each status a credential names: a VC 2.0 credential's
    ``BitstringStatusListEntry`` items (purpose as written), or an SD-JWT VC's ``status``
    claim (purpose None: its list's own). ``invalid_credential`` for an entry that names no
    list or no purpose, or whose index is not a decimal number of at most 12 ASCII digits.
    What verifiers check and issuers revoke by: the one reading of status entries."""
    from citychain.services.identity.sdk._sdjwt import _parse_jwt, _split, check_sd_jwt_status

    if isinstance(credential, str):
        jwt = _split(credential)[0]
        payload = _parse_jwt(jwt, "the issuer-signed JWT", ErrorCode.INVALID_CREDENTIAL)[1]
        if "status" not in payload:
            return []
        list_id, index = check_sd_jwt_status(payload["status"])
        return [(list_id, index, None)]
    if not isinstance(credential, Mapping):
        raise InvalidInput(
            "a credential is a JSON object or an SD-JWT", ErrorCode.INVALID_CREDENTIAL
        )
    raw = credential.get("credentialStatus")
    found: list[tuple[str, int, str | None]] = []
    for entry in raw if isinstance(raw, list) else [raw]:
        if not isinstance(entry, Mapping) or entry.get("type") != "BitstringStatusListEntry":
            continue
        position: Any = entry.get("statusListIndex")
        named: Any = entry.get("statusListCredential")
        if not isinstance(named, str):
            raise InvalidInput(
                "a BitstringStatusListEntry names its statusListCredential",
                ErrorCode.INVALID_CREDENTIAL,
            )
        if not (
            isinstance(position, str)
            and position.isascii()
            and position.isdigit()
            and len(position) <= _INDEX_DIGITS
        ):
            raise InvalidInput(
                f"statusListIndex {str(position)[:20]!r} is not an index",
                ErrorCode.INVALID_CREDENTIAL,
            )
        purpose = entry.get("statusPurpose")
        if not isinstance(purpose, str):
            raise InvalidInput(
                "a BitstringStatusListEntry names its statusPurpose",
                ErrorCode.INVALID_CREDENTIAL,
            )
        found.append((named, int(position), purpose))
    return found


def check_status(credential: Mapping[str, Any], list_credential: Mapping[str, Any]) -> None:
    """Refuse ``credential`` if its bit is set in ``list_credential`` (already verified by the
    caller): ``credential_revoked`` or ``credential_suspended``; ``invalid_credential`` if the
    entry and the list do not match (wrong list, wrong purpose, index out of range)."""
    url = list_credential.get("id")
    subject = list_credential.get("credentialSubject")
    if not isinstance(subject, Mapping):
        raise InvalidInput("not a status list credential", ErrorCode.INVALID_CREDENTIAL)
    status_list = StatusList.decode(subject.get("encodedList"))  # type: ignore[arg-type]
    matched = False
    for list_id, index, purpose in status_entries(credential):
        if list_id != url:
            continue
        if purpose != subject.get("statusPurpose"):
            raise InvalidInput(
                f"the entry's purpose {purpose!r} is not the list's", ErrorCode.INVALID_CREDENTIAL
            )
        if index >= status_list.size:
            raise InvalidInput(
                f"statusListIndex {index} is out of range", ErrorCode.INVALID_CREDENTIAL
            )
        matched = True
        if status_list.get(index):
            if purpose == "revocation":
                raise InvalidInput("the credential is revoked", ErrorCode.CREDENTIAL_REVOKED)
            raise InvalidInput("the credential is suspended", ErrorCode.CREDENTIAL_SUSPENDED)
    if not matched:
        raise InvalidInput(
            "the credential has no status entry in this list", ErrorCode.INVALID_CREDENTIAL
        )


class IndexAllocator:
    """A keyed pseudo-random permutation of ``[0, size)``: the n-th credential's index is
    ``index(n)``. See the module's docstring for why. ``key`` (at least 16 bytes) stays
    with the issuer; the counter ``n`` is the issuer's own (no two credentials share one)."""

    __slots__ = ("_half", "_key", "_mask", "size")
    ROUNDS = 4

    def __init__(self, key: bytes, size: int = MIN_STATUS_LIST_BITS) -> None:
        if not isinstance(key, bytes) or len(key) < 16:
            raise _bad("an index allocator key is at least 16 bytes")
        if type(size) is not int or size < 2:
            raise _bad(f"an index space has at least 2 entries, got {size!r}")
        bits = max(2, (size - 1).bit_length())
        bits += bits & 1  # an even number of bits, split into two halves
        self._key = key
        self._half = bits // 2
        self._mask = (1 << self._half) - 1
        self.size = size

    def _round(self, r: int, value: int) -> int:
        mac = hmac.new(self._key, bytes([r]) + value.to_bytes(8, "big"), hashlib.sha256)
        return int.from_bytes(mac.digest()[:8], "big") & self._mask

    def _permute(self, x: int) -> int:
        left, right = x >> self._half, x & self._mask
        for r in range(self.ROUNDS):
            left, right = right, left ^ self._round(r, right)
        return (left << self._half) | right

    def index(self, n: int) -> int:
        """The index of the ``n``-th credential (``0 <= n < size``), distinct for each ``n``."""
        if type(n) is not int or not 0 <= n < self.size:
            raise _bad(f"allocation number must be 0..{self.size - 1}, got {n!r}")
        x = self._permute(n)
        while x >= self.size:  # cycle-walk: stays a permutation of [0, size)
            x = self._permute(x)
        return x
