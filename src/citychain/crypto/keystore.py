"""Key files: a secret key encrypted under a passphrase, as JSON.

Theory of operation
-------------------
An encrypted key file looks like this (all byte strings are lowercase hex)::

    {
      "version": 1,
      "type": "encrypted",
      "suite": "ed25519",
      "public_key": "…",
      "kdf": {"name": "argon2id", "opslimit": 3, "memlimit": 268435456, "salt": "…"},
      "cipher": {"name": "xsalsa20-poly1305", "nonce": "…", "ciphertext": "…"}
    }

* The passphrase (a ``str``, normalised to Unicode NFC so the same words typed on different
  systems give the same bytes, then UTF-8) goes through argon2id, a memory-hard KDF, with a
  random 16-byte salt, giving a 32-byte key. ``moderate`` (3 passes, 256 MiB, about 0.6 s)
  is the default; ``interactive`` (2 passes, 64 MiB) is for development and tests, and
  ``sensitive`` (4 passes, 1 GiB) for keys that are rarely unlocked.
* That key encrypts the payload with XSalsa20-Poly1305 (``nacl.secret.SecretBox``) under a
  random 24-byte nonce. Poly1305 authenticates the ciphertext.
* The header is authenticated by putting it in the payload: the plaintext is the canonical
  CBOR ``["citychain/keystore/v1", suite, public_key, secret]``. After decryption the suite
  and public key must equal the header's, and the secret must derive that public key, so an
  edited header is refused (``bad_keystore``) even though the header itself is plain JSON. The
  KDF parameters, salt and nonce need no separate binding: changing any of them changes the
  key or the keystream, and the MAC check fails.
* A failed MAC cannot tell a wrong passphrase from an edited ciphertext, salt or nonce; both
  are reported as ``wrong_passphrase`` with a message that names both causes.
* Loading refuses KDF parameters outside libsodium's minimum and the ``sensitive`` level, so a
  hostile file cannot make the loader allocate without bound.

A *plaintext* key file (``"type": "plaintext"`` with ``"secret"``) exists for development only:
loading one needs ``allow_plaintext=True`` and logs a warning every time.

Files are written with mode 0600, atomically: a temporary file in the same directory is
written, flushed to disk and renamed over the target, so a crash never leaves half a key.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import tempfile
import unicodedata
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.pwhash.argon2id as argon2id
import nacl.utils
from nacl.secret import SecretBox

from citychain import codec
from citychain.crypto._suite import CryptoSuite, Signer, get_suite
from citychain.errors import (
    CitychainError,
    DecodeError,
    ErrorCode,
    InvalidInput,
    KeystoreError,
    NotFound,
)

__all__ = ["KDF_LEVELS", "export_key", "import_key", "load_key", "save_key", "save_plaintext_key"]

logger = logging.getLogger(__name__)

KEYSTORE_VERSION = 1
PAYLOAD_TAG = "citychain/keystore/v1"
KDF_NAME = "argon2id"
CIPHER_NAME = "xsalsa20-poly1305"
#: (opslimit, memlimit) by level name.
KDF_LEVELS: dict[str, tuple[int, int]] = {
    "interactive": (argon2id.OPSLIMIT_INTERACTIVE, argon2id.MEMLIMIT_INTERACTIVE),
    "moderate": (argon2id.OPSLIMIT_MODERATE, argon2id.MEMLIMIT_MODERATE),
    "sensitive": (argon2id.OPSLIMIT_SENSITIVE, argon2id.MEMLIMIT_SENSITIVE),
}
_MAX_FILE_BYTES = 64 * 1024


# -- writing ------------------------------------------------------------------------------------
def export_key(signer: Signer, passphrase: str, *, kdf_level: str = "moderate") -> str:
    """The encrypted key file's JSON text for ``signer``."""
    if kdf_level not in KDF_LEVELS:
        raise InvalidInput(
            f"unknown kdf_level {kdf_level!r}; use one of {', '.join(KDF_LEVELS)}",
            ErrorCode.BAD_ARGUMENTS,
        )
    if not isinstance(passphrase, str) or not passphrase:
        raise InvalidInput(
            "the passphrase must be a non-empty string (for a development key without one, "
            "use save_plaintext_key)",
            ErrorCode.BAD_ARGUMENTS,
        )
    opslimit, memlimit = KDF_LEVELS[kdf_level]
    if signer.suite.name in SM4_SUITES:
        return _export_sm4_gcm(signer, passphrase, opslimit, memlimit)
    suite, public_key = signer.suite, signer.public_key
    salt = nacl.utils.random(argon2id.SALTBYTES)
    nonce = nacl.utils.random(SecretBox.NONCE_SIZE)
    box = SecretBox(derive_key(passphrase, salt, opslimit, memlimit))
    payload = codec.encode([PAYLOAD_TAG, suite.name, public_key, signer.secret])
    ciphertext = box.encrypt(payload, nonce).ciphertext
    doc = {
        "version": KEYSTORE_VERSION,
        "type": "encrypted",
        "suite": suite.name,
        "public_key": public_key.hex(),
        "kdf": {"name": KDF_NAME, "opslimit": opslimit, "memlimit": memlimit, "salt": salt.hex()},
        "cipher": {"name": CIPHER_NAME, "nonce": nonce.hex(), "ciphertext": ciphertext.hex()},
    }
    return json.dumps(doc, indent=2) + "\n"


