"""The identity service's shapes: identifier syntax and key encoding, with no node needed.

Keys are written as W3C Controlled Identifiers ``Multikey`` values: ``publicKeyMultibase`` is
``z`` (base58btc) followed by the base58btc encoding of the multicodec prefix of the key type
(``0xed 0x01`` for an Ed25519 public key) and the raw key. A ``did:key`` is ``did:key:`` and
the same multibase string.

A ``did:citychain`` identifier is ``did:citychain:`` followed by base58btc of 16 bytes that
the contract derives when the DID is created (see ``docs/did-method.md``).
"""

from __future__ import annotations

import re

import base58

from citychain.errors import ErrorCode, InvalidInput

NAME = "identity"
METHOD = "citychain"
#: The multicodec prefix of an Ed25519 public key (varint 0xed).
ED25519_PUB = b"\xed\x01"
ED25519_KEY_SIZE = 32
#: The method-specific identifier of a did:citychain: base58btc of 16 bytes (21 or 22 chars).
ID_BYTES = 16
_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_DID_RE = re.compile(r"did:([a-z0-9]+):([A-Za-z0-9._%-]+(?::[A-Za-z0-9._%-]+)*)")
_CITYCHAIN_RE = re.compile(rf"did:{METHOD}:([{_B58}]{{1,32}})")


def _bad(message: str) -> InvalidInput:
    return InvalidInput(message, ErrorCode.BAD_ARGUMENTS)


def multikey_encode(public_key: bytes) -> str:
    """The ``publicKeyMultibase`` of an Ed25519 public key."""
    if len(public_key) != ED25519_KEY_SIZE:
        raise _bad(f"an Ed25519 public key is {ED25519_KEY_SIZE} bytes, got {len(public_key)}")
    return "z" + base58.b58encode(ED25519_PUB + public_key).decode()


def multikey_decode(value: str) -> bytes:
    """The Ed25519 public key of a ``publicKeyMultibase`` value; ``bad_arguments`` naming
    what is wrong (not base58btc, not an Ed25519 key, wrong length)."""
    if not isinstance(value, str) or not value.startswith("z"):
        raise _bad(f"publicKeyMultibase must start with 'z' (base58btc), got {str(value)[:20]!r}")
    try:
        raw = base58.b58decode(value[1:])
    except ValueError:
        raise _bad("publicKeyMultibase is not valid base58btc") from None
    if not raw.startswith(ED25519_PUB):
        raise _bad("publicKeyMultibase is not an Ed25519 key (multicodec 0xed01)")
    key = raw[len(ED25519_PUB) :]
    if len(key) != ED25519_KEY_SIZE:
        raise _bad(f"publicKeyMultibase holds {len(key)} key bytes, an Ed25519 key has 32")
    return key


def did_key(public_key: bytes) -> str:
    """The ``did:key`` of an Ed25519 public key."""
    return "did:key:" + multikey_encode(public_key)


def split_did(did: str) -> tuple[str, str]:
    """``(method, method-specific id)`` of a syntactically valid DID (DID Core §3.1);
    ``bad_arguments`` otherwise."""
    if not isinstance(did, str) or len(did) > 2048 or not _DID_RE.fullmatch(did):
        raise _bad(f"{str(did)[:80]!r} is not a DID (did:<method>:<method-specific-id>)")
    _, method, rest = did.split(":", 2)
    return method, rest


def citychain_id(did: str) -> bytes:
    """The 16 identifier bytes of a ``did:citychain``; ``bad_arguments`` if it is not one."""
    m = _CITYCHAIN_RE.fullmatch(did) if isinstance(did, str) else None
    raw = base58.b58decode(m.group(1)) if m else b""
    if len(raw) != ID_BYTES:
        raise _bad(
            f"{str(did)[:80]!r} is not a did:{METHOD} (did:{METHOD}:<base58btc of 16 bytes>)"
        )
    return raw


def citychain_did(identifier: bytes) -> str:
    """The ``did:citychain`` of 16 identifier bytes."""
    if len(identifier) != ID_BYTES:
        raise _bad(f"a did:{METHOD} identifier is {ID_BYTES} bytes, got {len(identifier)}")
    return f"did:{METHOD}:" + base58.b58encode(identifier).decode()
