"""Canonical bytes: deterministic CBOR (RFC 8949 section 4.2) through cbor2.

Every value that is signed, hashed or stored in state goes through :func:`encode`, and every
such value read from outside goes through :func:`decode`, which refuses anything that is not
the *one* canonical encoding (what re-encoding would give back byte for byte; :func:`scan`
checks the rules themselves, without building anything). That closes malleability: two
different byte strings never decode to the same signed value.

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
    parts: list[bytes] = []
    try:
        _encode_into(parts, value, 0)
    except _Unusual:
        return _encode_cbor2(value)
    except UnicodeEncodeError:
        raise _lone_surrogate() from None
    return b"".join(parts)


def _encode_cbor2(value: Any) -> bytes:
    try:
        return cbor2.dumps(value, canonical=True)
    except UnicodeEncodeError:
        raise _lone_surrogate() from None


def _lone_surrogate() -> DecodeError:
    # A str with a lone surrogate (e.g. "\ud800" from JSON) has no UTF-8 form.
    return DecodeError(
        "text strings must be valid Unicode (no lone surrogates)", ErrorCode.MALFORMED
    )


class _Unusual(Exception):
    """A value :func:`_encode_into` leaves to cbor2: a subclass (IntEnum, StrEnum, ...), a
    type canonical data does not hold, or nesting deeper than :data:`MAX_DEPTH`."""


#: The one-byte heads (arguments 0-23) of each major type.
_SHORT_HEADS: tuple[tuple[bytes, ...], ...] = tuple(
    tuple(bytes((major << 5 | n,)) for n in range(24)) for major in range(8)
)
_TRUE, _FALSE, _NULL = b"\xf5", b"\xf4", b"\xf6"

#: Map keys' encodings: a few names recur in nearly every map ("from", "to", "amount").
#: Bounded: short keys only, and no more once full (a cache, so nothing depends on it).
_KEYS: dict[str, bytes] = {}
_KEYS_MAX = 4096


def _item_head(major: int, n: int) -> bytes:
    """A data item's head: ``major`` type and argument ``n``, in its shortest form."""
    if n < 24:
        return _SHORT_HEADS[major][n]
    mt = major << 5
    if n < 0x100:
        return ((mt | 24) << 8 | n).to_bytes(2, "big")
    if n < 0x10000:
        return ((mt | 25) << 16 | n).to_bytes(3, "big")
    if n < 0x100000000:
        return ((mt | 26) << 32 | n).to_bytes(5, "big")
    return ((mt | 27) << 64 | n).to_bytes(9, "big")


def _key(key: str) -> bytes:
    data = _KEYS.get(key)
    if data is None:
        raw = key.encode("utf-8")
        data = _item_head(3, len(raw)) + raw
        if len(raw) <= 64 and len(_KEYS) < _KEYS_MAX:
            _KEYS[key] = data
    return data


def _encode_into(parts: list[bytes], value: Any, depth: int) -> None:
    """Append the canonical bytes of ``value``, made only of the exact types canonical data
    holds, to ``parts``; anything else raises :class:`_Unusual`.

    Written by hand, not cbor2's: ``cbor2.dumps(..., canonical=True)`` sets up an encoder for
    every call and encodes each map key apart to sort it, ~1 µs for four scalars and ~3 µs
    for a transfer event's three attributes, and every transaction's execution encodes
    several values (its nonce, balances, event, receipt). This walk, compiled (``setup.py``),
    costs a fraction of that. cbor2 stays the reference: a property test holds the two equal
    byte for byte over generated values, and takes every value this walk does not."""
    t = type(value)
    if t is str:
        text: str = value
        data = text.encode("utf-8")
        parts.append(_item_head(3, len(data)))
        parts.append(data)
    elif t is bytes:
        raw: bytes = value
        parts.append(_item_head(2, len(raw)))
        parts.append(raw)
    elif t is int:
        n: int = value
        if n >= 0:
            parts.append(_int(0, n))
        else:
            parts.append(_int(1, -1 - n))
    elif t is bool:
        parts.append(_TRUE if value else _FALSE)
    elif value is None:
        parts.append(_NULL)
    elif t is list or t is tuple:
        if depth >= MAX_DEPTH:
            raise _Unusual
        parts.append(_item_head(4, len(value)))
        for item in value:
            _encode_into(parts, item, depth + 1)
    elif t is dict:
        if depth >= MAX_DEPTH:
            raise _Unusual
        mapping: dict[Any, Any] = value
        parts.append(_item_head(5, len(mapping)))
        # RFC 8949 section 4.2.1: keys in the bytewise order of their encodings.
        keys: list[bytes] = []
        by_key: dict[bytes, Any] = {}
        for key, item in mapping.items():
            if type(key) is not str:
                raise _Unusual
            encoded = _key(key)
            keys.append(encoded)
            by_key[encoded] = item
        keys.sort()
        for encoded in keys:
            parts.append(encoded)
            _encode_into(parts, by_key[encoded], depth + 1)
    else:
        raise _Unusual


