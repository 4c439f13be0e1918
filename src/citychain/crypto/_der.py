"""How deep DER nests, measured without recursion, before asn1crypto parses it.

asn1crypto's parser is recursive, and where Python's recursion limit stops it depends on how
deep the caller's stack already is, so the verdict on a deeply nested input could differ
between two call sites or nodes. :func:`check_depth` (a loop, no recursion) refuses such input
first. Shared by :mod:`citychain.crypto.sm2_certs` (certificates) and
:mod:`citychain.crypto.pkcs8` (encrypted private keys).
"""

from __future__ import annotations

__all__ = ["MAX_DEPTH", "check_depth", "nesting"]

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
