"""DER input before asn1crypto parses it: PEM taken off, and how deep it nests.

:func:`unarmor` takes the DER out of PEM (or passes DER through), refusing in words what is
too large, empty, more than one block or another kind of block.

asn1crypto's parser is recursive, and where Python's recursion limit stops it depends on how
deep the caller's stack already is, so the verdict on a deeply nested input could differ
between two call sites or nodes. :func:`check_depth` (a loop, no recursion) refuses such input
first. Shared by :mod:`citychain.crypto.sm2_certs` (certificates) and
:mod:`citychain.crypto.pkcs8` (encrypted private keys).
"""

from __future__ import annotations

from asn1crypto import pem  # type: ignore[import-untyped]

from citychain.errors import ErrorCode, InvalidInput

__all__ = ["MAX_DEPTH", "PARSE_ERRORS", "check_depth", "nesting", "unarmor"]

_BAD = ErrorCode.BAD_ARGUMENTS
#: What asn1crypto raises on malformed input (it has no error type of its own).
PARSE_ERRORS = (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError)

#: Deepest nesting of DER values taken (a certificate has about 11, a Name in a SAN included).
MAX_DEPTH = 32


def nesting(data: bytes) -> int:
    """How deep DER values nest in ``data``, looking into constructed values and into OCTET and
    BIT STRINGs (which may hold DER: extension values); where bytes stop looking like DER, the
    look at that level ends. An indefinite length (BER) counts the rest of its level as content.
    """
    deepest = 0
    stack = [(0, len(data), 1)]
    while stack:
        pos, end, depth = stack.pop()
        while pos < end:
            tag = data[pos]
            pos += 1
            if tag & 0x1F == 0x1F:  # high tag number: base-128 digits
                while pos < end and data[pos] & 0x80:
                    pos += 1
                pos += 1
            if pos >= end:
                break
            first = data[pos]
            pos += 1
            if first == 0x80:  # indefinite length
                if not tag & 0x20:
                    break
                deepest = max(deepest, depth)
                stack.append((pos, end, depth + 1))
                break
            if first < 0x80:
                length = first
            else:
                size = first & 0x7F
                if size > 4 or pos + size > end:
                    break
                length = int.from_bytes(data[pos : pos + size], "big")
                pos += size
            if pos + length > end:
                break
            deepest = max(deepest, depth)
            start, pos = pos, pos + length
            if tag & 0x20 or tag == 0x04:
                stack.append((start, pos, depth + 1))
            elif tag == 0x03 and length > 1:
                stack.append((start + 1, pos, depth + 1))
    return deepest


def check_depth(der: bytes) -> None:
    """``ValueError`` when values in ``der`` nest deeper than :data:`MAX_DEPTH`."""
    depth = nesting(der)
    if depth > MAX_DEPTH:
        raise ValueError(f"values nest {depth} deep; at most {MAX_DEPTH} are taken")


def unarmor(data: bytes, kind: str, noun: str, what: str, limit: int) -> bytes:
    """The DER in ``data``: ``data`` itself unless it is PEM, else its one PEM block, which
    must be of ``kind`` (``"CERTIFICATE"``). ``noun`` ("certificate") and ``what``
    ("a certificate") name the input in refusals: ``too_large`` above ``limit`` bytes, else
    ``bad_arguments``."""
    if len(data) > limit:
        raise InvalidInput(
            f"{noun} is {len(data)} bytes; at most {limit} are accepted", ErrorCode.TOO_LARGE
        )
    if not data:
        raise InvalidInput(f"not {what}: no bytes given (expected PEM or DER)", _BAD)
    if b"-----BEGIN" not in data:
        return data
    blocks = data.count(b"-----BEGIN")
    if blocks != 1:
        raise InvalidInput(f"not {what}: PEM holds {blocks} blocks, expected 1 {noun}", _BAD)
    try:
        found, _, der = pem.unarmor(data)
    except PARSE_ERRORS as exc:
        raise InvalidInput(f"not {what}: PEM that cannot be read ({exc})", _BAD) from None
    if found != kind:
        raise InvalidInput(f"not {what}: a PEM {found} block", _BAD)
    return bytes(der)
