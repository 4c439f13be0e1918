"""What validators send each other, and on which p2p channel.

Every message is a canonical CBOR array whose first item names its kind. A peer's bytes are
decoded with a size limit and every field is type-checked; a malformed message is dropped and
counted against the peer, never raised into the consensus loop.

Channels (one byte, as in CometBFT's reactors)::

    0x20 CONSENSUS   Proposal, BlockPart, RoundState (what a peer has: drives catch-up)
    0x22 VOTES       Vote
    0x30 MEMPOOL     TxBatch
    0x38 EVIDENCE    EvidenceMsg
    0x40 SYNC        block sync (see citychain.sync.messages)

A proposal names the block by hash and by the chain's hash (SHA-256 or SM3, the suite's) of
each part it is split into (parts of
:data:`PART_SIZE` bytes of the block's canonical encoding). Because the part hashes are inside
the proposer's signature, each part is checked the moment it arrives, and a block of any size
crosses the network in bounded frames.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from citychain import codec
from citychain.crypto import CryptoSuite, HashNew
from citychain.errors import DecodeError, ErrorCode, ProofError
from citychain.types import DuplicateVoteEvidence, Vote
from citychain.types.tx import check_fields

CH_CONSENSUS = 0x20
CH_VOTES = 0x22
CH_MEMPOOL = 0x30
CH_EVIDENCE = 0x38

PART_SIZE = 64 * 1024
PROPOSAL_SIGN_TAG = "citychain/proposal/v1"
#: Upper bounds on what a peer may send (a frame limit also applies in p2p).
MAX_PARTS = 1024
MAX_TX_BATCH = 2000


def _uint(what: str, name: str, v: Any) -> int:
    check_fields(what, ((name, v, int),))
    assert isinstance(v, int)
    return v


def split_parts(data: bytes) -> list[bytes]:
    return [data[i : i + PART_SIZE] for i in range(0, len(data), PART_SIZE)] or [b""]


@dataclass(frozen=True, slots=True)
class Proposal:
    height: int
    round: int
    pol_round: int  # -1, or the proposer's validRound
    block_hash: bytes
    part_hashes: tuple[bytes, ...]
    proposer: bytes
    signature: bytes = b""

    def sign_bytes(self, chain_id: str) -> bytes:
        return codec.encode_trusted(
            [
                PROPOSAL_SIGN_TAG,
                chain_id,
                self.height,
                self.round,
                self.pol_round,
                self.block_hash,
                list(self.part_hashes),
            ]
        )

    def verify(self, suite: CryptoSuite, chain_id: str) -> None:
        if not suite.verify(self.proposer, self.sign_bytes(chain_id), self.signature):
            raise ProofError(
                f"proposal {self.height}/{self.round} has a bad signature",
                ErrorCode.BAD_SIGNATURE,
            )

    def to_list(self) -> list[Any]:
        return [
            "proposal",
            self.height,
            self.round,
            self.pol_round,
            self.block_hash,
            list(self.part_hashes),
            self.proposer,
            self.signature,
        ]

    @classmethod
    def from_list(cls, raw: list[Any]) -> Proposal:
        if len(raw) != 8:
            raise DecodeError("a proposal has 8 items")
        _, height, round_, pol_round, block_hash, parts, proposer, sig = raw
        _uint("proposal", "height", height)
        _uint("proposal", "round", round_)
        if (
            not isinstance(pol_round, int)
            or isinstance(pol_round, bool)
            or not (-1 <= pol_round < round_)
        ):
            raise DecodeError("proposal pol_round must be -1 or an earlier round")
        check_fields(
            "proposal",
            (("block_hash", block_hash, bytes), ("proposer", proposer, bytes), ("sig", sig, bytes)),
        )
        if (
            not isinstance(parts, list)
            or not 0 < len(parts) <= MAX_PARTS
            or not all(isinstance(p, bytes) and len(p) == 32 for p in parts)
        ):
            raise DecodeError(f"a proposal lists 1 to {MAX_PARTS} part hashes of 32 bytes")
        if len(block_hash) != 32:
            raise DecodeError("a proposal's block hash is 32 bytes")
        return cls(height, round_, pol_round, block_hash, tuple(parts), proposer, sig)


@dataclass(frozen=True, slots=True)
class BlockPart:
    height: int
    round: int
    index: int
    data: bytes

    def to_list(self) -> list[Any]:
        return ["part", self.height, self.round, self.index, self.data]

    @classmethod
    def from_list(cls, raw: list[Any]) -> BlockPart:
        if len(raw) != 5:
            raise DecodeError("a block part has 5 items")
        _, h, r, i, data = raw
        check_fields(
            "part",
            (("height", h, int), ("round", r, int), ("index", i, int), ("data", data, bytes)),
        )
        if len(data) > PART_SIZE:
            raise DecodeError(f"a block part is at most {PART_SIZE} bytes", ErrorCode.TOO_LARGE)
        return cls(h, r, i, data)


@dataclass(frozen=True, slots=True)
class RoundState:
    """What a peer is doing and what it has, sent on every step change and periodically.

    ``height`` is the height being decided (last committed + 1). ``votes`` maps
    ``[round, type]`` to a bit mask over the validator set's order of the votes held;
    ``proposals`` lists the rounds whose proposal and whole block the peer holds.
    """

    height: int
    round: int
    step: int
    proposals: tuple[int, ...] = ()
    votes: tuple[tuple[int, int, int], ...] = field(default=())  # (round, type, mask)

    def to_list(self) -> list[Any]:
        return [
            "round_state",
            self.height,
            self.round,
            self.step,
            list(self.proposals),
            [list(v) for v in self.votes],
        ]

    @classmethod
    def from_list(cls, raw: list[Any]) -> RoundState:
        if len(raw) != 6 or not isinstance(raw[4], list) or not isinstance(raw[5], list):
            raise DecodeError("a round state has 6 items")
        _, h, r, s, props, votes = raw
        for name, v in (("height", h), ("round", r), ("step", s)):
            _uint("round state", name, v)
        if len(props) > 64 or len(votes) > 256:
            raise DecodeError("round state lists too many rounds", ErrorCode.TOO_LARGE)
        for p in props:
            _uint("round state", "proposal round", p)
        out: list[tuple[int, int, int]] = []
        for v in votes:
            if not (isinstance(v, list) and len(v) == 3):
                raise DecodeError("round state vote entries are [round, type, mask]")
            out.append(
                (
                    _uint("round state", "round", v[0]),
                    _uint("round state", "type", v[1]),
                    _uint("round state", "mask", v[2]),
                )
            )
        return cls(h, r, s, tuple(props), tuple(out))


@dataclass(frozen=True, slots=True)
class VoteMsg:
    vote: Vote

    def to_list(self) -> list[Any]:
        return ["vote", self.vote.to_list()]


@dataclass(frozen=True, slots=True)
class TxBatch:
    txs: tuple[bytes, ...]

    def to_list(self) -> list[Any]:
        return ["txs", list(self.txs)]

    @classmethod
    def from_list(cls, raw: list[Any]) -> TxBatch:
        if len(raw) != 2 or not isinstance(raw[1], list) or len(raw[1]) > MAX_TX_BATCH:
            raise DecodeError(f"a transaction batch holds at most {MAX_TX_BATCH} transactions")
        if not all(isinstance(t, bytes) for t in raw[1]):
            raise DecodeError("transactions are gossiped as byte strings")
        return cls(tuple(raw[1]))


@dataclass(frozen=True, slots=True)
class EvidenceMsg:
    evidence: DuplicateVoteEvidence

    def to_list(self) -> list[Any]:
        return ["evidence", self.evidence.to_list()]


Message = Proposal | BlockPart | RoundState | VoteMsg | TxBatch | EvidenceMsg


def encode(msg: Message) -> bytes:
    return codec.encode_trusted(msg.to_list())


def decode(data: bytes, max_size: int, hash_new: HashNew = hashlib.sha256) -> Message:
    """Decode one message; raise :class:`DecodeError` naming what is wrong. Evidence in it
    gets the chain's hash ``hash_new``."""
    raw = codec.decode(data, max_size=max_size)
    if not isinstance(raw, list) or not raw or not isinstance(raw[0], str):
        raise DecodeError("a message is a CBOR array starting with its kind")
    kind = raw[0]
    if kind == "proposal":
        return Proposal.from_list(raw)
    if kind == "part":
        return BlockPart.from_list(raw)
    if kind == "round_state":
        return RoundState.from_list(raw)
    if kind == "vote":
        if len(raw) != 2:
            raise DecodeError("a vote message has 2 items")
        return VoteMsg(Vote.from_list(raw[1]))
    if kind == "txs":
        return TxBatch.from_list(raw)
    if kind == "evidence":
        if len(raw) != 2:
            raise DecodeError("an evidence message has 2 items")
        return EvidenceMsg(DuplicateVoteEvidence.from_list(raw[1], hash_new=hash_new))
    raise DecodeError(f"unknown message kind {kind!r}")


def part_hash(data: bytes, hash_new: HashNew = hashlib.sha256) -> bytes:
    """The hash of a block part under the chain's hash ``hash_new`` (SHA-256 unless given)."""
    return hash_new(data).digest()
