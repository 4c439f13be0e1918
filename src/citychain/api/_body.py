"""Reading request bodies and parameters without trusting them.

Bodies are read with a hard limit *while streaming*: a declared ``Content-Length`` above the
limit is refused before a byte is read, and a body without one (chunked) is refused as soon as
the bytes received pass the limit. Nothing past the limit is ever buffered.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import Request

from citychain import codec
from citychain.api._errors import bad_arguments
from citychain.api._json import depth, loads
from citychain.errors import DecodeError, ErrorCode, InvalidInput
from citychain.types.tx import json_to_codec

CBOR_TYPES = ("application/cbor", "application/octet-stream")
JSON_TYPE = "application/json"

_HEX = re.compile(r"(?:0x)?((?:[0-9a-fA-F]{2})*)")
#: Longest contract or method name (as in transactions).
MAX_NAME_LEN = 64


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refusing (413) any body larger than ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not (declared.isascii() and declared.isdigit()):
            raise bad_arguments(f"Content-Length {declared[:40]!r} is not a number of bytes")
        if int(declared) > limit:
            raise too_large(int(declared), limit)
    # Pieces joined once at the end: growing a bytearray by the server's 64 KiB pieces copied
    # a 4 MiB body ~8 times over (glibc's realloc moves large blocks), 3.4 ms against 0.2 ms
    # for the join, on the event loop, for every chunk a data upload sends (bench/RESULTS.md).
    parts: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(None, limit)
        if chunk:
            parts.append(chunk)
    return b"".join(parts)  # one piece: CPython's join gives it back as it is, uncopied


def too_large(size: int | None, limit: int) -> InvalidInput:
    what = f"{size} bytes" if size is not None else "more than that"
    return InvalidInput(f"request body is {what}; the limit is {limit} bytes", ErrorCode.TOO_LARGE)


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def unsupported_media(got: str, accepted: tuple[str, ...]) -> InvalidInput:
    shown = repr(got) if got else "missing"
    return InvalidInput(
        f"Content-Type {shown} is not supported here; send one of: {', '.join(accepted)}",
        ErrorCode.UNSUPPORTED,
    )


def parse_json_object(body: bytes, what: str) -> dict[str, Any]:
    try:
        value = loads(body)
    except ValueError as exc:
        raise DecodeError(f"{what} is not valid JSON: {exc}", ErrorCode.MALFORMED) from None
    if not isinstance(value, dict):
        raise bad_arguments(f"{what} must be a JSON object, got {_json_type(value)}")
    return value


def check_fields(obj: dict[str, Any], required: set[str], optional: set[str] | None = None) -> None:
    optional = optional or set()
    missing = sorted(required - obj.keys())
    if missing:
        raise bad_arguments(f"body field {missing[0]!r} is required")
    unknown = sorted(obj.keys() - required - optional)
    if unknown:
        known = ", ".join(repr(k) for k in sorted(required | optional))
        raise bad_arguments(f"unknown body field {unknown[0]!r} (known: {known})")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def parse_hex(
    value: Any, what: str, *, size: int | None = None, max_size: int | None = None
) -> bytes:
    """Bytes from a hex string (optional ``0x``), with a message naming ``what`` if it is not."""
    if not isinstance(value, str):
        raise bad_arguments(f"{what} must be a hex string, got {_json_type(value)}")
    m = _HEX.fullmatch(value)
    if m is None:
        shown = value if len(value) <= 20 else value[:20] + "..."
        raise bad_arguments(
            f"{what} must be an even number of hex digits (0-9, a-f), got {shown!r}"
        )
    data = bytes.fromhex(m.group(1))
    if size is not None and len(data) != size:
        raise bad_arguments(
            f"{what} must be {size} bytes ({2 * size} hex digits), got {len(data)} bytes"
        )
    if max_size is not None and len(data) > max_size:
        raise bad_arguments(f"{what} must be at most {max_size} bytes, got {len(data)}")
    if size is None and not data:
        raise bad_arguments(f"{what} must not be empty")
    return data


def check_name(value: str, what: str) -> str:
    if not 0 < len(value) <= MAX_NAME_LEN:
        raise bad_arguments(f"{what} must be 1 to {MAX_NAME_LEN} characters, got {len(value)}")
    return value


def canonical_args(value: Any, what: str = "args") -> dict[str, Any]:
    """Contract arguments from their JSON form (bytes as ``{"hex": ...}``), checked canonical."""
    if not isinstance(value, dict):
        raise bad_arguments(f"{what} must be a JSON object, got {_json_type(value)}")
    if depth(value) > codec.MAX_DEPTH + 1:  # a guard for json_to_codec; codec checks exactly
        raise bad_arguments(f"{what} nests deeper than {codec.MAX_DEPTH} levels")
    try:
        args = json_to_codec(value)
        codec.check_value(args)
    except DecodeError as exc:
        raise bad_arguments(f"{what}: {exc.message}") from None
    assert isinstance(args, dict)
    return args


# -- CBOR: an array of byte strings ---------------------------------------------------------


def _head(data: bytes, pos: int) -> tuple[int, int, int]:
    """(major type, argument, next position) of the CBOR item head at ``pos``."""
    if pos >= len(data):
        raise _cbor_error("ends early")
    initial = data[pos]
    major, info = initial >> 5, initial & 0x1F
    pos += 1
    if info < 24:
        return major, info, pos
    if info > 27:
        raise _cbor_error("uses indefinite lengths or a reserved encoding; send definite lengths")
    size = 1 << (info - 24)
    if pos + size > len(data):
        raise _cbor_error("ends early")
    return major, int.from_bytes(data[pos : pos + size], "big"), pos + size


def _cbor_error(why: str) -> DecodeError:
    return DecodeError(
        f"body is not a CBOR array of transaction byte strings: it {why}", ErrorCode.MALFORMED
    )


def parse_cbor_byte_array(data: bytes, max_items: int) -> list[bytes]:
    """The items of a CBOR array of byte strings (definite lengths), without a general decoder.

    Only the envelope is read here; each item is a transaction's wire bytes, which the node
    decodes (and refuses precisely) on its own.
    """
    major, count, pos = _head(data, 0)
    if major != 4:
        raise _cbor_error("does not start with an array")
    if count > max_items:
        raise InvalidInput(
            f"batch has {count} transactions; the limit is {max_items} per request",
            ErrorCode.TOO_LARGE,
        )
    items: list[bytes] = []
    for i in range(count):
        major, size, pos = _head(data, pos)
        if major != 2:
            raise _cbor_error(f"has item {i} that is not a byte string")
        end = pos + size
        if end > len(data):
            raise _cbor_error(f"ends inside item {i}")
        items.append(data[pos:end])
        pos = end
    if pos != len(data):
        raise _cbor_error(f"has {len(data) - pos} bytes after the array")
    return items
