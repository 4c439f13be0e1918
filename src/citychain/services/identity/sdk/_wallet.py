"""The holder's wallet: a citizen's keys and credentials in one encrypted file.

Theory of operation
-------------------
A wallet is one JSON file (mode 0600)::

    {"version": 1, "type": "citychain-wallet",
     "kdf": {"name": "argon2id", "opslimit": ..., "memlimit": ..., "salt": "<hex>"},
     "cipher": {"name": "xsalsa20-poly1305", "nonce": "<hex>", "ciphertext": "<hex>"}}

* The passphrase gives a key through argon2id (the keystore's KDF and levels, see
  :mod:`citychain.crypto.keystore`), derived once when the wallet is opened and kept in memory
  while it is. The ciphertext is XSalsa20-Poly1305 over the canonical JSON (RFC 8785) of
  ``{"tag": "citychain/wallet/v1", "keys": {name: secret hex}, "credentials": {id: entry}}``.
  Credentials carry personal data, so they are encrypted as the keys are: a copied file gives
  away nothing without the passphrase, and a wrong passphrase and an edited file are both
  ``wrong_passphrase`` (the MAC cannot tell them apart).
* Every change re-encrypts the whole with a fresh nonce and replaces the file atomically
  (temporary file, fsync, rename): a crash leaves the wallet before or after the change.
* Keys are Ed25519, each known by a name and as a ``did:key`` (a citizen's DID never needs the
  chain). A credential is stored as given (a VC 2.0 object, or an SD-JWT text) under an id
  derived from its content (the first 16 hex digits of SHA-256 of its canonical bytes), so
  adding it twice keeps one copy.
* Presenting: a VC goes into a verifiable presentation signed by a wallet key over the
  verifier's ``challenge`` and ``domain``; an SD-JWT keeps only the disclosures the holder
  chooses, with a key-binding JWT over the verifier's ``nonce`` and audience.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.pwhash.argon2id as argon2id
import nacl.utils
from nacl.secret import SecretBox

from citychain.crypto import ED25519, Signer
from citychain.crypto.keystore import KDF_LEVELS, derive_key, write_private
from citychain.errors import ErrorCode, InvalidInput, KeystoreError, NotFound
from citychain.services.identity.sdk._di import EDDSA_JCS_2022, canonicalize_jcs
from citychain.services.identity.sdk._keyfile import DEFAULT_ITERATIONS, export_key, import_key
from citychain.services.identity.sdk._sdjwt import (
    Disclosure,
    _parse_jwt,
    _split,
    disclosures,
    present_sd_jwt,
)
from citychain.services.identity.sdk._sdjwt import Path as ClaimPath
from citychain.services.identity.sdk._vc import (
    check_credential_shape,
    create_presentation,
    issuer_id,
    sign_presentation,
)
from citychain.services.identity.shapes import did_key, multikey_encode

TAG = "citychain/wallet/v1"
_MAX_FILE_BYTES = 256 * 1024 * 1024
#: A key's name: what the CLI and the routes call it.
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


def _bad(message: str) -> InvalidInput:
    return InvalidInput(message, ErrorCode.BAD_ARGUMENTS)


@dataclass(frozen=True, slots=True)
class StoredCredential:
    """One credential in the wallet, as a list shows it (the value itself by :meth:`Wallet.get`)."""

    id: str
    format: str  # "vc" (a VC 2.0 object) or "sd-jwt"
    types: tuple[str, ...]
    issuer: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "format": self.format,
            "types": list(self.types),
            "issuer": self.issuer,
        }


def _describe(value: Any) -> tuple[str, tuple[str, ...], str]:
    """(format, types, issuer) of a credential to store; ``invalid_credential`` if it is none."""
    if isinstance(value, str):
        jwt, _, _ = _split(value.strip())
        _, payload, _, _ = _parse_jwt(jwt, "the issuer-signed JWT", ErrorCode.INVALID_CREDENTIAL)
        disclosures(value.strip())  # every disclosure decodes and is the issuer's
        return "sd-jwt", (str(payload.get("vct", "")),), str(payload.get("iss", ""))
    check_credential_shape(value)
    if "proof" not in value:
        raise InvalidInput(
            "the credential has no proof: a wallet keeps issued credentials",
            ErrorCode.INVALID_CREDENTIAL,
        )
    types = value["type"]
    return "vc", tuple([types] if isinstance(types, str) else types), issuer_id(value)


def credential_id(value: str | Mapping[str, Any]) -> str:
    """The wallet's id of a credential: 16 hex digits of SHA-256 of its canonical bytes."""
    data = value.strip().encode() if isinstance(value, str) else canonicalize_jcs(value)
    return hashlib.sha256(data).hexdigest()[:16]


