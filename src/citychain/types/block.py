"""Block headers, blocks, votes and commits.

A header commits to everything a light client needs: the transactions (``tx_root``), what they
did (``results_root``), the state after the block (``state_root``, a sparse-Merkle root with
ICS-23 proofs), and who may sign the next blocks (``validators_hash``). The block hash is
the chain's hash of the header's canonical bytes, and every root in it is made with the same
hash: SHA-256 on an ``ed25519`` chain, SM3 on an ``sm2-sm3`` chain. A header carries that hash
function (``hash_new``, not part of its data; see :mod:`citychain.types.tx`) and hands it to
what it decodes.

A :class:`Commit` is the set of precommit signatures over a block hash by more than two thirds
of the voting power; with the validator set it proves a header final. A single validator's
block is "signed" by a commit with its one precommit, so both consensus modes store the same
shapes.

``time`` is milliseconds since the Unix epoch chosen by the proposer; it is *data* in the
header, so execution that reads it stays deterministic.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from citychain import codec
from citychain.crypto import CryptoSuite, HashNew, Signer, VerifyItem
from citychain.errors import DecodeError, ErrorCode, ProofError
from citychain.proof import merkle
from citychain.types.evidence import DuplicateVoteEvidence
from citychain.types.tx import Transaction, check_fields
from citychain.types.validator import ValidatorSet
from citychain.types.vote import VoteType, vote_signing_bytes

HEADER_VERSION = 1
#: The evidence root of a block without evidence on a SHA-256 chain (``merkle.root([], new)``
#: on another).
EMPTY_ROOT = merkle.root([])


@dataclass(frozen=True, slots=True)
class Header:
    chain_id: str
    height: int
    time: int
    prev_hash: bytes
    tx_root: bytes
    results_root: bytes
    state_root: bytes
    validators_hash: bytes
    proposer: bytes
    version: int = HEADER_VERSION
    #: Merkle root of the block's evidence of misbehaviour (see types/evidence.py).
    evidence_root: bytes = EMPTY_ROOT
    #: The chain's hash (not encoded, not compared): what :attr:`hash` and the roots use.
    hash_new: HashNew = field(default=hashlib.sha256, compare=False, repr=False, kw_only=True)

    def to_list(self) -> list[Any]:
        return [
            self.version,
            self.chain_id,
            self.height,
            self.time,
            self.prev_hash,
            self.tx_root,
            self.results_root,
            self.state_root,
            self.validators_hash,
            self.proposer,
            self.evidence_root,
        ]

    def encode(self) -> bytes:
        return codec.encode(self.to_list())

    @property
    def hash(self) -> bytes:
        return self.hash_new(self.encode()).digest()

    @classmethod
    def from_list(cls, raw: Any, *, hash_new: HashNew = hashlib.sha256) -> Header:
        if not isinstance(raw, list) or len(raw) != 11:
            raise DecodeError("a header is a CBOR array of 11 items")
        (
            version,
            chain_id,
            height,
            time,
            prev_hash,
            tx_root,
            results_root,
            state_root,
            validators_hash,
            proposer,
            evidence_root,
        ) = raw
        if type(version) is not int or version != HEADER_VERSION:  # CBOR true == 1 in Python
            raise DecodeError(f"unsupported header version {version!r}")
        check_fields(
            "header",
            (
                ("chain_id", chain_id, str),
                ("height", height, int),
                ("time", time, int),
                ("prev_hash", prev_hash, bytes),
                ("tx_root", tx_root, bytes),
                ("results_root", results_root, bytes),
                ("state_root", state_root, bytes),
                ("validators_hash", validators_hash, bytes),
                ("proposer", proposer, bytes),
                ("evidence_root", evidence_root, bytes),
            ),
        )
        return cls(
            chain_id,
            height,
            time,
            prev_hash,
            tx_root,
            results_root,
            state_root,
            validators_hash,
            proposer,
            version,
            evidence_root,
            hash_new=hash_new,
        )

    @classmethod
    def decode(cls, data: bytes, *, hash_new: HashNew = hashlib.sha256) -> Header:
        return cls.from_list(codec.decode(data), hash_new=hash_new)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "chain_id": self.chain_id,
            "height": self.height,
            "time": self.time,
            "prev_hash": self.prev_hash.hex(),
            "tx_root": self.tx_root.hex(),
            "results_root": self.results_root.hex(),
            "state_root": self.state_root.hex(),
            "validators_hash": self.validators_hash.hex(),
            "proposer": self.proposer.hex(),
            "evidence_root": self.evidence_root.hex(),
            "hash": self.hash.hex(),
        }


@dataclass(frozen=True, slots=True)
class CommitSig:
    validator: bytes
    signature: bytes


@dataclass(frozen=True, slots=True)
class Commit:
    """Precommits for ``block_hash`` at ``height``/``round`` by more than 2/3 of the power."""

    height: int
    round: int
    block_hash: bytes
    signatures: tuple[CommitSig, ...]

    def to_list(self) -> list[Any]:
        return [
            self.height,
            self.round,
            self.block_hash,
            [[s.validator, s.signature] for s in self.signatures],
        ]

    def encode(self) -> bytes:
        return codec.encode(self.to_list())

    @classmethod
    def from_list(cls, raw: Any) -> Commit:
        if not isinstance(raw, list) or len(raw) != 4 or not isinstance(raw[3], list):
            raise DecodeError("a commit is a CBOR array of 4 items")
        check_fields(
            "commit",
            (("height", raw[0], int), ("round", raw[1], int), ("block_hash", raw[2], bytes)),
        )
        for pair in raw[3]:
            if not (
                isinstance(pair, list)
                and len(pair) == 2
                and all(isinstance(x, bytes) for x in pair)
            ):
                raise DecodeError("each commit signature is a CBOR array [validator, signature]")
        sigs = tuple(CommitSig(v, s) for v, s in raw[3])
        return cls(raw[0], raw[1], raw[2], sigs)

    @classmethod
    def decode(cls, data: bytes) -> Commit:
        return cls.from_list(codec.decode(data))

    @classmethod
    def sign_single(cls, signer: Signer, chain_id: str, header: Header, round_: int = 0) -> Commit:
        """The commit of a single validator (solo mode): its own precommit."""
        h = header.hash
        sig = signer.sign(
            vote_signing_bytes(chain_id, VoteType.PRECOMMIT, header.height, round_, h)
        )
        return cls(header.height, round_, h, (CommitSig(signer.public_key, sig),))

    def verify(
        self, suite: CryptoSuite, chain_id: str, header: Header, validators: ValidatorSet
    ) -> None:
        """Raise :class:`ProofError` unless this commit finalises ``header``.

        Checks: same height and block hash, each signer a distinct member of ``validators``,
        every signature valid, and the signers' power more than two thirds of the total.
        """
        if self.height != header.height or self.block_hash != header.hash:
            raise ProofError("commit is for a different block", ErrorCode.BAD_PROOF)
        if header.validators_hash != validators.hash:
            raise ProofError("header names a different validator set", ErrorCode.BAD_PROOF)
        seen: set[bytes] = set()
        power = 0
        items = []
        msg = vote_signing_bytes(
            chain_id, VoteType.PRECOMMIT, self.height, self.round, self.block_hash
        )
        for s in self.signatures:
            if s.validator in seen:
                raise ProofError("a validator signed the commit twice", ErrorCode.BAD_PROOF)
            seen.add(s.validator)
            p = validators.power_of(s.validator)
            if p == 0:
                raise ProofError("commit signed by a non-validator", ErrorCode.BAD_PROOF)
            power += p
            items.append(VerifyItem(s.validator, msg, s.signature))
        if not all(suite.batch_verify(items)):
            raise ProofError("a commit signature does not verify", ErrorCode.BAD_PROOF)
        if not validators.has_quorum(power):
            raise ProofError(
                f"commit has {power} of {validators.total_power} power; needs more than 2/3",
                ErrorCode.BAD_PROOF,
            )

    def to_json(self) -> dict[str, Any]:
        return {
            "height": self.height,
            "round": self.round,
            "block_hash": self.block_hash.hex(),
            "signatures": [
                {"validator": s.validator.hex(), "signature": s.signature.hex()}
                for s in self.signatures
            ],
        }


def tx_root(txs: Sequence[Transaction], hash_new: HashNew = hashlib.sha256) -> bytes:
    return merkle.root([tx.encode() for tx in txs], hash_new)


def evidence_root(
    evidence: Sequence[DuplicateVoteEvidence], hash_new: HashNew = hashlib.sha256
) -> bytes:
    return merkle.root([e.encode() for e in evidence], hash_new)


def _parts(raw: Any) -> list[Any]:
    """A decoded block's three parts, its shape checked: [header, [tx bytes...], [evidence...]]."""
    if (
        not isinstance(raw, list)
        or len(raw) != 3
        or not isinstance(raw[1], list)
        or not isinstance(raw[2], list)
    ):
        raise DecodeError("a block is a CBOR array [header, [tx bytes...], [evidence...]]")
    if not all(isinstance(t, bytes) for t in raw[1]):
        raise DecodeError("a block's transactions are embedded as byte strings")
    return raw


