"""The ``sm2-sm3`` suite: SM2 signatures (GB/T 32918) and SM3 hashes through the system OpenSSL 3.

Backend, chosen by measurement (bench/bench_sm2.py, bench/RESULTS.md): the system ``libcrypto``
3 through :mod:`ctypes` (``EVP_PKEY`` of type SM2, ``EVP_DigestVerify`` with SM3 and the
distinguishing ID set on the ``EVP_PKEY_CTX``). It verifies at 0.95 of ``openssl speed sm2``
measured in the same run (the Python around the calls costs ~14 µs on a ~265 µs verify), about
twice what ``gmssl-pyx`` (GmSSL, ~1,900/s here) does, and ctypes releases the GIL around every
foreign call, so :meth:`CryptoSuite.batch_verify`'s thread pool scales with cores as for Ed25519
(1.75-1.79x on 2 cores). ``cryptography``
has no SM2; pure-Python SM2 (~100-500/s) is a test oracle at most. Nothing is installed from
PyPI: libcrypto 3 ships with the OS, and the library is loaded only when the suite is first used,
so importing :mod:`citychain.crypto` never fails on a host without it.

Wire formats (pinned by this suite, whatever a library's default):

* public key: 65 bytes, uncompressed ``04 || x || y`` on the recommended curve (GB/T 32918.5);
  a point not on the curve is refused (``point_not_on_curve``).
* signature: 64 bytes ``r || s``, each big-endian and left-padded to 32 bytes. DER is refused
  (``signature_not_raw``), and so are r or s outside ``[1, n-1]`` and ``r + s = n``
  (``signature_out_of_range``): every valid signature has exactly one encoding.
* the distinguishing ID is a suite parameter (default ``1234567812345678``, GM/T 0009), written
  in genesis (:attr:`Sm2Suite.params`); it is always set explicitly, never left to a library
  default (the OpenSSL 3.0 CLI signs with an *empty* ID when none is given).
* secret: the 32-byte scalar d, ``1 <= d <= n-2``.
* hash: SM3 for everything the suite hashes (transactions, blocks, state tree, addresses,
  evidence: all of them ask :meth:`CryptoSuite.hash`).

Nonces come from OpenSSL's DRBG (never :mod:`random`). Parsed keys are cached (4,096 public
keys, 64 secret keys, as ``EVP_PKEY`` handles) so a validator's key is decoded once.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import hashlib
import secrets
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from citychain.crypto._suite import CryptoSuite, HashNew, register_suite
from citychain.errors import ConfigError, ErrorCode, InvalidInput

__all__ = [
    "DEFAULT_DISTID",
    "SM2_SM3",
    "Sm2Suite",
    "check_signature",
    "sm3",
    "sm3_new",
    "verify_digest",
]

#: GM/T 0009-2012 / GB/T 35276-2017 default user ID.
DEFAULT_DISTID = b"1234567812345678"

# The recommended curve, GB/T 32918.5-2017.
P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
A = P - 3
B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93
N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
GX = 0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7
GY = 0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0

# DER prefixes: SubjectPublicKeyInfo and SEC1 ECPrivateKey, both naming the SM2 curve OID
# 1.2.156.10197.1.301.
_SPKI_PREFIX = bytes.fromhex("3059301306072a8648ce3d020106082a811ccf5501822d034200")
_SEC1_PREFIX = bytes.fromhex("30310201010420")
_SEC1_SUFFIX = bytes.fromhex("a00a06082a811ccf5501822d")

_MAX_DISTID = 8191  # ENTL is the ID's length in bits, in 16 bits


# -- the libcrypto binding ------------------------------------------------------------------------
class _Lib:
    """The few libcrypto 3 functions this suite needs, loaded on first use."""

    def __init__(self) -> None:
        name = ctypes.util.find_library("crypto")
        lib: Any = None
        for candidate in ("libcrypto.so.3", name):
            if not candidate:
                continue
            try:
                lib = ctypes.CDLL(candidate)
                break
            except OSError:
                continue
        if lib is None or not hasattr(lib, "OpenSSL_version_num"):
            raise ConfigError(
                "the sm2-sm3 suite needs the system OpenSSL 3 library (libcrypto.so.3), "
                "which was not found",
                ErrorCode.BAD_CONFIG,
            )
        lib.OpenSSL_version_num.restype = ctypes.c_ulong
        if lib.OpenSSL_version_num() < 0x30000000:
            raise ConfigError(
                "the sm2-sm3 suite needs OpenSSL 3 (libcrypto is older)", ErrorCode.BAD_CONFIG
            )
        vp, cp, sz, ci = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int
        pp = ctypes.POINTER(ctypes.c_char_p)
        sigs: dict[str, tuple[Any, list[Any]]] = {
            "d2i_PUBKEY": (vp, [vp, pp, ctypes.c_long]),
            "d2i_PrivateKey": (vp, [ci, vp, pp, ctypes.c_long]),
            "i2d_PUBKEY": (ci, [vp, ctypes.POINTER(ctypes.c_void_p)]),
            "EVP_PKEY_free": (None, [vp]),
            "EVP_PKEY_up_ref": (ci, [vp]),
            "EVP_PKEY_is_a": (ci, [vp, cp]),
            "EVP_MD_fetch": (vp, [vp, cp, cp]),
            "EVP_MD_CTX_new": (vp, []),
            "EVP_MD_CTX_free": (None, [vp]),
            "EVP_PKEY_CTX_new": (vp, [vp, vp]),
            "EVP_PKEY_CTX_free": (None, [vp]),
            "EVP_PKEY_CTX_set1_id": (ci, [vp, cp, sz]),
            "EVP_DigestVerifyInit": (ci, [vp, ctypes.POINTER(vp), vp, vp, vp]),
            "EVP_DigestVerify": (ci, [vp, cp, sz, cp, sz]),
            "EVP_DigestSignInit": (ci, [vp, ctypes.POINTER(vp), vp, vp, vp]),
            "EVP_DigestSign": (ci, [vp, vp, ctypes.POINTER(sz), cp, sz]),
            "EVP_Digest": (ci, [cp, sz, vp, ctypes.POINTER(ctypes.c_uint), vp, vp]),
            "EVP_PKEY_verify_init": (ci, [vp]),
            "EVP_PKEY_verify": (ci, [vp, cp, sz, cp, sz]),
            "CRYPTO_free": (None, [vp, cp, ci]),
            "ERR_clear_error": (None, []),
        }
        for fn, (res, args) in sigs.items():
            f = getattr(lib, fn)
            f.restype = res
            f.argtypes = args
        self.lib = lib
        self.sm3 = lib.EVP_MD_fetch(None, b"SM3", None)
        if not self.sm3:
            raise ConfigError("this OpenSSL has no SM3", ErrorCode.BAD_CONFIG)
        self.version: int = lib.OpenSSL_version_num()


_LIB: _Lib | None = None
_LIB_LOCK = threading.Lock()


def _lib() -> _Lib:
    global _LIB
    if _LIB is None:
        with _LIB_LOCK:
            if _LIB is None:
                _LIB = _Lib()
    return _LIB


class _KeyCache:
    """EVP_PKEYs by their DER, so a validator's key is parsed once. Entries handed out carry
    their own reference (``EVP_PKEY_up_ref``): eviction never frees a key another thread uses."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[bytes, int] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: bytes, load: Any) -> int | None:
        lib = _lib().lib
        with self._lock:
            pkey = self._items.get(key)
            if pkey is not None:
                self._items.move_to_end(key)
                lib.EVP_PKEY_up_ref(pkey)
                return pkey
        pkey = load(key)
        if not pkey:
            return None
        with self._lock:
            if key in self._items:  # another thread won the race
                lib.EVP_PKEY_free(pkey)
                pkey = self._items[key]
            else:
                self._items[key] = pkey
                while len(self._items) > self._size:
                    lib.EVP_PKEY_free(self._items.popitem(last=False)[1])
            lib.EVP_PKEY_up_ref(pkey)
            return pkey


