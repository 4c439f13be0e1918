"""Transactions: what a user signs to change state.

Wire form: the canonical CBOR array
``[1, chain_id, sender, nonce, expiry, contract, method, args, gas_limit, signature]``, with an
eleventh item ``[[public_key, signature], ...]`` when the transaction carries endorsements.
Signing bytes: the canonical CBOR array ``["citychain/tx/v1", chain_id, sender, nonce, expiry,
contract, method, args, gas_limit]``, plus ``[public_key, ...]`` of the endorsers when there
are any; the type tag and the chain id make a signature valid for exactly one kind of message
on exactly one chain. The hash is the chain's hash (its crypto suite's: SHA-256 on an
``ed25519`` chain, SM3 on an ``sm2-sm3`` chain) of the wire form.

Which hash: a transaction carries its chain's hash function (``hash_new``, a hashlib-style
constructor that is not part of its data: not encoded, not compared). :meth:`Transaction.create`
takes it from the signer's suite; :meth:`Transaction.decode` from its caller, who knows the
chain (the mempool, the block store, consensus and the SDK are each built for one chain, from
its genesis). The default is SHA-256, the hash of the ``ed25519`` suite, so an Ed25519 chain's
bytes and hashes are what they always were. There is no process-wide "current chain": tests
run chains of both suites in one process.

Endorsements are co-signatures for access policies that need more than one organisation
(``ALL``, ``MAJORITY``, k-of-n; see :mod:`citychain.types.policy`): every endorser signs the
same signing bytes as the sender. Because those bytes list the endorsers' keys, nobody can
strip an endorsement from a transaction without breaking the sender's signature.

Replay protection: ``nonce`` must equal the sender's account nonce at execution (each account
counts up from 0), and ``expiry`` is the last height at which the transaction may be included.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from citychain import codec
from citychain.crypto import CryptoSuite, HashNew, Signer, VerifyItem
from citychain.errors import DecodeError, ErrorCode, TxRejected

TX_VERSION = 1
TX_SIGN_TAG = "citychain/tx/v1"
#: Default cap on a transaction's encoded size; chains may lower it in genesis.
MAX_TX_BYTES = 64 * 1024
MAX_NAME_LEN = 64
#: Most co-signatures one transaction may carry.
MAX_ENDORSEMENTS = 32


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
    #: ``(public_key, signature)`` of each co-signer, in the order the sender listed them.
    endorsements: tuple[tuple[bytes, bytes], ...] = ()
    #: The chain's hash (see the module docstring); kept by :func:`dataclasses.replace`.
    hash_new: HashNew = field(default=hashlib.sha256, compare=False, repr=False, kw_only=True)
    _encoded: bytes = field(default=b"", init=False, compare=False, repr=False)
    _signing: bytes = field(default=b"", init=False, compare=False, repr=False)
    _hash: bytes = field(default=b"", init=False, compare=False, repr=False)

    # -- bytes -----------------------------------------------------------------------------
    def signing_bytes(self) -> bytes:
        # Cached: admission and execution both verify the signature.
        if self._signing:
            return self._signing
        items = [
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
        if self.endorsements:
            items.append([pk for pk, _ in self.endorsements])
        data = codec.encode_trusted(items)
        object.__setattr__(self, "_signing", data)
        return data

    def encode(self) -> bytes:
        if self._encoded:
            return self._encoded
        items = [
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
        if self.endorsements:
            items.append([[pk, sig] for pk, sig in self.endorsements])
        data = codec.encode(items)
        object.__setattr__(self, "_encoded", data)
        return data

    @property
    def hash(self) -> bytes:
        # Cached: the mempool, executor, block store and API each ask for it.
        if not self._hash:
            object.__setattr__(self, "_hash", self.hash_new(self.encode()).digest())
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
        endorsers: Sequence[Signer | bytes] = (),
    ) -> Transaction:
        """Build and sign a transaction. ``endorsers`` are co-signers: a :class:`Signer` signs
        here; a public key leaves a slot for :meth:`endorse` (a signature collected later)."""
        unsigned = cls(
            chain_id=chain_id,
            sender=signer.public_key,
            nonce=nonce,
            expiry=expiry,
            contract=contract,
            method=method,
            args=dict(args or {}),
            gas_limit=gas_limit,
            endorsements=tuple(
                (e if isinstance(e, bytes) else e.public_key, b"") for e in endorsers
            ),
            hash_new=signer.suite.hash_new,
        )
        check_shape(unsigned)
        tx = unsigned.with_signature(signer.sign(unsigned.signing_bytes()))
        for e in endorsers:
            if not isinstance(e, bytes):
                tx = tx.endorse(e)
        return tx

    def with_signature(self, signature: bytes) -> Transaction:
        # replace() leaves the cached encodings (init=False fields) empty: they are recomputed.
        return replace(self, signature=signature)

    def endorse(self, signer: Signer) -> Transaction:
        """This transaction with ``signer``'s co-signature in the slot the sender listed for
        its key. Raises TxRejected (UNAUTHORIZED) if the sender did not list it."""
        slots = [pk for pk, _ in self.endorsements]
        if signer.public_key not in slots:
            raise TxRejected(
                f"key {signer.public_key.hex()[:16]}… is not one of the endorsers the sender "
                "listed",
                ErrorCode.UNAUTHORIZED,
            )
        sig = signer.sign(self.signing_bytes())
        return replace(
            self,
            endorsements=tuple(
                (pk, sig if pk == signer.public_key else s) for pk, s in self.endorsements
            ),
        )

    @classmethod
    def decode(
        cls, data: bytes, *, max_size: int = MAX_TX_BYTES, hash_new: HashNew = hashlib.sha256
    ) -> Transaction:
        """Parse wire bytes; :class:`DecodeError`/:class:`TxRejected` with a precise code.
        ``hash_new`` is the chain's hash (SHA-256 unless the chain's suite says otherwise)."""
        if len(data) > max_size:
            raise TxRejected(
                f"transaction is {len(data)} bytes; the limit is {max_size}", ErrorCode.TOO_LARGE
            )
        raw = codec.decode(data)
        if not isinstance(raw, list) or len(raw) not in (10, 11):
            raise DecodeError(
                "a transaction is a CBOR array of 10 items (11 with endorsements)",
                ErrorCode.MALFORMED,
            )
        if type(raw[0]) is not int or raw[0] != TX_VERSION:  # CBOR true == 1 in Python
            raise DecodeError(f"unsupported transaction version {raw[0]!r}", ErrorCode.MALFORMED)
        endorsements: tuple[tuple[bytes, bytes], ...] = ()
        if len(raw) == 11:
            raw_end = raw[10]
            if (
                not isinstance(raw_end, list)
                or not raw_end
                or not all(isinstance(e, list) and len(e) == 2 for e in raw_end)
            ):
                raise DecodeError(
                    "endorsements must be a non-empty list of [public_key, signature] pairs",
                    ErrorCode.MALFORMED,
                )
            endorsements = tuple((e[0], e[1]) for e in raw_end)
        _, chain_id, sender, nonce, expiry, contract, method, args, gas_limit, sig = raw[:10]
        tx = cls(
            chain_id,
            sender,
            nonce,
            expiry,
            contract,
            method,
            args,
            gas_limit,
            sig,
            endorsements,
            hash_new=hash_new,
        )
        check_shape(tx)
        data = bytes(data)
        object.__setattr__(tx, "_encoded", data)
        if len(raw) == 10:
            object.__setattr__(tx, "_signing", _signing_from_wire(data, len(sig)))
        return tx

    # -- checks -----------------------------------------------------------------------------
    def verify_signature(self, suite: CryptoSuite) -> bool:
        """The sender's signature and every endorsement verify."""
        msg = self.signing_bytes()
        return suite.verify(self.sender, msg, self.signature) and all(
            suite.verify(pk, msg, sig) for pk, sig in self.endorsements
        )

    def verify_items(self) -> list[VerifyItem]:
        """The signatures to check: the sender's first, then each endorsement."""
        msg = self.signing_bytes()
        items = [VerifyItem(self.sender, msg, self.signature)]
        items.extend(VerifyItem(pk, msg, sig) for pk, sig in self.endorsements)
        return items

    def signers(self) -> tuple[bytes, ...]:
        """The sender's public key, then each endorser's."""
        return (self.sender, *(pk for pk, _ in self.endorsements))

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
            "endorsements": [
                {"public_key": pk.hex(), "signature": sig.hex()} for pk, sig in self.endorsements
            ],
        }


