"""Canonical CBOR: one encoding per value, and nothing else decodes.

Non-canonical inputs are built by hand from the CBOR grammar (RFC 8949 section 3) so the tests
do not depend on what cbor2 happens to emit in non-canonical mode.
"""

from __future__ import annotations

import enum
import os
import struct
from typing import Any

import cbor2
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from citychain import codec
from citychain.errors import DecodeError, ErrorCode

BOUNDARY_INTS = [
    0, 1, 23, 24, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**64 - 1, 2**64, 2**100,
    -1, -24, -25, -256, -257, -(2**32), -(2**64), -(2**64) - 1, -(2**100),
]  # fmt: skip

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**130), max_value=2**130)
    | st.sampled_from(BOUNDARY_INTS)
    | st.binary(max_size=40)
    | st.text(max_size=20)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=25,
)
#: The run on the sources (tests/test_compiled.py, ``CITYCHAIN_PURE=1``) checks the same
#: properties with a tenth of the examples, most of whose time is Hypothesis drawing them:
#: the compiled codec, which an install runs, gets every example.
_SHARE = 10 if os.environ.get("CITYCHAIN_PURE") == "1" else 1


def examples(n: int) -> settings:
    return settings(max_examples=max(20, n // _SHARE), deadline=None)


small = examples(300)


def norm(v: Any) -> Any:
    """What decoding gives back: tuples become lists."""
    if isinstance(v, (list, tuple)):
        return [norm(x) for x in v]
    if isinstance(v, dict):
        return {k: norm(x) for k, x in v.items()}
    return v


def same(a: Any, b: Any) -> bool:
    """Equality that also tells bool from int (True == 1 in Python, not in CBOR)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


def head(major: int, n: int, width: int | None = None) -> bytes:
    """A CBOR initial byte plus argument; ``width`` forces a (possibly too long) size."""
    if width is None:
        width = 0 if n < 24 else 1 if n < 2**8 else 2 if n < 2**16 else 4 if n < 2**32 else 8
    if width == 0:
        return bytes([major << 5 | n])
    info = {1: 24, 2: 25, 4: 26, 8: 27}[width]
    return bytes([major << 5 | info]) + n.to_bytes(width, "big")


def refused(data: bytes, *codes: ErrorCode) -> DecodeError:
    with pytest.raises(DecodeError) as info:
        codec.decode(data)
    assert info.value.code in codes, info.value
    return info.value


# -- round trip and uniqueness --------------------------------------------------------------
@small
@given(values)
def test_decode_inverts_encode(v: Any) -> None:
    data = codec.encode(v)
    assert same(codec.decode(data), norm(v))
    assert codec.encode(codec.decode(data)) == data


# -- the hand-written encoder against cbor2 ---------------------------------------------------
class _Level(enum.IntEnum):
    LOW = 1
    HIGH = 300


class _Word(enum.StrEnum):
    OK = "ok"


class _Map(dict[str, Any]):
    pass


@examples(600)
@given(values)
def test_encoder_writes_what_cbor2_writes(v: Any) -> None:
    # codec.encode_trusted walks values itself (cheaper than cbor2's encoder, see its
    # docstring); cbor2's canonical output is the reference, byte for byte.
    assert codec.encode_trusted(v) == cbor2.dumps(v, canonical=True)
    assert codec.encode(v) == cbor2.dumps(v, canonical=True)


@pytest.mark.parametrize(
    "value",
    [
        _Level.HIGH,
        [_Word.OK, {"k": _Level.LOW}],
        _Map(b=1, a=[2]),
        {"ünï": 1, "z": 2, "€": 3, "": 4},
        [2**64 - 1, 2**64, -(2**64), -(2**64) - 1, 2**200, -(2**200)],
        "x" * 70_000,
        b"y" * 300,
        list(range(70_000)),
    ],
)
def test_encoder_leaves_nothing_to_chance(value: Any) -> None:
    # Subclasses and long lengths: handed to cbor2 or encoded alike.
    assert codec.encode(value) == cbor2.dumps(value, canonical=True)


def test_encoder_nesting_beyond_the_limit_still_encodes_as_cbor2() -> None:
    v: Any = 0
    for _ in range(codec.MAX_DEPTH + 5):
        v = [v]
    assert codec.encode_trusted(v) == cbor2.dumps(v, canonical=True)


def test_encoder_refuses_a_lone_surrogate_in_a_map_key() -> None:
    with pytest.raises(DecodeError, match="lone surrogates"):
        codec.encode_trusted({"\ud800": 1})


@small
@given(st.dictionaries(st.text(max_size=6), values, min_size=2, max_size=6), st.data())
def test_dict_insertion_order_does_not_change_bytes(d: dict[str, Any], data: st.DataObject) -> None:
    shuffled = dict(data.draw(st.permutations(list(d.items()))))
    assert codec.encode(shuffled) == codec.encode(d)


@small
@given(values, values)
def test_different_values_have_different_bytes(a: Any, b: Any) -> None:
    assert (codec.encode(a) == codec.encode(b)) == same(norm(a), norm(b))


@pytest.mark.parametrize(
    ("a", "b"),
    [(1, True), (0, False), (b"", ""), ([], {}), (None, False), ("1", 1), (b"a", "a"), ([1], 1)],
)
def test_values_python_confuses_have_different_bytes(a: Any, b: Any) -> None:
    assert codec.encode(a) != codec.encode(b)
    assert same(codec.decode(codec.encode(a)), a)


def test_map_keys_sort_bytewise_by_encoding() -> None:
    # RFC 8949 4.2.1: shorter keys first (their length is in the head), then bytewise.
    data = codec.encode({"bb": 1, "a": 2, "c": 3, "aa": 4})
    assert list(cbor2.loads(data)) == ["a", "c", "aa", "bb"]


def test_nesting_limit() -> None:
    def nest(n: int) -> Any:
        v: Any = 0
        for _ in range(n):
            v = [v]
        return v

    assert codec.decode(codec.encode(nest(codec.MAX_DEPTH))) == nest(codec.MAX_DEPTH)
    with pytest.raises(DecodeError, match="deeper") as info:
        codec.encode(nest(codec.MAX_DEPTH + 1))
    assert info.value.code == ErrorCode.MALFORMED
    refused(b"\x81" * (codec.MAX_DEPTH + 1) + b"\x00", ErrorCode.MALFORMED)
    refused(b"\x81" * 100_000 + b"\x00", ErrorCode.MALFORMED)


# -- values outside the grammar -------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "match"),
    [
        (1.5, "floats"),
        ([1, {"x": 0.0}], "floats"),
        ({1: "a"}, "map keys must be text strings, got int"),
        ({b"k": "a"}, "map keys must be text strings, got bytes"),
        ({"a": {(1, 2): 3}}, "map keys must be text strings, got tuple"),
        ({1, 2}, "type set"),
        (frozenset(), "type frozenset"),
        (bytearray(b"x"), "type bytearray"),
        (object(), "type object"),
        ("\ud800", "lone surrogates"),
        ({"k": ["ok", "\udfff"]}, "lone surrogates"),
    ],
)
def test_encode_refuses_values_outside_the_grammar(value: Any, match: str) -> None:
    with pytest.raises(DecodeError, match=match) as info:
        codec.encode(value)
    assert info.value.code == ErrorCode.MALFORMED


@pytest.mark.parametrize(
    "data",
    [
        cbor2.dumps(1.5),
        cbor2.dumps([1, 0.0]),
        struct.pack(">Be", 0xF9, 1.0),  # half-precision float
        cbor2.dumps({1: "a"}, canonical=True),
        cbor2.dumps({b"k": 1}, canonical=True),
        cbor2.dumps({1, 2}, canonical=True),  # tag 258
        b"\xf7",  # undefined
        b"\xe0",  # simple value 0
        b"\xc1\x1a\x51\x4b\x67\xb0",  # tag 1: a datetime
        b"\xd8\x25\x50" + bytes(16),  # tag 37: a UUID
        b"\xd8\x1c\x81\xd8\x1d\x00",  # shared reference to itself (a cycle)
    ],
)
def test_decode_refuses_types_outside_the_grammar(data: bytes) -> None:
    refused(data, ErrorCode.MALFORMED)


# -- non-canonical encodings ----------------------------------------------------------------
@small
@given(st.integers(min_value=0, max_value=2**64 - 1), st.sampled_from([1, 2, 4, 8]))
def test_non_shortest_integers_are_refused(n: int, width: int) -> None:
    assume(width > (0 if n < 24 else 1 if n < 2**8 else 2 if n < 2**16 else 4 if n < 2**32 else 8))
    assert cbor2.loads(head(0, n, width)) == n
    refused(head(0, n, width), ErrorCode.NON_CANONICAL)
    refused(head(1, n, width), ErrorCode.NON_CANONICAL)  # negative integers
    refused(head(2, 0, width), ErrorCode.NON_CANONICAL)  # an empty byte string


@small
@given(st.binary(max_size=30), st.text(max_size=30), st.sampled_from([1, 2, 4, 8]))
def test_non_shortest_lengths_are_refused(b: bytes, t: str, width: int) -> None:
    raw = t.encode()
    assume(width > (0 if len(b) < 24 else 1))
    refused(head(2, len(b), width) + b, ErrorCode.NON_CANONICAL)
    assume(width > (0 if len(raw) < 24 else 1))
    refused(head(3, len(raw), width) + raw, ErrorCode.NON_CANONICAL)


@small
@given(st.lists(values, max_size=4), st.dictionaries(st.text(max_size=5), values, max_size=4))
def test_indefinite_lengths_are_refused(items: list[Any], d: dict[str, Any]) -> None:
    array = b"\x9f" + b"".join(codec.encode(x) for x in items) + b"\xff"
    refused(array, ErrorCode.NON_CANONICAL)
    body = b"".join(codec.encode(k) + codec.encode(v) for k, v in sorted(d.items()))
    refused(b"\xbf" + body + b"\xff", ErrorCode.NON_CANONICAL)
    refused(b"\x5f" + codec.encode(b"ab") + codec.encode(b"c") + b"\xff", ErrorCode.NON_CANONICAL)
    refused(b"\x7f" + codec.encode("ab") + codec.encode("c") + b"\xff", ErrorCode.NON_CANONICAL)


@small
@given(st.dictionaries(st.text(max_size=6), values, min_size=2, max_size=6), st.data())
def test_unsorted_map_keys_are_refused(d: dict[str, Any], data: st.DataObject) -> None:
    canonical = codec.encode(d)
    order = data.draw(st.permutations(list(d)))
    manual = head(5, len(d)) + b"".join(codec.encode(k) + codec.encode(d[k]) for k in order)
    if manual == canonical:
        return  # drew the canonical order
    refused(manual, ErrorCode.NON_CANONICAL)
    # cbor2's own non-canonical output (insertion order) is refused the same way.
    reordered = {k: d[k] for k in order}
    if cbor2.dumps(reordered) != canonical:
        refused(cbor2.dumps(reordered), ErrorCode.NON_CANONICAL)


def test_duplicate_map_keys_are_refused() -> None:
    refused(head(5, 2) + b"\x61a\x01\x61a\x02", ErrorCode.NON_CANONICAL, ErrorCode.MALFORMED)


@small
@given(values, st.binary(min_size=1, max_size=8))
def test_trailing_bytes_are_refused(v: Any, extra: bytes) -> None:
    refused(codec.encode(v) + extra, ErrorCode.NON_CANONICAL, ErrorCode.MALFORMED)


@small
@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_small_bignums_are_refused(n: int) -> None:
    # Tag 2 (unsigned bignum) for a value that fits a plain integer.
    payload = n.to_bytes(8, "big")
    refused(b"\xc2" + head(2, 8) + payload, ErrorCode.NON_CANONICAL)


@small
@given(values)
def test_non_canonical_inside_a_container_is_refused(v: Any) -> None:
    inner = b"\x9f" + codec.encode(v) + b"\xff"  # an indefinite array holding v
    refused(head(4, 2) + codec.encode(1) + inner, ErrorCode.NON_CANONICAL)
    refused(head(5, 1) + codec.encode("k") + inner, ErrorCode.NON_CANONICAL)


# -- size and garbage -----------------------------------------------------------------------
@small
@given(values)
def test_oversize_is_refused_before_parsing(v: Any) -> None:
    data = codec.encode(v)
    assert same(codec.decode(data, max_size=len(data)), norm(v))
    with pytest.raises(DecodeError, match=f"{len(data)} bytes exceeds the limit") as info:
        codec.decode(data, max_size=len(data) - 1)
    assert info.value.code == ErrorCode.TOO_LARGE
    with pytest.raises(DecodeError) as info:
        codec.decode(data + b"\xff" * 10, max_size=len(data))  # garbage, but too large first
    assert info.value.code == ErrorCode.TOO_LARGE


def _decodes_only_canonically(data: bytes) -> None:
    try:
        value = codec.decode(data)
    except DecodeError as exc:
        assert exc.code in (ErrorCode.MALFORMED, ErrorCode.NON_CANONICAL)
        return
    assert codec.encode(value) == data


@examples(1500)
@given(st.binary(max_size=64))
def test_garbage_raises_only_decode_error(data: bytes) -> None:
    _decodes_only_canonically(data)


@examples(500)
@given(values, st.data())
def test_corrupted_encodings_raise_only_decode_error(v: Any, data: st.DataObject) -> None:
    raw = bytearray(codec.encode(v))
    i = data.draw(st.integers(0, len(raw) - 1))
    how = data.draw(st.sampled_from(["flip", "truncate", "insert"]))
    if how == "flip":
        raw[i] ^= data.draw(st.integers(1, 255))
    elif how == "truncate":
        del raw[i:]
    else:
        raw.insert(i, data.draw(st.integers(0, 255)))
    _decodes_only_canonically(bytes(raw))


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff",
        b"\x1c",  # reserved additional information
        b"\x5b" + (2**63).to_bytes(8, "big"),  # a byte string claiming 2**63 bytes
        b"\x9b" + (2**63).to_bytes(8, "big"),  # an array claiming 2**63 items
        b"\x62\xff\xfe",  # text that is not UTF-8
        b"\xc1\x1b" + (2**63).to_bytes(8, "big"),  # an impossible datetime
        b"\xd8\x23\x63(a(",  # tag 35: a regular expression that does not compile
    ],
)
def test_hostile_inputs_are_malformed(data: bytes) -> None:
    refused(data, ErrorCode.MALFORMED)


def test_check_value_matches_encode() -> None:
    codec.check_value({"a": [1, b"x", None, True]})
    with pytest.raises(DecodeError):
        codec.check_value({"a": [1.0]})


# -- the scan alone decides: it agrees with decoding and re-encoding ---------------------------
def _by_reencoding(data: bytes) -> bool:
    """The definition the scan implements (what ``decode`` checked until it relied on the
    scan): cbor2 decodes ``data`` to a value of the allowed types whose canonical encoding is
    ``data`` itself. Safe here only because the inputs are small."""
    try:
        value = cbor2.loads(data)
        codec.check_value(value)
        return bool(cbor2.dumps(value, canonical=True) == data)
    except (cbor2.CBORDecodeError, DecodeError, ValueError, TypeError, OverflowError):
        return False
    except RecursionError:  # a self-referencing structure: never canonical
        return False


def _accepted(data: bytes) -> bool:
    try:
        codec.decode(data)
    except DecodeError:
        return False
    return True


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    """A canonical encoding with one byte changed, inserted or deleted, or two maps' keys
    swapped: mostly near-misses of canonical data."""
    data = bytearray(codec.encode(draw(values)))
    how = draw(st.sampled_from(["set", "insert", "delete", "swap"]))
    at = draw(st.integers(min_value=0, max_value=len(data)))
    if how == "set" and at < len(data):
        data[at] = draw(st.integers(min_value=0, max_value=255))
    elif how == "insert":
        data.insert(at, draw(st.integers(min_value=0, max_value=255)))
    elif how == "delete" and at < len(data):
        del data[at]
    elif how == "swap" and len(data) > 1:
        j = draw(st.integers(min_value=0, max_value=len(data) - 1))
        data[at % len(data)], data[j] = data[j], data[at % len(data)]
    return bytes(data)


@st.composite
def _hand_made(draw: st.DrawFn) -> bytes:
    """A map with its entries in a drawn order (a key may come twice), or a bignum tag on
    drawn bytes: what canonical data must get exactly right."""
    if draw(st.booleans()):
        keys = draw(st.lists(st.text(max_size=4), min_size=1, max_size=4))
        return head(5, len(keys)) + b"".join(codec.encode(k) + b"\x00" for k in keys)
    tag = draw(st.sampled_from([b"\xc2", b"\xc3"]))
    raw = draw(st.binary(max_size=12))
    return tag + head(2, len(raw)) + raw


@examples(1500)
@given(st.one_of(_mutated(), _hand_made(), st.binary(max_size=48)))
def test_decode_accepts_exactly_what_re_encodes_to_itself(data: bytes) -> None:
    assert _accepted(data) == _by_reencoding(data), data.hex()
    if _accepted(data):
        assert same(codec.decode(data), cbor2.loads(data))
