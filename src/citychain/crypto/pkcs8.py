"""Encrypted PKCS#8 private keys (PBES2) with AES or SM4: written and read here.

Theory of operation
-------------------
A key PEM citychain keeps at rest (a node's TLS key, an organisation's CA keys) is an
``ENCRYPTED PRIVATE KEY``: PKCS#8 ``EncryptedPrivateKeyInfo`` under PBES2 (RFC 8018), that is
PBKDF2 turns the passphrase and a random 16-byte salt into a key, and a block cipher in CBC mode
(random 16-byte IV, PKCS#7 padding) encrypts the plain ``PrivateKeyInfo``. Two ciphers are
written:

* ``aes-256-cbc`` (OID 2.16.840.1.101.3.4.1.42), what ``openssl pkey -aes256`` and
  ``cryptography``'s ``BestAvailableEncryption`` write;
* ``sm4-cbc`` (OID 1.2.156.10197.1.104.2, GB/T 32907), what ``openssl pkcs8 -topk8 -v2 sm4-cbc``
  writes: an ``sm2-sm3`` network keeps its key files under the national block cipher.

OpenSSL 3 (its CLI, and Python's ``ssl`` on top of it: ``load_cert_chain(password=...)``) reads
both. ``cryptography`` reads only the first, and no well-kept Python library writes the second,
which is why the few lines that join asn1crypto's structures to ``cryptography``'s primitives
(PBKDF2, AES, SM4, CBC, PKCS#7) are written here, once; :mod:`citychain.crypto.sm2_certs` and
:mod:`citychain.p2p.certs` use them.

The PRF of PBKDF2 is HMAC-SHA256 for both ciphers. HMAC-SM3 would suit an ``sm2-sm3`` network
better, but OpenSSL 3.0 (what the nodes' ``ssl`` module is built on here) does not know it:
``openssl pkcs8 -v2prf hmacWithSM3`` says "Unknown PRF algorithm" and the object has no name
there (newer OpenSSL releases add it), so a key file with it would not load into TLS.

:func:`decrypt_pkcs8` reads PBES2 with PBKDF2 (HMAC-SHA1, -SHA224, -SHA256, -SHA384 or -SHA512)
and AES-128/192/256-CBC or SM4-CBC. A wrong passphrase gives random bytes, which fail the
padding or the ``PrivateKeyInfo`` parse: :class:`~citychain.errors.KeystoreError`
``wrong_passphrase``. Anything else it does not read (another scheme or cipher, absurd PBKDF2
rounds, not PKCS#8) is :class:`~citychain.errors.InvalidInput` ``bad_arguments`` naming what it
found. Passphrases are Unicode NFC, then UTF-8, as for every other key file of citychain.

This module imports ``asn1crypto`` (a node dependency) and ``cryptography`` lazily; nothing
imports it when the SDK loads.
"""

from __future__ import annotations

import secrets
import unicodedata
from typing import Any, Literal, get_args

# asn1crypto has no type hints: its values are typed Any here.
from asn1crypto import algos, core, pem  # type: ignore[import-untyped]
from asn1crypto import keys as akeys

from citychain.crypto._der import PARSE_ERRORS, check_depth, unarmor
from citychain.errors import ErrorCode, InvalidInput, KeystoreError

__all__ = [
    "CIPHERS",
    "MAX_KEY_BYTES",
    "PBKDF2_ROUNDS",
    "Pkcs8Cipher",
    "check_cipher",
    "cipher_for_suite",
    "decrypt_pkcs8",
    "encrypt_pkcs8",
    "passphrase_bytes",
]

#: The ciphers :func:`encrypt_pkcs8` writes.
Pkcs8Cipher = Literal["aes-256-cbc", "sm4-cbc"]
CIPHERS: tuple[str, ...] = get_args(Pkcs8Cipher)
#: PBKDF2 rounds by default (OWASP's 2023 figure for PBKDF2-HMAC-SHA256; OpenSSL uses 2,048).
PBKDF2_ROUNDS = 600_000
#: Most PBKDF2 rounds a key file may ask for (a hostile file must not make us spin for hours).
MAX_ROUNDS = 10_000_000
#: Largest key file (PEM or DER) read.
MAX_KEY_BYTES = 16 * 1024

