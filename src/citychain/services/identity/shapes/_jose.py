"""The few JOSE bytes citychain reads and writes: base64url without padding, strictly, and
a compact JWS split into its header, payload and signature.

Shared by the SDK (SD-JWT VCs, key binding, Status List Tokens) and the identity contract,
which checks a published Status List Token's claims inside a block; so everything here is
deterministic and refuses, with ``ValueError`` saying what is wrong, rather than guesses.
Why not a JOSE library (joserfc, jwcrypto): their decoders accept texts this module refuses
(padding, whitespace, a set unused bit), so two texts could stand for one token; and the
contract needs neither keys nor algorithms, only the parts.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any


def b64url(data: bytes) -> str:
    """base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


_TO_STANDARD = bytes.maketrans(b"-_", b"+/")


def unb64url(text: object) -> bytes:
    """base64url without padding (RFC 7515 §2), strictly: any other character (``+``, ``/``,
    whitespace, padding) or a set unused bit is refused, where ``base64.urlsafe_b64decode``
    would skip or ignore it and let two different texts stand for the same bytes. Raises
    ValueError."""
    if not isinstance(text, str) or not text.isascii():
        raise ValueError("not base64url without padding")
    try:
        # bytes.translate: ~5x faster than str.translate on a credential's payload
        padded = (text + "=" * (-len(text) % 4)).encode("ascii")
        data = binascii.a2b_base64(padded.translate(_TO_STANDARD), strict_mode=True)
    except binascii.Error as exc:
        raise ValueError(f"not base64url: {exc}") from None
    # Only the one text that encodes these bytes is taken: this refuses padding, '+' and '/'
    # (which the strict decoder reads as standard base64), and a last character carrying bits
    # no byte uses (4 of them in a signature's 86 characters; RFC 4648 §3.5).
    if b64url(data) != text:
        raise ValueError("not the base64url without padding of its bytes")
    return data


def json_segment(text: str, parse_float: Callable[[str], Any] | None = None) -> Any:
    """The JSON value of a base64url segment, read as UTF-8 (RFC 7519 §7.2: JSON in JWTs is
    UTF-8, so the encodings ``json.loads`` would sniff from bytes are not tried)."""
    return json.loads(unb64url(text).decode("utf-8"), parse_float=parse_float)


def jws_parts(
    jws: str, parse_float: Callable[[str], Any] | None = None
) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """``(header, payload, signing input, signature)`` of a compact JWS whose header and
    payload are JSON objects; ValueError (also for bad UTF-8 or JSON) if it is not one."""
    try:
        head, body, sig = jws.split(".")
    except ValueError:
        raise ValueError("not three base64url parts joined by '.'") from None
    header = json_segment(head, parse_float)
    payload = json_segment(body, parse_float)
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise ValueError("its header and payload are not JSON objects")
    return header, payload, f"{head}.{body}".encode("ascii"), unb64url(sig)