@dataclass(frozen=True, slots=True)
class Block:
    header: Header
    txs: tuple[Transaction, ...]
    evidence: tuple[DuplicateVoteEvidence, ...] = ()

    @property
    def hash(self) -> bytes:
        return self.header.hash

    @property
    def height(self) -> int:
        return self.header.height

    def encode(self) -> bytes:
        # Transactions are embedded as their wire bytes so each keeps its own hash.
        return codec.encode_trusted(
            [
                self.header.to_list(),
                [tx.encode() for tx in self.txs],
                [e.to_list() for e in self.evidence],
            ]
        )

    @classmethod
    def decode(
        cls,
        data: bytes,
        *,
        max_size: int | None = None,
        known: Callable[[bytes], Transaction | None] | None = None,
        hash_new: HashNew = hashlib.sha256,
    ) -> Block:
        """The block in ``data``, on a chain whose hash is ``hash_new``. ``known`` (a
        transaction hash -> the transaction, or None) lets a node reuse transactions it already
        decoded and checked, e.g. its mempool's, for those a proposal names, instead of decoding
        them again: a transaction's hash is the chain's hash of its wire bytes, so a hit is the
        very same bytes."""
        raw = _parts(codec.decode(data, max_size=max_size))
        header = Header.from_list(raw[0], hash_new=hash_new)
        if known is None:
            txs = tuple(Transaction.decode(t, max_size=len(t), hash_new=hash_new) for t in raw[1])
        else:
            txs = tuple(_reuse_or_decode(t, known, hash_new) for t in raw[1])
        evidence = tuple(DuplicateVoteEvidence.from_list(e, hash_new=hash_new) for e in raw[2])
        return cls(header, txs, evidence)

    @staticmethod
    def decode_tx(
        data: bytes, index: int, *, hash_new: HashNew = hashlib.sha256
    ) -> Transaction | None:
        """Transaction ``index`` of the block a node stored as ``data`` (None past its last),
        decoding that one alone: a committed transaction's lookup must not cost a decode of
        each of the hundreds of transactions beside it (~50 µs each), nor the canonical
        re-encoding of bytes this node wrote itself (the transaction is still decoded and
        checked whole)."""
        txs = _parts(codec.decode_trusted(data))[1]
        if not 0 <= index < len(txs):
            return None
        t = txs[index]
        return Transaction.decode(t, max_size=len(t), hash_new=hash_new)

    def check_tx_root(self) -> None:
        new = self.header.hash_new
        if tx_root(self.txs, new) != self.header.tx_root:
            raise ProofError("transactions do not match the header's tx_root", ErrorCode.BAD_PROOF)
        if evidence_root(self.evidence, new) != self.header.evidence_root:
            raise ProofError(
                "evidence does not match the header's evidence_root", ErrorCode.BAD_PROOF
            )


def _reuse_or_decode(
    data: bytes, known: Callable[[bytes], Transaction | None], hash_new: HashNew
) -> Transaction:
    tx = known(hash_new(data).digest())
    return tx if tx is not None else Transaction.decode(data, max_size=len(data), hash_new=hash_new)