#: Encryption scheme OID: (name, key length in bytes, cryptography's algorithm name).
_SCHEMES: dict[str, tuple[str, int, str]] = {
    "2.16.840.1.101.3.4.1.2": ("aes-128-cbc", 16, "AES"),
    "2.16.840.1.101.3.4.1.22": ("aes-192-cbc", 24, "AES"),
    "2.16.840.1.101.3.4.1.42": ("aes-256-cbc", 32, "AES"),
    "1.2.156.10197.1.104.2": ("sm4-cbc", 16, "SM4"),
}
_OID_OF = {name: oid for oid, (name, _, _) in _SCHEMES.items()}
_PRFS = {"sha1", "sha224", "sha256", "sha384", "sha512"}


#: What a parse failure of asn1crypto (lazy, so failures surface on access) can raise.
def _bad(message: str, code: ErrorCode = ErrorCode.BAD_ARGUMENTS) -> InvalidInput:
    return InvalidInput(message, code)


def passphrase_bytes(passphrase: str) -> bytes:
    """The bytes a passphrase stands for: Unicode NFC, then UTF-8."""
    return unicodedata.normalize("NFC", passphrase).encode("utf-8")


def check_cipher(cipher: str) -> Pkcs8Cipher:
    """``cipher`` if :func:`encrypt_pkcs8` writes it, else ``bad_arguments`` naming the ones
    it does."""
    if cipher == "aes-256-cbc":
        return "aes-256-cbc"
    if cipher == "sm4-cbc":
        return "sm4-cbc"
    raise _bad(f"unknown key file cipher {cipher!r}; one of {', '.join(CIPHERS)} is written")


def _block_cipher(kind: str, key: bytes) -> Any:
    from cryptography.hazmat.primitives.ciphers import algorithms

    return algorithms.SM4(key) if kind == "SM4" else algorithms.AES(key)


def encrypt_pkcs8(
    plain_der: bytes,
    passphrase: str,
    *,
    cipher: Pkcs8Cipher = "aes-256-cbc",
    rounds: int = PBKDF2_ROUNDS,
) -> bytes:
    """PEM ``ENCRYPTED PRIVATE KEY`` of the plain PKCS#8 ``PrivateKeyInfo`` DER ``plain_der``
    under ``passphrase``: PBES2, PBKDF2-HMAC-SHA256 of ``rounds`` rounds, ``cipher`` in CBC
    mode. ``bad_arguments``: an empty passphrase, rounds out of range, an unknown cipher, not a
    ``PrivateKeyInfo``."""
    from cryptography.hazmat.primitives import padding
    from cryptography.hazmat.primitives.ciphers import Cipher, modes
    from cryptography.hazmat.primitives.hashes import SHA256
    from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

    oid = _OID_OF[check_cipher(cipher)]
    _, key_length, kind = _SCHEMES[oid]
    if not passphrase:
        raise _bad("the passphrase for a key file is empty")
    if not isinstance(rounds, int) or not 0 < rounds <= MAX_ROUNDS:
        raise _bad(f"PBKDF2 rounds must be 1 to {MAX_ROUNDS}, got {rounds!r}")
    _parse_plain(bytes(plain_der), "the key to encrypt is not a PKCS#8 PrivateKeyInfo")
    salt, iv = secrets.token_bytes(16), secrets.token_bytes(16)
    key = PBKDF2HMAC(SHA256(), key_length, salt, rounds).derive(passphrase_bytes(passphrase))
    padder = padding.PKCS7(128).padder()
    padded = padder.update(bytes(plain_der)) + padder.finalize()
    encryptor = Cipher(_block_cipher(kind, key), modes.CBC(iv)).encryptor()
    encrypted = akeys.EncryptedPrivateKeyInfo(
        {
            "encryption_algorithm": {
                "algorithm": "pbes2",
                "parameters": {
                    "key_derivation_func": {
                        "algorithm": "pbkdf2",
                        "parameters": {
                            "salt": algos.Pbkdf2Salt(name="specified", value=salt),
                            "iteration_count": rounds,
                            "prf": {"algorithm": "sha256"},
                        },
                    },
                    # By dotted OID: asn1crypto's table does not name SM4.
                    "encryption_scheme": {"algorithm": oid, "parameters": core.OctetString(iv)},
                },
            },
            "encrypted_data": encryptor.update(padded) + encryptor.finalize(),
        }
    )
    return bytes(pem.armor("ENCRYPTED PRIVATE KEY", encrypted.dump()))


def _parse_plain(plain: bytes, message: str) -> None:
    try:
        check_depth(plain)
        akeys.PrivateKeyInfo.load(plain, strict=True).native  # noqa: B018 (parse it all)
    except PARSE_ERRORS as exc:
        raise _bad(f"{message} ({exc})") from None


