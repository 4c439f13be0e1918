"""Every decoder of outside bytes either decodes or raises a citychain error, within a CPU
budget proportional to the input's size (issue 15.2).

Inputs mix random bytes, valid encodings (the canonical vectors) with bytes flipped, inserted
or cut, CBOR built from the whole grammar (every tag, floats, indefinite lengths), shared-
reference bombs and deep nesting. The longer run is ``bench/fuzz_decoders.py`` (atheris).
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from citychain import codec
from citychain.api._body import parse_cbor_byte_array, parse_json_object
from citychain.consensus import messages
from citychain.crypto.envelope import Manifest
from citychain.crypto.keystore import import_key
from citychain.errors import CitychainError
from citychain.node.config import NodeConfig
from citychain.p2p.certs import NodeKey
from citychain.p2p.frames import FrameDecoder, decode_control
from citychain.sync import messages as sync_messages
from citychain.types.block import Block, Commit, Header
from citychain.types.evidence import DuplicateVoteEvidence
from citychain.types.genesis import Genesis
from citychain.types.private_data import decode_message as decode_private
from citychain.types.receipt import Receipt
from citychain.types.tx import Transaction
from citychain.types.vote import Vote

VECTORS = Path(__file__).parents[1] / "vectors" / "canonical"
SEEDS = [
    bytes.fromhex(case["encoding"])
    for f in sorted(VECTORS.glob("*.json"))
    for case in json.loads(f.read_text())["cases"]
    if "encoding" in case
]
# One scratch directory for the module's decoders that read files (a genesis, a config), removed
# when the run ends: hypothesis calls the tests many times, which function fixtures would not
# follow.
_TMP = Path(tempfile.mkdtemp(prefix="citychain-fuzz-"))
atexit.register(shutil.rmtree, _TMP, True)


def _genesis(data: bytes) -> Any:
    path = _TMP / "genesis.json"
    path.write_bytes(data)
    return Genesis.load(path)


def _config(data: bytes) -> Any:
    (_TMP / "config").mkdir(exist_ok=True)
    (_TMP / "config" / "node.toml").write_bytes(data)
    return NodeConfig.load(_TMP)


def _frames(data: bytes) -> Any:
    return FrameDecoder(1 << 20).feed(data)


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


DECODERS: dict[str, Callable[[bytes], Any]] = {
    "codec": codec.decode,
    "transaction": Transaction.decode,
    "header": Header.decode,
    "block": Block.decode,
    "commit": Commit.decode,
    "vote": Vote.decode,
    "evidence": DuplicateVoteEvidence.decode,
    "receipt": Receipt.decode,
    "consensus message": lambda d: messages.decode(d, max_size=1 << 20),
    "sync message": lambda d: sync_messages.decode(d, max_size=1 << 20),
    "p2p control": decode_control,
    "p2p frames": _frames,
    "node key (certificate extension)": NodeKey.decode,
    "private data message": decode_private,
    "blob manifest": Manifest.decode,
    "api tx batch": lambda d: parse_cbor_byte_array(d, 50),
    "api json body": lambda d: parse_json_object(d, "body"),
    "keystore": lambda d: import_key(_text(d), "passphrase"),
    "genesis": _genesis,
    "config": _config,
}
TEXT_DECODERS = {"api json body", "keystore", "genesis", "config"}


def shared_bomb(depth: int) -> bytes:
    x: Any = [0]
    for _ in range(depth):
        x = [x, x, x, x]
    return bytes(cbor2.dumps(x, value_sharing=True))


def _head(major: int, n: int) -> bytes:
    if n < 24:
        return bytes([major << 5 | n])
    width = 1 if n < 256 else 2 if n < 65536 else 4
    return bytes([major << 5 | {1: 24, 2: 25, 4: 26}[width]]) + n.to_bytes(width, "big")


_tags = st.sampled_from([0, 1, 2, 3, 4, 21, 24, 25, 28, 29, 32, 35, 37, 256, 258, 55799])
_leaf = st.one_of(
    st.integers(-(2**70), 2**70).map(lambda n: bytes(cbor2.dumps(n))),
    st.binary(max_size=12).map(lambda b: bytes(cbor2.dumps(b))),
    st.text(max_size=8).map(lambda s: bytes(cbor2.dumps(s))),
    st.floats(allow_nan=True).map(lambda f: bytes(cbor2.dumps(f))),
    st.sampled_from([b"\xf4", b"\xf5", b"\xf6", b"\xf7", b"\xe0", b"\xff", b"\x1c"]),
    st.integers(1, 10).map(shared_bomb),
)
grammar = st.recursive(
    _leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5).map(lambda xs: _head(4, len(xs)) + b"".join(xs)),
        st.lists(st.tuples(inner, inner), max_size=4).map(
            lambda kv: _head(5, len(kv)) + b"".join(k + v for k, v in kv)
        ),
        st.lists(inner, max_size=4).map(lambda xs: b"\x9f" + b"".join(xs) + b"\xff"),
        st.tuples(_tags, inner).map(lambda t: _head(6, t[0]) + t[1]),
        st.tuples(st.integers(0, 50), inner).map(lambda t: b"\x81" * t[0] + t[1]),
    ),
    max_leaves=12,
)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    raw = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(raw)))
        how = draw(st.sampled_from(["flip", "insert", "cut", "splice"]))
        if how == "flip" and i < len(raw):
            raw[i] ^= draw(st.integers(1, 255))
        elif how == "insert":
            raw[i:i] = draw(st.binary(min_size=1, max_size=3))
        elif how == "cut":
            del raw[i : i + draw(st.integers(1, 8))]
        else:
            raw[i:i] = draw(grammar)
    return bytes(raw)


deep = st.tuples(st.sampled_from([b"\x81", b"\xa1\x61a", b"[", b'{"a":', b"a=[", b"a={b="]),
                 st.integers(1, 5000)).map(lambda t: t[0] * t[1])  # fmt: skip
hostile = st.one_of(st.binary(max_size=200), mutated(), grammar, deep)
json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=10,
).map(lambda v: json.dumps(v).encode())
toml_like = st.lists(
    st.sampled_from(["[api]", "[p2p]", "x = 1", 'a = "b"', "a = [", "]", "{", "b = {c=1}", "="]),
    max_size=8,
).map(lambda lines: "\n".join(lines).encode())
text_hostile = st.one_of(hostile, json_like, toml_like, st.text(max_size=100).map(str.encode))


def _cpu(run: Callable[[], object]) -> float:
    """CPU seconds ``run`` takes on this thread, with the cyclic garbage collector paused.
    Not ``time.process_time``: it counts every thread of the test worker (a RocksDB
    compaction or an executor thread an earlier test left behind), and a collection of the
    garbage earlier tests left would be charged to whichever decoder it interrupted (one CI run
    read 0.2 s for a 10 KB input the keystore refuses in 0.06 ms)."""
    paused = gc.isenabled()
    gc.disable()
    try:
        start = time.thread_time()
        run()
        return time.thread_time() - start
    finally:
        if paused:
            gc.enable()


def _budget(data: bytes) -> float:
    """CPU seconds a decoder may spend on ``data``: linear in its size, generous for noise."""
    return 0.03 + 5e-6 * len(data)


@pytest.mark.parametrize("name", sorted(DECODERS))
@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_decoder_refuses_or_decodes_within_budget(name: str, data: st.DataObject) -> None:
    raw = data.draw(text_hostile if name in TEXT_DECODERS else hostile)
    decoder = DECODERS[name]

    def run() -> None:
        with contextlib.suppress(CitychainError):
            decoder(raw)

    spent = _cpu(run)
    assert spent < _budget(raw), f"{name}: {spent:.3f} s of CPU for {len(raw)} bytes"


@pytest.mark.parametrize("depth", [9, 10])
@pytest.mark.parametrize("name", sorted(set(DECODERS) - TEXT_DECODERS - {"p2p frames"}))
def test_every_cbor_decoder_refuses_the_shared_reference_bomb(name: str, depth: int) -> None:
    bomb = shared_bomb(depth)
    refused: list[CitychainError] = []

    def run() -> None:
        try:
            DECODERS[name](bomb)
        except CitychainError as exc:
            refused.append(exc)

    assert _cpu(run) < _budget(bomb)
    assert refused, f"{name} decoded the shared-reference bomb"