#: The canonical CBOR of the signing bytes' first item and their 9-item array head.
_SIGNING_PREFIX = b"\x89" + codec.encode_trusted(TX_SIGN_TAG)


def _signing_from_wire(data: bytes, sig_len: int) -> bytes:
    """The signing bytes of a transaction without endorsements, cut from its canonical wire
    bytes instead of encoded again (one CBOR encoding less per transaction at admission).

    The wire form is ``0x8a, 0x01 (version 1), <8 items>, <signature>``; the signing bytes are
    ``0x89, <TX_SIGN_TAG>, <the same 8 items>``. Both are canonical, so the 8 items' bytes are
    the same in each; ``tests/types`` checks this against :meth:`Transaction.signing_bytes`."""
    head = 1 if sig_len < 24 else 2 if sig_len < 256 else 3
    return _SIGNING_PREFIX + data[2 : len(data) - head - sig_len]


def batch_verify_txs(suite: CryptoSuite, txs: Sequence[Transaction]) -> list[bool]:
    """For each transaction, whether its signature and all its endorsements verify; one
    :meth:`CryptoSuite.batch_verify` call for all of them."""
    items: list[VerifyItem] = []
    counts: list[int] = []
    for tx in txs:
        if tx.endorsements:
            more = tx.verify_items()
            items.extend(more)
            counts.append(len(more))
        else:
            items.append(VerifyItem(tx.sender, tx.signing_bytes(), tx.signature))
            counts.append(1)
    valid = suite.batch_verify(items)
    if len(valid) == len(txs):  # the common case: no endorsements
        return list(valid)
    out, i = [], 0
    for n in counts:
        out.append(all(valid[i : i + n]))
        i += n
    return out


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
    if len(tx.endorsements) > MAX_ENDORSEMENTS:
        raise bad(f"a transaction carries at most {MAX_ENDORSEMENTS} endorsements")
    seen = {tx.sender}
    for pk, sig in tx.endorsements:
        if not isinstance(pk, bytes) or not 0 < len(pk) <= 128:
            raise bad("an endorser's public key must be a byte string")
        if not isinstance(sig, bytes) or len(sig) > 256:
            raise bad("an endorsement signature must be a byte string")
        if pk in seen:
            raise bad("each endorser must be listed once and differ from the sender")
        seen.add(pk)


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
