"""A status list as an IETF Token Status List byte array (draft-ietf-oauth-status-list),
the form SD-JWT VC verifiers read.

Theory of operation
-------------------
A citychain status list is a Bitstring Status List: one bit an entry, entry 0 the *high*
bit of byte 0, one purpose for the whole list. A Token Status List packs ``bits`` (1, 2, 4
or 8) an entry from the *low* bits of each byte up, and gives each value its own meaning
(``0x00`` VALID, ``0x01`` INVALID, ``0x02`` SUSPENDED). One chain list therefore has exactly
one token array:

==========  ====  =========================  ==============
purpose     bits  an entry set on chain      an entry clear
==========  ====  =========================  ==============
revocation  1     ``0x01`` INVALID           ``0x00`` VALID
suspension  2     ``0x02`` SUSPENDED         ``0x00`` VALID
==========  ====  =========================  ==============

(SUSPENDED does not fit in one bit, so a suspension list takes two, as the draft's own
example does.) Both directions are byte-table lookups (``bytes.translate``) and slices, never
a loop over entries: the chain converts a list of 2**20 entries inside a block when it checks
a published token, in about a millisecond. Going back from a token array to the chain's bits
refuses a value the list cannot hold (a ``0x01`` in a suspension list, ``0x02`` anywhere in
a revocation list's single bits cannot occur), naming the first such entry.

``lst`` is the array compressed with DEFLATE in the ZLIB format, in base64url without
padding. Only inflating is done by the chain (deterministic); compressing is the issuer's.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

from citychain.services.identity.shapes._jose import b64url, unb64url

#: Bits an entry and the value of a set entry, by a chain list's purpose (see the module).
TOKEN_STATUS_BITS = {"revocation": 1, "suspension": 2}
TOKEN_STATUS_VALUE = {"revocation": 0x01, "suspension": 0x02}
#: The Status Types the draft registers, by value.
TOKEN_STATUS_NAMES = {0x00: "VALID", 0x01: "INVALID", 0x02: "SUSPENDED"}
#: The JWT ``typ`` and media type of a Status List Token in JWT format (draft §8.1).
STATUS_LIST_JWT = "statuslist+jwt"
STATUS_LIST_JWT_MEDIA = "application/statuslist+jwt"


def _table(f: Callable[[int], int]) -> bytes:
    return bytes(f(b) for b in range(256))


def _reverse(b: int) -> int:
    return int(f"{b:08b}"[::-1], 2)


def _pairs(nibble: int) -> int:
    """Four 1-bit entries (the high bit first) as four 2-bit SUSPENDED/VALID values, entry 0
    in the low pair."""
    return sum(0b10 << (2 * k) for k in range(4) if nibble & (0x8 >> k))


def _unpairs(byte: int) -> int:
    """The inverse of :func:`_pairs` on a byte whose pairs are each 0b00 or 0b10."""
    return sum(0x8 >> k for k in range(4) if byte & (0b10 << (2 * k)))


_REVERSE = _table(_reverse)
_HIGH_PAIRS = _table(lambda b: _pairs(b >> 4))
_LOW_PAIRS = _table(lambda b: _pairs(b & 0xF))
_UNPAIR_HIGH = _table(lambda b: _unpairs(b) << 4)
_UNPAIR_LOW = _table(_unpairs)
#: 1 for a byte holding a pair other than 0b00 and 0b10 (a value a suspension list lacks).
_NOT_SUSPENSION = _table(lambda b: 1 if b & 0x55 else 0)


def token_status_array(bitstring: bytes, purpose: str) -> bytes:
    """The Token Status List byte array of a chain list's ``bitstring`` (see the module)."""
    bits = TOKEN_STATUS_BITS[purpose]
    if bits == 1:
        return bitstring.translate(_REVERSE)
    out = bytearray(2 * len(bitstring))
    out[0::2] = bitstring.translate(_HIGH_PAIRS)
    out[1::2] = bitstring.translate(_LOW_PAIRS)
    return bytes(out)


def token_status_bitstring(array: bytes, purpose: str) -> bytes:
    """The chain's bitstring of a token array of a ``purpose`` list; ``ValueError`` naming the
    first entry whose value such a list cannot hold."""
    if TOKEN_STATUS_BITS[purpose] == 1:
        return array.translate(_REVERSE)
    if len(array) % 2:
        raise ValueError("not whole bytes of entries (a 2-bit array of 8-entry chain bytes)")
    bad_byte = array.translate(_NOT_SUSPENSION).find(1)  # C speed: the chain runs this
    if bad_byte >= 0:
        first, value = next(
            (i, v)
            for i in range(bad_byte * 4, bad_byte * 4 + 4)
            if (v := token_status_value(array, 2, i)) not in (0, 2)
        )
        raise ValueError(
            f"not a suspension list's: entry {first} holds status 0x{value:02x} "
            f"({TOKEN_STATUS_NAMES.get(value, 'application-specific')}): a suspension list's "
            "entries are VALID (0x00) or SUSPENDED (0x02)"
        )
    high = int.from_bytes(array[0::2].translate(_UNPAIR_HIGH), "big")
    low = int.from_bytes(array[1::2].translate(_UNPAIR_LOW), "big")
    return (high | low).to_bytes(len(array) // 2, "big")


def token_status_value(array: bytes, bits: int, index: int) -> int:
    """The status of entry ``index`` in a token array of ``bits`` an entry (draft §4.1: the
    blocks fill each byte from its least significant bit)."""
    per_byte = 8 // bits
    shift = (index % per_byte) * bits
    return (array[index // per_byte] >> shift) & ((1 << bits) - 1)


def token_list_bytes(lst: object, max_bytes: int) -> bytes:
    """The byte array a ``status_list.lst`` holds: base64url without padding of one ZLIB
    stream, inflated to at most ``max_bytes`` (a longer one is refused before it is inflated
    further). ``ValueError`` saying what is wrong. Deterministic: the chain checks published
    tokens with it."""
    return inflate_bounded(unb64url(lst), "ZLIB", max_bytes)


#: zlib's ``wbits`` for each container of DEFLATE data.
_WBITS = {"ZLIB": 15, "GZIP": 31}


def inflate_bounded(packed: bytes, container: str, max_bytes: int) -> bytes:
    """One whole ``container`` ("ZLIB", RFC 1950, or "GZIP", one member) of ``packed``,
    inflated to at most ``max_bytes``: a longer one is refused before it is inflated further
    (a few KiB can inflate to gigabytes). ``ValueError`` saying what is wrong."""
    try:
        inflate = zlib.decompressobj(wbits=_WBITS[container])
        data = inflate.decompress(packed, max_bytes + 1)
    except zlib.error as exc:
        raise ValueError(f"not {container} data ({exc})") from None
    if len(data) > max_bytes:
        raise ValueError(f"longer than {max_bytes} bytes")
    if not inflate.eof or inflate.unused_data:
        raise ValueError(f"not one whole {container} stream")
    return data


def token_list_lst(array: bytes) -> str:
    """``lst`` for a token array: ZLIB at the highest level (draft §4.1 recommends it), in
    base64url without padding. The issuer's side only: never computed by the chain."""
    return b64url(zlib.compress(array, 9))
