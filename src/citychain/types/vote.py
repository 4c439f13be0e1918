"""Signed consensus votes, and the bytes a validator signs for them.

A vote says "validator V, at height H and round R, prevotes (or precommits) block B", where B
is a block hash or empty for nil. What is signed is the canonical CBOR array
``["citychain/vote/v1", chain_id, type, H, R, B]``: the chain id is inside, so a vote can never
be replayed on another city's chain even when the same validator key serves both (pitfall 11
of the consensus research notes). Votes are identified by these sign-bytes, never by their
signature bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from citychain import codec
from citychain.crypto import CryptoSuite
from citychain.errors import DecodeError, ErrorCode, ProofError
from citychain.types.tx import check_fields

VOTE_SIGN_TAG = "citychain/vote/v1"
#: A nil vote's block hash.
NIL = b""


class VoteType(IntEnum):
    PREVOTE = 1
    PRECOMMIT = 2


def vote_signing_bytes(
    chain_id: str, vote_type: VoteType, height: int, round_: int, block_hash: bytes
) -> bytes:
    """What a validator signs for a vote. ``block_hash`` empty means a vote for nil."""
    return codec.encode_trusted(
        [VOTE_SIGN_TAG, chain_id, int(vote_type), height, round_, block_hash]
    )


@dataclass(frozen=True, slots=True)
class Vote:
    type: VoteType
    height: int
    round: int
    block_hash: bytes  # NIL (b"") for a vote for nothing
    validator: bytes
    signature: bytes

    @property
    def is_nil(self) -> bool:
        return self.block_hash == NIL

    def sign_bytes(self, chain_id: str) -> bytes:
        return vote_signing_bytes(chain_id, self.type, self.height, self.round, self.block_hash)

    def verify(self, suite: CryptoSuite, chain_id: str) -> None:
        """Raise :class:`ProofError` unless the signature is the validator's over this vote."""
        if not suite.verify(self.validator, self.sign_bytes(chain_id), self.signature):
            raise ProofError(f"{self.describe()} has a bad signature", ErrorCode.BAD_SIGNATURE)

    def describe(self) -> str:
        what = "nil" if self.is_nil else self.block_hash.hex()[:12]
        kind = "prevote" if self.type == VoteType.PREVOTE else "precommit"
        return f"{kind} by {self.validator.hex()[:12]} at {self.height}/{self.round} for {what}"

    def to_list(self) -> list[Any]:
        return [
            int(self.type),
            self.height,
            self.round,
            self.block_hash,
            self.validator,
            self.signature,
        ]

    def encode(self) -> bytes:
        return codec.encode_trusted(self.to_list())

    @classmethod
    def from_list(cls, raw: Any) -> Vote:
        if not isinstance(raw, list) or len(raw) != 6:
            raise DecodeError("a vote is a CBOR array of 6 items")
        type_, height, round_, block_hash, validator, signature = raw
        check_fields(
            "vote",
            (
                ("type", type_, int),
                ("height", height, int),
                ("round", round_, int),
                ("block_hash", block_hash, bytes),
                ("validator", validator, bytes),
                ("signature", signature, bytes),
            ),
        )
        if type_ not in (VoteType.PREVOTE, VoteType.PRECOMMIT):
            raise DecodeError(f"vote type {type_} is neither prevote (1) nor precommit (2)")
        if len(block_hash) not in (0, 32):
            raise DecodeError("a vote's block hash is empty (nil) or 32 bytes")
        if height < 1:
            raise DecodeError("a vote's height starts at 1")
        return cls(VoteType(type_), height, round_, block_hash, validator, signature)

    @classmethod
    def decode(cls, data: bytes) -> Vote:
        return cls.from_list(codec.decode(data, max_size=1024))

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "prevote" if self.type == VoteType.PREVOTE else "precommit",
            "height": self.height,
            "round": self.round,
            "block_hash": self.block_hash.hex() or None,
            "validator": self.validator.hex(),
            "signature": self.signature.hex(),
        }