def _load_public(point: bytes) -> int | None:
    lib = _lib().lib
    der = _SPKI_PREFIX + point
    buf = ctypes.c_char_p(der)
    pkey: int | None = lib.d2i_PUBKEY(None, ctypes.byref(buf), len(der))
    if not pkey:
        lib.ERR_clear_error()
        return None
    if lib.EVP_PKEY_is_a(pkey, b"SM2") != 1:
        lib.EVP_PKEY_free(pkey)
        return None
    return pkey


def _load_private(secret: bytes) -> int | None:
    lib = _lib().lib
    der = _SEC1_PREFIX + secret + _SEC1_SUFFIX
    buf = ctypes.c_char_p(der)
    pkey: int | None = lib.d2i_PrivateKey(408, None, ctypes.byref(buf), len(der))  # EVP_PKEY_EC
    if not pkey:
        lib.ERR_clear_error()
        return None
    if lib.EVP_PKEY_is_a(pkey, b"SM2") != 1:
        lib.EVP_PKEY_free(pkey)
        return None
    return pkey


_PUBLIC = _KeyCache(4096)
_PRIVATE = _KeyCache(64)


# -- encodings ------------------------------------------------------------------------------------
def _der_int(v: int) -> bytes:
    b = v.to_bytes(
        (v.bit_length() + 8) // 8, "big"
    )  # a leading 0x00 exactly when the top bit is set
    return b"\x02" + bytes([len(b)]) + b


