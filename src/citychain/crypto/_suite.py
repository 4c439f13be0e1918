"""The crypto-suite interface and the registry of suites by name."""

from __future__ import annotations

import hashlib
import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from citychain.errors import ConfigError, ErrorCode, InvalidInput


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


class Digest(Protocol):
    """What a hashlib-style constructor returns: something with ``digest()``."""

    def digest(self) -> bytes: ...


#: A hashlib-style constructor: ``new(data).digest()`` is the hash of ``data``.
#:
#: The chain's hash reaches every layer below the suite in this form, not as a
#: ``bytes -> bytes`` function, because ``hashlib.sha256`` *is* such a constructor: the
#: Ed25519 chain's hot paths (transaction ids, the state tree's inner nodes) call exactly what
#: they called before the hash became a parameter, with no Python frame in between.
HashNew = Callable[[bytes], Digest]


class VerifyItem(NamedTuple):
    """One signature check: ``public_key`` signed ``message`` giving ``signature``."""

    public_key: bytes
    message: bytes
    signature: bytes


_POOL: ThreadPoolExecutor | None = None
_POOL_PID = 0


def _pool() -> ThreadPoolExecutor:
    # One pool per process (re-created after fork). The verify calls release the GIL, so
    # threads scale to the core count without pickling (measured 1.94x on 2 cores).
    global _POOL, _POOL_PID
    if _POOL is None or os.getpid() != _POOL_PID:
        _POOL = ThreadPoolExecutor(
            max_workers=max(1, os.cpu_count() or 1), thread_name_prefix="verify"
        )
        _POOL_PID = os.getpid()
    return _POOL


#: Below this many items a batch is verified inline: the thread hand-off costs more than it saves.
BATCH_INLINE_BELOW = 64


#: Addresses :meth:`CryptoSuite.address` remembers, per suite (~200 bytes each).
_ADDRESSES_KEPT = 1 << 16


class CryptoSuite(ABC):
    """Signature scheme + hash + address derivation, chosen once per chain in genesis."""

    #: Stable name written in genesis and keystores, e.g. ``"ed25519"``.
    name: str
    public_key_size: int
    signature_size: int
    secret_size: int

    @abstractmethod
    def generate_secret(self) -> bytes:
        """A fresh random secret key (the seed, for Ed25519)."""

    @abstractmethod
    def public_key(self, secret: bytes) -> bytes:
        """The public key of ``secret``."""

    @abstractmethod
    def sign(self, secret: bytes, message: bytes) -> bytes:
        """A signature over ``message`` (already domain-separated by the caller)."""

    @abstractmethod
    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        """True iff the signature is valid. Never raises on malformed input."""

    #: The name of the suite's hash (``"sha256"``, ``"sm3"``): what a proof spec is chosen by
    #: (:func:`citychain.proof.ics23.hash_op_named`) and what genesis implies.
    hash_name: str
    #: The suite's hash as a hashlib-style constructor (see :data:`HashNew`). Every hash of
    #: the chain (transactions, blocks, evidence, genesis, Merkle and state trees, block parts,
    #: mempool ids) is made with it; certificate fingerprints are not chain hashes and stay
    #: SHA-256 whatever the suite.
    hash_new: HashNew

    @abstractmethod
    def hash(self, data: bytes) -> bytes:
        """The suite's 32-byte hash (``hash_new(data).digest()``)."""

    @property
    def params(self) -> dict[str, str]:
        """The suite's parameters as genesis records them (``crypto_params``); none by default.
        The SM2 suite's is its distinguishing ID."""
        return {}

    def with_params(self, params: Mapping[str, Any]) -> CryptoSuite:
        """This suite under ``params`` (a genesis's ``crypto_params``): ``self`` when they are
        this suite's own; :class:`ConfigError` when the suite takes no such parameters."""
        if dict(params) == self.params:
            return self
        raise ConfigError(
            f"the {self.name} crypto suite takes no parameters, got {sorted(params)}",
            ErrorCode.BAD_CONFIG,
        )

    def check_public_key(self, public_key: bytes) -> None:
        """Raise :class:`InvalidInput` (``bad_public_key``) unless the key is well formed."""
        if len(public_key) != self.public_key_size:
            raise InvalidInput(
                f"{self.name} public keys are {self.public_key_size} bytes, got {len(public_key)}",
                ErrorCode.BAD_PUBLIC_KEY,
            )

    def address(self, public_key: bytes) -> bytes:
        """A 20-byte account address: the suite's hash of a domain tag and the key."""
        # Remembered: a transaction's sender address is asked for at admission, in the
        # mempool and at execution (~0.6 µs of hashing each, a few % of a transfer's path).
        # Bounded; emptied when full. A pure function of the key, so nothing depends on it.
        if type(public_key) is not bytes:
            public_key = bytes(public_key)  # a bytearray or a memoryview: hashable now
        known = self.__dict__.get("_addresses")
        if known is None:
            known = self.__dict__["_addresses"] = {}
        address = known.get(public_key)
        if address is None:
            if len(known) >= _ADDRESSES_KEPT:
                known.clear()
            address = known[public_key] = self._derive_address(public_key)
        return address

    def _verify_many(self, items: Sequence[VerifyItem]) -> list[bool]:
        """:meth:`verify` of each item, in the calling thread: one share of
        :meth:`batch_verify`'s work. A suite with a faster way to check many at once (the
        Ed25519 suite's) overrides it; the answers must be :meth:`verify`'s."""
        verify = self.verify
        return [verify(*item) for item in items]

    def _derive_address(self, public_key: bytes) -> bytes:
        return self.hash(b"citychain/address/" + self.name.encode() + b"/" + public_key)[:20]

    def batch_verify(self, items: Sequence[VerifyItem]) -> list[bool]:
        """Check many signatures, spread over a thread pool. Order of results = order of items."""
        n = len(items)
        if n < BATCH_INLINE_BELOW:
            return self._verify_many(items)
        pool = _pool()
        workers = pool._max_workers
        chunk = (n + workers - 1) // workers
        futures = [pool.submit(self._verify_many, items[i : i + chunk]) for i in range(0, n, chunk)]
        out: list[bool] = []
        for fut in futures:
            out.extend(fut.result())
        return out