def _int(major: int, n: int) -> bytes:
    """An unsigned (major 0) or negative (major 1, ``n`` = -1 - value) integer; outside 64
    bits the bignum tag 2 or 3 on its shortest big-endian bytes, as cbor2 writes it."""
    if n < 0x10000000000000000:
        return _item_head(major, n)
    data = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return (b"\xc2" if major == 0 else b"\xc3") + _item_head(2, len(data)) + data


def _refuse(message: str, code: ErrorCode = ErrorCode.MALFORMED) -> DecodeError:
    return DecodeError(message, code)


def _kind(major: int) -> str:
    return "array" if major == 4 else "map"


def scan(data: bytes, *, max_items: int = MAX_ITEMS) -> None:
    """Refuse, before anything is built, every construct and every encoding canonical data
    never uses.

    A linear walk over the CBOR item heads of ``data`` (RFC 8949 section 3), without recursion
    and without creating any value: only major types 0-5, the bignum tags 2 and 3 (each on a
    byte string of more than eight bytes with no leading zero: an integer outside 64 bits,
    as cbor2 writes it), and the simple values false, true and null; definite lengths only,
    in their shortest form; map keys that are text strings, each after the one before in
    RFC 8949 section 4.2.1 order (bytewise over their encodings, so no key twice); every
    length within the bytes that remain; at most :data:`MAX_DEPTH` levels and ``max_items``
    items; nothing after the one top-level item. Raises :class:`DecodeError` naming the byte
    offset and the construct.

    Data that passes is the canonical encoding of what cbor2 decodes it to (every rule of
    section 4.2.1 that can apply to the allowed types is checked here), so :func:`decode`
    needs no re-encoding to compare: ``tests/codec`` checks that the two agree on random and
    mutated input.

    Hand-written because cbor2 has no option to refuse tags before acting on them: its decoder
    resolves shared references (tags 28/29), string references (25/256), sets and the other
    semantic tags while it builds the object, so a ``tag_hook`` or a check of the result comes
    too late. A 135-byte transaction of shared references expands to 4**depth items. After
    this scan every length is bounded by the input, so cbor2's work is linear in its size.
    """
    n = len(data)
    pos = 0
    items = 1  # the top-level item; each array/map adds its entries when it opens
    # Items still to read in each open array/map (a map's count is doubled: keys and values).
    stack = [1]
    # Per open array/map: None for an array (and the top level), else the encoding of the
    # map's last key (b"" before its first, which every key sorts after).
    keys: list[bytes | None] = [None]
    while stack:
        if not stack[-1]:
            stack.pop()
            keys.pop()
            continue
        stack[-1] -= 1
        if pos >= n:
            raise _refuse(f"CBOR ends early at byte {pos} (an item is missing)")
        start = pos
        initial = data[pos]
        pos += 1
        last = keys[-1]
        if last is not None and stack[-1] & 1:  # a map key: its count left is odd
            if 0x60 <= initial < 0x78:  # a short text string, as nearly every key is
                if pos + (initial & 0x1F) > n:
                    raise _refuse(f"the string at byte {start} claims {initial & 0x1F} bytes; "
                                  f"{n - pos} remain")  # fmt: skip
                pos += initial & 0x1F
            else:
                pos = _key_end(data, start)
            key = data[start:pos]
            if key <= last:
                raise _unsorted(start, key == last)
            keys[-1] = key
            continue
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
        pos, arg = _head(data, start, major, info)
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
            after, size = _head(data, pos, 2, data[pos] & 0x1F)
            if size <= 8 or after >= n or data[after] == 0:
                raise _refuse(
                    f"the bignum at byte {start} is not in its shortest form: an integer "
                    "that fits 64 bits, or a leading zero byte (RFC 8949 4.2.1)",
                    ErrorCode.NON_CANONICAL,
                )
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
            keys.append(b"" if major == 5 else None)
    if pos != n:
        raise _refuse(
            f"{n - pos} bytes after the value (from byte {pos}); canonical data has none",
            ErrorCode.NON_CANONICAL,
        )