def _der_signature(r: int, s: int) -> bytes:
    body = _der_int(r) + _der_int(s)
    return b"\x30" + bytes([len(body)]) + body


def _raw_from_der(der: bytes) -> bytes:
    # Only ever parses what OpenSSL just produced: SEQUENCE { INTEGER r, INTEGER s }, short form.
    if len(der) < 8 or der[0] != 0x30 or der[1] != len(der) - 2 or der[2] != 0x02:
        raise InvalidInput("OpenSSL returned an unexpected SM2 signature encoding")
    rlen = der[3]
    r = int.from_bytes(der[4 : 4 + rlen], "big")
    at = 4 + rlen
    slen = der[at + 1]
    s = int.from_bytes(der[at + 2 : at + 2 + slen], "big")
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def check_signature(signature: bytes) -> tuple[int, int]:
    """(r, s) of a 64-byte raw SM2 signature, or :class:`InvalidInput` naming what is wrong:
    ``signature_not_raw`` (DER or any other length) or ``signature_out_of_range``."""
    if len(signature) != 64:
        what = "DER-encoded " if signature[:1] == b"\x30" and 8 <= len(signature) <= 72 else ""
        raise InvalidInput(
            f"an SM2 signature is 64 bytes r||s; got {len(signature)} {what}bytes",
            ErrorCode.SIGNATURE_NOT_RAW,
        )
    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:], "big")
    if not (0 < r < N and 0 < s < N) or (r + s) % N == 0:
        raise InvalidInput(
            "SM2 signature r and s must lie in [1, n-1] with r + s != n",
            ErrorCode.SIGNATURE_OUT_OF_RANGE,
        )
    return r, s


def _on_curve(public_key: bytes) -> bool:
    if len(public_key) != 65 or public_key[0] != 4:
        return False
    x = int.from_bytes(public_key[1:33], "big")
    y = int.from_bytes(public_key[33:], "big")
    if x >= P or y >= P:
        return False
    return (y * y - (x * x * x + A * x + B)) % P == 0


def sm3(data: bytes) -> bytes:
    """SM3 (GB/T 32905) of ``data``, through libcrypto's EVP_Digest."""
    lib = _lib()
    out = ctypes.create_string_buffer(32)
    if lib.lib.EVP_Digest(data, len(data), out, None, lib.sm3, None) != 1:
        raise InvalidInput("SM3 failed in libcrypto")  # not reachable with a working libcrypto
    return out.raw


class _Sm3Digest:
    """``sm3_new(data).digest()`` through :func:`sm3`, for a Python whose hashlib lacks SM3."""

    __slots__ = ("_data",)

    def __init__(self, data: bytes = b"") -> None:
        self._data = data

    def digest(self) -> bytes:
        return sm3(self._data)


