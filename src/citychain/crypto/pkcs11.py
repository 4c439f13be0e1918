"""Validator keys that never leave a hardware security module, through PKCS#11.

A :class:`Pkcs11Signer` is a :class:`~citychain.crypto.Signer` whose secret stays inside the
module: it holds an open, logged-in session and the handle of an Ed25519 private key
(``CKK_EC_EDWARDS`` on curve Ed25519, OID 1.3.101.112), and signs with ``CKM_EDDSA``, which
gives the same 64-byte signature as libsodium for the same key and message (Ed25519 is
deterministic). Consensus uses it unchanged: :class:`~citychain.consensus.privval.PrivValidator`
keeps its double-sign protection in front of it, so a vote is checked and recorded before the
module is asked to sign.

The library is python-pkcs11 (PyPI ``python-pkcs11``, in the ``[node]`` extra), a thin layer on
the module's C interface. Tested against SoftHSM2 2.6 from Debian (``apt-get install
softhsm2``: ``/usr/lib/softhsm/libsofthsm2.so``), which implements Ed25519 with OpenSSL; a
hardware module must offer ``CKM_EDDSA`` with Ed25519 keys (PKCS#11 3.0, or 2.40 with the
vendor's Edwards extension that SoftHSM2 also uses).

The PIN is never in node.toml: it comes from the environment variable ``[keys]
pkcs11_pin_env`` (``CITYCHAIN_PKCS11_PIN``) or the systemd credential ``citychain-pkcs11-pin``
(:func:`read_pin`).

At open, the signer signs a probe and checks it with the public key read from the module, so
a wrong key, a module that signs with another mechanism, or a public key object that does
not match its private key refuses the start instead of producing votes nobody accepts.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from citychain.crypto._suite import Signer
from citychain.crypto.ed25519 import ED25519
from citychain.errors import ConfigError, ErrorCode, KeystoreError

#: Ed25519's object identifier, named in the key's ``CKA_EC_PARAMS``.
ED25519_OID: Final = "1.3.101.112"
#: The systemd credential holding the token's user PIN.
PIN_CREDENTIAL: Final = "citychain-pkcs11-pin"
_PROBE: Final = b"citychain/pkcs11-probe/v1"


def _library() -> Any:
    try:
        import pkcs11
    except ImportError:
        raise ConfigError(
            '[keys] signer = "pkcs11" needs the python-pkcs11 library: '
            "pip install 'citychain[node]' (or pip install python-pkcs11)"
        ) from None
    return pkcs11


def read_pin(env_name: str, env: Mapping[str, str] | None = None) -> str:
    """The token's user PIN: ``$env_name``, else the systemd credential (a file
    ``$CREDENTIALS_DIRECTORY/citychain-pkcs11-pin``)."""
    environ: Mapping[str, str] = os.environ if env is None else env
    value = environ.get(env_name)
    if value:
        return value
    directory = environ.get("CREDENTIALS_DIRECTORY")
    if directory:
        path = Path(directory) / PIN_CREDENTIAL
        try:
            text = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            text = ""
        except (OSError, UnicodeDecodeError) as exc:
            raise KeystoreError(
                f"{path}: cannot read the PKCS#11 PIN ({exc})", ErrorCode.WRONG_PASSPHRASE
            ) from None
        if text:
            return text
    raise KeystoreError(
        f"no PIN for the PKCS#11 token: set ${env_name} or the systemd credential "
        f"{PIN_CREDENTIAL} (the PIN is never read from node.toml)",
        ErrorCode.WRONG_PASSPHRASE,
    )


def _raw_public_key(ec_point: bytes) -> bytes:
    """The 32-byte key from ``CKA_EC_POINT``: a DER OCTET STRING (04 20 ...) or raw bytes."""
    data = bytes(ec_point)
    if len(data) == 34 and data[0] == 0x04 and data[1] == 0x20:
        return data[2:]
    if len(data) == 32:
        return data
    raise KeystoreError(
        f"the module's public key is not an Ed25519 point ({len(data)} bytes)",
        ErrorCode.BAD_KEYSTORE,
    )


class Pkcs11Signer(Signer):
    """An Ed25519 key inside a PKCS#11 token. ``secret`` is empty: the key never leaves it."""

    _session: Any
    _key: Any
    _public: bytes
    _where: str
    _lock: threading.Lock

    def __init__(self, session: Any, private_key: Any, public_key: bytes, where: str) -> None:
        object.__setattr__(self, "suite", ED25519)
        object.__setattr__(self, "secret", b"")
        object.__setattr__(self, "_session", session)
        object.__setattr__(self, "_key", private_key)
        object.__setattr__(self, "_public", public_key)
        object.__setattr__(self, "_where", where)
        object.__setattr__(self, "_lock", threading.Lock())

    @property
    def public_key(self) -> bytes:
        return self._public

    @property
    def where(self) -> str:
        """The module, token and key label, for messages."""
        return self._where

    def sign(self, message: bytes) -> bytes:
        pkcs11 = _library()
        with self._lock:
            try:
                signature = self._key.sign(bytes(message), mechanism=pkcs11.Mechanism.EDDSA)
            except pkcs11.PKCS11Error as exc:
                raise KeystoreError(
                    f"the PKCS#11 module refused to sign with {self.where}: "
                    f"{type(exc).__name__} {exc}".rstrip(),
                    ErrorCode.BAD_KEYSTORE,
                ) from None
        return bytes(signature)

    def close(self) -> None:
        """Log out and close the session (the signer signs nothing more)."""
        pkcs11 = _library()
        with self._lock, contextlib.suppress(pkcs11.PKCS11Error):
            self._session.close()

    def __eq__(self, other: object) -> bool:
        return self is other

    def __hash__(self) -> int:
        return id(self)

    def __repr__(self) -> str:
        return f"Pkcs11Signer({self.where}, public_key={self.public_key.hex()})"


