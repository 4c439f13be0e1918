"""A holder's key as a file a phone's browser opens: a passphrase-protected JWE.

Theory of operation
-------------------
A citizen with no terminal signs in to a node's pages (``/my-data``, the citizen's view of who
accessed records about them) with their ``did:key``. The page must sign the request itself, in
the browser, with nothing but WebCrypto: the wallet's own file (argon2id, XSalsa20-Poly1305)
needs libsodium, which a browser does not have. So the wallet exports one key as a standard
JWE (RFC 7516, compact serialisation) whose every step WebCrypto has:

* ``alg`` ``PBES2-HS512+A256KW`` (RFC 7518 §4.8): PBKDF2-HMAC-SHA-512 over the passphrase
  with salt ``UTF8(alg) || 0x00 || p2s`` (``p2s``: 16 random bytes) and ``p2c`` iterations
  (:data:`DEFAULT_ITERATIONS`, OWASP's figure for PBKDF2-HMAC-SHA-512) gives a key that
  unwraps (AES key wrap, RFC 3394) the content key;
* ``enc`` ``A256GCM``: AES-256-GCM with a 96-bit IV, the protected header's base64url text as
  the additional data, a 128-bit tag;
* ``cty`` ``jwk+json``: the plaintext is the key as a private JWK (RFC 8037: ``kty`` ``OKP``,
  ``crv`` ``Ed25519``, ``x`` the public key, ``d`` the 32-byte seed) with ``kid`` its
  ``did:key``.

A wrong passphrase fails the key unwrap's integrity check and a changed byte fails it or
GCM's tag: both are ``wrong_passphrase``, as for the wallet (the two cannot be told apart).
Anything that is not such a JWE is ``bad_keystore``, naming what is wrong. ``p2c`` is held to
:data:`MIN_ITERATIONS`..:data:`MAX_ITERATIONS` when a file is opened, so a file cannot make its
reader spin for minutes.

Written from ``cryptography``'s primitives (PBKDF2, AES key wrap, AES-GCM) rather than with a
JOSE library: this is one fixed algorithm pair, and jwcrypto would be a new dependency of the
SDK for one call. The tests hold both directions to jwcrypto. Ed25519 only: WebCrypto has no
SM2, so an ``sm2-sm3`` account cannot sign in a browser this way.
"""

from __future__ import annotations

import json
import os
from typing import Any

from citychain.crypto import ED25519, Signer
from citychain.crypto.passphrase import judge
from citychain.errors import ErrorCode, InvalidInput, KeystoreError
from citychain.services.identity.shapes import did_key
from citychain.services.identity.shapes._jose import b64url, unb64url

ALG = "PBES2-HS512+A256KW"
ENC = "A256GCM"
CTY = "jwk+json"
#: PBKDF2-HMAC-SHA-512 iterations of an exported key (OWASP's 2023 figure: 210,000).
DEFAULT_ITERATIONS = 210_000
#: The fewest and most iterations a key file may name when it is opened.
MIN_ITERATIONS = 1_000
MAX_ITERATIONS = 10_000_000
#: Longest key file read (a key file is about 500 bytes).
MAX_KEY_FILE = 16 * 1024


# ``cryptography`` is imported by the functions that use it, never with the SDK (a test holds
# the SDK's import to its light dependencies).


def _kek(passphrase: str, salt: bytes, iterations: int) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

    kdf = PBKDF2HMAC(
        algorithm=hashes.SHA512(),
        length=32,
        salt=ALG.encode() + b"\x00" + salt,
        iterations=iterations,
    )
    return kdf.derive(passphrase.encode())


