"""SM4-GCM (GB/T 32907 block cipher in GCM, as in RFC 8998) for keystores and data at rest.

Through ``cryptography`` (``algorithms.SM4`` + ``modes.GCM``): the system OpenSSL 3.0 has SM4 but
not SM4-GCM, ``cryptography``'s bundled OpenSSL has both and checks out against the RFC 8998 and
Wycheproof vectors (tests/crypto/test_gm_vectors.py). Needs the ``[node]`` extra, so the SDK
never imports this module.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from citychain.errors import ErrorCode, InvalidInput

__all__ = [
    "KEY_SIZE",
    "NONCE_SIZE",
    "TAG_SIZE",
    "decrypt",
    "encrypt",
    "open_",
    "seal",
]

KEY_SIZE = 16
NONCE_SIZE = 12
TAG_SIZE = 16


def _check_key(key: bytes) -> None:
    if len(key) != KEY_SIZE:
        raise InvalidInput(
            f"an SM4 key is {KEY_SIZE} bytes, got {len(key)}", ErrorCode.BAD_ARGUMENTS
        )


def seal(key: bytes, plaintext: bytes, aad: bytes = b"", nonce: bytes | None = None) -> bytes:
    """``nonce || ciphertext || tag`` (16-byte tag). A random 12-byte nonce unless one is given
    (only tests give one: a nonce must never repeat under a key)."""
    _check_key(key)
    nonce = os.urandom(NONCE_SIZE) if nonce is None else nonce
    enc = Cipher(algorithms.SM4(key), modes.GCM(nonce)).encryptor()
    if aad:
        enc.authenticate_additional_data(aad)
    body = enc.update(plaintext) + enc.finalize()
    return nonce + body + enc.tag


def open_(key: bytes, sealed: bytes, aad: bytes = b"") -> bytes:
    """The plaintext of :func:`seal`'s output; :class:`InvalidInput` with code ``tampered`` if
    it does not authenticate (wrong key, or the ciphertext, nonce or AAD was modified)."""
    _check_key(key)
    if len(sealed) < NONCE_SIZE + TAG_SIZE:
        raise InvalidInput("truncated SM4-GCM message", ErrorCode.TAMPERED)
    return decrypt(key, sealed[:NONCE_SIZE], sealed[NONCE_SIZE:-TAG_SIZE], sealed[-TAG_SIZE:], aad)


def encrypt(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes = b"") -> tuple[bytes, bytes]:
    """Raw SM4-GCM: (ciphertext, 16-byte tag)."""
    _check_key(key)
    enc = Cipher(algorithms.SM4(key), modes.GCM(nonce)).encryptor()
    if aad:
        enc.authenticate_additional_data(aad)
    body = enc.update(plaintext) + enc.finalize()
    return body, enc.tag


def decrypt(key: bytes, nonce: bytes, ciphertext: bytes, tag: bytes, aad: bytes = b"") -> bytes:
    """Raw SM4-GCM decryption with a tag of 4..16 bytes; :class:`InvalidInput` with code
    ``tampered`` on a bad tag."""
    _check_key(key)
    try:
        dec = Cipher(
            algorithms.SM4(key), modes.GCM(nonce, tag, min_tag_length=min(len(tag), 16))
        ).decryptor()
        if aad:
            dec.authenticate_additional_data(aad)
        return dec.update(ciphertext) + dec.finalize()
    except (InvalidTag, ValueError):
        raise InvalidInput(
            "SM4-GCM authentication failed: wrong key, or the data was modified",
            ErrorCode.TAMPERED,
        ) from None