def _sm3_constructor() -> HashNew:
    # hashlib reaches SM3 through the OpenSSL it was built with (OpenSSL 3's default
    # provider has it): ~5 us a 200-byte hash here against ~7 us through ctypes, and no
    # Python frame per call. Both are the same function; tests/crypto checks them against
    # each other and against the GB/T 32905 vectors.
    try:
        hashlib.new("sm3", b"abc")
    except ValueError:
        return _Sm3Digest
    return functools.partial(hashlib.new, "sm3")


#: SM3 as a hashlib-style constructor (:data:`citychain.crypto.HashNew`): what the chain's
#: trees, ids and block hashes use on an ``sm2-sm3`` chain.
sm3_new: HashNew = _sm3_constructor()


# -- the suite ------------------------------------------------------------------------------------
class Sm2Suite(CryptoSuite):
    """SM2 with SM3 on the recommended curve, under one distinguishing ID."""

    name = "sm2-sm3"
    public_key_size = 65
    signature_size = 64
    secret_size = 32
    hash_name = "sm3"

    def __init__(self, distid: bytes = DEFAULT_DISTID) -> None:
        if not isinstance(distid, bytes) or not 0 < len(distid) <= _MAX_DISTID:
            raise ConfigError(
                f"the SM2 distinguishing ID must be 1..{_MAX_DISTID} bytes",
                ErrorCode.BAD_DISTID,
            )
        self.distid = distid
        self.hash_new: HashNew = sm3_new

    @property
    def params(self) -> dict[str, str]:
        """What genesis records so every node verifies under the same ID."""
        return {"distid": self.distid.decode("latin-1")}

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Sm2Suite:
        """The suite a genesis describes; ``bad_distid`` if its ID is missing or unusable."""
        distid = params.get("distid")
        if not isinstance(distid, str) or not distid:
            raise ConfigError("genesis names no SM2 distinguishing ID", ErrorCode.BAD_DISTID)
        try:
            raw = distid.encode("latin-1")
        except UnicodeEncodeError:
            raise ConfigError(
                "the SM2 distinguishing ID must be Latin-1 text", ErrorCode.BAD_DISTID
            ) from None
        return cls(raw)

    def with_params(self, params: Mapping[str, Any]) -> Sm2Suite:
        """This suite under a genesis's ``crypto_params``: ``self`` for the same ID, else a
        suite of that ID (one instance per ID in the process, so signers compare by identity);
        ``bad_distid`` when the ID is missing or unusable, ``bad_config`` for other keys."""
        extra = sorted(set(params) - {"distid"})
        if extra:
            raise ConfigError(
                f"the {self.name} crypto suite's parameters are distid only, got {extra}",
                ErrorCode.BAD_CONFIG,
            )
        other = self.from_params(dict(params))
        if other.distid == self.distid:
            return self
        return _by_distid.setdefault(other.distid, other)

    def generate_secret(self) -> bytes:
        while True:
            d = secrets.randbelow(N - 1)  # 0 .. n-2
            if d:
                return d.to_bytes(32, "big")

    def _private(self, secret: bytes) -> int:
        if len(secret) != 32 or not 0 < int.from_bytes(secret, "big") < N - 1:
            raise InvalidInput(
                "an SM2 secret is 32 bytes d with 1 <= d <= n-2", ErrorCode.BAD_ARGUMENTS
            )
        pkey = _PRIVATE.get(secret, _load_private)
        if pkey is None:
            raise InvalidInput("libcrypto refused the SM2 secret key", ErrorCode.BAD_ARGUMENTS)
        return pkey

    def public_key(self, secret: bytes) -> bytes:
        lib = _lib().lib
        pkey = self._private(secret)
        try:
            out = ctypes.c_void_p()
            n = lib.i2d_PUBKEY(pkey, ctypes.byref(out))
            if n <= 0 or not out.value:
                raise InvalidInput("libcrypto could not encode the SM2 public key")
            der = ctypes.string_at(out.value, n)
            lib.CRYPTO_free(out, b"sm2.py", 0)
        finally:
            lib.EVP_PKEY_free(pkey)
        return der[-65:]

    def sign(self, secret: bytes, message: bytes) -> bytes:
        lb = _lib()
        lib = lb.lib
        pkey = self._private(secret)
        mctx = lib.EVP_MD_CTX_new()
        pctx = ctypes.c_void_p()  # owned by mctx
        try:
            sig = ctypes.create_string_buffer(80)
            siglen = ctypes.c_size_t(80)
            # The ID goes on the context *after* init: OpenSSL 3.0 silently drops one set on a
            # fresh EVP_PKEY_CTX handed in with EVP_MD_CTX_set_pkey_ctx and signs under its
            # default (a test with a second ID catches that).
            if (
                not mctx
                or lib.EVP_DigestSignInit(mctx, ctypes.byref(pctx), lb.sm3, None, pkey) != 1
                or lib.EVP_PKEY_CTX_set1_id(pctx, self.distid, len(self.distid)) != 1
                or lib.EVP_DigestSign(mctx, sig, ctypes.byref(siglen), message, len(message)) != 1
            ):
                lib.ERR_clear_error()
                raise InvalidInput("libcrypto failed to make an SM2 signature")
        finally:
            lib.EVP_MD_CTX_free(mctx)
            lib.EVP_PKEY_free(pkey)
        return _raw_from_der(sig.raw[: siglen.value])

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        try:
            r, s = check_signature(signature)
        except InvalidInput:
            return False
        if not _on_curve(public_key):
            return False
        lb = _lib()
        lib = lb.lib
        pkey = _PUBLIC.get(bytes(public_key), _load_public)
        if pkey is None:
            return False
        der = _der_signature(r, s)
        mctx = lib.EVP_MD_CTX_new()
        pctx = ctypes.c_void_p()  # owned by mctx
        try:
            ok: bool = (
                bool(mctx)
                and lib.EVP_DigestVerifyInit(mctx, ctypes.byref(pctx), lb.sm3, None, pkey) == 1
                and lib.EVP_PKEY_CTX_set1_id(pctx, self.distid, len(self.distid)) == 1
                and lib.EVP_DigestVerify(mctx, der, len(der), message, len(message)) == 1
            )
            if not ok:
                lib.ERR_clear_error()
            return ok
        finally:
            lib.EVP_MD_CTX_free(mctx)
            lib.EVP_PKEY_free(pkey)

    def hash(self, data: bytes) -> bytes:
        return sm3_new(data).digest()

    def check_public_key(self, public_key: bytes) -> None:
        super().check_public_key(public_key)
        if not _on_curve(public_key):
            raise InvalidInput(
                "the SM2 public key is not an uncompressed point on the recommended curve",
                ErrorCode.POINT_NOT_ON_CURVE,
            )

    def check_signature(self, signature: bytes) -> None:
        """:func:`check_signature`, for callers that want the reason a signature is refused."""
        check_signature(signature)


