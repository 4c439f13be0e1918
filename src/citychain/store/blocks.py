"""The block store: blocks, their commits, the transaction index and receipts.

Layout (all integers big-endian, so keys sort by height):

==============  ==============================  =======================================
column family   key                             value
==============  ==============================  =======================================
blocks          ``b"b" + height(8)``             block bytes (header + tx wire bytes)
blocks          ``b"c" + height(8)``             commit bytes
blocks          ``b"H" + height(8)``             header bytes (read without the txs)
blocks          ``b"h" + block hash``            height(8)
txindex         tx hash                          height(8) + index(4)
receipts        height(8) + index(4)             receipt bytes
meta            ``b"height"``                    last committed height(8)
meta            ``b"validators" + height(8)``    validator set in force from that height
meta            ``b"E" + evidence hash``         height(8) of the block that committed it
==============  ==============================  =======================================

:meth:`BlockStore.save` only *adds to a batch*; the caller writes that batch together with the
state changes, so a block and everything it changed land atomically or not at all.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator, Sequence

from citychain import codec
from citychain.crypto import HashNew
from citychain.errors import InternalError
from citychain.store.kv import Batch, KVStore
from citychain.types import (
    Block,
    Commit,
    DuplicateVoteEvidence,
    Header,
    Receipt,
    Transaction,
    Validator,
    ValidatorSet,
)

_H = struct.Struct(">Q")
_HI = struct.Struct(">QI")


def _h(height: int) -> bytes:
    return _H.pack(height)


class BlockStore:
    """One chain's blocks on disk. ``hash_new`` is the chain's hash (its suite's: SHA-256
    unless given), handed to everything decoded here so their hashes are the chain's."""

    def __init__(self, kv: KVStore, *, hash_new: HashNew = hashlib.sha256) -> None:
        self._kv = kv
        self._new = hash_new
        raw = kv.get("meta", b"height")
        self._height = _H.unpack(raw)[0] if raw else 0
        # The latest header is read on every block and status call: keep it decoded.
        self._last: Header | None = None
        self._pending_last: Header | None = None
        if self._height:
            self._last = self.header(self._height)
        # Every validator set recorded, by the height it is in force from, read on first use:
        # the set is asked for by every status call and several times per block, and reading
        # it from the store (a reverse seek, a decode, the set's hash) took ~110 µs. Sets are
        # few (one per governance change) and never change once written.
        self._sets: list[tuple[int, ValidatorSet]] | None = None
        self._sets_written = False

    @property
    def height(self) -> int:
        """The last committed height (0 before the first block)."""
        return self._height

    # -- writes (into the caller's batch) -------------------------------------------------
    def save(self, batch: Batch, block: Block, commit: Commit, receipts: Sequence[Receipt]) -> None:
        h = block.height
        if h != self._height + 1:
            raise InternalError(f"block {h} does not follow committed height {self._height}")
        if len(receipts) != len(block.txs):
            raise InternalError("every transaction needs exactly one receipt")
        hb = _h(h)
        batch.put("blocks", b"b" + hb, block.encode())
        batch.put("blocks", b"c" + hb, commit.encode())
        batch.put("blocks", b"H" + hb, block.header.encode())
        batch.put("blocks", b"h" + block.hash, hb)
        for i, (tx, receipt) in enumerate(zip(block.txs, receipts, strict=True)):
            loc = _HI.pack(h, i)
            batch.put("txindex", tx.hash, loc)
            batch.put("receipts", loc, receipt.encode())
        for ev in block.evidence:
            batch.put("meta", b"E" + ev.hash, hb)
        batch.put("meta", b"height", hb)
        self._pending_last = block.header

    def committed(self, height: int) -> None:
        """Call after the batch holding block ``height`` was written."""
        if self._pending_last is not None and self._pending_last.height == height:
            self._last = self._pending_last
        else:
            self._last = self.header(height)
        self._pending_last = None
        self._height = height
        if self._sets_written:  # read again what the batch added (a read in between cached
            self._sets = None  # the store as it was before the write)
            self._sets_written = False

    def save_validators(self, batch: Batch, from_height: int, validators: ValidatorSet) -> None:
        """Record ``validators`` in ``batch``, in force from ``from_height``; the set is read
        from the store once ``batch`` is written (genesis) or :meth:`committed` (a block)."""
        batch.put(
            "meta",
            b"validators" + _h(from_height),
            codec.encode([[v.public_key, v.power, v.name] for v in validators]),
        )
        self._sets = None
        self._sets_written = True

    # -- reads ------------------------------------------------------------------------------
    def block(self, height: int) -> Block | None:
        raw = self._kv.get("blocks", b"b" + _h(height))
        return Block.decode(raw, hash_new=self._new) if raw is not None else None

    def tx(self, height: int, index: int) -> Transaction | None:
        """Transaction ``index`` of block ``height``, decoded alone."""
        raw = self._kv.get("blocks", b"b" + _h(height))
        return Block.decode_tx(raw, index, hash_new=self._new) if raw is not None else None

    def header(self, height: int) -> Header | None:
        if self._last is not None and self._last.height == height:
            return self._last
        raw = self._kv.get("blocks", b"H" + _h(height))
        return Header.decode(raw, hash_new=self._new) if raw is not None else None

    def commit(self, height: int) -> Commit | None:
        raw = self._kv.get("blocks", b"c" + _h(height))
        return Commit.decode(raw) if raw is not None else None

    def height_of(self, block_hash: bytes) -> int | None:
        raw = self._kv.get("blocks", b"h" + block_hash)
        return _H.unpack(raw)[0] if raw else None

    def evidence_height(self, evidence_hash: bytes) -> int | None:
        """The height of the block that committed this evidence, if any."""
        raw = self._kv.get("meta", b"E" + evidence_hash)
        return _H.unpack(raw)[0] if raw else None

    def committed_evidence(self, limit: int = 100) -> list[tuple[int, DuplicateVoteEvidence]]:
        """Committed evidence, newest block first, as (height, evidence)."""
        found: list[tuple[int, DuplicateVoteEvidence]] = []
        heights = sorted(
            {_H.unpack(v)[0] for _, v in self._kv.iter_prefix("meta", b"E")}, reverse=True
        )
        for h in heights:
            block = self.block(h)
            if block is not None:
                found.extend((h, ev) for ev in block.evidence)
            if len(found) >= limit:
                break
        return found[:limit]

    def tx_location(self, tx_hash: bytes) -> tuple[int, int] | None:
        raw = self._kv.get("txindex", tx_hash)
        if raw is None:
            return None
        height, index = _HI.unpack(raw)
        return height, index

    def receipt(self, height: int, index: int) -> Receipt | None:
        raw = self._kv.get("receipts", _HI.pack(height, index))
        return Receipt.decode(raw) if raw is not None else None

    def receipts(self, height: int) -> list[Receipt]:
        start = _h(height)
        return [Receipt.decode(v) for _, v in self._kv.iter_prefix("receipts", start)]

    def validators_at(self, height: int) -> ValidatorSet:
        """The validator set in force at ``height``: the last recorded from it or below."""
        sets = self._sets
        if sets is None:
            sets = self._sets = [
                (
                    _H.unpack(key[len(b"validators") :])[0],
                    ValidatorSet(
                        (Validator(bytes(k), p, n) for k, p, n in codec.decode(raw)),
                        hash_new=self._new,
                    ),
                )
                for key, raw in self._kv.iter_prefix("meta", b"validators")
            ]
        for from_height, validators in reversed(sets):
            if from_height <= height:
                return validators
        raise InternalError(f"no validator set recorded for height {height}")

    def iter_blocks(self, start: int = 1) -> Iterator[tuple[Block, Commit]]:
        """Committed blocks from ``start`` upwards, with their commits."""
        for h in range(start, self._height + 1):
            block, commit = self.block(h), self.commit(h)
            if block is None or commit is None:
                raise InternalError(f"block {h} is missing from the block store")
            yield block, commit
