"""Block-sync messages (channel 0x40), after CometBFT's block-sync reactor.

``status?``/``status`` ask and tell a peer's last committed height and the lowest height it
can serve; ``block?`` asks for one committed block, answered by ``block`` (the block and the
commit stored with it) or ``no_block``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from citychain import codec
from citychain.crypto import HashNew
from citychain.errors import DecodeError
from citychain.types import Block, Commit, Transaction
from citychain.types.tx import check_fields

CH_SYNC = 0x40


def _uint(what: str, name: str, v: Any) -> int:
    check_fields(what, ((name, v, int),))
    assert isinstance(v, int)
    return v


@dataclass(frozen=True, slots=True)
class StatusRequest:
    def to_list(self) -> list[Any]:
        return ["status?"]


@dataclass(frozen=True, slots=True)
class StatusResponse:
    height: int  # last committed height
    base: int  # lowest height this node can serve

    def to_list(self) -> list[Any]:
        return ["status", self.height, self.base]


@dataclass(frozen=True, slots=True)
class BlockRequest:
    height: int

    def to_list(self) -> list[Any]:
        return ["block?", self.height]


@dataclass(frozen=True, slots=True)
class BlockResponse:
    block: Block
    commit: Commit

    def to_list(self) -> list[Any]:
        return ["block", self.block.encode(), self.commit.encode()]


@dataclass(frozen=True, slots=True)
class NoBlock:
    height: int

    def to_list(self) -> list[Any]:
        return ["no_block", self.height]


SyncMessage = StatusRequest | StatusResponse | BlockRequest | BlockResponse | NoBlock


def encode(msg: SyncMessage) -> bytes:
    return codec.encode_trusted(msg.to_list())


def decode(
    data: bytes,
    max_size: int,
    hash_new: HashNew = hashlib.sha256,
    known: Callable[[bytes], Transaction | None] | None = None,
) -> SyncMessage:
    """Decode one sync message; a block in it gets the chain's hash ``hash_new``, and its
    transactions that ``known`` returns by hash (the mempool's) are reused, not decoded."""
    raw = codec.decode(data, max_size=max_size)
    if not isinstance(raw, list) or not raw or not isinstance(raw[0], str):
        raise DecodeError("a sync message is a CBOR array starting with its kind")
    kind = raw[0]
    if kind == "status?":
        return StatusRequest()
    if kind in ("status", "block?", "no_block", "block"):
        return _decode_sync(kind, raw, hash_new, known)
    raise DecodeError(f"unknown sync message kind {kind!r}")


def _decode_sync(
    kind: str,
    raw: list[Any],
    hash_new: HashNew,
    known: Callable[[bytes], Transaction | None] | None = None,
) -> SyncMessage:
    if kind == "status":
        if len(raw) != 3:
            raise DecodeError("a status message has 3 items")
        return StatusResponse(_uint("status", "height", raw[1]), _uint("status", "base", raw[2]))
    if kind == "block?":
        if len(raw) != 2:
            raise DecodeError("a block request has 2 items")
        return BlockRequest(_uint("block request", "height", raw[1]))
    if kind == "no_block":
        if len(raw) != 2:
            raise DecodeError("a no-block message has 2 items")
        return NoBlock(_uint("no block", "height", raw[1]))
    if len(raw) != 3 or not isinstance(raw[1], bytes) or not isinstance(raw[2], bytes):
        raise DecodeError('a block response is ["block", block bytes, commit bytes]')
    return BlockResponse(
        Block.decode(raw[1], max_size=len(raw[1]), known=known, hash_new=hash_new),
        Commit.decode(raw[2]),
    )