def _open_session(module: str, token_label: str, pin: str, *, rw: bool) -> Any:
    pkcs11 = _library()
    where = f"PKCS#11 module {module}"
    try:
        lib = pkcs11.lib(module)
    except (RuntimeError, OSError, pkcs11.PKCS11Error) as exc:
        raise ConfigError(f"{where} cannot be loaded ({exc})") from None
    try:
        token = lib.get_token(token_label=token_label)
    except pkcs11.NoSuchToken:
        raise ConfigError(f"{where} has no token labelled {token_label!r}") from None
    except pkcs11.MultipleTokensReturned:
        raise ConfigError(f"{where} has several tokens labelled {token_label!r}") from None
    try:
        return token.open(rw=rw, user_pin=pin)
    except pkcs11.PinIncorrect:
        raise KeystoreError(
            f"{where}: wrong PIN for token {token_label!r}", ErrorCode.WRONG_PASSPHRASE
        ) from None
    except pkcs11.PinLocked:
        raise KeystoreError(
            f"{where}: the PIN of token {token_label!r} is locked", ErrorCode.WRONG_PASSPHRASE
        ) from None
    except pkcs11.PKCS11Error as exc:
        raise ConfigError(
            f"{where}: cannot open token {token_label!r} ({type(exc).__name__})"
        ) from None


def _find(session: Any, object_class: Any, label: str) -> Any:
    pkcs11 = _library()
    found = list(
        session.get_objects(
            {
                pkcs11.Attribute.CLASS: object_class,
                pkcs11.Attribute.KEY_TYPE: pkcs11.KeyType.EC_EDWARDS,
                pkcs11.Attribute.LABEL: label,
            }
        )
    )
    if len(found) > 1:
        raise ConfigError(f"the PKCS#11 token holds {len(found)} Ed25519 keys labelled {label!r}")
    return found[0] if found else None


def open_signer(module: str, token_label: str, key_label: str, pin: str) -> Pkcs11Signer:
    """The signer of the Ed25519 key ``key_label`` in token ``token_label`` of ``module``.

    Refuses (``bad_config``, ``wrong_passphrase``, ``bad_keystore``) in words when the module,
    token or key is missing, the PIN is wrong, or the key does not sign what its public key
    verifies."""
    pkcs11 = _library()
    session = _open_session(module, token_label, pin, rw=False)
    where = f"key {key_label!r} of token {token_label!r} ({module})"
    try:
        private = _find(session, pkcs11.ObjectClass.PRIVATE_KEY, key_label)
        public = _find(session, pkcs11.ObjectClass.PUBLIC_KEY, key_label)
        if private is None or public is None:
            missing = "private" if private is None else "public"
            raise ConfigError(
                f"no Ed25519 {missing} key labelled {key_label!r} in token {token_label!r} "
                f"({module}); create it with `citychain init --signer pkcs11 ...` or the "
                "module's own tool"
            )
        public_key = _raw_public_key(public[pkcs11.Attribute.EC_POINT])
        signer = Pkcs11Signer(session, private, public_key, where)
        if not ED25519.verify(public_key, _PROBE, signer.sign(_PROBE)):
            raise KeystoreError(
                f"{where}: the module's signature does not verify with its public key",
                ErrorCode.BAD_KEYSTORE,
            )
    except BaseException:
        session.close()
        raise
    return signer


def generate_key(module: str, token_label: str, key_label: str, pin: str) -> bytes:
    """Create an Ed25519 key pair labelled ``key_label`` inside the token (the private key
    sensitive and never extractable); returns its public key. Refuses a label in use."""
    pkcs11 = _library()
    from pkcs11.util.ec import encode_named_curve_parameters

    session = _open_session(module, token_label, pin, rw=True)
    try:
        if _find(session, pkcs11.ObjectClass.PRIVATE_KEY, key_label) is not None:
            raise ConfigError(f"token {token_label!r} already holds a key labelled {key_label!r}")
        params = session.create_domain_parameters(
            pkcs11.KeyType.EC_EDWARDS,
            {pkcs11.Attribute.EC_PARAMS: encode_named_curve_parameters(ED25519_OID)},
            local=True,
        )
        try:
            public, _private = params.generate_keypair(
                store=True,
                label=key_label,
                private_template={
                    pkcs11.Attribute.SENSITIVE: True,
                    pkcs11.Attribute.EXTRACTABLE: False,
                },
            )
        except pkcs11.PKCS11Error as exc:
            raise ConfigError(
                f"PKCS#11 module {module} cannot make an Ed25519 key ({type(exc).__name__}): "
                "it needs CKM_EC_EDWARDS_KEY_PAIR_GEN and CKM_EDDSA"
            ) from None
        return _raw_public_key(public[pkcs11.Attribute.EC_POINT])
    finally:
        session.close()