@dataclass(frozen=True, slots=True)
class Signer:
    """A secret key bound to its suite: what signs transactions, votes and blocks."""

    suite: CryptoSuite
    secret: bytes

    @property
    def public_key(self) -> bytes:
        return self.suite.public_key(self.secret)

    @property
    def address(self) -> bytes:
        return self.suite.address(self.public_key)

    def sign(self, message: bytes) -> bytes:
        return self.suite.sign(self.secret, message)

    @classmethod
    def generate(cls, suite: CryptoSuite) -> Signer:
        return cls(suite, suite.generate_secret())

    def close(self) -> None:
        """Release what holds the key: nothing for a key in memory; a key in a PKCS#11 token
        logs out and closes its session (:class:`citychain.crypto.pkcs11.Pkcs11Signer`)."""

    def under(self, suite: CryptoSuite) -> Signer:
        """This key signing under ``suite``, the chain's instance of the same scheme (an SM2
        key loaded from a keystore carries the default distinguishing ID; a chain whose genesis
        names another signs and verifies under that one). ``self`` when nothing changes."""
        if suite is self.suite or suite.name != self.suite.name:
            return self
        return Signer(suite, self.secret)

    def __repr__(self) -> str:  # never print a secret
        return f"Signer(suite={self.suite.name!r}, public_key={self.public_key.hex()})"


_SUITES: dict[str, CryptoSuite] = {}


def register_suite(suite: CryptoSuite) -> None:
    """Make ``suite`` available to :func:`get_suite` under ``suite.name``."""
    _SUITES[suite.name] = suite


def get_suite(name: str) -> CryptoSuite:
    """The registered suite called ``name``; :class:`InvalidInput` if there is none."""
    try:
        return _SUITES[name]
    except KeyError:
        known = ", ".join(sorted(_SUITES)) or "none"
        raise InvalidInput(
            f"unknown crypto suite {name!r} (known: {known})", ErrorCode.BAD_CONFIG
        ) from None


def suite_for(name: str, params: Mapping[str, Any] | None = None) -> CryptoSuite:
    """The suite a genesis describes: the registered ``name`` under ``params`` (its
    ``crypto_params``). Empty ``params`` give the registered suite as it is."""
    suite = get_suite(name)
    return suite.with_params(params) if params else suite
