"""Hostile CBOR is refused before anything is built, in time linear in its size (issue 15.2).

cbor2 resolves shared references (tags 28/29) while it decodes, so a transaction of ~100 bytes
expanded into 4**depth items that the canonical check then walked and re-encoded (seconds of
CPU). :func:`codec.scan` now refuses every construct canonical data never uses first.
"""

from __future__ import annotations

import gc
import time
from typing import Any

import cbor2
import pytest

from citychain import codec
from citychain.errors import DecodeError, ErrorCode
from citychain.types.tx import Transaction

#: CPU seconds any refusal here may take: generous for a loaded 2-core machine.
BUDGET = 0.05


def shared_bomb(depth: int) -> bytes:
    """``x = [x, x, x, x]`` ``depth`` times over, each level one shared reference: 4**depth
    items once expanded, from ~12 bytes per level."""
    x: Any = [0]
    for _ in range(depth):
        x = [x, x, x, x]
    return bytes(cbor2.dumps(x, value_sharing=True))


def tx_with_args(args: bytes) -> bytes:
    """A transaction's wire form with ``args`` spliced in as raw CBOR (it is never signed)."""
    fields = [1, "citychain-test", bytes(20), 0, 0, "token", "transfer"]
    return (
        b"\x8a"
        + b"".join(codec.encode(f) for f in fields)
        + args
        + codec.encode(100_000)
        + codec.encode(bytes(64))
    )


def refused_fast(decode: Any, data: bytes, code: ErrorCode, *fragments: str) -> None:
    # This thread's CPU with the collector paused: process_time would also count the test
    # worker's other threads and a collection of earlier tests' garbage.
    collecting = gc.isenabled()
    gc.disable()
    try:
        start = time.thread_time()
        with pytest.raises(DecodeError) as info:
            decode(data)
        spent = time.thread_time() - start
    finally:
        if collecting:
            gc.enable()
    assert info.value.code == code, info.value
    for fragment in fragments:
        assert fragment in info.value.message, info.value.message
    assert spent < BUDGET, f"{spent:.3f} s of CPU to refuse {len(data)} bytes"


@pytest.mark.parametrize("depth", [10, 11])
def test_shared_reference_bomb_is_refused_in_milliseconds(depth: int) -> None:
    bomb = shared_bomb(depth)
    assert len(bomb) < 150
    refused_fast(codec.decode, bomb, ErrorCode.MALFORMED, "tag 28", "byte 0")


def test_shared_reference_transaction_is_refused_in_milliseconds() -> None:
    wire = tx_with_args(shared_bomb(10))
    assert len(wire) < 300  # 64 of them the signature
    offset = wire.index(b"\xd8\x1c")
    refused_fast(Transaction.decode, wire, ErrorCode.MALFORMED, "tag 28", f"byte {offset}")


def test_deep_nesting_transaction_is_refused_in_milliseconds() -> None:
    wire = tx_with_args(b"\x81" * 60_000 + b"\x00")
    # The transaction array is level 0, so the args' 32nd array opens level 33.
    at = wire.index(b"\x81") + codec.MAX_DEPTH - 1
    refused_fast(Transaction.decode, wire, ErrorCode.MALFORMED, "deeper than 32", f"byte {at}")


@pytest.mark.parametrize(
    ("data", "code", "fragment"),
    [
        (b"\xd9\x01\x00\x82\x61a\xd8\x19\x00", ErrorCode.MALFORMED, "tag 256"),  # stringref
        (b"\xd8\x1d\x00", ErrorCode.MALFORMED, "tag 29 (shared reference) at byte 0"),
        (b"\x82\x00\xd9\x01\x02\x80", ErrorCode.MALFORMED, "tag 258 (set) at byte 2"),
        (b"\xc2\x01", ErrorCode.MALFORMED, "bignum tag at byte 0 is not on a byte string"),
        (b"\x9f\x00\xff", ErrorCode.NON_CANONICAL, "indefinite length at byte 0"),
        (b"\x81\xf9\x3c\x00", ErrorCode.MALFORMED, "a float at byte 1"),
        (b"\x18\x05", ErrorCode.NON_CANONICAL, "byte 0 is not in its shortest form"),
        (b"\x9a\xff\xff\xff\xff", ErrorCode.MALFORMED, "claims 4294967295 entries"),
        (b"\x5a\xff\xff\xff\xff", ErrorCode.MALFORMED, "claims 4294967295 bytes; 0 remain"),
        (b"\x00\x00", ErrorCode.NON_CANONICAL, "1 bytes after the value (from byte 1)"),
        (b"\x82\x00", ErrorCode.MALFORMED, "claims 2 entries; 1 bytes remain"),
        (b"\x82\x81\x00", ErrorCode.MALFORMED, "ends early at byte 3"),
    ],
)
def test_refusals_name_the_offset_and_the_construct(
    data: bytes, code: ErrorCode, fragment: str
) -> None:
    refused_fast(codec.decode, data, code, fragment)


def test_item_limit() -> None:
    many = b"\x99\x10\x00" + b"\x00" * 4096  # an array of 4096 zeros: 4097 items
    assert codec.decode(many, max_items=4097) == [0] * 4096
    refused_fast(
        lambda d: codec.decode(d, max_items=4096), many, ErrorCode.TOO_LARGE, "more than 4096"
    )


def test_the_largest_block_fits_the_item_limit() -> None:
    # A block embeds each transaction as one byte string: block_max_txs (10,000) of them,
    # plus the header and evidence, stays far below MAX_ITEMS.
    assert codec.MAX_ITEMS > 10 * 10_000
    big = [[b"h"] * 16, [b"t" * 150] * 10_000, []]
    assert codec.decode(codec.encode(big)) == big
