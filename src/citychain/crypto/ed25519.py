"""Ed25519 + SHA-256 through libsodium (PyNaCl): the default suite.

Chosen by measurement: 24.8k verifications/s per core, and libsodium releases the GIL so the
thread pool in :meth:`CryptoSuite.batch_verify` scales with cores. libsodium refuses
non-canonical signatures (S >= L) and small-order keys, so signatures are not malleable and a
transaction hash that covers the signature is stable.

Many signatures at once. One call of PyNaCl checks one signature, releasing the interpreter
lock for its arithmetic and taking it back after; thousands of those a second in the verify
threads made the lock change hands around every signature, and the thread that admits
transactions and builds blocks waited at each hand-off (with the loop below, one validator
commits ~1.35-1.7x the transfers: ``bench/RESULTS.md``, "one verification loop in C"). So
where the install built it (``setup.py``: a C compiler was present),
:meth:`Ed25519Suite._verify_many` hands a whole share of a batch to ``_ed25519_batch``, a loop
in C that calls libsodium's own ``crypto_sign_verify_detached`` (found in the library PyNaCl
loaded) with the lock released once. It accepts exactly what :meth:`Ed25519Suite.verify`
accepts (``crypto_sign_open`` makes the same check), which
``tests/crypto/test_ed25519_batch.py`` holds for valid, altered, non-canonical and small-order
cases. Without the extension, or with ``CITYCHAIN_PURE=1``, each
item goes through :meth:`Ed25519Suite.verify` as before.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
from array import array
from collections.abc import Callable, Sequence
from functools import lru_cache
from itertools import accumulate

from nacl import bindings
from nacl.exceptions import BadSignatureError, CryptoError
from nacl.signing import SigningKey

from citychain.crypto._suite import CryptoSuite, HashNew, VerifyItem, register_suite


def _native() -> Callable[[bytes, bytes, bytes, array[int]], bytes] | None:
    """``_ed25519_batch.verify`` bound to libsodium's ``crypto_sign_verify_detached``, or None
    where the install built no extension, ``CITYCHAIN_PURE=1`` asks for the Python path, or
    PyNaCl's library does not export the function (its private layout changed: the suite's
    tests then fail where a compiler is, rather than let the node run slower unseen)."""
    if os.environ.get("CITYCHAIN_PURE") == "1":
        return None
    try:
        import nacl._sodium

        from citychain.crypto._ed25519_batch import bind, verify

        function = ctypes.CDLL(nacl._sodium.__file__).crypto_sign_verify_detached
        bind(ctypes.cast(function, ctypes.c_void_p).value or 0)
    except (ImportError, OSError, AttributeError, ValueError):
        return None
    return verify


_NATIVE = _native()


@lru_cache(maxsize=64)
def _signing_key(secret: bytes) -> SigningKey:
    """The expanded key of a seed, kept for the few keys a process signs with (as the SM2
    suite keeps its parsed keys): libsodium derives the key pair from the seed on every
    ``SigningKey``, which was as costly as the signature itself (py-spy of the SDK's signed
    requests; a Signer's public key and address derived it again at each use)."""
    return SigningKey(secret)


class Ed25519Suite(CryptoSuite):
    name = "ed25519"
    public_key_size = 32
    signature_size = 64
    secret_size = 32
    hash_name = "sha256"

    def __init__(self) -> None:
        self.hash_new: HashNew = hashlib.sha256

    def generate_secret(self) -> bytes:
        return bytes(SigningKey.generate())

    def public_key(self, secret: bytes) -> bytes:
        return bytes(_signing_key(secret).verify_key)

    def sign(self, secret: bytes, message: bytes) -> bytes:
        return _signing_key(secret).sign(message).signature

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        if len(public_key) != 32 or len(signature) != 64:
            return False
        try:
            bindings.crypto_sign_open(signature + message, public_key)
        except (BadSignatureError, CryptoError, ValueError, TypeError):
            return False
        return True

    def hash(self, data: bytes) -> bytes:
        return hashlib.sha256(data).digest()

    @property
    def native_batch(self) -> bool:
        """Whether :meth:`batch_verify` runs the loop in C (see the module)."""
        return _NATIVE is not None

    def _verify_many(self, items: Sequence[VerifyItem]) -> list[bool]:
        if _NATIVE is None:
            return super()._verify_many(items)
        # What a decoded transaction or vote always is: bytes, of the sizes a signature
        # check needs. Anything else (a key or signature of the wrong size, a bytearray)
        # goes to verify(), whose answer for it stands; the rest are checked together.
        fast = [
            type(k) is bytes and type(m) is bytes and type(s) is bytes and len(k) == 32
            and len(s) == 64
            for k, m, s in items
        ]  # fmt: skip
        good = items if all(fast) else [it for it, f in zip(items, fast, strict=True) if f]
        keys, messages, signatures = zip(*good, strict=True) if good else ((), (), ())
        verdicts = _NATIVE(
            b"".join(keys),
            b"".join(signatures),
            b"".join(messages),
            array("Q", accumulate(map(len, messages))),
        )
        if len(good) == len(items):
            return [v == 1 for v in verdicts]
        ordered = iter(verdicts)
        return [
            next(ordered) == 1 if f else self.verify(*it) for it, f in zip(items, fast, strict=True)
        ]


ED25519 = Ed25519Suite()
register_suite(ED25519)
