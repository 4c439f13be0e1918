"""Receipts and events: the result of executing one transaction.

Every transaction in a block gets exactly one receipt, in block order. A failed transaction's
receipt carries the error code and message, the gas it used, and no events (its writes and
events are rolled back). The results root in the header is the simple-Merkle root of the
receipts' canonical bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from citychain import codec
from citychain.errors import DecodeError, ErrorCode
from citychain.types.tx import check_fields, codec_to_json


@dataclass(frozen=True, slots=True)
class Event:
    contract: str
    type: str
    attributes: dict[str, Any]

    def to_list(self) -> list[Any]:
        return [self.contract, self.type, self.attributes]

    def to_json(self) -> dict[str, Any]:
        return {
            "contract": self.contract,
            "type": self.type,
            "attributes": codec_to_json(self.attributes),
        }


@dataclass(frozen=True, slots=True)
class Receipt:
    tx_hash: bytes
    code: str  # ErrorCode value; "ok" on success
    message: str
    gas_used: int
    result: Any
    events: tuple[Event, ...]
    #: True where every part was built from checked canonical data (execution checks a
    #: contract's result and each event's attributes as they are made): encoded without
    #: walking the types again (~1.5 µs of a transfer's receipt).
    checked: bool = field(default=False, compare=False, repr=False)
    _encoded: bytes = field(default=b"", init=False, compare=False, repr=False)

    @property
    def ok(self) -> bool:
        return self.code == ErrorCode.OK

    def encode(self) -> bytes:
        """The canonical bytes of ``[tx_hash, code, message, gas_used, result, events]``."""
        # Cached: a block's results root and its stored receipts both need these bytes (two
        # encodings were ~4 % of a node's time under a transfer load, py-spy).
        if self._encoded:
            return self._encoded
        value = [
            self.tx_hash,
            self.code,
            self.message,
            self.gas_used,
            self.result,
            [e.to_list() for e in self.events],
        ]
        data = codec.encode_trusted(value) if self.checked else codec.encode(value)
        object.__setattr__(self, "_encoded", data)
        return data

    @classmethod
    def decode(cls, data: bytes) -> Receipt:
        raw = codec.decode(data)
        if not isinstance(raw, list) or len(raw) != 6:
            raise DecodeError("a receipt is a CBOR array of 6 items")
        tx_hash, code, message, gas_used, result, events = raw
        check_fields(
            "receipt",
            (
                ("tx_hash", tx_hash, bytes),
                ("code", code, str),
                ("message", message, str),
                ("gas_used", gas_used, int),
                ("events", events, list),
            ),
        )
        for e in events:
            if not (
                isinstance(e, list)
                and len(e) == 3
                and isinstance(e[0], str)
                and isinstance(e[1], str)
                and isinstance(e[2], dict)
            ):
                raise DecodeError("each event is a CBOR array [contract, type, attributes map]")
        return cls(tx_hash, code, message, gas_used, result, tuple(Event(*e) for e in events))

    def to_json(self) -> dict[str, Any]:
        return {
            "tx_hash": self.tx_hash.hex(),
            "code": self.code,
            "message": self.message,
            "gas_used": self.gas_used,
            "result": codec_to_json(self.result),
            "events": [e.to_json() for e in self.events],
        }


@dataclass(frozen=True, slots=True)
class CommittedEvent:
    """An event emitted by the transaction at ``tx_index`` of committed block ``height``:
    what the node streams to subscribers and the SDK yields."""

    height: int
    tx_hash: bytes
    tx_index: int
    event: Event