class Wallet:
    """A holder's keys and credentials, encrypted at rest (see the module's docstring).

    ``Wallet.create(path, passphrase)`` makes one; ``Wallet.open(path, passphrase)`` opens
    one. Each change is written at once."""

    def __init__(
        self, path: Path, key: bytes, kdf: dict[str, Any], content: dict[str, Any]
    ) -> None:
        self.path = path
        self._key = key
        self._kdf = kdf
        self._keys: dict[str, str] = content["keys"]
        self._credentials: dict[str, dict[str, Any]] = content["credentials"]

    # -- opening ----------------------------------------------------------------------------
    @classmethod
    def create(
        cls, path: str | os.PathLike[str], passphrase: str, *, kdf_level: str = "moderate"
    ) -> Wallet:
        """A new, empty wallet at ``path`` (refused if a file is there)."""
        target = Path(path)
        if target.exists():
            raise _bad(f"{target} exists; open it, or choose another path")
        if kdf_level not in KDF_LEVELS:
            raise _bad(f"unknown kdf_level {kdf_level!r}; use one of {', '.join(KDF_LEVELS)}")
        if not isinstance(passphrase, str) or not passphrase:
            raise _bad("a wallet needs a passphrase")
        opslimit, memlimit = KDF_LEVELS[kdf_level]
        salt = nacl.utils.random(argon2id.SALTBYTES)
        kdf = {"name": "argon2id", "opslimit": opslimit, "memlimit": memlimit, "salt": salt.hex()}
        wallet = cls(
            target,
            derive_key(passphrase, salt, opslimit, memlimit),
            kdf,
            {"keys": {}, "credentials": {}},
        )
        wallet._save()
        return wallet

    @classmethod
    def open(cls, path: str | os.PathLike[str], passphrase: str) -> Wallet:
        """Open the wallet at ``path``: ``not_found``, ``bad_keystore`` (not a wallet) or
        ``wrong_passphrase`` (or an edited file)."""
        target = Path(path)
        try:
            if target.stat().st_size > _MAX_FILE_BYTES:
                raise KeystoreError(f"{target} is too large to be a wallet")
            doc = json.loads(target.read_bytes())
        except FileNotFoundError:
            raise NotFound(f"no wallet at {target}; create one with `wallet init`") from None
        except (OSError, ValueError) as exc:
            raise KeystoreError(f"{target} is not a readable wallet: {exc}") from None
        try:
            if doc.get("type") != "citychain-wallet" or doc.get("version") != 1:
                raise ValueError("not a citychain wallet (version 1)")
            kdf, cipher = doc["kdf"], doc["cipher"]
            opslimit, memlimit = int(kdf["opslimit"]), int(kdf["memlimit"])
            if kdf["name"] != "argon2id" or (opslimit, memlimit) not in KDF_LEVELS.values():
                raise ValueError("its KDF is not one of the keystore's levels")
            salt, nonce = bytes.fromhex(kdf["salt"]), bytes.fromhex(cipher["nonce"])
            ciphertext = bytes.fromhex(cipher["ciphertext"])
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise KeystoreError(f"{target} is not a citychain wallet: {exc}") from None
        key = derive_key(passphrase, salt, opslimit, memlimit)
        try:
            plain = SecretBox(key).decrypt(ciphertext, nonce)
        except (nacl.exceptions.CryptoError, ValueError):
            raise KeystoreError(
                f"cannot open {target}: wrong passphrase, or the file was changed",
                ErrorCode.WRONG_PASSPHRASE,
            ) from None
        content = json.loads(plain)
        if content.get("tag") != TAG:
            raise KeystoreError(f"{target} holds no citychain wallet")
        return cls(target, key, {**kdf}, content)

    def _save(self) -> None:
        content = {"tag": TAG, "keys": self._keys, "credentials": self._credentials}
        nonce = nacl.utils.random(SecretBox.NONCE_SIZE)
        ciphertext = SecretBox(self._key).encrypt(canonicalize_jcs(content), nonce).ciphertext
        doc = {
            "version": 1,
            "type": "citychain-wallet",
            "kdf": self._kdf,
            "cipher": {
                "name": "xsalsa20-poly1305",
                "nonce": nonce.hex(),
                "ciphertext": ciphertext.hex(),
            },
        }
        write_private(self.path, json.dumps(doc, indent=1) + "\n")

    # -- keys -------------------------------------------------------------------------------
    def new_key(self, name: str = "default", *, secret: bytes | None = None) -> str:
        """Make (or, with ``secret``, import) the Ed25519 key ``name``; its ``did:key``."""
        if not name or len(name) > 64 or not set(name) <= _NAME_CHARS:
            raise _bad(f"a key name is 1-64 letters, digits, '-', '_' or '.', got {name!r}")
        if name in self._keys:
            raise _bad(f"the wallet already has a key named {name!r}")
        signer = Signer(ED25519, secret if secret is not None else nacl.utils.random(32))
        self._keys[name] = signer.secret.hex()
        self._save()
        return did_key(signer.public_key)

    def keys(self) -> dict[str, str]:
        """Each key's name and ``did:key``."""
        return {name: did_key(self.signer(name).public_key) for name in sorted(self._keys)}

    def signer(self, name: str = "default") -> Signer:
        """The key ``name`` (``not_found`` if the wallet has none by that name)."""
        secret = self._keys.get(name)
        if secret is None:
            raise NotFound(f"the wallet has no key named {name!r} (make one with new_key)")
        return Signer(ED25519, bytes.fromhex(secret))

    def export_key(
        self, passphrase: str, name: str = "default", *, iterations: int = DEFAULT_ITERATIONS
    ) -> str:
        """The key ``name`` as a key file for a phone's browser: a JWE under ``passphrase``
        (its own, not the wallet's), which a node's pages open with WebCrypto alone (see
        :mod:`._keyfile`). Whoever has the file and its passphrase has the key."""
        return export_key(self.signer(name), passphrase, iterations=iterations)

    def import_key(self, name: str, key_file: str, passphrase: str) -> str:
        """Add the key in ``key_file`` (made by :meth:`export_key`) as ``name``; its
        ``did:key``."""
        return self.new_key(name, secret=import_key(key_file, passphrase).secret)

    def verification_method(self, name: str = "default") -> str:
        """The key's verification method id (``did:key:z...#z...``)."""
        public = self.signer(name).public_key
        return f"{did_key(public)}#{multikey_encode(public)}"

    # -- credentials ------------------------------------------------------------------------
    def add(self, credential: str | Mapping[str, Any]) -> str:
        """Store an issued credential (a VC object or an SD-JWT text); its id. Checked for
        shape (not verified: a verifier does that, against the chain)."""
        value: str | dict[str, Any] = (
            credential.strip() if isinstance(credential, str) else dict(credential)
        )
        fmt, types, issuer = _describe(value)
        cid = credential_id(value)
        self._credentials[cid] = {
            "format": fmt,
            "types": list(types),
            "issuer": issuer,
            "value": value,
        }
        self._save()
        return cid

    def credentials(self) -> list[StoredCredential]:
        """Every stored credential, by id."""
        return [
            StoredCredential(cid, e["format"], tuple(e["types"]), e["issuer"])
            for cid, e in sorted(self._credentials.items())
        ]

    def get(self, cid: str) -> str | dict[str, Any]:
        """The credential stored as ``cid`` (``not_found`` if none)."""
        entry = self._credentials.get(cid)
        if entry is None:
            raise NotFound(f"the wallet has no credential {cid!r}")
        value: str | dict[str, Any] = entry["value"]
        return value

    def remove(self, cid: str) -> None:
        """Forget the credential ``cid``."""
        self.get(cid)
        del self._credentials[cid]
        self._save()

    def disclosures(self, cid: str) -> list[Disclosure]:
        """What a holder may choose to show of the SD-JWT ``cid``: each claim's path."""
        value = self.get(cid)
        if not isinstance(value, str):
            raise _bad(f"{cid} is a VC 2.0 credential, shown whole; only an SD-JWT has disclosures")
        return disclosures(value)

    # -- presenting -------------------------------------------------------------------------
    def present(
        self,
        ids: Sequence[str],
        *,
        challenge: str,
        domain: str,
        key: str = "default",
        cryptosuite: str = EDDSA_JCS_2022,
        created: datetime | None = None,
    ) -> dict[str, Any]:
        """A verifiable presentation of the VC credentials ``ids``, signed by the key ``key``
        over the verifier's ``challenge`` and ``domain``."""
        if not ids:
            raise _bad("a presentation holds at least one credential")
        chosen = []
        for cid in ids:
            value = self.get(cid)
            if isinstance(value, str):
                raise _bad(f"{cid} is an SD-JWT: present it with present_sd_jwt")
            chosen.append(value)
        holder = did_key(self.signer(key).public_key)
        vp = create_presentation(chosen, holder=holder)
        return sign_presentation(
            vp,
            self.signer(key),
            self.verification_method(key),
            challenge=challenge,
            domain=domain,
            cryptosuite=cryptosuite,
            created=created,
        )

    def present_sd_jwt(
        self,
        cid: str,
        disclose: Collection[str | ClaimPath],
        *,
        nonce: str,
        audience: str,
        now: int,
        key: str = "default",
    ) -> str:
        """The SD-JWT ``cid`` with only the claims ``disclose`` (names, or paths such as
        ``("address", "locality")``), bound to the verifier's ``nonce`` and ``audience`` by
        the key ``key`` (the one the issuer bound it to)."""
        value = self.get(cid)
        if not isinstance(value, str):
            raise _bad(f"{cid} is a VC 2.0 credential: present it with present")
        paths = [(p,) if isinstance(p, str) else tuple(p) for p in disclose]
        for p in paths:
            # a path's steps are claim names and array positions (it comes from JSON: an
            # object or a list in it would be unhashable below, a crash instead of a refusal)
            if not p or not all(type(step) in (str, int) for step in p):
                raise _bad(
                    "a claim to disclose is a name, or a path of names and array positions, "
                    f"not {list(p)!r}"
                )
        known = {d.path for d in disclosures(value)}
        for p in paths:
            if p not in known:
                shown = ", ".join("/".join(map(str, k)) for k in sorted(known, key=str))
                raise _bad(
                    f"{cid} has no disclosable claim {'/'.join(map(str, p))!r} (it has: {shown})"
                )
        return present_sd_jwt(
            value, paths, holder=self.signer(key), nonce=nonce, aud=audience, iat=now
        )
