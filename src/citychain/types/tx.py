"""Transactions: what a user signs to change state.

Wire form: the canonical CBOR array
``[1, chain_id, sender, nonce, expiry, contract, method, args, gas_limit, signature]``.
Signing bytes: the canonical CBOR array ``["citychain/tx/v1", chain_id, sender, nonce, expiry,
contract, method, args, gas_limit]``; the type tag and the chain id make a signature valid for
exactly one kind of message on exactly one chain. The hash is sha256 of the wire form.

Replay protection: ``nonce`` must equal the sender's account nonce at execution (each account
counts up from 0), and ``expiry`` is the last height at which the transaction may be included.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from citychain import codec
from citychain.crypto import CryptoSuite, Signer
from citychain.errors import DecodeError, ErrorCode, TxRejected

TX_VERSION = 1
TX_SIGN_TAG = "citychain/tx/v1"
#: Default cap on a transaction's encoded size; chains may lower it in genesis.
MAX_TX_BYTES = 64 * 1024
MAX_NAME_LEN = 64


@dataclass(frozen=True, slots=True)
class Transaction:
    chain_id: str
    sender: bytes
    nonce: int
    expiry: int
    contract: str
    method: str
    args: dict[str, Any]
    gas_limit: int
    signature: bytes = b""
    _encoded: bytes = field(default=b"", init=False, compare=False, repr=False)
    _signing: bytes = field(default=b"", init=False, compare=False, repr=False)
    _hash: bytes = field(default=b"", init=False, compare=False, repr=False)

    # -- bytes -----------------------------------------------------------------------------
    def signing_bytes(self) -> bytes:
        # Cached: admission and execution both verify the signature.
        if self._signing:
            return self._signing
        data = codec.encode_trusted(
            [
                TX_SIGN_TAG,
                self.chain_id,
                self.sender,
                self.nonce,
                self.expiry,
                self.contract,
                self.method,
                self.args,
                self.gas_limit,
            ]
        )
        object.__setattr__(self, "_signing", data)
        return data

    def encode(self) -> bytes:
        if self._encoded:
            return self._encoded
        data = codec.encode(
            [
                TX_VERSION,
                self.chain_id,
                self.sender,
                self.nonce,
                self.expiry,
                self.contract,
                self.method,
                self.args,
                self.gas_limit,
                self.signature,
            ]
        )
        object.__setattr__(self, "_encoded", data)
        return data

    @property
    def hash(self) -> bytes:
        # Cached: the mempool, executor, block store and API each ask for it.
        if not self._hash:
            object.__setattr__(self, "_hash", hashlib.sha256(self.encode()).digest())
        return self._hash

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        signer: Signer,
        *,
        chain_id: str,
        nonce: int,
        contract: str,
        method: str,
        args: dict[str, Any] | None = None,
        expiry: int = 2**63 - 1,
        gas_limit: int = 100_000,
    ) -> Transaction:
        """Build and sign a transaction."""
        unsigned = cls(
            chain_id=chain_id,
            sender=signer.public_key,
            nonce=nonce,
            expiry=expiry,
            contract=contract,
            method=method,
            args=dict(args or {}),
            gas_limit=gas_limit,
        )
        check_shape(unsigned)
        return unsigned.with_signature(signer.sign(unsigned.signing_bytes()))

    def with_signature(self, signature: bytes) -> Transaction:
        return Transaction(
            self.chain_id,
            self.sender,
            self.nonce,
            self.expiry,
            self.contract,
            self.method,
            self.args,
            self.gas_limit,
            signature,
        )

    @classmethod
    def decode(cls, data: bytes, *, max_size: int = MAX_TX_BYTES) -> Transaction:
        """Parse wire bytes; :class:`DecodeError`/:class:`TxRejected` with a precise code."""
        if len(data) > max_size:
            raise TxRejected(
                f"transaction is {len(data)} bytes; the limit is {max_size}", ErrorCode.TOO_LARGE
            )
        raw = codec.decode(data)
        if not isinstance(raw, list) or len(raw) != 10:
            raise DecodeError("a transaction is a CBOR array of 10 items", ErrorCode.MALFORMED)
        if raw[0] != TX_VERSION:
            raise DecodeError(f"unsupported transaction version {raw[0]!r}", ErrorCode.MALFORMED)
        _, chain_id, sender, nonce, expiry, contract, method, args, gas_limit, sig = raw
        tx = cls(chain_id, sender, nonce, expiry, contract, method, args, gas_limit, sig)
        check_shape(tx)
        object.__setattr__(tx, "_encoded", bytes(data))
        return tx

    # -- checks -----------------------------------------------------------------------------
    def verify_signature(self, suite: CryptoSuite) -> bool:
        return suite.verify(self.sender, self.signing_bytes(), self.signature)

    def to_json(self) -> dict[str, Any]:
        return {
            "hash": self.hash.hex(),
            "chain_id": self.chain_id,
            "sender": self.sender.hex(),
            "nonce": self.nonce,
            "expiry": self.expiry,
            "contract": self.contract,
            "method": self.method,
            "args": codec_to_json(self.args),
            "gas_limit": self.gas_limit,
            "signature": self.signature.hex(),
        }


def _is_uint(v: Any, bits: int = 64) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**bits


_KIND_NAMES = {int: "an unsigned 64-bit integer", bytes: "a byte string", str: "a text string"}


def check_fields(what: str, fields: tuple[tuple[str, Any, type], ...]) -> None:
    """Raise :class:`DecodeError` naming the first field that is not of its kind
    (``int`` means an unsigned 64-bit integer). Used by the decoders of the other types."""
    for name, value, kind in fields:
        ok = _is_uint(value) if kind is int else isinstance(value, kind)
        if not ok:
            raise DecodeError(
                f"{what} field {name} must be {_KIND_NAMES.get(kind, kind.__name__)}",
                ErrorCode.MALFORMED,
            )


def check_shape(tx: Transaction) -> None:
    """Field types and ranges; raises :class:`DecodeError` naming the field."""

    def bad(msg: str) -> DecodeError:
        return DecodeError(msg, ErrorCode.MALFORMED)

    if not isinstance(tx.chain_id, str) or not 0 < len(tx.chain_id) <= MAX_NAME_LEN:
        raise bad("chain_id must be a non-empty text string of at most 64 characters")
    if not isinstance(tx.sender, bytes) or not 0 < len(tx.sender) <= 128:
        raise bad("sender must be a public key (byte string)")
    if not _is_uint(tx.nonce):
        raise bad("nonce must be an unsigned 64-bit integer")
    if not _is_uint(tx.expiry):
        raise bad("expiry must be an unsigned 64-bit integer (a block height)")
    for name in ("contract", "method"):
        v = getattr(tx, name)
        if not isinstance(v, str) or not 0 < len(v) <= MAX_NAME_LEN:
            raise bad(f"{name} must be a non-empty text string of at most 64 characters")
    if not isinstance(tx.args, dict):
        raise bad("args must be a map with text keys")
    if not _is_uint(tx.gas_limit):
        raise bad("gas_limit must be an unsigned 64-bit integer")
    if not isinstance(tx.signature, bytes) or len(tx.signature) > 256:
        raise bad("signature must be a byte string")


def codec_to_json(value: Any) -> Any:
    """A JSON view of a canonical value: bytes become ``{"hex": ...}``."""
    if isinstance(value, bytes):
        return {"hex": value.hex()}
    if isinstance(value, list | tuple):
        return [codec_to_json(v) for v in value]
    if isinstance(value, dict):
        return {k: codec_to_json(v) for k, v in value.items()}
    return value


def json_to_codec(value: Any) -> Any:
    """Inverse of :func:`codec_to_json`."""
    if isinstance(value, dict):
        if set(value) == {"hex"} and isinstance(value["hex"], str):
            try:
                return bytes.fromhex(value["hex"])
            except ValueError:
                raise DecodeError("bad hex string", ErrorCode.BAD_ARGUMENTS) from None
        return {k: json_to_codec(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_to_codec(v) for v in value]
    return value