def export_key(signer: Signer, passphrase: str, *, iterations: int = DEFAULT_ITERATIONS) -> str:
    """``signer``'s Ed25519 key as a passphrase-protected JWE (see the module docstring)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.keywrap import aes_key_wrap

    if signer.suite.name != ED25519.name:
        raise InvalidInput(
            f"only Ed25519 keys are exported for a browser (WebCrypto has no SM2), not "
            f"{signer.suite.name}",
            ErrorCode.BAD_ARGUMENTS,
        )
    if not isinstance(passphrase, str) or not passphrase:
        raise InvalidInput("a key file needs a passphrase", ErrorCode.BAD_ARGUMENTS)
    # The file leaves this machine (mail, a chat, a phone): whoever copies it can guess at
    # its passphrase offline, as fast as they can pay for.
    judge(passphrase, "a key file")
    if not MIN_ITERATIONS <= iterations <= MAX_ITERATIONS:
        raise InvalidInput(
            f"iterations must be {MIN_ITERATIONS:,} to {MAX_ITERATIONS:,}",
            ErrorCode.BAD_ARGUMENTS,
        )
    salt, cek, iv = os.urandom(16), os.urandom(32), os.urandom(12)
    header = {"alg": ALG, "enc": ENC, "cty": CTY, "p2s": b64url(salt), "p2c": iterations}
    protected = b64url(json.dumps(header, separators=(",", ":")).encode())
    did = did_key(signer.public_key)
    jwk = {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": b64url(signer.public_key),
        "d": b64url(signer.secret),
        "kid": did,
    }
    sealed = AESGCM(cek).encrypt(iv, json.dumps(jwk).encode(), protected.encode())
    wrapped = aes_key_wrap(_kek(passphrase, salt, iterations), cek)
    return ".".join([protected, b64url(wrapped), b64url(iv), *_split_tag(sealed)])


def _split_tag(sealed: bytes) -> list[str]:
    return [b64url(sealed[:-16]), b64url(sealed[-16:])]


def _bad(message: str) -> KeystoreError:
    return KeystoreError(f"not a key file: {message}", ErrorCode.BAD_KEYSTORE)


def import_key(text: str, passphrase: str) -> Signer:
    """The Ed25519 key in a key file made by :func:`export_key` (or any JWE of the same
    algorithms holding an Ed25519 private JWK)."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap

    if len(text) > MAX_KEY_FILE:
        raise _bad(f"a key file is at most {MAX_KEY_FILE:,} bytes")
    parts = text.strip().split(".")
    if len(parts) != 5:
        raise _bad("a key file is a JWE in compact form: five base64url parts joined by '.'")
    try:
        header: Any = json.loads(unb64url(parts[0]))
        wrapped, iv, ciphertext, tag = (unb64url(p) for p in parts[1:])
        salt = unb64url(header["p2s"]) if isinstance(header, dict) else b""
    except (ValueError, KeyError, TypeError):
        raise _bad("its parts are not base64url, or its header is not JSON with p2s") from None
    if header.get("alg") != ALG or header.get("enc") != ENC:
        raise _bad(f"a key file is alg {ALG}, enc {ENC}")
    iterations = header.get("p2c")
    if type(iterations) is not int or not MIN_ITERATIONS <= iterations <= MAX_ITERATIONS:
        raise _bad(f"p2c must be {MIN_ITERATIONS:,} to {MAX_ITERATIONS:,} iterations")
    if len(iv) != 12 or len(tag) != 16 or len(salt) < 8:
        raise _bad("its IV, tag or salt has the wrong size")
    try:
        cek = aes_key_unwrap(_kek(passphrase, salt, iterations), wrapped)
        plain = AESGCM(cek).decrypt(iv, ciphertext + tag, parts[0].encode())
    except (InvalidUnwrap, InvalidTag, ValueError):
        raise KeystoreError(
            "wrong passphrase (or the key file was changed)", ErrorCode.WRONG_PASSPHRASE
        ) from None
    try:
        jwk = json.loads(plain)
        seed, public = unb64url(jwk["d"]), unb64url(jwk["x"])
        ok = jwk["kty"] == "OKP" and jwk["crv"] == "Ed25519" and len(seed) == 32
    except (ValueError, KeyError, TypeError):
        ok = False
    if not ok:
        raise _bad("it does not hold an Ed25519 private JWK")
    signer = Signer(ED25519, seed)
    if signer.public_key != public:
        raise _bad("its public key (x) is not the private key's (d)")
    return signer