def _head(data: bytes, start: int, major: int, info: int) -> tuple[int, int]:
    """``(offset after the head, its argument)`` of the item head at ``start`` (``info``
    < 28 or refused): the argument in its shortest form, within the data, definite."""
    pos = start + 1
    if info < 24:
        return pos, info
    if info < 28:
        size = 1 << (info - 24)
        if pos + size > len(data):
            raise _refuse(f"CBOR ends early at byte {len(data)}, inside the head at byte {start}")
        arg = int.from_bytes(data[pos : pos + size], "big")
        if arg < (24 if size == 1 else 1 << (4 * size)):
            raise _refuse(
                f"the head at byte {start} is not in its shortest form (RFC 8949 4.2.1)",
                ErrorCode.NON_CANONICAL,
            )
        return pos + size, arg
    if info == 31 and 2 <= major <= 5:
        raise _refuse(
            f"an indefinite length at byte {start}; canonical data uses definite lengths",
            ErrorCode.NON_CANONICAL,
        )
    raise _refuse(f"reserved additional information {info} at byte {start}")


def _key_end(data: bytes, start: int) -> int:
    """The end of the map key at ``start``, which must be a text string."""
    initial = data[start]
    if initial >> 5 != 3:
        kind = _MAJOR_NAMES[initial >> 5] if initial < 0xE0 else "a simple value or float"
        raise _refuse(f"map keys must be text strings, got {kind} at byte {start}")
    pos, length = _head(data, start, 3, initial & 0x1F)
    if pos + length > len(data):
        raise _refuse(f"the string at byte {start} claims {length} bytes; {len(data) - pos} remain")
    return pos + length


def _unsorted(start: int, same: bool) -> DecodeError:
    """RFC 8949 4.2.1 orders a map's keys bytewise by their encodings (for text strings:
    shorter first, then by their bytes), each key once."""
    return _refuse(
        f"the map key at byte {start} is {'the same as' if same else 'not after'} the key "
        "before it: canonical maps sort their keys (RFC 8949 4.2.1) and hold each once",
        ErrorCode.NON_CANONICAL,
    )


_MAJOR_NAMES = (
    "an unsigned integer",
    "a negative integer",
    "a byte string",
    "a text string",
    "an array",
    "a map",
    "a tag",
)


def decode(data: bytes, *, max_size: int | None = None, max_items: int = MAX_ITEMS) -> Any:
    """Decode canonical CBOR, refusing oversize, malformed and non-canonical input.

    Byte strings come back as ``bytes``, arrays as ``list`` and maps as ``dict``. The bytes
    are first :func:`scan`-ned, which refuses anything but the canonical encoding of a value
    of the allowed types, so no input costs more than time linear in its size and cbor2 only
    builds the value (once checked by re-encoding it: the scan made that redundant, and it
    was a third of a transaction's decoding).
    """
    if max_size is not None and len(data) > max_size:
        raise DecodeError(f"{len(data)} bytes exceeds the limit of {max_size}", ErrorCode.TOO_LARGE)
    scan(data, max_items=max_items)
    try:
        return cbor2.loads(data)
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise DecodeError(f"not valid CBOR: {exc}", ErrorCode.MALFORMED) from None


def decode_trusted(data: bytes) -> Any:
    """Decode CBOR that this node wrote itself (its own state records) without re-checking
    canonical form (hot paths: the access checks of every transaction). Raises
    :class:`DecodeError` if the bytes are not CBOR at all."""
    try:
        return cbor2.loads(data)
    except (cbor2.CBORDecodeError, ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise DecodeError(f"not valid CBOR: {exc}", ErrorCode.MALFORMED) from None
