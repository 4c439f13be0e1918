"""Evidence of misbehaviour: a validator that signed two different votes for one step.

:class:`DuplicateVoteEvidence` holds two votes by the same validator with the same height,
round and type but different block hashes (nil counts as a value). It is valid when both
signatures verify over sign-bytes that include the chain id and the validator belonged to the
validator set of that height (CometBFT spec/consensus/evidence.md). The two votes are kept in
a canonical order (by sign-bytes), so the same misbehaviour has one encoding and one hash
whichever node noticed it first. That hash is the chain's (``hash_new``, SHA-256 unless the
chain's suite says otherwise; not part of the data: see :mod:`citychain.types.tx`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from citychain import codec
from citychain.crypto import CryptoSuite, HashNew
from citychain.errors import DecodeError, ErrorCode, ProofError
from citychain.types.validator import ValidatorSet
from citychain.types.vote import Vote


@dataclass(frozen=True, slots=True)
class DuplicateVoteEvidence:
    vote_a: Vote
    vote_b: Vote
    hash_new: HashNew = field(default=hashlib.sha256, compare=False, repr=False, kw_only=True)

    @classmethod
    def of(
        cls, chain_id: str, one: Vote, other: Vote, *, hash_new: HashNew = hashlib.sha256
    ) -> DuplicateVoteEvidence:
        """The evidence of two conflicting votes, in canonical order."""
        a, b = sorted((one, other), key=lambda v: v.sign_bytes(chain_id))
        return cls(a, b, hash_new=hash_new)

    @property
    def height(self) -> int:
        return self.vote_a.height

    @property
    def validator(self) -> bytes:
        return self.vote_a.validator

    @property
    def hash(self) -> bytes:
        return self.hash_new(self.encode()).digest()

    def verify(self, suite: CryptoSuite, chain_id: str, validators: ValidatorSet) -> None:
        """Raise :class:`ProofError` naming the first reason this is not evidence."""
        a, b = self.vote_a, self.vote_b

        def bad(why: str) -> ProofError:
            return ProofError(f"evidence refused: {why}", ErrorCode.BAD_PROOF)

        if (a.validator, a.height, a.round, a.type) != (b.validator, b.height, b.round, b.type):
            raise bad("the two votes are not by one validator for one height, round and type")
        if a.block_hash == b.block_hash:
            raise bad("the two votes are for the same block")
        if a.sign_bytes(chain_id) >= b.sign_bytes(chain_id):
            raise bad("the votes are not in canonical order")
        if a.validator not in validators:
            raise bad(f"{a.validator.hex()} was not a validator at height {a.height}")
        a.verify(suite, chain_id)
        b.verify(suite, chain_id)

    def to_list(self) -> list[Any]:
        return [self.vote_a.to_list(), self.vote_b.to_list()]

    def encode(self) -> bytes:
        return codec.encode_trusted(self.to_list())

    @classmethod
    def from_list(cls, raw: Any, *, hash_new: HashNew = hashlib.sha256) -> DuplicateVoteEvidence:
        if not isinstance(raw, list) or len(raw) != 2:
            raise DecodeError("duplicate-vote evidence is a CBOR array of 2 votes")
        return cls(Vote.from_list(raw[0]), Vote.from_list(raw[1]), hash_new=hash_new)

    @classmethod
    def decode(cls, data: bytes, *, hash_new: HashNew = hashlib.sha256) -> DuplicateVoteEvidence:
        return cls.from_list(codec.decode(data, max_size=4096), hash_new=hash_new)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": "duplicate_vote",
            "hash": self.hash.hex(),
            "validator": self.validator.hex(),
            "height": self.height,
            "round": self.vote_a.round,
            "vote_a": self.vote_a.to_json(),
            "vote_b": self.vote_b.to_json(),
        }
