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


def decode(data: bytes, *, max_size: int | None = None) -> Any:
    """Decode canonical CBOR, refusing oversize, malformed and non-canonical input.

    Byte strings come back as ``bytes``, arrays as ``list`` and maps as ``dict``.
    """
    if max_size is not None and len(data) > max_size:
        raise DecodeError(f"{len(data)} bytes exceeds the limit of {max_size}", ErrorCode.TOO_LARGE)
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
