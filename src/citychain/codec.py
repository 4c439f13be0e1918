"""Canonical bytes: deterministic CBOR (RFC 8949 section 4.2) through cbor2.

Every value that is signed, hashed or stored in state goes through :func:`encode`, and every
such value read from outside goes through :func:`decode`, which refuses anything that is not
the *one* canonical encoding (re-encoding must give the same bytes). That closes malleability:
two different byte strings never decode to the same signed value.

Allowed values (the ``Value`` type): ``None``, ``bool``, ``int`` (any size), ``bytes``, ``str``,
lists/tuples of values, and dicts with ``str`` keys. Floats are refused: they are not
deterministic across platforms, and money is counted in integers. Maps with string keys sort
the same under cbor2's canonical order and RFC 8949 section 4.2.1 bytewise order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

import cbor2

from citychain.errors import DecodeError, ErrorCode

Value: TypeAlias = bool | int | bytes | str | Sequence["Value"] | Mapping[str, "Value"] | None

#: Nesting deeper than this is refused: it bounds recursion on hostile input.
MAX_DEPTH = 32

#: Data items one :func:`decode` takes (the top-level item and every array entry, map key and
#: map value; a bignum tag and its byte string count as one).
#: Canonical data needs far fewer: a block embeds its transactions as byte strings (one item
#: each; at most ``block_max_txs`` = 10,000 by default), a transaction of 64 KiB has fewer
#: than 65,536 items, a commit a few per validator. The limit caps the pre-scan's cost on the
#: largest messages (24 MiB of one-byte items) at a few tens of milliseconds.
MAX_ITEMS = 1 << 18

#: The only tags canonical data uses: 2 and 3, the bignums cbor2 writes for integers outside
#: 64 bits. Names of a few others, for the refusal message.
_BIGNUM_TAGS = frozenset({2, 3})
_TAG_NAMES = {
    0: "date/time string",
    1: "epoch date/time",
    25: "string reference",
    28: "shareable value",
    29: "shared reference",
    35: "regular expression",
    37: "UUID",
    256: "string-reference namespace",
    258: "set",
}


_SCALARS = frozenset({bool, int, bytes, str, type(None)})


def _check(value: Any, depth: int) -> None:
    # Hot path (every decoded transaction): exact-type set lookups first, isinstance only
    # for subclasses such as IntEnum/StrEnum.
    t = type(value)
    if t in _SCALARS:
        return
    if depth >= MAX_DEPTH and (t is dict or t is list or t is tuple) and value:
        # Its items would sit deeper than MAX_DEPTH.
        raise DecodeError(f"value nested deeper than {MAX_DEPTH} levels", ErrorCode.MALFORMED)
    if t is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise DecodeError(
                    f"map keys must be text strings, got {type(key).__name__}", ErrorCode.MALFORMED
                )
            if type(item) not in _SCALARS:
                _check(item, depth + 1)
        return
    if t is list or t is tuple:
        for item in value:
            if type(item) not in _SCALARS:
                _check(item, depth + 1)
        return
    if isinstance(value, (bool, int, bytes, str)):
        return
    if isinstance(value, float):
        raise DecodeError(
            "floats are not allowed in canonical data; use integers", ErrorCode.MALFORMED
        )
    if isinstance(value, dict):  # subclasses: check as the plain type
        _check(dict(value), depth)
        return
    if isinstance(value, (list, tuple)):
        _check(list(value), depth)
        return
    raise DecodeError(
        f"type {type(value).__name__} cannot be encoded canonically", ErrorCode.MALFORMED
    )


def check_value(value: Any) -> None:
    """Raise :class:`DecodeError` unless ``value`` is made only of allowed types."""
    _check(value, 0)


def encode(value: Any) -> bytes:
    """The canonical CBOR bytes of ``value``. Raises :class:`DecodeError` on disallowed types."""
    _check(value, 0)
    return encode_trusted(value)


def encode_trusted(value: Any) -> bytes:
    """Like :func:`encode` for values built by our own code from checked parts (hot paths)."""
    try:
        return cbor2.dumps(value, canonical=True)
    except UnicodeEncodeError:
        # A str with a lone surrogate (e.g. "\ud800" from JSON) has no UTF-8 form.
        raise DecodeError(
            "text strings must be valid Unicode (no lone surrogates)", ErrorCode.MALFORMED
        ) from None


def _refuse(message: str, code: ErrorCode = ErrorCode.MALFORMED) -> DecodeError:
    return DecodeError(message, code)


def _kind(major: int) -> str:
    return "array" if major == 4 else "map"


def scan(data: bytes, *, max_items: int = MAX_ITEMS) -> None:
    """Refuse, before anything is built, every construct canonical data never uses.

    A linear walk over the CBOR item heads of ``data`` (RFC 8949 section 3), without recursion
    and without creating any value: only major types 0-5, the bignum tags 2 and 3 (each on a
    byte string), and the simple values false, true and null; definite lengths only, in their
    shortest form; every length within the bytes that remain; at most :data:`MAX_DEPTH` levels
    and ``max_items`` items; nothing after the one top-level item. Raises
    :class:`DecodeError` naming the byte offset and the construct.

    Hand-written because cbor2 has no option to refuse tags before acting on them: its decoder
    resolves shared references (tags 28/29), string references (25/256), sets and the other
    semantic tags while it builds the object, so a ``tag_hook`` or a check of the result comes
    too late. A 135-byte transaction of shared references expands to 4**depth items, which the
    canonical check then walks and re-encodes (seconds of CPU). After this scan every length
    is bounded by the input, so cbor2's work and the re-encoding are linear in its size.
    """
    n = len(data)
    pos = 0
    items = 1  # the top-level item; each array/map adds its entries when it opens
    # Items still to read in each open array/map (a map's count is doubled: keys and values).
    stack = [1]
    while stack:
        if not stack[-1]:
            stack.pop()
            continue
        stack[-1] -= 1
        if pos >= n:
            raise _refuse(f"CBOR ends early at byte {pos} (an item is missing)")
        start = pos
        initial = data[pos]
        pos += 1
        # Fast paths (most items of real data): small integers, false/true/null, short strings.
        if initial < 0x18 or 0x20 <= initial < 0x38 or 0xF4 <= initial <= 0xF6:
            continue
        if 0x40 <= initial < 0x58 or 0x60 <= initial < 0x78:
            if pos + (initial & 0x1F) > n:
                raise _refuse(f"the string at byte {start} claims {initial & 0x1F} bytes; "
                              f"{n - pos} remain")  # fmt: skip
            pos += initial & 0x1F
            continue
        major = initial >> 5
        info = initial & 0x1F
        if major == 7:
            if 20 <= info <= 22:  # false, true, null
                continue
            if 25 <= info <= 27:
                what = "a float"
            elif info == 23:
                what = "undefined"
            elif info == 31:
                what = "a break (0xff) outside any indefinite-length item"
            else:
                what = "a simple value"
            raise _refuse(f"{what} at byte {start} is not used by canonical data")
        if info < 24:
            arg = info
        elif info < 28:
            size = 1 << (info - 24)
            if pos + size > n:
                raise _refuse(f"CBOR ends early at byte {n}, inside the head at byte {start}")
            arg = int.from_bytes(data[pos : pos + size], "big")
            pos += size
            if arg < (24 if size == 1 else 1 << (4 * size)):
                raise _refuse(
                    f"the head at byte {start} is not in its shortest form (RFC 8949 4.2.1)",
                    ErrorCode.NON_CANONICAL,
                )
        elif info == 31 and 2 <= major <= 5:
            raise _refuse(
                f"an indefinite length at byte {start}; canonical data uses definite lengths",
                ErrorCode.NON_CANONICAL,
            )
        else:
            raise _refuse(f"reserved additional information {info} at byte {start}")
        if major <= 1:
            continue
        left = n - pos
        if major <= 3:  # byte or text string
            if arg > left:
                raise _refuse(f"the string at byte {start} claims {arg} bytes; {left} remain")
            pos += arg
            continue
        if major == 6:
            if arg not in _BIGNUM_TAGS:
                name = _TAG_NAMES.get(arg)
                shown = f"tag {arg} ({name})" if name else f"tag {arg}"
                raise _refuse(f"{shown} at byte {start} is not used by canonical data")
            if pos >= n or data[pos] >> 5 != 2:
                raise _refuse(f"the bignum tag at byte {start} is not on a byte string")
            stack[-1] += 1  # the tagged byte string fills the same slot
            continue
        count = arg if major == 4 else 2 * arg  # every item takes at least one byte
        if count > left:
            raise _refuse(
                f"the {_kind(major)} at byte {start} claims {arg} entries; {left} bytes remain"
            )
        if count:
            items += count
            if items > max_items:
                raise _refuse(
                    f"more than {max_items} CBOR items (the {_kind(major)} at byte {start}); "
                    "the limit per message",
                    ErrorCode.TOO_LARGE,
                )
            if len(stack) > MAX_DEPTH:
                raise _refuse(f"value nested deeper than {MAX_DEPTH} levels (at byte {start})")
            stack.append(count)
    if pos != n:
        raise _refuse(
            f"{n - pos} bytes after the value (from byte {pos}); canonical data has none",
            ErrorCode.NON_CANONICAL,
        )


def decode(data: bytes, *, max_size: int | None = None, max_items: int = MAX_ITEMS) -> Any:
    """Decode canonical CBOR, refusing oversize, malformed and non-canonical input.

    Byte strings come back as ``bytes``, arrays as ``list`` and maps as ``dict``. The bytes
    are first :func:`scan`-ned, so no input costs more than time linear in its size.
    """
    if max_size is not None and len(data) > max_size:
        raise DecodeError(f"{len(data)} bytes exceeds the limit of {max_size}", ErrorCode.TOO_LARGE)
    scan(data, max_items=max_items)
    try:
        value = cbor2.loads(data)
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise DecodeError(f"not valid CBOR: {exc}", ErrorCode.MALFORMED) from None
    _check(value, 0)
    if cbor2.dumps(value, canonical=True) != data:
        raise DecodeError(
            "not the canonical encoding (RFC 8949 4.2: shortest forms, sorted map keys, "
            "definite lengths, no trailing bytes)",
            ErrorCode.NON_CANONICAL,
        )
    return value


def decode_trusted(data: bytes) -> Any:
    """Decode CBOR that this node wrote itself (its own state records) without re-checking
    canonical form (hot paths: the access checks of every transaction). Raises
    :class:`DecodeError` if the bytes are not CBOR at all."""
    try:
        return cbor2.loads(data)
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise DecodeError(f"not valid CBOR: {exc}", ErrorCode.MALFORMED) from None