def save_key(
    path: str | os.PathLike[str], signer: Signer, passphrase: str, *, kdf_level: str = "moderate"
) -> None:
    """Write ``signer`` encrypted under ``passphrase`` to ``path`` (mode 0600, atomically)."""
    write_private(Path(path), export_key(signer, passphrase, kdf_level=kdf_level))


def save_plaintext_key(path: str | os.PathLike[str], signer: Signer) -> None:
    """Development only: write ``signer`` unencrypted (mode 0600, atomically). Loading it
    needs ``allow_plaintext=True``."""
    doc = {
        "version": KEYSTORE_VERSION,
        "type": "plaintext",
        "suite": signer.suite.name,
        "public_key": signer.public_key.hex(),
        "secret": signer.secret.hex(),
        "warning": "UNENCRYPTED development key; never use it on a real network",
    }
    write_private(Path(path), json.dumps(doc, indent=2) + "\n")


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600, atomically and durably (temporary file,
    fsync, rename, fsync of the folder): a crash leaves the old file or the new, never half."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


# -- reading ------------------------------------------------------------------------------------
def load_key(
    path: str | os.PathLike[str], passphrase: str, *, allow_plaintext: bool = False
) -> Signer:
    """Read and decrypt the key file at ``path``.

    Raises :class:`KeystoreError` with code ``wrong_passphrase``, ``bad_keystore`` (corrupt,
    truncated, edited, unknown version or suite) or ``plaintext_key`` (a plaintext file without
    ``allow_plaintext``), and :class:`NotFound` if there is no file.
    """
    p = Path(path)
    try:
        with p.open("rb") as f:
            mode = os.fstat(f.fileno()).st_mode
            data = f.read(_MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise NotFound(f"no key file at {p}") from None
    except OSError as exc:
        raise KeystoreError(f"cannot read key file {p}: {exc.strerror}") from None
    if stat.S_IMODE(mode) & 0o077:
        logger.warning(
            "key file %s can be read by other users (mode %o); run: chmod 600 %s",
            p,
            stat.S_IMODE(mode),
            p,
        )
    if len(data) > _MAX_FILE_BYTES:
        raise KeystoreError(f"key file {p}: larger than {_MAX_FILE_BYTES} bytes; not a key file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise KeystoreError(f"key file {p}: not UTF-8 text") from None
    return _import(text, passphrase, allow_plaintext, f"key file {p}")


def import_key(text: str, passphrase: str, *, allow_plaintext: bool = False) -> Signer:
    """Decrypt a key file's JSON text (as made by :func:`export_key`). Errors as
    :func:`load_key`."""
    return _import(text, passphrase, allow_plaintext, "keystore")


def _import(text: str, passphrase: str, allow_plaintext: bool, where: str) -> Signer:
    if len(text) > _MAX_FILE_BYTES:
        raise KeystoreError(f"{where}: larger than {_MAX_FILE_BYTES} bytes; not a key file")
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise KeystoreError(f"{where}: not valid JSON ({exc})") from None
    r = _Reader(doc, where)
    version = r.field(doc, "version", int)
    if version != KEYSTORE_VERSION:
        raise KeystoreError(
            f"{where}: unknown keystore version {version!r} (this release reads version "
            f"{KEYSTORE_VERSION})"
        )
    kind = r.field(doc, "type", str)
    try:
        suite = get_suite(r.field(doc, "suite", str))
    except InvalidInput as exc:
        raise KeystoreError(f"{where}: {exc.message}") from None
    public_key = r.hex(doc, "public_key", suite.public_key_size)

    if kind == "plaintext":
        r.only(doc, {"version", "type", "suite", "public_key", "secret", "warning"})
        secret = r.hex(doc, "secret", suite.secret_size)
        if not allow_plaintext:
            raise KeystoreError(
                f"{where} holds an unencrypted key; refusing it (development setups may "
                "allow plaintext keys explicitly)",
                ErrorCode.PLAINTEXT_KEY,
            )
        signer = _signer(suite, secret, public_key, where)
        logger.warning(
            "%s: loaded an UNENCRYPTED key (public key %s); never do this on a real network",
            where,
            public_key.hex(),
        )
        return signer
    if kind != "encrypted":
        raise KeystoreError(f"{where}: unknown key file type {kind!r}")

    r.only(doc, {"version", "type", "suite", "public_key", "kdf", "cipher"})
    kdf = r.field(doc, "kdf", dict, "kdf")
    cipher = r.field(doc, "cipher", dict, "cipher")
    r.only(kdf, {"name", "opslimit", "memlimit", "salt"}, "kdf")
    r.only(cipher, {"name", "nonce", "ciphertext"}, "cipher")
    if suite.name in SM4_SUITES or cipher.get("name") == SM4_CIPHER_NAME:
        return _import_sm4_gcm(r, suite, public_key, kdf, cipher, passphrase, where)
    if (name := r.field(kdf, "name", str, "kdf.name")) != KDF_NAME:
        raise KeystoreError(f"{where}: unsupported kdf {name!r} (expected {KDF_NAME!r})")
    if (name := r.field(cipher, "name", str, "cipher.name")) != CIPHER_NAME:
        raise KeystoreError(f"{where}: unsupported cipher {name!r} (expected {CIPHER_NAME!r})")
    opslimit = r.bounded(kdf, "opslimit", argon2id.OPSLIMIT_MIN, argon2id.OPSLIMIT_SENSITIVE)
    memlimit = r.bounded(kdf, "memlimit", argon2id.MEMLIMIT_MIN, argon2id.MEMLIMIT_SENSITIVE)
    salt = r.hex(kdf, "salt", argon2id.SALTBYTES, "kdf.salt")
    nonce = r.hex(cipher, "nonce", SecretBox.NONCE_SIZE, "cipher.nonce")
    ciphertext = r.hex(cipher, "ciphertext", None, "cipher.ciphertext")
    if len(ciphertext) <= SecretBox.MACBYTES:
        raise r.fail(f"field 'cipher.ciphertext' is truncated ({len(ciphertext)} bytes)")
    if not isinstance(passphrase, str):
        raise InvalidInput("the passphrase must be a string", ErrorCode.BAD_ARGUMENTS)

    box = SecretBox(derive_key(passphrase, salt, opslimit, memlimit))
    try:
        payload = box.decrypt(ciphertext, nonce)
    except nacl.exceptions.CryptoError:
        raise KeystoreError(
            f"{where}: wrong passphrase, or the file's ciphertext, salt or nonce was modified",
            ErrorCode.WRONG_PASSPHRASE,
        ) from None
    try:
        tag, suite_name, inner_key, secret = _payload(payload)
    except DecodeError as exc:
        raise KeystoreError(
            f"{where}: the decrypted payload is malformed ({exc.message})"
        ) from None
    if tag != PAYLOAD_TAG:
        raise KeystoreError(f"{where}: the decrypted payload has unknown tag {tag!r}")
    if suite_name != suite.name:
        raise KeystoreError(
            f"{where}: the header says suite {suite.name!r} but the encrypted key is "
            f"{suite_name!r}; the file was modified"
        )
    if inner_key != public_key:
        raise KeystoreError(
            f"{where}: the header's public key does not match the encrypted key; "
            "the file was modified"
        )
    return _signer(suite, secret, public_key, where)


# -- the GM suite: SM4-GCM ------------------------------------------------------------------------
# A key of a national-crypto suite is sealed with SM4-GCM (GB/T 32907 in GCM, RFC 8998) instead of
# XSalsa20-Poly1305; the file is otherwise the same (version 1, the header bound in the CBOR
# payload, the payload tag also as the AAD). The KDF stays argon2id with the same levels and
# bounds, giving a 16-byte SM4 key: GM standards define no memory-hard password KDF, and the
# alternative, PBKDF2-HMAC-SM3, is far cheaper to brute-force on GPUs for the same unlock time.
SM4_CIPHER_NAME = "sm4-gcm"
#: Suites whose keystores use SM4-GCM.
SM4_SUITES = frozenset({"sm2-sm3"})


def _derive_sm4(passphrase: str, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    from citychain.crypto import sm4

    secret = unicodedata.normalize("NFC", passphrase).encode("utf-8")
    key: bytes = argon2id.kdf(sm4.KEY_SIZE, secret, salt, opslimit, memlimit)
    return key


def _export_sm4_gcm(signer: Signer, passphrase: str, opslimit: int, memlimit: int) -> str:
    from citychain.crypto import sm4

    suite, public_key = signer.suite, signer.public_key
    salt = nacl.utils.random(argon2id.SALTBYTES)
    payload = codec.encode([PAYLOAD_TAG, suite.name, public_key, signer.secret])
    sealed = sm4.seal(
        _derive_sm4(passphrase, salt, opslimit, memlimit), payload, PAYLOAD_TAG.encode()
    )
    nonce, ciphertext = sealed[: sm4.NONCE_SIZE], sealed[sm4.NONCE_SIZE :]
    doc = {
        "version": KEYSTORE_VERSION,
        "type": "encrypted",
        "suite": suite.name,
        "public_key": public_key.hex(),
        "kdf": {"name": KDF_NAME, "opslimit": opslimit, "memlimit": memlimit, "salt": salt.hex()},
        "cipher": {"name": SM4_CIPHER_NAME, "nonce": nonce.hex(), "ciphertext": ciphertext.hex()},
    }
    return json.dumps(doc, indent=2) + "\n"


def _import_sm4_gcm(
    r: _Reader,
    suite: CryptoSuite,
    public_key: bytes,
    kdf: dict[str, Any],
    cipher: dict[str, Any],
    passphrase: str,
    where: str,
) -> Signer:
    from citychain.crypto import sm4

    if suite.name not in SM4_SUITES:
        raise KeystoreError(f"{where}: a {suite.name} key is never sealed with {SM4_CIPHER_NAME}")
    if (name := r.field(kdf, "name", str, "kdf.name")) != KDF_NAME:
        raise KeystoreError(f"{where}: unsupported kdf {name!r} (expected {KDF_NAME!r})")
    if (name := r.field(cipher, "name", str, "cipher.name")) != SM4_CIPHER_NAME:
        raise KeystoreError(
            f"{where}: a {suite.name} key must be sealed with {SM4_CIPHER_NAME!r}, not {name!r}"
        )
    opslimit = r.bounded(kdf, "opslimit", argon2id.OPSLIMIT_MIN, argon2id.OPSLIMIT_SENSITIVE)
    memlimit = r.bounded(kdf, "memlimit", argon2id.MEMLIMIT_MIN, argon2id.MEMLIMIT_SENSITIVE)
    salt = r.hex(kdf, "salt", argon2id.SALTBYTES, "kdf.salt")
    nonce = r.hex(cipher, "nonce", sm4.NONCE_SIZE, "cipher.nonce")
    ciphertext = r.hex(cipher, "ciphertext", None, "cipher.ciphertext")
    if len(ciphertext) <= sm4.TAG_SIZE:
        raise r.fail(f"field 'cipher.ciphertext' is truncated ({len(ciphertext)} bytes)")
    if not isinstance(passphrase, str):
        raise InvalidInput("the passphrase must be a string", ErrorCode.BAD_ARGUMENTS)
    key = _derive_sm4(passphrase, salt, opslimit, memlimit)
    try:
        payload = sm4.open_(key, nonce + ciphertext, PAYLOAD_TAG.encode())
    except InvalidInput:  # the SM4-GCM tag (code tampered)
        raise KeystoreError(
            f"{where}: wrong passphrase, or the file's ciphertext, salt or nonce was modified",
            ErrorCode.WRONG_PASSPHRASE,
        ) from None
    try:
        tag, suite_name, inner_key, secret = _payload(payload)
    except DecodeError as exc:
        raise KeystoreError(
            f"{where}: the decrypted payload is malformed ({exc.message})"
        ) from None
    if tag != PAYLOAD_TAG or suite_name != suite.name or inner_key != public_key:
        raise KeystoreError(
            f"{where}: the header does not match the encrypted key; the file was modified"
        )
    return _signer(suite, secret, public_key, where)


def derive_key(passphrase: str, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    """The 32-byte key that argon2id derives from ``passphrase`` (NFC, UTF-8) and ``salt``."""
    secret = unicodedata.normalize("NFC", passphrase).encode("utf-8")
    key: bytes = argon2id.kdf(SecretBox.KEY_SIZE, secret, salt, opslimit, memlimit)
    return key


def _payload(data: bytes) -> tuple[str, str, bytes, bytes]:
    raw = codec.decode(data)
    if (
        not isinstance(raw, list)
        or len(raw) != 4
        or not all(isinstance(x, str) for x in raw[:2])
        or not all(isinstance(x, bytes) for x in raw[2:])
    ):
        raise DecodeError("expected [tag, suite, public key, secret]")
    return raw[0], raw[1], raw[2], raw[3]


def _signer(suite: CryptoSuite, secret: bytes, public_key: bytes, where: str) -> Signer:
    if len(secret) != suite.secret_size:
        raise KeystoreError(
            f"{where}: a {suite.name} secret is {suite.secret_size} bytes, got {len(secret)}"
        )
    signer = Signer(suite, secret)
    if signer.public_key != public_key:
        raise KeystoreError(f"{where}: the secret key does not match the public key")
    return signer


class _Reader:
    """Typed field access on parsed JSON, with errors that name the file and the field."""

    def __init__(self, doc: Any, where: str) -> None:
        if not isinstance(doc, dict):
            raise KeystoreError(f"{where}: expected a JSON object at the top level")
        self.where = where

    def fail(self, message: str) -> CitychainError:
        return KeystoreError(f"{self.where}: {message}")

    def field(self, obj: dict[str, Any], key: str, kind: type, label: str | None = None) -> Any:
        label = label or key
        if key not in obj:
            raise self.fail(f"missing field {label!r}")
        value = obj[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.fail(f"field {label!r} must be {_KIND_NAMES[kind]}")
        return value

    def only(self, obj: dict[str, Any], allowed: set[str], label: str = "") -> None:
        extra = sorted(set(obj) - allowed)
        if extra:
            where = f" in {label!r}" if label else ""
            raise self.fail(f"unknown field(s){where}: {', '.join(map(repr, extra))}")

    def bounded(self, obj: dict[str, Any], key: str, lo: int, hi: int) -> int:
        value: int = self.field(obj, key, int, f"kdf.{key}")
        if not lo <= value <= hi:
            raise self.fail(f"kdf.{key} {value} is outside the accepted range {lo}..{hi}")
        return value

    def hex(self, obj: dict[str, Any], key: str, size: int | None, label: str = "") -> bytes:
        label = label or key
        text: str = self.field(obj, key, str, label)
        try:
            value = bytes.fromhex(text)
        except ValueError:
            raise self.fail(f"field {label!r} is not a hex string") from None
        if size is not None and len(value) != size:
            raise self.fail(f"field {label!r} must be {size} bytes, got {len(value)}")
        return value


_KIND_NAMES: dict[type, str] = {int: "an integer", str: "a string", dict: "a JSON object"}
