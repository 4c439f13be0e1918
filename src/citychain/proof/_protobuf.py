"""A minimal protobuf wire codec: just enough for the ICS-23 messages.

Why hand-written: ICS-23 needs six small messages (CommitmentProof, ExistenceProof,
NonExistenceProof, LeafOp, InnerOp, ProofSpec/InnerSpec), all made of varints, byte strings,
nested messages and one packed ``repeated int32``. Generating them with ``protoc`` would add a
build step and the ``protobuf`` runtime (several MB, C extension) to the light SDK, which must
install with nothing but pure-Python dependencies. The wire format for these types fits in
this file, and a hand-written decoder can be strict about hostile input in ways the generic
runtime is not (see below).

Wire format (https://protobuf.dev/programming-guides/encoding/): a message is a sequence of
``tag value`` records, ``tag = field_number << 3 | wire_type``, with wire types

* 0 VARINT: base-128 little-endian, at most 10 bytes, at most 64 bits;
* 1 I64 and 5 I32: fixed 8 and 4 bytes (not used by ICS-23; parsed only to be skipped);
* 2 LEN: a varint length, then that many bytes (bytes, strings, nested messages, packed
  repeated scalars);
* 3 and 4 (groups) are deprecated and refused.

Decoding rules here (a message decoder built on :func:`iter_fields` applies them):

* every failure is a :class:`~citychain.errors.DecodeError` with a message naming what is
  wrong and where; never an ``IndexError`` or ``ValueError``;
* unknown field numbers are skipped, as protobuf requires for forward compatibility;
* a known field with the wrong wire type is refused;
* lengths never reach past the end of the buffer, so memory stays bounded by the input.

Encoding writes fields in ascending field-number order, omits proto3 default values (0 and
empty bytes), writes present sub-messages even when empty, and packs repeated ``int32``. That
is what Go (gogoproto) and Rust (prost) emit, so re-encoding a proof they produced gives the
same bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from citychain.errors import DecodeError, ErrorCode

VARINT = 0
I64 = 1
LEN = 2
I32 = 5

_WIRE_NAMES = {VARINT: "varint", I64: "fixed64", LEN: "length-delimited", I32: "fixed32"}

_MAX_FIELD_NUMBER = (1 << 29) - 1
_U64 = 1 << 64
INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1


def encode_varint(value: int) -> bytes:
    """Base-128 varint of a non-negative integer below 2**64."""
    if not 0 <= value < _U64:
        raise ValueError(f"varint out of range: {value}")
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def read_varint(data: bytes, pos: int, what: str = "varint") -> tuple[int, int]:
    """Read a varint at ``pos``; return ``(value, next_pos)``. Refuses truncation and overflow."""
    result = 0
    shift = 0
    end = len(data)
    for i in range(10):
        if pos >= end:
            raise DecodeError(f"truncated {what}", ErrorCode.MALFORMED)
        byte = data[pos]
        pos += 1
        if i == 9 and byte > 1:
            raise DecodeError(f"{what} does not fit in 64 bits", ErrorCode.MALFORMED)
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
    raise DecodeError(f"{what} longer than 10 bytes", ErrorCode.MALFORMED)


@dataclass(frozen=True, slots=True)
class Field:
    """One decoded ``tag value`` record."""

    number: int
    wire_type: int
    int_value: int = 0
    bytes_value: bytes = b""

    def _expect(self, wire_type: int, name: str) -> None:
        if self.wire_type != wire_type:
            raise DecodeError(
                f"{name} (field {self.number}) must be {_WIRE_NAMES[wire_type]}, "
                f"got {_WIRE_NAMES.get(self.wire_type, str(self.wire_type))}",
                ErrorCode.MALFORMED,
            )

    def as_uint64(self, name: str) -> int:
        self._expect(VARINT, name)
        return self.int_value

    def as_int32(self, name: str) -> int:
        """An ``int32``: negative values arrive sign-extended to 64 bits (10-byte varints)."""
        self._expect(VARINT, name)
        value = self.int_value
        if value >= 1 << 63:
            value -= _U64
        if not INT32_MIN <= value <= INT32_MAX:
            raise DecodeError(f"{name} out of int32 range: {value}", ErrorCode.MALFORMED)
        return value

    def as_bool(self, name: str) -> bool:
        return self.as_uint64(name) != 0

    def as_bytes(self, name: str) -> bytes:
        self._expect(LEN, name)
        return self.bytes_value

    def as_packed_int32(self, name: str, max_count: int) -> list[int]:
        """A ``repeated int32``: accepts the packed form and a single unpacked element."""
        if self.wire_type == VARINT:
            return [self.as_int32(name)]
        data = self.as_bytes(name)
        out: list[int] = []
        pos = 0
        while pos < len(data):
            raw, pos = read_varint(data, pos, name)
            out.append(Field(self.number, VARINT, raw).as_int32(name))
            if len(out) > max_count:
                raise DecodeError(f"{name} has more than {max_count} elements", ErrorCode.TOO_LARGE)
        return out


def iter_fields(data: bytes) -> Iterator[Field]:
    """The records of one message, in wire order. Raises :class:`DecodeError` on bad bytes."""
    pos = 0
    end = len(data)
    while pos < end:
        key, pos = read_varint(data, pos, "field tag")
        number = key >> 3
        wire_type = key & 7
        if not 1 <= number <= _MAX_FIELD_NUMBER:
            raise DecodeError(f"invalid field number {number}", ErrorCode.MALFORMED)
        if wire_type == VARINT:
            value, pos = read_varint(data, pos, f"varint field {number}")
            yield Field(number, wire_type, int_value=value)
        elif wire_type == LEN:
            length, pos = read_varint(data, pos, f"length of field {number}")
            if length > end - pos:
                raise DecodeError(
                    f"field {number} claims {length} bytes but only {end - pos} remain",
                    ErrorCode.MALFORMED,
                )
            yield Field(number, wire_type, bytes_value=data[pos : pos + length])
            pos += length
        elif wire_type in (I64, I32):
            size = 8 if wire_type == I64 else 4
            if size > end - pos:
                raise DecodeError(f"truncated fixed-size field {number}", ErrorCode.MALFORMED)
            yield Field(
                number, wire_type, int_value=int.from_bytes(data[pos : pos + size], "little")
            )
            pos += size
        elif wire_type in (3, 4):
            raise DecodeError(
                f"field {number} uses protobuf groups, which are not supported",
                ErrorCode.MALFORMED,
            )
        else:
            raise DecodeError(
                f"field {number} has invalid wire type {wire_type}", ErrorCode.MALFORMED
            )


class Writer:
    """Appends fields to a message. Call in ascending field-number order."""

    __slots__ = ("_out",)

    def __init__(self) -> None:
        self._out = bytearray()

    def _tag(self, number: int, wire_type: int) -> None:
        self._out += encode_varint(number << 3 | wire_type)

    def uint64_field(self, number: int, value: int) -> None:
        """A varint field; omitted when 0 (the proto3 default)."""
        if value:
            self._tag(number, VARINT)
            self._out += encode_varint(value)

    def int32_field(self, number: int, value: int) -> None:
        """An ``int32`` field; negative values are sign-extended to 64 bits like protobuf does."""
        if not INT32_MIN <= value <= INT32_MAX:
            raise ValueError(f"int32 out of range: {value}")
        self.uint64_field(number, value % _U64)

    def bool_field(self, number: int, value: bool) -> None:
        self.uint64_field(number, 1 if value else 0)

    def bytes_field(self, number: int, value: bytes) -> None:
        """A bytes field; omitted when empty (the proto3 default)."""
        if value:
            self.message_field(number, value)

    def message_field(self, number: int, encoded: bytes) -> None:
        """A present sub-message: written even when its encoding is empty."""
        self._tag(number, LEN)
        self._out += encode_varint(len(encoded))
        self._out += encoded

    def packed_int32_field(self, number: int, values: tuple[int, ...] | list[int]) -> None:
        if not values:
            return
        body = bytearray()
        for v in values:
            if not INT32_MIN <= v <= INT32_MAX:
                raise ValueError(f"int32 out of range: {v}")
            body += encode_varint(v % _U64)
        self.message_field(number, bytes(body))

    def getvalue(self) -> bytes:
        return bytes(self._out)