def _unarmor(data: bytes) -> bytes:
    return unarmor(
        data, "ENCRYPTED PRIVATE KEY", "key file", "an encrypted private key", MAX_KEY_BYTES
    )


def _scheme(info: Any) -> tuple[str, int, str, bytes, str, int, bytes]:
    """(cipher name, key length, cryptography algorithm, IV, PRF, rounds, salt), or ValueError
    / InvalidInput naming what is not read."""
    algorithm = info["encryption_algorithm"]
    if algorithm["algorithm"].native != "pbes2" or algorithm.kdf != "pbkdf2":
        raise _bad(
            f"the key file is encrypted with {algorithm['algorithm'].native}"
            + (f" ({algorithm.kdf})" if algorithm["algorithm"].native == "pbes2" else "")
            + "; PBES2 with PBKDF2 is read"
        )
    scheme = algorithm["parameters"]["encryption_scheme"]
    oid = scheme["algorithm"].dotted
    if oid not in _SCHEMES:
        raise _bad(
            f"the key file is encrypted with cipher {scheme['algorithm'].native} ({oid}); "
            f"{', '.join(name for name, _, _ in _SCHEMES.values())} are read"
        )
    name, key_length, kind = _SCHEMES[oid]
    iv = scheme["parameters"]
    iv = bytes(core.OctetString.load(iv.dump()).native)
    if len(iv) != 16:
        raise ValueError(f"{name} needs a 16-byte IV, the file has {len(iv)} bytes")
    params = algorithm["parameters"]["key_derivation_func"]["parameters"]
    stated = params["key_length"].native
    if stated is not None and stated != key_length:
        raise ValueError(f"PBKDF2 key length {stated} does not fit {name} ({key_length} bytes)")
    prf, rounds = algorithm.kdf_hmac, algorithm.kdf_iterations
    if prf not in _PRFS or not 0 < rounds <= MAX_ROUNDS:
        raise _bad(f"unusable PBKDF2 parameters (HMAC-{prf}, {rounds} rounds)")
    return name, key_length, kind, iv, prf, rounds, bytes(algorithm.kdf_salt)


def decrypt_pkcs8(data: bytes, passphrase: str) -> bytes:
    """The plain PKCS#8 ``PrivateKeyInfo`` DER inside an encrypted key file (PEM ``ENCRYPTED
    PRIVATE KEY`` or its DER), see the theory of operation for what is read. ``bad_arguments``
    or ``too_large`` for what is not; :class:`KeystoreError` ``wrong_passphrase``."""
    from cryptography.hazmat.primitives import hashes, padding
    from cryptography.hazmat.primitives.ciphers import Cipher, modes
    from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

    der = _unarmor(bytes(data))
    try:
        check_depth(der)
        info = akeys.EncryptedPrivateKeyInfo.load(der, strict=True)
        _, key_length, kind, iv, prf, rounds, salt = _scheme(info)
        ciphertext = bytes(info["encrypted_data"].native)
    except PARSE_ERRORS as exc:
        raise _bad(f"not an encrypted PKCS#8 private key ({exc})") from None
    if not ciphertext or len(ciphertext) % 16:
        raise _bad("not an encrypted PKCS#8 private key (ciphertext is not whole blocks)")
    digest = getattr(hashes, prf.upper())()
    key = PBKDF2HMAC(digest, key_length, salt, rounds).derive(passphrase_bytes(passphrase))
    decryptor = Cipher(_block_cipher(kind, key), modes.CBC(iv)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    try:
        unpadder = padding.PKCS7(128).unpadder()
        plain = bytes(unpadder.update(padded) + unpadder.finalize())
        check_depth(plain)
        akeys.PrivateKeyInfo.load(plain, strict=True).native  # noqa: B018 (parse it all)
        return plain
    except PARSE_ERRORS:  # a wrong key gives random bytes: bad padding, or (1 in ~256) junk
        raise KeystoreError(
            "the key file does not open with this passphrase (wrong passphrase or damaged file)",
            ErrorCode.WRONG_PASSPHRASE,
        ) from None


def cipher_for_suite(suite_name: str) -> Pkcs8Cipher:
    """The cipher of a network's key files: ``sm4-cbc`` on an ``sm2-sm3`` network (issue 13:
    SM4 for encryption at rest), ``aes-256-cbc`` on any other."""
    return "sm4-cbc" if suite_name == "sm2-sm3" else "aes-256-cbc"