def verify_digest(public_key: bytes, e: bytes, signature: bytes) -> bool:
    """Verify a raw r||s signature over a given e = SM3(Z_A || M) (the prehashed form some
    libraries and OpenSSL's own test data use). Not part of the suite: the chain always signs
    messages under its ID. Never raises on malformed input."""
    try:
        r, s = check_signature(signature)
    except InvalidInput:
        return False
    if len(e) != 32 or not _on_curve(public_key):
        return False
    lib = _lib().lib
    pkey = _PUBLIC.get(bytes(public_key), _load_public)
    if pkey is None:
        return False
    der = _der_signature(r, s)
    pctx = lib.EVP_PKEY_CTX_new(pkey, None)
    try:
        ok: bool = (
            bool(pctx)
            and lib.EVP_PKEY_verify_init(pctx) == 1
            and lib.EVP_PKEY_verify(pctx, der, len(der), e, len(e)) == 1
        )
        if not ok:
            lib.ERR_clear_error()
        return ok
    finally:
        lib.EVP_PKEY_CTX_free(pctx)
        lib.EVP_PKEY_free(pkey)


SM2_SM3 = Sm2Suite()
register_suite(SM2_SM3)
#: The suites of other distinguishing IDs that genesis files named, one per ID.
_by_distid: dict[bytes, Sm2Suite] = {SM2_SM3.distid: SM2_SM3}
